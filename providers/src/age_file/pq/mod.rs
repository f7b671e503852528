//! Hybrid post-quantum age recipients (`age1pq1…`) and identities
//! (`AGE-SECRET-KEY-PQ-1…`): the `mlkem768x25519` stanza of the C2SP age
//! specification, as Go age 1.3 and typage write it.
//!
//! The file key is sealed with HPKE (RFC 9180, base mode) using the
//! MLKEM768-X25519 KEM (see [`kem`]), HKDF-SHA256 and ChaCha20-Poly1305, with
//! `info = "age-encryption.org/mlkem768x25519"` and an empty `aad`. The
//! stanza is `-> mlkem768x25519 BASE64(enc)` with the HPKE ciphertext as its
//! body. The recipient labels its stanzas `postquantum`, so the age crate's
//! encryptor refuses to mix them with classic recipients, whose stanzas would
//! undo the post-quantum protection.

mod kem;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{bech32_decode, bech32_encode};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use bech32::Hrp;
use hpke::{Deserializable, Serializable};
use zeroize::{Zeroize, Zeroizing};

use kem::MlKem768X25519;

/// How a post-quantum recipient starts.
pub const RECIPIENT_PREFIX: &str = "age1pq1";
/// How a post-quantum identity starts.
pub const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";
/// The stanza type.
pub const STANZA_TAG: &str = "mlkem768x25519";
/// The label of the stanzas of a post-quantum recipient: the age crate's
/// encryptor only combines recipients that return the same labels.
pub const POSTQUANTUM_LABEL: &str = "postquantum";

/// The HPKE `info`.
const HPKE_INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
const RECIPIENT_HRP: Hrp = Hrp::parse_unchecked("age1pq");
const IDENTITY_HRP: Hrp = Hrp::parse_unchecked("age-secret-key-pq-");
/// The stanza argument's length: 1120 bytes in base64 without padding.
const ENC_BASE64_LEN: usize = 1494;
/// A stanza body: the 16-byte file key and the 16-byte Poly1305 tag.
const BODY_LEN: usize = FILE_KEY_BYTES + 16;

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;

/// A hybrid ML-KEM-768 + X25519 recipient (`age1pq1…`).
#[derive(Clone, PartialEq, Eq)]
pub struct HybridRecipient(kem::PublicKey);

impl FromStr for HybridRecipient {
    type Err = &'static str;

    /// Parses `age1pq1…` (Bech32 without a length limit) and checks the
    /// ML-KEM-768 key.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        bech32_decode(
            text,
            |_| "not valid Bech32",
            |hrp| if hrp == RECIPIENT_HRP { Ok(()) } else { Err("not an age1pq1 recipient") },
            |_, bytes| {
                let bytes: Vec<u8> = bytes.collect();
                if bytes.len() != kem::PUBLIC_KEY_LEN {
                    return Err("the key has the wrong length for ML-KEM-768 + X25519");
                }
                kem::PublicKey::from_bytes(&bytes).map_err(|_| "the ML-KEM-768 key is invalid")
            },
        )
        .map(Self)
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.0.to_bytes()))
    }
}

impl fmt::Debug for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl age::Recipient for HybridRecipient {
    fn wrap_file_key(&self, file_key: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let mut rng = rand_core::OsRng;
        let (enc, body) = hpke::single_shot_seal::<Aead, Kdf, MlKem768X25519, _>(
            &hpke::OpModeS::Base,
            &self.0,
            HPKE_INFO,
            file_key.expose_secret(),
            &[],
            &mut rng,
        )
        .map_err(|e| {
            age::EncryptError::Io(std::io::Error::other(format!("ML-KEM-768 + X25519 sealing failed: {e}")))
        })?;
        let stanza = Stanza { tag: STANZA_TAG.into(), args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())], body };
        Ok((vec![stanza], HashSet::from([POSTQUANTUM_LABEL.to_owned()])))
    }
}

