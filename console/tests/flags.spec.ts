// Flags: sign in, create a flag with a split, toggle it in production while a real Python SDK
// client observes it, the matrix following a change made behind its back, a bad rule shown at
// its field with nothing saved, and history with a diff and a revert.
import { join } from "node:path";
import { expect, test } from "./support/fixtures.js";
import { expectAccessible, screenshot, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Child, PYTHON, REPO, Role, Server, eventually } from "./support/server.js";

// The tests build on each other (one server, one flag): after a failure the rest are skipped.
test.describe.configure({ mode: "serial" });

let server: Server;
let observer: Child | undefined;

test.beforeAll(async () => {
  server = await Server.start();
  await server.environments("staging", "production");
});

test.afterAll(async () => {
  await observer?.stop();
  await server?.stop();
});

test("create a flag with a split, toggle it in production while an SDK watches", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await expect(page.getByTestId("role")).toHaveText("admin");
  await expectAccessible(page, "flags (empty)");

  // Create: boolean, off everywhere, default rule a 30/70 split.
  await page.getByText("Create a flag").click();
  await page.getByLabel("Key").fill("new-checkout");
  await page.getByLabel("Description").fill("The one-page checkout");
  await page.getByLabel("Tags (comma-separated)").fill("checkout, web");
  await page.getByLabel(/Default rule/).fill("on:30, off:70");
  await page.getByRole("button", { name: "Create flag" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "new-checkout" })).toBeVisible();
  const created = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  const prod = created.environments.production!;
  expect(prod.enabled).toBe(false);
  expect(prod.defaultRule?.kind.case).toBe("split");
  if (prod.defaultRule?.kind.case === "split") {
    expect(prod.defaultRule.kind.value.entries.map((e) => [e.variant, e.weight])).toEqual([["on", 30], ["off", 70]]);
  }

  // A real SDK client in production, evaluating the flag for one user.
  const sdkToken = await server.token("checkout-service", Role.SDK, "production");
  observer = Child.spawn("observer", PYTHON, [join(REPO, "console/tests/support/observer.py"), server.grpcUrl, sdkToken, "new-checkout", "user-7"]);
  await observer.waitForLine((l) => l === "off DISABLED");

  // Toggle in production: the confirmation names the environment and needs a reason.
  await expect(page.getByTestId("env-state")).toContainText("off in production");
  await page.getByRole("button", { name: "Turn on in production" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("Turn on new-checkout in production?");
  await dialog.getByRole("button", { name: "Turn on in production" }).click();
  await expect(dialog.getByRole("alert")).toHaveText("A reason is required.");
  await dialog.getByLabel(/Reason/).fill("launch day");
  await dialog.getByRole("button", { name: "Turn on in production" }).click();
  await expect(page.getByTestId("env-state")).toContainText("on in production");
  // The SDK sees it: the split now decides (user-7 lands in one of its two entries).
  const seen = await observer.waitForLine((l) => l.endsWith(" SPLIT"));
  expect(["on SPLIT", "off SPLIT"]).toContain(seen);
  const after = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  expect(after.environments.production?.enabled).toBe(true);
  expect(after.environments.staging?.enabled).toBe(false);
  await expectAccessible(page, "flag page");
  await screenshot(page, info, "flag");
});

test("the matrix shows a change made with the API within a second", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  const cell = page.getByTestId("cell-new-checkout-staging");
  await expect(cell).toContainText("off");
  const flag = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  await server.api().admin.setFlagEnabled({ key: "new-checkout", environment: "staging", enabled: true, expectedVersion: flag.version, reason: "from the CLI" });
  await expect(cell).toContainText("on", { timeout: 1_500 });
  await expect(cell).toContainText("on 30% / off 70%");
  // Filters: text and tag.
  await page.getByLabel("Filter").fill("nothing-like-this");
  await expect(page.getByText("No flags match.")).toBeVisible();
  await page.getByLabel("Filter").fill("");
  await page.getByLabel("Tag", { exact: true }).selectOption("checkout");
  await expect(page.getByRole("link", { name: "new-checkout" })).toBeVisible();
  await expectAccessible(page, "flags matrix");
  await screenshot(page, info, "flags");
});

