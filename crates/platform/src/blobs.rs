//! The blob store (文件存储): uploaded files named by the SM3 digest of their content, so identical
//! files are stored once and a stored file can be checked against its name.
//!
//! Two backends behind one code path (`object_store`): a local directory (the default,
//! `<data_dir>/blobs/<first 2 hex>/<sm3 hex>`, written to a temporary file and renamed into place),
//! or an S3-compatible object store (MinIO, Ceph RGW, a cloud's S3) when `blobs.s3_endpoint` is
//! set, with the same `<first 2 hex>/<sm3 hex>` names under `blobs.s3_prefix`. Path-style requests
//! are used, which every S3-compatible server accepts.

use std::{path::PathBuf, sync::Arc, time::Duration};

use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, aws::AmazonS3Builder, local::LocalFileSystem,
    path::Path as ObjectPath,
};
use tongban_crypto::sm3_hex;

use crate::config::{BlobsConfig, Config, ConfigError};

/// Files by SM3 digest, on local disk or in an S3 bucket.
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    /// An open store, with the key prefix inside it (S3 only; empty for the local directory).
    Open { store: Arc<dyn ObjectStore>, prefix: Vec<String> },
    /// A store that could not be opened: every read and write fails with this reason.
    Unavailable(Arc<str>),
}

/// A blob store that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// The local directory could not be created or opened.
    #[error("blob directory {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why it could not be used.
        source: std::io::Error,
    },
    /// A `blobs.*` key holds a value that cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The S3 client could not be built from the configuration.
    #[error("S3 blob store ({endpoint}, bucket {bucket}): {source}")]
    S3 {
        /// The configured endpoint.
        endpoint: String,
        /// The configured bucket.
        bucket: String,
        /// What object_store reported.
        source: object_store::Error,
    },
}

fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Makes ring the process's TLS crypto provider unless one is installed already: the S3 client's
/// rustls is built without a provider of its own (see the workspace `Cargo.toml`).
pub(crate) fn install_crypto_provider() {
    // Err only means a provider is installed already (by `serve` for its own TLS, say).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Maps an object_store error to the `std::io::Error` the store's callers expect.
fn io_error(e: object_store::Error) -> std::io::Error {
    use std::io::ErrorKind;
    let kind = match &e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
        object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        _ => ErrorKind::Other,
    };
    std::io::Error::new(kind, format!("blob store: {e}"))
}

impl BlobStore {
    /// A store in the local directory `dir` (created now). Where it cannot be created, a store
    /// whose every read and write fails with the reason; [`BlobStore::local`] reports it instead.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::local(dir).unwrap_or_else(Self::unavailable)
    }

    /// A store in the local directory `dir`, created if missing. Files are kept at
    /// `<dir>/<first 2 hex>/<key>`.
    pub fn local(dir: impl Into<PathBuf>) -> Result<Self, BlobStoreError> {
        let path = dir.into();
        let fail = |source| BlobStoreError::Directory { path: path.clone(), source };
        std::fs::create_dir_all(&path).map_err(fail)?;
        let store = LocalFileSystem::new_with_prefix(&path).map_err(|e| fail(io_error(e)))?;
        Ok(BlobStore { backend: Backend::Open { store: Arc::new(store), prefix: Vec::new() } })
    }

    /// The store the configuration names: S3 when `blobs.s3_endpoint` is set, otherwise the
    /// directory `<data_dir>/blobs`. Nothing is sent to S3 here: [`BlobStore::check`] tells
    /// whether the server answers and takes the credentials.
    pub fn from_config(config: &Config) -> Result<Self, BlobStoreError> {
        let blobs = &config.blobs;
        blobs.validate()?;
        if !blobs.is_s3() {
            return Self::local(config.data_dir.join("blobs"));
        }
        install_crypto_provider();
        let store = s3_builder(blobs).build().map_err(|source| BlobStoreError::S3 {
            endpoint: blobs.s3_endpoint.clone(),
            bucket: blobs.s3_bucket.clone(),
            source,
        })?;
        Ok(BlobStore { backend: Backend::Open { store: Arc::new(store), prefix: blobs.prefix_segments() } })
    }

    /// A store that fails every read and write with `reason`: for a process that must start
    /// although [`BlobStore::from_config`] failed, without putting files anywhere unexpected.
    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        BlobStore { backend: Backend::Unavailable(reason.to_string().into()) }
    }

    /// The open store and its key prefix.
    fn open(&self) -> std::io::Result<(&dyn ObjectStore, &[String])> {
        match &self.backend {
            Backend::Open { store, prefix } => Ok((store.as_ref(), prefix)),
            Backend::Unavailable(reason) => Err(std::io::Error::other(format!("blob store unavailable: {reason}"))),
        }
    }

    /// Checks that the store answers and the credentials are accepted, by listing the prefix
    /// (S3: needs `s3:ListBucket`, which S3 also needs to answer "not found" rather than
    /// "access denied" for a missing file). For start-up, so a wrong key fails there.
    pub async fn check(&self) -> std::io::Result<()> {
        let (store, prefix) = self.open()?;
        let prefix = (!prefix.is_empty()).then(|| ObjectPath::from_iter(prefix.iter().map(String::as_str)));
        store.list_with_delimiter(prefix.as_ref()).await.map_err(io_error)?;
        Ok(())
    }

    /// Stores `bytes`; answers their SM3 digest (the key). Content already stored under its key is
    /// not written again.
    pub async fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let (store, prefix) = self.open()?;
        let key = sm3_hex(bytes);
        let location = location(prefix, &key);
        match store.head(&location).await {
            Ok(_) => return Ok(key),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(io_error(e)),
        }
        // Two writers of the same key write the same bytes, so a plain overwrite is safe.
        store.put(&location, PutPayload::from(bytes.to_vec())).await.map_err(io_error)?;
        Ok(key)
    }

    /// Reads a file; `None` for an unknown key. Fails (`InvalidData`) when the content no longer
    /// matches its key.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let (store, prefix) = self.open()?;
        if !valid_key(key) {
            return Ok(None);
        }
        let read = match store.get(&location(prefix, key)).await {
            Ok(found) => found.bytes().await,
            Err(e) => Err(e),
        };
        match read {
            Ok(bytes) if sm3_hex(&bytes) == key => Ok(Some(bytes.to_vec())),
            Ok(_) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("blob {key} does not match its digest"))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// Where a key is kept: `[prefix/]<first 2 hex>/<key>`.
