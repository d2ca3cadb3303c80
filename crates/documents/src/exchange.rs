//! Document exchange between units (公文交换): a numbered document is sealed and sent to
//! recipient units in one step; each recipient's inbox shows it (特急 first); opening marks it
//! read; the receiving office signs for it (签收) — a receipt signed with the receiving unit's seal
//! key over the document number, the sealed package's SM3 and the time, so the sender can prove
//! which exact content arrived and when — or refuses it with a reason; the sender withdraws what
//! has not been signed for; the tracking page shows every recipient's state and checks receipts.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, Entry};
use tongban_authz::{Permission, Principal, Target};
use tongban_crypto::{
    cert::{parse_certificate, verify_signature},
    sm::sm3_hex,
};
use tongban_pki::{ca::CaService, package::SealPosition, seals::SealRequest};
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult, outbox};

use crate::service::DocumentService;

/// What the sender sends.
pub struct IssueRequest<'a> {
    /// The seal to use (the issuing unit's).
    pub seal_id: i64,
    /// The document file (the rendered document).
    pub file_name: &'a str,
    /// Its bytes.
    pub file: &'a [u8],
    /// Recipient units (主送、抄送).
    pub recipients: &'a [i64],
    /// Distribution groups of the issuing unit (分发组) whose units also receive it.
    pub groups: &'a [i64],
}

/// One recipient's state, as tracking and inboxes show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// The document.
    pub document_id: i64,
    /// 发文字号.
    pub doc_number: String,
    /// 标题.
    pub title: String,
    /// Sender unit.
    pub sender_unit: String,
    /// Recipient unit id.
    pub recipient_unit_id: i64,
    /// Recipient unit.
    pub recipient_unit: String,
    /// delivered, read, signed, refused, withdrawn.
    pub status: String,
    /// 紧急程度.
    pub urgency: String,
    /// Times (ms).
    pub delivered_at: i64,
    /// Read at.
    pub read_at: Option<i64>,
    /// Signed for at.
    pub signed_at: Option<i64>,
    /// Refused at.
    pub refused_at: Option<i64>,
    /// Refusal reason.
    pub refusal_reason: Option<String>,
    /// The signed receipt, if any.
    pub receipt: Option<Value>,
    /// Whether the receipt's signature verifies and names this document's content (filled in by
    /// tracking only: checking costs an SM2 verification per receipt).
    pub receipt_valid: Option<bool>,
    /// The handling process after signing for it (收文办理).
    pub instance_id: Option<i64>,
    /// Closed and archived at (办结、归档).
    pub archived_at: Option<i64>,
    /// Sign for it by (urgent documents), YYYY-MM-DD.
    pub due_on: Option<String>,
}

const SELECT: &str = "SELECT d.id, d.document_id, c.doc_number, c.title, s.name, d.recipient_unit_id, r.name, d.status, d.urgency, \
     d.delivered_at, d.read_at, d.signed_at, d.refused_at, d.refusal_reason, d.receipt, c.package_sm3, d.instance_id, d.archived_at, d.due_on \
     FROM document_deliveries d JOIN documents c ON c.id = d.document_id JOIN units s ON s.id = c.unit_id JOIN units r ON r.id = d.recipient_unit_id";

fn delivery_from(r: &AnyRow) -> Delivery {
    let receipt: Option<Value> = r.get::<Option<String>, _>(14).and_then(|t| serde_json::from_str(&t).ok());
    Delivery {
        id: r.get(0),
        document_id: r.get(1),
        doc_number: r.get::<Option<String>, _>(2).unwrap_or_default(),
        title: r.get(3),
        sender_unit: r.get(4),
        recipient_unit_id: r.get(5),
        recipient_unit: r.get(6),
        status: r.get(7),
        urgency: r.get(8),
        delivered_at: r.get(9),
        read_at: r.get(10),
        signed_at: r.get(11),
        refused_at: r.get(12),
        refusal_reason: r.get(13),
        receipt,
        receipt_valid: None,
        instance_id: r.get(16),
        archived_at: r.get(17),
        due_on: r.get(18),
    }
}

/// Whether a receipt's signature verifies with its certificate and it names `package_sm3`.
pub fn receipt_verifies(receipt: &Value, package_sm3: &str) -> bool {
    let text = receipt["text"].as_str().unwrap_or_default();
    let names: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let Ok(cert) = parse_certificate(receipt["certificate"].as_str().unwrap_or_default().as_bytes()) else { return false };
    let signature = STANDARD.decode(receipt["signature"].as_str().unwrap_or_default()).unwrap_or_default();
    !package_sm3.is_empty()
        && names["package_sm3"] == package_sm3
        && names["serial"] == cert.serial
        && verify_signature(cert.algorithm, &cert.public_key, text.as_bytes(), &signature)
}

