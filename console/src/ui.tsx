// Shared pieces of every page: the session context, polling, times, errors and the
// reason-required confirmation that every write goes through.
import { createContext, type ComponentChildren } from "preact";
import { useCallback, useContext, useEffect, useRef, useState } from "preact/hooks";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Api } from "./api.js";
import { describe } from "./api.js";
import { times } from "./format.js";

/** Who is signed in and what they may do. */
export interface Session {
  api: Api;
  /** Admin tokens may write; read-only tokens get no write controls. */
  canWrite: boolean;
  /** The token's role, for the header. */
  role: "admin" | "read-only";
  signOut: () => void;
}

/** The signed-in session; pages render only inside a provider. */
export const SessionContext = createContext<Session | null>(null);

/** The current session (pages are only rendered once signed in). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in console");
  return s;
}

/** The result of a load that repeats: the latest data, the latest error, and a way to reload now. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/**
 * Loads now and then every `intervalMs` (0: once), keeping the last good data when a later load
 * fails. Pages use it for live views: the server's state changes under them (the CLI, the judge,
 * SDK acknowledgements), and polling within a second keeps them current without a stream per view.
 */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      try {
        const value = await loadRef.current();
        if (!stopped) {
          setData(value);
          setError(undefined);
        }
      } catch (e) {
        if (!stopped) setError(describe(e));
      }
      if (!stopped && intervalMs > 0) timer = window.setTimeout(() => void run(), intervalMs);
    };
    void run();
    return () => {
      stopped = true;
      if (timer !== undefined) window.clearTimeout(timer);
    };
  }, [...deps, tick, intervalMs]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** A time in the viewer's zone, with UTC on hover. */
export function Time({ t }: { t: Timestamp | undefined }) {
  const f = times(t);
  if (!f) return <span>—</span>;
  return (
    <time dateTime={f.iso} title={f.utc}>
      {f.local}
    </time>
  );
}

/** An error for people, announced to screen readers. */
export function ErrorText({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** A page's heading and body. */
export function Page({ title, children }: { title: string; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · Flagwire`;
  }, [title]);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">{title}</h1>
      {children}
    </section>
  );
}

/**
 * A write behind a confirmation that names what it does and requires a reason (recorded in the
 * audit log). The button opens it; Confirm runs `act` with the reason; a server error stays in
 * the dialog and nothing is changed. With `typeToConfirm`, Confirm stays disabled until that
 * text is typed exactly: for writes that cannot be undone, where a stray click or a confirm
 * pressed on the wrong row must not be enough.
 */
export function ConfirmAction(props: {
  label: string;
  title: string;
  confirmLabel?: string;
  danger?: boolean;
  reasonRequired?: boolean;
  typeToConfirm?: string;
  act: (reason: string) => Promise<unknown>;
  done?: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (open) input.current?.focus();
  }, [open]);
  const required = props.reasonRequired ?? true;
  // Exact, not trimmed or case-folded: the point is to read the key, not to get near it.
  const unconfirmed = props.typeToConfirm !== undefined && typed !== props.typeToConfirm;
  const close = () => {
    setOpen(false);
    setTyped("");
    setError(undefined);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (unconfirmed) return;
    if (required && !reason.trim()) {
      setError("A reason is required.");
      return;
    }
    setBusy(true);
    try {
      await props.act(reason.trim());
      close();
      setReason("");
      props.done?.();
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  if (!open) {
    return (
      <button type="button" class={props.danger ? "danger" : ""} onClick={() => setOpen(true)}>
        {props.label}
      </button>
    );
  }
  const id = `confirm-${props.label.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <form class="confirm" role="dialog" aria-labelledby={`${id}-title`} onSubmit={(e) => void submit(e)}>
      <p id={`${id}-title`} class="confirm-title">
        {props.title}
      </p>
      <label for={`${id}-reason`}>Reason{required ? " (required)" : ""}</label>
      <textarea
        id={`${id}-reason`}
        ref={input}
        rows={2}
        value={reason}
        onInput={(e) => setReason(e.currentTarget.value)}
      />
      {props.typeToConfirm !== undefined && (
        <>
          <label for={`${id}-typed`}>
            Type <strong>{props.typeToConfirm}</strong> to confirm
          </label>
          <input
            id={`${id}-typed`}
            value={typed}
            autocomplete="off"
            spellcheck={false}
            onInput={(e) => setTyped(e.currentTarget.value)}
          />
        </>
      )}
      <ErrorText error={error} />
      <div class="buttons">
        <button type="submit" class={props.danger ? "danger" : "primary"} disabled={busy || unconfirmed}>
          {props.confirmLabel ?? "Confirm"}
        </button>
        <button type="button" onClick={close}>
          Cancel
        </button>
      </div>
    </form>
  );
}
