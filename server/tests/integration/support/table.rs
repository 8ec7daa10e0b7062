//! Tables of calls that must be refused: any AdminService request as one value ([`Call`]), a
//! check of the status a call got ([`problem`]), what an admin can observe of the store
//! ([`fingerprint`]), and a runner ([`assert_table`]) that sends every [`TableRow`], checks that
//! nothing changed, and reports every failing row at once, each named by its description.
//! [`Refusal`] is the row of the admin tables: a code and a fragment of the message.

use super::binary::Admin;
use flagwire_proto::v1::*;
use tonic::{Code, Status};

/// Declares [`Call`] over the AdminService RPCs the tables use (a variant nothing builds would
/// be dead code), `From` each request, and the dispatch to the client method.
macro_rules! calls {
    ($($variant:ident($request:ty) => $method:ident,)*) => {
        /// One AdminService request, so that the rows of one table can call different RPCs and
        /// print what they sent.
        #[derive(Debug, Clone)]
        pub enum Call {
            $(
                #[doc = concat!("`", stringify!($method), "`.")]
                $variant($request),
            )*
        }

        $(
            impl From<$request> for Call {
                fn from(request: $request) -> Self {
                    Call::$variant(request)
                }
            }
        )*

        impl Call {
            /// Sends the request; a success comes back as the response's debug text, which is
            /// all a refusal table needs of it (to say what came back instead).
            pub async fn send(self, admin: &mut Admin) -> Result<String, Status> {
                match self {
                    $(
                        Call::$variant(request) => admin
                            .$method(request)
                            .await
                            .map(|reply| format!("{:?}", reply.into_inner())),
                    )*
                }
            }
        }
    };
}

calls! {
    CreateEnvironment(CreateEnvironmentRequest) => create_environment,
    GetEnvironment(GetEnvironmentRequest) => get_environment,
    ListEnvironments(ListEnvironmentsRequest) => list_environments,
    DeleteEnvironment(DeleteEnvironmentRequest) => delete_environment,
    CreateFlag(CreateFlagRequest) => create_flag,
    GetFlag(GetFlagRequest) => get_flag,
    UpdateFlag(UpdateFlagRequest) => update_flag,
    SetFlagEnabled(SetFlagEnabledRequest) => set_flag_enabled,
    ArchiveFlag(ArchiveFlagRequest) => archive_flag,
    DeleteFlag(DeleteFlagRequest) => delete_flag,
    ListFlagVersions(ListFlagVersionsRequest) => list_flag_versions,
    RevertFlag(RevertFlagRequest) => revert_flag,
    CreateSegment(CreateSegmentRequest) => create_segment,
    GetSegment(GetSegmentRequest) => get_segment,
    ListSegments(ListSegmentsRequest) => list_segments,
    UpdateSegment(UpdateSegmentRequest) => update_segment,
    DeleteSegment(DeleteSegmentRequest) => delete_segment,
    CreateApiToken(CreateApiTokenRequest) => create_api_token,
    RevokeApiToken(RevokeApiTokenRequest) => revoke_api_token,
    ListAuditEvents(ListAuditEventsRequest) => list_audit_events,
    DefineMetric(DefineMetricRequest) => define_metric,
    DeleteMetric(DeleteMetricRequest) => delete_metric,
}

