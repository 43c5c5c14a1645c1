import { test, expect, type APIRequestContext, type Browser, type Page } from '@playwright/test';
import { createSet, ensureReader, newApi, removeSet, smallSet, waitForHydration, watchErrors } from './support';

// Accounts in the portal: signing in and out through the login form (with and without
// JavaScript), the session's CSRF token on every change, a Reader who is offered nothing
// it may not do, and the tokens page. Every other spec runs signed in as the test identity
// (the global set-up); these start from a browser that is not signed in.

const SET = 'e2e-auth';
const READER = 'e2e-reader';
const READER_PASSWORD = 'reader-password-e2e';
const ADMIN = process.env.FLOTILLA_E2E_USER ?? 'admin';
const ADMIN_PASSWORD = process.env.FLOTILLA_E2E_PASSWORD ?? '';

/** A browser context with no session, JavaScript on or off. */
async function anonymous(browser: Browser, javaScriptEnabled = true) {
  return browser.newContext({ storageState: { cookies: [], origins: [] }, javaScriptEnabled });
}

/** Signs in through the login form of the page shown (the login page). */
async function signIn(page: Page, user: string, password: string) {
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

let api: APIRequestContext;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  test.setTimeout(180_000);
  api = await newApi();
  await createSet(api, smallSet(SET, 1));
  // The Reader, made through the REST API as an Owner would.
  await ensureReader(api, READER, READER_PASSWORD);
});

test.afterAll(async () => {
  if (!api) return;
  await removeSet(api, SET);
  await api.dispose();
});

test('sign in, scale a set, sign out', async ({ browser }, testInfo) => {
  const context = await anonymous(browser);
  const page = await context.newPage();
  const errors = watchErrors(page);

  // A page asks for a session first, and comes back to it afterwards.
  await page.goto(`/scale-sets/${SET}`);
  await expect(page).toHaveURL(new RegExp(`/login\\?next=%2Fscale-sets%2F${SET}$`));
  await expect(page.getByRole('heading', { level: 1, name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' })).toHaveCount(0);
  await signIn(page, ADMIN, ADMIN_PASSWORD);
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
  await waitForHydration(page);
  const banner = page.getByRole('banner');
  await expect(banner.locator('.account-name')).toHaveText(ADMIN);
  await expect(banner.locator('.account-role')).toHaveText('Owner');
  await expect(page.locator('meta[name="csrf-token"]')).toHaveAttribute('content', /.{16,}/);

  // A JavaScript call carries the session's CSRF token, and the server accepts it.
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/set-capacity'));
  await page.getByRole('button', { name: 'Increase capacity by one' }).click();
  const response = await answer;
  expect(response.status()).toBe(200);
  expect(response.request().headers()['x-csrf-token']).toBeTruthy();
  await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');

  // The same call without the token is refused.
  const forged = await page.evaluate(async (set) => {
    const res = await fetch('/_fn/set-capacity', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `name=${set}&delta=1`,
    });
    return res.status;
  }, SET);
  expect(forged).toBe(403);
  await page.screenshot({ path: testInfo.outputPath('signed-in.png'), fullPage: true });

  await banner.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  expect(errors).toEqual([]);
  await context.close();
});

test('a wrong password shows the error', async ({ browser }, testInfo) => {
  const context = await anonymous(browser);
  const page = await context.newPage();
  await page.goto('/login?next=%2Factivity');
  await signIn(page, READER, 'not-the-password');
  await expect(page).toHaveURL(/\/login\?error=.+&next=%2Factivity$/);
  await expect(page.locator('[data-error="login"]')).toBeVisible();
  await expect(page.locator('[data-error="login"]')).not.toBeEmpty();
  await expect(page.getByLabel('User name')).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('wrong-password.png'), fullPage: true });
  await context.close();
});

