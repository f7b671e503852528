//! Fuzz target: see `envcloak_fuzz::config` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| envcloak_fuzz::config(data));
