//! A real `moto_server` per test ([`MotoServer`]): a local AWS endpoint whose
//! Secrets Manager and IAM are set up through the real AWS API with boto3;
//! and [`AwsProxy`], a TCP proxy in front of it that counts requests by
//! operation (`X-Amz-Target`) and can give moto's IAM refusals the shape
//! real AWS gives them. The server and the proxy stop when dropped.
//!
//! Setup failures show the operation, the secret name and AWS's error code,
//! never a value.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bao::{free_port, http, serve_loopback, Threads};
use super::{missing, probe};

/// The region every test uses.
pub const REGION: &str = "eu-west-1";
/// How long a server may take to answer its first request.
const START_LIMIT: Duration = Duration::from_secs(20);

/// `moto_server` and boto3 are installed; else skip (or fail on CI).
pub fn have_moto() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| probe("sh", &["-c", "command -v moto_server"]) && probe("python3", &["-c", "import boto3"]))
        || missing("moto_server or boto3 not installed (pip install 'moto[server]' boto3)")
}

/// Runs a list of setup operations against the endpoint in argv[1], in one
/// process. stdin: a JSON list of `{"op": …}`; stdout: a JSON list of
/// results. A failure prints the operation, the secret or user name and
/// AWS's error code (never a value or AWS's message) and exits 1.
const SETUP_PY: &str = r#"
import json, sys
import boto3, botocore.exceptions

endpoint, region = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="fake-setup-key",
          aws_secret_access_key="fake-setup-secret")
