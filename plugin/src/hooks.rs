//! The policy hooks: their names, parameters, contracts and defaults, and how a
//! hook's return value is read into a typed decision.
//!
//! This file is the single source of truth for what a hook may return; the
//! contract texts here are what `klar policy check` shows when a hook returns the
//! wrong thing, and `rules/README.md` documents the same.

use rhai::{Dynamic, Map};

use crate::model::{BasisKind, CleanupMode};

/// Every hook a policy may define. All are optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    ReminderDays,
    Channel,
    AnswerDays,
    OnNoResponse,
    OnRefusal,
    ConsentValidDays,
    StaleAfterDays,
    BusinessDaysOnly,
    CleanupGraceDays,
    RequiresApproval,
    EvidenceRetentionDays,
    LinkValidDays,
    DecisionDays,
    UsableWhileReconfirming,
    Basis,
}

impl Hook {
    pub const ALL: [Hook; 15] = [
        Hook::ReminderDays,
        Hook::Channel,
        Hook::AnswerDays,
        Hook::OnNoResponse,
        Hook::OnRefusal,
        Hook::ConsentValidDays,
        Hook::StaleAfterDays,
        Hook::BusinessDaysOnly,
        Hook::CleanupGraceDays,
        Hook::RequiresApproval,
        Hook::EvidenceRetentionDays,
        Hook::LinkValidDays,
        Hook::DecisionDays,
        Hook::UsableWhileReconfirming,
        Hook::Basis,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::ReminderDays => "reminder_days",
            Hook::Channel => "channel",
            Hook::AnswerDays => "answer_days",
            Hook::OnNoResponse => "on_no_response",
            Hook::OnRefusal => "on_refusal",
            Hook::ConsentValidDays => "consent_valid_days",
            Hook::StaleAfterDays => "stale_after_days",
            Hook::BusinessDaysOnly => "business_days_only",
            Hook::CleanupGraceDays => "cleanup_grace_days",
            Hook::RequiresApproval => "requires_approval",
            Hook::EvidenceRetentionDays => "evidence_retention_days",
            Hook::LinkValidDays => "link_valid_days",
            Hook::DecisionDays => "decision_days",
            Hook::UsableWhileReconfirming => "usable_while_reconfirming",
            Hook::Basis => "basis",
        }
    }

    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    pub fn params(self) -> &'static [&'static str] {
        match self {
            Hook::BusinessDaysOnly => &[],
            Hook::Channel => &["contact", "attempt"],
            Hook::OnNoResponse
            | Hook::OnRefusal
            | Hook::RequiresApproval
            | Hook::UsableWhileReconfirming
            | Hook::EvidenceRetentionDays
            | Hook::Basis => &["contact", "case"],
            Hook::ReminderDays
            | Hook::AnswerDays
            | Hook::ConsentValidDays
            | Hook::StaleAfterDays
            | Hook::CleanupGraceDays
            | Hook::LinkValidDays
            | Hook::DecisionDays => &["contact"],
        }
    }

    /// The hook's signature as a policy writes it, e.g. `channel(contact, attempt)`.
    pub fn signature(self) -> String {
        format!("{}({})", self.name(), self.params().join(", "))
    }

    /// What the hook must return, in the words `policy check` uses.
    pub fn contract(self) -> &'static str {
        match self {
            Hook::ReminderDays => {
                "must return an array of whole numbers of days after the first request, e.g. [7, 14, 28]"
            }
            Hook::Channel => r#"must return "email", "letter" or "phone-task""#,
            Hook::AnswerDays => {
                "must return a whole number of days (at least 1) the contact has to answer after the last reminder"
            }
            Hook::OnNoResponse => {
                r#"must return a map such as #{ action: "manual", assign: contact.owner }, #{ action: "restart", after_days: 90 } or #{ action: "cleanup", mode: "anonymise", grace_days: 30 }"#
            }
            Hook::OnRefusal => {
                r#"must return a map such as #{ action: "block" } or #{ action: "cleanup", mode: "delete", grace_days: 14 }"#
            }
            Hook::ConsentValidDays => {
                r#"must return how long a consent lasts before it is confirmed again: a number of days or a period such as "2 years" (0: no review)"#
            }
            Hook::StaleAfterDays => {
                r#"must return how long a consent may go unused before it is asked again: a number of days or a period such as "18 months" (0: never)"#
            }
            Hook::BusinessDaysOnly => "must return true or false",
            Hook::CleanupGraceDays => {
                r#"must return the time between the decision to clean up and the erasure: a number of days or a period such as "1 month""#
            }
            Hook::RequiresApproval => "must return true or false",
            Hook::UsableWhileReconfirming => {
                "must return true (the consent may be used while it is confirmed again) or false (use stops when the re-confirmation starts)"
            }
            Hook::EvidenceRetentionDays => {
                r#"must return how long the evidence is kept after the erasure (counted from the later of the erasure and the last use): a number of days or a period such as "5 years" or "3 years from year end""#
            }
            Hook::LinkValidDays => {
                r#"must return how long a response link works after it is sent (at least 1 day): a number of days or a period such as "30 days""#
            }
            Hook::DecisionDays => {
                "must return a whole number of days a person has to decide a case handed to them (0: no deadline)"
            }
            Hook::Basis => {
                r#"must return "consent" (ask the contact) or a map such as #{ basis: "existing-customer", reason: "…", review: "1 year" } (basis: "contract", "legitimate-interest", "existing-customer" or "legal-obligation")"#
            }
        }
    }
}

