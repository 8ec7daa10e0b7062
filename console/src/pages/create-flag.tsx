// Creating a flag: its variants and, in every environment, off with a default rule (one
// variant or a split). Rules, targets and prerequisites are edited on the flag's page.
import { create } from "@bufbuild/protobuf";
import { useState } from "preact/hooks";
import {
  FlagConfigSchema,
  FlagSchema,
  FlagValueSchema,
  ServeSchema,
  SplitEntrySchema,
  SplitSchema,
  ValueType,
  VariantSchema,
  type FlagConfig,
  type FlagValue,
  type Serve,
} from "../gen/flagwire/v1/flag_pb.js";
import { describe, fieldError } from "../api.js";
import { flagHref } from "../router.js";
import { ErrorText, useSession } from "../ui.js";

/** `true`/`false` for booleans; `key=value` lines for strings. */
function parseVariants(type: string, text: string): { key: string; value: FlagValue }[] {
  if (type === "boolean") {
    return [
      { key: "on", value: create(FlagValueSchema, { kind: { case: "boolValue", value: true } }) },
      { key: "off", value: create(FlagValueSchema, { kind: { case: "boolValue", value: false } }) },
    ];
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [key = "", ...rest] = l.split("=");
      return { key: key.trim(), value: create(FlagValueSchema, { kind: { case: "stringValue", value: rest.join("=").trim() } }) };
    });
}

/** `on:50, off:50` -> split entries; anything else is a single variant. */
export function parseServe(text: string): Serve {
  if (!text.includes(":")) return create(ServeSchema, { kind: { case: "variant", value: text.trim() } });
  const entries = text.split(",").map((part) => {
    const [variant = "", weight = "0"] = part.split(":");
    return create(SplitEntrySchema, { variant: variant.trim(), weight: Number.parseInt(weight.trim(), 10) || 0 });
  });
  return create(ServeSchema, { kind: { case: "split", value: create(SplitSchema, { entries }) } });
}

/** The create-flag form (admins only). */
export function CreateFlag({ environments, created }: { environments: string[]; created: () => void }) {
  const { api } = useSession();
  const [key, setKey] = useState("");
  const [description, setDescription] = useState("");
  const [tags, setTags] = useState("");
  const [type, setType] = useState("boolean");
  const [variants, setVariants] = useState("control=control\ntreatment=treatment");
  const [serve, setServe] = useState("on:50, off:50");
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseVariants(type, variants);
    const off = parsed.find((v) => v.key === "off")?.key ?? parsed[0]?.key ?? "";
    const config = (): FlagConfig =>
      create(FlagConfigSchema, { enabled: false, offVariant: off, defaultRule: parseServe(serve) });
    const flag = create(FlagSchema, {
      key: key.trim(),
      description,
      tags: tags.split(",").map((t) => t.trim()).filter(Boolean),
      type: type === "boolean" ? ValueType.BOOLEAN : ValueType.STRING,
      variants: parsed.map((v) => create(VariantSchema, v)),
      environments: Object.fromEntries(environments.map((env) => [env, config()])),
    });
    try {
      await api.admin.createFlag({ flag, reason: "created in the console" });
      setError(undefined);
      created();
      window.location.hash = flagHref(flag.key);
    } catch (err) {
      const f = fieldError(err);
      setError(f ? `${f.field}: ${f.reason}` : describe(err));
    }
  };
  return (
    <details class="panel">
      <summary>Create a flag</summary>
      <form onSubmit={(e) => void submit(e)} class="grid-form">
        <label for="new-key">Key</label>
        <input id="new-key" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        <label for="new-description">Description</label>
        <input id="new-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        <label for="new-tags">Tags (comma-separated)</label>
        <input id="new-tags" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
        <label for="new-type">Type</label>
        <select id="new-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
          <option value="boolean">boolean (variants on, off)</option>
          <option value="string">string</option>
        </select>
        {type === "string" && (
          <>
            <label for="new-variants">Variants (key=value per line)</label>
            <textarea id="new-variants" rows={3} value={variants} onInput={(e) => setVariants(e.currentTarget.value)} />
          </>
        )}
        <label for="new-serve">Default rule: a variant, or a split like on:50, off:50</label>
        <input id="new-serve" value={serve} onInput={(e) => setServe(e.currentTarget.value)} />
        <p class="help">Created off in every environment ({environments.join(", ")}); turn it on per environment on its page.</p>
        <ErrorText error={error} />
        <button type="submit" class="primary">
          Create flag
        </button>
      </form>
    </details>
  );
}
