//! The workflow service: versioned definitions, instances and tasks in the database. Every change
//! is one transaction holding the instance's new state (guarded by its revision, so of two
//! concurrent actions on one task exactly one wins), the task projection, the audit record and
//! the outbox events.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use time::Date;
use tongban_audit::{Actor as AuditActor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_calendar::{CalendarService, model::Calendar};
use tongban_platform::{
    Db, DomainError, WriteTx,
    clock::{local_date, now_millis},
    error::DomainResult,
    outbox,
};

use crate::{
    Actor, Completion, Effect, EngineError, Instance, ProcessDefinition, TaskStatus,
    definition::{Candidate, FieldType, NodeKind},
    engine::TaskId,
    parse::{MAX_BPMN_BYTES, parse_bpmn},
};

/// Working days before a deadline at which a task turns to warning (预警).
pub const DEFAULT_WARN_DAYS: i64 = 2;

/// A stored definition version.
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionSummary {
    /// Row id.
    pub id: i64,
    /// The process id from the file.
    pub key: String,
    /// Version, from 1 per key.
    pub version: i64,
    /// Display name.
    pub name: String,
    /// SM3 digest of the uploaded XML.
    pub sm3: String,
    /// Uploaded at (ms).
    pub created_at: i64,
}

/// One step of a process, for the readable list of steps.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Element id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `start`, `end`, `user_task`, `parallel`, `exclusive`, `inclusive`, `timer`.
    pub kind: &'static str,
    /// Who may do it (units, roles, assignee), as written.
    pub who: Vec<String>,
    /// Time limit in working days.
    pub due_working_days: Option<u32>,
    /// Where it leads: (flow name or condition, target name).
    pub next: Vec<(String, String)>,
}

/// A definition with its steps.
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionDetail {
    /// The stored row.
    pub summary: DefinitionSummary,
    /// Steps in file order.
    pub steps: Vec<StepView>,
    /// Declared fields.
    pub fields: Vec<(String, FieldType)>,
    /// The modeler's layout, when the file has one.
    pub diagram: Option<crate::diagram::Diagram>,
}

/// A task as the to-do list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    /// Row id (used in URLs).
    pub id: i64,
    /// The instance.
    pub instance_id: i64,
    /// Instance title.
    pub title: String,
    /// Process name.
    pub process: String,
    /// Step element id.
    pub node_id: String,
    /// Step name.
    pub name: String,
    /// Status.
    pub status: String,
    /// Holder, if claimed.
    pub assignee_id: Option<i64>,
    /// Holder's display name.
    pub assignee_name: Option<String>,
    /// Created (ms).
    pub created_at: i64,
    /// Deadline (YYYY-MM-DD).
    pub due_on: Option<String>,
    /// Working days left (negative: overdue).
    pub remaining: Option<i64>,
    /// `normal`, `warning` (预警) or `overdue` (超期).
    pub alert: &'static str,
    /// A co-signer's task.
    pub cosign: bool,
    /// Opinion (done tasks).
    pub opinion: Option<String>,
    /// Closed (ms).
    pub closed_at: Option<i64>,
}

/// An instance with its history.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// Row id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Business key (e.g. an application number).
    pub business_key: String,
    /// Process name and version.
    pub process: String,
    /// Definition row id.
    pub definition_id: i64,
    /// Status.
    pub status: String,
    /// Data.
    pub variables: Map<String, Value>,
    /// Every task, oldest first.
    pub tasks: Vec<TaskRow>,
    /// Completed user-task steps one may send back to: (element id, name).
    pub earlier_steps: Vec<(String, String)>,
    /// Started (ms).
    pub started_at: i64,
    /// Who started it.
    pub started_by: i64,
}

/// Which tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskList {
    /// Open tasks I hold or may claim (待办), by deadline.
    Todo,
    /// Tasks I finished (已办), newest first.
    Done,
}

/// What to do with a task.
#[derive(Debug, Clone)]
pub enum TaskAction {
    /// 签收.
    Claim,
    /// 办理 with an opinion and data.
    Complete {
        /// Opinion.
        opinion: Option<String>,
        /// Data to merge.
        variables: Map<String, Value>,
    },
    /// 退回 to an earlier step.
    SendBack {
        /// Element id of the earlier step.
        target: String,
        /// Why.
        reason: Option<String>,
    },
    /// 撤回.
    Withdraw,
    /// 转办.
    Transfer {
        /// The new holder.
        to_user: i64,
    },
    /// 加签.
    AddCosigner {
        /// The co-signer.
        user: i64,
    },
}

impl TaskAction {
    fn name(&self) -> &'static str {
        match self {
            TaskAction::Claim => "claim",
            TaskAction::Complete { .. } => "complete",
            TaskAction::SendBack { .. } => "send_back",
            TaskAction::Withdraw => "withdraw",
            TaskAction::Transfer { .. } => "transfer",
            TaskAction::AddCosigner { .. } => "add_cosigner",
        }
    }
}

