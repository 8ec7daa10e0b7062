// Browser-side helpers: sign in, check a page with axe-core, keep a screenshot.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { expect, type Page, type TestInfo } from "@playwright/test";
import { REPO } from "./server.js";

/** Opens the console and signs in with `token`. */
export async function signIn(page: Page, consoleUrl: string, token: string): Promise<void> {
  await page.goto(consoleUrl);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Console" })).toBeVisible();
}

/** axe-core finds no serious or critical violation on the page as it is now. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const summary = bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(summary, `axe on ${what}`).toEqual([]);
}

/** The screenshots docs/how-to/console.md shows. */
const IN_DOCS = new Set(["flags", "flag", "history", "kill", "audit", "release-rolled-back", "phone-kill"]);

/**
 * Saves a full-page screenshot as a test artifact; with FLAGWIRE_CONSOLE_SCREENSHOTS=docs, the
 * ones the guide shows also replace docs/console/<name>.png (its pictures, from a real run).
 */
export async function screenshot(page: Page, info: TestInfo, name: string): Promise<void> {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
  if (process.env.FLAGWIRE_CONSOLE_SCREENSHOTS === "docs" && IN_DOCS.has(name)) {
    const dir = join(REPO, "docs/console");
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  }
}
