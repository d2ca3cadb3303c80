//! SM3 digests, HMAC-SM3 and SM2 signing keys.

use std::path::Path;

use hmac::{Hmac, Mac};
use sm2::{
    SecretKey,
    dsa::{Signature, SigningKey, VerifyingKey, signature::Signer, signature::Verifier},
    pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding},
};
use sm3::{Digest, Sm3};

/// The default SM2 user identity (GB/T 35276 / GM/T 0009): `1234567812345678`.
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// SM3 digest of `data`, lower-case hex (64 characters).
pub fn sm3_hex(data: &[u8]) -> String {
    hex::encode(Sm3::digest(data))
}

/// HMAC-SM3 of `data` under `key`, lower-case hex.
pub fn hmac_sm3_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match <Hmac<Sm3> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Problems with keys and signatures.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file does not hold an SM2 private key in PKCS#8 PEM.
    #[error("key file {0} does not hold an SM2 PKCS#8 private key")]
    Format(String),
}

/// The platform's audit key (审计密钥): an SM2 key pair that signs audit checkpoints and from
/// which the per-record HMAC key is derived. It lives outside the database.
#[derive(Clone)]
pub struct AuditSigner {
    signing: SigningKey,
    mac_key: [u8; 32],
}

impl AuditSigner {
    /// Loads the key from `path`, or creates it (mode 0600) when the file does not exist.
    /// A public key is written beside it (`.pub.pem`) for off-server checkpoint verification.
    pub fn load_or_create(path: &Path) -> Result<AuditSigner, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        let secret = if path.exists() {
            let pem = std::fs::read_to_string(path).map_err(io)?;
            SecretKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Format(path.display().to_string()))?
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let secret = SecretKey::random(&mut rand::rngs::OsRng);
            let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|_| KeyError::Format(path.display().to_string()))?;
            write_private(path, pem.as_bytes()).map_err(io)?;
            if let Ok(public) = secret.public_key().to_public_key_pem(LineEnding::LF) {
                std::fs::write(path.with_extension("pub.pem"), public).map_err(io)?;
            }
            secret
        };
        Self::from_secret(&secret).ok_or_else(|| KeyError::Format(path.display().to_string()))
    }

    /// A signer from raw secret key bytes (32 bytes); for tests.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<AuditSigner> {
        let secret = SecretKey::from_slice(bytes).ok()?;
        Self::from_secret(&secret)
    }

    fn from_secret(secret: &SecretKey) -> Option<AuditSigner> {
        let signing = SigningKey::new(DEFAULT_DISTID, secret).ok()?;
        let mut derive = Vec::from(&b"tongban audit record mac v1"[..]);
        derive.extend_from_slice(&secret.to_bytes());
        let digest = Sm3::digest(&derive);
        let mut mac_key = [0u8; 32];
        mac_key.copy_from_slice(&digest);
        Some(AuditSigner { signing, mac_key })
    }

    /// The key for per-record HMAC-SM3.
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// SM2 signature (r‖s, hex) over `message`.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        let sig: Signature = self.signing.sign(message);
        hex::encode(sig.to_bytes())
    }

    /// Checks an SM2 signature (r‖s, hex) over `message` with this key's public half.
    pub fn verify_hex(&self, message: &[u8], signature_hex: &str) -> bool {
        verify_sm2_hex(self.signing.verifying_key(), message, signature_hex)
    }
}

fn verify_sm2_hex(key: &VerifyingKey, message: &[u8], signature_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_matches_gbt_32905_appendix_a() {
        assert_eq!(sm3_hex(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(sm3_hex("abcd".repeat(16).as_bytes()), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    }

    #[test]
    fn sm2_verifies_the_gbt_32918_signature() {
        let d = hex::decode("3945208F7B2144B13F36E38AC6D39F9588939369 2860B51A42FB81EF4DF7C5B8".replace(' ', "")).unwrap();
        let secret = SecretKey::from_slice(&d).unwrap();
        let vk = VerifyingKey::new(DEFAULT_DISTID, secret.public_key()).unwrap();
        let sig = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3\
                   B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
        assert!(verify_sm2_hex(&vk, b"message digest", sig));
        assert!(!verify_sm2_hex(&vk, b"message digesT", sig));
    }

    #[test]
    fn audit_signer_round_trips_and_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("tb-key-{}", std::process::id()));
        let path = dir.join("audit-key.pem");
        let _ = std::fs::remove_dir_all(&dir);
        let a = AuditSigner::load_or_create(&path).unwrap();
        let b = AuditSigner::load_or_create(&path).unwrap();
        let sig = a.sign_hex(b"checkpoint 7");
        assert!(b.verify_hex(b"checkpoint 7", &sig));
        assert!(!b.verify_hex(b"checkpoint 8", &sig));
        assert_eq!(a.mac_key(), b.mac_key());
        assert!(path.with_extension("pub.pem").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
