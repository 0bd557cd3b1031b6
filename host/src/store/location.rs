//! Where a store lives: a SQLite file, or a PostgreSQL database named by
//! its URL (`postgres://user@host:port/db`).

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    File(PathBuf),
    /// A PostgreSQL connection URL, as libpq writes them.
    Postgres(String),
}

/// `klar.db` in the working folder, as `--db` defaults.
impl Default for Location {
    fn default() -> Location {
        Location::File(PathBuf::from("klar.db"))
    }
}

impl Location {
    /// The SQLite file, if the store is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl From<&str> for Location {
    fn from(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_owned())
        } else {
            Location::File(PathBuf::from(text))
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::File(path.to_owned())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::File(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::File(path)
    }
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Location, Self::Err> {
        Ok(Location::from(text))
    }
}

/// The file's path, or the URL without its password: what errors and logs
/// may show.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_postgres_and_anything_else_a_file() {
        assert_eq!(
            Location::from("postgres://klar@127.0.0.1:5432/klar"),
            Location::Postgres("postgres://klar@127.0.0.1:5432/klar".into())
        );
        assert!(Location::from("postgresql://h/db").is_postgres());
        assert_eq!(
            Location::from("data/klar.db"),
            Location::File("data/klar.db".into())
        );
    }

    #[test]
    fn a_password_is_not_shown() {
        assert_eq!(
            Location::from("postgres://klar:s3cret@db.example:5432/klar?sslmode=disable")
                .to_string(),
            "postgres://klar:***@db.example:5432/klar?sslmode=disable"
        );
        assert_eq!(
            Location::from("postgres://klar@db/klar").to_string(),
            "postgres://klar@db/klar"
        );
    }
}
