//! Every `hybrid*` vector of the C2SP CCTV age test suite (npm package
//! `cctv-age` 0.2.0, installed by .ci/run into tests/pq/node_modules),
//! decrypted with [`HybridIdentity`] and the age crate, must end as the
//! vector's `expect` line says.
//!
//! A vector is a header of `key: value` lines, an empty line, then an age
//! file; tests/pq/cctv_vectors.mjs writes them out of the package (node
//! reads the package's module; zlib-compressed vectors come out inflated).
//! Without node or the package the test is ignored (see tests/README.md).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use envcloak_providers::age_file::pq::HybridIdentity;

use crate::support::{need, npm_dir, Tool};

const EXPECTED_VECTORS: usize = 18;

/// Writes the vectors into a temporary folder.
fn vectors() -> (tempfile::TempDir, Vec<PathBuf>) {
    need(Tool::Typage);
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pq/cctv_vectors.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(dir.path())
        .env("ENVCLOAK_NPM_DIR", npm_dir())
        .output()
        .expect("start node");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.trim_start().starts_with("Error"))
            .unwrap_or("no message")
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    (dir, files)
}

/// What decrypting one vector gave, in the suite's words.
fn outcome(identities: &[Box<dyn age::Identity>], file: &[u8], armored: bool) -> (&'static str, Vec<u8>) {
    let dearmored;
    let file = if armored {
        let mut out = Vec::new();
        if age::armor::ArmoredReader::new(file).read_to_end(&mut out).is_err() {
            return ("armor failure", Vec::new());
        }
        dearmored = out;
        &dearmored[..]
    } else {
        file
    };
    let decryptor = match age::Decryptor::new_buffered(file) {
        Ok(d) => d,
        Err(_) => return ("header failure", Vec::new()),
    };
    let mut reader = match decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => return ("no match", Vec::new()),
        Err(age::DecryptError::InvalidMac) => return ("HMAC failure", Vec::new()),
        Err(_) => return ("header failure", Vec::new()),
    };
    let mut plaintext = Vec::new();
    match reader.read_to_end(&mut plaintext) {
        Ok(_) => ("success", plaintext),
        Err(_) => ("payload failure", plaintext),
    }
}

#[test]
#[cfg_attr(
    missing_typage,
    ignore = "needs node and typage: npm install --no-save --prefix tests/pq cctv-age@0.2.0 age-encryption@0.3.1"
)]
fn pq_cctv_hybrid_vectors() {
    let (_dir, files) = vectors();
    assert_eq!(files.len(), EXPECTED_VECTORS, "hybrid vectors in cctv-age 0.2.0");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let split = bytes.windows(2).position(|w| w == b"\n\n").expect("a header and a file");
        let header = std::str::from_utf8(&bytes[..split]).unwrap();
        let file = &bytes[split + 2..];
        let (mut expect, mut payload, mut armored) = ("", None, false);
        let mut identities: Vec<Box<dyn age::Identity>> = Vec::new();
        for line in header.lines() {
            let (key, value) = line.split_once(": ").expect("key: value");
            match key {
                "expect" => expect = value,
                "payload" => payload = Some(value),
                "armored" => armored = value == "yes",
                "identity" if value.starts_with("AGE-SECRET-KEY-PQ-1") => {
                    identities.push(Box::new(value.parse::<HybridIdentity>().unwrap()));
                }
                "identity" => identities.push(Box::new(value.parse::<age::x25519::Identity>().unwrap())),
                "compressed" => panic!("{name}: still compressed"),
                "passphrase" => panic!("{name}: no hybrid vector should need a passphrase"),
                _ => {}
            }
        }
        let (got, plaintext) = outcome(&identities, file, armored);
        if got != expect {
            failures.push(format!("{name}: expected {expect}, got {got}"));
            continue;
        }
        if let Some(payload) = payload {
            let hash: String = Sha256::digest(&plaintext).iter().map(|b| format!("{b:02x}")).collect();
            if hash != payload {
                failures.push(format!("{name}: the plaintext's SHA-256 differs"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), files.len(), failures.join("\n"));
    eprintln!("{} hybrid CCTV vectors passed", files.len());
}
