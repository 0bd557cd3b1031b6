//! The store's unit tests run on both backends: each test takes its stores
//! from [`both`] and runs its body once per backend, so a query that works
//! on SQLite alone fails here first.
//!
//! The PostgreSQL store is a new database on one throwaway cluster per test
//! process (see [`super::cluster`]), stopped when the process exits. A
//! machine without PostgreSQL's server programs fails these tests with the
//! installation hint: the README's test command installs them.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::cluster::Cluster;
use super::{Location, Store};

/// A store for one test, with what keeps it alive.
pub struct TestStore {
    pub store: Store,
    /// "sqlite" or "postgres", for the tests' failure messages.
    pub backend: &'static str,
    /// Where it is, for a second connection to it (another "instance").
    pub location: Location,
    /// The SQLite file's folder (removed on drop).
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for TestStore {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

/// A new, empty store on each backend: a SQLite file, then a PostgreSQL
/// database.
pub fn both() -> [TestStore; 2] {
    [sqlite(), postgres()]
}

pub fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let location = Location::File(dir.path().join("klar.db"));
    TestStore {
        store: Store::open(location.clone()).expect("opens"),
        backend: "sqlite",
        location,
        _dir: Some(dir),
    }
}

pub fn postgres() -> TestStore {
    let location = postgres_database();
    TestStore {
        store: Store::open(location.clone()).expect("opens on PostgreSQL"),
        backend: "postgres",
        location,
        _dir: None,
    }
}

/// A new, empty database on the test process's cluster.
pub fn postgres_database() -> Location {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "unit{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster()
        .create_database(&name)
        .unwrap_or_else(|e| panic!("database {name}: {e}"))
}

fn cluster() -> &'static Cluster {
    super::cluster::for_this_process()
        .unwrap_or_else(|e| panic!("a PostgreSQL cluster for the tests: {e}"))
}