test('a Reader is offered nothing it may not do', async ({ browser }, testInfo) => {
  // Nine pages, each loaded and hydrated (about a second each with a debug build).
  test.setTimeout(180_000);
  const context = await anonymous(browser);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto('/login');
  await signIn(page, READER, READER_PASSWORD);
  await expect(page).toHaveURL(/\/$/);
  await waitForHydration(page);
  await expect(page.getByRole('banner').locator('.account-role')).toHaveText('Reader');
  // No creating: the navigation does not offer it.
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Create scale set' })).toHaveCount(0);

  await page.goto('/scale-sets');
  await waitForHydration(page);
  await expect(page.getByRole('button', { name: 'Delete selected' })).toBeDisabled();

  for (const tab of ['', '/instances', '/scaling', '/upgrades', '/health', '/load-balancer', '/settings']) {
    await page.goto(`/scale-sets/${SET}${tab}`);
    await waitForHydration(page);
    const main = page.locator('main');
    // Every button that posts to a server function, every dangerous one and every save is
    // disabled, and says why — but the instances table's pager (`go`), which changes
    // nothing and is a Reader's too.
    const changing = main.locator(
      'form[method="post"] button[type="submit"]:not([name="go"]), button.danger, [data-action="save"], [data-action="check"]',
    );
    const count = await changing.count();
    for (let i = 0; i < count; i++) {
      const button = changing.nth(i);
      await expect(button, `${tab || '/'}: ${await button.textContent()}`).toBeDisabled();
      await expect(button).toHaveAttribute('title', /^needs the (Operator|Contributor) role/);
    }
    if (tab === '' || tab === '/settings' || tab === '/instances') {
      expect(count, `${tab || '/'} has its controls`).toBeGreaterThan(0);
      await expect(main.locator('[data-permission="denied"]').first()).toContainText(/needs the (Operator|Contributor) role on this scale set/);
    }
    await page.screenshot({ path: testInfo.outputPath(`reader${tab.replace('/', '-') || '-overview'}.png`), fullPage: true });
  }
  // What the page does not offer, the server refuses too.
  const refused = await page.evaluate(async ({ set, token }) => {
    const res = await fetch('/_fn/set-capacity', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': token },
      body: `name=${set}&delta=1`,
    });
    return res.status;
  }, { set: SET, token: (await page.locator('meta[name="csrf-token"]').getAttribute('content')) ?? '' });
  expect(refused).toBe(403);
  expect(errors).toEqual([]);
  await context.close();
});

test.describe('without JavaScript', () => {
  test('signing in works and a plain form still posts', async ({ browser }, testInfo) => {
    const context = await anonymous(browser, false);
    const page = await context.newPage();
    await page.goto(`/scale-sets/${SET}`);
    await expect(page).toHaveURL(/\/login\?next=/);
    await signIn(page, ADMIN, ADMIN_PASSWORD);
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

    // The capacity form carries the session's CSRF token as a hidden field.
    await expect(page.locator('form[data-form="capacity"] input[name="csrf"]')).toHaveCount(1);
    await page.getByLabel('New capacity').fill('1');
    await page.getByRole('button', { name: 'Set capacity' }).click();
    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\??$`));
    await expect(page.locator('[data-fact="capacity"]')).toHaveText('1');
    await page.screenshot({ path: testInfo.outputPath('no-js-capacity.png'), fullPage: true });

    await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    await context.close();
  });
});

test.describe('the tokens page', () => {
  for (const javaScriptEnabled of [true, false]) {
    test(`creates a token shown once and revokes it (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async ({ browser }, testInfo) => {
      const context = await browser.newContext({ javaScriptEnabled });
      const page = await context.newPage();
      const name = `e2e-token-${javaScriptEnabled ? 'js' : 'plain'}-${Date.now()}`;
      await page.goto('/');
      await page.getByRole('banner').getByRole('link', { name: ADMIN }).click();
      await expect(page).toHaveURL(/\/tokens$/);
      await expect(page.getByRole('heading', { level: 1, name: 'API tokens' })).toBeVisible();
      if (javaScriptEnabled) await waitForHydration(page);

      await page.getByLabel('Name', { exact: true }).fill(name);
      await page.getByLabel('Role cap').selectOption('Reader');
      await page.getByLabel('Expires in (days)').fill('7');
      await page.getByRole('button', { name: 'Create token' }).click();
      const secret = page.locator('[data-secret="token"]');
      await expect(secret).toHaveText(/^flt_[0-9A-Za-z]{36}$/);
      const token = (await secret.textContent())!.trim();
      const row = page.locator(`tr[data-token="${name}"]`);
      await expect(row).toHaveAttribute('data-state', 'active');
      await expect(row).toContainText('Reader');
      await expect(row).toContainText(token.slice(0, 8));
      await page.screenshot({ path: testInfo.outputPath('token-created.png'), fullPage: true });

      // The token works, as a Reader.
      const asToken = await newApi(token);
      expect((await asToken.get(`/api/v1/scale-sets/${SET}`)).status()).toBe(200);
      expect((await asToken.put(`/api/v1/scale-sets/${SET}/capacity`, { data: { capacity: 2 } })).status()).toBe(403);

      // Never shown again.
      await page.reload();
      await expect(row).toBeVisible();
      await expect(secret).toHaveCount(0);
      expect(await page.content()).not.toContain(token);

      // Revoked: refused at once.
      await row.getByRole('button', { name: `Revoke ${name}` }).click();
      await expect(row).toHaveAttribute('data-state', 'revoked');
      await expect(row).toContainText('revoked');
      expect((await asToken.get(`/api/v1/scale-sets/${SET}`)).status()).toBe(401);
      await asToken.dispose();
      await context.close();
    });
  }
});
