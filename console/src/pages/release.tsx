// One release, live: stages and the current one, audiences, charts per window of canary vs
// control, the decision log with its statistics, acknowledgements, and the controls.
import { useState } from "preact/hooks";
import { ReleaseState, type Audience, type Gate, type Release } from "../gen/flagwire/v1/release_pb.js";
import type { RolloutWindow } from "../gen/flagwire/v1/rollout_pb.js";
import { enumName } from "../format.js";
import { flagHref } from "../router.js";
import { ConfirmAction, ErrorText, Page, Time, usePoll, useSession } from "../ui.js";
import { Chart, perCohort, threshold, type Line } from "./charts.js";
import { Decisions } from "./decisions.js";
import { stageText } from "./releases.js";

const States = ReleaseState as unknown as Record<number, string>;
/** Windows fetched with each poll: enough for a chart, small enough to poll every second. */
const WINDOWS = 60;

function audienceText(a: Audience | undefined): string {
  switch (a?.kind.case) {
    case "basisPoints":
      return a.kind.value >= 10000 ? "everyone" : `${a.kind.value / 100}% (and an equal control)`;
    case "segment":
      return `segment ${a.kind.value}`;
    case "everyone":
      return "everyone (soak)";
    default:
      return "—";
  }
}

function gateMetric(g: Gate): { metric: string; threshold?: number; quantile: number } | undefined {
  switch (g.kind.case) {
    case "absolute":
      return { metric: g.kind.value.metric, threshold: g.kind.value.total ? undefined : g.kind.value.threshold, quantile: g.kind.value.quantile };
    case "relative":
      return { metric: g.kind.value.metric, quantile: g.kind.value.quantile };
    default:
      return undefined;
  }
}

function Charts({ release, windows }: { release: Release; windows: RolloutWindow[] }) {
  const g = release.guardrails;
  const errorLines: Line[] = perCohort(windows, (c) => (c.n > 0n ? c.errorRate : undefined));
  if (g?.maxErrorRate) errorLines.push(threshold(windows, "max error rate", g.maxErrorRate));
  const latency: Line[] = [
    ...perCohort(windows, (c) => (c.n > 0n ? c.p50Us / 1000 : undefined), [2, 3], " p50"),
    ...perCohort(windows, (c) => (c.n > 0n ? c.p95Us / 1000 : undefined), undefined, " p95"),
    ...perCohort(windows, (c) => (c.n > 0n ? c.p99Us / 1000 : undefined), [8, 3], " p99"),
  ];
  if (g?.maxP95Ms) latency.push(threshold(windows, "max p95", g.maxP95Ms));
  if (g?.maxP99Ms) latency.push(threshold(windows, "max p99", g.maxP99Ms));
  const gates = [...release.gates, ...release.stages.flatMap((s) => s.gates)].map(gateMetric).filter((x) => x !== undefined);
  const seen = new Set<string>();
  return (
    <div class="charts">
      <Chart title="Error rate" unit="rate" windows={windows} lines={errorLines} />
      <Chart title="Latency" unit="ms" windows={windows} lines={latency} />
      {gates.map((gm) => {
        if (seen.has(gm.metric)) return null;
        seen.add(gm.metric);
        const lines = perCohort(windows, (c) => c.metrics.find((m) => m.name === gm.metric)?.value);
        if (gm.threshold !== undefined) lines.push(threshold(windows, "threshold", gm.threshold));
        return <Chart key={gm.metric} title={`Gate ${gm.metric}`} unit={gm.metric} windows={windows} lines={lines} />;
      })}
    </div>
  );
}

