//! The store: one SQLite file holding tenants, policies, contacts, cases,
//! evidence, the hash-chained audit log, the outbox and tombstones.
//!
//! Per-connection settings (WAL, foreign keys, busy timeout) are set on open;
//! the schema evolves through the numbered migrations in `migrations/`, whose
//! count is kept in `PRAGMA user_version`. All writes of one step go through one
//! transaction (`Store::transaction`).
//!
//! The layers above see only [`Conn`] (read through it), [`Tx`] (an open
//! transaction, which reads too) and [`Error`]: none of them names the
//! database library, so a second backend can sit behind these three types
//! without touching `app` or `engine`.

pub mod accounts;
pub mod apikeys;
pub mod audit;
pub mod bench;
pub mod cases;
pub mod cluster;
pub mod contacts;
pub mod copy;
pub mod evidence;
pub mod idempotency;
pub mod imports;
mod location;
pub mod outbox;
mod postgres;
pub mod report;
pub mod sql;
pub mod sweep;
pub mod templates;
pub mod tenants;
#[cfg(test)]
pub(crate) mod testing;
pub mod texts;
pub mod tokens;
pub mod webhooks;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use location::Location;

/// The migrations, in order. Never edit one that has shipped; add the next.
const MIGRATIONS: &[(&str, &str)] = &[
    ("001_initial", include_str!("migrations/001_initial.sql")),
    (
        "002_responses",
        include_str!("migrations/002_responses.sql"),
    ),
    ("003_api", include_str!("migrations/003_api.sql")),
    ("004_webhooks", include_str!("migrations/004_webhooks.sql")),
    ("005_messages", include_str!("migrations/005_messages.sql")),
    (
        "006_policy_tests",
        include_str!("migrations/006_policy_tests.sql"),
    ),
    (
        "007_decision_deadlines",
        include_str!("migrations/007_decision_deadlines.sql"),
    ),
    (
        "008_spent_link_secrets",
        include_str!("migrations/008_spent_link_secrets.sql"),
    ),
    (
        "009_key_scopes",
        include_str!("migrations/009_key_scopes.sql"),
    ),
    ("010_accounts", include_str!("migrations/010_accounts.sql")),
    (
        "011_cockpit_speed",
        include_str!("migrations/011_cockpit_speed.sql"),
    ),
    (
        "012_import_batches",
        include_str!("migrations/012_import_batches.sql"),
    ),
    (
        "013_sweep_speed",
        include_str!("migrations/013_sweep_speed.sql"),
    ),
    (
        "014_text_authors",
        include_str!("migrations/014_text_authors.sql"),
    ),
    (
        "015_tenant_settings",
        include_str!("migrations/015_tenant_settings.sql"),
    ),
    (
        "016_templates",
        include_str!("migrations/016_templates.sql"),
    ),
    (
        "017_purpose_enforcement",
        include_str!("migrations/017_purpose_enforcement.sql"),
    ),
];