/// What one run of the timer job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Boundary timers fired.
    pub timers_fired: usize,
    /// Tasks that turned to warning.
    pub warned: usize,
    /// Tasks that turned overdue.
    pub overdue: usize,
}

/// Use cases of the workflow slice.
#[derive(Clone)]
pub struct WorkflowService {
    db: Db,
    audit: AuditTrail,
    calendar: CalendarService,
    definitions: Arc<RwLock<HashMap<i64, Arc<ProcessDefinition>>>>,
    warn_days: i64,
}

fn engine_error(e: EngineError) -> DomainError {
    let key = e.message_key();
    match e {
        EngineError::NoSuchTask | EngineError::NoSuchTimer => DomainError::NotFound(key),
        EngineError::NotAllowed => DomainError::Forbidden(key),
        EngineError::NotAnEarlierStep | EngineError::AcrossBranches => DomainError::invalid("target", key),
        EngineError::BadTarget => DomainError::invalid("user", key),
        EngineError::NoPathMatched(detail) => DomainError::invalid_detail("variables", key, detail),
        EngineError::TaskClosed
        | EngineError::NotClaimed
        | EngineError::AlreadyClaimed
        | EngineError::InstanceEnded
        | EngineError::CannotWithdraw => DomainError::Conflict(key),
    }
}

fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

struct Loaded {
    def_id: i64,
    revision: i64,
    title: String,
    inst: Instance,
}

impl WorkflowService {
    /// A service over `db`, recording to `audit`, counting deadlines with `calendar`.
    pub fn new(db: Db, audit: AuditTrail, calendar: CalendarService) -> Self {
        WorkflowService { db, audit, calendar, definitions: Arc::default(), warn_days: DEFAULT_WARN_DAYS }
    }

    /// The same service warning `days` working days before a deadline.
    pub fn with_warn_days(mut self, days: i64) -> Self {
        self.warn_days = days.max(0);
        self
    }

    async fn deny(&self, caller: &Principal, actor: &AuditActor, action: &str, object: (&str, i64), reason: &str) {
        let _ = caller;
        self.audit.record_denied(&self.db, actor, action, object.0, object.1, reason).await;
    }

    async fn require(&self, caller: &Principal, actor: &AuditActor, p: Permission, action: &str) -> DomainResult<()> {
        if caller.has(p) {
            return Ok(());
        }
        self.deny(caller, actor, action, ("-", caller.user_id), "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    // ---- definitions -------------------------------------------------------------------------

    /// Uploads a BPMN file (流程定义上传): validated, then stored as the next version of its key.
    pub async fn upload(&self, caller: &Principal, actor: &AuditActor, xml: &str) -> DomainResult<DefinitionSummary> {
        self.require(caller, actor, Permission::WorkflowDefine, "workflow.definition.upload").await?;
        if xml.trim().is_empty() {
            return Err(DomainError::invalid("file", "error.required"));
        }
        if xml.len() > MAX_BPMN_BYTES {
            return Err(DomainError::invalid("file", "workflow.error.too_large"));
        }
        let def = parse_bpmn(xml).map_err(|e| DomainError::invalid_detail("file", e.message_key(), e.detail()))?;
        let sm3 = tongban_crypto::sm3_hex(xml.as_bytes());
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let latest = sqlx::query("SELECT version, sm3 FROM wf_definitions WHERE process_key = $1 ORDER BY version DESC LIMIT 1")
            .bind(&def.key)
            .fetch_optional(tx.conn())
            .await?;
        if let Some(r) = &latest
            && r.get::<String, _>(1) == sm3
        {
            return Err(DomainError::Conflict("workflow.error.same_as_latest"));
        }
        let version = latest.map(|r| r.get::<i64, _>(0)).unwrap_or(0) + 1;
        let id: i64 = sqlx::query(
            "INSERT INTO wf_definitions (process_key, version, name, xml, sm3, created_by, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
        )
        .bind(&def.key)
        .bind(version)
        .bind(&def.name)
        .bind(xml)
        .bind(&sm3)
        .bind(caller.user_id)
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"key": def.key, "version": version, "name": def.name, "sm3": sm3});
        self.audit.append(&mut tx, actor, Entry::success("workflow.definition.upload", "wf_definition", id, details.clone())).await?;
        outbox::publish(&mut tx, "workflow.definition.uploaded", &details).await?;
        tx.commit().await?;
        if let Ok(mut cache) = self.definitions.write() {
            cache.insert(id, Arc::new(def.clone()));
        }
        Ok(DefinitionSummary { id, key: def.key, version, name: def.name, sm3, created_at: now })
    }

