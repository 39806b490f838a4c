//! `regauth backup <file> [--force]`: a consistent copy of a live SQLite database, taken
//! while the server keeps serving (SQLite's `VACUUM INTO` reads one snapshot; writers are not
//! stopped). PostgreSQL has its own tools: the command refuses and names `pg_dump`.

use std::path::Path;

use super::store::sqlite_file;
use crate::config::Settings;
use crate::redact::redact_url_password;
use crate::store;

pub async fn backup(settings: &Settings, target: &Path, force: bool) -> anyhow::Result<()> {
    let url = &settings.database.url;
    let Some(source) = sqlite_file(url) else {
        if url.starts_with("postgres") {
            anyhow::bail!(
                "backup copies SQLite databases; database_url is PostgreSQL ({}): use pg_dump, e.g. pg_dump --format=custom --file=regauth.dump <database URL> (docs/operations.md: Backups)",
                redact_url_password(url)
            );
        }
        anyhow::bail!("backup needs a database file; database_url {url:?} names none");
    };
    super::store::refuse_missing_database(url)?;
    if target.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite it", target.display());
    }
    let name = target
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", target.display()))?;
    // Written beside the target and renamed into place: the target is never half a backup.
    let partial = target.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&partial);
    let db = store::connect_with(url, 1, settings.database.acquire_timeout, false).await?;
    let progress = Progress::start(&partial, &source);
    let copied = store::vacuum_into(&db, &partial).await;
    progress.finish(copied.is_ok());
    let _ = db.close().await;
    if let Err(error) = copied {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("backup to {} failed: {error}", target.display());
    }
    if let Err(error) = std::fs::rename(&partial, target) {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("cannot move the backup into {}: {error}", target.display());
    }
    let size = std::fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup of {} written to {} ({size} bytes)",
        source.display(),
        target.display()
    );
    Ok(())
}

/// On a terminal, how far the copy is: the bytes written so far (the partial file's size)
/// against the database's, redrawn on one line four times a second. Nothing when stderr is
/// not a terminal (scripts, logs).
struct Progress {
    ticker: Option<(
        tokio::task::JoinHandle<()>,
        std::path::PathBuf,
        std::time::Instant,
    )>,
}

impl Progress {
    fn start(partial: &Path, source: &Path) -> Progress {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            return Progress { ticker: None };
        }
        let total = std::fs::metadata(source).map(|m| m.len()).unwrap_or(0);
        let started = std::time::Instant::now();
        let watched = partial.to_owned();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                every.tick().await;
                let written = std::fs::metadata(&watched).map(|m| m.len()).unwrap_or(0);
                eprint!(
                    "\rbackup: {} of about {} written, {} s",
                    megabytes(written),
                    megabytes(total),
                    started.elapsed().as_secs()
                );
            }
        });
        Progress {
            ticker: Some((ticker, partial.to_owned(), started)),
        }
    }

    fn finish(self, copied: bool) {
        let Some((ticker, partial, started)) = self.ticker else {
            return;
        };
        ticker.abort();
        let written = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let seconds = started.elapsed().as_secs_f64();
        // `\x1b[K` clears what is left of the longer progress line.
        if copied {
            eprintln!(
                "\rbackup: {} written in {seconds:.1} s\x1b[K",
                megabytes(written)
            );
        } else {
            eprintln!("\rbackup: failed after {seconds:.1} s\x1b[K");
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
