//! Key pairs of the CA, of units' seals and of staff: SM2 (default) or ECDSA P-256. The secret
//! is the 32-byte scalar; callers seal it at rest (SM4-GCM) and never log it.

use tongban_crypto::cert::{KeyAlgorithm, verify_signature};

/// Why a PKI operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// A stored or submitted key is not a valid scalar or point.
    #[error("invalid key")]
    InvalidKey,
    /// A certificate request that is malformed or whose signature does not verify.
    #[error("invalid certificate request: {0}")]
    InvalidRequest(String),
    /// A subject name that cannot be encoded.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// DER encoding failed (a bug, or a value out of range).
    #[error("encoding: {0}")]
    Encoding(String),
}

/// A private key with its public half.
#[derive(Clone)]
pub struct KeyPair {
    algorithm: KeyAlgorithm,
    secret: [u8; 32],
    public: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("KeyPair").field("algorithm", &self.algorithm).field("public", &hex::encode(&self.public)).finish()
    }
}

impl KeyPair {
    /// A new random key.
    pub fn generate(algorithm: KeyAlgorithm) -> KeyPair {
        let mut rng = rand::rngs::OsRng;
        let secret: [u8; 32] = match algorithm {
            KeyAlgorithm::Sm2 => sm2::SecretKey::random(&mut rng).to_bytes().into(),
            KeyAlgorithm::P256 => p256::SecretKey::random(&mut rng).to_bytes().into(),
        };
        // A freshly generated scalar is always valid.
        Self::from_secret(algorithm, &secret).unwrap_or_else(|_| unreachable!("a generated key is valid"))
    }

    /// The key for a stored 32-byte secret scalar.
    pub fn from_secret(algorithm: KeyAlgorithm, secret: &[u8]) -> Result<KeyPair, PkiError> {
        let secret: [u8; 32] = secret.try_into().map_err(|_| PkiError::InvalidKey)?;
        let public = match algorithm {
            KeyAlgorithm::Sm2 => {
                let sk = sm2::SecretKey::from_slice(&secret).map_err(|_| PkiError::InvalidKey)?;
                sm2::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false).as_bytes().to_vec()
            }
            KeyAlgorithm::P256 => {
                let sk = p256::SecretKey::from_slice(&secret).map_err(|_| PkiError::InvalidKey)?;
                p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false).as_bytes().to_vec()
            }
        };
        Ok(KeyPair { algorithm, secret, public })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key, SEC1 uncompressed point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// The secret scalar, for sealing at rest.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Signs `message` and answers the DER `SEQUENCE { r, s }` that X.509 and GM/T 0015 carry:
    /// SM2 over SM3(Z_A ‖ M) with the default user id, or ECDSA P-256 over SHA-256(M).
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let raw: Vec<u8> = match self.algorithm {
            KeyAlgorithm::Sm2 => {
                let sk = sm2::SecretKey::from_slice(&self.secret).map_err(|_| PkiError::InvalidKey)?;
                let signer = sm2::dsa::SigningKey::new(tongban_crypto::sm::DEFAULT_DISTID, &sk).map_err(|_| PkiError::InvalidKey)?;
                let sig: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(&signer, message);
                sig.to_bytes().to_vec()
            }
            KeyAlgorithm::P256 => {
                let signer = p256::ecdsa::SigningKey::from_slice(&self.secret).map_err(|_| PkiError::InvalidKey)?;
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&signer, message);
                sig.to_bytes().to_vec()
            }
        };
        Ok(der_signature(&raw))
    }

    /// Checks a signature made by this key (DER or raw).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_signature(self.algorithm, &self.public, message, signature)
    }
}

/// `SEQUENCE { INTEGER r, INTEGER s }` from a raw 64-byte `r‖s`.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |b: &[u8]| {
        let trimmed: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
        let mut body = if trimmed.first().is_none_or(|x| x & 0x80 != 0) { vec![0] } else { Vec::new() };
        body.extend(trimmed);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = integer(r);
    body.extend(integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_and_survive_a_round_trip_through_their_secret() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
            let k = KeyPair::generate(alg);
            let sig = k.sign_der(b"tongban").expect("sign");
            assert_eq!(sig[0], 0x30, "DER sequence");
            assert!(k.verify(b"tongban", &sig));
            assert!(!k.verify(b"tongbaN", &sig));
            let again = KeyPair::from_secret(alg, k.secret_bytes()).expect("key");
            assert_eq!(again.public_key(), k.public_key());
            assert!(!format!("{k:?}").contains(&hex::encode(k.secret_bytes())), "Debug hides the secret");
        }
        assert_eq!(KeyPair::from_secret(KeyAlgorithm::Sm2, &[0u8; 32]).map(|_| ()), Err(PkiError::InvalidKey));
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        assert_eq!(der_signature(&raw)[..5], [0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(der_signature(&raw)[5..8], [0x02, 0x21, 0x00], "a high bit gets a leading zero");
    }
}
