//! The subcommands, and what they share: finding the config and resolving
//! the selected profile.

mod age_tools;
mod check;
mod docs;
mod edit;
mod export;
mod git;
mod rekey;
mod run;
mod scan;
mod secrets_file;
mod set;
mod trust;

use std::path::{Path, PathBuf};

use envcloak_providers::age_file::AgeConfig;
use envcloak_providers::{Backend, Destination};

pub use crate::backends::prompt;
use crate::backends::Backends;
use crate::cli::{Cli, Command, MappingArgs};
use crate::config::Config;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::inject::Passthrough;
use crate::leases::LeaseKeeper;
use crate::memory::CoreLimit;
use crate::plan::{self, Plan};
use crate::resolve::{self, Resolution};

/// What every command starts from.
pub struct Context {
    /// The parsed global options.
    pub config_flag: Option<PathBuf>,
    /// `-p`.
    pub profile_flag: Option<String>,
    /// The current folder.
    pub cwd: PathBuf,
    /// The core-dump limit to restore for a child.
    pub core_limit: CoreLimit,
}

/// A resolved run: the plan, its outcome, and the backends' settings.
pub struct ResolvedRun {
    /// What was asked for.
    pub plan: Plan,
    /// What came back.
    pub resolution: Resolution,
    /// The backend settings (for the bootstrap credentials to withhold).
    pub backends: Backends,
    /// Leases of dynamic credentials, revoked when this is released or
    /// dropped (after the command has ended).
    pub leases: Option<LeaseKeeper>,
}

impl ResolvedRun {
    /// Where the network backends of this run connected, and why there.
    pub fn destinations(&self) -> Vec<(Backend, Destination)> {
        self.backends.destinations(&self.plan.backends())
    }
}

/// Runs the chosen command; returns the exit status.
pub fn dispatch(cli: Cli, core_limit: CoreLimit) -> Result<Outcome, CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::new(format!("cannot read the current folder: {e}")))?;
    let context = Context { config_flag: cli.config, profile_flag: cli.profile, cwd, core_limit };
    match cli.command {
        Command::Run(args) => run::run(&context, args),
        Command::Check(args) => check::check(&context, &args),
        Command::Export(args) => export::export(&context, &args),
        Command::Keygen(args) => age_tools::keygen(&args),
        Command::Encrypt(args) => age_tools::encrypt(&context, &args),
        Command::Decrypt(args) => age_tools::decrypt(&context, &args),
        Command::Edit(args) => edit::edit(&context, &args),
        Command::Set(args) => set::set(&context, &args),
        Command::Unset(args) => set::unset(&context, &args),
        Command::Get(args) => set::get(&context, &args),
        Command::Rekey(args) => rekey::rekey(&context, &args),
        Command::GitSetup(args) => git::setup(&args),
        Command::GitTextconv(args) => git::textconv(&context, &args),
        Command::GitMerge(args) => git::merge(&context, &args),
        Command::Scan(args) => scan::scan(&context, &args),
        Command::Trust(args) => trust::trust(&context, &args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
    }
}

impl Context {
    /// The config file, if there is one.
    pub fn config(&self) -> Result<Option<Config>, CliError> {
        Config::discover(self.config_flag.as_deref(), &self.cwd, crate::trust::check_owner)
    }

    /// The backends' settings from the config file (their variables' without one).
    pub fn backends(&self) -> Result<Backends, CliError> {
        Ok(self.config()?.map_or_else(Backends::defaults, |c| c.backends))
    }

    /// Plans and resolves the selected profile plus `-e`/`-i`, for a
    /// command that would get all of envcloak's variables but the withheld
    /// credentials.
    pub fn resolve(&self, mappings: &MappingArgs) -> Result<ResolvedRun, CliError> {
        self.resolve_for(mappings, false, &[], &mut |_, _| {})
    }

    /// [`Context::resolve`] for a command that gets only `keep` of
    /// envcloak's variables when `clean` (`run --clean-env --keep`);
    /// `planned` sees the plan and the backends before anything is fetched.
    pub fn resolve_for(
        &self,
        mappings: &MappingArgs,
        clean: bool,
        keep: &[String],
        planned: &mut dyn FnMut(&Plan, &Backends),
    ) -> Result<ResolvedRun, CliError> {
        let config = self.config()?;
        let plan = plan::build(config.as_ref(), self.profile_flag.as_deref(), mappings.ad_hoc(), &self.cwd)?;
        if let Some(config) = &config {
            let reasons = config.backends.trust_reasons(&plan.backends());
            crate::trust::require(&config.path, config.text(), &reasons, &crate::trust::project_root(&self.cwd))?;
        }
        let mut backends = config.map_or_else(Backends::defaults, |c| c.backends);
        backends.passthrough = Passthrough { clean, keep: keep.to_vec(), withhold: backends.bootstrap_credentials() };
        crate::diag::note!(
            "profile {}: {} mapping(s)",
            plan.profile.as_deref().unwrap_or("(none)"),
            plan.mappings.len()
        );
        planned(&plan, &backends);
        let resolved = resolve::resolve_blocking(&plan, &backends, mappings.timeout, resolve::Interrupt::Signals);
        crate::tty::restore_terminal();
        let (resolution, leases) = resolved?;
        if resolution.vars.is_empty() && !resolution.has_required_failure() && !mappings.allow_empty {
            return Err(CliError::new(format!(
                "profile {} resolved to no variable at all: its sources are empty",
                plan.profile.as_deref().unwrap_or("(none)")
            ))
            .hint("an emptied secrets file is usually a mistake (check it with `envcloak decrypt`); pass --allow-empty if none is meant"));
        }
        Ok(ResolvedRun { plan, resolution, backends, leases })
    }
}

/// The `[age]` settings of the config file (defaults without one).
pub fn age_settings(context: &Context) -> Result<AgeConfig, CliError> {
    Ok(context.backends()?.settings::<AgeConfig>().cloned().unwrap_or_default())
}

/// The error for a resolution with failed required secrets: one line per
/// failure (variable, reference, reason), then the distinct hints.
pub fn failures_error(plan: &Plan, resolution: &Resolution, what: &str) -> CliError {
    let required: Vec<_> = resolution.failures.iter().filter(|f| !f.optional).collect();
    let mut details = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for failure in &required {
        let reference = plan.mappings[failure.mapping].shown();
        details.push(format!("{} ({reference}): {}", failure.name, failure.error.reason));
        if let Some(hint) = &failure.error.hint {
            if !hints.contains(hint) {
                hints.push(hint.clone());
            }
        }
    }
    details.extend(hints.iter().map(|h| format!("hint: {h}")));
    let count = required.len();
    CliError::new(format!("{what}: {count} secret{} could not be resolved", if count == 1 { "" } else { "s" }))
        .details(details)
}

/// Warns about optional secrets that were skipped.
pub fn warn_skipped(plan: &Plan, resolution: &Resolution) {
    for failure in resolution.failures.iter().filter(|f| f.optional) {
        let reference = plan.mappings[failure.mapping].shown();
        crate::diag::warning!("optional {} ({reference}) skipped: {}", failure.name, failure.error.reason);
    }
}

/// Reads a file or stdin.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    match path {
        Some(path) => std::fs::read(path).map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display()))),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| CliError::new(format!("cannot read stdin: {e}")))?;
            Ok(bytes)
        }
    }
}

/// Writes a report (never a value) to stdout; a reader that went away
/// (`| head`) is not an error.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}
