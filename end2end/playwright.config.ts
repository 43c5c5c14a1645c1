import { defineConfig, devices } from '@playwright/test';

// The server under test; `cargo leptos end-to-end` or `make` starts it.
const baseURL = process.env.FLOTILLA_E2E_URL ?? 'http://127.0.0.1:3000';

// Playwright never downloads a browser here: it drives Debian's chromium.
const executablePath = process.env.FLOTILLA_E2E_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './tests',
  // Scale sets take a moment to converge; each test waits for what it needs.
  timeout: 90_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  // Screenshots and traces land here (git-ignored; CI keeps them as artifacts).
  outputDir: 'test-results',
  use: {
    baseURL,
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
