//! End-to-end tests: the real `meridian` binary on loopback ports, asked with
//! `dig` (and real peers where a test says so). One binary, one module per capability.

mod common;

mod admin;
mod anycast;
mod backends;
mod cli;
mod core_answers;
mod differential_knot;
mod geoip;
mod hardening;
mod health;
mod knot;
mod malformed;
mod package;
mod peers;
mod policies;
mod probe_inputs;
mod resolver;
mod service_env;
mod udp_burst;
