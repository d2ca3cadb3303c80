//! Drafting and numbering official documents (拟稿、编号). A draft belongs to its author's unit;
//! numbering needs `document.issue` over that unit and takes the next number of the unit's prefix
//! and year in the same transaction as the document's change, so numbers never repeat and a
//! failed numbering leaves no gap.

use serde::Serialize;
use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal, Target};
use tongban_platform::{
    Db, DomainError,
    clock::{local_date, now_millis},
    error::DomainResult,
};

use crate::model::{DocumentFields, check_prefix, format_number};

/// A document as its pages show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Document {
    /// Id.
    pub id: i64,
    /// The issuing unit.
    pub unit_id: i64,
    /// `draft` or `numbered`.
    pub status: String,
    /// 标题.
    pub title: String,
    /// 紧急程度.
    pub urgency: String,
    /// 发文字号, once numbered.
    pub doc_number: Option<String>,
    /// The GB/T 9704 elements.
    pub fields: DocumentFields,
    /// Author.
    pub created_by: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// The review and sign-off process, once sent (送审).
    pub instance_id: Option<i64>,
}

const SELECT: &str = "SELECT id, unit_id, status, title, urgency, doc_number, fields, created_by, updated_at, instance_id FROM documents";

fn document_from(r: &AnyRow) -> DomainResult<Document> {
    let fields: DocumentFields = serde_json::from_str(&r.get::<String, _>(6)).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(Document {
        id: r.get(0),
        unit_id: r.get(1),
        status: r.get(2),
        title: r.get(3),
        urgency: r.get(4),
        doc_number: r.get(5),
        fields,
        created_by: r.get(7),
        updated_at: r.get(8),
        instance_id: r.get(9),
    })
}

/// Use cases of the documents slice.
#[derive(Clone)]
pub struct DocumentService {
    pub(crate) db: Db,
    pub(crate) audit: AuditTrail,
    /// The font documents are rendered with, if one was found.
    pub(crate) font: Option<crate::render::FontFile>,
    /// The workflow engine, for the review and sign-off process.
    pub(crate) workflow: Option<tongban_workflow::WorkflowService>,
    /// The working-day calendar, for urgent documents' sign-for deadlines.
    pub(crate) calendar: Option<tongban_calendar::CalendarService>,
    /// The blob store for attachments and sealed packages, and the upload limit in bytes.
    pub(crate) blobs: Option<(tongban_platform::blobs::BlobStore, usize)>,
}

