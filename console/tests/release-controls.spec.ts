// A release's controls from its page, each with a required reason, checked through the API:
// approve the first stage, pause, resume, roll back one flag, promote, roll back the rest.
import { create } from "@bufbuild/protobuf";
import type { Page } from "@playwright/test";
import { expect, test } from "./support/fixtures.js";
import { ReleaseSchema, ReleaseState, type Release } from "../src/gen/flagwire/v1/release_pb.js";
import { expectAccessible, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Server, eventually } from "./support/server.js";

let server: Server;
let id = "";

test.beforeAll(async () => {
  server = await Server.start();
  await server.environments("production");
  const api = server.api();
  for (const key of ["mem0-writes", "mem0-reads"]) await server.booleanFlag(key, ["production"], "off");
  const release = create(ReleaseSchema, {
    name: "mem0",
    environment: "production",
    flags: [
      { flagKey: "mem0-writes", baselineVariant: "off" },
      { flagKey: "mem0-reads", baselineVariant: "off" },
    ],
    stages: [
      {
        name: "shadow",
        audience: { kind: { case: "basisPoints", value: 500 } },
        variants: { "mem0-writes": "on", "mem0-reads": "on" },
        minDuration: { seconds: 3600n },
        requireApproval: true,
      },
      { name: "half", audience: { kind: { case: "basisPoints", value: 5000 } }, variants: { "mem0-writes": "on" }, minDuration: { seconds: 3600n } },
    ],
    // Long windows: no judgement interferes while the test presses the buttons.
    policy: { window: { seconds: 3600n } },
  });
  id = (await api.releases.createRelease({ release })).release!.id;
  await api.releases.startRelease({ id, reason: "test" });
});

test.afterAll(async () => {
  await server?.stop();
});

async function press(page: Page, button: string, reason: string): Promise<void> {
  await page.getByRole("button", { name: button, exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel(/Reason/).fill(reason);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toHaveCount(0);
}

async function stored(check: (r: Release) => boolean, what: string): Promise<Release> {
  return eventually(what, async () => {
    const r = (await server.api().releases.getRelease({ id })).release!;
    return check(r) ? r : undefined;
  });
}

test("approve, pause, resume, partial rollback, promote and roll back from the page", async ({ page }) => {
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.goto(`${server.consoleUrl}/#/releases/${id}`);
  const state = page.getByTestId("release-state");
  await expect(state).toHaveText("awaiting approval");
  await expectAccessible(page, "release controls");
  await press(page, "Approve stage 1", "approved by the mem0 team");
  await expect(state).toHaveText("running");
  const approved = await stored((r) => r.state === ReleaseState.RUNNING, "stage 1 running");
  expect(approved.approvals.map((a) => [a.stage, a.reason])).toEqual([[0, "approved by the mem0 team"]]);

  await press(page, "Pause", "checking dashboards");
  await expect(state).toHaveText("paused");
  await stored((r) => r.state === ReleaseState.PAUSED, "paused");
  await press(page, "Resume", "dashboards fine");
  await expect(state).toHaveText("running");

  await page.getByLabel("Partial rollback of").selectOption("mem0-reads");
  await press(page, "Roll back this flag", "reads are slow");
  const partial = await stored((r) => r.rolledBackFlags.includes("mem0-reads"), "mem0-reads rolled back");
  expect(partial.state).toBe(ReleaseState.RUNNING);
  await expect(page.getByTestId("release-flags").getByRole("listitem").filter({ hasText: "mem0-reads" })).toContainText("rolled back");

  await press(page, "Promote", "shadow looks good");
  await stored((r) => r.state === ReleaseState.RUNNING && r.currentStage === 1, "stage 2 running");
  await expect(page.locator(".stages li.current")).toContainText("half");

  await press(page, "Roll back", "abandoning mem0 for now");
  await expect(state).toHaveText("rolled back");
  const done = await stored((r) => r.state === ReleaseState.ROLLED_BACK, "rolled back");
  expect(done.decisions.at(-1)?.actor).toBe("admin");
  await expect(page.getByText("The release has ended; nothing to control.")).toBeVisible();
});
