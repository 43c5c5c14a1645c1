import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import http from 'node:http';
import net from 'node:net';
import { injectFault, removeSet, smallSet, waitForHydration, watchErrors, newApi } from './support';

// A scale set's Health & repairs and Load balancer tabs: instances probed healthy with a
// latency, an injected `unhealthy` fault showing live; the load balancer's frontend with
// its members, requests sent through it counted without a reload, a member drained and
// enabled again (with and without JavaScript); and the repair service suspending itself
// after repairs that do not help, then resumed from the banner.

const SET = 'e2e-health';
const REPAIRS = 'e2e-repairs';

// Probed every 2 s (the timeout must be shorter than the interval); one failure is enough.
const PROBE = { protocol: 'http', port: 80, path: '/health', interval_seconds: 2, timeout_seconds: 1, unhealthy_threshold: 1 };

/** A TCP port nothing listens on now, for the frontend. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One request through the frontend on `port`; answers the status code. */
function getThrough(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

interface ApiInstance {
  id: string;
  power_state: string;
  health_state: string;
}

async function instances(api: APIRequestContext, set: string): Promise<ApiInstance[]> {
  const res = await api.get(`/api/v1/scale-sets/${set}/instances`);
  if (!res.ok()) return [];
  return (await res.json()).items;
}

/** Waits until `set` has `n` instances, all running and healthy. */
async function expectHealthy(api: APIRequestContext, set: string, n: number) {
  await expect
    .poll(
      async () =>
        (await instances(api, set)).filter((i) => i.power_state === 'running' && i.health_state === 'healthy').length,
      { timeout: 90_000, intervals: [250, 500, 1000] },
    )
    .toBe(n);
}

const healthRows = (page: Page) => page.getByRole('table', { name: 'Instance health' }).locator('tbody tr');
const members = (page: Page) => page.getByRole('table', { name: 'Members of frontend web' }).locator('tbody tr');

/** Marks the page; a navigation or a reload drops the mark. */
async function markPage(page: Page) {
  await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
  return () => page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);
}