impl DocumentService {
    /// The service over `db`, recording to `audit`.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        DocumentService { db, audit, font: None, workflow: None, calendar: None, blobs: None }
    }

    /// Gives urgent documents sign-for deadlines in working days of `calendar`.
    pub fn with_calendar(mut self, calendar: tongban_calendar::CalendarService) -> Self {
        self.calendar = Some(calendar);
        self
    }

    /// Keeps attachments and sealed packages in `blobs`, refusing uploads over `limit` bytes;
    /// without it, documents take no attachments and packages stay in the database.
    pub fn with_blobs(mut self, blobs: tongban_platform::blobs::BlobStore, limit: usize) -> Self {
        self.blobs = Some((blobs, limit));
        self
    }

    /// Runs review and sign-off (核稿、签发) on `workflow`.
    pub fn with_workflow(mut self, workflow: tongban_workflow::WorkflowService) -> Self {
        self.workflow = Some(workflow);
        self
    }

    /// Renders documents with `font_file`, or the first free CJK font installed; without one,
    /// documents can still be sent as uploaded files (the reason is logged once here).
    pub fn with_font(mut self, font_file: Option<&std::path::Path>) -> Self {
        match crate::render::FontFile::load(font_file) {
            Ok(f) => self.font = Some(f),
            Err(e) => tracing::warn!("documents cannot be rendered as PDF: {e}"),
        }
        self
    }

    /// Renders a document as its GB/T 9704 PDF, the seal image pressed over the signature.
    pub fn render(&self, doc: &Document, seal_png: Option<&[u8]>) -> DomainResult<Vec<u8>> {
        let font = self.font.as_ref().ok_or(DomainError::Conflict("document.error.no_font"))?;
        crate::render::render_pdf(&doc.fields, doc.doc_number.as_deref().unwrap_or(""), font, seal_png).map_err(|e| match e {
            crate::render::RenderError::SealImage(_) => DomainError::invalid("seal_id", "seal.error.image"),
            other => DomainError::Internal(other.to_string()),
        })
    }

    async fn unit_path(&self, unit_id: i64) -> DomainResult<String> {
        sqlx::query("SELECT path FROM units WHERE id = $1")
            .bind(unit_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or(DomainError::NotFound("error.not_found"))
    }

    /// Whether `caller` may act as the issuing office of `unit_id` (`document.issue` in scope).
    pub async fn can_issue(&self, caller: &Principal, unit_id: i64) -> DomainResult<bool> {
        self.may_issue(caller, unit_id).await
    }

    async fn may_issue(&self, caller: &Principal, unit_id: i64) -> DomainResult<bool> {
        let path = self.unit_path(unit_id).await?;
        Ok(caller.allows(Permission::DocumentIssue, Target { owner_user_id: None, unit_id, unit_path: &path }))
    }

    async fn out_of_scope(&self, caller: &Principal, actor: &Actor, action: &str, id: i64) -> DomainError {
        self.audit.record_denied(&self.db, actor, action, "document", id, "out_of_scope").await;
        if caller.has(Permission::DocumentIssue) {
            DomainError::NotFound("error.not_found")
        } else {
            DomainError::Forbidden("error.forbidden")
        }
    }

    /// Starts a draft (拟稿) in the caller's own unit.
    pub async fn create_draft(&self, caller: &Principal, actor: &Actor, fields: &DocumentFields) -> DomainResult<i64> {
        caller.require(Permission::WorkbenchUse)?;
        fields.check()?;
        let now = now_millis();
        let text = serde_json::to_string(fields).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut tx = self.db.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO documents (unit_id, status, title, urgency, fields, created_by, created_at, updated_at) VALUES ($1,'draft',$2,$3,$4,$5,$6,$6) RETURNING id",
        )
        .bind(caller.unit_id)
        .bind(fields.title.trim())
        .bind(fields.urgency.trim())
        .bind(text)
        .bind(caller.user_id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"title": fields.title.trim(), "unit_id": caller.unit_id});
        self.audit.append(&mut tx, actor, Entry::success("document.draft", "document", id, details)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A document, for its unit's staff, its issuing office and the people its flow assigns.
    pub async fn document(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<Document> {
        let doc = self.stored_document(id).await?;
        if self.may_read(caller, &doc).await? {
            return Ok(doc);
        }
        self.audit.record_denied(&self.db, actor, "document.read", "document", id, "out_of_scope").await;
        Err(DomainError::NotFound("error.not_found"))
    }

    /// A document by id, without access checks (callers check).
    pub(crate) async fn stored_document(&self, id: i64) -> DomainResult<Document> {
        let row = sqlx::query(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        row.as_ref().map(document_from).transpose()?.ok_or(DomainError::NotFound("error.not_found"))
    }

    /// Whether `caller` may read `doc`: its unit's staff, its issuing office, people its flow
    /// assigns.
    pub(crate) async fn may_read(&self, caller: &Principal, doc: &Document) -> DomainResult<bool> {
        Ok(doc.unit_id == caller.unit_id || self.may_issue(caller, doc.unit_id).await? || self.in_its_flow(caller, doc).await?)
    }

    /// Refuses (403, audited) a caller who is neither the draft's author nor its issuing office.
    pub(crate) async fn require_editor(&self, caller: &Principal, actor: &Actor, doc: &Document, action: &str) -> DomainResult<()> {
        if doc.created_by == caller.user_id || self.may_issue(caller, doc.unit_id).await? {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "document", doc.id, "not_author").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// Whether the document's issuing process gives or gave the caller a task: as its holder or
    /// doer, or as staff of a unit whose queue it is in (a countersigning unit, 会签单位).
    async fn in_its_flow(&self, caller: &Principal, doc: &Document) -> DomainResult<bool> {
        let Some(instance) = doc.instance_id else { return Ok(false) };
        let row = sqlx::query(
            "SELECT 1 FROM wf_tasks t WHERE t.instance_id = $1 AND (t.assignee_id = $2 OR t.completed_by = $2 OR EXISTS              (SELECT 1 FROM wf_task_candidates c WHERE c.task_id = t.id AND c.kind = 'unit' AND c.value = $3)) LIMIT 1",
        )
        .bind(instance)
        .bind(caller.user_id)
        .bind(caller.unit_id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The caller's unit's documents, newest first.
    pub async fn documents(&self, caller: &Principal) -> DomainResult<Vec<Document>> {
        let rows = sqlx::query(&format!("{SELECT} WHERE unit_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 500"))
            .bind(caller.unit_id)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(document_from).collect()
    }

    /// Changes a draft (its author, or the issuing office). Numbered documents are fixed.
    pub async fn update_draft(&self, caller: &Principal, actor: &Actor, id: i64, fields: &DocumentFields) -> DomainResult<()> {
        let doc = self.document(caller, actor, id).await?;
        if doc.created_by != caller.user_id && !self.may_issue(caller, doc.unit_id).await? {
            return Err(self.out_of_scope(caller, actor, "document.update", id).await);
        }
        fields.check()?;
        let text = serde_json::to_string(fields).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut tx = self.db.begin_write().await?;
        let done =
            sqlx::query("UPDATE documents SET title = $2, urgency = $3, fields = $4, updated_at = $5 WHERE id = $1 AND status = 'draft'")
                .bind(id)
                .bind(fields.title.trim())
                .bind(fields.urgency.trim())
                .bind(text)
                .bind(now_millis())
                .execute(tx.conn())
                .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        self.audit.append(&mut tx, actor, Entry::success("document.update", "document", id, json!({"title": fields.title.trim()}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The demo county's number prefixes (嘉政发 for the county government …), where unset.
    pub async fn load_demo(&self) -> DomainResult<()> {
        const PREFIXES: [(&str, &str); 4] = [
            ("嘉禾县人民政府", "嘉政发"),
            ("县政府办公室", "嘉政办发"),
            ("行政审批服务局（政务服务中心）", "嘉审批发"),
            ("自然资源局", "嘉自然资发"),
        ];
        let mut tx = self.db.begin_write().await?;
        for (unit, prefix) in PREFIXES {
            sqlx::query(
                "INSERT INTO document_prefixes (unit_id, prefix) SELECT id, $2 FROM units WHERE name = $1 \
                 AND NOT EXISTS (SELECT 1 FROM document_prefixes p WHERE p.unit_id = units.id)",
            )
            .bind(unit)
            .bind(prefix)
            .execute(tx.conn())
            .await?;
        }
        // Two bureaus' document offices, so that documents can be sent and signed for in the demo.
        for username in ["zhoujun", "xuhui"] {
            sqlx::query(
                "INSERT INTO grants (user_id, role_id, scope, created_at) SELECT u.id, r.id, 'unit', $2 FROM users u, roles r \
                 WHERE u.username = $1 AND r.code = 'doc_office' AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.user_id = u.id AND g.role_id = r.id)",
            )
            .bind(username)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        self.load_demo_groups().await
    }

    /// Sets a unit's number prefix (机关代字), e.g. 嘉政发.
    pub async fn set_prefix(&self, caller: &Principal, actor: &Actor, unit_id: i64, prefix: &str) -> DomainResult<()> {
        if !self.may_issue(caller, unit_id).await? {
            return Err(self.out_of_scope(caller, actor, "document.prefix", unit_id).await);
        }
        check_prefix(prefix)?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM document_prefixes WHERE unit_id = $1").bind(unit_id).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO document_prefixes (unit_id, prefix) VALUES ($1, $2)")
            .bind(unit_id)
            .bind(prefix.trim())
            .execute(tx.conn())
            .await?;
        self.audit.append(&mut tx, actor, Entry::success("document.prefix", "unit", unit_id, json!({"prefix": prefix.trim()}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Numbers a draft (编号): the next number of its unit's prefix this year, e.g.
    /// 嘉政发〔2026〕12号. Concurrent numberings never share a number; one that fails uses none.
    pub async fn assign_number(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<String> {
        let doc = self.document(caller, actor, id).await?;
        if !self.may_issue(caller, doc.unit_id).await? {
            return Err(self.out_of_scope(caller, actor, "document.number", id).await);
        }
        if !matches!(doc.status.as_str(), "draft" | "signed_off") {
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        let prefix: String = sqlx::query("SELECT prefix FROM document_prefixes WHERE unit_id = $1")
            .bind(doc.unit_id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or(DomainError::Conflict("document.error.no_prefix"))?;
        let year = local_date(now_millis()).map(|d| d.year()).unwrap_or(1970);
        let mut tx = self.db.begin_write().await?;
        let seq: i64 = sqlx::query(
            "INSERT INTO document_numbers (unit_id, prefix, year, last) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (unit_id, prefix, year) DO UPDATE SET last = document_numbers.last + 1 RETURNING last",
        )
        .bind(doc.unit_id)
        .bind(&prefix)
        .bind(i64::from(year))
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let number = format_number(&prefix, year, seq);
        let done = sqlx::query(
            "UPDATE documents SET status = 'numbered', doc_number = $2, number_year = $3, number_seq = $4, updated_at = $5 \
             WHERE id = $1 AND status IN ('draft', 'signed_off')",
        )
        .bind(id)
        .bind(&number)
        .bind(i64::from(year))
        .bind(seq)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
        if done.rows_affected() == 0 {
            // Someone numbered it meanwhile: roll back, so this number is not used up.
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        self.audit.append(&mut tx, actor, Entry::success("document.number", "document", id, json!({"doc_number": number}))).await?;
        tx.commit().await?;
        Ok(number)
    }
}
