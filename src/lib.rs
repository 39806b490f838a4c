//! regauth: a token server for container registries, built around deploy tokens.

// Request paths must never panic a worker; tests may.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

pub mod access;
pub mod auth;
pub mod build_info;
pub mod ci_secret;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod domain;
pub mod error;
pub mod jwt;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod os_user;
pub mod redact;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod views;