test("a bad rule shows the server's error at its field and changes nothing", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "new-checkout" }).click();
  const before = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  await page.getByRole("group", { name: "Environment" }).getByRole("button", { name: "production" }).click();
  await page.getByRole("button", { name: "Add rule" }).click();
  await page.getByLabel("Attribute").fill("age");
  await page.getByLabel("Operator").selectOption({ label: "lt" });
  await page.getByLabel("Values (comma-separated)").fill("eighteen");
  await page.getByRole("button", { name: "Save rules in production" }).click();
  const values = page.getByLabel("Values (comma-separated)");
  await expect(values).toHaveAttribute("aria-invalid", "true");
  await expect(page.locator("#r0c0-values-err")).toHaveText("OPERATOR_LT needs a number");
  const unchanged = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  expect(unchanged.version).toBe(before.version);
  expect(unchanged.environments.production?.rules).toEqual([]);
  await expectAccessible(page, "rule editor with an error");

  // Fixed, it saves.
  await values.fill("18");
  await page.getByLabel(/^Serves/).fill("off");
  await page.getByRole("button", { name: "Save rules in production" }).click();
  const saved = await eventually("the rule saved", async () => {
    const f = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
    return f.version > before.version ? f : undefined;
  });
  expect(saved.environments.production?.rules[0]?.clauses[0]?.attribute).toBe("age");
});

test("rule edits survive a change made elsewhere, whose version makes their save refused", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "new-checkout" }).click();
  await page.getByRole("group", { name: "Environment" }).getByRole("button", { name: "production" }).click();
  await page.getByLabel("Description").fill("adults");
  const before = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  await server.api().admin.setFlagEnabled({ key: "new-checkout", environment: "staging", enabled: false, expectedVersion: before.version, reason: "elsewhere" });
  const notice = page.getByRole("status").filter({ hasText: "The flag changed since these rules were loaded" });
  await expect(notice).toBeVisible();
  await expect(page.getByLabel("Description")).toHaveValue("adults");
  await page.getByRole("button", { name: "Save rules in production" }).click();
  await expect(page.getByRole("form", { name: "Rules in production" }).getByRole("alert")).toContainText("FailedPrecondition");
  const after = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
  expect(after.version).toBe(before.version + 1n);
  expect(after.environments.production?.rules[0]?.description).toBe("");
  await notice.getByRole("button", { name: /Discard edits/ }).click();
  await expect(notice).toHaveCount(0);
  await expect(page.getByLabel("Description")).toHaveValue("");
});

test("history shows a diff between versions and reverts", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "new-checkout" }).click();
  const history = page.getByRole("region", { name: "History" });
  await history.getByLabel("Compare").selectOption("v1");
  const diff = history.getByLabel(/Changes from v1 to v/);
  await expect(diff).toContainText('-       "enabled": false');
  await expect(diff).toContainText('+       "enabled": true');
  await screenshot(page, info, "history");
  await history.getByRole("button", { name: "Revert to v1" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("back to the start");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  const reverted = await eventually("the revert", async () => {
    const f = (await server.api().admin.getFlag({ key: "new-checkout" })).flag!;
    return f.environments.production?.enabled === false ? f : undefined;
  });
  expect(reverted.environments.production?.rules).toEqual([]);
  await expect(page.getByTestId("env-state")).toContainText("off in production");
  // The revert is this page's own write: the rule editor starts again from it.
  await expect(page.getByText("The flag changed since these rules were loaded")).toHaveCount(0);
  await expect(page.getByRole("group", { name: "Rule 1" })).toHaveCount(0);
  await expectAccessible(page, "history");
});
