/**
 * A client's `MetricsService.Report` calls: the metrics gathered since the last flush (on a
 * timer, on demand and on close), and applied-revision acknowledgements (docs/reference/sync.md,
 * "Applied-revision acknowledgements"). Both carry the instance's identity and number their
 * reports from one sequence, which is why one sender makes them.
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { authHeaders, type Settings } from "./client-options.js";
import { REFUSED } from "./errors.js";
import type { MetricsService } from "./gen/flagwire/v1/metrics_pb.js";
import type { Recorder } from "./metrics.js";
import { sleep } from "./util.js";

/** Wait before resending an acknowledgement that failed for a reason other than a refusal. */
const ACK_RETRY_MS = 250;

/** What the reports say about the client sending them, and when it stops. */
export interface ReportSource {
  /** The instance reporting. */
  readonly instanceId: string;
  /** The environment, the SDK's name and version and the token (`maxBackoffMs` after a refusal). */
  readonly settings: Settings;
  /** Aborts at shutdown: an acknowledgement in flight, or waiting to be resent, gives up. */
  readonly shutdown: AbortSignal;
  /** Whether `close()` has begun: no acknowledgement starts after that. */
  closing(): boolean;
}

/** Sends a client's reports; see the module's comment. */
export class Reporter {
  private sequence = 0;
  private windowStart = new Date();
  /** The newest revision to acknowledge, and the last one acknowledged (or given up on). */
  private ackWanted = 0;
  private acked = 0;
  private acking: Promise<void> | undefined;

  /** Reports through `service`, taking metrics from `recorder` (none when metrics are off). */
  constructor(
    private readonly service: Client<typeof MetricsService>,
    private readonly recorder: Recorder | undefined,
    private readonly source: ReportSource,
  ) {}

  /** The acknowledgement in flight, if any: `close()` waits for it. */
  get acknowledging(): Promise<void> | undefined {
    return this.acking;
  }

  /**
   * Sends the metrics gathered so far, with `appliedRevision`; see `FlagwireClient.flush`. A
   * window the transport failed to deliver is merged back for the next flush.
   */
  async flush(appliedRevision: number): Promise<boolean> {
    const recorder = this.recorder;
    if (recorder === undefined) return true;
    const { series, dropped, cohortOutcomes, metrics: ownMetrics } = recorder.take();
    if (series.length === 0 && dropped === 0 && cohortOutcomes.length === 0 && ownMetrics.length === 0) return true;
    const now = new Date();
    const { settings } = this.source;
    try {
      await this.service.report(
        {
          instanceId: this.source.instanceId,
          sequence: BigInt(++this.sequence),
          sdkName: settings.sdk.name,
          sdkVersion: settings.sdk.version,
          environment: settings.environment,
          appliedRevision: BigInt(appliedRevision),
          windowStart: timestampFromDate(this.windowStart),
          windowEnd: timestampFromDate(now),
          series,
          droppedSeries: BigInt(dropped),
          cohortOutcomes,
          metrics: ownMetrics,
        },
        { headers: authHeaders(settings), timeoutMs: 10_000 },
      );
      this.windowStart = now;
      return true;
    } catch (e) {
      // The server refused this window's content (e.g. a flag deleted since it was read):
      // resending it would be refused forever, so it is dropped, not merged back.
      if (ConnectError.from(e).code !== Code.InvalidArgument) recorder.mergeBack(series, dropped, cohortOutcomes, ownMetrics);
      return false;
    }
  }

  /**
   * Tells the server which revision this instance applied (docs/reference/sync.md,
   * "Applied-revision acknowledgements"): at once, without a timer, one `Report` in flight at a
   * time; whatever was applied meanwhile is sent as soon as it returns.
   */
  applied(revision: number): void {
    this.ackWanted = revision;
    if (this.acking !== undefined || this.ackWanted === this.acked || this.source.closing()) return;
    this.acking = this.acknowledge().finally(() => {
      this.acking = undefined;
    });
  }

  private async acknowledge(): Promise<void> {
    const { settings, shutdown: signal } = this.source;
    // "Differs", not "is greater": a server restored from a backup sends a lower revision.
    while (this.ackWanted !== this.acked && !signal.aborted) {
      const revision = this.ackWanted;
      try {
        await this.service.report(
          {
            instanceId: this.source.instanceId,
            sequence: BigInt(++this.sequence),
            sdkName: settings.sdk.name,
            sdkVersion: settings.sdk.version,
            environment: settings.environment,
            appliedRevision: BigInt(revision),
          },
          { headers: authHeaders(settings), signal, timeoutMs: 10_000 },
        );
        this.acked = revision;
      } catch (e) {
        const code = ConnectError.from(e).code;
        if (code === Code.Unimplemented || code === Code.InvalidArgument) {
          // Resending would be refused the same way: give this revision up.
          this.acked = revision;
        } else {
          await sleep(REFUSED.has(code) ? settings.maxBackoffMs : ACK_RETRY_MS, signal);
        }
      }
    }
  }
}
