import { test, expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { cpuSetting, createSet, ensureReader, newApi, removeSet, smallSet, waitForHydration, waitForPoints, watchErrors } from './support';

// The autoscale lab on the Scaling tab: What if… compares the editor's draft with the saved
// setting over the set's synthetic demand (one chart, one score table); Save as shadow puts
// the draft beside the live setting, the shadow panel compares the two over the last hour,
// and Promote makes the shadow live — a Contributor's, which a Reader is not offered; and
// without JavaScript the JSON form saves a shadow and the panel's forms remove it.

const SET = 'e2e-lab';
const READER = 'e2e-lab-reader';
const READER_PASSWORD = 'lab-reader-password-e2e';

async function read(api: APIRequestContext, path: string) {
  const res = await api.get(`/api/v1/scale-sets/${SET}${path}`);
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

/** The number a cell or a legend shows (`4`, `12.5 %`). */
async function numberIn(locator: Locator): Promise<number> {
  const text = (await locator.textContent()) ?? '';
  const match = text.match(/-?\d+(\.\d+)?/);
  expect(match, `a number in ${JSON.stringify(text)}`).not.toBeNull();
  return Number(match![0]);
}

/** A score of one run, as the table carries it. */
async function score(table: Locator, key: string, run: string): Promise<number> {
  const value = await table.locator(`tr[data-score="${key}"] td[data-run="${run}"]`).getAttribute('data-value');
  expect(value).not.toBeNull();
  return Number(value);
}

const profile = (page: Page) => page.locator('fieldset.profile[data-index="0"]');

test.describe.configure({ mode: 'serial' });
let api: APIRequestContext;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  api = await newApi();
  await createSet(api, smallSet(SET, 2));
  // 300 req/s need 8 one-vCPU instances to keep CPU under 80 %: a maximum of 4 cannot.
  const demand = await api.put(`/api/v1/scale-sets/${SET}/demand`, { data: { pattern: 'constant', rps: 300, noise_percent: 0 } });
  expect(demand.status(), await demand.text()).toBe(200);
  const saved = await api.put(`/api/v1/scale-sets/${SET}/autoscale`, { data: cpuSetting(1, 4) });
  expect(saved.status(), await saved.text()).toBe(200);
  await waitForPoints(api, SET, 'demand_requests_per_second');
  await ensureReader(api, READER, READER_PASSWORD);
});

test.afterAll(async () => {
  if (!api) return;
  await removeSet(api, SET);
  await api.dispose();
});

test('What if compares the draft with the saved setting on one chart', async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  const errors = watchErrors(page);
  await page.goto(`/scale-sets/${SET}/scaling`);
  await waitForHydration(page);
  const lab = page.locator('[data-lab="draft"]');
  const status = lab.locator('[data-status="what-if"]');

  // A draft the editor finds problems in is not sent.
  await profile(page).getByLabel('Minimum').fill('12');
  await lab.locator('[data-action="what-if"]').click();
  await expect(status).toHaveAttribute('data-state', 'blocked');
  await expect(status).toHaveText('Fix the problems above first: nothing was sent.');
  await profile(page).getByLabel('Minimum').fill('1');
  await expect(status).toHaveText('');

  // The draft, unsaved, may grow to 10: over the next hour of demand it does, the saved one
  // stops at 4.
  await profile(page).getByLabel('Maximum').fill('10');
  await expect(lab.getByLabel('Load to replay')).toHaveValue('history-24h');
  await lab.getByLabel('Load to replay').selectOption('demand-1h');
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/what-if'));
  await lab.locator('[data-action="what-if"]').click();
  expect((await answer).status()).toBe(200);
  await expect(status).toHaveAttribute('data-state', 'done');
  await expect(status).toContainText('evaluations per setting');

  const chart = lab.locator('[data-chart="what-if-capacity"]');
  await expect(chart.locator('figcaption .chart-title')).toHaveText('Capacity: ideal, saved and draft');
  for (const series of ['ideal', 'saved', 'draft']) {
    await expect(chart.locator(`path.line[data-series="${series}"]`)).toHaveAttribute('d', /^M/);
    await expect(chart.locator(`path.line[data-series="${series}"]`)).toHaveAttribute('data-points', /^[1-9]\d*$/);
  }
  const latest = (series: string) => numberIn(chart.locator(`li[data-series="${series}"] .chart-latest`));
  expect(await latest('ideal')).toBeGreaterThan(4);
  expect(await latest('saved')).toBe(4);
  expect(await latest('draft')).toBeGreaterThan(4);
  expect(await latest('draft')).toBeLessThanOrEqual(10);
  await expect(lab.locator('[data-chart="what-if-load"] li[data-series="load"] .chart-latest')).toHaveText('300 req/s');

  // The scores side by side: a column per setting, a number in each cell.
  const table = lab.locator('table[data-scores="what-if"]');
  await expect(table.locator('caption')).toContainText('lower is better');
  expect(await table.locator('thead th[data-run]').evaluateAll((ths) => ths.map((th) => th.textContent))).toEqual(['saved', 'draft']);
  await expect(table.locator('tbody tr[data-score]')).toHaveCount(9);
  await expect(table.locator('tbody td[data-run]')).toHaveCount(18);
  for (const cell of await table.locator('tbody td[data-run]').all()) {
    expect(Number.isFinite(Number(await cell.getAttribute('data-value')))).toBe(true);
    await expect(cell).toHaveText(/\d/);
  }
  // Held at 4, the saved setting leaves demand unserved and CPU over the SLO longer; the
  // draft costs more instance-hours.
  expect(await score(table, 'under_provisioning_accuracy', 'saved')).toBeGreaterThan(await score(table, 'under_provisioning_accuracy', 'draft'));
  expect(await score(table, 'slo_violation_seconds', 'saved')).toBeGreaterThan(await score(table, 'slo_violation_seconds', 'draft'));
  expect(await score(table, 'instance_hours', 'draft')).toBeGreaterThan(await score(table, 'instance_hours', 'saved'));
  await expect(table.locator('tr[data-score="under_provisioning_accuracy"] td[data-run="draft"]')).toHaveAttribute('data-best', 'true');
  await expect(table.locator('tr[data-score="under_provisioning_timeshare"] td[data-run="saved"]')).toHaveText(/^\d+(\.\d)? %/);
  await expect(lab.locator('[data-calibration="what-if"]')).toContainText('Boot time');
  await page.screenshot({ path: testInfo.outputPath('what-if.png'), fullPage: true });

  // Nothing was saved.
  expect((await read(api, '/autoscale')).profiles[0].capacity.maximum).toBe(4);
  expect(await read(api, '/autoscale/shadow')).toBeNull();
  expect(errors).toEqual([]);
});

