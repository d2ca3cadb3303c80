//! National and general cryptography used by tongban (密码服务): SM3 hashing (GB/T 32905),
//! HMAC-SM3, SM2 signatures (GB/T 32918), argon2id password hashing, TOTP (RFC 6238) and
//! random tokens. Thin wrappers over RustCrypto crates, tested against the published vectors.

pub mod cert;
pub mod password;
pub mod seal;
pub mod sm;
pub mod token;
pub mod totp;

pub use sm::{AuditSigner, hmac_sm3_hex, sm3_hex};
