//! Internal processing (内网办理): cases arrive from public intake as zone messages; the window
//! clerk accepts (受理: the time limit starts and the item's process runs), refuses (不予受理) or
//! asks for every missing item at once (一次性告知补正); when the process ends, the decision comes
//! back as the case result (办结) and the applicant is told through the zone channel.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_calendar::{CalendarService, DeadlineClock};
use tongban_platform::{
    Db, DomainError, WriteTx,
    blobs::BlobStore,
    clock::{local_date, now_millis},
    error::DomainResult,
};
use tongban_workflow::WorkflowService;

mod delivery;
mod window;

pub use window::{WindowApplicant, WindowApplication, WindowMaterial, WindowReceipt};

use crate::{
    intake::status,
    service::CatalogueService,
    zone::{self, Applicant, MaterialRef, ZoneMessage},
};

/// A case in a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseSummary {
    /// Id.
    pub id: i64,
    /// Application number.
    pub number: String,
    /// Item name.
    pub item_name: String,
    /// Applicant's name.
    pub applicant: String,
    /// Status.
    pub status: String,
    /// Received (ms).
    pub received_at: i64,
    /// Deadline.
    pub due_on: Option<String>,
}

/// A received material.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseMaterial {
    /// Row id.
    pub id: i64,
    /// Position in the list.
    pub index: i64,
    /// Material name.
    pub name: String,
    /// File name.
    pub file_name: String,
    /// Content type.
    pub content_type: String,
    /// Size.
    pub size: i64,
    /// SM3 (blob key).
    pub sm3: String,
}

/// One line of a case's history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseEvent {
    /// When (ms).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Note.
    pub note: String,
}

/// A case in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    /// Summary.
    pub summary: CaseSummary,
    /// Item id.
    pub item_id: i64,
    /// Applicant as registered.
    pub applicant: Applicant,
    /// The form.
    #[schema(value_type = Object)]
    pub form: Map<String, Value>,
    /// Materials.
    pub materials: Vec<CaseMaterial>,
    /// History.
    pub events: Vec<CaseEvent>,
    /// Workflow instance, once accepted.
    pub instance_id: Option<i64>,
    /// Result number (准予许可决定书文号) when approved.
    pub result_no: Option<String>,
    /// Note (refusal reason, supplement list, decision).
    pub note: String,
    /// Where it came from: `online` (public intake) or `window` (registered at a service-hall window).
    pub channel: String,
    /// The result document's file name, once decided.
    pub result_name: Option<String>,
    /// The result document's SM3 digest (its blob key).
    pub result_sm3: Option<String>,
    /// When the applicant first opened the result document (送达).
    pub delivered_at: Option<i64>,
}

/// The case service.
#[derive(Clone)]
pub struct CaseService {
    db: Db,
    audit: AuditTrail,
    calendar: CalendarService,
    workflow: WorkflowService,
    catalogue: CatalogueService,
    blobs: BlobStore,
    upload_limit: usize,
    now: fn() -> i64,
}

const NOT_FOUND: DomainError = DomainError::NotFound("error.not_found");

/// The channel of cases registered at a window (窗口收件) rather than submitted online.
pub const CHANNEL_WINDOW: &str = "window";

