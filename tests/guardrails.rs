//! Property tests of the host's guardrails.
//!
//! 1. Random event sequences (answers, withdrawals, holds, decisions, ticks at
//!    random times) for a contact with two purposes, through the real
//!    component, scheduler and SQLite store, with policies drawn from a few
//!    shapes. After every event the stored cases, outbox and audit log must
//!    show: no request to a refused, withdrawn or removed case; no cleanup on
//!    hold or before the grace period ends; purged is final; every state
//!    change has its audit row; once the person is erased, every purpose is
//!    purged, nothing may be used and no request goes out again; at most one
//!    message a day; the audit chain is intact.
//! 2. Arbitrary outcomes, as a broken or hostile plugin might return them,
//!    against `engine::guardrail`: each forbidden outcome is refused with
//!    its reason, and every other outcome (requests to cases that may be
//!    asked, cleanups after the grace period without a hold) passes.

mod support;

use chrono::Duration;
use klar::engine;
use klar::plugin::{
    Action, Answer, Band, Basis, BasisKind, Case, CleanupMode, CleanupPlan, Decision, DecisionKind,
    Event, Outcome, State,
};
use klar::store::tenants;
use proptest::prelude::*;
use support::*;

const POLICIES: [&str; 4] = [
    // The standard policy.
    "",
    // Quick: cleanup on no answer, approval needed, short grace.
    "fn reminder_days(contact) { [3] }\nfn answer_days(contact) { 3 }\n\
     fn on_no_response(contact, case) { #{ action: \"cleanup\", mode: \"delete\" } }\n\
     fn cleanup_grace_days(contact) { 5 }\nfn requires_approval(contact, case) { true }\n\
     fn stale_after_days(contact) { 20 }\n",
    // Refusal only blocks; restart on no answer.
    "fn reminder_days(contact) { [2, 4] }\nfn business_days_only() { false }\n\
     fn on_refusal(contact, case) { #{ action: \"block\" } }\n\
     fn on_no_response(contact, case) { #{ action: \"restart\", after_days: 10 } }\n",
    // The newsletter on a legitimate interest, reviewed every ten days.
    "fn basis(contact, case) { if case.purpose == \"newsletter\" { \
     #{ basis: \"legitimate-interest\", reason: \"Bestandskunden\", review: 10 } } else { \"consent\" } }\n",
];

fn event() -> impl Strategy<Value = Event> {
    let person = prop_oneof![Just("jk".to_owned()), Just("ab".to_owned())];
    let kind = prop_oneof![
        Just(DecisionKind::Manual),
        Just(DecisionKind::Restart),
        Just(DecisionKind::Cleanup),
        Just(DecisionKind::OtherBasis),
        Just(DecisionKind::Keep),
    ];
    prop_oneof![
        4 => Just(Event::Tick),
        2 => Just(Event::Response { answer: Answer::Accept }),
        2 => Just(Event::Response { answer: Answer::Refuse }),
        1 => Just(Event::Withdraw),
        1 => Just(Event::Consent),
        1 => Just(Event::Object),
        1 => Just(Event::Used),
        1 => Just(Event::DataChanged),
        1 => Just(Event::Bounce { channel: "email".to_owned() }),
        1 => person.clone().prop_map(|by| Event::HoldOn { by, reason: "dispute".to_owned() }),
        1 => person.clone().prop_map(|by| Event::HoldOff { by, reason: "settled".to_owned() }),
        1 => person.clone().prop_map(|by| Event::Approve { by }),
        2 => (kind, person, proptest::option::of(0u32..30)).prop_map(|(kind, by, after_days)| {
            Event::ManualDecision(Decision {
                kind,
                by,
                reason: "property test".to_owned(),
                after_days,
                mode: None,
            })
        }),
    ]
}

const PURPOSES: [&str; 2] = ["contact-data", "newsletter"];

struct Seen {
    outbox_seq: i64,
    state_changes: i64,
    erased: bool,
    last_message: Option<i64>,
}

fn stored(sql: &rusqlite::Connection, purpose: &str) -> (Case, Option<String>) {
    sql.query_row(
        "SELECT body, needs_attention FROM cases WHERE contact = 'C1' AND purpose = ?1",
        [purpose],
        |r| Ok((r.get::<_, String>(0)?, r.get(1)?)),
    )
    .map(|(body, attention)| (serde_json::from_str(&body).expect("case JSON"), attention))
    .expect("the case")
}

