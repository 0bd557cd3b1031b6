//! The weekly digest: a mail to each person with what waits for them in the
//! cockpit ("12 Fälle warten auf Ihre Entscheidung, 3 davon überfällig"),
//! with a link straight to each case. It names cases by their id only: no
//! name, address or other personal data of a contact goes into the mail.
//!
//! A person gets one digest per ISO week, from Monday 07:00 in the tenant's
//! time zone on, if they have an e-mail address, have not switched it off,
//! and something waits for them. `klar serve` sends it in its delivery
//! loop; `klar digest` sends what is due at once.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::store::accounts::{self, Account, Role};
use crate::store::audit::{self, Entry};
use crate::store::report::{self, QueueFilter};
use crate::store::{self, Store, tenants};

/// The most cases a digest links to; the rest are counted.
const MAX_LINKS: usize = 50;

/// One person's digest, ready to be mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub tenant: String,
    pub account: String,
    pub to: String,
    pub week: String,
    pub subject: String,
    pub text: String,
}

/// The ISO week of `now` in the tenant's zone (`2026-W49`), if its digest
/// may go out: from Monday 07:00 local time on.
fn week_due(now: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<String> {
    let local = now.with_timezone(&tz);
    let week = local.iso_week();
    let label = format!("{}-W{:02}", week.year(), week.week());
    let monday_morning = local.weekday() != chrono::Weekday::Mon || local.hour() >= 7;
    monday_morning.then_some(label)
}

/// The digests due now from the tenants `mailed` says klar mails for: one
/// per person whose week has not been dealt with. A person with nothing
/// waiting when their week comes up gets no digest that week, and their
/// week is marked done, so that the delivery loop (every few seconds) does
/// not read their queue again and again.
pub fn due(
    store: &mut Store,
    mailed: impl Fn(&str) -> bool,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Digest>, tenants::TenantError> {
    let mut out = Vec::new();
    let mut nothing_to_send = Vec::new();
    for tenant in tenants::list(store.connection())? {
        if !mailed(&tenant.id) {
            continue;
        }
        let Some(week) = week_due(now, tenant.timezone) else {
            continue;
        };
        for account in accounts::list(store.connection(), &tenant.id)? {
            if account.disabled_at.is_some() || !account.digest {
                continue;
            }
            let Some(to) = account.email.clone() else {
                continue;
            };
            let done = accounts::digest_week(store.connection(), &tenant.id, &account.id)?;
            if done.as_deref() == Some(&week) {
                continue;
            }
            match compose(store, &account, (&to, &week), public_url, now)? {
                Some(digest) => out.push(digest),
                None => nothing_to_send.push((account.id, week.clone())),
            }
        }
        if !nothing_to_send.is_empty() {
            store.transaction(|tx| {
                for (account, week) in nothing_to_send.drain(..) {
                    accounts::set_digest_week(tx, &tenant.id, &account, &week)?;
                }
                Ok::<_, store::Error>(())
            })?;
        }
    }
    Ok(out)
}

fn compose(
    store: &Store,
    account: &Account,
    (to, week): (&str, &str),
    public_url: &str,
    now: DateTime<Utc>,
) -> store::Result<Option<Digest>> {
    let conn = store.connection();
    let mine = QueueFilter {
        mine: Some((account.id.clone(), account.has(Role::Approver))),
        limit: MAX_LINKS,
        ..QueueFilter::default()
    };
    let (lines, total) = report::queue(conn, &account.tenant, &mine, now.timestamp())?;
    if total == 0 {
        return Ok(None);
    }
    let overdue = QueueFilter {
        overdue: true,
        limit: 0,
        ..mine.clone()
    };
    let (_, overdue) = report::queue(conn, &account.tenant, &overdue, now.timestamp())?;
    let en = account.language == "en";
    let base = public_url.trim_end_matches('/');
    let subject = if en {
        format!("klar: {total} case(s) wait for you, {overdue} of them overdue")
    } else {
        format!("klar: {total} Fälle warten auf Ihre Entscheidung, {overdue} davon überfällig")
    };
    let mut text = if en {
        format!(
            "Hello {},\n\n{total} case(s) wait for your decision in klar, {overdue} of them overdue.\n\n",
            account.name
        )
    } else {
        format!(
            "Guten Tag {},\n\n{total} Fälle warten in klar auf Ihre Entscheidung, {overdue} davon überfällig.\n\n",
            account.name
        )
    };
    for line in &lines {
        let overdue = line.due_at.is_some_and(|t| t < now.timestamp());
        let mark = match (overdue, en) {
            (true, true) => " (overdue)",
            (true, false) => " (überfällig)",
            _ => "",
        };
        text.push_str(&format!(
            "- {} / {}{mark}: {base}/cockpit/case/{}\n",
            line.contact,
            line.purpose,
            crate::percent_encode(&line.contact)
        ));
    }
    if total > lines.len() as i64 {
        let more = total - lines.len() as i64;
        text.push_str(&if en {
            format!("… and {more} more: {base}/cockpit/queue\n")
        } else {
            format!("… und {more} weitere: {base}/cockpit/queue\n")
        });
    }
    text.push_str(&if en {
        format!(
            "\nYour queue: {base}/cockpit/queue\nYou can switch this weekly mail off in the cockpit's settings: {base}/cockpit/settings\n"
        )
    } else {
        format!(
            "\nIhre Aufgaben: {base}/cockpit/queue\nDiese wöchentliche Mail können Sie in den Einstellungen des Cockpits abschalten: {base}/cockpit/settings\n"
        )
    });
    Ok(Some(Digest {
        tenant: account.tenant.clone(),
        account: account.id.clone(),
        to: to.to_owned(),
        week: week.to_owned(),
        subject,
        text,
    }))
}

/// Notes that a digest went out (so the week's second run sends nothing),
/// with an audit row that names the person and the count, not the cases.
pub fn sent(store: &mut Store, digest: &Digest, message_id: &str, now: i64) -> store::Result<()> {
    store.transaction(|tx| {
        accounts::set_digest_week(tx, &digest.tenant, &digest.account, &digest.week)?;
        audit::append(
            tx,
            &digest.tenant,
            Entry::tenant(
                now,
                "digest-sent",
                &serde_json::json!({
                    "account": digest.account,
                    "week": digest.week,
                    "message_id": message_id,
                }),
            ),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_week_starts_monday_at_seven_in_the_tenants_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        // Monday 2026-11-30, 06:59 and 07:00 in Berlin (05:59 and 06:00 UTC).
        let early = Utc
            .with_ymd_and_hms(2026, 11, 30, 5, 59, 0)
            .single()
            .expect("a time");
        let seven = Utc
            .with_ymd_and_hms(2026, 11, 30, 6, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(week_due(early, berlin), None);
        assert_eq!(week_due(seven, berlin).as_deref(), Some("2026-W49"));
        // Later in the week it is still that week's digest.
        let friday = Utc
            .with_ymd_and_hms(2026, 12, 4, 15, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(week_due(friday, berlin).as_deref(), Some("2026-W49"));
    }
}
