//! The WebAssembly component glue: exports `klar:consent/process` by converting
//! between the WIT types and the plugin's own model, and nothing else.

use std::rc::Rc;

use crate::model as m;

wit_bindgen::generate!({ world: "plugin", path: "../wit" });

// Talc instead of the standard library's dlmalloc (measured in `klar bench`;
// see the plugin's Cargo.toml). A plugin instance is single-threaded.
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use exports::klar::consent::process::{self as wit_process, Guest, GuestPolicy};
use klar::consent::log::{Level, log};
use klar::consent::types as w;

struct Component;

impl Guest for Component {
    type Policy = PolicyResource;

    fn describe() -> w::PluginInfo {
        let info = crate::describe();
        w::PluginInfo {
            name: info.name,
            version: info.version,
            hooks: info.hooks,
        }
    }
}

export!(Component);

/// A compiled policy living inside the component for as long as the host keeps
/// its handle: the rhai engine and AST are built once, not per step.
struct PolicyResource {
    policy: crate::Policy,
}

fn log_sink(debug: bool, text: &str) {
    log(if debug { Level::Debug } else { Level::Info }, text);
}

impl GuestPolicy for PolicyResource {
    fn compile(name: String, source: String) -> Result<wit_process::Policy, Vec<w::Diagnostic>> {
        match crate::Policy::compile_with_log(&source, log_sink) {
            Ok(policy) => {
                log(Level::Debug, &format!("compiled policy {name}"));
                Ok(wit_process::Policy::new(PolicyResource { policy }))
            }
            Err(diagnostics) => Err(diagnostics
                .into_iter()
                .map(wire::diagnostic_to_wire)
                .collect()),
        }
    }

    fn warnings(&self) -> Vec<w::Diagnostic> {
        self.policy
            .warnings()
            .iter()
            .cloned()
            .map(wire::diagnostic_to_wire)
            .collect()
    }

    fn step(
        &self,
        case: w::Case,
        contact: w::Contact,
        event: w::Event,
        clock: w::Clock,
    ) -> Result<w::Outcome, w::StepError> {
        let clock = wire::clock_from_wire(clock).map_err(w::StepError::Rejected)?;
        step_one(&self.policy, case, contact, event, &clock)
    }

    fn step_batch(
        &self,
        inputs: Vec<w::StepInput>,
        clock: w::Clock,
    ) -> Vec<Result<w::Outcome, w::StepError>> {
        match wire::clock_from_wire(clock) {
            Ok(clock) => inputs
                .into_iter()
                .map(|i| step_one(&self.policy, i.case, i.contact, i.event, &clock))
                .collect(),
            Err(reason) => inputs
                .iter()
                .map(|_| Err(w::StepError::Rejected(reason.clone())))
                .collect(),
        }
    }

    fn defined_hooks(&self) -> Vec<String> {
        self.policy
            .defined_hooks()
            .into_iter()
            .map(|h| h.name().to_owned())
            .collect()
    }

    fn probe(&self, inputs: Vec<w::ProbeInput>) -> Vec<w::ProbeProblem> {
        let mut out = Vec::new();
        for (index, input) in inputs.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            // An input that does not convert (a time out of range) is a
            // problem of that contact, not of the whole batch.
            let converted = wire::contact_from_wire(input.contact).and_then(|contact| {
                let cases = input
                    .cases
                    .into_iter()
                    .map(wire::case_from_wire)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((contact, cases))
            });
            match converted {
                Ok((contact, cases)) => out.extend(
                    self.policy
                        .probe(&Rc::new(contact), &cases)
                        .into_iter()
                        .map(|p| wire::probe_problem_to_wire(m::ProbeProblem { index, ..p })),
                ),
                Err(reason) => out.push(w::ProbeProblem {
                    index,
                    hook: String::new(),
                    purpose: None,
                    diagnostic: w::Diagnostic {
                        severity: w::Severity::Error,
                        line: 0,
                        column: 0,
                        message: reason,
                    },
                }),
            }
        }
        out
    }
}

fn step_one(
    policy: &crate::Policy,
    case: w::Case,
    contact: w::Contact,
    event: w::Event,
    clock: &m::Clock,
) -> Result<w::Outcome, w::StepError> {
    let case = wire::case_from_wire(case).map_err(w::StepError::Rejected)?;
    let contact = wire::contact_from_wire(contact).map_err(w::StepError::Rejected)?;
    let event = wire::event_from_wire(event);
    crate::step_shared(policy, &case, &Rc::new(contact), &event, clock)
        .map(wire::outcome_to_wire)
        .map_err(wire::step_error_to_wire)
}

#[allow(dead_code)] // The host's direction of each conversion.
mod wire {
    use super::{m, w};
    include!("wire.rs");
}
