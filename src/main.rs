//! envcloak: run a command with secrets from Vault/OpenBao, AWS Secrets
//! Manager or age-encrypted files as environment variables.

use std::process::ExitCode;

use clap::Parser;
use envcloak::exit::Outcome;
use envcloak::{cli, commands, diag, memory};

/// Every heap block is wiped when freed, so no freed copy of a secret or a
/// token outlives its use (see [`memory::ZeroizingAllocator`]).
#[global_allocator]
static ALLOCATOR: memory::ZeroizingAllocator = memory::ZeroizingAllocator;

fn main() -> ExitCode {
    let core_limit = memory::harden_process();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let status = if e.use_stderr() { Outcome::Failed } else { Outcome::Success };
            let _ = e.print();
            return status.into();
        }
    };
    diag::init(cli.quiet, cli.verbose);
    match commands::dispatch(cli, core_limit) {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("{error}");
            error.status.into()
        }
    }
}
