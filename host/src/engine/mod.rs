//! The case engine: every step of every case goes through here, whichever
//! face asked for it: `tick` (the scheduler's sweep over due cases), `step`
//! (one event for one case: a decision, a withdrawal, an answer), the host's
//! `guardrail`s that no plugin can override, `apply` (writing an outcome:
//! the case, its audit row, outbox actions, links and evidence, in one
//! transaction), and `session` (a tenant's active policy opened in the
//! plugin).
//!
//! Steps are applied per contact, because some rules span a contact's
//! purposes: requests due together become one message that asks about all of
//! them, a contact gets at most one message a day, owner tasks of one contact
//! become one task, and erasing the person ends every purpose at once.
//! Actions still waiting in the outbox whose case moved on are withdrawn in
//! the step that moved it.

mod apply;
pub mod calendar;
mod guardrail;
mod session;
mod step;
mod tick;

use chrono::{DateTime, Offset, TimeZone, Utc};

use crate::plugin::Clock;
use crate::store::tenants::Tenant;

pub use apply::{Applied, MESSAGE_GAP_SECONDS, next_message_at};
pub use guardrail::{guardrail, said_no};
pub use session::{
    OpenSession, RunningPolicy, SessionError, Sessions, running_policy, tenant_session,
};
pub use step::{EventError, Stepped, clear_attention, step_event, step_event_then, step_in};
pub use tick::{Progress, TickAllError, TickReport, sweep, tick, tick_all};

/// The tenant's clock at `now`, with its calendar: the UTC offset decides
/// the local calendar day, the region and closure days the working days.
pub fn clock(tenant: &Tenant, now: DateTime<Utc>) -> Clock {
    let offset = tenant
        .timezone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc();
    Clock {
        now,
        utc_offset_minutes: offset / 60,
        calendar: calendar::calendar(tenant, now),
    }
}
