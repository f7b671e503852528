//! Dynamic credentials that live as long as the command: the providers
//! holding their leases, and the async runtime their connections belong
//! to, kept from the end of resolution until the command has ended. Then
//! every lease, and every token envcloak logged in with, is revoked: on
//! each way out, since dropping a keeper releases too.

use std::sync::Arc;

use envcloak_providers::Provider;

/// How long the release may take, beyond each provider's own bound.
const RELEASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Leases to release when the command has ended.
pub struct LeaseKeeper {
    runtime: Option<tokio::runtime::Runtime>,
    held: Vec<Arc<dyn Provider>>,
}

impl LeaseKeeper {
    /// Keeps `held` (non-empty) and the `runtime` they fetched with.
    pub fn new(runtime: tokio::runtime::Runtime, held: Vec<Arc<dyn Provider>>) -> Self {
        Self { runtime: Some(runtime), held }
    }

    /// Revokes every lease and login token (bounded in time).
    pub fn release(mut self) {
        self.release_now();
    }

    /// Lets go without revoking: the credentials expire with their TTL
    /// (`export` hands them to another program). Each provider says so.
    pub fn abandon(mut self) {
        for provider in std::mem::take(&mut self.held) {
            provider.abandon();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn release_now(&mut self) {
        let held = std::mem::take(&mut self.held);
        let Some(runtime) = self.runtime.take() else { return };
        if !held.is_empty() {
            crate::diag::note!("revoking the leases of {} backend(s)", held.len());
            runtime.block_on(async {
                let all = async {
                    for provider in &held {
                        provider.release().await;
                    }
                };
                if tokio::time::timeout(RELEASE_LIMIT, all).await.is_err() {
                    crate::diag::warning!("revoking the leases took too long; they end with their TTL");
                }
            });
        }
        runtime.shutdown_background();
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.release_now();
    }
}
