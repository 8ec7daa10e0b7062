// The rule editor of one environment: rules (clauses and what each serves) and the default
// rule, saved with UpdateFlag at the version read. The server validates; its INVALID_ARGUMENT
// names a field path (environments.production.rules[0].clauses[0].values), shown at that field,
// and nothing is saved.
import { clone, create } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { ClauseSchema, FlagSchema, Operator, RuleSchema, ServeSchema, type Flag, type Serve } from "../gen/flagwire/v1/flag_pb.js";
import { describe, fieldError, type FieldError } from "../api.js";
import { ErrorText, useSession } from "../ui.js";
import { parseServe } from "./create-flag.js";

interface ClauseDraft {
  attribute: string;
  operator: number;
  values: string;
  negate: boolean;
}
interface RuleDraft {
  id: string;
  description: string;
  clauses: ClauseDraft[];
  serve: string;
}

const OPERATORS = Object.entries(Operator).filter(([, v]) => typeof v === "number") as [string, number][];

function valueText(v: Value): string {
  switch (v.kind.case) {
    case "stringValue":
      return v.kind.value;
    case "numberValue":
    case "boolValue":
      return String(v.kind.value);
    default:
      return "";
  }
}

/** Numbers for the numeric operators, strings otherwise: the server says when a value does not fit. */
function toValues(text: string, operator: number): Value[] {
  const numeric = [Operator.LT, Operator.LTE, Operator.GT, Operator.GTE].includes(operator);
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) =>
      numeric && s !== "" && !Number.isNaN(Number(s))
        ? create(ValueSchema, { kind: { case: "numberValue", value: Number(s) } })
        : create(ValueSchema, { kind: { case: "stringValue", value: s } }),
    );
}

/** A serve as the editor writes it: a variant, or `variant:weight, ...` (raw weights). */
function serveText(s: Serve | undefined): string {
  if (s?.kind.case === "split") return s.kind.value.entries.map((e) => `${e.variant}:${e.weight}`).join(", ");
  return s?.kind.case === "variant" ? s.kind.value : "";
}

/** The serve for `text`: the stored one when the text is unchanged, so a split keeps its salt, bucketing and release id. */
function serveOf(text: string, stored: Serve | undefined): Serve {
  return stored && serveText(stored) === text.trim() ? clone(ServeSchema, stored) : parseServe(text);
}

function drafts(flag: Flag, env: string): { rules: RuleDraft[]; defaultRule: string } {
  const config = flag.environments[env];
  return {
    rules: (config?.rules ?? []).map((r) => ({
      id: r.id,
      description: r.description,
      serve: serveText(r.serve),
      clauses: r.clauses.map((c) => ({
        attribute: c.attribute,
        operator: c.operator,
        values: c.values.map(valueText).join(", "),
        negate: c.negate,
      })),
    })),
    defaultRule: serveText(config?.defaultRule),
  };
}

/** The error for a field, when the server's path names it (or something inside it). */
function at(error: FieldError | undefined, path: string, exact = false): string | undefined {
  if (!error) return undefined;
  if (error.field === path) return error.reason;
  if (!exact && (error.field.startsWith(`${path}[`) || error.field.startsWith(`${path}.`))) return error.reason;
  return undefined;
}

function FieldMessage({ id, message }: { id: string; message: string | undefined }) {
  return message ? (
    <span id={id} class="field-error" role="alert">
      {message}
    </span>
  ) : null;
}

