import fs from 'node:fs';
import path from 'node:path';
import { chromium, request, type FullConfig } from '@playwright/test';

// Before any test: signs in through the login form as the test identity and keeps the
// session (`use.storageState`: every test starts signed in), and gets an API token for the
// specs' REST set-up (`FLOTILLA_E2E_TOKEN`, read by `support.ts`'s `newApi`). The server
// runs with authentication on; the suite never turns it off.
export default async function globalSetup(config: FullConfig) {
  const use = config.projects[0].use;
  const baseURL = use.baseURL!;
  const state = use.storageState as string;
  const user = process.env.FLOTILLA_E2E_USER ?? 'admin';
  const password = process.env.FLOTILLA_E2E_PASSWORD;
  if (!password) {
    throw new Error('FLOTILLA_E2E_PASSWORD is not set: the password of the test identity (scripts/e2e.sh sets it)');
  }

  const browser = await chromium.launch(use.launchOptions);
  const page = await browser.newPage({ baseURL });
  await page.goto('/');
  // An anonymous browser is sent to the login page, and back afterwards.
  await page.waitForURL(/\/login\?next=/);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/');
  const meta = await page.locator('meta[name="csrf-token"]').getAttribute('content');
  if (!meta) throw new Error('signed in, but the page carries no CSRF token');
  fs.mkdirSync(path.dirname(state), { recursive: true });
  await page.context().storageState({ path: state });
  await browser.close();

  const api = await request.newContext({ baseURL, extraHTTPHeaders: { 'x-flotilla-request': '1' } });
  const res = await api.post('/api/v1/login', { data: { username: user, password, token_name: 'e2e' } });
  if (res.status() !== 201) throw new Error(`POST /api/v1/login: ${res.status()} ${await res.text()}`);
  process.env.FLOTILLA_E2E_TOKEN = (await res.json()).token;
  await api.dispose();
}
