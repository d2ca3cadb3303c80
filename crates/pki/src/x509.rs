//! X.509 v3 certificates, certificate requests and CRLs (RFC 5280; SM2 per GM/T 0015).

use std::{str::FromStr, time::SystemTime};

use tongban_crypto::{
    cert::{KeyAlgorithm, verify_signature},
    sm::sm3_hex,
};
use x509_cert::{
    Certificate, TbsCertificate,
    builder::{Builder, CertificateBuilder, CrlBuilder, profile::BuilderProfile},
    crl::{CertificateList, RevokedCert},
    der::{
        Decode, DecodePem, Encode, EncodePem,
        asn1::{BitString, Ia5String, ObjectIdentifier, OctetString},
        flagset::FlagSet,
        pem::LineEnding,
    },
    ext::{
        Extension, Extensions, ToExtension,
        pkix::{
            AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, CrlNumber, CrlReason, KeyUsage, KeyUsages,
            SubjectKeyIdentifier,
            crl::dp::DistributionPoint,
            name::{DistributionPointName, GeneralName},
        },
    },
    name::Name,
    request::CertReq,
    serial_number::SerialNumber,
    spki::{
        AlgorithmIdentifierOwned, Document, DynSignatureAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfoOwned,
        SubjectPublicKeyInfoRef,
    },
    time::{Time, Validity},
};

use crate::keys::{KeyPair, PkiError};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const CURVE_SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
const CURVE_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// sm2-with-sm3 (GM/T 0006).
const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

fn enc<E: std::fmt::Display>(e: E) -> PkiError {
    PkiError::Encoding(e.to_string())
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProfile {
    /// A CA: signs certificates and CRLs; `path_len` CAs may follow below it.
    Ca {
        /// Sub-CAs allowed below.
        path_len: Option<u8>,
    },
    /// A unit's seal (电子印章): digital signature and non-repudiation.
    Seal,
    /// A member of staff: signing and certificate log-in.
    Staff,
}

/// The signer of a certificate or CRL.
pub struct Issuer<'a> {
    /// The issuer's certificate (DER).
    pub cert_der: &'a [u8],
    /// The issuer's key.
    pub key: &'a KeyPair,
}

/// A certificate as issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
    /// Serial number, hex.
    pub serial: String,
    /// Subject (RFC 4514).
    pub subject: String,
}

/// A revoked certificate for the CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Serial number bytes.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub at: SystemTime,
    /// RFC 5280 CRLReason code (1 key compromise, 3 affiliation changed, 4 superseded,
    /// 5 cessation of operation, …).
    pub reason: u8,
}

fn signature_algorithm(alg: KeyAlgorithm) -> AlgorithmIdentifierOwned {
    let oid = match alg {
        KeyAlgorithm::Sm2 => SM2_WITH_SM3,
        KeyAlgorithm::P256 => ECDSA_WITH_SHA256,
    };
    AlgorithmIdentifierOwned { oid, parameters: None }
}

fn spki(alg: KeyAlgorithm, public: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    let curve = match alg {
        KeyAlgorithm::Sm2 => CURVE_SM2,
        KeyAlgorithm::P256 => CURVE_P256,
    };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: ID_EC_PUBLIC_KEY, parameters: Some(curve.into()) },
        subject_public_key: BitString::from_bytes(public).map_err(enc)?,
    })
}

/// The key identifier of a public key: the first 20 bytes of its SM3 (RFC 5280 §4.2.1.2 allows
/// any method; SHA-1 is avoided).
pub fn key_id(public: &[u8]) -> Vec<u8> {
    hex::decode(&sm3_hex(public)[..40]).unwrap_or_default()
}

fn extension<'a, E>(value: &'a E, subject: &Name, critical: bool) -> Result<Extension, PkiError>
where
    &'a E: ToExtension<Error = x509_cert::der::Error>,
{
    let mut ext = value.to_extension(subject, &[]).map_err(enc)?;
    ext.critical = critical;
    Ok(ext)
}

