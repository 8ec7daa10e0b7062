// A running release with traffic from the bundled generator (sdk-python/examples/traffic.py):
// the charts show both cohorts per window (with a gated metric and its threshold); a regression
// injected into the traffic brings the rollback decision, with its evidence, onto the open page
// without a reload.
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { Locator } from "@playwright/test";
import { expect, test } from "./support/fixtures.js";
import { MetricDirection, MetricKind } from "../src/gen/flagwire/v1/metrics_pb.js";
import { Comparison, ReleaseSchema, ReleaseState } from "../src/gen/flagwire/v1/release_pb.js";
import { expectAccessible, screenshot, signIn } from "./support/browser.js";
import { ADMIN_TOKEN, Child, PYTHON, REPO, Role, Server, eventually } from "./support/server.js";

test.describe.configure({ mode: "serial" });

let server: Server;
let traffic: Child | undefined;
let releaseId = "";
let sdkToken = "";

function generator(errorRateOn: string): Child {
  const args = [join(REPO, "sdk-python/examples/traffic.py"), "--endpoint", server.grpcUrl, "--rps", "120", "--instances", "2"];
  args.push("--flush-ms", "250", "--duration", "300", "--flag", "ranker", "--latency-ms", "on=5", "--latency-ms", "off=5");
  args.push("--error-rate", `on=${errorRateOn}`, "--error-rate", "off=0.01", "--outcome", "search.click=0.9");
  return Child.spawn("traffic", PYTHON, args, { FLAGWIRE_TOKEN: sdkToken });
}

/** The number of points a chart draws for a line (its data-points attribute). */
async function points(chart: Locator, line: string): Promise<number> {
  const attr = (await chart.getAttribute("data-points")) ?? "";
  const m = new RegExp(`(?:^|,)${line}=(\\d+)`).exec(attr);
  return m ? Number(m[1]) : 0;
}

test.beforeAll(async () => {
  server = await Server.start();
  await server.environments("production");
  const api = server.api();
  await server.booleanFlag("ranker", ["production"], "off");
  await api.admin.defineMetric({
    reason: "test",
    metric: { environment: "production", name: "search.click", kind: MetricKind.RATE, direction: MetricDirection.HIGHER_IS_BETTER, unit: "clicks" },
  });
  const release = create(ReleaseSchema, {
    name: "new ranker",
    description: "The learned ranker, a quarter of the units against an equal control",
    environment: "production",
    flags: [{ flagKey: "ranker", baselineVariant: "off" }],
    stages: [
      {
        name: "canary",
        audience: { kind: { case: "basisPoints", value: 2500 } },
        variants: { ranker: "on" },
        minDuration: { seconds: 600n },
        minOutcomesPerCohort: 100n,
      },
      { name: "everyone", audience: { kind: { case: "everyone", value: true } }, variants: { ranker: "on" } },
    ],
    gates: [{ name: "click-rate", kind: { case: "absolute", value: { metric: "search.click", comparison: Comparison.GREATER_THAN, threshold: 0.5, minCount: 50n } } }],
    policy: { window: { seconds: 1n } },
  });
  const created = (await api.releases.createRelease({ release })).release!;
  releaseId = created.id;
  await api.releases.startRelease({ id: releaseId, reason: "test" });
  sdkToken = await server.token("search-traffic", Role.SDK, "production");
});

test.afterAll(async () => {
  await traffic?.stop();
  await server?.stop();
});

test("charts show both cohorts; an injected regression rolls back on the open page", async ({ page }, info) => {
  traffic = generator("0.01");
  await signIn(page, server.consoleUrl, ADMIN_TOKEN);
  await page.getByRole("link", { name: "Releases" }).click();
  await expect(page.getByRole("link", { name: "new ranker" })).toBeVisible();
  await expectAccessible(page, "releases");
  await page.getByRole("link", { name: "new ranker" }).click();
  await expect(page.getByTestId("release-state")).toHaveText("running");

  const errorChart = page.getByTestId("chart-Error rate");
  const gateChart = page.getByTestId("chart-Gate search.click");
  await eventually("three windows of both cohorts on the charts", async () =>
    (await points(errorChart, "canary")) >= 3 && (await points(errorChart, "control")) >= 3 && (await points(gateChart, "canary")) >= 3 ? true : undefined,
  30_000);
  await expect(gateChart).toHaveAttribute("data-points", /threshold=\d+/);
  await expect(page.getByTestId("chart-Latency")).toHaveAttribute("data-points", /canary p95=\d+/);
  await expect(page.locator(".chart canvas")).toHaveCount(3);
  await expectAccessible(page, "release (running)");
  await screenshot(page, info, "release-running");

  // The regression: the canary's variant starts failing 40 % of its requests.
  await traffic.stop();
  traffic = generator("0.4");
  await expect(page.getByTestId("release-state")).toHaveText("rolled back", { timeout: 30_000 });
  const rollback = page.getByTestId("decision").filter({ hasText: "rollback" }).first();
  await expect(rollback).toContainText("ERROR_RATE");
  await expect(rollback.getByRole("table", { name: "Cohorts" })).toContainText("canary");
  await expect(rollback.getByRole("table", { name: "Cohorts" })).toContainText("control");
  await expect(rollback.getByRole("table", { name: "Tests" })).toContainText("error_rate");
  const stored = (await server.api().releases.getRelease({ id: releaseId })).release!;
  expect(stored.state).toBe(ReleaseState.ROLLED_BACK);
  await expect(page.getByTestId("release-ack")).toContainText("acknowledged by");
  await expectAccessible(page, "release (rolled back)");
  await screenshot(page, info, "release-rolled-back");

  // The flag's page shows the usage the traffic reported, per variant and cohort.
  const flagPage = await page.context().newPage();
  await signIn(flagPage, server.consoleUrl, ADMIN_TOKEN);
  await flagPage.goto(`${server.consoleUrl}/#/flags/ranker`);
  const usage = flagPage.getByRole("region", { name: "Usage in production" });
  await expect(usage.getByRole("row").filter({ hasText: "canary" }).first()).toContainText("on");
  await expect(usage.getByRole("row").filter({ hasText: "control" }).first()).toContainText("off");
  await screenshot(flagPage, info, "flag-usage");
});
