// A read-only token gets a console without write controls, and the server refuses a write
// forged with it; every page passes axe-core for both roles; the token page shows a new
// secret once; the console works at phone width; the HTTP port serves it with a strict CSP.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Page } from "@playwright/test";
import { expect, test } from "./support/fixtures.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RampState } from "../src/gen/flagwire/v1/rollout_pb.js";
import { expectAccessible, screenshot, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Role, Server } from "./support/server.js";

test.describe.configure({ mode: "serial" });

let server: Server;
let readOnly = "";

const PAGES = ["Flags", "Releases", "Kill switch", "Segments", "Environments", "Tokens", "Plans", "Schedules & ramps", "SDK instances", "Audit log"];

test.beforeAll(async () => {
  server = await Server.start();
  await server.environments("staging", "production");
  await server.booleanFlag("dark-mode", ["staging", "production"], "on", { tags: ["ui"] });
  await server.api().admin.createSegment({ reason: "test", segment: { key: "staff", environment: "production", description: "Employees", included: ["user-1"] } });
  readOnly = await server.token("dashboards", Role.READ_ONLY);
});

test.afterAll(async () => {
  await server?.stop();
});

async function visitAll(page: Page, role: string): Promise<void> {
  for (const name of PAGES) {
    await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    await expect(page.getByRole("alert")).toHaveCount(0);
    await expectAccessible(page, `${name} (${role})`);
  }
}

test("a read-only token sees no write controls, and a forged write is refused", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, readOnly);
  await expect(page.getByTestId("role")).toHaveText("read-only");
  await expect(page.getByTestId("cell-dark-mode-production")).toContainText("on");
  await expect(page.getByText("Create a flag")).toHaveCount(0);
  await page.getByRole("link", { name: "dark-mode" }).click();
  await expect(page.getByTestId("env-state")).toContainText("on in production");
  await expect(page.getByRole("button", { name: /Turn (on|off)/ })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /Save rules/ })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /Revert/ })).toHaveCount(0);
  await page.getByRole("link", { name: "Kill switch" }).click();
  await expect(page.getByRole("button", { name: "Kill" })).toHaveCount(0);
  await visitAll(page, "read-only");
  await screenshot(page, info, "read-only-audit");

  // The same call the admin console makes, with the read-only token: the server refuses it.
  const flag = (await server.api(readOnly).admin.getFlag({ key: "dark-mode" })).flag!;
  const forged = server.api(readOnly).admin.setFlagEnabled({ key: "dark-mode", environment: "production", enabled: false, expectedVersion: flag.version, reason: "forged" });
  const code = await forged.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e).code,
  );
  expect(code).toBe(Code.PermissionDenied);
  const unchanged = (await server.api().admin.getFlag({ key: "dark-mode" })).flag!;
  expect(unchanged.environments.production?.enabled).toBe(true);
  expect(unchanged.version).toBe(flag.version);
});

test("an admin visits every page; a new token's secret is shown once", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await visitAll(page, "admin");
  await page.getByRole("link", { name: "Tokens" }).click();
  await page.getByLabel("Name").fill("ci-reader");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = page.getByTestId("token-secret");
  await expect(secret).toHaveText(/^fw_[0-9a-f]{64}$/);
  const value = (await secret.textContent()) ?? "";
  expect((await server.api(value).admin.listEnvironments({})).environments.map((e) => e.key)).toEqual(["production", "staging"]);
  await expect(page.getByRole("cell", { name: "ci-reader", exact: true })).toBeVisible();
  await screenshot(page, info, "tokens");
  await page.getByRole("button", { name: "I have copied it" }).click();
  await expect(secret).toHaveCount(0);
  await page.reload();
  await expect(page.getByText(value)).toHaveCount(0);
});

test("an admin creates and deletes a segment", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Segments" }).click();
  await page.getByLabel("Environment").selectOption("staging");
  await page.getByLabel("New segment key").fill("beta-testers");
  await page.getByLabel("Included keys (comma-separated)").fill("user-1, user-2");
  await page.getByRole("button", { name: "Create segment in staging" }).click();
  await expect(page.getByRole("cell", { name: "user-1, user-2" })).toBeVisible();
  const created = (await server.api().admin.getSegment({ environment: "staging", key: "beta-testers" })).segment!;
  expect(created.included).toEqual(["user-1", "user-2"]);
  // A bad key is the server's to refuse; the form shows why and nothing is created.
  await page.getByLabel("New segment key").fill("Bad Key");
  await page.getByRole("button", { name: "Create segment in staging" }).click();
  await expect(page.getByRole("alert")).toContainText("InvalidArgument");
  expect((await server.api().admin.listSegments({ environment: "staging" })).segments.map((s) => s.key)).toEqual(["beta-testers"]);
  await page.getByRole("button", { name: "Delete beta-testers" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("beta over");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByText("No segments in staging.")).toBeVisible();
});

