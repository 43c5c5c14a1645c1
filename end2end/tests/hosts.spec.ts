import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import {
  createSet,
  ensureReader,
  removeSet,
  runningInstances,
  smallSet,
  waitForHydration,
  watchErrors,
  newApi,
} from './support';

// Where VMs run: the Hosts page (the mock's zones and simulated hosts; libvirt hosts are
// covered by the black-box tests) with host maintenance started and ended from it (with
// JavaScript and without; a Reader is offered neither), and an instance's console log,
// reached from the Instances tab; and where the control plane runs: the Replicas page
// (several replicas are covered by the black-box tests).

const SET = 'e2e-console';

test('the hosts page shows the backend and its zones', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Hosts' }).click();
  await expect(page).toHaveURL(/\/hosts$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Hosts');
  await expect(page.locator('[data-backend-kind]')).toHaveText('mock');
  const zones = page.getByRole('table', { name: 'Zones' }).locator('tbody tr');
  await expect(zones).toHaveCount(3);
  await expect(zones.first()).toContainText('available');
  await expect(page.locator('[data-images]')).toContainText('debian-12');
  expect(errors).toEqual([]);
});

test('an instance console opens from the instances tab', async ({ page }) => {
  test.setTimeout(120_000);
  const api = await newApi();
  await removeSet(api, SET);
  const created = await api.post('/api/v1/scale-sets', { data: smallSet(SET, 1) });
  expect(created.status(), await created.text()).toBe(201);
  await expect.poll(() => runningInstances(api, SET), { timeout: 60_000 }).toBe(1);
  const errors = watchErrors(page);
  await page.goto(`/scale-sets/${SET}/instances`);
  await waitForHydration(page);
  const row = page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr').first();
  const id = (await row.getAttribute('data-instance'))!;
  await row.getByRole('link', { name: `Console of ${id}` }).click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances/${id}/console$`));
  const output = page.getByLabel('Console output');
  await expect(output).toContainText(`${id} — a simulated VM of scale set ${SET}`);
  await expect(output).toContainText('power state: running');
  // Refresh reads it again (a server function call, no reload).
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/console'));
  await page.getByRole('button', { name: 'Refresh' }).click();
  expect((await answer).status()).toBe(200);
  expect(errors).toEqual([]);
  await removeSet(api, SET);
  await api.dispose();
});

test('the replicas page shows the replica that answered leading, live', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Replicas' }).click();
  await expect(page).toHaveURL(/\/replicas$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Replicas');
  const rows = page.getByRole('table', { name: 'Replicas' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute('data-leader', 'true');
  await expect(rows.first()).toContainText('this replica');
  await expect(rows.first()).toContainText(/leader \(generation \d+, lease until/);
  // Refreshed in place: the lease's expiry moves on with each renewal (every 4 s).
  const before = await rows.first().locator('td').first().textContent();
  await expect.poll(() => rows.first().locator('td').first().textContent(), { timeout: 15_000 }).not.toBe(before);
  expect(errors).toEqual([]);
});

// Host maintenance: an Owner (the test identity) closes a host from the page, watches its
// instances move off it by surge until it is empty, and returns it; the same as a plain form;
// and a Reader is offered neither. The mock has one simulated host per zone × fault domain.

const MAINTAINED = 'e2e-maintenance';
const MAINTENANCE_READER = 'e2e-hosts-reader';
const MAINTENANCE_READER_PASSWORD = 'e2e-hosts-reader-password';

type Placed = { id: string; zone: string; fault_domain: number; power_state: string };

/** The hosts closed now, by name, through the REST API. */
async function closedHosts(api: APIRequestContext): Promise<string[]> {
  const res = await api.get('/api/v1/backend');
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).maintenance.map((m: { host: string }) => m.host);
}

/** Returns every closed host (a failed run may have left one). */
async function openAllHosts(api: APIRequestContext) {
  for (const host of await closedHosts(api)) {
    const res = await api.post(`/api/v1/backend/hosts/${host}/maintenance/end`);
    expect(res.ok(), await res.text()).toBe(true);
  }
}

async function placed(api: APIRequestContext): Promise<Placed[]> {
  const res = await api.get(`/api/v1/scale-sets/${MAINTAINED}/instances`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).items;
}

const hostRow = (page: Page, host: string) => page.locator(`tr[data-host="${host}"]`);
const maintenancePanel = (page: Page, host: string) => page.locator(`section[data-maintenance="${host}"]`);

test.describe('host maintenance', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await openAllHosts(api);
    await ensureReader(api, MAINTENANCE_READER, MAINTENANCE_READER_PASSWORD);
    // Three instances in zone 1: one on each of its hosts.
    await createSet(api, smallSet(MAINTAINED, 3));
  });

  test.afterAll(async () => {
    if (!api) return;
    await openAllHosts(api);
    await removeSet(api, MAINTAINED);
    await api.dispose();
  });

  test('an Owner empties a host from the page and returns it', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    const before = await placed(api);
    const onHost = before.filter((i) => i.zone === '1' && i.fault_domain === 0).map((i) => i.id);
    expect(onHost, JSON.stringify(before)).toHaveLength(1);

    await page.goto('/hosts');
    await waitForHydration(page);
    await expect(page.getByRole('table', { name: 'Hosts' }).locator('tbody tr')).toHaveCount(9);
    const row = hostRow(page, '1-fd0');
    await expect(row).toHaveAttribute('data-state', 'available');
    await expect(row.locator('[data-cell="state"]')).toHaveText('available');
    await expect(row.locator('[data-cell="vcpus"]')).toContainText('unlimited');
    await expect(row.locator('[data-cell="memory"]')).toContainText('unlimited');
    await expect(page.locator('[data-state="no-maintenance"]')).toBeVisible();

    const answer = page.waitForResponse((r) => r.url().includes('/_fn/start-maintenance'));
    await row.getByRole('button', { name: 'Start maintenance of 1-fd0' }).click();
    expect((await answer).status()).toBe(200);
    await expect(page.locator('[data-state="maintenance-done"]')).toHaveText(
      'Host 1-fd0 is under maintenance: its instances move off it.',
    );
    await expect(row).toHaveAttribute('data-state', 'maintenance');
    await expect(row.locator('[data-cell="state"]')).toHaveText('under maintenance');
    await expect(row.getByRole('button', { name: 'End maintenance of 1-fd0' })).toBeEnabled();

    // Its section: since when and by whom, how far it got, and the instance still on it
    // (while it is) with its step and why, linked to its row on the Instances tab.
    const section = maintenancePanel(page, '1-fd0');
    const summary = section.locator('[data-maintenance-summary]');
    await expect(summary).toContainText(/^Host 1-fd0 is under maintenance since \d{4}-\d\d-\d\d [\d:]{8} UTC by admin: \d+ of \d+ instances? moved/);
    const seen: string[] = [];
    await expect
      .poll(
        async () => {
          const state = (await section.getAttribute('data-state')) ?? 'gone';
          const step = await section.locator(`tr[data-instance="${onHost[0]}"]`).getAttribute('data-step', { timeout: 100 }).catch(() => null);
          if (step && !seen.some((s) => s.includes(':'))) {
            await page.screenshot({ path: testInfo.outputPath('host-moving.png'), fullPage: true });
          }
          seen.push(step ? `${state}:${step}` : state);
          return state;
        },
        { timeout: 60_000, intervals: [250] },
      )
      .toBe('empty');
    // The instance was listed while it moved, with a step the domain names.
    const steps = seen.filter((s) => s.includes(':')).map((s) => s.split(':')[1]);
    expect(steps.length, seen.join(', ')).toBeGreaterThan(0);
    for (const step of steps) expect(['waiting', 'moving', 'leaving']).toContain(step);
    await expect(summary).toContainText('is empty: it can be serviced.');
    await expect(section.getByRole('table')).toHaveCount(0);
    await page.screenshot({ path: testInfo.outputPath('host-empty.png'), fullPage: true });

    // Moved by surge: the set is whole, and nothing of it is left on the host.
    await expect.poll(() => runningInstances(api, MAINTAINED), { timeout: 30_000 }).toBe(3);
    const after = await placed(api);
    expect(after.filter((i) => i.zone === '1' && i.fault_domain === 0), JSON.stringify(after)).toEqual([]);
    expect(after.map((i) => i.id)).not.toContain(onHost[0]);

    await row.getByRole('button', { name: 'End maintenance of 1-fd0' }).click();
    await expect(page.locator('[data-state="maintenance-done"]')).toHaveText('Host 1-fd0 takes new instances again.');
    await expect(row).toHaveAttribute('data-state', 'available');
    await expect(section).toHaveCount(0);
    await expect(page.locator('[data-state="no-maintenance"]')).toBeVisible();
    expect(await closedHosts(api)).toEqual([]);
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('starting and ending are plain forms', async ({ page }) => {
      await page.goto('/hosts');
      const row = hostRow(page, '1-fd1');
      await expect(row).toHaveAttribute('data-state', 'available');
      await expect(row.locator('form[data-form="start-maintenance"] input[name="csrf"]')).toHaveCount(1);
      await row.getByRole('button', { name: 'Start maintenance of 1-fd1' }).click();
      await expect(page).toHaveURL(/\/hosts\??$/);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await expect(row).toHaveAttribute('data-state', 'maintenance');
      await expect(maintenancePanel(page, '1-fd1').locator('[data-maintenance-summary]')).toContainText(
        'Host 1-fd1 is under maintenance since',
      );
      expect(await closedHosts(api)).toEqual(['1-fd1']);

      await row.getByRole('button', { name: 'End maintenance of 1-fd1' }).click();
      await expect(page).toHaveURL(/\/hosts\??$/);
      await expect(row).toHaveAttribute('data-state', 'available');
      await expect(maintenancePanel(page, '1-fd1')).toHaveCount(0);
      expect(await closedHosts(api)).toEqual([]);
    });
  });

  test('a Reader is offered neither and the server refuses both', async ({ browser }, testInfo) => {
    // One host closed, so that both switches are there.
    const closed = await api.post('/api/v1/backend/hosts/3-fd2/maintenance');
    expect(closed.ok(), await closed.text()).toBe(true);
    const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto('/login');
    await page.getByLabel('User name').fill(MAINTENANCE_READER);
    await page.getByLabel('Password').fill(MAINTENANCE_READER_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
    await page.goto('/hosts');
    await waitForHydration(page);
    await expect(page.getByRole('table', { name: 'Hosts' }).locator('tbody tr')).toHaveCount(9);
    await expect(page.locator('main [data-permission="denied"]')).toHaveText(
      "Starting or ending a host's maintenance needs the Owner role fleet-wide.",
    );
    const buttons = page.locator('main form[method="post"] button[type="submit"]');
    await expect(buttons).toHaveCount(9);
    for (const button of await buttons.all()) {
      await expect(button).toBeDisabled();
      await expect(button).toHaveAttribute('title', /^needs the Owner role/);
    }
    await expect(hostRow(page, '3-fd2').getByRole('button', { name: 'End maintenance of 3-fd2' })).toBeDisabled();
    await expect(maintenancePanel(page, '3-fd2')).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('hosts-reader.png'), fullPage: true });

    // What the page does not offer, the server refuses too, and nothing changes.
    const token = (await page.locator('meta[name="csrf-token"]').getAttribute('content')) ?? '';
    const statuses = await page.evaluate(async (token) => {
      const post = async (endpoint: string, host: string) =>
        (
          await fetch(`/_fn/${endpoint}`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': token },
            body: `host=${host}`,
          })
        ).status;
      return [await post('start-maintenance', '1-fd0'), await post('end-maintenance', '3-fd2')];
    }, token);
    expect(statuses).toEqual([403, 403]);
    expect(await closedHosts(api)).toEqual(['3-fd2']);
    expect(errors).toEqual([]);
    await context.close();
  });
});