fn date_text(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl CaseService {
    /// A service over `db`, keeping result documents and window uploads in `blobs`.
    pub fn new(
        db: Db,
        audit: AuditTrail,
        calendar: CalendarService,
        workflow: WorkflowService,
        catalogue: CatalogueService,
        blobs: BlobStore,
    ) -> Self {
        CaseService { db, audit, calendar, workflow, catalogue, blobs, upload_limit: 20 * 1024 * 1024, now: now_millis }
    }

    /// The same service refusing window uploads over `limit` bytes.
    pub fn with_upload_limit(mut self, limit: usize) -> Self {
        self.upload_limit = limit;
        self
    }

    /// The same service reading the time from `now` (UTC ms): for replaying a day in tests and
    /// drills; the acceptance date decides the deadline.
    pub fn with_clock(mut self, now: fn() -> i64) -> Self {
        self.now = now;
        self
    }

    async fn require_window(&self, caller: &Principal, actor: &Actor, action: &str, id: i64) -> DomainResult<()> {
        if caller.has(Permission::ApprovalAccept) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "approval_case", id, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    async fn event(&self, tx: &mut WriteTx, case_id: i64, actor: &str, action: &str, note: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO case_events (case_id, at, actor, action, note) VALUES ($1,$2,$3,$4,$5)")
            .bind(case_id)
            .bind(now_millis())
            .bind(actor)
            .bind(action)
            .bind(note)
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    async fn add_materials(&self, tx: &mut WriteTx, case_id: i64, materials: &[MaterialRef], at: i64) -> Result<(), sqlx::Error> {
        for m in materials {
            sqlx::query(
                "INSERT INTO case_materials (case_id, material_index, name, file_name, content_type, size, sm3, received_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            )
            .bind(case_id)
            .bind(i64::from(m.index))
            .bind(&m.name)
            .bind(&m.file_name)
            .bind(&m.content_type)
            .bind(i64::try_from(m.size).unwrap_or(i64::MAX))
            .bind(&m.sm3)
            .bind(at)
            .execute(tx.conn())
            .await?;
        }
        Ok(())
    }

    /// Applies a message from public intake, in the delivering transaction. Repeated deliveries
    /// of a submission are ignored.
    pub async fn receive(&self, tx: &mut WriteTx, msg: &ZoneMessage) -> Result<(), String> {
        let db = |e: sqlx::Error| e.to_string();
        match msg {
            ZoneMessage::Submission { number, item_id, applicant, form, materials, at } => {
                if sqlx::query("SELECT 1 FROM approval_cases WHERE number = $1")
                    .bind(number)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(db)?
                    .is_some()
                {
                    return Ok(());
                }
                let applicant_json = serde_json::to_string(applicant).map_err(|e| e.to_string())?;
                let form_json = serde_json::to_string(form).map_err(|e| e.to_string())?;
                let id: i64 = sqlx::query(
                    "INSERT INTO approval_cases (number, item_id, applicant, form, status, received_at, updated_at) VALUES ($1,$2,$3,$4,'pending',$5,$5) RETURNING id",
                )
                .bind(number)
                .bind(item_id)
                .bind(applicant_json)
                .bind(form_json)
                .bind(at)
                .fetch_one(tx.conn())
                .await
                .map_err(db)?
                .get(0);
                self.add_materials(tx, id, materials, *at).await.map_err(db)?;
                self.event(tx, id, &applicant.name, "received", "").await.map_err(db)?;
                tongban_platform::outbox::publish(tx, "approval.case.received", &json!({"case_id": id, "number": number}))
                    .await
                    .map_err(db)?;
                Ok(())
            }
            ZoneMessage::Withdrawal { number, .. } => {
                let row = sqlx::query("SELECT id FROM approval_cases WHERE number = $1 AND status IN ('pending', 'supplement')")
                    .bind(number)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(db)?;
                if let Some(r) = row {
                    let id: i64 = r.get(0);
                    sqlx::query("UPDATE approval_cases SET status = 'withdrawn', updated_at = $1 WHERE id = $2")
                        .bind(now_millis())
                        .bind(id)
                        .execute(tx.conn())
                        .await
                        .map_err(db)?;
                    self.event(tx, id, "applicant", "withdrawn", "").await.map_err(db)?;
                }
                Ok(())
            }
            ZoneMessage::SupplementAnswered { number, materials, at } => {
                let row = sqlx::query("SELECT id, clock, accepted_at FROM approval_cases WHERE number = $1 AND status = 'supplement'")
                    .bind(number)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(db)?;
                let Some(r) = row else { return Ok(()) };
                let id: i64 = r.get(0);
                self.add_materials(tx, id, materials, *at).await.map_err(db)?;
                self.event(tx, id, "applicant", "supplemented", "").await.map_err(db)?;
                if r.get::<Option<i64>, _>(2).is_none() {
                    sqlx::query("UPDATE approval_cases SET status = 'pending', updated_at = $1 WHERE id = $2")
                        .bind(at)
                        .bind(id)
                        .execute(tx.conn())
                        .await
                        .map_err(db)?;
                    return Ok(());
                }
                // Accepted earlier: the clock resumes and the deadline moves by the paused days.
                let mut clock: DeadlineClock =
                    r.get::<Option<String>, _>(1).as_deref().and_then(|c| serde_json::from_str(c).ok()).ok_or("case clock")?;
                let today = local_date(*at).ok_or("clock")?;
                clock.resume(today).map_err(|e| e.to_string())?;
                let calendar = self.calendar.calendar().await.map_err(|e| e.to_string())?;
                let due = clock.due_date(&calendar).map(date_text);
                let clock_json = serde_json::to_string(&clock).map_err(|e| e.to_string())?;
                sqlx::query("UPDATE approval_cases SET status = 'processing', clock = $1, due_on = $2, updated_at = $3 WHERE id = $4")
                    .bind(clock_json)
                    .bind(&due)
                    .bind(at)
                    .bind(id)
                    .execute(tx.conn())
                    .await
                    .map_err(db)?;
                let note = "补正材料已收到，继续办理".to_string();
                self.tell(
                    tx,
                    id,
                    ZoneMessage::StatusChanged { number: number.clone(), status: status::PROCESSING.into(), note, due_on: due, at: *at },
                )
                .await
                .map_err(db)?;
                Ok(())
            }
            ZoneMessage::Rating { number, level, comment, at } => {
                let row = sqlx::query("SELECT id FROM approval_cases WHERE number = $1")
                    .bind(number)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(db)?;
                let Some(r) = row else { return Ok(()) };
                let id: i64 = r.get(0);
                sqlx::query("UPDATE approval_cases SET rating = $1, rating_comment = $2 WHERE id = $3")
                    .bind(i64::from(*level))
                    .bind(comment)
                    .bind(id)
                    .execute(tx.conn())
                    .await
                    .map_err(db)?;
                self.event(tx, id, "applicant", "rated", &format!("{level} {comment}")).await.map_err(db)?;
                if *level >= 4 {
                    sqlx::query("INSERT INTO rating_followups (case_id, level, comment, opened_at) VALUES ($1,$2,$3,$4)")
                        .bind(id)
                        .bind(i64::from(*level))
                        .bind(comment)
                        .bind(at)
                        .execute(tx.conn())
                        .await
                        .map_err(db)?;
                    tongban_platform::outbox::publish(
                        tx,
                        "supervision.bad_rating",
                        &json!({"case_id": id, "number": number, "level": level}),
                    )
                    .await
                    .map_err(db)?;
                }
                Ok(())
            }
            ZoneMessage::ResultReceived { number, at } => self.result_received(tx, number, *at).await.map_err(db),
            ZoneMessage::StatusChanged { .. } | ZoneMessage::ResultIssued { .. } => Ok(()),
        }
    }

    /// Cases for the window (受理台), newest first; `pending_only` for the queue to act on.
    pub async fn cases(&self, caller: &Principal, pending_only: bool) -> DomainResult<Vec<CaseSummary>> {
        caller.require(Permission::ApprovalAccept)?;
        self.case_list(pending_only, None).await
    }

    /// The case with application number `number` (JH… online, JC… window), for the window and
    /// for service-hall software that kept only the number.
    pub async fn case_by_number(&self, caller: &Principal, number: &str) -> DomainResult<Vec<CaseSummary>> {
        caller.require(Permission::ApprovalAccept)?;
        self.case_list(false, Some(number.trim().to_ascii_uppercase())).await
    }

    async fn case_list(&self, pending_only: bool, number: Option<String>) -> DomainResult<Vec<CaseSummary>> {
        if let Some(n) = number {
            let rows = sqlx::query(
                "SELECT c.id, c.number, i.name, c.applicant, c.status, c.received_at, c.due_on FROM approval_cases c \
                 JOIN approval_items i ON i.id = c.item_id WHERE c.number = $1",
            )
            .bind(n)
            .fetch_all(self.db.pool())
            .await?;
            return Ok(rows.iter().map(summary_of).collect());
        }
        let filter = if pending_only { "WHERE c.status = 'pending'" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT c.id, c.number, i.name, c.applicant, c.status, c.received_at, c.due_on FROM approval_cases c JOIN approval_items i ON i.id = c.item_id \
             {filter} ORDER BY c.received_at DESC, c.id DESC LIMIT 500"
        ))
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(summary_of).collect())
    }

    /// One case, for the window or for a handler of its process. Opening it is a read of
    /// personal data and is recorded (`approval.case.read`, at most once an hour per reader).
    pub async fn case(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<CaseView> {
        let view = self.visible_case(caller, actor, id).await?;
        self.audit.record_read(&self.db, actor, "approval.case.read", "approval_case", id).await?;
        Ok(view)
    }

    /// One case for a caller who may see it, without recording a read (the caller records what
    /// it hands out).
    pub(crate) async fn visible_case(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<CaseView> {
        let r = sqlx::query(
            "SELECT c.id, c.number, i.name, c.applicant, c.status, c.received_at, c.due_on, c.item_id, c.form, c.instance_id, c.result_no, c.note, \
             c.channel, c.result_name, c.result_sm3, c.delivered_at FROM approval_cases c JOIN approval_items i ON i.id = c.item_id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(NOT_FOUND)?;
        let instance_id: Option<i64> = r.get(9);
        // The window and the departments taking part in the case's process read it; defining
        // processes (`workflow.define`) gives no access to case data.
        let allowed = caller.has(Permission::ApprovalAccept)
            || match instance_id {
                Some(iid) => self.workflow.is_participant(caller, iid).await?,
                None => false,
            };
        if !allowed {
            self.audit.record_denied(&self.db, actor, "approval.case.read", "approval_case", id, "not_handler").await;
            return Err(NOT_FOUND);
        }
        let materials = sqlx::query("SELECT id, material_index, name, file_name, content_type, size, sm3 FROM case_materials WHERE case_id = $1 ORDER BY material_index, id")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|m| CaseMaterial { id: m.get(0), index: m.get(1), name: m.get(2), file_name: m.get(3), content_type: m.get(4), size: m.get(5), sm3: m.get(6) })
            .collect();
        let events = sqlx::query("SELECT at, actor, action, note FROM case_events WHERE case_id = $1 ORDER BY at, id")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|e| CaseEvent { at: e.get(0), actor: e.get(1), action: e.get(2), note: e.get(3) })
            .collect();
        Ok(CaseView {
            summary: summary_of(&r),
            item_id: r.get(7),
            applicant: serde_json::from_str(&r.get::<String, _>(3)).map_err(|e| DomainError::Internal(e.to_string()))?,
            form: serde_json::from_str(&r.get::<String, _>(8)).unwrap_or_default(),
            materials,
            events,
            instance_id,
            result_no: r.get(10),
            note: r.get(11),
            channel: r.get(12),
            result_name: r.get(13),
            result_sm3: r.get(14),
            delivered_at: r.get(15),
        })
    }

    /// A material's blob key, for download by those who may see the case; recorded as a read
    /// (`approval.material.read`).
    pub async fn material(&self, caller: &Principal, actor: &Actor, case_id: i64, material_id: i64) -> DomainResult<CaseMaterial> {
        let view = self.visible_case(caller, actor, case_id).await?;
        let m = view.materials.into_iter().find(|m| m.id == material_id).ok_or(NOT_FOUND)?;
        self.audit.record_read(&self.db, actor, "approval.material.read", "case_material", m.id).await?;
        Ok(m)
    }

    async fn pending(&self, tx: &mut WriteTx, id: i64) -> DomainResult<(String, i64, Map<String, Value>)> {
        let r = sqlx::query("SELECT number, item_id, form, status FROM approval_cases WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or(NOT_FOUND)?;
        if r.get::<String, _>(3) != "pending" {
            return Err(DomainError::Conflict("approval.error.not_pending"));
        }
        Ok((r.get(0), r.get(1), serde_json::from_str(&r.get::<String, _>(2)).unwrap_or_default()))
    }

    /// Accepts a case (受理): the promised time limit starts tomorrow, the item's process starts,
    /// and the applicant is told — one transaction.
    pub async fn accept(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<()> {
        self.require_window(caller, actor, "approval.case.accept", id).await?;
        let now = (self.now)();
        let calendar = self.calendar.calendar().await?;
        let mut tx = self.db.begin_write().await?;
        let (number, item_id, form) = self.pending(&mut tx, id).await?;
        let item = self.catalogue.item(item_id, true).await?;
        let today = local_date(now).ok_or_else(|| DomainError::Internal("clock".into()))?;
        let clock = DeadlineClock::new(today, item.spec.promised_days);
        let due = clock.due_date(&calendar).map(date_text);
        let title = format!("{} {}", item.spec.name, number);
        let instance = self.workflow.start_in(&mut tx, caller.user_id, actor, &item.spec.process_key, &title, &number, form).await?;
        let clock_json = serde_json::to_string(&clock).map_err(|e| DomainError::Internal(e.to_string()))?;
        sqlx::query(
            "UPDATE approval_cases SET status = 'processing', accepted_at = $1, accepted_by = $2, clock = $3, due_on = $4, instance_id = $5, updated_at = $1 WHERE id = $6",
        )
        .bind(now)
        .bind(caller.user_id)
        .bind(clock_json)
        .bind(&due)
        .bind(instance)
        .bind(id)
        .execute(tx.conn())
        .await?;
        self.event(&mut tx, id, &actor.name, "accepted", "").await?;
        let note = format!("已受理，承诺{}个工作日内办结", item.spec.promised_days);
        self.tell(
            &mut tx,
            id,
            ZoneMessage::StatusChanged { number: number.clone(), status: status::PROCESSING.into(), note, due_on: due.clone(), at: now },
        )
        .await?;
        self.audit
            .append(
                &mut tx,
                actor,
                Entry::success(
                    "approval.case.accept",
                    "approval_case",
                    id,
                    json!({"number": number, "due_on": due, "instance_id": instance}),
                ),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refuses to accept (不予受理) with a reason.
    pub async fn refuse(&self, caller: &Principal, actor: &Actor, id: i64, reason: &str) -> DomainResult<()> {
        self.require_window(caller, actor, "approval.case.refuse", id).await?;
        let reason = reason.trim();
        tongban_platform::text::check_multiline("reason", reason)?;
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(DomainError::invalid("reason", "error.required"));
        }
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let (number, ..) = self.pending(&mut tx, id).await?;
        sqlx::query("UPDATE approval_cases SET status = 'refused', note = $1, completed_at = $2, updated_at = $2 WHERE id = $3")
            .bind(reason)
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await?;
        self.event(&mut tx, id, &actor.name, "refused", reason).await?;
        self.tell(
            &mut tx,
            id,
            ZoneMessage::StatusChanged {
                number: number.clone(),
                status: status::REFUSED.into(),
                note: reason.into(),
                due_on: None,
                at: now,
            },
        )
        .await?;
        self.audit
            .append(
                &mut tx,
                actor,
                Entry::success("approval.case.refuse", "approval_case", id, json!({"number": number, "reason": reason})),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks for every missing item at once (一次性告知补正); the applicant uploads and resubmits.
    /// Before acceptance the case simply waits; during processing the deadline clock pauses
    /// (补正 does not count against the time limit) and resumes when the materials arrive.
    pub async fn request_supplement(&self, caller: &Principal, actor: &Actor, id: i64, items: &[String]) -> DomainResult<()> {
        self.require_window(caller, actor, "approval.case.supplement", id).await?;
        let items: Vec<&str> = items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
        for item in &items {
            tongban_platform::text::check_line("items", item)?;
        }
        if items.is_empty() || items.iter().any(|s| s.chars().count() > 500) {
            return Err(DomainError::invalid("items", "error.required"));
        }
        let list = items.iter().enumerate().map(|(i, s)| format!("{}. {s}", i + 1)).collect::<Vec<_>>().join("；");
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let r = sqlx::query("SELECT number, status, clock FROM approval_cases WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or(NOT_FOUND)?;
        let (number, state_now, clock): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let paused_clock = match state_now.as_str() {
            "pending" => None,
            "processing" => {
                let mut clock: DeadlineClock = clock
                    .as_deref()
                    .and_then(|c| serde_json::from_str(c).ok())
                    .ok_or_else(|| DomainError::Internal("case clock".into()))?;
                let today = local_date(now).ok_or_else(|| DomainError::Internal("clock".into()))?;
                clock.pause(today, "补正").map_err(|_| DomainError::Conflict("approval.error.not_pending"))?;
                Some(serde_json::to_string(&clock).map_err(|e| DomainError::Internal(e.to_string()))?)
            }
            _ => return Err(DomainError::Conflict("approval.error.not_pending")),
        };
        sqlx::query(
            "UPDATE approval_cases SET status = 'supplement', note = $1, clock = COALESCE($2, clock), updated_at = $3 WHERE id = $4",
        )
        .bind(&list)
        .bind(&paused_clock)
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        self.event(&mut tx, id, &actor.name, "supplement_requested", &list).await?;
        let note = if paused_clock.is_some() {
            format!("请一次性补正以下材料（补正期间办理时限暂停计算）：{list}")
        } else {
            format!("请一次性补正以下材料：{list}")
        };
        self.tell(
            &mut tx,
            id,
            ZoneMessage::StatusChanged { number: number.clone(), status: status::SUPPLEMENT.into(), note, due_on: None, at: now },
        )
        .await?;
        let details = json!({"number": number, "items": items, "clock_paused": paused_clock.is_some()});
        self.audit.append(&mut tx, actor, Entry::success("approval.case.supplement", "approval_case", id, details)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A bad rating waiting for the supervisor's follow-up (差评回访).
#[derive(Debug, Clone, Serialize)]
pub struct Followup {
    /// Id.
    pub id: i64,
    /// Case.
    pub case_id: i64,
    /// Application number.
    pub number: String,
    /// Item.
    pub item_name: String,
    /// 4 不满意, 5 非常不满意.
    pub level: i64,
    /// The applicant's comment.
    pub comment: String,
    /// Opened (ms).
    pub opened_at: i64,
}

impl CaseService {
    /// Open follow-ups of bad ratings (`supervision.read`).
    pub async fn followups(&self, caller: &Principal) -> DomainResult<Vec<Followup>> {
        caller.require(Permission::SupervisionRead)?;
        let rows = sqlx::query(
            "SELECT f.id, f.case_id, c.number, i.name, f.level, f.comment, f.opened_at FROM rating_followups f JOIN approval_cases c ON c.id = f.case_id              JOIN approval_items i ON i.id = c.item_id WHERE f.closed_at IS NULL ORDER BY f.opened_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Followup {
                id: r.get(0),
                case_id: r.get(1),
                number: r.get(2),
                item_name: r.get(3),
                level: r.get(4),
                comment: r.get(5),
                opened_at: r.get(6),
            })
            .collect())
    }

    /// Closes a follow-up with what was done (回访整改情况).
    pub async fn close_followup(&self, caller: &Principal, actor: &Actor, id: i64, resolution: &str) -> DomainResult<()> {
        if !caller.has(Permission::SupervisionRead) {
            self.audit.record_denied(&self.db, actor, "supervision.followup", "rating_followup", id, "missing_permission").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let resolution = resolution.trim();
        tongban_platform::text::check_multiline("resolution", resolution)?;
        if resolution.is_empty() || resolution.chars().count() > 2000 {
            return Err(DomainError::invalid("resolution", "error.required"));
        }
        let mut tx = self.db.begin_write().await?;
        let n =
            sqlx::query("UPDATE rating_followups SET closed_at = $1, closed_by = $2, resolution = $3 WHERE id = $4 AND closed_at IS NULL")
                .bind(now_millis())
                .bind(caller.user_id)
                .bind(resolution)
                .bind(id)
                .execute(tx.conn())
                .await?
                .rows_affected();
        if n != 1 {
            return Err(NOT_FOUND);
        }
        self.audit
            .append(&mut tx, actor, Entry::success("supervision.followup", "rating_followup", id, json!({"resolution": resolution})))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Per-item figures for supervision.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ItemStats {
    /// Item name.
    pub item: String,
    /// Cases being processed.
    pub open: i64,
    /// Of those, past their deadline.
    pub overdue: i64,
    /// Completed (granted or denied).
    pub completed: i64,
    /// Completed by their deadline.
    pub on_time: i64,
    /// Average working days from acceptance to completion.
    pub avg_working_days: Option<f64>,
}

/// Case figures for the supervision dashboard (电子监察).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CaseStats {
    /// Cases waiting for acceptance.
    pub pending: i64,
    /// Being processed.
    pub open: i64,
    /// Being processed past their deadline.
    pub overdue: i64,
    /// Completed.
    pub completed: i64,
    /// Share completed by the deadline (0–1).
    pub on_time_rate: Option<f64>,
    /// By item.
    pub items: Vec<ItemStats>,
}

impl CaseService {
    /// Figures over every case (`supervision.read`).
    pub async fn stats(&self, caller: &Principal, actor: &Actor) -> DomainResult<CaseStats> {
        if !caller.has(Permission::SupervisionRead) {
            self.audit.record_denied(&self.db, actor, "supervision.read", "approval_case", 0, "missing_permission").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        let rows = sqlx::query(
            "SELECT i.name, c.status, c.accepted_at, c.completed_at, c.due_on FROM approval_cases c JOIN approval_items i ON i.id = c.item_id ORDER BY i.name",
        )
        .fetch_all(self.db.pool())
        .await?;
        let parse = |s: &str| time::Date::parse(s, &time::macros::format_description!("[year]-[month]-[day]")).ok();
        let mut stats = CaseStats::default();
        let mut days: Vec<(String, i64)> = Vec::new();
        for r in &rows {
            let (item, status_name): (String, String) = (r.get(0), r.get(1));
            let due = r.get::<Option<String>, _>(4).as_deref().and_then(parse);
            if !stats.items.iter().any(|i| i.item == item) {
                stats.items.push(ItemStats { item: item.clone(), ..ItemStats::default() });
            }
            let Some(entry) = stats.items.iter_mut().find(|i| i.item == item) else { continue };
            match status_name.as_str() {
                "pending" | "supplement" => stats.pending += 1,
                "processing" => {
                    stats.open += 1;
                    entry.open += 1;
                    if matches!((due, today), (Some(d), Some(t)) if t > d) {
                        stats.overdue += 1;
                        entry.overdue += 1;
                    }
                }
                "approved" | "denied" => {
                    stats.completed += 1;
                    entry.completed += 1;
                    let accepted = r.get::<Option<i64>, _>(2).and_then(local_date);
                    let completed = r.get::<Option<i64>, _>(3).and_then(local_date);
                    if let (Some(c), Some(d)) = (completed, due)
                        && c <= d
                    {
                        entry.on_time += 1;
                    }
                    if let (Some(a), Some(c)) = (accepted, completed) {
                        days.push((item.clone(), calendar.working_days_between(a, c)));
                    }
                }
                _ => {}
            }
        }
        for entry in stats.items.iter_mut() {
            let mine: Vec<i64> = days.iter().filter(|(i, _)| *i == entry.item).map(|(_, d)| *d).collect();
            if !mine.is_empty() {
                entry.avg_working_days = Some(mine.iter().sum::<i64>() as f64 / mine.len() as f64);
            }
        }
        let on_time: i64 = stats.items.iter().map(|i| i.on_time).sum();
        if stats.completed > 0 {
            stats.on_time_rate = Some(on_time as f64 / stats.completed as f64);
        }
        Ok(stats)
    }
}

fn summary_of(r: &sqlx::any::AnyRow) -> CaseSummary {
    let applicant: String = r.get(3);
    let name = serde_json::from_str::<Applicant>(&applicant).map(|a| a.name).unwrap_or_default();
    CaseSummary {
        id: r.get(0),
        number: r.get(1),
        item_name: r.get(2),
        applicant: name,
        status: r.get(4),
        received_at: r.get(5),
        due_on: r.get(6),
    }
}

/// Receives zone messages for internal processing, and closes cases whose process ended.
pub struct InternalReceiver(pub CaseService);

#[async_trait::async_trait]
impl tongban_platform::outbox::OutboxHandler for InternalReceiver {
    fn name(&self) -> &'static str {
        "approval.cases"
    }

    fn accepts(&self, topic: &str) -> bool {
        topic == zone::TO_INTERNAL || topic == "workflow.instance.completed"
    }

    async fn handle(&self, tx: &mut WriteTx, event: &tongban_platform::outbox::OutboxEvent) -> Result<(), String> {
        if event.topic == "workflow.instance.completed" {
            let id = event.payload["instance_id"].as_i64().ok_or("event without instance_id")?;
            let vars = event.payload["variables"].as_object().cloned().unwrap_or_default();
            let last_opinion = event.payload["last_opinion"].as_str();
            // Whether the process has a decision step (决定环节); events queued by an earlier
            // release do not say, and their processes were completed as before.
            let has_decision = event.payload["has_decision"].as_bool().unwrap_or(false);
            return self.0.complete_from_process(tx, id, &vars, last_opinion, has_decision).await;
        }
        let msg: ZoneMessage = serde_json::from_value(event.payload.clone()).map_err(|e| format!("bad zone message: {e}"))?;
        self.0.receive(tx, &msg).await
    }
}
