// Archive, unarchive and delete a flag, and delete an environment, from the console: a flag
// archived and deleted while a real Python SDK client watches it; deletes and archives the
// server refuses (a prerequisite, an active release, an environment in use) show its reason
// and change nothing; an environment goes only once its key is typed; read-only tokens get
// none of these controls.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Page } from "@playwright/test";
import { expect, test } from "./support/fixtures.js";
import { ErrorCode } from "../src/gen/flagwire/v1/evaluation_pb.js";
import { ReleaseSchema } from "../src/gen/flagwire/v1/release_pb.js";
import { expectAccessible, screenshot, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Child, PYTHON, REPO, Role, Server, eventually } from "./support/server.js";

test.describe.configure({ mode: "serial" });

let server: Server;
let observer: Child | undefined;
let readOnly = "";

/** A boolean flag configured only in production, on, serving `on`. */
async function flag(key: string, prerequisites: { flagKey: string; variant: string }[] = []): Promise<void> {
  await server.booleanFlag(key, ["production"], "on", { prerequisites });
}

test.beforeAll(async () => {
  server = await Server.start();
  // The binary embeds console/dist when it is compiled: one built before these controls serves
  // none of them, and every test below would only time out waiting for a button.
  const served = await (await fetch(`${server.consoleUrl}/`)).text();
  if (served !== readFileSync(join(REPO, "console/dist/index.html"), "utf8")) {
    throw new Error(`${process.env.FLAGWIRE_BIN} serves a console bundle other than console/dist: rebuild it (cargo build --bin flagwire)`);
  }
  // qa is used by nothing, so the server lets it go; production holds every flag.
  await server.environments("staging", "production", "qa");
  await flag("old-promo");
  await flag("base");
  await flag("dependent", [{ flagKey: "base", variant: "on" }]);
  await flag("mem0");
  const release = create(ReleaseSchema, {
    name: "mem0",
    environment: "production",
    flags: [{ flagKey: "mem0", baselineVariant: "off" }],
    stages: [{ name: "shadow", audience: { kind: { case: "basisPoints", value: 500 } }, variants: { mem0: "on" }, minDuration: { seconds: 3600n }, requireApproval: true }],
    policy: { window: { seconds: 3600n } },
  });
  const id = (await server.api().releases.createRelease({ release })).release!.id;
  await server.api().releases.startRelease({ id, reason: "test" });
  readOnly = await server.token("dashboards", Role.READ_ONLY);
});

test.afterAll(async () => {
  await observer?.stop();
  await server?.stop();
});

async function openFlag(page: Page, key: string): Promise<void> {
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Flags", exact: true }).click();
  await page.getByRole("link", { name: key, exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: key })).toBeVisible();
}

