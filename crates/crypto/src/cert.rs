//! X.509 certificates for certificate log-in (证书登录): reading a certificate that a USB key
//! (U 盾) or a proxy presents, and checking a signature made with its private key. SM2 (GB/T
//! 32918, signed with the default user id) and ECDSA P-256 keys are supported; others are
//! refused by name. Parsing is x509-parser's; SM2 is RustCrypto's `sm2`, P-256 is `ring`.

use base64::{Engine, engine::general_purpose::STANDARD};
use sm2::dsa::{Signature as Sm2Signature, VerifyingKey as Sm2VerifyingKey, signature::Verifier};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::sm::{DEFAULT_DISTID, sm3_hex};

/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// The SM2 curve (GM/T 0006), also used as the key algorithm by some issuers.
const OID_SM2: &str = "1.2.156.10197.1.301";
/// prime256v1 / P-256.
const OID_P256: &str = "1.2.840.10045.3.1.7";

/// The key type of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// SM2 (国密).
    Sm2,
    /// ECDSA on P-256.
    P256,
}

impl KeyAlgorithm {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Sm2 => "sm2",
            KeyAlgorithm::P256 => "p256",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        match s {
            "sm2" => Some(KeyAlgorithm::Sm2),
            "p256" => Some(KeyAlgorithm::P256),
            _ => None,
        }
    }
}

/// Why a certificate was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Neither PEM nor DER of an X.509 certificate.
    #[error("not an X.509 certificate")]
    Malformed,
    /// A key other than SM2 or P-256 (RSA, P-384…).
    #[error("unsupported key algorithm {0}")]
    UnsupportedKey(String),
}

/// What tongban keeps of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// SM3 of the DER encoding, hex: the certificate's identity here.
    pub fingerprint: String,
    /// Subject distinguished name (RFC 4514 text).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Validity start, seconds since the epoch.
    pub not_before: i64,
    /// Validity end, seconds since the epoch.
    pub not_after: i64,
    /// Key type.
    pub algorithm: KeyAlgorithm,
    /// The public key, SEC1 uncompressed point.
    pub public_key: Vec<u8>,
    /// The certificate, PEM.
    pub pem: String,
}

impl CertificateInfo {
    /// Whether the certificate is valid at `unix_seconds`.
    pub fn valid_at(&self, unix_seconds: i64) -> bool {
        self.not_before <= unix_seconds && unix_seconds <= self.not_after
    }
}

/// Reads a certificate given as PEM, as base64 of DER, or as DER; also the URL-encoded PEM that
/// nginx passes in `$ssl_client_escaped_cert`.
pub fn parse_certificate(input: &[u8]) -> Result<CertificateInfo, CertError> {
    let der = certificate_der(input).ok_or(CertError::Malformed)?;
    let (rest, cert) = X509Certificate::from_der(&der).map_err(|_| CertError::Malformed)?;
    if !rest.is_empty() {
        return Err(CertError::Malformed);
    }
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string()).unwrap_or_default();
    let algorithm = match (key_oid.as_str(), curve.as_str()) {
        (OID_EC_PUBLIC_KEY | OID_SM2, OID_SM2) => KeyAlgorithm::Sm2,
        (OID_EC_PUBLIC_KEY, OID_P256) => KeyAlgorithm::P256,
        _ => return Err(CertError::UnsupportedKey(if curve.is_empty() { key_oid } else { format!("{key_oid}/{curve}") })),
    };
    let public_key = spki.subject_public_key.data.to_vec();
    if public_key.len() != 65 || public_key[0] != 4 {
        return Err(CertError::Malformed);
    }
    let b64 = STANDARD.encode(&der);
    let body: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    Ok(CertificateInfo {
        fingerprint: sm3_hex(&der),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        algorithm,
        public_key,
        pem: format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", body.join("\n")),
    })
}

