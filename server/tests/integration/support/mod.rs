//! Everything the integration tests share: the real binary started on loopback ([`binary`]),
//! the server in process on a manual clock ([`inproc`]), the `flagwire` client runs and a
//! seeded catalog ([`cli`]), waiting for a condition with a deadline ([`eventually`]), and
//! helpers for rollouts, plain HTTP, Prometheus scrapes and TLS certificates, a real Prometheus
//! and an exporter for it to scrape ([`promserver`]), and tables of calls that must be refused
//! ([`table`]).

pub mod binary;
pub mod certs;
pub mod cli;
pub mod eventually;
pub mod http;
pub mod inproc;
pub mod ports;
pub mod postgres;
pub mod promserver;
pub mod release;
pub mod rollout;
pub mod rollout_harness;
pub mod scrape;
pub mod table;

pub use binary::*;
pub use cli::*;
pub use eventually::eventually;
