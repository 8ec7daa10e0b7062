//! Runs every scenario of `tests/sync/` (`docs/reference/sync.md` in executable form) against
//! the client's real sync task, over in-memory pipes to a scripted server ([`fake`]), on
//! tokio's paused clock: time moves only when every task is idle, straight to the next timer, so
//! the virtual time of each request is exact and a 45 s timeout costs nothing.

mod fake;
mod script;

use crate::client::{Client, State};
use crate::context::Context;
use fake::{AckCall, Calls, Command, Fake, WatchCall};
use script::{Scenario, Step, code};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tonic::Status;

/// Gives up waiting for a request after this much virtual time.
const PATIENCE: Duration = Duration::from_secs(600);
/// Timer granularity allowed on each side of a `delay_ms` bound.
const SLACK_MS: u128 = 1;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sync")
}

fn state_name(state: &State) -> &'static str {
    match state {
        State::Connecting => "CONNECTING",
        State::Ready => "READY",
        State::Stale => "STALE",
        State::Error(_) => "ERROR",
    }
}

/// Lets every task run that can, moving the clock by only 1 ms (tokio has no "run until idle").
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

struct Runner {
    client: Client,
    calls: Calls,
    start: Instant,
    previous: Instant,
    current: Option<WatchCall>,
    held: Option<oneshot::Sender<Result<(), Status>>>,
    watches: Vec<WatchCall>,
    acks: Vec<AckCall>,
}

