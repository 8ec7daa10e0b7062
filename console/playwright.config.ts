// Playwright against the real server binary (FLAGWIRE_BIN) in Debian's Chromium: browser
// downloads are blocked here, so `playwright install` is never run and the system browser is
// launched instead (@playwright/test 1.64.1 matches bookworm's chromium).
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "tests",
  // Each file starts its own server; one at a time keeps a 2-core machine responsive.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 10_000 },
  outputDir: "test-results",
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    launchOptions: { executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium" },
    viewport: { width: 1280, height: 900 },
    timezoneId: "Europe/Amsterdam",
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
});
