//! envcloak: run a command with secrets from Vault/OpenBao, AWS Secrets
//! Manager or age-encrypted files as environment variables.

mod atomic_file;
mod audit;
mod backends;
mod cli;
mod commands;
mod config;
mod diag;
mod error;
mod exit;
mod inject;
mod mask;
mod memory;
mod metrics;
mod plan;
mod private_dir;
mod progress;
mod random;
mod resolve;
mod scan;
mod secret_file;
mod signals;
mod supervise;
mod trust;
mod tty;
mod utc;

use std::process::ExitCode;

use clap::Parser;

/// Every heap block is wiped when freed, so no freed copy of a secret or a
/// token outlives its use (see [`memory::ZeroizingAllocator`]).
#[global_allocator]
static ALLOCATOR: memory::ZeroizingAllocator = memory::ZeroizingAllocator;

fn main() -> ExitCode {
    let core_limit = memory::harden_process();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let status = if e.use_stderr() { exit::ENVCLOAK_FAILED } else { exit::SUCCESS };
            let _ = e.print();
            return exit::code(status);
        }
    };
    diag::init(cli.quiet, cli.verbose);
    match commands::dispatch(cli, core_limit) {
        Ok(status) => exit::code(status),
        Err(error) => {
            eprintln!("{error}");
            exit::code(error.status)
        }
    }
}
