//! Public intake (网上申报): a citizen or enterprise fills in an item's form, uploads materials,
//! saves a draft, submits and gets a receipt (application number and query code), follows the
//! status, withdraws before acceptance. Everything leaves for internal processing as a
//! [`ZoneMessage`]; status comes back the same way ([`IntakeService::receive`]).

use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_identity::PublicPrincipal;
use tongban_platform::{
    Db, DomainError, WriteTx,
    blobs::BlobStore,
    clock::{local_date, now_millis},
    error::DomainResult,
};

use crate::{
    catalogue::{Audience, ServiceItem},
    form::validate,
    service::CatalogueService,
    upload,
    zone::{self, Applicant, MaterialRef, ZoneMessage},
};

/// Where an application stands, as the applicant sees it.
pub mod status {
    /// Being filled in (草稿).
    pub const DRAFT: &str = "draft";
    /// Submitted, waiting for acceptance (待受理).
    pub const SUBMITTED: &str = "submitted";
    /// Materials to supplement (待补正).
    pub const SUPPLEMENT: &str = "supplement";
    /// Accepted and being processed (办理中).
    pub const PROCESSING: &str = "processing";
    /// Not accepted (不予受理).
    pub const REFUSED: &str = "refused";
    /// Completed, granted (办结·准予).
    pub const APPROVED: &str = "approved";
    /// Completed, denied (办结·不予).
    pub const DENIED: &str = "denied";
    /// Withdrawn by the applicant (已撤回).
    pub const WITHDRAWN: &str = "withdrawn";
}

/// An uploaded material.
#[derive(Debug, Clone, Serialize)]
pub struct MaterialRow {
    /// Row id.
    pub id: i64,
    /// Position in the item's list.
    pub index: u32,
    /// File name.
    pub file_name: String,
    /// Size in bytes.
    pub size: i64,
    /// Uploaded (ms).
    pub uploaded_at: i64,
}

/// One step of the status history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusEvent {
    /// When (ms).
    pub at: i64,
    /// Status.
    pub status: String,
    /// Note.
    pub note: String,
}

/// An application as its applicant sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationView {
    /// Id.
    pub id: i64,
    /// Application number, once submitted.
    pub number: Option<String>,
    /// Query code, once submitted.
    pub query_code: Option<String>,
    /// The item.
    pub item: ServiceItem,
    /// Form values.
    pub form: Map<String, Value>,
    /// Status.
    pub status: String,
    /// Latest note from the processing side.
    pub status_note: String,
    /// Deadline while processing.
    pub due_on: Option<String>,
    /// Uploaded materials.
    pub materials: Vec<MaterialRow>,
    /// History.
    pub events: Vec<StatusEvent>,
    /// Created (ms).
    pub created_at: i64,
    /// Submitted (ms).
    pub submitted_at: Option<i64>,
    /// The result document, once delivered.
    pub result: Option<ResultInfo>,
}

/// The result document as the applicant's page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ResultInfo {
    /// Decision number when granted.
    pub result_no: Option<String>,
    /// File name.
    pub file_name: String,
    /// Size in bytes.
    pub size: i64,
    /// When the applicant first opened it.
    pub opened_at: Option<i64>,
}

/// The receipt (受理回执 / 申报回执) of a submission.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// Application number.
    pub number: String,
    /// Query code for looking it up without logging in.
    pub query_code: String,
    /// Submitted (ms).
    pub submitted_at: i64,
}

/// A line of "my applications".
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationSummary {
    /// Id.
    pub id: i64,
    /// Number.
    pub number: Option<String>,
    /// Item name.
    pub item_name: String,
    /// Status.
    pub status: String,
    /// Deadline.
    pub due_on: Option<String>,
    /// Last change (ms).
    pub updated_at: i64,
}

/// What the status query without log-in shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicStatus {
    /// Number.
    pub number: String,
    /// Item name.
    pub item_name: String,
    /// Status.
    pub status: String,
    /// Note.
    pub note: String,
    /// Deadline.
    pub due_on: Option<String>,
    /// History.
    pub events: Vec<StatusEvent>,
}