/// A failed store operation. Opaque above `store/`: the faces print it, nothing
/// branches on the database's error codes.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(#[from] sql::Error);

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error(err.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection to the store, for reading (and, inside [`Tx`], writing).
pub struct Conn(sql::Db);

impl Conn {
    /// The SQL connection underneath: for `store/` alone.
    pub(in crate::store) fn sql(&self) -> &sql::Db {
        &self.0
    }

    /// The SQLite connection underneath, for what only SQLite has.
    fn sqlite(&self) -> Option<&Connection> {
        self.0.sqlite()
    }
}

/// An open transaction: everything written through it lands together at
/// commit, or not at all. Reads through it see its own writes.
pub struct Tx<'a> {
    conn: &'a Conn,
    // Held for its drop, which rolls back unless committed.
    inner: sql::Transaction<'a>,
    /// The audit chain's head as this transaction last wrote it: (tenant,
    /// seq, hash). A sweep appends a row per case, and reading the head back
    /// each time cost an index seek per row; only `audit::append` writes
    /// audit rows, and nothing else in the transaction can (SQLite's write
    /// lock is ours), so the head stays true until commit.
    pub(in crate::store) audit_head: std::cell::RefCell<Option<(String, i64, String)>>,
    /// Changes to `case_counts` by (tenant, state, band), written once at
    /// commit instead of by a trigger on every step (which cost a sweep a
    /// fifth of its time, measured): see `cases::write`.
    pub(in crate::store) case_counts: std::cell::RefCell<CountDeltas>,
    /// The consent text each (tenant, purpose, language) sends now, as
    /// (version, SHA-256): a sweep sends the same few texts thousands of
    /// times. Only `texts::add` changes the answer, and it clears this.
    pub(in crate::store) texts_sent: std::cell::RefCell<TextsSent>,
    /// The row number the next link token gets (see `tokens::issue`): read
    /// once per transaction, like the audit chain's head.
    pub(in crate::store) next_token_row: std::cell::Cell<Option<i64>>,
    /// The outbox's last `seq` as this transaction wrote it: (tenant, seq),
    /// for the same reason as `audit_head` (see `outbox::insert`).
    pub(in crate::store) outbox_head: std::cell::RefCell<Option<(String, i64)>>,
    /// The tenants whose writes this transaction serialises (PostgreSQL
    /// only; see [`Tx::serialise_tenant`]).
    locked_tenants: std::cell::RefCell<Vec<String>>,
}

/// The namespaces (first key) of klar's advisory locks on PostgreSQL; the
/// second key is the tenant's `hashtext`. Two tenants with the same hash
/// only wait for each other.
const TENANT_WRITES_LOCK: i32 = 0x006b_6c01;
/// The namespace of the idempotency keys' locks (see `idempotency`).
const IDEMPOTENCY_LOCK: i32 = 0x006b_6c05;

/// Work on a tenant that one klar instance at a time does (see
/// [`Store::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Stepping the due cases.
    Sweep,
    /// Sending the outbox's e-mails.
    Mails,
    /// Posting the outbox's actions to the webhook.
    Webhook,
}

impl Claim {
    /// The first key of its advisory lock.
    fn lock(self) -> i32 {
        match self {
            Claim::Sweep => 0x006b_6c02,
            Claim::Mails => 0x006b_6c03,
            Claim::Webhook => 0x006b_6c04,
        }
    }
}

pub(in crate::store) type TextsSent =
    std::collections::HashMap<(String, String, String), (i64, String)>;

pub(in crate::store) type CountDeltas =
    std::collections::HashMap<(String, &'static str, &'static str), i64>;

impl Tx<'_> {
    /// Makes this transaction the tenant's only writer of numbered rows
    /// until it ends. The audit chain and the outbox are numbered per
    /// tenant, and each number follows the last one written: on SQLite, its
    /// single write lock keeps two transactions from taking the same; on
    /// PostgreSQL, where several klar instances write at once, a
    /// transaction-scoped advisory lock per tenant does, taken before the
    /// last number is read. It ends with the transaction (or the crashed
    /// instance's connection), so nobody is left waiting for a dead peer.
    pub(in crate::store) fn serialise_tenant(&self, tenant: &str) -> Result<()> {
        if !self.sql().is_postgres() || self.locked_tenants.borrow().iter().any(|t| t == tenant) {
            return Ok(());
        }
        self.sql()
            .prepare_cached("SELECT pg_advisory_xact_lock(?1, hashtext(?2))")?
            .query_row(sql::params![TENANT_WRITES_LOCK, tenant], |_| Ok(()))?;
        self.locked_tenants.borrow_mut().push(tenant.to_owned());
        Ok(())
    }

    /// Writes the case counts this transaction changed.
    fn flush_case_counts(&self) -> Result<()> {
        let deltas = std::mem::take(&mut *self.case_counts.borrow_mut());
        for ((tenant, state, band), n) in deltas {
            if n == 0 {
                continue;
            }
            self.sql()
                .prepare_cached(
                    "INSERT INTO case_counts (tenant, state, band, n) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, state, band) DO UPDATE SET n = case_counts.n + excluded.n",
                )?
                .execute(sql::params![tenant, state, band, n])?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the database {path}")]
    Open {
        path: String,
        #[source]
        source: sql::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this klar knows ({known}); use a newer klar"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error(
        "there is no database {path}; create it with `klar init` (or name the right one with --db or KLAR_DB)"
    )]
    Missing { path: String },
    #[error("failed to apply migration {name}")]
    Migrate {
        name: &'static str,
        #[source]
        source: sql::Error,
    },
    #[error(transparent)]
    Sql(#[from] Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::Sql(Error(err.into()))
    }
}