test.describe('health and load balancer tabs', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;
  let port: number;
  let ids: string[];

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await removeSet(api, SET);
    port = await freePort();
    const spec = {
      ...smallSet(SET, 2),
      health_probe: PROBE,
      load_balancer: { frontends: [{ name: 'web', protocol: 'http', port }] },
    };
    const created = await api.post('/api/v1/scale-sets', { data: spec });
    expect(created.status(), await created.text()).toBe(201);
    await expectHealthy(api, SET, 2);
    ids = (await instances(api, SET)).map((i) => i.id).sort();
  });

  test.afterAll(async () => {
    if (!api) return;
    for (const id of ids ?? []) {
      await api.post('/api/v1/backend/faults', { data: { kind: 'healthy', instance: id } });
    }
    await removeSet(api, SET);
    await api.dispose();
  });

  test('the health tab shows probes, and an unhealthy instance live', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/health`);
    await waitForHydration(page);
    const tabs = page.getByRole('navigation', { name: 'Scale set sections' }).getByRole('link');
    await expect(tabs).toHaveText([
      'Overview',
      'Instances',
      'Scaling',
      'Upgrades',
      'Health & repairs',
      'Load balancer',
      'Monitoring',
      'Activity',
      'Settings',
    ]);
    await expect(tabs.nth(4)).toHaveAttribute('aria-current', 'page');
    await expect(page.locator('[data-fact="probe"]')).toHaveText('http :80 /health');
    await expect(page.locator('[data-repairs="disabled"]')).toBeVisible();

    await expect(healthRows(page)).toHaveCount(2);
    for (const row of await healthRows(page).all()) {
      await expect(row).toHaveAttribute('data-health', 'healthy');
      await expect(row.locator('[data-cell="health"] .chip')).toHaveClass(/chip-healthy/);
      await expect(row.locator('[data-cell="latency"]')).toHaveText(/^\d+\.\d ms$/);
      await expect(row.locator('[data-cell="result"]')).toHaveText('success');
      await expect(row.locator('[data-cell="probe"]')).toHaveText('200 OK');
      await expect(row.locator('[data-cell="since"]')).toHaveText(/^\d+ (s|min)$/);
    }
    const stillSamePage = await markPage(page);

    // The fault makes the instance's /health answer 503: the next probe turns it unhealthy.
    await injectFault(api, { kind: 'unhealthy', instance: ids[0] });
    const sick = page.locator(`tr[data-instance="${ids[0]}"]`);
    await expect(sick).toHaveAttribute('data-health', 'unhealthy', { timeout: 20_000 });
    await expect(sick.locator('[data-cell="health"] .chip')).toHaveClass(/chip-unhealthy/);
    await expect(sick.locator('[data-cell="probe"]')).toContainText('503');
    await expect(sick.locator('[data-cell="result"]')).toHaveText('failure');
    await expect(page.locator(`tr[data-instance="${ids[1]}"]`)).toHaveAttribute('data-health', 'healthy');
    await page.screenshot({ path: testInfo.outputPath('health-unhealthy.png'), fullPage: true });

    await injectFault(api, { kind: 'healthy', instance: ids[0] });
    await expect(sick).toHaveAttribute('data-health', 'healthy', { timeout: 20_000 });
    expect(await stillSamePage()).toBe(true);

    // The table pages as the Instances tab's does: one row a page here, Next is a link.
    await page.goto(`/scale-sets/${SET}/health?limit=1`);
    await waitForHydration(page);
    const pager = page.getByRole('navigation', { name: 'Pages of instance health' });
    await expect(pager).toHaveAttribute('data-pages', '2');
    await expect(pager).toContainText('Page 1 of 2 · 2 instances');
    await expect(healthRows(page)).toHaveCount(1);
    await expect(healthRows(page).first()).toHaveAttribute('data-instance', ids[0]);
    await pager.getByRole('link', { name: 'Next' }).click();
    await expect(page).toHaveURL(/[?&]page=2(&|$)/);
    await expect(pager).toHaveAttribute('data-page', '2');
    await expect(healthRows(page)).toHaveCount(1);
    await expect(healthRows(page).first()).toHaveAttribute('data-instance', ids[1]);
    await expect(pager.getByRole('link', { name: 'Next' })).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('the load balancer tab counts requests and drains a member', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await expectHealthy(api, SET, 2);
    await page.goto(`/scale-sets/${SET}/load-balancer`);
    await waitForHydration(page);
    const frontend = page.locator('[data-frontend="web"]');
    await expect(frontend.locator('[data-fact="listen"]')).toHaveText(`127.0.0.1:${port}`);
    await expect(frontend.locator('[data-fact="algorithm"]')).toHaveText('round_robin');
    await expect(members(page)).toHaveCount(2, { timeout: 20_000 });
    for (const row of await members(page).all()) {
      await expect(row).toHaveAttribute('data-state', 'serving');
    }
    await expect(page.locator('[data-state="all-pooled"]')).toBeVisible();
    const stillSamePage = await markPage(page);

    // Requests through the frontend show up in the counters at the next refresh (2 s).
    const requests = frontend.locator('[data-stat="requests"]');
    const before = Number(await requests.textContent());
    for (let n = 0; n < 6; n++) expect(await getThrough(port)).toBe(200);
    await expect.poll(async () => Number(await requests.textContent()), { timeout: 10_000 }).toBeGreaterThanOrEqual(before + 6);
    await expect(frontend.locator('[data-stat="responses"]')).toContainText('2xx');
    await expect(frontend.locator('[data-stat="latency"]')).toHaveText(/\d+\.\d ms \/ \d+\.\d ms/);
    const served = async () => {
      let total = 0;
      for (const row of await members(page).all()) total += Number(await row.locator('[data-cell="requests"]').textContent());
      return total;
    };
    expect(await served()).toBeGreaterThanOrEqual(6);

    // Drain: the member stays in the pool, disabled; nothing new goes to it.
    const first = page.locator(`tr[data-member="${ids[0]}"]`);
    await first.getByRole('button', { name: `Drain ${ids[0]}` }).click();
    await expect(first).toHaveAttribute('data-state', 'disabled', { timeout: 10_000 });
    await expect(first.getByRole('button', { name: `Enable ${ids[0]}` })).toBeVisible();
    const drained = Number(await first.locator('[data-cell="requests"]').textContent());
    for (let n = 0; n < 4; n++) expect(await getThrough(port)).toBe(200);
    await expect.poll(async () => Number(await requests.textContent()), { timeout: 10_000 }).toBeGreaterThanOrEqual(before + 10);
    expect(Number(await first.locator('[data-cell="requests"]').textContent())).toBe(drained);
    await page.screenshot({ path: testInfo.outputPath('load-balancer-drained.png'), fullPage: true });

    await first.getByRole('button', { name: `Enable ${ids[0]}` }).click();
    await expect(first).toHaveAttribute('data-state', 'serving', { timeout: 10_000 });
    expect(await stillSamePage()).toBe(true);
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the drain switch is a plain form', async ({ page }) => {
      await page.goto(`/scale-sets/${SET}/load-balancer`);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      const row = page.locator(`tr[data-member="${ids[1]}"]`);
      await expect(row).toHaveAttribute('data-state', 'serving');
      const drained = page.waitForEvent('load');
      await row.getByRole('button', { name: `Drain ${ids[1]}` }).click();
      await drained;
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/load-balancer\\??$`));
      // The pool follows the record within moments; the page shows it once reloaded.
      await expect
        .poll(async () => {
          await page.reload();
          return page.locator(`tr[data-member="${ids[1]}"]`).getAttribute('data-state');
        })
        .toBe('disabled');
      // The form's answer is a navigation: reloading before it lands detaches the page.
      const loaded = page.waitForEvent('load');
      await page.locator(`tr[data-member="${ids[1]}"]`).getByRole('button', { name: `Enable ${ids[1]}` }).click();
      await loaded;
      await expect
        .poll(async () => {
          await page.reload();
          return page.locator(`tr[data-member="${ids[1]}"]`).getAttribute('data-state');
        })
        .toBe('serving');
    });
  });
});