impl Runner {
    fn within(&self, at: Instant, [lo, hi]: [u64; 2], what: &str) -> Result<(), String> {
        let delay = at.duration_since(self.previous).as_millis();
        let (lo, hi) = (u128::from(lo), u128::from(hi));
        if delay + SLACK_MS < lo || delay > hi + SLACK_MS {
            return Err(format!(
                "{what} came {delay} ms after the previous step, not within [{lo}, {hi}]"
            ));
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::ExpectWatch {
                since_revision,
                delay_ms,
            } => {
                let call = tokio::time::timeout(PATIENCE, self.calls.watches.recv())
                    .await
                    .map_err(|_| format!("Watch call: none within {PATIENCE:?}"))?
                    .ok_or("the server is gone")?;
                self.within(call.at, *delay_ms, "the Watch call")?;
                if call.request.since_revision != *since_revision {
                    return Err(format!("since_revision {}", call.request.since_revision));
                }
                self.previous = call.at;
                // The previous call's sender stays alive (in `watches`), as a server that has not
                // noticed the client leave yet.
                if let Some(old) = self.current.replace(call) {
                    self.watches.push(old);
                }
            }
            Step::ExpectAck {
                revision,
                delay_ms,
                reply,
            } => {
                let mut ack = tokio::time::timeout(PATIENCE, self.calls.acks.recv())
                    .await
                    .map_err(|_| format!("acknowledgement: none within {PATIENCE:?}"))?
                    .ok_or("the server is gone")?;
                self.within(ack.at, *delay_ms, "the acknowledgement")?;
                if ack.request.applied_revision != *revision {
                    return Err(format!("applied_revision {}", ack.request.applied_revision));
                }
                self.previous = ack.at;
                let (reply_to, placeholder) = oneshot::channel();
                let reply_to = std::mem::replace(&mut ack.reply, reply_to);
                drop(placeholder);
                match reply.as_deref().unwrap_or("OK") {
                    "HOLD" => self.held = Some(reply_to),
                    "OK" => drop(reply_to.send(Ok(()))),
                    name => drop(reply_to.send(Err(Status::new(code(name), "scripted")))),
                }
                self.acks.push(ack);
            }
            Step::Send(message) => {
                let call = self.current.as_ref().ok_or("no Watch call to send on")?;
                let _ = call.commands.send(Command::Send(Box::new(message.proto())));
                self.previous = Instant::now();
            }
            Step::End {
                code: name,
                message,
            } => {
                let call = self.current.as_ref().ok_or("no Watch call to end")?;
                let end = match code(name) {
                    tonic::Code::Ok => Ok(()),
                    c => Err(Status::new(c, message.clone())),
                };
                let _ = call.commands.send(Command::End(end));
                self.previous = Instant::now();
            }
            Step::ReleaseAck {} => {
                let held = self.held.take().ok_or("no acknowledgement is held")?;
                let _ = held.send(Ok(()));
                self.previous = Instant::now();
            }
            Step::Advance { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                self.previous = Instant::now();
            }
            Step::ExpectState {
                state,
                revision,
                values,
            } => {
                self.previous = Instant::now();
                settle().await;
                let got = (state_name(&self.client.state()), self.client.revision());
                if got != (state.as_str(), *revision) {
                    return Err(format!("state {got:?}, not ({state}, {revision})"));
                }
                let ctx = Context::new("user-1");
                for (key, want) in values {
                    if self.client.bool_value(key, &ctx, !want) != *want {
                        return Err(format!("flag {key} is not {want}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Nothing unexpected was sent, and every request carried the instance's identity.
    fn finish(mut self) -> Result<(), String> {
        let mut left = Vec::new();
        while let Ok(w) = self.calls.watches.try_recv() {
            left.push(format!("Watch(since {})", w.request.since_revision));
        }
        while let Ok(a) = self.calls.acks.try_recv() {
            left.push(format!("ack {}", a.request.applied_revision));
        }
        if !left.is_empty() {
            return Err(format!("requests no step expected: {left:?}"));
        }
        let id = self.client.instance_id().to_string();
        self.watches.extend(self.current.take());
        for w in &self.watches {
            let r = &w.request;
            if (r.instance_id.as_str(), r.sdk_name.as_str()) != (id.as_str(), "flagwire-rust") {
                return Err(format!("Watch from {:?} {:?}", r.instance_id, r.sdk_name));
            }
        }
        let mut last = 0;
        for a in &self.acks {
            let r = &a.request;
            if (r.instance_id.as_str(), r.sdk_name.as_str()) != (id.as_str(), "flagwire-rust")
                || !r.series.is_empty()
                || r.sequence <= last
            {
                return Err(format!("Report {r:?} (previous sequence {last})"));
            }
            last = r.sequence;
        }
        Ok(())
    }
}

async fn run(scenario: &Scenario, bootstrap: &Path) -> Result<(), String> {
    let (fake, calls) = Fake::new();
    let options = &scenario.options;
    let mut builder = Client::builder("http://in-memory.invalid", "fw_scenario")
        .backoff(
            Duration::from_millis(options.min_backoff_ms),
            Duration::from_millis(options.max_backoff_ms),
        )
        .heartbeat_timeout(Duration::from_millis(options.heartbeat_timeout_ms))
        .metrics_flush_interval(Duration::from_secs(3600));
    if let Some(copy) = &scenario.bootstrap {
        std::fs::write(bootstrap, prost::Message::encode_to_vec(&copy.proto()))
            .map_err(|e| e.to_string())?;
        builder = builder.bootstrap_file(bootstrap);
    }
    let start = Instant::now();
    let client = builder
        .start(Some(fake.transport()))
        .map_err(|e| e.to_string())?;
    let mut runner = Runner {
        client: client.clone(),
        calls,
        start,
        previous: start,
        current: None,
        held: None,
        watches: Vec::new(),
        acks: Vec::new(),
    };
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Err(e) = runner.step(step).await {
            let at = runner.start.elapsed().as_millis();
            return Err(format!("step {} {step:?} at {at} virtual ms: {e}", i + 1));
        }
    }
    settle().await;
    let result = runner.finish();
    client.close().await;
    result
}

#[tokio::test(start_paused = true)]
async fn every_scenario_of_tests_sync() {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("index.json")).unwrap()).unwrap();
    let files = index["files"].as_array().expect("files");
    assert!(!files.is_empty());
    let temp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for file in files {
        let file = file.as_str().expect("a file name");
        let text = std::fs::read_to_string(dir().join(file)).unwrap();
        let scenario: Scenario =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let bootstrap = temp.path().join(file).with_extension("bootstrap");
        match run(&scenario, &bootstrap).await {
            Ok(()) => println!("ok   {file}"),
            Err(e) => {
                println!("FAIL {file}: {}\n     {e}", scenario.description);
                failures.push(file);
            }
        }
    }
    assert!(failures.is_empty(), "failed scenarios: {failures:?}");
}
