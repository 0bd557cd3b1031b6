//! Where a policy's error is, and what it says in plain words: the place of
//! a limit error that rhai loses, the hook contract a value broke, and the
//! names an error message may suggest.

use rhai::{Dynamic, EvalAltResult, Position, Scope};

use super::{Defined, Policy};
use crate::hooks::Hook;
use crate::model::Diagnostic;
use crate::plain::{self, Names};

impl Policy {
    /// rhai replaces the place of a limit error (too many operations, stack
    /// overflow, data too large) with the place of the outermost call, which for
    /// a hook is nowhere. Only on that error path, run the hook's body once more as
    /// top-level code at its own place in the source, where rhai keeps the place.
    pub(super) fn locate(&self, hook: Hook, args: &[Dynamic]) -> Option<Box<EvalAltResult>> {
        let at = self.defined[index(hook)]?;
        let source = unwrap_body(&self.source, at)?;
        let meta = self.ast.iter_functions().find(|f| f.name == hook.name())?;
        let mut scope = Scope::new();
        for (name, value) in meta.params.iter().zip(args) {
            scope.push_dynamic(name.to_string(), value.clone());
        }
        let ast = self.engine.compile_with_scope(&scope, source).ok()?;
        let err = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            .err()?;
        (!err.position().is_none()).then_some(err)
    }

    pub(super) fn contract_error(&self, hook: Hook, mismatch: &str) -> Diagnostic {
        let at = self.defined[index(hook)].unwrap_or_default();
        Diagnostic::error(
            at.line,
            at.column,
            format!(
                "hook {} {}, but {mismatch}",
                hook.signature(),
                hook.contract()
            ),
        )
    }

    pub(super) fn eval_error(&self, hook: Hook, err: &EvalAltResult) -> Diagnostic {
        let inner = err.unwrap_inner();
        let (line, column) = match place(inner.position()) {
            (0, _) => {
                let at = self.defined[index(hook)].unwrap_or_default();
                (at.line, at.column)
            }
            known => known,
        };
        // Which of the policy's own functions the error happened in, if not
        // in the hook itself.
        let mut within = Vec::new();
        let mut outer = err;
        while let EvalAltResult::ErrorInFunctionCall(name, _, next, _) = outer {
            if name != hook.name() && !within.contains(name) {
                within.push(name.clone());
            }
            outer = next;
        }
        let place = match within.as_slice() {
            [] => format!("in hook `{}`", hook.name()),
            names => format!(
                "in hook `{}`, in function `{}`",
                hook.name(),
                names.join("` → `")
            ),
        };
        let names = self.names.get_or_init(|| self.gather_names());
        Diagnostic::error(
            line,
            column,
            format!("{place}: {}", plain::runtime(inner, names)),
        )
    }

    /// The functions and variables a suggestion may name.
    pub(super) fn gather_names(&self) -> Names {
        let is_name = |n: &str| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_alphanumeric() || c == '_')
        };
        let mut functions: Vec<String> = self.engine.collect_fn_metadata(
            None,
            |info| Some(info.metadata.name.to_string()),
            true,
        );
        functions.retain(|n| is_name(n));
        functions.sort();
        functions.dedup();
        Names {
            functions,
            scripted: self
                .ast
                .iter_functions()
                .map(|f| (f.name.to_owned(), f.params.len()))
                .collect(),
            variables: Names::declared_in(&self.source),
        }
    }
}

pub(super) fn index(hook: Hook) -> usize {
    Hook::ALL.iter().position(|h| *h == hook).unwrap_or(0)
}

pub(super) fn place(pos: Position) -> (u32, u32) {
    let n = |v: Option<usize>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    (n(pos.line()), n(pos.position()))
}

/// The place of `fn NAME` in the source: rhai's function metadata has no position.
pub(super) fn find_fn(source: &str, name: &str) -> (u32, u32) {
    for (number, line) in source.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(i) = rest.find("fn ") {
            let before_ok = i == 0 || !is_ident(rest[..i].chars().next_back().unwrap_or(' '));
            let after = rest[i + 3..].trim_start();
            if before_ok && after.starts_with(name) && !after[name.len()..].starts_with(is_ident) {
                let column = line[..offset + i].chars().count() + 1;
                return (to_u32(number + 1), to_u32(column));
            }
            offset += i + 3;
            rest = &rest[i + 3..];
        }
    }
    (0, 0)
}

/// The source with the header `fn name(params)` of the function defined at `at`
/// blanked out, so that its body becomes a top-level block at the same place.
pub(super) fn unwrap_body(source: &str, at: Defined) -> Option<String> {
    let line_start: usize = source
        .split_inclusive('\n')
        .take(at.line.checked_sub(1)? as usize)
        .map(str::len)
        .sum();
    let start = line_start
        + source[line_start..]
            .char_indices()
            .nth(at.column.checked_sub(1)? as usize)?
            .0;
    let brace = start + source[start..].find('{')?;
    let mut out = String::with_capacity(source.len());
    out.push_str(&source[..start]);
    out.extend(
        source[start..brace]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' }),
    );
    out.push_str(&source[brace..]);
    Some(out)
}

pub(super) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the source calls `name(` anywhere other than where it defines it.
pub(super) fn is_called(source: &str, name: &str) -> bool {
    let mut count = 0;
    let mut rest = source;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().next_back().unwrap_or(' ');
        let after = rest[i + name.len()..].trim_start();
        if !is_ident(before) && after.starts_with('(') {
            count += 1;
        }
        rest = &rest[i + name.len()..];
    }
    count > 1
}