test.describe('automatic repairs', () => {
  let api: APIRequestContext;
  let id: string;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await removeSet(api, REPAIRS);
    // Restarting does not lift an `unhealthy` fault in the mock: every repair fails, and
    // after three in a row the service suspends itself.
    const spec = {
      ...smallSet(REPAIRS, 1),
      health_probe: PROBE,
      automatic_repairs: { enabled: true, grace_period_seconds: 0, repair_action: 'restart' },
    };
    const created = await api.post('/api/v1/scale-sets', { data: spec });
    expect(created.status(), await created.text()).toBe(201);
    await expectHealthy(api, REPAIRS, 1);
    id = (await instances(api, REPAIRS))[0].id;
  });

  test.afterAll(async () => {
    if (!api) return;
    if (id) await api.post('/api/v1/backend/faults', { data: { kind: 'healthy', instance: id } });
    await removeSet(api, REPAIRS);
    await api.dispose();
  });

  test('failed repairs suspend the service, and the banner resumes it', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${REPAIRS}/health`);
    await waitForHydration(page);
    await expect(page.locator('[data-fact="repairs"]')).toHaveText('On');
    await expect(page.locator('[data-fact="repair-action"]')).toHaveText('restart');
    await expect(page.locator('[data-fact="service"]')).toHaveText('active');
    await expect(page.locator('[data-fact="limit"]')).toHaveText('at most 1 instance in repair');
    const stillSamePage = await markPage(page);

    await injectFault(api, { kind: 'unhealthy', instance: id });
    const banner = page.locator('[data-state="suspended"]');
    await expect(banner).toBeVisible({ timeout: 60_000 });
    await expect(banner).toContainText('Automatic repairs are suspended');
    await expect(banner.locator('[data-reason="suspended"]')).toContainText('repairs in a row');
    await expect(page.locator('[data-fact="service"]')).toHaveText('suspended');
    await expect(page.locator('[data-list="waiting"] li')).toContainText('repairs are suspended');
    const history = page.getByRole('table', { name: 'Repair history' });
    await expect(history.locator('tr[data-operation="instance.repair"]').first()).toContainText('restart: unhealthy since');
    await expect(history.locator('tr[data-operation="repairs.suspended"]')).toHaveCount(1);
    await expect(page.locator(`tr[data-instance="${id}"] [data-cell="repairs"]`)).not.toHaveText('0');
    await page.screenshot({ path: testInfo.outputPath('repairs-suspended.png'), fullPage: true });

    // Fixed by hand (the fault lifted); then resumed.
    await injectFault(api, { kind: 'healthy', instance: id });
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/resume-repairs'));
    await banner.getByRole('button', { name: 'Resume repairs' }).click();
    expect((await answer).status()).toBe(200);
    await expect(banner).toHaveCount(0);
    await expect(page.locator('[data-fact="service"]')).toHaveText('active');
    await expect(history.locator('tr[data-operation="repairs.resume"]')).toHaveCount(1);
    await expect(page.locator(`tr[data-instance="${id}"]`)).toHaveAttribute('data-health', 'healthy', { timeout: 20_000 });
    expect(await stillSamePage()).toBe(true);
    expect(errors).toEqual([]);
  });

  test('a set without a load balancer says how to add one', async ({ page }) => {
    await page.goto(`/scale-sets/${REPAIRS}/load-balancer`);
    await expect(page.locator('[data-state="no-load-balancer"]')).toContainText('No load balancer');
    await expect(page.locator('[data-tab="load-balancer"]')).toHaveAttribute('aria-current', 'page');
  });
});
