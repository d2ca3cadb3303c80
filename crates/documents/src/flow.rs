//! The issuing flow (发文办理) through the workflow engine: a draft is sent for review (核稿) to a
//! person, countersigned (会签) by the staff of several units in parallel, and signed off (签发)
//! by a leader; they act from their to-do lists, where they can also send it back or take back what
//! they just did; when the process ends the document is signed off (its 签发人 filled in) and the
//! issuing office may number it. Withdrawing the submission (撤回送审) returns the draft.

use serde_json::{Map, Value, json};
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox::OutboxEvent};

use crate::service::DocumentService;

/// The most units one document may go to for countersigning (会签), or for handling (承办).
pub const MAX_COUNTERSIGN_UNITS: usize = 30;

/// Whom a draft goes to (送审): the reviewer and signer by user name, and the units that
/// countersign it (by id; may be empty).
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// Who checks it (核稿人).
    pub reviewer: &'a str,
    /// Who signs it off (签发人).
    pub signer: &'a str,
    /// Units that countersign it in parallel (会签单位).
    pub countersign_units: &'a [i64],
}

/// One unit's countersigning of a document (会签意见).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Countersign {
    /// The countersigning unit.
    pub unit: String,
    /// The task's state: `open`, `completed`, `sent_back`, `cancelled`, `withdrawn`….
    pub status: String,
    /// Who countersigned (or sent it back).
    pub done_by: Option<String>,
    /// Their opinion.
    pub opinion: Option<String>,
    /// When (ms since epoch).
    pub closed_at: Option<i64>,
}

/// The issuing process the documents slice ships with.
pub const FAWEN_BPMN: &str = include_str!("../data/fawen.bpmn");
/// Its key.
pub const FAWEN: &str = "fawen";
/// The receiving process (收文办理: 拟办 → 批示 → 承办 → 办结).
pub const SHOUWEN_BPMN: &str = include_str!("../data/shouwen.bpmn");
/// Its key.
pub const SHOUWEN: &str = "shouwen";

