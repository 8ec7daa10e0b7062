/**
 * `@flagwire/sdk`: the runtime-neutral core. Evaluate Flagwire feature flags locally from a copy
 * of an environment that the server keeps current; talk to the server through a Connect
 * `Transport` from `@flagwire/sdk/node` (native gRPC, HTTP/2) or `@flagwire/sdk/fetch`
 * (gRPC-web over `fetch`: Convex, serverless, browsers).
 */

export { FlagwireClient } from "./client.js";
export { SDK_NAME, SDK_VERSION, type ClientOptions } from "./client-options.js";
export type { Measurement } from "./measurement.js";
export { FlagReader } from "./reader.js";
export { FlagwireError } from "./errors.js";
export {
  type ClosableTransport,
  type Endpoint,
  expandEndpoint,
  FailoverTransport,
  type Resolver,
  rotateTransport,
  splitEndpoints,
} from "./failover.js";
export type { Unsubscribe } from "./events.js";
export type {
  AttributeValue,
  ClientState,
  ErrorCode,
  EvaluationContext,
  EvaluationDetails,
  FlagChange,
  FlagType,
  JsonObject,
  JsonValue,
  Reason,
} from "./types.js";
export { bucketIndex, upperBound, Histogram, BOUNDARIES, SCALE, type QuantileAt } from "./histogram.js";
export { murmur3, hashSaltKey, bucketOf } from "./engine/murmur3.js";
export { PreparedContext, prepareContext } from "./engine/context.js";
export { ShortLivedFlags, withFlags, type ShortLivedOptions } from "./shortlived.js";
export { ScopedFlags, type ReleaseCohort } from "./scope.js";
export type { Timer, Tracker, TrackOptions } from "./tracking.js";
export { RemoteEvaluator, RemoteFlags, contextToProto, type RemoteOptions } from "./remote.js";
