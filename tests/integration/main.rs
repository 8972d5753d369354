//! End-to-end tests: the real `meridian` binary on loopback ports, asked with
//! `dig` (and real peers where a test says so). One binary, one module per capability.

mod admin;
mod adversarial_inputs;
mod anycast;
mod backends;
mod big_answers;
mod cli;
mod common;
mod core_answers;
mod differential_knot;
mod dnssec;
mod encrypted;
mod geoip;
mod hardening;
mod health;
mod knot;
mod lifecycle;
mod load_shedding;
mod malformed;
mod name_index;
mod overrides_state;
mod package;
mod peers;
mod policies;
mod probe_inputs;
mod probe_tls_logs;
mod resolver;
mod service_env;
mod shared_regions;
mod udp_burst;
mod zone_files;