impl DocumentService {
    async fn unit_target_allows(&self, caller: &Principal, p: Permission, unit_id: i64) -> DomainResult<bool> {
        let path: String = sqlx::query("SELECT path FROM units WHERE id = $1")
            .bind(unit_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or(DomainError::NotFound("error.not_found"))?;
        Ok(caller.allows(p, Target { owner_user_id: None, unit_id, unit_path: &path }))
    }

    /// Seals a numbered document with the issuing unit's seal and sends it to `recipients` (发文).
    pub async fn issue(&self, ca: &CaService, caller: &Principal, actor: &Actor, id: i64, req: &IssueRequest<'_>) -> DomainResult<usize> {
        let doc = self.document(caller, actor, id).await?;
        if !self.unit_target_allows(caller, Permission::DocumentIssue, doc.unit_id).await? {
            self.audit.record_denied(&self.db, actor, "document.issue", "document", id, "out_of_scope").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        if doc.status != "numbered" {
            return Err(DomainError::Conflict("document.error.not_numbered"));
        }
        let mut recipients: Vec<i64> = req.recipients.to_vec();
        recipients.extend(self.units_of_groups(doc.unit_id, req.groups).await?);
        recipients.sort_unstable();
        recipients.dedup();
        recipients.retain(|u| *u != doc.unit_id);
        if recipients.is_empty() || recipients.len() > 1000 {
            return Err(DomainError::invalid("recipients", "document.error.recipients"));
        }
        let known: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM units WHERE enabled = 1 AND id IN ({})",
            recipients.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",")
        ))
        .fetch_one(self.db.pool())
        .await?
        .get(0);
        if known != recipients.len() as i64 {
            return Err(DomainError::invalid("recipients", "document.error.recipients"));
        }
        // The attachments' digests are sealed with the document: none can be swapped afterwards.
        let attachments: Vec<Value> =
            self.attachments(&doc).await?.into_iter().map(|a| json!({"file_name": a.file_name, "size": a.size, "sm3": a.sm3})).collect();
        let metadata = json!({
            "doc_number": doc.doc_number, "title": doc.title, "urgency": doc.urgency,
            "issuer_mark": doc.fields.issuer_mark, "issuing_authority": doc.fields.issuing_authority, "date": doc.fields.date,
            "attachments": attachments,
        });
        let position = SealPosition { page: 1, x_mm: 120.0, y_mm: 220.0 };
        // No file uploaded: the document is rendered in the GB/T 9704 layout with the seal on it.
        let rendered;
        let (file_name, file) = if req.file.is_empty() {
            let (_, image) = ca.seal_image(req.seal_id).await?;
            rendered = self.render(&doc, Some(&image))?;
            ("document.pdf", rendered.as_slice())
        } else {
            (req.file_name, req.file)
        };
        let seal = SealRequest { seal_id: req.seal_id, file_name, file, metadata, position };
        let package = ca.seal_document(caller, actor, &seal).await?;
        let package_sm3 = sm3_hex(&package);
        // With a blob store the package lives there under its SM3; the row keeps the digest only.
        let package_text = match &self.blobs {
            Some((blobs, _)) => {
                blobs.put(&package).await.map_err(|e| DomainError::Internal(format!("storing the sealed package: {e}")))?;
                None
            }
            None => Some(String::from_utf8_lossy(&package).into_owned()),
        };
        let now = now_millis();
        let due_on = self.sign_for_deadline(&doc.urgency, now).await?;
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE documents SET status = 'issued', package = $2, package_sm3 = $3, updated_at = $4 WHERE id = $1 AND status = 'numbered'",
        )
        .bind(id)
        .bind(package_text)
        .bind(&package_sm3)
        .bind(now)
        .execute(tx.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::Conflict("document.error.not_numbered"));
        }
        for unit in &recipients {
            sqlx::query(
                "INSERT INTO document_deliveries (document_id, recipient_unit_id, status, urgency, delivered_at, due_on) VALUES ($1,$2,'delivered',$3,$4,$5)",
            )
            .bind(id)
            .bind(unit)
            .bind(&doc.urgency)
            .bind(now)
            .bind(&due_on)
                .execute(tx.conn())
                .await?;
            outbox::publish(&mut tx, "document.delivered", &json!({"document_id": id, "unit_id": unit, "urgency": doc.urgency})).await?;
        }
        let details = json!({"doc_number": doc.doc_number, "recipients": recipients, "package_sm3": package_sm3});
        self.audit.append(&mut tx, actor, Entry::success("document.issue", "document", id, details)).await?;
        tx.commit().await?;
        Ok(recipients.len())
    }

    /// The sealed package (`tongban-seal/1`) of an issued document: from the blob store by its
    /// SM3, or from the row where it was kept before there was one.
    pub async fn sealed_package(&self, id: i64) -> DomainResult<Option<String>> {
        let row = sqlx::query("SELECT package, package_sm3 FROM documents WHERE id = $1").bind(id).fetch_optional(self.db.pool()).await?;
        let Some((text, sm3)) = row.map(|r| (r.get::<Option<String>, _>(0), r.get::<Option<String>, _>(1))) else { return Ok(None) };
        if text.is_some() {
            return Ok(text);
        }
        let (Some(sm3), Some((blobs, _))) = (sm3, &self.blobs) else { return Ok(None) };
        let bytes = blobs.get(&sm3).await.map_err(|e| DomainError::Internal(format!("reading the sealed package of {id}: {e}")))?;
        let bytes = bytes.ok_or_else(|| DomainError::Internal(format!("the sealed package of {id} ({sm3}) is missing")))?;
        String::from_utf8(bytes).map(Some).map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// The sealed file of an issued document (from its package).
    pub async fn issued_file(&self, id: i64) -> DomainResult<Option<Vec<u8>>> {
        let package = self.sealed_package(id).await?;
        Ok(package
            .and_then(|p| serde_json::from_str::<Value>(&p).ok())
            .and_then(|v| v["file"].as_str().and_then(|f| STANDARD.decode(f).ok())))
    }

    /// The date by which an urgent document must be signed for: 特急 the next working day, 加急
    /// within two (working-day calendar); none for ordinary documents.
    async fn sign_for_deadline(&self, urgency: &str, now: i64) -> DomainResult<Option<String>> {
        let days = match urgency {
            "特急" => 1,
            "加急" => 2,
            _ => return Ok(None),
        };
        let (Some(calendar), Some(today)) = (&self.calendar, tongban_platform::clock::local_date(now)) else { return Ok(None) };
        Ok(calendar.calendar().await?.add_working_days(today, days).map(|d| d.to_string()))
    }

    /// Urgent documents not yet signed for, soonest deadline first, for e-supervision (电子监察):
    /// each with whether its deadline has passed.
    pub async fn urgent_unsigned(&self, caller: &Principal) -> DomainResult<Vec<(Delivery, bool)>> {
        caller.require(Permission::SupervisionRead)?;
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE d.due_on IS NOT NULL AND d.status IN ('delivered', 'read') ORDER BY d.due_on, d.id LIMIT 500"
        ))
        .fetch_all(self.db.pool())
        .await?;
        let today = tongban_platform::clock::local_date(now_millis()).map(|d| d.to_string()).unwrap_or_default();
        Ok(rows
            .iter()
            .map(delivery_from)
            .map(|d| {
                let overdue = d.due_on.as_deref().is_some_and(|due| due < today.as_str());
                (d, overdue)
            })
            .collect())
    }

    /// The caller's unit's inbox (收文): 特急 first, then 加急, newest first within.
    pub async fn inbox(&self, caller: &Principal) -> DomainResult<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE d.recipient_unit_id = $1 AND d.status <> 'withdrawn' \
             ORDER BY CASE d.urgency WHEN '特急' THEN 0 WHEN '加急' THEN 1 ELSE 2 END, d.delivered_at DESC, d.id DESC LIMIT 500"
        ))
        .bind(caller.unit_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(delivery_from).collect())
    }

    async fn delivery(&self, id: i64) -> DomainResult<Delivery> {
        let row = sqlx::query(&format!("{SELECT} WHERE d.id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        row.as_ref().map(delivery_from).ok_or(DomainError::NotFound("error.not_found"))
    }

    /// Opens a delivery (its unit's staff): answers it with the sealed package; the first opening
    /// is recorded as read.
    pub async fn open_delivery(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<(Delivery, String)> {
        let d = self.delivery(id).await?;
        if d.recipient_unit_id != caller.unit_id && !self.unit_target_allows(caller, Permission::DocumentIssue, d.recipient_unit_id).await?
        {
            self.audit.record_denied(&self.db, actor, "document.open", "document_delivery", id, "out_of_scope").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        if d.status == "withdrawn" {
            return Err(DomainError::NotFound("document.error.withdrawn"));
        }
        if d.status == "delivered" {
            let mut tx = self.db.begin_write().await?;
            sqlx::query("UPDATE document_deliveries SET status = 'read', read_at = $2 WHERE id = $1 AND status = 'delivered'")
                .bind(id)
                .bind(now_millis())
                .execute(tx.conn())
                .await?;
            self.audit
                .append(&mut tx, actor, Entry::success("document.read", "document_delivery", id, json!({"doc_number": d.doc_number})))
                .await?;
            tx.commit().await?;
        }
        let package = self.sealed_package(d.document_id).await?.unwrap_or_default();
        Ok((self.delivery(id).await?, package))
    }

    async fn receiving_office(&self, caller: &Principal, actor: &Actor, id: i64, action: &str) -> DomainResult<Delivery> {
        let d = self.delivery(id).await?;
        if !self.unit_target_allows(caller, Permission::DocumentIssue, d.recipient_unit_id).await? {
            self.audit.record_denied(&self.db, actor, action, "document_delivery", id, "out_of_scope").await;
            return Err(if d.recipient_unit_id == caller.unit_id {
                DomainError::Forbidden("error.forbidden")
            } else {
                DomainError::NotFound("error.not_found")
            });
        }
        if !matches!(d.status.as_str(), "delivered" | "read") {
            return Err(DomainError::Conflict("document.error.not_pending"));
        }
        Ok(d)
    }

    /// Signs for a delivery (签收) with the receiving unit's seal: the receipt goes back to the sender.
    pub async fn sign_for(&self, ca: &CaService, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<Value> {
        let d = self.receiving_office(caller, actor, id, "document.sign").await?;
        let package_sm3: String = sqlx::query("SELECT package_sm3 FROM documents WHERE id = $1")
            .bind(d.document_id)
            .fetch_one(self.db.pool())
            .await?
            .get::<Option<String>, _>(0)
            .unwrap_or_default();
        let signed_at = tongban_platform::clock::format_rfc3339(now_millis() / 1000 * 1000);
        let mut serial = String::new();
        let (text, signature, cert_pem) = ca
            .sign_as_unit(d.recipient_unit_id, |seal_serial| {
                serial = seal_serial.to_string();
                json!({
                    "receipt": "tongban-receipt/1", "delivery": id, "doc_number": d.doc_number, "package_sm3": package_sm3,
                    "recipient": d.recipient_unit, "signed_at": signed_at, "serial": seal_serial,
                })
                .to_string()
            })
            .await?;
        let receipt = json!({"text": text, "signature": signature, "algorithm": "sm2-with-sm3", "certificate": cert_pem});
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE document_deliveries SET status = 'signed', signed_at = $2, read_at = COALESCE(read_at, $2), receipt = $3 WHERE id = $1 AND status IN ('delivered', 'read')",
        )
        .bind(id)
        .bind(now_millis())
        .bind(receipt.to_string())
        .execute(tx.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::Conflict("document.error.not_pending"));
        }
        outbox::publish(&mut tx, "document.signed", &json!({"document_id": d.document_id, "delivery": id})).await?;
        self.audit
            .append(
                &mut tx,
                actor,
                Entry::success("document.sign", "document_delivery", id, json!({"doc_number": d.doc_number, "serial": serial})),
            )
            .await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// Refuses a delivery with a reason (拒收).
    pub async fn refuse(&self, caller: &Principal, actor: &Actor, id: i64, reason: &str) -> DomainResult<()> {
        let reason = reason.trim();
        tongban_platform::text::check_multiline("reason", reason)?;
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(DomainError::invalid("reason", "error.required"));
        }
        let d = self.receiving_office(caller, actor, id, "document.refuse").await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE document_deliveries SET status = 'refused', refused_at = $2, refusal_reason = $3 WHERE id = $1 AND status IN ('delivered', 'read')")
            .bind(id)
            .bind(now_millis())
            .bind(reason)
            .execute(tx.conn())
            .await?;
        outbox::publish(&mut tx, "document.refused", &json!({"document_id": d.document_id, "delivery": id})).await?;
        self.audit.append(&mut tx, actor, Entry::success("document.refuse", "document_delivery", id, json!({"reason": reason}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sender withdraws its document from every recipient that has not signed for it (撤回).
    pub async fn withdraw(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<usize> {
        let doc = self.document(caller, actor, id).await?;
        if !self.unit_target_allows(caller, Permission::DocumentIssue, doc.unit_id).await? {
            self.audit.record_denied(&self.db, actor, "document.withdraw", "document", id, "out_of_scope").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("UPDATE document_deliveries SET status = 'withdrawn', withdrawn_at = $2 WHERE document_id = $1 AND status IN ('delivered', 'read')")
            .bind(id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        let n = done.rows_affected() as usize;
        self.audit.append(&mut tx, actor, Entry::success("document.withdraw", "document", id, json!({"withdrawn": n}))).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Every recipient's state, with each receipt checked (the sender's tracking page).
    pub async fn tracking(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<Vec<Delivery>> {
        self.document(caller, actor, id).await?;
        let rows = sqlx::query(&format!("{SELECT} WHERE d.document_id = $1 ORDER BY r.name")).bind(id).fetch_all(self.db.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut d = delivery_from(r);
                let package_sm3: Option<String> = r.get(15);
                d.receipt_valid = d.receipt.as_ref().map(|rc| receipt_verifies(rc, package_sm3.as_deref().unwrap_or_default()));
                d
            })
            .collect())
    }
}
