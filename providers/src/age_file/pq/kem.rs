//! The MLKEM768-X25519 hybrid KEM (X-Wing) as an HPKE KEM, for the `hpke`
//! crate: ML-KEM-768 from `ml-kem`, X25519 from `x25519-dalek`, the SHA3-256
//! combiner and SHAKE256 key expansion from `sha3`.
//!
//! It follows the HPKE hybrid KEM reference (filippo.io/hpke-pq, which
//! condenses draft-ietf-hpke-pq-03 and draft-connolly-cfrg-xwing-kem): a
//! private key is a 32-byte seed; `SHAKE256(seed, 96)` gives the ML-KEM-768
//! key generation seed `d || z` (64 bytes) and the X25519 scalar (32 bytes);
//! the public key is `ek_PQ || ek_T` (1184 + 32 bytes), the encapsulated key
//! `ct_PQ || ct_T` (1088 + 32 bytes), and the shared secret
//! `SHA3-256(ss_PQ || ss_T || ct_T || ek_T || "\.//^\")`.

use hpke::generic_array::typenum::{Sum, Unsigned, U32};
use hpke::{HpkeError, Serializable};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{Ciphertext, EncodedSizeUser, KemCore, MlKem768};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use subtle::ConstantTimeEq;
use x25519_dalek::{EphemeralSecret, PublicKey as X25519Public, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// The HPKE KEM identifier of MLKEM768-X25519.
pub(super) const KEM_ID: u16 = 0x647a;
/// The X-Wing combiner label, `\.//^\`.
const LABEL: &[u8] = b"\\.//^\\";

type KemNek = <<MlKem768 as KemCore>::EncapsulationKey as EncodedSizeUser>::EncodedSize;
type KemNct = <MlKem768 as KemCore>::CiphertextSize;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;
type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;

/// The length of a public key (`ek_PQ || ek_T`).
pub(super) const PUBLIC_KEY_LEN: usize = 1216;
/// The length of an encapsulated key (`ct_PQ || ct_T`).
pub(super) const ENC_LEN: usize = 1120;
/// The length of a private key (the seed).
pub(super) const SEED_LEN: usize = 32;

/// The private key: its seed and what the seed expands to. `Debug` is not
/// implemented; the ML-KEM key zeroizes itself on drop (`ml-kem`'s
/// `zeroize` feature), the X25519 scalar too (`x25519-dalek`'s).
#[derive(Clone)]
pub(crate) struct PrivateKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    dk_pq: DecapsulationKey,
    dk_t: StaticSecret,
    public: PublicKey,
}

impl PrivateKey {
    /// Expands a seed into the key pair.
    pub(super) fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut expanded = Zeroizing::new([0u8; 96]);
        Shake256::default().chain(seed).finalize_xof().read(&mut expanded[..]);
        let mut d = ml_kem::B32::default();
        let mut z = ml_kem::B32::default();
        d.copy_from_slice(&expanded[..32]);
        z.copy_from_slice(&expanded[32..64]);
        let (dk_pq, ek_pq) = MlKem768::generate_deterministic(&d, &z);
        d.as_mut_slice().zeroize();
        z.as_mut_slice().zeroize();
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&expanded[64..]);
        let dk_t = StaticSecret::from(scalar);
        scalar.zeroize();
        let ek_t = X25519Public::from(&dk_t);
        Self { seed: Zeroizing::new(*seed), dk_pq, dk_t, public: PublicKey { ek_pq, ek_t } }
    }

    /// The seed, which is the key's serialization.
    pub(super) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The matching public key.
    pub(super) fn public(&self) -> &PublicKey {
        &self.public
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.seed.ct_eq(&*other.seed).into()
    }
}

impl Eq for PrivateKey {}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed[..]);
    }
}

impl hpke::Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: &[u8; SEED_LEN] =
            encoded.try_into().map_err(|_| HpkeError::IncorrectInputLength(SEED_LEN, encoded.len()))?;
        Ok(Self::from_seed(seed))
    }
}

/// The public key: the ML-KEM-768 encapsulation key and the X25519 point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PublicKey {
    ek_pq: EncapsulationKey,
    ek_t: X25519Public,
}

impl Eq for PublicKey {}

impl Serializable for PublicKey {
    type OutputSize = Sum<KemNek, U32>;

    fn write_exact(&self, buf: &mut [u8]) {
        let split = KemNek::USIZE;
        buf[..split].copy_from_slice(&self.ek_pq.as_bytes());
        buf[split..].copy_from_slice(self.ek_t.as_bytes());
    }
}

