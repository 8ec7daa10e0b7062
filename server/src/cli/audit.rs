//! `audit`: the newest audit events, optionally of one flag or actor.

use super::client::Connect;
use super::output::{self, Table};
use super::{Failure, Outcome};
use flagwire_proto::v1::{ListAuditEventsRequest, ListAuditEventsResponse};

/// Options of `audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only events about this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// Only events by this actor (token name).
    #[arg(long, default_value = "")]
    pub actor: String,
    /// At most this many events.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs `audit`.
pub async fn run(a: AuditArgs) -> Outcome {
    if a.limit == 0 {
        return Err(Failure::Usage("--limit must be at least 1".into()));
    }
    let mut admin = a.connect.connect().await?.admin;
    let mut events = Vec::new();
    let mut page_token = String::new();
    while events.len() < a.limit as usize {
        let want = (a.limit as usize - events.len()).min(1000) as u32;
        let page = admin
            .list_audit_events(ListAuditEventsRequest {
                flag_key: a.flag.clone(),
                actor: a.actor.clone(),
                page_size: want,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let response = ListAuditEventsResponse {
        events,
        next_page_token: String::new(),
    };
    if a.connect.structured(&response) {
        return Ok(());
    }
    let events = response.events;
    let mut t = Table::new(&["ID", "TIME", "ACTOR", "ACTION", "RESOURCE", "REASON"]);
    for e in &events {
        t.row(vec![
            e.id.to_string(),
            output::time(e.time.as_ref()),
            e.actor.clone(),
            e.action.clone(),
            format!("{} {}", e.resource_type, e.resource_key),
            e.reason.clone(),
        ]);
    }
    t.print();
    Ok(())
}
