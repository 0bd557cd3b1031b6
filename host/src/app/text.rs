//! Texts a person writes that other people read later: who decided and why,
//! a key's name, a policy version's author. They are shown in tables, the
//! audit log and evidence, so each is one line of a sensible length, without
//! control characters (an escape sequence would otherwise reach the
//! terminal of whoever reads it).

/// Who did something (`--by`, `by`, an author).
pub const MAX_WHO: usize = 200;
/// Why (`--reason`, `reason`, a message).
pub const MAX_WHY: usize = 1_000;

/// Why `text` cannot be `what`: blank, longer than `max` characters, or with
/// a control character.
pub fn one_line(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} contains a control character; write it on one line without escape sequences"
        ));
    }
    Ok(())
}

/// Who made a change and why (a text's, a template's), checked.
pub fn authored(author: &str, message: &str) -> Result<(), String> {
    one_line("author", author, MAX_WHO)?;
    one_line("message", message, MAX_WHY)
}

/// The texts a person wrote into an event, checked.
pub fn event(event: &crate::plugin::Event) -> Result<(), String> {
    use crate::plugin::Event;
    match event {
        Event::Approve { by } => one_line("by", by, MAX_WHO),
        Event::HoldOn { by, reason } | Event::HoldOff { by, reason } => {
            one_line("by", by, MAX_WHO)?;
            one_line("reason", reason, MAX_WHY)
        }
        Event::ManualDecision(decision) => {
            one_line("by", &decision.by, MAX_WHO)?;
            one_line("reason", &decision.reason, MAX_WHY)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_refuses_blank_long_and_control_text() {
        assert!(one_line("by", "Jana Kühn", MAX_WHO).is_ok());
        assert!(one_line("by", "  ", MAX_WHO).is_err());
        assert!(one_line("by", &"x".repeat(201), MAX_WHO).is_err());
        assert!(one_line("by", "\u{1b}[2J", MAX_WHO).is_err());
        assert!(one_line("reason", "a\nb", MAX_WHY).is_err());
    }
}
