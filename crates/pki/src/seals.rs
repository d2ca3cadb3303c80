//! Electronic seals (电子印章): the security administrator registers a unit's seal (its image and
//! its seal certificate, whose key the CA keeps sealed); staff with `seal.use` over the unit seal
//! documents (用印), producing a `tongban-seal/1` package; anyone verifies a package (验章), and
//! inside tongban the verification also knows the trusted root and revocations.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::{Permission, Principal, Target};
use tongban_crypto::{
    cert::{KeyAlgorithm, parse_certificate},
    sm::sm3_hex,
};
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult};

use crate::{
    KeyPair,
    ca::CaService,
    package::{SealInput, SealPosition, Verification, seal_package, verify_package},
};

/// Largest seal image accepted.
pub const MAX_IMAGE_BYTES: usize = 256 * 1024;
/// Largest document accepted for sealing.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// A unit's seal, as the sealing page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Seal {
    /// Row id.
    pub id: i64,
    /// The unit.
    pub unit_id: i64,
    /// The unit's name.
    pub unit_name: String,
    /// The seal certificate's serial.
    pub serial: String,
    /// The image, base64 PNG (for a `data:` preview).
    pub image: String,
}

/// What to seal.
pub struct SealRequest<'a> {
    /// The seal to use.
    pub seal_id: i64,
    /// File name.
    pub file_name: &'a str,
    /// The document.
    pub file: &'a [u8],
    /// Title, document number … (signed with it).
    pub metadata: Value,
    /// Where the image goes.
    pub position: SealPosition,
}

