//! A compiled policy: the rhai script, checked once, and typed calls of its hooks.
//!
//! Compiling does more than parse. It checks each hook's parameters, runs every
//! defined hook once on a sample contact so that a wrong return type or a runaway
//! loop is found before the policy goes live, and warns about functions that look
//! like misspelt hooks. [`Policy::probe`] runs every hook the same way for real
//! contacts, which is what the host does with a tenant's contacts before a
//! version becomes active. At run time each hook call is traced, so a step can
//! be explained later. Errors read in plain words (see `plain.rs`).
//!
//! Compiling and calling hooks are here; running every hook for a contact
//! (the check with a sample contact, the probe) is in `probe.rs`; finding
//! where an error is and wording it is in `locate.rs`.

use std::cell::OnceCell;

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};

use crate::hooks::{self, Hook, Mismatch};
use crate::model::{Diagnostic, Severity, StepError, TraceEntry};
use crate::plain::{self, Names, edit_distance};
use crate::script;

mod locate;
mod probe;

use locate::{find_fn, index, is_called, place};

/// Where each hook is defined in the source (1-based line and column).
#[derive(Debug, Clone, Copy, Default)]
struct Defined {
    line: u32,
    column: u32,
    /// How many parameters the policy's function takes (`channel` may take
    /// a third, the channels that bounced).
    params: usize,
}

pub struct Policy {
    source: String,
    engine: Engine,
    ast: AST,
    defined: [Option<Defined>; Hook::ALL.len()],
    warnings: Vec<Diagnostic>,
    /// `business_days_only()` takes no arguments, so it is evaluated once here.
    business_days_only: bool,
    /// What error messages may suggest; gathered on the first error only.
    names: OnceCell<Names>,
}

/// The most attempts a probe asks `channel` about: a policy with more
/// reminders than this is checked up to here.
const MAX_PROBED_ATTEMPTS: usize = 64;

/// One hook that failed during a probe.
struct Found {
    hook: Hook,
    purpose: Option<String>,
    diagnostic: Diagnostic,
    /// A `throw` of the policy's own, not a mistake in it.
    thrown: bool,
}

/// A silent log sink, for native use and tests.
pub fn no_log(_debug: bool, _text: &str) {}

impl Policy {
    /// Compiles and checks a policy. On failure, every error found is returned
    /// (warnings too, so a caller can show them together).
    pub fn compile(source: &str) -> Result<Policy, Vec<Diagnostic>> {
        Policy::compile_with_log(source, no_log)
    }

    pub fn compile_with_log(source: &str, log: fn(bool, &str)) -> Result<Policy, Vec<Diagnostic>> {
        let engine = script::engine(log);
        let ast = engine.compile(source).map_err(|err| {
            let (line, column) = place(err.1);
            let names = Names {
                variables: Names::declared_in(source),
                ..Names::default()
            };
            vec![Diagnostic::error(
                line,
                column,
                plain::parse(&err.0, &names),
            )]
        })?;

        let mut diagnostics = Vec::new();
        let mut defined = [None; Hook::ALL.len()];
        let mut helpers = Vec::new();
        for f in ast.iter_functions() {
            let (line, column) = find_fn(source, f.name);
            match Hook::from_name(f.name) {
                Some(hook)
                    if f.params.len() != hook.params().len()
                        && !(hook == Hook::Channel && f.params.len() == 3) =>
                {
                    diagnostics.push(Diagnostic::error(
                        line,
                        column,
                        format!(
                            "hook `{}` takes {} parameter(s): {}, but is defined with {}",
                            hook.name(),
                            hook.params().len(),
                            hook.signature(),
                            f.params.len()
                        ),
                    ));
                }
                Some(hook) => {
                    defined[index(hook)] = Some(Defined {
                        line,
                        column,
                        params: f.params.len(),
                    })
                }
                None => helpers.push((f.name.to_owned(), line, column)),
            }
        }
        for (name, line, column) in helpers {
            if let Some(hook) = Hook::ALL
                .into_iter()
                .find(|h| edit_distance(h.name(), &name) <= 2)
            {
                diagnostics.push(Diagnostic::warning(
                    line,
                    column,
                    format!(
                        "`{name}` is not a hook and will never be called by klar; did you mean `{}`?",
                        hook.signature()
                    ),
                ));
            } else if !is_called(source, &name) {
                diagnostics.push(Diagnostic::warning(
                    line,
                    column,
                    format!(
                        "`{name}` is not a hook and no hook calls it; the known hooks are: {}",
                        Hook::ALL.map(Hook::name).join(", ")
                    ),
                ));
            }
        }

        let mut policy = Policy {
            source: source.to_owned(),
            engine,
            ast,
            defined,
            warnings: Vec::new(),
            business_days_only: false,
            names: OnceCell::new(),
        };
        if diagnostics.iter().all(|d| d.severity == Severity::Warning) {
            policy.check_with_sample(&mut diagnostics);
        }
        if diagnostics.iter().any(|d| d.severity == Severity::Error) {
            return Err(diagnostics);
        }
        policy.business_days_only = match policy.call(Hook::BusinessDaysOnly, &[]) {
            Ok(Some(value)) => hooks::flag(&value).unwrap_or(false),
            _ => false,
        };
        policy.warnings = diagnostics;
        Ok(policy)
    }