/// The intake service.
#[derive(Clone)]
pub struct IntakeService {
    db: Db,
    audit: AuditTrail,
    blobs: BlobStore,
    catalogue: CatalogueService,
    upload_limit: usize,
}

const CODE_CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const NOT_FOUND: DomainError = DomainError::NotFound("error.not_found");

fn query_code() -> String {
    let mut rng = rand::thread_rng();
    (0..8).map(|_| CODE_CHARS[rng.gen_range(0..CODE_CHARS.len())] as char).collect()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Row0 {
    item_id: i64,
    account_id: i64,
    status: String,
    form: Map<String, Value>,
    number: Option<String>,
}

impl IntakeService {
    /// A service storing uploads in `blobs`, refusing files over `upload_limit` bytes.
    pub fn new(db: Db, audit: AuditTrail, blobs: BlobStore, catalogue: CatalogueService, upload_limit: usize) -> Self {
        IntakeService { db, audit, blobs, catalogue, upload_limit }
    }

    /// The applicant's own application. Another applicant's is answered as missing (404), and
    /// the attempt is recorded as a refusal of `action`.
    async fn own(&self, who: &PublicPrincipal, actor: &Actor, id: i64, action: &str) -> DomainResult<Row0> {
        let r = sqlx::query("SELECT item_id, account_id, status, form, number FROM intake_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(NOT_FOUND)?;
        let row = Row0 {
            item_id: r.get(0),
            account_id: r.get(1),
            status: r.get(2),
            form: serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default(),
            number: r.get(4),
        };
        if row.account_id != who.account_id {
            self.audit.record_denied(&self.db, actor, action, "intake_application", id, "not_applicant").await;
            return Err(NOT_FOUND);
        }
        Ok(row)
    }

    async fn event(&self, tx: &mut WriteTx, id: i64, status: &str, note: &str) -> DomainResult<()> {
        Ok(insert_event(tx, id, now_millis(), status, note).await?)
    }

    /// Starts a draft application for an item (在线申请).
    pub async fn start(&self, who: &PublicPrincipal, actor: &Actor, item_id: i64) -> DomainResult<i64> {
        let item = self.catalogue.item(item_id, false).await?;
        let fits = match item.spec.audience {
            Audience::Both => true,
            Audience::Person => who.kind == tongban_identity::PublicKind::Person,
            Audience::Enterprise => who.kind == tongban_identity::PublicKind::Enterprise,
        };
        if !fits {
            return Err(DomainError::invalid("item_id", "approval.error.audience"));
        }
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO intake_applications (item_id, account_id, form, status, created_at, updated_at) VALUES ($1,$2,'{}',$3,$4,$4) RETURNING id",
        )
        .bind(item_id)
        .bind(who.account_id)
        .bind(status::DRAFT)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        self.event(&mut tx, id, status::DRAFT, "").await?;
        self.audit
            .append(&mut tx, actor, Entry::success("approval.application.start", "intake_application", id, json!({"item_id": item_id})))
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The applicant's view of one of their applications.
    pub async fn application(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<ApplicationView> {
        self.own(who, actor, id, "approval.application.read").await?;
        self.view(id).await
    }

    async fn view(&self, id: i64) -> DomainResult<ApplicationView> {
        let r = sqlx::query(
            "SELECT item_id, number, query_code, form, status, status_note, due_on, created_at, submitted_at, \
             result_no, result_name, result_size, result_opened_at FROM intake_applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(NOT_FOUND)?;
        let item = self.catalogue.item(r.get(0), true).await?;
        let materials = sqlx::query("SELECT id, material_index, file_name, size, uploaded_at FROM intake_materials WHERE application_id = $1 ORDER BY material_index, id")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|m| MaterialRow { id: m.get(0), index: u32::try_from(m.get::<i64, _>(1)).unwrap_or(0), file_name: m.get(2), size: m.get(3), uploaded_at: m.get(4) })
            .collect();
        Ok(ApplicationView {
            id,
            number: r.get(1),
            query_code: r.get(2),
            item,
            form: serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default(),
            status: r.get(4),
            status_note: r.get(5),
            due_on: r.get(6),
            materials,
            events: self.events(id).await?,
            created_at: r.get(7),
            submitted_at: r.get(8),
            result: r.get::<Option<String>, _>(10).map(|file_name| ResultInfo {
                result_no: r.get(9),
                file_name,
                size: r.get::<Option<i64>, _>(11).unwrap_or(0),
                opened_at: r.get(12),
            }),
        })
    }

    async fn events(&self, id: i64) -> DomainResult<Vec<StatusEvent>> {
        Ok(sqlx::query("SELECT at, status, note FROM intake_events WHERE application_id = $1 ORDER BY at, id")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|e| StatusEvent { at: e.get(0), status: e.get(1), note: e.get(2) })
            .collect())
    }

    /// Saves the form of a draft (保存草稿). Values are kept as entered; they are checked on submit.
    pub async fn save_form(&self, who: &PublicPrincipal, actor: &Actor, id: i64, values: Map<String, Value>) -> DomainResult<()> {
        let row = self.own(who, actor, id, "approval.application.save").await?;
        if row.status != status::DRAFT {
            return Err(DomainError::Conflict("approval.error.not_draft"));
        }
        let item = self.catalogue.item(row.item_id, true).await?;
        if let Some(unknown) = values.keys().find(|k| !item.spec.form.iter().any(|f| &f.name == *k)) {
            return Err(DomainError::invalid(unknown, "approval.error.unknown_field"));
        }
        if values.values().any(|v| v.as_str().is_some_and(|s| s.chars().count() > 4000)) {
            return Err(DomainError::invalid("form", "approval.error.too_long"));
        }
        let text = serde_json::to_string(&values).map_err(|e| DomainError::Internal(e.to_string()))?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE intake_applications SET form = $1, updated_at = $2 WHERE id = $3")
            .bind(text)
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uploads one material (上传材料) to a draft, or to an application waiting for supplements.
    pub async fn upload(
        &self,
        who: &PublicPrincipal,
        actor: &Actor,
        id: i64,
        index: u32,
        file_name: &str,
        bytes: &[u8],
    ) -> DomainResult<i64> {
        let row = self.own(who, actor, id, "approval.application.upload").await?;
        if row.status != status::DRAFT && row.status != status::SUPPLEMENT {
            return Err(DomainError::Conflict("approval.error.not_draft"));
        }
        let item = self.catalogue.item(row.item_id, true).await?;
        if index as usize >= item.spec.materials.len() {
            return Err(DomainError::invalid("material_index", "approval.error.invalid"));
        }
        let checked = upload::check(file_name, bytes, self.upload_limit).map_err(|e| DomainError::invalid("material", e.message_key()))?;
        let key = self.blobs.put(bytes).await.map_err(|e| DomainError::Internal(format!("storing upload: {e}")))?;
        let mut tx = self.db.begin_write().await?;
        let mid: i64 = sqlx::query(
            "INSERT INTO intake_materials (application_id, material_index, file_name, content_type, size, sm3, uploaded_at, sent) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,0) RETURNING id",
        )
        .bind(id)
        .bind(i64::from(index))
        .bind(&checked.file_name)
        .bind(checked.content_type)
        .bind(bytes.len() as i64)
        .bind(&key)
        .bind(now_millis())
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details =
            json!({"application_id": id, "material": item.spec.materials[index as usize].name, "file": checked.file_name, "sm3": key});
        self.audit.append(&mut tx, actor, Entry::success("approval.application.upload", "intake_material", mid, details)).await?;
        tx.commit().await?;
        Ok(mid)
    }

    /// Removes an uploaded material that has not been sent yet.
    pub async fn remove_material(&self, who: &PublicPrincipal, actor: &Actor, id: i64, material_id: i64) -> DomainResult<()> {
        self.own(who, actor, id, "approval.application.remove_material").await?;
        let mut tx = self.db.begin_write().await?;
        let n = sqlx::query("DELETE FROM intake_materials WHERE id = $1 AND application_id = $2 AND sent = 0")
            .bind(material_id)
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(NOT_FOUND);
        }
        self.audit
            .append(&mut tx, actor, Entry::success("approval.application.remove_material", "intake_material", material_id, json!({})))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unsent_materials(&self, tx: &mut WriteTx, id: i64, item: &ServiceItem) -> DomainResult<Vec<MaterialRef>> {
        let rows = sqlx::query("SELECT material_index, file_name, content_type, size, sm3 FROM intake_materials WHERE application_id = $1 AND sent = 0 ORDER BY material_index, id")
            .bind(id)
            .fetch_all(tx.conn())
            .await?;
        Ok(rows
            .iter()
            .map(|m| {
                let index = u32::try_from(m.get::<i64, _>(0)).unwrap_or(0);
                MaterialRef {
                    index,
                    name: item.spec.materials.get(index as usize).map(|x| x.name.clone()).unwrap_or_default(),
                    file_name: m.get(1),
                    content_type: m.get(2),
                    size: u64::try_from(m.get::<i64, _>(3)).unwrap_or(0),
                    sm3: m.get(4),
                }
            })
            .collect())
    }

    /// Submits a draft (提交申请): the form is checked field by field, every required material must
    /// be there; answers the receipt. The application leaves for processing as a zone message.
    pub async fn submit(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<Receipt> {
        let row = self.own(who, actor, id, "approval.application.submit").await?;
        if row.status != status::DRAFT {
            return Err(DomainError::Conflict("approval.error.not_draft"));
        }
        let item = self.catalogue.item(row.item_id, false).await?;
        let today = local_date(now_millis()).unwrap_or(time::Date::MIN);
        let form = validate(&item.spec.form, &row.form, today).map_err(|problems| match problems.first() {
            Some(p) => DomainError::invalid(&format!("form.{}", p.field), p.key),
            None => DomainError::invalid("form", "approval.error.invalid"),
        })?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let materials = self.unsent_materials(&mut tx, id, &item).await?;
        if let Some((i, _)) =
            item.spec.materials.iter().enumerate().find(|(i, m)| m.required && !materials.iter().any(|x| x.index as usize == *i))
        {
            return Err(DomainError::invalid(&format!("materials[{i}]"), "approval.error.material_missing"));
        }
        let day = local_date(now).map(|d| format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())).unwrap_or_default();
        let seq: i64 = sqlx::query(
            "INSERT INTO application_numbers (day, last) VALUES ($1, 1) ON CONFLICT (day) DO UPDATE SET last = application_numbers.last + 1 RETURNING last",
        )
        .bind(&day)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let number = format!("JH{day}{seq:05}");
        let code = query_code();
        let text = serde_json::to_string(&form).map_err(|e| DomainError::Internal(e.to_string()))?;
        sqlx::query("UPDATE intake_applications SET number = $1, query_code = $2, form = $3, status = $4, submitted_at = $5, updated_at = $5 WHERE id = $6")
            .bind(&number)
            .bind(&code)
            .bind(text)
            .bind(status::SUBMITTED)
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE intake_materials SET sent = 1 WHERE application_id = $1").bind(id).execute(tx.conn()).await?;
        self.event(&mut tx, id, status::SUBMITTED, "").await?;
        let a = sqlx::query("SELECT kind, name, cert_no, phone, email FROM public_accounts WHERE id = $1")
            .bind(who.account_id)
            .fetch_one(tx.conn())
            .await?;
        let applicant =
            Applicant { account_id: who.account_id, kind: a.get(0), name: a.get(1), cert_no: a.get(2), phone: a.get(3), email: a.get(4) };
        zone::send(&mut tx, &ZoneMessage::Submission { number: number.clone(), item_id: item.id, applicant, form, materials, at: now })
            .await?;
        let details = json!({"number": number, "item": item.spec.name});
        self.audit.append(&mut tx, actor, Entry::success("approval.application.submit", "intake_application", id, details)).await?;
        tx.commit().await?;
        Ok(Receipt { number, query_code: code, submitted_at: now })
    }

    /// Withdraws a submitted application before it is accepted (撤回申请).
    pub async fn withdraw(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<()> {
        let row = self.own(who, actor, id, "approval.application.withdraw").await?;
        let Some(number) = row.number.filter(|_| row.status == status::SUBMITTED) else {
            return Err(DomainError::Conflict("approval.error.cannot_withdraw"));
        };
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let n = sqlx::query("UPDATE intake_applications SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
            .bind(status::WITHDRAWN)
            .bind(now)
            .bind(id)
            .bind(status::SUBMITTED)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n != 1 {
            return Err(DomainError::Conflict("approval.error.cannot_withdraw"));
        }
        self.event(&mut tx, id, status::WITHDRAWN, "").await?;
        zone::send(&mut tx, &ZoneMessage::Withdrawal { number: number.clone(), at: now }).await?;
        self.audit
            .append(&mut tx, actor, Entry::success("approval.application.withdraw", "intake_application", id, json!({"number": number})))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends the materials uploaded in answer to a supplement request (提交补正材料); the
    /// application waits for acceptance again.
    pub async fn answer_supplement(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<()> {
        let row = self.own(who, actor, id, "approval.application.supplement").await?;
        let Some(number) = row.number.filter(|_| row.status == status::SUPPLEMENT) else {
            return Err(DomainError::Conflict("approval.error.no_supplement"));
        };
        let item = self.catalogue.item(row.item_id, true).await?;
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let materials = self.unsent_materials(&mut tx, id, &item).await?;
        if materials.is_empty() {
            return Err(DomainError::invalid("materials", "approval.error.material_missing"));
        }
        sqlx::query("UPDATE intake_materials SET sent = 1 WHERE application_id = $1").bind(id).execute(tx.conn()).await?;
        sqlx::query("UPDATE intake_applications SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status::SUBMITTED)
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        self.event(&mut tx, id, status::SUBMITTED, "已补正").await?;
        zone::send(&mut tx, &ZoneMessage::SupplementAnswered { number: number.clone(), materials, at: now }).await?;
        self.audit
            .append(&mut tx, actor, Entry::success("approval.application.supplement", "intake_application", id, json!({"number": number})))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rates a completed application (好差评), once: 1 very satisfied … 5 very dissatisfied.
    pub async fn rate(&self, who: &PublicPrincipal, actor: &Actor, id: i64, level: u8, comment: &str) -> DomainResult<()> {
        let row = self.own(who, actor, id, "approval.application.rate").await?;
        let finished = [status::APPROVED, status::DENIED, status::REFUSED].contains(&row.status.as_str());
        let Some(number) = row.number.filter(|_| finished) else { return Err(DomainError::Conflict("approval.error.not_finished")) };
        if !(1..=5).contains(&level) {
            return Err(DomainError::invalid("level", "approval.error.option"));
        }
        let comment = comment.trim();
        tongban_platform::text::check_multiline("comment", comment)?;
        if comment.chars().count() > 500 {
            return Err(DomainError::invalid("comment", "approval.error.too_long"));
        }
        if level >= 4 && comment.is_empty() {
            return Err(DomainError::invalid("comment", "approval.error.comment_needed"));
        }
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let n = sqlx::query(
            "UPDATE intake_applications SET rating = $1, rating_comment = $2, updated_at = $3 WHERE id = $4 AND rating IS NULL",
        )
        .bind(i64::from(level))
        .bind(comment)
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n != 1 {
            return Err(DomainError::Conflict("approval.error.rated"));
        }
        zone::send(&mut tx, &ZoneMessage::Rating { number: number.clone(), level, comment: comment.into(), at: now }).await?;
        self.audit
            .append(
                &mut tx,
                actor,
                Entry::success("approval.application.rate", "intake_application", id, json!({"number": number, "level": level})),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The rating given, if any.
    pub async fn rating(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<Option<(i64, String)>> {
        self.own(who, actor, id, "approval.application.read").await?;
        let r =
            sqlx::query("SELECT rating, rating_comment FROM intake_applications WHERE id = $1").bind(id).fetch_one(self.db.pool()).await?;
        Ok(r.get::<Option<i64>, _>(0).map(|l| (l, r.get::<Option<String>, _>(1).unwrap_or_default())))
    }

    /// Whether no application has been started yet (for loading demo data once).
    pub async fn is_empty(&self) -> DomainResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM intake_applications LIMIT 1").fetch_optional(self.db.pool()).await?.is_none())
    }

    /// "My applications" (我的办件), newest first.
    pub async fn mine(&self, who: &PublicPrincipal) -> DomainResult<Vec<ApplicationSummary>> {
        let rows = sqlx::query(
            "SELECT a.id, a.number, i.name, a.status, a.due_on, a.updated_at FROM intake_applications a JOIN approval_items i ON i.id = a.item_id \
             WHERE a.account_id = $1 ORDER BY a.updated_at DESC, a.id DESC",
        )
        .bind(who.account_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| ApplicationSummary {
                id: r.get(0),
                number: r.get(1),
                item_name: r.get(2),
                status: r.get(3),
                due_on: r.get(4),
                updated_at: r.get(5),
            })
            .collect())
    }

    /// Status by number and query code, without logging in (办件查询). Unknown number and wrong
    /// code answer the same.
    pub async fn status_by_code(&self, number: &str, code: &str) -> DomainResult<PublicStatus> {
        let r = sqlx::query(
            "SELECT a.id, a.query_code, i.name, a.status, a.status_note, a.due_on FROM intake_applications a JOIN approval_items i ON i.id = a.item_id WHERE a.number = $1",
        )
        .bind(number.trim().to_ascii_uppercase())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(DomainError::NotFound("approval.error.no_such_application"))?;
        let stored: String = r.get::<Option<String>, _>(1).unwrap_or_default();
        if !constant_time_eq(&stored, &code.trim().to_ascii_uppercase()) {
            return Err(DomainError::NotFound("approval.error.no_such_application"));
        }
        let id: i64 = r.get(0);
        Ok(PublicStatus {
            number: number.trim().to_ascii_uppercase(),
            item_name: r.get(2),
            status: r.get(3),
            note: r.get(4),
            due_on: r.get(5),
            events: self.events(id).await?,
        })
    }

    /// Applies a message from internal processing, in the delivering transaction.
    pub async fn receive(&self, tx: &mut WriteTx, msg: &ZoneMessage) -> Result<(), String> {
        let db = |e: sqlx::Error| e.to_string();
        match msg {
            ZoneMessage::StatusChanged { number, status, note, due_on, at } => {
                self.status_changed(tx, number, status, note, due_on.as_deref(), *at).await.map_err(db)
            }
            ZoneMessage::ResultIssued { number, result_no, document, at, .. } => {
                self.result_issued(tx, number, result_no.as_deref(), document, *at).await.map_err(db)
            }
            _ => Ok(()),
        }
    }

    async fn status_changed(
        &self,
        tx: &mut WriteTx,
        number: &str,
        status: &str,
        note: &str,
        due_on: Option<&str>,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let row = sqlx::query(
            "SELECT a.id, p.id, p.phone, p.email, i.name FROM intake_applications a JOIN public_accounts p ON p.id = a.account_id \
             JOIN approval_items i ON i.id = a.item_id WHERE a.number = $1",
        )
        .bind(number)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else { return Err(sqlx::Error::RowNotFound) };
        let id: i64 = row.get(0);
        let (account, phone, email, item): (i64, String, String, String) = (row.get(1), row.get(2), row.get(3), row.get(4));
        sqlx::query("UPDATE intake_applications SET status = $1, status_note = $2, due_on = $3, updated_at = $4 WHERE id = $5")
            .bind(status)
            .bind(note)
            .bind(due_on)
            .bind(at)
            .bind(id)
            .execute(tx.conn())
            .await?;
        insert_event(tx, id, at, status, note).await?;
        // Tell the applicant: in-app, by SMS and (when given) by e-mail.
        let (label, text) = applicant_message(&item, number, status, note);
        let link = format!("/public/applications/{id}");
        tongban_notify::in_app(tx, tongban_notify::Recipient::Public(account), label, &text, &link).await?;
        tongban_notify::send_later(tx, tongban_notify::Channel::Sms, &phone, label, &text).await?;
        tongban_notify::send_later(tx, tongban_notify::Channel::Email, &email, &format!("{item}：{label}"), &text).await?;
        Ok(())
    }

    /// Files the result document with the application (电子送达): the applicant downloads it
    /// from their application page.
    async fn result_issued(
        &self,
        tx: &mut WriteTx,
        number: &str,
        result_no: Option<&str>,
        document: &MaterialRef,
        at: i64,
    ) -> Result<(), sqlx::Error> {
        let row =
            sqlx::query("SELECT id, status FROM intake_applications WHERE number = $1").bind(number).fetch_optional(tx.conn()).await?;
        let Some(row) = row else { return Err(sqlx::Error::RowNotFound) };
        let (id, status): (i64, String) = (row.get(0), row.get(1));
        sqlx::query(
            "UPDATE intake_applications SET result_no = $1, result_name = $2, result_sm3 = $3, result_size = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(result_no)
        .bind(&document.file_name)
        .bind(&document.sm3)
        .bind(i64::try_from(document.size).unwrap_or(i64::MAX))
        .bind(at)
        .bind(id)
        .execute(tx.conn())
        .await?;
        let note = format!("{}已送达，可在办件页面查看、下载和打印", document.name);
        insert_event(tx, id, at, &status, &note).await?;
        Ok(())
    }

    /// The result document of one of the applicant's applications, for download. The first
    /// download is the proof of delivery (送达): it is recorded, audited and reported to the
    /// processing side.
    pub async fn result_document(&self, who: &PublicPrincipal, actor: &Actor, id: i64) -> DomainResult<ResultDocument> {
        let row = self.own(who, actor, id, "approval.application.result").await?;
        let r = sqlx::query("SELECT result_name, result_sm3, result_opened_at FROM intake_applications WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await?;
        let (Some(file_name), Some(sm3)) = (r.get::<Option<String>, _>(0), r.get::<Option<String>, _>(1)) else { return Err(NOT_FOUND) };
        if r.get::<Option<i64>, _>(2).is_none() {
            let now = now_millis();
            let mut tx = self.db.begin_write().await?;
            let first = sqlx::query("UPDATE intake_applications SET result_opened_at = $1 WHERE id = $2 AND result_opened_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(tx.conn())
                .await?
                .rows_affected()
                == 1;
            if first {
                let number = row.number.clone().unwrap_or_default();
                zone::send(&mut tx, &ZoneMessage::ResultReceived { number: number.clone(), at: now }).await?;
                let details = json!({"number": number, "document": file_name, "sm3": sm3});
                self.audit
                    .append(&mut tx, actor, Entry::success("approval.application.result_received", "intake_application", id, details))
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(ResultDocument { file_name, sm3 })
    }
}

/// Adds a line to an application's status history.
async fn insert_event(tx: &mut WriteTx, id: i64, at: i64, status: &str, note: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO intake_events (application_id, at, status, note) VALUES ($1,$2,$3,$4)")
        .bind(id)
        .bind(at)
        .bind(status)
        .bind(note)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A result document to download.
#[derive(Debug, Clone, Serialize)]
pub struct ResultDocument {
    /// File name.
    pub file_name: String,
    /// SM3 digest (blob key).
    pub sm3: String,
}

/// What the applicant is told about a status change: a short label and the message text.
pub(crate) fn applicant_message(item: &str, number: &str, status: &str, note: &str) -> (&'static str, String) {
    let label = status_label(status);
    let text = if note.is_empty() {
        format!("您申请的{item}（{number}）{label}。")
    } else {
        format!("您申请的{item}（{number}）{label}：{note}")
    };
    (label, text)
}

/// The applicant-facing words for a status, for notifications.
fn status_label(s: &str) -> &'static str {
    match s {
        status::SUPPLEMENT => "需要补正材料",
        status::PROCESSING => "已受理，正在办理",
        status::REFUSED => "不予受理",
        status::APPROVED => "已办结，准予许可",
        status::DENIED => "已办结，不予许可",
        _ => "状态已更新",
    }
}

/// Delivers status messages from internal processing to the public side.
pub struct PublicReceiver(pub IntakeService);

#[async_trait::async_trait]
impl tongban_platform::outbox::OutboxHandler for PublicReceiver {
    fn name(&self) -> &'static str {
        "approval.intake"
    }

    fn accepts(&self, topic: &str) -> bool {
        topic == zone::TO_PUBLIC
    }

    async fn handle(&self, tx: &mut WriteTx, event: &tongban_platform::outbox::OutboxEvent) -> Result<(), String> {
        let msg: ZoneMessage = serde_json::from_value(event.payload.clone()).map_err(|e| format!("bad zone message: {e}"))?;
        self.0.receive(tx, &msg).await
    }
}