/// What to do when the reminders ran out without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoResponsePlan {
    /// Hand the case to a person; `None` means the contact's owner.
    Manual { assign: Option<String> },
    /// Ask again after some days.
    Restart { after_days: u32 },
    /// Clean up; `None` grace means `cleanup_grace_days`.
    Cleanup {
        mode: CleanupMode,
        grace_days: Option<u32>,
    },
}

/// What to do after a refusal or withdrawal (use is blocked either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalPlan {
    Block,
    Cleanup {
        mode: CleanupMode,
        grace_days: Option<u32>,
    },
}

/// What the `basis` hook decided for a contact and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasisChoice {
    /// Ask for consent.
    Consent,
    /// Another basis, with the legal team's reason, asked again after
    /// `review`.
    Other {
        kind: BasisKind,
        reason: String,
        review: Period,
    },
}

pub const DEFAULT_REMINDER_DAYS: [u32; 2] = [14, 28];
pub const DEFAULT_ANSWER_DAYS: u32 = 14;
pub const DEFAULT_RESTART_DAYS: u32 = 90;
pub const DEFAULT_CONSENT_VALID_DAYS: u32 = 730;
pub const DEFAULT_STALE_AFTER_DAYS: u32 = 365;
pub const DEFAULT_GRACE_DAYS: u32 = 30;
/// Three years: the regular limitation period of German civil law (§ 195 BGB).
pub const DEFAULT_EVIDENCE_RETENTION_DAYS: u32 = 1095;

/// How long a response link works by default: half a year, long enough for a
/// contact who finds the mail late after a reminder round.
pub const DEFAULT_LINK_VALID_DAYS: u32 = 180;

/// A case handed to a person has no deadline unless the policy sets one.
pub const DEFAULT_DECISION_DAYS: u32 = 0;

/// The most days any hook may return: ten years.
const MAX_DAYS: i64 = 3_660;

/// A hook's value did not fit its contract. The text says what was wrong; the
/// caller adds the hook's contract.
pub type Mismatch = String;

fn days(value: &Dynamic, min: i64) -> Result<u32, Mismatch> {
    let n = value
        .as_int()
        .map_err(|t| format!("it returned {} ({t})", show(value)))?;
    if !(min..=MAX_DAYS).contains(&n) {
        return Err(format!("it returned {n}, outside {min}..={MAX_DAYS}"));
    }
    u32::try_from(n).map_err(|_| format!("it returned {n}"))
}

/// A period on the calendar, as a legal text states it: days, months or
/// years, perhaps counted from the end of the year (§ 199 BGB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub amount: u32,
    pub unit: Unit,
    /// Counted from the end of the year in which it starts.
    pub from_year_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    Months,
    Years,
}

impl Period {
    pub fn days(amount: u32) -> Period {
        Period {
            amount,
            unit: Unit::Days,
            from_year_end: false,
        }
    }

    /// No time at all: "never" for the hooks where 0 means never.
    pub fn is_zero(&self) -> bool {
        self.amount == 0 && !self.from_year_end
    }
}

