//! The standard klar consent process.
//!
//! A pure function of (policy, case, contact, event, clock) → (new case, actions,
//! trace), driven by a rhai policy script. Natively this is a plain library, used
//! by the host's native benchmark baseline and by the unit tests; built for
//! `wasm32-wasip2` it is the component the host loads, through the thin glue in
//! `component.rs`.

pub mod calendar;
pub mod hooks;
pub mod model;
pub mod plain;
pub mod policy;
pub mod process;
pub mod script;

#[cfg(target_arch = "wasm32")]
mod component;

pub use model::*;
pub use policy::Policy;
pub use process::{step, step_shared};

/// The name the plugin reports through `describe`.
pub const PLUGIN_NAME: &str = "klar-standard";

/// Who this plugin is and which hooks it calls.
pub fn describe() -> PluginInfo {
    PluginInfo {
        name: PLUGIN_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        hooks: hooks::Hook::ALL
            .iter()
            .map(|h| h.name().to_owned())
            .collect(),
    }
}

/// Steps many cases under one policy; results come back in input order.
pub fn step_batch(
    policy: &Policy,
    inputs: &[(Case, Contact, Event)],
    clock: &Clock,
) -> Vec<Result<Outcome, StepError>> {
    inputs
        .iter()
        .map(|(case, contact, event)| step(policy, case, contact, event, clock))
        .collect()
}
