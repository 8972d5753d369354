//! End-to-end tests: the real `meridian` binary on loopback ports, asked with
//! `dig` (and real peers where a test says so). One binary, one module per capability.

mod common;

mod admin;
mod anycast;
mod backends;
mod big_answers;
mod cli;
mod core_answers;
mod differential_knot;
mod geoip;
mod hardening;
mod health;
mod knot;
mod lifecycle;
mod malformed;
mod name_index;
mod overrides_state;
mod peers;
mod policies;
mod probe_inputs;
mod probe_tls_logs;
mod resolver;
mod resolver_traffic;
mod shared_regions;
mod udp_burst;
mod zone_files;
