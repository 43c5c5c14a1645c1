import { expect, request, type APIRequestContext, type Page } from '@playwright/test';

// What every spec shares: where the server is, error watching, hydration, and the REST
// calls that set up and clean up scale sets.

export const baseURL = process.env.FLOTILLA_E2E_URL ?? 'http://127.0.0.1:3000';

/** The test identity's API token (the global set-up signs in for it). */
export function apiToken(): string {
  const token = process.env.FLOTILLA_E2E_TOKEN;
  if (!token) throw new Error('no FLOTILLA_E2E_TOKEN: the global set-up did not run');
  return token;
}

/** A REST client for set-up and clean-up, as a script is: it sends the test identity's
 * API token (or `token`'s) and says it is not a cross-site form (`X-Flotilla-Request: 1`),
 * which a request without a JSON body must. It carries no session cookie. */
export async function newApi(token: string = apiToken()): Promise<APIRequestContext> {
  return request.newContext({
    baseURL,
    storageState: { cookies: [], origins: [] },
    extraHTTPHeaders: { 'x-flotilla-request': '1', authorization: `Bearer ${token}` },
  });
}

/** Uncaught errors and console errors (a hydration mismatch, say); refused server-function
 * calls (409, 422) and 404 pages are expected and left out. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  return errors;
}

/** Waits until the wasm has hydrated the page (an effect marks the body). */
export async function waitForHydration(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Counts, from now on, the changes to `<main>` after which a "Loading…" placeholder (any
 * `.loading`) shows in it; read the count with `placeholdersShown`. A page read anew in the
 * background (live updates, a form's answer) keeps what it shows meanwhile: none. */
export async function countPlaceholders(page: Page) {
  await page.evaluate(() => {
    const seen = window as unknown as { placeholders: number };
    seen.placeholders = 0;
    new MutationObserver(() => {
      if (document.querySelector('main .loading')) seen.placeholders += 1;
    }).observe(document.querySelector('main')!, { childList: true, subtree: true });
  });
}

/** How many changes left a placeholder showing since `countPlaceholders`. */
export async function placeholdersShown(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { placeholders: number }).placeholders);
}

/** How many instances of `set` are running, or -1 if the set cannot be read. */
export async function runningInstances(api: APIRequestContext, set: string): Promise<number> {
  const res = await api.get(`/api/v1/scale-sets/${set}/instances`);
  if (!res.ok()) return -1;
  const body = await res.json();
  return body.items.filter((i: { power_state: string }) => i.power_state === 'running').length;
}

/** Deletes `set` if it exists (a previous run may have left it) and waits until it is gone. */
export async function removeSet(api: APIRequestContext, set: string) {
  const found = await api.get(`/api/v1/scale-sets/${set}`);
  if (found.status() === 404) return;
  await api.delete(`/api/v1/scale-sets/${set}`);
  await expect
    .poll(async () => (await api.get(`/api/v1/scale-sets/${set}`)).status(), { timeout: 60_000 })
    .toBe(404);
}

/** A small scale set's spec: `capacity` instances of a one-vCPU model in zone 1. */
export function smallSet(name: string, capacity = 1) {
  return {
    name,
    model: { image: 'debian-12', vcpus: 1, memory_mib: 1024, disk_gib: 10, app_port: 80 },
    capacity,
    zones: ['1'],
  };
}

/** Tells the mock backend to simulate `fault` (`{ kind: 'create_failure_rate', rate: 1 }`). */
export async function injectFault(api: APIRequestContext, fault: Record<string, unknown>) {
  const res = await api.post('/api/v1/backend/faults', { data: fault });
  expect(res.status(), await res.text()).toBe(204);
}

/** Clears every fault the mock backend simulates. */
export async function clearFaults(api: APIRequestContext) {
  const res = await api.delete('/api/v1/backend/faults');
  expect(res.status(), await res.text()).toBe(204);
}

/** The activity log's entries through the REST API, newest first (`query`: its filters). */
export async function activityEntries(
  api: APIRequestContext,
  query: Record<string, string>,
): Promise<{ id: number; operation: string; scale_set: string | null; result: string }[]> {
  const res = await api.get(`/api/v1/activity?${new URLSearchParams(query)}`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).items;
}

/** Creates the scale set `spec` (removing an older one of that name first) and waits until
 * `running` of its instances run. */
export async function createSet(api: APIRequestContext, spec: { name: string; capacity: number }, running = spec.capacity) {
  await removeSet(api, spec.name);
  const created = await api.post('/api/v1/scale-sets', { data: spec });
  expect(created.status(), await created.text()).toBe(201);
  await expect
    .poll(() => runningInstances(api, spec.name), { timeout: 90_000, intervals: [250, 500, 1000] })
    .toBe(running);
}

/** Waits until `metric` of `set` (or of one of its instances) has points in the last 15
 * minutes: the collector reads every 10 s by default. Answers how many. */
export async function waitForPoints(api: APIRequestContext, set: string, metric: string, instance?: string): Promise<number> {
  let count = 0;
  await expect
    .poll(
      async () => {
        const from = new Date(Date.now() - 15 * 60_000).toISOString();
        const query = new URLSearchParams({ metric, from });
        if (instance) query.set('instance', instance);
        const res = await api.get(`/api/v1/scale-sets/${set}/metrics?${query}`);
        if (!res.ok()) return 0;
        const body = await res.json();
        count = body.series[0]?.points.length ?? 0;
        return count;
      },
      { timeout: 60_000, intervals: [1000] },
    )
    .toBeGreaterThan(0);
  return count;
}

/** A CPU setting as JSON within `minimum` and `maximum`: out above 75 % CPU, in below 20 %,
 * one instance at a time. */
export function cpuSetting(minimum: number, maximum: number) {
  const rule = (operator: string, threshold: number, direction: string, window: number) => ({
    metric: 'cpu_percent',
    statistic: 'average',
    time_grain_seconds: 60,
    time_window_seconds: window,
    time_aggregation: 'average',
    operator,
    threshold,
    direction,
    type: 'change_count',
    value: 1,
    cooldown_seconds: 300,
  });
  return {
    enabled: true,
    profiles: [
      {
        name: 'default',
        capacity: { minimum, maximum, default: minimum },
        rules: [rule('greater_than', 75, 'increase', 300), rule('less_than', 20, 'decrease', 600)],
      },
    ],
  };
}

/** A fleet-wide Reader `name` (made through the REST API as an Owner would; kept if it is
 * there). */
export async function ensureReader(api: APIRequestContext, name: string, password: string) {
  const made = await api.post('/api/v1/users', { data: { name, password } });
  expect([201, 409], await made.text()).toContain(made.status());
  const role = await api.put('/api/v1/role-assignments', { data: { user: name, role: 'Reader' } });
  expect(role.ok(), await role.text()).toBe(true);
}
