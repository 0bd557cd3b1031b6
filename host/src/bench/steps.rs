//! `klar bench steps` (the default): policy steps per second through the WebAssembly component (one
//! case per call, and batched) against the same plugin library compiled natively,
//! measured in the same run and reported as ratios, because the machines are
//! shared and noisy and only ratios compare across runs.
//!
//! Rounds interleave the three modes and each figure is the median round, so a
//! burst of load from a neighbour hits all modes alike.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{Duration, TimeZone, Utc};

use crate::plugin::{self, Answer, Case, Clock, Contact, Event, Outcome, State};
use crate::runtime::{Runtime, RuntimeConfig, StepFailure};

#[derive(Debug, clap::Args)]
pub struct StepsArgs {
    /// The policy to measure (default: the built-in rules/default.rhai).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Cases in the workload.
    #[arg(long, default_value_t = 2_000)]
    pub cases: usize,
    /// Measured rounds (after one warm-up round).
    #[arg(long, default_value_t = 9)]
    pub rounds: usize,
    /// Cases per batch call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A mix of steps that exercises every hook of the default policy: first
/// requests, reminders, no reaction, consents and refusals.
pub fn workload(cases: usize) -> (Vec<(Case, Contact, Event)>, Clock) {
    let now = Utc
        .with_ymd_and_hms(2026, 12, 1, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let first = [
        "Jürgen", "Zoë", "Ana", "Łukasz", "Émilie", "Mehmet", "Søren", "Chloé",
    ];
    let last = [
        "Müller", "Öztürk", "García", "Nowak", "Dubois", "Weiß", "Jensen", "Bäcker",
    ];
    let inputs = (0..cases)
        .map(|i| {
            let contact = Contact {
                id: format!("C{i:05}"),
                first_name: first[i % first.len()].to_owned(),
                last_name: last[(i / 3) % last.len()].to_owned(),
                email: (i % 7 != 0).then(|| format!("kontakt{i}@example.de")),
                phone: (i % 2 == 0).then(|| format!("+49 30 {i:07}")),
                owner: ["jk", "mb", "sr"][i % 3].to_owned(),
                source: ["trade-fair", "web-form", "import"][i % 3].to_owned(),
                language: "de".to_owned(),
                created_at: now - Duration::days(200),
                attributes: Default::default(),
            };
            let mut case = Case::new("contact-data");
            let event = match i % 10 {
                0..=3 => {
                    case.state = State::Requested;
                    case.attempt = 1;
                    case.requested_at = Some(now - Duration::days(20));
                    case.due_at = Some(now - Duration::hours(1));
                    Event::Tick
                }
                4 | 5 => Event::Tick,
                6 | 7 => {
                    case.state = State::Requested;
                    case.attempt = 3;
                    case.requested_at = Some(now - Duration::days(60));
                    case.due_at = Some(now - Duration::hours(1));
                    Event::Tick
                }
                8 => {
                    case.state = State::Requested;
                    case.attempt = 2;
                    Event::Response {
                        answer: Answer::Accept,
                    }
                }
                _ => {
                    case.state = State::Requested;
                    case.attempt = 1;
                    Event::Response {
                        answer: Answer::Refuse,
                    }
                }
            };
            (case, contact, event)
        })
        .collect();
    (inputs, Clock::utc(now))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(plugin_path: Option<&Path>, args: &StepsArgs) -> Result<ExitCode> {
    if args.cases == 0 || args.rounds == 0 || args.batch == 0 {
        bail!("--cases, --rounds and --batch must be at least 1");
    }
    let (name, source) = match &args.policy {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("failed to read policy {}", path.display()))?,
        ),
        None => (
            "rules/default.rhai".to_owned(),
            crate::DEFAULT_POLICY.to_owned(),
        ),
    };
    let (inputs, clock) = workload(args.cases);

    let native = plugin::Policy::compile(&source)
        .map_err(|d| anyhow::anyhow!("the policy does not compile natively: {d:?}"))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let loaded = match plugin_path {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_default()?,
    };
    let mut session = loaded
        .open(&name, &source)
        .map_err(|e| anyhow::anyhow!("failed to open the policy in the plugin: {e}"))?;

    // The three modes must agree, or the figures compare different work.
    let expected: Vec<Result<Outcome, plugin::StepError>> = inputs
        .iter()
        .map(|(case, contact, event)| plugin::step(&native, case, contact, event, &clock))
        .collect();
    let batched: Vec<Result<Outcome, StepFailure>> = session.step_batch(&inputs, &clock);
    for (i, (want, got)) in expected.iter().zip(&batched).enumerate() {
        let same = match (want, got) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(StepFailure::Step(b))) => a == b,
            _ => false,
        };
        if !same {
            bail!("case {i}: the component and the native library disagree: {want:?} vs {got:?}");
        }
    }

    // The component receives every input owned and shares the contact with the
    // hooks; the native baseline gets the same advantage.
    let shared: Vec<Rc<Contact>> = inputs.iter().map(|(_, c, _)| Rc::new(c.clone())).collect();
    let per_step = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / inputs.len() as f64;
    let (mut t_native, mut t_single, mut t_batch) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=args.rounds {
        let started = Instant::now();
        for ((case, _, event), contact) in inputs.iter().zip(&shared) {
            let _ =
                std::hint::black_box(plugin::step_shared(&native, case, contact, event, &clock));
        }
        let native_us = per_step(started);

        let started = Instant::now();
        for (case, contact, event) in &inputs {
            let _ = std::hint::black_box(session.step(case, contact, event, &clock));
        }
        let single_us = per_step(started);

        let started = Instant::now();
        for chunk in inputs.chunks(args.batch) {
            let _ = std::hint::black_box(session.step_batch(chunk, &clock));
        }
        let batch_us = per_step(started);

        if round > 0 {
            t_native.push(native_us);
            t_single.push(single_us);
            t_batch.push(batch_us);
        }
    }
    let (native_us, single_us, batch_us) = (median(t_native), median(t_single), median(t_batch));

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "policy": name,
                "cases": args.cases,
                "rounds": args.rounds,
                "batch": args.batch,
                "native_us_per_step": native_us,
                "wasm_single_us_per_step": single_us,
                "wasm_batch_us_per_step": batch_us,
                "wasm_single_vs_native": single_us / native_us,
                "wasm_batch_vs_native": batch_us / native_us,
            }))?
        );
    } else {
        println!(
            "klar bench: {name}, {} cases, median of {} rounds, plugin {} {}",
            args.cases,
            args.rounds,
            loaded.info().name,
            loaded.info().version
        );
        println!(
            "{:<28} {:>9} {:>12} {:>10}",
            "mode", "µs/step", "steps/s", "vs native"
        );
        for (mode, us) in [
            ("native (same library)", native_us),
            ("wasm, one case per call", single_us),
            (&*format!("wasm, batches of {}", args.batch), batch_us),
        ] {
            println!(
                "{mode:<28} {us:>9.2} {:>12.0} {:>10.2}",
                1e6 / us,
                us / native_us
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
