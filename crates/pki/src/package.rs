//! The sealed-document package (盖章文件包, format `tongban-seal/1`): one JSON file holding the
//! document, the seal image, a manifest (the document's and image's SM3, the metadata, the seal's
//! position, the signing time and the signer), the SM2 (or P-256) signature over the manifest's
//! exact UTF-8 text, and the certificate chain. It verifies offline: anyone with an SM2/SM3
//! implementation re-hashes the file, checks the signature with the signer certificate's key
//! (default user id `1234567812345678`) and the chain up to the root.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tongban_crypto::{
    cert::{CertificateInfo, parse_certificate, verify_signature},
    sm::sm3_hex,
};

use crate::keys::{KeyPair, PkiError};

/// The format name.
pub const FORMAT: &str = "tongban-seal/1";
/// Largest package accepted for verification.
pub const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where the seal image sits on the document (GB/T 9704: over the date of the signature block).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SealPosition {
    /// Page, from 1.
    pub page: u32,
    /// Millimetres from the left edge.
    pub x_mm: f64,
    /// Millimetres from the top edge.
    pub y_mm: f64,
}

/// What is sealed.
pub struct SealInput<'a> {
    /// File name.
    pub file_name: &'a str,
    /// The document.
    pub file: &'a [u8],
    /// Metadata (title, document number, …) signed with it.
    pub metadata: Value,
    /// The seal image (PNG).
    pub image: &'a [u8],
    /// The sealing unit's name.
    pub unit: &'a str,
    /// Where the image goes.
    pub position: SealPosition,
    /// Signing time (RFC 3339, UTC).
    pub signed_at: &'a str,
}

/// The package as stored and exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// [`FORMAT`].
    pub format: String,
    /// The signed manifest, exact text.
    pub manifest: String,
    /// Signature over the manifest's UTF-8 bytes.
    pub signature: PackageSignature,
    /// PEM certificates: the signer first, then its issuers up to the root.
    pub certificates: Vec<String>,
    /// The document, base64.
    pub file: String,
    /// The seal image, base64.
    pub seal_image: String,
}

/// The document inside a stored package, with its name from the manifest, without verifying
/// (for showing a document whose package was checked when it was sealed and is kept by digest).
pub fn file_of(package: &str) -> Option<(String, Vec<u8>)> {
    let p: Package = serde_json::from_str(package).ok()?;
    let manifest: Value = serde_json::from_str(&p.manifest).ok()?;
    let name = manifest["file"]["name"].as_str().unwrap_or("").to_string();
    Some((name, STANDARD.decode(p.file).ok()?))
}

/// The signature entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSignature {
    /// `sm2-with-sm3` or `ecdsa-with-sha256`.
    pub algorithm: String,
    /// The SM2 user id (SM2 only).
    pub user_id: String,
    /// DER `SEQUENCE { r, s }`, base64.
    pub value: String,
}

/// Seals `input` with `key`, whose certificate chain (signer first) is `chain_pem`.
pub fn seal_package(input: &SealInput<'_>, key: &KeyPair, chain_pem: &[String]) -> Result<Package, PkiError> {
    let signer = chain_pem.first().and_then(|p| parse_certificate(p.as_bytes()).ok()).ok_or(PkiError::InvalidKey)?;
    if signer.public_key != key.public_key() {
        return Err(PkiError::InvalidKey);
    }
    let manifest = json!({
        "format": FORMAT,
        "file": {"name": input.file_name, "size": input.file.len(), "sm3": sm3_hex(input.file)},
        "metadata": input.metadata,
        "seal": {"unit": input.unit, "image_sm3": sm3_hex(input.image), "position": input.position},
        "signed_at": input.signed_at,
        "signer": {"serial": signer.serial, "subject": signer.subject, "issuer": signer.issuer, "fingerprint": signer.fingerprint},
    })
    .to_string();
    let value = key.sign_der(manifest.as_bytes())?;
    let algorithm = match key.algorithm() {
        tongban_crypto::cert::KeyAlgorithm::Sm2 => "sm2-with-sm3",
        tongban_crypto::cert::KeyAlgorithm::P256 => "ecdsa-with-sha256",
    };
    Ok(Package {
        format: FORMAT.into(),
        manifest,
        signature: PackageSignature {
            algorithm: algorithm.into(),
            user_id: tongban_crypto::sm::DEFAULT_DISTID.into(),
            value: STANDARD.encode(value),
        },
        certificates: chain_pem.to_vec(),
        file: STANDARD.encode(input.file),
        seal_image: STANDARD.encode(input.image),
    })
}

