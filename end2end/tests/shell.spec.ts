import { test, expect, request, type APIRequestContext, type Page } from '@playwright/test';
import { baseURL, removeSet, runningInstances, waitForHydration, watchErrors } from './support';

// The portal shell: pages render on the server, hydrate in the browser, and read fully
// without JavaScript. Scale sets are made through the REST API.

const SET = 'e2e-web';
const SPEC = {
  name: SET,
  model: { image: 'debian-12', vcpus: 2, memory_mib: 2048, disk_gib: 10, app_port: 80 },
  capacity: 2,
  zones: ['1', '2', '3'],
};

test('the overview loads and hydrates', async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  const res = await page.goto('/');
  expect(res?.status()).toBe(200);
  await waitForHydration(page);

  await expect(page).toHaveTitle(/Overview · Flotilla/);
  await expect(page.getByRole('banner')).toContainText('Flotilla');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
  await expect(nav.getByRole('link', { name: 'Scale sets' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Activity' })).toBeVisible();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(page.locator('[data-stat="scale-sets"] dd')).toHaveText(/^\d+$/);
  await expect(page.locator('[data-stat="instances"] dd')).toHaveText(/^\d+$/);

  // After hydration, navigation is client-side and fetches through a server function.
  const serverFn = page.waitForResponse((r) => r.url().includes('/_fn/activity'));
  await nav.getByRole('link', { name: 'Activity' }).click();
  expect((await serverFn).status()).toBe(200);
  await expect(page).toHaveURL(/\/activity$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Activity' })).toBeVisible();

  await page.screenshot({ path: testInfo.outputPath('overview-activity.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('an unknown page answers 404 with a readable page', async ({ page }) => {
  const res = await page.goto('/no-such-page');
  expect(res?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1, name: 'Page not found' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Go to the overview' })).toBeVisible();
});

test.describe('a scale set made through the REST API', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await request.newContext({ baseURL });
    await removeSet(api, SET);
    const created = await api.post('/api/v1/scale-sets', { data: SPEC });
    expect(created.status(), await created.text()).toBe(201);
    await expect
      .poll(() => runningInstances(api, SET), {
        timeout: 90_000,
        intervals: [250, 500, 1000],
        message: `both instances of ${SET} are running`,
      })
      .toBe(2);
  });

  test.afterAll(async () => {
    if (!api) return;
    const deleted = await api.delete(`/api/v1/scale-sets/${SET}`);
    expect(deleted.ok(), await deleted.text()).toBe(true);
    await api.dispose();
  });

  test('appears in the list, and its page lists two running instances', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.goto('/scale-sets');
    await waitForHydration(page);

    const table = page.getByRole('table', { name: 'Scale sets' });
    const row = table.locator(`tr[data-scale-set="${SET}"]`);
    await expect(row).toBeVisible();
    await expect(row.locator('[data-cell="instances"]')).toHaveText('2 / 2');
    await expect(row).toContainText('1, 2, 3');
    await page.screenshot({ path: testInfo.outputPath('scale-sets.png'), fullPage: true });

    // A client-side navigation: the page's data comes from the `/_fn/scale-set` server fn.
    const serverFn = page.waitForResponse((r) => r.url().includes('/_fn/scale-set'));
    await row.getByRole('link', { name: SET }).click();
    expect((await serverFn).status()).toBe(200);
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
    await expectDetail(page);
    await page.screenshot({ path: testInfo.outputPath('scale-set.png'), fullPage: true });

    // The overview shows the set's card.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    const card = page.locator(`article[data-scale-set="${SET}"]`);
    await expect(card).toContainText('2 instances');
    await expect(card.getByRole('list', { name: `Instances of ${SET} by power state` })).toContainText('running');
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the list and the scale set page render fully', async ({ page }, testInfo) => {
      const list = await page.goto('/scale-sets');
      expect(list?.status()).toBe(200);
      const row = page.getByRole('table', { name: 'Scale sets' }).locator(`tr[data-scale-set="${SET}"]`);
      await expect(row.locator('[data-cell="instances"]')).toHaveText('2 / 2');
      // Nothing ran in the page.
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await page.screenshot({ path: testInfo.outputPath('scale-sets-no-js.png'), fullPage: true });

      await row.getByRole('link', { name: SET }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
      await expectDetail(page);
      await page.screenshot({ path: testInfo.outputPath('scale-set-no-js.png'), fullPage: true });

      const missing = await page.goto('/scale-sets/no-such-set');
      expect(missing?.status()).toBe(404);
      await expect(page.getByRole('heading', { level: 1, name: 'Scale set not found' })).toBeVisible();
    });
  });
});

/** The scale set page: its facts and two running instances. */
async function expectDetail(page: Page) {
  await expect(page.getByRole('heading', { level: 1, name: SET })).toBeVisible();
  await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');
  await expect(page.locator('[data-fact="running"]')).toHaveText('2 of 2');
  const rows = page.getByRole('table', { name: 'Instances' }).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  for (const row of await rows.all()) {
    await expect(row.getByRole('rowheader')).toHaveText(new RegExp(`^${SET}_\\d+$`));
    // Cells after the row header: zone, fault domain, model version, provisioning, power, health, address.
    await expect(row.getByRole('cell').nth(4)).toHaveText('running');
  }
}
