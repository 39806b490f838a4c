//! API tests: each test spawns the app on port 0 with a fresh database.

mod backup;
mod brute_force;
mod cache;
mod ci_credentials;
mod cli;
mod curl;
mod docs;
mod faults;
mod first_hour;
mod forward_auth;
mod key_rotation;
mod kill9;
mod layering;
mod leaks;
mod management_api;
mod migrations;
mod network;
mod no_store;
mod notifications;
mod operations;
mod outage;
mod own_postgres;
mod refresh_tokens;
mod registry_events;
mod restrictions;
mod smtp_sink;
mod stalled_bodies;
mod startup_faults;
mod tls;
mod token;
mod token_lifecycle;
mod usage_recording;
mod web_pages;
mod workload_identity;

use regauth_test_support::{helpers, server, test_ca};
