//! Campaign checks: "may I use?" for a whole mailing list at once
//! (`POST /v1/use`, `klar usable`). A campaign tool does not ask about one
//! contact at a time; it checks the list it is about to send to. Each id
//! gets its answer and a reason code, in the list's order. The check itself
//! is audited (`list-checked`) without any personal data: the purpose, the
//! counts per reason and the SHA-256 of the list, so that a company can later
//! prove that this very list was checked on that day.

pub mod list;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::actor::Actor;
use crate::plugin::{Band, State};
use crate::store::audit::{self, Entry};
use crate::store::cases::{self, ListUse};
use crate::store::tenants::{self, Enforcement};
use crate::store::{Store, StoreError};

/// At most this many ids in one check.
pub const MAX_IDS: usize = 100_000;

/// Why a contact may or may not be used for the purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Usable: the contact consented.
    Consent,
    /// Usable: another legal basis is recorded.
    OtherBasis,
    /// Usable: the purpose is non-restrictive and the contact has not said
    /// no (their case is not yet clarified).
    NotRefused,
    /// Not usable: not yet clarified (asked, waiting for a decision, paused).
    NotClarified,
    Refused,
    Withdrawn,
    /// Not usable: the contact objected (Art. 21 GDPR).
    Objected,
    /// Not usable: the contact's data is about to be erased or anonymised.
    CleanupPending,
    /// Not usable: the case ended for good.
    Purged,
    /// Not usable: the person was erased.
    Erased,
    /// Not usable: the contact has no case for this purpose.
    NoCase,
    /// Not usable: klar does not know the contact.
    UnknownContact,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Consent,
        Reason::OtherBasis,
        Reason::NotRefused,
        Reason::NotClarified,
        Reason::Refused,
        Reason::Withdrawn,
        Reason::Objected,
        Reason::CleanupPending,
        Reason::Purged,
        Reason::Erased,
        Reason::NoCase,
        Reason::UnknownContact,
    ];

    /// The code in JSON and CSV.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Consent => "consent",
            Reason::OtherBasis => "other-basis",
            Reason::NotRefused => "not-refused",
            Reason::NotClarified => "not-clarified",
            Reason::Refused => "refused",
            Reason::Withdrawn => "withdrawn",
            Reason::Objected => "objected",
            Reason::CleanupPending => "cleanup-pending",
            Reason::Purged => "purged",
            Reason::Erased => "erased",
            Reason::NoCase => "no-case",
            Reason::UnknownContact => "unknown-contact",
        }
    }

    /// How a German list says it.
    pub fn german(self) -> &'static str {
        match self {
            Reason::Consent => "Einwilligung",
            Reason::OtherBasis => "andere Rechtsgrundlage",
            Reason::NotRefused => "kein Widerspruch (nicht einschränkender Zweck)",
            Reason::NotClarified => "noch nicht geklärt",
            Reason::Refused => "abgelehnt",
            Reason::Withdrawn => "widerrufen",
            Reason::Objected => "widersprochen",
            Reason::CleanupPending => "Löschung läuft",
            Reason::Purged => "gelöscht",
            Reason::Erased => "Person gelöscht",
            Reason::NoCase => "kein Vorgang für diesen Zweck",
            Reason::UnknownContact => "unbekannter Kontakt",
        }
    }

    pub fn may_use(self) -> bool {
        matches!(
            self,
            Reason::Consent | Reason::OtherBasis | Reason::NotRefused
        )
    }

    /// The reason for a contact as the store found it, under the purpose's
    /// enforcement. The erasure comes first: an erased person is used for
    /// nothing, whatever a case says.
    fn of(found: Option<&ListUse>, enforcement: Enforcement) -> Reason {
        let Some(found) = found else {
            return Reason::UnknownContact;
        };
        if found.erased {
            return Reason::Erased;
        }
        let Some((state, band)) = &found.case else {
            return Reason::NoCase;
        };
        if band == Band::Usable.as_str() {
            return if state == State::OtherBasis.as_str() {
                Reason::OtherBasis
            } else {
                Reason::Consent
            };
        }
        if enforcement.allows(band) {
            return Reason::NotRefused;
        }
        match state.as_str() {
            s if s == State::Refused.as_str() => Reason::Refused,
            s if s == State::Withdrawn.as_str() => Reason::Withdrawn,
            s if s == State::Objected.as_str() => Reason::Objected,
            s if s == State::CleanupPending.as_str() => Reason::CleanupPending,
            s if s == State::Purged.as_str() => Reason::Purged,
            _ => Reason::NotClarified,
        }
    }
}

/// One id's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub contact: String,
    pub may_use: bool,
    pub reason: Reason,
}

/// A checked list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub purpose: String,
    /// In the list's order, one per id given (an id given twice is answered
    /// twice).
    pub verdicts: Vec<Verdict>,
    /// The SHA-256 of the list: each id followed by a line feed.
    pub list_sha256: String,
    /// The `list-checked` audit row.
    pub audit_seq: i64,
}

impl Checked {
    pub fn usable(&self) -> usize {
        self.verdicts.iter().filter(|v| v.may_use).count()
    }

