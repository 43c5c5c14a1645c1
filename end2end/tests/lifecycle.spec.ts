import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import {
  countPlaceholders,
  createSet,
  newApi,
  placeholdersShown,
  removeSet,
  smallSet,
  waitForHydration,
  watchErrors,
} from './support';

// Lifecycle hooks and busy leases in the Instances tab: the tags say which hook an instance
// waits on, the toolbar's Lifecycle… ends the waits (continue, abandon) and sets a busy
// lease, with JavaScript and without.

const SET = 'e2e-hooks';
const HOOKS = [
  { name: 'register', transition: 'launching', heartbeat_timeout_seconds: 600, default_result: 'abandon' },
  { name: 'drain', transition: 'terminating', heartbeat_timeout_seconds: 600, default_result: 'continue' },
];

const rows = (page: Page) => page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr');
const row = (page: Page, id: string) => page.locator(`tr[data-instance="${id}"]`);
const sentAction = (page: Page) => page.waitForResponse((r) => r.url().includes('/_fn/instances-action'));

type Item = { id: string; lifecycle_state: string | null; lifecycle_deadline: string | null };

async function items(api: APIRequestContext): Promise<Item[]> {
  const res = await api.get(`/api/v1/scale-sets/${SET}/instances`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).items;
}

/** Waits until `n` instances wait on a hook in `state` with their clock started. */
async function waitingOn(api: APIRequestContext, state: string, n: number): Promise<string[]> {
  await expect
    .poll(async () => (await items(api)).filter((i) => i.lifecycle_state === state && i.lifecycle_deadline).length, {
      timeout: 60_000,
    })
    .toBe(n);
  return (await items(api)).filter((i) => i.lifecycle_state === state).map((i) => i.id);
}

/** Opens the toolbar's Lifecycle… panel (it stays open once opened). */
async function openLifecycle(page: Page) {
  const panel = page.locator('details[data-confirm="lifecycle"]');
  if ((await panel.getAttribute('open')) === null) await panel.locator('summary').click();
}

async function select(page: Page, ids: string[]) {
  for (const r of await rows(page).all()) {
    const id = await r.getAttribute('data-instance');
    await r.getByRole('checkbox').setChecked(ids.includes(id!));
  }
}

