//! `envcloak run`: resolve, build the environment, exec or supervise.

use std::sync::Arc;
use std::time::Instant;

use crate::audit::{AuditLog, RunReport};
use crate::cli::RunArgs;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::inject::{self, EnvOptions};
use crate::mask::{masked_forms, Masker, MIN_MASKED_LEN};
use crate::metrics;
use crate::supervise::{self, Child};

use super::Context;

/// Runs the command with the resolved secrets; with `--audit-log` or
/// `--metrics-file`, reports the run once it is over.
pub fn run(context: &Context, args: RunArgs) -> Result<Outcome, CliError> {
    // A run that cannot be audited does not start.
    let mut audit = args.audit_log.as_deref().map(AuditLog::open).transpose()?;
    let reporting = audit.is_some() || args.metrics_file.is_some();
    let mut report = RunReport::start(args.command[0].to_string_lossy().into_owned(), context.profile_flag.clone());
    let result = start(context, &args, reporting.then_some(&mut report), audit.as_mut());
    if reporting {
        let (status, error) = match &result {
            Ok(outcome) => (outcome.code(), None),
            Err(e) => (e.status.code(), Some(e)),
        };
        if let Some(audit) = &mut audit {
            if let Err(e) = audit.append(&report.audit_record(status, error)) {
                crate::diag::warning!("{}", e.message);
            }
        }
        if let Some(path) = &args.metrics_file {
            if let Err(e) = metrics::write(path, &metrics::render(&report, status)) {
                crate::diag::warning!("{}", e.message);
            }
        }
    }
    result
}

/// Resolves, then execs or supervises the command; supervises whenever
/// something must happen after it starts (masking, secret files, a report,
/// leases to revoke).
/// With an audit log, a record is appended as the command starts (so a
/// killed envcloak still leaves one), and `run` appends another at the end.
fn start(
    context: &Context,
    args: &RunArgs,
    report: Option<&mut RunReport>,
    audit: Option<&mut AuditLog>,
) -> Result<Outcome, CliError> {
    let began = Instant::now();
    let super::ResolvedRun { plan, resolution, backends, leases } =
        context.resolve_for(&args.mappings, args.clean_env, &args.keep)?;
    let reporting = report.is_some();
    let start_record = report.map(|report| {
        report.resolved(&plan, &resolution, began.elapsed());
        report.start_record()
    });
    let program_name = args.command[0].to_string_lossy().into_owned();
    if resolution.has_required_failure() {
        return Err(super::failures_error(&plan, &resolution, &format!("not starting {program_name}")));
    }
    super::warn_skipped(&plan, &resolution);
    for var in &resolution.vars {
        crate::memory::lock(var.value.expose().as_bytes());
    }
    let options = EnvOptions { passthrough: &backends.passthrough, no_override: args.no_override };
    let env = inject::build_env(&resolution.vars, &options)?;
    let program = inject::find_program(&args.command[0])?;
    let argv = inject::argv(&args.command)?;

    let mask = args.mask || (!args.no_mask && crate::env_flag::in_ci());
    crate::diag::note!(
        "{} secret(s) for {program_name}; {}",
        resolution.vars.len(),
        match (mask, reporting, &leases) {
            (true, _, _) => "supervising to mask output",
            (false, true, _) => "supervising to report the exit status",
            (false, false, Some(_)) => "supervising to revoke the leases of dynamic secrets when it ends",
            (false, false, None) => "exec",
        }
    );
    if !mask && !reporting && leases.is_none() && env.files.survive_exec() {
        drop(resolution);
        context.core_limit.restore_for_child();
        let error = inject::exec(&program, &argv, &env.entries);
        context.core_limit.disable_again();
        return Err(error);
    }
    let masker = mask.then(|| {
        // Each value, its lines, and its encoded forms (base64, URL, JSON).
        // A composed value's parts count as values of their own.
        let values = resolution.vars.iter().flat_map(|v| std::iter::once(&v.value).chain(&v.parts));
        let forms: Vec<_> = values.flat_map(|value| masked_forms(value.expose(), MIN_MASKED_LEN)).collect();
        let patterns: Vec<&[u8]> = forms.iter().map(|f| f.as_bytes()).collect();
        Arc::new(Masker::new(&patterns))
    });
    if let (Some(audit), Some(record)) = (audit, &start_record) {
        audit.append(record)?;
    }
    let child = Child { program: &program, argv, env: env.entries, masker };
    let files = env.files;
    let core_limit = &context.core_limit;
    let status = supervise::run(
        child,
        || core_limit.restore_for_child(),
        move || {
            core_limit.disable_again();
            // The child has its copies now; envcloak's own are wiped.
            drop(resolution);
        },
    );
    drop(files);
    // The command has ended: its dynamic credentials go with it.
    if let Some(leases) = leases {
        leases.release();
    }
    status
}
