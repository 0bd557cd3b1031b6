//! The cockpit's use cases: what a signed-in person may do to a case by
//! their roles, doing it (one case or a selection), and the overview's
//! figures. The events themselves go through [`super::events::report`], so
//! the cockpit follows the same rules as the CLI and the API, and every
//! audit row names the account.

use chrono::{DateTime, Utc};

use super::actor::Actor;
use super::events::{self, Applied, Reported};
use crate::engine::Sessions;
use crate::plugin::{Decision, DecisionKind, Event, State};
use crate::store::accounts::{Account, Role};
use crate::store::report::{self, BandDay, CleanupWeek, Status, Wave};
use crate::store::tenants::Tenant;
use crate::store::{self, Conn, Store, cases, contacts};

/// What a person can do to a case in the cockpit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseAction {
    /// A decision (manual, restart, cleanup, other-basis, keep) with a reason.
    Decide(DecisionKind, String),
    /// Place a legal hold, with a reason.
    HoldOn(String),
    /// Lift a legal hold, with a reason.
    HoldOff(String),
    /// Approve a pending cleanup someone else asked for.
    Approve,
    /// Let the scheduler take a failed case up again, with a reason.
    Clear(String),
}

impl CaseAction {
    /// The action a form names (`decide:keep`, `hold-on`, …), with its reason.
    pub fn parse(name: &str, reason: &str) -> Option<CaseAction> {
        let reason = reason.trim().to_owned();
        Some(match name {
            "approve" => CaseAction::Approve,
            "hold-on" => CaseAction::HoldOn(reason),
            "hold-off" => CaseAction::HoldOff(reason),
            "clear" => CaseAction::Clear(reason),
            "decide:manual" => CaseAction::Decide(DecisionKind::Manual, reason),
            "decide:restart" => CaseAction::Decide(DecisionKind::Restart, reason),
            "decide:cleanup" => CaseAction::Decide(DecisionKind::Cleanup, reason),
            "decide:other-basis" => CaseAction::Decide(DecisionKind::OtherBasis, reason),
            "decide:keep" => CaseAction::Decide(DecisionKind::Keep, reason),
            _ => return None,
        })
    }

    fn reason(&self) -> Option<&str> {
        match self {
            CaseAction::Decide(_, r)
            | CaseAction::HoldOn(r)
            | CaseAction::HoldOff(r)
            | CaseAction::Clear(r) => Some(r),
            CaseAction::Approve => None,
        }
    }

    /// The role the action needs.
    pub fn role(&self) -> Role {
        match self {
            CaseAction::Decide(..) => Role::Owner,
            CaseAction::HoldOn(_) | CaseAction::HoldOff(_) | CaseAction::Approve => Role::Approver,
            CaseAction::Clear(_) => Role::Admin,
        }
    }
}

/// A case of a selection (contact, purpose) and what became of it.
pub type Outcome = ((String, String), Done);

/// What became of one case of a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Applied; the case is now in this state.
    Now(State),
    /// Not applied, and why (not this person's case, not possible in the
    /// case's state, the policy refused, …). Nothing changed.
    Skipped(String),
    /// The step failed and the case is marked for attention.
    Failed(String),
}

/// A case one person may act on: whose it is.
struct Whose {
    owner: String,
    assigned_to: Option<String>,
}

fn whose(
    conn: &Conn,
    tenant: &str,
    (contact, purpose): (&str, &str),
) -> Result<Option<Whose>, store::StoreError> {
    let Some(stored) = contacts::stored(conn, tenant, contact)? else {
        return Ok(None);
    };
    Ok(cases::get(conn, tenant, contact, purpose)?.map(|c| Whose {
        owner: stored.owner,
        assigned_to: c.assigned_to,
    }))
}

/// Why `account` may not do `action` to this case, if it may not.
fn refused(account: &Account, action: &CaseAction, whose: &Whose) -> Option<String> {
    let role = action.role();
    if !account.has(role) {
        return Some(format!("this needs the role {role}"));
    }
    if let CaseAction::Decide(..) = action {
        let mine = whose.assigned_to.as_deref() == Some(account.id.as_str())
            || (whose.assigned_to.is_none() && whose.owner == account.id);
        if !mine {
            return Some(format!(
                "the case is {}'s, not yours",
                whose.assigned_to.as_deref().unwrap_or(&whose.owner)
            ));
        }
    }
    None
}

