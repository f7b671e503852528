//! What a running command's secrets are kept with: its secret files and the
//! leases of its credentials.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Event, Reporter};
use crate::error::CliError;
use crate::leases::{LeaseKeeper, LeaseView};
use crate::secret_file::SecretFiles;

/// What the running command's secrets and credentials are kept with while
/// it runs: its secret files and the leases of its credentials. Shared by
/// the supervisor (until the command has ended) and the refresher (while it
/// is the running one); when the last holder lets go, the leases are revoked.
#[derive(Clone)]
pub struct Generation(Arc<Held>);

struct Held {
    files: SecretFiles,
    leases: Mutex<Option<LeaseKeeper>>,
    report: Reporter,
}

impl Generation {
    /// Keeps `files` and `leases`; `report` hears of revocations.
    pub fn new(files: SecretFiles, leases: Option<LeaseKeeper>, report: Reporter) -> Self {
        Self(Arc::new(Held { files, leases: Mutex::new(leases), report }))
    }

    /// The leases the command's credentials have now.
    pub fn view(&self) -> Option<LeaseView> {
        self.lock().as_ref().map(LeaseKeeper::view)
    }

    /// Writes `value` over the secret file of variable `name`.
    pub fn replace_file(&self, name: &str, value: &envcloak_providers::SecretValue) -> Result<(), CliError> {
        self.0.files.replace(name, value)
    }

    /// Puts `leases` in place of the current ones; returns those.
    pub fn swap_leases(&self, leases: Option<LeaseKeeper>) -> Option<LeaseKeeper> {
        std::mem::replace(&mut *self.lock(), leases)
    }

    fn lock(&self) -> MutexGuard<'_, Option<LeaseKeeper>> {
        self.0.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let leases = self.leases.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(leases) = leases.take() {
            leases.release();
            (self.report)(&Event::Revoked);
        }
    }
}
