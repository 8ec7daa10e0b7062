//! What the end-to-end tests on the server binary share: polling with a deadline, the other
//! languages' traffic generators as child processes, and reading releases.
#![allow(dead_code)]

use super::binary::auth;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::{GetReleaseRequest, Release, ReleaseState};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

/// Polls `probe` every 200 ms until it answers, for at most `limit`; the last reason it gave
/// is the failure message.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let until = tokio::time::Instant::now() + limit;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        match probe().await {
            Ok(v) => return v,
            Err(why) => assert!(tokio::time::Instant::now() < until, "{what}: {why}"),
        }
    }
}

/// Child processes and their command lines, killed when dropped: a failing test leaves no
/// generator running.
#[derive(Default)]
pub struct Children(Vec<(String, Child)>);

impl Children {
    /// How many run.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds one, if any.
    pub fn extend(&mut self, child: Option<(String, Child)>) {
        self.0.extend(child);
    }

    /// Fails the test if one has exited (a crash, or options it refused): its traffic, and
    /// its language, would be missing from what the test judged.
    pub fn assert_running(&mut self) {
        for (command, child) in &mut self.0 {
            let status = child.try_wait().unwrap();
            assert!(status.is_none(), "{command}: exited early ({status:?})");
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts another language's traffic generator, with `args` after the command line that the
/// environment variable `var` names (`FLAGWIRE_E2E_PYTHON_TRAFFIC`, `FLAGWIRE_E2E_TS_TRAFFIC`:
/// `scripts/test` sets both), with the whole command line; `None` when `var` is unset or empty.
pub fn generator(var: &str, token: &str, args: &[String]) -> Option<(String, Child)> {
    let command = std::env::var(var).ok().filter(|c| !c.trim().is_empty())?;
    let mut words = command.split_whitespace();
    let child = Command::new(words.next()?)
        .args(words)
        .args(args)
        .env("FLAGWIRE_TOKEN", token)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{var}: {command}: {e}"));
    Some((format!("{command} {}", args.join(" ")), child))
}

/// The release `id`, with every window when `windows` (else none).
pub async fn get_release(
    client: &mut ReleaseServiceClient<Channel>,
    id: &str,
    windows: bool,
) -> Release {
    let request = GetReleaseRequest {
        id: id.into(),
        window_limit: if windows { 10_000 } else { 0 },
    };
    client
        .get_release(auth(request))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap()
}

/// A release's state.
pub fn state(r: &Release) -> ReleaseState {
    ReleaseState::try_from(r.state).unwrap()
}

/// Where a release is, for failure messages: state, stage and latest decision.
pub fn progress(r: &Release) -> String {
    let latest = r.latest_decision.as_ref();
    format!(
        "{} {:?} stage {} {:?}",
        r.name,
        state(r),
        r.current_stage,
        latest.map(|d| (&d.reason_code, &d.detail))
    )
}
