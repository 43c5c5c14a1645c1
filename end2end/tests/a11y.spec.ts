import { test, expect, type APIRequestContext, type BrowserContext, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import net from 'node:net';
import { baseURL, cpuSetting, createSet, newApi, removeSet, smallSet, waitForHydration, waitForPoints } from './support';

// Accessibility: axe-core (WCAG 2.0 and 2.1, levels A and AA) over every page of the portal,
// in the light and in the dark theme, chosen as the header's toggle does (the
// `flotilla_theme` cookie). No violation of serious or critical impact is allowed; every
// violation found, of any impact, is printed as a table at the end. Every `<details>` is
// opened before a page is scanned, so the panels it hides (confirmations, charts' tables)
// are scanned too. One scale set carries what the pages show: instances behind a probe and
// a load balancer, a warm pool, an autoscale setting with a forecast and a shadow, demand
// with points on the charts, a lifecycle hook, and a canary waiting for approval.

const SET = 'e2e-a11y';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const THEMES = ['light', 'dark'] as const;
type Theme = (typeof THEMES)[number];

const PROBE = { protocol: 'http', port: 80, path: '/health', interval_seconds: 2, timeout_seconds: 1, unhealthy_threshold: 1 };
const HOOKS = [{ name: 'drain', transition: 'terminating', heartbeat_timeout_seconds: 60, default_result: 'continue' }];

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

interface ApiInstance {
  id: string;
  model_version: number;
  power_state: string;
  warm_pool_state: string | null;
}

interface Check {
  /** How the table names the page. */
  name: string;
  path: string;
  /** Scanned signed out (the login page). */
  signedOut?: boolean;
  /** Scanned where the check before left the page, without going anywhere (a wizard step). */
  stay?: boolean;
  /** The page has charts: it is read once they have points. */
  charts?: boolean;
  /** What to do on the page before it is scanned (a wizard step, a what-if run). */
  prepare?: (page: Page) => Promise<void>;
}

const wizardStep = (title: string) => async (page: Page) => {
  const step = page.getByRole('navigation', { name: 'Wizard steps' }).getByRole('button', { name: title });
  await step.click();
  await expect(step).toHaveAttribute('aria-current', 'step');
};

/** An instance that stays: the canary, upgraded and kept while the rollout waits. */
let instance = '';
/** Until the set's charts have points; the pages with charts come last, so that the others
 * are scanned meanwhile. */
let charted: Promise<unknown> = Promise.resolve();

const CHECKS: Check[] = [
  { name: 'login', path: '/login', signedOut: true },
  { name: 'overview', path: '/' },
  { name: 'scale sets', path: '/scale-sets' },
  { name: 'wizard: basics', path: '/scale-sets/new' },
  { name: 'wizard: instance', path: '/scale-sets/new', stay: true, prepare: wizardStep('Instance') },
  { name: 'wizard: scaling', path: '/scale-sets/new', stay: true, prepare: wizardStep('Scaling') },
  { name: 'wizard: networking', path: '/scale-sets/new', stay: true, prepare: wizardStep('Networking') },
  { name: 'wizard: health', path: '/scale-sets/new', stay: true, prepare: wizardStep('Health') },
  { name: 'wizard: review (problems)', path: '/scale-sets/new', stay: true, prepare: wizardStep('Review') },
  {
    name: 'set: instances (selected)',
    path: `/scale-sets/${SET}/instances`,
    prepare: async (page) => {
      await page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr').first().getByRole('checkbox').check();
    },
  },
  { name: 'set: upgrades', path: `/scale-sets/${SET}/upgrades` },
  { name: 'set: health', path: `/scale-sets/${SET}/health` },
  { name: 'set: load balancer', path: `/scale-sets/${SET}/load-balancer` },
  { name: 'set: activity', path: `/scale-sets/${SET}/activity` },
  { name: 'set: settings', path: `/scale-sets/${SET}/settings` },
  { name: 'console', path: `/scale-sets/${SET}/instances/@/console` },
  { name: 'set not found', path: '/scale-sets/e2e-a11y-none' },
  { name: 'activity', path: '/activity' },
  { name: 'hosts', path: '/hosts' },
  { name: 'replicas', path: '/replicas' },
  { name: 'API tokens', path: '/tokens' },
  { name: 'not found', path: '/no-such-page' },
  // With charts.
  { name: 'set: overview', path: `/scale-sets/${SET}`, charts: true },
  { name: 'set: monitoring', path: `/scale-sets/${SET}/monitoring`, charts: true },
  {
    name: 'set: monitoring (instance)',
    path: `/scale-sets/${SET}/monitoring?instance=@`,
    charts: true,
    prepare: async (page) => {
      await expect(page.locator(`[data-charts="instance"][data-instance="${instance}"]`)).toBeVisible();
    },
  },
  {
    name: 'set: scaling (what if)',
    path: `/scale-sets/${SET}/scaling`,
    charts: true,
    prepare: async (page) => {
      const lab = page.locator('[data-lab="draft"]');
      await lab.getByLabel('Load to replay').selectOption('demand-1h');
      await lab.locator('[data-action="what-if"]').click();
      await expect(lab.locator('[data-status="what-if"]')).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
    },
  },
];

interface Found {
  page: string;
  theme: Theme;
  rule: string;
  impact: string;
  nodes: number;
  /** A few of the elements, for the table. */
  targets: string[];
}
const found: Found[] = [];
const scanned: { page: string; theme: Theme }[] = [];

/** Sets `theme` as the toggle would: its cookie, which the server renders into `<html>`. */
async function chooseTheme(context: BrowserContext, theme: Theme) {
  await context.addCookies([{ name: 'flotilla_theme', value: theme, url: baseURL }]);
}

/** Goes to `path`: loaded and hydrated the first time, then followed as a link is (the
 * router renders the page in the browser; the 68 MB debug wasm is not compiled again). */
async function visit(page: Page, path: string) {
  if ((await page.locator('body[data-hydrated="true"]').count()) === 0) {
    await page.goto(path);
    await waitForHydration(page);
    return;
  }
  const target = new URL(path, baseURL);
  // A new page has a new title; another query of the same page keeps it (its check's
  // `prepare` waits for what the query shows). The title, not the heading, tells a move
  // apart: the router may patch the old page's nodes into the new one in place. Around a
  // move it clears the title and sets the new page's a moment later, as the page renders.
  const moved = new URL(page.url()).pathname !== target.pathname;
  const left = await page.title();
  await page.evaluate((href) => {
    const link = document.createElement('a');
    link.href = href;
    document.body.append(link);
    link.click();
    link.remove();
  }, path);
  await page.waitForURL((url) => url.pathname + url.search === target.pathname + target.search);
  if (moved) await page.waitForFunction((old) => /\S/.test(document.title) && document.title !== old, left);
  await expect(page.locator('main h1')).toBeVisible();
  await expect(page.getByText('Loading…', { exact: true })).toHaveCount(0);
}

async function scan(page: Page, check: Check, theme: Theme) {
  if (check.charts) {
    const points = await charted;
    if (points instanceof Error) throw points;
  }
  if (!check.stay) await visit(page, check.path.replace('@', encodeURIComponent(instance)));
  await expect(page.locator('html')).toHaveAttribute('data-theme', theme);
  if (check.prepare) await check.prepare(page);
  await page.locator('details:not([open])').evaluateAll((all) => all.forEach((d) => ((d as HTMLDetailsElement).open = true)));
  // Every chart has a text alternative: its name, the table of its figures, and — opened —
  // the table of every point.
  for (const chart of await page.locator('figure.chart').all()) {
    const name = await chart.getAttribute('data-chart');
    await expect.soft(chart.locator('svg[role="img"]'), `${name}'s name`).toHaveAttribute('aria-label', /\S/);
    const tables = chart.locator('details.chart-data table');
    await expect.soft(tables, `${name}'s tables`).toHaveCount(2);
    const points = Number(await chart.getAttribute('data-points'));
    if (points > 0) await expect.soft(tables.nth(1).locator('tbody tr').first(), `${name}'s points`).toBeVisible();
  }
  // The title again, last: around a move the router clears it and sets the new page's a
  // moment later, and a check's `prepare` may fall in between (document-title, now and
  // then). A page without a title still fails here.
  await expect(page, `${check.name}'s title`).toHaveTitle(/\S/);
  // A chart's table of points repeats one row's markup hundreds of times (a what-if
  // replays an hour): its first rows stand for the rest, which would take axe a minute.
  const result = await new AxeBuilder({ page }).withTags(TAGS).exclude('.chart-points tbody tr:nth-child(n+6)').analyze();
  scanned.push({ page: check.name, theme });
  for (const v of result.violations) {
    found.push({
      page: check.name,
      theme,
      rule: v.id,
      impact: v.impact ?? 'unknown',
      nodes: v.nodes.length,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    });
  }
  const grave = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  expect.soft(grave, `${check.name} in the ${theme} theme`).toEqual([]);
}

/** Every violation found, page by page, and the counts by impact. */
function report(): string {
  const lines = ['| page | theme | critical | serious | moderate | minor | rules (elements) |', '| --- | --- | --- | --- | --- | --- | --- |'];
  for (const { page, theme } of scanned) {
    const here = found.filter((f) => f.page === page && f.theme === theme);
    const count = (impact: string) => here.filter((f) => f.impact === impact).length;
    const rules = here.map((f) => `${f.rule} [${f.impact}] (${f.nodes})`).join(', ') || '—';
    lines.push(`| ${page} | ${theme} | ${count('critical')} | ${count('serious')} | ${count('moderate')} | ${count('minor')} | ${rules} |`);
  }
  const total = (impact: string) => found.filter((f) => f.impact === impact).length;
  lines.push(`\n${scanned.length} scans; violations (rule × page × theme): critical ${total('critical')}, serious ${total('serious')}, moderate ${total('moderate')}, minor ${total('minor')}`);
  for (const f of found) lines.push(`  ${f.theme} ${f.page}: ${f.rule} [${f.impact}] ${f.targets.join(' | ')}`);
  return lines.join('\n');
}

test.describe('accessibility', () => {
  // Not serial: the dark theme is scanned when the light one fails.
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    const port = await freePort();
    const spec = {
      ...smallSet(SET, 2),
      health_probe: PROBE,
      load_balancer: { frontends: [{ name: 'web', protocol: 'http', port }] },
      warm_pool: { min_size: 1, pool_state: 'stopped' },
      lifecycle_hooks: HOOKS,
      upgrade_policy: { mode: 'rolling', rolling: { max_batch_instance_percent: 50, max_unhealthy_instance_percent: 50, canary_instances: 1 } },
    };
    await createSet(api, spec);
    const demand = await api.put(`/api/v1/scale-sets/${SET}/demand`, { data: { pattern: 'constant', rps: 100, noise_percent: 0 } });
    expect(demand.status(), await demand.text()).toBe(200);
    const predictive = { metric: 'requests_per_second', target: 40, mode: 'forecast_only', season_seconds: 3600, model: 'auto', max_mape_percent: 50 };
    const live = cpuSetting(2, 4);
    const setting = { ...live, profiles: live.profiles.map((p) => ({ ...p, predictive })) };
    const saved = await api.put(`/api/v1/scale-sets/${SET}/autoscale`, { data: setting });
    expect(saved.status(), await saved.text()).toBe(200);
    const shadow = await api.put(`/api/v1/scale-sets/${SET}/autoscale/shadow`, { data: cpuSetting(1, 6) });
    expect(shadow.status(), await shadow.text()).toBe(200);
    // A canary upgraded, the rest waiting for an approval: the Upgrades tab's live rollout.
    const model = await api.put(`/api/v1/scale-sets/${SET}/model`, {
      data: { image: 'debian-12', vcpus: 2, memory_mib: 1024, disk_gib: 10, app_port: 80 },
    });
    expect(model.status(), await model.text()).toBe(200);
    await expect
      .poll(async () => {
        const items: ApiInstance[] = (await (await api.get(`/api/v1/scale-sets/${SET}/instances`)).json()).items;
        const canary = items.find((i) => i.model_version === 2 && i.power_state === 'running' && !i.warm_pool_state);
        instance = canary?.id ?? '';
        return instance;
      }, { timeout: 60_000 })
      .not.toBe('');
    // Not waited for here. The demand's points come within seconds; this set's CPU (a
    // rollout paused, a warm pool, autoscale) may show none for minutes.
    charted = waitForPoints(api, SET, 'demand_requests_per_second').catch((e: Error) => e);
  });

  test.afterAll(async () => {
    console.log(`\naxe-core ${TAGS.join(', ')}\n${report()}`);
    if (!api) return;
    await api.patch(`/api/v1/scale-sets/${SET}`, { data: { lifecycle_hooks: [] } });
    await removeSet(api, SET);
    await api.dispose();
  });

  for (const theme of THEMES) {
    test(`no serious or critical violation in the ${theme} theme`, async ({ browser, page, context }, testInfo) => {
      test.setTimeout(240_000);
      await page.emulateMedia({ colorScheme: theme });
      await chooseTheme(context, theme);
      const signedOut = await browser.newContext({ storageState: { cookies: [], origins: [] }, colorScheme: theme });
      await chooseTheme(signedOut, theme);
      const anonymous = await signedOut.newPage();
      for (const check of CHECKS) {
        await test.step(check.name, () => scan(check.signedOut ? anonymous : page, check, theme));
      }
      await signedOut.close();
      await testInfo.attach(`violations-${theme}.json`, {
        body: JSON.stringify(found.filter((f) => f.theme === theme), null, 2),
        contentType: 'application/json',
      });
    });
  }
});
