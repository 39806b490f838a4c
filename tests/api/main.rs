//! API tests: each test spawns the app on port 0 with a fresh database.

mod ci_credentials;
mod cli;
mod curl;
mod helpers;
mod management_api;
mod migrations;
mod notifications;
mod operations;
mod server;
mod smtp_sink;
mod token;
