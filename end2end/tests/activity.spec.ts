import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { removeSet, runningInstances, waitForHydration, watchErrors, newApi } from './support';

// The activity log and the scale set list: filters, order and pages live in the URL
// query, so they work the same with and without JavaScript, and a bad value is reported
// next to its field. Last, both sets are deleted together from the list (JavaScript).

const SETS = ['e2e-act-a', 'e2e-act-b'];
const spec = (name: string) => ({
  name,
  model: { image: 'debian-12', vcpus: 1, memory_mib: 1024, disk_gib: 10, app_port: 80 },
  capacity: 1,
  zones: ['1'],
});

const rows = (page: Page) => page.getByRole('table', { name: 'Activity' }).locator('tbody tr');

/** The ids of the rows shown, in order. */
async function shownIds(page: Page): Promise<number[]> {
  return (await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-activity')))).map(Number);
}

async function expectEveryRow(page: Page, attribute: string, value: string) {
  await expect(rows(page).first()).toBeVisible();
  for (const row of await rows(page).all()) {
    await expect(row).toHaveAttribute(attribute, value);
  }
}

/** Filters, pages and reports bad input; `js` says whether the page hydrates. */
async function exerciseActivityLog(page: Page, js: boolean) {
  const [a, b] = SETS;
  const response = await page.goto('/activity');
  expect(response?.status()).toBe(200);
  if (js) await waitForHydration(page);
  else await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator(`tbody tr[data-scale-set="${a}"]`).first()).toBeVisible();

  // By scale set, through the form.
  await page.getByLabel('Scale set', { exact: true }).selectOption(b);
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]scale_set=${b}(&|$)`));
  await expectEveryRow(page, 'data-scale-set', b);
  await expect(page.getByLabel('Scale set', { exact: true })).toHaveValue(b);

  // And by result.
  await page.getByLabel('Result').selectOption('succeeded');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(/[?&]result=succeeded(&|$)/);
  await expectEveryRow(page, 'data-result', 'succeeded');
  await expectEveryRow(page, 'data-scale-set', b);

  // One entry a page: older, then back to the newest.
  await page.goto(`/activity?scale_set=${a}&limit=1`);
  if (js) await waitForHydration(page);
  await expect(rows(page)).toHaveCount(1);
  const [newest] = await shownIds(page);
  await expect(page.getByRole('link', { name: '← Newest' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Older →' }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]before=${newest}(&|$)`));
  await expect(rows(page)).toHaveCount(1);
  const [older] = await shownIds(page);
  expect(older).toBeLessThan(newest);
  await expectEveryRow(page, 'data-scale-set', a);
  await page.getByRole('link', { name: '← Newest' }).click();
  await expect(page).not.toHaveURL(/before=/);
  await expect(rows(page)).toHaveCount(1);
  expect(await shownIds(page)).toEqual([newest]);

  // A time that cannot be read: a message next to the field, not an error page.
  const bad = await page.goto('/activity?since=yesterday&result=failed');
  expect(bad?.status()).toBe(200);
  await expect(page.locator('[data-error="since"]')).toContainText('is not a time');
  await expect(page.getByLabel('Since (UTC)')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('[data-state="invalid-filter"]')).toBeVisible();

  // A scale set's Activity tab: the log fixed to that set, without a scale set field;
  // its filters and pages stay on the tab.
  await page.goto(`/scale-sets/${a}`);
  await page.locator('[data-tab="activity"]').click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${a}/activity$`));
  await expectEveryRow(page, 'data-scale-set', a);
  await expect(page.locator('#filter-scale-set')).toHaveCount(0);
  await page.goto(`/scale-sets/${a}/activity?limit=1&scale_set=${b}`);
  if (js) await waitForHydration(page);
  await expectEveryRow(page, 'data-scale-set', a);
  await page.getByRole('link', { name: 'Older →' }).click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${a}/activity\\?before=\\d+&limit=1$`));
  await expectEveryRow(page, 'data-scale-set', a);
  await page.getByLabel('Result').selectOption('succeeded');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${a}/activity\\?.*result=succeeded`));
  await expectEveryRow(page, 'data-result', 'succeeded');
  await expectEveryRow(page, 'data-scale-set', a);
}

const listRows = (page: Page) => page.getByRole('table', { name: 'Scale sets' }).locator('tbody tr');

async function listedNames(page: Page): Promise<string[]> {
  return listRows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-scale-set') ?? ''));
}

/** Sorts by the column headers and filters by name through the form. */
async function exerciseList(page: Page, js: boolean) {
  const [a, b] = SETS;
  await page.goto('/scale-sets?q=e2e-act-');
  if (js) await waitForHydration(page);
  await expect.poll(() => listedNames(page)).toEqual([a, b]);

  const table = page.getByRole('table', { name: 'Scale sets' });
  await table.locator('a[data-sort="name"]').click();
  await expect(page).toHaveURL(/sort=name&dir=desc/);
  await expect(table.locator('th[aria-sort="descending"]')).toHaveText(/Name/);
  await expect.poll(() => listedNames(page)).toEqual([b, a]);

  await table.locator('a[data-sort="created"]').click();
  await expect(page).toHaveURL(/sort=created$/);
  await expect.poll(() => listedNames(page)).toEqual([a, b]);
  await table.locator('a[data-sort="created"]').click();
  await expect(page).toHaveURL(/sort=created&dir=desc/);
  await expect.poll(() => listedNames(page)).toEqual([b, a]);

  // The filter keeps the order.
  await page.getByLabel('Filter by name').fill('act-b');
  await page.getByRole('button', { name: 'Filter', exact: true }).click();
  await expect(page).toHaveURL(/q=act-b/);
  await expect(page).toHaveURL(/sort=created/);
  await expect.poll(() => listedNames(page)).toEqual([b]);
}

test.describe('the activity log and the scale set list', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    for (const set of SETS) await removeSet(api, set);
    // One after the other, so that their creation times differ (the list sorts by them).
    for (const set of SETS) {
      const created = await api.post('/api/v1/scale-sets', { data: spec(set) });
      expect(created.status(), await created.text()).toBe(201);
      await expect
        .poll(() => runningInstances(api, set), { timeout: 90_000, intervals: [250, 500, 1000] })
        .toBe(1);
    }
  });

  test.afterAll(async () => {
    if (!api) return;
    for (const set of SETS) await removeSet(api, set);
    await api.dispose();
  });

  test('filters by scale set and result and pages, with JavaScript', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await exerciseActivityLog(page, true);
    await page.screenshot({ path: testInfo.outputPath('activity.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('filters and pages the same way', async ({ page }, testInfo) => {
      await exerciseActivityLog(page, false);
      await page.screenshot({ path: testInfo.outputPath('activity-no-js.png'), fullPage: true });
    });

    test('the list sorts and filters the same way', async ({ page }) => {
      await exerciseList(page, false);
      // Deleting needs JavaScript: the button is disabled.
      await expect(page.getByRole('button', { name: 'Delete selected' })).toBeDisabled();
    });
  });

  test('the list sorts and filters, and deletes both sets after a confirmation', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await exerciseList(page, true);

    await page.goto('/scale-sets?q=e2e-act-');
    await waitForHydration(page);
    const deleteSelected = page.getByRole('button', { name: 'Delete selected' });
    await expect(deleteSelected).toBeDisabled();
    for (const set of SETS) await page.getByLabel(`Select ${set}`).check();
    await deleteSelected.click();
    const confirm = page.getByRole('group', { name: 'Confirm delete' });
    await expect(confirm.locator('li')).toHaveText(SETS);
    await page.screenshot({ path: testInfo.outputPath('bulk-delete-confirm.png'), fullPage: true });

    const answer = page.waitForResponse((r) => r.url().includes('/_fn/delete-scale-sets'));
    await confirm.getByRole('button', { name: 'Delete 2 scale sets' }).click();
    expect((await answer).status()).toBe(200);
    for (const set of SETS) {
      await expect(page.locator(`[data-outcome="${set}"]`)).toHaveText(`Deleting ${set}.`);
    }
    // They go, without a reload.
    await expect(listRows(page)).toHaveCount(0, { timeout: 60_000 });
    for (const set of SETS) {
      await expect.poll(async () => (await api.get(`/api/v1/scale-sets/${set}`)).status(), { timeout: 60_000 }).toBe(404);
    }
    expect(errors).toEqual([]);
  });
});
