//! Opening and migrating a store on PostgreSQL.
//!
//! The schema follows the SQLite one migration for migration
//! (`migrations/pg/`, see its README), so that both report the same schema
//! version. The version lives in the table `klar_schema`; several klar
//! instances starting at once migrate one after the other, serialised by a
//! transaction-scoped advisory lock, and a database from a newer klar is
//! refused as on SQLite.

use super::sql::{self, Db, OptionalExtension, PgConn};
use super::{Location, StoreError};

/// The PostgreSQL migrations, one for each of SQLite's, with the same names.
pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    ("001_initial", include_str!("migrations/pg/001_initial.sql")),
    (
        "002_responses",
        include_str!("migrations/pg/002_responses.sql"),
    ),
    ("003_api", include_str!("migrations/pg/003_api.sql")),
    (
        "004_webhooks",
        include_str!("migrations/pg/004_webhooks.sql"),
    ),
    (
        "005_messages",
        include_str!("migrations/pg/005_messages.sql"),
    ),
    (
        "006_policy_tests",
        include_str!("migrations/pg/006_policy_tests.sql"),
    ),
    (
        "007_decision_deadlines",
        include_str!("migrations/pg/007_decision_deadlines.sql"),
    ),
    (
        "008_spent_link_secrets",
        include_str!("migrations/pg/008_spent_link_secrets.sql"),
    ),
    (
        "009_key_scopes",
        include_str!("migrations/pg/009_key_scopes.sql"),
    ),
    (
        "010_accounts",
        include_str!("migrations/pg/010_accounts.sql"),
    ),
    (
        "011_cockpit_speed",
        include_str!("migrations/pg/011_cockpit_speed.sql"),
    ),
    (
        "012_import_batches",
        include_str!("migrations/pg/012_import_batches.sql"),
    ),
    (
        "013_sweep_speed",
        include_str!("migrations/pg/013_sweep_speed.sql"),
    ),
    (
        "014_text_authors",
        include_str!("migrations/pg/014_text_authors.sql"),
    ),
    (
        "015_tenant_settings",
        include_str!("migrations/pg/015_tenant_settings.sql"),
    ),
    (
        "016_templates",
        include_str!("migrations/pg/016_templates.sql"),
    ),
    (
        "017_purpose_enforcement",
        include_str!("migrations/pg/017_purpose_enforcement.sql"),
    ),
];

/// The advisory lock that serialises migrations (any fixed number; this one
/// spells "klar" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b6c_6172;

/// Connects to the database at `url`.
pub(super) fn connect(location: &Location, url: &str) -> Result<Db, StoreError> {
    let client =
        postgres::Client::connect(url, postgres::NoTls).map_err(|source| StoreError::Open {
            path: location.to_string(),
            source: source.into(),
        })?;
    let db = Db::Pg(Box::new(PgConn::new(client)));
    // Every statement and lock wait ends; a crashed peer's locks go with
    // its connection, which the server notices by its keepalives.
    //
    // Each execution is planned for its own values and the table's size at
    // that moment (`force_custom_plan`). klar keeps its statements prepared
    // for the life of a connection, and PostgreSQL's default reuses a
    // generic plan made from the first executions: a statement first run
    // while a tenant's outbox was nearly empty kept scanning the whole
    // outbox as it grew during the sweep (sampled from pg_stat_activity:
    // the sweep's pending-action check took most of its time, 250 cases/s
    // at 20,000). Planning these small statements costs far less than one
    // such scan.
    db.execute_batch(
        "SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s';
         SET plan_cache_mode = force_custom_plan",
    )
    .map_err(|source| StoreError::Open {
        path: location.to_string(),
        source,
    })?;
    Ok(db)
}

/// The schema version the database holds (0 when it is empty).
pub(super) fn schema_version(db: &Db) -> Result<i64, sql::Error> {
    let exists: bool = db.query_row("SELECT to_regclass('klar_schema') IS NOT NULL", (), |r| {
        r.get(0)
    })?;
    if !exists {
        return Ok(0);
    }
    Ok(db
        .query_row("SELECT version FROM klar_schema", (), |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Brings the database to this klar's schema, one migration per
/// transaction.
pub(super) fn migrate(db: &Db, location: &Location) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    // Up to date, the usual case: no lock, which every new connection of
    // every instance would otherwise queue for (measured: 69 ms a
    // connection while a server under load opened them).
    if schema_version(db)? == known {
        return Ok(());
    }
    loop {
        let tx = db.begin(true)?;
        db.query_row("SELECT pg_advisory_xact_lock(?1)", [MIGRATION_LOCK], |_| {
            Ok(())
        })?;
        db.execute_batch("CREATE TABLE IF NOT EXISTS klar_schema (version BIGINT NOT NULL)")?;
        let found = schema_version(db)?;
        if found > known {
            return Err(StoreError::TooNew {
                path: location.to_string(),
                found,
                known,
            });
        }
        let Some((name, migration)) = MIGRATIONS.get(found as usize) else {
            tx.commit()?;
            return Ok(());
        };
        let failed = |source| StoreError::Migrate { name, source };
        db.execute_batch(migration).map_err(failed)?;
        db.execute("DELETE FROM klar_schema", ()).map_err(failed)?;
        db.execute("INSERT INTO klar_schema (version) VALUES (?1)", [found + 1])
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
}
