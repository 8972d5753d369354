//! End-to-end tests: the real `meridian` binary on loopback ports, asked with
//! `dig` (and real peers where a test says so). One binary, one module per capability.

mod common;

mod admin;
mod cli;
mod core_answers;
mod malformed;
mod differential_knot;
mod knot;
mod geoip;
mod peers;
mod resolver;
mod policies;
mod backends;
mod health;
mod anycast;
mod hardening;
mod probe_inputs;
