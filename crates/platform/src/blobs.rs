//! The blob store (文件存储): uploaded files kept on disk under `<data_dir>/blobs`, named by the
//! SM3 digest of their content, so identical files are stored once and a stored file can be
//! checked against its name. Writes go to a temporary file first and are renamed into place.

use std::path::{Path, PathBuf};

use tongban_crypto::sm3_hex;

/// Files by SM3 digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl BlobStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobStore { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(key)
    }

    /// Stores `bytes`; answers their SM3 digest (the key).
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let key = sm3_hex(bytes);
        let path = self.path(&key);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(key);
        }
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent).await?;
        let tmp = parent.join(format!(".{key}.{}.tmp", tongban_crypto::token::random_token()));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(key)
    }

    /// Reads a file; `None` for an unknown key. Fails when the content no longer matches its key.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !valid_key(key) {
            return Ok(None);
        }
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) if sm3_hex(&bytes) == key => Ok(Some(bytes)),
            Ok(_) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("blob {key} does not match its digest"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_digest_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let key = store.put(b"%PDF-1.7 hello").await.unwrap();
        assert_eq!(store.put(b"%PDF-1.7 hello").await.unwrap(), key);
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"%PDF-1.7 hello"[..]));
        assert_eq!(store.get("../../etc/passwd").await.unwrap(), None);
        std::fs::write(dir.path().join(&key[..2]).join(&key), b"changed").unwrap();
        assert!(store.get(&key).await.is_err());
    }
}
