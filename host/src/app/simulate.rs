//! `klar simulate`: a dry run of a policy on a copy of a tenant's cases.
//!
//! The live database is copied with `VACUUM INTO` through a read-only
//! connection, so the live file is never written. On the copy, simulated days
//! pass: `tick` runs each morning through the real plugin, and contacts answer
//! the requests that reach them with the given rates. Whether and how a
//! contact answers a given request is drawn from the seed, the contact, the
//! purpose and the attempt alone, so two policies compared with `--against`
//! meet the same people behaving the same way.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::app::respond::{self, Origin, RespondError};
use crate::engine;
use crate::plugin::Answer;
use crate::runtime::LoadedPlugin;
use crate::store::{Store, StoreError, outbox, tenants};

#[derive(Debug, Clone)]
pub struct Options {
    pub days: u32,
    /// The chance that a contact answers a given request.
    pub answer_rate: f64,
    /// The chance that an answer is a refusal.
    pub refuse_rate: f64,
    pub seed: u64,
    pub start: DateTime<Utc>,
}

/// What happened in one simulated week. Field names are part of the JSON.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Week {
    pub week: u32,
    pub from: String,
    pub requests: u64,
    pub reminders: u64,
    pub consents: u64,
    pub refusals: u64,
    /// Cases handed to a person to decide, per person.
    pub handed_to_people: BTreeMap<String, u64>,
    pub cleanups: u64,
}

/// The first thing that settled a case in the simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fate {
    pub contact: String,
    pub purpose: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Forecast {
    pub policy: String,
    pub weeks: Vec<Week>,
    /// Per case, what settled it (or its state at the end).
    #[serde(skip)]
    pub fates: BTreeMap<(String, String), String>,
    /// The cases that were sent at least one request.
    #[serde(skip)]
    pub asked: std::collections::BTreeSet<(String, String)>,
    /// The cases the policy's `basis` hook put on another basis, and which.
    #[serde(skip)]
    pub bases: BTreeMap<(String, String), String>,
}

/// A case one policy asks about and another does not, because the other
/// puts it on another basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotAsked {
    pub contact: String,
    pub purpose: String,
    /// The basis instead, e.g. `existing-customer`.
    pub basis: String,
}

