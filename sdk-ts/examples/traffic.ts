/**
 * A traffic generator: synthetic requests, measured per variant, for canary rollouts and
 * releases.
 *
 *   (cd sdk-ts && npm run build && npm run build:examples)
 *   FLAGWIRE_TOKEN=$(cat data/sdk-token) node sdk-ts/dist-examples/traffic.js \
 *     --flag new-checkout --instances 3 --error-rate on=0.2
 *
 * It runs `--instances` independent clients (`createClient` of `@flagwire/sdk/node`: native
 * gRPC over HTTP/2; each its own instance id, Watch stream and metrics reports) and issues
 * `--rps` requests per second in total, open loop (a request starts on schedule whether or not
 * earlier ones have finished), round-robin over the instances. Each request picks a user
 * `user-<k>` (k uniform in 0..100000) as the targeting key and runs as ONE request scope
 * (`client.scope(work)`) that evaluates every `--flag`, in order: the work sleeps a lognormal
 * latency (median `--latency-ms` of the variant the first flag served, sigma 0.5) and fails by
 * throwing, which the scope records as the request's error outcome (against every flag read,
 * and once per release cohort served). It fails with the probability of the first flag's
 * variant (`--error-rate`), unless an `--error-when` condition matches everything the request
 * was served: then with the largest probability among the matching conditions.
 *
 * The team's own metrics, recorded on the request's scope (`f.trackOutcome`, `f.observe`,
 * `f.track`) after its latency and before it fails, so that a release's gates have something to
 * judge (each option repeatable; the last one of a name counts): `--outcome NAME=P` records
 * `trackOutcome(NAME, ok)`, ok with probability P (a mem0 write); `--outcome-when
 * NAME:FLAG=V[,FLAG=V...]:P` makes it P for requests served every pair (the smallest P of the
 * matching conditions; NAME needs an `--outcome`); `--observe NAME=MEDIAN` records a lognormal
 * value around MEDIAN (sigma 0.5; a latency); `--track NAME=V[,V...]` one of the values,
 * uniformly (a score).
 *
 * Every second a line of progress goes to stderr; at `--duration` seconds, or on SIGINT/SIGTERM,
 * it lets requests in flight finish, flushes and closes the clients, prints a summary (per
 * metric too: `metric NAME: events=N`, with `failed=M` for outcomes) and exits 0. It exits 1
 * when the clients cannot become ready within 10 s (wrong endpoint or token) and 2 on bad
 * arguments.
 *
 * The Python SDK (`sdk-python/examples/traffic.py`) and the Rust SDK (`cargo run -p flagwire
 * --example traffic -- ...`) have generators with the same options.
 */
import { parseArgs } from "node:util";
import { createClient, FlagwireError, type FlagwireClient, type ReleaseCohort, type Tracker } from "@flagwire/sdk/node";

const READY_TIMEOUT_MS = 10_000;
const USERS = 100_000;
const SIGMA = 0.5;
const DEFAULT_ERROR_RATE = 0.01;
const DEFAULT_LATENCY_MS = 20;
const DRAIN_TIMEOUT_MS = 10_000;

const USAGE = `usage: traffic.js --flag KEY... [--endpoint URL] [--token TOKEN] [--rps N] [--instances N]
                  [--duration SECS] [--error-rate V=P]... [--latency-ms V=MS]...
                  [--error-when FLAG=V[,FLAG=V...]:P]... [--outcome NAME=P]...
                  [--outcome-when NAME:FLAG=V[,FLAG=V...]:P]... [--observe NAME=MEDIAN]...
                  [--track NAME=V[,V...]]... [--flush-ms N] [--seed N]

  --endpoint URL     the server's gRPC URL (default http://127.0.0.1:7070)
  --token TOKEN      an sdk token (default: $FLAGWIRE_TOKEN)
  --flag KEY         a flag to evaluate (any type); repeatable: each request evaluates every
                     flag, in order, in one measured scope
  --rps N            requests per second, all instances together (default 200)
  --instances N      independent SDK clients (default 1)
  --duration SECS    seconds to run; 0 = until SIGINT/SIGTERM (default 0)
  --error-rate V=P   failure probability when the first flag serves variant V (repeatable;
                     default ${DEFAULT_ERROR_RATE})
  --latency-ms V=MS  median latency when the first flag serves variant V (repeatable; default
                     ${DEFAULT_LATENCY_MS})
  --error-when FLAG=V[,FLAG=V...]:P
                     failure probability of a request served every listed variant; the largest
                     P of the matching conditions replaces --error-rate (repeatable)
  --outcome NAME=P   record trackOutcome(NAME, ok) in every request, ok with probability P
                     (repeatable)
  --outcome-when NAME:FLAG=V[,FLAG=V...]:P
                     success probability of NAME for requests served every listed variant; the
                     smallest P of the matching conditions replaces --outcome (repeatable)
  --observe NAME=MEDIAN
                     record observe(NAME, value) in every request, lognormal around MEDIAN
                     (sigma ${SIGMA}; repeatable)
  --track NAME=V[,V...]
                     record track(NAME, value) in every request, one of the values at random
                     (repeatable)
  --flush-ms N       metrics flush interval (default 1000)
  --seed N           random seed (default: random)`;

