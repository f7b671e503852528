//! The error a command ends with: what went wrong, the details, what to do
//! next, and the exit code. Messages name variables and references, never
//! values.

use std::fmt;

use crate::exit::Outcome;

/// A failure reported to the user.
#[derive(Debug)]
pub struct CliError {
    /// One sentence: what went wrong.
    pub message: String,
    /// One line per problem, when there are several.
    pub details: Vec<String>,
    /// What to do next.
    pub hint: Option<String>,
    /// The exit status.
    pub status: Outcome,
}

impl CliError {
    /// A failure before the child started (exit 125).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), details: Vec::new(), hint: None, status: Outcome::Failed }
    }

    /// Adds the fix to suggest.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds an optional fix to suggest.
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint.or(self.hint);
        self
    }

    /// Adds one line per problem.
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// Uses another exit status.
    pub fn status(mut self, status: Outcome) -> Self {
        self.status = status;
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "envcloak: error: {}", printable(&self.message))?;
        for detail in &self.details {
            write!(f, "\n  {}", printable(detail))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", printable(hint))?;
        }
        Ok(())
    }
}

impl From<envcloak_providers::FetchError> for CliError {
    fn from(e: envcloak_providers::FetchError) -> Self {
        CliError::new(e.reason).maybe_hint(e.hint)
    }
}

/// `text` with control characters (NUL, ESC, line breaks…) escaped as
/// `\u{1b}`: names and references in messages can come from files anyone
/// may craft (a decrypted document, a cloned repository's config), and must
/// not send escape sequences to the terminal or split a message's lines.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_messages_are_escaped() {
        let error = CliError::new("`A\u{1b}[31mB` is not a valid variable name")
            .details(vec!["N\0UL".into()])
            .hint("line\nbreak");
        assert_eq!(
            error.to_string(),
            "envcloak: error: `A\\u{1b}[31mB` is not a valid variable name\n  N\\u{0}UL\n  hint: line\\nbreak"
        );
    }
}