    /// How many ids each reason applies to (reasons that apply to none are
    /// left out).
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for v in &self.verdicts {
            *counts.entry(v.reason.code()).or_insert(0) += 1;
        }
        counts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the list is empty: give at least one contact id")]
    Empty,
    #[error("the list has {0} ids; check at most {MAX_IDS} at once")]
    TooMany(usize),
    #[error("id number {position} is longer than {max} characters")]
    TooLong { position: usize, max: usize },
    #[error("tenant {tenant} has no purpose {purpose}; it has: {}", known.join(", "))]
    UnknownPurpose {
        tenant: String,
        purpose: String,
        known: Vec<String>,
    },
    #[error("there is no tenant {0}")]
    UnknownTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::Error> for CheckError {
    fn from(err: crate::store::Error) -> CheckError {
        CheckError::Store(err.into())
    }
}

/// The SHA-256 of a list as `klar usable` and `POST /v1/use` state it: of
/// each id followed by a line feed, so that `printf '%s\n' ID… | sha256sum`
/// gives the same.
pub fn list_sha256(ids: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    crate::hex(&hash.finalize())
}

/// Checks `ids` for `purpose` and audits the check.
pub fn check(
    store: &mut Store,
    tenant: &str,
    purpose: &str,
    ids: &[String],
    actor: &Actor,
    now: i64,
) -> Result<Checked, CheckError> {
    if ids.is_empty() {
        return Err(CheckError::Empty);
    }
    if ids.len() > MAX_IDS {
        return Err(CheckError::TooMany(ids.len()));
    }
    let max = crate::app::contacts::limits::ID;
    if let Some(position) = ids.iter().position(|id| id.chars().count() > max) {
        return Err(CheckError::TooLong {
            position: position + 1,
            max,
        });
    }
    tenants::require(store.connection(), tenant)
        .map_err(|_| CheckError::UnknownTenant(tenant.to_owned()))?;
    // One read of the tenant's purposes: whether this one exists, and how
    // strict it is.
    let enforcements = tenants::enforcements(store.connection(), tenant)?;
    let Some(&enforcement) = enforcements.get(purpose) else {
        let mut known: Vec<String> = enforcements.into_keys().collect();
        known.sort();
        return Err(CheckError::UnknownPurpose {
            tenant: tenant.to_owned(),
            purpose: purpose.to_owned(),
            known,
        });
    };
    let found = cases::usage_of_list(store.connection(), tenant, purpose, ids)?;
    let verdicts: Vec<Verdict> = ids
        .iter()
        .zip(&found)
        .map(|(id, found)| {
            let reason = Reason::of(found.as_ref(), enforcement);
            Verdict {
                contact: id.clone(),
                may_use: reason.may_use(),
                reason,
            }
        })
        .collect();
    let mut checked = Checked {
        purpose: purpose.to_owned(),
        verdicts,
        list_sha256: list_sha256(ids),
        audit_seq: 0,
    };
    // No id in the audit log: the list's hash, the counts and who checked.
    let detail = json!({
        "ids": ids.len(),
        "usable": checked.usable(),
        "reasons": checked.counts(),
        "list_sha256": checked.list_sha256,
        "actor": actor.json(),
    });
    checked.audit_seq = store.write(|tx| {
        audit::append(
            tx,
            tenant,
            Entry::purpose(now, purpose, "list-checked", &detail),
        )
        .map(|row| row.seq)
    })?;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_hash_is_what_sha256sum_gives_for_one_id_a_line() {
        // printf 'C1\nC2\n' | sha256sum
        assert_eq!(
            list_sha256(&["C1".to_owned(), "C2".to_owned()]),
            crate::sha256_hex(b"C1\nC2\n")
        );
    }

    #[test]
    fn the_erasure_comes_before_any_case() {
        let usable = ListUse {
            erased: true,
            case: Some(("consented".to_owned(), "usable".to_owned())),
        };
        assert_eq!(
            Reason::of(Some(&usable), Enforcement::Restrictive),
            Reason::Erased
        );
        let fine = ListUse {
            erased: false,
            ..usable
        };
        assert_eq!(
            Reason::of(Some(&fine), Enforcement::Restrictive),
            Reason::Consent
        );
        assert_eq!(
            Reason::of(None, Enforcement::Restrictive),
            Reason::UnknownContact
        );
        let none = ListUse {
            erased: false,
            case: None,
        };
        assert_eq!(
            Reason::of(Some(&none), Enforcement::Restrictive),
            Reason::NoCase
        );
        for (state, band, reason) in [
            ("other-basis", "usable", Reason::OtherBasis),
            ("requested", "to-clarify", Reason::NotClarified),
            ("refused", "removed", Reason::Refused),
            ("withdrawn", "removed", Reason::Withdrawn),
            ("cleanup-pending", "removed", Reason::CleanupPending),
            ("purged", "removed", Reason::Purged),
        ] {
            let found = ListUse {
                erased: false,
                case: Some((state.to_owned(), band.to_owned())),
            };
            assert_eq!(
                Reason::of(Some(&found), Enforcement::Restrictive),
                reason,
                "{state}"
            );
            // A non-restrictive purpose uses what is not yet clarified,
            // and nothing a contact said no to.
            let lenient = Reason::of(Some(&found), Enforcement::NonRestrictive);
            if band == "to-clarify" {
                assert_eq!(lenient, Reason::NotRefused);
            } else {
                assert_eq!(lenient, reason, "{state}");
            }
        }
    }
}