/** The editor; `saved` is called with the stored flag. */
export function RuleEditor({ flag, env, saved, reset }: { flag: Flag; env: string; saved: (f: Flag) => void; reset: () => void }) {
  const { api } = useSession();
  // The version the edits start from: saving sends it, so a change made meanwhile is refused
  // (FAILED_PRECONDITION) instead of overwritten.
  const [base] = useState(flag);
  const initial = drafts(base, env);
  const [rules, setRules] = useState<RuleDraft[]>(initial.rules);
  const [defaultRule, setDefaultRule] = useState(initial.defaultRule);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<FieldError | undefined>(undefined);
  const [other, setOther] = useState<string | undefined>(undefined);
  const prefix = `environments.${env}`;
  const update = (i: number, f: (r: RuleDraft) => RuleDraft) => setRules(rules.map((r, j) => (j === i ? f(r) : r)));
  const save = async (e: Event) => {
    e.preventDefault();
    const next = clone(FlagSchema, base);
    const config = next.environments[env];
    if (!config) return;
    const stored = base.environments[env];
    config.rules = rules.map((r, i) =>
      create(RuleSchema, {
        id: r.id,
        description: r.description,
        serve: serveOf(r.serve, (r.id ? stored?.rules.find((x) => x.id === r.id) : stored?.rules[i])?.serve),
        clauses: r.clauses.map((c) =>
          create(ClauseSchema, { attribute: c.attribute.trim(), operator: c.operator, negate: c.negate, values: toValues(c.values, c.operator) }),
        ),
      }),
    );
    config.defaultRule = serveOf(defaultRule, stored?.defaultRule);
    try {
      const r = await api.admin.updateFlag({ flag: next, expectedVersion: base.version, reason: reason || "rules edited in the console" });
      setError(undefined);
      setOther(undefined);
      if (r.flag) saved(r.flag);
    } catch (err) {
      const f = fieldError(err);
      const known = f && f.field.startsWith(`${prefix}.`) ? { field: f.field.slice(prefix.length + 1), reason: f.reason } : undefined;
      setError(known);
      setOther(known ? undefined : f ? `${f.field}: ${f.reason}` : describe(err));
    }
  };
  const unplaced =
    error &&
    !rules.some((_, i) => at(error, `rules[${i}]`)) &&
    !at(error, "defaultRule")
      ? `${error.field}: ${error.reason}`
      : undefined;
  return (
    <form class="rules" onSubmit={(e) => void save(e)} aria-label={`Rules in ${env}`}>
      {flag.version !== base.version && (
        <p class="panel" role="status">
          The flag changed since these rules were loaded (version {base.version.toString()}, now {flag.version.toString()}): saving would be
          refused.{" "}
          <button type="button" onClick={reset}>
            Discard edits and load version {flag.version.toString()}
          </button>
        </p>
      )}
      {rules.map((rule, i) => {
        const p = `rules[${i}]`;
        const ruleLevel = at(error, `${p}.clauses`, true) ?? at(error, `${p}.id`) ?? at(error, `${p}.description`);
        return (
          <fieldset key={i} class="rule">
            <legend>Rule {i + 1}</legend>
            <label for={`r${i}-desc`}>Description</label>
            <input id={`r${i}-desc`} value={rule.description} onInput={(e) => update(i, (r) => ({ ...r, description: e.currentTarget.value }))} />
            <FieldMessage id={`r${i}-err`} message={ruleLevel} />
            {rule.clauses.map((c, j) => {
              const cp = `${p}.clauses[${j}]`;
              const setC = (f: (c: ClauseDraft) => ClauseDraft) =>
                update(i, (r) => ({ ...r, clauses: r.clauses.map((x, k) => (k === j ? f(x) : x)) }));
              const errs = { attribute: at(error, `${cp}.attribute`), operator: at(error, `${cp}.operator`), values: at(error, `${cp}.values`) };
              return (
                <div class="clause" key={j}>
                  <label for={`r${i}c${j}-attr`}>Attribute</label>
                  <input id={`r${i}c${j}-attr`} value={c.attribute} aria-invalid={errs.attribute ? "true" : undefined} aria-describedby={errs.attribute ? `r${i}c${j}-attr-err` : undefined} onInput={(e) => setC((x) => ({ ...x, attribute: e.currentTarget.value }))} />
                  <FieldMessage id={`r${i}c${j}-attr-err`} message={errs.attribute} />
                  <label for={`r${i}c${j}-op`}>Operator</label>
                  <select id={`r${i}c${j}-op`} value={c.operator} aria-invalid={errs.operator ? "true" : undefined} onChange={(e) => setC((x) => ({ ...x, operator: Number(e.currentTarget.value) }))}>
                    {OPERATORS.map(([name, v]) => (
                      <option key={v} value={v}>
                        {name.toLowerCase().replace(/_/g, " ")}
                      </option>
                    ))}
                  </select>
                  <FieldMessage id={`r${i}c${j}-op-err`} message={errs.operator} />
                  <label for={`r${i}c${j}-values`}>Values (comma-separated)</label>
                  <input id={`r${i}c${j}-values`} value={c.values} aria-invalid={errs.values ? "true" : undefined} aria-describedby={errs.values ? `r${i}c${j}-values-err` : undefined} onInput={(e) => setC((x) => ({ ...x, values: e.currentTarget.value }))} />
                  <FieldMessage id={`r${i}c${j}-values-err`} message={errs.values} />
                  <label class="inline">
                    <input type="checkbox" checked={c.negate} onChange={(e) => setC((x) => ({ ...x, negate: e.currentTarget.checked }))} /> negate
                  </label>
                  <button type="button" onClick={() => update(i, (r) => ({ ...r, clauses: r.clauses.filter((_, k) => k !== j) }))}>
                    Remove clause {j + 1}
                  </button>
                </div>
              );
            })}
            <button type="button" onClick={() => update(i, (r) => ({ ...r, clauses: [...r.clauses, { attribute: "", operator: Operator.IN, values: "", negate: false }] }))}>
              Add clause to rule {i + 1}
            </button>
            <label for={`r${i}-serve`}>Serves (a variant, or a split like on:50, off:50)</label>
            <input id={`r${i}-serve`} value={rule.serve} aria-invalid={at(error, `${p}.serve`) ? "true" : undefined} onInput={(e) => update(i, (r) => ({ ...r, serve: e.currentTarget.value }))} />
            <FieldMessage id={`r${i}-serve-err`} message={at(error, `${p}.serve`)} />
            <button type="button" class="danger" onClick={() => setRules(rules.filter((_, k) => k !== i))}>
              Remove rule {i + 1}
            </button>
          </fieldset>
        );
      })}
      <button
        type="button"
        onClick={() => setRules([...rules, { id: "", description: "", serve: flag.variants[0]?.key ?? "", clauses: [{ attribute: "", operator: Operator.IN, values: "", negate: false }] }])}
      >
        Add rule
      </button>
      <label for="default-rule">Default rule (a variant, or a split like on:50, off:50)</label>
      <input id="default-rule" value={defaultRule} aria-invalid={at(error, "defaultRule") ? "true" : undefined} onInput={(e) => setDefaultRule(e.currentTarget.value)} />
      <FieldMessage id="default-rule-err" message={at(error, "defaultRule")} />
      <label for="rules-reason">Reason</label>
      <input id="rules-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      <ErrorText error={other ?? unplaced} />
      <button type="submit" class="primary">
        Save rules in {env}
      </button>
    </form>
  );
}
