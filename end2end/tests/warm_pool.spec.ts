import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { createSet, ensureReader, newApi, removeSet, smallSet, waitForHydration, watchErrors } from './support';

// The warm pool in the portal: the Settings tab's editor (refusals at their field, save,
// remove; with JavaScript and without), and the Instances tab's panel, which shows the
// size's arithmetic and the members, kept out of the instances table. Signed in as the test
// identity (the global set-up), and as a Reader, who may look but not change.

const SET = 'e2e-warm-pool';
const READER = 'e2e-warm-reader';
const READER_PASSWORD = 'e2e-warm-reader-password';

type Member = { id: string; warm_pool_state: string | null; warm_prepared_at: string | null };

async function stored(api: APIRequestContext) {
  const res = await api.get(`/api/v1/scale-sets/${SET}`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).warm_pool;
}

async function members(api: APIRequestContext): Promise<Member[]> {
  const res = await api.get(`/api/v1/scale-sets/${SET}/warm-pool`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).items;
}

const editor = (page: Page) => page.locator('form[data-form="warm-pool"]');
const sizing = (page: Page) => page.locator('[data-warm-pool="sizing"]');
const panel = (page: Page) => page.locator('section[data-section="warm-pool"]');
const instanceRows = (page: Page) => page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr');
const memberRows = (page: Page) => page.getByRole('table', { name: 'Warm pool members' }).locator('tbody tr');