fn extensions(
    profile: CertProfile,
    subject: &Name,
    subject_key: &[u8],
    issuer_key: &[u8],
    crl_url: Option<&str>,
) -> Result<Extensions, PkiError> {
    let (ca, usage): (Option<Option<u8>>, FlagSet<KeyUsages>) = match profile {
        CertProfile::Ca { path_len } => (Some(path_len), KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature),
        CertProfile::Seal => (None, KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
        CertProfile::Staff => (None, KeyUsages::DigitalSignature | KeyUsages::NonRepudiation | KeyUsages::KeyAgreement),
    };
    let basic = BasicConstraints { ca: ca.is_some(), path_len_constraint: ca.flatten() };
    let mut exts = vec![
        extension(&basic, subject, true)?,
        extension(&KeyUsage(usage), subject, true)?,
        extension(&SubjectKeyIdentifier(OctetString::new(key_id(subject_key)).map_err(enc)?), subject, false)?,
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id(issuer_key)).map_err(enc)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            subject,
            false,
        )?,
    ];
    if let Some(url) = crl_url {
        let uri = Ia5String::new(url).map_err(enc)?;
        let point = DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(uri)])),
            reasons: None,
            crl_issuer: None,
        };
        exts.push(extension(&CrlDistributionPoints(vec![point]), subject, false)?);
    }
    Ok(exts)
}

fn name(dn: &str) -> Result<Name, PkiError> {
    Name::from_str(dn).map_err(|e| PkiError::InvalidName(e.to_string()))
}

fn time(t: SystemTime) -> Result<Time, PkiError> {
    Time::try_from(t).map_err(enc)
}

/// The fields of a certificate to issue.
pub struct CertRequest<'a> {
    /// Serial number (positive, at most 20 bytes).
    pub serial: &'a [u8],
    /// Subject distinguished name (RFC 4514, e.g. `CN=周军,OU=自然资源局,O=嘉禾县人民政府,C=CN`).
    pub subject: &'a str,
    /// Key type of the subject key.
    pub algorithm: KeyAlgorithm,
    /// The subject's public key (SEC1 uncompressed).
    pub public_key: &'a [u8],
    /// Validity.
    pub not_before: SystemTime,
    /// Validity end.
    pub not_after: SystemTime,
    /// What it is for.
    pub profile: CertProfile,
    /// Where the issuer's CRL is published.
    pub crl_url: Option<&'a str>,
}

/// The signing key as x509-cert's builders want it (a key pair naming its algorithm); the
/// signature itself is made by [`KeyPair::sign_der`] between `finalize` and `assemble`.
struct BuilderSigner<'a>(&'a KeyPair);

/// The public half, encodable as SubjectPublicKeyInfo.
#[derive(Clone)]
struct BuilderPublicKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for BuilderPublicKey {
    fn to_public_key_der(&self) -> x509_cert::spki::Result<Document> {
        Ok(Document::try_from(self.0.to_der()?.as_slice())?)
    }
}

impl signature::Keypair for BuilderSigner<'_> {
    type VerifyingKey = BuilderPublicKey;

    fn verifying_key(&self) -> BuilderPublicKey {
        // The key's own point always encodes.
        BuilderPublicKey(spki(self.0.algorithm(), self.0.public_key()).unwrap_or_else(|_| unreachable!("a valid key's SPKI encodes")))
    }
}

impl DynSignatureAlgorithmIdentifier for BuilderSigner<'_> {
    fn signature_algorithm_identifier(&self) -> x509_cert::spki::Result<AlgorithmIdentifierOwned> {
        Ok(signature_algorithm(self.0.algorithm()))
    }
}

