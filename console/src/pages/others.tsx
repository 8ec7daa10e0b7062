// Segments, environments, tokens and SDK instances.
import { useState } from "preact/hooks";
import { Role } from "../gen/flagwire/v1/admin_pb.js";
import { describe } from "../api.js";
import { enumName } from "../format.js";
import { ConfirmAction, ErrorText, Page, Time, usePoll, useSession } from "../ui.js";

const Roles = Role as unknown as Record<number, string>;

/** `a, b ,c` -> ["a", "b", "c"]. */
const list = (text: string) => text.split(",").map((x) => x.trim()).filter(Boolean);

/** Segments of one environment; admins create and delete them (rules: the CLI or grpcurl). */
export function SegmentsPage() {
  const { api, canWrite } = useSession();
  const envs = usePoll(async () => (await api.admin.listEnvironments({})).environments, 0, [api]);
  const [env, setEnv] = useState("");
  const current = env || envs.data?.[0]?.key || "";
  const segments = usePoll(async () => (current ? (await api.admin.listSegments({ environment: current })).segments : []), 2000, [api, current]);
  const [key, setKey] = useState("");
  const [description, setDescription] = useState("");
  const [included, setIncluded] = useState("");
  const [excluded, setExcluded] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <Page title="Segments">
      <div class="toolbar">
        <label for="seg-env">Environment</label>
        <select id="seg-env" value={current} onChange={(e) => setEnv(e.currentTarget.value)}>
          {envs.data?.map((e) => (
            <option key={e.key} value={e.key}>
              {e.key}
            </option>
          ))}
        </select>
      </div>
      <ErrorText error={segments.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Segment</th>
              <th scope="col">Description</th>
              <th scope="col">Included</th>
              <th scope="col">Excluded</th>
              <th scope="col">Rules</th>
              <th scope="col">Updated</th>
              {canWrite && <th scope="col">Delete</th>}
            </tr>
          </thead>
          <tbody>
            {segments.data?.map((s) => (
              <tr key={s.key}>
                <td>{s.key}</td>
                <td>{s.description}</td>
                <td>{s.included.join(", ")}</td>
                <td>{s.excluded.join(", ")}</td>
                <td>{s.rules.length}</td>
                <td>
                  <Time t={s.updateTime} />
                </td>
                {canWrite && (
                  <td>
                    <ConfirmAction
                      label={`Delete ${s.key}`}
                      danger
                      title={`Delete segment ${s.key} from ${current}? The server refuses while a flag's rule uses it.`}
                      act={(reason) => api.admin.deleteSegment({ environment: current, key: s.key, reason })}
                      done={segments.reload}
                    />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {segments.data?.length === 0 && <p class="muted">No segments in {current}.</p>}
      {canWrite && current && (
        <form
          class="panel grid-form"
          aria-label={`New segment in ${current}`}
          onSubmit={(e) => {
            e.preventDefault();
            const segment = { key: key.trim(), environment: current, description, included: list(included), excluded: list(excluded) };
            api.admin.createSegment({ segment, reason: "created in the console" }).then(
              () => {
                setKey("");
                setDescription("");
                setIncluded("");
                setExcluded("");
                setError(undefined);
                segments.reload();
              },
              (err: unknown) => setError(describe(err)),
            );
          }}
        >
          <label for="seg-key">New segment key</label>
          <input id="seg-key" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          <label for="seg-description">Description</label>
          <input id="seg-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          <label for="seg-included">Included keys (comma-separated)</label>
          <input id="seg-included" value={included} onInput={(e) => setIncluded(e.currentTarget.value)} />
          <label for="seg-excluded">Excluded keys (comma-separated)</label>
          <input id="seg-excluded" value={excluded} onInput={(e) => setExcluded(e.currentTarget.value)} />
          <ErrorText error={error} />
          <button type="submit">Create segment in {current}</button>
        </form>
      )}
    </Page>
  );
}

/**
 * Environments, with their latest revision; admins create and delete them. Deleting one asks
 * for its key to be typed: the server refuses while anything uses it (a flag configuration, a
 * segment, a metric, a live token), but one that nothing uses goes at once and for good, and a
 * mis-click on the wrong row must not be enough.
 */
export function EnvironmentsPage() {
  const { api, canWrite } = useSession();
  const envs = usePoll(async () => (await api.admin.listEnvironments({})).environments, 1000, [api]);
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <Page title="Environments">
      <ErrorText error={envs.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Name</th>
              <th scope="col">Revision</th>
              <th scope="col">Created</th>
              {canWrite && <th scope="col">Delete</th>}
            </tr>
          </thead>
          <tbody>
            {envs.data?.map((e) => (
              <tr key={e.key}>
                <td>{e.key}</td>
                <td>{e.name}</td>
                <td>{e.revision.toString()}</td>
                <td>
                  <Time t={e.createTime} />
                </td>
                {canWrite && (
                  <td>
                    <ConfirmAction
                      label={`Delete ${e.key}`}
                      danger
                      title={`Delete environment ${e.key}? This cannot be undone. The server refuses while a flag configuration, segment, metric or live token uses it.`}
                      confirmLabel={`Delete ${e.key}`}
                      typeToConfirm={e.key}
                      act={(reason) => api.admin.deleteEnvironment({ key: e.key, reason })}
                      done={envs.reload}
                    />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {canWrite && (
        <form
          class="panel toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            api.admin.createEnvironment({ environment: { key: key.trim(), name: key.trim() }, reason: "created in the console" }).then(
              () => {
                setKey("");
                setError(undefined);
                envs.reload();
              },
              (err: unknown) => setError(describe(err)),
            );
          }}
        >
          <label for="env-key">New environment key</label>
          <input id="env-key" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          <button type="submit">Create environment</button>
          <ErrorText error={error} />
        </form>
      )}
    </Page>
  );
}

/** API tokens (admins only): metadata, create (the secret is shown once), revoke. */
export function TokensPage() {
  const { api, canWrite } = useSession();
  const tokens = usePoll(async () => (await api.admin.listApiTokens({ includeRevoked: true })).tokens, 0, [api]);
  const [name, setName] = useState("");
  const [role, setRole] = useState(String(Role.READ_ONLY));
  const [env, setEnv] = useState("");
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  if (!canWrite) return <Page title="Tokens"><p class="muted">Listing tokens needs an admin token.</p></Page>;
  return (
    <Page title="Tokens">
      <ErrorText error={tokens.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Environment</th>
            <th scope="col">Prefix</th>
            <th scope="col">Created</th>
            <th scope="col">Revoked</th>
            <th scope="col">Revoke</th>
          </tr>
        </thead>
        <tbody>
          {tokens.data?.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>{enumName(Roles, t.role)}</td>
              <td>{t.environment || "—"}</td>
              <td>
                <code>{t.prefix}…</code>
              </td>
              <td>
                <Time t={t.createTime} />
              </td>
              <td>
                <Time t={t.revokeTime} />
              </td>
              <td>{!t.revokeTime && <ConfirmAction label={`Revoke ${t.name}`} danger title={`Revoke token ${t.name}? Its calls are refused at once.`} act={(reason) => api.admin.revokeApiToken({ id: t.id, reason })} done={tokens.reload} />}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="panel grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          api.admin.createApiToken({ name: name.trim(), role: Number(role), environment: env.trim(), reason: "created in the console" }).then(
            (r) => {
              setSecret(r.secret);
              setError(undefined);
              setName("");
              tokens.reload();
            },
            (err: unknown) => setError(describe(err)),
          );
        }}
      >
        <label for="token-name">Name</label>
        <input id="token-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="token-role">Role</label>
        <select id="token-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          <option value={String(Role.READ_ONLY)}>read-only</option>
          <option value={String(Role.SDK)}>sdk (bound to an environment)</option>
          <option value={String(Role.ADMIN)}>admin</option>
        </select>
        <label for="token-env">Environment (SDK tokens)</label>
        <input id="token-env" value={env} onInput={(e) => setEnv(e.currentTarget.value)} />
        <ErrorText error={error} />
        <button type="submit">Create token</button>
      </form>
      {secret && (
        <div class="panel secret" role="status">
          <p>The secret, shown this once (the server keeps only its hash):</p>
          <code data-testid="token-secret">{secret}</code>
          <button type="button" onClick={() => setSecret(undefined)}>
            I have copied it
          </button>
        </div>
      )}
    </Page>
  );
}

/** SDK instances that watch or report. */
export function InstancesPage() {
  const { api } = useSession();
  const instances = usePoll(async () => (await api.metrics.listInstances({})).instances, 2000, [api]);
  return (
    <Page title="SDK instances">
      <ErrorText error={instances.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Instance</th>
              <th scope="col">SDK</th>
              <th scope="col">Version</th>
              <th scope="col">Environment</th>
              <th scope="col">Applied revision</th>
              <th scope="col">Connected</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {instances.data?.map((i) => (
              <tr key={i.instanceId}>
                <td>
                  <code>{i.instanceId.slice(0, 8)}</code>
                </td>
                <td>{i.sdkName}</td>
                <td>{i.sdkVersion}</td>
                <td>{i.environment}</td>
                <td>{i.appliedRevision.toString()}</td>
                <td>{i.connected ? "yes" : "no"}</td>
                <td>
                  <Time t={i.lastSeen} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {instances.data?.length === 0 && <p class="muted">No SDK instance has connected.</p>}
    </Page>
  );
}

export { PlansPage, SchedulesPage } from "./ops.js";