function Controls({ release, changed }: { release: Release; changed: () => void }) {
  const { api } = useSession();
  const [flag, setFlag] = useState("");
  const [hold, setHold] = useState(false);
  const id = release.id;
  const s = release.state;
  const live = s === ReleaseState.RUNNING || s === ReleaseState.PAUSED || s === ReleaseState.AWAITING_APPROVAL;
  const partialFlag = flag || release.flags.find((f) => !release.rolledBackFlags.includes(f.flagKey))?.flagKey || "";
  return (
    <section class="panel controls" aria-labelledby="controls-title">
      <h2 id="controls-title">Controls</h2>
      {s === ReleaseState.AWAITING_APPROVAL && (
        <ConfirmAction label={`Approve stage ${release.approvalStage + 1}`} title={`Approve stage ${release.approvalStage + 1} of ${release.name}?`} act={(reason) => api.releases.approveStage({ id, stage: release.approvalStage, reason })} done={changed} />
      )}
      {s === ReleaseState.RUNNING && <ConfirmAction label="Pause" title={`Pause ${release.name}? Windows are still collected; nothing is decided automatically.`} act={(reason) => api.releases.pauseRelease({ id, reason })} done={changed} />}
      {s === ReleaseState.PAUSED && <ConfirmAction label="Resume" title={`Resume ${release.name}?`} act={(reason) => api.releases.resumeRelease({ id, reason })} done={changed} />}
      {live && <ConfirmAction label="Promote" title={`Promote ${release.name} to its next stage now?`} act={(reason) => api.releases.promoteRelease({ id, reason })} done={changed} />}
      {live && (
        <ConfirmAction label="Roll back" danger title={`Roll back ${release.name}: every flag to its baseline in ${release.environment}?`} act={(reason) => api.releases.rollbackRelease({ id, reason })} done={changed} />
      )}
      {live && release.flags.length > 1 && (
        <div class="partial">
          <label for="partial-flag">Partial rollback of</label>
          <select id="partial-flag" value={partialFlag} onChange={(e) => setFlag(e.currentTarget.value)}>
            {release.flags
              .filter((f) => !release.rolledBackFlags.includes(f.flagKey))
              .map((f) => (
                <option key={f.flagKey} value={f.flagKey}>
                  {f.flagKey}
                </option>
              ))}
          </select>
          <label class="inline">
            <input type="checkbox" checked={hold} onChange={(e) => setHold(e.currentTarget.checked)} /> then pause the release
          </label>
          <ConfirmAction
            label="Roll back this flag"
            danger
            title={`Return ${partialFlag} to its baseline in ${release.environment}${hold ? " and pause the release" : "; the release goes on"}?`}
            act={(reason) => api.releases.rollbackRelease({ id, reason, flagKey: partialFlag, hold })}
            done={changed}
          />
        </div>
      )}
      {!live && <p class="muted">The release has ended; nothing to control.</p>}
    </section>
  );
}

/** The release page. */
export function ReleasePage({ id }: { id: string }) {
  const { api, canWrite } = useSession();
  const r = usePoll(async () => (await api.releases.getRelease({ id, windowLimit: WINDOWS })).release, 1000, [api, id]);
  const release = r.data;
  if (!release) return <Page title={`Release ${id}`}><ErrorText error={r.error} /></Page>;
  const ack = release.acknowledgement;
  return (
    <Page title={release.name || release.id}>
      <p>{release.description}</p>
      <p>
        <span class="state" data-testid="release-state">{enumName(States, release.state)}</span> in {release.environment} · {stageText(release)}
        {release.stateReason && <> · {release.stateReason}</>} · started <Time t={release.startTime} />
      </p>
      <ErrorText error={r.error} />
      {canWrite && <Controls release={release} changed={r.reload} />}
      <h2>Flags</h2>
      <ul data-testid="release-flags">
        {release.flags.map((f) => (
          <li key={f.flagKey}>
            <a href={flagHref(f.flagKey)}>{f.flagKey}</a> (baseline {f.baselineVariant}){release.rolledBackFlags.includes(f.flagKey) && " · rolled back"}
          </li>
        ))}
      </ul>
      <h2>Stages</h2>
      <ol class="stages">
        {release.stages.map((s, i) => (
          <li key={i} aria-current={i === release.currentStage && release.state !== ReleaseState.DRAFT ? "step" : undefined} class={i === release.currentStage ? "current" : ""}>
            <strong>{s.name || `stage ${i + 1}`}</strong>: {audienceText(s.audience)}; serves {Object.entries(s.variants).map(([k, v]) => `${k}=${v}`).join(", ")}
            {s.requireApproval && " · needs approval"}
            {i === release.currentStage && release.state !== ReleaseState.DRAFT && " · current"}
          </li>
        ))}
      </ol>
      {ack && ack.revision > 0n && (
        <p data-testid="release-ack">
          Final revision {ack.revision.toString()} in {ack.environment}: acknowledged by {ack.acknowledged} of {ack.connected} connected SDK instances.
        </p>
      )}
      {release.blastRadiusRequests > 0n && (
        <p>
          Blast radius: {release.blastRadiusRequests.toString()} requests ({release.blastRadiusErrors.toString()} errors), at most {release.blastRadiusBasisPoints / 100}% of units.
        </p>
      )}
      <h2>Canary vs control per window</h2>
      <Charts release={release} windows={release.windows} />
      <Decisions release={release} />
    </Page>
  );
}
