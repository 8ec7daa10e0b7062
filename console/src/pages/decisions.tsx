// A release's decision log, newest first, each with the statistics behind it: per-cohort
// outcomes, error-rate intervals and latency quantiles, the tests and the gates.
import { DecisionKind, type Decision } from "../gen/flagwire/v1/rollout_pb.js";
import type { Release } from "../gen/flagwire/v1/release_pb.js";
import { enumName, ms, percent } from "../format.js";
import { Time } from "../ui.js";

const Kinds = DecisionKind as unknown as Record<number, string>;

function Evidence({ d }: { d: Decision }) {
  return (
    <div class="evidence">
      {d.cohorts.length > 0 && (
        <table>
          <caption>Cohorts</caption>
          <thead>
            <tr>
              <th scope="col">Cohort</th>
              <th scope="col">Outcomes</th>
              <th scope="col">Errors</th>
              <th scope="col">Error rate [interval]</th>
              <th scope="col">p50</th>
              <th scope="col">p95</th>
              <th scope="col">p99</th>
              <th scope="col">Metrics</th>
            </tr>
          </thead>
          <tbody>
            {d.cohorts.map((c) => (
              <tr key={c.cohort}>
                <td>{c.cohort}</td>
                <td>{c.n.toString()}</td>
                <td>{c.errors.toString()}</td>
                <td>
                  {percent(c.errorRate)} [{percent(c.errorRateLower)}, {percent(c.errorRateUpper)}]
                </td>
                <td>{ms(c.p50Us)}</td>
                <td>{ms(c.p95Us)}</td>
                <td>{ms(c.p99Us)}</td>
                <td>{c.metrics.map((m) => `${m.name}=${m.value.toPrecision(3)} (n=${m.n})`).join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {d.tests.length > 0 && (
        <table>
          <caption>Tests</caption>
          <thead>
            <tr>
              <th scope="col">Test</th>
              <th scope="col">p-value</th>
              <th scope="col">alpha</th>
              <th scope="col">Effect</th>
              <th scope="col">Flagged</th>
            </tr>
          </thead>
          <tbody>
            {d.tests.map((t) => (
              <tr key={t.name}>
                <td>{t.name}</td>
                <td>{t.pValue.toPrecision(3)}</td>
                <td>{t.alpha.toPrecision(3)}</td>
                <td>{t.effect.toPrecision(3)}</td>
                <td>{t.flagged ? "yes" : "no"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {d.gates.length > 0 && (
        <table>
          <caption>Gates</caption>
          <thead>
            <tr>
              <th scope="col">Gate</th>
              <th scope="col">Kind</th>
              <th scope="col">Value</th>
              <th scope="col">Control</th>
              <th scope="col">Threshold</th>
              <th scope="col">Result</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {d.gates.map((g) => (
              <tr key={g.name}>
                <td>{g.name}</td>
                <td>{g.kind}</td>
                <td>{g.value.toPrecision(4)}</td>
                <td>{g.controlValue.toPrecision(4)}</td>
                <td>{g.threshold.toPrecision(4)}</td>
                <td>{!g.checked ? "not yet" : g.passed ? "passed" : "breached"}</td>
                <td>{g.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The decision log. */
export function Decisions({ release }: { release: Release }) {
  const log = [...release.decisions].reverse();
  return (
    <section aria-labelledby="decisions-title">
      <h2 id="decisions-title">Decisions</h2>
      {log.length === 0 && <p class="muted">No decision yet: the first comes when a window closes.</p>}
      <ol class="decisions" data-testid="decisions">
        {log.map((d, i) => (
          <li key={`${d.time?.seconds ?? 0}-${i}`} class={`decision ${Kinds[d.kind]?.toLowerCase() ?? ""}`} data-testid="decision">
            <details open={i === 0}>
              <summary>
                <Time t={d.time} /> · <strong>{enumName(Kinds, d.kind)}</strong> {d.reasonCode} · stage {d.step + 1} · by {d.actor}
                {d.repeats > 1 && ` · ×${d.repeats}`}
              </summary>
              <p>{d.detail}</p>
              <Evidence d={d} />
            </details>
          </li>
        ))}
      </ol>
    </section>
  );
}
