// A flag's version history: a line diff between any two versions (jsdiff over the protobuf
// JSON) and revert to a version.
import { toJson } from "@bufbuild/protobuf";
import { diffLines } from "diff";
import { useState } from "preact/hooks";
import { FlagSchema, type Flag } from "../gen/flagwire/v1/flag_pb.js";
import { ConfirmAction, ErrorText, Time, usePoll, useSession } from "../ui.js";

/** JSON for diffing: times are left out (every version has new ones). */
export function diffable(json: unknown): string {
  return JSON.stringify(json, (k, v: unknown) => (k === "updateTime" || k === "createTime" ? undefined : v), 2) ?? "";
}

/** A unified line diff of two texts, added and removed lines marked for eyes and screen readers. */
export function Diff({ before, after, label }: { before: string; after: string; label: string }) {
  const parts = diffLines(before, after);
  return (
    <pre class="diff" aria-label={label} tabIndex={0}>
      {parts.map((p, i) => {
        const cls = p.added ? "add" : p.removed ? "del" : "same";
        const mark = p.added ? "+ " : p.removed ? "- " : "  ";
        const lines = p.value.replace(/\n$/, "").split("\n");
        if (!p.added && !p.removed && lines.length > 6) {
          return (
            <span key={i} class="same">
              {`  ${lines.slice(0, 2).join("\n  ")}\n  …\n  ${lines.slice(-2).join("\n  ")}\n`}
            </span>
          );
        }
        return (
          <span key={i} class={cls}>
            {p.added && <span class="sr-only">added: </span>}
            {p.removed && <span class="sr-only">removed: </span>}
            {lines.map((l) => `${mark}${l}`).join("\n")}
            {"\n"}
          </span>
        );
      })}
    </pre>
  );
}

/** The history panel of a flag. */
export function History({ flag, changed }: { flag: Flag; changed: (f: Flag | undefined) => void }) {
  const { api, canWrite } = useSession();
  const versions = usePoll(async () => (await api.admin.listFlagVersions({ key: flag.key })).versions, 0, [api, flag.key, flag.version]);
  const list = [...(versions.data ?? [])].sort((a, b) => Number(b.version - a.version));
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const pick = (v: string, fallback: Flag | undefined) => list.find((f) => f.version.toString() === v) ?? fallback;
  const a = pick(from, list[1]);
  const b = pick(to, list[0]);
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <ErrorText error={versions.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Updated</th>
              {canWrite && <th scope="col">Revert</th>}
            </tr>
          </thead>
          <tbody>
            {list.map((v) => (
              <tr key={v.version.toString()}>
                <td>v{v.version.toString()}</td>
                <td>
                  <Time t={v.updateTime} />
                </td>
                {canWrite && (
                  <td>
                    {v.version !== flag.version && (
                      <ConfirmAction
                        label={`Revert to v${v.version}`}
                        title={`Revert ${flag.key} to version ${v.version} (every environment)?`}
                        act={async (reason) => changed((await api.admin.revertFlag({ key: flag.key, version: v.version, expectedVersion: flag.version, reason })).flag)}
                      />
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.length > 1 && a && b && (
        <>
          <div class="toolbar">
            <label for="diff-from">Compare</label>
            <select id="diff-from" value={a.version.toString()} onChange={(e) => setFrom(e.currentTarget.value)}>
              {list.map((v) => (
                <option key={v.version.toString()} value={v.version.toString()}>
                  v{v.version.toString()}
                </option>
              ))}
            </select>
            <label for="diff-to">with</label>
            <select id="diff-to" value={b.version.toString()} onChange={(e) => setTo(e.currentTarget.value)}>
              {list.map((v) => (
                <option key={v.version.toString()} value={v.version.toString()}>
                  v{v.version.toString()}
                </option>
              ))}
            </select>
          </div>
          <Diff
            label={`Changes from v${a.version} to v${b.version}`}
            before={diffable(toJson(FlagSchema, a, { alwaysEmitImplicit: true }))}
            after={diffable(toJson(FlagSchema, b, { alwaysEmitImplicit: true }))}
          />
        </>
      )}
    </section>
  );
}
