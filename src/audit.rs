//! The audit log (`run --audit-log PATH`, `ENVCLOAK_AUDIT_LOG`): JSON lines
//! (one as the command starts, one when the run ends), each appended with a
//! single `write` to a file opened with `O_APPEND`,
//! so lines from concurrent runs never interleave. A line names each secret
//! (variable, reference, backend, version) and never holds a value.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::error::CliError;
use crate::plan::Plan;
use crate::refresh::Event;
use crate::resolve::Resolution;

/// An audit log opened before anything is resolved: a run that cannot be
/// audited does not start its command.
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens (creating it with mode 0600) the log at `path` for appending:
    /// a symlink is not followed, an existing file's wider mode is narrowed
    /// to 0600, and a FIFO nobody reads is an error, not a wait (a FIFO or
    /// device with a reader is written to).
    pub fn open(path: &Path) -> Result<AuditLog, CliError> {
        let failed = |e: &dyn std::fmt::Display| {
            CliError::new(format!("cannot open the audit log {}: {e}", path.display()))
                .hint("check the folder exists and is writable, or change --audit-log / ENVCLOAK_AUDIT_LOG")
        };
        let special = std::fs::symlink_metadata(path).is_ok_and(|m| crate::atomic_file::is_special(&m.file_type()));
        let file = if special {
            crate::atomic_file::open_special(path).map_err(|e| failed(&e))?
        } else {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| failed(&e))?;
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| failed(&e))?;
            file
        };
        Ok(AuditLog { path: path.to_owned(), file })
    }

    /// Appends `record` as one line, in one `write` call.
    pub fn append(&mut self, record: &Value) -> Result<(), CliError> {
        let mut line = record.to_string();
        line.push('\n');
        let failed =
            |what: String| CliError::new(format!("cannot write the audit log {}: {what}", self.path.display()));
        match self.file.write(line.as_bytes()) {
            Ok(n) if n == line.len() => Ok(()),
            Ok(n) => Err(failed(format!("only {n} of {} bytes written", line.len()))),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// What a run did, for the audit log and the metrics file. Built from names,
/// references and versions only.
pub struct RunReport {
    started: SystemTime,
    /// The profile, if any.
    pub profile: Option<String>,
    /// `argv[0]` of the command.
    pub command: String,
    secrets: Vec<Value>,
    failures: Vec<Value>,
    /// Per backend: resolution time, secrets resolved.
    pub backends: Vec<BackendReport>,
    /// Per backend and reason: secrets that could not be resolved.
    pub failure_counts: Vec<(String, &'static str, usize)>,
    resolution: Option<Duration>,
    /// What refreshes did while the command ran.
    pub refresh: RefreshCounts,
}

/// What refreshes did while the command ran (`run --watch`, dynamic
/// credentials renewed by reading them again).
#[derive(Default)]
pub struct RefreshCounts {
    /// Refreshes that resolved the whole environment.
    pub refreshes: u64,
    /// Refreshes or polls that failed.
    pub failures: u64,
    /// Restarts of the command with new secrets.
    pub restarts: u64,
    /// Generations of credentials whose leases were revoked.
    pub revocations: u64,
    /// When the last refresh succeeded.
    pub last_refresh: Option<SystemTime>,
    /// When the first held lease ends unless renewed.
    pub credentials_expiry: Option<SystemTime>,
}

/// One backend's share of a run.
pub struct BackendReport {
    /// `age`, `vault` or `aws-sm`.
    pub backend: String,
    /// How long its batch took.
    pub took: Duration,
    /// Secrets it delivered.
    pub resolved: usize,
}

impl RunReport {
    /// A report for a run of `command` that starts now.
    pub fn start(command: String, profile: Option<String>) -> RunReport {
        RunReport {
            started: SystemTime::now(),
            profile,
            command,
            secrets: Vec::new(),
            failures: Vec::new(),
            backends: Vec::new(),
            failure_counts: Vec::new(),
            resolution: None,
            refresh: RefreshCounts::default(),
        }
    }

    /// When the run started, in seconds since the Unix epoch.
    pub fn started_unix(&self) -> f64 {
        self.started.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }

    /// Records what was resolved (names, references, backends, versions) and
    /// what failed (names, references, reasons).
    pub fn resolved(&mut self, plan: &Plan, resolution: &Resolution, took: Duration) {
        self.profile.clone_from(&plan.profile);
        self.resolution = Some(took);
        // Each mapping's reference as written and its backend's name.
        let source = |mapping: usize| {
            let mapping = &plan.mappings[mapping];
            (mapping.shown(), mapping.reference.source.backend.name())
        };
        for var in &resolution.vars {
            let (reference, backend) = source(var.mapping);
            self.secrets.push(json!({
                "name": var.name, "reference": reference, "backend": backend, "version": var.version,
            }));
        }
        for failure in &resolution.failures {
            let (reference, backend) = source(failure.mapping);
            let reason = failure.error.kind.label();
            match self.failure_counts.iter_mut().find(|(b, r, _)| b == backend && *r == reason) {
                Some((_, _, count)) => *count += 1,
                None => self.failure_counts.push((backend.to_owned(), reason, 1)),
            }
            self.failures.push(json!({
                "name": failure.name, "reference": reference, "backend": backend,
                "optional": failure.optional, "kind": reason, "reason": failure.error.reason,
            }));
        }
        for (backend, took) in &resolution.timings {
            let resolved = resolution
                .vars
                .iter()
                .filter(|v| plan.mappings[v.mapping].reference.source.backend == *backend)
                .count();
            self.backends.push(BackendReport { backend: backend.name().to_owned(), took: *took, resolved });
        }
    }

    /// The audit line written as the command starts: what `audit_record`
    /// says, with `event` `envcloak.start`, `outcome` `started` and no exit
    /// status yet.
    pub fn start_record(&self) -> Value {
        let mut record = self.common("envcloak.start");
        record.insert("outcome".into(), "started".into());
        record.into()
    }

    /// The audit line for a run that ended with `status`; `error` when
    /// envcloak itself failed (the command then did not run).
    pub fn audit_record(&self, status: u8, error: Option<&CliError>) -> Value {
        let mut record = self.common("envcloak.run");
        record.insert("outcome".into(), if error.is_some() { "not_started" } else { "ran" }.into());
        record.insert("exit_status".into(), status.into());
        record.insert("error".into(), error.map(|e| e.message.clone()).into());
        record.into()
    }

    /// Counts a refresher's event.
    pub fn count(&mut self, event: &Event) {
        let counts = &mut self.refresh;
        match event {
            Event::Refreshed { .. } => {
                counts.refreshes += 1;
                counts.last_refresh = Some(SystemTime::now());
            }
            Event::Failed { .. } => counts.failures += 1,
            Event::Restarted => counts.restarts += 1,
            Event::Revoked => counts.revocations += 1,
            Event::Leases { expiry } => counts.credentials_expiry = *expiry,
        }
    }

    /// The audit line of a refresher's event: when, which run, and what
    /// happened (names of variables, never values); renewals have none.
    pub fn event_record(&self, event: &Event) -> Option<Value> {
        let (name, details) = match event {
            Event::Refreshed { reason, changed, action } => (
                "envcloak.refresh",
                json!({ "outcome": "refreshed", "reason": reason.label(), "changed": changed, "action": action }),
            ),
            Event::Failed { reason, error, retry_in } => (
                "envcloak.refresh",
                json!({ "outcome": "failed", "reason": reason.label(), "error": error, "retry_in_s": retry_in.as_secs() }),
            ),
            Event::Restarted => ("envcloak.restart", json!({ "outcome": "restarted" })),
            Event::Revoked => ("envcloak.revoke", json!({ "outcome": "revoked" })),
            Event::Leases { .. } => return None,
        };
        let mut record = Map::new();
        record.insert("time".into(), crate::utc::rfc3339(SystemTime::now(), true).into());
        record.insert("event".into(), name.into());
        record.insert("profile".into(), self.profile.clone().into());
        record.insert("pid".into(), std::process::id().into());
        record.insert("command".into(), self.command.clone().into());
        if let Value::Object(details) = details {
            record.extend(details);
        }
        Some(record.into())
    }

    /// The fields every record has, for `event`.
    fn common(&self, event: &str) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("time".into(), crate::utc::rfc3339(self.started, true).into());
        record.insert("event".into(), event.into());
        record.insert("envcloak_version".into(), env!("CARGO_PKG_VERSION").into());
        record.insert("profile".into(), self.profile.clone().into());
        record.insert("user".into(), user().into());
        record.insert("uid".into(), nix::unistd::getuid().as_raw().into());
        record.insert("host".into(), host().into());
        record.insert("pid".into(), std::process::id().into());
        record.insert("command".into(), self.command.clone().into());
        record.insert("secrets".into(), self.secrets.clone().into());
        record.insert("failures".into(), self.failures.clone().into());
        record.insert("resolution_ms".into(), self.resolution.map(round_ms).into());
        let backends: Map<String, Value> = self
            .backends
            .iter()
            .map(|b| (b.backend.clone(), json!({ "ms": round_ms(b.took), "secrets": b.resolved })))
            .collect();
        record.insert("backends".into(), backends.into());
        record
    }
}

fn round_ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name)
}

fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
}
