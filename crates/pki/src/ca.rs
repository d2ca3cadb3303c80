//! The county's certificate authority (数字证书认证中心): a root and an issuing CA, both SM2,
//! made at first start with their keys sealed (SM4-GCM) under the secret key file; certificates
//! for units' seals (key made and kept here, sealed) and for staff (key on their USB key, from a
//! CSR); revocation with a reason, and a CRL at a public URL. Issuing and revoking need
//! `pki.manage` (the security administrator) and are audited.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_crypto::{
    cert::{KeyAlgorithm, parse_certificate},
    seal::SecretBox,
};
use tongban_platform::{Db, DomainError, WriteTx, clock::now_millis, error::DomainResult};

use crate::{CertProfile, CertRequest, IssuedCert, Issuer, KeyPair, Revoked, build_crl, issue, parse_csr, self_signed};

const DAY: Duration = Duration::from_secs(86_400);

/// An authority (root or issuing CA).
#[derive(Debug, Clone, Serialize)]
pub struct Authority {
    /// `root` or `issuing`.
    pub kind: String,
    /// Subject DN.
    pub subject: String,
    /// Serial, hex.
    pub serial: String,
    /// Valid until (ms).
    pub not_after: i64,
    /// The certificate, PEM.
    pub pem: String,
}

/// An issued certificate, as the CA's list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedRow {
    /// Row id.
    pub id: i64,
    /// Serial, hex.
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// `unit` or `staff`.
    pub holder_kind: String,
    /// Unit or user id.
    pub holder_id: i64,
    /// `seal` or `staff`.
    pub profile: String,
    /// `sm2` or `p256`.
    pub algorithm: String,
    /// Valid until (ms).
    pub not_after: i64,
    /// Revoked at (ms).
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code.
    pub revocation_reason: Option<i64>,
}

/// Revocation reasons offered (RFC 5280 CRLReason).
pub const REASONS: [(u8, &str); 5] =
    [(1, "key_compromise"), (3, "affiliation_changed"), (4, "superseded"), (5, "cessation_of_operation"), (0, "unspecified")];

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn random_serial() -> [u8; 16] {
    let mut s: [u8; 16] = rand::random();
    s[0] = (s[0] & 0x7f) | 0x10;
    s
}

/// Escapes a value for an RFC 4514 distinguished name.
fn dn_value(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.trim().chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || (i == 0 && matches!(c, '#' | ' ')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A CA certificate's fields: `years` of validity, `path_len` CAs allowed below.
fn ca_request<'a>(serial: &'a [u8], subject: &'a str, key: &'a KeyPair, years: u32, path_len: u8) -> CertRequest<'a> {
    let now = SystemTime::now();
    CertRequest {
        serial,
        subject,
        algorithm: key.algorithm(),
        public_key: key.public_key(),
        not_before: now - DAY,
        not_after: now + DAY * 365 * years,
        profile: CertProfile::Ca { path_len: Some(path_len) },
        crl_url: None,
    }
}

fn pki_error(e: crate::PkiError) -> DomainError {
    match e {
        crate::PkiError::InvalidRequest(_) => DomainError::invalid("csr", "pki.error.csr"),
        other => DomainError::Internal(other.to_string()),
    }
}

/// The certificate authority.
#[derive(Clone)]
pub struct CaService {
    pub(crate) db: Db,
    pub(crate) audit: AuditTrail,
    pub(crate) secrets: SecretBox,
    public_url: String,
}

impl CaService {
    /// The CA over `db`, sealing keys with `secrets`; CRLs are announced under `public_url`.
    pub fn new(db: Db, audit: AuditTrail, secrets: SecretBox, public_url: &str) -> Self {
        CaService { db, audit, secrets, public_url: public_url.trim_end_matches('/').to_string() }
    }

    /// Where the issuing CA's CRL is published.
    pub fn crl_url(&self) -> String {
        format!("{}/pki/ca.crl", self.public_url)
    }

