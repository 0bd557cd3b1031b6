//! `klar demo`: a demo tenant run through simulated months, so that anyone can
//! see the whole process — requests, reminders, answers with evidence, owners'
//! decisions, legal holds, cleanups — and explore the database afterwards.
//!
//! Everything goes through the same code as the real faces: contacts are
//! imported from a CSV text by the importer, cases are stepped by `tick`,
//! answers come in through response links like `klar respond`, and owners
//! decide like `klar decide`. The people are simulated with a seeded generator,
//! so the same seed, size and end time give the same database every time
//! (apart from the link secrets, which always come from the OS generator).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::app::respond::{self, Origin, RespondError};
use crate::engine::{self, EventError};
use crate::plugin::{Answer, Decision, DecisionKind, Event};
use crate::runtime::{LoadedPlugin, Session};
use crate::store::accounts::Role;
use crate::store::tenants::{self, Tenant};
use crate::store::{Store, outbox};

/// The demo tenant's id.
pub const TENANT: &str = "demo";

#[derive(Debug, Clone)]
pub struct Options {
    pub contacts: usize,
    pub days: u32,
    pub seed: u64,
    /// The end of the simulation; it starts `days` before.
    pub end: DateTime<Utc>,
}

/// What the simulated people did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub contacts: usize,
    pub requests_sent: usize,
    pub accepted: usize,
    pub refused: usize,
    pub withdrawn: usize,
    pub decisions: usize,
    pub holds: usize,
    /// Answers refused by klar (e.g. a link used after the case moved on).
    pub answers_turned_down: usize,
    /// Where the cases that were refused are at the end, by state: a refusal
    /// leads on to a cleanup, so `refused` in the cockpit is not the count
    /// of refusals.
    pub refused_now: BTreeMap<String, usize>,
    /// Where the cases whose consent was withdrawn are at the end, by state.
    pub withdrawn_now: BTreeMap<String, usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "{0} holds tenants other than the demo; run the demo on its own database (--db demo.db)"
    )]
    NotADemoDatabase(String),
    #[error(
        "{0} already holds tenants ({1}); the demo on PostgreSQL needs an empty database (drop it and create it again, or give --db a file name)"
    )]
    NotEmpty(String, String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Sql(#[from] crate::store::Error),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
    #[error(transparent)]
    Session(#[from] engine::SessionError),
    #[error(transparent)]
    Import(#[from] crate::app::import::ImportError),
    #[error("the demo failed at a step: {0}")]
    Step(String),
    #[error("failed to remove the old demo database {path}: {source}")]
    Remove {
        path: String,
        source: std::io::Error,
    },
}

const FIRST_NAMES: &[(&str, &str)] = &[
    ("Jürgen", "de"),
    ("Jörg", "de"),
    ("Björn", "de"),
    ("Günther", "de"),
    ("Sören", "de"),
    ("Käthe", "de"),
    ("Anna", "de"),
    ("Lea", "de"),
    ("Marie", "de"),
    ("Sophie", "de"),
    ("Lukas", "de"),
    ("Maximilian", "de"),
    ("Hannah", "de"),
    ("Moritz", "de"),
    ("Grete", "de"),
    ("Ömer", "de"),
    ("Ayşe", "de"),
    ("Mehmet", "de"),
    ("François", "en"),
    ("Zoë", "en"),
    ("José", "en"),
    ("Łukasz", "en"),
    ("Søren", "en"),
    ("Chloé", "en"),
    ("Renée", "en"),
    ("Siobhán", "en"),
    ("Dragoş", "en"),
    ("Noémie", "en"),
    ("Emily", "en"),
    ("Oliver", "en"),
];

const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schäfer",
    "Weiß",
    "Köhler",
    "Groß",
    "Bäcker",
    "Fuchs",
    "Hoffmann",
    "Krüger",
    "Wagner",
    "Becker",
    "Nowak",
    "Yılmaz",
    "Şahin",
    "Dubois",
    "García",
    "Núñez",
    "Østergaard",
    "Kowalczyk",
    "O'Brien",
    "Rossi",
    "Papadopoulos",
    "Lefèvre",
    "van der Berg",
];

const COMPANIES: &[&str] = &[
    "Bäckerei Schäfer KG",
    "Müller & Söhne GmbH",
    "Nordlicht Logistik AG",
    "Café Süd",
    "Ingenieurbüro Groß",
    "Atelier Lefèvre",
    "Østergaard ApS",
    "",
];

/// Owners and the share of contacts each holds.
const OWNERS: &[&str] = &["a.schmidt", "jk", "m.yilmaz", "l.dubois"];
const SOURCES: &[&str] = &["messe-hannover", "website", "webinar", "altbestand"];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
];

/// ASCII for an e-mail address: ä → ae, ß → ss, é → e, ...
fn ascii(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' | 'ø' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'é' | 'è' | 'ë' | 'ê' => out.push('e'),
            'á' | 'à' => out.push('a'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            'ú' => out.push('u'),
            'ó' => out.push('o'),
            'í' | 'ı' => out.push('i'),
            'ł' => out.push('l'),
            'ş' => out.push('s'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// How one simulated person reacts to requests for one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    /// Answers the request of this attempt, this many days after it arrived.
    Answers {
        attempt: u32,
        delay_days: i64,
        answer: Answer,
        /// Takes consent back this many days after giving it.
        withdraws_after: Option<i64>,
    },
    Silent,
}

fn persona(rng: &mut StdRng, accept: f64, refuse: f64) -> Persona {
    let roll: f64 = rng.random();
    let answer = if roll < accept {
        Answer::Accept
    } else if roll < accept + refuse {
        Answer::Refuse
    } else {
        return Persona::Silent;
    };
    let attempt_roll: f64 = rng.random();
    let attempt = if attempt_roll < 0.6 {
        1
    } else if attempt_roll < 0.85 {
        2
    } else {
        3
    };
    let withdraws_after =
        (answer == Answer::Accept && rng.random_bool(0.04)).then(|| rng.random_range(10..60));
    Persona::Answers {
        attempt,
        delay_days: rng.random_range(0..6),
        answer,
        withdraws_after,
    }
}

/// The contacts as a CSV file, as a CRM would export them.
fn contacts_csv(rng: &mut StdRng, n: usize, end: DateTime<Utc>) -> String {
    let mut csv = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_contacts_csv(&mut csv, rng, n, end);
    String::from_utf8(csv).unwrap_or_default()
}

/// Writes `n` generated contacts as CSV (also used by `klar bench import`).
pub fn write_contacts_csv(
    out: &mut impl std::io::Write,
    rng: &mut StdRng,
    n: usize,
    end: DateTime<Utc>,
) -> std::io::Result<()> {
    out.write_all(
        b"external_id,first_name,last_name,email,phone,owner,source,created_at,language,company\n",
    )?;
    for i in 1..=n {
        let (first, language) = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let domain = ["example.de", "example.com", "beispiel.example"][rng.random_range(0..3)];
        // A few contacts came in by phone or letter only.
        let email = if rng.random_bool(0.92) {
            format!("{}.{}{i}@{domain}", ascii(first), ascii(last))
        } else {
            String::new()
        };
        let phone = if rng.random_bool(0.5) {
            format!("+49 30 {:07}", rng.random_range(1_000_000..9_999_999))
        } else {
            String::new()
        };
        let owner = OWNERS[rng.random_range(0..OWNERS.len())];
        let source = SOURCES[rng.random_range(0..SOURCES.len())];
        let created = end - Duration::days(rng.random_range(200..2_500));
        let company = COMPANIES[rng.random_range(0..COMPANIES.len())];
        let quote = |s: &str| {
            if s.contains([',', '"', '&']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        writeln!(
            out,
            "C{i:05},{first},{},{email},{phone},{owner},{source},{},{language},{}",
            quote(last),
            created.format("%Y-%m-%d"),
            quote(company)
        )?;
    }
    Ok(())
}

/// Makes room for the demo at `location`. A SQLite file from an earlier
/// demo is removed; one with other tenants is refused. A PostgreSQL
/// database must be empty: klar does not drop databases, and a demo tenant
/// in a database others share would be someone's mistake.
pub fn clear_old_demo(location: &crate::store::Location) -> Result<(), DemoError> {
    let Some(path) = location.file() else {
        let store = Store::open(location.clone())?;
        let held: Vec<String> = tenants::list(store.connection())?
            .into_iter()
            .map(|t| t.id)
            .collect();
        if !held.is_empty() {
            return Err(DemoError::NotEmpty(location.to_string(), held.join(", ")));
        }
        return Ok(());
    };
    if !path.exists() {
        return Ok(());
    }
    let others: Vec<String> = {
        let store = Store::open(path)?;
        tenants::list(store.connection())?
            .into_iter()
            .map(|t| t.id)
            .filter(|id| id != TENANT)
            .collect()
    };
    if !others.is_empty() {
        return Err(DemoError::NotADemoDatabase(path.display().to_string()));
    }
    crate::store::remove_database(path).map_err(|(file, source)| DemoError::Remove {
        path: file.display().to_string(),
        source,
    })?;
    Ok(())
}

/// An answer due on a simulated day.
struct Pending {
    secret: String,
    answer: Answer,
    withdraws_after: Option<i64>,
}

/// Runs the demo into `store` (a fresh database) and returns what happened.
pub fn run(
    store: &mut Store,
    plugin: &Arc<LoadedPlugin>,
    options: &Options,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Summary, DemoError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let start = options.end - Duration::days(i64::from(options.days));
    let tenant = store.transaction(|tx| {
        tenants::add(
            tx,
            TENANT,
            "Beispiel Handels GmbH",
            "Europe/Berlin",
            "de",
            start.timestamp(),
        )?;
        tenants::add_purpose(
            tx,
            TENANT,
            "newsletter",
            "Newsletter mit Angeboten und Neuigkeiten per E-Mail",
            start.timestamp(),
        )?;
        Ok::<_, DemoError>(())
    });
    tenant?;
    let tenant: Tenant = tenants::require(store.connection(), TENANT)?;

    let csv = contacts_csv(&mut rng, options.contacts, start);
    let parsed = crate::app::import::parse(csv.as_bytes(), &tenant.locale, start)?;
    if let Some(problem) = parsed.problems.first() {
        return Err(DemoError::Step(format!(
            "the generated CSV has a bad line {}: {}",
            problem.line, problem.message
        )));
    }
    if let Err(problems) = crate::app::import::import_bytes(
        store,
        TENANT,
        (csv.as_bytes(), "demo.csv"),
        (&tenant.locale, start),
    )? {
        return Err(DemoError::Step(format!(
            "the generated CSV has {} bad row(s)",
            problems.len()
        )));
    }
    let mut personas: BTreeMap<(String, String), Persona> = BTreeMap::new();
    for (_, contact) in &parsed.contacts {
        personas.insert(
            (contact.id.clone(), "contact-data".to_owned()),
            persona(&mut rng, 0.35, 0.08),
        );
        personas.insert(
            (contact.id.clone(), "newsletter".to_owned()),
            persona(&mut rng, 0.22, 0.15),
        );
    }
    // Two contacts are in a legal dispute for a while.
    let holds: Vec<String> = (0..2)
        .map(|_| format!("C{:05}", rng.random_range(1..=options.contacts.max(1))))
        .collect();

    let (mut session, policy_sha256) = engine::tenant_session(store, plugin, &tenant)?;
    let sessions = engine::Sessions::new(Arc::clone(plugin));
    let mut summary = Summary {
        contacts: parsed.contacts.len(),
        ..Summary::default()
    };
    let mut answers: BTreeMap<i64, Vec<Pending>> = BTreeMap::new();
    let (mut refused, mut withdrawn) = (BTreeSet::new(), BTreeSet::new());
    let mut withdrawals: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    let mut seen_outbox = 0_i64;
    for day in 0..=i64::from(options.days) {
        let morning = start + Duration::days(day);
        if day == 10 || day == 80 {
            for contact in &holds {
                let event = if day == 10 {
                    Event::HoldOn {
                        by: "recht@beispiel.example".to_owned(),
                        reason: "Rechtsstreit, Az. 3 O 117/26".to_owned(),
                    }
                } else {
                    Event::HoldOff {
                        by: "recht@beispiel.example".to_owned(),
                        reason: "Verfahren abgeschlossen".to_owned(),
                    }
                };
                for purpose in ["contact-data", "newsletter"] {
                    if event_for(
                        store,
                        &mut session,
                        (&tenant, &policy_sha256),
                        (contact, purpose),
                        event.clone(),
                        morning,
                    )? {
                        summary.holds += usize::from(day == 10);
                    }
                }
            }
        }
        engine::tick(store, &mut session, &tenant, &policy_sha256, morning, 500)
            .map_err(DemoError::Store)?;

        // The requests of the morning reach people; some will answer.
        let new = outbox::Filter {
            all: true,
            after: seen_outbox,
            ..outbox::Filter::default()
        };
        let items = outbox::list(store.connection(), TENANT, &new)?;
        // The CRM carries out what the morning brought: mails and letters go
        // out, owners see their tasks. (What is still waiting when a case
        // moves on is withdrawn instead; see the scheduler.)
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        store.transaction(|tx| outbox::acknowledge(tx, TENANT, &ids, morning.timestamp()))?;
        for item in items {
            seen_outbox = item.seq;
            if item.kind != "send-request" {
                continue;
            }
            summary.requests_sent += 1;
            let attempt = item.payload.get("attempt").and_then(|v| v.as_u64());
            let secret = item.payload.get("token").and_then(|v| v.as_str());
            let key = (item.contact.clone(), item.purpose.clone());
            if let (
                Some(Persona::Answers {
                    attempt: when,
                    delay_days,
                    answer,
                    withdraws_after,
                }),
                Some(attempt),
                Some(secret),
            ) = (personas.get(&key).copied(), attempt, secret)
                && u64::from(when) == attempt
            {
                answers.entry(day + delay_days).or_default().push(Pending {
                    secret: secret.to_owned(),
                    answer,
                    withdraws_after,
                });
            }
        }

        // Answers come in during the day, by link.
        for (n, pending) in answers
            .remove(&day)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = morning + Duration::minutes(60 + (n as i64 * 7) % 600);
            let origin = Origin {
                ip: Some(IpAddr::V4(Ipv4Addr::new(
                    198,
                    51,
                    100,
                    rng.random_range(1..255),
                ))),
                user_agent: Some(USER_AGENTS[rng.random_range(0..USER_AGENTS.len())].to_owned()),
            };
            match respond::respond(
                store,
                &sessions,
                &pending.secret,
                pending.answer,
                &origin,
                at,
            ) {
                Ok(recorded) => {
                    for r in recorded.recorded {
                        match pending.answer {
                            Answer::Accept => {
                                summary.accepted += 1;
                                if let Some(after) = pending.withdraws_after {
                                    withdrawals
                                        .entry(day + after)
                                        .or_default()
                                        .push((r.contact, r.purpose));
                                }
                            }
                            Answer::Refuse => {
                                summary.refused += 1;
                                refused.insert((r.contact, r.purpose));
                            }
                        }
                    }
                }
                Err(RespondError::Token(_) | RespondError::Rejected(_)) => {
                    summary.answers_turned_down += 1;
                }
                Err(err) => return Err(DemoError::Step(err.to_string())),
            }
        }
        for (contact, purpose) in withdrawals.remove(&day).unwrap_or_default() {
            let at = morning + Duration::hours(5);
            if event_for(
                store,
                &mut session,
                (&tenant, &policy_sha256),
                (&contact, &purpose),
                Event::Withdraw,
                at,
            )? {
                summary.withdrawn += 1;
                withdrawn.insert((contact, purpose));
            }
        }

        // Owners work through their list now and then, not all of it.
        if day % 7 == 3 {
            let waiting = crate::store::cases::awaiting_since(
                store.connection(),
                TENANT,
                morning.timestamp() - 10 * 86_400,
            )?;
            for (contact, purpose, owner) in waiting {
                let roll: f64 = rng.random();
                let (kind, reason, after_days) = if roll < 0.15 {
                    (
                        DecisionKind::Restart,
                        "Neuer Versuch nach der nächsten Messe",
                        Some(90),
                    )
                } else if roll < 0.3 {
                    (
                        DecisionKind::Cleanup,
                        "Kein Kontakt seit Jahren, löschen",
                        None,
                    )
                } else if roll < 0.38 {
                    (
                        DecisionKind::OtherBasis,
                        "Laufender Vertrag (Art. 6 Abs. 1 lit. b DSGVO)",
                        None,
                    )
                } else {
                    continue;
                };
                let event = Event::ManualDecision(Decision {
                    kind,
                    by: owner,
                    reason: reason.to_owned(),
                    after_days,
                    mode: None,
                });
                let at = morning + Duration::hours(3);
                if event_for(
                    store,
                    &mut session,
                    (&tenant, &policy_sha256),
                    (&contact, &purpose),
                    event,
                    at,
                )? {
                    summary.decisions += 1;
                }
            }
        }
        progress(day as u32 + 1, options.days + 1);
    }
    summary.refused_now = states_now(store, &refused)?;
    summary.withdrawn_now = states_now(store, &withdrawn)?;
    add_accounts(store, options.end.timestamp())?;
    Ok(summary)
}

/// The demo's cockpit password: every demo account has it. A real tenant's
/// people set their own through their sign-up link.
pub const DEMO_PASSWORD: &str = "klar-demo-2026";

/// The demo's people: the four owners, a data-protection officer who
/// approves and places holds, and an administrator.
pub const ACCOUNTS: &[(&str, &str, &[Role])] = &[
    ("a.schmidt", "Anna Schmidt", &[Role::Owner]),
    ("jk", "Jana Kühn", &[Role::Owner]),
    ("m.yilmaz", "Mehmet Yilmaz", &[Role::Owner]),
    ("l.dubois", "Léa Dubois", &[Role::Owner]),
    (
        "dpo",
        "Dr. Petra Ostermann (Datenschutz)",
        &[Role::Viewer, Role::Approver],
    ),
    ("admin", "Admin", &[Role::Admin, Role::Viewer]),
];

fn add_accounts(store: &mut Store, now: i64) -> Result<(), DemoError> {
    for (id, name, roles) in ACCOUNTS {
        let new = crate::app::accounts::NewAccount {
            id,
            name,
            email: None,
            roles: roles.to_vec(),
            language: "de",
        };
        let step = |e: &dyn std::fmt::Display| DemoError::Step(format!("demo account {id}: {e}"));
        let (_, link) =
            crate::app::accounts::add(store, TENANT, &new, "demo", now).map_err(|e| step(&e))?;
        crate::app::accounts::sign_up(store, &link, (DEMO_PASSWORD, DEMO_PASSWORD), now)
            .map_err(|e| step(&e))?;
    }
    Ok(())
}

/// How many of these cases are in each state now.
fn states_now(
    store: &Store,
    keys: &BTreeSet<(String, String)>,
) -> Result<BTreeMap<String, usize>, DemoError> {
    let mut counts = BTreeMap::new();
    for (contact, purpose) in keys {
        if let Some(case) = crate::store::cases::get(store.connection(), TENANT, contact, purpose)?
        {
            *counts.entry(case.state.as_str().to_owned()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// One event; false if the case did not take it (e.g. it was purged).
fn event_for(
    store: &mut Store,
    session: &mut Session,
    (tenant, policy_sha256): (&Tenant, &str),
    (contact, purpose): (&str, &str),
    event: Event,
    at: DateTime<Utc>,
) -> Result<bool, DemoError> {
    match engine::step_event(
        store,
        session,
        tenant,
        policy_sha256,
        contact,
        purpose,
        event,
        at,
    ) {
        Ok(_) => Ok(true),
        Err(EventError::Rejected(_) | EventError::NoCase { .. } | EventError::NoContact(_)) => {
            Ok(false)
        }
        Err(err) => Err(DemoError::Step(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_ascii() {
        assert_eq!(ascii("Jürgen"), "juergen");
        assert_eq!(ascii("Østergaard"), "oestergaard");
        assert_eq!(ascii("Yılmaz"), "yilmaz");
        assert_eq!(ascii("van der Berg"), "vanderberg");
        assert_eq!(ascii("O'Brien"), "obrien");
    }

    #[test]
    fn the_generated_csv_imports_cleanly() {
        let mut rng = StdRng::seed_from_u64(7);
        let end = DateTime::from_timestamp(1_796_029_200, 0).unwrap_or_default();
        let csv = contacts_csv(&mut rng, 300, end);
        let parsed = crate::app::import::parse(csv.as_bytes(), "de", end).expect("parses");
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.contacts.len(), 300);
        assert!(csv.contains('ü') || csv.contains('ö') || csv.contains('ä'));
    }
}