    /// Every stored definition version, newest version of each key first.
    pub async fn definitions(&self, caller: &Principal) -> DomainResult<Vec<DefinitionSummary>> {
        caller.require(Permission::WorkbenchUse)?;
        let rows =
            sqlx::query("SELECT id, process_key, version, name, sm3, created_at FROM wf_definitions ORDER BY process_key, version DESC")
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.iter().map(summary_of).collect())
    }

    /// One definition with its steps.
    pub async fn definition(&self, caller: &Principal, id: i64) -> DomainResult<DefinitionDetail> {
        caller.require(Permission::WorkbenchUse)?;
        let row = sqlx::query("SELECT id, process_key, version, name, sm3, created_at, xml FROM wf_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(DomainError::NotFound("error.not_found"))?;
        let def = self.load_definition(id).await?;
        let diagram = crate::diagram::diagram(&row.get::<String, _>(6), &def);
        Ok(DefinitionDetail {
            diagram,
            summary: summary_of(&row),
            steps: steps_of(&def),
            fields: def.fields.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        })
    }

    /// The uploaded XML of a definition (download).
    pub async fn definition_xml(&self, caller: &Principal, id: i64) -> DomainResult<String> {
        caller.require(Permission::WorkbenchUse)?;
        sqlx::query("SELECT xml FROM wf_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or(DomainError::NotFound("error.not_found"))
    }

    async fn load_definition(&self, id: i64) -> DomainResult<Arc<ProcessDefinition>> {
        if let Some(d) = self.definitions.read().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(d);
        }
        let xml: String = sqlx::query("SELECT xml FROM wf_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or(DomainError::NotFound("error.not_found"))?;
        let def = Arc::new(parse_bpmn(&xml).map_err(|e| DomainError::Internal(format!("stored definition {id} no longer parses: {e}")))?);
        if let Ok(mut cache) = self.definitions.write() {
            cache.insert(id, def.clone());
        }
        Ok(def)
    }

    // ---- instances ---------------------------------------------------------------------------

    /// Starts the newest version of process `key` (发起) with a title and data; answers the
    /// instance id. Instances stay on the version they started with.
    pub async fn start(
        &self,
        caller: &Principal,
        actor: &AuditActor,
        key: &str,
        title: &str,
        business_key: &str,
        variables: Map<String, Value>,
    ) -> DomainResult<i64> {
        self.require(caller, actor, Permission::WorkflowStart, "workflow.instance.start").await?;
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(DomainError::invalid("title", "error.required"));
        }
        if business_key.chars().count() > 100 {
            return Err(DomainError::invalid("business_key", "error.too_long"));
        }
        let def_id: i64 = sqlx::query("SELECT id FROM wf_definitions WHERE process_key = $1 ORDER BY version DESC LIMIT 1")
            .bind(key.trim())
            .fetch_optional(self.db.pool())
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| DomainError::invalid("key", "workflow.error.unknown_process"))?;
        let def = self.load_definition(def_id).await?;
        check_variables(&def, &variables)?;
        let now = now_millis();
        let (inst, effects) = Instance::start(&def, variables, caller.user_id, now).map_err(engine_error)?;
        let calendar = self.calendar.calendar().await?;
        let mut tx = self.db.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO wf_instances (definition_id, business_key, title, status, state, revision, started_by, started_at, ended_at) \
             VALUES ($1,$2,$3,$4,$5,1,$6,$7,$8) RETURNING id",
        )
        .bind(def_id)
        .bind(business_key.trim())
        .bind(title)
        .bind(inst.status.as_str())
        .bind(state_json(&inst)?)
        .bind(caller.user_id)
        .bind(now)
        .bind(inst.ended_at)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        project(&mut tx, &def, &calendar, id, &inst, &effects).await?;
        let details = json!({"process": def.key, "definition_id": def_id, "title": title, "business_key": business_key});
        self.audit.append(&mut tx, actor, Entry::success("workflow.instance.start", "wf_instance", id, details)).await?;
        publish_effects(&mut tx, &def, id, &inst, &effects).await?;
        outbox::publish(&mut tx, "workflow.instance.started", &json!({"instance_id": id, "process": def.key})).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn load(&self, id: i64) -> DomainResult<Loaded> {
        let row = sqlx::query("SELECT definition_id, revision, state, title FROM wf_instances WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(DomainError::NotFound("error.not_found"))?;
        let state: String = row.get(2);
        let inst: Instance = serde_json::from_str(&state).map_err(|e| DomainError::Internal(format!("instance {id} state: {e}")))?;
        Ok(Loaded { def_id: row.get(0), revision: row.get(1), title: row.get(3), inst })
    }

    /// The unit keys (id and name) and role keys (code and name) the engine matches candidates with.
    async fn engine_keys(&self, caller: &Principal) -> DomainResult<(Vec<String>, Vec<String>)> {
        let units = vec![caller.unit_id.to_string(), caller.unit_name.clone()];
        let rows = sqlx::query("SELECT r.code, r.name FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1")
            .bind(caller.user_id)
            .fetch_all(self.db.pool())
            .await?;
        let roles = rows.iter().flat_map(|r| [r.get::<String, _>(0), r.get::<String, _>(1)]).collect();
        Ok((units, roles))
    }

    /// Finds the instance and task number behind a task row id.
    async fn task_ref(&self, task_id: i64) -> DomainResult<(i64, TaskId)> {
        let row = sqlx::query("SELECT instance_id, task_no FROM wf_tasks WHERE id = $1")
            .bind(task_id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(DomainError::NotFound("error.not_found"))?;
        let no: i64 = row.get(1);
        Ok((row.get(0), TaskId::try_from(no).map_err(|_| DomainError::NotFound("error.not_found"))?))
    }

    async fn user_exists(&self, user: i64) -> DomainResult<bool> {
        let row = sqlx::query("SELECT enabled FROM users WHERE id = $1").bind(user).fetch_optional(self.db.pool()).await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) != 0))
    }

    /// Acts on a task (签收, 办理, 退回, 撤回, 转办, 加签). The actor must hold the task (or be a
    /// candidate, to claim); the task must still be open. Of two concurrent actions, one wins and
    /// the other gets a conflict.
    pub async fn act(&self, caller: &Principal, actor: &AuditActor, task_id: i64, action: TaskAction) -> DomainResult<()> {
        let audit_action = format!("workflow.task.{}", action.name());
        if !caller.has(Permission::WorkbenchUse) {
            self.deny(caller, actor, &audit_action, ("wf_task", task_id), "missing_permission").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let (instance_id, task_no) = self.task_ref(task_id).await?;
        let Loaded { def_id, revision, title, mut inst } = self.load(instance_id).await?;
        let def = self.load_definition(def_id).await?;
        let (units, roles) = self.engine_keys(caller).await?;
        let who = Actor { user_id: caller.user_id, units: &units, roles: &roles };
        let visible = inst
            .tasks
            .get(&task_no)
            .is_some_and(|t| t.assignee == Some(caller.user_id) || t.completed_by == Some(caller.user_id) || inst.may_act(task_no, who));
        if !visible {
            self.deny(caller, actor, &audit_action, ("wf_task", task_id), "not_candidate").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        let now = now_millis();
        let mut details = json!({"instance_id": instance_id, "task": task_no, "title": title});
        let result = match &action {
            TaskAction::Claim => inst.claim(&def, task_no, who, now),
            TaskAction::Complete { opinion, variables } => {
                check_variables(&def, variables)?;
                let opinion = opinion.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(String::from);
                if opinion.as_ref().is_some_and(|o| o.chars().count() > 2000) {
                    return Err(DomainError::invalid("opinion", "error.too_long"));
                }
                details["opinion"] = json!(opinion);
                inst.complete(&def, task_no, who, Completion { opinion, variables: variables.clone() }, now)
            }
            TaskAction::SendBack { target, reason } => {
                details["target"] = json!(target);
                inst.send_back(&def, task_no, who, target, reason.clone().filter(|r| !r.trim().is_empty()), now)
            }
            TaskAction::Withdraw => inst.withdraw(&def, task_no, who, now),
            TaskAction::Transfer { to_user } | TaskAction::AddCosigner { user: to_user } => {
                if !self.user_exists(*to_user).await? {
                    return Err(DomainError::invalid("user", "workflow.error.bad_target"));
                }
                details["user"] = json!(to_user);
                match action {
                    TaskAction::Transfer { .. } => inst.transfer(&def, task_no, who, *to_user, now),
                    _ => inst.add_cosigner(&def, task_no, who, *to_user, now),
                }
            }
        };
        let effects = match result {
            Ok(e) => e,
            Err(EngineError::NotAllowed) => {
                self.deny(caller, actor, &audit_action, ("wf_task", task_id), "not_holder").await;
                return Err(engine_error(EngineError::NotAllowed));
            }
            Err(e) => return Err(engine_error(e)),
        };
        self.save(actor, &def, instance_id, revision, &inst, &effects, &audit_action, task_id, details).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn save(
        &self,
        actor: &AuditActor,
        def: &ProcessDefinition,
        instance_id: i64,
        revision: i64,
        inst: &Instance,
        effects: &[Effect],
        audit_action: &str,
        object_id: i64,
        details: Value,
    ) -> DomainResult<()> {
        let calendar = self.calendar.calendar().await?;
        let mut tx = self.db.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE wf_instances SET state = $1, revision = revision + 1, status = $2, ended_at = $3 WHERE id = $4 AND revision = $5",
        )
        .bind(state_json(inst)?)
        .bind(inst.status.as_str())
        .bind(inst.ended_at)
        .bind(instance_id)
        .bind(revision)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(DomainError::Conflict("workflow.error.concurrent"));
        }
        project(&mut tx, def, &calendar, instance_id, inst, effects).await?;
        self.audit.append(&mut tx, actor, Entry::success(audit_action, "wf_task", object_id, details)).await?;
        publish_effects(&mut tx, def, instance_id, inst, effects).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stops an instance (终止); for holders of `workflow.define`.
    pub async fn cancel(&self, caller: &Principal, actor: &AuditActor, instance_id: i64) -> DomainResult<()> {
        self.require(caller, actor, Permission::WorkflowDefine, "workflow.instance.cancel").await?;
        let Loaded { def_id, revision, mut inst, .. } = self.load(instance_id).await?;
        let def = self.load_definition(def_id).await?;
        let effects = inst.cancel(&def, now_millis()).map_err(engine_error)?;
        self.save(actor, &def, instance_id, revision, &inst, &effects, "workflow.instance.cancel", instance_id, json!({})).await
    }

    /// Lists tasks for the caller: to-do (held or claimable, by deadline) or done.
    pub async fn tasks(&self, caller: &Principal, list: TaskList) -> DomainResult<Vec<TaskRow>> {
        caller.require(Permission::WorkbenchUse)?;
        let (units, roles) = self.engine_keys(caller).await?;
        let base = "SELECT t.id, t.instance_id, i.title, d.name, t.node_id, t.name, t.status, t.assignee_id, u.display_name, \
                    t.created_at, t.due_on, t.cosign_of, t.opinion, t.closed_at \
                    FROM wf_tasks t JOIN wf_instances i ON i.id = t.instance_id JOIN wf_definitions d ON d.id = i.definition_id \
                    LEFT JOIN users u ON u.id = t.assignee_id";
        let rows = match list {
            TaskList::Todo => {
                let sql = format!(
                    "{base} WHERE t.status = 'open' AND (t.assignee_id = $1 OR (t.assignee_id IS NULL AND EXISTS (\
                     SELECT 1 FROM wf_task_candidates c WHERE c.task_id = t.id AND \
                     ((c.kind = 'unit' AND (c.value = $2 OR c.value = $3)) OR (c.kind = 'role' AND ({roles}))))))\
                     ORDER BY CASE WHEN t.due_on IS NULL THEN 1 ELSE 0 END, t.due_on, t.created_at, t.id",
                    roles = role_match(roles.len(), 4)
                );
                let mut q = sqlx::query(&sql).bind(caller.user_id).bind(&units[0]).bind(&units[1]);
                for r in &roles {
                    q = q.bind(r);
                }
                q.fetch_all(self.db.pool()).await?
            }
            TaskList::Done => {
                let sql = format!("{base} WHERE t.completed_by = $1 ORDER BY t.closed_at DESC, t.id DESC LIMIT 200");
                sqlx::query(&sql).bind(caller.user_id).fetch_all(self.db.pool()).await?
            }
        };
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        Ok(rows.iter().map(|r| task_row(r, &calendar, today, self.warn_days)).collect())
    }

    /// One instance with its history, for its participants and for `workflow.define` holders.
    pub async fn instance(&self, caller: &Principal, actor: &AuditActor, id: i64) -> DomainResult<InstanceView> {
        caller.require(Permission::WorkbenchUse)?;
        let row = sqlx::query(
            "SELECT i.id, i.title, i.business_key, d.name, d.version, i.definition_id, i.status, i.state, i.started_at, i.started_by \
             FROM wf_instances i JOIN wf_definitions d ON d.id = i.definition_id WHERE i.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(DomainError::NotFound("error.not_found"))?;
        let inst: Instance =
            serde_json::from_str(&row.get::<String, _>(7)).map_err(|e| DomainError::Internal(format!("instance {id} state: {e}")))?;
        let (units, roles) = self.engine_keys(caller).await?;
        let who = Actor { user_id: caller.user_id, units: &units, roles: &roles };
        let participant = inst.started_by == caller.user_id
            || inst
                .tasks
                .values()
                .any(|t| t.assignee == Some(caller.user_id) || t.completed_by == Some(caller.user_id) || inst.may_act(t.id, who));
        if !participant && !caller.has(Permission::WorkflowDefine) {
            self.deny(caller, actor, "workflow.instance.read", ("wf_instance", id), "not_participant").await;
            return Err(DomainError::NotFound("error.not_found"));
        }
        let def = self.load_definition(row.get(5)).await?;
        let base = "SELECT t.id, t.instance_id, i.title, d.name, t.node_id, t.name, t.status, t.assignee_id, u.display_name, \
                    t.created_at, t.due_on, t.cosign_of, t.opinion, t.closed_at \
                    FROM wf_tasks t JOIN wf_instances i ON i.id = t.instance_id JOIN wf_definitions d ON d.id = i.definition_id \
                    LEFT JOIN users u ON u.id = COALESCE(t.completed_by, t.assignee_id) WHERE t.instance_id = $1 ORDER BY t.task_no";
        let rows = sqlx::query(base).bind(id).fetch_all(self.db.pool()).await?;
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        let mut earlier: Vec<(String, String)> = Vec::new();
        for t in inst.tasks.values().filter(|t| t.status == TaskStatus::Completed && t.cosign_of.is_none()) {
            let n = &def.nodes[t.node];
            if !earlier.iter().any(|(id, _)| *id == n.id) {
                earlier.push((n.id.clone(), n.label().to_string()));
            }
        }
        Ok(InstanceView {
            id,
            title: row.get(1),
            business_key: row.get(2),
            process: format!("{} v{}", row.get::<String, _>(3), row.get::<i64, _>(4)),
            definition_id: row.get(5),
            status: row.get(6),
            variables: inst.variables.clone(),
            tasks: rows.iter().map(|r| task_row(r, &calendar, today, self.warn_days)).collect(),
            earlier_steps: earlier,
            started_at: row.get(8),
            started_by: row.get(9),
        })
    }

    // ---- timers and deadlines ----------------------------------------------------------------

    /// Fires boundary timers whose day has passed and moves tasks to warning or overdue,
    /// notifying through the outbox. Run by the `workflow.tick` job.
    pub async fn tick(&self, now: i64) -> DomainResult<TickReport> {
        let mut report = TickReport::default();
        let Some(today) = local_date(now) else { return Ok(report) };
        let today_text = date_text(today);
        let actor = AuditActor::system("workflow.tick");
        let due =
            sqlx::query("SELECT instance_id, timer_no FROM wf_timers WHERE due_on < $1 ORDER BY due_on, instance_id, timer_no LIMIT 500")
                .bind(&today_text)
                .fetch_all(self.db.pool())
                .await?;
        for r in due {
            let (instance_id, timer_no): (i64, i64) = (r.get(0), r.get(1));
            let Loaded { def_id, revision, mut inst, .. } = self.load(instance_id).await?;
            let def = self.load_definition(def_id).await?;
            let Ok(timer) = u32::try_from(timer_no) else { continue };
            match inst.fire_timer(&def, timer, now) {
                Ok(effects) => {
                    let details = json!({"instance_id": instance_id, "timer": timer_no});
                    match self.save(&actor, &def, instance_id, revision, &inst, &effects, "workflow.timer.fire", instance_id, details).await
                    {
                        Ok(()) => report.timers_fired += 1,
                        Err(DomainError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(_) => {
                    let mut tx = self.db.begin_write().await?;
                    sqlx::query("DELETE FROM wf_timers WHERE instance_id = $1 AND timer_no = $2")
                        .bind(instance_id)
                        .bind(timer_no)
                        .execute(tx.conn())
                        .await?;
                    tx.commit().await?;
                }
            }
        }
        let calendar = self.calendar.calendar().await?;
        let open = sqlx::query("SELECT id, instance_id, name, assignee_id, due_on, alert FROM wf_tasks WHERE status = 'open' AND due_on IS NOT NULL AND alert < 2")
            .fetch_all(self.db.pool())
            .await?;
        for r in open {
            let (id, instance_id, name, assignee, due, alert): (i64, i64, String, Option<i64>, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            let Some(due_date) = parse_date(&due) else { continue };
            let level = alert_level(&calendar, today, due_date, self.warn_days);
            if level <= alert {
                continue;
            }
            let topic = if level == 2 { "workflow.task.overdue" } else { "workflow.task.warning" };
            let mut tx = self.db.begin_write().await?;
            sqlx::query("UPDATE wf_tasks SET alert = $1 WHERE id = $2").bind(level).bind(id).execute(tx.conn()).await?;
            let payload = json!({"task_id": id, "instance_id": instance_id, "name": name, "assignee_id": assignee, "due_on": due});
            self.audit.append(&mut tx, &actor, Entry::success(topic, "wf_task", id, payload.clone())).await?;
            outbox::publish(&mut tx, topic, &payload).await?;
            tx.commit().await?;
            if level == 2 {
                report.overdue += 1;
            } else {
                report.warned += 1;
            }
        }
        Ok(report)
    }
}

/// The job kind of the timer and deadline sweep.
pub const TICK_JOB: &str = "workflow.tick";
/// How often the sweep runs.
pub const TICK_EVERY_MS: i64 = 60_000;

impl WorkflowService {
    /// Queues the sweep job unless one is already queued or running (called at start-up).
    pub async fn ensure_tick_scheduled(&self) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        let queued = sqlx::query("SELECT 1 FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')")
            .bind(TICK_JOB)
            .fetch_optional(tx.conn())
            .await?;
        if queued.is_none() {
            tongban_platform::jobs::enqueue(&mut tx, TICK_JOB, &json!({}), 3).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The job that runs [`WorkflowService::tick`] and queues its next run.
pub struct TickJob(pub WorkflowService);

#[async_trait::async_trait]
impl tongban_platform::jobs::JobHandler for TickJob {
    async fn run(&self, _job: &tongban_platform::jobs::Job) -> Result<(), String> {
        let now = now_millis();
        let report = self.0.tick(now).await.map_err(|e| e.to_string())?;
        if report != TickReport::default() {
            tracing::info!(?report, "workflow timers and deadlines");
        }
        let mut tx = self.0.db.begin_write().await.map_err(|e| e.to_string())?;
        tongban_platform::jobs::enqueue_at(&mut tx, TICK_JOB, &json!({}), 3, now + TICK_EVERY_MS).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }
}

/// 0 normal, 1 warning (≤ `warn_days` working days left), 2 overdue (past the due day).
fn alert_level(calendar: &Calendar, today: Date, due: Date, warn_days: i64) -> i64 {
    if today > due {
        2
    } else if calendar.working_days_between(today, due) <= warn_days {
        1
    } else {
        0
    }
}

fn role_match(n: usize, first: usize) -> String {
    if n == 0 {
        return "1 = 0".into();
    }
    (0..n).map(|i| format!("c.value = ${}", first + i)).collect::<Vec<_>>().join(" OR ")
}

fn summary_of(r: &sqlx::any::AnyRow) -> DefinitionSummary {
    DefinitionSummary { id: r.get(0), key: r.get(1), version: r.get(2), name: r.get(3), sm3: r.get(4), created_at: r.get(5) }
}

fn task_row(r: &sqlx::any::AnyRow, calendar: &Calendar, today: Option<Date>, warn_days: i64) -> TaskRow {
    let status: String = r.get(6);
    let due_on: Option<String> = r.get(10);
    let due = due_on.as_deref().and_then(parse_date);
    let (remaining, alert) = match (due, today, status.as_str()) {
        (Some(d), Some(t), "open") => {
            let rem = if t > d { -calendar.working_days_between(d, t) } else { calendar.working_days_between(t, d) };
            let alert = match alert_level(calendar, t, d, warn_days) {
                2 => "overdue",
                1 => "warning",
                _ => "normal",
            };
            (Some(rem), alert)
        }
        _ => (None, "normal"),
    };
    TaskRow {
        id: r.get(0),
        instance_id: r.get(1),
        title: r.get(2),
        process: r.get(3),
        node_id: r.get(4),
        name: r.get(5),
        status,
        assignee_id: r.get(7),
        assignee_name: r.get(8),
        created_at: r.get(9),
        due_on,
        remaining,
        alert,
        cosign: r.get::<Option<i64>, _>(11).is_some(),
        opinion: r.get(12),
        closed_at: r.get(13),
    }
}

fn state_json(inst: &Instance) -> DomainResult<String> {
    serde_json::to_string(inst).map_err(|e| DomainError::Internal(format!("serialising instance: {e}")))
}

/// Checks submitted data against the declared field types.
fn check_variables(def: &ProcessDefinition, vars: &Map<String, Value>) -> DomainResult<()> {
    if vars.len() > 200 {
        return Err(DomainError::invalid("variables", "error.too_long"));
    }
    for (k, v) in vars {
        if k.is_empty() || k.len() > 64 {
            return Err(DomainError::invalid("variables", "error.invalid_value"));
        }
        let ok = match def.fields.get(k) {
            None => !matches!(v, Value::Object(_) | Value::Array(_)),
            Some(FieldType::Number) => v.is_number() || v.is_null(),
            Some(FieldType::Boolean) => v.is_boolean() || v.is_null(),
            Some(FieldType::String) => v.is_string() || v.is_null(),
            Some(FieldType::Date) => v.is_null() || v.as_str().and_then(parse_date).is_some(),
        };
        if !ok {
            return Err(DomainError::invalid(&format!("variables.{k}"), "error.invalid_value"));
        }
    }
    Ok(())
}

fn steps_of(def: &ProcessDefinition) -> Vec<StepView> {
    let show = |c: &Candidate| match c {
        Candidate::Literal(s) => s.clone(),
        Candidate::Variable(v) => format!("${{{v}}}"),
    };
    def.nodes
        .iter()
        .map(|n| {
            let (kind, who, due) = match &n.kind {
                NodeKind::Start => ("start", Vec::new(), None),
                NodeKind::End => ("end", Vec::new(), None),
                NodeKind::UserTask(s) => {
                    let mut who: Vec<String> = s.candidate_units.iter().map(show).collect();
                    who.extend(s.candidate_roles.iter().map(show));
                    who.extend(s.assignee.iter().map(show));
                    ("user_task", who, s.due_working_days)
                }
                NodeKind::Parallel => ("parallel", Vec::new(), None),
                NodeKind::Exclusive { .. } => ("exclusive", Vec::new(), None),
                NodeKind::Inclusive { .. } => ("inclusive", Vec::new(), None),
                NodeKind::BoundaryTimer { working_days, .. } => ("timer", Vec::new(), Some(*working_days)),
            };
            let next = n
                .outgoing
                .iter()
                .map(|f| {
                    let flow = &def.flows[*f];
                    (flow.name.clone(), def.nodes[flow.target].label().to_string())
                })
                .collect();
            StepView { id: n.id.clone(), name: n.label().to_string(), kind, who, due_working_days: due, next }
        })
        .collect()
}

/// Writes the task and timer rows that the effects touched.
async fn project(
    tx: &mut WriteTx,
    def: &ProcessDefinition,
    cal: &Calendar,
    instance_id: i64,
    inst: &Instance,
    effects: &[Effect],
) -> DomainResult<()> {
    for e in effects {
        match *e {
            Effect::TaskCreated(no) => {
                let Some(t) = inst.tasks.get(&no) else { continue };
                let due =
                    t.due_working_days.and_then(|d| local_date(t.created_at).and_then(|day| cal.add_working_days(day, d))).map(date_text);
                let id: i64 = sqlx::query(
                    "INSERT INTO wf_tasks (instance_id, task_no, node_id, name, status, assignee_id, cosign_of, created_at, due_on, alert) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,0) RETURNING id",
                )
                .bind(instance_id)
                .bind(i64::from(no))
                .bind(&def.nodes[t.node].id)
                .bind(def.nodes[t.node].label())
                .bind(t.status.as_str())
                .bind(t.assignee)
                .bind(t.cosign_of.map(i64::from))
                .bind(t.created_at)
                .bind(due)
                .fetch_one(tx.conn())
                .await?
                .get(0);
                for (kind, values) in [("unit", &t.candidate_units), ("role", &t.candidate_roles)] {
                    let mut seen: Vec<&String> = Vec::new();
                    for v in values.iter() {
                        if seen.contains(&v) {
                            continue;
                        }
                        seen.push(v);
                        sqlx::query("INSERT INTO wf_task_candidates (task_id, kind, value) VALUES ($1,$2,$3)")
                            .bind(id)
                            .bind(kind)
                            .bind(v)
                            .execute(tx.conn())
                            .await?;
                    }
                }
            }
            Effect::TaskChanged(no) => {
                let Some(t) = inst.tasks.get(&no) else { continue };
                sqlx::query(
                    "UPDATE wf_tasks SET status = $1, assignee_id = $2, completed_by = $3, closed_at = $4, opinion = $5 \
                     WHERE instance_id = $6 AND task_no = $7",
                )
                .bind(t.status.as_str())
                .bind(t.assignee)
                .bind(t.completed_by)
                .bind(t.closed_at)
                .bind(&t.opinion)
                .bind(instance_id)
                .bind(i64::from(no))
                .execute(tx.conn())
                .await?;
            }
            Effect::TimerStarted(no) => {
                let Some(tm) = inst.timers.get(&no) else { continue };
                let Some(due) = local_date(tm.started_at).and_then(|d| cal.add_working_days(d, tm.working_days)) else { continue };
                sqlx::query("INSERT INTO wf_timers (instance_id, timer_no, due_on) VALUES ($1,$2,$3)")
                    .bind(instance_id)
                    .bind(i64::from(no))
                    .bind(date_text(due))
                    .execute(tx.conn())
                    .await?;
            }
            Effect::TimerCancelled(no) => {
                sqlx::query("DELETE FROM wf_timers WHERE instance_id = $1 AND timer_no = $2")
                    .bind(instance_id)
                    .bind(i64::from(no))
                    .execute(tx.conn())
                    .await?;
            }
            Effect::InstanceCompleted | Effect::InstanceCancelled => {}
        }
    }
    Ok(())
}

/// Outbox events for new tasks (to notify their holders or queues) and for the end.
async fn publish_effects(
    tx: &mut WriteTx,
    def: &ProcessDefinition,
    instance_id: i64,
    inst: &Instance,
    effects: &[Effect],
) -> DomainResult<()> {
    for e in effects {
        match *e {
            Effect::TaskCreated(no) => {
                let Some(t) = inst.tasks.get(&no) else { continue };
                let payload = json!({
                    "instance_id": instance_id, "task_no": no, "step": def.nodes[t.node].id, "name": def.nodes[t.node].label(),
                    "assignee_id": t.assignee, "candidate_units": t.candidate_units, "candidate_roles": t.candidate_roles,
                });
                outbox::publish(tx, "workflow.task.created", &payload).await?;
            }
            Effect::InstanceCompleted => {
                outbox::publish(tx, "workflow.instance.completed", &json!({"instance_id": instance_id, "process": def.key})).await?;
            }
            Effect::InstanceCancelled => {
                outbox::publish(tx, "workflow.instance.cancelled", &json!({"instance_id": instance_id, "process": def.key})).await?;
            }
            _ => {}
        }
    }
    Ok(())
}
