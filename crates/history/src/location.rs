//! Where the history lives: a SQLite file (the default, per user) or a
//! PostgreSQL database named by a `postgres://` URL. Parsing only; opening
//! is the store's.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::HistoryError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// The URL as given (it may hold a password: never print it whole).
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is a database; anything else a file path.
    pub fn parse(text: &str) -> Result<Location, HistoryError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HistoryError::Location(
                "--history: empty; give a file path or a postgres:// URL".into(),
            ));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(HistoryError::Location(format!(
                "--history: unsupported scheme {scheme:?}; give a file path (SQLite) or a \
                 postgres:// URL"
            )));
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// The per-user default: `$XDG_STATE_HOME/swarmer/history.db`, else
    /// `$HOME/.local/state/swarmer/history.db`; None without either.
    pub fn default_for_user() -> Option<Location> {
        let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let state = from_env("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| from_env("HOME").map(|h| Path::new(&h).join(".local/state")))?;
        Some(Location::Sqlite(state.join("swarmer").join("history.db")))
    }
}

impl fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.split_once('@') {
        Some((auth, tail)) => (auth, tail),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            Location::parse("runs.db").unwrap(),
            Location::Sqlite("runs.db".into())
        );
        assert!(matches!(
            Location::parse("postgresql://u@h/db").unwrap(),
            Location::Postgres(_)
        ));
        let err = Location::parse("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("mysql"), "{err}");
        assert!(Location::parse("  ").is_err());
    }

    #[test]
    fn display_hides_the_password() {
        let loc = Location::parse("postgres://me:hunter2@db:5432/runs").unwrap();
        assert_eq!(loc.to_string(), "postgres://me:***@db:5432/runs");
    }
}