/// Reads a period: a number of days as before, or text such as `"2 years"`,
/// `"18 months"`, `"14 days"` (German words too: `"2 Jahre"`), optionally
/// `"… from year end"` (`"… ab Jahresende"`). At most ten years.
pub fn period(value: &Dynamic, min: i64) -> Result<Period, Mismatch> {
    if value.as_int().is_ok() {
        return days(value, min).map(Period::days);
    }
    let Some(text) = value.read_lock::<rhai::ImmutableString>() else {
        return Err(format!(
            "it returned {}; give a number of days or text such as \"2 years\"",
            show(value)
        ));
    };
    let lower = text.trim().to_lowercase();
    let (rest, from_year_end) = ["from year end", "from the end of the year", "ab jahresende"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix).map(|r| (r.trim_end(), true)))
        .unwrap_or((lower.as_str(), false));
    let unreadable = || {
        format!(
            "it returned {}; write a period as \"14 days\", \"18 months\" or \"2 years\" (optionally \"… from year end\")",
            show(value)
        )
    };
    let (number, word) = rest.split_once(' ').ok_or_else(unreadable)?;
    let amount: i64 = number.trim().parse().map_err(|_| unreadable())?;
    let (unit, max) = match word.trim() {
        "day" | "days" | "tag" | "tage" | "tagen" => (Unit::Days, MAX_DAYS),
        "month" | "months" | "monat" | "monate" | "monaten" => (Unit::Months, MAX_DAYS / 31),
        "year" | "years" | "jahr" | "jahre" | "jahren" => (Unit::Years, MAX_DAYS / 366),
        _ => return Err(unreadable()),
    };
    if !(min..=max).contains(&amount) {
        return Err(format!(
            "it returned {}, outside {min}..={max} {}",
            show(value),
            word.trim()
        ));
    }
    Ok(Period {
        amount: u32::try_from(amount).map_err(|_| unreadable())?,
        unit,
        from_year_end,
    })
}

/// How a value reads in an error or trace: `"text"`, `[1, 2]`, `#{...}`.
/// Written by hand for the common types because every traced hook call uses it
/// (rhai's own `Display` went through `Debug` and took 5% of a step).
pub fn show(value: &Dynamic) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Dynamic) {
    use std::fmt::Write;
    if let Ok(n) = value.as_int() {
        let _ = write!(out, "{n}");
    } else if let Ok(b) = value.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        let _ = write!(out, "{:?}", s.as_str());
    } else if value.is_unit() {
        out.push_str("nothing");
    } else if let Some(array) = value.read_lock::<rhai::Array>() {
        out.push('[');
        for (i, item) in array.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_value(out, item);
        }
        out.push(']');
    } else if let Some(map) = value.read_lock::<Map>() {
        out.push_str("#{ ");
        for (i, (key, item)) in map.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(key);
            out.push_str(": ");
            write_value(out, item);
        }
        out.push_str(" }");
    } else {
        let _ = write!(out, "{value}");
    }
}

