//! `examples/flask` as a user copies it: the folder (the files git tracks or
//! would track) goes to a fresh place, and the README's walkthrough runs there
//! with the built envcloak first on `PATH`: pytest through envcloak,
//! `deploy.sh` under gunicorn, the Dockerfile's ENTRYPOINT and CMD in a folder
//! holding only what the Dockerfile copies, `envcloak scan`, and the `prod`
//! profiles of `envcloak.toml` and `envcloak.gitlab.toml` against a real
//! OpenBao set up as the README says, with GitHub's and GitLab's OIDC tokens
//! (`prod.rs`), and the README's production section: a PostgreSQL user per
//! gunicorn start, rotation, and gunicorn's `HUP` reload (`production.rs`).
//!
//! Real Flask, real gunicorn, real envcloak. Values are read with `envcloak
//! export` and registered as secrets, so no failure message shows one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::net::{free_port, http};
use crate::support::{chmod, Cmd, Out, Workspace, BIN};

mod prod;
mod production;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flask");

/// How long gunicorn may take to start and answer.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The example's files as a user gets them: tracked, or new and not ignored
/// (no `__pycache__`, no local wheels).
fn example_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."])
        .current_dir(EXAMPLE)
        .stderr(Stdio::inherit())
        .output()
        .expect("run git ls-files");
    assert!(out.status.success(), "git ls-files failed in {EXAMPLE}");
    let files: Vec<String> = String::from_utf8(out.stdout)
        .expect("file names are UTF-8")
        .split('\0')
        .filter(|f| !f.is_empty() && Path::new(EXAMPLE).join(f).is_file())
        .map(str::to_owned)
        .collect();
    for expected in ["app.py", "deploy.sh", "Dockerfile", "envcloak.toml", "secrets.env.age", "demo-identity.txt"] {
        assert!(files.iter().any(|f| f == expected), "{expected} is not among the example's files: {files:?}");
    }
    files
}

/// A fresh copy of the example in `ws/myapp`, demo key made private
/// (`chmod 600`, as the README says), `deploy.sh` executable as git keeps it.
fn copy_example(ws: &Workspace) -> PathBuf {
    let dest = ws.join("myapp");
    copy_example_to(&dest);
    dest
}

/// [`copy_example`] into the folder `dest`.
pub(crate) fn copy_example_to(dest: &Path) {
    for file in example_files() {
        let target = dest.join(&file);
        std::fs::create_dir_all(target.parent().unwrap()).expect("create folders");
        std::fs::copy(Path::new(EXAMPLE).join(&file), &target).expect("copy an example file");
        chmod(&target, if file.ends_with(".sh") { 0o755 } else { 0o644 });
    }
    chmod(&dest.join("demo-identity.txt"), 0o600);
}

/// `PATH` with the built envcloak's folder first.
fn path_with_envcloak() -> String {
    let bin = Path::new(BIN).parent().expect("the binary's folder");
    let rest = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    format!("{}:{rest}", bin.display())
}

/// A program run in `dir` with the test's clean environment and envcloak on PATH.
fn command(ws: &Workspace, dir: &Path, program: impl AsRef<std::ffi::OsStr>) -> Cmd {
    ws.command(program).current_dir(dir).env("PATH", path_with_envcloak())
}

/// The resolved values of `profile` (`envcloak export --format json`), each
/// registered so failure messages redact it.
pub(crate) fn values(ws: &Workspace, dir: &Path, profile: &str) -> BTreeMap<String, String> {
    let out = command(ws, dir, "envcloak").args(["export", "--format", "json", "-p", profile]).run();
    let values: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    for value in values.values() {
        ws.secret(value);
    }
    out.expect(0);
    assert!(!values.is_empty(), "export gave no values\n{}", out.diag());
    values
}

/// GET /config on `port`: `Some(body)` once it answers 200 with JSON.
fn config_status(port: u16) -> Option<Value> {
    let reply = http(port, "GET", "/config", &[], None).ok()?;
    (reply.status == 200).then(|| reply.json())
}

