// Every test's page must run cleanly: no uncaught exception and nothing logged as an error
// (a Content-Security-Policy violation, a failed load) while the test runs.
import { test as base, expect } from "@playwright/test";

/** `test` whose `page` fails the test on any page error or console error. */
export const test = base.extend({
  page: async ({ page }, use) => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    await use(page);
    expect(errors, "errors in the page").toEqual([]);
  },
});

export { expect };
