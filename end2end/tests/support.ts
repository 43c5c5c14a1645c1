import { expect, type APIRequestContext, type Page } from '@playwright/test';

// What every spec shares: where the server is, error watching, hydration, and the REST
// calls that set up and clean up scale sets.

export const baseURL = process.env.FLOTILLA_E2E_URL ?? 'http://127.0.0.1:3000';

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
