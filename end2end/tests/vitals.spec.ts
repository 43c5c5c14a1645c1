import { test, expect, type APIRequestContext } from '@playwright/test';
import { createSet, newApi, removeSet, smallSet, waitForHydration } from './support';

// Largest Contentful Paint and Total Blocking Time of the overview, the scale set list and
// a scale set's Instances tab, as Chromium measures them (PerformanceObserver on
// `largest-contentful-paint` and `longtask`, registered before the page's own scripts).
// Recorded — printed and attached to the report — not judged: a timing depends on the
// machine and on the build (the suite runs the debug build; run it against `make run`'s
// release build with FLOTILLA_E2E_URL for the figures that matter).

const SET = 'e2e-vitals';

type Vitals = { fcp: number; lcp: number; tbt: number; longTasks: number };

test.describe('web vitals', () => {
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await createSet(api, smallSet(SET, 60));
  });

  test.afterAll(async () => {
    await removeSet(api, SET);
    await api.dispose();
  });

  test('LCP and TBT of the overview, the list and the instances tab', async ({ page }, testInfo) => {
    await page.addInitScript(() => {
      const w = window as unknown as { __vitals: { lcp: number; tasks: { start: number; duration: number }[] } };
      w.__vitals = { lcp: 0, tasks: [] };
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__vitals.lcp = e.startTime;
      }).observe({ type: 'largest-contentful-paint', buffered: true });
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__vitals.tasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
    const measured: Record<string, Vitals> = {};
    for (const [name, path] of [
      ['overview', '/'],
      ['scale set list', '/scale-sets'],
      ['instances tab', `/scale-sets/${SET}/instances`],
    ]) {
      await page.goto(path);
      await waitForHydration(page);
      // Quiet for a second after hydration: the main thread's work of loading is over.
      await page.waitForTimeout(1_000);
      measured[name] = await page.evaluate(() => {
        const w = window as unknown as { __vitals: { lcp: number; tasks: { start: number; duration: number }[] } };
        const fcp = performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0;
        // Total Blocking Time: what each long task after the first paint ran past 50 ms.
        const after = w.__vitals.tasks.filter((t) => t.start + t.duration > fcp);
        const tbt = after.reduce((sum, t) => sum + Math.max(0, t.duration - 50), 0);
        return { fcp, lcp: w.__vitals.lcp, tbt, longTasks: after.length };
      });
    }
    const lines = Object.entries(measured).map(
      ([name, v]) =>
        `${name.padEnd(16)} FCP ${v.fcp.toFixed(0).padStart(5)} ms  LCP ${v.lcp.toFixed(0).padStart(5)} ms  ` +
        `TBT ${v.tbt.toFixed(0).padStart(5)} ms  (${v.longTasks} long tasks)`,
    );
    console.log(['web vitals:', ...lines].join('\n'));
    await testInfo.attach('web-vitals.json', { body: JSON.stringify(measured, null, 2), contentType: 'application/json' });
    for (const v of Object.values(measured)) {
      // Measured at all: Chromium reported a paint for each page.
      expect(v.fcp).toBeGreaterThan(0);
      expect(v.lcp).toBeGreaterThan(0);
      expect(v.tbt).toBeGreaterThanOrEqual(0);
    }
  });
});
