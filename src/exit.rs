//! The exit-code table, as documented in the README (the `env(1)` convention).

use std::process::ExitCode;

/// Everything went well (or the child exited 0).
pub const SUCCESS: u8 = 0;
/// `check` found a required secret that is missing or failed.
pub const CHECK_FAILED: u8 = 1;
/// `scan` found a secret value or a plaintext dotenv definition.
pub const FOUND: u8 = 1;
/// envcloak failed before starting the child: bad config, unresolvable secret.
pub const ENVCLOAK_FAILED: u8 = 125;
/// The command was found but could not be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;
/// Added to the signal number when the child died of a signal.
pub const SIGNAL_BASE: u8 = 128;

/// Converts a table entry into the process exit code.
pub fn code(status: u8) -> ExitCode {
    ExitCode::from(status)
}