sm = boto3.client("secretsmanager", **kw)
iam = None
results = []
for op in json.load(sys.stdin):
    kind, name = op["op"], op.get("name", "")
    try:
        if kind == "create":
            args = {"Name": name}
            if "binary" in op:
                args["SecretBinary"] = bytes(op["binary"])
            else:
                args["SecretString"] = op["string"]
            r = sm.create_secret(**args)
            results.append({"arn": r["ARN"], "version": r["VersionId"]})
        elif kind == "put":
            r = sm.put_secret_value(SecretId=name, SecretString=op["string"])
            results.append({"version": r["VersionId"]})
        elif kind == "versions":
            r = sm.describe_secret(SecretId=name)
            results.append(r.get("VersionIdsToStages", {}))
        elif kind == "delete":
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
            results.append({})
        elif kind == "user":
            iam = iam or boto3.client("iam", **kw)
            iam.create_user(UserName=name)
            policy = {"Version": "2012-10-17", "Statement": op["statements"]}
            iam.put_user_policy(UserName=name, PolicyName=name + "-policy", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            results.append({"key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]})
        else:
            sys.exit("unknown setup operation " + kind)
    except botocore.exceptions.ClientError as e:
        sys.exit("%s %s: %s (HTTP %s)" % (kind, name, e.response.get("Error", {}).get("Code", "?"),
                                         e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")))
    except Exception as e:
        sys.exit("%s %s: %s" % (kind, name, type(e).__name__))
json.dump(results, sys.stdout)
"#;

/// A running `moto_server` on a loopback port, with its own temporary HOME
/// and a clean environment. Killed (with its process group) when dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
    home: tempfile::TempDir,
}

impl MotoServer {
    /// Starts a server and waits until it answers; `None` (after printing
    /// "skipped: …") when moto is missing, a panic on CI.
    pub fn start() -> Option<MotoServer> {
        if !have_moto() {
            return None;
        }
        let mut log = String::new();
        // The port may be taken between probing and binding: try again.
        for _ in 0..3 {
            let home = tempfile::Builder::new().prefix("envcloak-moto-").tempdir().expect("create a temporary HOME");
            let port = free_port();
            let log_file = File::create(home.path().join("server.log")).expect("create the server log");
            let child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env_clear()
                .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k.to_string_lossy().starts_with("PYENV")))
                .env("HOME", home.path())
                .current_dir(home.path())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log handle"))
                .stderr(log_file)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start moto_server: {e}"));
            let mut server = MotoServer { child, port, home };
            let until = Instant::now() + START_LIMIT;
            loop {
                if http(port, "GET", "/moto-api/", &[], None).is_ok_and(|r| r.status == 200) {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    log = server.log();
                    break;
                }
                if Instant::now() >= until {
                    panic!("moto_server did not answer within {START_LIMIT:?}; its log:\n{}", server.log());
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("moto_server exited three times; last log:\n{log}");
    }

    /// The server's own output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs setup operations (see [`SETUP_PY`]) in one python process;
    /// their results. Panics with the operation and AWS's error code.
    pub fn setup(&self, ops: &[Value]) -> Vec<Value> {
        let mut child = Command::new("python3")
            .args(["-c", SETUP_PY, &self.endpoint(), REGION])
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k == "PATH" || k.to_string_lossy().starts_with("PYENV")))
            .env("HOME", self.home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3 with boto3");
        let input = Value::Array(ops.to_vec()).to_string();
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write the setup operations");
        let out = child.wait_with_output().expect("wait for the setup");
        // The last line only: a traceback could quote an operation's value.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr.lines().last().unwrap_or_default();
        assert!(out.status.success(), "AWS setup failed: {reason}");
        let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the setup's results as JSON");
        assert_eq!(results.len(), ops.len(), "one result per setup operation");
        results
    }

    /// Creates a secret with a SecretString; its ARN.
    pub fn create_secret(&self, name: &str, value: &str) -> String {
        self.create_secrets(&[(name, value)]).remove(0)
    }

    /// Creates many secrets in one process; their ARNs, in order.
    pub fn create_secrets<N: AsRef<str>, V: AsRef<str>>(&self, secrets: &[(N, V)]) -> Vec<String> {
        let ops: Vec<Value> = secrets.iter().map(|(name, value)| op::create(name.as_ref(), value.as_ref())).collect();
        self.setup(&ops).iter().map(op::arn).collect()
    }

    /// Creates a secret with a SecretBinary; its ARN.
    pub fn create_secret_binary(&self, name: &str, bytes: &[u8]) -> String {
        op::arn(&self.setup(&[op::create_binary(name, bytes)])[0])
    }

    /// Stores a new value (a rotation: the old version becomes
    /// AWSPREVIOUS); the new version's id.
    pub fn put_secret_value(&self, name: &str, value: &str) -> String {
        op::version(&self.setup(&[op::put(name, value)])[0])
    }

    /// The id of the version of `name` that has `stage`.
    pub fn version_with_stage(&self, name: &str, stage: &str) -> String {
        op::with_stage(&self.setup(&[op::versions(name)])[0], stage)
    }

    /// Schedules a secret for deletion (7 days: it can still be restored).
    pub fn delete_secret(&self, name: &str) {
        self.setup(&[op::delete(name)]);
    }

    /// An IAM user with an inline policy of `statements` and an access key:
    /// (key id, secret key). Only takes effect after [`Self::enable_iam_auth`].
    pub fn create_user(&self, name: &str, statements: Value) -> (String, String) {
        op::key(&self.setup(&[op::user(name, statements)])[0])
    }

    /// From now on every request is signed-checked against moto's IAM users
    /// and their policies (`/moto-api/reset-auth`, as
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0` would at start): the setup helpers
    /// no longer work afterwards.
    pub fn enable_iam_auth(&self) {
        let reply = http(self.port, "POST", "/moto-api/reset-auth", &[], Some(&json!(0)))
            .unwrap_or_else(|e| panic!("POST /moto-api/reset-auth: {e}"));
        assert_eq!(reply.status, 200, "POST /moto-api/reset-auth: {}", reply.body);
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        super::kill_group(&mut self.child);
    }
}

/// Setup operations for [`MotoServer::setup`] (several in one python
/// process are faster than one each), and readers of their results.
pub mod op {
    use serde_json::{json, Value};

    /// Create a secret with a SecretString; result: [`arn`], [`version`].
    pub fn create(name: &str, value: &str) -> Value {
        json!({"op": "create", "name": name, "string": value})
    }

    /// Create a secret with a SecretBinary; result: [`arn`], [`version`].
    pub fn create_binary(name: &str, bytes: &[u8]) -> Value {
        json!({"op": "create", "name": name, "binary": bytes})
    }

    /// Store a new value (a rotation); result: [`version`].
    pub fn put(name: &str, value: &str) -> Value {
        json!({"op": "put", "name": name, "string": value})
    }

    /// Schedule a secret for deletion (7 days).
    pub fn delete(name: &str) -> Value {
        json!({"op": "delete", "name": name})
    }

    /// The secret's version ids and their stages; result: see [`with_stage`].
    pub fn versions(name: &str) -> Value {
        json!({"op": "versions", "name": name})
    }

    /// An IAM user with an inline policy of `statements` and an access
    /// key; result: [`key`].
    pub fn user(name: &str, statements: Value) -> Value {
        json!({"op": "user", "name": name, "statements": statements})
    }

    pub fn arn(result: &Value) -> String {
        result["arn"].as_str().expect("an ARN").to_owned()
    }

    pub fn version(result: &Value) -> String {
        result["version"].as_str().expect("a version id").to_owned()
    }

    /// (key id, secret key).
    pub fn key(result: &Value) -> (String, String) {
        let field = |k: &str| result[k].as_str().expect("an access key field").to_owned();
        (field("key_id"), field("secret"))
    }

    /// The version id that has `stage`, from a [`versions`] result.
    pub fn with_stage(result: &Value, stage: &str) -> String {
        let versions = result.as_object().expect("VersionIdsToStages");
        versions
            .iter()
            .find(|(_, stages)| stages.as_array().is_some_and(|s| s.iter().any(|s| s == stage)))
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no version with stage {stage}"))
    }
}

/// A TCP proxy on a loopback port in front of `127.0.0.1:target` that
/// records every request (to count them by operation) and, when asked,
/// answers moto's IAM refusals the way AWS's JSON protocol does.
///
/// moto checks signatures and IAM policies for real once
/// [`MotoServer::enable_iam_auth`] ran, but refuses in the XML shape of
/// AWS's query protocol (HTTP 403, `<Code>AccessDenied</Code>`), which no
/// JSON-protocol client reads; real Secrets Manager answers HTTP 400 with
/// `x-amzn-ErrorType` and `{"__type": …}`, and `AccessDeniedException`,
/// `UnrecognizedClientException` or `InvalidSignatureException` as the code.
/// [`AwsProxy::with_aws_errors`] rewrites exactly those answers; everything
/// else passes unchanged.
pub struct AwsProxy {
    port: u16,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    rewritten: Arc<AtomicUsize>,
    threads: Threads,
    acceptor: Option<JoinHandle<()>>,
}

impl AwsProxy {
    /// A proxy that passes everything unchanged (and counts).
    pub fn start(target: u16) -> AwsProxy {
        Self::launch(target, false)
    }

    /// A proxy that rewrites moto's XML IAM refusals as AWS's JSON errors.
    pub fn with_aws_errors(target: u16) -> AwsProxy {
        Self::launch(target, true)
    }

    fn launch(target: u16, rewrite: bool) -> AwsProxy {
        let threads = Threads::default();
        let sent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let rewritten = Arc::new(AtomicUsize::new(0));
        let (record, count) = (Arc::clone(&sent), Arc::clone(&rewritten));
        let (port, acceptor) = serve_loopback("AWS proxy", &threads, move |client, threads| {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
            threads.track(&server);
            let index = {
                let mut sent = record.lock().unwrap();
                sent.push(Vec::new());
                sent.len() - 1
            };
            let clone = |s: &TcpStream| s.try_clone().expect("clone a socket");
            let (mut from, mut to, record) = (clone(&client), clone(&server), Arc::clone(&record));
            let requests = std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    record.lock().unwrap()[index].extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
            });
            let count = Arc::clone(&count);
            let responses = std::thread::spawn(move || relay_responses(server, client, rewrite, &count));
            threads.handles.lock().unwrap().extend([requests, responses]);
        });
        AwsProxy { port, sent, rewritten, threads, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests for the Secrets Manager operation `name` (e.g.
    /// `GetSecretValue`) sent so far.
    pub fn calls(&self, name: &str) -> usize {
        let target = format!("secretsmanager.{name}");
        let sent = self.sent.lock().unwrap();
        sent.iter()
            .flat_map(|bytes| bytes.split(|b| *b == b'\n'))
            .filter(|line| {
                let line = String::from_utf8_lossy(line);
                line.split_once(':').is_some_and(|(header, value)| {
                    header.trim().eq_ignore_ascii_case("x-amz-target") && value.trim() == target
                })
            })
            .count()
    }

    /// moto refusals rewritten as AWS JSON errors so far.
    pub fn rewritten(&self) -> usize {
        self.rewritten.load(Ordering::SeqCst)
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.threads.stop(self.acceptor.take());
    }
}

/// Copies responses from `server` to `client`; with `rewrite`, answer by
/// answer (Content-Length framed), rewriting moto's XML refusals.
fn relay_responses(server: TcpStream, mut client: TcpStream, rewrite: bool, rewritten: &AtomicUsize) {
    let mut reader = BufReader::new(server);
    if !rewrite {
        let _ = std::io::copy(&mut reader, &mut client);
        let _ = client.shutdown(Shutdown::Write);
        return;
    }
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => head.extend_from_slice(&line),
            }
            if line == b"\r\n" {
                break;
            }
        }
        if head.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let length = text
            .lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case("content-length")))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let mut body = Vec::new();
        let framed = match length {
            Some(n) => {
                body.resize(n, 0);
                reader.read_exact(&mut body).is_ok()
            }
            None => {
                let _ = reader.read_to_end(&mut body);
                false
            }
        };
        let answer = match aws_error(&text, &body) {
            Some(answer) => {
                rewritten.fetch_add(1, Ordering::SeqCst);
                answer
            }
            None => [head, body].concat(),
        };
        if client.write_all(&answer).is_err() || !framed {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// moto's XML refusal (`head`, `body`) as AWS's JSON-protocol error, or
/// `None` for any other answer.
fn aws_error(head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let status = head.split_whitespace().nth(1)?;
    let body = std::str::from_utf8(body).ok()?;
    if status != "403" || !body.trim_start().starts_with("<?xml") {
        return None;
    }
    let between = |open: &str, close: &str| -> Option<String> {
        let start = body.find(open)? + open.len();
        let end = start + body[start..].find(close)?;
        Some(body[start..end].to_owned())
    };
    let code = match between("<Code>", "</Code>")?.as_str() {
        "AccessDenied" => "AccessDeniedException",
        "InvalidClientTokenId" => "UnrecognizedClientException",
        "SignatureDoesNotMatch" => "InvalidSignatureException",
        _ => return None,
    };
    let message = between("<Message>", "</Message>").unwrap_or_default();
    let json = json!({"__type": code, "message": message}).to_string();
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    Some(answer.into_bytes())
}