impl hpke::Deserializable for PublicKey {
    /// Parses `ek_PQ || ek_T`, refusing an ML-KEM key whose coefficients are
    /// not reduced modulo q (the FIPS 203 encapsulation key check: decoding
    /// reduces them, so the key must encode back to the same bytes).
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != PUBLIC_KEY_LEN {
            return Err(HpkeError::IncorrectInputLength(PUBLIC_KEY_LEN, encoded.len()));
        }
        let (pq, t) = encoded.split_at(KemNek::USIZE);
        let pq_array = pq.try_into().map_err(|_| HpkeError::ValidationError)?;
        let ek_pq = EncapsulationKey::from_bytes(pq_array);
        if ek_pq.as_bytes().as_slice() != pq {
            return Err(HpkeError::ValidationError);
        }
        let t: [u8; 32] = t.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(Self { ek_pq, ek_t: X25519Public::from(t) })
    }
}

/// The encapsulated key `ct_PQ || ct_T`.
#[derive(Clone)]
pub(crate) struct EncappedKey {
    ct_pq: Ciphertext<MlKem768>,
    ct_t: [u8; 32],
}

impl Serializable for EncappedKey {
    type OutputSize = Sum<KemNct, U32>;

    fn write_exact(&self, buf: &mut [u8]) {
        let split = KemNct::USIZE;
        buf[..split].copy_from_slice(&self.ct_pq);
        buf[split..].copy_from_slice(&self.ct_t);
    }
}

impl hpke::Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != ENC_LEN {
            return Err(HpkeError::IncorrectInputLength(ENC_LEN, encoded.len()));
        }
        let (pq, t) = encoded.split_at(KemNct::USIZE);
        let ct_pq = Ciphertext::<MlKem768>::try_from(pq).map_err(|_| HpkeError::ValidationError)?;
        let ct_t = t.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(Self { ct_pq, ct_t })
    }
}

/// MLKEM768-X25519, KEM identifier 0x647a.
pub(crate) struct MlKem768X25519;

impl hpke::Kem for MlKem768X25519 {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = KEM_ID;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.public.clone()
    }

    /// `seed = SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)`; age
    /// itself never derives keys this way (an identity is the seed).
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let label = b"DeriveKeyPair";
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        Shake256::default()
            .chain(ikm)
            .chain(b"HPKE-v1")
            .chain(b"KEM")
            .chain(KEM_ID.to_be_bytes())
            .chain(u16::try_from(label.len()).unwrap_or(u16::MAX).to_be_bytes())
            .chain(label)
            .chain(u16::try_from(SEED_LEN).unwrap_or(u16::MAX).to_be_bytes())
            .finalize_xof_into(&mut seed[..]);
        let sk = PrivateKey::from_seed(&seed);
        let pk = sk.public.clone();
        (sk, pk)
    }

    fn decap(
        sk_recip: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &EncappedKey,
    ) -> Result<hpke::kem::SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            // Only the base mode is defined for this KEM.
            return Err(HpkeError::DecapError);
        }
        // ML-KEM rejects implicitly: a wrong ciphertext gives a random-looking
        // secret, and the AEAD then fails.
        let mut ss_pq = sk_recip.dk_pq.decapsulate(&encapped_key.ct_pq).map_err(|()| HpkeError::DecapError)?;
        let ss_t = sk_recip.dk_t.diffie_hellman(&X25519Public::from(encapped_key.ct_t));
        let result = if ss_t.was_contributory() {
            Ok(combine(&ss_pq, ss_t.as_bytes(), &encapped_key.ct_t, sk_recip.public.ek_t.as_bytes()))
        } else {
            // A low-order point: the X25519 secret would be all zeros.
            Err(HpkeError::DecapError)
        };
        ss_pq.as_mut_slice().zeroize();
        result
    }

    fn encap<R: hpke::rand_core::CryptoRng + hpke::rand_core::RngCore>(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut R,
    ) -> Result<(hpke::kem::SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ct_pq, mut ss_pq) = pk_recip.ek_pq.encapsulate(csprng).map_err(|()| HpkeError::EncapError)?;
        let sk_e = EphemeralSecret::random_from_rng(&mut *csprng);
        let ct_t = X25519Public::from(&sk_e);
        let ss_t = sk_e.diffie_hellman(&pk_recip.ek_t);
        let result = if ss_t.was_contributory() {
            let shared = combine(&ss_pq, ss_t.as_bytes(), ct_t.as_bytes(), pk_recip.ek_t.as_bytes());
            Ok((shared, EncappedKey { ct_pq, ct_t: ct_t.to_bytes() }))
        } else {
            Err(HpkeError::EncapError)
        };
        ss_pq.as_mut_slice().zeroize();
        result
    }
}

/// `SHA3-256(ss_PQ || ss_T || ct_T || ek_T || Label)`.
fn combine(ss_pq: &[u8], ss_t: &[u8], ct_t: &[u8], ek_t: &[u8]) -> hpke::kem::SharedSecret<MlKem768X25519> {
    let mut shared = hpke::kem::SharedSecret::<MlKem768X25519>::default();
    let mut digest = Sha3_256::new()
        .chain_update(ss_pq)
        .chain_update(ss_t)
        .chain_update(ct_t)
        .chain_update(ek_t)
        .chain_update(LABEL)
        .finalize();
    shared.0.copy_from_slice(&digest);
    digest.as_mut_slice().zeroize();
    shared
}
