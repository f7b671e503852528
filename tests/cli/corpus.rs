//! The bad-input corpus (tests/corpus/MANIFEST.tsv): every malformed config
//! file, reference, dotenv document and age file goes through the real
//! binary, and each must end with exit 125 and a message that names the
//! problem, before the command starts, without a panic and without any
//! secret value in the output.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{chmod, Identity, Out, Workspace};

/// The corpus folder.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
/// The values of the project's secrets.env.age and of every age case's plaintext.
const CANARIES: [&str; 2] = ["fake-corpus-canary-5520", "fake-corpus-other-value"];
/// A malformed input is refused quickly, even a huge scrypt work factor.
const QUICK: Duration = Duration::from_secs(10);

/// One line of the manifest.
struct Case {
    path: String,
    class: String,
    needles: Vec<String>,
}

fn manifest() -> Vec<Case> {
    let text = std::fs::read_to_string(Path::new(CORPUS).join("MANIFEST.tsv")).expect("tests/corpus/MANIFEST.tsv");
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.split('\t');
            let path = fields.next().unwrap_or_default().to_owned();
            let class = fields.next().unwrap_or_default().to_owned();
            let needles: Vec<String> = fields.filter(|f| !f.is_empty()).map(str::to_owned).collect();
            assert!(!class.is_empty() && !needles.is_empty(), "manifest line without class or text: {line}");
            Case { path, class, needles }
        })
        .collect()
}

/// The workspace every case runs in: `key.txt` (the corpus identity, which
/// also opens the age cases) and `secrets.env.age` holding the canaries.
fn project() -> Workspace {
    let ws = Workspace::new();
    for canary in CANARIES {
        ws.secret(canary);
    }
    std::fs::copy(Path::new(CORPUS).join("age/identity.txt"), ws.join("key.txt")).expect("copy the corpus identity");
    chmod(&ws.join("key.txt"), 0o600);
    let recipient = Identity::load(&ws.join("key.txt")).recipient;
    let secrets = format!("API_KEY={}\nOTHER={}\n", CANARIES[0], CANARIES[1]);
    ws.envcloak().args(["encrypt", "-r", &recipient, "-o", "secrets.env.age"]).stdin(secrets).run().expect(0);
    ws
}

/// Runs one case; `Err` says what is wrong (never with a value).
fn run_case(ws: &Workspace, case: &Case) -> Result<(), String> {
    let source = Path::new(CORPUS).join(&case.path);
    let bytes = std::fs::read(&source).map_err(|e| format!("cannot read the case: {e}"))?;
    let name = source.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let kind = case.path.split('/').next().unwrap_or_default();
    let mut cmd = ws.envcloak();
    match kind {
        "config" => {
            ws.write(&name, &bytes);
            cmd = cmd.args(["run", "-c", &name]);
        }
        "reference" => {
            let text = String::from_utf8(bytes).map_err(|_| "a reference case is not UTF-8".to_owned())?;
            let reference = text.strip_suffix('\n').unwrap_or(&text);
            cmd = cmd.env("ENVCLOAK_AGE_KEY_FILE", "key.txt");
            cmd = match name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("import") => cmd.args(["run", "-i", reference]),
                _ => cmd.arg("run").arg("-e").arg(format!("CORPUS_REF={reference}")),
            };
        }
        "dotenv" => {
            // The canary goes last, so the line numbers of the case stay as written.
            let mut plaintext = bytes;
            if !plaintext.ends_with(b"\n") {
                plaintext.push(b'\n');
            }
            plaintext.extend_from_slice(format!("CORPUS_CANARY={}\n", CANARIES[0]).as_bytes());
            let recipient = Identity::load(&ws.join("key.txt")).recipient;
            let encrypted = format!("{name}.age");
            ws.envcloak().args(["encrypt", "-r", &recipient, "-o", &encrypted]).stdin(plaintext).run().expect(0);
            cmd = cmd.env("ENVCLOAK_AGE_KEY_FILE", "key.txt").args(["run", "-i", &format!("age://{encrypted}")]);
        }
        "age" => {
            ws.write(&name, &bytes);
            cmd = cmd.env("ENVCLOAK_AGE_KEY_FILE", "key.txt").args(["run", "-i", &format!("age://{name}")]);
        }
        other => return Err(format!("unknown case folder `{other}`")),
    }
    let started = Instant::now();
    let out = cmd.args(["--", "sh", "-c", "touch started.marker"]).run();
    let took = started.elapsed();
    let marker = ws.join("started.marker");
    let child_started = marker.exists();
    let _ = std::fs::remove_file(&marker);
    check(&out, case, took, child_started)
}

