//! Identities for Vault's JWT and Kubernetes auth methods: RS256 JWTs
//! signed with the `openssl` CLI ([`JwtIssuer`]), and stand-ins for GitHub's
//! OIDC token endpoint and Kubernetes' TokenReview API (an [`HttpStub`]
//! each).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::net::{Answer, HttpStub};
use super::{need, Tool};

/// An RSA key (made with `openssl`) that signs RS256 JWTs.
pub struct JwtIssuer {
    key: PathBuf,
    pub public_pem: String,
    pub issuer: String,
}

impl JwtIssuer {
    /// A new 2048-bit key in `dir`, named after `name`.
    pub fn new(dir: &Path, name: &str) -> JwtIssuer {
        need(Tool::Openssl);
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

impl HttpStub {
    /// GitHub's OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`):
    /// `{"value": JWT}` for a GET with `Authorization: bearer BEARER`, else 401.
    pub fn github_oidc(bearer: &str, jwt: &str) -> HttpStub {
        let (expected, jwt) = (format!("bearer {bearer}"), jwt.to_owned());
        HttpStub::start(move |request| {
            if request.header("authorization").is_some_and(|v| v.eq_ignore_ascii_case(&expected)) {
                Answer::json(200, json!({ "value": jwt }).to_string())
            } else {
                Answer::json(401, json!({"message": "bad bearer"}).to_string())
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
        HttpStub::start(move |request| {
            if request.method == "POST" && request.path.starts_with("/apis/authentication.k8s.io/v1/tokenreviews") {
                let review = json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {"authenticated": true, "user": user},
                });
                Answer::json(201, review.to_string())
            } else {
                Answer::json(404, json!({"kind": "Status", "status": "Failure", "code": 404}).to_string())
            }
        })
    }
}
