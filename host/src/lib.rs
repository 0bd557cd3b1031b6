//! klar: the host runtime and the command-line faces.
//!
//! `runtime` loads consent-process plugins with wasmtime and runs them in a
//! sandbox; `store` keeps everything in one SQLite file; `diagnostics` renders
//! policy errors for people; `bench` measures the plugin against its native
//! build; `cli` is the `klar` command.

pub mod bench;
pub mod cli;
pub mod diagnostics;
pub mod import;
pub mod runtime;
pub mod scheduler;
pub mod store;

pub use klar_plugin as plugin;