/// The outcome of checking a package, as the verification page and `tongban verify` show it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verification {
    /// The document and the seal image are what was signed (not one byte changed).
    pub content_intact: bool,
    /// The signature over the manifest verifies with the signer certificate.
    pub signature_valid: bool,
    /// Each certificate is signed by the next one.
    pub chain_valid: bool,
    /// The chain ends at a root the verifier trusts (set by the caller; offline: unknown).
    pub trusted_root: Option<bool>,
    /// `valid`, `expired`, `not_yet_valid`, `revoked` (set by the caller when it knows).
    pub certificate_status: String,
    /// Signer subject.
    pub signer: String,
    /// Signer serial.
    pub serial: String,
    /// The sealing unit.
    pub unit: String,
    /// Signing time.
    pub signed_at: String,
    /// Document file name and metadata.
    pub file_name: String,
    /// Metadata.
    pub metadata: Value,
    /// The root's SM3 fingerprint, to compare with the published one offline.
    pub root_fingerprint: String,
    /// Everything that failed, in words.
    pub problems: Vec<String>,
}

impl Verification {
    /// Whether everything checked out (a root the caller trusts, a certificate valid then).
    pub fn ok(&self) -> bool {
        self.content_intact
            && self.signature_valid
            && self.chain_valid
            && self.trusted_root != Some(false)
            && self.certificate_status == "valid"
    }
}

/// Checks a package: content, signature and chain. Trust in the root and revocation are the
/// caller's to add (they need the CA's own records).
pub fn verify_package(bytes: &[u8]) -> Verification {
    let mut v = Verification::default();
    if bytes.len() > MAX_PACKAGE_BYTES {
        v.problems.push("package too large".into());
        return v;
    }
    let package: Package = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => {
            v.problems.push(format!("not a {FORMAT} package: {e}"));
            return v;
        }
    };
    if package.format != FORMAT {
        v.problems.push(format!("unknown format {:?}", package.format));
        return v;
    }
    let manifest: Value = serde_json::from_str(&package.manifest).unwrap_or(Value::Null);
    let text = |path: &[&str]| {
        let mut cur = &manifest;
        for p in path {
            cur = &cur[*p];
        }
        cur.as_str().unwrap_or_default().to_string()
    };
    v.unit = text(&["seal", "unit"]);
    v.signed_at = text(&["signed_at"]);
    v.file_name = text(&["file", "name"]);
    v.metadata = manifest["metadata"].clone();
    let file = STANDARD.decode(&package.file).unwrap_or_default();
    let image = STANDARD.decode(&package.seal_image).unwrap_or_default();
    v.content_intact =
        !text(&["file", "sm3"]).is_empty() && sm3_hex(&file) == text(&["file", "sm3"]) && sm3_hex(&image) == text(&["seal", "image_sm3"]);
    if !v.content_intact {
        v.problems.push("the document or the seal image differs from what was sealed".into());
    }
    let chain: Vec<CertificateInfo> = package.certificates.iter().filter_map(|p| parse_certificate(p.as_bytes()).ok()).collect();
    if chain.is_empty() || chain.len() != package.certificates.len() {
        v.problems.push("missing or unreadable certificates".into());
        return v;
    }
    let signer = &chain[0];
    v.signer = signer.subject.clone();
    v.serial = signer.serial.clone();
    let signature = STANDARD.decode(&package.signature.value).unwrap_or_default();
    let named = match signer.algorithm {
        tongban_crypto::cert::KeyAlgorithm::Sm2 => "sm2-with-sm3",
        tongban_crypto::cert::KeyAlgorithm::P256 => "ecdsa-with-sha256",
    };
    v.signature_valid = package.signature.algorithm == named
        && package.signature.user_id == tongban_crypto::sm::DEFAULT_DISTID
        && text(&["format"]) == FORMAT
        && text(&["signer", "serial"]) == signer.serial
        && text(&["signer", "fingerprint"]) == signer.fingerprint
        && verify_signature(signer.algorithm, &signer.public_key, package.manifest.as_bytes(), &signature);
    if !v.signature_valid {
        v.problems.push("the signature does not verify with the signer certificate".into());
    }
    v.chain_valid = chain_signed(&package.certificates);
    if !v.chain_valid {
        v.problems.push("the certificate chain does not verify".into());
    }
    v.root_fingerprint = chain.last().map(|c| c.fingerprint.clone()).unwrap_or_default();
    let at = time::OffsetDateTime::parse(&v.signed_at, &time::format_description::well_known::Rfc3339).map(|t| t.unix_timestamp());
    v.certificate_status = match at {
        Ok(t) if t < signer.not_before => "not_yet_valid".into(),
        Ok(t) if t > signer.not_after => "expired".into(),
        Ok(_) => "valid".into(),
        Err(_) => {
            v.problems.push("no readable signing time".into());
            "unknown".into()
        }
    };
    v
}

