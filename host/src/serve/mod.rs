//! `klar serve`: the HTTP faces — the CRM API (`/v1/…`, per-tenant API keys),
//! the contacts' response page (`/r/{token}`), and a health endpoint — with a
//! background scheduler that runs `tick` on an interval.
//!
//! SQLite work runs on tokio's blocking threads; each keeps its own open
//! connection (`with_store`), so a request pays for a query, not for opening
//! the database. The plugin's compiled component is shared, and so is one
//! open session per tenant on its running policy (`engine::Sessions`), which
//! events and answers by link step through.

mod account;
mod api;
mod cockpit;
pub mod config;
mod error;
mod guard;
mod listen;
pub(crate) mod page;
mod personal;
mod policy;
pub(crate) mod schemas;
mod settings;
mod texts;

use std::cell::RefCell;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::get;
use chrono::{DateTime, Utc};

pub use config::Config;
pub use error::ApiError;

use crate::runtime::LoadedPlugin;
use crate::store::{Store, tenants};

/// What every handler shares.
pub(crate) struct Shared {
    pub db: crate::store::Location,
    pub plugin: Arc<LoadedPlugin>,
    /// One open session per tenant on its running policy, for the life of
    /// the server.
    pub sessions: crate::engine::Sessions,
    /// A fixed time for tests and demos (`--now`); the system clock otherwise.
    pub fixed_now: Option<DateTime<Utc>>,
    /// Where the response page is reachable, for links in API answers.
    pub public_url: String,
    /// Tenants whose e-mail requests klar mails itself (`[smtp.from]`); the
    /// CRM does not see those in the outbox, so nobody sends them twice.
    pub mailed: std::collections::BTreeSet<String>,
    /// Where webhooks may point: public addresses and the private hosts the
    /// operator allowed.
    pub targets: crate::delivery::target::Targets,
    /// Timeouts and the body limit.
    pub limits: guard::Limits,
    /// Failed authentications, per address and key prefix.
    pub throttle: guard::Throttle,
}

impl Shared {
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }
}

pub(crate) type State = Arc<Shared>;

thread_local! {
    static STORE: RefCell<Option<(crate::store::Location, Store)>> = const { RefCell::new(None) };
}

/// Runs a short read on the calling thread with that thread's connection
/// to `db`, without the hop to a blocking thread: for "may I use?", the
/// hottest call, which reads two rows (a few microseconds). In WAL mode a
/// read never waits for the writer, so the async worker is not held up.
/// Anything that writes, or reads much, goes through [`with_store`].
///
/// On PostgreSQL a read is a round trip to the server, and the driver runs
/// it on a runtime of its own, which may not start on an async worker: the
/// worker hands its other tasks on while it waits (`block_in_place`).
pub(crate) fn with_reader<T>(
    state: &State,
    work: impl FnOnce(&mut Store) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if state.db.is_postgres() {
        tokio::task::block_in_place(|| on_this_thread(&state.db, work))
    } else {
        on_this_thread(&state.db, work)
    }
}

/// `work` with this thread's connection to `db`, opened on first use; on
/// PostgreSQL, with a connection from the process's pool.
fn on_this_thread<T>(
    db: &crate::store::Location,
    work: impl FnOnce(&mut Store) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if db.is_postgres() {
        return pooled(db, work);
    }
    STORE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(path, _)| path != db) {
            let store = Store::open(db).map_err(ApiError::internal)?;
            *slot = Some((db.clone(), store));
        }
        match slot.as_mut() {
            Some((_, store)) => work(store),
            None => Err(ApiError::internal("no database connection")),
        }
    })
}

/// The PostgreSQL connections of this process, shared by its threads. A
/// connection per thread, as on SQLite, did not hold on PostgreSQL: every
/// `block_in_place` hands the async worker's place to another thread, so
/// under load new threads, and new connections, came all the time (81 in
/// five seconds of "may I use?").
struct Pool {
    idle: Vec<(crate::store::Location, Store)>,
    /// Connections open, idle or in use.
    open: usize,
}

