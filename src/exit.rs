//! How a command ended, and the one function that turns that into an exit
//! status (the `env(1)` convention, so `envcloak run -- CMD` can stand in for
//! `CMD` in scripts). [`TABLE`] is the documented table; a test checks that
//! docs/commands.md shows the same rows.

use std::process::ExitCode;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything went well.
    Success,
    /// `check` found a required secret missing or failed; `scan` found a
    /// secret value or a plaintext dotenv definition; `rekey --check` found
    /// a file out of date; the git merge driver left a conflict.
    Found,
    /// envcloak failed before starting the command: bad config or
    /// arguments, a secret that could not be resolved.
    Failed,
    /// The command was found but cannot be executed.
    CannotExecute,
    /// The command was not found.
    CommandNotFound,
    /// The command (or envcloak, before starting it) ended by this signal.
    Signal(i32),
    /// The command exited with this status.
    Child(u8),
}

impl Outcome {
    /// The exit status of this outcome.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Found => 1,
            Outcome::Failed => 125,
            Outcome::CannotExecute => 126,
            Outcome::CommandNotFound => 127,
            Outcome::Signal(signal) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
            Outcome::Child(status) => status,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

/// The exit status table as the documentation shows it: status, meaning.
pub const TABLE: &[(&str, &str)] = &[
    ("0", "success (the command exited 0)"),
    ("*N*", "the command exited with status *N*"),
    ("1", "`check`: a required secret is missing or failed; `scan`: a secret was found; `rekey --check`: a file is not encrypted to the current recipients; `git-merge`: a conflict"),
    ("125", "envcloak failed before starting the command: bad config or arguments, a secret could not be resolved"),
    ("126", "the command was found but cannot be executed (not executable, not a program)"),
    ("127", "the command was not found"),
    ("128+*N*", "the command died of signal *N* (e.g. 143 for SIGTERM, 130 for SIGINT)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_outcome_code() {
        let shown: Vec<&str> = TABLE.iter().map(|(status, _)| *status).collect();
        for outcome in
            [Outcome::Success, Outcome::Found, Outcome::Failed, Outcome::CannotExecute, Outcome::CommandNotFound]
        {
            assert!(shown.contains(&outcome.code().to_string().as_str()), "{outcome:?} is not in the table");
        }
        assert_eq!(Outcome::Signal(15).code(), 143);
        assert_eq!(Outcome::Child(3).code(), 3);
    }
}