test('Save as shadow, compare it with the live setting, and promote it', async ({ page }, testInfo) => {
  test.setTimeout(150_000);
  const errors = watchErrors(page);
  await page.goto(`/scale-sets/${SET}/scaling`);
  await waitForHydration(page);
  await expect(page.locator('[data-shadow]')).toHaveCount(0);
  await expect(page.locator('[data-state="autoscale"] [data-fact="profile"]')).toHaveText('default');

  await profile(page).getByLabel('Name').fill('peak');
  await profile(page).getByLabel('Maximum').fill('10');
  await profile(page).getByLabel('Minimum').fill('2');
  await profile(page).getByLabel('Default').fill('2');
  const saved = page.waitForResponse((r) => r.url().includes('/_fn/save-autoscale-shadow'));
  await page.locator('[data-action="save-shadow"]').click();
  expect((await saved).status()).toBe(200);
  await expect(page.locator('[data-status="shadow"]')).toHaveAttribute('data-state', 'saved');

  const panel = page.locator('section[data-shadow="set"]');
  await expect(panel.locator('li[data-profile="peak"]')).toContainText('2–10 instances');
  expect((await read(api, '/autoscale/shadow')).profiles[0].name).toBe('peak');
  expect((await read(api, '/autoscale')).profiles[0].name).toBe('default');

  // Two evaluations record the shadow's decisions beside the live ones.
  for (let i = 0; i < 2; i++) {
    const res = await api.post(`/api/v1/scale-sets/${SET}/autoscale/evaluate`);
    expect(res.status(), await res.text()).toBe(200);
  }
  await page.reload();
  await waitForHydration(page);
  const chart = panel.locator('[data-chart="shadow-capacity"]');
  await expect(chart.locator('path.line[data-series="live"]')).toHaveAttribute('data-points', /^[1-9]\d*$/);
  await expect(chart.locator('path.line[data-series="shadow"]')).toHaveAttribute('data-points', /^([2-9]|\d\d+)$/);
  // The shadow's minimum is 2: it never asks for fewer.
  expect(await numberIn(chart.locator('li[data-series="shadow"] .chart-latest'))).toBeGreaterThanOrEqual(2);
  const table = panel.locator('table[data-scores="shadow"]');
  expect(await table.locator('thead th[data-run]').evaluateAll((ths) => ths.map((th) => th.textContent))).toEqual(['live', 'shadow']);
  await expect(table.locator('tbody td[data-run]')).toHaveCount(18);
  for (const cell of await table.locator('tbody td[data-run]').all()) {
    expect(Number.isFinite(Number(await cell.getAttribute('data-value')))).toBe(true);
  }
  expect(await score(table, 'instance_hours', 'shadow')).toBeGreaterThan(0);
  await page.screenshot({ path: testInfo.outputPath('shadow.png'), fullPage: true });

  // Promote, behind its confirmation: the shadow is live, the editor and the capacity
  // notice say so, and the panel is gone.
  const promote = panel.locator('[data-confirm="promote"]');
  await promote.locator('summary').click();
  await expect(promote).toContainText('Make the shadow setting the live one?');
  const promoted = page.waitForResponse((r) => r.url().includes('/_fn/shadow-action'));
  await promote.getByRole('button', { name: 'Promote', exact: true }).click();
  expect((await promoted).status()).toBe(200);
  await expect(page.locator('[data-shadow]')).toHaveCount(0);
  await expect(page.locator('[data-state="autoscale"] [data-fact="profile"]')).toHaveText('peak');
  await expect(page.locator('[data-state="autoscale"] [data-fact="bounds"]')).toContainText('2–10');
  await expect(profile(page).locator('legend')).toHaveText('Profile peak');
  await expect(profile(page).getByLabel('Minimum')).toHaveValue('2');
  const live = await read(api, '/autoscale');
  expect(live.profiles[0].name).toBe('peak');
  expect(live.profiles[0].capacity).toEqual({ minimum: 2, maximum: 10, default: 2 });
  expect(await read(api, '/autoscale/shadow')).toBeNull();
  expect(errors).toEqual([]);
});