fn certificate_der(input: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(input).ok().map(str::trim);
    match text {
        Some(t) if t.contains("-----BEGIN") || t.contains("%2D%2D%2D") || t.contains("%2d%2d%2d") => {
            let pem = percent_decode(t);
            let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
            let end = pem[start..].find("-----END CERTIFICATE-----")? + start;
            let b64: String = pem[start..end].chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD.decode(b64).ok()
        }
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=\r\n ".contains(&b)) => {
            STANDARD.decode(t.split_whitespace().collect::<String>()).ok()
        }
        _ => Some(input.to_vec()),
    }
}

/// Undoes `%XX` escapes (nginx escapes the PEM for a header).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Checks `signature` over `message` with the public key of a certificate. The signature may be
/// DER (`SEQUENCE { r, s }`, what USB-key middleware and OpenSSL produce) or raw `r‖s`. SM2 uses
/// the default user id `1234567812345678`; P-256 uses SHA-256.
pub fn verify_signature(algorithm: KeyAlgorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Some(raw) = raw_signature(signature) else { return false };
    match algorithm {
        KeyAlgorithm::Sm2 => {
            let Ok(key) = Sm2VerifyingKey::from_sec1_bytes(DEFAULT_DISTID, public_key) else { return false };
            let Ok(sig) = Sm2Signature::from_slice(&raw) else { return false };
            key.verify(message, &sig).is_ok()
        }
        KeyAlgorithm::P256 => {
            let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public_key);
            key.verify(message, &raw).is_ok()
        }
    }
}

/// `r‖s` (64 bytes) from a raw or DER-encoded ECDSA/SM2 signature.
fn raw_signature(sig: &[u8]) -> Option<[u8; 64]> {
    if sig.len() == 64 {
        return sig.try_into().ok();
    }
    let (tag, body, rest) = der_element(sig)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag_r, r, after_r) = der_element(body)?;
    let (tag_s, s, after_s) = der_element(after_r)?;
    if tag_r != 0x02 || tag_s != 0x02 || !after_s.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    let (left, right) = out.split_at_mut(32);
    for (int, slot) in [(r, left), (s, right)] {
        let int = match int {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            other => other,
        };
        if int.is_empty() || int.len() > 32 {
            return None;
        }
        slot[32 - int.len()..].copy_from_slice(int);
    }
    Some(out)
}

