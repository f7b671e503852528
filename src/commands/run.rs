//! `envcloak run`: resolve, build the environment, exec or supervise.

mod reporting;

use std::sync::{mpsc, Arc};
use std::time::Instant;

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::inject::{self, EnvOptions};
use crate::mask::masker_for;
use crate::refresh::{self, DigestKey, Generation, Refresher, Watching};
use crate::supervise::{self, Child, SpawnHooks};
use crate::supervision::{OnChange, SupervisionKeys};
use reporting::Reporting;

use super::Context;

/// Runs the command with the resolved secrets; with `--audit-log` or
/// `--metrics-file`, reports the run once it is over.
pub fn run(context: &Context, args: RunArgs) -> Result<Outcome, CliError> {
    let command = args.command[0].to_string_lossy().into_owned();
    let reporting =
        Reporting::open(args.audit_log.as_deref(), args.metrics_file.clone(), command, context.profile_flag.clone())?;
    let result = start(context, &args, &reporting);
    if reporting.active {
        reporting.ended(&result);
    }
    result
}

/// Resolves, then execs or supervises the command; supervises whenever
/// something must happen after it starts (masking, secret files, a report,
/// leases to keep and revoke, secrets to watch).
fn start(context: &Context, args: &RunArgs, reporting: &Reporting) -> Result<Outcome, CliError> {
    let flags = SupervisionKeys {
        watch: args.watch.map(Some),
        on_change: args.on_change,
        stop_signal: args.stop_signal,
        stop_grace: args.stop_grace,
    };
    // With --watch, the sources are stamped before they are read: a change
    // made while the command starts is then seen by the first poll. A run
    // that follows nothing makes no digest key.
    let (mut key, mut stamps) = (None, None);
    let began = Instant::now();
    let super::ResolvedRun { plan, resolution, backends, leases } =
        context.resolve_for(&args.mappings, args.clean_env, &args.keep, &mut |plan, backends| {
            if plan.supervision.overridden_by(flags).settle().watch.is_some() {
                key = DigestKey::random().ok().map(Arc::new);
                stamps = key.as_ref().and_then(|key| refresh::stamps(plan, backends, args.mappings.timeout, key));
            }
        })?;
    if reporting.active {
        reporting.resolved(&plan, &resolution, began.elapsed());
    }
    let program_name = args.command[0].to_string_lossy().into_owned();
    if resolution.has_required_failure() {
        return Err(super::failures_error(&plan, &resolution, &format!("not starting {program_name}")));
    }
    super::warn_skipped(&plan, &resolution);
    let supervision = plan.supervision.overridden_by(flags).settle();
    let options = EnvOptions {
        passthrough: &backends.passthrough,
        no_override: args.no_override,
        replaceable_files: matches!(supervision.on_change, OnChange::Signal(_)),
    };
    let env = inject::build_env(&resolution.vars, &options)?;
    let program = inject::find_program(&args.command[0])?;
    let argv = inject::argv(&args.command)?;
    let mask = args.mask || (!args.no_mask && crate::env_flag::in_ci());
    crate::diag::note!(
        "{} secret(s) for {program_name}; {}",
        resolution.vars.len(),
        match (mask, reporting.active, &leases, supervision.watch) {
            (true, ..) => "supervising to mask output".to_owned(),
            (false, true, ..) => "supervising to report the exit status".to_owned(),
            (false, false, _, Some(interval)) =>
                format!("supervising to watch the secrets every {} s", interval.as_secs_f64()),
            (false, false, Some(_), None) =>
                "supervising to keep the leases of dynamic secrets and revoke them when it ends".to_owned(),
            (false, false, None, None) => "exec".to_owned(),
        }
    );
    let follow = supervision.watch.is_some() || leases.is_some();
    if !mask && !reporting.active && !follow && env.files.survive_exec() {
        drop(resolution);
        context.core_limit.restore_for_child();
        let error = inject::exec(&program, &argv, &env.entries);
        context.core_limit.disable_again();
        return Err(error);
    }
    let masker = mask.then(|| masker_for(&resolution.vars));
    // The first command's secret files and leases: released once it has
    // ended (replaced by a restart, or at the end of the run).
    let generation = Generation::new(env.files, leases, reporting.reporter());
    let (changes, changed) = mpsc::channel();
    let refresher = if follow {
        let key = match key {
            Some(key) => key,
            None => Arc::new(DigestKey::random().map_err(|e| CliError::new(format!("cannot read random bytes: {e}")))?),
        };
        let digests = key.of_env(&resolution.vars);
        let watching = Watching {
            plan,
            backends,
            timeout: args.mappings.timeout,
            supervision,
            mask,
            no_override: args.no_override,
            key,
            digests,
            generation: generation.clone(),
            stamps,
            report: reporting.reporter(),
        };
        Some(Refresher::start(watching, changes)?)
    } else {
        drop(changes);
        None
    };
    if reporting.active {
        reporting.started()?;
    }
    let child = Child { program: &program, argv, env: env.entries, masker, keep: Box::new(generation) };
    let core_limit = &context.core_limit;
    let hooks = SpawnHooks { before: &|| core_limit.restore_for_child(), after: &|| core_limit.disable_again() };
    // The child has its copies now; envcloak's own are wiped.
    let status = supervise::run(
        child,
        &hooks,
        move || drop(resolution),
        refresher.is_some().then_some((changed, supervision.stopping)),
    );
    if let Some(refresher) = refresher {
        refresher.stop();
    }
    status
}
