//! The rhai engine that runs policies: its limits, and the `Contact` and `Case`
//! types that hooks see.
//!
//! Every limit is set here explicitly, because rhai's defaults differ between debug
//! and release builds and some are unlimited. A policy that hits one stops with an
//! error that names its line and column; it never hangs the host.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rhai::{Dynamic, Engine, Map, OptimizationLevel};

use crate::model::{Case, Contact, Timestamp};

/// The limits every policy runs under. One hook call may take at most
/// `MAX_OPERATIONS` rhai operations; the default policy needs under 100.
pub mod limits {
    pub const MAX_OPERATIONS: u64 = 50_000;
    pub const MAX_CALL_LEVELS: usize = 32;
    pub const MAX_EXPR_DEPTH: usize = 64;
    pub const MAX_FN_EXPR_DEPTH: usize = 32;
    pub const MAX_STRING_SIZE: usize = 4_096;
    pub const MAX_ARRAY_SIZE: usize = 1_000;
    pub const MAX_MAP_SIZE: usize = 1_000;
    pub const MAX_VARIABLES: usize = 256;
    pub const MAX_FUNCTIONS: usize = 256;
}

/// Builds the engine for one policy. `log` receives the script's `print` and
/// `debug` output (the component forwards it to the host's log).
pub fn engine(log: fn(bool, &str)) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits::MAX_OPERATIONS)
        .set_max_call_levels(limits::MAX_CALL_LEVELS)
        .set_max_expr_depths(limits::MAX_EXPR_DEPTH, limits::MAX_FN_EXPR_DEPTH)
        .set_max_string_size(limits::MAX_STRING_SIZE)
        .set_max_array_size(limits::MAX_ARRAY_SIZE)
        .set_max_map_size(limits::MAX_MAP_SIZE)
        .set_max_variables(limits::MAX_VARIABLES)
        .set_max_functions(limits::MAX_FUNCTIONS)
        // Typos in variable names and contact fields are errors, not silent `()`.
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_optimization_level(OptimizationLevel::Full);
    // `case` is reserved in rhai for a future `switch` syntax, but it is the
    // natural name for a hook's parameter (`fn on_refusal(contact, case)`).
    #[allow(deprecated)] // "volatile", not deprecated: pinned by the unit tests.
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(word) if word.as_str() == "case" => rhai::Token::Identifier(word),
        other => other,
    });
    engine.on_print(move |text| log(false, text));
    engine.on_debug(move |text, _, pos| {
        let where_ = match (pos.line(), pos.position()) {
            (Some(l), Some(c)) => format!("{l}:{c}: "),
            _ => String::new(),
        };
        log(true, &format!("{where_}{text}"))
    });
    register_contact(&mut engine);
    register_case(&mut engine);
    engine
}

fn time_text(t: Option<Timestamp>) -> Dynamic {
    match t {
        Some(t) => Dynamic::from(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => Dynamic::UNIT,
    }
}

fn text_or_unit(s: &Option<String>) -> Dynamic {
    match s {
        Some(s) => Dynamic::from(s.clone()),
        None => Dynamic::UNIT,
    }
}

/// The fields a policy can read on a contact, as registered below; error
/// messages suggest from this list (a unit test keeps the two in step).
pub const CONTACT_FIELDS: [&str; 10] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "owner",
    "source",
    "language",
    "created_at",
    "attributes",
];

/// The fields a policy can read on a case, as registered below.
pub const CASE_FIELDS: [&str; 9] = [
    "purpose",
    "state",
    "attempt",
    "reminders_sent",
    "legal_hold",
    "requested_at",
    "consented_at",
    "last_used_at",
    "assigned_to",
];

/// The contact as a policy sees it: read-only fields, shared rather than copied
/// for each hook call.
#[derive(Clone)]
pub struct ContactView(pub Rc<Contact>);

thread_local! {
    /// The contact fields read while [`recording_reads`] runs, with the
    /// values the policy saw; `None` the rest of the time.
    static READS: RefCell<Option<BTreeMap<String, String>>> = const { RefCell::new(None) };
}

/// Notes that the policy read `field` (only while reads are recorded).
fn seen(field: impl FnOnce() -> String, value: impl FnOnce() -> String) {
    READS.with(|reads| {
        if let Some(reads) = reads.borrow_mut().as_mut() {
            reads.entry(field()).or_insert_with(value);
        }
    });
}

/// Runs `f` and returns what it returned with the contact fields the policy
/// read meanwhile (`attributes.customer` → `yes`): the data a legal basis
/// relied on, recorded without the policy having to name it.
pub fn recording_reads<T>(f: impl FnOnce() -> T) -> (T, BTreeMap<String, String>) {
    READS.with(|reads| *reads.borrow_mut() = Some(BTreeMap::new()));
    let out = f();
    let reads = READS
        .with(|reads| reads.borrow_mut().take())
        .unwrap_or_default();
    (out, reads)
}

