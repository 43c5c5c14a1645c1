import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { removeSet, waitForHydration, watchErrors, newApi } from './support';

// The quick-create wizard at /scale-sets/new: validation in the browser with the domain's
// own rules, a draft that survives moving between steps, the JSON preview, and the create.

const SET = 'e2e-wizard';

const stepper = (page: Page) => page.getByRole('navigation', { name: 'Wizard steps' });
const stepButton = (page: Page, title: string) => stepper(page).getByRole('button', { name: title });

test.describe('the create wizard', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    api = await newApi();
    await removeSet(api, SET);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, SET);
    await api.dispose();
  });

  test('is linked from the list and the navigation', async ({ page }) => {
    await page.goto('/scale-sets');
    await waitForHydration(page);
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Create scale set' })).toBeVisible();
    await page.locator('main').getByRole('link', { name: 'Create scale set' }).click();
    await expect(page).toHaveURL(/\/scale-sets\/new$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Create scale set');
  });

  test('marks only "Create scale set" as the current page', async ({ page }) => {
    const nav = page.getByRole('navigation', { name: 'Main' });
    await page.goto('/scale-sets/new');
    await waitForHydration(page);
    await expect(nav.locator('[aria-current="page"]')).toHaveCount(1);
    await expect(nav.getByRole('link', { name: 'Create scale set' })).toHaveAttribute('aria-current', 'page');
    await expect(nav.getByRole('link', { name: 'Scale sets' })).not.toHaveAttribute('aria-current');
    // Client-side navigation moves the mark: "Scale sets" on the list.
    await nav.getByRole('link', { name: 'Scale sets' }).click();
    await expect(page).toHaveURL(/\/scale-sets$/);
    await expect(nav.locator('[aria-current="page"]')).toHaveCount(1);
    await expect(nav.getByRole('link', { name: 'Scale sets' })).toHaveAttribute('aria-current', 'page');
  });

  test('shows a field\'s error only once it was touched or its step checked', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/scale-sets/new');
    await waitForHydration(page);
    await expect(page.locator('[data-wizard="ready"]')).toBeVisible();
    const name = page.getByLabel('Name', { exact: true });
    const message = page.locator('[data-error="name"]');

    // First load: the empty name is not yet an error anywhere.
    await expect(message).toBeEmpty();
    for (const m of await page.locator('.wizard .field-error').all()) await expect(m).toBeEmpty();
    await expect(name).not.toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByText('must not be empty')).toHaveCount(0);
    await expect(stepper(page).locator('.step-problems')).toHaveCount(0);

    // Typed, then cleared: now it is.
    await name.fill('web');
    await name.fill('');
    await expect(message).toHaveText('must not be empty');
    await expect(name).toHaveAttribute('aria-invalid', 'true');

    // A fresh wizard: Next with the name untouched checks Basics.
    await page.reload();
    await waitForHydration(page);
    await expect(page.locator('[data-wizard="ready"]')).toBeVisible();
    await expect(page.locator('[data-error="name"]')).toBeEmpty();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Instance')).toHaveAttribute('aria-current', 'step');
    await expect(stepButton(page, 'Basics')).toContainText('1 to fix');
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect(stepButton(page, 'Basics')).toHaveAttribute('aria-current', 'step');
    await expect(page.locator('[data-error="name"]')).toHaveText('must not be empty');
    await expect(page.getByLabel('Name', { exact: true })).toHaveAttribute('aria-invalid', 'true');
    expect(errors).toEqual([]);
  });

  test('validates, keeps the draft, previews the JSON and creates', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    const response = await page.goto('/scale-sets/new');
    expect(response?.status()).toBe(200);
    await waitForHydration(page);
    await expect(page.locator('[data-wizard="ready"]')).toBeVisible();
    await expect(stepButton(page, 'Basics')).toHaveAttribute('aria-current', 'step');

    // Basics: an invalid name is flagged next to the field at once.
    await page.getByLabel('Name', { exact: true }).fill('Bad_Name');
    await expect(page.locator('[data-error="name"]')).not.toBeEmpty();
    await expect(page.getByLabel('Name', { exact: true })).toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByRole('checkbox', { name: 'Zone 1' })).toBeChecked();

    // Through the steps.
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Instance')).toHaveAttribute('aria-current', 'step');
    // The focus follows to the new step's heading.
    await expect(page.getByRole('heading', { level: 2, name: 'Instance' })).toBeFocused();
    await page.getByLabel('Size').selectOption({ label: '2 vCPU · 4 GiB' });
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Scaling')).toHaveAttribute('aria-current', 'step');
    await page.getByLabel('Initial capacity').fill('2');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Networking')).toHaveAttribute('aria-current', 'step');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Health')).toHaveAttribute('aria-current', 'step');
    // A probe whose timeout is not below its interval is refused by the domain's rules.
    await page.getByLabel('Health probe').check();
    await page.getByLabel('Timeout (seconds)').fill('9');
    await expect(page.locator('[data-error="health_probe.timeout_seconds"]')).not.toBeEmpty();
    await page.getByRole('button', { name: 'Next' }).click();
    await expect(stepButton(page, 'Review')).toHaveAttribute('aria-current', 'step');

    // Review: every problem, each linked back to its step; Create is blocked.
    const create = page.getByRole('button', { name: 'Create', exact: true });
    await expect(page.locator('li[data-problem="name"]')).toBeVisible();
    await expect(page.locator('li[data-problem="health_probe.timeout_seconds"]')).toBeVisible();
    await expect(create).toBeDisabled();
    await page.screenshot({ path: testInfo.outputPath('wizard-problems.png'), fullPage: true });

    await page.locator('li[data-problem="health_probe.timeout_seconds"]').getByRole('button').click();
    await expect(stepButton(page, 'Health')).toHaveAttribute('aria-current', 'step');
    await page.getByLabel('Timeout (seconds)').fill('2');

    await stepButton(page, 'Review').click();
    await page.locator('li[data-problem="name"]').getByRole('button', { name: 'Go to Basics' }).click();
    await expect(stepButton(page, 'Basics')).toHaveAttribute('aria-current', 'step');
    // The draft was kept.
    await expect(page.getByLabel('Name', { exact: true })).toHaveValue('Bad_Name');
    await page.getByLabel('Name', { exact: true }).fill(SET);
    await expect(page.locator('[data-error="name"]')).toBeEmpty();

    await stepButton(page, 'Review').click();
    await expect(page.locator('.wizard-problems')).toHaveCount(0);
    const json = page.getByLabel('JSON request');
    await expect(json).toContainText(`"name": "${SET}"`);
    await expect(json).toContainText('"capacity": 2');
    await expect(json).toContainText('"memory_mib": 4096');
    await page.screenshot({ path: testInfo.outputPath('wizard-review.png'), fullPage: true });

    const answer = page.waitForResponse((r) => r.url().includes('/_fn/create-scale-set'));
    await expect(create).toBeEnabled();
    await create.click();
    expect((await answer).status()).toBe(200);

    await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}$`));
    await expect(page.locator('[data-fact="capacity"]')).toHaveText('2');
    await expect(page.locator('[data-fact="running"]')).toHaveText('2 of 2', { timeout: 90_000 });
    expect(errors).toEqual([]);
  });

  test('shows the server refusal of a duplicate name', async ({ page }) => {
    await page.goto('/scale-sets/new');
    await waitForHydration(page);
    await page.getByLabel('Name', { exact: true }).fill(SET);
    await stepButton(page, 'Review').click();
    const answer = page.waitForResponse((r) => r.url().includes('/_fn/create-scale-set'));
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    expect((await answer).status()).toBe(409);
    await expect(page.locator('[data-error="create"]')).toContainText(SET);
    await expect(page).toHaveURL(/\/scale-sets\/new$/);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('says the wizard needs JavaScript', async ({ page }) => {
      const response = await page.goto('/scale-sets/new');
      expect(response?.status()).toBe(200);
      await expect(page.locator('[data-wizard="needs-js"]')).toBeVisible();
      // The server's page marks one navigation item and shows no field errors.
      const nav = page.getByRole('navigation', { name: 'Main' });
      await expect(nav.locator('[aria-current="page"]')).toHaveCount(1);
      await expect(nav.getByRole('link', { name: 'Create scale set' })).toHaveAttribute('aria-current', 'page');
      await expect(page.getByText('must not be empty')).toHaveCount(0);
    });
  });
});