    /// Makes the root and issuing CA if there are none yet (first start). Answers whether it did.
    pub async fn ensure(&self) -> DomainResult<bool> {
        let have: i64 = sqlx::query("SELECT COUNT(*) FROM pki_authorities").fetch_one(self.db.pool()).await?.get(0);
        if have >= 2 {
            return Ok(false);
        }
        let county = self.county().await?;
        let now = SystemTime::now();
        let (root_serial, ca_serial) = (random_serial(), random_serial());
        let root_key = KeyPair::generate(KeyAlgorithm::Sm2);
        let root_subject = format!("CN={} 电子政务根CA,O={},C=CN", dn_value(&county), dn_value(&county));
        let root = self_signed(&ca_request(&root_serial, &root_subject, &root_key, 20, 1), &root_key).map_err(pki_error)?;
        let ca_key = KeyPair::generate(KeyAlgorithm::Sm2);
        let ca_subject = format!("CN={} 电子政务签发CA,O={},C=CN", dn_value(&county), dn_value(&county));
        let issuer = Issuer { cert_der: &root.der, key: &root_key };
        let ca = issue(&ca_request(&ca_serial, &ca_subject, &ca_key, 10, 0), &issuer).map_err(pki_error)?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM pki_authorities").execute(tx.conn()).await?;
        for (kind, cert, key, until) in [("root", &root, &root_key, now + 20 * 365 * DAY), ("issuing", &ca, &ca_key, now + 10 * 365 * DAY)]
        {
            sqlx::query(
                "INSERT INTO pki_authorities (kind, subject, serial, algorithm, cert_pem, key_sealed, not_after, created_at) VALUES ($1,$2,$3,'sm2',$4,$5,$6,$7)",
            )
            .bind(kind)
            .bind(&cert.subject)
            .bind(&cert.serial)
            .bind(&cert.pem)
            .bind(self.secrets.seal(key.secret_bytes(), format!("pki:{kind}").as_bytes()))
            .bind(ms(until))
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        }
        let details = json!({"root": root.subject, "root_serial": root.serial, "issuing": ca.subject, "issuing_serial": ca.serial});
        self.audit.append(&mut tx, &Actor::system("pki"), Entry::success("pki.ca.create", "pki_authority", 0, details)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The root and the issuing CA.
    pub async fn authorities(&self) -> DomainResult<Vec<Authority>> {
        let rows = sqlx::query("SELECT kind, subject, serial, not_after, cert_pem FROM pki_authorities ORDER BY id")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| Authority { kind: r.get(0), subject: r.get(1), serial: r.get(2), not_after: r.get(3), pem: r.get(4) })
            .collect())
    }

    /// The chain to trust, PEM: the issuing CA, then the root.
    pub async fn chain_pem(&self) -> DomainResult<String> {
        let mut all = self.authorities().await?;
        all.sort_by_key(|a| a.kind != "issuing");
        Ok(all.into_iter().map(|a| a.pem).collect())
    }

    async fn issuing(&self) -> DomainResult<(Vec<u8>, KeyPair)> {
        let row = sqlx::query("SELECT cert_pem, key_sealed FROM pki_authorities WHERE kind = 'issuing'")
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(DomainError::Conflict("pki.error.no_ca"))?;
        let pem: String = row.get(0);
        let der = x509_cert::der::pem::decode_vec(pem.as_bytes()).map(|(_, d)| d).map_err(|e| DomainError::Internal(e.to_string()))?;
        let secret =
            self.secrets.open(&row.get::<String, _>(1), b"pki:issuing").map_err(|e| DomainError::Internal(format!("CA key: {e}")))?;
        let key = KeyPair::from_secret(KeyAlgorithm::Sm2, &secret).map_err(pki_error)?;
        Ok((der, key))
    }

