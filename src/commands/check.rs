//! `envcloak check`: what would be injected, from where, and what fails.

use crate::cli::{CheckArgs, CheckFormat};
use crate::error::{printable, CliError};
use crate::exit::Outcome;
use crate::plan::Plan;
use crate::resolve::Resolution;
use envcloak_providers::{Backend, Destination};

use super::Context;

/// One line of the report.
struct Row {
    name: String,
    source: String,
    backend: &'static str,
    status: String,
    ok: bool,
    version: Option<String>,
    origin: String,
}

/// Resolves everything and prints NAME, SOURCE, STATUS; never a value.
pub fn check(context: &Context, args: &CheckArgs) -> Result<Outcome, CliError> {
    let resolved = context.resolve(&args.mappings)?;
    let destinations = resolved.destinations();
    let super::ResolvedRun { plan, resolution, .. } = resolved;
    let rows = rows(&plan, &resolution);
    let watch = plan.supervision.settle().describe();
    let report = match args.format {
        CheckFormat::Table => {
            table(&rows) + &connections(&destinations) + &watch.as_ref().map(|w| format!("\n{w}\n")).unwrap_or_default()
        }
        CheckFormat::Json => json(&plan, &rows, &destinations, watch.as_deref()),
    };
    super::print_stdout(&report)?;
    Ok(if resolution.has_required_failure() { Outcome::Found } else { Outcome::Success })
}

fn rows(plan: &Plan, resolution: &Resolution) -> Vec<Row> {
    let mut rows: Vec<Row> = resolution
        .vars
        .iter()
        .map(|var| {
            let mapping = &plan.mappings[var.mapping];
            Row {
                name: var.name.clone(),
                source: mapping.shown(),
                backend: mapping.reference.source.backend.name(),
                status: if var.as_file { "ok (file)".into() } else { "ok".into() },
                ok: true,
                version: var.version.clone(),
                origin: mapping.origin.to_string(),
            }
        })
        .collect();
    rows.extend(resolution.failures.iter().map(|failure| {
        let mapping = &plan.mappings[failure.mapping];
        let label = if failure.optional { "skipped (optional)" } else { "error" };
        Row {
            name: failure.name.clone(),
            source: mapping.shown(),
            backend: mapping.reference.source.backend.name(),
            status: format!("{label}: {}", failure.error.reason),
            ok: failure.optional,
            version: None,
            origin: mapping.origin.to_string(),
        }
    }));
    rows
}

/// The table; every cell with control characters escaped, so a key name or
/// a server's text cannot add a row or move the cursor.
fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|row| {
            let version = row.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default();
            [&row.name, &row.source, &format!("{}{version}", row.status)].map(|cell| printable(cell).into_owned())
        })
        .collect();
    let width = |column: usize, title: &str| {
        cells.iter().map(|c| c[column].chars().count()).max().unwrap_or(0).max(title.len())
    };
    let (name_w, source_w) = (width(0, "NAME"), width(1, "SOURCE"));
    let mut text = format!("{}  {}  STATUS\n", pad("NAME", name_w), pad("SOURCE", source_w));
    for [name, source, status] in cells {
        text += &format!("{}  {}  {status}\n", pad(&name, name_w), pad(&source, source_w));
    }
    text
}

/// `cell` padded with spaces to `width` characters (by hand: `format!`'s
/// width stops at 65535, and a name can be longer).
fn pad(cell: &str, width: usize) -> String {
    format!("{cell}{}", " ".repeat(width.saturating_sub(cell.chars().count())))
}

/// Where the network backends connected, and which setting said so.
fn connections(destinations: &[(Backend, Destination)]) -> String {
    let mut text = String::new();
    for (backend, destination) in destinations {
        text += &format!("\n{backend}: {} (from {})", printable(&destination.address), destination.from);
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn json(plan: &Plan, rows: &[Row], destinations: &[(Backend, Destination)], watch: Option<&str>) -> String {
    let secrets: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "name": row.name,
                "source": row.source,
                "backend": row.backend,
                "origin": row.origin,
                "ok": row.ok,
                "status": row.status,
                "version": row.version,
            })
        })
        .collect();
    let connections: Vec<serde_json::Value> = destinations
        .iter()
        .map(|(backend, d)| serde_json::json!({ "backend": backend.name(), "address": d.address, "from": d.from }))
        .collect();
    let document = serde_json::json!({
        "profile": plan.profile, "secrets": secrets, "connections": connections, "watch": watch,
    });
    format!("{document:#}\n")
}
