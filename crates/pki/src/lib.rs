//! The certificate authority's building blocks (数字证书): key pairs (SM2, P-256), X.509 v3
//! certificates with sm2-with-sm3 (GM/T 0015) or ecdsa-with-SHA256 signatures, certificate
//! requests (CSR) from USB keys, and revocation lists (CRL).
//!
//! Why not x509-cert's builder: it signs through the `signature` 3 traits, which RustCrypto's
//! `sm2` 0.13 does not implement, and for SM2 it would put the raw `r‖s` where GM/T 0015 and
//! OpenSSL expect `SEQUENCE { r, s }`. So the to-be-signed structures are x509-cert's own types,
//! DER-encoded by it, and signed here in one tested function ([`KeyPair::sign_der`]).

pub mod ca;
mod keys;
pub mod package;
pub mod seals;
mod x509;

pub use keys::{KeyPair, PkiError};
pub use tongban_crypto::cert::KeyAlgorithm;
pub use x509::{CertProfile, CertRequest, IssuedCert, Issuer, Revoked, build_crl, issue, key_id, parse_csr, self_signed};
