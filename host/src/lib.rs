//! klar: the host. Its layers, from the faces down:
//!
//! - `cli` (the `klar` command) and `serve` (the HTTP API, the contacts'
//!   response page, the background tick and delivery loops) are the faces:
//!   they parse input and print or render output, nothing more.
//! - `app` holds the use cases every face calls (contacts coming in, events,
//!   answers by link, policy activation and tests, evidence, explain,
//!   simulate, import, the demo), each owning its transaction.
//! - `engine` steps cases: the tick, one event, the host's guardrails,
//!   applying outcomes, and tenant sessions on the plugin.
//! - `delivery` mails requests by SMTP and POSTs the outbox to webhooks.
//! - `store` is the only module that speaks SQL; `runtime` loads plugins
//!   with wasmtime and runs them in a sandbox.
//!
//! Beside them: `wire` holds the JSON shapes the faces show, converted from
//! store rows; `diagnostics` renders policy errors for people, `times`
//! formats times (RFC 3339 in JSON, local time for people), and `bench`
//! measures klar against baselines taken in the same run.

pub mod app;
pub mod bench;
pub mod cli;
pub mod delivery;
pub mod diagnostics;
pub mod engine;
pub mod excel;
pub mod merkle;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod times;
pub mod wire;

pub use klar_plugin as plugin;

/// The standard policy (`rules/default.rhai`), built in: a tenant without a
/// policy of its own runs it, and `klar bench` measures it.
pub const DEFAULT_POLICY: &str = include_str!("../../rules/default.rhai");

/// Lower-case hex of some bytes (hashes in file names, the audit chain, tombstones).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Percent-encodes text for a URL's path or query (everything but ASCII
/// letters, digits and `-_.~`), e.g. a contact id in a cockpit link.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SHA-256 of some bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}