    async fn county(&self) -> DomainResult<String> {
        Ok(sqlx::query("SELECT name FROM units WHERE parent_id IS NULL ORDER BY id LIMIT 1")
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .unwrap_or_else(|| "tongban".into()))
    }

    pub(crate) async fn require(&self, caller: &Principal, actor: &Actor, action: &str) -> DomainResult<()> {
        if caller.has(Permission::PkiManage) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "pki_certificate", caller.user_id, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// Issues a member of staff's certificate for the key on their USB key (from its CSR). The
    /// subject comes from the account, not from the request. Issuing binds nothing: the holder
    /// binds it to their own account by proving they hold its key ([`CaService::staff_login_status`]
    /// is what log-in then asks).
    pub async fn issue_staff(&self, caller: &Principal, actor: &Actor, username: &str, csr: &str) -> DomainResult<IssuedRow> {
        self.require(caller, actor, "pki.issue").await?;
        let user = sqlx::query("SELECT u.id, u.display_name, n.name FROM users u JOIN units n ON n.id = u.unit_id WHERE u.username = $1")
            .bind(username.trim())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| DomainError::invalid("username", "error.user_not_found"))?;
        let (user_id, display, unit): (i64, String, String) = (user.get(0), user.get(1), user.get(2));
        if csr.len() > 16 * 1024 {
            return Err(DomainError::invalid("csr", "pki.error.csr"));
        }
        let (_, algorithm, public) = parse_csr(csr.as_bytes()).map_err(pki_error)?;
        let subject = format!("CN={},OU={},O={},C=CN", dn_value(&display), dn_value(&unit), dn_value(&self.county().await?));
        let cert = self.sign(&subject, algorithm, &public, CertProfile::Staff, 2 * 365).await?;
        let mut tx = self.db.begin_write().await?;
        let id = self.store(&mut tx, &cert, ("staff", user_id), "staff", algorithm, None).await?;
        let details = json!({"serial": cert.serial, "subject": cert.subject, "username": username.trim(), "algorithm": algorithm.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("pki.issue", "pki_certificate", id, details)).await?;
        tx.commit().await?;
        self.row(id).await
    }

    /// Whether a certificate (PEM or DER, its SM3 `fingerprint`) may log in the staff account
    /// `user_id`: this CA issued it as that account's staff certificate, its signature chains to
    /// the CA's own certificates, and it is not revoked (what the CRL lists) — checked at every
    /// log-in. Answers `None` when untrusted, `Some(revoked)` otherwise.
    pub async fn staff_login_status(&self, certificate: &str, fingerprint: &str, user_id: i64) -> DomainResult<Option<bool>> {
        let row = sqlx::query(
            "SELECT cert_pem, revoked_at FROM pki_certificates WHERE fingerprint = $1 AND profile = 'staff' AND holder_kind = 'staff' AND holder_id = $2",
        )
        .bind(fingerprint)
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let issued: String = row.get(0);
        let presented = parse_certificate(certificate.as_bytes()).map(|c| c.pem).unwrap_or_default();
        let mut chain = vec![presented];
        let mut authorities = self.authorities().await?;
        authorities.sort_by_key(|a| a.kind != "issuing");
        chain.extend(authorities.into_iter().map(|a| a.pem));
        if parse_certificate(issued.as_bytes()).map(|c| c.fingerprint).ok().as_deref() != Some(fingerprint)
            || chain.len() != 3
            || !crate::package::chain_signed(&chain)
        {
            return Ok(None);
        }
        Ok(Some(row.get::<Option<i64>, _>(1).is_some()))
    }

    /// Issues a unit's seal certificate (电子印章证书) for a key made here and kept sealed.
    pub async fn issue_seal(&self, caller: &Principal, actor: &Actor, unit_id: i64, algorithm: KeyAlgorithm) -> DomainResult<IssuedRow> {
        self.require(caller, actor, "pki.issue").await?;
        self.issue_seal_as(actor, unit_id, algorithm).await
    }

    /// Issues a seal certificate without a permission check (the demo's set-up).
    pub(crate) async fn issue_seal_as(&self, actor: &Actor, unit_id: i64, algorithm: KeyAlgorithm) -> DomainResult<IssuedRow> {
        let unit: String = sqlx::query("SELECT name FROM units WHERE id = $1")
            .bind(unit_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| DomainError::invalid("unit_id", "error.not_found"))?;
        let key = KeyPair::generate(algorithm);
        let subject = format!("CN={},O={},C=CN", dn_value(&unit), dn_value(&self.county().await?));
        let cert = self.sign(&subject, algorithm, key.public_key(), CertProfile::Seal, 5 * 365).await?;
        let sealed = self.secrets.seal(key.secret_bytes(), format!("pki:cert:{}", cert.serial).as_bytes());
        let mut tx = self.db.begin_write().await?;
        let id = self.store(&mut tx, &cert, ("unit", unit_id), "seal", algorithm, Some(&sealed)).await?;
        let details = json!({"serial": cert.serial, "subject": cert.subject, "unit_id": unit_id, "algorithm": algorithm.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("pki.issue", "pki_certificate", id, details)).await?;
        tx.commit().await?;
        self.row(id).await
    }

    async fn sign(
        &self,
        subject: &str,
        algorithm: KeyAlgorithm,
        public: &[u8],
        profile: CertProfile,
        days: u32,
    ) -> DomainResult<IssuedCert> {
        let (ca_der, ca_key) = self.issuing().await?;
        let now = SystemTime::now();
        let crl = self.crl_url();
        let req = CertRequest {
            serial: &random_serial(),
            subject,
            algorithm,
            public_key: public,
            not_before: now - Duration::from_secs(600),
            not_after: now + DAY * days,
            profile,
            crl_url: Some(&crl),
        };
        issue(&req, &Issuer { cert_der: &ca_der, key: &ca_key }).map_err(pki_error)
    }

    async fn store(
        &self,
        tx: &mut WriteTx,
        cert: &IssuedCert,
        (holder_kind, holder_id): (&str, i64),
        profile: &str,
        algorithm: KeyAlgorithm,
        key_sealed: Option<&str>,
    ) -> DomainResult<i64> {
        let info = parse_certificate(cert.der.as_slice()).map_err(|e| DomainError::Internal(e.to_string()))?;
        let id: i64 = sqlx::query(
            "INSERT INTO pki_certificates (serial, subject, holder_kind, holder_id, profile, algorithm, fingerprint, cert_pem, key_sealed, not_before, not_after, issued_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id",
        )
        .bind(&cert.serial)
        .bind(&cert.subject)
        .bind(holder_kind)
        .bind(holder_id)
        .bind(profile)
        .bind(algorithm.as_str())
        .bind(&info.fingerprint)
        .bind(&cert.pem)
        .bind(key_sealed)
        .bind(info.not_before * 1000)
        .bind(info.not_after * 1000)
        .bind(now_millis())
        .fetch_one(tx.conn())
        .await?
        .get(0);
        Ok(id)
    }

    async fn row(&self, id: i64) -> DomainResult<IssuedRow> {
        let r = sqlx::query(&format!("{ROW_SELECT} WHERE id = $1")).bind(id).fetch_one(self.db.pool()).await?;
        Ok(issued_row(&r))
    }

    /// Every issued certificate, newest first.
    pub async fn certificates(&self, caller: &Principal, actor: &Actor) -> DomainResult<Vec<IssuedRow>> {
        self.require(caller, actor, "pki.list").await?;
        self.all_certificates().await
    }

    /// Every issued certificate, for the administrator's console (`tongban pki list`).
    pub async fn all_certificates(&self) -> DomainResult<Vec<IssuedRow>> {
        let rows = sqlx::query(&format!("{ROW_SELECT} ORDER BY id DESC")).fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(issued_row).collect())
    }

    /// Revokes a certificate with an RFC 5280 reason; it leaves the next CRL at once, and a staff
    /// certificate stops logging in at once.
    pub async fn revoke(&self, caller: &Principal, actor: &Actor, serial: &str, reason: u8) -> DomainResult<()> {
        self.require(caller, actor, "pki.revoke").await?;
        self.revoke_as(actor, serial, reason).await
    }

    /// Revokes as `actor` without a permission check: the console (`tongban pki revoke`), run by
    /// whoever holds the server's configuration and keys.
    pub async fn revoke_as(&self, actor: &Actor, serial: &str, reason: u8) -> DomainResult<()> {
        if !REASONS.iter().any(|(code, _)| *code == reason) {
            return Err(DomainError::invalid("reason", "error.invalid_value"));
        }
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT id, fingerprint FROM pki_certificates WHERE serial = $1 AND revoked_at IS NULL")
            .bind(serial.trim().to_ascii_lowercase())
            .fetch_optional(tx.conn())
            .await?
            .ok_or(DomainError::NotFound("error.not_found"))?;
        let (id, fingerprint): (i64, String) = (row.get(0), row.get(1));
        sqlx::query("UPDATE pki_certificates SET revoked_at = $2, revocation_reason = $3 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(i64::from(reason))
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE user_certificates SET revoked_at = $2 WHERE fingerprint = $1 AND revoked_at IS NULL")
            .bind(&fingerprint)
            .bind(now)
            .execute(tx.conn())
            .await?;
        let details = json!({"serial": serial, "reason": reason});
        self.audit.append(&mut tx, actor, Entry::success("pki.revoke", "pki_certificate", id, details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The issuing CA's current CRL (DER), signed now, valid a day; its number counts the
    /// revocations so far, so it only grows.
    pub async fn crl(&self) -> DomainResult<Vec<u8>> {
        let (ca_der, ca_key) = self.issuing().await?;
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason FROM pki_certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        let revoked: Vec<Revoked> = rows
            .iter()
            .filter_map(|r| {
                let serial = hex::decode(r.get::<String, _>(0)).ok()?;
                let at = UNIX_EPOCH + Duration::from_millis(r.get::<i64, _>(1).max(0) as u64);
                Some(Revoked { serial, at, reason: r.get::<Option<i64>, _>(2).unwrap_or(0).clamp(0, 10) as u8 })
            })
            .collect();
        let now = SystemTime::now();
        build_crl(&Issuer { cert_der: &ca_der, key: &ca_key }, revoked.len() as u64 + 1, now, now + DAY, &revoked).map_err(pki_error)
    }

    /// An issued certificate's PEM by serial (certificates are public).
    pub async fn certificate_pem(&self, serial: &str) -> DomainResult<Option<String>> {
        let row = sqlx::query("SELECT cert_pem FROM pki_certificates WHERE serial = $1")
            .bind(serial.trim().to_ascii_lowercase())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

const ROW_SELECT: &str = "SELECT id, serial, subject, holder_kind, holder_id, profile, algorithm, not_after, revoked_at, revocation_reason FROM pki_certificates";

fn issued_row(r: &sqlx::any::AnyRow) -> IssuedRow {
    IssuedRow {
        id: r.get(0),
        serial: r.get(1),
        subject: r.get(2),
        holder_kind: r.get(3),
        holder_id: r.get(4),
        profile: r.get(5),
        algorithm: r.get(6),
        not_after: r.get(7),
        revoked_at: r.get(8),
        revocation_reason: r.get(9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_distinguished_names() {
        assert_eq!(dn_value("嘉禾县, 住建局"), "嘉禾县\\, 住建局");
        assert_eq!(dn_value("#1"), "\\#1");
        assert_eq!(dn_value("A=B"), "A\\=B");
    }
}