impl From<sql::Error> for StoreError {
    fn from(err: sql::Error) -> StoreError {
        StoreError::Sql(Error(err))
    }
}

/// Deletes a database file with its WAL and shared-memory files; missing
/// files are fine. On failure, names the file that stayed.
pub fn remove_database(path: &Path) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err((name.into(), e)),
            _ => {}
        }
    }
    Ok(())
}

/// Copies the database at `live` to `to` (a consistent snapshot, even while
/// others write), opening it read-only.
pub fn copy_database(live: &Path, to: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        live,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute("VACUUM INTO ?1", [to.to_string_lossy()])?;
    Ok(())
}

pub struct Store {
    conn: Conn,
}

impl Store {
    /// Opens and migrates the store at `location`: a SQLite file (made if
    /// missing) or a PostgreSQL database (which must exist; an empty one
    /// gets klar's schema).
    pub fn open(location: impl Into<Location>) -> Result<Store, StoreError> {
        let location = location.into();
        match &location {
            Location::File(path) => Store::open_file(path),
            Location::Postgres(url) => {
                let store = Store {
                    conn: Conn(postgres::connect(&location, url)?),
                };
                postgres::migrate(store.conn.sql(), &location)?;
                Ok(store)
            }
        }
    }

    fn open_file(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let open_err = |source: rusqlite::Error| StoreError::Open {
            path: shown.clone(),
            source: source.into(),
        };
        // One connection per thread, never shared: SQLite's per-call mutexes
        // (its "serialized" mode) would only cost time.
        let flags = rusqlite::OpenFlags::default()
            .difference(rusqlite::OpenFlags::SQLITE_OPEN_FULL_MUTEX)
            .union(rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX);
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // 64 MiB of page cache instead of SQLite's 2 MiB: a sweep inserts
        // links, audit rows and outbox rows all over their indexes.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // The scheduler and the import run a dozen statements per case; keep
        // them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        // Plans that do not depend on bound values. Without this, SQLite
        // (3.5x) marks a statement for re-preparing whenever the planner
        // glanced at a bound value (any `col = ?` it filters on, a partial
        // index's condition), and rusqlite's statement cache clears the
        // bindings of every statement it takes back, which expires such a
        // statement: a sweep re-prepared about six statements per case
        // (counted with a breakpoint on sqlite3Reprepare). Queries that need
        // a partial index name it (`INDEXED BY`).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(open_err)?;
        let mut store = Store {
            conn: Conn(sql::Db::Sqlite(conn)),
        };
        store.migrate(&shown)?;
        Ok(store)
    }

    /// Opens and migrates the database at `path`, which must exist: every
    /// command but `klar init` (and the demo, which makes its own) uses this,
    /// so that a mistyped `--db` is an error and not a new, empty database.
    pub fn open_existing(location: impl Into<Location>) -> Result<Store, StoreError> {
        let location = location.into();
        if let Location::File(path) = &location
            && !path.exists()
        {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        Store::open(location)
    }

    /// Refreshes the planner's statistics (after a bulk load).
    pub fn analyze(&self) -> Result<()> {
        Ok(self.conn.0.execute_batch("ANALYZE")?)
    }

    /// Whether the store is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.conn.0.is_postgres()
    }

