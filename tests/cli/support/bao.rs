//! A real OpenBao dev server per test ([`BaoServer`]), set up through its
//! HTTP API and the `bao` CLI. It stops when dropped.
//!
//! Setup failures show Vault's status and error text, never a stored value.

use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::jwt::JwtIssuer;
use super::net::{free_port, http, Reply};
use super::{need, random_hex, Tool};

/// How long a server may take to answer `/v1/sys/health`.
const START_LIMIT: Duration = Duration::from_secs(15);

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
    /// Ports of the extra TLS listeners.
    tls_ports: Vec<u16>,
}

impl BaoServer {
    /// Starts a plain-HTTP server and waits until it answers; panics when
    /// the CLI is missing ([`Tool::Bao`]).
    pub fn start() -> BaoServer {
        Self::launch(false, &[])
    }

    /// Starts a `-dev-tls` server (its own CA, a certificate for 127.0.0.1
    /// and localhost): [`Self::ca_cert`]. Only the CLI helpers work on it
    /// ([`Self::bao`], [`Self::kv_put`]).
    pub fn start_tls() -> BaoServer {
        Self::launch(true, &[])
    }

    /// Starts a plain-HTTP server with one more TLS listener per
    /// (certificate chain, key) pair, each on a free port:
    /// [`Self::tls_ports`].
    pub fn start_with_tls_listeners(certs: &[(&Path, &Path)]) -> BaoServer {
        Self::launch(false, certs)
    }

    fn launch(tls: bool, listeners: &[(&Path, &Path)]) -> BaoServer {
        need(Tool::Bao);
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
            let tls_ports: Vec<u16> = listeners.iter().map(|_| free_port()).collect();
            if !listeners.is_empty() {
                let config: String = listeners
                    .iter()
                    .zip(&tls_ports)
                    .map(|((cert, key), port)| {
                        format!(
                            "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  \
                             tls_key_file = \"{}\"\n}}\n",
                            cert.display(),
                            key.display()
                        )
                    })
                    .collect();
                let file = home.path().join("listeners.hcl");
                std::fs::write(&file, config).expect("write the listener config");
                command.arg(format!("-config={}", file.display()));
            }
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
            let exe = PathBuf::from("bao");
            let mut server = BaoServer { child, port, token: token.clone(), home, exe, ca, tls_ports };
            let until = Instant::now() + START_LIMIT;
            loop {
                if server.healthy() {
                    return server;
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
    /// `bao status` succeeds), and every extra listener accepts.
    fn healthy(&mut self) -> bool {
        self.dev_listener_healthy()
            && self.tls_ports.iter().all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
    }

    fn dev_listener_healthy(&mut self) -> bool {
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

    /// The ports of [`Self::start_with_tls_listeners`]' listeners, in order.
    pub fn tls_ports(&self) -> &[u16] {
        &self.tls_ports
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
    /// at `api` (see [`HttpStub::kubernetes`](super::net::HttpStub::kubernetes)); role `role` for service account
    /// `namespace/name` gets `policy`.
    pub fn enable_kubernetes(&self, mount: &str, api: &str, role: &str, account: (&str, &str), policy: &str) {
        need(Tool::Openssl);
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
