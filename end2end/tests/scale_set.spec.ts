import { test, expect, request, type APIRequestContext, type Page } from '@playwright/test';
import { baseURL, removeSet, runningInstances, waitForHydration, watchErrors } from './support';

// The scale set page changes things: its capacity form (with and without JavaScript), the
// instance actions, and live updates over Server-Sent Events (no reload).

const SET = 'e2e-scale';
const SPEC = {
  name: SET,
  model: { image: 'debian-12', vcpus: 1, memory_mib: 1024, disk_gib: 10, app_port: 80 },
  capacity: 3,
  zones: ['1', '2', '3'],
};

const rows = (page: Page) => page.getByRole('table', { name: 'Instances' }).locator('tbody tr');

/** Sets the capacity through the form and waits for the server function's answer. */
async function submitCapacity(page: Page, value: string) {
  await page.getByLabel('New capacity').fill(value);
  const answer = page.waitForResponse((r) => r.url().includes('/_fn/set-capacity'));
  await page.getByRole('button', { name: 'Set capacity' }).click();
  return answer;
}

/** Waits until the page shows `n` instances, all running, without being reloaded. */
async function expectRunning(page: Page, n: number) {
  await expect(page.locator('[data-fact="capacity"]')).toHaveText(String(n));
  await expect(rows(page)).toHaveCount(n, { timeout: 60_000 });
  await expect(page.locator('[data-fact="running"]')).toHaveText(`${n} of ${n}`, { timeout: 60_000 });
  for (const row of await rows(page).all()) {
    await expect(row.locator('[data-cell="power"]')).toHaveText('running');
  }
}

