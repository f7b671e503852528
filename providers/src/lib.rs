//! Secret providers for envcloak.
//!
//! A [`SecretRef`] names one secret (`age://`, `vault://`, `aws-sm://`), a
//! [`Provider`] fetches a whole batch of [`Source`]s for one backend at once,
//! and every fetched value lives in a [`SecretValue`] that is zeroized on drop
//! and never shown by `Debug` or `Display`.
#![forbid(unsafe_code)]

#[cfg(feature = "age")]
pub mod age_file;
#[cfg(feature = "aws")]
pub mod aws;
pub mod dotenv;
#[cfg(any(feature = "vault", feature = "aws"))]
mod json_fields;
mod provider;
mod reference;
mod secret;
#[cfg(feature = "vault")]
pub mod vault;

pub use provider::{BoxFuture, Document, FailureKind, FetchError, Fetched, Provider};
pub use reference::{Backend, RefError, SecretRef, Source, SourceQuery};
pub use secret::SecretValue;
