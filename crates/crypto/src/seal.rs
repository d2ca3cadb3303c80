//! Secrets at rest (敏感数据加密存储): SM4-GCM (RFC 8998) under a key kept in a file apart from
//! the database, so a copied database alone gives away no signing key. Each sealed value names
//! what it is (the associated data), so one cannot be swapped for another.

use std::path::Path;

use aes_gcm::{
    AesGcm, KeyInit,
    aead::{Aead, Payload, consts::U12},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use sm4::Sm4;

/// SM4 in Galois/Counter mode with a 96-bit nonce.
type Sm4Gcm = AesGcm<Sm4, U12>;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not base64, or too short to hold a nonce and a tag.
    #[error("not a sealed value")]
    Malformed,
    /// The tag did not verify: another key, another context, or altered bytes.
    #[error("the sealed value does not open with this key and context")]
    Tampered,
}

/// Seals and opens secrets with the installation's SM4 key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Sm4Gcm,
}

impl SecretBox {
    /// A box with this 128-bit key.
    pub fn new(key: [u8; 16]) -> Self {
        SecretBox { cipher: Sm4Gcm::new(&key.into()) }
    }

    /// Reads the key file (32 hex digits), creating it with a random key (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {m}", path.display()));
        if path.exists() {
            let text = std::fs::read_to_string(path)?;
            let bytes = hex::decode(text.trim()).map_err(|_| bad("not hex"))?;
            let key: [u8; 16] = bytes.try_into().map_err(|_| bad("not a 128-bit key"))?;
            return Ok(SecretBox::new(key));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut key = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        write_private(path, &hex::encode(key))?;
        Ok(SecretBox::new(key))
    }

    /// Encrypts `plain` bound to `context`: base64 of nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce size cannot fail; an empty result would only
        // make the later open fail, never leak the secret.
        let sealed = self.cipher.encrypt(&nonce.into(), Payload { msg: plain, aad: context }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed.trim()).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        self.cipher.decrypt(&nonce.into(), Payload { msg: body, aad: context }).map_err(|_| SealError::Tampered)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::AeadInPlace;
    use sm4::cipher::BlockEncrypt;

    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn sm4_passes_the_gb_t_32907_example() {
        let key = h("0123456789abcdeffedcba9876543210");
        let cipher = Sm4::new_from_slice(&key).unwrap();
        let mut block: [u8; 16] = key.clone().try_into().unwrap();
        cipher.encrypt_block((&mut block).into());
        assert_eq!(block.to_vec(), h("681edf34d206965e86b3e94f536e4246"));
    }

    #[test]
    fn sm4_gcm_passes_the_rfc_8998_vector() {
        let key: [u8; 16] = h("0123456789ABCDEFFEDCBA9876543210").try_into().unwrap();
        let nonce: [u8; 12] = h("00001234567800000000ABCD").try_into().unwrap();
        let aad = h("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
        let mut buf = h(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        );
        let tag = Sm4Gcm::new(&key.into()).encrypt_in_place_detached((&nonce).into(), &aad, &mut buf).unwrap();
        assert_eq!(
            buf,
            h(
                "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
            )
        );
        assert_eq!(tag.to_vec(), h("83DE3541E4C2B58177E065A9BF7B62EC"));
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let b = SecretBox::new([7; 16]);
        let s = b.seal(b"private key", b"oidc.key:1");
        assert_eq!(b.open(&s, b"oidc.key:1").unwrap(), b"private key");
        assert_ne!(b.seal(b"private key", b"oidc.key:1"), s, "a fresh nonce each time");
        assert_eq!(b.open(&s, b"oidc.key:2"), Err(SealError::Tampered), "another context");
        assert_eq!(SecretBox::new([8; 16]).open(&s, b"oidc.key:1"), Err(SealError::Tampered), "another key");
        let mut bytes = STANDARD.decode(&s).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(b.open(&STANDARD.encode(bytes), b"oidc.key:1"), Err(SealError::Tampered), "one bit flipped");
        assert_eq!(b.open("not base64!", b""), Err(SealError::Malformed));
        assert_eq!(b.open("AAAA", b""), Err(SealError::Malformed));
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile_dir();
        let path = dir.join("secret.key");
        let sealed = SecretBox::load_or_create(&path).unwrap().seal(b"x", b"c");
        assert_eq!(SecretBox::load_or_create(&path).unwrap().open(&sealed, b"c").unwrap(), b"x");
        std::fs::write(&path, "zz").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err(), "a damaged key file is refused, not replaced");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tb-seal-{}-{}", std::process::id(), rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
