import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { createSet, removeSet, smallSet, waitForHydration, watchErrors, newApi } from './support';

// The Upgrades tab: the policy editor (rolling, and a bad field that saves nothing), a model
// change previewed then applied and followed live to completion, the versions and their
// comparison, a canary waiting for approval, and the Instances tab's "Upgrade to latest
// model" on one selected instance of a manual-mode set.

const ROLLING = 'e2e-upgrade';
const CANARY = 'e2e-canary';
const MANUAL = 'e2e-manual-upgrade';

const PROBE = { protocol: 'http', port: 80, path: '/health', interval_seconds: 2, timeout_seconds: 1, unhealthy_threshold: 1 };

interface Policy {
  mode: string;
  rolling: { max_batch_instance_percent: number; canary_instances: number };
}

async function storedPolicy(api: APIRequestContext, set: string): Promise<Policy> {
  const res = await api.get(`/api/v1/scale-sets/${set}`);
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).upgrade_policy;
}

async function modelVersions(api: APIRequestContext, set: string): Promise<Record<string, number>> {
  const res = await api.get(`/api/v1/scale-sets/${set}/instances`);
  expect(res.status(), await res.text()).toBe(200);
  const body = await res.json();
  return Object.fromEntries(body.items.map((i: { id: string; model_version: number }) => [i.id, i.model_version]));
}

const section = (page: Page, name: string) => page.locator(`[data-section="${name}"]`);
const current = (page: Page) => section(page, 'rollout').locator('.rollout');

async function openUpgrades(page: Page, set: string) {
  await page.goto(`/scale-sets/${set}/upgrades`);
  await waitForHydration(page);
  const tabs = page.getByRole('navigation', { name: 'Scale set sections' });
  await expect(tabs.getByRole('link', { name: 'Upgrades' })).toHaveAttribute('aria-current', 'page');
}

