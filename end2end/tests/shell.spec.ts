import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { baseURL, removeSet, runningInstances, smallSet, waitForHydration, watchErrors, newApi } from './support';

// The portal shell: pages render on the server, hydrate in the browser, and read fully
// without JavaScript. Scale sets are made through the REST API.

const SET = 'e2e-web';
const SPEC = {
  name: SET,
  model: { image: 'debian-12', vcpus: 2, memory_mib: 2048, disk_gib: 10, app_port: 80 },
  capacity: 2,
  zones: ['1', '2', '3'],
};

test('the overview loads and hydrates', async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  const res = await page.goto('/');
  expect(res?.status()).toBe(200);
  await waitForHydration(page);

  await expect(page).toHaveTitle(/Overview · Flotilla/);
  await expect(page.getByRole('banner')).toContainText('Flotilla');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
  await expect(nav.getByRole('link', { name: 'Scale sets' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Activity' })).toBeVisible();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(page.locator('[data-stat="scale-sets"] dd')).toHaveText(/^\d+$/);
  await expect(page.locator('[data-stat="instances"] dd')).toHaveText(/^\d+$/);

  // After hydration, navigation is client-side and fetches through a server function.
  const serverFn = page.waitForResponse((r) => r.url().includes('/_fn/activity'));
  await nav.getByRole('link', { name: 'Activity' }).click();
  expect((await serverFn).status()).toBe(200);
  await expect(page).toHaveURL(/\/activity$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Activity' })).toBeVisible();

  await page.screenshot({ path: testInfo.outputPath('overview-activity.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('the wasm is split by route: a page fetches its own chunks, the next page its own', async ({ page }) => {
  const errors = watchErrors(page);
  const wasm: string[] = [];
  page.on('response', (r) => {
    const file = new URL(r.url()).pathname.split('/').pop() ?? '';
    if (file.endsWith('.wasm')) wasm.push(file);
  });
  const fetched = (split: string) => wasm.some((f) => f.startsWith(`split___${split}_route_view_`));
  await page.goto('/');
  await waitForHydration(page);
  // The page names the overview's own split (and the chunks it shares) in preload links, so
  // the browser fetches them beside the main module instead of after it. (Leptos may name
  // them in the head too, but not on every render: see `app/src/routes.rs`.)
  await expect(page.locator('main link[rel="preload"][href*="split___overview_route_view_"]')).toHaveCount(1);
  expect(wasm).toContain('flotilla.wasm');
  expect(fetched('overview')).toBe(true);
  expect(fetched('activity')).toBe(false);

  // Navigation stays in the page (the marker survives): the Activity page is rendered by
  // the browser, from the chunk it fetched on the way.
  await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Activity' })).toBeVisible();
  await expect(page).toHaveTitle(/^Activity · Flotilla/);
  expect(fetched('activity')).toBe(true);
  // The page is live: its filter form is applied in the page too.
  await page.getByLabel('Result').selectOption('failed');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(/[?&]result=failed(&|$)/);
  expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
  // A page never visited is never downloaded, and no file twice.
  expect(fetched('scale_set_scaling')).toBe(false);
  expect(new Set(wasm).size).toBe(wasm.length);
  expect(errors).toEqual([]);
});

test('an unknown page answers 404 with a readable page', async ({ page }) => {
  const res = await page.goto('/no-such-page');
  expect(res?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1, name: 'Page not found' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Go to the overview' })).toBeVisible();
});

test.describe('a scale set made through the REST API', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await removeSet(api, SET);
    const created = await api.post('/api/v1/scale-sets', { data: SPEC });
    expect(created.status(), await created.text()).toBe(201);
    await expect
      .poll(() => runningInstances(api, SET), {
        timeout: 90_000,
        intervals: [250, 500, 1000],
        message: `both instances of ${SET} are running`,
      })
      .toBe(2);
  });

  test.afterAll(async () => {
    if (!api) return;
    const deleted = await api.delete(`/api/v1/scale-sets/${SET}`);
    expect(deleted.ok(), await deleted.text()).toBe(true);
    await api.dispose();
  });

  test('appears in the list, and its page lists two running instances', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.goto('/scale-sets');
    await waitForHydration(page);

    const table = page.getByRole('table', { name: 'Scale sets' });
    const row = table.locator(`tr[data-scale-set="${SET}"]`);
    await expect(row).toBeVisible();
    await expect(row.locator('[data-cell="instances"]')).toHaveText('2 / 2');
    await expect(row).toContainText('1, 2, 3');
    // Health summary: without a health probe, running instances count as healthy.
    await expect(row.locator('[data-cell="health"] li[data-state="healthy"]')).toHaveAttribute('data-count', '2');
    await page.screenshot({ path: testInfo.outputPath('scale-sets.png'), fullPage: true });

    // A client-side navigation: the page's data comes from the `/_fn/scale-set` server fn.
    const serverFn = page.waitForResponse((r) => r.url().includes('/_fn/scale-set'));
    await row.getByRole('link', { name: SET }).click();
    expect((await serverFn).status()).toBe(200);
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
    await expectDetail(page);
    await page.screenshot({ path: testInfo.outputPath('scale-set.png'), fullPage: true });

    // The overview shows the set's card.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
    const card = page.locator(`article[data-scale-set="${SET}"]`);
    await expect(card).toContainText('2 instances');
    await expect(card.getByRole('list', { name: `Instances of ${SET} by power state` })).toContainText('running');
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the list and the scale set page render fully', async ({ page }, testInfo) => {
      const list = await page.goto('/scale-sets');
      expect(list?.status()).toBe(200);
      const row = page.getByRole('table', { name: 'Scale sets' }).locator(`tr[data-scale-set="${SET}"]`);
      await expect(row.locator('[data-cell="instances"]')).toHaveText('2 / 2');
      // Nothing ran in the page.
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
      await page.screenshot({ path: testInfo.outputPath('scale-sets-no-js.png'), fullPage: true });

      await row.getByRole('link', { name: SET }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
      await expectDetail(page);
      await page.screenshot({ path: testInfo.outputPath('scale-set-no-js.png'), fullPage: true });

      const missing = await page.goto('/scale-sets/no-such-set');
      expect(missing?.status()).toBe(404);
      await expect(page.getByRole('heading', { level: 1, name: 'Scale set not found' })).toBeVisible();
    });
  });
});

/** The scale set page: its facts and grid, then its instances tab with two running instances. */
async function expectDetail(page: Page) {
  await expect(page.getByRole('heading', { level: 1, name: SET })).toBeVisible();
  await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');
  await expect(page.locator('[data-fact="running"]')).toHaveText('2 of 2');
  await expect(page.getByRole('table', { name: 'Instances by zone and fault domain' }).locator('a.square')).toHaveCount(2);
  await page.getByRole('navigation', { name: 'Scale set sections' }).getByRole('link', { name: 'Instances' }).click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances$`));
  const rows = page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  for (const row of await rows.all()) {
    await expect(row.getByRole('rowheader')).toHaveText(new RegExp(`^${SET}_\\d+$`));
    await expect(row.locator('[data-cell="power"]')).toHaveText('running');
  }
}

// ---- the shell: header search, theme, breadcrumbs, request ids ----

const FOUND = 'e2e-shell-found';

test.describe('the header', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    api = await newApi();
    await removeSet(api, FOUND);
    const created = await api.post('/api/v1/scale-sets', { data: smallSet(FOUND) });
    expect(created.status(), await created.text()).toBe(201);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, FOUND);
    await api.dispose();
  });

  test('search: "/" focuses it, it suggests names, and lands on the filtered list', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/activity');
    await waitForHydration(page);
    // With its list of suggestions the field is a combobox.
    const search = page.getByRole('search', { name: 'Search' }).getByRole('combobox', { name: 'Search scale sets by name' });
    await page.keyboard.press('/');
    await expect(search).toBeFocused();
    await expect(page.locator(`#scale-set-names option[value="${FOUND}"]`)).toHaveCount(1);
    await search.fill('shell-FOUND');
    await search.press('Enter');
    await expect(page).toHaveURL(/\/scale-sets\?q=shell-FOUND$/);
    const rows = page.getByRole('table', { name: 'Scale sets' }).locator('tr[data-scale-set]');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toHaveAttribute('data-scale-set', FOUND);
    await expect(page.getByRole('searchbox', { name: 'Filter by name' })).toHaveValue('shell-FOUND');
    expect(errors).toEqual([]);
  });

  test('search without JavaScript', async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto('/');
    await page.getByRole('combobox', { name: 'Search scale sets by name' }).fill(FOUND);
    await page.getByRole('search', { name: 'Search' }).getByRole('button', { name: 'Search' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets\\?q=${FOUND}$`));
    const rows = page.getByRole('table', { name: 'Scale sets' }).locator('tr[data-scale-set]');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toHaveAttribute('data-scale-set', FOUND);

    // Whatever is typed is text, never markup.
    const markup = '<img src=x id=injected>"\'';
    await page.getByRole('combobox', { name: 'Search scale sets by name' }).fill(markup);
    await page.getByRole('search', { name: 'Search' }).getByRole('button', { name: 'Search' }).click();
    await expect(rows).toHaveCount(0);
    await expect(page.locator('#injected')).toHaveCount(0);
    await expect(page.getByLabel('Filter by name')).toHaveValue(markup);
    await context.close();
  });

  test('theme: System → Light → Dark → System, applied at once and kept', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto('/scale-sets');
    await waitForHydration(page);
    const html = page.locator('html');
    const toggle = page.getByRole('banner').getByRole('button', { name: /theme/ });
    await expect(html).not.toHaveAttribute('data-theme');
    await expect(toggle).toHaveAccessibleName(/^System theme .*switch to the light theme$/);
    // No choice: the system's (dark here).
    expect(await background(page)).toBe('#12151a');

    for (const [theme, bg, next] of [
      ['light', '#f5f6f8', 'switch to the dark theme'],
      ['dark', '#12151a', 'follow your device'],
    ] as const) {
      const saved = page.waitForResponse((r) => r.url().endsWith('/_fn/theme'));
      await toggle.click();
      await expect(html).toHaveAttribute('data-theme', theme);
      expect(await background(page)).toBe(bg);
      expect((await saved).status()).toBe(200);
      await expect(toggle).toHaveAccessibleName(new RegExp(`^${theme} theme: press to ${next}`, 'i'));
      await page.reload();
      await expect(html).toHaveAttribute('data-theme', theme);
      await waitForHydration(page);
    }
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'flotilla_theme')?.value).toBe('dark');
    await page.screenshot({ path: testInfo.outputPath('dark.png'), fullPage: true });

    const cleared = page.waitForResponse((r) => r.url().endsWith('/_fn/theme'));
    await toggle.click();
    await expect(html).not.toHaveAttribute('data-theme');
    expect((await cleared).status()).toBe(200);
    await page.reload();
    await expect(html).not.toHaveAttribute('data-theme');
    expect(errors).toEqual([]);
  });

  test('theme without JavaScript', async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false, colorScheme: 'light' });
    const page = await context.newPage();
    await page.goto('/activity');
    const html = page.locator('html');
    const toggle = page.getByRole('banner').getByRole('button', { name: /theme/ });
    await expect(html).not.toHaveAttribute('data-theme');
    await toggle.click();
    // Back on the page it came from (the framework leaves an empty query behind).
    await expect(page).toHaveURL(/\/activity\??$/);
    await expect(html).toHaveAttribute('data-theme', 'light');
    await toggle.click();
    await expect(html).toHaveAttribute('data-theme', 'dark');
    await expect(page.locator('meta[name="color-scheme"]')).toHaveAttribute('content', 'dark');
    expect(await background(page)).toBe('#12151a');
    await page.goto('/scale-sets');
    await expect(html).toHaveAttribute('data-theme', 'dark');
    await context.close();
  });

  test('holds together at 1024 px, with a visible focus in both themes', async ({ page }) => {
    await page.setViewportSize({ width: 1024, height: 768 });
    for (const theme of ['light', 'dark']) {
      await page.context().addCookies([{ name: 'flotilla_theme', value: theme, url: baseURL }]);
      await page.goto('/scale-sets');
      await waitForHydration(page);
      const banner = await page.getByRole('banner').boundingBox();
      expect(banner!.height).toBeLessThan(60);
      for (const name of ['Search scale sets by name', /theme/]) {
        const box = await page.getByRole('banner').getByRole(typeof name === 'string' ? 'combobox' : 'button', { name }).boundingBox();
        expect(box!.x + box!.width).toBeLessThanOrEqual(1024);
        expect(box!.y + box!.height).toBeLessThanOrEqual(banner!.y + banner!.height);
      }
      // Tab from the top through the header and the navigation: every stop shows an outline.
      for (let i = 0; i < 8; i++) {
        await page.keyboard.press('Tab');
        const outline = await page.evaluate(() => {
          const e = document.activeElement as HTMLElement;
          const style = getComputedStyle(e);
          return { tag: e.tagName, style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
        });
        expect(outline.style, `${theme}: ${outline.tag}`).not.toBe('none');
        expect(outline.width, `${theme}: ${outline.tag}`).toBeGreaterThanOrEqual(2);
      }
    }
  });
});

test('breadcrumbs say where a page sits', async ({ page }) => {
  for (const [path, trail] of [
    ['/scale-sets', ['Overview', 'Scale sets']],
    ['/scale-sets/new', ['Overview', 'Scale sets', 'Create scale set']],
    ['/activity', ['Overview', 'Activity']],
  ] as const) {
    await page.goto(path);
    const crumbs = page.getByRole('navigation', { name: 'Breadcrumbs' }).getByRole('listitem');
    await expect(crumbs).toHaveText([...trail]);
    await expect(crumbs.last().locator('[aria-current="page"]')).toHaveText(trail[trail.length - 1]);
    await expect(crumbs.first().getByRole('link', { name: 'Overview' })).toHaveAttribute('href', '/');
  }
});

test('every response carries a request id', async ({ page }) => {
  const seen: { url: string; id: string | null }[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(baseURL)) seen.push({ url: r.url(), id: r.headers()['x-request-id'] ?? null });
  });
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Activity' })).toBeVisible();
  // The page, its stylesheet, script and wasm, and a server function.
  expect(seen.length).toBeGreaterThanOrEqual(4);
  for (const { url, id } of seen) expect(id, url).toMatch(/^[0-9a-f-]{36}$/);

  const api = await newApi();
  for (const path of ['/api/v1/scale-sets', '/api/v1/scale-sets/no-such-set', '/no-such-page', '/readyz', '/favicon.svg']) {
    const res = await api.get(path);
    expect(res.headers()['x-request-id'], path).toMatch(/^[0-9a-f-]{36}$/);
  }
  // An id set by a proxy in front is kept.
  const res = await api.get('/api/v1/scale-sets', { headers: { 'x-request-id': 'proxy-42' } });
  expect(res.headers()['x-request-id']).toBe('proxy-42');
  await api.dispose();
});

/** The page's background colour as `#rrggbb` (the `--bg` of the theme in force). */
async function background(page: Page): Promise<string> {
  return page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
}
