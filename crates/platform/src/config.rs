//! Configuration (配置): a TOML file and `TONGBAN_*` environment variables, merged by figment.
//! Every key has a default, so `tongban serve` runs with no file at all.

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// The whole configuration. See README.md for every key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, blobs, the audit key and checkpoints.
    pub data_dir: PathBuf,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Log-in, password and session policy.
    pub security: SecurityConfig,
    /// Audit trail settings.
    pub audit: AuditConfig,
    /// Outbound notifications: SMS gateway and SMTP.
    pub notify: NotifyConfig,
    /// Official documents.
    pub documents: DocumentsConfig,
    /// Where uploaded files are kept: `<data_dir>/blobs`, or an S3-compatible object store.
    pub blobs: BlobsConfig,
}

/// Where SMS and e-mail notifications go. Empty URL / host: that channel is off (in-app only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// The SMS gateway: `POST {to, text}` as JSON with `Authorization: Bearer <token>` (http://).
    pub sms_gateway_url: String,
    /// Bearer token for the gateway.
    pub sms_gateway_token: String,
    /// Signature put in front of every SMS (短信签名).
    pub sms_sign: String,
    /// SMTP relay host.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none` (a relay on a trusted network).
    pub smtp_tls: String,
    /// SMTP user (empty: no authentication).
    pub smtp_user: String,
    /// SMTP password.
    pub smtp_password: String,
    /// Sender address.
    pub smtp_from: String,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            sms_gateway_url: String::new(),
            sms_gateway_token: String::new(),
            sms_sign: "通办".into(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_user: String::new(),
            smtp_password: String::new(),
            smtp_from: "tongban@localhost".into(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Deployment zone: `all`, `public` or `internal`.
    pub zone: String,
    /// PEM certificate chain; TLS is on when both `tls_cert` and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body in bytes (larger bodies get 413).
    pub max_body_bytes: usize,
    /// Largest accepted file upload (application materials) in bytes; applies to upload routes only.
    pub max_upload_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// The address users and other systems reach tongban at (`https://tb.jiahe.gov.cn`): the
    /// OpenID Connect issuers are built from it. Empty: `http://` + `bind`.
    pub public_url: String,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <metrics_token>`.
    /// Empty: on the main listener only requests from this machine (loopback) see it.
    pub metrics_token: String,
    /// A separate listener for `/metrics` (e.g. `127.0.0.1:9464`); when set, the main listener
    /// does not serve `/metrics` at all.
    pub metrics_bind: String,
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; empty means SQLite at `<data_dir>/tongban.db`.
    pub url: String,
    /// Connection pool size.
    pub max_connections: u32,
}

/// Log-in, password and session policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// A session ends after this many idle minutes.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after log-in, however active.
    pub session_absolute_hours: i64,
    /// Failed log-ins before an account is locked.
    pub lockout_threshold: i64,
    /// How long a lock-out lasts, in minutes.
    pub lockout_minutes: i64,
    /// Failed log-ins from one source IP (any account) before that IP is blocked.
    pub ip_lockout_threshold: i64,
    /// Passwords expire after this many days (0 = never).
    pub password_expiry_days: i64,
    /// How many previous passwords may not be reused.
    pub password_history: i64,
    /// Set the `Secure` flag on cookies even without TLS here (behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The SM4 key sealing secrets at rest (signing keys); default `<data_dir>/secret.key`.
    /// Keep it off the database host's backups.
    pub secret_key_file: Option<PathBuf>,
    /// Certificate log-in through a TLS-terminating proxy: the request header in which the proxy
    /// passes the client certificate it verified (PEM, URL-escaped as nginx's
    /// `$ssl_client_escaped_cert`), e.g. `X-SSL-Client-Cert`. Empty: off. The proxy must remove
    /// the header from what clients send.
    pub client_cert_header: String,
    /// Which staff must log in with a second factor (TOTP, a passkey or an SM2 certificate):
    /// `administrators` (the three administrators) or `all_staff`. Unset: `all_staff`, except
    /// for `serve --demo`, which says at start that it keeps `administrators`.
    pub second_factor_required: Option<SecondFactorRequired>,
    /// The longest lifetime a personal API token may be given, in days.
    pub api_token_max_days: i64,
}

/// Who must prove a second factor at log-in (双因素认证).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorRequired {
    /// The system administrator, the security administrator and the auditor.
    Administrators,
    /// Every member of staff (every account of the staff realm).
    AllStaff,
}

impl SecurityConfig {
    /// Whether every member of staff needs a second factor (the default for a real install).
    pub fn all_staff_need_second_factor(&self) -> bool {
        self.second_factor_required != Some(SecondFactorRequired::Administrators)
    }
}

/// Official documents (公文).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// The CJK font (TTF/TTC/OTF) documents are rendered with; a county may point this at its
    /// licensed 仿宋/小标宋 files. Default: the first free CJK font Debian installs
    /// (fonts-arphic-uming, fonts-noto-cjk, fonts-wqy-microhei, fonts-droid-fallback).
    pub font_file: Option<PathBuf>,
}

/// The blob store (文件存储) for uploaded files. Empty `s3_endpoint`: the directory
/// `<data_dir>/blobs` (the default); set: an S3-compatible object store (MinIO, Ceph RGW, a
/// cloud's S3), addressed with path-style requests (`<endpoint>/<bucket>/<key>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsConfig {
    /// The S3 endpoint, e.g. `https://minio.jiahe.internal:9000`. Empty: local directory.
    pub s3_endpoint: String,
    /// The bucket; it must exist already.
    pub s3_bucket: String,
    /// The region the requests are signed for; most self-hosted stores accept the default.
    pub s3_region: String,
    /// Access key id.
    pub s3_access_key_id: String,
    /// Secret access key.
    pub s3_secret_access_key: String,
    /// Allow an `http://` endpoint (a store on the internal network); off: `https://` only.
    pub s3_allow_http: bool,
    /// A key prefix inside the bucket, e.g. `tongban/blobs` (empty: keys at the bucket's root).
    pub s3_prefix: String,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        BlobsConfig {
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            s3_prefix: String::new(),
        }
    }
}

impl BlobsConfig {
    /// Whether files go to S3 rather than the local directory.
    pub fn is_s3(&self) -> bool {
        !self.s3_endpoint.trim().is_empty()
    }

    /// The segments of `s3_prefix` (leading and trailing `/` ignored).
    pub fn prefix_segments(&self) -> Vec<String> {
        self.s3_prefix.trim().trim_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    /// Checks the S3 keys (nothing to check for the local directory).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.into() });
        if !self.is_s3() {
            if !self.s3_bucket.trim().is_empty() {
                return invalid("blobs.s3_endpoint", "s3_bucket is set but s3_endpoint is empty (files would stay local)");
            }
            return Ok(());
        }
        let endpoint = self.s3_endpoint.trim();
        match reqwest::Url::parse(endpoint) {
            Ok(url) if url.scheme() == "https" && url.has_host() => {}
            Ok(url) if url.scheme() == "http" && url.has_host() => {
                if !self.s3_allow_http {
                    return invalid("blobs.s3_allow_http", "the endpoint is http://; set s3_allow_http = true (internal network only)");
                }
            }
            _ => return invalid("blobs.s3_endpoint", "must be an http:// or https:// URL"),
        }
        if self.s3_bucket.trim().is_empty() {
            return invalid("blobs.s3_bucket", "must be set when s3_endpoint is");
        }
        if self.s3_region.trim().is_empty() {
            return invalid("blobs.s3_region", "must not be empty (us-east-1 suits most self-hosted stores)");
        }
        if self.s3_access_key_id.is_empty() || self.s3_secret_access_key.is_empty() {
            return invalid("blobs.s3_access_key_id", "s3_access_key_id and s3_secret_access_key must be set");
        }
        let segments = self.prefix_segments();
        if segments.iter().any(|s| s == "." || s == ".." || s.chars().any(|c| c.is_control() || c == '\\')) {
            return invalid("blobs.s3_prefix", "must be segments separated by /, without . or ..");
        }
        Ok(())
    }
}

/// Audit trail settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit signing key (SM2, PEM); default `<data_dir>/audit-key.pem`. Keep it off the database host's backups.
    pub key_file: Option<PathBuf>,
    /// The signed checkpoint file; default `<data_dir>/audit-checkpoints.log`.
    pub checkpoint_file: Option<PathBuf>,
    /// A second checkpoint file, written at every checkpoint, on a disk or mount that the
    /// database's writer cannot edit (e.g. `/var/log/tongban/checkpoints.log`); `verify` reads both.
    pub checkpoint_mirror: Option<PathBuf>,
    /// A syslog collector that receives every checkpoint as an RFC 5424 message:
    /// `udp://host:port` or `tcp://host:port`; empty = none.
    pub syslog: String,
    /// Seconds between signed checkpoints of the chain head.
    pub checkpoint_interval_seconds: u64,
    /// Days to keep records; at least 180.
    pub retention_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            security: SecurityConfig::default(),
            audit: AuditConfig::default(),
            notify: NotifyConfig::default(),
            documents: DocumentsConfig::default(),
            blobs: BlobsConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            zone: "all".into(),
            tls_cert: None,
            tls_key: None,
            max_body_bytes: 2 * 1024 * 1024,
            max_upload_bytes: 10 * 1024 * 1024,
            trust_forwarded_for: false,
            public_url: String::new(),
            metrics_token: String::new(),
            metrics_bind: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: String::new(), max_connections: 8 }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            lockout_threshold: 5,
            lockout_minutes: 15,
            ip_lockout_threshold: 20,
            password_expiry_days: 90,
            password_history: 5,
            secure_cookies: false,
            secret_key_file: None,
            client_cert_header: String::new(),
            second_factor_required: None,
            api_token_max_days: 90,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key_file: None,
            checkpoint_file: None,
            checkpoint_mirror: None,
            syslog: String::new(),
            checkpoint_interval_seconds: 300,
            retention_days: 180,
        }
    }
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or parsed.
    #[error("configuration could not be read: {0}")]
    Load(String),
    /// A key holds a value that is not allowed.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key, e.g. `audit.retention_days`.
        key: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}

