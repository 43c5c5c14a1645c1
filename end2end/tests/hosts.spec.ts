import { test, expect } from '@playwright/test';
import { removeSet, runningInstances, smallSet, waitForHydration, watchErrors, newApi } from './support';

// Where VMs run: the Hosts page (the mock's zones; libvirt hosts are covered by the
// black-box tests) and an instance's console log, reached from the Instances tab; and where
// the control plane runs: the Replicas page (several replicas are covered by the black-box
// tests).

const SET = 'e2e-console';

test('the hosts page shows the backend and its zones', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Hosts' }).click();
  await expect(page).toHaveURL(/\/hosts$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Hosts');
  await expect(page.locator('[data-backend-kind]')).toHaveText('mock');
  const zones = page.getByRole('table', { name: 'Zones' }).locator('tbody tr');
  await expect(zones).toHaveCount(3);
  await expect(zones.first()).toContainText('available');
  await expect(page.locator('[data-images]')).toContainText('debian-12');
  expect(errors).toEqual([]);
});

test('an instance console opens from the instances tab', async ({ page }) => {
  test.setTimeout(120_000);
  const api = await newApi();
  await removeSet(api, SET);
  const created = await api.post('/api/v1/scale-sets', { data: smallSet(SET, 1) });
  expect(created.status(), await created.text()).toBe(201);
  await expect.poll(() => runningInstances(api, SET), { timeout: 60_000 }).toBe(1);
  const errors = watchErrors(page);
  await page.goto(`/scale-sets/${SET}/instances`);
  await waitForHydration(page);
  const row = page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr').first();
  const id = (await row.getAttribute('data-instance'))!;
  await row.getByRole('link', { name: `Console of ${id}` }).click();
  await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}/instances/${id}/console$`));
  const output = page.getByLabel('Console output');
  await expect(output).toContainText(`${id} — a simulated VM of scale set ${SET}`);
  await expect(output).toContainText('power state: running');
  // Refresh reads it again (a server function call, no reload).
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/console'));
  await page.getByRole('button', { name: 'Refresh' }).click();
  expect((await answer).status()).toBe(200);
  expect(errors).toEqual([]);
  await removeSet(api, SET);
  await api.dispose();
});

test('the replicas page shows the replica that answered leading, live', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/');
  await waitForHydration(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Replicas' }).click();
  await expect(page).toHaveURL(/\/replicas$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Replicas');
  const rows = page.getByRole('table', { name: 'Replicas' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute('data-leader', 'true');
  await expect(rows.first()).toContainText('this replica');
  await expect(rows.first()).toContainText(/leader \(generation \d+, lease until/);
  // Refreshed in place: the lease's expiry moves on with each renewal (every 4 s).
  const before = await rows.first().locator('td').first().textContent();
  await expect.poll(() => rows.first().locator('td').first().textContent(), { timeout: 15_000 }).not.toBe(before);
  expect(errors).toEqual([]);
});
