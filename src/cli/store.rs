//! Opening the database for a command (the same settings as `serve`); everything else goes
//! through the services. Only `serve` and `migrate` may create a SQLite file: run from the
//! wrong directory, any other command would otherwise act on a new, empty database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::redact::redact_url_password;
use crate::startup::StartupError;
use crate::store::{self, SeaStore, Store};

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    refuse_missing_database(&settings.database.url)?;
    let db = store::connect_with(
        &settings.database.url,
        2,
        settings.database.acquire_timeout,
        true,
    )
    .await
    .map_err(|source| StartupError::database(settings, source))?;
    Ok(Arc::new(SeaStore::new(db)))
}

/// The file a `sqlite:` URL names (`sqlite://regauth.db?mode=rwc` → `regauth.db`).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// An error when `url` names a SQLite file that does not exist, saying where it was looked
/// for and how to name the right one.
pub fn refuse_missing_database(url: &str) -> anyhow::Result<()> {
    match sqlite_file(url) {
        Some(file) if !file.exists() => Err(anyhow::anyhow!(missing_database_message(&file))),
        _ => Ok(()),
    }
}

fn missing_database_message(file: &Path) -> String {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let relative = if file.is_relative() {
        " (database_url is relative to the current directory)"
    } else {
        ""
    };
    format!(
        "the database file {} does not exist{relative}; run the command where `regauth serve` runs, or name the file with REGAUTH_DATABASE_URL=sqlite:///path/to/regauth.db (or database_url in regauth.toml); `regauth migrate` creates a new database",
        absolute.display()
    )
}

/// What `-v` prints: the database a command uses (a password in the URL is hidden).
pub fn describe_database(url: &str) -> String {
    match sqlite_file(url) {
        Some(file) => {
            let absolute = std::path::absolute(&file).unwrap_or(file);
            format!("database: SQLite file {}", absolute.display())
        }
        None => format!("database: {}", redact_url_password(url)),
    }
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

    #[test]
    fn a_missing_file_is_named_with_the_way_to_the_right_one() {
        let message = missing_database_message(Path::new("/nowhere/regauth.db"));
        assert!(message.contains("/nowhere/regauth.db"), "{message}");
        assert!(message.contains("REGAUTH_DATABASE_URL"), "{message}");
        assert!(!message.contains("relative"), "{message}");
        let relative = missing_database_message(Path::new("regauth.db"));
        assert!(
            relative.contains("relative to the current directory"),
            "{relative}"
        );
        assert!(refuse_missing_database("postgres://u:secret@h/db").is_ok());
        assert!(refuse_missing_database("memory://x").is_ok());
    }

    #[test]
    fn the_description_hides_a_password() {
        let text = describe_database("postgres://regauth:hunter2@db/regauth");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("db/regauth"), "{text}");
        assert!(describe_database("sqlite://x.db?mode=rwc").ends_with("/x.db"));
    }
}
