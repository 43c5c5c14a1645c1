import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { cpuSetting, createSet, removeSet, smallSet, waitForHydration, waitForPoints, watchErrors, newApi } from './support';

// Metrics, live charts and autoscale in the portal: the Monitoring tab (charts with data,
// the range picker, an instance's charts, live updates), the Scaling tab (the autoscale
// editor with its templates, Check and Save, the flapping warning, field errors that save
// nothing, the weekly schedule grid, Evaluate now and the decisions, the mock's demand),
// the wizard's "Autoscale on CPU", and the JSON editor and charts without JavaScript.

const MONITORED = 'e2e-monitor';
const SCALED = 'e2e-autoscale';
const WIZARD = 'e2e-wizard-auto';

interface Setting {
  enabled: boolean;
  profiles: { name: string; capacity: { minimum: number; maximum: number; default: number }; rules: { threshold: number }[] }[];
}

async function storedSetting(api: APIRequestContext, set: string): Promise<Setting | null> {
  const res = await api.get(`/api/v1/scale-sets/${set}/autoscale`);
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

const setCharts = (page: Page) => page.locator('[data-charts="scale-set"]');

test.describe('monitoring', () => {
  test.describe.configure({ mode: 'serial' });
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await createSet(api, smallSet(MONITORED, 2));
    const demand = await api.put(`/api/v1/scale-sets/${MONITORED}/demand`, { data: { pattern: 'constant', rps: 150 } });
    expect(demand.status(), await demand.text()).toBe(200);
    await waitForPoints(api, MONITORED, 'demand_requests_per_second');
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, MONITORED);
    await api.dispose();
  });

  test('charts show the set, follow the range picker, drill down and update live', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${MONITORED}/monitoring?range=15m`);
    await waitForHydration(page);
    const tabs = page.getByRole('navigation', { name: 'Scale set sections' });
    await expect(tabs.getByRole('link', { name: 'Monitoring' })).toHaveAttribute('aria-current', 'page');
    await expect(page.locator('[data-range="15m"]')).toHaveAttribute('aria-current', 'true');
    await expect(page.locator('[data-state="refresh"]')).toContainText('every 1 s');

    // Every chart of the set is there; CPU, instances and the demand have data.
    const names = await setCharts(page).locator('figure[data-chart]').evaluateAll((els) => els.map((e) => e.getAttribute('data-chart')));
    expect(names).toEqual(['cpu', 'memory', 'requests', 'errors', 'latency', 'network', 'disk', 'instances']);
    const cpu = setCharts(page).locator('[data-chart="cpu"]');
    await expect(cpu).toHaveAttribute('data-points', /^[1-9]\d*$/);
    await expect(cpu.locator('path.line[data-series="average"]')).toHaveAttribute('d', /^M/);
    await expect(cpu.locator('path.band')).toHaveAttribute('d', /Z/);
    const demand = setCharts(page).locator('[data-chart="requests"] li[data-series="demand"] .chart-latest');
    // 150 req/s with the mock's ±5 % noise.
    await expect(demand).toHaveText(/^1[45]\d req\/s$/);
    const capacity = setCharts(page).locator('[data-chart="instances"] li[data-series="capacity"] .chart-latest');
    await expect(capacity).toHaveText('2');

    // Live: a newer collector tick reaches the chart without a reload.
    const before = await cpu.getAttribute('data-last-at');
    expect(before).toBeTruthy();
    await expect(cpu).not.toHaveAttribute('data-last-at', before!, { timeout: 30_000 });
    // The tooltip names the values under the pointer.
    const plot = cpu.locator('.chart-plot');
    const box = (await plot.boundingBox())!;
    await plot.hover({ position: { x: box.width - 20, y: box.height / 2 } });
    await expect(cpu.locator('.chart-tip')).toContainText(/average: \d+(\.\d)? %/);
    await expect(cpu.locator('line.chart-cursor')).toHaveCount(1);
    await page.screenshot({ path: testInfo.outputPath('monitoring.png'), fullPage: true });
    await page.mouse.move(0, 0);
    await expect(cpu.locator('.chart-tip')).toHaveCount(0);

    // The range picker: 6 hours, read again every 24 s.
    await page.locator('[data-range="6h"]').click();
    await expect(page).toHaveURL(/range=6h/);
    await expect(page.locator('[data-range="6h"]')).toHaveAttribute('aria-current', 'true');
    await expect(page.locator('[data-state="refresh"]')).toContainText('every 24 s');
    await expect(cpu).toHaveAttribute('data-points', /^[1-9]\d*$/);

    // A custom range ending now-ish: a fixed window, not read again.
    const iso = (d: Date) => d.toISOString().slice(0, 16);
    await page.getByLabel('From (UTC)').fill(iso(new Date(Date.now() - 30 * 60_000)));
    await page.getByLabel('To (UTC)').fill(iso(new Date(Date.now() + 60_000)));
    await page.getByRole('button', { name: 'Show range' }).click();
    await expect(page).toHaveURL(/range=custom/);
    await expect(page.locator('[data-state="refresh"]')).toContainText('fixed range');
    await expect(cpu).toHaveAttribute('data-points', /^[1-9]\d*$/);

    // One instance's charts.
    const ids = (await (await api.get(`/api/v1/scale-sets/${MONITORED}/instances`)).json()).items.map((i: { id: string }) => i.id);
    await page.locator('[data-range="15m"]').click();
    await page.getByLabel('Instance', { exact: true }).selectOption(ids[1]);
    await expect(page).toHaveURL(new RegExp(`instance=${ids[1]}`));
    const instance = page.locator('[data-charts="instance"]');
    await expect(instance).toHaveAttribute('data-instance', ids[1]);
    await expect(instance.getByRole('heading', { level: 2 })).toHaveText(`Instance ${ids[1]}`);
    const instanceNames = await instance.locator('figure[data-chart]').evaluateAll((els) => els.map((e) => e.getAttribute('data-chart')));
    // The metrics the collector keeps per instance (requests too, where it counts them).
    expect(instanceNames.filter((n) => n !== 'instance-requests')).toEqual([
      'instance-cpu',
      'instance-memory',
      'instance-network',
      'instance-disk',
    ]);
    await expect(instance.locator('[data-chart="instance-cpu"]')).toHaveAttribute('data-points', /^[1-9]\d*$/);
    await page.screenshot({ path: testInfo.outputPath('monitoring-instance.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test('a scale action is marked on the charts, with the thresholds that caused it', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${MONITORED}/monitoring?range=15m`);
    await waitForHydration(page);
    const cpu = setCharts(page).locator('[data-chart="cpu"]');
    await expect(cpu.locator('[data-threshold]')).toHaveCount(0);
    // 150 req/s keep both instances' CPU at the top: the scale-out rule fires once its
    // 5-minute average passes 75 % — seconds after the set started on an idle machine, more
    // than a minute once seen on a loaded one.
    const put = await api.put(`/api/v1/scale-sets/${MONITORED}/autoscale`, { data: cpuSetting(2, 4) });
    expect(put.status(), await put.text()).toBe(200);
    await expect(cpu.locator('[data-threshold="scale out > 75 %"]')).toBeVisible();
    await expect(cpu.locator('[data-threshold="scale in < 20 %"]')).toBeVisible();
    await expect
      .poll(
        async () => {
          const res = await api.post(`/api/v1/scale-sets/${MONITORED}/autoscale/evaluate`);
          return (await res.json())?.operation;
        },
        { timeout: 120_000, intervals: [2000] },
      )
      .toBe('scale_out');
    const marker = cpu.locator('[data-marker="+1 (2 → 3)"]');
    await expect(marker).toHaveClass(/marker-out/);
    await expect(setCharts(page).locator('[data-chart="instances"] [data-marker="+1 (2 → 3)"]')).toHaveCount(1);
    await page.screenshot({ path: testInfo.outputPath('monitoring-marker.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the charts are drawn by the server and the picker is links', async ({ page }) => {
      const response = await page.goto(`/scale-sets/${MONITORED}/monitoring`);
      expect(response?.status()).toBe(200);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await expect(page.locator('[data-range="1h"]')).toHaveAttribute('aria-current', 'true');
      const cpu = setCharts(page).locator('[data-chart="cpu"]');
      await expect(cpu.locator('path.line')).toHaveAttribute('d', /^M/);
      await page.locator('[data-range="24h"]').click();
      await expect(page).toHaveURL(/range=24h/);
      await expect(page.locator('[data-range="24h"]')).toHaveAttribute('aria-current', 'true');
      await expect(cpu.locator('path.line')).toHaveAttribute('d', /^M/);
    });
  });
});

