//! Attachments (附件) of official documents: PDF, OFD and image files kept in the blob store by
//! their SM3 digest (stored once however often they are attached), checked on upload (size, and the
//! type sniffed from the content against the name), added and removed while the document is a
//! draft, sealed with it (their digests are in the sealed metadata) and readable by whoever may
//! read the document and by the units it was sent to.

use serde::Serialize;
use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_platform::{DomainError, clock::now_millis, error::DomainResult, upload};

use crate::service::{Document, DocumentService};

/// The most attachments one document may have.
pub const MAX_ATTACHMENTS: i64 = 20;

/// One attached file (附件).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    /// Id.
    pub id: i64,
    /// The document it belongs to.
    pub document_id: i64,
    /// File name (sanitised).
    pub file_name: String,
    /// Content type, from the content.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SM3 digest of the content (its key in the blob store).
    pub sm3: String,
    /// When it was attached (ms since epoch).
    pub created_at: i64,
}

impl Attachment {
    /// Whether a browser can show it in the page (PDF in a frame, PNG/JPEG as an image).
    pub fn previewable(&self) -> bool {
        self.is_image() || self.content_type == "application/pdf"
    }

    /// Whether it is a PNG or JPEG image.
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

const SELECT: &str = "SELECT id, document_id, file_name, content_type, size, sm3, created_at FROM document_attachments";

fn attachment_from(r: &AnyRow) -> Attachment {
    Attachment {
        id: r.get(0),
        document_id: r.get(1),
        file_name: r.get(2),
        content_type: r.get(3),
        size: r.get(4),
        sm3: r.get(5),
        created_at: r.get(6),
    }
}

/// Marks a draft changed inside `tx`; a document that is no longer a draft is a conflict (its
/// attachments are fixed once it leaves the draft state, even under a concurrent submission).
async fn touch_draft(tx: &mut tongban_platform::WriteTx, id: i64, now: i64) -> DomainResult<()> {
    let done = sqlx::query("UPDATE documents SET updated_at = $2 WHERE id = $1 AND status = 'draft'")
        .bind(id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Err(DomainError::Conflict("document.error.not_draft"));
    }
    Ok(())
}

impl DocumentService {
    fn blob_store(&self) -> DomainResult<&(tongban_platform::blobs::BlobStore, usize)> {
        self.blobs.as_ref().ok_or(DomainError::Conflict("document.error.no_blobs"))
    }

    /// Attaches a file to a draft (its author or the issuing office).
    pub async fn add_attachment(&self, caller: &Principal, actor: &Actor, id: i64, file_name: &str, bytes: &[u8]) -> DomainResult<i64> {
        let doc = self.document(caller, actor, id).await?;
        self.require_editor(caller, actor, &doc, "document.attach").await?;
        let (blobs, limit) = self.blob_store()?;
        let checked = upload::check(file_name, bytes, *limit).map_err(|e| DomainError::invalid("attachment", e.message_key()))?;
        if doc.status != "draft" {
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        if self.attachments(&doc).await?.len() as i64 >= MAX_ATTACHMENTS {
            return Err(DomainError::invalid("attachment", "document.error.too_many_attachments"));
        }
        // Content-addressed and idempotent: a file stored for a change that then fails is only an
        // unreferenced blob, never a wrong one.
        let key = blobs.put(bytes).await.map_err(|e| DomainError::Internal(format!("storing attachment: {e}")))?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        touch_draft(&mut tx, id, now).await?;
        let attachment: i64 = sqlx::query(
            "INSERT INTO document_attachments (document_id, file_name, content_type, size, sm3, created_by, created_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
        )
        .bind(id)
        .bind(&checked.file_name)
        .bind(checked.content_type)
        .bind(bytes.len() as i64)
        .bind(&key)
        .bind(caller.user_id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"attachment": attachment, "file": checked.file_name, "size": bytes.len(), "sm3": key});
        self.audit.append(&mut tx, actor, Entry::success("document.attach", "document", id, details)).await?;
        tx.commit().await?;
        Ok(attachment)
    }

    /// Removes an attachment from a draft (its author or the issuing office).
    pub async fn remove_attachment(&self, caller: &Principal, actor: &Actor, id: i64, attachment: i64) -> DomainResult<()> {
        let doc = self.document(caller, actor, id).await?;
        self.require_editor(caller, actor, &doc, "document.detach").await?;
        let mut tx = self.db.begin_write().await?;
        touch_draft(&mut tx, id, now_millis()).await?;
        let gone = sqlx::query("DELETE FROM document_attachments WHERE id = $1 AND document_id = $2")
            .bind(attachment)
            .bind(id)
            .execute(tx.conn())
            .await?;
        if gone.rows_affected() == 0 {
            return Err(DomainError::NotFound("error.not_found"));
        }
        self.audit.append(&mut tx, actor, Entry::success("document.detach", "document", id, json!({"attachment": attachment}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A document's attachments in the order they were added (the caller has the document).
    pub async fn attachments(&self, doc: &Document) -> DomainResult<Vec<Attachment>> {
        let rows = sqlx::query(&format!("{SELECT} WHERE document_id = $1 ORDER BY id")).bind(doc.id).fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(attachment_from).collect())
    }

    /// The attachments of the document a delivery carries (its recipient unit's staff).
    pub async fn delivery_attachments(&self, caller: &Principal, delivery: i64) -> DomainResult<Vec<Attachment>> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE document_id = (SELECT document_id FROM document_deliveries WHERE id = $1 AND recipient_unit_id = $2 \
             AND status <> 'withdrawn') ORDER BY id"
        ))
        .bind(delivery)
        .bind(caller.unit_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(attachment_from).collect())
    }

    /// An attachment and its bytes, for whoever may read its document and for the staff of units
    /// it was sent to (not withdrawn). The content is checked against its SM3 on the way out.
    pub async fn attachment_file(&self, caller: &Principal, actor: &Actor, attachment: i64) -> DomainResult<(Attachment, Vec<u8>)> {
        let row = sqlx::query(&format!("{SELECT} WHERE id = $1")).bind(attachment).fetch_optional(self.db.pool()).await?;
        let a = row.as_ref().map(attachment_from).ok_or(DomainError::NotFound("error.not_found"))?;
        let doc = self.stored_document(a.document_id).await?;
        if !self.may_read(caller, &doc).await? && !self.received_by_unit(caller, doc.id).await? {
            self.audit.record_denied(&self.db, actor, "document.attachment.read", "document_attachment", attachment, "out_of_scope").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        let (blobs, _) = self.blob_store()?;
        let bytes = blobs
            .get(&a.sm3)
            .await
            .map_err(|e| DomainError::Internal(format!("reading attachment {attachment}: {e}")))?
            .ok_or_else(|| DomainError::Internal(format!("attachment {attachment}: blob {} is missing", a.sm3)))?;
        Ok((a, bytes))
    }

    async fn received_by_unit(&self, caller: &Principal, document: i64) -> DomainResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM document_deliveries WHERE document_id = $1 AND recipient_unit_id = $2 AND status <> 'withdrawn' LIMIT 1",
        )
        .bind(document)
        .bind(caller.unit_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }
}