test.describe('upgrades', () => {
  test.describe.configure({ mode: 'serial' });
  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    const spec = { ...smallSet(ROLLING, 2), health_probe: PROBE };
    await createSet(api, spec);
  });

  test.afterAll(async () => {
    if (!api) return;
    await removeSet(api, ROLLING);
    await removeSet(api, CANARY);
    await removeSet(api, MANUAL);
    await api.dispose();
  });

  test('a rolling policy, a previewed model change, and the rollout live to completion', async ({ page }, testInfo) => {
    test.setTimeout(150_000);
    const errors = watchErrors(page);
    await openUpgrades(page, ROLLING);
    await expect(section(page, 'rollout').locator('[data-state="no-rollout"]')).toBeVisible();
    await expect(page.locator('[data-fact="model-version"]')).toHaveText('1');

    // The policy: rolling, one instance per batch.
    const policy = section(page, 'policy');
    await policy.getByLabel('Mode').selectOption('rolling');
    await policy.getByLabel('Batch size (% of capacity)').fill('50');
    await policy.getByLabel('Max unhealthy in the set (%)').fill('50');
    await policy.getByRole('button', { name: 'Save policy' }).click();
    await expect(policy.locator('[data-state="policy-saved"]')).toBeVisible();
    await expect.poll(async () => (await storedPolicy(api, ROLLING)).mode).toBe('rolling');
    await expect(page.locator('[data-fact="upgrade-mode"]')).toHaveText('rolling');

    // A new image: the preview first, two batches of one reimage each.
    const model = section(page, 'model');
    await model.getByLabel('Image').selectOption('ubuntu-24.04');
    await model.getByRole('button', { name: 'Preview' }).click();
    const plan = model.locator('.plan');
    await expect(plan.locator('[data-fact="plan-target"]')).toHaveText('2');
    await expect(plan.locator('tbody[data-batch]')).toHaveCount(2);
    await expect(plan.locator('tr[data-action="reimage"]')).toHaveCount(2);
    await expect(plan.locator('tr[data-field="image"]')).toContainText('debian-12');
    await expect(plan.locator('[data-fact="plan-expected"]')).toContainText('about');

    // Apply: the rollout runs live (no reload) to completion.
    await model.getByRole('button', { name: 'Apply' }).click();
    await expect(model.locator('[data-state="model-applied"]')).toHaveText('Stored as version 2.');
    await expect(current(page).locator('[data-fact="rollout-versions"]')).toHaveText('1 → 2');
    await expect(current(page).locator('.segments li')).toHaveCount(2);
    await expect(current(page)).toHaveAttribute('data-state', 'completed', { timeout: 90_000 });
    await expect(current(page).locator('.rollout-progress')).toHaveAttribute('data-percent', '100');
    await expect(current(page).locator('.segments li[data-segment="done"]')).toHaveCount(2);
    await expect(current(page).locator('tr[data-step="succeeded"]')).toHaveCount(2);
    expect(Object.values(await modelVersions(api, ROLLING))).toEqual([2, 2]);

    // The history lists it; the versions table has both versions; compare shows the image.
    const history = section(page, 'history');
    await expect(history.locator('tr[data-rollout]')).toHaveCount(1);
    await expect(history.locator('tr[data-rollout]').first()).toHaveAttribute('data-state', 'completed');
    const versions = section(page, 'versions');
    await expect(versions.locator('tr[data-version]')).toHaveCount(2);
    await versions.locator('[data-compare="from"]').selectOption('1');
    await versions.locator('[data-compare="to"]').selectOption('2');
    await versions.getByRole('button', { name: 'Compare' }).click();
    await expect(page).toHaveURL(/from=1&to=2/);
    await expect(versions.locator('[data-comparison="shown"] tr[data-field="image"]')).toContainText('ubuntu-24.04');
    await page.screenshot({ path: testInfo.outputPath('upgrades.png'), fullPage: true });
    // A version that does not exist is refused in place, naming it.
    await page.goto(`/scale-sets/${ROLLING}/upgrades?from=1&to=9`);
    await expect(versions.locator('[data-comparison="refused"]')).toContainText('version 9 does not exist');
    expect(errors).toEqual([]);
  });

  test('a bad field shows its error and saves nothing', async ({ page }) => {
    const errors = watchErrors(page);
    await openUpgrades(page, ROLLING);
    const policy = section(page, 'policy');
    await policy.getByLabel('Batch size (% of capacity)').fill('150');
    const message = policy.locator('[data-error="upgrade_policy.rolling.max_batch_instance_percent"]');
    await expect(message).toContainText('must be between 5 and 100, got 150');
    let sent = 0;
    page.on('request', (r) => {
      if (r.url().includes('/_fn/upgrade-policy')) sent += 1;
    });
    await policy.getByRole('button', { name: 'Save policy' }).click();
    await expect(message).toContainText('must be between 5 and 100');
    await expect(policy.locator('[data-state="policy-saved"]')).toHaveCount(0);
    expect(sent).toBe(0);
    expect((await storedPolicy(api, ROLLING)).rolling.max_batch_instance_percent).toBe(50);
    // A checkpoint row with a falling percentage is refused next to it.
    await policy.getByLabel('Batch size (% of capacity)').fill('50');
    await expect(message).toBeEmpty();
    await policy.getByRole('button', { name: 'Add checkpoint' }).click();
    await policy.getByRole('button', { name: 'Add checkpoint' }).click();
    await policy.locator('#policy-checkpoint-0-percent').fill('60');
    await policy.locator('#policy-checkpoint-1-percent').fill('40');
    await expect(policy.locator('[data-error="upgrade_policy.rolling.checkpoints[1].percent"]')).toContainText('checkpoints must rise');
    expect(errors).toEqual([]);
  });

  test('a canary waits for approval', async ({ page }) => {
    test.setTimeout(150_000);
    const errors = watchErrors(page);
    const spec = {
      ...smallSet(CANARY, 2),
      health_probe: PROBE,
      upgrade_policy: { mode: 'rolling', rolling: { max_batch_instance_percent: 50, max_unhealthy_instance_percent: 50, canary_instances: 1 } },
    };
    await createSet(api, spec);
    await openUpgrades(page, CANARY);
    const model = section(page, 'model');
    await model.getByLabel('vCPUs').fill('2');
    await model.getByRole('button', { name: 'Preview' }).click();
    await expect(model.locator('.plan tbody[data-batch="1"]')).toContainText('canary');
    await expect(model.locator('[data-fact="plan-expected"]')).toContainText('1 approval');
    await model.getByRole('button', { name: 'Apply' }).click();

    await expect(current(page).locator('[data-hold="approval"]')).toHaveText('Waiting for approval after the canary.', { timeout: 60_000 });
    await expect(current(page)).toHaveAttribute('data-state', 'paused');
    await expect(current(page).locator('.segments li[data-canary="true"]')).toHaveAttribute('data-segment', 'done');
    expect(Object.values(await modelVersions(api, CANARY)).sort()).toEqual([1, 2]);
    await section(page, 'rollout').getByRole('button', { name: 'Approve' }).click();
    await expect(current(page)).toHaveAttribute('data-state', 'completed', { timeout: 90_000 });
    await expect(current(page).locator('[data-hold]')).toHaveCount(0);
    expect(Object.values(await modelVersions(api, CANARY))).toEqual([2, 2]);
    expect(errors).toEqual([]);
  });

  test('the Instances tab upgrades one selected instance of a manual set', async ({ page }) => {
    test.setTimeout(120_000);
    const errors = watchErrors(page);
    await createSet(api, smallSet(MANUAL, 2));
    const changed = await api.put(`/api/v1/scale-sets/${MANUAL}/model`, {
      data: { image: 'debian-12', vcpus: 2, memory_mib: 1024, disk_gib: 10, app_port: 80 },
    });
    expect(changed.status(), await changed.text()).toBe(200);
    const before = await modelVersions(api, MANUAL);
    const [chosen, other] = Object.keys(before).sort();
    expect(before).toEqual({ [chosen]: 1, [other]: 1 });

    await page.goto(`/scale-sets/${MANUAL}/instances`);
    await waitForHydration(page);
    const upgrade = page.getByRole('button', { name: 'Upgrade to latest model' });
    await expect(upgrade).toBeDisabled();
    await page.getByLabel(`Select ${chosen}`).check();
    await expect(upgrade).toBeEnabled();
    await upgrade.click();
    await expect(page.locator('[data-state="upgrade-started"]')).toContainText('upgrading 1 instance to version 2');
    await expect.poll(async () => (await modelVersions(api, MANUAL))[chosen], { timeout: 60_000 }).toBe(2);
    expect((await modelVersions(api, MANUAL))[other]).toBe(1);
    // The row says it is on the latest model now; an up-to-date selection cannot upgrade.
    await expect(page.locator(`tr[data-instance="${chosen}"]`)).toContainText('latest');
    await expect(upgrade).toBeDisabled();

    // The rollout is on the Upgrades tab as a manual one.
    await page.locator('[data-state="upgrade-started"] a').click();
    await expect(current(page).locator('[data-fact="rollout-kind"]')).toHaveText('manual');
    await expect(current(page)).toHaveAttribute('data-state', 'completed', { timeout: 60_000 });
    expect(errors).toEqual([]);
  });
});