/// `text` cut to a length a failure message can show (requests carry 5,000-byte descriptions).
fn short(text: &str) -> String {
    let head = &text[..text.floor_char_boundary(300)];
    if head.len() < text.len() {
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

/// What is wrong with `result` when the call should have failed with `expected` and a message
/// containing `says`; `None` when nothing is.
pub fn problem(result: &Result<String, Status>, expected: Code, says: &str) -> Option<String> {
    match result {
        Ok(reply) => Some(format!(
            "expected {expected:?}, got success {}",
            short(reply)
        )),
        Err(s) if s.code() != expected => Some(format!(
            "expected {expected:?}, got {:?}: {:?}",
            s.code(),
            s.message()
        )),
        Err(s) if !s.message().contains(says) => Some(format!(
            "expected {says:?} in the message {:?}",
            s.message()
        )),
        Err(_) => None,
    }
}

/// Everything an admin can observe of the store: flags (archived too), environments, the
/// segments of each, tokens (revoked too), metric definitions and the number of audit events,
/// which every write adds to.
pub async fn fingerprint(admin: &mut Admin) -> String {
    let flags = admin
        .list_flags(ListFlagsRequest {
            include_archived: true,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .flags;
    let envs = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .environments;
    let mut segments = Vec::new();
    for env in &envs {
        let request = ListSegmentsRequest {
            environment: env.key.clone(),
        };
        segments.push(admin.list_segments(request).await.unwrap().into_inner());
    }
    let metrics = admin
        .list_metrics(ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let tokens = admin
        .list_api_tokens(ListApiTokensRequest {
            include_revoked: true,
        })
        .await
        .unwrap()
        .into_inner();
    let audit = admin
        .list_audit_events(ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    format!(
        "{flags:?}{envs:?}{segments:?}{metrics:?}{tokens:?}{}",
        audit.events.len()
    )
}

/// What a table needs of a row: a described call and a judgement of its answer.
pub trait TableRow {
    /// What the row is about: the name of the row in every failure message.
    fn what(&self) -> &str;
    /// The request it sends.
    fn call(&self) -> &Call;
    /// The client that sends it, when not the table's admin.
    fn by(&self) -> Option<&Admin> {
        None
    }
    /// What is wrong with the answer, if anything.
    fn judge(&self, result: &Result<String, Status>) -> Option<String>;
}

/// The start of a row, `row(what).sends(call)` then what must come of it (in a refusal table,
/// [`Sent::answers`]): one builder so every table reads the same way and rustfmt lays each
/// row out the same way.
pub fn row(what: &'static str) -> Described {
    Described(what)
}

/// A row that has its description.
pub struct Described(&'static str);

impl Described {
    /// The call the row makes.
    pub fn sends(self, call: impl Into<Call>) -> Sent {
        Sent {
            what: self.0,
            call: call.into(),
        }
    }
}

/// A row that has its description and its call.
pub struct Sent {
    /// The description.
    pub what: &'static str,
    /// The call.
    pub call: Call,
}

impl Sent {
    /// A refusal: the call must fail with `code` and a message containing `says` ("" for any).
    pub fn answers(self, code: Code, says: impl Into<String>) -> Refusal {
        Refusal {
            what: self.what,
            call: self.call,
            code,
            says: says.into(),
            by: None,
        }
    }
}

/// Sends every row, judges its answer, checks that the store did not change, and fails once
/// at the end listing every row that did not hold.
pub async fn assert_table(admin: &mut Admin, rows: &[impl TableRow]) {
    let mut failures = Vec::new();
    let mut before = fingerprint(admin).await;
    for row in rows {
        let mut client = row.by().unwrap_or(admin).clone();
        let result = row.call().clone().send(&mut client).await;
        if let Some(problem) = row.judge(&result) {
            let sent = short(&format!("{:?}", row.call()));
            failures.push(format!("{}: {problem}\n  sent {sent}", row.what()));
        }
        let after = fingerprint(admin).await;
        if after != before {
            failures.push(format!("{}: changed the store", row.what()));
            // Later rows are judged against what this one left, so only it is blamed.
            before = after;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n- {}",
        failures.len(),
        rows.len(),
        failures.join("\n- ")
    );
}

/// A call that must be refused: why (the row's name in every failure message), what is sent,
/// the code and a fragment of the message it must answer with, and who sends it.
pub struct Refusal {
    what: &'static str,
    call: Call,
    code: Code,
    says: String,
    by: Option<Admin>,
}

impl Refusal {
    /// The same row sent by another client (another token, or none).
    pub fn by(self, client: &Admin) -> Self {
        Self {
            by: Some(client.clone()),
            ..self
        }
    }
}

impl TableRow for Refusal {
    fn what(&self) -> &str {
        self.what
    }

    fn call(&self) -> &Call {
        &self.call
    }

    fn by(&self) -> Option<&Admin> {
        self.by.as_ref()
    }

    fn judge(&self, result: &Result<String, Status>) -> Option<String> {
        problem(result, self.code, &self.says)
    }
}