impl DocumentService {
    async fn staff_id(&self, username: &str, field: &str) -> DomainResult<(i64, String)> {
        sqlx::query("SELECT id, display_name FROM users WHERE username = $1 AND enabled = 1")
            .bind(username.trim())
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| (r.get(0), r.get(1)))
            .ok_or_else(|| DomainError::invalid(field, "error.user_not_found"))
    }

    /// Sends a draft for review, countersigning and sign-off (送审): `reviewer` checks it (核稿),
    /// the staff of each `countersign_units` unit countersign it in parallel (会签; none: no
    /// countersigning), `signer` signs it off (签发). Only its author or the issuing office may.
    pub async fn submit(&self, caller: &Principal, actor: &Actor, id: i64, to: &Submission<'_>) -> DomainResult<i64> {
        let workflow = self.workflow.as_ref().ok_or(DomainError::Conflict("document.error.no_workflow"))?;
        let doc = self.document(caller, actor, id).await?;
        self.require_editor(caller, actor, &doc, "document.submit").await?;
        if doc.status != "draft" {
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        let (reviewer_id, _) = self.staff_id(to.reviewer, "reviewer").await?;
        let (signer_id, _) = self.staff_id(to.signer, "signer").await?;
        let countersign = self.countersigning_units(doc.unit_id, to.countersign_units).await?;
        workflow.ensure_builtin(caller.user_id, actor, FAWEN_BPMN).await?;
        let mut vars = Map::new();
        vars.insert("document_id".into(), json!(id));
        vars.insert("reviewer_id".into(), json!(reviewer_id));
        vars.insert("signer_id".into(), json!(signer_id));
        vars.insert("countersign_units".into(), json!(countersign.iter().map(|(id, _)| id).collect::<Vec<_>>()));
        let mut tx = self.db.begin_write().await?;
        let title = format!("发文：{}", doc.title);
        let instance = workflow.start_in(&mut tx, caller.user_id, actor, FAWEN, &title, &format!("document:{id}"), vars).await?;
        let done =
            sqlx::query("UPDATE documents SET status = 'in_review', instance_id = $2, updated_at = $3 WHERE id = $1 AND status = 'draft'")
                .bind(id)
                .bind(instance)
                .bind(now_millis())
                .execute(tx.conn())
                .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::Conflict("document.error.not_draft"));
        }
        let names: Vec<&str> = countersign.iter().map(|(_, name)| name.as_str()).collect();
        let details = json!({"instance": instance, "reviewer": to.reviewer.trim(), "signer": to.signer.trim(), "countersign_units": names});
        self.audit.append(&mut tx, actor, Entry::success("document.submit", "document", id, details)).await?;
        tx.commit().await?;
        Ok(instance)
    }

    /// Recalls a draft from review (撤回送审) before it is signed off: the process stops (its open
    /// tasks are cancelled) and the document is a draft again, in one transaction. Its author or
    /// the issuing office may.
    pub async fn recall(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<()> {
        let workflow = self.workflow.as_ref().ok_or(DomainError::Conflict("document.error.no_workflow"))?;
        let doc = self.document(caller, actor, id).await?;
        self.require_editor(caller, actor, &doc, "document.recall").await?;
        let Some(instance) = doc.instance_id.filter(|_| doc.status == "in_review") else {
            return Err(DomainError::Conflict("document.error.not_in_review"));
        };
        let mut tx = self.db.begin_write().await?;
        workflow.cancel_in(&mut tx, actor, instance, "document.recall").await?;
        let done = sqlx::query(
            "UPDATE documents SET status = 'draft', instance_id = NULL, updated_at = $3 WHERE id = $1 AND instance_id = $2 AND status = 'in_review'",
        )
        .bind(id)
        .bind(instance)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::Conflict("document.error.not_in_review"));
        }
        self.audit.append(&mut tx, actor, Entry::success("document.recall", "document", id, json!({"instance": instance}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where countersigning (会签) stands for a document in its current process: per unit, the
    /// task's state, who did it, their opinion and when (in the order the tasks were made).
    pub async fn countersigns(&self, doc: &crate::Document) -> DomainResult<Vec<Countersign>> {
        let Some(instance) = doc.instance_id else { return Ok(Vec::new()) };
        let rows = sqlx::query(
            "SELECT t.queue_unit, t.status, u.display_name, t.opinion, t.closed_at FROM wf_tasks t LEFT JOIN users u ON u.id = t.completed_by              WHERE t.instance_id = $1 AND t.node_id = 'countersign' AND t.cosign_of IS NULL ORDER BY t.task_no",
        )
        .bind(instance)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Countersign {
                unit: r.get::<Option<String>, _>(0).unwrap_or_default(),
                status: r.get(1),
                done_by: r.get(2),
                opinion: r.get(3),
                closed_at: r.get(4),
            })
            .collect())
    }

    /// Checks the units asked to countersign: known, enabled, not the drafting unit itself, each
    /// once, at most [`MAX_COUNTERSIGN_UNITS`]; answers their ids and names in the order given.
    async fn countersigning_units(&self, own_unit: i64, ids: &[i64]) -> DomainResult<Vec<(i64, String)>> {
        if ids.contains(&own_unit) {
            return Err(DomainError::invalid("countersign_units", "document.error.countersign_own_unit"));
        }
        self.enabled_units("countersign_units", ids).await
    }

    /// The enabled units `ids` (each once, in the order given, at most [`MAX_COUNTERSIGN_UNITS`])
    /// with their names; an unknown or disabled one is refused naming `field`.
    async fn enabled_units(&self, field: &str, ids: &[i64]) -> DomainResult<Vec<(i64, String)>> {
        let mut units: Vec<(i64, String)> = Vec::new();
        for &unit in ids {
            if units.iter().any(|(u, _)| *u == unit) {
                continue;
            }
            let row = sqlx::query("SELECT name FROM units WHERE id = $1 AND enabled = 1").bind(unit).fetch_optional(self.db.pool()).await?;
            let name = row.map(|r| r.get::<String, _>(0)).ok_or_else(|| DomainError::invalid(field, "error.not_found"))?;
            units.push((unit, name));
        }
        if units.len() > MAX_COUNTERSIGN_UNITS {
            return Err(DomainError::invalid(field, "document.error.too_many_countersign"));
        }
        Ok(units)
    }

    /// Registers a received document for handling (收文登记) after it was signed for: `proposer`
    /// proposes how to handle it (拟办), `leader` instructs (批示), the staff of each of
    /// `handler_units` handle it in parallel (承办); the process's end, when every unit has done
    /// its part, closes and archives it (办结、归档).
    pub async fn register_received(
        &self,
        caller: &Principal,
        actor: &Actor,
        delivery_id: i64,
        (proposer, leader, handler_units): (&str, &str, &[i64]),
    ) -> DomainResult<i64> {
        let workflow = self.workflow.as_ref().ok_or(DomainError::Conflict("document.error.no_workflow"))?;
        let row = sqlx::query(
            "SELECT d.recipient_unit_id, d.status, d.instance_id, c.title, c.doc_number FROM document_deliveries d JOIN documents c ON c.id = d.document_id WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(DomainError::NotFound("error.not_found"))?;
        let (unit, status, instance): (i64, String, Option<i64>) = (row.get(0), row.get(1), row.get(2));
        if !self.can_issue(caller, unit).await? {
            self.audit.record_denied(&self.db, actor, "document.register", "document_delivery", delivery_id, "out_of_scope").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        if status != "signed" || instance.is_some() {
            return Err(DomainError::Conflict("document.error.not_signed"));
        }
        let (proposer_id, _) = self.staff_id(proposer, "proposer").await?;
        let (leader_id, _) = self.staff_id(leader, "leader").await?;
        let handlers = self.enabled_units("handler_unit_ids", handler_units).await?;
        if handlers.is_empty() {
            return Err(DomainError::invalid("handler_unit_ids", "error.required"));
        }
        workflow.ensure_builtin(caller.user_id, actor, SHOUWEN_BPMN).await?;
        let mut vars = Map::new();
        vars.insert("delivery_id".into(), json!(delivery_id));
        vars.insert("proposer_id".into(), json!(proposer_id));
        vars.insert("leader_id".into(), json!(leader_id));
        vars.insert("handler_units".into(), json!(handlers.iter().map(|(id, _)| id).collect::<Vec<_>>()));
        let title = format!("收文：{}（{}）", row.get::<String, _>(3), row.get::<Option<String>, _>(4).unwrap_or_default());
        let mut tx = self.db.begin_write().await?;
        let instance = workflow.start_in(&mut tx, caller.user_id, actor, SHOUWEN, &title, &format!("delivery:{delivery_id}"), vars).await?;
        sqlx::query("UPDATE document_deliveries SET instance_id = $2, registered_at = $3 WHERE id = $1 AND instance_id IS NULL")
            .bind(delivery_id)
            .bind(instance)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        let names: Vec<&str> = handlers.iter().map(|(_, name)| name.as_str()).collect();
        let details = json!({"instance": instance, "proposer": proposer.trim(), "leader": leader.trim(), "handler_units": names});
        self.audit.append(&mut tx, actor, Entry::success("document.register", "document_delivery", delivery_id, details)).await?;
        tx.commit().await?;
        Ok(instance)
    }

    /// Closes and archives a received document when its handling process ends (办结、归档).
    async fn on_received_handled(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String> {
        if event.topic != "workflow.instance.completed" {
            return Ok(());
        }
        let instance = event.payload["instance_id"].as_i64().ok_or("event without instance_id")?;
        let done = sqlx::query("UPDATE document_deliveries SET archived_at = $2 WHERE instance_id = $1 AND archived_at IS NULL")
            .bind(instance)
            .bind(now_millis())
            .execute(tx.conn())
            .await
            .map_err(|e| e.to_string())?;
        if done.rows_affected() > 0 {
            let details = json!({"instance": instance, "last_opinion": event.payload["last_opinion"]});
            self.audit
                .append(tx, &Actor::system("workflow"), Entry::success("document.archive", "document_delivery", instance, details))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Applies the end of a 发文 process to its document (from the outbox, in its transaction):
    /// completed → signed off with the signer's name as 签发人; cancelled → back to draft.
    pub async fn on_process_event(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String> {
        if event.payload["process"] == SHOUWEN {
            return self.on_received_handled(tx, event).await;
        }
        if event.payload["process"] != FAWEN {
            return Ok(());
        }
        let instance = event.payload["instance_id"].as_i64().ok_or("event without instance_id")?;
        let db = |e: sqlx::Error| e.to_string();
        let row = sqlx::query("SELECT id, fields FROM documents WHERE instance_id = $1 AND status = 'in_review'")
            .bind(instance)
            .fetch_optional(tx.conn())
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(()) };
        let id: i64 = row.get(0);
        if event.topic == "workflow.instance.cancelled" {
            sqlx::query("UPDATE documents SET status = 'draft', instance_id = NULL, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now_millis())
                .execute(tx.conn())
                .await
                .map_err(db)?;
            return Ok(());
        }
        let signer = event.payload["variables"]["signer_id"].as_i64().ok_or("no signer_id")?;
        let name: String =
            sqlx::query("SELECT display_name FROM users WHERE id = $1").bind(signer).fetch_one(tx.conn()).await.map_err(db)?.get(0);
        let mut fields: Value = serde_json::from_str(&row.get::<String, _>(1)).map_err(|e| e.to_string())?;
        fields["signer"] = json!(name);
        sqlx::query("UPDATE documents SET status = 'signed_off', signed_off_by = $2, fields = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(signer)
            .bind(fields.to_string())
            .bind(now_millis())
            .execute(tx.conn())
            .await
            .map_err(db)?;
        let actor = Actor::system("workflow");
        self.audit
            .append(tx, &actor, Entry::success("document.sign_off", "document", id, json!({"signer": name, "instance": instance})))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Hands the end of 发文 processes to the documents slice.
pub struct DocumentFlowReceiver(pub DocumentService);

#[async_trait::async_trait]
impl tongban_platform::outbox::OutboxHandler for DocumentFlowReceiver {
    fn name(&self) -> &'static str {
        "documents.flow"
    }

    fn accepts(&self, topic: &str) -> bool {
        topic == "workflow.instance.completed" || topic == "workflow.instance.cancelled"
    }

    async fn handle(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String> {
        self.0.on_process_event(tx, event).await
    }
}
