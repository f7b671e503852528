//! Fuzz target: see `envcloak_fuzz::dotenv` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| envcloak_fuzz::dotenv(data));