impl Config {
    /// Loads defaults, then the TOML file (if given), then `TONGBAN_*` variables
    /// (`TONGBAN_DATABASE__URL` sets `database.url`), and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!("file {} does not exist", path.display())));
            }
            fig = fig.merge(Toml::file(path));
        }
        // TONGBAN_CONFIG (the file), TONGBAN_LOG (the log filter), TONGBAN_TEST_* (tests) and
        // TONGBAN_BENCH_* (benchmarks) are read elsewhere, not configuration keys.
        fig = fig.merge(Env::prefixed("TONGBAN_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            !matches!(k.as_str(), "config" | "log") && !k.starts_with("test_") && !k.starts_with("bench_")
        }));
        let config: Config = fig.extract().map_err(|e| ConfigError::Load(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::Invalid { key, reason: reason.into() });
        if self.audit.retention_days < 180 {
            return invalid("audit.retention_days", "must be at least 180 days (MLPS 2.0 level 3)");
        }
        if self.audit.checkpoint_interval_seconds == 0 {
            return invalid("audit.checkpoint_interval_seconds", "must be greater than 0");
        }
        if self.audit.checkpoint_mirror.as_ref().is_some_and(|m| *m == self.audit_checkpoint_path()) {
            return invalid("audit.checkpoint_mirror", "must be another file than audit.checkpoint_file");
        }
        let syslog = self.audit.syslog.trim();
        if !syslog.is_empty() {
            let rest = syslog.strip_prefix("udp://").or_else(|| syslog.strip_prefix("tcp://"));
            let port_ok =
                rest.and_then(|r| r.rsplit_once(':')).is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return invalid("audit.syslog", "must be udp://host:port or tcp://host:port");
            }
        }
        if self.security.session_idle_minutes < 1 {
            return invalid("security.session_idle_minutes", "must be at least 1");
        }
        if self.security.lockout_threshold < 1 || self.security.lockout_minutes < 1 {
            return invalid("security.lockout_threshold", "lock-out threshold and minutes must be at least 1");
        }
        if !(1..=365).contains(&self.security.api_token_max_days) {
            return invalid("security.api_token_max_days", "must be between 1 and 365");
        }
        if !(0..=24).contains(&self.security.password_history) {
            return invalid("security.password_history", "must be between 0 and 24");
        }
        if !["all", "public", "internal"].contains(&self.server.zone.as_str()) {
            return invalid("server.zone", "must be all, public or internal");
        }
        if !["starttls", "tls", "none"].contains(&self.notify.smtp_tls.as_str()) {
            return invalid("notify.smtp_tls", "must be starttls, tls or none");
        }
        if !self.notify.sms_gateway_url.is_empty() && !self.notify.sms_gateway_url.starts_with("http://") {
            return invalid("notify.sms_gateway_url", "must be an http:// URL (put a TLS proxy in front for https)");
        }
        if !self.server.metrics_bind.trim().is_empty() && self.server.metrics_bind.trim().parse::<std::net::SocketAddr>().is_err() {
            return invalid("server.metrics_bind", "must be an address with a port, e.g. 127.0.0.1:9464");
        }
        if !self.server.metrics_token.is_empty() && self.server.metrics_token.len() < 16 {
            return invalid("server.metrics_token", "must be at least 16 characters");
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return invalid("server.tls_cert", "tls_cert and tls_key must be set together");
        }
        self.blobs.validate()?;
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return invalid("database.url", "must start with sqlite: or postgres://");
        }
        Ok(())
    }

    /// The effective database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("tongban.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// Whether the server terminates TLS itself.
    pub fn tls_enabled(&self) -> bool {
        self.server.tls_cert.is_some() && self.server.tls_key.is_some()
    }

    /// Path of the SM4 key that seals secrets at rest.
    pub fn secret_key_path(&self) -> PathBuf {
        self.security.secret_key_file.clone().unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The address tongban is reached at, without a trailing slash.
    pub fn public_url(&self) -> String {
        let url = self.server.public_url.trim().trim_end_matches('/');
        if url.is_empty() {
            let scheme = if self.tls_enabled() { "https" } else { "http" };
            format!("{scheme}://{}", self.server.bind)
        } else {
            url.to_string()
        }
    }

    /// Path of the audit signing key.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit.key_file.clone().unwrap_or_else(|| self.data_dir.join("audit-key.pem"))
    }

    /// Path of the signed checkpoint file.
    pub fn audit_checkpoint_path(&self) -> PathBuf {
        self.audit.checkpoint_file.clone().unwrap_or_else(|| self.data_dir.join("audit-checkpoints.log"))
    }
}

