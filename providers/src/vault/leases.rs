//! The leases of dynamic reads while the command runs, and the token
//! envcloak logged in with to read them: renewed at about two thirds of
//! their duration (with jitter, so many runs do not renew at once), and
//! revoked when the command has ended. The token is renewed too because
//! Vault revokes a token's leases when the token expires.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tokio::time::Instant;

use super::auth::{self, Granted};
use super::http::{jitter, Transport};
use super::kv::Lease;
use crate::backend::Warn;

/// How long one renewal may take.
const RENEW_TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed renewal, the next try comes this soon (or sooner, when
/// the lease ends first).
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A failed renewal of a lease or a token is not tried again sooner than
/// this (a token's, unless the token ends first).
const MIN_RETRY: Duration = Duration::from_secs(1);

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
        // Refused (a 4xx: the lease is gone or the token may not renew it)
        // is final; anything else (the network, a 5xx) is tried again.
        let refused = answer.as_ref().err().and_then(|e| e.status).is_some_and(|status| (400..500).contains(&status));
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
                if refused || left.is_zero() {
                    // Not renewed any more: new credentials are read before it ends.
                    self.due = None;
                    warn(&format!(
                        "the renewal of a dynamic secret's lease was refused ({why}); its credentials stop working in {} s",
                        left.as_secs()
                    ));
                } else {
                    self.due = Some(now + RETRY_AFTER.min(left / 2).max(MIN_RETRY));
                    warn(&format!(
                        "could not renew the lease of a dynamic secret ({why}); retrying, it ends in {} s",
                        left.as_secs()
                    ));
                }
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

/// A token envcloak logged in with: renewed while it holds leases, revoked
/// by `VaultProvider::release`. A token of the user's own is never held
/// here: its lifetime is the user's to decide (it may be shared with other
/// programs, or meant to expire soon), so envcloak neither extends nor
/// revokes it.
pub struct HeldLogin {
    /// Where it was obtained (the transport of its session, shared by the
    /// leases it read).
    pub transport: Arc<Transport>,
    /// The token.
    pub token: SecretString,
    /// The TTL it was granted at login, in seconds: each renewal asks for as
    /// much again.
    pub seconds: u64,
    /// When to renew it; `None` once it cannot be renewed any further.
    pub due: Option<Instant>,
    /// When it ends unless renewed; `None` for a token that does not expire.
    pub ends: Option<Instant>,
    /// Whether its end has been reported through `warn`.
    reported: bool,
}

impl HeldLogin {
    /// A token just obtained with `granted`.
    pub fn new(transport: Arc<Transport>, token: SecretString, granted: Granted) -> Self {
        let now = Instant::now();
        let seconds = granted.lease_duration;
        let expires = seconds > 0;
        let due = (expires && granted.renewable).then(|| now + renew_after(seconds));
        let ends = expires.then(|| now + Duration::from_secs(seconds));
        Self { transport, token, seconds, due, ends, reported: false }
    }

    /// Whether it read `lease` (each login has a transport of its own).
    pub fn holds(&self, lease: &HeldLease) -> bool {
        Arc::ptr_eq(&self.transport, &lease.transport)
    }

    /// Renews it if due; says through `warn`, once, when it cannot be
    /// renewed any further (not renewable, or its maximum TTL is near): it
    /// and the leases it holds end then.
    pub async fn keep(&mut self, warn: &Warn) {
        if self.due.is_some_and(|due| due <= Instant::now()) {
            self.renew(warn).await;
        }
        if let (None, Some(ends), false) = (self.due, self.ends, self.reported) {
            self.reported = true;
            warn(&format!(
                "the Vault token envcloak logged in with cannot be renewed: it and the leases of the dynamic \
                 secrets it holds end in {} s",
                ends.saturating_duration_since(Instant::now()).as_secs()
            ));
        }
    }

    /// Renews it for its original TTL (`auth/token/renew-self`). When Vault
    /// grants less (the token's maximum TTL is near) or no more renewals, it
    /// is not renewed again, and `warn` says when it ends.
    async fn renew(&mut self, warn: &Warn) {
        let now = Instant::now();
        match auth::renew(&self.transport, &self.token, self.seconds, now + RENEW_TIMEOUT).await {
            Ok(granted) => {
                self.ends = Some(now + Duration::from_secs(granted.lease_duration));
                if granted.renewable && granted.lease_duration >= self.seconds {
                    self.due = Some(now + renew_after(granted.lease_duration));
                } else {
                    self.due = None;
                    self.reported = true;
                    warn(&format!(
                        "the Vault token envcloak logged in with reached its maximum TTL: it and the leases of the \
                         dynamic secrets it holds end in {} s",
                        granted.lease_duration
                    ));
                }
            }
            Err(why) => {
                let left = self.ends.map_or(RETRY_AFTER * 2, |ends| ends.saturating_duration_since(now));
                if left.is_zero() {
                    self.due = None;
                    self.reported = true;
                    warn(&format!(
                        "could not renew the Vault token envcloak logged in with ({why}) before it expired: \
                         Vault revokes the leases of the dynamic secrets it held"
                    ));
                    return;
                }
                self.due = Some(now + RETRY_AFTER.min(left / 2).max(MIN_RETRY.min(left)));
                warn(&format!(
                    "could not renew the Vault token envcloak logged in with ({why}); retrying, it and the leases \
                     it holds end in {} s",
                    left.as_secs()
                ));
            }
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