static POOL: std::sync::Mutex<Pool> = std::sync::Mutex::new(Pool {
    idle: Vec::new(),
    open: 0,
});
static RETURNED: std::sync::Condvar = std::sync::Condvar::new();

/// At most this many connections per process; a request beyond them waits
/// for one. PostgreSQL allows 100 by default: three instances fit.
const POOL_MAX: usize = 32;

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection taken from the pool: back to it when dropped, or closed
/// and no longer counted (a broken one, or one whose work panicked).
struct Taken<'a> {
    db: &'a crate::store::Location,
    store: Option<Store>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let mut pool = pool();
        match self.store.take() {
            Some(store) if !store.is_closed() && !std::thread::panicking() => {
                pool.idle.push((self.db.clone(), store));
            }
            _ => pool.open -= 1,
        }
        RETURNED.notify_one();
    }
}

/// `work` with an idle pooled connection to `db`, or a new one while fewer
/// than [`POOL_MAX`] are open, or else the next one returned.
fn pooled<T>(
    db: &crate::store::Location,
    work: impl FnOnce(&mut Store) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let idle = {
        let mut pool = pool();
        loop {
            if let Some(i) = pool.idle.iter().rposition(|(at, _)| at == db) {
                break Some(pool.idle.swap_remove(i).1);
            }
            if pool.open < POOL_MAX {
                pool.open += 1;
                break None;
            }
            // Full, with an idle connection to another database: close it.
            if let Some(i) = pool.idle.iter().position(|(at, _)| at != db) {
                drop(pool.idle.swap_remove(i));
                pool.open -= 1;
                continue;
            }
            pool = RETURNED
                .wait(pool)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    };
    let mut taken = Taken { db, store: idle };
    if taken.store.is_none() {
        // On failure, dropping `taken` gives the counted place back.
        taken.store = Some(Store::open(db).map_err(ApiError::internal)?);
    }
    match taken.store.as_mut() {
        Some(store) => work(store),
        None => Err(ApiError::internal("no database connection")),
    }
}

/// Runs `work` on a blocking thread with that thread's connection to `db`.
pub(crate) async fn with_store<T, F>(state: &State, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
{
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || on_this_thread(&db, work))
        .await
        .map_err(ApiError::internal)?
}

/// The API's description, completed by the routes registered with it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "klar API",
        // The API's own version, bumped whenever its JSON changes shape:
        // 0.2.0 shows every time as RFC 3339 (outbox, evidence, audit rows);
        // 0.3.0 adds key scopes, exact limits and the 408/413/415/429 answers.
        version = "0.3.0",
        description = "The CRM API of klar: contacts, \"may I use?\", events, cases, the \
                       cockpit, evidence, policies, and the outbox of actions. Every `/v1` call \
                       needs `Authorization: Bearer KEY` (`klar apikey create TENANT --name \
                       NAME`) and only ever sees that key's tenant. Errors have the body \
                       `{\"error\": {\"code\", \"message\"}}`. This document is served at \
                       `/v1/openapi.json` (no key needed) and printed by `klar openapi`."
    ),
    modifiers(&BearerKey),
    tags(
        (name = "contacts", description = "Contacts, their use, events and proof"),
        (name = "cases", description = "Case lists and the cockpit"),
        (name = "outbox", description = "Actions for the CRM, by polling"),
        (name = "policy", description = "The tenant's policy versions"),
        (name = "texts", description = "The consent texts, in versions, set by the legal team"),
        (name = "setup", description = "Keys and the webhook, managed with a key"),
        (name = "service", description = "Health and this document"),
    )
)]
struct ApiDoc;

struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A tenant's API key, `klar_…`"))
                    .build(),
            ),
        );
    }
}

/// The routes and the OpenAPI document that describes them.
pub(crate) fn api() -> (Router<State>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    let (router, mut doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(health))
        .merge(api::routes())
        .merge(policy::routes())
        .merge(account::routes())
        .merge(texts::routes())
        .merge(settings::routes())
        .split_for_parts();
    guarded_answers(&mut doc);
    (router, doc)
}