test("schedules and ramps: a pending change cancelled, a ramp paused, from the page", async ({ page }) => {
  const api = server.api();
  const at = timestampFromDate(new Date(Date.now() + 3_600_000));
  const change = (
    await api.rollouts.scheduleChange({
      change: { at, reason: "launch at noon", step: { action: { case: "setEnabled", value: { flagKey: "dark-mode", environment: "staging", enabled: false } } } },
    })
  ).change!;
  const ramp = (
    await api.rollouts.createRamp({
      reason: "slow start",
      ramp: { flagKey: "dark-mode", environment: "production", variant: "on", otherVariant: "off", fromBasisPoints: 0, toBasisPoints: 10000, duration: { seconds: 3600n }, steps: 10 },
    })
  ).ramp!;
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Schedules & ramps" }).click();
  const row = page.getByRole("row").filter({ hasText: "launch at noon" });
  await expect(row).toContainText("pending");
  await expect(row.locator("time")).toHaveAttribute("title", / UTC$/);
  await page.getByRole("button", { name: `Cancel ${change.id}` }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("launch moved");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(row).toContainText("cancelled");
  await page.getByRole("button", { name: "Pause ramp dark-mode" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("hold at the first step");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByRole("row").filter({ hasText: "on (else off)" })).toContainText("paused");
  expect((await api.rollouts.getRamp({ id: ramp.id })).ramp?.state).toBe(RampState.PAUSED);
  await page.getByRole("button", { name: "Roll back ramp dark-mode" }).click();
  await page.getByRole("dialog").getByLabel(/Reason/).fill("not now");
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByRole("row").filter({ hasText: "on (else off)" })).toContainText("rolled back");
  await expectAccessible(page, "schedules and ramps");
});

test("keyboard only: skip link, then a toggle with its confirmation", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main")).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Filter")).toBeFocused();
  await page.getByRole("link", { name: "dark-mode" }).focus();
  await page.keyboard.press("Enter");
  const toggle = page.getByRole("button", { name: "Turn off in staging" });
  await page.getByRole("group", { name: "Environment" }).getByRole("button", { name: "staging" }).focus();
  await page.keyboard.press("Enter");
  await toggle.focus();
  await page.keyboard.press("Enter");
  // The confirmation takes the focus to its reason; Tab reaches its confirm button.
  await expect(page.getByRole("dialog").getByLabel(/Reason/)).toBeFocused();
  await page.keyboard.type("keyboard test");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("dialog").getByRole("button", { name: "Turn off in staging" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("env-state")).toContainText("off in staging");
  const flag = (await server.api().admin.getFlag({ key: "dark-mode" })).flag!;
  expect(flag.environments.staging?.enabled).toBe(false);
  expect(flag.environments.production?.enabled).toBe(true);
});

test("phone width: the matrix and the kill switch fit and work", async ({ page }, info) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await expect(page.getByTestId("cell-dark-mode-production")).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await screenshot(page, info, "phone-flags");
  await page.getByRole("link", { name: "Kill switch" }).click();
  await expect(page.getByRole("button", { name: "Kill" })).toBeInViewport();
  await expectAccessible(page, "kill switch at phone width");
  await screenshot(page, info, "phone-kill");
});

test("the console is served with a strict CSP and correct content types", async ({ request }) => {
  const index = await request.get(server.consoleUrl + "/");
  expect(index.headers()["content-type"]).toBe("text/html; charset=utf-8");
  const csp = index.headers()["content-security-policy"] ?? "";
  expect(csp).toContain("script-src 'self';");
  expect(csp).toContain(`connect-src 'self' ${server.grpcUrl};`);
  expect(csp).not.toContain("unsafe");
  const html = await index.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
  expect(script).toBeDefined();
  const js = await request.get(`${server.consoleUrl}/${script}`);
  expect(js.headers()["content-type"]).toBe("text/javascript; charset=utf-8");
  expect(js.headers()["cache-control"]).toContain("immutable");
  const config = await (await request.get(server.consoleUrl + "/console/config.json")).json();
  expect(`http://127.0.0.1:${config.grpcPort}`).toBe(server.grpcUrl);
  expect((await request.get(server.consoleUrl + "/no-such-file.js")).status()).toBe(404);
  expect(await (await request.get(server.consoleUrl + "/healthz")).text()).toBe("ok\n");
});