fn check(out: &Out, case: &Case, took: Duration, child_started: bool) -> Result<(), String> {
    let stderr = out.stderr();
    let mut wrong = Vec::new();
    if out.code() != 125 {
        wrong.push(format!("exit {} instead of 125", out.code()));
    }
    if child_started {
        wrong.push("the command was started".to_owned());
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        wrong.push("envcloak panicked".to_owned());
    }
    // Names and references come from files anyone may craft: no control
    // character (an escape sequence, a NUL) may reach the terminal raw.
    if stderr.chars().any(|c| c.is_control() && c != '\n') {
        wrong.push("a raw control character in the message".to_owned());
    }
    for (i, canary) in CANARIES.iter().enumerate() {
        let canary = canary.as_bytes();
        if crate::support::contains(&out.stdout, canary) || crate::support::contains(&out.stderr, canary) {
            wrong.push(format!("secret #{i} appears in the output"));
        }
    }
    if !out.stdout.is_empty() {
        wrong.push("something was printed on stdout".to_owned());
    }
    if !stderr.starts_with("envcloak: error: ") {
        wrong.push("stderr does not start with `envcloak: error: `".to_owned());
    }
    for needle in &case.needles {
        if !stderr.contains(needle.as_str()) {
            wrong.push(format!("the message lacks `{needle}`"));
        }
    }
    if took > QUICK {
        wrong.push(format!("took {took:?}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{}", wrong.join("; "), out.diag()))
    }
}

#[test]
fn every_bad_input_is_refused_clearly() {
    let cases = manifest();
    let ws = project();
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for case in &cases {
        *per_class.entry(case.class.clone()).or_default() += 1;
        *per_kind.entry(case.path.split('/').next().unwrap_or_default().to_owned()).or_default() += 1;
        if let Err(problem) = run_case(&ws, case) {
            problems.push(format!("{} ({}): {problem}", case.path, case.class));
        }
    }
    eprintln!("bad-input corpus: {} cases", cases.len());
    for (kind, count) in &per_kind {
        eprintln!("  {kind:<10} {count:>4}");
    }
    for (class, count) in &per_class {
        eprintln!("    {class:<24} {count:>4}");
    }
    assert!(cases.len() >= 100, "the corpus has only {} cases", cases.len());
    assert!(problems.is_empty(), "{} of {} cases failed:\n\n{}", problems.len(), cases.len(), problems.join("\n\n"));
}

/// Every file under tests/corpus/{config,reference,age} is in the manifest
/// (so a new case cannot be forgotten), and every listed file exists.
#[test]
fn manifest_lists_every_case_file() {
    let listed: Vec<String> = manifest().into_iter().map(|c| c.path).collect();
    let mut missing = Vec::new();
    for folder in ["config", "reference", "age"] {
        for entry in std::fs::read_dir(Path::new(CORPUS).join(folder)).expect("a corpus folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{folder}/{name}");
            let is_case = [".toml", ".ref", ".import", ".age"].iter().any(|ext| name.ends_with(ext));
            if is_case && !listed.contains(&path) {
                missing.push(path);
            }
        }
    }
    for path in &listed {
        if !Path::new(CORPUS).join(path).is_file() {
            missing.push(format!("{path} (listed, but there is no such file)"));
        }
    }
    assert!(missing.is_empty(), "manifest and corpus differ:\n  {}", missing.join("\n  "));
}
