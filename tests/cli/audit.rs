//! `run --audit-log` and `--metrics-file`: one JSON line per run, appended
//! whole even by concurrent runs; Prometheus text that the real
//! `prometheus_client` parser reads; neither ever holds a value.

use serde_json::Value;

use crate::support::{Out, Workspace};

/// 20 fake secrets, each at least 12 characters, in an age-encrypted file.
fn twenty() -> (Workspace, Vec<String>) {
    let values: Vec<String> = (0..20).map(|i| format!("fake-audit-value-{i:02}-{}", "x".repeat(i))).collect();
    let dotenv: String = values.iter().enumerate().map(|(i, v)| format!("SECRET_{i:02}={v}\n")).collect();
    let (ws, _) = Workspace::project(&dotenv);
    for value in &values {
        ws.secret(value);
    }
    (ws, values)
}

fn lines(ws: &Workspace, rel: &str) -> Vec<Value> {
    let text = String::from_utf8(ws.read(rel)).expect("the audit log is UTF-8");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e})"))).collect()
}

fn assert_no_value(text: &str, values: &[String], what: &str) {
    for (i, value) in values.iter().enumerate() {
        assert!(!text.contains(value.as_str()), "{what} holds the value of SECRET_{i:02}");
    }
}

/// The families and samples of a metrics file, parsed by prometheus_client.
fn parse_metrics(ws: &Workspace, rel: &str) -> Value {
    const PARSE: &str = "\
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = text_string_to_metric_families(open(sys.argv[1]).read())
print(json.dumps({f.name: {'type': f.type, 'samples': [[s.name, s.labels, s.value] for s in f.samples]}
                  for f in families}))
";
    let out = ws.command("python3").args(["-c", PARSE, rel]).run();
    out.expect(0);
    serde_json::from_str(&out.stdout()).expect("the parser's summary")
}

