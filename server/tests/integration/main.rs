//! The server's integration tests, in one binary so the workspace links it once: the real
//! `flagwire` binary on loopback ([`support::binary`]) for what only a process shows (exit
//! codes, kill -9, TLS, the CLI), and the server in process on a manual clock
//! ([`support::inproc`]) for everything that acts on time.
//!
//! The binary under test is `FLAGWIRE_BIN` when set (CI passes the one it built), else the
//! one cargo built for this test run.

mod support;

mod admin;
mod auth;
mod backup;
mod bundle;
mod cli;
mod deploy_postgres;
mod durability;
mod evaluate;
mod evaluate_vectors;
mod flagd_vectors;
mod leader;
mod manager_kill;
mod manager_plans;
mod manager_schedule;
mod metrics;
mod ofrep;
mod otel;
mod postgres;
mod postgres_log;
mod postgres_tls;
mod prometheus;
mod prometheus_auth;
mod prometheus_gates;
mod release_gates;
mod release_seeds;
mod releases;
mod replicas;
mod rollout_clock;
mod rollout_controls;
mod shared_evidence;
mod shared_instances;
mod tls;
mod validation;
mod watch;
mod watch_lag;
mod watch_web;
