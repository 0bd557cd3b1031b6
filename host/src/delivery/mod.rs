//! Delivery of the outbox: mails klar sends itself by SMTP (`mail`) and
//! signed webhook POSTs to the CRM (`webhook`), both retried with backoff
//! and parked after repeated failures; `target` keeps webhooks off private
//! addresses.

pub(crate) mod confirmation;
pub mod mail;
pub mod target;
pub mod webhook;

use serde_json::Value;

use crate::store::outbox::Item;

/// `payload.response_url`: the link the contact clicks, on the response page
/// under `public_url`, for a request that carries a token; and
/// `payload.personal_url`, the contact's personal link (where they change
/// their answers later), for an action that carries one. Ready for the
/// sender's mail. The store keeps only the tokens; the pages' address is the
/// server's knowledge.
pub fn add_response_url(item: &mut Item, public_url: &str) {
    for (token, url, path) in [
        ("token", "response_url", "r"),
        // A message's link is the contact's personal link too.
        ("token", "personal_url", "p"),
        ("personal_token", "personal_url", "p"),
    ] {
        let link = item
            .payload
            .get(token)
            .and_then(Value::as_str)
            .map(|t| format!("{public_url}/{path}/{t}"));
        if let (Some(link), Some(object)) = (link, item.payload.as_object_mut()) {
            object.insert(url.to_owned(), Value::String(link));
        }
    }
}
