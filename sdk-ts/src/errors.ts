import { Code } from "@connectrpc/connect";

/** What constructing, waiting for or closing a client can fail with; evaluation never fails. */
export class FlagwireError extends Error {
  constructor(
    /** `CONFIG` (bad options), `BOOTSTRAP` (unreadable bootstrap snapshot), `TIMEOUT`,
     * `UNAUTHORIZED` (the server refused the token) or `CLOSED`. */
    readonly code: "CONFIG" | "BOOTSTRAP" | "TIMEOUT" | "UNAUTHORIZED" | "CLOSED",
    message: string,
  ) {
    super(message);
    this.name = "FlagwireError";
  }
}

/**
 * The codes by which the server refuses the token (`UNAUTHORIZED`): asking again soon would be
 * refused the same way, so the Watch loop and acknowledgements wait the longest backoff.
 */
export const REFUSED: ReadonlySet<Code> = new Set([Code.Unauthenticated, Code.PermissionDenied]);
