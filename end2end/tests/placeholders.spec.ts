import { test, expect } from '@playwright/test';
import {
  countPlaceholders,
  createSet,
  newApi,
  placeholdersShown,
  removeSet,
  runningInstances,
  smallSet,
  waitForHydration,
  watchErrors,
} from './support';

// Every tab of a scale set, and every live page of the fleet, stays on screen while a set
// changes under it: the reads its live updates cause replace the data in place, they never
// put the page (or a section of it) back to its "Loading…" placeholder. The scale set's
// page once held its tab in a suspense, and every read of the Instances tab's rows blanked
// the whole tab.

const SET = 'e2e-placeholders';
const TABS = ['', 'instances', 'scaling', 'upgrades', 'health', 'load-balancer', 'monitoring', 'activity', 'settings'];

const PAGES = [...TABS.map((tab) => `/scale-sets/${SET}${tab ? `/${tab}` : ''}`), '/', '/scale-sets', '/activity', '/hosts'];

test('no page goes back to its placeholder while a set scales', async ({ page }) => {
  test.setTimeout(300_000);
  const api = await newApi();
  await createSet(api, smallSet(SET, 1));
  const errors = watchErrors(page);
  let capacity = 1;
  for (const path of PAGES) {
    await page.goto(path);
    await waitForHydration(page);
    await countPlaceholders(page);
    // A change the page hears of: instances created or removed, the set's capacity, activity.
    capacity = capacity === 1 ? 2 : 1;
    const scaled = await api.put(`/api/v1/scale-sets/${SET}/capacity`, { data: { capacity } });
    expect(scaled.status(), await scaled.text()).toBe(200);
    await expect.poll(() => runningInstances(api, SET), { timeout: 60_000 }).toBe(capacity);
    // The events' reads (debounced) have come and gone.
    await page.waitForTimeout(1_500);
    expect(await placeholdersShown(page), `${path} showed "Loading…" again`).toBe(0);
  }
  expect(errors).toEqual([]);
  await removeSet(api, SET);
  await api.dispose();
});