impl ServerConfig {
    /// The body limit for a request path: uploads (paths ending in `/materials` or
    /// `/attachments`) get `max_upload_bytes`, everything else `max_body_bytes`.
    pub fn body_limit(&self, path: &str) -> usize {
        if path.ends_with("/materials") || path.ends_with("/attachments") {
            self.max_upload_bytes.max(self.max_body_bytes)
        } else {
            self.max_body_bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_use_sqlite_in_data_dir() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.database_url().starts_with("sqlite://./data/tongban.db"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn environment_overrides_and_foreign_variables_are_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TONGBAN_DATABASE__URL", "postgres://db/tb");
            jail.set_env("TONGBAN_SECURITY__LOCKOUT_THRESHOLD", "7");
            jail.set_env("TONGBAN_LOG", "debug");
            jail.set_env("TONGBAN_CONFIG", "x.toml");
            jail.set_env("TONGBAN_TEST_DATABASE_URL", "postgres://other");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.database_url(), "postgres://db/tb");
            assert_eq!(c.security.lockout_threshold, 7);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn blob_store_keys_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TONGBAN_BLOBS__S3_ENDPOINT", "http://minio.internal:9000");
            jail.set_env("TONGBAN_BLOBS__S3_BUCKET", "tongban");
            jail.set_env("TONGBAN_BLOBS__S3_ACCESS_KEY_ID", "id");
            jail.set_env("TONGBAN_BLOBS__S3_SECRET_ACCESS_KEY", "secret");
            jail.set_env("TONGBAN_BLOBS__S3_ALLOW_HTTP", "true");
            jail.set_env("TONGBAN_BLOBS__S3_PREFIX", "/county/blobs/");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert!(c.blobs.is_s3());
            assert_eq!(c.blobs.s3_region, "us-east-1");
            assert_eq!(c.blobs.prefix_segments(), ["county", "blobs"]);
            jail.set_env("TONGBAN_BLOBS__S3_ALLOW_HTTP", "false");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("blobs.s3_allow_http"), "{err}");
            Ok(())
        });
        assert!(!Config::default().blobs.is_s3(), "local directory by default");
    }

    #[test]
    fn short_retention_is_refused_naming_the_key() {
        let mut c = Config::default();
        c.audit.retention_days = 30;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("audit.retention_days"), "{err}");
    }
}
