//! Helpers shared by integration tests beyond `common`.
#![allow(dead_code)]

pub mod certs;
pub mod http;
pub mod rollout;
pub mod scrape;