test.describe('warm pool', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await ensureReader(api, READER, READER_PASSWORD);
    const spec = { ...smallSet(SET, 1), warm_pool: { min_size: 2, pool_state: 'paused' } };
    await createSet(api, spec);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, SET);
    await api.dispose();
  });

  test('the editor refuses at the field, saves, and the instances tab shows the pool', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/settings`);
    await waitForHydration(page);
    const form = editor(page);
    await expect(form.getByLabel('Min size')).toHaveValue('2');
    await expect(form.getByLabel('Max prepared capacity')).toHaveValue('');
    await expect(form.getByLabel('Pool state')).toHaveValue('paused');
    await expect(form.getByLabel('Reuse on scale-in')).not.toBeChecked();
    await expect(sizing(page)).toContainText('max(min_size 2, capacity 1 − capacity 1) = 2');

    // Out of bounds: refused at its field (422), the value kept there, and nothing stored.
    await form.getByLabel('Min size').fill('10001');
    const refused = page.waitForResponse((r) => r.url().includes('/_fn/save-warm-pool'));
    await form.getByRole('button', { name: 'Save' }).click();
    expect((await refused).status()).toBe(422);
    await expect(page.locator('[data-error="warm_pool.min_size"]')).toContainText('must be between 0 and 10000');
    await expect(form.getByLabel('Min size')).toHaveValue('10001');
    await expect(sizing(page)).toContainText('max(min_size 2, capacity 1 − capacity 1) = 2');
    expect((await stored(api)).min_size).toBe(2);
    await page.screenshot({ path: testInfo.outputPath('warm-pool-refused.png'), fullPage: true });

    await form.getByLabel('Min size').fill('1');
    await form.getByLabel('Max prepared capacity').fill('4');
    await form.getByRole('button', { name: 'Save' }).click();
    await expect(page.locator('[data-state="warm-pool-saved"]')).toHaveText('Saved.');
    await expect(sizing(page)).toContainText('max(min_size 1, max prepared 4 − capacity 1) = 3');
    await expect(page.locator('[data-error="warm_pool.min_size"]')).toBeEmpty();
    expect(await stored(api)).toEqual({ min_size: 1, max_prepared_capacity: 4, pool_state: 'paused', reuse_on_scale_in: false });

    // The Instances tab: the arithmetic, then three prepared members, none of them in the
    // instances table.
    await page.getByRole('navigation', { name: 'Scale set sections' }).getByRole('link', { name: 'Instances' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances$`));
    await expect(panel(page).locator('[data-warm-pool="explanation"]')).toHaveText(
      'max(min_size 1, max prepared 4 − capacity 1) = 3',
    );
    await expect(memberRows(page)).toHaveCount(3, { timeout: 90_000 });
    await expect(panel(page).locator('[data-warm-pool="members"]')).toHaveText('3 prepared, 0 being prepared', {
      timeout: 90_000,
    });
    for (const cell of await memberRows(page).locator('[data-cell="pool-state"]').all()) {
      await expect(cell).toHaveText('paused');
    }
    await expect(instanceRows(page)).toHaveCount(1);
    const ids = (await members(api)).map((m) => m.id);
    expect(ids).toHaveLength(3);
    for (const id of ids) {
      await expect(page.locator(`tr[data-member="${id}"]`)).toHaveCount(1);
      await expect(page.locator(`tr[data-instance="${id}"]`)).toHaveCount(0);
    }
    await page.screenshot({ path: testInfo.outputPath('warm-pool-panel.png'), fullPage: true });

    // Removed: the editor says so, and the panel says there is no pool until its members
    // are gone, then leaves.
    await page.goto(`/scale-sets/${SET}/settings`);
    await waitForHydration(page);
    await editor(page).getByRole('button', { name: 'Remove' }).click();
    await expect(page.locator('[data-state="warm-pool-saved"]')).toContainText('Warm pool removed');
    await expect(sizing(page)).toHaveText('No warm pool: scale-out creates every instance.');
    await expect(editor(page).getByRole('button', { name: 'Remove' })).toBeDisabled();
    expect(await stored(api)).toBeNull();
    await page.goto(`/scale-sets/${SET}/instances`);
    await waitForHydration(page);
    const seen: string[] = [];
    await expect
      .poll(
        async () => {
          const [text] = await panel(page).locator('[data-warm-pool="explanation"]').allTextContents();
          seen.push(text ?? 'gone');
          return text ?? 'gone';
        },
        { timeout: 60_000 },
      )
      .toBe('gone');
    for (const text of seen.filter((t) => t !== 'gone')) expect(text).toContain('no warm pool');
    expect(await members(api)).toEqual([]);
    await expect(instanceRows(page)).toHaveCount(1);
    expect(errors).toEqual([]);
  });

  test('a Reader sees the pool and the editor, and may change nothing', async ({ browser }) => {
    test.setTimeout(120_000);
    const res = await api.patch(`/api/v1/scale-sets/${SET}`, {
      data: { warm_pool: { min_size: 1, pool_state: 'stopped' } },
    });
    expect(res.status(), await res.text()).toBe(200);
    const context = await browser.newContext({ storageState: { cookies: [], origins: [] } });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto('/login');
    await page.getByLabel('User name').fill(READER);
    await page.getByLabel('Password').fill(READER_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
    await page.goto(`/scale-sets/${SET}/settings`);
    await waitForHydration(page);
    await expect(sizing(page)).toContainText('max(min_size 1, capacity 1 − capacity 1) = 1');
    await expect(page.locator('[data-section="warm-pool"] [data-permission="denied"]')).toContainText(
      'Changing the warm pool needs the Contributor role',
    );
    await expect(editor(page).getByRole('button', { name: 'Save' })).toBeDisabled();
    await expect(editor(page).getByRole('button', { name: 'Remove' })).toBeDisabled();
    await page.goto(`/scale-sets/${SET}/instances`);
    await waitForHydration(page);
    await expect(panel(page).locator('[data-warm-pool="explanation"]')).toContainText(
      'max(min_size 1, capacity 1 − capacity 1) = 1',
    );
    await expect(memberRows(page)).toHaveCount(1, { timeout: 60_000 });
    expect(errors).toEqual([]);
    await context.close();
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the editor is a plain form: a refusal comes back at its field, a save is stored', async ({ page }) => {
      await page.goto(`/scale-sets/${SET}/settings`);
      const form = editor(page);
      await expect(form.getByLabel('Min size')).toHaveValue('1');
      await expect(form.getByLabel('Pool state')).toHaveValue('stopped');
      await form.getByLabel('Max prepared capacity').fill('many');
      await form.getByRole('button', { name: 'Save' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/settings`));
      await expect(page.locator('[data-error="warm_pool.max_prepared_capacity"]')).toContainText(
        'must be a whole number',
      );
      expect((await stored(api)).max_prepared_capacity).toBeNull();

      await form.getByLabel('Min size').fill('0');
      await form.getByLabel('Max prepared capacity').fill('2');
      await form.getByLabel('Pool state').selectOption('saved');
      await form.getByLabel('Reuse on scale-in').check();
      await form.getByRole('button', { name: 'Save' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/settings`));
      await expect(sizing(page)).toContainText('max(min_size 0, max prepared 2 − capacity 1) = 1');
      await expect(page.locator('[data-error="warm_pool.max_prepared_capacity"]')).toBeEmpty();
      expect(await stored(api)).toEqual({ min_size: 0, max_prepared_capacity: 2, pool_state: 'saved', reuse_on_scale_in: true });

      await form.getByRole('button', { name: 'Remove' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/settings`));
      await expect(sizing(page)).toHaveText('No warm pool: scale-out creates every instance.');
      expect(await stored(api)).toBeNull();
    });
  });
});