/// The answers [`guard`] may give before any handler runs, in each
/// operation's document: 429 to a call with a key, and 408, 413 and 415 to a
/// call with a body.
fn guarded_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let answer = |text: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(text)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let mut add = |status: &str, text: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| answer(text));
            };
            add(
                "429",
                "Too many calls with an invalid key from this address (`too_many_failed_authentications`; see `Retry-After`)",
            );
            if operation.request_body.is_some() {
                add("408", "The body did not arrive in time (`request_timeout`)");
                add("413", "The body is too large (`payload_too_large`)");
                add(
                    "415",
                    "The body is not `application/json` (`unsupported_media_type`)",
                );
            }
        }
    }
}

/// The OpenAPI document as JSON (what `/v1/openapi.json` serves).
pub fn openapi_json() -> String {
    document_json(&api().1)
}

fn document_json(doc: &utoipa::openapi::OpenApi) -> String {
    doc.to_pretty_json().unwrap_or_default()
}

fn router(state: State) -> Router {
    let (api, doc) = api();
    let document = Arc::new(document_json(&doc));
    Router::new()
        .merge(api)
        .route(
            "/v1/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document.as_str().to_owned(),
                    )
                }
            }),
        )
        .merge(page::routes())
        .merge(personal::routes())
        .merge(cockpit::routes())
        .fallback(|| async { ApiError::not_found("no such route; the API is under /v1") })
        // The guard reads every body within its limits; axum's own 2 MiB
        // limit of the `Bytes` extractor would refuse a 10,000-contact batch.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`.
    status: String,
    tenants: usize,
    version: String,
}

