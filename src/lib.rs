//! envcloak as a library: the config file, the plan, resolution, injection
//! and the exit codes, used by the `envcloak` binary, its tests and the fuzz
//! targets. The backends themselves live in `envcloak-providers`.
//!
//! The command line (`cli`), the commands behind it (`commands`) and the
//! secret scanner (`scan`) need the `cli` feature (on by default), which the
//! binary requires; without it the library builds without clap and the
//! scanner's folder walker.

pub mod atomic_file;
pub mod audit;
pub mod backends;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "cli")]
pub mod commands;
pub mod config;
pub mod diag;
pub mod dotenv_edit;
pub mod duration;
pub mod env_flag;
pub mod error;
pub mod exit;
pub mod inject;
pub mod leases;
pub mod mask;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod private_dir;
pub mod progress;
pub mod random;
pub mod recipients;
pub mod refresh;
pub mod resolve;
#[cfg(feature = "cli")]
pub mod scan;
pub mod secret_file;
pub mod signals;
pub mod supervise;
pub mod supervision;
pub mod template;
pub mod trust;
pub mod tty;
pub mod utc;