test.describe('lifecycle hooks in the instances tab', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    const spec = { ...smallSet(SET, 2), lifecycle_hooks: HOOKS };
    await createSet(api, spec);
    await waitingOn(api, 'launching_wait', 2);
  });

  test.afterAll(async () => {
    if (!api) return;
    // Without hooks, the set's deletion waits for nothing.
    await api.patch(`/api/v1/scale-sets/${SET}`, { data: { lifecycle_hooks: [] } });
    await removeSet(api, SET);
    await api.dispose();
  });

  test('tags show the waits; the toolbar continues, abandons and sets busy', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/instances`);
    await waitForHydration(page);
    await expect(rows(page)).toHaveCount(2);
    // The tab stays on screen across the reads each action causes. Put back to its
    // "Loading…" placeholder while they were pending (as it was, a dozen times in this
    // test), the table was gone for a moment: a tick made then was lost, and the next
    // action went to the rows ticked before.
    await countPlaceholders(page);
    const ids = await Promise.all([0, 1].map(async (n) => (await rows(page).nth(n).getAttribute('data-instance'))!));
    for (const id of ids) {
      await expect(row(page, id).locator('[data-lifecycle]')).toHaveText('launching_wait: register');
    }
    const toolbar = page.getByRole('group', { name: 'Actions on the selected instances' });

    // Continue both: they serve.
    await select(page, ids);
    await openLifecycle(page);
    const continued = sentAction(page);
    await toolbar.getByRole('button', { name: 'Continue', exact: true }).click();
    const answer = await (await continued).json();
    expect(answer.updated.map((i: Item) => i.lifecycle_state)).toEqual([null, null]);
    for (const id of ids) await expect(row(page, id).locator('[data-lifecycle]')).toHaveCount(0);

    // Busy for ten minutes: tagged.
    await select(page, [ids[0]]);
    await openLifecycle(page);
    await toolbar.getByLabel('Busy for (s)').fill('600');
    await toolbar.getByRole('button', { name: 'Set busy' }).click();
    await expect(row(page, ids[0]).locator('[data-lifecycle]')).toHaveText('busy');

    // Delete the other: it waits on the terminating hook with its VM, then Abandon ends it.
    await select(page, [ids[1]]);
    await toolbar.getByText('Delete…').click();
    await toolbar.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(row(page, ids[1]).locator('[data-lifecycle]')).toHaveText('terminating_wait: drain', {
      timeout: 30_000,
    });
    await page.screenshot({ path: testInfo.outputPath('lifecycle.png'), fullPage: true });
    await select(page, [ids[1]]);
    await openLifecycle(page);
    await toolbar.getByRole('button', { name: 'Abandon', exact: true }).click();
    await expect(rows(page)).toHaveCount(1, { timeout: 30_000 });

    // An instance that waits on nothing is refused, with why.
    await select(page, [ids[0]]);
    await openLifecycle(page);
    await toolbar.getByRole('button', { name: 'Continue', exact: true }).click();
    await expect(page.locator('[data-error="instances-action"]')).toContainText('not waiting on a lifecycle hook');
    expect(await placeholdersShown(page), 'the tab went back to its "Loading…" placeholder after an action').toBe(0);
    expect(errors).toEqual([]);
  });

  test('the settings tab adds and removes a hook, its webhook secret never shown', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/settings`);
    await waitForHydration(page);
    const table = page.getByRole('table', { name: 'Lifecycle hooks' });
    await expect(table.locator('tbody tr')).toHaveCount(2);
    const form = page.locator('form[data-form="add-hook"]');
    // A bad name is refused at its field, and nothing is added.
    await form.getByLabel('Name').fill('Bad Name');
    await form.getByRole('button', { name: 'Add hook' }).click();
    await expect(page.locator('[data-error="hook"]')).toContainText('lowercase letter');
    await expect(table.locator('tbody tr')).toHaveCount(2);
    await form.getByLabel('Name').fill('audit');
    await form.getByLabel('Transition').selectOption('terminating');
    await form.getByLabel('Timeout (s)').fill('120');
    await form.getByLabel('Default result').selectOption('continue');
    await form.getByLabel('Webhook URL (optional)').fill('https://hooks.example.com/t/s3cret-path');
    await form.getByLabel('Webhook secret (optional)').fill('k3y-value');
    await form.getByRole('button', { name: 'Add hook' }).click();
    const audit = table.locator('tr[data-hook="audit"]');
    await expect(audit).toContainText('terminating');
    await expect(audit).toContainText('https://hooks.example.com');
    // The form starts empty again: the secret is not left in the page.
    await expect(form.getByLabel('Name')).toHaveValue('');
    await expect(form.getByLabel('Webhook secret (optional)')).toHaveValue('');
    await page.screenshot({ path: testInfo.outputPath('hooks.png'), fullPage: true });
    await page.reload();
    const text = await page.content();
    expect(text).not.toContain('s3cret-path');
    expect(text).not.toContain('k3y-value');
    const stored = await (await api.get(`/api/v1/scale-sets/${SET}`)).json();
    expect(stored.lifecycle_hooks.map((h: { name: string }) => h.name)).toEqual(['register', 'drain', 'audit']);
    await waitForHydration(page);
    await page.getByRole('button', { name: 'Remove hook audit' }).click();
    await expect(table.locator('tr[data-hook="audit"]')).toHaveCount(0);
    await expect(table.locator('tbody tr')).toHaveCount(2);
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the toolbar ends a launch wait as a plain form', async ({ page }) => {
      test.setTimeout(120_000);
      const res = await api.put(`/api/v1/scale-sets/${SET}/capacity`, { data: { capacity: 2 } });
      expect(res.status(), await res.text()).toBe(200);
      const [waiting] = await waitingOn(api, 'launching_wait', 1);
      await page.goto(`/scale-sets/${SET}/instances`);
      await expect(row(page, waiting).locator('[data-lifecycle]')).toHaveText('launching_wait: register');
      await select(page, [waiting]);
      await openLifecycle(page);
      await page.getByRole('button', { name: 'Continue', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances`));
      await expect(row(page, waiting).locator('[data-lifecycle]')).toHaveCount(0);
      expect((await items(api)).every((i) => i.lifecycle_state === null)).toBe(true);
    });
  });
});