    /// Whether its connection is gone and it must be opened again.
    pub fn is_closed(&self) -> bool {
        self.conn.0.is_closed()
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match self.conn.sqlite() {
            Some(conn) => Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?),
            None => Ok(postgres::schema_version(self.conn.sql())?),
        }
    }

    fn migrate(&mut self, path: &str) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                known,
            });
        }
        let Some(conn) = self.conn.sqlite() else {
            unreachable!("PostgreSQL migrates its own way")
        };
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let failed = |source: rusqlite::Error| StoreError::Migrate {
                name,
                source: source.into(),
            };
            let tx = rusqlite::Transaction::new_unchecked(
                conn,
                rusqlite::TransactionBehavior::Deferred,
            )?;
            tx.execute_batch(sql).map_err(failed)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(failed)?;
            tx.commit().map_err(failed)?;
        }
        Ok(())
    }

    /// Runs `work` in one transaction: all of it lands, or none of it.
    pub fn transaction<T, E: From<Error>>(
        &mut self,
        work: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.run(false, work)
    }

    /// Like [`Store::transaction`], but takes SQLite's write lock at the
    /// start: for work that reads and then writes what it read (a case's
    /// step, an idempotency key), so that a concurrent writer waits for it
    /// instead of working on the same rows from an older snapshot.
    pub fn write<T, E: From<Error>>(
        &mut self,
        work: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.run(true, work)
    }

    fn run<T, E: From<Error>>(
        &mut self,
        write: bool,
        work: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // `&mut self` keeps transactions from nesting.
        let inner = self.conn.0.begin(write).map_err(Error)?;
        let tx = Tx {
            conn: &self.conn,
            inner,
            audit_head: std::cell::RefCell::new(None),
            case_counts: std::cell::RefCell::new(CountDeltas::new()),
            texts_sent: std::cell::RefCell::new(TextsSent::new()),
            next_token_row: std::cell::Cell::new(None),
            outbox_head: std::cell::RefCell::new(None),
            locked_tenants: std::cell::RefCell::new(Vec::new()),
        };
        let value = work(&tx)?;
        tx.flush_case_counts()?;
        tx.inner.commit().map_err(Error)?;
        Ok(value)
    }

    pub fn connection(&self) -> &Conn {
        &self.conn
    }

    /// The SQL connection beneath klar, for the end-to-end tests that read
    /// or tamper with its tables directly, on either backend. Nothing in
    /// klar above `store/` calls it.
    #[doc(hidden)]
    pub fn beneath(&self) -> &sql::Db {
        &self.conn.0
    }

    /// Claims `work` on `tenant` for this connection: false if another klar
    /// instance does it right now. On PostgreSQL this is a session-scoped
    /// advisory lock, which the server drops with a crashed instance's
    /// connection, so a dead peer blocks nobody. One sweeper per tenant at a
    /// time is how every due case is stepped once (the tenant's audit chain
    /// takes its writes one after the other anyway); one sender per tenant
    /// is how no request goes out twice. SQLite has one writer at a time
    /// already: always true.
    pub fn claim(&self, work: Claim, tenant: &str) -> Result<bool> {
        if !self.conn.0.is_postgres() {
            return Ok(true);
        }
        self.conn
            .0
            .prepare_cached("SELECT pg_try_advisory_lock(?1, hashtext(?2))")?
            .query_row(sql::params![work.lock(), tenant], |r| r.get(0))
            .map_err(Error)
    }

    /// Gives up a claim of [`Store::claim`].
    pub fn release(&self, work: Claim, tenant: &str) -> Result<()> {
        if self.conn.0.is_postgres() {
            self.conn
                .0
                .prepare_cached("SELECT pg_advisory_unlock(?1, hashtext(?2))")?
                .query_row(sql::params![work.lock(), tenant], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Runs `work` (a long run of write transactions, such as a sweep) while
    /// a thread of its own copies committed pages from the WAL into the
    /// database file. Without it, SQLite checkpoints inside the commit that
    /// crosses 1,000 WAL pages, on the writer's thread: 6% of a sweep's time,
    /// measured, that the idle second core can take. A reader keeps its
    /// snapshot throughout (a passive checkpoint copies only what no reader
    /// still needs), and a crash leaves the WAL as intact as any other
    /// moment does. Where the second connection cannot be opened (a store
    /// in memory), the writer checkpoints as before.
    pub fn with_background_checkpoints<T>(&mut self, work: impl FnOnce(&mut Store) -> T) -> T {
        let Some(conn) = self.conn.sqlite() else {
            return work(self);
        };
        let second = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(|p| p.to_owned())
            .and_then(|path| {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                Connection::open_with_flags(path, flags).ok()
            });
        let Some(second) = second else {
            return work(self);
        };
        if conn.pragma_update(None, "wal_autocheckpoint", 0).is_err() {
            return work(self);
        }
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let value = std::thread::scope(|scope| {
            scope.spawn(move || {
                // Until the writer is done (or gone), every 50 ms: often
                // enough that the WAL stays small, rare enough to batch.
                let checkpoint = || {
                    if let Err(err) = second.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::debug!(%err, "background checkpoint");
                    }
                };
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_millis(50))
                {
                    checkpoint();
                }
                // Once more after the last commit, so that nothing the work
                // wrote waits in the WAL for the writer's next commit.
                checkpoint();
            });
            let value = work(self);
            let _ = stop.send(());
            value
        });
        // SQLite's default again: the next commits checkpoint what is left.
        let restored = match self.conn.sqlite() {
            Some(conn) => conn.pragma_update(None, "wal_autocheckpoint", 1000),
            None => Ok(()),
        };
        if let Err(err) = restored {
            tracing::warn!(%err, "could not restore the WAL's automatic checkpoints");
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn a_new_database_gets_every_migration_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("klar.db");
        let store = Store::open(&path).expect("opens");
        assert_eq!(
            store.schema_version().expect("version"),
            MIGRATIONS.len() as i64
        );
        let mode: String = store
            .connection()
            .sqlite()
            .expect("SQLite")
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        drop(store);
        // Opening again applies nothing twice.
        let again = Store::open(&path).expect("opens again");
        assert_eq!(
            again.schema_version().expect("version"),
            MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn background_checkpoints_leave_every_commit_and_the_default_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("klar.db");
        let mut store = Store::open(&path).expect("opens");
        let autocheckpoint = |store: &Store| -> i64 {
            store
                .connection()
                .sqlite()
                .expect("SQLite")
                .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                .expect("reads the setting")
        };
        let written = store.with_background_checkpoints(|store| {
            // The writer leaves checkpoints to the other thread meanwhile.
            assert_eq!(autocheckpoint(store), 0);
            for n in 0..200 {
                store
                    .transaction(|tx| -> Result<usize> {
                        Ok(tx.sql().execute(
                            "INSERT INTO tenants (id, name, timezone, locale, salt, created_at)
                             VALUES (?1, 'T', 'UTC', 'de', x'00', 1)",
                            [format!("t{n}")],
                        )?)
                    })
                    .expect("writes");
            }
            200
        });
        assert_eq!(autocheckpoint(&store), 1000);
        drop(store);
        let again = Store::open(&path).expect("opens again");
        let count: i64 = again
            .connection()
            .sql()
            .query_row("SELECT COUNT(*) FROM tenants", (), |r| r.get(0))
            .expect("counts");
        assert_eq!(count, written);
    }

    #[test]
    fn cached_statements_are_not_prepared_again_on_every_use() {
        // Two statements of every request a sweep sends (the chain's head,
        // the consent text): without the planner's stability guarantee
        // SQLite re-prepared each of them whenever the cache handed it out
        // again.
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("klar.db")).expect("opens");
        let uses: [(&str, &[&str]); 2] = [
            (
                "SELECT seq FROM audit_log WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1",
                &["acme"],
            ),
            (
                "SELECT version FROM consent_texts
                 WHERE tenant = ?1 AND purpose = ?2 AND language = ?3 ORDER BY version DESC LIMIT 1",
                &["acme", "newsletter", "de"],
            ),
        ];
        for (sql, params) in uses {
            for _ in 0..3 {
                let mut stmt = store
                    .connection()
                    .sqlite()
                    .expect("SQLite")
                    .prepare_cached(sql)
                    .expect("prepares");
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
                    .expect("runs")
                    .count();
                assert_eq!(rows, 0);
                let reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
                assert_eq!(reprepared, 0, "{sql}");
            }
        }
    }

    #[test]
    fn a_database_from_a_newer_klar_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("klar.db");
        let store = Store::open(&path).expect("opens");
        store
            .connection()
            .sqlite()
            .expect("SQLite")
            .pragma_update(None, "user_version", 99)
            .expect("set version");
        drop(store);
        let err = Store::open(&path).err().expect("refused");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn a_new_postgres_database_gets_every_migration_once_and_a_newer_one_is_refused() {
        let location = testing::postgres_database();
        let store = Store::open(location.clone()).expect("opens");
        let known = postgres::MIGRATIONS.len() as i64;
        assert_eq!(store.schema_version().expect("version"), known);
        drop(store);
        // Opening again applies nothing twice.
        let again = Store::open(location.clone()).expect("opens again");
        assert_eq!(again.schema_version().expect("version"), known);
        again
            .connection()
            .sql()
            .execute("UPDATE klar_schema SET version = 99", ())
            .expect("set version");
        drop(again);
        let err = Store::open(location).err().expect("refused");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn a_claim_is_held_by_one_instance_and_dies_with_it() {
        let location = testing::postgres_database();
        let first = Store::open(location.clone()).expect("opens");
        let second = Store::open(location).expect("opens");
        assert!(first.claim(Claim::Sweep, "acme").expect("claims"));
        assert!(!second.claim(Claim::Sweep, "acme").expect("asks"));
        // Other work and other tenants are free.
        assert!(second.claim(Claim::Mails, "acme").expect("claims"));
        assert!(second.claim(Claim::Sweep, "other").expect("claims"));
        first.release(Claim::Sweep, "acme").expect("releases");
        assert!(second.claim(Claim::Sweep, "acme").expect("claims"));
        second.release(Claim::Sweep, "acme").expect("releases");
        // An instance that dies without releasing: its connection closes,
        // and the server drops its locks (once its backend has noticed).
        assert!(first.claim(Claim::Webhook, "acme").expect("claims"));
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !second.claim(Claim::Webhook, "acme").expect("asks") {
            assert!(
                std::time::Instant::now() < deadline,
                "the dead instance's claim outlived it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // On SQLite, one process owns the file's writes: every claim holds.
        let sqlite = testing::sqlite();
        assert!(sqlite.claim(Claim::Sweep, "acme").expect("claims"));
        assert!(sqlite.claim(Claim::Sweep, "acme").expect("claims"));
    }

    #[test]
    fn migration_8_drops_the_secrets_of_acknowledged_actions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("klar.db");
        let sql = Connection::open(&path).expect("opens");
        for (_, migration) in &MIGRATIONS[..7] {
            sql.execute_batch(migration).expect("an older schema");
        }
        sql.execute_batch(
            "INSERT INTO tenants (id, name, timezone, locale, salt, created_at)
                 VALUES ('acme', 'Acme', 'Europe/Berlin', 'de-DE', x'00', 0);
             INSERT INTO outbox (id, tenant, seq, contact, purpose, kind, payload, created_at, acked_at)
                 VALUES ('a1', 'acme', 1, 'C1', 'p', 'send-request', '{\"token\":\"s3cret\",\"token_id\":\"t1\"}', 0, 5),
                        ('a2', 'acme', 2, 'C1', 'p', 'send-request', '{\"token\":\"pending\",\"token_id\":\"t2\"}', 0, NULL);
             PRAGMA user_version = 7;",
        )
        .expect("an older store");
        drop(sql);
        let store = Store::open(&path).expect("migrates");
        let payload = |id: &str| -> String {
            store
                .connection()
                .sql()
                .query_row("SELECT payload FROM outbox WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .expect("a row")
        };
        assert_eq!(payload("a1"), r#"{"token_id":"t1"}"#);
        assert!(
            payload("a2").contains("pending"),
            "a pending action keeps it"
        );
    }

    #[test]
    fn every_migration_is_valid_sql() {
        let conn = Connection::open_in_memory().expect("memory db");
        for (name, sql) in MIGRATIONS {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