/** Bad arguments: the usage and the problem on stderr, exit 2. */
class UsageError extends Error {}

/** The failure a request of a variant is told to have. */
class SimulatedFailure extends Error {}

/** `--error-when`: a request served every (flag, variant) of `when` fails with `p`. */
interface Condition {
  when: [flag: string, variant: string][];
  p: number;
}

/** `--outcome-when`: outcome `name` of a request served every (flag, variant) of `when` succeeds with `p`. */
interface OutcomeCondition extends Condition {
  name: string;
}

/** What the SDKs accept as a metric name (tests/metrics/README.md); others are refused here rather than dropped silently. */
const METRIC_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

interface Options {
  endpoint: string;
  token: string;
  flags: string[];
  rps: number;
  instances: number;
  duration: number;
  errorRate: Map<string, number>;
  latencyMs: Map<string, number>;
  errorWhen: Condition[];
  outcome: Map<string, number>;
  outcomeWhen: OutcomeCondition[];
  observe: Map<string, number>;
  track: Map<string, number[]>;
  flushMs: number;
  seed: bigint;
}

function number(option: string, value: string | undefined, fallback: number, ok: (n: number) => boolean, want: string): number {
  if (value === undefined) return fallback;
  const n = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${option} ${value}: must be ${want}`);
  return n;
}

/** `VARIANT=NUMBER` options (repeatable; the last one of a variant counts). */
function pairs(option: string, values: string[] | undefined, ok: (n: number) => boolean, want: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const value of values ?? []) {
    const at = value.lastIndexOf("=");
    if (at <= 0) throw new UsageError(`${option} wants VARIANT=NUMBER, got ${JSON.stringify(value)}`);
    out.set(value.slice(0, at), number(option, value.slice(at + 1), 0, ok, want));
  }
  return out;
}

/** `FLAG=VARIANT[,FLAG=VARIANT...]:P` (of `option`), each flag one of `flags`. */
function condition(option: string, value: string, flags: readonly string[]): Condition {
  const colon = value.lastIndexOf(":");
  if (colon <= 0) throw new UsageError(`${option} wants FLAG=VARIANT[,FLAG=VARIANT...]:P, got ${JSON.stringify(value)}`);
  const when = value
    .slice(0, colon)
    .split(",")
    .map((pair): [string, string] => {
      const at = pair.indexOf("=");
      const flag = pair.slice(0, at);
      const variant = pair.slice(at + 1);
      if (at <= 0 || variant === "") throw new UsageError(`${option} ${value}: ${JSON.stringify(pair)} is not FLAG=VARIANT`);
      if (!flags.includes(flag)) throw new UsageError(`${option} ${value}: ${flag} is not one of the --flag options`);
      return [flag, variant];
    });
  const p = number(option, value.slice(colon + 1), 0, (n) => n >= 0 && n <= 1, "a probability between 0 and 1");
  return { when, p };
}

/** `--error-when FLAG=VARIANT[,FLAG=VARIANT...]:P` options. */
function conditions(values: string[] | undefined, flags: readonly string[]): Condition[] {
  return (values ?? []).map((value) => condition("--error-when", value, flags));
}

function metricName(option: string, value: string, name: string): string {
  if (!METRIC_NAME.test(name)) {
    throw new UsageError(
      `${option} ${value}: ${JSON.stringify(name)} is not a metric name (lowercase letters, digits, '.', '_', '-', starting with a letter or digit, at most 64)`,
    );
  }
  return name;
}

/** `NAME=NUMBER` options of metrics (repeatable; the last one of a name counts). */
function metricPairs(option: string, values: string[] | undefined, ok: (n: number) => boolean, want: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const value of values ?? []) {
    const at = value.lastIndexOf("=");
    if (at <= 0) throw new UsageError(`${option} wants NAME=NUMBER, got ${JSON.stringify(value)}`);
    const name = metricName(option, value, value.slice(0, at));
    const raw = value.slice(at + 1);
    const n = raw.trim() === "" ? Number.NaN : Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${option} ${value}: must be ${want}`);
    out.set(name, n);
  }
  return out;
}