/// A hybrid ML-KEM-768 + X25519 identity (`AGE-SECRET-KEY-PQ-1…`): a 32-byte
/// seed and the keys it expands to, all zeroized on drop.
#[derive(Clone)]
pub struct HybridIdentity(kem::PrivateKey);

impl HybridIdentity {
    /// A new identity from the operating system's random numbers.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; kem::SEED_LEN]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed[..]);
        Self(kem::PrivateKey::from_seed(&seed))
    }

    /// The recipient that files for this identity are encrypted to.
    pub fn to_public(&self) -> HybridRecipient {
        HybridRecipient(self.0.public().clone())
    }

    /// The `AGE-SECRET-KEY-PQ-1…` text.
    pub fn to_secret_string(&self) -> SecretString {
        let mut lower = bech32_encode(IDENTITY_HRP, self.0.seed());
        let upper = lower.to_ascii_uppercase();
        lower.zeroize();
        SecretString::from(upper)
    }
}

impl FromStr for HybridIdentity {
    type Err = &'static str;

    /// Parses `AGE-SECRET-KEY-PQ-1…`. The error never quotes the text.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        bech32_decode(
            text,
            |_| "not valid Bech32",
            |hrp| if hrp == IDENTITY_HRP { Ok(()) } else { Err("not an AGE-SECRET-KEY-PQ-1 identity") },
            |_, bytes| {
                let mut seed = Zeroizing::new([0u8; kem::SEED_LEN]);
                let mut len = 0usize;
                for byte in bytes {
                    if let Some(slot) = seed.get_mut(len) {
                        *slot = byte;
                    }
                    len += 1;
                }
                if len != kem::SEED_LEN {
                    return Err("the key has the wrong length");
                }
                Ok(Self(kem::PrivateKey::from_seed(&seed)))
            },
        )
    }
}

impl fmt::Debug for HybridIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HybridIdentity({})", self.to_public())
    }
}

impl age::Identity for HybridIdentity {
    /// Unwraps an `mlkem768x25519` stanza, checking its shape as the
    /// specification requires: one argument, the canonical base64 of 1120
    /// bytes, and a 32-byte body. A malformed stanza, or an X25519 share that
    /// gives an all-zero secret, makes the header invalid; a stanza for
    /// another key is no match.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let invalid = || Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid();
        };
        if arg.len() != ENC_BASE64_LEN {
            return invalid();
        }
        let Ok(enc) = BASE64_STANDARD_NO_PAD.decode(arg) else {
            return invalid();
        };
        let Ok(enc) = kem::EncappedKey::from_bytes(&enc) else {
            return invalid();
        };
        if stanza.body.len() != BODY_LEN {
            return invalid();
        }
        match hpke::single_shot_open::<Aead, Kdf, MlKem768X25519>(
            &hpke::OpModeR::Base,
            &self.0,
            &enc,
            HPKE_INFO,
            &stanza.body,
            &[],
        ) {
            Ok(mut plaintext) => {
                let file_key = FileKey::try_init_with_mut(|key| {
                    if plaintext.len() == FILE_KEY_BYTES {
                        key.copy_from_slice(&plaintext);
                        Ok(())
                    } else {
                        Err(age::DecryptError::InvalidHeader)
                    }
                });
                plaintext.zeroize();
                Some(file_key)
            }
            Err(hpke::HpkeError::DecapError) => invalid(),
            // Sealed to another key: the AEAD does not open.
            Err(_) => None,
        }
    }
}

/// Whether recipient text is post-quantum (`age1pq1…`).
pub fn is_recipient(text: &str) -> bool {
    text.get(..RECIPIENT_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(RECIPIENT_PREFIX))
}

/// Whether identity text is post-quantum (`AGE-SECRET-KEY-PQ-1…`).
pub fn is_identity(text: &str) -> bool {
    text.get(..IDENTITY_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(IDENTITY_PREFIX))
}

#[cfg(test)]
mod tests;
