// One flag: variants; per environment its state (with a toggle that names the environment),
// targets, rules, default rule and prerequisites; history; usage per variant; archive,
// unarchive and delete.
import { useEffect, useState } from "preact/hooks";
import { Operator, ValueType, type Flag } from "../gen/flagwire/v1/flag_pb.js";
import { enumName, formatServe, formatValue, ms, percent } from "../format.js";
import { flagHref } from "../router.js";
import { ConfirmAction, ErrorText, Page, Time, usePoll, useSession } from "../ui.js";
import { History } from "./history.js";
import { RuleEditor } from "./rules.js";

const OperatorNames = Operator as unknown as Record<number, string>;

function Usage({ flag, env }: { flag: Flag; env: string }) {
  const { api } = useSession();
  const usage = usePoll(async () => (await api.metrics.getUsage({ environment: env, flagKey: flag.key })).rows, 2000, [api, env, flag.key]);
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage in {env}</h2>
      <ErrorText error={usage.error} />
      {usage.data?.length === 0 && <p class="muted">No evaluations reported in the retention window.</p>}
      {!!usage.data?.length && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Variant</th>
                <th scope="col">Cohort</th>
                <th scope="col">Evaluations</th>
                <th scope="col">Error rate</th>
                <th scope="col">p50</th>
                <th scope="col">p95</th>
              </tr>
            </thead>
            <tbody>
              {usage.data.map((r) => (
                <tr key={`${r.variant}/${r.cohort}`}>
                  <td>{r.variant}</td>
                  <td>{r.cohort || "—"}</td>
                  <td>{r.evaluations.toString()}</td>
                  <td>{r.successes + r.errors > 0n ? percent(r.errorRate) : "—"}</td>
                  <td>{r.p50Us ? ms(r.p50Us) : "—"}</td>
                  <td>{r.p95Us ? ms(r.p95Us) : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Environment({ flag, env, editor, changed }: { flag: Flag; env: string; editor: number; changed: (f: Flag | undefined) => void }) {
  const { api, canWrite } = useSession();
  const config = flag.environments[env];
  if (!config) return <p class="muted">Not configured in {env}.</p>;
  const verb = config.enabled ? "Turn off" : "Turn on";
  return (
    <div>
      <p data-testid="env-state">
        <span class={config.enabled ? "badge on" : "badge off"}>{config.enabled ? "on" : "off"}</span> in {env}; serves{" "}
        <strong>{config.enabled ? formatServe(config.defaultRule) : config.offVariant}</strong> by default
        {config.enabled ? "" : " (off variant)"}.
      </p>
      {canWrite && (
        <ConfirmAction
          label={`${verb} in ${env}`}
          title={`${verb} ${flag.key} in ${env}? Every SDK connected to ${env} applies it at once.`}
          confirmLabel={`${verb} in ${env}`}
          danger={config.enabled}
          act={async (reason) =>
            changed((await api.admin.setFlagEnabled({ key: flag.key, environment: env, enabled: !config.enabled, expectedVersion: flag.version, reason })).flag)
          }
        />
      )}
      <h3>Targets</h3>
      {config.targets.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul>
          {config.targets.map((t) => (
            <li key={t.variant}>
              {t.variant}: {t.values.join(", ")}
            </li>
          ))}
        </ul>
      )}
      <h3>Prerequisites</h3>
      {config.prerequisites.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul>
          {config.prerequisites.map((p) => (
            <li key={p.flagKey}>
              <a href={flagHref(p.flagKey)}>{p.flagKey}</a> serves {p.variant}
            </li>
          ))}
        </ul>
      )}
      <h3>Rules and default rule</h3>
      {canWrite ? (
        <RuleEditor key={`${env}#${editor}`} flag={flag} env={env} saved={changed} reset={() => changed(undefined)} />
      ) : (
        <>
          <ol>
            {config.rules.map((r, i) => (
              <li key={i}>
                {r.description || `rule ${i + 1}`}: {r.clauses.map((c) => `${c.attribute} ${enumName(OperatorNames, c.operator)} …`).join(" and ")} →{" "}
                {formatServe(r.serve)}
              </li>
            ))}
          </ol>
          <p>Default rule: {formatServe(config.defaultRule)}</p>
        </>
      )}
    </div>
  );
}

/**
 * Archive or unarchive, and delete (admins). Both change what every SDK sees at once, so each
 * confirmation names the flag. The server refuses (FAILED_PRECONDITION) while an active release
 * or ramp owns the flag, or a delete while another flag names it as a prerequisite; the
 * confirmation then shows why and nothing is changed.
 */
function Lifecycle({ flag, changed }: { flag: Flag; changed: (f: Flag | undefined) => void }) {
  const { api, canWrite } = useSession();
  if (!canWrite) return null;
  const archive = !flag.archived;
  const verb = archive ? "Archive" : "Unarchive";
  return (
    <div class="toolbar" role="group" aria-label="Archive or delete">
      <ConfirmAction
        // A state flip seen by the poll closes an open confirmation instead of retargeting it.
        key={verb}
        label={`${verb} flag`}
        title={
          archive
            ? `Archive ${flag.key}? It is kept with its history, but every SDK evaluates it as not found (FLAG_NOT_FOUND) until it is unarchived.`
            : `Unarchive ${flag.key}? Every SDK evaluates it again as configured in each environment.`
        }
        confirmLabel={`${verb} ${flag.key}`}
        act={async (reason) => changed((await api.admin.archiveFlag({ key: flag.key, archived: archive, reason })).flag)}
      />
      <ConfirmAction
        label="Delete flag"
        danger
        title={`Delete ${flag.key} from every environment? SDKs evaluate it as not found at once; this cannot be undone (its history stays in the audit log).`}
        confirmLabel={`Delete ${flag.key}`}
        act={(reason) => api.admin.deleteFlag({ key: flag.key, reason })}
        done={() => {
          // Nothing is left to show here.
          window.location.hash = "#/flags";
        }}
      />
    </div>
  );
}

/** The flag page. */
export function FlagPage({ flagKey }: { flagKey: string }) {
  const { api } = useSession();
  const loaded = usePoll(async () => (await api.admin.getFlag({ key: flagKey })).flag, 1000, [api, flagKey]);
  const [flag, setFlag] = useState<Flag | undefined>(undefined);
  // The rule editor starts again from the stored flag after this page's own writes; a change
  // made elsewhere leaves the edits alone (the editor says so, and its save would be refused).
  const [editor, setEditor] = useState(0);
  useEffect(() => {
    // A newer version from the poll replaces what is shown (the editor keeps its edits unless
    // the version is this page's own write).
    if (loaded.data && (!flag || loaded.data.version !== flag.version || loaded.data.key !== flag.key)) setFlag(loaded.data);
  }, [loaded.data]);
  /** After this page's own write (toggle, rules, revert, archive): show the flag it answered with and start the editor from it. */
  const changed = (f: Flag | undefined) => {
    if (f) setFlag(f);
    setEditor((n) => n + 1);
    loaded.reload();
  };
  const envs = Object.keys(flag?.environments ?? {}).sort();
  const [env, setEnv] = useState("");
  const current = env && envs.includes(env) ? env : envs.includes("production") ? "production" : (envs[0] ?? "");
  if (!flag) return <Page title={flagKey}><ErrorText error={loaded.error} /></Page>;
  return (
    <Page title={flag.key}>
      <p>{flag.description}</p>
      <p class="muted">
        {enumName(ValueType as unknown as Record<number, string>, flag.type)} · version {flag.version.toString()} · updated <Time t={flag.updateTime} />
        {flag.tags.length > 0 && ` · tags: ${flag.tags.join(", ")}`}
      </p>
      {flag.archived && (
        <p class="panel" data-testid="archived">
          Archived: every SDK evaluates it as not found (FLAG_NOT_FOUND); the matrix lists it only with <em>Show archived</em>.
        </p>
      )}
      <Lifecycle flag={flag} changed={changed} />
      <h2>Variants</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          {flag.variants.map((v) => (
            <tr key={v.key}>
              <td>{v.key}</td>
              <td>
                <code>{formatValue(v.value)}</code>
              </td>
              <td>{v.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Environments</h2>
      <div class="tabs" role="group" aria-label="Environment">
        {envs.map((e) => (
          <button type="button" key={e} aria-pressed={e === current} onClick={() => setEnv(e)}>
            {e}
          </button>
        ))}
      </div>
      <Environment
        flag={flag}
        env={current}
        editor={editor}
        changed={changed}
      />
      <Usage flag={flag} env={current} />
      <History flag={flag} changed={changed} />
    </Page>
  );
}
