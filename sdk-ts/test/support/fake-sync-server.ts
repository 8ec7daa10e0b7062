/**
 * The in-memory server the sync scenarios (tests/sync/) script: the generated FlagService and
 * MetricsService on connect-es's router transport. Every Watch call and every acknowledgement
 * (a Report without series) is queued, stamped with the (fake) clock, for a runner to match and
 * answer; nothing is sent or answered until the runner says so.
 */
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type Transport } from "@connectrpc/connect";
import { type Flag, FlagSchema, ValueType } from "../../src/gen/flagwire/v1/flag_pb.js";
import {
  ChangeSchema,
  FlagBatchSchema,
  FlagService,
  HeartbeatSchema,
  SnapshotSchema,
  type WatchRequest,
  type WatchResponse,
  type WatchResponseSchema,
} from "../../src/gen/flagwire/v1/flag_service_pb.js";
import { MetricsService, type ReportRequest, type ReportResponseSchema } from "../../src/gen/flagwire/v1/metrics_pb.js";

/** The environment every scenario's flags belong to. */
export const ENVIRONMENT = "production";

/** Boolean flags by key, as scenario files write them. */
export type Flags = Record<string, boolean>;

/** A scenario's message (`send` step). */
export type Message =
  | { snapshot: { revision: number; flags: Flags } }
  | { change: { revision: number; set?: Flags; delete?: string } }
  | { heartbeat: { revision: number } };

/** What the runner tells one Watch call. */
type Command = { send: WatchResponse["event"] } | { end: { code: string; message: string } };

/** `true`: enabled, serving `on`; `false`: disabled, serving `off`. Its version is `revision`. */
export function boolFlag(key: string, enabled: boolean, revision: number): Flag {
  return create(FlagSchema, {
    key,
    type: ValueType.BOOLEAN,
    version: BigInt(revision),
    variants: [
      { key: "on", value: { kind: { case: "boolValue", value: true } } },
      { key: "off", value: { kind: { case: "boolValue", value: false } } },
    ],
    environments: { [ENVIRONMENT]: { enabled, offVariant: "off", defaultRule: { kind: { case: "variant", value: "on" } } } },
  });
}

const flagList = (flags: Flags, revision: number): Flag[] => Object.entries(flags).map(([k, v]) => boolFlag(k, v, revision));

/** A serialized `flagwire.v1.Snapshot` (the client's `bootstrap` option). */
export function snapshotBytes(revision: number, flags: Flags): Uint8Array {
  return toBinary(SnapshotSchema, create(SnapshotSchema, { environment: ENVIRONMENT, revision: BigInt(revision), flags: flagList(flags, revision) }));
}

/** The protobuf event of a scenario message. */
export function event(message: Message): WatchResponse["event"] {
  if ("snapshot" in message) {
    const { revision, flags } = message.snapshot;
    return {
      case: "snapshot",
      value: create(SnapshotSchema, { environment: ENVIRONMENT, revision: BigInt(revision), flags: flagList(flags, revision) }),
    };
  }
  if ("heartbeat" in message) return { case: "heartbeat", value: create(HeartbeatSchema, { revision: BigInt(message.heartbeat.revision) }) };
  const { revision, set, delete: deleted } = message.change;
  const flags = flagList(set ?? {}, revision);
  const kind: MessageInitShape<typeof ChangeSchema> = {
    revision: BigInt(revision),
    kind:
      deleted !== undefined
        ? { case: "flagDeleted", value: deleted }
        : flags.length === 1
          ? { case: "flagUpserted", value: flags[0]! }
          : { case: "flagsUpserted", value: create(FlagBatchSchema, { flags }) },
  };
  return { case: "change", value: create(ChangeSchema, kind) };
}

/** `UNAVAILABLE` → `Code.Unavailable` (gRPC's `CANCELLED` is connect's `Canceled`). */
export function code(name: string): Code {
  const pascal = name === "CANCELLED" ? "Canceled" : name.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
  const value = (Code as unknown as Record<string, Code | undefined>)[pascal];
  if (value === undefined) throw new Error(`unknown gRPC code ${name}`);
  return value;
}

/** A queue a generator can wait on. */
class Mailbox<T> {
  private readonly items: T[] = [];
  private waiter: ((item: T) => void) | undefined;

  push(item: T): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w(item);
    } else this.items.push(item);
  }

  take(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

/** One Watch call, as the runner sees it. */
export interface WatchCall {
  readonly request: WatchRequest;
  /** Fake-clock time of the call. */
  readonly at: number;
  send(event: WatchResponse["event"]): void;
  end(code: string, message: string): void;
}

/** One acknowledgement, waiting for the runner's answer. */
export interface AckCall {
  readonly request: ReportRequest;
  readonly at: number;
  reply(code: string): void;
}

/** The scripted server: `transport` for the client, queues of what the client sent. */
export class FakeSyncServer {
  readonly watches: WatchCall[] = [];
  readonly acks: AckCall[] = [];
  readonly transport: Transport;

  constructor() {
    this.transport = createRouterTransport(({ service }) => {
      service(FlagService, { watch: (request) => this.watch(request) });
      service(MetricsService, { report: (request) => this.report(request) });
    });
  }

  private async *watch(request: WatchRequest): AsyncGenerator<MessageInitShape<typeof WatchResponseSchema>> {
    const commands = new Mailbox<Command>();
    this.watches.push({
      request,
      at: Date.now(),
      send: (e) => {
        commands.push({ send: e });
      },
      end: (c, message) => {
        commands.push({ end: { code: c, message } });
      },
    });
    for (;;) {
      const command = await commands.take();
      if ("send" in command) {
        yield { event: command.send };
        continue;
      }
      if (command.end.code === "OK") return;
      throw new ConnectError(command.end.message, code(command.end.code));
    }
  }

  private report(request: ReportRequest): Promise<MessageInitShape<typeof ReportResponseSchema>> {
    // Metrics windows are not part of the sync rules; only acknowledgements are scripted.
    if (request.series.length > 0) return Promise.resolve({ accepted: true });
    return new Promise((resolve, reject) => {
      this.acks.push({
        request,
        at: Date.now(),
        reply: (c) => {
          if (c === "OK") resolve({ accepted: true });
          else reject(new ConnectError("scripted", code(c)));
        },
      });
    });
  }
}
