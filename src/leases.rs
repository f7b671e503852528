//! Dynamic credentials that live as long as the command: the providers
//! holding their leases, and the async runtime their connections belong
//! to, kept from the end of resolution until the command has ended. A
//! thread of its own renews the leases as they come due while the command
//! runs; then every lease, and every token envcloak logged in with, is
//! revoked: on each way out, since dropping a keeper releases too.

use std::sync::Arc;
use std::time::Duration;

use envcloak_providers::Provider;
use tokio::sync::{oneshot, Notify};

/// How long the release may take, beyond each provider's own bound.
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

/// When nothing is due, how long the keeper sleeps before asking again.
const IDLE: Duration = Duration::from_secs(3600);

/// How the keeper is told to end.
enum End {
    /// Revoke everything.
    Release,
    /// Let go without revoking (`export`).
    Abandon,
}

/// Leases to renew while the command runs, and to release when it has ended.
pub struct LeaseKeeper {
    end: Option<oneshot::Sender<End>>,
    thread: Option<std::thread::JoinHandle<()>>,
    view: LeaseView,
}

/// What can be asked about the leases of a keeper from another thread.
#[derive(Clone)]
pub struct LeaseView {
    held: Vec<Arc<dyn Provider>>,
    renewed: Arc<Notify>,
}

impl LeaseView {
    /// When the first credential stops working without a renewal that
    /// would extend it (see [`Provider::credentials_end`]).
    pub fn credentials_end(&self) -> Option<std::time::Instant> {
        self.held.iter().filter_map(|provider| provider.credentials_end()).min()
    }

    /// When the first lease ends unless renewed (see [`Provider::leases_end`]).
    pub fn leases_end(&self) -> Option<std::time::Instant> {
        self.held.iter().filter_map(|provider| provider.leases_end()).min()
    }

    /// Completes after the next round of renewals.
    pub async fn renewed(&self) {
        self.renewed.notified().await;
    }
}

impl LeaseKeeper {
    /// Keeps `held` (non-empty) and the `runtime` they fetched with, on a
    /// thread that renews their leases as they come due.
    pub fn new(runtime: tokio::runtime::Runtime, held: Vec<Arc<dyn Provider>>) -> Self {
        let (end_tx, end_rx) = oneshot::channel();
        let view = LeaseView { held: held.clone(), renewed: Arc::new(Notify::new()) };
        let renewed = Arc::clone(&view.renewed);
        let thread = std::thread::Builder::new()
            .name("envcloak-leases".into())
            .spawn(move || {
                runtime.block_on(keep(held, end_rx, &renewed));
                runtime.shutdown_background();
            })
            .expect("start the lease thread");
        Self { end: Some(end_tx), thread: Some(thread), view }
    }

    /// A view of the leases for another thread.
    pub fn view(&self) -> LeaseView {
        self.view.clone()
    }

    /// Revokes every lease and login token (bounded in time).
    pub fn release(mut self) {
        self.finish(End::Release);
    }

    /// Lets go without revoking: the credentials expire with their TTL
    /// (`export` hands them to another program). Each provider says so.
    pub fn abandon(mut self) {
        self.finish(End::Abandon);
    }

    fn finish(&mut self, end: End) {
        if let Some(sender) = self.end.take() {
            let _ = sender.send(end);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.finish(End::Release);
    }
}

/// Renews until told to end, then releases or abandons.
async fn keep(held: Vec<Arc<dyn Provider>>, mut end: oneshot::Receiver<End>, renewed: &Notify) {
    let ending = loop {
        let mut next = IDLE;
        for provider in &held {
            if let Some(due) = provider.renew().await {
                next = next.min(due);
            }
        }
        renewed.notify_one();
        tokio::select! {
            ending = &mut end => break ending.unwrap_or(End::Release),
            () = tokio::time::sleep(next) => {}
        }
    };
    match ending {
        End::Abandon => held.iter().for_each(|provider| provider.abandon()),
        End::Release => {
            crate::diag::note!("revoking the leases of {} backend(s)", held.len());
            let all = async {
                for provider in &held {
                    provider.release().await;
                }
            };
            if tokio::time::timeout(RELEASE_LIMIT, all).await.is_err() {
                crate::diag::warning!("revoking the leases took too long; they end with their TTL");
            }
        }
    }
}