/// Does `action` to each case of `selection` as `account`: each case
/// separately, with its own transaction; cases the action is not valid for
/// are skipped and say why.
pub fn act(
    store: &mut Store,
    sessions: &Sessions,
    tenant: &Tenant,
    account: &Account,
    selection: &[(String, String)],
    action: &CaseAction,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, ActError> {
    if let Some(reason) = action.reason() {
        super::text::one_line("the reason", reason, super::text::MAX_WHY)
            .map_err(ActError::Reason)?;
    }
    let actor = Actor::Account {
        id: account.id.clone(),
        name: account.name.clone(),
    };
    let by = account.id.clone();
    let mut results = Vec::with_capacity(selection.len());
    for (contact, purpose) in selection {
        let key = (contact.clone(), purpose.clone());
        let Some(whose) = whose(store.connection(), &tenant.id, (contact, purpose))? else {
            results.push((key, Done::Skipped("no such case".to_owned())));
            continue;
        };
        if let Some(why) = refused(account, action, &whose) {
            results.push((key, Done::Skipped(why)));
            continue;
        }
        let event = match action {
            CaseAction::Decide(kind, reason) => Event::ManualDecision(Decision {
                kind: *kind,
                by: by.clone(),
                reason: reason.clone(),
                after_days: None,
                mode: None,
            }),
            CaseAction::HoldOn(reason) => Event::HoldOn {
                by: by.clone(),
                reason: reason.clone(),
            },
            CaseAction::HoldOff(reason) => Event::HoldOff {
                by: by.clone(),
                reason: reason.clone(),
            },
            CaseAction::Approve => Event::Approve { by: by.clone() },
            CaseAction::Clear(reason) => {
                let who = format!("{} ({}, cockpit)", account.name, account.id);
                let cleared = crate::engine::clear_attention(
                    store,
                    &tenant.id,
                    (contact, purpose),
                    &who,
                    reason,
                    now.timestamp(),
                )?;
                results.push((
                    key,
                    if cleared {
                        Done::Now(
                            cases::get(store.connection(), &tenant.id, contact, purpose)?
                                .map_or(State::Unclarified, |c| c.state),
                        )
                    } else {
                        Done::Skipped("the case is not marked as failed".to_owned())
                    },
                ));
                continue;
            }
        };
        let reported = events::report(
            store,
            sessions,
            tenant,
            contact,
            Some(purpose),
            (&event, &actor),
            None,
            now,
        )?;
        let done = match reported {
            Reported::Stepped(mut r) => match r.pop().map(|r| r.applied) {
                Some(Applied::Now(state)) => Done::Now(state),
                Some(Applied::Refused(why)) => Done::Skipped(why),
                Some(Applied::Failed(why)) => Done::Failed(why),
                None => Done::Skipped("no such case".to_owned()),
            },
            Reported::Repeated { .. } => Done::Skipped("already done".to_owned()),
        };
        results.push((key, done));
    }
    Ok(results)
}

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The reason is missing or unusable; nothing was done.
    #[error("{0}")]
    Reason(String),
    #[error(transparent)]
    Report(#[from] events::ReportError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

impl From<store::Error> for ActError {
    fn from(err: store::Error) -> ActError {
        ActError::Store(err.into())
    }
}

/// The actions `account` may offer on a case in this state (the page shows
/// only these; the rules are checked again when one is done).
pub fn offered(
    account: &Account,
    case: &crate::plugin::Case,
    owner: &str,
    failed: bool,
) -> Vec<&'static str> {
    let whose = Whose {
        owner: owner.to_owned(),
        assigned_to: case.assigned_to.clone(),
    };
    let may = |action: CaseAction| refused(account, &action, &whose).is_none();
    let mut out = Vec::new();
    let r = String::new;
    if case.state == State::AwaitingDecision && may(CaseAction::Decide(DecisionKind::Manual, r())) {
        out.extend([
            "decide:manual",
            "decide:restart",
            "decide:cleanup",
            "decide:other-basis",
        ]);
    }
    if case.state == State::CleanupPending && may(CaseAction::Decide(DecisionKind::Keep, r())) {
        out.push("decide:keep");
    }
    if let Some(plan) = &case.cleanup
        && case.state == State::CleanupPending
        && plan.requires_approval
        && plan.approved_by.is_none()
        && may(CaseAction::Approve)
    {
        out.push("approve");
    }
    if case.state != State::Purged && may(CaseAction::HoldOn(r())) {
        out.push(if case.legal_hold {
            "hold-off"
        } else {
            "hold-on"
        });
    }
    if failed && may(CaseAction::Clear(r())) {
        out.push("clear");
    }
    out
}

/// Everything the overview shows.
#[derive(Debug, Clone)]
pub struct Overview {
    pub status: Status,
    /// On time, due within 7 days, overdue.
    pub ageing: (i64, i64, i64),
    /// The bands at the first tick of each recorded day of the last 8 weeks.
    pub trend: Vec<BandDay>,
    /// The request waves as the day's first tick found them, and that day.
    pub funnel: Option<(String, Vec<Wave>)>,
    pub cleanup: Vec<CleanupWeek>,
    /// Usable cases by legal basis (`report::bases`).
    pub bases: Vec<(String, i64)>,
}

pub fn overview(conn: &Conn, tenant: &Tenant, now: DateTime<Utc>) -> store::Result<Overview> {
    let at = now.timestamp();
    let since = (now - chrono::Duration::weeks(8))
        .with_timezone(&tenant.timezone)
        .format("%Y-%m-%d")
        .to_string();
    let status = report::status(conn, &tenant.id, at)?;
    Ok(Overview {
        ageing: (
            report::on_time(conn, &tenant.id, at)?,
            status.due_next_7_days,
            status.overdue,
        ),
        status,
        trend: report::band_days(conn, &tenant.id, &since)?,
        funnel: report::latest_funnel(conn, &tenant.id)?,
        cleanup: report::cleanup_preview(conn, &tenant.id)?,
        bases: report::bases(conn, &tenant.id)?,
    })
}
