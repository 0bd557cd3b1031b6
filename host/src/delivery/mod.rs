//! Delivery of the outbox: mails klar sends itself by SMTP (`mail`) and
//! signed webhook POSTs to the CRM (`webhook`), both retried with backoff
//! and parked after repeated failures; `target` keeps webhooks off private
//! addresses.

pub mod mail;
pub mod target;
pub mod webhook;

use serde_json::Value;

use crate::store::outbox::Item;

/// `payload.response_url`: the link the contact clicks, on the response page
/// under `public_url`, for a request that carries a token; ready for the
/// sender's mail. The store keeps only the token; the page's address is the
/// server's knowledge.
pub fn add_response_url(item: &mut Item, public_url: &str) {
    let url = item
        .payload
        .get("token")
        .and_then(Value::as_str)
        .map(|t| format!("{public_url}/r/{t}"));
    if let (Some(url), Some(object)) = (url, item.payload.as_object_mut()) {
        object.insert("response_url".to_owned(), Value::String(url));
    }
}
