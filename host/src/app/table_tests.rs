//! `klar policy test`: table-style tests of a policy, written in TOML next to
//! it (`name.rhai` → `name.tests.toml`). Each test gives a contact, a case, an
//! event and a time, and the expected state, actions and due date; klar runs
//! each through the real plugin, exactly as the scheduler would.
//!
//! The format is documented in `rules/GUIDE.md` ("Testing a policy"). In
//! short:
//!
//! ```toml
//! [defaults]
//! now = "2026-12-01T09:00:00+01:00"
//! [defaults.contact]
//! id = "C00001"
//! email = "j.gross@example.de"
//! owner = "jk"
//!
//! [[test]]
//! name = "the first request goes out by e-mail"
//! event = { type = "tick" }
//! expect = { state = "requested", actions = ["send-request email"] }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::plugin::hooks::Hook;
use crate::plugin::{Action, Case, Clock, Contact, Event, Outcome, StepError};
use crate::runtime::{Session, StepFailure};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    now: Option<String>,
    #[serde(default)]
    contact: toml::Table,
    case: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default, rename = "test")]
    tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    now: Option<String>,
    #[serde(default)]
    contact: toml::Table,
    case: Option<toml::Table>,
    event: toml::Value,
    expect: Expect,
}

/// What a test expects; only the keys given are compared.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub state: Option<String>,
    pub actions: Option<Vec<String>>,
    /// A time, or "none".
    pub due_at: Option<String>,
    pub assigned_to: Option<String>,
    pub legal_hold: Option<bool>,
    /// A part of the message of a step that is expected to fail.
    pub error: Option<String>,
}

/// The outcome of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    /// Empty when the test passed; else one line per difference.
    pub differences: Vec<String>,
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub file: PathBuf,
    pub results: Vec<TestResult>,
}

/// All test files of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub files: Vec<FileReport>,
    /// Hooks the policy defines that no test ran.
    pub unexercised: Vec<&'static str>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results().filter(|r| r.differences.is_empty()).count()
    }
    pub fn failed(&self) -> usize {
        self.results().filter(|r| !r.differences.is_empty()).count()
    }
    fn results(&self) -> impl Iterator<Item = &TestResult> {
        self.files.iter().flat_map(|f| f.results.iter())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("{file}: cannot read it: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Malformed { file: String, message: String },
    #[error("the plugin failed while running the tests: {0}")]
    Plugin(String),
}

/// The test file that belongs to a policy: `x.rhai` → `x.tests.toml`.
pub fn default_test_file(policy: &Path) -> PathBuf {
    let stem = policy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    policy.with_file_name(format!("{stem}.tests.toml"))
}

fn malformed(file: &Path, message: impl Into<String>) -> TestFileError {
    TestFileError::Malformed {
        file: file.display().to_string(),
        message: message.into(),
    }
}

fn to_json(table: &toml::Table) -> Value {
    serde_json::to_value(table).unwrap_or(Value::Null)
}

fn parse_now(text: &str) -> Result<Clock, String> {
    let at: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("now {text:?} is not an RFC 3339 time: {e}"))?;
    Ok(Clock {
        now: at.with_timezone(&Utc),
        utc_offset_minutes: at.offset().local_minus_utc() / 60,
        ..Clock::utc(at.with_timezone(&Utc))
    })
}

/// The contact of a test: built-in defaults, then the file's, then the test's.
fn contact(defaults: &toml::Table, own: &toml::Table, clock: &Clock) -> Result<Contact, String> {
    let mut merged = Map::new();
    for (key, value) in [
        ("id", "C00001"),
        ("owner", "owner"),
        ("source", "test"),
        ("language", "de"),
    ] {
        merged.insert(key.to_owned(), Value::from(value));
    }
    merged.insert("created_at".to_owned(), Value::from(clock.now.to_rfc3339()));
    for table in [defaults, own] {
        if let Value::Object(fields) = to_json(table) {
            merged.extend(fields);
        }
    }
    // "" means unknown, as in a CSV.
    for key in ["email", "phone"] {
        if merged.get(key).and_then(Value::as_str) == Some("") {
            merged.insert(key.to_owned(), Value::Null);
        }
    }
    serde_json::from_value(Value::Object(merged)).map_err(|e| format!("contact: {e}"))
}

fn case(defaults: Option<&toml::Table>, own: Option<&toml::Table>) -> Result<Case, String> {
    let mut merged = Map::new();
    merged.insert("purpose".to_owned(), Value::from("contact-data"));
    merged.insert("state".to_owned(), Value::from("unclarified"));
    for table in [defaults, own].into_iter().flatten() {
        if let Value::Object(fields) = to_json(table) {
            merged.extend(fields);
        }
    }
    serde_json::from_value(Value::Object(merged)).map_err(|e| format!("case: {e}"))
}