/// Whether each certificate is signed by the next, and the last by itself.
pub(crate) fn chain_signed(pems: &[String]) -> bool {
    use x509_cert::der::{Decode, Encode};
    use x509_parser::prelude::{FromDer, X509Certificate};
    let ders: Vec<Vec<u8>> = pems.iter().filter_map(|p| x509_cert::der::pem::decode_vec(p.as_bytes()).ok().map(|(_, d)| d)).collect();
    if ders.len() != pems.len() || ders.is_empty() {
        return false;
    }
    // Strict DER, and the outer algorithm equal to the signed one: no byte outside the signed
    // part may vary either.
    let strict = ders.iter().all(|d| {
        x509_cert::Certificate::from_der(d)
            .ok()
            .is_some_and(|c| c.signature_algorithm() == c.tbs_certificate().signature() && c.to_der().ok().as_deref() == Some(d.as_slice()))
    });
    strict
        && (0..ders.len()).all(|i| {
            let parent = &ders[(i + 1).min(ders.len() - 1)];
            let (Ok((_, child)), Ok(key)) = (X509Certificate::from_der(&ders[i]), parse_certificate(parent)) else { return false };
            child.issuer().to_string() == X509Certificate::from_der(parent).map(|(_, p)| p.subject().to_string()).unwrap_or_default()
                && verify_signature(key.algorithm, &key.public_key, child.tbs_certificate.as_ref(), &child.signature_value.data)
        })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use tongban_crypto::cert::KeyAlgorithm;

    use super::*;
    use crate::{CertProfile, CertRequest, Issuer, issue, self_signed};

    const DAY: Duration = Duration::from_secs(86_400);

    /// A seal key with its chain (seal, issuing CA, root), all SM2.
    fn seal_chain() -> (KeyPair, Vec<String>) {
        let now = SystemTime::now();
        fn req<'a>(serial: &'a [u8], subject: &'a str, key: &'a KeyPair, profile: CertProfile, now: SystemTime) -> CertRequest<'a> {
            CertRequest {
                serial,
                subject,
                algorithm: KeyAlgorithm::Sm2,
                public_key: key.public_key(),
                not_before: now - DAY,
                not_after: now + 365 * DAY,
                profile,
                crl_url: None,
            }
        }
        let (root_key, ca_key, seal_key) =
            (KeyPair::generate(KeyAlgorithm::Sm2), KeyPair::generate(KeyAlgorithm::Sm2), KeyPair::generate(KeyAlgorithm::Sm2));
        let root = self_signed(&req(&[1], "CN=根CA,C=CN", &root_key, CertProfile::Ca { path_len: Some(1) }, now), &root_key).expect("root");
        let ca = issue(
            &req(&[2], "CN=签发CA,C=CN", &ca_key, CertProfile::Ca { path_len: Some(0) }, now),
            &Issuer { cert_der: &root.der, key: &root_key },
        )
        .expect("ca");
        let seal =
            issue(&req(&[3], "CN=嘉禾县自然资源局,C=CN", &seal_key, CertProfile::Seal, now), &Issuer { cert_der: &ca.der, key: &ca_key })
                .expect("seal");
        (seal_key, vec![seal.pem, ca.pem, root.pem])
    }

    fn sealed() -> (Package, Vec<String>) {
        let (key, chain) = seal_chain();
        let signed_at = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("time");
        let input = SealInput {
            file_name: "嘉资发〔2026〕12号.pdf",
            file: b"%PDF-1.7 the decision",
            metadata: json!({"title": "关于进一步规范建设用地审批的通知", "doc_number": "嘉资发〔2026〕12号"}),
            image: b"\x89PNG seal image",
            unit: "嘉禾县自然资源局",
            position: SealPosition { page: 1, x_mm: 120.0, y_mm: 220.0 },
            signed_at: &signed_at,
        };
        (seal_package(&input, &key, &chain).expect("seal"), chain)
    }

    fn bytes(p: &Package) -> Vec<u8> {
        serde_json::to_vec(p).expect("json")
    }

    #[test]
    fn a_sealed_package_verifies_and_says_who_sealed_what() {
        let (p, _) = sealed();
        let v = verify_package(&bytes(&p));
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.unit, "嘉禾县自然资源局");
        assert!(v.signer.contains("嘉禾县自然资源局"));
        assert_eq!(v.metadata["doc_number"], "嘉资发〔2026〕12号");
        assert_eq!(v.root_fingerprint.len(), 64);
        let text = String::from_utf8(bytes(&p)).expect("utf-8");
        assert_eq!(file_of(&text), Some(("嘉资发〔2026〕12号.pdf".to_string(), b"%PDF-1.7 the decision".to_vec())));
        assert_eq!(file_of("{}"), None);
    }

    #[test]
    fn one_changed_byte_in_the_file_the_metadata_or_the_chain_is_caught() {
        let (p, _) = sealed();
        let mut file = STANDARD.decode(&p.file).expect("file");
        file[3] ^= 1;
        let changed = Package { file: STANDARD.encode(&file), ..p.clone() };
        let v = verify_package(&bytes(&changed));
        assert!(!v.content_intact && v.signature_valid && !v.ok());

        let changed = Package { manifest: p.manifest.replace("12号", "13号"), ..p.clone() };
        let v = verify_package(&bytes(&changed));
        assert!(!v.signature_valid && !v.ok(), "metadata changed after sealing");

        let (_, other_chain) = sealed();
        let changed = Package { certificates: other_chain, ..p.clone() };
        assert!(!verify_package(&bytes(&changed)).signature_valid, "another seal's certificate");

        let mut chain = p.certificates.clone();
        chain.swap(1, 2);
        let changed = Package { certificates: chain, ..p };
        assert!(!verify_package(&bytes(&changed)).chain_valid);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let v = verify_package(b"{}");
        assert!(!v.ok() && !v.problems.is_empty());
        assert!(!verify_package(b"\xff\xfe").problems.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn verification_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000), cut in 0usize..4000) {
            let _ = verify_package(&bytes);
            let (p, _) = sealed();
            let mut good = serde_json::to_vec(&p).expect("json");
            let at = cut % good.len();
            good[at] = good[at].wrapping_add(1);
            prop_assert!(!verify_package(&good).ok() || good == serde_json::to_vec(&p).expect("json"));
        }
    }
}