fn location(prefix: &[String], key: &str) -> ObjectPath {
    let fan = &key[..2];
    ObjectPath::from_iter(prefix.iter().map(String::as_str).chain([fan, key]))
}

/// The S3 client settings for `blobs` (checked already).
fn s3_builder(blobs: &BlobsConfig) -> AmazonS3Builder {
    // Fail within seconds when the store is unreachable, rather than after object_store's default
    // of ten retries over three minutes.
    let retry = RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(30), ..RetryConfig::default() };
    let options = ClientOptions::new()
        .with_allow_http(blobs.s3_allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60));
    AmazonS3Builder::new()
        .with_endpoint(blobs.s3_endpoint.trim().trim_end_matches('/'))
        .with_bucket_name(&blobs.s3_bucket)
        .with_region(&blobs.s3_region)
        .with_access_key_id(&blobs.s3_access_key_id)
        .with_secret_access_key(&blobs.s3_secret_access_key)
        .with_virtual_hosted_style_request(false)
        .with_allow_http(blobs.s3_allow_http)
        .with_client_options(options)
        .with_retry(retry)
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
        assert_eq!(store.get(&"0".repeat(64)).await.unwrap(), None);
        std::fs::write(dir.path().join(&key[..2]).join(&key), b"changed").unwrap();
        let err = store.get(&key).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn reads_files_written_in_the_existing_layout() {
        // A file stored before object_store was used: `<data_dir>/blobs/<2 hex>/<key>`.
        let dir = tempfile::tempdir().unwrap();
        let key = sm3_hex(b"old file");
        let fan = dir.path().join("blobs").join(&key[..2]);
        std::fs::create_dir_all(&fan).unwrap();
        std::fs::write(fan.join(&key), b"old file").unwrap();
        let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
        let store = BlobStore::from_config(&config).unwrap();
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"old file"[..]));
        assert_eq!(store.put(b"old file").await.unwrap(), key);
        let new = store.put(b"new file").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("blobs").join(&new[..2]).join(&new)).unwrap(), b"new file");
    }

    #[test]
    fn bad_s3_settings_are_refused_naming_the_key() {
        let mut config = Config::default();
        config.blobs.s3_endpoint = "http://127.0.0.1:9000".into();
        config.blobs.s3_bucket = "tongban".into();
        config.blobs.s3_access_key_id = "id".into();
        config.blobs.s3_secret_access_key = "secret".into();
        let err = BlobStore::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("blobs.s3_allow_http"), "{err}");
        config.blobs.s3_allow_http = true;
        BlobStore::from_config(&config).unwrap();
        config.blobs.s3_bucket.clear();
        let err = BlobStore::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("blobs.s3_bucket"), "{err}");
    }

    /// Against a real S3-compatible server (CI runs moto's): `TONGBAN_TEST_S3_URL`, e.g.
    /// `http://127.0.0.1:9000`. Any access key works with moto unless it checks signatures.
    #[tokio::test]
    async fn s3_backend_stores_dedups_and_detects_tampering() {
        let Ok(url) = std::env::var("TONGBAN_TEST_S3_URL") else {
            eprintln!("skipped: S3 blob store test (TONGBAN_TEST_S3_URL unset)");
            return;
        };
        let url = url.trim_end_matches('/').to_string();
        let bucket = format!("tongban-test-{}", hex::encode(rand::random::<[u8; 6]>()));
        install_crypto_provider();
        let http = reqwest::Client::new();
        // object_store cannot create buckets; moto (and MinIO without auth) take an unsigned PUT.
        let made = http.put(format!("{url}/{bucket}")).send().await.expect("S3 test server reachable");
        assert!(made.status().is_success(), "creating bucket {bucket}: {}", made.status());

        let blobs = BlobsConfig {
            s3_endpoint: url.clone(),
            s3_bucket: bucket.clone(),
            s3_access_key_id: "tongban-test".into(),
            s3_secret_access_key: "tongban-test-secret".into(),
            s3_allow_http: url.starts_with("http://"),
            s3_prefix: "/blobs/test/".into(),
            ..BlobsConfig::default()
        };
        let config = Config { blobs, ..Config::default() };
        config.validate().unwrap();
        let store = BlobStore::from_config(&config).unwrap();
        store.check().await.unwrap();

        let key = store.put(b"%PDF-1.7 hello").await.unwrap();
        assert_eq!(key, sm3_hex(b"%PDF-1.7 hello"));
        assert_eq!(store.put(b"%PDF-1.7 hello").await.unwrap(), key, "same content, same key");
        assert_eq!(store.get(&key).await.unwrap().as_deref(), Some(&b"%PDF-1.7 hello"[..]));
        assert_eq!(store.get(&sm3_hex(b"never stored")).await.unwrap(), None);
        assert_eq!(store.get("not-a-key").await.unwrap(), None);

        // The object sits at `<prefix>/<2 hex>/<key>`, like the local layout.
        let raw = s3_builder(&config.blobs).build().unwrap();
        let location = ObjectPath::from(format!("blobs/test/{}/{key}", &key[..2]));
        assert_eq!(raw.get(&location).await.unwrap().bytes().await.unwrap().as_ref(), b"%PDF-1.7 hello");

        // Overwritten behind the store's back: refused, not served.
        raw.put(&location, PutPayload::from_static(b"changed")).await.unwrap();
        let err = store.get(&key).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");

        // Wrong credentials: an error, not a panic. moto checks credentials only once told to
        // (its /moto-api/reset-auth); a server that always checks them (MinIO) ignores that call.
        let switched = http.post(format!("{url}/moto-api/reset-auth")).body("0").send().await;
        let mut wrong = config.clone();
        wrong.blobs.s3_access_key_id = "AKIAWRONGWRONGWRONG0".into();
        wrong.blobs.s3_secret_access_key = "wrong".into();
        let wrong = BlobStore::from_config(&wrong).unwrap();
        let put = wrong.put(b"with wrong credentials").await;
        let got = wrong.get(&key).await;
        let checked = wrong.check().await;
        if switched.is_ok_and(|r| r.status().is_success()) {
            let _ = http.post(format!("{url}/moto-api/reset-auth")).body("inf").send().await;
        }
        assert_eq!(put.map_err(|e| e.kind()).err(), Some(std::io::ErrorKind::PermissionDenied), "a put with wrong credentials must fail");
        assert!(got.is_err(), "a get with wrong credentials must fail");
        assert!(checked.is_err(), "the start-up check must notice wrong credentials");

        // A bucket that does not exist: the start-up check says so.
        let mut missing = config.clone();
        missing.blobs.s3_bucket = format!("{bucket}-missing");
        assert!(BlobStore::from_config(&missing).unwrap().check().await.is_err());

        // Unreachable server: an error, not a hang or a panic.
        let mut down = config.clone();
        down.blobs.s3_endpoint = "http://127.0.0.1:9".into();
        let down = BlobStore::from_config(&down).unwrap();
        assert!(down.get(&key).await.is_err());
    }

    #[tokio::test]
    async fn an_unavailable_store_fails_every_call() {
        let store = BlobStore::unavailable("no S3 for this test");
        let err = store.put(b"x").await.unwrap_err().to_string();
        assert!(err.contains("no S3 for this test"), "{err}");
        assert!(store.get(&sm3_hex(b"x")).await.is_err());
        assert!(store.check().await.is_err());
        let dir = tempfile::tempdir().unwrap();
        BlobStore::local(dir.path().join("blobs")).unwrap().check().await.unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"not a directory").unwrap();
        assert!(matches!(BlobStore::local(&file), Err(BlobStoreError::Directory { .. })));
        assert!(BlobStore::new(&file).put(b"x").await.is_err());
    }
}
