//! Integration tests of the `envcloak` binary: each test works in its own
//! temporary folder, writes its own `envcloak.toml`, and encrypts with the
//! real `age` CLI. Values are fake and never shown in failure messages.
//!
//! A test that needs an external tool carries
//! `#[cfg_attr(missing_TOOL, ignore = "needs TOOL: how to install it")]`:
//! outside CI, `cargo test` lists it as ignored when the build found no such
//! tool (see `support/tool.rs` and `build.rs`).

// A test that needs two tools that are both missing is ignored twice.
#![allow(unused_attributes)]

#[macro_use]
mod support;

mod age_tools;
mod audit;
mod aws;
mod bad_input;
mod check_export;
mod child_process;
mod composed;
mod corpus;
mod credentials;
mod doc_examples;
mod docs;
mod e2e;
mod exit_codes;
mod faults;
mod flask_example;
mod hostile_files;
mod leaks;
mod limits;
mod masking;
mod memory;
mod options;
mod passphrase;
mod pq;
mod pq_vectors;
mod scan;
mod secret_files;
mod signals;
mod source_rules;
mod team;
mod team_git;
mod trust;
mod vault;
mod watch;
mod written_files;