test('a Reader sees the shadow but is offered no Promote', async ({ browser }, testInfo) => {
  const shadow = await api.put(`/api/v1/scale-sets/${SET}/autoscale/shadow`, { data: cpuSetting(1, 6) });
  expect(shadow.status(), await shadow.text()).toBe(200);
  const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto('/login');
  await page.getByLabel('User name').fill(READER);
  await page.getByLabel('Password').fill(READER_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.goto(`/scale-sets/${SET}/scaling`);
  await waitForHydration(page);
  const panel = page.locator('section[data-shadow="set"]');
  await expect(panel.locator('li[data-profile="default"]')).toContainText('1–6 instances');
  await expect(panel.locator('[data-permission="denied"]')).toContainText('needs the Contributor role on this scale set');
  const promote = panel.locator('[data-confirm="promote"]').getByRole('button', { name: 'Promote', exact: true, includeHidden: true });
  await expect(promote).toBeDisabled();
  await expect(promote).toHaveAttribute('title', 'needs the Contributor role on this scale set');
  await expect(panel.getByRole('button', { name: 'Remove shadow' })).toBeDisabled();
  await expect(page.locator('[data-action="save-shadow"]')).toBeDisabled();
  // A what-if reads only: a Reader may run one.
  await expect(page.locator('[data-action="what-if"]')).toBeEnabled();
  await page.screenshot({ path: testInfo.outputPath('shadow-reader.png'), fullPage: true });
  // What the page does not offer, the server refuses.
  const status = await page.evaluate(
    async ({ set, token }) =>
      (
        await fetch('/_fn/shadow-action', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': token },
          body: `name=${set}&action=promote`,
        })
      ).status,
    { set: SET, token: (await page.locator('meta[name="csrf-token"]').getAttribute('content')) ?? '' },
  );
  expect(status).toBe(403);
  expect((await read(api, '/autoscale')).profiles[0].name).toBe('peak');
  expect(errors).toEqual([]);
  await context.close();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the JSON form saves a shadow, the panel is drawn and its form removes it', async ({ page }) => {
    await page.goto(`/scale-sets/${SET}/scaling`);
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
    await page.locator('summary', { hasText: 'Edit as JSON' }).click();
    await page.getByLabel('Autoscale setting (JSON)').fill(JSON.stringify(cpuSetting(3, 5)));
    await page.getByRole('button', { name: 'Save as shadow' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/scaling`));
    expect((await read(api, '/autoscale/shadow')).profiles[0].capacity).toEqual({ minimum: 3, maximum: 5, default: 3 });
    // The live setting is untouched.
    expect((await read(api, '/autoscale')).profiles[0].name).toBe('peak');

    const panel = page.locator('section[data-shadow="set"]');
    await expect(panel.locator('li[data-profile="default"]')).toContainText('3–5 instances');
    await expect(panel.locator('[data-chart="shadow-capacity"] path.line[data-series="live"]')).toHaveAttribute('d', /^M/);
    await expect(panel.locator('table[data-scores="shadow"] thead th[data-run]')).toHaveText(['live', 'shadow']);

    await panel.getByRole('button', { name: 'Remove shadow' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/scaling`));
    await expect(page.locator('[data-shadow]')).toHaveCount(0);
    expect(await read(api, '/autoscale/shadow')).toBeNull();
  });
});