pub fn reminder_days(value: &Dynamic) -> Result<Vec<u32>, Mismatch> {
    let Some(array) = value.read_lock::<rhai::Array>() else {
        return Err(format!("it returned {}", show(value)));
    };
    let mut out = Vec::with_capacity(array.len());
    for item in array.iter() {
        out.push(days(item, 1)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

pub fn channel(value: &Dynamic) -> Result<String, Mismatch> {
    match value.read_lock::<rhai::ImmutableString>() {
        Some(s) if matches!(s.as_str(), "email" | "letter" | "phone-task") => Ok(s.to_string()),
        _ => Err(format!("it returned {}", show(value))),
    }
}

pub fn whole_days(value: &Dynamic, min: i64) -> Result<u32, Mismatch> {
    days(value, min)
}

pub fn flag(value: &Dynamic) -> Result<bool, Mismatch> {
    value
        .as_bool()
        .map_err(|_| format!("it returned {}", show(value)))
}

/// Reads `#{ action: ..., ... }` or the bare action name.
fn action_map(value: &Dynamic) -> Result<(String, Map), Mismatch> {
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return Ok((s.to_string(), Map::new()));
    }
    let Some(map) = value.read_lock::<Map>() else {
        return Err(format!("it returned {}", show(value)));
    };
    let mut map = map.clone();
    let action = map
        .remove("action")
        .ok_or_else(|| "the map has no `action`".to_owned())?;
    let action = action
        .into_immutable_string()
        .map_err(|t| format!("`action` is a {t}, not text"))?;
    Ok((action.to_string(), map))
}

fn take_mode(map: &mut Map) -> Result<CleanupMode, Mismatch> {
    match map.remove("mode") {
        None => Ok(CleanupMode::Anonymise),
        Some(v) => match v
            .read_lock::<rhai::ImmutableString>()
            .as_deref()
            .map(|s| s.as_str())
        {
            Some("anonymise") | Some("anonymize") => Ok(CleanupMode::Anonymise),
            Some("delete") => Ok(CleanupMode::Delete),
            _ => Err(format!(
                r#"`mode` is {}, not "anonymise" or "delete""#,
                show(&v)
            )),
        },
    }
}

fn take_days(map: &mut Map, key: &str, min: i64) -> Result<Option<u32>, Mismatch> {
    map.remove(key)
        .map(|v| days(&v, min).map_err(|e| format!("`{key}`: {e}")))
        .transpose()
}

fn no_leftovers(map: &Map, allowed: &str) -> Result<(), Mismatch> {
    match map.keys().next() {
        None => Ok(()),
        Some(key) => Err(format!("unknown key `{key}` (allowed: {allowed})")),
    }
}

pub fn no_response(value: &Dynamic) -> Result<NoResponsePlan, Mismatch> {
    let (action, mut map) = action_map(value)?;
    let plan = match action.as_str() {
        "manual" => {
            let assign = match map.remove("assign") {
                None => None,
                Some(v) if v.is_unit() => None,
                Some(v) => Some(
                    v.into_immutable_string()
                        .map_err(|t| format!("`assign` is a {t}, not text"))?
                        .to_string(),
                ),
            };
            no_leftovers(&map, "action, assign")?;
            NoResponsePlan::Manual {
                assign: assign.filter(|a| !a.is_empty()),
            }
        }
        "restart" => {
            let after_days = take_days(&mut map, "after_days", 1)?.unwrap_or(DEFAULT_RESTART_DAYS);
            no_leftovers(&map, "action, after_days")?;
            NoResponsePlan::Restart { after_days }
        }
        "cleanup" => {
            let mode = take_mode(&mut map)?;
            let grace_days = take_days(&mut map, "grace_days", 0)?;
            no_leftovers(&map, "action, mode, grace_days")?;
            NoResponsePlan::Cleanup { mode, grace_days }
        }
        other => {
            return Err(format!(
                r#"`action` is "{other}", not "manual", "restart" or "cleanup""#
            ));
        }
    };
    Ok(plan)
}

pub fn refusal(value: &Dynamic) -> Result<RefusalPlan, Mismatch> {
    let (action, mut map) = action_map(value)?;
    match action.as_str() {
        "block" => {
            no_leftovers(&map, "action")?;
            Ok(RefusalPlan::Block)
        }
        "cleanup" => {
            let mode = take_mode(&mut map)?;
            let grace_days = take_days(&mut map, "grace_days", 0)?;
            no_leftovers(&map, "action, mode, grace_days")?;
            Ok(RefusalPlan::Cleanup { mode, grace_days })
        }
        other => Err(format!(
            r#"`action` is "{other}", not "block" or "cleanup""#
        )),
    }
}

/// Reads the `basis` hook's answer: `"consent"` or
/// `#{ basis: KIND, reason: TEXT, review: PERIOD }`; all three keys needed.
pub fn basis(value: &Dynamic) -> Result<BasisChoice, Mismatch> {
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return match text.as_str() {
            "consent" => Ok(BasisChoice::Consent),
            _ => Err(format!("it returned {}", show(value))),
        };
    }
    let Some(map) = value.read_lock::<Map>() else {
        return Err(format!("it returned {}", show(value)));
    };
    let mut map = map.clone();
    let text = |map: &mut Map, key: &str| -> Result<String, Mismatch> {
        let v = map
            .remove(key)
            .ok_or_else(|| format!("the map has no `{key}`"))?;
        let s = v
            .into_immutable_string()
            .map_err(|t| format!("`{key}` is a {t}, not text"))?;
        if s.trim().is_empty() {
            return Err(format!("`{key}` is empty"));
        }
        Ok(s.trim().to_owned())
    };
    let kind = text(&mut map, "basis")?;
    if kind == "consent" {
        no_leftovers(&map, "basis")?;
        return Ok(BasisChoice::Consent);
    }
    let kind: BasisKind = match kind.parse() {
        Ok(BasisKind::Other) | Err(_) => {
            return Err(format!(
                r#"`basis` is "{kind}", not "consent", "contract", "legitimate-interest", "existing-customer" or "legal-obligation""#
            ));
        }
        Ok(kind) => kind,
    };
    let reason = text(&mut map, "reason")?;
    let review = map.remove("review").ok_or_else(|| {
        "the map has no `review` (every basis needs a review period, e.g. \"1 year\")".to_owned()
    })?;
    let review = period(&review, 1).map_err(|e| format!("`review`: {e}"))?;
    no_leftovers(&map, "basis, reason, review")?;
    Ok(BasisChoice::Other {
        kind,
        reason,
        review,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str) -> Dynamic {
        rhai::Engine::new()
            .eval::<Dynamic>(src)
            .expect("test script")
    }

    #[test]
    fn reminder_days_are_sorted_and_checked() {
        assert_eq!(reminder_days(&eval("[28, 7, 14, 7]")), Ok(vec![7, 14, 28]));
        assert!(reminder_days(&eval("[7, 0]")).is_err());
        assert!(reminder_days(&eval(r#"[7, "14"]"#)).is_err());
        assert!(reminder_days(&eval("7")).is_err());
    }

    #[test]
    fn channel_accepts_only_known_channels() {
        assert_eq!(
            channel(&eval(r#""phone-task""#)),
            Ok("phone-task".to_owned())
        );
        let err = channel(&eval(r#""fax""#)).unwrap_err();
        assert_eq!(err, r#"it returned "fax""#);
    }

    #[test]
    fn no_response_reads_maps_and_names() {
        assert_eq!(
            no_response(&eval(r#""manual""#)),
            Ok(NoResponsePlan::Manual { assign: None })
        );
        assert_eq!(
            no_response(&eval(r#"#{ action: "restart", after_days: 30 }"#)),
            Ok(NoResponsePlan::Restart { after_days: 30 })
        );
        assert_eq!(
            no_response(&eval(r#"#{ action: "cleanup", mode: "delete" }"#)),
            Ok(NoResponsePlan::Cleanup {
                mode: CleanupMode::Delete,
                grace_days: None
            })
        );
        let typo = no_response(&eval(r#"#{ action: "cleanup", grace_day: 3 }"#)).unwrap_err();
        assert!(typo.contains("unknown key `grace_day`"), "{typo}");
        assert!(no_response(&eval(r#"#{ action: "delete" }"#)).is_err());
    }

    #[test]
    fn refusal_reads_block_and_cleanup() {
        assert_eq!(refusal(&eval(r#""block""#)), Ok(RefusalPlan::Block));
        assert_eq!(
            refusal(&eval(r#"#{ action: "cleanup", grace_days: 14 }"#)),
            Ok(RefusalPlan::Cleanup {
                mode: CleanupMode::Anonymise,
                grace_days: Some(14)
            })
        );
        assert!(refusal(&eval(r#"#{ action: "cleanup", mode: "shred" }"#)).is_err());
    }

    #[test]
    fn basis_reads_consent_and_each_kind() {
        assert_eq!(basis(&eval(r#""consent""#)), Ok(BasisChoice::Consent));
        assert_eq!(
            basis(&eval(
                r#"#{ basis: "existing-customer", reason: "Bestandskunde", review: "1 year" }"#
            )),
            Ok(BasisChoice::Other {
                kind: BasisKind::ExistingCustomer,
                reason: "Bestandskunde".to_owned(),
                review: Period {
                    amount: 1,
                    unit: Unit::Years,
                    from_year_end: false
                },
            })
        );
        let missing = basis(&eval(r#"#{ basis: "contract", reason: "Vertrag" }"#)).unwrap_err();
        assert!(missing.contains("no `review`"), "{missing}");
        let empty = basis(&eval(r#"#{ basis: "contract", reason: " ", review: 30 }"#)).unwrap_err();
        assert!(empty.contains("`reason` is empty"), "{empty}");
        let kind = basis(&eval(r#"#{ basis: "other", reason: "x", review: 30 }"#)).unwrap_err();
        assert!(kind.contains(r#"`basis` is "other""#), "{kind}");
        let zero = basis(&eval(r#"#{ basis: "contract", reason: "x", review: 0 }"#)).unwrap_err();
        assert!(zero.contains("`review`"), "{zero}");
        let typo = basis(&eval(
            r#"#{ basis: "contract", reason: "x", review: 30, reviw: 1 }"#,
        ))
        .unwrap_err();
        assert!(typo.contains("unknown key `reviw`"), "{typo}");
        assert!(basis(&eval("()")).is_err());
        assert!(basis(&eval(r#""yes""#)).is_err());
    }

    #[test]
    fn values_read_like_policy_code() {
        assert_eq!(
            show(&eval(r#"#{ action: "manual", assign: "jk" }"#)),
            r#"#{ action: "manual", assign: "jk" }"#
        );
        assert_eq!(show(&eval("[7, 14]")), "[7, 14]");
        assert_eq!(show(&eval(r#""Grüße \"x\"""#)), r#""Grüße \"x\"""#);
        assert_eq!(show(&eval("()")), "nothing");
        assert_eq!(show(&eval("true")), "true");
    }

    #[test]
    fn days_are_bounded() {
        assert_eq!(whole_days(&eval("0"), 0), Ok(0));
        assert!(whole_days(&eval("0"), 1).is_err());
        assert!(whole_days(&eval("100000"), 0).is_err());
        assert!(whole_days(&eval("true"), 0).is_err());
    }
}
