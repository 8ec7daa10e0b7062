// Sign-in with an API token (admin or read-only).
import { useState } from "preact/hooks";
import { ErrorText } from "../ui.js";

/** The sign-in form; `onToken` checks the token with the server. */
export function SignIn({ error, onToken }: { error: string | undefined; onToken: (t: string) => Promise<void> }) {
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <main id="main" class="signin">
      <h1>Flagwire console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          void onToken(token.trim()).finally(() => setBusy(false));
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="help">
          An admin or read-only token (<code>fw_…</code>). It is kept in this tab only (sessionStorage).
        </p>
        <ErrorText error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}