fn all_stored(sql: &rusqlite::Connection) -> Vec<Case> {
    PURPOSES.iter().map(|p| stored(sql, p).0).collect()
}

/// `sql` is a second connection to the store's file, for what the test
/// reads beneath klar's own interface.
fn check(
    store: &klar::store::Store,
    sql: &rusqlite::Connection,
    before: &[Case],
    now: i64,
    seen: &mut Seen,
    what: &str,
) -> Result<Vec<Case>, TestCaseError> {
    let mut after = Vec::new();
    for purpose in PURPOSES {
        let (case, attention) = stored(sql, purpose);
        prop_assert_eq!(
            attention,
            None,
            "{}: the standard plugin tripped a guardrail ({})",
            what,
            purpose
        );
        after.push(case);
    }
    let state_of = |purpose: &str| {
        before
            .iter()
            .find(|c| c.purpose == purpose)
            .map(|c| c.state)
            .unwrap_or(State::Unclarified)
    };
    let conn = store.connection();
    let mut stmt = sql
        .prepare("SELECT seq, kind, purpose, payload, COALESCE(deliver_after, created_at) FROM outbox WHERE seq > ?1 ORDER BY seq")
        .expect("prepare");
    let new: Vec<(i64, String, String, String, i64)> = stmt
        .query_map([seen.outbox_seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (seq, kind, purpose, payload, created_at) in &new {
        seen.outbox_seq = *seq;
        if kind == "send-request" {
            prop_assert!(
                !seen.erased,
                "{}: a request to an erased person: {}",
                what,
                payload
            );
            let body: serde_json::Value = serde_json::from_str(payload).expect("payload");
            let asked: Vec<String> = body["purposes"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|p| p["purpose"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_else(|| vec![purpose.clone()]);
            for purpose in &asked {
                let state = state_of(purpose);
                prop_assert!(
                    !matches!(
                        state,
                        State::Refused | State::Withdrawn | State::CleanupPending | State::Purged
                    ),
                    "{}: a request went to a {} case: {}",
                    what,
                    state,
                    payload
                );
            }
            if let Some(last) = seen.last_message {
                prop_assert!(
                    *created_at >= last + 86_400,
                    "{}: two messages within a day (delivered from {} and {})",
                    what,
                    last,
                    created_at
                );
            }
            seen.last_message = Some(*created_at);
        }
        if kind == "cleanup" {
            let case = before
                .iter()
                .find(|c| &c.purpose == purpose)
                .expect("its case");
            prop_assert!(!case.legal_hold, "{}: cleanup on legal hold", what);
            let plan = case.cleanup.as_ref();
            prop_assert!(
                plan.is_some_and(|p| p.not_before.timestamp() <= now),
                "{}: cleanup before the grace period ended ({:?})",
                what,
                plan
            );
        }
    }
    for (b, a) in before.iter().zip(&after) {
        if b.state == State::Purged {
            prop_assert_eq!(a, b, "{}: purged is final", what);
        }
    }
    let erased: Option<i64> = sql
        .query_row("SELECT erased_at FROM contacts WHERE id = 'C1'", [], |r| {
            r.get(0)
        })
        .expect("the contact");
    if erased.is_some() {
        seen.erased = true;
        for purpose in PURPOSES {
            let use_ = klar::store::cases::usage(conn, "acme", "C1", purpose)
                .expect("usage")
                .expect("a case");
            prop_assert!(
                !use_.may_use(),
                "{}: {} usable after erasure",
                what,
                purpose
            );
            prop_assert_eq!(
                use_.state.as_str(),
                "purged",
                "{}: {} not purged after erasure",
                what,
                purpose
            );
        }
    }
    let changes: i64 = sql
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'state-change' AND contact = 'C1'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| a.state != b.state)
        .count();
    let expected = seen.state_changes + moved as i64;
    prop_assert_eq!(
        changes,
        expected,
        "{}: a state change without its audit row",
        what
    );
    seen.state_changes = changes;
    Ok(after)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_never_break_a_guardrail(
        policy in 0..POLICIES.len(),
        steps in proptest::collection::vec((0i64..20, event(), 0..PURPOSES.len()), 1..30),
    ) {
        let plugin = standard_plugin();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = klar::store::Store::open(dir.path().join("klar.db")).expect("store");
        let sql = rusqlite::Connection::open(dir.path().join("klar.db")).expect("a second connection");
        let source = if POLICIES[policy].is_empty() { klar::DEFAULT_POLICY } else { POLICIES[policy] };
        store.transaction(|tx| {
            tenants::add(tx, "acme", "ACME", "Europe/Berlin", "de", t0().timestamp())?;
            tenants::add_purpose(tx, "acme", "newsletter", "Newsletter", t0().timestamp())?;
            tenants::set_policy(tx, "acme", source, "test", "property", t0().timestamp())?;
            let mut c = contact("C1");
            c.id = "C1".to_owned();
            klar::store::contacts::upsert(tx, "acme", &c, t0().timestamp())?;
            klar::store::contacts::open_cases(tx, "acme", "C1", t0().timestamp())?;
            Ok::<_, anyhow::Error>(())
        }).expect("setup");
        let tenant = tenants::require(store.connection(), "acme").expect("tenant");
        let (mut session, sha) = engine::tenant_session(&store, &plugin, &tenant).expect("session");

        let mut now = t0();
        let mut seen = Seen { outbox_seq: 0, state_changes: 0, erased: false, last_message: None };
        let mut before = all_stored(&sql);
        for (i, (days, event, purpose)) in steps.into_iter().enumerate() {
            now += Duration::days(days) + Duration::hours(1);
            let purpose = PURPOSES[purpose];
            let what = format!("step {i} ({} on {purpose}) at {now}", event.describe());
            match event {
                Event::Tick => {
                    engine::tick(&mut store, &mut session, &tenant, &sha, now, 50).expect("tick");
                }
                event => {
                    match engine::step_event(&mut store, &mut session, &tenant, &sha, "C1", purpose, event, now) {
                        Ok(_) | Err(engine::EventError::Rejected(_)) => {}
                        Err(err) => prop_assert!(false, "{}: {}", what, err),
                    }
                }
            }
            before = check(&store, &sql, &before, now.timestamp(), &mut seen, &what)?;
        }
        prop_assert!(klar::store::audit::verify(store.connection(), "acme").expect("verify").is_empty());
    }
}

fn objected(case: &Case) -> bool {
    case.state == State::Objected
        || (case.state == State::CleanupPending
            && case
                .cleanup
                .as_ref()
                .is_some_and(|p| p.reason == "objection" || p.resume_state == State::Objected))
}

/// The contact said no: refused, withdrew or objected, or a cleanup came
/// from that or goes back to it.
fn said_no(case: &Case) -> bool {
    matches!(
        case.state,
        State::Refused | State::Withdrawn | State::Objected
    ) || (case.state == State::CleanupPending
        && case.cleanup.as_ref().is_some_and(|p| {
            p.reason != "no-response"
                || matches!(
                    p.resume_state,
                    State::Refused | State::Withdrawn | State::Objected
                )
        }))
}

fn state() -> impl Strategy<Value = State> {
    proptest::sample::select(State::ALL.to_vec())
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (1u32..5).prop_map(|attempt| Action::SendRequest {
            channel: "email".to_owned(),
            template: "request".to_owned(),
            attempt,
            link_expires_at: chrono::DateTime::UNIX_EPOCH,
        }),
        Just(Action::Cleanup {
            mode: CleanupMode::Delete,
            keep_evidence_until: t0()
        }),
        Just(Action::BlockUse),
    ]
}

fn basis() -> impl Strategy<Value = Option<Basis>> {
    proptest::option::of(proptest::option::of(Just("jk".to_owned()))).prop_map(|basis| {
        basis.map(|decided_by| Basis {
            kind: if decided_by.is_some() {
                BasisKind::Other
            } else {
                BasisKind::LegitimateInterest
            },
            reason: "property test".to_owned(),
            decided_by,
            since: Some(t0()),
            review_at: None,
            relied_on: Default::default(),
            policy_version: None,
        })
    })
}

fn case() -> impl Strategy<Value = Case> {
    let reason = proptest::sample::select(vec!["refusal", "objection", "no-response"]);
    let resume = proptest::sample::select(vec![
        State::Refused,
        State::Objected,
        State::AwaitingDecision,
    ]);
    (
        state(),
        any::<bool>(),
        proptest::option::of(-10i64..10),
        (reason, resume),
        basis(),
    )
        .prop_map(|(state, hold, grace, (reason, resume), basis)| {
            let mut case = Case::new("contact-data");
            case.state = state;
            case.legal_hold = hold;
            case.basis = basis;
            case.cleanup = grace.map(|d| CleanupPlan {
                mode: CleanupMode::Delete,
                not_before: t0() + Duration::days(d),
                reason: reason.to_owned(),
                resume_state: resume,
                resume_due_at: None,
                requested_by: None,
                requires_approval: false,
                approved_by: None,
            });
            case
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The guardrail's verdict is exact: it refuses an outcome if and only if
    /// the outcome is forbidden, and says why. So a host that refused a
    /// legitimate request (to a case that may be asked) or cleanup (after the
    /// grace period, no hold) fails here as surely as one that let a
    /// forbidden one through.
    #[test]
    fn whatever_a_plugin_returns_the_host_refuses_exactly_what_is_forbidden(
        before in case(),
        after in case(),
        actions in proptest::collection::vec(action(), 0..3),
        event in event(),
    ) {
        let now = t0().timestamp();
        let outcome = Outcome { case: after.clone(), actions: actions.clone(), trace: Vec::new() };
        let verdict = engine::guardrail(&before, &event, &outcome, now);
        let asks = actions.iter().any(|a| matches!(a, Action::SendRequest { .. }));
        let cleans = actions.iter().any(|a| matches!(a, Action::Cleanup { .. }));
        let removed = |case: &Case| case.state.band() == Band::Removed;
        // Every reason to refuse, with the words the refusal starts with.
        let reasons = [
            (
                before.state == State::Purged && after != before,
                "purged is final",
            ),
            (
                // Refused, withdrawn, cleanup pending or purged, before or after.
                asks && (removed(&before) || removed(&after)),
                "the plugin asked to contact someone whose case is",
            ),
            (
                cleans && (before.legal_hold || after.legal_hold),
                "the case is on legal hold",
            ),
            (
                cleans && before.cleanup.as_ref().is_some_and(|p| p.not_before.timestamp() > now),
                "cleanup before the grace period ends",
            ),
            (
                cleans && before.cleanup.is_none(),
                "cleanup without a pending cleanup plan",
            ),
            (
                // Another basis over a "no" only as the approval of one asked for.
                matches!(before.state, State::Refused | State::Withdrawn | State::CleanupPending)
                    && after.state == State::OtherBasis
                    && before.pending_basis.is_none(),
                "another basis may follow",
            ),
            (
                // A "no" ends only by the contact's own consent.
                said_no(&before)
                    && after.state == State::Consented
                    && event != Event::Consent,
                "the contact said no",
            ),
            (
                // An objection is final: only the contact's consent or the
                // erasure end it.
                objected(&before)
                    && !objected(&after)
                    && after.state != State::Purged
                    && !(after.state == State::Consented && event == Event::Consent),
                "the contact objected",
            ),
            (
                // A basis the policy set never follows a "no" or a consent.
                after.state == State::OtherBasis
                    && after.basis.as_ref().is_some_and(|b| b.decided_by.is_none())
                    && (removed(&before) || before.state == State::Consented),
                "a basis set by the policy may not follow",
            ),
        ];
        let forbidden: Vec<&str> = reasons.iter().filter(|(applies, _)| *applies).map(|(_, words)| *words).collect();
        match &verdict {
            None => prop_assert!(
                forbidden.is_empty(),
                "a forbidden outcome passed ({:?}): {} -> {}, hold {} -> {}, plan {:?}, actions {:?}",
                forbidden, before.state, after.state, before.legal_hold, after.legal_hold, before.cleanup, actions
            ),
            Some(why) => {
                prop_assert!(
                    !forbidden.is_empty(),
                    "a legitimate outcome was refused ({}): {} -> {}, hold {} -> {}, plan {:?}, actions {:?}",
                    why, before.state, after.state, before.legal_hold, after.legal_hold, before.cleanup, actions
                );
                prop_assert!(
                    forbidden.iter().any(|words| why.starts_with(words)),
                    "the refusal {:?} names none of the reasons that apply: {:?}",
                    why,
                    forbidden
                );
            }
        }
    }
}
