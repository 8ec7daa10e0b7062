// Canary vs control per judging window, drawn with uPlot: error rate, latency quantiles and
// each gated metric, with thresholds as flat dashed lines.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { CohortStats, RolloutWindow } from "../gen/flagwire/v1/rollout_pb.js";

/** One line of a chart: a label, its values per window (null: no data) and how it is drawn. */
export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
  dash?: number[];
}

const CANARY = "#c2410c";
const CONTROL = "#1d4ed8";
const THRESHOLD = "#374151";

/** The cohort of a window by label ("canary", "control"). */
function cohort(w: RolloutWindow, label: string): CohortStats | undefined {
  return w.cohorts.find((c) => c.cohort === label);
}

/** A value per window of each cohort, null where the cohort had no outcomes. */
export function perCohort(windows: RolloutWindow[], pick: (c: CohortStats) => number | undefined, dash?: number[], suffix = ""): Line[] {
  return ["canary", "control"].map((label) => ({
    label: `${label}${suffix}`,
    color: label === "canary" ? CANARY : CONTROL,
    dash,
    values: windows.map((w) => {
      const c = cohort(w, label);
      if (!c) return null;
      const v = pick(c);
      return v === undefined || Number.isNaN(v) ? null : v;
    }),
  }));
}

/** A flat line at a threshold. */
export function threshold(windows: RolloutWindow[], label: string, value: number): Line {
  return { label, color: THRESHOLD, dash: [6, 4], values: windows.map(() => value) };
}

/**
 * A chart of lines over the windows' end times. The canvas is described for screen readers by
 * its caption and by the latest value of each line; `data-points` counts the points of each line
 * (tests read it to see that both cohorts are drawn).
 */
export function Chart({ title, windows, lines, unit }: { title: string; windows: RolloutWindow[]; lines: Line[]; unit: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const xs = windows.map((w) => (w.endTime ? timestampDate(w.endTime).getTime() / 1000 : 0));
  const shape = lines.map((l) => l.label).join("|");
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(260, el.clientWidth),
      height: 200,
      scales: { x: { time: true } },
      axes: [{}, { label: unit, size: 60 }],
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, dash: l.dash, spanGaps: false, points: { show: true, size: 4 } }))],
    };
    const chart = new uPlot(opts, [xs, ...lines.map((l) => l.values)] as uPlot.AlignedData, el);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(260, el.clientWidth), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of lines changes; new windows go through setData below.
  }, [shape, unit]);
  useEffect(() => {
    plot.current?.setData([xs, ...lines.map((l) => l.values)] as uPlot.AlignedData);
  });
  const counts = lines.map((l) => `${l.label}=${l.values.filter((v) => v !== null).length}`).join(",");
  const latest = lines
    .map((l) => {
      const last = [...l.values].reverse().find((v) => v !== null);
      return `${l.label} ${last === undefined || last === null ? "no data" : last.toPrecision(3)}`;
    })
    .join("; ");
  return (
    <figure class="chart" data-points={counts} data-testid={`chart-${title}`}>
      <figcaption>
        {title} <span class="muted small">({unit}; latest: {latest})</span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${title} per window: ${latest}`} />
    </figure>
  );
}