/// The cases `candidate` no longer asks about that `against` asks about,
/// because the candidate's `basis` hook gives them another basis.
pub fn stops_asking(candidate: &Forecast, against: &Forecast) -> Vec<NotAsked> {
    against
        .asked
        .iter()
        .filter(|key| !candidate.asked.contains(*key))
        .filter_map(|key| {
            let basis = candidate.bases.get(key)?;
            Some(NotAsked {
                contact: key.0.clone(),
                purpose: key.1.clone(),
                basis: basis.clone(),
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("failed to copy the database {path}: {source}")]
    Copy {
        path: String,
        source: crate::store::Error,
    },
    #[error("failed to copy tenant {tenant} of {location} to a scratch file: {source}")]
    CopyTenant {
        tenant: String,
        location: String,
        source: Box<crate::store::copy::CopyError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sql(#[from] crate::store::Error),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
    #[error("{0}")]
    Policy(String),
    #[error("the simulation failed: {0}")]
    Step(String),
}

/// Copies the live database, with at least `tenant`'s data, to the SQLite
/// file `to` without writing to it. A SQLite store is copied whole (fast,
/// page by page); from PostgreSQL, shared by many tenants, only `tenant`'s
/// rows are copied, in one read-only transaction.
pub fn copy_database(
    live: &crate::store::Location,
    tenant: &str,
    to: &Path,
) -> Result<(), SimulateError> {
    let Some(file) = live.file() else {
        let failed = |source| SimulateError::CopyTenant {
            tenant: tenant.to_owned(),
            location: live.to_string(),
            source: Box::new(source),
        };
        let mut from = Store::open_existing(live.clone())?;
        let mut scratch = Store::open(to)?;
        crate::store::copy::copy_scope(
            &mut from,
            &mut scratch,
            crate::store::copy::Scope::Tenant(tenant),
        )
        .map_err(failed)?;
        return Ok(());
    };
    crate::store::copy_database(file, to).map_err(|source| SimulateError::Copy {
        path: file.display().to_string(),
        source,
    })
}

/// A number from the seed and the request alone.
fn draw(seed: u64, contact: &str, purpose: &str, attempt: u64) -> StdRng {
    let digest =
        crate::sha256_hex(format!("{seed}\u{0}{contact}\u{0}{purpose}\u{0}{attempt}").as_bytes());
    let value = u64::from_str_radix(&digest[..16], 16).unwrap_or(seed);
    StdRng::seed_from_u64(value)
}

struct Pending {
    secret: String,
    answer: Answer,
}

/// Runs `source` (a policy text) on the copy at `db` for the tenant.
/// `on_day` hears of each simulated day with the cases its tick stepped.
pub fn run(
    db: &Path,
    plugin: &Arc<LoadedPlugin>,
    tenant_id: &str,
    (name, source): (&str, &str),
    options: &Options,
    on_day: &mut dyn FnMut(usize),
) -> Result<Forecast, SimulateError> {
    let mut store = Store::open(db)?;
    let tenant = tenants::require(store.connection(), tenant_id)?;
    let sha = crate::sha256_hex(source.as_bytes());
    // The candidate becomes the copy's active policy, so that answers and
    // ticks on the copy run it, as they would live.
    store.transaction(|tx| {
        tenants::set_policy(
            tx,
            tenant_id,
            source,
            "klar simulate",
            "dry run",
            options.start.timestamp(),
        )
    })?;
    let sessions = engine::Sessions::new(Arc::clone(plugin));
    let (mut session, _) = engine::tenant_session(&store, plugin, &tenant)
        .map_err(|e| SimulateError::Policy(e.to_string()))?;
    let mut seen = crate::store::outbox::last_seq(store.connection(), tenant_id)?;
    let mut weeks: Vec<Week> = Vec::new();
    let mut fates: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut asked = std::collections::BTreeSet::new();
    let mut bases = BTreeMap::new();
    let mut answers: BTreeMap<i64, Vec<Pending>> = BTreeMap::new();
    for day in 0..i64::from(options.days) {
        let morning = options.start + Duration::days(day);
        let week_no = (day / 7) as usize;
        if weeks.len() <= week_no {
            weeks.push(Week {
                week: week_no as u32 + 1,
                from: morning.format("%Y-%m-%d").to_string(),
                ..Week::default()
            });
        }
        let ticked = engine::tick(&mut store, &mut session, &tenant, &sha, morning, 500)?;
        let new = outbox::Filter {
            all: true,
            after: seen,
            ..outbox::Filter::default()
        };
        for item in outbox::list(store.connection(), tenant_id, &new)? {
            seen = item.seq;
            let week = &mut weeks[week_no];
            let key = (item.contact.clone(), item.purpose.clone());
            let field = |k: &str| item.payload.get(k).and_then(|v| v.as_str()).unwrap_or("");
            match item.kind.as_str() {
                "basis-recorded" => {
                    let basis = field("basis").to_owned();
                    fates.entry(key.clone()).or_insert_with(|| {
                        format!("{basis} basis from {}", morning.format("%Y-%m-%d"))
                    });
                    bases.insert(key, basis);
                }
                "send-request" => {
                    // A message asks about every purpose it lists.
                    for purpose in item
                        .payload
                        .get("purposes")
                        .and_then(|p| p.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.get("purpose").and_then(|v| v.as_str()))
                    {
                        asked.insert((item.contact.clone(), purpose.to_owned()));
                    }
                    asked.insert(key.clone());
                    let attempt = item
                        .payload
                        .get("attempt")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(1);
                    if attempt <= 1 {
                        week.requests += 1;
                    } else {
                        week.reminders += 1;
                    }
                    let mut rng = draw(options.seed, &item.contact, &item.purpose, attempt);
                    if rng.random_bool(options.answer_rate.clamp(0.0, 1.0)) {
                        let answer = if rng.random_bool(options.refuse_rate.clamp(0.0, 1.0)) {
                            Answer::Refuse
                        } else {
                            Answer::Accept
                        };
                        answers
                            .entry(day + rng.random_range(0..5))
                            .or_default()
                            .push(Pending {
                                secret: field("token").to_owned(),
                                answer,
                            });
                    }
                }
                "create-task" if field("kind") == "decide" => {
                    *week
                        .handed_to_people
                        .entry(field("assignee").to_owned())
                        .or_default() += 1;
                    fates.entry(key).or_insert_with(|| {
                        format!(
                            "manual decision by {} from {}",
                            field("assignee"),
                            morning.format("%Y-%m-%d")
                        )
                    });
                }
                "cleanup" => {
                    week.cleanups += 1;
                    fates
                        .entry(key)
                        .or_insert_with(|| format!("cleanup on {}", morning.format("%Y-%m-%d")));
                }
                _ => {}
            }
        }
        for pending in answers.remove(&day).unwrap_or_default() {
            let at = morning + Duration::hours(4);
            match respond::respond(
                &mut store,
                &sessions,
                &pending.secret,
                pending.answer,
                &Origin::default(),
                at,
            ) {
                Ok(recorded) => {
                    for recorded in recorded.recorded {
                        let week = &mut weeks[week_no];
                        let verb = match pending.answer {
                            Answer::Accept => {
                                week.consents += 1;
                                "consent"
                            }
                            Answer::Refuse => {
                                week.refusals += 1;
                                "refusal"
                            }
                        };
                        fates
                            .entry((recorded.contact, recorded.purpose))
                            .or_insert_with(|| format!("{verb} on {}", at.format("%Y-%m-%d")));
                    }
                }
                Err(RespondError::Token(_) | RespondError::Rejected(_)) => {}
                Err(err) => return Err(SimulateError::Step(err.to_string())),
            }
        }
        on_day(ticked.due);
    }
    // Cases nothing settled: their state at the end.
    for (contact, purpose, state) in crate::store::cases::states(store.connection(), tenant_id)? {
        fates
            .entry((contact, purpose))
            .or_insert_with(|| format!("still {state} at the end"));
    }
    Ok(Forecast {
        policy: name.to_owned(),
        weeks,
        fates,
        asked,
        bases,
    })
}

/// The cases two forecasts treat differently.
pub fn differences(a: &Forecast, b: &Forecast) -> Vec<String> {
    a.fates
        .iter()
        .filter_map(|(key, fate_a)| {
            let fate_b = b.fates.get(key)?;
            (fate_a != fate_b).then(|| {
                let (contact, purpose) = key;
                let which = if purpose == tenants::DEFAULT_PURPOSE {
                    String::new()
                } else {
                    format!(" ({purpose})")
                };
                format!(
                    "{contact}{which}: {fate_a} under {}, {fate_b} under {}",
                    a.policy, b.policy
                )
            })
        })
        .collect()
}