fn is_png(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// A round red seal image (a ring with a star-like cross), PNG with transparency: what the demo
/// registers for its units (a real county scans its seals).
pub fn demo_seal_png() -> Vec<u8> {
    const N: u32 = 256;
    let mut rgba = Vec::with_capacity((N * N * 4) as usize);
    for y in 0..N {
        for x in 0..N {
            let (dx, dy) = (x as f32 - 127.5, y as f32 - 127.5);
            let r = (dx * dx + dy * dy).sqrt();
            let star = (dx.abs() < 9.0 && dy.abs() < 40.0) || (dy.abs() < 9.0 && dx.abs() < 40.0) || ((dx - dy).abs() < 10.0 && r < 36.0);
            let ink = (108.0..124.0).contains(&r) || (r < 100.0 && star);
            rgba.extend(if ink { [210, 20, 20, 220] } else { [0, 0, 0, 0] });
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, N, N);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        if let Ok(mut writer) = encoder.write_header() {
            let _ = writer.write_image_data(&rgba);
        }
    }
    out
}

impl CaService {
    /// The demo's seals: a seal certificate and image for each named unit that has none (first
    /// start of `serve --demo`, after the CA exists). Answers how many were made.
    pub async fn load_demo_seals(&self, units: &[&str]) -> DomainResult<usize> {
        let image = demo_seal_png();
        let mut made = 0;
        for name in units {
            let row =
                sqlx::query("SELECT u.id FROM units u WHERE u.name = $1 AND NOT EXISTS (SELECT 1 FROM seals s WHERE s.unit_id = u.id)")
                    .bind(name)
                    .fetch_optional(self.db.pool())
                    .await?;
            let Some(row) = row else { continue };
            let unit_id: i64 = row.get(0);
            let cert = self.issue_seal_as(&Actor::system("demo"), unit_id, KeyAlgorithm::Sm2).await?;
            let mut tx = self.db.begin_write().await?;
            sqlx::query("INSERT INTO seals (unit_id, certificate_id, image, created_at) VALUES ($1,$2,$3,$4)")
                .bind(unit_id)
                .bind(cert.id)
                .bind(STANDARD.encode(&image))
                .bind(now_millis())
                .execute(tx.conn())
                .await?;
            self.audit
                .append(&mut tx, &Actor::system("demo"), Entry::success("seal.register", "seal", unit_id, json!({"unit_id": unit_id})))
                .await?;
            tx.commit().await?;
            made += 1;
        }
        Ok(made)
    }

    /// Registers (or replaces) a unit's seal: its image and its newest valid seal certificate.
    pub async fn register_seal(&self, caller: &Principal, actor: &Actor, unit_id: i64, image: &[u8]) -> DomainResult<i64> {
        self.require(caller, actor, "seal.register").await?;
        if image.is_empty() || image.len() > MAX_IMAGE_BYTES || !is_png(image) {
            return Err(DomainError::invalid("image", "seal.error.image"));
        }
        let cert = sqlx::query(
            "SELECT id FROM pki_certificates WHERE holder_kind = 'unit' AND holder_id = $1 AND profile = 'seal' AND revoked_at IS NULL \
             AND not_after > $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(unit_id)
        .bind(now_millis())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DomainError::invalid("unit_id", "seal.error.no_certificate"))?;
        let cert_id: i64 = cert.get(0);
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM seals WHERE unit_id = $1").bind(unit_id).execute(tx.conn()).await?;
        let id: i64 = sqlx::query("INSERT INTO seals (unit_id, certificate_id, image, created_at) VALUES ($1,$2,$3,$4) RETURNING id")
            .bind(unit_id)
            .bind(cert_id)
            .bind(STANDARD.encode(image))
            .bind(now_millis())
            .fetch_one(tx.conn())
            .await?
            .get(0);
        let details = json!({"unit_id": unit_id, "certificate": cert_id, "image_sm3": sm3_hex(image)});
        self.audit.append(&mut tx, actor, Entry::success("seal.register", "seal", id, details)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The seals the caller may use (`seal.use` with the unit in scope), whose certificate is valid.
    pub async fn usable_seals(&self, caller: &Principal) -> DomainResult<Vec<Seal>> {
        if !caller.has(Permission::SealUse) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT s.id, s.unit_id, n.name, n.path, c.serial, s.image FROM seals s JOIN units n ON n.id = s.unit_id \
             JOIN pki_certificates c ON c.id = s.certificate_id WHERE s.disabled_at IS NULL AND c.revoked_at IS NULL ORDER BY n.name",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .filter(|r| {
                let target = Target { owner_user_id: None, unit_id: r.get(1), unit_path: &r.get::<String, _>(3) };
                caller.allows(Permission::SealUse, target)
            })
            .map(|r| Seal { id: r.get(0), unit_id: r.get(1), unit_name: r.get(2), serial: r.get(4), image: r.get(5) })
            .collect())
    }

    /// Seals a document (用印) and answers the package (JSON bytes). Refused without `seal.use` over
    /// the seal's unit; every use is audited with the document's SM3.
    pub async fn seal_document(&self, caller: &Principal, actor: &Actor, req: &SealRequest<'_>) -> DomainResult<Vec<u8>> {
        if req.file.is_empty() || req.file.len() > MAX_DOCUMENT_BYTES {
            return Err(DomainError::invalid("file", "seal.error.file"));
        }
        let row = sqlx::query(
            "SELECT s.unit_id, n.name, n.path, c.serial, c.cert_pem, c.key_sealed, c.algorithm, s.image FROM seals s \
             JOIN units n ON n.id = s.unit_id JOIN pki_certificates c ON c.id = s.certificate_id \
             WHERE s.id = $1 AND s.disabled_at IS NULL AND c.revoked_at IS NULL",
        )
        .bind(req.seal_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DomainError::invalid("seal_id", "seal.error.no_seal"))?;
        let (unit_id, unit_name, path): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        if !caller.allows(Permission::SealUse, Target { owner_user_id: None, unit_id, unit_path: &path }) {
            let reason = if caller.has(Permission::SealUse) { "out_of_scope" } else { "missing_permission" };
            self.audit.record_denied(&self.db, actor, "seal.use", "seal", req.seal_id, reason).await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let serial: String = row.get(3);
        let key_sealed: Option<String> = row.get(5);
        let secret = self
            .secrets
            .open(&key_sealed.unwrap_or_default(), format!("pki:cert:{serial}").as_bytes())
            .map_err(|e| DomainError::Internal(format!("seal key: {e}")))?;
        let algorithm = KeyAlgorithm::parse(&row.get::<String, _>(6)).ok_or_else(|| DomainError::Internal("seal algorithm".into()))?;
        let key = KeyPair::from_secret(algorithm, &secret).map_err(|e| DomainError::Internal(e.to_string()))?;
        let image = STANDARD.decode(row.get::<String, _>(7)).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut chain = vec![row.get::<String, _>(4)];
        let mut authorities = self.authorities().await?;
        authorities.sort_by_key(|a| a.kind != "issuing");
        chain.extend(authorities.into_iter().map(|a| a.pem));
        let signed_at = tongban_platform::clock::format_rfc3339(now_millis() / 1000 * 1000);
        let input = SealInput {
            file_name: req.file_name,
            file: req.file,
            metadata: req.metadata.clone(),
            image: &image,
            unit: &unit_name,
            position: req.position.clone(),
            signed_at: &signed_at,
        };
        let package = seal_package(&input, &key, &chain).map_err(|e| DomainError::Internal(e.to_string()))?;
        let bytes = serde_json::to_vec(&package).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut tx = self.db.begin_write().await?;
        let details = json!({"seal": req.seal_id, "unit": unit_name, "file": req.file_name, "file_sm3": sm3_hex(req.file), "metadata": req.metadata, "serial": serial});
        self.audit.append(&mut tx, actor, Entry::success("seal.use", "seal", req.seal_id, details)).await?;
        tx.commit().await?;
        Ok(bytes)
    }

    /// Signs with a unit's registered seal key (a signed receipt, 签收回执): `message` builds the
    /// text from the seal certificate's serial. Answers the text, the DER signature (base64) and
    /// the seal certificate (PEM). The caller checks that whoever asks may act for the unit.
    pub async fn sign_as_unit(&self, unit_id: i64, message: impl FnOnce(&str) -> String) -> DomainResult<(String, String, String)> {
        let (serial, cert_pem, key) = self.unit_seal_key(unit_id).await?;
        let text = message(&serial);
        let signature = key.sign_der(text.as_bytes()).map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok((text, STANDARD.encode(signature), cert_pem))
    }

    async fn unit_seal_key(&self, unit_id: i64) -> DomainResult<(String, String, KeyPair)> {
        let row = sqlx::query(
            "SELECT c.serial, c.cert_pem, c.key_sealed, c.algorithm FROM seals s JOIN pki_certificates c ON c.id = s.certificate_id \
             WHERE s.unit_id = $1 AND s.disabled_at IS NULL AND c.revoked_at IS NULL",
        )
        .bind(unit_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| DomainError::Conflict("seal.error.no_seal"))?;
        let serial: String = row.get(0);
        let secret = self
            .secrets
            .open(&row.get::<Option<String>, _>(2).unwrap_or_default(), format!("pki:cert:{serial}").as_bytes())
            .map_err(|e| DomainError::Internal(format!("seal key: {e}")))?;
        let algorithm = KeyAlgorithm::parse(&row.get::<String, _>(3)).ok_or_else(|| DomainError::Internal("seal algorithm".into()))?;
        let key = KeyPair::from_secret(algorithm, &secret).map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok((serial, row.get(1), key))
    }

    /// A registered seal's image (PNG) and unit, to render it on a document.
    pub async fn seal_image(&self, seal_id: i64) -> DomainResult<(i64, Vec<u8>)> {
        let row = sqlx::query("SELECT unit_id, image FROM seals WHERE id = $1 AND disabled_at IS NULL")
            .bind(seal_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| DomainError::invalid("seal_id", "seal.error.no_seal"))?;
        let image = STANDARD.decode(row.get::<String, _>(1)).map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok((row.get(0), image))
    }

    /// Verifies a package (验章) with what only tongban knows: whether the chain ends at this
    /// CA's root and whether the signer's certificate was revoked.
    pub async fn verify(&self, package: &[u8]) -> DomainResult<Verification> {
        let mut v = verify_package(package);
        let root = self.authorities().await?.into_iter().find(|a| a.kind == "root");
        if let Some(root) = root {
            let fingerprint = parse_certificate(root.pem.as_bytes()).map(|c| c.fingerprint).unwrap_or_default();
            let trusted = !v.root_fingerprint.is_empty() && v.root_fingerprint == fingerprint;
            v.trusted_root = Some(trusted);
            if !trusted && !v.root_fingerprint.is_empty() {
                v.problems.push("the chain does not end at this platform's root CA".into());
            }
        }
        if !v.serial.is_empty() {
            let revoked = sqlx::query("SELECT revoked_at FROM pki_certificates WHERE serial = $1")
                .bind(&v.serial)
                .fetch_optional(self.db.pool())
                .await?
                .and_then(|r| r.get::<Option<i64>, _>(0));
            if let Some(at) = revoked {
                v.certificate_status = "revoked".into();
                v.problems.push(format!("the seal certificate was revoked (at {} ms)", at));
            }
        }
        Ok(v)
    }
}
