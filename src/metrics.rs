//! The metrics file (`run --metrics-file PATH`, `ENVCLOAK_METRICS_FILE`):
//! Prometheus text exposition of the last run, for node_exporter's textfile
//! collector or a Pushgateway. Written to a temporary file in the same
//! folder, then renamed over PATH, so a reader never sees half a file.

use std::fmt::Write as _;
use std::path::Path;

use crate::audit::RunReport;
use crate::error::CliError;

/// The exposition text for a run that ended with `status`, or is still
/// running (`None`).
pub fn render(report: &RunReport, status: Option<u8>) -> String {
    let profile = format!("profile=\"{}\"", escape(report.profile.as_deref().unwrap_or("")));
    let by_backend = |backend: &str| format!("{profile},backend=\"{}\"", escape(backend));
    let mut text = String::new();
    family(
        &mut text,
        "envcloak_last_run_timestamp_seconds",
        "When the last envcloak run started (Unix time).",
        [(profile.clone(), format!("{:.3}", report.started_unix()))],
    );
    family(
        &mut text,
        "envcloak_resolution_duration_seconds",
        "How long each backend took to resolve its secrets in the last run.",
        report.backends.iter().map(|b| (by_backend(&b.backend), format!("{:.6}", b.took.as_secs_f64()))),
    );
    family(
        &mut text,
        "envcloak_secrets_resolved",
        "Secrets each backend resolved in the last run.",
        report.backends.iter().map(|b| (by_backend(&b.backend), b.resolved.to_string())),
    );
    family(
        &mut text,
        "envcloak_resolution_failures",
        "Secrets that could not be resolved in the last run, by backend and reason.",
        report.failure_counts.iter().map(|(backend, reason, count)| {
            (format!("{},reason=\"{reason}\"", by_backend(backend)), count.to_string())
        }),
    );
    family(
        &mut text,
        "envcloak_exit_status",
        "Exit status of the last run: the command's own, or 125-127 when envcloak could not start it.",
        status.map(|status| (profile.clone(), status.to_string())),
    );
    let counts = &report.refresh;
    let counters = [
        (
            "envcloak_refreshes_total",
            "Refreshes that resolved the secrets again while the command ran.",
            counts.refreshes,
        ),
        (
            "envcloak_refresh_failures_total",
            "Refreshes or polls that failed (the command kept its secrets).",
            counts.failures,
        ),
        ("envcloak_restarts_total", "Restarts of the command with new secrets.", counts.restarts),
        (
            "envcloak_lease_revocations_total",
            "Generations of dynamic credentials whose leases were revoked.",
            counts.revocations,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut text, name, help, [(profile.clone(), value.to_string())]);
    }
    family(
        &mut text,
        "envcloak_last_refresh_timestamp_seconds",
        "When a refresh last succeeded (Unix time).",
        counts.last_refresh.map(|at| (profile.clone(), format!("{:.3}", unix(at)))),
    );
    family(
        &mut text,
        "envcloak_credentials_expiry_timestamp_seconds",
        "When the first lease of the command's dynamic credentials ends unless renewed (Unix time).",
        counts.credentials_expiry.map(|at| (profile.clone(), format!("{:.3}", unix(at)))),
    );
    text
}

fn unix(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One family (a counter when its name ends in `_total`, else a gauge):
/// HELP, TYPE and a sample per (labels, value).
fn family(text: &mut String, name: &str, help: &str, samples: impl IntoIterator<Item = (String, String)>) {
    let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(text, "{name}{{{labels}}} {value}");
    }
}

/// Writes `text` to `path` atomically (see [`crate::atomic_file`]: a new
/// file, mode 0644, renamed over a regular file; a device or FIFO is
/// written in place, never replaced).
pub fn write(path: &Path, text: &str) -> Result<(), CliError> {
    crate::atomic_file::replace(path, text.as_bytes(), 0o644).map_err(|e| {
        CliError::new(format!("cannot write the metrics file {}: {e}", path.display()))
            .hint("check the folder exists and is writable, or change --metrics-file / ENVCLOAK_METRICS_FILE")
    })
}

/// A label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