/// Sends SIG`signal` to the process group `pid` leads (the shell's `kill`).
fn signal_group(pid: i32, signal: &str) -> bool {
    Command::new("sh")
        .args(["-c", "kill -s \"$1\" -- \"-$2\"", "sh", signal, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `cmd` (gunicorn behind envcloak, in its own process group), waits
/// until /config on `port` says every required setting arrived, checks that
/// gunicorn replaced envcloak (exec: the started process is gunicorn), runs
/// `while_up`, then sends SIGTERM to the group, as a process manager or
/// `docker stop` does, and expects a clean exit. Nothing in the output may
/// hold a value.
fn serve_and_stop(cmd: Cmd, port: u16, what: &str, while_up: impl FnOnce()) -> Out {
    let running = cmd.timeout(Duration::from_secs(90)).spawn();
    let pid = running.pid();
    let until = Instant::now() + START_LIMIT;
    let body = loop {
        if let Some(body) = config_status(port) {
            break body;
        }
        if Instant::now() >= until || !Path::new(&format!("/proc/{pid}")).exists() {
            signal_group(pid, "KILL");
            let out = running.wait();
            panic!("{what}: /config did not answer within {START_LIMIT:?}\n{}", out.diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let ok = body["ok"] == json!(true);
    if ok {
        while_up();
    }
    assert!(signal_group(pid, "TERM"), "{what}: SIGTERM to the process group failed");
    let out = running.wait();
    assert!(ok, "{what}: /config reports missing settings {}\n{}", body["missing"], out.diag());
    assert!(shown.contains("gunicorn"), "{what}: the started process is not gunicorn but `{shown}` (no exec?)");
    out.expect(0);
    out
}

fn all_values(values: &BTreeMap<String, String>) -> Vec<&str> {
    values.values().map(String::as_str).filter(|v| v.len() >= 4).collect()
}

#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn walkthrough_pytest_through_envcloak_passes() {
    require!(Git, FlaskStack);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    let values = values(&ws, &dir, "test");
    let out = command(&ws, &dir, "envcloak").args(["run", "-p", "test", "--", "python3", "-m", "pytest", "-q"]).run();
    out.expect(0).no_leak(&all_values(&values));
    assert!(out.stdout().contains(" passed"), "pytest did not report its tests\n{}", out.diag());
    assert!(!out.stdout().contains("skipped"), "a test was skipped\n{}", out.diag());

    // Without envcloak the same tests fail, saying how to run them.
    let out = command(&ws, &dir, "python3").args(["-m", "pytest", "-q"]).run();
    assert_eq!(out.code(), 1, "pytest without the secrets must fail\n{}", out.diag());
    assert!(out.stdout().contains("envcloak run -p test"), "no hint how to run the tests\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn deploy_sh_serves_config_under_gunicorn_and_stops_on_sigterm() {
    require!(Git, FlaskStack);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    let values = values(&ws, &dir, "dev");
    let port = free_port();
    let cmd = command(&ws, &dir, dir.join("deploy.sh"))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("WORKERS", "2")
        .env("ENVCLOAK_PROFILE", "dev");
    let out = serve_and_stop(cmd, port, "deploy.sh", || {
        let reply = http(port, "GET", "/", &[], None).expect("GET /");
        assert_eq!(reply.status, 200, "GET / on the running app");
        // healthcheck.py finds the app at $BIND, as the CI deploy jobs use it.
        let check = command(&ws, &dir, "python3")
            .env("BIND", format!("127.0.0.1:{port}"))
            .args(["healthcheck.py", "--wait", "10"])
            .run();
        check.expect(0);
    });
    out.no_leak(&all_values(&values));
    assert!(out.stderr().contains("Booting worker"), "gunicorn's log is missing\n{}", out.diag());
    // Stopped: nothing answers any more, and healthcheck.py says so.
    assert!(config_status(port).is_none(), "something still answers on port {port}");
    let check = command(&ws, &dir, "python3").env("BIND", format!("127.0.0.1:{port}")).arg("healthcheck.py").run();
    assert_eq!(check.code(), 1, "healthcheck.py must fail when the app is down\n{}", check.diag());
}

/// The Dockerfile's instructions this test follows.
#[derive(Default)]
struct Dockerfile {
    env: Vec<(String, String)>,
    copies: Vec<Vec<String>>,
    user: Option<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
}

/// Reads ENV (one `NAME=value` each), COPY, USER, ENTRYPOINT, CMD and
/// HEALTHCHECK (exec form: a JSON array), joining continued lines.
fn parse_dockerfile(text: &str) -> Dockerfile {
    let mut docker = Dockerfile::default();
    let joined = text.replace("\\\n", " ");
    let exec_form = |rest: &str, what: &str| -> Vec<String> {
        serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{what} is not in exec form (a JSON array): {e}"))
    };
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match instruction.to_ascii_uppercase().as_str() {
            "ENV" => {
                let (name, value) = rest.trim().split_once('=').expect("ENV NAME=value");
                docker.env.push((name.to_owned(), value.trim_matches('"').to_owned()));
            }
            "COPY" => docker
                .copies
                .push(rest.split_whitespace().filter(|w| !w.starts_with("--")).map(str::to_owned).collect()),
            "USER" => docker.user = Some(rest.trim().to_owned()),
            "ENTRYPOINT" => docker.entrypoint = exec_form(rest, "ENTRYPOINT"),
            "CMD" => docker.cmd = exec_form(rest, "CMD"),
            "HEALTHCHECK" => {
                let (_, command) = rest.split_once("CMD").expect("HEALTHCHECK ... CMD [...]");
                docker.healthcheck = exec_form(command, "HEALTHCHECK CMD");
            }
            _ => {}
        }
    }
    docker
}

/// The image's command line, run as the image would run it: in a folder
/// holding only the files the Dockerfile copies (so no identity file), with
/// its ENV, the key given as `docker run -e ENVCLOAK_AGE_KEY=…` would, and
/// BIND moved to a free loopback port.
#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn dockerfile_entrypoint_and_cmd_serve_config_without_an_identity_file() {
    require!(Git, FlaskStack);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    let docker = parse_dockerfile(&String::from_utf8(std::fs::read(dir.join("Dockerfile")).unwrap()).unwrap());
    assert_eq!(docker.entrypoint, ["envcloak", "run", "--"], "ENTRYPOINT");
    assert_eq!(docker.cmd.first().map(String::as_str), Some("gunicorn"), "CMD starts gunicorn");
    let user = docker.user.as_deref().expect("the Dockerfile sets USER");
    assert!(!matches!(user, "root" | "0" | "0:0"), "the image runs as root");

    // What the build context may hold: never a key or a plaintext .env.
    let ignore = String::from_utf8(std::fs::read(dir.join(".dockerignore")).expect(".dockerignore")).unwrap();
    for pattern in ["demo-identity.txt", ".env", ".env.*", "__pycache__"] {
        assert!(ignore.lines().any(|l| l.trim() == pattern), ".dockerignore does not exclude {pattern}");
    }

    // The image's /app: the files the COPY instructions name (wheels/ is
    // installed, not copied).
    let image = ws.join("image");
    std::fs::create_dir_all(&image).unwrap();
    for copy in &docker.copies {
        let (sources, _dest) = copy.split_at(copy.len() - 1);
        for source in sources.iter().filter(|s| !s.ends_with('/')) {
            assert!(
                !source.contains("identity") && !source.starts_with(".env") && !source.ends_with(".env"),
                "the Dockerfile copies {source}"
            );
            std::fs::copy(dir.join(source), image.join(source)).unwrap_or_else(|e| panic!("COPY {source}: {e}"));
        }
    }
    assert!(!image.join("demo-identity.txt").exists(), "the image would hold the identity file");

    let key = String::from_utf8(std::fs::read(dir.join("demo-identity.txt")).unwrap()).unwrap();
    let key = key.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("the demo key line").to_owned();
    ws.secret(&key);
    let values = values(&ws, &dir, "dev");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let with_image_env = |mut cmd: Cmd| {
        for (name, value) in &docker.env {
            cmd = cmd.env(name, value);
        }
        cmd.env("BIND", &bind)
    };
    let argv: Vec<&String> = docker.entrypoint.iter().chain(&docker.cmd).collect();
    let cmd = with_image_env(command(&ws, &image, argv[0]).args(&argv[1..])).env("ENVCLOAK_AGE_KEY", &key);
    let out = serve_and_stop(cmd, port, "the Dockerfile's ENTRYPOINT + CMD", || {
        // The HEALTHCHECK, as Docker runs it: without the entrypoint.
        assert!(!docker.healthcheck.is_empty(), "the Dockerfile has a HEALTHCHECK");
        let check = with_image_env(command(&ws, &image, &docker.healthcheck[0]).args(&docker.healthcheck[1..])).run();
        check.expect(0);
    });
    let mut leaks = all_values(&values);
    leaks.push(&key);
    out.no_leak(&leaks);

    // Without a key the container fails closed: gunicorn never starts.
    let argv_cmd = with_image_env(command(&ws, &image, argv[0]).args(&argv[1..])).run();
    argv_cmd.expect(125).no_leak(&leaks);
    assert!(config_status(port).is_none(), "the app answers without its secrets");
}

#[test]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
fn scan_is_clean_on_a_fresh_copy_and_reports_a_pasted_secret() {
    require!(Git);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    let values = values(&ws, &dir, "test");
    let leaks = all_values(&values);

    let out = command(&ws, &dir, "envcloak").args(["scan", "-p", "test", "."]).run();
    out.no_leak(&leaks).expect(0);

    // Paste a secret into app.py, as a hurried fix might.
    let token = values.get("FLASK_API_TOKEN").expect("the test profile has FLASK_API_TOKEN");
    let mut app = String::from_utf8(std::fs::read(dir.join("app.py")).unwrap()).unwrap();
    app.push_str(&format!("API_TOKEN = \"{token}\"\n"));
    let line = app.lines().count();
    std::fs::write(dir.join("app.py"), app).unwrap();

    let out = command(&ws, &dir, "envcloak").args(["scan", "-p", "test", "."]).run();
    out.no_leak(&leaks).expect(1);
    let expected = format!("app.py:{line}: FLASK_API_TOKEN");
    let stdout = out.stdout();
    assert!(
        stdout.lines().any(|l| l.trim_start_matches("./") == expected),
        "scan does not report `{expected}`\n{}",
        out.diag()
    );
    assert!(
        stdout.lines().all(|l| l.trim_start_matches("./").starts_with("app.py:")),
        "scan reports other files than app.py\n{}",
        out.diag()
    );

    // The pre-commit hook's entry, with the file name pre-commit passes.
    let hook = String::from_utf8(std::fs::read(dir.join(".pre-commit-config.yaml")).unwrap()).unwrap();
    let entry = hook
        .lines()
        .find_map(|l| l.trim().strip_prefix("entry:"))
        .expect("the pre-commit hook has an entry")
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let out = command(&ws, &dir, &entry[0]).args(&entry[1..]).arg("app.py").run();
    out.no_leak(&leaks).expect(1);
    assert!(out.stdout().lines().any(|l| l.trim_start_matches("./") == expected), "hook:\n{}", out.diag());
}
