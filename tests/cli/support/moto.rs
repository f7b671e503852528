//! A real `moto_server` per test ([`MotoServer`]): a local AWS endpoint whose
//! Secrets Manager and IAM are set up through the real AWS API with boto3.
//! For a [`FaultProxy`] in front of it: requests counted by operation
//! (`X-Amz-Target`, [`calls`]), and moto's IAM refusals given the shape real
//! AWS gives them ([`aws_errors`]). The server stops when dropped.
//!
//! Setup failures show the operation, the secret name and AWS's error code,
//! never a value.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::net::{free_port, http, Answer};
use super::proxy::{FaultProxy, Response};
use super::{need, Tool};

/// The region every test uses.
pub const REGION: &str = "eu-west-1";
/// How long a server may take to answer its first request.
const START_LIMIT: Duration = Duration::from_secs(20);

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
    /// Starts a server and waits until it answers; panics when moto is
    /// missing ([`Tool::Moto`]).
    pub fn start() -> MotoServer {
        need(Tool::Moto);
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
                    return server;
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

/// How many requests for the Secrets Manager operation `name` (e.g.
/// `GetSecretValue`) went through `proxy` so far.
pub fn calls(proxy: &FaultProxy, name: &str) -> usize {
    let target = format!("secretsmanager.{name}");
    proxy.requests().iter().filter(|r| r.header("x-amz-target") == Some(target.as_str())).count()
}

/// For [`Mode::Rewrite`](super::proxy::Mode::Rewrite): moto's IAM refusals
/// in the shape real AWS gives them.
///
/// moto checks signatures and IAM policies for real once
/// [`MotoServer::enable_iam_auth`] ran, but refuses in the XML shape of
/// AWS's query protocol (HTTP 403, `<Code>AccessDenied</Code>`), which no
/// JSON-protocol client reads; real Secrets Manager answers HTTP 400 with
/// `x-amzn-ErrorType` and `{"__type": …}`, and `AccessDeniedException`,
/// `UnrecognizedClientException` or `InvalidSignatureException` as the code.
/// This rewrites exactly those answers; everything else passes unchanged.
pub fn aws_errors(response: &Response) -> Option<Answer> {
    let body = response.text();
    if response.status != 403 || !body.trim_start().starts_with("<?xml") {
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
    Some(Answer::aws(400, code, &between("<Message>", "</Message>").unwrap_or_default()))
}
