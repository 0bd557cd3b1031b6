//! rhai's errors in plain language, with a suggestion where one is likely.
//!
//! The people who write policies are data-protection officers and admins, not
//! programmers. rhai's own messages name its internals ("a getter is not
//! registered for type 'Contact'"); here each common kind of error is said in
//! the policy's own terms (the contact, the case, a list, text), and a
//! misspelt field, function or variable gets a "did you mean" from the names
//! that really exist. The caller keeps line and column; these texts carry
//! neither. The unit tests below pin every text a user can read.

use rhai::{EvalAltResult, ParseErrorType};

use crate::script::{CASE_FIELDS, CONTACT_FIELDS, limits};

/// The names a suggestion may point to.
#[derive(Debug, Default, Clone)]
pub struct Names {
    /// Every function a policy can call (its own, klar's and rhai's), by name.
    pub functions: Vec<String>,
    /// The policy's own functions with their number of parameters.
    pub scripted: Vec<(String, usize)>,
    /// The variables and parameters the policy declares.
    pub variables: Vec<String>,
}

impl Names {
    /// The names declared in `source`: parameters and `let`/`const`/`for`
    /// variables. Read from the text, because a script that fails to parse
    /// has no syntax tree to ask.
    pub fn declared_in(source: &str) -> Vec<String> {
        let words = words(source);
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                Word::Ident("let" | "const" | "for") => {
                    if let Some(Word::Ident(name)) = words.get(i + 1) {
                        out.push((*name).to_owned());
                    }
                }
                Word::Ident("fn") => {
                    // fn NAME ( a , b ) — the parameters up to the closing ')'.
                    let mut j = i + 2;
                    if words.get(j) == Some(&Word::Punct('(')) {
                        j += 1;
                        while let Some(word) = words.get(j) {
                            match word {
                                Word::Ident(name) => out.push((*name).to_owned()),
                                Word::Punct(')') => break,
                                Word::Punct(_) => {}
                            }
                            j += 1;
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        out.sort();
        out.dedup();
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word<'a> {
    Ident(&'a str),
    Punct(char),
}

/// The identifiers and punctuation of a script, without comments and strings.
fn words(source: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c == '/' && chars.peek().is_some_and(|(_, n)| *n == '/') {
            for (_, n) in chars.by_ref() {
                if n == '\n' {
                    break;
                }
            }
        } else if c == '/' && chars.peek().is_some_and(|(_, n)| *n == '*') {
            let mut last = ' ';
            for (_, n) in chars.by_ref() {
                if last == '*' && n == '/' {
                    break;
                }
                last = n;
            }
        } else if c == '"' || c == '`' {
            let mut escaped = false;
            for (_, n) in chars.by_ref() {
                if n == c && !escaped {
                    break;
                }
                escaped = n == '\\' && !escaped;
            }
        } else if c.is_alphabetic() || c == '_' {
            let mut end = at + c.len_utf8();
            while let Some(&(i, n)) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                end = i + n.len_utf8();
                chars.next();
            }
            out.push(Word::Ident(&source[at..end]));
        } else if !c.is_whitespace() {
            out.push(Word::Punct(c));
        }
    }
    out
}

/// The number of single-character edits (insert, delete, replace) that turn
/// `a` into `b` (Levenshtein).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo:
/// one edit for short words, two for most, three for long ones.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let allowed = match word.chars().count() {
        0..=3 => 1,
        4..=9 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// How a rhai type name reads in a sentence.
fn kind(type_name: &str) -> String {
    match type_name.trim() {
        "i64" | "int" | "INT" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        "string"
        | "&str | ImmutableString | String"
        | "ImmutableString"
        | "String"
        | "&str"
        | "char" => "text".to_owned(),
        "()" => "nothing".to_owned(),
        "array" | "Array" => "a list".to_owned(),
        "map" | "Map" => "a map".to_owned(),
        "Contact" => "the contact".to_owned(),
        "Case" => "the case".to_owned(),
        "Fn" | "FnPtr" => "a function".to_owned(),
        "range" | "Range<i64>" | "RangeInclusive<i64>" => "a range".to_owned(),
        other => format!("a value of type {other}"),
    }
}

fn field_list(fields: &[&str]) -> String {
    fields.join(", ")
}

/// An unknown field of the contact or the case: the closest real field, or
/// the other one's field of that name, or the list of fields.
fn unknown_field(owner: &str, field: &str) -> String {
    let (own, other, other_name): (&[&str], &[&str], &str) = match owner {
        "Case" => (&CASE_FIELDS, &CONTACT_FIELDS, "contact"),
        _ => (&CONTACT_FIELDS, &CASE_FIELDS, "case"),
    };
    let me = if owner == "Case" { "case" } else { "contact" };
    if let Some(near) = closest(field, own.iter().copied()) {
        return format!("{me} has no field `{field}`; did you mean `{near}`?");
    }
    if other.contains(&field) {
        return format!(
            "{me} has no field `{field}`; it is a field of the {other_name}: `{other_name}.{field}`"
        );
    }
    let attr_hint = if owner == "Case" {
        String::new()
    } else {
        format!("; a column of the CRM is read with `contact.attr(\"{field}\")`")
    };
    format!(
        "{me} has no field `{field}`; its fields are {}{attr_hint}",
        field_list(own)
    )
}

/// `Unknown property 'P' - a getter is not registered for type 'T'`, and its
/// setter twin, as (property, type).
fn property_and_type(message: &str) -> Option<(&str, &str)> {
    let quoted = |s: &'_ str| -> Option<(usize, usize)> {
        let start = s.find('\'')? + 1;
        let len = s[start..].find('\'')?;
        Some((start, start + len))
    };
    let (ps, pe) = quoted(message)?;
    let rest = &message[pe + 1..];
    let type_at = rest.find("type '")? + "type ".len();
    let (ts, te) = quoted(&rest[type_at..])?;
    Some((&message[ps..pe], &rest[type_at + ts..type_at + te]))
}

/// The pieces of a call signature as rhai prints it: `name (T1, T2)`.
fn signature(sig: &str) -> (&str, Vec<&str>) {
    match sig.split_once(" (") {
        Some((name, rest)) => {
            let args = rest.strip_suffix(')').unwrap_or(rest);
            let args = if args.trim().is_empty() {
                Vec::new()
            } else {
                args.split(", ").collect()
            };
            (name.trim(), args)
        }
        None => (sig.trim(), Vec::new()),
    }
}

fn unknown_function(sig: &str, names: &Names) -> String {
    let (name, args) = signature(sig);
    let with = if args.is_empty() {
        "without arguments".to_owned()
    } else {
        let kinds: Vec<String> = args.iter().map(|a| kind(a)).collect();
        format!("with {}", kinds.join(", "))
    };
    if args.first().is_some_and(|a| a.trim() == "()") {
        return format!(
            "`{name}` was used on nothing: a value is missing here (a contact without an e-mail address or phone number has nothing there); check it first, e.g. `if contact.email != () {{ … }}`"
        );
    }
    if let Some((_, params)) = names.scripted.iter().find(|(n, _)| n == name) {
        return format!(
            "the function `{name}` takes {params} parameter(s), but is called with {}",
            args.len()
        );
    }
    if name == "attr" {
        return format!(
            "`attr` cannot be used {with}; write `contact.attr(\"column\")` with the CRM column's name as text"
        );
    }
    if names.functions.iter().any(|f| f == name) {
        return format!(
            "`{name}` cannot be used {with}; check the order and kind of its arguments"
        );
    }
    let scripted = names.scripted.iter().map(|(n, _)| n.as_str());
    let known = names.functions.iter().map(String::as_str);
    match closest(name, scripted.chain(known)) {
        Some(near) => format!("there is no function `{name}`; did you mean `{near}`?"),
        None => format!("there is no function `{name}` that can be used {with}"),
    }
}

fn unknown_variable(name: &str, names: &Names) -> String {
    match closest(name, names.variables.iter().map(String::as_str)) {
        Some(near) => format!("there is no variable `{name}`; did you mean `{near}`?"),
        None => format!(
            "there is no variable `{name}`; declare it first with `let {name} = …;`, or use a parameter of the hook"
        ),
    }
}

/// "Division by zero: 14 / 0" → "division by zero: 14 / 0".
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A run-time error of a hook, in plain words.
pub fn runtime(err: &EvalAltResult, names: &Names) -> String {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => runtime(inner, names),
        EvalAltResult::ErrorParsing(parse_err, _) => parse(parse_err, names),
        EvalAltResult::ErrorDotExpr(message, _) if message.starts_with("Unknown property") => {
            match property_and_type(message) {
                Some((field, owner @ ("Contact" | "Case"))) => unknown_field(owner, field),
                Some((field, "()")) => format!(
                    "`.{field}` was read from nothing: a value is missing here; check it first, e.g. `if x != () {{ … }}`"
                ),
                Some((field, other)) => format!("{} has no field `{field}`", kind(other)),
                None => lower_first(message),
            }
        }
        EvalAltResult::ErrorDotExpr(message, _) if message.starts_with("No writable property") => {
            match property_and_type(message) {
                Some((field, owner @ ("Contact" | "Case"))) => {
                    let me = if owner == "Case" { "case" } else { "contact" };
                    format!(
                        "a policy cannot change the {me}: `{me}.{field}` is read-only; put the value in a variable instead (`let {field} = …;`)"
                    )
                }
                Some((field, other)) => format!("`{field}` of {} cannot be changed", kind(other)),
                None => lower_first(message),
            }
        }
        EvalAltResult::ErrorPropertyNotFound(key, _) => format!(
            "the map has no key `{key}`; check the spelling, or read a CRM column with `contact.attr(\"{key}\")`, which is \"\" when the column is empty"
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => unknown_function(sig, names),
        EvalAltResult::ErrorVariableNotFound(name, _) => unknown_variable(name, names),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the policy ran too long and was stopped after {} operations; it probably loops without end: check the condition that ends the loop",
            limits::MAX_OPERATIONS
        ),
        EvalAltResult::ErrorStackOverflow(_) => format!(
            "functions called each other more than {} levels deep and were stopped; a function probably calls itself without end",
            limits::MAX_CALL_LEVELS
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => match what.as_str() {
            "Length of string" => format!(
                "a text grew longer than {} characters and was stopped",
                limits::MAX_STRING_SIZE
            ),
            w if w.starts_with("Size of array") => format!(
                "a list grew longer than {} entries and was stopped",
                limits::MAX_ARRAY_SIZE
            ),
            w if w.starts_with("Size of object map") => format!(
                "a map grew larger than {} keys and was stopped",
                limits::MAX_MAP_SIZE
            ),
            other => format!("{} grew too large and was stopped", lower_first(other)),
        },
        EvalAltResult::ErrorTooManyVariables(_) => format!(
            "the policy declares more than {} variables and was stopped",
            limits::MAX_VARIABLES
        ),
        EvalAltResult::ErrorMismatchDataType(expected, actual, _) => {
            match (expected.as_str(), actual.as_str()) {
                ("", actual) => format!("{} cannot be used here", kind(actual)),
                (expected, "") => format!("{} is needed here", kind(expected)),
                (expected, actual) => {
                    format!("{} is needed here, but this is {}", kind(expected), kind(actual))
                }
            }
        }
        EvalAltResult::ErrorArrayBounds(0, index, _) => {
            format!("the list is empty, so it has no entry [{index}]")
        }
        EvalAltResult::ErrorArrayBounds(len, index, _) => format!(
            "the list has {}, so it has no entry [{index}] (the first is [0])",
            count(*len, "entry", "entries")
        ),
        EvalAltResult::ErrorStringBounds(len, index, _) => format!(
            "the text has {}, so it has no character [{index}] (the first is [0])",
            count(*len, "character", "characters")
        ),
        EvalAltResult::ErrorIndexingType(what, _) => {
            let (on, with) = what.split_once(" [").unwrap_or((what.as_str(), ""));
            let with = with.trim_end_matches(']');
            match on {
                "Contact" | "Case" => {
                    let me = if on == "Case" { "case" } else { "contact" };
                    format!(
                        "the {me} cannot be read with […]; write `{me}.field` (e.g. `{me}.{}`){}",
                        if on == "Case" { "state" } else { "email" },
                        if on == "Case" {
                            ""
                        } else {
                            ", or `contact.attr(\"column\")` for a CRM column"
                        }
                    )
                }
                other if with.is_empty() => format!("{} cannot be read with […]", kind(other)),
                other => format!("{} cannot be read with [{}]", kind(other), kind(with)),
            }
        }
        EvalAltResult::ErrorFor(_) => {
            "`for` needs a list or a range to go through, e.g. `for days in [7, 14]` or `for i in 0..3`".to_owned()
        }
        EvalAltResult::ErrorArithmetic(message, _) => {
            match message.split_once(" overflow: ") {
                Some((_, expr)) => format!("a number became too large in `{expr}`"),
                None => match message.strip_prefix("Division by zero: ") {
                    Some(expr) => format!("division by zero in `{expr}`"),
                    None => lower_first(message),
                },
            }
        }
        EvalAltResult::ErrorRuntime(value, _) if value.is_unit() => {
            "the policy stopped itself with `throw`".to_owned()
        }
        EvalAltResult::ErrorRuntime(value, _) => {
            format!("the policy stopped itself with `throw`: {value}")
        }
        EvalAltResult::ErrorAssignmentToConstant(name, _) => {
            format!("`{name}` is a constant and cannot be changed; declare it with `let` instead")
        }
        other => lower_first(&without_position(&other.to_string())),
    }
}

/// A syntax error, in plain words where rhai's own are unclear.
pub fn parse(err: &ParseErrorType, names: &Names) -> String {
    match err {
        ParseErrorType::VariableUndefined(name) => unknown_variable(name, names),
        ParseErrorType::FnDuplicatedDefinition(name, params) => format!(
            "the function `{name}` with {params} parameter(s) is defined twice; delete or rename one of them"
        ),
        ParseErrorType::Reserved(word) => format!(
            "`{word}` is a reserved word of the policy language and cannot be used as a name; choose another"
        ),
        other => other.to_string(),
    }
}

/// rhai appends " (line L, position P)" to its messages; diagnostics carry the
/// place separately.
pub fn without_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    /// The first diagnostic of a policy that fails its check.
    fn first_error(source: &str) -> String {
        match Policy::compile(source) {
            Ok(p) => panic!("expected an error, got warnings {:?}", p.warnings()),
            Err(d) => d
                .iter()
                .find(|d| d.severity == crate::model::Severity::Error)
                .map(|d| d.message.clone())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_misspelt_contact_field_gets_a_suggestion() {
        assert_eq!(
            first_error(
                "fn channel(contact, attempt) { if contact.emial != () { \"email\" } else { \"letter\" } }"
            ),
            "in hook `channel`: contact has no field `emial`; did you mean `email`?"
        );
    }

    #[test]
    fn a_misspelt_case_field_gets_a_suggestion() {
        assert_eq!(
            first_error(
                "fn on_refusal(contact, case) { if case.stat == \"x\" { \"block\" } else { \"block\" } }"
            ),
            "in hook `on_refusal`: case has no field `stat`; did you mean `state`?"
        );
    }

    #[test]
    fn a_field_of_the_other_record_is_pointed_to() {
        assert_eq!(
            first_error(
                "fn on_no_response(contact, case) { #{ action: \"manual\", assign: case.owner } }"
            ),
            "in hook `on_no_response`: case has no field `owner`; it is a field of the contact: `contact.owner`"
        );
    }

    #[test]
    fn an_unknown_contact_field_lists_the_fields_and_attr() {
        assert_eq!(
            first_error("fn answer_days(contact) { contact.fair_name }"),
            "in hook `answer_days`: contact has no field `fair_name`; its fields are id, first_name, last_name, email, phone, owner, source, language, created_at, attributes; a column of the CRM is read with `contact.attr(\"fair_name\")`"
        );
    }

    #[test]
    fn the_contact_is_read_only() {
        assert_eq!(
            first_error("fn answer_days(contact) { contact.id = 3; 14 }"),
            "in hook `answer_days`: a policy cannot change the contact: `contact.id` is read-only; put the value in a variable instead (`let id = …;`)"
        );
    }

    #[test]
    fn a_misspelt_function_gets_a_suggestion() {
        assert_eq!(
            first_error("fn helper(c) { 14 }\nfn answer_days(contact) { helpr(contact) }"),
            "in hook `answer_days`: there is no function `helpr`; did you mean `helper`?"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { contact.source.to_uper(); 14 }"),
            "in hook `answer_days`: there is no function `to_uper`; did you mean `to_upper`?"
        );
    }

    #[test]
    fn a_function_with_the_wrong_arguments_says_so() {
        assert_eq!(
            first_error("fn answer_days(contact) { contact.attr(1) }"),
            "in hook `answer_days`: `attr` cannot be used with the contact, a number; write `contact.attr(\"column\")` with the CRM column's name as text"
        );
        assert_eq!(
            first_error("fn f(a, b) { 14 }\nfn answer_days(contact) { f(contact) }"),
            "in hook `answer_days`: the function `f` takes 2 parameter(s), but is called with 1"
        );
    }

    #[test]
    fn a_method_on_a_missing_value_says_what_is_missing() {
        let p = Policy::compile(
            "fn answer_days(contact) { if contact.phone.len() > 3 { 14 } else { 7 } }",
        );
        // The sample contact has a phone number, so the check passes; a
        // real contact without one gets this message.
        assert!(p.is_ok(), "{:?}", p.err());
        let names = Names::default();
        let err = EvalAltResult::ErrorFunctionNotFound("len (())".to_owned(), rhai::Position::NONE);
        assert_eq!(
            runtime(&err, &names),
            "`len` was used on nothing: a value is missing here (a contact without an e-mail address or phone number has nothing there); check it first, e.g. `if contact.email != () { … }`"
        );
    }

    #[test]
    fn an_endless_loop_says_the_policy_runs_too_long() {
        assert_eq!(
            first_error("fn answer_days(contact) {\n  let n = 0;\n  loop { n += 1; }\n}"),
            "in hook `answer_days`: the policy ran too long and was stopped after 50000 operations; it probably loops without end: check the condition that ends the loop"
        );
    }

    #[test]
    fn an_undeclared_variable_gets_a_suggestion() {
        assert_eq!(
            first_error("fn answer_days(contact) { let days = 14; dayz }"),
            "there is no variable `dayz`; did you mean `days`?"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { weeks * 7 }"),
            "there is no variable `weeks`; declare it first with `let weeks = …;`, or use a parameter of the hook"
        );
    }

    #[test]
    fn wrong_types_limits_and_bounds_read_plainly() {
        assert_eq!(
            first_error("fn answer_days(contact) { if contact.source { 14 } else { 3 } }"),
            "in hook `answer_days`: true or false is needed here, but this is text"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { let a = [1]; a[5] }"),
            "in hook `answer_days`: the list has 1 entry, so it has no entry [5] (the first is [0])"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { 14 / 0 }"),
            "in hook `answer_days`: division by zero in `14 / 0`"
        );
        assert_eq!(
            first_error("fn f(n) { f(n + 1) }\nfn answer_days(contact) { f(0) }"),
            "in hook `answer_days`: functions called each other more than 32 levels deep and were stopped; a function probably calls itself without end"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { let s = \"x\"; loop { s += s; } }"),
            "in hook `answer_days`: a text grew longer than 4096 characters and was stopped"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { contact[\"id\"] }"),
            "in hook `answer_days`: the contact cannot be read with […]; write `contact.field` (e.g. `contact.email`), or `contact.attr(\"column\")` for a CRM column"
        );
        assert_eq!(
            first_error("fn answer_days(contact) { let m = #{a: 1}; m.b }"),
            "in hook `answer_days`: the map has no key `b`; check the spelling, or read a CRM column with `contact.attr(\"b\")`, which is \"\" when the column is empty"
        );
    }

    #[test]
    fn a_throw_names_its_value() {
        let err = EvalAltResult::ErrorRuntime("no imports".into(), rhai::Position::NONE);
        assert_eq!(
            runtime(&err, &Names::default()),
            "the policy stopped itself with `throw`: no imports"
        );
    }

    #[test]
    fn declared_names_skip_comments_and_strings() {
        let names = Names::declared_in(
            "// let fake = 1\nfn channel(contact, attempt) {\n  let days = \"let quoted\";\n  for d in [1] {}\n  const LIMIT = 3;\n}",
        );
        assert_eq!(names, ["LIMIT", "attempt", "contact", "d", "days"]);
    }

    #[test]
    fn closest_allows_few_edits() {
        assert_eq!(closest("emial", ["email", "phone"]), Some("email"));
        assert_eq!(closest("Email", ["email"]), Some("email"));
        assert_eq!(closest("xyz", ["email"]), None);
        assert_eq!(closest("id", ["id"]), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("reminder_days", "reminder_day"), 1);
        assert_eq!(edit_distance("channel", "chanel"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}