/** `--outcome-when NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P` options, each NAME an `--outcome`. */
function outcomeConditions(values: string[] | undefined, flags: readonly string[], outcome: ReadonlyMap<string, number>): OutcomeCondition[] {
  const option = "--outcome-when";
  return (values ?? []).map((value) => {
    const colon = value.indexOf(":");
    if (colon <= 0) throw new UsageError(`${option} wants NAME:FLAG=VARIANT[,FLAG=VARIANT...]:P, got ${JSON.stringify(value)}`);
    const name = value.slice(0, colon);
    if (!outcome.has(name)) throw new UsageError(`${option} ${value}: no --outcome ${name}=P to replace`);
    return { name, ...condition(option, value.slice(colon + 1), flags) };
  });
}

/** `--track NAME=V[,V...]` options (the last one of a name counts). */
function tracks(values: string[] | undefined): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const value of values ?? []) {
    const at = value.indexOf("=");
    if (at <= 0 || at === value.length - 1) throw new UsageError(`--track wants NAME=VALUE[,VALUE...], got ${JSON.stringify(value)}`);
    const name = metricName("--track", value, value.slice(0, at));
    const numbers = value
      .slice(at + 1)
      .split(",")
      .map((n) => (n.trim() === "" ? Number.NaN : Number(n)));
    if (!numbers.every(Number.isFinite)) throw new UsageError(`--track ${value}: the values must be finite numbers`);
    out.set(name, numbers);
  }
  return out;
}

function randomSeed(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(words[0]!) << 32n) | BigInt(words[1]!)) & ((1n << 63n) - 1n);
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        endpoint: { type: "string" },
        token: { type: "string" },
        flag: { type: "string", multiple: true },
        rps: { type: "string" },
        instances: { type: "string" },
        duration: { type: "string" },
        "error-rate": { type: "string", multiple: true },
        "latency-ms": { type: "string", multiple: true },
        "error-when": { type: "string", multiple: true },
        outcome: { type: "string", multiple: true },
        "outcome-when": { type: "string", multiple: true },
        observe: { type: "string", multiple: true },
        track: { type: "string", multiple: true },
        "flush-ms": { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const token = values.token ?? env.FLAGWIRE_TOKEN ?? "";
  if (token === "") throw new UsageError("no token: pass --token or set FLAGWIRE_TOKEN");
  const flags = values.flag ?? [];
  if (flags.length === 0) throw new UsageError("--flag is required");
  if (flags.includes("")) throw new UsageError("--flag must not be empty");
  let seed: bigint;
  if (values.seed === undefined) {
    seed = randomSeed();
  } else if (/^\d+$/.test(values.seed)) {
    seed = BigInt(values.seed);
  } else {
    throw new UsageError(`--seed ${values.seed}: must be a non-negative integer`);
  }
  const outcome = metricPairs("--outcome", values.outcome, (n) => n >= 0 && n <= 1, "a probability between 0 and 1");
  return {
    endpoint: values.endpoint ?? "http://127.0.0.1:7070",
    token,
    flags,
    rps: number("--rps", values.rps, 200, (n) => n > 0, "positive"),
    instances: number("--instances", values.instances, 1, (n) => Number.isInteger(n) && n >= 1, "an integer of at least 1"),
    duration: number("--duration", values.duration, 0, (n) => n >= 0, "0 or positive"),
    errorRate: pairs("--error-rate", values["error-rate"], (n) => n >= 0 && n <= 1, "a probability between 0 and 1"),
    latencyMs: pairs("--latency-ms", values["latency-ms"], (n) => n >= 0, "0 or positive"),
    errorWhen: conditions(values["error-when"], flags),
    outcome,
    outcomeWhen: outcomeConditions(values["outcome-when"], flags, outcome),
    observe: metricPairs("--observe", values.observe, (n) => n > 0, "positive"),
    track: tracks(values.track),
    flushMs: number("--flush-ms", values["flush-ms"], 1000, (n) => n > 0, "positive"),
    seed,
  };
}

