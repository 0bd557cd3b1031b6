//! A session: one compiled policy inside one long-lived plugin store.
//!
//! Instantiating the plugin and compiling a policy costs about a millisecond, so
//! a session keeps its store across steps. If a call traps (deadline, memory cap,
//! a crash in the plugin), wasmtime refuses the instance from then on: the
//! session drops the store, reports the trap for that step, and builds a fresh
//! store on the next call.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::types::{ProbeInput, StepInput};
use super::bindings::{Plugin, PluginState};
use super::{LoadedPlugin, convert};
use crate::plugin::{Case, Clock, Contact, Diagnostic, Event, Outcome, ProbeProblem, StepError};

/// Why a step gave no outcome.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepFailure {
    /// The plugin answered with an error: a policy failure or a rejected input.
    #[error(transparent)]
    Step(StepError),
    /// The plugin trapped; the case needs a person's attention.
    #[error("the plugin failed: {0}")]
    Trap(String),
}

/// Why a policy could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The policy has errors (warnings are included, for showing together).
    #[error("the policy has errors")]
    Policy(Vec<Diagnostic>),
    /// The plugin trapped or could not start.
    #[error("the plugin failed while compiling the policy: {0}")]
    Trap(String),
}

struct Live {
    store: Store<PluginState>,
    bindings: Plugin,
    policy: ResourceAny,
}

pub struct Session {
    plugin: Arc<LoadedPlugin>,
    name: String,
    source: String,
    live: Option<Live>,
    warnings: Vec<Diagnostic>,
    rebuilds: u64,
}

fn trap_text(err: &wasmtime::Error) -> String {
    format!("{err:#}")
}

fn trap(err: wasmtime::Error) -> OpenError {
    OpenError::Trap(trap_text(&err))
}

impl Session {
    pub(super) fn open(
        plugin: Arc<LoadedPlugin>,
        name: &str,
        source: &str,
    ) -> Result<Session, OpenError> {
        let mut session = Session {
            plugin,
            name: name.to_owned(),
            source: source.to_owned(),
            live: None,
            warnings: Vec::new(),
            rebuilds: 0,
        };
        let mut live = session.start()?;
        session.plugin.set_deadline(&mut live.store, 0);
        let warnings = live
            .bindings
            .klar_consent_process()
            .policy()
            .call_warnings(&mut live.store, live.policy)
            .map_err(trap)?;
        session.warnings = warnings
            .into_iter()
            .map(convert::diagnostic_from_wire)
            .collect();
        session.live = Some(live);
        Ok(session)
    }

    /// Warnings found when the policy was compiled.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// How many times a poisoned store was replaced.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// A fresh store with the policy compiled in it.
    fn start(&self) -> Result<Live, OpenError> {
        let mut store = self.plugin.new_store();
        self.plugin.set_deadline(&mut store, 0);
        let bindings = self.plugin.pre.instantiate(&mut store).map_err(trap)?;
        let compiled = bindings
            .klar_consent_process()
            .policy()
            .call_compile(&mut store, &self.name, &self.source)
            .map_err(trap)?;
        match compiled {
            Ok(policy) => Ok(Live {
                store,
                bindings,
                policy,
            }),
            Err(diagnostics) => Err(OpenError::Policy(
                diagnostics
                    .into_iter()
                    .map(convert::diagnostic_from_wire)
                    .collect(),
            )),
        }
    }

    fn live(&mut self) -> Result<&mut Live, StepFailure> {
        if self.live.is_none() {
            let live = self.start().map_err(|e| {
                StepFailure::Trap(format!("failed to rebuild the plugin's store: {e}"))
            })?;
            self.rebuilds += 1;
            tracing::info!(policy = %self.name, "rebuilt the plugin's store after a trap");
            self.live = Some(live);
        }
        self.live
            .as_mut()
            .ok_or_else(|| StepFailure::Trap("the plugin's store is missing".to_owned()))
    }

