//! `regauth backup <file> [--force]`: a consistent copy of a live SQLite database, taken
//! while the server keeps serving (SQLite's `VACUUM INTO` reads one snapshot; writers are not
//! stopped). PostgreSQL has its own tools: the command refuses and names `pg_dump`.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::redact::redact_url_password;
use crate::store;

/// The file a `sqlite:` URL names (`sqlite://regauth.db?mode=rwc` → `regauth.db`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

pub async fn backup(settings: &Settings, target: &Path, force: bool) -> anyhow::Result<()> {
    let url = &settings.database_url;
    let Some(source) = sqlite_file(url) else {
        if url.starts_with("postgres") {
            anyhow::bail!(
                "backup copies SQLite databases; database_url is PostgreSQL ({}): use pg_dump, e.g. pg_dump --format=custom --file=regauth.dump <database URL> (README: Backups)",
                redact_url_password(url)
            );
        }
        anyhow::bail!("backup needs a database file; database_url {url:?} names none");
    };
    if !source.exists() {
        anyhow::bail!(
            "the database file {} (database_url) does not exist",
            source.display()
        );
    }
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
    let db = store::connect_with(url, 1, settings.database_acquire_timeout, false).await?;
    let copied = store::vacuum_into(&db, &partial).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_file_comes_from_the_url() {
        assert_eq!(
            sqlite_file("sqlite://regauth.db?mode=rwc"),
            Some(PathBuf::from("regauth.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/regauth/db.sqlite"),
            Some(PathBuf::from("/var/lib/regauth/db.sqlite"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}
