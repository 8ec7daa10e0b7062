//! Helpers shared by integration tests beyond `common`.
#![allow(dead_code)]

pub mod rollout;
