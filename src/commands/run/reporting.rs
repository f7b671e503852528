//! What `run` reports (`--audit-log`, `--metrics-file`), shared with the
//! refresher: a record as the command starts, one per refresh, restart and
//! revocation, and one when the run ends; the metrics file is rewritten
//! after each of them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::audit::{AuditLog, RunReport};
use crate::error::CliError;
use crate::exit::Outcome;
use crate::metrics;
use crate::plan::Plan;
use crate::refresh::{Event, Reporter};
use crate::resolve::Resolution;

/// The audit log and the metrics file of a run, if asked for.
#[derive(Clone)]
pub struct Reporting {
    shared: Arc<Mutex<Shared>>,
    /// Whether either was asked for.
    pub active: bool,
}

struct Shared {
    audit: Option<AuditLog>,
    metrics: Option<PathBuf>,
    report: RunReport,
}

impl Reporting {
    /// Opens the audit log (a run that cannot be audited does not start).
    pub fn open(
        audit_log: Option<&std::path::Path>,
        metrics: Option<PathBuf>,
        command: String,
        profile: Option<String>,
    ) -> Result<Self, CliError> {
        let audit = audit_log.map(AuditLog::open).transpose()?;
        let active = audit.is_some() || metrics.is_some();
        let shared = Shared { audit, metrics, report: RunReport::start(command, profile) };
        Ok(Self { shared: Arc::new(Mutex::new(shared)), active })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what was resolved.
    pub fn resolved(&self, plan: &Plan, resolution: &Resolution, took: Duration) {
        self.lock().report.resolved(plan, resolution, took);
    }

    /// Appends the record of the command's start (so a killed envcloak
    /// still leaves one).
    pub fn started(&self) -> Result<(), CliError> {
        let mut shared = self.lock();
        let record = shared.report.start_record();
        shared.audit.as_mut().map_or(Ok(()), |audit| audit.append(&record))
    }

    /// Appends the record of the run's end and writes the metrics.
    pub fn ended(&self, result: &Result<Outcome, CliError>) {
        let (status, error) = match result {
            Ok(outcome) => (outcome.code(), None),
            Err(e) => (e.status.code(), Some(e)),
        };
        let mut shared = self.lock();
        let record = shared.report.audit_record(status, error);
        shared.write(Some(&record), Some(status));
    }

    /// Where the refresher's events go: counted, appended to the audit log,
    /// and the metrics rewritten.
    pub fn reporter(&self) -> Reporter {
        let reporting = self.clone();
        Arc::new(move |event: &Event| {
            let mut shared = reporting.lock();
            shared.report.count(event);
            let record = shared.report.event_record(event);
            shared.write(record.as_ref(), None);
        })
    }
}

impl Shared {
    /// Appends `record` and rewrites the metrics; a failure is a warning
    /// (the command is already running).
    fn write(&mut self, record: Option<&serde_json::Value>, status: Option<u8>) {
        if let (Some(audit), Some(record)) = (&mut self.audit, record) {
            if let Err(e) = audit.append(record) {
                crate::diag::warning!("{}", e.message);
            }
        }
        if let Some(path) = &self.metrics {
            if let Err(e) = metrics::write(path, &metrics::render(&self.report, status)) {
                crate::diag::warning!("{}", e.message);
            }
        }
    }
}
