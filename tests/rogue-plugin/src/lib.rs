//! A deliberately misbehaving klar plugin, for the sandbox tests only.
//!
//! It implements the real contract, and what it does in a step depends on the
//! contact's id, so one batch can mix good and bad cases:
//! - `loop`: spins forever (the host's epoch deadline must stop it);
//! - `grow`: allocates until memory runs out (the host's memory cap must stop it);
//! - `trap`: panics, which is a WebAssembly trap with `panic = "abort"`;
//! - `read:PATH`: tries to read a file and reports what happened;
//! - `env`: reports the environment variables it can see;
//! - `past-link…` (any id that starts so): on a tick, asks by e-mail with a
//!   response link that expired a day before `now` (the host must keep the
//!   link working for an hour); an answer is recorded as consent or refusal,
//!   with no action;
//! - anything else: returns the case unchanged.
//!
//! Its `probe` misbehaves in the same ways for the same contact ids, and
//! reports `reject:REASON` as a problem of that contact.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "plugin", path: "../../wit" });

    use exports::klar::consent::process::{self as wit_process, Guest, GuestPolicy};
    use klar::consent::types as w;

    struct Rogue;

    impl Guest for Rogue {
        type Policy = RoguePolicy;

        fn describe() -> w::PluginInfo {
            w::PluginInfo {
                name: "klar-rogue".to_owned(),
                version: "0.0.0".to_owned(),
                hooks: Vec::new(),
            }
        }
    }

    struct RoguePolicy;

    impl GuestPolicy for RoguePolicy {
        fn compile(
            _name: String,
            _source: String,
        ) -> Result<wit_process::Policy, Vec<w::Diagnostic>> {
            Ok(wit_process::Policy::new(RoguePolicy))
        }

        fn warnings(&self) -> Vec<w::Diagnostic> {
            Vec::new()
        }

        fn step(
            &self,
            case: w::Case,
            contact: w::Contact,
            event: w::Event,
            clock: w::Clock,
        ) -> Result<w::Outcome, w::StepError> {
            if contact.id.starts_with("past-link") {
                return past_link(case, &event, &clock);
            }
            misbehave(case, &contact.id)
        }

        fn step_batch(
            &self,
            inputs: Vec<w::StepInput>,
            clock: w::Clock,
        ) -> Vec<Result<w::Outcome, w::StepError>> {
            inputs
                .into_iter()
                .map(|i| match i.contact.id.as_str() {
                    id if id.starts_with("past-link") => past_link(i.case, &i.event, &clock),
                    id => misbehave(i.case, id),
                })
                .collect()
        }

        fn defined_hooks(&self) -> Vec<String> {
            Vec::new()
        }

        fn probe(&self, inputs: Vec<w::ProbeInput>) -> Vec<w::ProbeProblem> {
            let mut problems = Vec::new();
            for (index, input) in inputs.into_iter().enumerate() {
                let id = input.contact.id.as_str();
                let reason = match id.strip_prefix("reject:") {
                    Some(reason) => Err(w::StepError::Rejected(reason.to_owned())),
                    None => misbehave(empty_case(), id).map(drop),
                };
                if let Err(
                    w::StepError::Rejected(message)
                    | w::StepError::Policy(w::Diagnostic { message, .. }),
                ) = reason
                {
                    problems.push(w::ProbeProblem {
                        index: u32::try_from(index).unwrap_or(u32::MAX),
                        hook: "rogue".to_owned(),
                        purpose: None,
                        diagnostic: w::Diagnostic {
                            severity: w::Severity::Error,
                            line: 1,
                            column: 1,
                            message,
                        },
                    });
                }
            }
            problems
        }
    }

    fn empty_case() -> w::Case {
        w::Case {
            purpose: "contact-data".to_owned(),
            state: w::State::Unclarified,
            attempt: 0,
            requested_at: None,
            due_at: None,
            consented_at: None,
            review_at: None,
            last_used_at: None,
            assigned_to: None,
            basis: None,
            legal_hold: false,
            cleanup: None,
            updated_at: None,
            bounced: Vec::new(),
            pending_basis: None,
        }
    }

    /// A request whose link expired before it was sent, as a broken or
    /// hostile plugin might return it; answers are recorded plainly.
    fn past_link(
        mut case: w::Case,
        event: &w::Event,
        clock: &w::Clock,
    ) -> Result<w::Outcome, w::StepError> {
        let mut actions = Vec::new();
        match event {
            w::Event::Response(w::Answer::Accept) => {
                case.state = w::State::Consented;
                case.consented_at = Some(clock.now);
            }
            w::Event::Response(w::Answer::Refuse) => case.state = w::State::Refused,
            _ => {
                case.state = w::State::Requested;
                case.attempt += 1;
                case.requested_at = Some(clock.now);
                actions.push(w::Action::SendRequest(w::SendRequest {
                    channel: "email".to_owned(),
                    template: "request".to_owned(),
                    attempt: case.attempt,
                    link_expires_at: clock.now - 86_400,
                }));
            }
        }
        case.due_at = None;
        case.updated_at = Some(clock.now);
        Ok(w::Outcome {
            case,
            actions,
            trace: vec![w::TraceEntry {
                hook: "rogue".to_owned(),
                input: "past-link".to_owned(),
                output: "a link that expired yesterday".to_owned(),
            }],
        })
    }

    fn misbehave(case: w::Case, id: &str) -> Result<w::Outcome, w::StepError> {
        match id {
            "loop" => loop {
                std::hint::black_box(());
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("the rogue plugin traps on purpose"),
            "env" => Err(w::StepError::Rejected(format!(
                "env: {:?}",
                std::env::vars().collect::<Vec<_>>()
            ))),
            other => match other.strip_prefix("read:") {
                Some(path) => Err(w::StepError::Rejected(
                    match std::fs::read_to_string(path) {
                        Ok(text) => format!("read {} bytes", text.len()),
                        Err(e) => format!("cannot read: {e}"),
                    },
                )),
                None => Ok(w::Outcome {
                    case,
                    actions: Vec::new(),
                    trace: vec![w::TraceEntry {
                        hook: "rogue".to_owned(),
                        input: other.to_owned(),
                        output: "behaved".to_owned(),
                    }],
                }),
            },
        }
    }

    export!(Rogue);
}
