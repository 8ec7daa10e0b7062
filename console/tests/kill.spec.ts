// The kill switch from the console: a flag turned off in production with a reason, the two
// connected Python SDK instances' acknowledgements counting up live, then undo; the audit log
// shows both, with diffs.
import { join } from "node:path";
import { expect, test } from "./support/fixtures.js";
import { expectAccessible, screenshot, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Child, PYTHON, REPO, Role, Server, eventually } from "./support/server.js";

test.describe.configure({ mode: "serial" });

let server: Server;
const observers: Child[] = [];

test.beforeAll(async () => {
  server = await Server.start();
  await server.environments("staging", "production");
  await server.booleanFlag("search-v2", ["production", "staging"], "on", { tags: ["search"] });
});

test.afterAll(async () => {
  for (const o of observers) await o.stop();
  await server?.stop();
});

test("kill a flag in production: acknowledgements count up, then undo", async ({ page }, info) => {
  const sdk = await server.token("search-service", Role.SDK, "production");
  for (const user of ["user-1", "user-2"]) {
    const o = Child.spawn(`observer ${user}`, PYTHON, [join(REPO, "console/tests/support/observer.py"), server.grpcUrl, sdk, "search-v2", user]);
    observers.push(o);
    await o.waitForLine((l) => l === "on STATIC");
  }
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Kill switch" }).click();
  await expectAccessible(page, "kill switch");
  await page.getByLabel("Scope").selectOption("flag");
  await page.getByLabel("Flag key").fill("search-v2");
  await page.getByLabel("Environment").selectOption("production");
  await page.getByRole("button", { name: "Kill" }).click();
  await expect(page.getByRole("alert")).toHaveText("A reason is required.");
  await page.getByLabel("Reason (required)").fill("search results are empty");
  await page.getByRole("button", { name: "Kill" }).click();

  const execution = page.getByTestId("execution");
  await expect(execution).toContainText("flag search-v2 in production");
  // Both SDK instances apply the kill and acknowledge it; the page polls, so the count fills in.
  await expect(page.getByTestId("ack-production")).toHaveText("2 of 2");
  for (const o of observers) await o.waitForLine((l) => l === "off DISABLED");
  const killed = (await server.api().admin.getFlag({ key: "search-v2" })).flag!;
  expect(killed.environments.production?.enabled).toBe(false);
  expect(killed.environments.staging?.enabled).toBe(true);
  await expectAccessible(page, "kill execution");
  await screenshot(page, info, "kill");

  await page.getByRole("button", { name: "Undo kill" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("fixed the index");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByTestId("execution-state")).toHaveText("undone");
  for (const o of observers) await o.waitForLine((l) => l === "on STATIC" && o.lines.lastIndexOf(l) > o.lines.indexOf("off DISABLED"));
  await eventually("the flag back on", async () =>
    (await server.api().admin.getFlag({ key: "search-v2" })).flag?.environments.production?.enabled ? true : undefined,
  );
});

test("SDK instances lists the connected Python clients; a rollback plan executes from its page", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "SDK instances" }).click();
  const rows = page.getByRole("row").filter({ hasText: "production" });
  await expect(rows).toHaveCount(2);
  for (const row of await rows.all()) {
    await expect(row).toContainText("flagwire-python");
    await expect(row.getByRole("cell").nth(5)).toHaveText("yes");
  }

  await server.api().rollouts.createRollbackPlan({
    plan: {
      name: "search-off",
      description: "Search v2 off in production",
      scope: { kind: { case: "flagKey", value: "search-v2" }, environment: "production" },
      steps: [{ action: { case: "setEnabled", value: { flagKey: "search-v2", environment: "production", enabled: false } } }],
    },
  });
  await page.getByRole("link", { name: "Plans" }).click();
  await expect(page.getByRole("region", { name: "Plan search-off" })).toContainText("turn off search-v2 in production");
  await page.getByRole("button", { name: "Execute search-off" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("game day");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByTestId("execution-state")).toHaveText("succeeded");
  await expect(page.getByTestId("ack-production")).toHaveText("2 of 2");
  for (const o of observers) await o.waitForLine((l) => l === "off DISABLED" && o.lines.lastIndexOf(l) > o.lines.lastIndexOf("on STATIC"));
  await expectAccessible(page, "plans with an execution");
  const flag = (await server.api().admin.getFlag({ key: "search-v2" })).flag!;
  await server.api().admin.setFlagEnabled({ key: "search-v2", environment: "production", enabled: true, expectedVersion: flag.version, reason: "game day over" });
});

test("the audit log shows the kill and the undo with diffs", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("textbox", { name: "Flag", exact: true }).fill("search-v2");
  const events = page.getByTestId("audit-event");
  const kill = events.filter({ hasText: "search results are empty" });
  const undo = events.filter({ hasText: "fixed the index" });
  await expect(kill).toHaveCount(1);
  await expect(undo).toHaveCount(1);
  await kill.locator("summary").click();
  await expect(kill.getByLabel(/Changes of flag search-v2/)).toContainText('-       "enabled": true');
  await expect(kill.getByLabel(/Changes of flag search-v2/)).toContainText('+       "enabled": false');
  await undo.locator("summary").click();
  await expect(undo.getByLabel(/Changes of flag search-v2/)).toContainText('-       "enabled": false');
  await expect(undo.getByLabel(/Changes of flag search-v2/)).toContainText('+       "enabled": true');
  // Times are the viewer's, with UTC on hover.
  await expect(kill.locator("time")).toHaveAttribute("title", / UTC$/);
  await expectAccessible(page, "audit log");
  await screenshot(page, info, "audit");
});

test("a kill by tag in one environment, and everything in an environment", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Kill switch" }).click();
  await page.getByLabel("Scope").selectOption("tag");
  await page.getByLabel("Tag").fill("search");
  await page.getByLabel("Environment").selectOption("staging");
  await page.getByLabel("Reason (required)").fill("staging index rebuild");
  await page.getByRole("button", { name: "Kill" }).click();
  await expect(page.getByTestId("execution")).toContainText("tag search in staging");
  await expect(page.getByTestId("ack-staging")).toHaveText("0 of 0");
  let flag = (await server.api().admin.getFlag({ key: "search-v2" })).flag!;
  expect([flag.environments.staging?.enabled, flag.environments.production?.enabled]).toEqual([false, true]);
  await page.getByRole("button", { name: "Undo kill" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("rebuilt");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByTestId("execution-state")).toHaveText("undone");

  await page.getByLabel("Scope").selectOption("environment");
  await page.getByLabel("Environment").selectOption("production");
  await expect(page.getByLabel("Reason (required)")).toHaveValue("");
  await page.getByRole("button", { name: "Kill" }).click();
  await expect(page.getByRole("alert")).toHaveText("A reason is required.");
  await page.getByLabel("Reason (required)").fill("production incident");
  await page.getByRole("button", { name: "Kill" }).click();
  await expect(page.getByTestId("execution")).toContainText("everything in production");
  await expect(page.getByTestId("ack-production")).toHaveText("2 of 2");
  flag = (await server.api().admin.getFlag({ key: "search-v2" })).flag!;
  expect([flag.environments.staging?.enabled, flag.environments.production?.enabled]).toEqual([true, false]);
});
