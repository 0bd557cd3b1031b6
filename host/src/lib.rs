//! klar: the host runtime and the command-line faces.
//!
//! `runtime` loads consent-process plugins with wasmtime and runs them in a
//! sandbox; `store` keeps everything in one SQLite file; `diagnostics` renders
//! policy errors for people; `bench` measures the plugin against its native
//! build; `cli` is the `klar` command.

pub mod app;
pub mod bench;
pub mod cli;
pub mod delivery;
pub mod diagnostics;
pub mod engine;
pub mod runtime;
pub mod serve;
pub mod store;
pub mod times;

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

/// The SHA-256 of some bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}
