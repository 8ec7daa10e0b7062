// The console's shell: sign-in, navigation and the hash router. The token lives in
// sessionStorage (gone when the tab closes) and goes to the server as a bearer token only.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { connect, describe, grpcBaseUrl, isPermissionDenied } from "./api.js";
import { SessionContext, type Session } from "./ui.js";
import { useRoute, type Route } from "./router.js";
import { SignIn } from "./pages/signin.js";
import { FlagsPage } from "./pages/flags.js";
import { FlagPage } from "./pages/flag.js";
import { KillPage } from "./pages/kill.js";
import { ReleasesPage } from "./pages/releases.js";
import { ReleasePage } from "./pages/release.js";
import { AuditPage } from "./pages/audit.js";
import {
  EnvironmentsPage,
  InstancesPage,
  PlansPage,
  SchedulesPage,
  SegmentsPage,
  TokensPage,
} from "./pages/others.js";

const TOKEN_KEY = "flagwire.token";

/**
 * Signs in: the token must list environments (admin or read-only; SDK tokens are refused), and
 * it is an admin token when ListApiTokens, which only admins may call, answers. The console
 * learns its role the way any client would, by asking the server, so it never offers a write
 * the server would refuse (and the server refuses it anyway).
 */
async function signIn(token: string): Promise<Omit<Session, "signOut">> {
  const api = connect(await grpcBaseUrl(), token);
  try {
    await api.admin.listEnvironments({});
  } catch (e) {
    if (isPermissionDenied(e)) throw new Error("This token may not use the console (SDK tokens are bound to the SDK calls).");
    throw e;
  }
  try {
    await api.admin.listApiTokens({});
    return { api, canWrite: true, role: "admin" };
  } catch (e) {
    if (isPermissionDenied(e)) return { api, canWrite: false, role: "read-only" };
    throw e;
  }
}

const NAV: [string, string][] = [
  ["#/flags", "Flags"],
  ["#/releases", "Releases"],
  ["#/kill", "Kill switch"],
  ["#/segments", "Segments"],
  ["#/environments", "Environments"],
  ["#/tokens", "Tokens"],
  ["#/plans", "Plans"],
  ["#/schedules", "Schedules & ramps"],
  ["#/instances", "SDK instances"],
  ["#/audit", "Audit log"],
];

function Content({ route }: { route: Route }) {
  switch (route.page) {
    case "flag":
      return <FlagPage flagKey={route.id} />;
    case "kill":
      return <KillPage />;
    case "releases":
      return <ReleasesPage />;
    case "release":
      return <ReleasePage id={route.id} />;
    case "segments":
      return <SegmentsPage />;
    case "environments":
      return <EnvironmentsPage />;
    case "tokens":
      return <TokensPage />;
    case "plans":
      return <PlansPage />;
    case "schedules":
      return <SchedulesPage />;
    case "instances":
      return <InstancesPage />;
    case "audit":
      return <AuditPage />;
    default:
      return <FlagsPage />;
  }
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | undefined>(undefined);
  const [checking, setChecking] = useState(true);
  const route = useRoute();
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSession(null);
  };
  const attempt = async (token: string) => {
    try {
      const s = await signIn(token);
      sessionStorage.setItem(TOKEN_KEY, token);
      setSession({ ...s, signOut });
      setError(undefined);
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      setError(e instanceof Error && !("code" in e) ? e.message : describe(e));
    }
  };
  useEffect(() => {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) void attempt(saved).finally(() => setChecking(false));
    else setChecking(false);
  }, []);
  if (checking) return <p>Loading…</p>;
  if (!session) return <SignIn error={error} onToken={attempt} />;
  const current = `#/${route.page === "flag" ? "flags" : route.page === "release" ? "releases" : route.page}`;
  return (
    <SessionContext.Provider value={session}>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          // The hash is the router's: move focus without navigating.
          e.preventDefault();
          document.getElementById("main")?.focus();
        }}
      >
        Skip to content
      </a>
      <header>
        <span class="brand">Flagwire</span>
        <nav aria-label="Console">
          <ul>
            {NAV.map(([href, label]) => (
              <li key={href}>
                <a href={href} aria-current={current === href ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="role" data-testid="role">
          {session.role}
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Content route={route} />
      </main>
    </SessionContext.Provider>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
