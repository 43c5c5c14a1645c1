import { test, expect, type APIRequestContext, type Locator, type Page } from '@playwright/test';
import { activityEntries, clearFaults, injectFault, removeSet, runningInstances, smallSet, waitForHydration, watchErrors, newApi } from './support';

// The overview: fleet totals by power and by health state, desired against running, a card
// per scale set, and the failed operations of the last hour — all live. And the activity
// log growing live on its newest page while an older page stays put.

const FLEET = 'e2e-ov-fleet';
const FAILING = 'e2e-ov-fail';
const LIVE = 'e2e-ov-live';
const SETS = [FLEET, FAILING, LIVE];

type Counts = Record<string, number>;
type Instance = { power_state: string; health_state: string };

/** A state list's chips (`data-state` → `data-count`); none when the list is not shown. */
async function chips(list: Locator): Promise<Counts> {
  if ((await list.count()) === 0) return {};
  return list
    .locator('li')
    .evaluateAll((lis) => Object.fromEntries(lis.map((li) => [li.getAttribute('data-state'), Number(li.getAttribute('data-count'))])));
}

function countBy(instances: Instance[], key: keyof Instance): Counts {
  const counts: Counts = {};
  for (const i of instances) counts[i[key]] = (counts[i[key]] ?? 0) + 1;
  return counts;
}

/** Keys in a fixed order, so that two counts compare equal whatever their order. */
const sorted = (counts: Counts) => Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));

/** What the REST API says about the fleet, in the overview's terms. */
async function fleetFromApi(api: APIRequestContext) {
  const sets: { name: string; capacity: number }[] = (await (await api.get('/api/v1/scale-sets')).json()).items;
  const instances: Instance[] = [];
  for (const set of sets) {
    const res = await api.get(`/api/v1/scale-sets/${set.name}/instances`);
    if (res.ok()) instances.push(...(await res.json()).items);
  }
  return {
    sets: sets.length,
    desired: sets.reduce((n, s) => n + s.capacity, 0),
    instances: instances.length,
    power: sorted(countBy(instances, 'power_state')),
    health: sorted(countBy(instances, 'health_state')),
  };
}

/** What the overview shows, in the same shape. */
async function fleetOnPage(page: Page) {
  const stat = async (name: string) => Number(await page.locator(`[data-stat="${name}"] dd`).innerText());
  const totals = page.getByRole('region', { name: 'Totals' });
  return {
    sets: await stat('scale-sets'),
    desired: await stat('desired'),
    instances: await stat('instances'),
    power: sorted(await chips(totals.locator('ul[data-breakdown="power"]'))),
    health: sorted(await chips(totals.locator('ul[data-breakdown="health"]'))),
  };
}

/** Marks the document, to tell later that it was updated in place, not reloaded. */
async function markDocument(page: Page) {
  await page.evaluate(() => document.body.setAttribute('data-e2e-mark', 'same'));
}

async function expectSameDocument(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-e2e-mark', 'same');
}

const activityRows = (page: Page) => page.getByRole('table', { name: 'Activity' }).locator('tbody tr');

