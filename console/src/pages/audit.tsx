// The audit log: who changed what and why, filtered by flag, actor and time, each event with
// a diff of the object before and after.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { toJson } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";
import { AuditSubjectSchema, type AuditEvent, type AuditSubject } from "../gen/flagwire/v1/admin_pb.js";
import { ErrorText, Page, Time, usePoll, useSession } from "../ui.js";
import { Diff, diffable } from "./history.js";

function subjectJson(s: AuditSubject | undefined): string {
  if (!s || s.kind.case === undefined) return "";
  // The oneof's one member, so the diff shows the object itself.
  const json = toJson(AuditSubjectSchema, s, { alwaysEmitImplicit: true }) as Record<string, unknown>;
  return diffable(Object.values(json)[0] ?? {});
}

function Event({ e }: { e: AuditEvent }) {
  return (
    <li class="audit-event" data-testid="audit-event">
      <details>
        <summary>
          <Time t={e.time} /> · <strong>{e.actor}</strong> {e.action} {e.resourceType} <code>{e.resourceKey}</code>
          {e.reason && <> · “{e.reason}”</>}
        </summary>
        <p class="muted small">
          revisions: {Object.entries(e.revisions).map(([env, r]) => `${env}@${r}`).join(", ") || "—"}
        </p>
        <Diff label={`Changes of ${e.resourceType} ${e.resourceKey}`} before={subjectJson(e.before)} after={subjectJson(e.after)} />
      </details>
    </li>
  );
}

/** The audit page. */
export function AuditPage() {
  const { api } = useSession();
  const [flag, setFlag] = useState("");
  const [actor, setActor] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [pages, setPages] = useState(1);
  const events = usePoll(
    async () => {
      const all: AuditEvent[] = [];
      let pageToken = "";
      for (let i = 0; i < pages; i++) {
        const r = await api.admin.listAuditEvents({
          flagKey: flag.trim(),
          actor: actor.trim(),
          startTime: since ? timestampFromDate(new Date(since)) : undefined,
          endTime: until ? timestampFromDate(new Date(until)) : undefined,
          pageSize: 50,
          pageToken,
        });
        all.push(...r.events);
        pageToken = r.nextPageToken;
        if (!pageToken) return { all, more: false };
      }
      return { all, more: true };
    },
    2000,
    [api, flag, actor, since, until, pages],
  );
  return (
    <Page title="Audit log">
      <form class="toolbar" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="audit-flag">Flag</label>
        <input id="audit-flag" value={flag} onInput={(e) => setFlag(e.currentTarget.value)} />
        <label for="audit-actor">Actor</label>
        <input id="audit-actor" value={actor} onInput={(e) => setActor(e.currentTarget.value)} />
        <label for="audit-since">From</label>
        <input id="audit-since" type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        <label for="audit-until">To</label>
        <input id="audit-until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
      </form>
      <p class="muted small">Times are in your zone; hover one for UTC.</p>
      <ErrorText error={events.error} />
      <ol class="audit">
        {events.data?.all.map((e) => (
          <Event key={e.id.toString()} e={e} />
        ))}
      </ol>
      {events.data?.more && (
        <button type="button" onClick={() => setPages(pages + 1)}>
          Older events
        </button>
      )}
    </Page>
  );
}
