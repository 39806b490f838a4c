//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or
//! as one JSON object per line (`log_format = "json"` / `REGAUTH_LOG_FORMAT=json`). Colours
//! only when stderr is a terminal: log files and collectors get no ANSI escape codes.
//! Commands other than `serve` and `migrate` log warnings only, unless `-v` or `RUST_LOG`
//! asks for more: a successful command prints its result and nothing else.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// How much a run logs when `RUST_LOG` does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors only (commands that print their result).
    Quiet,
    /// Informational events too (`serve`, `migrate`, any command with `-v`).
    Informative,
}

pub fn init(format: LogFormat, verbosity: Verbosity) {
    // sqlx logs every statement at info level; that is noise for operators.
    let default = match verbosity {
        Verbosity::Quiet => "warn",
        Verbosity::Informative => "info,sqlx=warn,sea_orm_migration=warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (tests) is harmless; ignore it.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