/// [`twenty`], run in both modes with the audit log and metrics on, the
/// command exiting 3.
fn two_runs_exiting_3() -> (Workspace, Vec<String>) {
    let (ws, values) = twenty();
    for (_, flags) in crate::support::MODES {
        let out = ws
            .envcloak()
            .arg("run")
            .args(flags)
            // Trace logging on: still no value in the output, the log or the metrics.
            .args(["-vvv", "--audit-log", "audit.jsonl", "--metrics-file", "metrics.prom", "--", "sh", "-c", "exit 3"])
            .run();
        out.expect(3);
        out.no_leak(&values.iter().map(String::as_str).collect::<Vec<_>>());
    }
    (ws, values)
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_run_appends_a_start_and_an_end_line_and_writes_metrics_without_any_value() {
    require!(Age);
    let (ws, values) = two_runs_exiting_3();
    let text = String::from_utf8(ws.read("audit.jsonl")).unwrap();
    assert_no_value(&text, &values, "the audit log");
    let records = lines(&ws, "audit.jsonl");
    assert_eq!(records.len(), 4, "a line as each run's command starts, and one as it ends");
    let started = &records[2];
    assert_eq!(started["event"], "envcloak.start");
    assert_eq!(started["outcome"], "started");
    assert!(started.get("exit_status").is_none(), "no exit status before the command has run");
    assert_eq!(started["secrets"].as_array().map(Vec::len), Some(20));
    let record = &records[3];
    assert_eq!(record["event"], "envcloak.run");
    assert_eq!(record["profile"], "dev");
    assert_eq!(record["command"], "sh");
    assert_eq!(record["outcome"], "ran");
    assert_eq!(record["exit_status"], 3, "the child's exit status");
    assert!(record["time"].as_str().is_some_and(|t| t.len() == 24 && t.ends_with('Z')), "time is RFC 3339 UTC");
    assert!(record["host"].is_string() && record["pid"].is_u64() && record["uid"].is_u64());
    assert!(record["resolution_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let secrets = record["secrets"].as_array().expect("secrets");
    assert_eq!(secrets.len(), 20);
    assert_eq!(secrets[0]["name"], "SECRET_00");
    assert_eq!(secrets[0]["reference"], "age://secrets.env.age");
    assert_eq!(secrets[0]["backend"], "age");
    assert_eq!(record["backends"]["age"]["secrets"], 20);
    assert_eq!(record["failures"].as_array().map(Vec::len), Some(0));

    let metrics = String::from_utf8(ws.read("metrics.prom")).unwrap();
    assert_no_value(&metrics, &values, "the metrics file");
    let leftovers: Vec<_> = std::fs::read_dir(ws.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary metrics files left behind");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_prometheus_client, ignore = "needs prometheus_client: pip install prometheus_client==0.26.0")]
fn the_metrics_of_a_run_parse_with_prometheus_client() {
    require!(Age, PrometheusClient);
    let (ws, _) = two_runs_exiting_3();
    let families = parse_metrics(&ws, "metrics.prom");
    let sample = |family: &str| families[family]["samples"][0].clone();
    assert_eq!(sample("envcloak_secrets_resolved")[1]["backend"], "age");
    assert_eq!(sample("envcloak_secrets_resolved")[2], 20.0);
    assert_eq!(sample("envcloak_exit_status")[2], 3.0);
    assert!(sample("envcloak_resolution_duration_seconds")[2].as_f64().is_some_and(|s| s > 0.0));
    assert!(sample("envcloak_last_run_timestamp_seconds")[2].as_f64().is_some_and(|s| s > 1.7e9));
    assert_eq!(families["envcloak_resolution_failures"]["samples"].as_array().map(Vec::len), Some(0));
}

/// [`twenty`] and a run with the audit log and metrics on that fails: one
/// reference has a key the file does not hold.
fn a_failed_run() -> (Workspace, Vec<String>, Out) {
    let (ws, values) = twenty();
    let out = ws
        .envcloak()
        .args(["run", "--audit-log", "audit.jsonl", "--metrics-file", "metrics.prom"])
        .args(["-e", "MISSING=age://secrets.env.age#NOPE", "--", "sh", "-c", "touch started"])
        .run();
    (ws, values, out)
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_run_that_fails_is_recorded_with_its_reasons() {
    require!(Age);
    let (ws, values, out) = a_failed_run();
    out.expect(125);
    assert!(!ws.join("started").exists(), "the command was started");
    let record = &lines(&ws, "audit.jsonl")[0];
    assert_eq!(record["outcome"], "not_started");
    assert_eq!(record["exit_status"], 125);
    assert!(record["error"].as_str().is_some_and(|e| e.contains("could not be resolved")));
    let failure = &record["failures"][0];
    assert_eq!(failure["name"], "MISSING");
    assert_eq!(failure["reference"], "age://secrets.env.age#NOPE");
    assert!(failure["reason"].as_str().is_some_and(|r| r.contains("NOPE")));
    assert_eq!(failure["kind"], "missing_key");
    assert_no_value(&String::from_utf8(ws.read("audit.jsonl")).unwrap(), &values, "the audit log");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_prometheus_client, ignore = "needs prometheus_client: pip install prometheus_client==0.26.0")]
fn a_run_that_fails_is_counted_by_reason_in_metrics_prometheus_client_parses() {
    require!(Age, PrometheusClient);
    let (ws, _, out) = a_failed_run();
    out.expect(125);
    let families = parse_metrics(&ws, "metrics.prom");
    let failure = &families["envcloak_resolution_failures"]["samples"][0];
    assert_eq!(failure[1]["backend"], "age");
    assert_eq!(failure[1]["reason"], "missing_key");
    assert_eq!(failure[2], 1.0);
    assert_eq!(families["envcloak_exit_status"]["samples"][0][2], 125.0);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn concurrent_runs_append_whole_lines_and_an_unwritable_log_stops_the_run() {
    require!(Age);
    let (ws, _) = twenty();
    let runs: Vec<_> =
        (0..12).map(|_| ws.envcloak().args(["run", "--audit-log", "audit.jsonl", "--", "true"]).spawn()).collect();
    for run in runs {
        run.wait().expect(0);
    }
    let records = lines(&ws, "audit.jsonl");
    assert_eq!(records.len(), 24, "every run left exactly two whole lines");
    let ends = records.iter().filter(|r| r["event"] == "envcloak.run").count();
    assert_eq!(ends, 12, "every run left one end record");
    let mode = std::fs::metadata(ws.join("audit.jsonl"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "the audit log is private");

    let out = ws
        .envcloak()
        .env("ENVCLOAK_AUDIT_LOG", ws.join("no/such/folder/audit.jsonl"))
        .args(["run", "--", "sh", "-c", "touch started"])
        .run();
    out.expect(125).stderr_has(&["cannot open the audit log", "no/such/folder/audit.jsonl"]);
    assert!(!ws.join("started").exists(), "a run that cannot be audited must not start");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_killed_envcloak_still_leaves_the_start_record() {
    require!(Age);
    let (ws, values) = twenty();
    let mut running =
        ws.envcloak().args(["run", "--audit-log", "audit.jsonl", "--", "sh", "-c", "touch started; sleep 3"]).spawn();
    assert!(
        running.wait_for_file(&ws.join("started"), std::time::Duration::from_secs(10)),
        "the command did not start"
    );
    running.signal(libc::SIGKILL);
    let _ = running.wait();
    let text = String::from_utf8(ws.read("audit.jsonl")).unwrap();
    assert_no_value(&text, &values, "the audit log");
    let records = lines(&ws, "audit.jsonl");
    assert_eq!(records.len(), 1, "the start record, and no end record from a killed envcloak");
    assert_eq!(records[0]["event"], "envcloak.start");
    assert_eq!(records[0]["command"], "sh");
}