/// An action in the tests' short form: "send-request email", "block-use", …
pub fn short(action: &Action) -> String {
    match action {
        Action::SendRequest { channel, .. } => format!("send-request {channel}"),
        Action::CreateTask { assignee, .. } => format!("create-task {assignee}"),
        Action::BlockUse => "block-use".to_owned(),
        Action::Cleanup { mode, .. } => format!("cleanup {}", mode.as_str()),
        Action::Notify { recipient, .. } => format!("notify {recipient}"),
    }
}

fn same_time(expected: &str, actual: Option<DateTime<Utc>>) -> Result<bool, String> {
    if expected == "none" {
        return Ok(actual.is_none());
    }
    let want = DateTime::parse_from_rfc3339(expected)
        .map_err(|e| format!("due_at {expected:?} is not an RFC 3339 time or \"none\": {e}"))?;
    Ok(actual.is_some_and(|a| a == want.with_timezone(&Utc)))
}

fn show_time(at: Option<DateTime<Utc>>, offset_minutes: i32) -> String {
    match (at, FixedOffset::east_opt(offset_minutes * 60)) {
        (Some(at), Some(offset)) => at.with_timezone(&offset).to_rfc3339(),
        (Some(at), None) => at.to_rfc3339(),
        (None, _) => "none".to_owned(),
    }
}

/// Compares an outcome (or a failure) with the expectations.
fn compare(
    expect: &Expect,
    result: &Result<Outcome, String>,
    clock: &Clock,
) -> Result<Vec<String>, String> {
    let mut diff = Vec::new();
    let outcome = match (result, &expect.error) {
        (Err(message), Some(part)) => {
            if !message.contains(part.as_str()) {
                diff.push(format!(
                    "error: expected a message containing {part:?}, got {message:?}"
                ));
            }
            return Ok(diff);
        }
        (Err(message), None) => {
            diff.push(format!("the step failed: {message}"));
            return Ok(diff);
        }
        (Ok(outcome), Some(part)) => {
            diff.push(format!(
                "error: expected a failure containing {part:?}, but the step succeeded ({})",
                outcome.case.state
            ));
            return Ok(diff);
        }
        (Ok(outcome), None) => outcome,
    };
    if let Some(state) = &expect.state
        && outcome.case.state.as_str() != state
    {
        diff.push(format!(
            "state: expected {state}, got {}",
            outcome.case.state
        ));
    }
    if let Some(actions) = &expect.actions {
        let got: Vec<String> = outcome.actions.iter().map(short).collect();
        if &got != actions {
            diff.push(format!(
                "actions: expected [{}], got [{}]",
                actions.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(due) = &expect.due_at
        && !same_time(due, outcome.case.due_at)?
    {
        diff.push(format!(
            "due_at: expected {due}, got {}",
            show_time(outcome.case.due_at, clock.utc_offset_minutes)
        ));
    }
    if let Some(who) = &expect.assigned_to
        && outcome.case.assigned_to.as_deref() != Some(who.as_str())
    {
        diff.push(format!(
            "assigned_to: expected {who}, got {}",
            outcome.case.assigned_to.as_deref().unwrap_or("nobody")
        ));
    }
    if let Some(hold) = expect.legal_hold
        && outcome.case.legal_hold != hold
    {
        diff.push(format!(
            "legal_hold: expected {hold}, got {}",
            outcome.case.legal_hold
        ));
    }
    Ok(diff)
}

fn failure_text(failure: &StepFailure) -> String {
    match failure {
        StepFailure::Step(StepError::Rejected { reason }) => reason.clone(),
        StepFailure::Step(StepError::Policy { diagnostic }) => format!(
            "policy error at line {}, column {}: {}",
            diagnostic.line, diagnostic.column, diagnostic.message
        ),
        other => other.to_string(),
    }
}

/// Runs one test file through `session`; `exercised` collects the hooks the
/// policy itself answered.
fn run_file(
    session: &mut Session,
    file: &Path,
    text: &str,
    exercised: &mut BTreeSet<String>,
) -> Result<FileReport, TestFileError> {
    let parsed: TestFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!("line {line}: ")
            })
            .unwrap_or_default();
        malformed(file, format!("{at}{}", e.message()))
    })?;
    if parsed.tests.is_empty() {
        return Err(malformed(file, "has no [[test]]"));
    }
    let mut names = BTreeSet::new();
    let mut results = Vec::new();
    for test in &parsed.tests {
        if !names.insert(test.name.as_str()) {
            return Err(malformed(
                file,
                format!("two tests are named {:?}", test.name),
            ));
        }
        let bad = |message: String| malformed(file, format!("test {:?}: {message}", test.name));
        let now = test
            .now
            .as_deref()
            .or(parsed.defaults.now.as_deref())
            .ok_or_else(|| bad("no `now`, and [defaults] has none".to_owned()))?;
        let clock = parse_now(now).map_err(bad)?;
        let contact = contact(&parsed.defaults.contact, &test.contact, &clock).map_err(bad)?;
        let case = case(parsed.defaults.case.as_ref(), test.case.as_ref()).map_err(bad)?;
        let event: Event = serde_json::to_value(&test.event)
            .and_then(serde_json::from_value)
            .map_err(|e| bad(format!("event: {e}")))?;
        let result = session
            .step(&case, &contact, &event, &clock)
            .map_err(|f| failure_text(&f));
        if let Ok(outcome) = &result {
            exercised.extend(
                outcome
                    .trace
                    .iter()
                    .filter(|t| !t.output.ends_with("(default)"))
                    .map(|t| t.hook.clone()),
            );
        }
        let differences = compare(&test.expect, &result, &clock).map_err(bad)?;
        results.push(TestResult {
            name: test.name.clone(),
            differences,
        });
    }
    Ok(FileReport {
        file: file.to_path_buf(),
        results,
    })
}