/** Opens a confirmation with `button`, gives a reason and presses `confirm` in it. */
async function confirm(page: Page, button: string, confirmLabel: string, reason: string): Promise<void> {
  await page.getByRole("button", { name: button, exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel(/Reason/).fill(reason);
  await dialog.getByRole("button", { name: confirmLabel, exact: true }).click();
}

/** Waits for the observer to print `line` after its first `from` lines (it prints on change only). */
function printed(from: number, line: RegExp): Promise<string> {
  return eventually(`the SDK observer prints ${line}`, async () => observer!.lines.slice(from).find((l) => line.test(l)));
}

test("archive, unarchive and delete a flag while an SDK watches it", async ({ page }, info) => {
  const sdkToken = await server.token("promo-service", Role.SDK, "production");
  observer = Child.spawn("observer", PYTHON, [join(REPO, "console/tests/support/observer.py"), server.grpcUrl, sdkToken, "old-promo", "user-1"]);
  await observer.waitForLine((l) => l.startsWith("on "));
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await openFlag(page, "old-promo");

  // Archive: the confirmation names the flag; the SDK then finds no such flag.
  await page.getByRole("button", { name: "Archive flag" }).click();
  await expect(page.getByRole("dialog")).toContainText("Archive old-promo?");
  await expectAccessible(page, "flag page with the archive confirmation");
  await page.getByRole("button", { name: "Cancel" }).click();
  let seen = observer.lines.length;
  await confirm(page, "Archive flag", "Archive old-promo", "campaign paused");
  await expect(page.getByTestId("archived")).toBeVisible();
  await expect(page.getByRole("button", { name: "Unarchive flag" })).toBeVisible();
  expect((await server.api().admin.getFlag({ key: "old-promo" })).flag?.archived).toBe(true);
  await printed(seen, /^- ERROR$/);
  await expectAccessible(page, "archived flag");
  await screenshot(page, info, "flag-archived");

  // The matrix hides it unless asked.
  await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Flags", exact: true }).click();
  await expect(page.getByRole("link", { name: "base", exact: true })).toBeVisible();
  await expect(page.getByRole("link", { name: "old-promo" })).toHaveCount(0);
  await page.getByLabel("Show archived").check();
  await expect(page.getByRole("row").filter({ hasText: "old-promo" })).toContainText("(archived)");
  await page.getByRole("link", { name: "old-promo" }).click();

  // Unarchive: served again.
  seen = observer.lines.length;
  await confirm(page, "Unarchive flag", "Unarchive old-promo", "campaign back");
  await expect(page.getByTestId("archived")).toHaveCount(0);
  await printed(seen, /^on /);

  // Delete: back to the list, gone for the API and for the SDK.
  seen = observer.lines.length;
  await page.getByRole("button", { name: "Delete flag" }).click();
  await expect(page.getByRole("dialog")).toContainText("Delete old-promo from every environment?");
  await page.getByRole("dialog").getByLabel(/Reason/).fill("campaign over");
  await page.getByRole("dialog").getByRole("button", { name: "Delete old-promo" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Flags" })).toBeVisible();
  await expect(page.getByRole("link", { name: "base", exact: true })).toBeVisible();
  await expect(page.getByRole("link", { name: "old-promo" })).toHaveCount(0);
  const code = await server.api().admin.getFlag({ key: "old-promo" }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e).code,
  );
  expect(code).toBe(Code.NotFound);
  await printed(seen, /^- ERROR$/);
  const evaluated = (await server.api(sdkToken).flags.evaluate({ flagKey: "old-promo", context: { targetingKey: "user-1" } })).result;
  expect(evaluated?.errorCode).toBe(ErrorCode.FLAG_NOT_FOUND);
});

test("a delete or archive the server refuses shows its reason and changes nothing", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);

  // A prerequisite of another flag.
  await openFlag(page, "base");
  const base = (await server.api().admin.getFlag({ key: "base" })).flag!;
  await confirm(page, "Delete flag", "Delete base", "tidy up");
  await expect(page.getByRole("dialog").getByRole("alert")).toHaveText('FailedPrecondition: flag "base" is a prerequisite of flag "dependent"');
  await expectAccessible(page, "flag page with a refused delete");
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  // Nor archived: "dependent" would fail it everywhere.
  await confirm(page, "Archive flag", "Archive base", "tidy up");
  await expect(page.getByRole("dialog").getByRole("alert")).toContainText('flag "base" is a prerequisite of flag "dependent", which would then fail it everywhere');
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "base" })).toBeVisible();
  expect((await server.api().admin.getFlag({ key: "base" })).flag?.version).toBe(base.version);

  // Under an active release: neither archived nor deleted.
  await openFlag(page, "mem0");
  const mem0 = (await server.api().admin.getFlag({ key: "mem0" })).flag!;
  await confirm(page, "Archive flag", "Archive mem0", "tidy up");
  await expect(page.getByRole("dialog").getByRole("alert")).toContainText(/FailedPrecondition: flag "mem0" is part of release \S+ \(mem0\) in "production"/);
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  await confirm(page, "Delete flag", "Delete mem0", "tidy up");
  await expect(page.getByRole("dialog").getByRole("alert")).toContainText("end it before deleting the flag");
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByTestId("archived")).toHaveCount(0);
  const after = (await server.api().admin.getFlag({ key: "mem0" })).flag!;
  expect(after.archived).toBe(false);
  expect(after.version).toBe(mem0.version);
});

test("an environment is deleted only once its key is typed exactly; one in use is refused", async ({ page }, info) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Environments" }).click();
  const keys = async () => (await server.api().admin.listEnvironments({})).environments.map((e) => e.key);

  // production: the key typed, the server refuses (flags use it), nothing changes.
  await page.getByRole("button", { name: "Delete production" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toContainText("Delete environment production?");
  await dialog.getByLabel(/Reason/).fill("mis-click");
  const go = dialog.getByRole("button", { name: "Delete production" });
  await expect(go).toBeDisabled();
  const typed = dialog.getByLabel("Type production to confirm");
  for (const almost of ["", "producti", "Production", "production "]) {
    await typed.fill(almost);
    await expect(go).toBeDisabled();
  }
  await typed.fill("production");
  await expect(go).toBeEnabled();
  await expectAccessible(page, "environments with the delete confirmation");
  await go.click();
  await expect(dialog.getByRole("alert")).toContainText('FailedPrecondition: environment "production" is still used by flag');
  await screenshot(page, info, "environment-delete-refused");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  expect(await keys()).toEqual(["production", "qa", "staging"]);

  // qa: used by nothing, it goes.
  await page.getByRole("button", { name: "Delete qa" }).click();
  await dialog.getByLabel(/Reason/).fill("qa moved to staging");
  await expect(dialog.getByRole("button", { name: "Delete qa" })).toBeDisabled();
  await dialog.getByLabel("Type qa to confirm").fill("qa");
  await dialog.getByRole("button", { name: "Delete qa" }).click();
  await expect(page.getByRole("cell", { name: "qa", exact: true })).toHaveCount(0);
  await expect(dialog).toHaveCount(0);
  expect(await keys()).toEqual(["production", "staging"]);
  await expectAccessible(page, "environments after a delete");
});

test("a read-only token gets no archive or delete control", async ({ page }) => {
  await signIn(page, server.consoleUrl, readOnly);
  await expect(page.getByTestId("role")).toHaveText("read-only");
  await openFlag(page, "base");
  await expect(page.getByTestId("env-state")).toContainText("on in production");
  await expect(page.getByRole("button", { name: /Archive|Unarchive|Delete/ })).toHaveCount(0);
  await page.getByRole("link", { name: "Environments" }).click();
  await expect(page.getByRole("row").filter({ hasText: "production" })).toBeVisible();
  await expect(page.getByRole("button", { name: /Delete/ })).toHaveCount(0);
  await expect(page.getByRole("columnheader", { name: "Delete" })).toHaveCount(0);
});