    /// Warnings found while compiling.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub fn defines(&self, hook: Hook) -> bool {
        self.defined[index(hook)].is_some()
    }

    /// Whether the policy's `channel` takes the channels that bounced as a
    /// third parameter: `channel(contact, attempt, bounced)`.
    pub fn channel_sees_bounces(&self) -> bool {
        self.defined[index(Hook::Channel)].is_some_and(|d| d.params == 3)
    }

    pub fn business_days_only(&self) -> bool {
        self.business_days_only
    }

    /// The hooks this policy defines, in the order of [`Hook::ALL`].
    pub fn defined_hooks(&self) -> Vec<Hook> {
        Hook::ALL.into_iter().filter(|h| self.defines(*h)).collect()
    }

    /// Calls a hook and reads its value; `Ok(None)` if the policy does not
    /// define it.
    fn try_hook<T, const N: usize>(
        &self,
        hook: Hook,
        args: &[Dynamic; N],
        read: impl Fn(&Dynamic) -> Result<T, Mismatch>,
    ) -> Result<Option<T>, Found> {
        let fail = |diagnostic, thrown| Found {
            hook,
            purpose: None,
            diagnostic,
            thrown,
        };
        match self.call(hook, args) {
            Ok(Some(value)) => read(&value)
                .map(Some)
                .map_err(|mismatch| fail(self.contract_error(hook, &mismatch), false)),
            Ok(None) => Ok(None),
            Err(err) => {
                let thrown = matches!(err.unwrap_inner(), EvalAltResult::ErrorRuntime(..));
                Err(fail(self.eval_error(hook, &err), thrown))
            }
        }
    }

    /// Calls a hook if the policy defines it.
    fn call<const N: usize>(
        &self,
        hook: Hook,
        args: &[Dynamic; N],
    ) -> Result<Option<Dynamic>, Box<EvalAltResult>> {
        if !self.defines(hook) {
            return Ok(None);
        }
        // `eval_ast(false)`: the script's top level is not run again on every call.
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        match self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut Scope::new(),
            &self.ast,
            hook.name(),
            args.clone(),
        ) {
            Ok(value) => Ok(Some(value)),
            Err(err) if err.position().is_none() && err.is_system_exception() => {
                Err(self.locate(hook, args).unwrap_or(err))
            }
            Err(err) => Err(err),
        }
    }

    /// Calls a hook, reads its value, and records both in the trace. `input`
    /// describes the arguments for the trace; `default` is used when the hook is
    /// not defined.
    pub(crate) fn run<T: std::fmt::Debug, const N: usize>(
        &self,
        hook: Hook,
        args: &[Dynamic; N],
        input: impl FnOnce() -> String,
        read: impl Fn(&Dynamic) -> Result<T, Mismatch>,
        default: impl FnOnce() -> T,
        trace: &mut Vec<TraceEntry>,
    ) -> Result<T, StepError> {
        match self.call(hook, args) {
            Ok(Some(value)) => {
                let typed = read(&value).map_err(|mismatch| StepError::Policy {
                    diagnostic: self.contract_error(hook, &mismatch),
                })?;
                trace.push(TraceEntry {
                    hook: hook.name().to_owned(),
                    input: input(),
                    output: hooks::show(&value),
                });
                Ok(typed)
            }
            Ok(None) => {
                let value = default();
                trace.push(TraceEntry {
                    hook: hook.name().to_owned(),
                    input: input(),
                    output: format!("{value:?} (default)"),
                });
                Ok(value)
            }
            Err(err) => Err(StepError::Policy {
                diagnostic: self.eval_error(hook, &err),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::probe::sample_contact;
    use super::*;
    use crate::model::{Case, Contact, State};
    use crate::script::limits;

    fn errors(source: &str) -> Vec<Diagnostic> {
        match Policy::compile(source) {
            Ok(p) => panic!("expected errors, got warnings {:?}", p.warnings()),
            Err(d) => d,
        }
    }

    #[test]
    fn a_truncated_script_is_a_parse_error_with_its_place() {
        let d = errors("fn reminder_days(contact) {\n  [7, 14\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].severity, Severity::Error);
        assert!(d[0].line >= 2, "{:?}", d[0]);
        assert!(d[0].column > 0, "{:?}", d[0]);
    }

    #[test]
    fn a_misspelt_hook_is_a_warning() {
        let p = Policy::compile("fn reminder_day(contact) { [7] }").expect("compiles");
        let w = p.warnings();
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].line, w[0].column), (1, 1));
        assert!(
            w[0].message
                .contains("did you mean `reminder_days(contact)`"),
            "{w:?}"
        );
    }

    #[test]
    fn an_unused_helper_is_a_warning_but_a_used_one_is_not() {
        let p = Policy::compile("fn helper() { 1 }\nfn answer_days(c) { 14 }").expect("compiles");
        assert_eq!(p.warnings().len(), 1);
        let p = Policy::compile("fn helper() { 14 }\nfn answer_days(c) { helper() }")
            .expect("compiles");
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
    }

    #[test]
    fn a_wrong_return_type_names_the_contract() {
        let d = errors("// policy\n  fn reminder_days(contact) { \"7 days\" }");
        assert_eq!((d[0].line, d[0].column), (2, 3));
        assert!(
            d[0].message
                .starts_with("hook reminder_days(contact) must return an array"),
            "{}",
            d[0].message
        );
        assert!(
            d[0].message.ends_with(r#"but it returned "7 days""#),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn a_wrong_channel_at_a_later_attempt_is_found() {
        let d =
            errors(r#"fn channel(contact, attempt) { if attempt < 3 { "email" } else { "fax" } }"#);
        assert!(
            d[0].message.contains(r#"it returned "fax""#),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn wrong_arity_is_an_error() {
        let d = errors("fn channel(contact) { \"email\" }");
        assert!(
            d[0].message.contains("channel(contact, attempt)"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn an_endless_loop_stops_with_its_place() {
        let started = std::time::Instant::now();
        let d = errors("fn answer_days(contact) {\n  let n = 0;\n  loop { n += 1; }\n}");
        assert!(
            d[0].message.contains("the policy ran too long"),
            "{}",
            d[0].message
        );
        assert_eq!(d[0].line, 3, "{:?}", d[0]);
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn a_typo_in_a_field_is_an_error() {
        let d = errors(
            "fn channel(contact, attempt) { if contact.emial != () { \"email\" } else { \"letter\" } }",
        );
        assert!(d[0].message.contains("emial"), "{}", d[0].message);
    }

    #[test]
    fn deep_recursion_is_stopped() {
        let d = errors("fn f(n) { f(n + 1) }\nfn answer_days(contact) { f(0) }");
        assert!(d[0].message.contains("levels deep"), "{}", d[0].message);
    }

    #[test]
    fn huge_strings_and_arrays_are_stopped() {
        let d = errors("fn answer_days(contact) { let s = \"x\"; loop { s += s; } }");
        assert!(
            d[0].message
                .contains("a text grew longer than 4096 characters"),
            "{}",
            d[0].message
        );
        let d = errors("fn reminder_days(contact) { let a = []; loop { a.push(1); } }");
        assert!(
            d[0].message
                .contains("a list grew longer than 1000 entries"),
            "{}",
            d[0].message
        );
    }

    /// rhai 1.27 does not apply its map-size limit to `m[key] = value` (seen
    /// here: 1,100 keys pass a limit of 1,000), so a growing map is bounded by
    /// the operation limit, and the plugin's memory cap behind it.
    #[test]
    fn huge_maps_are_bounded_by_the_operation_limit() {
        let d = errors(
            "fn answer_days(contact) { let m = #{}; let i = 0; loop { m[i.to_string()] = 0; i += 1; } }",
        );
        assert!(
            d[0].message.contains("the policy ran too long"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn deeply_nested_expressions_are_refused() {
        let deep = format!(
            "fn answer_days(contact) {{ {}1{} }}",
            "(".repeat(200),
            ")".repeat(200)
        );
        let d = errors(&deep);
        assert!(
            d[0].message.contains("maximum complexity"),
            "{}",
            d[0].message
        );
    }

    /// A hook that declares `lets` variables, one a line, each used by the
    /// next, so that none can be optimised away.
    fn hook_with_variables(lets: usize) -> String {
        let mut source = "fn answer_days(contact) {\n  let v0 = 1;\n".to_owned();
        for i in 1..lets {
            source.push_str(&format!("  let v{i} = v{} + 1;\n", i - 1));
        }
        source.push_str(&format!(
            "  if v{} > 0 {{ 14 }} else {{ 7 }}\n}}\n",
            lets - 1
        ));
        source
    }

    /// rhai's own default is no limit: without `set_max_variables` the
    /// 256-variable hook below would pass.
    #[test]
    fn too_many_variables_are_stopped_at_the_limit() {
        // The hook's parameter `contact` is the scope's first variable, so
        // 255 `let`s fill it exactly.
        let at_limit = limits::MAX_VARIABLES - 1;
        let p = Policy::compile(&hook_with_variables(at_limit));
        assert!(p.is_ok(), "{:?}", p.err());

        let d = errors(&hook_with_variables(at_limit + 1));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(
            d[0].message,
            "in hook `answer_days`: the policy declares more than 256 variables and was stopped"
        );
        // The `let` that broke the limit: line 1 is the hook's head.
        assert_eq!(d[0].line, 1 + 256, "{:?}", d[0]);
    }

    /// `count` functions: `count - 1` helpers and the hook that uses the last.
    fn policy_with_functions(count: usize) -> String {
        let mut source = String::new();
        for i in 0..count - 1 {
            source.push_str(&format!("fn helper{i}() {{ {i} }}\n"));
        }
        source.push_str(&format!(
            "fn answer_days(contact) {{ helper{}() + 14 }}\n",
            count - 2
        ));
        source
    }

    /// rhai's own default is no limit: without `set_max_functions` the
    /// 257-function policy below would compile (with warnings only).
    #[test]
    fn too_many_functions_are_refused_when_parsing() {
        let p = Policy::compile(&policy_with_functions(limits::MAX_FUNCTIONS));
        assert!(p.is_ok(), "{:?}", p.err());

        let d = errors(&policy_with_functions(limits::MAX_FUNCTIONS + 1));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].severity, Severity::Error);
        // rhai's own words: plain.rs has no plainer ones for this limit.
        assert_eq!(
            d[0].message,
            "Number of functions defined exceeds maximum limit"
        );
        // The 257th `fn`, which is the hook on the last line.
        assert_eq!((d[0].line, d[0].column), (257, 1), "{:?}", d[0]);
    }

    #[test]
    fn the_word_case_is_a_usable_parameter_name() {
        let p = Policy::compile(
            r#"fn on_refusal(contact, case) { if case.state == "withdrawn" { "block" } else { "cleanup" } }"#,
        );
        assert!(p.is_ok(), "{:?}", p.err());
    }

    #[test]
    fn a_throw_is_only_a_warning_at_check_time() {
        let p = Policy::compile(
            "fn answer_days(contact) { if contact.source == \"web-form\" { throw \"no\" } 14 }",
        )
        .expect("compiles");
        assert_eq!(p.warnings().len(), 1);
    }

    #[test]
    fn business_days_only_is_evaluated_once() {
        assert!(
            Policy::compile("fn business_days_only() { true }")
                .expect("ok")
                .business_days_only()
        );
        assert!(!Policy::compile("").expect("ok").business_days_only());
    }

    fn contact(id: &str, source: &str, phone: Option<&str>) -> Rc<Contact> {
        Rc::new(Contact {
            id: id.to_owned(),
            source: source.to_owned(),
            phone: phone.map(str::to_owned),
            ..sample_contact()
        })
    }

    #[test]
    fn the_probe_finds_an_error_that_only_some_contacts_reach() {
        let source = "fn on_no_response(contact, case) {\n    if contact.source == \"purchased-list\" {\n        #{ action: \"delete\" }\n    } else {\n        #{ action: \"manual\" }\n    }\n}\n";
        let policy = Policy::compile(source).expect("the sample contact passes");
        let cases = [Case::new("contact-data"), Case::new("newsletter")];
        assert!(
            policy
                .probe(&contact("C1", "web-form", None), &cases)
                .is_empty()
        );
        let found = policy.probe(&contact("C2", "purchased-list", None), &cases);
        assert_eq!(
            found.len(),
            1,
            "one problem, not one per purpose: {found:?}"
        );
        assert_eq!(found[0].hook, "on_no_response");
        assert_eq!(found[0].purpose.as_deref(), Some("contact-data"));
        assert_eq!(
            (found[0].diagnostic.line, found[0].diagnostic.column),
            (1, 1)
        );
        assert!(
            found[0]
                .diagnostic
                .message
                .ends_with(r#"but `action` is "delete", not "manual", "restart" or "cleanup""#),
            "{}",
            found[0].diagnostic.message
        );
    }

    #[test]
    fn the_probe_says_which_value_is_missing() {
        let policy = Policy::compile(
            "fn answer_days(contact) {\n  if contact.phone.len() > 3 { 14 } else { 7 }\n}",
        )
        .expect("the sample contact has a phone number");
        let found = policy.probe(&contact("C3", "web-form", None), &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].purpose, None);
        assert_eq!(found[0].diagnostic.line, 2);
        assert_eq!(
            found[0].diagnostic.message,
            "in hook `answer_days`: `len` was used on nothing: a value is missing here (a contact without an e-mail address or phone number has nothing there); check it first, e.g. `if contact.email != () { … }`"
        );
    }

    #[test]
    fn a_throw_for_a_real_contact_is_a_problem() {
        let policy = Policy::compile(
            "fn answer_days(contact) { if contact.source == \"import\" { throw \"check imports by hand\" } 14 }",
        )
        .expect("compiles");
        let found = policy.probe(&contact("C4", "import", None), &[]);
        assert_eq!(
            found[0].diagnostic.message,
            "in hook `answer_days`: the policy stopped itself with `throw`: check imports by hand"
        );
    }

    #[test]
    fn hooks_see_the_case_as_klar_gives_it_to_them() {
        // on_refusal only ever sees refused or withdrawn cases, on_no_response
        // a case after its last reminder, evidence_retention_days a case
        // whose cleanup is pending.
        let policy = Policy::compile(
            r#"fn reminder_days(contact) { [7, 14, 21] }
fn on_refusal(contact, case) {
    if case.state == "refused" || case.state == "withdrawn" { "block" } else { "nonsense" }
}
fn on_no_response(contact, case) {
    if case.state == "requested" && case.attempt == 4 { "manual" } else { "nonsense" }
}
fn evidence_retention_days(contact, case) {
    if case.state == "cleanup-pending" { 365 } else { "nonsense" }
}
fn channel(contact, attempt) { if attempt <= 4 { "email" } else { "nonsense" } }
"#,
        )
        .expect("compiles");
        let mut consented = Case::new("contact-data");
        consented.state = State::Consented;
        assert_eq!(
            policy.probe(&contact("C5", "web-form", None), &[consented]),
            []
        );
    }

    #[test]
    fn purged_cases_are_not_probed() {
        let policy = Policy::compile(
            "fn on_refusal(contact, case) { if case.purpose == \"old\" { \"x\" } else { \"block\" } }",
        )
        .expect("compiles");
        let mut purged = Case::new("old");
        purged.state = State::Purged;
        assert_eq!(policy.probe(&contact("C6", "web", None), &[purged]), []);
        let live = Case::new("old");
        assert_eq!(policy.probe(&contact("C6", "web", None), &[live]).len(), 1);
    }

    #[test]
    fn the_defined_hooks_are_listed() {
        let policy = Policy::compile(
            "fn channel(contact, attempt) { \"email\" }\nfn business_days_only() { true }",
        )
        .expect("compiles");
        assert_eq!(
            policy.defined_hooks(),
            [Hook::Channel, Hook::BusinessDaysOnly]
        );
    }
}