test.describe('scaling', () => {
  test.describe.configure({ mode: 'serial' });
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await createSet(api, smallSet(SCALED, 1));
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, SCALED);
    await api.dispose();
  });

  test('the CPU template checks clean, a narrow gap warns of flapping, and Save saves', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SCALED}/scaling`);
    await waitForHydration(page);
    await expect(page.locator('[data-form="capacity"]')).toBeVisible();
    await page.getByRole('button', { name: 'Set up autoscale' }).click();
    const profile = page.locator('fieldset.profile[data-index="0"]');
    await profile.locator('[data-template="cpu"]').click();
    await expect(page.getByLabel('Rule 1 threshold')).toHaveValue('70');
    await expect(page.getByLabel('Rule 2 threshold')).toHaveValue('30');
    await expect(page.getByLabel('Rule 2 direction')).toHaveValue('decrease');

    const check = async () => {
      const answer = page.waitForResponse((r) => r.url().includes('/_fn/save-autoscale'));
      await page.locator('[data-action="check"]').click();
      expect((await answer).status()).toBe(200);
    };
    await check();
    const status = page.locator('.editor-status[role="status"]').first();
    await expect(status).toHaveAttribute('data-state', 'checked');
    await expect(status).toHaveText('Checked: no errors, no warnings.');
    await expect(page.locator('[data-state="problems"]')).toHaveCount(0);
    await expect(page.locator('[data-warning]')).toHaveCount(0);

    // Scale in below 65 % and out above 70 %: one instance fewer would run above 70 %.
    await page.getByLabel('Rule 2 threshold').fill('65');
    await check();
    const warning = page.locator('[data-warning="profiles[0].rules[1]"]');
    await expect(warning).toContainText('flap');
    await expect(status).toHaveText('Checked: no errors, 1 warning.');
    await page.screenshot({ path: testInfo.outputPath('scaling-flapping.png'), fullPage: true });
    expect(await storedSetting(api, SCALED)).toBeNull();

    const saved = page.waitForResponse((r) => r.url().includes('/_fn/save-autoscale'));
    await page.locator('[data-action="save"]').click();
    expect((await saved).status()).toBe(200);
    await expect(status).toHaveAttribute('data-state', 'saved');
    const setting = await storedSetting(api, SCALED);
    expect(setting?.enabled).toBe(true);
    expect(setting?.profiles[0].rules.map((r) => r.threshold)).toEqual([70, 65]);

    // Autoscale sets the capacity now: the form gives way to the notice.
    await expect(page.locator('[data-state="autoscale"]')).toBeVisible();
    await expect(page.locator('[data-form="capacity"]')).toHaveCount(0);
    await expect(page.locator('[data-state="autoscale"] [data-fact="profile"]')).toHaveText('default');
    await page.locator('[data-tab="overview"]').click();
    await expect(page.locator('[data-state="autoscale"]')).toBeVisible();
    await expect(page.locator('[data-form="capacity"]')).toHaveCount(0);
    await page.locator('[data-tab="settings"]').click();
    await expect(page.locator('[data-json="scale-set"]')).toContainText('"time_window_seconds": 600');
    expect(errors).toEqual([]);
  });

  test('bounds that do not fit are shown at the field and save nothing', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SCALED}/scaling`);
    await waitForHydration(page);
    const minimum = page.locator('fieldset.profile[data-index="0"]').getByLabel('Minimum');
    await expect(minimum).toHaveValue('1');
    await minimum.fill('12');
    await expect(page.locator('[data-error="profiles[0].capacity.minimum"]')).toContainText('must not exceed the maximum');
    await expect(minimum).toHaveAttribute('aria-invalid', 'true');
    await page.locator('[data-action="save"]').click();
    await expect(page.locator('.editor-status[role="status"]').first()).toHaveAttribute('data-state', 'blocked');
    expect((await storedSetting(api, SCALED))?.profiles[0].capacity.minimum).toBe(1);

    // The server refuses the same through the JSON form, by field.
    await page.locator('summary', { hasText: 'Edit as JSON' }).click();
    await page.getByLabel('Autoscale setting (JSON)').fill(JSON.stringify(cpuSetting(5, 3)));
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/autoscale-json'));
    await page.getByRole('button', { name: 'Save JSON' }).click();
    expect((await answer).status()).toBe(422);
    await expect(page.locator('[data-error="json"]')).toContainText('profiles[0].capacity.minimum');
    expect((await storedSetting(api, SCALED))?.profiles[0].capacity.minimum).toBe(1);
    expect(errors).toEqual([]);
  });

  test('the schedule grid colours business hours', async ({ page }, testInfo) => {
    await page.goto(`/scale-sets/${SCALED}/scaling`);
    await waitForHydration(page);
    const grid = page.getByRole('table', { name: 'Which profile applies, each hour of this week' });
    await expect(grid.locator('td[data-profile="default"]')).toHaveCount(168);
    await page.locator('[data-template="business-hours"]').click();
    await expect(page.locator('fieldset.profile[data-profile="business-hours"]')).toBeVisible();
    const cell = (day: number, hour: number) => grid.locator(`tr[data-day="${day}"] td[data-hour="${hour}"]`);
    await expect(grid.locator('td[data-profile="business-hours"]')).toHaveCount(50);
    await expect(cell(0, 8)).toHaveAttribute('data-profile', 'business-hours');
    await expect(cell(0, 7)).toHaveAttribute('data-profile', 'default');
    await expect(cell(4, 17)).toHaveAttribute('data-profile', 'business-hours');
    await expect(cell(4, 18)).toHaveAttribute('data-profile', 'default');
    await expect(cell(5, 10)).toHaveAttribute('data-profile', 'default');
    await expect(page.locator('.grid-legend li[data-legend="business-hours"]')).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('schedule-grid.png'), fullPage: true });
    // Its minimum is two above the default profile's.
    await expect(page.locator('fieldset.profile[data-index="1"]').getByLabel('Minimum')).toHaveValue('3');
  });

  test.describe("drawn in the browser's time zone", () => {
    // The grid is drawn in the browser's zone; a schedule's zone is its own. The wasm reads
    // both from the browser's Intl, as the server reads them from chrono-tz.
    test.use({ timezoneId: 'UTC' });

    test('a schedule in Tokyo shows nine hours earlier, and an unknown zone is refused', async ({ page }) => {
      const errors = watchErrors(page);
      await page.goto(`/scale-sets/${SCALED}/scaling`);
      await waitForHydration(page);
      const grid = page.getByRole('table', { name: 'Which profile applies, each hour of this week' });
      await page.locator('[data-template="business-hours"]').click();
      const profile = page.locator('fieldset.profile[data-index="1"]');
      const zone = profile.getByLabel('Time zone (IANA)');
      await expect(zone).toHaveValue('UTC');
      await zone.fill('Asia/Tokyo');
      const cell = (day: number, hour: number) => grid.locator(`tr[data-day="${day}"] td[data-hour="${hour}"]`);
      // Tokyo is UTC+9 all year: Monday 08:00 there is Sunday 23:00 here, 18:00 is 09:00.
      await expect(cell(6, 23)).toHaveAttribute('data-profile', 'business-hours');
      await expect(cell(0, 0)).toHaveAttribute('data-profile', 'business-hours');
      await expect(cell(0, 8)).toHaveAttribute('data-profile', 'business-hours');
      await expect(cell(0, 9)).toHaveAttribute('data-profile', 'default');
      await expect(cell(4, 23)).toHaveAttribute('data-profile', 'default');
      await expect(grid.locator('td[data-profile="business-hours"]')).toHaveCount(50);
      // A name the database does not have (or not in its case) is refused where it is typed.
      const message = page.locator('[data-error="profiles[1].recurrence.time_zone"]');
      for (const refused of ['Mars/Olympus', 'asia/tokyo']) {
        await zone.fill(refused);
        await expect(message).toContainText(`unknown time zone "${refused}"`);
      }
      await zone.fill('Asia/Tokyo');
      await expect(message).toHaveText(/^\s*$/);
      expect(errors).toEqual([]);
    });
  });

  test('Evaluate now records a decision that explains each rule', async ({ page }) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await waitForPoints(api, SCALED, 'cpu_percent');
    await page.goto(`/scale-sets/${SCALED}/scaling`);
    await waitForHydration(page);
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/evaluate-autoscale'));
    await page.getByRole('button', { name: 'Evaluate now' }).click();
    expect((await answer).status()).toBe(200);
    const evaluated = page.locator('[data-state="evaluated"] li.decision');
    await expect(evaluated).toBeVisible();
    const id = await evaluated.getAttribute('data-decision');
    await expect(evaluated.locator('[data-fact="profile"]')).toHaveText('default');
    await expect(evaluated.locator('tr[data-rule-metric="cpu_percent"]')).toHaveCount(2);

    // The same decision heads the timeline; opened, it shows the rules' values.
    const listed = page.getByRole('list', { name: 'Decisions' }).locator(`li[data-decision="${id}"]`);
    await expect(listed).toBeVisible();
    await expect(listed.locator('table.rule-trace')).toBeHidden();
    await listed.locator('summary').click();
    const rows = listed.locator('tr[data-rule-metric="cpu_percent"]');
    await expect(rows).toHaveCount(2);
    await expect(rows.first().locator('[data-cell="value"]')).toHaveText(/^\d+(\.\d)? %$/);
    await expect(rows.first().locator('[data-cell="fired"]')).toHaveText(/^(yes|no)$/);
    await expect(listed.locator('[data-fact="result"]')).toContainText('Result:');

    // The filter keeps scale actions only.
    await page.getByRole('link', { name: 'Show scale actions only' }).click();
    await expect(page).toHaveURL(/decisions=actions/);
    await expect(page.getByRole('heading', { name: 'Scale actions, newest first' })).toBeVisible();
    const shown = page.getByRole('list', { name: 'Decisions' }).locator('li.decision');
    for (const op of await shown.evaluateAll((els) => els.map((e) => e.getAttribute('data-operation')))) {
      expect(op).not.toBe('none');
    }
    expect(errors).toEqual([]);
  });

  test('the demand form sets the mock demand', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SCALED}/scaling`);
    await waitForHydration(page);
    await expect(page.locator('[data-demand="none"]')).toBeVisible();
    await page.getByLabel('Pattern').selectOption('sine');
    await expect(page.getByLabel('Requests/s', { exact: true })).toBeHidden();
    await page.getByLabel('Minimum (req/s)').fill('abc');
    const refused = page.waitForResponse((r) => r.url().includes('/_fn/set-demand'));
    await page.getByRole('button', { name: 'Set demand' }).click();
    expect((await refused).status()).toBe(422);
    await expect(page.locator('[data-error="min_rps"]')).toContainText('abc');

    await page.getByLabel('Minimum (req/s)').fill('20');
    await page.getByLabel('Maximum (req/s)').fill('80');
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/set-demand'));
    await page.getByRole('button', { name: 'Set demand' }).click();
    expect((await answer).status()).toBe(200);
    await expect(page.locator('[data-fact="demand"]')).toContainText('sine between 20 and 80 req/s');
    await expect(page.locator('[data-fact="demand-now"]')).toHaveText(/^\d+ req\/s$/);
    const set = await (await api.get(`/api/v1/scale-sets/${SCALED}`)).json();
    expect(set.demand).toMatchObject({ pattern: 'sine', min_rps: 20, max_rps: 80 });

    await page.getByRole('button', { name: 'Remove demand' }).click();
    await expect(page.locator('[data-demand="none"]')).toBeVisible();
    await expect.poll(async () => (await (await api.get(`/api/v1/scale-sets/${SCALED}`)).json()).demand).toBeNull();
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the setting is saved as JSON and summarised', async ({ page }) => {
      await page.goto(`/scale-sets/${SCALED}/scaling`);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await expect(page.locator('[data-state="stored-summary"]')).toContainText('Autoscale is on.');
      await page.locator('summary', { hasText: 'Edit as JSON' }).click();
      await page.getByLabel('Autoscale setting (JSON)').fill(JSON.stringify(cpuSetting(2, 4)));
      await page.getByRole('button', { name: 'Save JSON' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SCALED}/scaling`));
      const setting = await storedSetting(api, SCALED);
      expect(setting?.profiles[0].capacity).toEqual({ minimum: 2, maximum: 4, default: 2 });
      await expect(page.locator('[data-state="stored-summary"] li[data-profile="default"]')).toContainText('2–4 instances');

      // A refusal comes back with the JSON as typed and the field's message.
      await page.locator('summary', { hasText: 'Edit as JSON' }).click();
      await page.getByLabel('Autoscale setting (JSON)').fill(JSON.stringify(cpuSetting(6, 4)));
      await page.getByRole('button', { name: 'Save JSON' }).click();
      await expect(page.locator('[data-error="json"]')).toContainText('profiles[0].capacity.minimum');
      await expect(page.getByLabel('Autoscale setting (JSON)')).toHaveValue(/"minimum":6/);
      expect((await storedSetting(api, SCALED))?.profiles[0].capacity.minimum).toBe(2);
    });
  });
});

