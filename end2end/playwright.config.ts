import path from 'node:path';
import { defineConfig, devices } from '@playwright/test';

// The server under test; `cargo leptos end-to-end` or `make` starts it. It runs with
// authentication on: the global set-up signs in as the test identity (FLOTILLA_E2E_USER,
// default `admin`, with FLOTILLA_E2E_PASSWORD) and every test starts signed in as it.
const baseURL = process.env.FLOTILLA_E2E_URL ?? 'http://127.0.0.1:3000';

/** The signed-in session every test starts with (written by `global-setup.ts`). */
export const STORAGE_STATE = path.join(__dirname, '.auth', 'session.json');

// Playwright never downloads a browser here: it drives Debian's chromium.
const executablePath = process.env.FLOTILLA_E2E_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  globalSetup: require.resolve('./global-setup'),
  // Scale sets take a moment to converge; each test waits for what it needs.
  timeout: 90_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  // One retry: the suite drives a live control plane on a loaded 2-core machine, where a
  // race in a test's waits (or the product's) now and then fails one attempt. A test that
  // passes only on its retry is reported as flaky, its first error printed by `failures.mjs`
  // at the end of the log; one that fails twice fails the run.
  retries: 1,
  // The JSON report feeds `failures.mjs`, which `scripts/e2e.sh` runs after every run.
  reporter: [
    ['list'],
    ['html', { open: 'never', outputFolder: 'playwright-report' }],
    ['json', { outputFile: 'test-results/results.json' }],
  ],
  // Screenshots and traces land here (git-ignored; CI keeps them as artifacts).
  outputDir: 'test-results',
  use: {
    baseURL,
    storageState: STORAGE_STATE,
    screenshot: 'on',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--disable-dev-shm-usage',
          ],
        },
      },
    },
  ],
});