/// tongban's certificate profile: subject, issuer and the extensions of [`CertProfile`].
struct Profile {
    subject: Name,
    issuer: Option<Name>,
    kind: CertProfile,
    crl_url: Option<String>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let key = |k: &SubjectPublicKeyInfoRef<'_>| k.subject_public_key.raw_bytes().to_vec();
        extensions(self.kind, &self.subject, &key(&spk), &key(&issuer_spk), self.crl_url.as_deref())
            .map_err(|_| x509_cert::builder::Error::Signature(signature::Error::new()))
    }
}

fn build_cert(req: &CertRequest<'_>, issuer: Option<Name>, key: &KeyPair) -> Result<IssuedCert, PkiError> {
    let profile = Profile { subject: name(req.subject)?, issuer, kind: req.profile, crl_url: req.crl_url.map(String::from) };
    let validity = Validity::new(time(req.not_before)?, time(req.not_after)?);
    let serial = SerialNumber::new(req.serial).map_err(enc)?;
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki(req.algorithm, req.public_key)?).map_err(enc)?;
    let signer = BuilderSigner(key);
    let tbs = builder.finalize(&signer).map_err(enc)?;
    let signature = BitString::from_bytes(&key.sign_der(&tbs)?).map_err(enc)?;
    let cert = builder.assemble(signature, &signer).map_err(enc)?;
    let der = cert.to_der().map_err(enc)?;
    let pem = cert.to_pem(LineEnding::LF).map_err(enc)?;
    let serial = hex::encode(cert.tbs_certificate().serial_number().as_bytes());
    let subject = cert.tbs_certificate().subject().to_string();
    Ok(IssuedCert { der, pem, serial, subject })
}

/// A self-signed certificate (the root CA).
pub fn self_signed(req: &CertRequest<'_>, key: &KeyPair) -> Result<IssuedCert, PkiError> {
    if req.public_key != key.public_key() || req.algorithm != key.algorithm() {
        return Err(PkiError::InvalidKey);
    }
    build_cert(req, None, key)
}

/// A certificate signed by `issuer`.
pub fn issue(req: &CertRequest<'_>, issuer: &Issuer<'_>) -> Result<IssuedCert, PkiError> {
    let issuer_cert = Certificate::from_der(issuer.cert_der).map_err(enc)?;
    build_cert(req, Some(issuer_cert.tbs_certificate().subject().clone()), issuer.key)
}

