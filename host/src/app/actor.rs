//! Who reported an event, as the audit log and the evidence name them. A
//! person signed in to the cockpit is named by their account, which they
//! cannot pick; the CLI's `--by` and the API's `by` are what an administrator
//! or a CRM wrote, and the audit row says which face it came through.

use serde_json::{Value, json};

/// The face an event came through, and who was behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An administrator at a terminal (`klar decide --by …`).
    Cli,
    /// A CRM with an API key.
    Api,
    /// A person signed in to the cockpit.
    Account { id: String, name: String },
}

impl Actor {
    /// The `actor` of an audit row.
    pub fn json(&self) -> Value {
        match self {
            Actor::Cli => json!({ "via": "cli" }),
            Actor::Api => json!({ "via": "api" }),
            Actor::Account { id, name } => {
                json!({ "via": "cockpit", "account": id, "name": name })
            }
        }
    }

    /// How people read it: "Jana Kühn (jk, Cockpit)", "CLI", "API".
    pub fn describe(actor: &Value) -> Option<String> {
        match actor.get("via").and_then(Value::as_str)? {
            "cockpit" => Some(format!(
                "{} ({}, cockpit)",
                actor.get("name").and_then(Value::as_str).unwrap_or("?"),
                actor.get("account").and_then(Value::as_str).unwrap_or("?"),
            )),
            "cli" => Some("the CLI".to_owned()),
            "api" => Some("the API".to_owned()),
            "personal-link" => Some("the contact's personal link".to_owned()),
            other => Some(other.to_owned()),
        }
    }
}