    /// Advances one case by one event.
    pub fn step(
        &mut self,
        case: &Case,
        contact: &Contact,
        event: &Event,
        clock: &Clock,
    ) -> Result<Outcome, StepFailure> {
        let case = convert::case_to_wire(case.clone());
        let contact = convert::contact_to_wire(contact.clone());
        let event = convert::event_to_wire(event.clone());
        let clock = convert::clock_to_wire(clock);
        let plugin = Arc::clone(&self.plugin);
        let live = self.live()?;
        plugin.set_deadline(&mut live.store, 1);
        let result = live.bindings.klar_consent_process().policy().call_step(
            &mut live.store,
            live.policy,
            &case,
            &contact,
            &event,
            &clock,
        );
        match result {
            Ok(Ok(outcome)) => convert::outcome_from_wire(outcome).map_err(StepFailure::Trap),
            Ok(Err(err)) => Err(StepFailure::Step(convert::step_error_from_wire(err))),
            Err(err) => {
                self.live = None;
                Err(StepFailure::Trap(trap_text(&err)))
            }
        }
    }

    /// Advances many cases in one call into the plugin. If the call traps, the
    /// cases are stepped one by one on fresh stores, so that only the cases that
    /// trap on their own are reported as failed.
    pub fn step_batch(
        &mut self,
        inputs: &[(Case, Contact, Event)],
        clock: &Clock,
    ) -> Vec<Result<Outcome, StepFailure>> {
        let batch: Vec<_> = inputs
            .iter()
            .map(|(case, contact, event)| StepInput {
                case: convert::case_to_wire(case.clone()),
                contact: convert::contact_to_wire(contact.clone()),
                event: convert::event_to_wire(event.clone()),
            })
            .collect();
        let wclock = convert::clock_to_wire(clock);
        let plugin = Arc::clone(&self.plugin);
        let live = match self.live() {
            Ok(live) => live,
            Err(err) => return inputs.iter().map(|_| Err(err.clone())).collect(),
        };
        plugin.set_deadline(&mut live.store, inputs.len());
        let result = live
            .bindings
            .klar_consent_process()
            .policy()
            .call_step_batch(&mut live.store, live.policy, &batch, &wclock);
        match result {
            Ok(results) => results
                .into_iter()
                .map(|r| match r {
                    Ok(outcome) => convert::outcome_from_wire(outcome).map_err(StepFailure::Trap),
                    Err(err) => Err(StepFailure::Step(convert::step_error_from_wire(err))),
                })
                .collect(),
            Err(err) => {
                self.live = None;
                tracing::warn!(
                    cases = inputs.len(),
                    "a batch trapped ({}); stepping its cases one by one",
                    trap_text(&err)
                );
                inputs
                    .iter()
                    .map(|(case, contact, event)| self.step(case, contact, event, clock))
                    .collect()
            }
        }
    }

    /// The hooks the policy defines, as the plugin reports them.
    pub fn defined_hooks(&mut self) -> Result<Vec<String>, StepFailure> {
        let plugin = Arc::clone(&self.plugin);
        let live = self.live()?;
        plugin.set_deadline(&mut live.store, 0);
        let result = live
            .bindings
            .klar_consent_process()
            .policy()
            .call_defined_hooks(&mut live.store, live.policy);
        result.map_err(|err| {
            self.live = None;
            StepFailure::Trap(trap_text(&err))
        })
    }

    /// Runs every hook of the policy for each contact with its cases, in one
    /// call into the plugin; see `probe` in `wit/consent.wit`. Each problem
    /// names its contact by its place in `inputs`. A trap fails the whole
    /// call (the caller can narrow it down); the store is rebuilt on the next
    /// call. `weight` is how many hook calls the batch makes, roughly: the
    /// deadline grows with it as it does with the cases of a step batch.
    pub fn probe(
        &mut self,
        inputs: &[(Contact, Vec<Case>)],
        weight: usize,
    ) -> Result<Vec<ProbeProblem>, StepFailure> {
        let batch: Vec<ProbeInput> = inputs
            .iter()
            .map(|(contact, cases)| ProbeInput {
                contact: convert::contact_to_wire(contact.clone()),
                cases: cases.iter().cloned().map(convert::case_to_wire).collect(),
            })
            .collect();
        let plugin = Arc::clone(&self.plugin);
        let live = self.live()?;
        plugin.set_deadline(&mut live.store, weight);
        let result = live.bindings.klar_consent_process().policy().call_probe(
            &mut live.store,
            live.policy,
            &batch,
        );
        match result {
            Ok(problems) => Ok(problems
                .into_iter()
                .map(convert::probe_problem_from_wire)
                .collect()),
            Err(err) => {
                self.live = None;
                Err(StepFailure::Trap(trap_text(&err)))
            }
        }
    }
}
