// Rollback plans and their executions; scheduled changes and ramps.
import { useState } from "preact/hooks";
import { RampState, ScheduledChangeState, type PlanStep } from "../gen/flagwire/v1/rollout_pb.js";
import { enumName } from "../format.js";
import { ConfirmAction, ErrorText, Page, Time, usePoll, useSession } from "../ui.js";
import { ExecutionView, scopeText } from "./kill.js";

const ChangeStates = ScheduledChangeState as unknown as Record<number, string>;
const RampStates = RampState as unknown as Record<number, string>;

function stepText(s: PlanStep | undefined): string {
  switch (s?.action.case) {
    case "setVariant":
      return `serve ${s.action.value.variant} from ${s.action.value.flagKey}${s.action.value.environment ? ` in ${s.action.value.environment}` : ""}`;
    case "setEnabled":
      return `${s.action.value.enabled ? "turn on" : "turn off"} ${s.action.value.flagKey}${s.action.value.environment ? ` in ${s.action.value.environment}` : ""}`;
    case "revert":
      return `revert ${s.action.value.flagKey} to v${s.action.value.version}`;
    case "setWeights":
      return `weights of ${s.action.value.flagKey}: ${Object.entries(s.action.value.weights).map(([k, v]) => `${k}=${v}`).join(", ")}`;
    case "abortRolloutId":
      return `roll back ${s.action.value}`;
    case "wait":
      return `wait ${s.action.value.seconds}s`;
    default:
      return "—";
  }
}

/** Rollback plans; executing one shows its execution live. */
export function PlansPage() {
  const { api, canWrite } = useSession();
  const plans = usePoll(async () => (await api.rollouts.listRollbackPlans({})).plans, 0, [api]);
  const [execution, setExecution] = useState("");
  return (
    <Page title="Rollback plans">
      <ErrorText error={plans.error} />
      {plans.data?.length === 0 && <p class="muted">No rollback plans (define them with the CLI or grpcurl).</p>}
      {plans.data?.map((p) => (
        <section class="panel" key={p.id} aria-label={`Plan ${p.name}`}>
          <h2>
            {p.name} <span class="muted small">{p.id}</span>
          </h2>
          <p>
            {p.description} · scope: {scopeText(p.scope)}
          </p>
          <ol>
            {p.steps.map((s, i) => (
              <li key={i}>{stepText(s)}</li>
            ))}
          </ol>
          {canWrite && (
            <ConfirmAction
              label={`Execute ${p.name}`}
              danger
              title={`Execute rollback plan ${p.name} now?`}
              act={async (reason) => setExecution((await api.rollouts.executeRollbackPlan({ planId: p.id, reason })).execution?.id ?? "")}
            />
          )}
        </section>
      ))}
      {execution && <ExecutionView key={execution} id={execution} />}
    </Page>
  );
}

/** Pending and past scheduled changes, and ramps. */
export function SchedulesPage() {
  const { api, canWrite } = useSession();
  const changes = usePoll(async () => (await api.rollouts.listScheduledChanges({ includeDone: true })).changes, 2000, [api]);
  const ramps = usePoll(async () => (await api.rollouts.listRamps({})).ramps, 2000, [api]);
  return (
    <Page title="Schedules and ramps">
      <h2>Scheduled changes</h2>
      <ErrorText error={changes.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Change</th>
              <th scope="col">State</th>
              <th scope="col">By</th>
              <th scope="col">Reason</th>
              {canWrite && <th scope="col">Cancel</th>}
            </tr>
          </thead>
          <tbody>
            {changes.data?.map((c) => (
              <tr key={c.id}>
                <td>
                  <Time t={c.at} />
                </td>
                <td>{c.flag ? `update ${c.flag.key}` : stepText(c.step)}</td>
                <td>{enumName(ChangeStates, c.state)}</td>
                <td>{c.actor}</td>
                <td>{c.reason}</td>
                {canWrite && (
                  <td>
                    {c.state === ScheduledChangeState.PENDING && (
                      <ConfirmAction label={`Cancel ${c.id}`} title={`Cancel the change scheduled for ${c.id}?`} act={(reason) => api.rollouts.cancelScheduledChange({ id: c.id, reason })} done={changes.reload} />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Ramps</h2>
      <ErrorText error={ramps.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Flag</th>
              <th scope="col">Environment</th>
              <th scope="col">Variant</th>
              <th scope="col">Progress</th>
              <th scope="col">State</th>
              <th scope="col">Next step</th>
              {canWrite && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {ramps.data?.map((r) => (
              <tr key={r.id}>
                <td>{r.flagKey}</td>
                <td>{r.environment}</td>
                <td>
                  {r.variant} (else {r.otherVariant})
                </td>
                <td>
                  {r.currentBasisPoints / 100}% of {r.toBasisPoints / 100}% · step {r.stepsDone}/{r.steps}
                </td>
                <td>{enumName(RampStates, r.state)}</td>
                <td>
                  <Time t={r.nextStepTime} />
                </td>
                {canWrite && (
                  <td>
                    {r.state === RampState.RUNNING && <ConfirmAction label={`Pause ramp ${r.flagKey}`} title={`Pause the ramp of ${r.flagKey}?`} act={(reason) => api.rollouts.pauseRamp({ id: r.id, reason })} done={ramps.reload} />}
                    {r.state === RampState.PAUSED && <ConfirmAction label={`Resume ramp ${r.flagKey}`} title={`Resume the ramp of ${r.flagKey}?`} act={(reason) => api.rollouts.resumeRamp({ id: r.id, reason })} done={ramps.reload} />}
                    {(r.state === RampState.RUNNING || r.state === RampState.PAUSED) && (
                      <ConfirmAction label={`Roll back ramp ${r.flagKey}`} danger title={`Roll back the ramp of ${r.flagKey} to ${r.otherVariant}?`} act={(reason) => api.rollouts.rollbackRamp({ id: r.id, reason })} done={ramps.reload} />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Page>
  );
}
