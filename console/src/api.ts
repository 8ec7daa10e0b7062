// The console's only way to the server: gRPC-web clients of the flagwire.v1 services (the same
// RPCs grpcurl and the CLI call), carrying the signed-in token as a bearer token.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AdminService } from "./gen/flagwire/v1/admin_pb.js";
import { FlagService } from "./gen/flagwire/v1/flag_service_pb.js";
import { MetricsService } from "./gen/flagwire/v1/metrics_pb.js";
import { ReleaseService } from "./gen/flagwire/v1/release_pb.js";
import { RolloutService } from "./gen/flagwire/v1/rollout_pb.js";

/** The typed clients of every service, bound to one token. */
export interface Api {
  admin: Client<typeof AdminService>;
  flags: Client<typeof FlagService>;
  metrics: Client<typeof MetricsService>;
  releases: Client<typeof ReleaseService>;
  rollouts: Client<typeof RolloutService>;
}

/** Where the gRPC-web port is: the server tells the page in /console/config.json. */
export async function grpcBaseUrl(): Promise<string> {
  const response = await fetch("console/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`console/config.json: HTTP ${response.status}`);
  const config = (await response.json()) as { grpcPort: number; tls: boolean };
  const scheme = config.tls ? "https:" : "http:";
  return `${scheme}//${window.location.hostname}:${config.grpcPort}`;
}

/** Clients that send `authorization: Bearer <token>` on every call. */
export function connect(baseUrl: string, token: string): Api {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
  return {
    admin: createClient(AdminService, transport),
    flags: createClient(FlagService, transport),
    metrics: createClient(MetricsService, transport),
    releases: createClient(ReleaseService, transport),
    rollouts: createClient(RolloutService, transport),
  };
}

/** A server error split into its field path and reason, when it is a validation error. */
export interface FieldError {
  /** Protobuf JSON path without the request's top-level message, e.g. `environments.production.rules[0].clauses[0].values`. */
  field: string;
  reason: string;
}

/** The field path and reason of an INVALID_ARGUMENT answer ("invalid argument: <path>: <reason>"). */
export function fieldError(e: unknown): FieldError | undefined {
  const err = ConnectError.from(e);
  if (err.code !== Code.InvalidArgument) return undefined;
  const m = /^invalid argument: ([^:\s]+): (.*)$/s.exec(err.rawMessage);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return { field: m[1].replace(/^(flag|segment|release|environment|token)\./, ""), reason: m[2] };
}

/** A one-line message for people: the gRPC code name and the server's message. */
export function describe(e: unknown): string {
  const err = ConnectError.from(e);
  return `${Code[err.code] ?? "Unknown"}: ${err.rawMessage}`;
}

/** Whether the error is the server refusing the token's role. */
export function isPermissionDenied(e: unknown): boolean {
  return ConnectError.from(e).code === Code.PermissionDenied;
}
