//! API tests: each test spawns the app on port 0 with a fresh database.

mod cache;
mod cli;
mod curl;
mod helpers;
mod management_api;
mod notifications;
mod operations;
mod server;
mod smtp_sink;
mod token;
