//! envcloak as a library: the config file, the plan, resolution, injection
//! and the exit codes, used by the `envcloak` binary, its tests and the fuzz
//! targets. The backends themselves live in `envcloak-providers`.

pub mod atomic_file;
pub mod audit;
pub mod backends;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod dotenv_edit;
pub mod duration;
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
pub mod scan;
pub mod secret_file;
pub mod signals;
pub mod supervise;
pub mod supervision;
pub mod template;
pub mod trust;
pub mod tty;
pub mod utc;
