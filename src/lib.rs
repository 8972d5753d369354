//! Meridian: a GSLB authoritative DNS server.
//!
//! The crate follows two flows (see `docs/architecture.md`): a query travels
//! server → wire → zone → (geo → policy) → answer; a probe result travels
//! health → server (which publishes the snapshot the answer path reads).
//! Modules never call backwards along those flows.

pub mod admin;
pub mod answer;
pub mod anycast;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dnssec;
pub mod explain;
pub mod geo;
pub mod health;
pub mod map;
pub mod metrics;
pub mod policy;
pub mod rrl;
pub mod server;
pub mod wire;
pub mod zone;
