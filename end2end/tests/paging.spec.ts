import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { createSet, newApi, removeSet, smallSet, waitForHydration, watchErrors } from './support';

// The Instances tab a page at a time: the server filters, sorts and pages the whole set
// (`?page=&limit=`), and a selection spans pages — in the browser with JavaScript, and
// without it through the pager's form post, which carries the ticked rows to the next
// page's address.

const SET = 'e2e-pages';
const TAB = `/scale-sets/${SET}/instances`;

const rows = (page: Page) => page.getByRole('table', { name: 'Instances', exact: true }).locator('tbody tr');
const toolbar = (page: Page) => page.getByRole('group', { name: 'Actions on the selected instances' });
const pager = (page: Page) => page.getByRole('navigation', { name: 'Pages of instances' });
const ids = async (page: Page) =>
  Promise.all((await rows(page).all()).map(async (r) => (await r.getAttribute('data-instance'))!));

test.describe('the instances table in pages', () => {
  test.describe.configure({ mode: 'serial' });

  let api: APIRequestContext;
  let all: string[];

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    api = await newApi();
    await createSet(api, smallSet(SET, 7));
    const listed = await (await api.get(`/api/v1/scale-sets/${SET}/instances`)).json();
    all = listed.items.map((i: { id: string; ordinal: number }) => i).sort((a: { ordinal: number }, b: { ordinal: number }) => a.ordinal - b.ordinal).map((i: { id: string }) => i.id);
    expect(all).toHaveLength(7);
  });

  test.afterAll(async () => {
    await removeSet(api, SET);
    await api.dispose();
  });

  test('pages are cut on the server, sorted and filtered over the whole set', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto(`${TAB}?limit=3`);
    await waitForHydration(page);
    expect(await ids(page)).toEqual(all.slice(0, 3));
    await expect(pager(page)).toContainText('Page 1 of 3 · 7 instances');
    await expect(pager(page).getByRole('button', { name: 'Previous' })).toBeDisabled();
    // The server sent one page: the rows of the others are nowhere in the document.
    expect(await page.content()).not.toContain(`data-instance="${all[6]}"`);

    await pager(page).getByRole('button', { name: 'Next' }).click();
    await expect(page).toHaveURL(/page=2/);
    await expect(rows(page).first()).toHaveAttribute('data-instance', all[3]);
    await pager(page).getByRole('button', { name: 'Next' }).click();
    await expect(rows(page)).toHaveCount(1);
    await expect(rows(page).first()).toHaveAttribute('data-instance', all[6]);
    await expect(pager(page).getByRole('button', { name: 'Next' })).toBeDisabled();

    // Sorting by ID descending runs over the whole set and goes back to page 1.
    await page.goto(`${TAB}?limit=3&sort=id&dir=desc&page=3`);
    expect(await ids(page)).toEqual([all[0]]);
    await page.locator('a[data-sort="zone"]').click();
    await expect(page).not.toHaveURL(/page=/);
    // A page past the end shows the last one; a filter that matches one shows one.
    await page.goto(`${TAB}?limit=3&page=99`);
    expect(await ids(page)).toEqual([all[6]]);
    await expect(pager(page)).toContainText('Page 3 of 3');
    await page.goto(`${TAB}?limit=3&q=${all[5]}`);
    expect(await ids(page)).toEqual([all[5]]);
    await expect(pager(page)).toContainText('1 of 7 instances match');
    expect(errors).toEqual([]);
  });

  test('with JavaScript the selection spans pages and the toolbar acts on all of it', async ({ page }, testInfo) => {
    const errors = watchErrors(page);
    await page.goto(`${TAB}?limit=3`);
    await waitForHydration(page);
    await rows(page).nth(0).getByRole('checkbox').check();
    await pager(page).getByRole('button', { name: 'Next' }).click();
    await expect(rows(page).first()).toHaveAttribute('data-instance', all[3]);
    await rows(page).nth(1).getByRole('checkbox').check();
    await expect(toolbar(page)).toContainText('2 selected');
    // Back on page 1 the first row is still ticked.
    await pager(page).getByRole('button', { name: 'Previous' }).click();
    await expect(rows(page).nth(0).getByRole('checkbox')).toBeChecked();
    await expect(toolbar(page)).toContainText('2 selected');

    const sent = page.waitForResponse((r) => r.url().includes('/_fn/instances-action'));
    await toolbar(page).getByRole('button', { name: 'Restart', exact: true }).click();
    const answer = await sent;
    expect(answer.status()).toBe(200);
    const restarted = (await answer.json()).updated.map((i: { id: string }) => i.id).sort();
    expect(restarted).toEqual([all[0], all[4]].sort());
    await expect(page.locator('[data-progress]')).toHaveAttribute('data-progress', '2/2', { timeout: 60_000 });
    await page.screenshot({ path: testInfo.outputPath('paging.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  test.describe('without JavaScript', () => {
    test.use({ javaScriptEnabled: false });

    test('the pager carries the ticked rows along and the toolbar acts on every page', async ({ page }) => {
      await page.goto(`${TAB}?limit=3`);
      await rows(page).nth(1).getByRole('checkbox').check();
      await pager(page).getByRole('button', { name: 'Next' }).click();
      // The next page's address carries the selection and the table's query.
      await expect(page).toHaveURL(new RegExp(`page=2.*selected=${all[1]}`));
      await expect(page).toHaveURL(/limit=3/);
      await expect(rows(page).first()).toHaveAttribute('data-instance', all[3]);
      await rows(page).nth(2).getByRole('checkbox').check();
      await pager(page).getByRole('button', { name: 'Previous' }).click();
      await expect(page).toHaveURL(new RegExp(`selected=${all[1]}%2C${all[5]}`));
      // Ticked when it was left.
      await expect(rows(page).nth(1).getByRole('checkbox')).toBeChecked();

      await toolbar(page).getByRole('button', { name: 'Stop', exact: true }).click();
      await expect
        .poll(async () => {
          const listed = await (await api.get(`/api/v1/scale-sets/${SET}/instances`)).json();
          return listed.items
            .filter((i: { desired_power: string }) => i.desired_power === 'stopped')
            .map((i: { id: string }) => i.id)
            .sort();
        })
        .toEqual([all[1], all[5]].sort());
    });
  });
});
