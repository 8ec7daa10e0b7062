// Flags × environments: on/off and what each serves, filtered by tag and text, live.
import { useEffect, useMemo, useState } from "preact/hooks";
import type { Flag, FlagConfig } from "../gen/flagwire/v1/flag_pb.js";
import { formatServe } from "../format.js";
import { flagHref } from "../router.js";
import { ErrorText, Page, usePoll, useSession } from "../ui.js";
import { CreateFlag } from "./create-flag.js";

/**
 * How often the matrix asks whether anything changed. ListEnvironments carries each
 * environment's latest revision, so a cheap poll sees any write (console, CLI, kill switch,
 * judge) and the flags are fetched again only then: a change shows within about half a second
 * without holding a Watch stream (an HTTP/1.1 connection) per environment open in the tab.
 */
const POLL_MS = 400;

function Cell({ flag, env, config }: { flag: Flag; env: string; config: FlagConfig | undefined }) {
  if (!config) return <td class="muted">not configured</td>;
  const serves = config.enabled ? formatServe(config.defaultRule) : config.offVariant;
  const extra = config.enabled
    ? [
        config.targets.length ? `${config.targets.length} targets` : "",
        config.rules.length ? `${config.rules.length} rules` : "",
        config.prerequisites.length ? `${config.prerequisites.length} prerequisites` : "",
      ].filter(Boolean)
    : [];
  return (
    <td data-testid={`cell-${flag.key}-${env}`}>
      <span class={config.enabled ? "badge on" : "badge off"}>{config.enabled ? "on" : "off"}</span>{" "}
      <span class="serves">{serves}</span>
      {extra.length > 0 && <span class="muted small"> · {extra.join(", ")}</span>}
    </td>
  );
}

/** The flags matrix. */
export function FlagsPage() {
  const { api, canWrite } = useSession();
  const [text, setText] = useState("");
  const [tag, setTag] = useState("");
  // Archived flags evaluate as not found; the matrix hides them unless asked, as the CLI does.
  const [archived, setArchived] = useState(false);
  const envs = usePoll(async () => (await api.admin.listEnvironments({})).environments, POLL_MS, [api]);
  const revisions = envs.data?.map((e) => `${e.key}@${e.revision}`).join(",") ?? "";
  const flags = usePoll(async () => {
    const all: Flag[] = [];
    let pageToken = "";
    do {
      const r = await api.admin.listFlags({ pageSize: 500, pageToken, includeArchived: archived });
      all.push(...r.flags);
      pageToken = r.nextPageToken;
    } while (pageToken);
    return all;
  }, 0, [api, revisions, archived]);
  const tags = useMemo(() => [...new Set(flags.data?.flatMap((f) => f.tags) ?? [])].sort(), [flags.data]);
  const shown = (flags.data ?? []).filter(
    (f) =>
      (!tag || f.tags.includes(tag)) &&
      (!text || f.key.includes(text.toLowerCase()) || f.description.toLowerCase().includes(text.toLowerCase())),
  );
  useEffect(() => {
    if (tag && !tags.includes(tag)) setTag("");
  }, [tags, tag]);
  const envKeys = envs.data?.map((e) => e.key) ?? [];
  return (
    <Page title="Flags">
      <div class="toolbar" role="search">
        <label for="flag-filter">Filter</label>
        <input id="flag-filter" type="search" value={text} placeholder="key or description" onInput={(e) => setText(e.currentTarget.value)} />
        <label for="tag-filter">Tag</label>
        <select id="tag-filter" value={tag} onChange={(e) => setTag(e.currentTarget.value)}>
          <option value="">all tags</option>
          {tags.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <label class="inline">
          <input type="checkbox" checked={archived} onChange={(e) => setArchived(e.currentTarget.checked)} /> Show archived
        </label>
      </div>
      <ErrorText error={envs.error ?? flags.error} />
      <div class="scroll">
        <table class="matrix" aria-label="Flags by environment">
          <thead>
            <tr>
              <th scope="col">Flag</th>
              {envKeys.map((e) => (
                <th scope="col" key={e}>
                  {e}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((f) => (
              <tr key={f.key}>
                <th scope="row">
                  <a href={flagHref(f.key)}>{f.key}</a>
                  {f.archived && <span class="muted small"> (archived)</span>}
                  {f.tags.length > 0 && <div class="tags">{f.tags.map((t) => <span class="tag" key={t}>{t}</span>)}</div>}
                </th>
                {envKeys.map((e) => (
                  <Cell key={e} flag={f} env={e} config={f.environments[e]} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {flags.data && shown.length === 0 && <p class="muted">No flags match.</p>}
      {canWrite && envs.data && <CreateFlag environments={envKeys} created={flags.reload} />}
    </Page>
  );
}
