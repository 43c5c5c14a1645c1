import { test, expect, type APIRequestContext } from '@playwright/test';
import { createSet, removeSet, smallSet, waitForHydration, watchErrors, newApi } from './support';

// Predictive autoscale in the editor: turned on, set and saved with a rule set that scales
// in; a bad target is shown at its field; the Load forecast panel then says how much
// history it stands on and how much it needs.

const SET = 'e2e-predictive';

test.describe('predictive autoscale', () => {
  test.describe.configure({ mode: 'serial' });
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(120_000);
    api = await newApi();
    await createSet(api, smallSet(SET, 1));
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, SET);
    await api.dispose();
  });

  test('the editor sets a forecast, refuses a bad target by field, and the forecast panel follows', async ({ page }) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}/scaling`);
    await waitForHydration(page);
    await page.getByRole('button', { name: 'Set up autoscale' }).click();
    const profile = page.locator('fieldset.profile[data-index="0"]');
    await profile.locator('[data-template="cpu"]').click();
    await page.getByLabel('Forecast the load from its history and raise the capacity ahead of it').check();
    const field = (path: string) => page.locator(`#as-profiles-0--predictive-${path}`);
    await expect(field('season_seconds')).toHaveValue('86400');
    await field('metric').selectOption('requests_per_second');
    await field('mode').selectOption('forecast_and_scale');
    await field('season_seconds').fill('3600');

    // A target of 0 is refused at the field before anything is sent, and nothing is saved.
    await field('target').fill('0');
    await page.locator('[data-action="check"]').click();
    await expect(page.getByText('Fix the problems above first: nothing was sent.')).toBeVisible();
    await expect(page.locator('[data-error="profiles[0].predictive.target"]')).toHaveText('must be a number above 0');
    await expect(field('target')).toHaveAttribute('aria-invalid', 'true');
    let stored = await (await api.get(`/api/v1/scale-sets/${SET}/autoscale`)).json();
    expect(stored).toBeNull();

    await field('target').fill('40');
    const saved = page.waitForResponse((r) => r.url().includes('/_fn/save-autoscale'));
    await page.locator('[data-action="save"]').click();
    expect((await saved).status()).toBe(200);
    stored = await (await api.get(`/api/v1/scale-sets/${SET}/autoscale`)).json();
    expect(stored.profiles[0].predictive).toEqual({
      metric: 'requests_per_second',
      target: 40,
      mode: 'forecast_and_scale',
      season_seconds: 3600,
      model: 'auto',
      max_mape_percent: 50,
    });

    // The forecast panel: not ready, saying what it needs.
    await page.reload();
    await waitForHydration(page);
    const forecast = page.locator('[data-forecasts] .forecast[data-profile="default"]');
    await expect(forecast).toHaveAttribute('data-ready', 'false');
    await expect(forecast).toContainText('a season (1 h) is needed before anything is forecast');
    await expect(forecast.locator('[data-mape]')).toHaveText('not scored yet');
    await page.locator('[data-tab="monitoring"]').click();
    await expect(page.locator('[data-forecasts] .forecast[data-profile="default"]')).toBeVisible();
    expect(errors).toEqual([]);
  });
});
