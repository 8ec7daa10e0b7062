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