async function shownIds(page: Page): Promise<number[]> {
  return (await activityRows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-activity')))).map(Number);
}

test.describe('the overview and the live activity log', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await clearFaults(api);
    for (const set of SETS) await removeSet(api, set);
    const created = await api.post('/api/v1/scale-sets', { data: smallSet(FLEET, 2) });
    expect(created.status(), await created.text()).toBe(201);
    await expect
      .poll(() => runningInstances(api, FLEET), { timeout: 90_000, intervals: [250, 500, 1000] })
      .toBe(2);
  });

  test.afterAll(async () => {
    if (!api) return;
    await clearFaults(api);
    for (const set of SETS) await removeSet(api, set);
    await api.dispose();
  });

  test('shows the totals by power and health state and a card per scale set', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.goto('/');
    await waitForHydration(page);

    // The page and the REST API agree (both settle: the page is live).
    await expect
      .poll(async () => JSON.stringify(await fleetOnPage(page)) === JSON.stringify(await fleetFromApi(api)), { timeout: 30_000 })
      .toBe(true);
    const shown = await fleetOnPage(page);
    expect(shown.power.running).toBeGreaterThanOrEqual(2);
    expect(Object.values(shown.health).reduce((a, b) => a + b, 0)).toBe(shown.instances);
    await expect(page.locator('[data-stat="running"] dd')).toHaveText(String(shown.power.running));

    // The set's card: its capacity, and its instances by power and by health state.
    const card = page.locator(`article.card[data-scale-set="${FLEET}"]`);
    await expect(card.locator('[data-fact="capacity"]')).toHaveText('2 instances');
    await expect(card.locator('[data-fact="running"]')).toHaveText('2 of 2');
    expect(await chips(card.locator('ul[data-breakdown="power"]'))).toEqual({ running: 2 });
    const healthFromApi = async () => {
      const instances: Instance[] = (await (await api.get(`/api/v1/scale-sets/${FLEET}/instances`)).json()).items;
      return JSON.stringify(sorted(countBy(instances, 'health_state')));
    };
    await expect
      .poll(async () => JSON.stringify(sorted(await chips(card.locator('ul[data-breakdown="health"]')))) === (await healthFromApi()))
      .toBe(true);

    await page.screenshot({ path: testInfo.outputPath('overview-totals.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test('counts a failed operation in "failed in the last hour", live, and links to it', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto('/');
    await waitForHydration(page);
    await markDocument(page);
    const failed = page.locator('[data-stat="failed"] dd');
    const before = Number(await failed.getAttribute('data-count'));

    // Every create fails: the reconciler records a failed operation for the new set.
    try {
      await injectFault(api, { kind: 'create_failure_rate', rate: 1 });
      const created = await api.post('/api/v1/scale-sets', { data: smallSet(FAILING) });
      expect(created.status(), await created.text()).toBe(201);
      await expect
        .poll(async () => (await activityEntries(api, { scale_set: FAILING, result: 'failed' })).length, { timeout: 60_000 })
        .toBeGreaterThan(0);
    } finally {
      await clearFaults(api);
    }

    await expect.poll(async () => Number(await failed.getAttribute('data-count'))).toBeGreaterThan(before);
    await expect(failed).toHaveClass(/stat-bad/);
    await expect(page.locator(`article.card[data-scale-set="${FAILING}"]`)).toBeVisible();
    await expectSameDocument(page);
    await page.screenshot({ path: testInfo.outputPath('overview.png'), fullPage: true });

    // The figure links to those failures in the activity log.
    await failed.getByRole('link').click();
    await expect(page).toHaveURL(/\/activity\?result=failed&since=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d$/);
    await expect(page.getByLabel('Result')).toHaveValue('failed');
    await expect(page.getByLabel('Since (UTC)')).not.toHaveValue('');
    await expect(page.locator(`tbody tr[data-scale-set="${FAILING}"][data-result="failed"]`).first()).toBeVisible();
    for (const row of await activityRows(page).all()) await expect(row).toHaveAttribute('data-result', 'failed');
    expect(errors).toEqual([]);
  });

  test('the newest page of the activity log grows live; an older page stays as it is', async ({ page, context }, testInfo) => {
    const errors = watchErrors(page);
    const [latest] = await activityEntries(api, { limit: '1' });

    // An older page: everything up to the latest entry, behind a cursor.
    const older = await context.newPage();
    await older.goto(`/activity?before=${latest.id + 1}`);
    await waitForHydration(older);
    const olderIds = await shownIds(older);
    expect(olderIds[0]).toBe(latest.id);

    await page.goto('/activity');
    await waitForHydration(page);
    await markDocument(page);
    await expect(page.locator(`tbody tr[data-scale-set="${LIVE}"]`)).toHaveCount(0);
    let olderFetches = 0;
    older.on('request', (r) => {
      if (r.url().includes('/_fn/activity')) olderFetches += 1;
    });

    const created = await api.post('/api/v1/scale-sets', { data: smallSet(LIVE) });
    expect(created.status(), await created.text()).toBe(201);
    const entry = page.locator(`tbody tr[data-scale-set="${LIVE}"]`, { hasText: 'scale_set.create' });
    await expect(entry).toBeVisible({ timeout: 30_000 });
    expect(Number(await entry.getAttribute('data-activity'))).toBeGreaterThan(latest.id);
    await expectSameDocument(page);
    await page.screenshot({ path: testInfo.outputPath('activity-live.png'), fullPage: true });

    // The older page heard the same events: give it the refetch's debounce and then some,
    // and it has neither asked for entries again nor changed.
    await older.waitForTimeout(1_000);
    expect(olderFetches).toBe(0);
    expect(await shownIds(older)).toEqual(olderIds);
    await older.close();
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the overview shows the same totals and cards', async ({ page }, testInfo) => {
      const response = await page.goto('/');
      expect(response?.status()).toBe(200);
      const totals = page.getByRole('region', { name: 'Totals' });
      await expect(totals.locator('ul[data-breakdown="power"] li[data-state="running"]')).toBeVisible();
      await expect(totals.locator('ul[data-breakdown="health"] li').first()).toBeVisible();
      await expect(page.locator('[data-stat="failed"] a')).toHaveAttribute('href', /^\/activity\?result=failed&since=/);
      await expect(page.locator(`article.card[data-scale-set="${FLEET}"] [data-fact="capacity"]`)).toHaveText('2 instances');
      await page.screenshot({ path: testInfo.outputPath('overview-no-js.png'), fullPage: true });
    });
  });
});
