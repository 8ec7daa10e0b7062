// The kill switch: turn off a flag, a tag, a release, an environment or everything, with a
// required reason; the acknowledgements of connected SDKs fill in live; undo restores.
import { create } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";
import { ExecutionState, ScopeSchema, type Execution, type Scope } from "../gen/flagwire/v1/rollout_pb.js";
import { describe } from "../api.js";
import { enumName } from "../format.js";
import { ConfirmAction, ErrorText, Page, Time, usePoll, useSession } from "../ui.js";

const LAST_KILL = "flagwire.lastKill";
const States = ExecutionState as unknown as Record<number, string>;

/** The scope for people: "flag checkout in production". */
export function scopeText(s: Scope | undefined): string {
  if (!s) return "—";
  const where = s.environment ? ` in ${s.environment}` : " in every environment";
  switch (s.kind.case) {
    case "flagKey":
      return `flag ${s.kind.value}${where}`;
    case "tag":
      return `tag ${s.kind.value}${where}`;
    case "releaseId":
      return `release ${s.kind.value}`;
    case "rolloutId":
      return `rollout ${s.kind.value}`;
    case "systemWide":
      return s.environment ? `everything in ${s.environment}` : "everything, everywhere";
    default:
      return "—";
  }
}

/** One kill execution, polled until its acknowledgements are complete. */
export function ExecutionView({ id }: { id: string }) {
  const { api, canWrite } = useSession();
  const ex = usePoll(async () => (await api.rollouts.getExecution({ id })).execution, 500, [api, id]);
  const e: Execution | undefined = ex.data;
  if (!e) return <ErrorText error={ex.error} />;
  return (
    <section class="panel" aria-labelledby="execution-title" data-testid="execution">
      <h2 id="execution-title">
        Kill {e.id}: {scopeText(e.scope)}
      </h2>
      <p>
        State: <strong data-testid="execution-state">{enumName(States, e.state)}</strong> · by {e.actor} · <Time t={e.startTime} />
      </p>
      <p>Reason: {e.reason}</p>
      <h3>Acknowledgements</h3>
      <table>
        <thead>
          <tr>
            <th scope="col">Environment</th>
            <th scope="col">Revision</th>
            <th scope="col">Acknowledged</th>
            <th scope="col">Last</th>
          </tr>
        </thead>
        <tbody>
          {e.acknowledgements.map((a) => (
            <tr key={a.environment}>
              <td>{a.environment}</td>
              <td>{a.revision.toString()}</td>
              <td data-testid={`ack-${a.environment}`}>
                {a.acknowledged} of {a.connected}
              </td>
              <td>
                <Time t={a.lastAcknowledgedTime} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Steps</h3>
      <ul>
        {e.steps.map((s) => (
          <li key={s.index}>
            {s.ok ? "✓" : "✗"} {s.detail}
          </li>
        ))}
      </ul>
      {canWrite && e.kind === "kill" && e.state !== ExecutionState.UNDONE && (
        <ConfirmAction
          label="Undo kill"
          title={`Undo the kill of ${scopeText(e.scope)}: restore every flag it turned off as it was?`}
          act={(reason) => api.rollouts.undoKill({ executionId: e.id, reason })}
          done={ex.reload}
        />
      )}
    </section>
  );
}

/** The kill-switch page. */
export function KillPage() {
  const { api, canWrite } = useSession();
  const envs = usePoll(async () => (await api.admin.listEnvironments({})).environments, 0, [api]);
  const [kind, setKind] = useState("flag");
  const [target, setTarget] = useState("");
  const [env, setEnv] = useState("");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [last, setLast] = useState(() => sessionStorage.getItem(LAST_KILL) ?? "");
  const [lookup, setLookup] = useState("");
  const kill = async () => {
    const scope = create(ScopeSchema, { environment: env });
    if (kind === "flag") scope.kind = { case: "flagKey", value: target.trim() };
    else if (kind === "tag") scope.kind = { case: "tag", value: target.trim() };
    else if (kind === "release") scope.kind = { case: "releaseId", value: target.trim() };
    else scope.kind = { case: "systemWide", value: true };
    const r = await api.rollouts.kill({ scope, reason });
    const id = r.execution?.id ?? "";
    sessionStorage.setItem(LAST_KILL, id);
    setLast(id);
    // A kill's reason is its own: the next one must be given again.
    setReason("");
  };
  const needsTarget = kind === "flag" || kind === "tag" || kind === "release";
  return (
    <Page title="Kill switch">
      {canWrite ? (
        <form
          class="panel grid-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!reason.trim()) return setError("A reason is required.");
            if (kind === "environment" && !env) return setError("Choose the environment to turn off.");
            kill().then(
              () => setError(undefined),
              (err: unknown) => setError(describe(err)),
            );
          }}
        >
          <label for="kill-scope">Scope</label>
          <select id="kill-scope" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="flag">one flag</option>
            <option value="tag">every flag with a tag</option>
            <option value="release">a release (rolls it back)</option>
            <option value="environment">everything in an environment</option>
            <option value="everything">everything</option>
          </select>
          {needsTarget && (
            <>
              <label for="kill-target">{kind === "flag" ? "Flag key" : kind === "tag" ? "Tag" : "Release id"}</label>
              <input id="kill-target" value={target} onInput={(e) => setTarget(e.currentTarget.value)} required />
            </>
          )}
          {kind !== "release" && kind !== "everything" && (
            <>
              <label for="kill-env">Environment</label>
              <select id="kill-env" value={env} onChange={(e) => setEnv(e.currentTarget.value)}>
                {kind !== "environment" && <option value="">every environment</option>}
                {kind === "environment" && <option value="">choose…</option>}
                {envs.data?.map((e) => (
                  <option key={e.key} value={e.key}>
                    {e.key}
                  </option>
                ))}
              </select>
            </>
          )}
          <label for="kill-reason">Reason (required)</label>
          <textarea id="kill-reason" rows={2} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          <ErrorText error={error} />
          <button type="submit" class="danger">
            Kill
          </button>
        </form>
      ) : (
        <p class="muted">Read-only token: the kill switch needs an admin token.</p>
      )}
      <div class="toolbar">
        <label for="kill-lookup">Show a kill by execution id</label>
        <input id="kill-lookup" value={lookup} onInput={(e) => setLookup(e.currentTarget.value)} />
        <button type="button" onClick={() => setLast(lookup.trim())}>
          Show
        </button>
      </div>
      {last && <ExecutionView key={last} id={last} />}
    </Page>
  );
}
