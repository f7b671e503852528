//! The one list of backends: each is built in with its cargo feature, or
//! left out and named, so that a reference to it says how to get it.

use crate::backend::{Backend, BackendModule};

/// One backend of the registry.
pub enum Entry {
    /// Built into this envcloak.
    Built(&'static dyn BackendModule),
    /// Left out of this build: its scheme, and the cargo feature that adds it.
    LeftOut {
        /// The reference scheme.
        scheme: &'static str,
        /// The cargo feature.
        feature: &'static str,
    },
}

/// Every backend, in the order they are listed to users.
pub static ENTRIES: &[Entry] = &[
    #[cfg(feature = "age")]
    Entry::Built(&crate::age_file::MODULE),
    #[cfg(not(feature = "age"))]
    Entry::LeftOut { scheme: "age", feature: "age" },
    #[cfg(feature = "vault")]
    Entry::Built(&crate::vault::MODULE),
    #[cfg(not(feature = "vault"))]
    Entry::LeftOut { scheme: "vault", feature: "vault" },
    #[cfg(feature = "aws")]
    Entry::Built(&crate::aws::MODULE),
    #[cfg(not(feature = "aws"))]
    Entry::LeftOut { scheme: "aws-sm", feature: "aws" },
];

impl Entry {
    /// The reference scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            Entry::Built(module) => module.scheme(),
            Entry::LeftOut { scheme, .. } => scheme,
        }
    }
}

/// The backends built into this envcloak.
pub fn built() -> impl Iterator<Item = Backend> {
    ENTRIES.iter().filter_map(|entry| match entry {
        Entry::Built(module) => Some(Backend::new(*module)),
        Entry::LeftOut { .. } => None,
    })
}

/// The entry of `scheme`.
pub fn find(scheme: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|entry| entry.scheme() == scheme)
}

/// Where `scheme` is listed (for ordering backends as users see them).
pub fn position(scheme: &str) -> usize {
    ENTRIES.iter().position(|entry| entry.scheme() == scheme).unwrap_or(ENTRIES.len())
}

/// `age://, vault://, aws-sm://`, for messages.
pub fn schemes() -> String {
    ENTRIES.iter().map(|entry| format!("{}://", entry.scheme())).collect::<Vec<_>>().join(", ")
}
