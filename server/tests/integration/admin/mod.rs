//! Every AdminService RPC: each narrative walks one family's success path in order, and the
//! calls it must refuse sit in tables of rows ([`Refusal`](crate::support::table::Refusal):
//! a description, the call, the gRPC code and a fragment of the message), each table sent
//! where the story has set up the state its rows need. A table also checks that no refusal
//! changed the store, and names every failing row at once.
//!
//! The server runs in process ([`InProcess`](crate::support::inproc::InProcess)): nothing
//! here is about the process (exit codes, signals, the CLI), so starting none is the faster
//! choice. Its clock is stopped, so a narrative that needs one write to be later than
//! another (tokens list oldest first) advances it.
//!
//! Requests that are malformed whatever the state (a missing `expectedVersion`, an sdk token
//! without an environment, a bad page token...) are rows of the INVALID_ARGUMENT table in
//! `validation`, which also checks the exact field path.
//!
//! - [`environments`]: create, get, list, delete.
//! - [`flags`]: the life of a flag (create, update, toggle, archive, history, revert, delete)
//!   and listing pages and filters.
//! - [`segments`]: create, get, list, update, delete.
//! - [`metrics`]: metric definitions (define, list, delete) and what they block.
//! - [`tokens`]: tokens (create, list, revoke, roles) and the audit log they leave.

mod environments;
mod flags;
mod metrics;
mod segments;
mod tokens;