fn optional_text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn register_contact(engine: &mut Engine) {
    engine
        .register_type_with_name::<ContactView>("Contact")
        .register_get("id", |c: &mut ContactView| {
            seen(|| "id".to_owned(), || c.0.id.clone());
            c.0.id.clone()
        })
        .register_get("first_name", |c: &mut ContactView| {
            seen(|| "first_name".to_owned(), || c.0.first_name.clone());
            c.0.first_name.clone()
        })
        .register_get("last_name", |c: &mut ContactView| {
            seen(|| "last_name".to_owned(), || c.0.last_name.clone());
            c.0.last_name.clone()
        })
        .register_get("email", |c: &mut ContactView| {
            seen(|| "email".to_owned(), || optional_text(&c.0.email));
            text_or_unit(&c.0.email)
        })
        .register_get("phone", |c: &mut ContactView| {
            seen(|| "phone".to_owned(), || optional_text(&c.0.phone));
            text_or_unit(&c.0.phone)
        })
        .register_get("owner", |c: &mut ContactView| {
            seen(|| "owner".to_owned(), || c.0.owner.clone());
            c.0.owner.clone()
        })
        .register_get("source", |c: &mut ContactView| {
            seen(|| "source".to_owned(), || c.0.source.clone());
            c.0.source.clone()
        })
        .register_get("language", |c: &mut ContactView| {
            seen(|| "language".to_owned(), || c.0.language.clone());
            c.0.language.clone()
        })
        .register_get("created_at", |c: &mut ContactView| {
            let at = time_text(Some(c.0.created_at));
            seen(|| "created_at".to_owned(), || at.to_string());
            at
        })
        .register_get("attributes", |c: &mut ContactView| {
            for (k, v) in &c.0.attributes {
                seen(|| format!("attributes.{k}"), || v.clone());
            }
            c.0.attributes
                .iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                .collect::<Map>()
        })
        // `contact.attr("fair")` is the attribute's text, or "" if it is missing,
        // so policies need no existence checks.
        .register_fn("attr", |c: &mut ContactView, name: &str| {
            let value = c.0.attributes.get(name).cloned().unwrap_or_default();
            seen(|| format!("attributes.{name}"), || value.clone());
            value
        })
        .register_fn("to_string", |c: &mut ContactView| {
            format!("contact {}", c.0.id)
        })
        .register_fn("to_debug", |c: &mut ContactView| {
            format!("contact {}", c.0.id)
        });
}

/// The case as a policy sees it: a read-only copy taken before the step.
#[derive(Clone)]
pub struct CaseView(pub Rc<Case>);

fn register_case(engine: &mut Engine) {
    engine
        .register_type_with_name::<CaseView>("Case")
        .register_get("purpose", |c: &mut CaseView| c.0.purpose.clone())
        .register_get("state", |c: &mut CaseView| c.0.state.as_str().to_owned())
        .register_get("attempt", |c: &mut CaseView| i64::from(c.0.attempt))
        .register_get("reminders_sent", |c: &mut CaseView| {
            i64::from(c.0.reminders_sent())
        })
        .register_get("legal_hold", |c: &mut CaseView| c.0.legal_hold)
        .register_get("requested_at", |c: &mut CaseView| {
            time_text(c.0.requested_at)
        })
        .register_get("consented_at", |c: &mut CaseView| {
            time_text(c.0.consented_at)
        })
        .register_get("last_used_at", |c: &mut CaseView| {
            time_text(c.0.last_used_at)
        })
        .register_get("assigned_to", |c: &mut CaseView| {
            text_or_unit(&c.0.assigned_to)
        })
        .register_fn("to_string", |c: &mut CaseView| {
            format!("case {} ({})", c.0.purpose, c.0.state)
        })
        .register_fn("to_debug", |c: &mut CaseView| {
            format!("case {} ({})", c.0.purpose, c.0.state)
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(expr: &str) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        let engine = engine(|_, _| {});
        let mut scope = rhai::Scope::new();
        let contact = Contact {
            id: "C1".to_owned(),
            first_name: String::new(),
            last_name: String::new(),
            email: None,
            phone: None,
            owner: String::new(),
            source: String::new(),
            language: "de".to_owned(),
            created_at: chrono::DateTime::default(),
            attributes: Default::default(),
        };
        scope.push("contact", ContactView(Rc::new(contact)));
        scope.push("case", CaseView(Rc::new(Case::new("contact-data"))));
        engine.eval_with_scope::<Dynamic>(&mut scope, expr)
    }

    /// The lists that error messages suggest from are exactly the getters.
    #[test]
    fn the_field_lists_match_the_registered_getters() {
        for field in CONTACT_FIELDS {
            assert!(read(&format!("contact.{field}")).is_ok(), "contact.{field}");
        }
        for field in CASE_FIELDS {
            assert!(read(&format!("case.{field}")).is_ok(), "case.{field}");
        }
        assert!(read("contact.nonsense").is_err());
        assert!(read("case.nonsense").is_err());
    }
}
