//! The leases of dynamic reads while the command runs: renewed at about two
//! thirds of their duration (with jitter, so many runs do not renew at
//! once), and revoked when the command has ended.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tokio::time::Instant;

use super::auth;
use super::http::{jitter, Transport};
use super::kv::Lease;
use crate::backend::Warn;

/// How long one renewal may take.
const RENEW_TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed renewal, the next try comes this soon (or sooner, when
/// the lease ends first).
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A lease held until the command ends, and how to renew and revoke it.
pub struct HeldLease {
    /// Where it was obtained.
    pub transport: Arc<Transport>,
    /// The token that read it.
    pub token: SecretString,
    /// The token is one envcloak logged in with (revoked after its leases).
    pub login: bool,
    /// The lease as last obtained or renewed.
    pub lease: Lease,
    /// When to renew it; `None` once it cannot be renewed any further.
    pub due: Option<Instant>,
    /// When it ends unless renewed.
    pub ends: Instant,
}

impl HeldLease {
    /// A lease just obtained.
    pub fn new(transport: Arc<Transport>, token: SecretString, login: bool, lease: Lease) -> Self {
        let now = Instant::now();
        let due = lease.renewable.then(|| now + renew_after(lease.seconds));
        let ends = now + Duration::from_secs(lease.seconds);
        Self { transport, token, login, lease, due, ends }
    }

    /// Renews the lease for its original duration. When Vault grants less
    /// (the role's `max_ttl` is near), it will not be renewed again, and
    /// `warn` says when its credentials stop working.
    pub async fn renew(&mut self, warn: &Warn) {
        #[derive(Deserialize)]
        struct Answer {
            lease_duration: u64,
            #[serde(default)]
            renewable: bool,
        }
        let now = Instant::now();
        let body = serde_json::json!({ "lease_id": self.lease.id, "increment": self.lease.seconds }).to_string();
        let answer =
            self.transport.post(Some(&self.token), "sys/leases/renew", body.as_bytes(), now + RENEW_TIMEOUT).await;
        let renewed = answer.map_err(|e| auth::describe(&e)).and_then(|body| {
            serde_json::from_slice::<Answer>(&body).map_err(|_| "an answer without lease_duration".to_owned())
        });
        match renewed {
            Ok(answer) => {
                self.ends = now + Duration::from_secs(answer.lease_duration);
                if answer.renewable && answer.lease_duration >= self.lease.seconds {
                    self.due = Some(now + renew_after(answer.lease_duration));
                } else {
                    self.due = None;
                    warn(&format!(
                        "the lease of a dynamic secret reached its maximum TTL: its credentials stop working in {} s",
                        answer.lease_duration
                    ));
                }
            }
            Err(why) => {
                let left = self.ends.saturating_duration_since(now);
                self.due = Some(now + RETRY_AFTER.min(left / 2));
                warn(&format!(
                    "could not renew the lease of a dynamic secret ({why}); retrying, it ends in {} s",
                    left.as_secs()
                ));
            }
        }
    }

    /// Revokes the lease; a failure is said through `warn`, except for a
    /// login token's lease (revoking the token revokes it too).
    pub async fn revoke(&self, deadline: Instant, warn: &Warn) {
        let body = serde_json::json!({ "lease_id": self.lease.id }).to_string();
        let revoked = self.transport.post(Some(&self.token), "sys/leases/revoke", body.as_bytes(), deadline).await;
        if let (Err(e), false) = (revoked, self.login) {
            warn(&format!(
                "could not revoke the lease of a dynamic secret ({}); it ends with its TTL ({} s)",
                auth::describe(&e),
                self.ends.saturating_duration_since(Instant::now()).as_secs()
            ));
        }
    }
}

/// About two thirds of a lease's duration, less up to a tenth of it at
/// random.
fn renew_after(seconds: u64) -> Duration {
    let two_thirds = Duration::from_secs(seconds).mul_f64(2.0 / 3.0);
    two_thirds.saturating_sub(Duration::from_secs(seconds).mul_f64(jitter() / 10.0))
}

#[cfg(test)]
mod tests {
    use super::renew_after;
    use std::time::Duration;

    #[test]
    fn renewal_comes_at_about_two_thirds_with_jitter() {
        for _ in 0..100 {
            let after = renew_after(3600);
            assert!(after <= Duration::from_secs(2400) && after >= Duration::from_secs(2040), "{after:?}");
        }
        assert!(renew_after(3) <= Duration::from_secs(2));
    }
}