/// Reads test files, for [`run_texts`].
pub fn read_files(files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, TestFileError> {
    files
        .iter()
        .map(|file| {
            std::fs::read_to_string(file)
                .map(|text| (file.clone(), text))
                .map_err(|source| TestFileError::Read {
                    file: file.display().to_string(),
                    source,
                })
        })
        .collect()
}

/// Runs test files (name and text) against the policy `session` runs.
pub fn run_texts(
    session: &mut Session,
    files: &[(PathBuf, String)],
) -> Result<Report, TestFileError> {
    let mut exercised = BTreeSet::new();
    let mut reports = Vec::new();
    for (file, text) in files {
        reports.push(run_file(session, file, text, &mut exercised)?);
    }
    // Which hooks the policy defines, as the plugin says: the policy runs
    // only in the sandbox. `business_days_only` is answered once when the
    // policy is compiled, so no step traces it.
    let defined = session
        .defined_hooks()
        .map_err(|f| TestFileError::Plugin(f.to_string()))?;
    let unexercised = defined
        .iter()
        .filter_map(|name| Hook::from_name(name))
        .filter(|h| *h != Hook::BusinessDaysOnly && !exercised.contains(h.name()))
        .map(Hook::name)
        .collect();
    Ok(Report {
        files: reports,
        unexercised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_file_sits_next_to_the_policy() {
        assert_eq!(
            default_test_file(Path::new("rules/examples/b2b.rhai")),
            PathBuf::from("rules/examples/b2b.tests.toml")
        );
    }

    #[test]
    fn contacts_merge_defaults_and_blank_addresses() {
        let clock = parse_now("2026-12-01T09:00:00+01:00").expect("time");
        assert_eq!(clock.utc_offset_minutes, 60);
        let defaults: toml::Table =
            toml::from_str("email = \"a@example.de\"\nowner = \"jk\"").expect("toml");
        let own: toml::Table = toml::from_str("email = \"\"").expect("toml");
        let c = contact(&defaults, &own, &clock).expect("contact");
        assert_eq!((c.email, c.owner.as_str()), (None, "jk"));
    }

    #[test]
    fn differences_name_expected_and_actual() {
        let clock = parse_now("2026-12-01T09:00:00+01:00").expect("time");
        let mut case = Case::new("contact-data");
        case.state = crate::plugin::State::Requested;
        let outcome = Outcome {
            case,
            actions: vec![Action::BlockUse],
            trace: Vec::new(),
        };
        let expect = Expect {
            state: Some("consented".into()),
            actions: Some(vec![]),
            due_at: Some("none".into()),
            ..Expect::default()
        };
        assert_eq!(
            compare(&expect, &Ok(outcome), &clock).expect("compares"),
            [
                "state: expected consented, got requested",
                "actions: expected [], got [block-use]"
            ]
        );
        let refused = Expect {
            error: Some("never consented".into()),
            ..Expect::default()
        };
        assert!(
            compare(&refused, &Err("the contact never consented".into()), &clock)
                .expect("compares")
                .is_empty()
        );
    }
}
