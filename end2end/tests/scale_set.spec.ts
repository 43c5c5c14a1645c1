import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { removeSet, runningInstances, waitForHydration, watchErrors, newApi } from './support';

// A scale set's page, tab by tab: Overview (capacity form with and without JavaScript, the
// zones × fault domains grid, live updates over Server-Sent Events without a reload),
// Instances (sort, filter, select, act, progress), Settings (JSON, export, typed-name
// delete).

const SET = 'e2e-scale';
const SPEC = {
  name: SET,
  model: { image: 'debian-12', vcpus: 1, memory_mib: 1024, disk_gib: 10, app_port: 80 },
  capacity: 3,
  zones: ['1', '2', '3'],
};

const rows = (page: Page) => page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr');
const squares = (page: Page) => page.getByRole('table', { name: 'Instances by zone and fault domain' }).locator('a.square');
const sentAction = (page: Page) => page.waitForResponse((r) => r.url().includes('/_fn/instances-action'));

/** Sets the capacity through the form and waits for the server function's answer. */
async function submitCapacity(page: Page, value: string) {
  await page.getByLabel('New capacity').fill(value);
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/set-capacity'));
  await page.getByRole('button', { name: 'Set capacity' }).click();
  return answer;
}

/** Waits until the overview shows `n` instances, all running, without being reloaded. */
async function expectRunning(page: Page, n: number) {
  await expect(page.locator('[data-fact="capacity"]')).toHaveText(String(n));
  await expect(page.locator('[data-fact="running"]')).toHaveText(`${n} of ${n}`, { timeout: 60_000 });
  await expect(squares(page)).toHaveCount(n, { timeout: 60_000 });
  // Running (without a health probe, running instances count as healthy).
  for (const square of await squares(page).all()) {
    await expect(square).toHaveAttribute('data-state', /running|healthy|initializing/);
  }
}

/** Ticks the rows of `ids` (and only them). */
async function select(page: Page, ids: string[]) {
  for (const row of await rows(page).all()) {
    const id = await row.getAttribute('data-instance');
    await row.getByRole('checkbox').setChecked(ids.includes(id!));
  }
}

const idOf = async (page: Page, n: number) => (await rows(page).nth(n).getAttribute('data-instance'))!;