/// A CRL (v2, with its number and the issuer's key identifier) signed by `issuer`, DER.
pub fn build_crl(
    issuer: &Issuer<'_>,
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: &[Revoked],
) -> Result<Vec<u8>, PkiError> {
    let issuer_cert = Certificate::from_der(issuer.cert_der).map_err(enc)?;
    let issuer_name = issuer_cert.tbs_certificate().subject().clone();
    let entries = revoked
        .iter()
        .map(|r| {
            let reason = CrlReason::try_from(u32::from(r.reason)).unwrap_or(CrlReason::Unspecified);
            Ok(RevokedCert {
                serial_number: SerialNumber::new(&r.serial).map_err(enc)?,
                revocation_date: time(r.at)?,
                crl_entry_extensions: Some(vec![extension(&reason, &issuer_name, false)?]),
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let number = CrlNumber::try_from(number).map_err(enc)?;
    let mut builder = CrlBuilder::new_with_this_update(&issuer_cert, number, time(this_update)?)
        .map_err(enc)?
        .with_next_update(Some(time(next_update)?))
        .with_certificates(entries.into_iter());
    let signer = BuilderSigner(issuer.key);
    let tbs = builder.finalize(&signer).map_err(enc)?;
    let signature = BitString::from_bytes(&issuer.key.sign_der(&tbs)?).map_err(enc)?;
    let crl: CertificateList = builder.assemble(signature, &signer).map_err(enc)?;
    crl.to_der().map_err(enc)
}

/// A certificate request (PKCS #10, PEM or DER) as a USB key produces it: its subject, key type
/// and public key, once its self-signature verifies.
pub fn parse_csr(input: &[u8]) -> Result<(String, KeyAlgorithm, Vec<u8>), PkiError> {
    let bad = |m: &str| PkiError::InvalidRequest(m.to_string());
    let req = match std::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN") => CertReq::from_pem(text.trim()).map_err(|e| bad(&e.to_string()))?,
        _ => CertReq::from_der(input).map_err(|e| bad(&e.to_string()))?,
    };
    let spki = &req.info.public_key;
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let algorithm = match (spki.algorithm.oid, curve) {
        (ID_EC_PUBLIC_KEY, Some(CURVE_SM2)) => KeyAlgorithm::Sm2,
        (ID_EC_PUBLIC_KEY, Some(CURVE_P256)) => KeyAlgorithm::P256,
        _ => return Err(bad("only SM2 and P-256 keys")),
    };
    let public = spki.subject_public_key.as_bytes().ok_or_else(|| bad("public key"))?.to_vec();
    let info = req.info.to_der().map_err(enc)?;
    let signature = req.signature.as_bytes().ok_or_else(|| bad("signature"))?;
    if !verify_signature(algorithm, &public, &info, signature) {
        return Err(bad("the request's signature does not verify"));
    }
    Ok((req.info.subject.to_string(), algorithm, public))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const SM2_CSR: &str = include_str!("../../../app/tests/fixtures/sm2.csr");
    const P256_CSR: &str = include_str!("../../../app/tests/fixtures/p256.csr");
    const SM2_CERT: &str = include_str!("../../../app/tests/fixtures/sm2.crt");

    /// A root and an issuing CA of `alg`, as the CA slice makes them at first start.
    fn hierarchy(alg: KeyAlgorithm) -> (KeyPair, IssuedCert, KeyPair, IssuedCert) {
        let now = SystemTime::now();
        let root_key = KeyPair::generate(alg);
        let root = self_signed(
            &CertRequest {
                serial: &[1],
                subject: "CN=嘉禾县电子政务根CA,O=嘉禾县人民政府,C=CN",
                algorithm: alg,
                public_key: root_key.public_key(),
                not_before: now - DAY,
                not_after: now + 3650 * DAY,
                profile: CertProfile::Ca { path_len: Some(1) },
                crl_url: None,
            },
            &root_key,
        )
        .expect("root");
        let ca_key = KeyPair::generate(alg);
        let ca = issue(
            &CertRequest {
                serial: &[2],
                subject: "CN=嘉禾县电子政务签发CA,O=嘉禾县人民政府,C=CN",
                algorithm: alg,
                public_key: ca_key.public_key(),
                not_before: now - DAY,
                not_after: now + 1825 * DAY,
                profile: CertProfile::Ca { path_len: Some(0) },
                crl_url: Some("http://localhost:8080/pki/root.crl"),
            },
            &Issuer { cert_der: &root.der, key: &root_key },
        )
        .expect("issuing CA");
        (root_key, root, ca_key, ca)
    }

    fn leaf(alg: KeyAlgorithm, public: &[u8], profile: CertProfile, ca: &IssuedCert, ca_key: &KeyPair) -> IssuedCert {
        let now = SystemTime::now();
        let req = CertRequest {
            serial: &[0x7f, 0x01, 0x02, 0x03],
            subject: "CN=嘉禾县自然资源局,O=嘉禾县人民政府,C=CN",
            algorithm: alg,
            public_key: public,
            not_before: now - DAY,
            not_after: now + 730 * DAY,
            profile,
            crl_url: Some("http://localhost:8080/pki/ca.crl"),
        };
        issue(&req, &Issuer { cert_der: &ca.der, key: ca_key }).expect("leaf")
    }

    /// Whether `child` carries a valid signature by `parent`'s key (over its raw TBS bytes, as
    /// a second parser reads them).
    fn signed_by(child: &[u8], parent: &[u8]) -> bool {
        let (_, c) = X509Certificate::from_der(child).expect("child parses");
        let (_, p) = X509Certificate::from_der(parent).expect("parent parses");
        let issuer_key = tongban_crypto::cert::parse_certificate(parent).expect("parent key");
        c.issuer() == p.subject()
            && verify_signature(issuer_key.algorithm, &issuer_key.public_key, c.tbs_certificate.as_ref(), &c.signature_value.data)
    }

    #[test]
    fn an_sm2_hierarchy_issues_certificates_that_verify_and_detect_changes() {
        let (_, root, ca_key, ca) = hierarchy(KeyAlgorithm::Sm2);
        assert!(signed_by(&root.der, &root.der), "the root signs itself");
        assert!(signed_by(&ca.der, &root.der));
        let seal_key = KeyPair::generate(KeyAlgorithm::P256);
        let seal = leaf(KeyAlgorithm::P256, seal_key.public_key(), CertProfile::Seal, &ca, &ca_key);
        assert!(signed_by(&seal.der, &ca.der));
        assert!(!signed_by(&seal.der, &root.der), "not by the root");
        let (_, parsed) = X509Certificate::from_der(&seal.der).expect("parses");
        assert_eq!(parsed.signature_algorithm.algorithm.to_id_string(), "1.2.156.10197.1.501", "sm2-with-sm3");
        assert!(parsed.subject().to_string().contains("嘉禾县自然资源局"));
        let bc = parsed.basic_constraints().expect("ext").expect("basic constraints");
        assert!(!bc.value.ca);
        assert!(parsed.key_usage().expect("ext").expect("key usage").value.non_repudiation());
        let (_, ca_parsed) = X509Certificate::from_der(&ca.der).expect("parses");
        assert!(ca_parsed.basic_constraints().expect("ext").expect("bc").value.ca);
        assert_eq!(seal.serial, "7f010203");
        // One byte changed anywhere in the signed part: the signature no longer verifies.
        let mut tampered = seal.der.clone();
        let at = tampered.len() / 3;
        tampered[at] ^= 0x01;
        assert!(X509Certificate::from_der(&tampered).is_err() || !signed_by(&tampered, &ca.der));
    }

    #[test]
    fn requests_from_usb_keys_are_read_only_when_their_signature_verifies() {
        let (subject, alg, public) = parse_csr(SM2_CSR.as_bytes()).expect("sm2 csr");
        assert_eq!(alg, KeyAlgorithm::Sm2);
        assert!(subject.contains("徐辉"), "{subject}");
        let fixture = tongban_crypto::cert::parse_certificate(SM2_CERT.as_bytes()).expect("cert");
        assert_eq!(public, fixture.public_key, "the key of the USB key");
        assert_eq!(parse_csr(P256_CSR.as_bytes()).map(|(_, a, _)| a), Ok(KeyAlgorithm::P256));
        // A request whose subject was changed after signing is refused.
        let der = x509_cert::der::pem::decode_vec(SM2_CSR.as_bytes()).map(|(_, d)| d).expect("pem");
        let pos = der.windows(3).position(|w| w == "徐".as_bytes()).expect("name in the request");
        let mut changed = der.clone();
        changed[pos + 2] ^= 0x01;
        assert!(matches!(parse_csr(&changed), Err(PkiError::InvalidRequest(_))));
        assert!(parse_csr(b"not a request").is_err());
    }

    #[test]
    fn a_crl_lists_revoked_serials_with_reasons_and_is_signed_by_the_ca() {
        use x509_parser::revocation_list::CertificateRevocationList;
        let (_, _, ca_key, ca) = hierarchy(KeyAlgorithm::Sm2);
        let now = SystemTime::now();
        let revoked = [Revoked { serial: vec![0x7f, 1, 2, 3], at: now, reason: 1 }];
        let der = build_crl(&Issuer { cert_der: &ca.der, key: &ca_key }, 7, now, now + DAY, &revoked).expect("crl");
        let (_, crl) = CertificateRevocationList::from_der(&der).expect("CRL parses");
        let serials: Vec<String> = crl.iter_revoked_certificates().map(|r| hex::encode(r.raw_serial())).collect();
        assert_eq!(serials, ["7f010203"]);
        assert_eq!(crl.crl_number().map(|n| n.to_string()), Some("7".into()));
        let ca_info = tongban_crypto::cert::parse_certificate(&ca.der).expect("ca");
        assert!(verify_signature(ca_info.algorithm, &ca_info.public_key, crl.tbs_cert_list.as_ref(), &crl.signature_value.data));
    }

    /// OpenSSL, an independent implementation, checks a whole P-256 chain and CRL made by the
    /// same code (OpenSSL 3.0 cannot check SM2 certificate signatures: see STACK.md).
    #[test]
    fn openssl_accepts_the_chain_and_the_crl() {
        let Ok(out) = std::process::Command::new("openssl").arg("version").output() else {
            eprintln!("openssl not installed: the outside check is skipped");
            return;
        };
        assert!(out.status.success());
        let (_, root, ca_key, ca) = hierarchy(KeyAlgorithm::P256);
        let key = KeyPair::generate(KeyAlgorithm::P256);
        let staff = leaf(KeyAlgorithm::P256, key.public_key(), CertProfile::Staff, &ca, &ca_key);
        let now = SystemTime::now();
        let crl = build_crl(&Issuer { cert_der: &ca.der, key: &ca_key }, 1, now - DAY, now + DAY, &[]).expect("crl");
        let dir = std::env::temp_dir().join(format!("tongban-pki-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        let write = |n: &str, b: &[u8]| std::fs::write(dir.join(n), b).expect("write");
        write("root.pem", root.pem.as_bytes());
        write("ca.pem", ca.pem.as_bytes());
        write("staff.pem", staff.pem.as_bytes());
        write("ca.crl", &crl);
        let run = |args: &[&str]| std::process::Command::new("openssl").args(args).current_dir(&dir).output().expect("openssl");
        let v = run(&["verify", "-CAfile", "root.pem", "-untrusted", "ca.pem", "staff.pem"]);
        assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
        let c = run(&["crl", "-inform", "DER", "-in", "ca.crl", "-CAfile", "ca.pem", "-noout"]);
        assert!(String::from_utf8_lossy(&c.stderr).contains("verify OK"), "{}", String::from_utf8_lossy(&c.stderr));

        // SM2: OpenSSL reads the certificates and checks each signature over the signed part
        // with the issuer's key (sm2-with-sm3, default user id).
        let (_, sm2_root, sm2_ca_key, sm2_ca) = hierarchy(KeyAlgorithm::Sm2);
        let seal_key = KeyPair::generate(KeyAlgorithm::Sm2);
        let seal = leaf(KeyAlgorithm::Sm2, seal_key.public_key(), CertProfile::Seal, &sm2_ca, &sm2_ca_key);
        for (child, parent) in [(&sm2_ca, &sm2_root), (&seal, &sm2_ca)] {
            let (_, c) = X509Certificate::from_der(&child.der).expect("parses");
            write("child.pem", child.pem.as_bytes());
            write("parent.pem", parent.pem.as_bytes());
            write("tbs.bin", c.tbs_certificate.as_ref());
            write("sig.der", &c.signature_value.data);
            let text = run(&["x509", "-in", "child.pem", "-noout", "-text"]);
            assert!(String::from_utf8_lossy(&text.stdout).contains("SM2-with-SM3"), "{}", String::from_utf8_lossy(&text.stderr));
            let key = run(&["x509", "-in", "parent.pem", "-noout", "-pubkey"]);
            write("parent.pub", &key.stdout);
            let v = run(&[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "parent.pub",
                "-rawin",
                "-in",
                "tbs.bin",
                "-sigfile",
                "sig.der",
                "-digest",
                "sm3",
                "-pkeyopt",
                "distid:1234567812345678",
            ]);
            assert!(
                String::from_utf8_lossy(&v.stdout).contains("Signature Verified Successfully"),
                "{}{}",
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