/// Whether klar is up; needs no key.
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses((status = 200, description = "Up, with its database", body = Health)),
)]
async fn health(
    axum::extract::State(state): axum::extract::State<State>,
) -> Result<axum::Json<Health>, ApiError> {
    let tenants = with_reader(&state, |store| {
        tenants::list(store.connection()).map_err(ApiError::internal)
    })?;
    Ok(axum::Json(Health {
        status: "ok".to_owned(),
        tenants: tenants.len(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}

/// Ticks every tenant once (on a blocking thread).
fn tick_all(
    db: &crate::store::Location,
    plugin: &Arc<LoadedPlugin>,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut store = Store::open(db)?;
    for (tenant, r) in crate::engine::tick_all(&mut store, plugin, now, 500, &mut |_| {})? {
        if r.due > 0 {
            tracing::info!(
                tenant = %tenant,
                due = r.due,
                changed = r.changed,
                failed = r.failed,
                actions = r.actions,
                "tick"
            );
        }
    }
    Ok(())
}

/// One round of deliveries: klar's own mails first, then the webhooks.
fn deliver(
    db: &crate::store::Location,
    mailer: Option<Arc<crate::delivery::mail::Mailer>>,
    (retry, targets): (
        &crate::delivery::webhook::Retry,
        &crate::delivery::target::Targets,
    ),
    public_url: &str,
    now: DateTime<Utc>,
) {
    let mut store = match Store::open(db) {
        Ok(store) => store,
        Err(err) => {
            tracing::error!("delivery: {err:#}");
            return;
        }
    };
    let now_ms = Utc::now().timestamp_millis();
    if let Some(mailer) = &mailer {
        let mails = mailer.deliver_due(&mut store, retry, public_url, now, now_ms);
        log_deliveries("mails", mails);
        match mailer.deliver_digests(&mut store, public_url, now) {
            Ok(r) if r.delivered + r.failed > 0 => {
                tracing::info!(delivered = r.delivered, failed = r.failed, "digests")
            }
            Ok(_) => {}
            Err(err) => tracing::error!("digests: {err:#}"),
        }
    }
    let mailed = |tenant: &str| mailer.as_ref().is_some_and(|m| m.mails_for(tenant));
    let clock = (now.timestamp(), now_ms);
    let hooks =
        crate::delivery::webhook::deliver_due(&store, retry, targets, public_url, clock, mailed);
    log_deliveries("webhooks", hooks);
}

fn log_deliveries(
    what: &str,
    result: Result<crate::delivery::webhook::Report, crate::store::StoreError>,
) {
    match result {
        Ok(r) if r.delivered + r.failed + r.parked > 0 => tracing::info!(
            delivered = r.delivered,
            failed = r.failed,
            parked = r.parked,
            "{what}"
        ),
        Ok(_) => {}
        Err(err) => tracing::error!("{what}: delivery failed: {err:#}"),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives right
/// after the server announced itself must not kill it mid-request.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

/// Serves until SIGINT or SIGTERM; requests in flight finish first.
pub fn run(config: Config, plugin: Arc<LoadedPlugin>) -> Result<()> {
    // Create or migrate the database before the first request.
    let store = Store::open(&config.db)?;
    let mailer = match &config.smtp {
        Some(smtp) => {
            let mailer = crate::delivery::mail::Mailer::new(smtp)?;
            for tenant in smtp.from.keys() {
                if tenants::get(store.connection(), tenant)?.is_none() {
                    tracing::warn!(tenant = %tenant, "smtp.from names a tenant that does not exist (yet)");
                }
            }
            Some(Arc::new(mailer))
        }
        None => None,
    };
    drop(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("failed to listen on {}", config.addr))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let state: State = Arc::new(Shared {
            db: config.db.clone(),
            plugin: Arc::clone(&plugin),
            sessions: crate::engine::Sessions::new(Arc::clone(&plugin)),
            fixed_now: config.now,
            public_url,
            mailed: config
                .smtp
                .as_ref()
                .map(|smtp| smtp.from.keys().cloned().collect())
                .unwrap_or_default(),
            targets: config.targets.clone(),
            limits: config.limits,
            throttle: guard::Throttle::default(),
        });
        // Tests wait for this line to learn the port.
        println!("klar serve: listening on http://{addr}");
        tracing::info!(%addr, db = %config.db, "listening");

        if let Some(every) = config.tick_every.filter(|d| !d.is_zero()) {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    interval.tick().await;
                    let (db, plugin, now) =
                        (state.db.clone(), Arc::clone(&state.plugin), state.now());
                    let done =
                        tokio::task::spawn_blocking(move || tick_all(&db, &plugin, now)).await;
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => tracing::error!("tick failed: {err:#}"),
                        Err(err) => tracing::error!("tick panicked: {err}"),
                    }
                }
            });
        }

        if !config.deliver_every.is_zero() {
            let state = Arc::clone(&state);
            let (every, retry) = (config.deliver_every, config.retry);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let (db, url) = (state.db.clone(), state.public_url.clone());
                    let (mailer, now) = (mailer.clone(), state.now());
                    let targets = state.targets.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        deliver(&db, mailer, (&retry, &targets), &url, now)
                    })
                    .await;
                    if let Err(err) = done {
                        tracing::error!("delivery panicked: {err}");
                    }
                }
            });
        }

        let limits = state.limits;
        listen::serve(
            listener,
            router(state),
            limits,
            shutdown,
            Duration::from_secs(30),
        )
        .await;
        println!("klar serve: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    // Blocking threads hold connections; let them go without waiting long.
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn postgres_connections_are_reused_and_never_more_than_the_cap() {
        let db = crate::store::testing::postgres_database();
        let (busy, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..POOL_MAX + 8 {
                scope.spawn(|| {
                    for _ in 0..3 {
                        pooled(&db, |store| {
                            let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            crate::store::tenants::list(store.connection())
                                .map_err(ApiError::internal)?;
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            busy.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .expect("a connection");
                    }
                });
            }
        });
        let most = most.load(Ordering::SeqCst);
        assert!(most <= POOL_MAX && most > 1, "{most} at once");
        let pool = pool();
        assert!(pool.open <= POOL_MAX, "{} open", pool.open);
        assert_eq!(pool.idle.len(), pool.open, "all returned");
    }
}