test.describe('a scale set page', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await removeSet(api, SET);
    const created = await api.post('/api/v1/scale-sets', { data: SPEC });
    expect(created.status(), await created.text()).toBe(201);
    await expect
      .poll(() => runningInstances(api, SET), { timeout: 90_000, intervals: [250, 500, 1000] })
      .toBe(3);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, SET);
    await api.dispose();
  });

  test('the overview scales and updates live, without reloading', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}`);
    await waitForHydration(page);
    await expect(page.getByRole('navigation', { name: 'Scale set sections' }).getByRole('link', { name: 'Overview' }))
      .toHaveAttribute('aria-current', 'page');
    await expect(page.getByRole('navigation', { name: 'Breadcrumbs' })).toContainText('Scale sets');
    await expectRunning(page, 3);
    // One row per zone; three instances spread one per zone.
    const grid = page.getByRole('table', { name: 'Instances by zone and fault domain' });
    await expect(grid.locator('tbody tr')).toHaveCount(3);
    for (const zone of ['1', '2', '3']) {
      await expect(grid.locator(`tr[data-zone="${zone}"] a.square`)).toHaveCount(1);
    }
    // A navigation or a reload would drop this marker.
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    const stillSamePage = () =>
      page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);

    // 3 → 5 → 2: instances appear, become running, and go, through the event stream.
    expect((await submitCapacity(page, '5')).status()).toBe(200);
    await expectRunning(page, 5);
    await page.screenshot({ path: testInfo.outputPath('overview-5.png'), fullPage: true });
    expect((await submitCapacity(page, '2')).status()).toBe(200);
    await expectRunning(page, 2);

    // −1 / +1.
    await page.getByRole('button', { name: 'Increase capacity by one' }).click();
    await expectRunning(page, 3);
    await page.getByRole('button', { name: 'Decrease capacity by one' }).click();
    await expectRunning(page, 2);

    // Bad input: the server's message next to the field, which keeps what was typed.
    const field = page.getByLabel('New capacity');
    const message = page.locator('[data-error="capacity"]');
    expect((await submitCapacity(page, '20000')).status()).toBe(422);
    await expect(message).toContainText('between 0 and 10000');
    await expect(field).toHaveValue('20000');
    await expect(field).toHaveAttribute('aria-invalid', 'true');
    await submitCapacity(page, 'lots');
    await expect(message).toContainText('whole number');
    await expect(field).toHaveValue('lots');
    await page.screenshot({ path: testInfo.outputPath('invalid-capacity.png'), fullPage: true });
    // The page stays usable: a good value clears the message.
    await submitCapacity(page, '3');
    await expect(message).toBeEmpty();
    await expect(field).not.toHaveAttribute('aria-invalid', 'true');
    await expectRunning(page, 3);

    expect(await stillSamePage()).toBe(true);
    expect(errors).toEqual([]);
  });

  test('the instances tab sorts, filters, selects and acts with progress', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}`);
    await waitForHydration(page);
    // Client-side navigation between tabs.
    await page.getByRole('navigation', { name: 'Scale set sections' }).getByRole('link', { name: 'Instances' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances$`));
    await expect(rows(page)).toHaveCount(3);
    const ids = await Promise.all([0, 1, 2].map((n) => idOf(page, n)));

    // Sorting by a column header reverses on a second click.
    const idHeader = page.getByRole('columnheader', { name: 'ID' });
    await idHeader.getByRole('link').click();
    await expect(idHeader).toHaveAttribute('aria-sort', 'descending');
    await expect(rows(page).first()).toHaveAttribute('data-instance', ids[2]);
    await idHeader.getByRole('link').click();
    await expect(idHeader).toHaveAttribute('aria-sort', 'ascending');
    await expect(rows(page).first()).toHaveAttribute('data-instance', ids[0]);

    // Filtering: a GET form; the order is kept in the address.
    await page.getByLabel('ID or address').fill(ids[1]);
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(new RegExp(`q=${ids[1]}`));
    await expect(rows(page)).toHaveCount(1);
    await page.getByRole('link', { name: 'Clear' }).click();
    await expect(rows(page)).toHaveCount(3);

    // Nothing selected: the actions are disabled.
    const toolbar = page.getByRole('group', { name: 'Actions on the selected instances' });
    await expect(toolbar.getByRole('button', { name: 'Restart', exact: true })).toBeDisabled();

    // Restart one: the answer shows the pending state at once, a progress bar follows it.
    await select(page, [ids[0]]);
    await expect(toolbar).toContainText('1 selected');
    const restarted = sentAction(page);
    await toolbar.getByRole('button', { name: 'Restart', exact: true }).click();
    const answer = await restarted;
    expect(answer.status()).toBe(200);
    expect((await answer.json()).updated[0].provisioning_state).toBe('updating');
    const progress = page.locator('p.progress');
    await expect(progress).toContainText('restart requested for 1 instance');
    await expect(progress).toHaveAttribute('data-progress', '1/1', { timeout: 60_000 });
    const first = page.locator(`tr[data-instance="${ids[0]}"]`);
    await expect(first.locator('[data-cell="provisioning"]')).toHaveText('succeeded');
    await expect(first.locator('[data-cell="power"]')).toHaveText('running');

    // Stop it, then ask to restart it with another: the stopped one is refused, with why.
    await select(page, [ids[0]]);
    await toolbar.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(first.locator('[data-cell="power"]')).toHaveText('stopped', { timeout: 60_000 });
    await select(page, [ids[0], ids[1]]);
    await expect(toolbar).toContainText('2 selected');
    const mixed = sentAction(page);
    await toolbar.getByRole('button', { name: 'Restart', exact: true }).click();
    const mixedBody = await (await mixed).json();
    expect(mixedBody.updated.map((i: { id: string }) => i.id)).toEqual([ids[1]]);
    await expect(page.locator('[data-error="instances-action"]')).toContainText(`${ids[0]}:`);
    await page.screenshot({ path: testInfo.outputPath('instances-refused.png'), fullPage: true });
    await select(page, [ids[0]]);
    await toolbar.getByRole('button', { name: 'Start', exact: true }).click();
    await expect(first.locator('[data-cell="power"]')).toHaveText('running', { timeout: 60_000 });

    // Protection.
    await select(page, [ids[2]]);
    await toolbar.getByText('Protect…').click();
    await toolbar.getByLabel('From scale-in').check();
    await toolbar.getByRole('button', { name: 'Set protection' }).click();
    await expect(page.locator(`tr[data-instance="${ids[2]}"] [data-cell="protection"]`)).toHaveText('scale-in');

    // Reimage asks first; once sent the confirmation closes.
    await select(page, [ids[1]]);
    await toolbar.getByText('Reimage…').click();
    await expect(toolbar.locator('details[data-confirm="reimage"]')).toContainText('Reimage 1 instance?');
    const reimaged = sentAction(page);
    await toolbar.getByRole('button', { name: 'Reimage', exact: true }).click();
    expect((await (await reimaged).json()).updated[0].provisioning_state).toBe('updating');
    await expect(toolbar.locator('details[data-confirm="reimage"]')).not.toHaveAttribute('open', '');
    await expect(page.locator(`tr[data-instance="${ids[1]}"] [data-cell="provisioning"]`)).toHaveText('succeeded', {
      timeout: 60_000,
    });

    // Select all, then delete two after a confirmation: they go, and the capacity with them.
    await page.getByLabel('Select every instance shown').check();
    await expect(toolbar).toContainText('3 selected');
    await select(page, [ids[0], ids[1]]);
    await toolbar.getByText('Delete…').click();
    await expect(toolbar.locator('details[data-confirm="delete"]')).toContainText('Delete 2 instances?');
    const deleted = sentAction(page);
    await toolbar.getByRole('button', { name: 'Delete', exact: true }).click();
    expect((await (await deleted).json()).updated.map((i: { provisioning_state: string }) => i.provisioning_state))
      .toEqual(['deleting', 'deleting']);
    await expect(progress).toContainText('delete requested for 2 instances');
    await expect(rows(page)).toHaveCount(1, { timeout: 60_000 });
    await expect(progress).toHaveAttribute('data-progress', '2/2');
    await expect(toolbar).toContainText('0 selected');
    await page.screenshot({ path: testInfo.outputPath('instances.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the capacity form, the filters and the instance actions still work', async ({ page }, testInfo) => {
      await page.goto(`/scale-sets/${SET}`);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await page.getByLabel('New capacity').fill('3');
      await page.getByRole('button', { name: 'Set capacity' }).click();
      // Back on the page (server functions strip a previous error, leaving a bare `?`).
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\??$`));
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('3');
      await page.getByRole('button', { name: 'Decrease capacity by one' }).click();
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');

      // A refusal comes back in the page, next to the field, with what was typed.
      await page.getByLabel('New capacity').fill('-1');
      await page.getByRole('button', { name: 'Set capacity' }).click();
      await expect(page.locator('[data-error="capacity"]')).toContainText('between 0 and 10000');
      await expect(page.getByLabel('New capacity')).toHaveValue('-1');
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');
      await page.screenshot({ path: testInfo.outputPath('overview-no-js.png'), fullPage: true });

      await page.getByRole('link', { name: 'Instances', exact: true }).click();
      await expect(rows(page)).toHaveCount(2);
      await page.getByLabel('State').selectOption('running');
      await page.getByRole('button', { name: 'Filter' }).click();
      await expect(page).toHaveURL(/state=running/);
      await expect(rows(page)).toHaveCount(2);

      // The toolbar and the checkboxes are one form: restart one and come back.
      await page.getByRole('link', { name: 'Clear' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances$`));
      const id = await idOf(page, 0);
      await select(page, [id]);
      await page.getByRole('button', { name: 'Restart', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances`));
      await expect(page.locator(`tr[data-instance="${id}"] [data-cell="provisioning"]`)).toHaveText(
        /updating|succeeded/,
      );
      // Nothing selected: the server says so.
      await page.getByRole('button', { name: 'Stop', exact: true }).click();
      await expect(page.locator('[data-error="instances-action"]')).toContainText('select at least one instance');
      await page.screenshot({ path: testInfo.outputPath('instances-no-js.png'), fullPage: true });

      // Settings: a wrong name is refused and nothing is deleted.
      await page.goto(`/scale-sets/${SET}/settings`);
      await page.getByLabel(`Type ${SET} to confirm`).fill('not-it');
      await page.getByRole('button', { name: 'Delete scale set' }).click();
      await expect(page.locator('[data-error="confirmation"]')).toContainText(`type the scale set's name, ${SET}`);
      await expect(page.getByLabel(`Type ${SET} to confirm`)).toHaveValue('not-it');
      await expect(page.locator('[data-json="scale-set"]')).toContainText(`"name": "${SET}"`);
    });
  });

  test('settings show the JSON, export it, and delete after the name is typed', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/settings`);
    await waitForHydration(page);
    const json = JSON.parse((await page.locator('[data-json="scale-set"]').textContent())!);
    expect(json.name).toBe(SET);
    expect(json.zones).toEqual(['1', '2', '3']);
    const exported = page.locator('[data-link="export"]');
    await expect(exported).toHaveAttribute('download', `${SET}.json`);
    const href = (await exported.getAttribute('href'))!;
    expect(JSON.parse(decodeURIComponent(href.split(',')[1])).name).toBe(SET);

    const button = page.getByRole('button', { name: 'Delete scale set' });
    await expect(button).toBeDisabled();
    await page.getByLabel(`Type ${SET} to confirm`).fill(`${SET}x`);
    await expect(button).toBeDisabled();
    await page.getByLabel(`Type ${SET} to confirm`).fill(SET);
    await expect(button).toBeEnabled();
    await page.screenshot({ path: testInfo.outputPath('settings.png'), fullPage: true });
    await button.click();
    await expect(page).toHaveURL(/\/scale-sets$/);
    await expect
      .poll(async () => (await api.get(`/api/v1/scale-sets/${SET}`)).status(), { timeout: 60_000 })
      .toBe(404);
    expect(errors).toEqual([]);
  });
});