test.describe('a scale set page', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await request.newContext({ baseURL });
    await removeSet(api, SET);
    const created = await api.post('/api/v1/scale-sets', { data: SPEC });
    expect(created.status(), await created.text()).toBe(201);
    await expect
      .poll(() => runningInstances(api, SET), { timeout: 90_000, intervals: [250, 500, 1000] })
      .toBe(3);
  });

  test.afterAll(async () => {
    if (!api) return;
    const deleted = await api.delete(`/api/v1/scale-sets/${SET}`);
    expect(deleted.ok(), await deleted.text()).toBe(true);
    await api.dispose();
  });

  test('scales, acts on an instance and updates live, without reloading', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const errors = watchErrors(page);
    await page.goto(`/scale-sets/${SET}`);
    await waitForHydration(page);
    await expectRunning(page, 3);
    // A navigation or a reload would drop this marker.
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    const stillSamePage = () =>
      page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);

    // 3 → 5: the new instances appear and become running through the event stream.
    expect((await submitCapacity(page, '5')).status()).toBe(200);
    await expectRunning(page, 5);
    await page.screenshot({ path: testInfo.outputPath('scaled-to-5.png'), fullPage: true });

    // 5 → 2: the removed instances disappear.
    expect((await submitCapacity(page, '2')).status()).toBe(200);
    await expectRunning(page, 2);

    // −1 / +1.
    await page.getByRole('button', { name: 'Increase capacity by one' }).click();
    await expectRunning(page, 3);
    await page.getByRole('button', { name: 'Decrease capacity by one' }).click();
    await expectRunning(page, 2);

    // Restart one instance: the row shows the pending state, then running again.
    const row = rows(page).first();
    const id = (await row.getByRole('rowheader').textContent())!.trim();
    const restarted = page.waitForResponse((r) => r.url().includes('/_fn/instance-action'));
    await row.getByRole('button', { name: 'Restart', exact: true }).click();
    const answer = await restarted;
    expect(answer.status()).toBe(200);
    expect((await answer.json()).provisioning_state).toBe('updating');
    const same = page.locator(`tr[data-instance="${id}"]`);
    await expect(same.locator('[data-cell="provisioning"]')).toHaveText('succeeded', { timeout: 60_000 });
    await expect(same.locator('[data-cell="power"]')).toHaveText('running');

    // A refused action: restarting a stopped instance answers 409 and says why, in the row.
    await same.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(same.locator('[data-cell="power"]')).toHaveText('stopped', { timeout: 60_000 });
    const refused = page.waitForResponse((r) => r.url().includes('/_fn/instance-action'));
    await same.getByRole('button', { name: 'Restart', exact: true }).click();
    expect((await refused).status()).toBe(409);
    await expect(same.getByRole('alert')).not.toBeEmpty();
    await page.screenshot({ path: testInfo.outputPath('refused-restart.png'), fullPage: true });
    await same.getByRole('button', { name: 'Start', exact: true }).click();
    await expect(same.locator('[data-cell="power"]')).toHaveText('running', { timeout: 60_000 });

    // Reimage and delete ask first: a disclosure holds the confirming button.
    await same.getByText('Reimage…').click();
    const reimaged = page.waitForResponse((r) => r.url().includes('/_fn/instance-action'));
    await same.getByRole('button', { name: `Reimage ${id}` }).click();
    expect((await (await reimaged).json()).provisioning_state).toBe('updating');
    // Once sent, the confirmation closes.
    await expect(same.locator('details[data-confirm="reimage"]')).not.toHaveAttribute('open', '');
    await expect(same.locator('[data-cell="provisioning"]')).toHaveText('succeeded', { timeout: 60_000 });

    const doomed = (await rows(page).last().getByRole('rowheader').textContent())!.trim();
    const last = page.locator(`tr[data-instance="${doomed}"]`);
    await last.getByText('Delete…').click();
    // Live updates change rows in place: an open confirmation stays open meanwhile.
    await page.getByRole('button', { name: 'Increase capacity by one' }).click();
    await expectRunning(page, 3);
    await expect(last.locator('details[data-confirm="delete"]')).toHaveAttribute('open', '');
    const deleted = page.waitForResponse((r) => r.url().includes('/_fn/instance-action'));
    await last.getByRole('button', { name: `Delete ${doomed}` }).click();
    expect((await (await deleted).json()).provisioning_state).toBe('deleting');
    // The instance goes, and the capacity with it (as in Azure).
    await expect(last).toHaveCount(0, { timeout: 60_000 });
    await expectRunning(page, 2);

    // Bad input: the server's message next to the field, which keeps what was typed.
    const field = page.getByLabel('New capacity');
    const message = page.locator('[data-error="capacity"]');
    expect((await submitCapacity(page, '20000')).status()).toBe(422);
    await expect(message).toContainText('between 0 and 10000');
    await expect(field).toHaveValue('20000');
    await expect(field).toHaveAttribute('aria-invalid', 'true');
    await submitCapacity(page, 'lots');
    await expect(message).toContainText('whole number');
    await expect(field).toHaveValue('lots');
    await page.screenshot({ path: testInfo.outputPath('invalid-capacity.png'), fullPage: true });
    // The page stays usable: a good value clears the message.
    await submitCapacity(page, '2');
    await expect(message).toBeEmpty();
    await expect(field).not.toHaveAttribute('aria-invalid', 'true');
    await expectRunning(page, 2);

    expect(await stillSamePage()).toBe(true);
    expect(errors).toEqual([]);
  });

  test('the overview follows the fleet live', async ({ page }) => {
    await page.goto('/');
    await waitForHydration(page);
    const card = page.locator(`article[data-scale-set="${SET}"]`);
    await expect(card).toContainText('2 instances');
    const patched = await api.put(`/api/v1/scale-sets/${SET}/capacity`, { data: { capacity: 3 } });
    expect(patched.ok(), await patched.text()).toBe(true);
    await expect(card).toContainText('3 instances', { timeout: 60_000 });
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the capacity form and the instance actions still work', async ({ page }, testInfo) => {
      await page.goto(`/scale-sets/${SET}`);
      await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

      await page.getByLabel('New capacity').fill('4');
      await page.getByRole('button', { name: 'Set capacity' }).click();
      // Back on the page (server functions strip a previous error, leaving a bare `?`).
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\??$`));
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('4');

      await page.getByRole('button', { name: 'Decrease capacity by one' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\??$`));
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('3');

      // A refusal comes back in the page, next to the field, with what was typed.
      await page.getByLabel('New capacity').fill('-1');
      await page.getByRole('button', { name: 'Set capacity' }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\?`));
      await expect(page.locator('[data-error="capacity"]')).toContainText('between 0 and 10000');
      await expect(page.getByLabel('New capacity')).toHaveValue('-1');
      await expect(page.locator('[data-fact="capacity"]')).toHaveText('3');
      await page.screenshot({ path: testInfo.outputPath('capacity-no-js.png'), fullPage: true });

      // Instance actions are forms too: restart comes back to the page, the row updating.
      const row = rows(page).first();
      const id = (await row.getByRole('rowheader').textContent())!.trim();
      await row.getByRole('button', { name: 'Restart', exact: true }).click();
      await expect(page).toHaveURL(new RegExp(`/scale-sets/${SET}\\??$`));
      await expect(page.locator(`tr[data-instance="${id}"] [data-cell="provisioning"]`)).toHaveText(
        /updating|succeeded/,
      );
    });
  });
});
