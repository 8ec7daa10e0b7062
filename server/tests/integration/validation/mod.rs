//! Bad input gets INVALID_ARGUMENT naming the field path and the reason, and changes nothing:
//! one table of described cases ([`Case`]) over every request that checks its input (flags,
//! environments, segments, tokens, metric definitions, audit paging), sent in one loop
//! ([`assert_table`]) that also checks the store is unchanged after each case and reports every
//! failing case at once.
//!
//! The server runs in process ([`InProcess`]): nothing here depends on the process (exit codes,
//! signals, the CLI), and not starting one is the fastest way to send seventy requests.
//!
//! - [`flags`]: CreateFlag, UpdateFlag and SetFlagEnabled cases.
//! - [`objects`]: environments, segments, tokens, metric definitions and audit paging.

mod flags;
mod objects;

use crate::support::inproc::InProcess;
use crate::support::table::{Call, Sent, TableRow, assert_table, problem};
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

/// One bad request: what is wrong with it (named in every failure message), the request, the
/// field path the error must name, and a fragment of the reason ("" for any reason).
pub struct Case {
    what: &'static str,
    request: Call,
    field: String,
    reason: &'static str,
}

impl Sent {
    /// A validation case: `row(what).sends(request).names(field, reason)`.
    pub fn names(self, field: impl Into<String>, reason: &'static str) -> Case {
        Case {
            what: self.what,
            request: self.call,
            field: field.into(),
            reason,
        }
    }
}

impl TableRow for Case {
    fn what(&self) -> &str {
        self.what
    }

    fn call(&self) -> &Call {
        &self.request
    }

    /// The code, then a message of the form `invalid argument: {field}: {reason}` with exactly
    /// the expected field path (a bare `contains` would let `segment.environment` pass for
    /// `environment`).
    fn judge(&self, result: &Result<String, tonic::Status>) -> Option<String> {
        if let Some(problem) = problem(result, Code::InvalidArgument, "") {
            return Some(problem);
        }
        let message = result.as_ref().unwrap_err().message();
        let prefix = format!("invalid argument: {}: ", self.field);
        match message.strip_prefix(&prefix) {
            None => Some(format!("expected {prefix:?} to start {message:?}")),
            Some(reason) if !reason.contains(self.reason) => Some(format!(
                "expected {:?} in the reason {reason:?}",
                self.reason
            )),
            Some(_) => None,
        }
    }
}

/// What the cases refer to: environment `production` with segment `beta`, flag `a` and flag
/// `b` (`b` requires `a`), each at version 1.
async fn fixture(admin: &mut Admin) {
    create_env(admin, "production").await;
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "beta".into(),
                environment: "production".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    create_flag(admin, bool_flag("a", &["production"])).await;
    let mut b = bool_flag("b", &["production"]);
    flags::prod(&mut b).prerequisites = vec![Prerequisite {
        flag_key: "a".into(),
        variant: "on".into(),
    }];
    create_flag(admin, b).await;
}

#[tokio::test]
async fn bad_input_is_rejected_whole_and_changes_nothing() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    fixture(&mut admin).await;
    let mut cases = flags::cases();
    cases.extend(objects::cases());
    assert_table(&mut admin, &cases).await;
}
