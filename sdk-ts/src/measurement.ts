/**
 * Outcomes measured by hand (`FlagwireClient.startMeasure`, and `measure` around it): a request
 * scope of one flag, which evaluates the flag once, holds the request's own metrics until it
 * finishes, then records the outcome against the variant served and, when that variant is a
 * release's canary or control cohort, once against the cohort. Like `scope.ts`, it knows the
 * client only through `ScopeHost`, so the client can create measurements without an import cycle.
 */

import type { Evaluation } from "./engine/evaluation.js";
import type { Served } from "./metrics.js";
import { NOT_READY } from "./reader.js";
import { releaseCohortOf, type ScopeHost } from "./scope.js";
import { ScopeMetrics, type Tracker } from "./tracking.js";
import type { EvaluationContext } from "./types.js";

/**
 * An outcome being measured by hand; see `FlagwireClient.startMeasure`. It is a request scope
 * of one flag, so it is a `Tracker`: metrics recorded through it are attributed to the variant
 * served (and its release cohort) when it finishes.
 */
export interface Measurement extends Tracker {
  /** The variant served ("" when the flag could not be evaluated). */
  readonly variant: string;
  /** The cohort label served, if any (""). */
  readonly cohort: string;
  /** The rollout owning the split served, if any (""). */
  readonly rolloutId: string;
  /** Records the outcome (once; later calls are ignored). */
  finish(ok: boolean): void;
}

/**
 * Evaluates `flag` for `ctx` through `host` (counted as an evaluation) and starts timing; the
 * `Measurement` returned records the outcome on `finish`. Never throws.
 */
export function startMeasurement(host: ScopeHost, flag: string, ctx: EvaluationContext): Measurement {
  let r: Evaluation;
  try {
    r = host.evaluate(flag, ctx, undefined);
  } catch {
    r = NOT_READY;
  }
  const served: Served = { flag, variant: r.variant?.key ?? "", cohort: r.cohort, rolloutId: r.rolloutId };
  const release = served.variant === "" ? undefined : releaseCohortOf(served);
  const metrics = new ScopeMetrics(host.metricWindow, () => host.now());
  const started = host.now();
  let finished = false;
  return {
    variant: served.variant,
    cohort: served.cohort,
    rolloutId: served.rolloutId,
    track: (name, value) => { metrics.track(name, value); },
    trackOutcome: (name, ok) => { metrics.trackOutcome(name, ok); },
    observe: (name, value) => { metrics.observe(name, value); },
    timer: (name) => metrics.timer(name),
    finish: (ok: boolean) => {
      if (finished) return;
      finished = true;
      metrics.close(served.variant === "" ? [] : [served]);
      if (served.variant !== "") host.recordOutcome([served], release === undefined ? [] : [release], ok, host.now() - started);
    },
  };
}