test.describe('the wizard', () => {
  let api: APIRequestContext;

  test.beforeAll(async () => {
    api = await newApi();
    await removeSet(api, WIZARD);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, WIZARD);
    await api.dispose();
  });

  test('creates a set that autoscales on CPU', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/scale-sets/new');
    await waitForHydration(page);
    await page.getByLabel('Name', { exact: true }).fill(WIZARD);
    const stepper = page.getByRole('navigation', { name: 'Wizard steps' });
    await stepper.getByRole('button', { name: 'Scaling' }).click();
    await page.getByLabel('How the capacity is set').selectOption('autoscale');
    await expect(page.getByLabel('Initial capacity')).toHaveCount(0);
    await page.getByLabel('Maximum instances').fill('3');
    await page.getByLabel('Default instances').fill('4');
    await expect(page.locator('[data-error="autoscale.profiles[0].capacity.default"]')).toContainText('between the minimum and the maximum');
    await page.getByLabel('Default instances').fill('2');
    await stepper.getByRole('button', { name: 'Review' }).click();
    await expect(page.locator('[data-summary="2"]')).toContainText('autoscale on CPU, 1–3 instances, starting at 2');
    const json = page.getByLabel('JSON request');
    await expect(json).toContainText('"autoscale": {');
    await expect(json).toContainText('"cpu_percent"');
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/create-scale-set'));
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    expect((await answer).status()).toBe(200);
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${WIZARD}$`));
    const set = await (await api.get(`/api/v1/scale-sets/${WIZARD}`)).json();
    expect(set.capacity).toBe(2);
    expect(set.autoscale.enabled).toBe(true);
    expect(set.autoscale.profiles[0].capacity).toEqual({ minimum: 1, maximum: 3, default: 2 });
    expect(set.autoscale.profiles[0].rules.map((r: { threshold: number }) => r.threshold)).toEqual([70, 30]);
    await expect(page.locator('[data-state="autoscale"]')).toBeVisible();
    expect(errors).toEqual([]);
  });
});