/** xoshiro128** seeded through splitmix64: a small, fast, seedable generator. */
class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: bigint) {
    const mask = (1n << 64n) - 1n;
    let x = seed & mask;
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      x = (x + 0x9e3779b97f4a7c15n) & mask;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
      z ^= z >> 31n;
      words.push(Number(z >> 32n), Number(z & 0xffffffffn));
    }
    [this.a, this.b, this.c, this.d] = words as [number, number, number, number];
  }

  /** Uniform in [0, 1). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result / 2 ** 32;
  }

  /** Standard normal (Box–Muller). */
  gauss(): number {
    const u = 1 - this.next(); // (0, 1]
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

interface VariantStats {
  requests: number;
  errors: number;
  completed: number;
  latencyMs: number;
}

/** Events recorded of one of the team's metrics; outcomes count their failures. */
interface MetricStats {
  events: number;
  failed: number;
}

/** Requests (scopes) of one release cohort, as the server counts its outcomes. */
interface CohortStats {
  requests: number;
  errors: number;
}

const byKey = <V>([a]: [string, V], [b]: [string, V]): number => (a < b ? -1 : a > b ? 1 : 0);

const label = (variant: string): string => (variant === "" ? "(none)" : variant);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

class Generator {
  sent = 0;
  completed = 0;
  readonly byVariant = new Map<string, VariantStats>();
  /** `release <id> <cohort>` → requests of that release cohort. */
  readonly byRelease = new Map<string, CohortStats>();
  readonly byMetric = new Map<string, MetricStats>();
  readonly inFlight = new Set<Promise<void>>();
  clients: FlagwireClient[] = [];
  stopped = false;
  private wakeUp: (() => void) | undefined;
  private readonly warned = new Set<string>();
  private readonly random: Random;

  constructor(readonly options: Options) {
    this.random = new Random(options.seed);
  }

  variant(key: string): VariantStats {
    let stats = this.byVariant.get(key);
    if (stats === undefined) {
      stats = { requests: 0, errors: 0, completed: 0, latencyMs: 0 };
      this.byVariant.set(key, stats);
    }
    return stats;
  }

  line(): string {
    const parts = [...this.byVariant.entries()]
      .sort(byKey)
      .map(([k, v]) => `${label(k)}: ${v.requests} (err ${v.errors})`);
    return `sent=${this.sent} in_flight=${this.sent - this.completed} by_variant={${parts.join(", ")}}`;
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  async connect(): Promise<void> {
    const { endpoint, token, flushMs, instances } = this.options;
    for (let i = 0; i < instances; i++) {
      this.clients.push(createClient({ baseUrl: endpoint, token, metricsFlushIntervalMs: flushMs }));
    }
    const results = await Promise.allSettled(this.clients.map((c) => c.waitReady(READY_TIMEOUT_MS)));
    const failure = results.find((r) => r.status === "rejected");
    if (failure !== undefined) {
      await Promise.all(this.clients.map((c) => c.close()));
      const e: unknown = failure.reason;
      const why =
        e instanceof FlagwireError && e.code === "UNAUTHORIZED"
          ? `the server refused the token (${e.message})`
          : `not ready within ${READY_TIMEOUT_MS / 1000} s (${e instanceof Error ? e.message : String(e)})`;
      throw new Error(`the SDK could not connect to ${endpoint}: ${why}`);
    }
    this.clients.forEach((c, i) => {
      log(`traffic: instance ${i} ${c.instanceId} ready`);
    });
  }

  /**
   * The failure probability of a request served `served` (flag → variant): the largest P of the
   * `--error-when` conditions it matches, or else the first flag's variant's `--error-rate`.
   */
  failureProbability(served: ReadonlyMap<string, string>): number {
    let p: number | undefined;
    for (const c of this.options.errorWhen) {
      if (c.when.every(([flag, variant]) => served.get(flag) === variant)) p = Math.max(p ?? 0, c.p);
    }
    return p ?? this.options.errorRate.get(served.get(this.options.flags[0]!) ?? "") ?? DEFAULT_ERROR_RATE;
  }

  /**
   * The success probability of outcome `name` for a request served `served`: the smallest P of
   * its `--outcome-when` conditions that match, or else its `--outcome`.
   */
  successProbability(name: string, served: ReadonlyMap<string, string>): number {
    let p: number | undefined;
    for (const c of this.options.outcomeWhen) {
      if (c.name === name && c.when.every(([flag, v]) => served.get(flag) === v)) p = Math.min(p ?? 1, c.p);
    }
    return p ?? this.options.outcome.get(name) ?? 1;
  }

  /** Records the request's own metrics on its scope `f`, from its draws. */
  record(f: Tracker, served: ReadonlyMap<string, string>, draws: readonly number[]): void {
    let i = 0;
    const count = (name: string, ok: boolean): void => {
      const stats = this.byMetric.get(name) ?? { events: 0, failed: 0 };
      stats.events++;
      if (!ok) stats.failed++;
      this.byMetric.set(name, stats);
    };
    for (const name of this.options.outcome.keys()) {
      const ok = draws[i++]! < this.successProbability(name, served);
      f.trackOutcome(name, ok);
      count(name, ok);
    }
    for (const [name, median] of this.options.observe) {
      f.observe(name, median * Math.exp(SIGMA * draws[i++]!));
      count(name, true);
    }
    for (const [name, values] of this.options.track) {
      // `tracks` makes at least one value, so the index always holds one.
      f.track(name, values[Math.min(Math.floor(draws[i++]! * values.length), values.length - 1)] ?? values[0]);
      count(name, true);
    }
  }

  /** Starts one request (its random draws are made now, in order, so a seed replays). */
  request(client: FlagwireClient): void {
    const user = Math.floor(this.random.next() * USERS);
    const u = this.random.next();
    const z = this.random.gauss();
    // The metrics' draws come after, so a seed replays the same requests with or without.
    const { outcome, observe, track } = this.options;
    const draws = [
      ...Array.from(outcome.keys(), () => this.random.next()),
      ...Array.from(observe.keys(), () => this.random.gauss()),
      ...Array.from(track.keys(), () => this.random.next()),
    ];
    this.sent++;
    const started = performance.now();
    const ctx = { targetingKey: `user-${user}` };
    let variant = "";
    let releases: readonly ReleaseCohort[] = [];
    let failed = false;
    const done = client
      .scope(async (f) => {
        const served = new Map<string, string>();
        for (const flag of this.options.flags) {
          const v = f.getValueDetails(flag, ctx, undefined).variant ?? "";
          served.set(flag, v);
          if (v === "" && !this.warned.has(flag)) {
            this.warned.add(flag);
            log(`traffic: warning: flag ${JSON.stringify(flag)} served no variant (missing from the token's environment?); nothing is measured for it`);
          }
        }
        variant = served.get(this.options.flags[0]!) ?? "";
        releases = f.releases;
        this.variant(variant).requests++;
        await sleep((this.options.latencyMs.get(variant) ?? DEFAULT_LATENCY_MS) * Math.exp(SIGMA * z));
        this.record(f, served, draws);
        if (u < this.failureProbability(served)) throw new SimulatedFailure(variant);
      })
      .catch((e: unknown) => {
        failed = true;
        if (!(e instanceof SimulatedFailure)) log(`traffic: unexpected error: ${String(e)}`);
      })
      .finally(() => {
        const stats = this.variant(variant);
        stats.completed++;
        if (failed) stats.errors++;
        stats.latencyMs += performance.now() - started;
        for (const r of releases) {
          const key = `release ${r.releaseId} ${r.cohort}`;
          const cohort = this.byRelease.get(key) ?? { requests: 0, errors: 0 };
          cohort.requests++;
          if (failed) cohort.errors++;
          this.byRelease.set(key, cohort);
        }
        this.completed++;
        this.inFlight.delete(done);
      });
    this.inFlight.add(done);
  }

  /** Issues requests on schedule until --duration or a signal; returns the seconds run. */
  async dispatch(): Promise<number> {
    const { rps, duration } = this.options;
    const start = performance.now();
    const elapsedS = (): number => (performance.now() - start) / 1000;
    const reporter = this.report(start);
    let n = 0;
    while (!this.stopped) {
      const elapsed = duration > 0 ? Math.min(elapsedS(), duration) : elapsedS();
      // Request i is due at i / rps seconds; all of them before --duration are sent.
      let due = Math.floor(elapsed * rps) + 1;
      if (duration > 0) due = Math.min(due, Math.ceil(duration * rps));
      for (; n < due; n++) this.request(this.clients[n % this.clients.length]!);
      if (duration > 0 && elapsed >= duration) break;
      const waitMs = (n / rps - elapsedS()) * 1000;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        setTimeout(resolve, Math.min(Math.max(waitMs, 0), 50));
      });
      this.wakeUp = undefined;
    }
    reporter.stop();
    return duration > 0 ? Math.min(elapsedS(), duration) : elapsedS();
  }

  private report(start: number): { stop(): void } {
    let second = 0;
    let timer: NodeJS.Timeout | undefined;
    const schedule = (): void => {
      second++;
      timer = setTimeout(
        () => {
          const states = this.clients.map((c) => c.state);
          const extra = states.some((s) => s !== "READY") ? ` states=${states.join(",")}` : "";
          log(`t=${second}s ${this.line()}${extra}`);
          schedule();
        },
        Math.max(0, start + second * 1000 - performance.now()),
      );
    };
    schedule();
    return {
      stop: () => {
        clearTimeout(timer);
      },
    };
  }

  async drain(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, DRAIN_TIMEOUT_MS)));
    await Promise.race([Promise.all(this.inFlight), timeout]);
    clearTimeout(timer);
  }

  /** Flushes and closes every client; resolves to whether every final flush was delivered. */
  async close(): Promise<boolean> {
    const delivered = await Promise.all(this.clients.map((c) => c.flush()));
    await Promise.all(this.clients.map((c) => c.close()));
    return delivered.every(Boolean);
  }

  summary(ran: number, delivered: boolean): string {
    const rate = ran > 0 ? this.sent / ran : 0;
    const lines = [
      `summary: ran=${ran.toFixed(1)}s instances=${this.clients.length} sent=${this.sent} ` +
        `completed=${this.completed} rps=${rate.toFixed(1)} seed=${String(this.options.seed)} ` +
        `metrics_flushed=${delivered ? "yes" : "NO"}`,
    ];
    for (const [key, v] of [...this.byVariant.entries()].sort(byKey)) {
      const errorRate = v.completed > 0 ? v.errors / v.completed : 0;
      const mean = v.completed > 0 ? v.latencyMs / v.completed : 0;
      lines.push(
        `  ${label(key)}: requests=${v.requests} errors=${v.errors} ` +
          `error_rate=${errorRate.toFixed(3)} mean_latency_ms=${mean.toFixed(1)}`,
      );
    }
    // One line per release cohort served (the outcomes the server judges the release on).
    for (const [key, c] of [...this.byRelease.entries()].sort(byKey)) {
      const errorRate = c.requests > 0 ? c.errors / c.requests : 0;
      lines.push(`  ${key}: requests=${c.requests} errors=${c.errors} error_rate=${errorRate.toFixed(3)}`);
    }
    for (const [name, m] of [...this.byMetric.entries()].sort(byKey)) {
      const failed = this.options.outcome.has(name) ? ` failed=${m.failed}` : "";
      lines.push(`  metric ${name}: events=${m.events}${failed}`);
    }
    return lines.join("\n");
  }
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log(`${USAGE}\ntraffic: error: ${e.message}`);
    return 2;
  }
  const generator = new Generator(options);
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`traffic: ${signal}: stopping`);
    generator.stop();
    // A second signal ends it at once.
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      process.removeAllListeners(s);
      process.once(s, () => {
        process.exit(130);
      });
    }
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  log(
    `traffic: flag=${options.flags.join(",")} endpoint=${options.endpoint} instances=${options.instances} ` +
      `rps=${options.rps} duration=${options.duration}s seed=${String(options.seed)}`,
  );
  try {
    await generator.connect();
  } catch (e) {
    log(`traffic: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const ran = await generator.dispatch();
  await generator.drain();
  const delivered = await generator.close();
  log(generator.summary(ran, delivered));
  return 0;
}

process.exit(await main());