/// One DER element: (tag, contents, what follows). Short and one-byte long lengths only, which
/// is all a 256-bit signature needs.
fn der_element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        n if n < 0x80 => (n as usize, rest),
        0x81 => {
            let (&n, rest) = rest.split_first()?;
            (n as usize, rest)
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P256_CERT: &str = include_str!("../../../app/tests/fixtures/p256.crt");
    const SM2_CERT: &str = include_str!("../../../app/tests/fixtures/sm2.crt");
    const RSA_CERT: &str = include_str!("../../../app/tests/fixtures/rsa.crt");

    #[test]
    fn reads_sm2_and_p256_certificates_and_refuses_rsa() {
        let sm2 = parse_certificate(SM2_CERT.as_bytes()).expect("sm2");
        assert_eq!(sm2.algorithm, KeyAlgorithm::Sm2);
        assert!(sm2.subject.contains("徐辉"), "{}", sm2.subject);
        assert_eq!(sm2.fingerprint.len(), 64);
        let p256 = parse_certificate(P256_CERT.as_bytes()).expect("p256");
        assert_eq!(p256.algorithm, KeyAlgorithm::P256);
        assert!(p256.valid_at(p256.not_before) && !p256.valid_at(p256.not_after + 1));
        assert!(matches!(parse_certificate(RSA_CERT.as_bytes()), Err(CertError::UnsupportedKey(_))));
        // The same certificate as DER, as bare base64 and as nginx's escaped PEM.
        let der = certificate_der(P256_CERT.as_bytes()).expect("der");
        assert_eq!(parse_certificate(&der).map(|c| c.fingerprint), Ok(p256.fingerprint.clone()));
        assert_eq!(parse_certificate(STANDARD.encode(&der).as_bytes()).map(|c| c.fingerprint), Ok(p256.fingerprint.clone()));
        let escaped = P256_CERT.replace('-', "%2D").replace('\n', "%0A").replace('+', "%2B").replace('/', "%2F");
        assert_eq!(parse_certificate(escaped.as_bytes()).map(|c| c.fingerprint), Ok(p256.fingerprint));
        assert_eq!(parse_certificate(p256.pem.as_bytes()).map(|c| c.pem), Ok(p256.pem.clone()), "the stored PEM reads back");
    }

    #[test]
    fn sm2_signatures_verify_with_the_default_user_id_in_der_and_raw_form() {
        use sm2::{SecretKey, dsa::SigningKey, pkcs8::DecodePrivateKey};
        let key_pem = include_str!("../../../app/tests/fixtures/sm2.key");
        let secret = SecretKey::from_pkcs8_pem(key_pem).expect("key");
        let signing = SigningKey::new(DEFAULT_DISTID, &secret).expect("signing key");
        let cert = parse_certificate(SM2_CERT.as_bytes()).expect("cert");
        let sig: Sm2Signature = sm2::dsa::signature::Signer::sign(&signing, b"challenge");
        let raw = sig.to_bytes();
        assert!(verify_signature(KeyAlgorithm::Sm2, &cert.public_key, b"challenge", &raw));
        assert!(verify_signature(KeyAlgorithm::Sm2, &cert.public_key, b"challenge", &to_der(&raw)));
        assert!(!verify_signature(KeyAlgorithm::Sm2, &cert.public_key, b"challengE", &raw));
        let p256 = parse_certificate(P256_CERT.as_bytes()).expect("cert");
        assert!(!verify_signature(KeyAlgorithm::P256, &p256.public_key, b"challenge", &raw), "another key");
    }

    #[test]
    fn signatures_made_by_openssl_verify() {
        let msg = include_bytes!("../../../app/tests/fixtures/msg.txt");
        let sm2 = parse_certificate(SM2_CERT.as_bytes()).expect("sm2");
        let sm2_sig = include_bytes!("../../../app/tests/fixtures/sm2.sig");
        assert!(verify_signature(KeyAlgorithm::Sm2, &sm2.public_key, msg, sm2_sig));
        let p256 = parse_certificate(P256_CERT.as_bytes()).expect("p256");
        let p256_sig = include_bytes!("../../../app/tests/fixtures/p256.sig");
        assert!(verify_signature(KeyAlgorithm::P256, &p256.public_key, msg, p256_sig));
        assert!(!verify_signature(KeyAlgorithm::P256, &p256.public_key, b"other", p256_sig));
    }

    fn to_der(raw: &[u8]) -> Vec<u8> {
        let int = |b: &[u8]| {
            let b: Vec<u8> = b.iter().copied().skip_while(|x| *x == 0).collect();
            let mut v = if b.first().is_some_and(|x| x & 0x80 != 0) { vec![0] } else { vec![] };
            v.extend(b);
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        };
        let mut body = int(&raw[..32]);
        body.extend(int(&raw[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn der_signatures_round_trip_to_raw() {
        let raw: [u8; 64] = std::array::from_fn(|i| if i == 0 || i == 32 { 0x80 } else { i as u8 });
        assert_eq!(raw_signature(&to_der(&raw)), Some(raw));
        let mut small = raw;
        small[..4].copy_from_slice(&[0, 0, 0, 1]);
        assert_eq!(raw_signature(&to_der(&small)), Some(small), "leading zeros are restored");
    }

    proptest! {
        #[test]
        fn certificate_and_signature_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_certificate(&bytes);
            let _ = raw_signature(&bytes);
            let _ = verify_signature(KeyAlgorithm::Sm2, &bytes, b"m", &bytes);
            let _ = verify_signature(KeyAlgorithm::P256, &bytes, b"m", &bytes);
        }

        #[test]
        fn text_inputs_never_panic(s in "\\PC{0,300}") {
            let _ = parse_certificate(s.as_bytes());
            let _ = parse_certificate(format!("-----BEGIN CERTIFICATE-----{s}-----END CERTIFICATE-----").as_bytes());
        }
    }
}
