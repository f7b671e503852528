//! Secret providers for envcloak.
//!
//! Each backend is one module behind its cargo feature, listed once in
//! [`registry`] (see [`backend`] for what a module provides). A [`SecretRef`]
//! names one secret (`age://`, `vault://`, `aws-sm://`), a [`Provider`]
//! fetches a whole batch of [`Source`]s for one backend at once,
//! and every fetched value lives in a [`SecretValue`] that is zeroized on drop
//! and never shown by `Debug` or `Display`.
#![forbid(unsafe_code)]

#[cfg(feature = "age")]
pub mod age_file;
#[cfg(feature = "aws")]
pub mod aws;
pub mod backend;
pub mod dotenv;
#[cfg(any(feature = "vault", feature = "aws"))]
mod json_fields;
mod provider;
mod reference;
pub mod registry;
mod secret;
#[cfg(feature = "vault")]
pub mod vault;

pub use backend::{Backend, BackendConfig, BackendModule, Destination, RunContext};
pub use provider::{BoxFuture, Document, FailureKind, FetchError, Fetched, Provider, Stamp, Stamps};
pub use reference::{RefError, SecretRef, Selector, Source};
pub use secret::SecretValue;
