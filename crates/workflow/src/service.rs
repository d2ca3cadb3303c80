//! The workflow service (use cases): versioned definitions, starting instances, task actions,
//! to-do lists and the timer sweep. Storage is behind [`WorkflowStore`]; every change is written
//! as one [`Change`] (new state guarded by its revision, so of two concurrent actions on one task
//! exactly one wins, the task projection, the audit record and the outbox events).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
};

use serde::Serialize;
use serde_json::{Map, Value, json};
use time::Date;
use tongban_audit::{Actor as AuditActor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_calendar::{CalendarService, model::Calendar};
use tongban_platform::{
    Db, DomainError,
    clock::{local_date, now_millis},
    error::DomainResult,
};

use crate::{
    Actor, Completion, DefinitionError, Effect, EngineError, Instance, ProcessDefinition, TaskStatus,
    definition::{Candidate, DECISION_FIELD, FieldType, NodeKind},
    error::DefinitionErrorKind,
    parse::{MAX_BPMN_BYTES, parse_bpmn},
    store::{Change, NewDefinition, NewInstance, Record, RowWindow, StoredInstance, WorkflowStore, sql::SqlStore},
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// Element ids of the decision steps (决定环节), whose doer must grant or refuse.
    pub decision_steps: Vec<String>,
    /// Started (ms).
    pub started_at: i64,
    /// Who started it.
    pub started_by: i64,
    /// Whether the caller sees the instance only as a process administrator (`workflow.define`
    /// without taking part): its technical state (steps, holders, deadlines) without the case
    /// data — no variables, no opinions, no files.
    pub administrative: bool,
}

impl InstanceView {
    /// Whether the step with element id `node` is a decision step.
    pub fn decides(&self, node: &str) -> bool {
        self.decision_steps.iter().any(|d| d == node)
    }
}

/// Rows per page of a task list.
pub const TASKS_PER_PAGE: i64 = 200;

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

/// Open-task figures of one department.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DepartmentCounts {
    /// Department (the holder's unit, else the candidate unit).
    pub name: String,
    /// Open tasks.
    pub open: i64,
    /// In warning.
    pub warning: i64,
    /// Overdue.
    pub overdue: i64,
}

/// The supervision overview of open tasks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SupervisionOverview {
    /// By department, most overdue first.
    pub departments: Vec<DepartmentCounts>,
    /// The most urgent tasks with their department.
    pub urgent: Vec<(TaskRow, String)>,
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
    store: Arc<dyn WorkflowStore>,
    audit: AuditTrail,
    db: Db,
    calendar: CalendarService,
    definitions: Arc<RwLock<HashMap<i64, Arc<ProcessDefinition>>>>,
    warn_days: i64,
    blobs: Option<(tongban_platform::blobs::BlobStore, usize)>,
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

fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

const NOT_FOUND: DomainError = DomainError::NotFound("error.not_found");

impl WorkflowService {
    /// A service on the platform database, recording to `audit`, counting deadlines with `calendar`.
    pub fn new(db: Db, audit: AuditTrail, calendar: CalendarService) -> Self {
        let store = Arc::new(SqlStore::new(db.clone(), audit.clone()));
        WorkflowService { store, audit, db, calendar, definitions: Arc::default(), warn_days: DEFAULT_WARN_DAYS, blobs: None }
    }

    /// The same service storing opinion attachments in `blobs`, up to `limit` bytes each.
    pub fn with_blobs(mut self, blobs: tongban_platform::blobs::BlobStore, limit: usize) -> Self {
        self.blobs = Some((blobs, limit));
        self
    }

    /// Attaches a file to the opinion of a task the caller holds (意见附件): PDF, OFD, JPG or PNG,
    /// type sniffed from the content.
    pub async fn attach(&self, caller: &Principal, actor: &AuditActor, task_id: i64, file_name: &str, bytes: &[u8]) -> DomainResult<i64> {
        let Some((blobs, limit)) = &self.blobs else { return Err(DomainError::Internal("no blob store configured".into())) };
        let checked =
            tongban_platform::upload::check(file_name, bytes, *limit).map_err(|e| DomainError::invalid("attachment", e.message_key()))?;
        let sm3 = blobs.put(bytes).await.map_err(|e| DomainError::Internal(format!("storing attachment: {e}")))?;
        let file = crate::store::Attachment {
            id: 0,
            task_id,
            file_name: checked.file_name.clone(),
            content_type: checked.content_type.into(),
            size: bytes.len() as i64,
            sm3: sm3.clone(),
            uploaded_by: caller.user_id,
            uploaded_at: now_millis(),
        };
        let record = Record {
            actor,
            entry: Entry::success("workflow.task.attach", "wf_task", task_id, json!({"file": checked.file_name, "sm3": sm3})),
        };
        if self.store.add_attachment(task_id, caller.user_id, &file, record).await? {
            Ok(task_id)
        } else {
            self.deny(actor, "workflow.task.attach", ("wf_task", task_id), "not_holder").await;
            Err(DomainError::NotFound("error.not_found"))
        }
    }

    /// The files attached to an instance's opinions, for its participants (not for process
    /// administrators who take no part: the files are case data).
    pub async fn attachments(
        &self,
        caller: &Principal,
        actor: &AuditActor,
        instance_id: i64,
    ) -> DomainResult<Vec<crate::store::Attachment>> {
        if self.instance(caller, actor, instance_id).await?.administrative {
            self.deny(actor, "workflow.attachment.read", ("wf_instance", instance_id), "not_participant").await;
            return Err(NOT_FOUND);
        }
        self.store.attachments(instance_id).await
    }

    /// One attachment with its content, for the instance's participants.
    pub async fn attachment_file(
        &self,
        caller: &Principal,
        actor: &AuditActor,
        instance_id: i64,
        id: i64,
    ) -> DomainResult<(crate::store::Attachment, Vec<u8>)> {
        let a = self.attachments(caller, actor, instance_id).await?.into_iter().find(|a| a.id == id).ok_or(NOT_FOUND)?;
        let Some((blobs, _)) = &self.blobs else { return Err(DomainError::Internal("no blob store configured".into())) };
        let bytes = blobs.get(&a.sm3).await.map_err(|e| DomainError::Internal(format!("reading attachment: {e}")))?.ok_or(NOT_FOUND)?;
        Ok((a, bytes))
    }

    /// The same service warning `days` working days before a deadline.
    pub fn with_warn_days(mut self, days: i64) -> Self {
        self.warn_days = days.max(0);
        self
    }

    async fn deny(&self, actor: &AuditActor, action: &str, object: (&str, i64), reason: &str) {
        self.audit.record_denied(&self.db, actor, action, object.0, object.1, reason).await;
    }

    async fn require(&self, caller: &Principal, actor: &AuditActor, p: Permission, action: &str) -> DomainResult<()> {
        if caller.has(p) {
            return Ok(());
        }
        self.deny(actor, action, ("-", caller.user_id), "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    // ---- definitions -------------------------------------------------------------------------

    /// Uploads a BPMN file (流程定义上传): validated, then stored as the next version of its key.
    pub async fn upload(&self, caller: &Principal, actor: &AuditActor, xml: &str) -> DomainResult<DefinitionSummary> {
        self.require(caller, actor, Permission::WorkflowDefine, "workflow.definition.upload").await?;
        self.store_definition(caller.user_id, actor, xml).await
    }

    /// Deploys a process that a slice ships with (e.g. the documents slice's 发文 process) the
    /// first time this exact file is needed: a new tongban release's process becomes the latest
    /// version once; versions an administrator uploads after it take precedence.
    pub async fn ensure_builtin(&self, deployed_by: i64, actor: &AuditActor, xml: &str) -> DomainResult<()> {
        let def = parse_bpmn(xml).map_err(|e| DomainError::invalid_detail("file", e.message_key(), e.detail()))?;
        if self.store.has_version_with_digest(&def.key, &tongban_crypto::sm3_hex(xml.as_bytes())).await? {
            return Ok(());
        }
        match self.store_definition(deployed_by, actor, xml).await {
            Ok(_) | Err(DomainError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn store_definition(&self, created_by: i64, actor: &AuditActor, xml: &str) -> DomainResult<DefinitionSummary> {
        if xml.trim().is_empty() {
            return Err(DomainError::invalid("file", "error.required"));
        }
        if xml.len() > MAX_BPMN_BYTES {
            return Err(DomainError::invalid("file", "workflow.error.too_large"));
        }
        let mut def = parse_bpmn(xml).map_err(|e| DomainError::invalid_detail("file", e.message_key(), e.detail()))?;
        let unit_ids = self.resolve_units(&def, true).await?;
        apply_unit_ids(&mut def, &unit_ids);
        let unit_ids = serde_json::to_string(&unit_ids).map_err(|e| DomainError::Internal(e.to_string()))?;
        let sm3 = tongban_crypto::sm3_hex(xml.as_bytes());
        let latest = self.store.latest_version(&def.key).await?;
        if latest.as_ref().is_some_and(|(_, _, digest)| *digest == sm3) {
            return Err(DomainError::Conflict("workflow.error.same_as_latest"));
        }
        let version = latest.map(|(_, v, _)| v).unwrap_or(0) + 1;
        let now = now_millis();
        let new =
            NewDefinition { key: &def.key, version, name: &def.name, xml, sm3: &sm3, created_by, created_at: now, unit_ids: &unit_ids };
        let details = json!({"key": def.key, "version": version, "name": def.name, "sm3": sm3});
        let record = Record { actor, entry: Entry::success("workflow.definition.upload", "wf_definition", "", details) };
        let id = self.store.insert_definition(&new, record).await?;
        if let Ok(mut cache) = self.definitions.write() {
            cache.insert(id, Arc::new(def.clone()));
        }
        Ok(DefinitionSummary { id, key: def.key, version, name: def.name, sm3, created_at: now })
    }

    /// Every stored definition version, newest version of each key first.
    pub async fn definitions(&self, caller: &Principal) -> DomainResult<Vec<DefinitionSummary>> {
        caller.require(Permission::WorkbenchUse)?;
        self.store.definitions().await
    }

    /// One definition with its steps and diagram.
    pub async fn definition(&self, caller: &Principal, id: i64) -> DomainResult<DefinitionDetail> {
        caller.require(Permission::WorkbenchUse)?;
        let (summary, xml) = self.store.definition(id).await?.ok_or(NOT_FOUND)?;
        let def = self.load_definition(id).await?;
        // Steps show the units as the file names them, not their ids.
        let written: HashMap<String, String> =
            self.stored_unit_ids(id).await?.into_iter().map(|(name, unit)| (unit.to_string(), name)).collect();
        let mut steps = steps_of(&def);
        for who in steps.iter_mut().flat_map(|s| s.who.iter_mut()) {
            if let Some(name) = written.get(who.as_str()) {
                *who = name.clone();
            }
        }
        Ok(DefinitionDetail {
            diagram: crate::diagram::diagram(&xml, &def),
            summary,
            steps,
            fields: def.fields.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        })
    }

    /// The user-task steps of the newest version of a process, for service guides (办理流程):
    /// (element id, name, time limit in working days). Public information; empty when unknown.
    pub async fn process_steps(&self, key: &str) -> DomainResult<Vec<(String, String, Option<u32>)>> {
        let Some((id, _, _)) = self.store.latest_version(key).await? else { return Ok(Vec::new()) };
        let def = self.load_definition(id).await?;
        Ok(def
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::UserTask(spec) => Some((n.id.clone(), n.label().to_string(), spec.due_working_days)),
                _ => None,
            })
            .collect())
    }

    /// The uploaded XML of a definition (download).
    pub async fn definition_xml(&self, caller: &Principal, id: i64) -> DomainResult<String> {
        caller.require(Permission::WorkbenchUse)?;
        Ok(self.store.definition(id).await?.ok_or(NOT_FOUND)?.1)
    }

    async fn load_definition(&self, id: i64) -> DomainResult<Arc<ProcessDefinition>> {
        if let Some(d) = self.definitions.read().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(d);
        }
        let (_, xml) = self.store.definition(id).await?.ok_or(NOT_FOUND)?;
        let mut def = parse_bpmn(&xml).map_err(|e| DomainError::Internal(format!("stored definition {id} no longer parses: {e}")))?;
        let unit_ids = self.stored_unit_ids(id).await?;
        apply_unit_ids(&mut def, &unit_ids);
        let def = Arc::new(def);
        if let Ok(mut cache) = self.definitions.write() {
            cache.insert(id, def.clone());
        }
        Ok(def)
    }

    /// The units a definition's tasks name, as resolved at upload. A version stored before
    /// units were resolved at upload is resolved now, and a name several units share (or none
    /// has) then matches nobody rather than the wrong unit.
    async fn stored_unit_ids(&self, id: i64) -> DomainResult<BTreeMap<String, i64>> {
        match self.store.definition_unit_ids(id).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| DomainError::Internal(format!("unit ids of definition {id}: {e}"))),
            None => {
                let (_, xml) = self.store.definition(id).await?.ok_or(NOT_FOUND)?;
                let written =
                    parse_bpmn(&xml).map_err(|e| DomainError::Internal(format!("stored definition {id} no longer parses: {e}")))?;
                self.resolve_units(&written, false).await
            }
        }
    }

    /// Resolves every unit a task names (候选单位, by id, name or region code) to its unit id.
    /// `strict` (at upload) refuses a unit nobody has and a name several units share, naming the
    /// task and its line; otherwise those are left out.
    async fn resolve_units(&self, def: &ProcessDefinition, strict: bool) -> DomainResult<BTreeMap<String, i64>> {
        let mut found = BTreeMap::new();
        for node in &def.nodes {
            let NodeKind::UserTask(spec) = &node.kind else { continue };
            for c in &spec.candidate_units {
                let Candidate::Literal(written) = c else { continue };
                if found.contains_key(written) {
                    continue;
                }
                let refused = |kind: DefinitionErrorKind| {
                    let e = DefinitionError { element: node.id.clone(), line: node.line, kind };
                    DomainError::invalid_detail("file", e.message_key(), e.detail())
                };
                match self.store.units_matching(written).await?.as_slice() {
                    [id] => drop(found.insert(written.clone(), *id)),
                    _ if !strict => {}
                    [] => return Err(refused(DefinitionErrorKind::UnknownUnit(written.clone()))),
                    _ => return Err(refused(DefinitionErrorKind::AmbiguousUnit(written.clone()))),
                }
            }
        }
        Ok(found)
    }

    /// Replaces unit values in data (variables that tasks take their candidate units from, or
    /// lists of them) by unit ids, resolving names and region codes once; a unit nobody has or a
    /// name several units share is refused, naming the variable.
    async fn unit_values_to_ids(&self, def: &ProcessDefinition, variables: &mut Map<String, Value>) -> DomainResult<()> {
        for name in unit_variables(def) {
            let Some(value) = variables.get(&name) else { continue };
            let field = format!("variables.{name}");
            let items: Vec<Value> = match value {
                Value::Null => continue,
                Value::Array(items) => items.clone(),
                Value::String(text) if def.is_collection(&name) => {
                    text.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| Value::String(x.into())).collect()
                }
                other => vec![other.clone()],
            };
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                let key = match &item {
                    Value::String(s) => s.trim().to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(DomainError::invalid(&field, "error.invalid_value")),
                };
                match self.store.units_matching(&key).await?.as_slice() {
                    [id] => ids.push(Value::from(*id)),
                    [] => return Err(DomainError::invalid_detail(&field, "workflow.error.unknown_unit", key)),
                    _ => return Err(DomainError::invalid_detail(&field, "workflow.error.ambiguous_unit", key)),
                }
            }
            let value = if def.is_collection(&name) || ids.len() != 1 { Value::Array(ids) } else { ids.remove(0) };
            variables.insert(name, value);
        }
        Ok(())
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
        tongban_platform::text::check_name("title", title)?;
        tongban_platform::text::check_line("business_key", business_key)?;
        if business_key.chars().count() > 100 {
            return Err(DomainError::invalid("business_key", "error.too_long"));
        }
        let def_id = self.newest(key, "key").await?;
        let mut tx = self.db.begin_write().await?;
        let id = self.start_definition(&mut tx, def_id, caller.user_id, actor, title, business_key.trim(), variables).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The row id of the newest version of `key`; an unknown process names `field`.
    async fn newest(&self, key: &str, field: &str) -> DomainResult<i64> {
        let found = self.store.latest_version(key.trim()).await?;
        found.map(|(id, _, _)| id).ok_or_else(|| DomainError::invalid(field, "workflow.error.unknown_process"))
    }

    /// Starts the newest version of `key` inside the caller's transaction, for a slice that has
    /// authorised the action itself (e.g. a window clerk accepting an application starts its
    /// approval process). `started_by` is recorded as the starter.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_in(
        &self,
        tx: &mut tongban_platform::WriteTx,
        started_by: i64,
        actor: &AuditActor,
        key: &str,
        title: &str,
        business_key: &str,
        variables: Map<String, Value>,
    ) -> DomainResult<i64> {
        let def_id = self.newest(key, "process_key").await?;
        self.start_definition(tx, def_id, started_by, actor, title, business_key, variables).await
    }

    /// Starts definition `def_id` in `tx`: the instance, its first tasks, audit record and events.
    #[allow(clippy::too_many_arguments)]
    async fn start_definition(
        &self,
        tx: &mut tongban_platform::WriteTx,
        def_id: i64,
        started_by: i64,
        actor: &AuditActor,
        title: &str,
        business_key: &str,
        variables: Map<String, Value>,
    ) -> DomainResult<i64> {
        let def = self.load_definition(def_id).await?;
        check_variables(&def, &variables)?;
        let mut variables = variables;
        self.unit_values_to_ids(&def, &mut variables).await?;
        let (inst, effects) = Instance::start(&def, variables, started_by, now_millis()).map_err(engine_error)?;
        let calendar = self.calendar.calendar().await?;
        let details = json!({"process": def.key, "definition_id": def_id, "title": title, "business_key": business_key});
        let change = Change {
            def: &def,
            inst: &inst,
            effects: &effects,
            calendar: &calendar,
            record: Record { actor, entry: Entry::success("workflow.instance.start", "wf_instance", "", details) },
            events: vec![("workflow.instance.started", json!({"process": def.key}))],
        };
        self.store.insert_instance_in(tx, &NewInstance { definition_id: def_id, title, business_key }, change).await
    }

    async fn load(&self, id: i64) -> DomainResult<StoredInstance> {
        let mut stored = self.store.load_instance(id).await?.ok_or(NOT_FOUND)?;
        // Tasks created before queues held unit ids name their units as the file did: they get
        // the ids their definition resolves those names to, and a name that no longer resolves
        // to one unit matches nobody.
        let by_name = |u: &String| u.parse::<i64>().is_err() && !u.starts_with("unresolved:");
        if stored.state.tasks.values().any(|t| t.candidate_units.iter().any(by_name)) {
            let unit_ids = self.stored_unit_ids(stored.definition_id).await?;
            for unit in stored.state.tasks.values_mut().flat_map(|t| t.candidate_units.iter_mut()).filter(|u| by_name(u)) {
                *unit = unit_ids.get(unit.as_str()).map(i64::to_string).unwrap_or_else(|| format!("unresolved:{unit}"));
            }
        }
        Ok(stored)
    }

    /// The unit key (the unit's id: never its name, which another unit may share) and role keys
    /// (code and name) the engine matches candidates with.
    async fn engine_keys(&self, caller: &Principal) -> DomainResult<(Vec<String>, Vec<String>)> {
        let units = vec![caller.unit_id.to_string()];
        Ok((units, self.store.role_keys(caller.user_id).await?))
    }

    /// Acts on a task (签收, 办理, 退回, 撤回, 转办, 加签). The actor must hold the task (or be a
    /// candidate, to claim); the task must still be open. Of two concurrent actions, one wins and
    /// the other gets a conflict.
    pub async fn act(&self, caller: &Principal, actor: &AuditActor, task_id: i64, action: TaskAction) -> DomainResult<()> {
        let audit_action = format!("workflow.task.{}", action.name());
        if !caller.has(Permission::WorkbenchUse) {
            self.deny(actor, &audit_action, ("wf_task", task_id), "missing_permission").await;
            return Err(DomainError::Forbidden("error.forbidden"));
        }
        let (instance_id, task_no) = self.store.task_ref(task_id).await?.ok_or(NOT_FOUND)?;
        let StoredInstance { definition_id, revision, title, state: mut inst, .. } = self.load(instance_id).await?;
        let def = self.load_definition(definition_id).await?;
        let (units, roles) = self.engine_keys(caller).await?;
        let who = Actor { user_id: caller.user_id, units: &units, roles: &roles };
        let visible = inst
            .tasks
            .get(&task_no)
            .is_some_and(|t| t.assignee == Some(caller.user_id) || t.completed_by == Some(caller.user_id) || inst.may_act(task_no, who));
        if !visible {
            self.deny(actor, &audit_action, ("wf_task", task_id), "not_candidate").await;
            return Err(NOT_FOUND);
        }
        let now = now_millis();
        let mut details = json!({"instance_id": instance_id, "task": task_no, "title": title});
        let result = match &action {
            TaskAction::Claim => inst.claim(&def, task_no, who, now),
            TaskAction::Complete { opinion, variables } => {
                check_variables(&def, variables)?;
                let decides = inst.tasks.get(&task_no).is_some_and(|t| t.cosign_of.is_none() && def.decides(t.node));
                check_decision(decides, variables)?;
                let mut variables = variables.clone();
                self.unit_values_to_ids(&def, &mut variables).await?;
                let opinion = opinion.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(String::from);
                if let Some(o) = &opinion {
                    tongban_platform::text::check_multiline("opinion", o)?;
                }
                if opinion.as_ref().is_some_and(|o| o.chars().count() > 2000) {
                    return Err(DomainError::invalid("opinion", "error.too_long"));
                }
                details["opinion"] = json!(opinion);
                inst.complete(&def, task_no, who, Completion { opinion, variables }, now)
            }
            TaskAction::SendBack { target, reason } => {
                details["target"] = json!(target);
                inst.send_back(&def, task_no, who, target, reason.clone().filter(|r| !r.trim().is_empty()), now)
            }
            TaskAction::Withdraw => inst.withdraw(&def, task_no, who, now),
            TaskAction::Transfer { to_user } | TaskAction::AddCosigner { user: to_user } => {
                if !self.store.user_enabled(*to_user).await? {
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
                self.deny(actor, &audit_action, ("wf_task", task_id), "not_holder").await;
                return Err(engine_error(EngineError::NotAllowed));
            }
            Err(e) => return Err(engine_error(e)),
        };
        let entry = Entry::success(&audit_action, "wf_task", task_id, details);
        self.save(actor, &def, instance_id, revision, &inst, &effects, entry).await
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
        entry: Entry,
    ) -> DomainResult<()> {
        let calendar = self.calendar.calendar().await?;
        let change = Change { def, inst, effects, calendar: &calendar, record: Record { actor, entry }, events: Vec::new() };
        if self.store.save_instance(instance_id, revision, change).await? {
            Ok(())
        } else {
            Err(DomainError::Conflict("workflow.error.concurrent"))
        }
    }

    /// Stops an instance (终止); for holders of `workflow.define`.
    pub async fn cancel(&self, caller: &Principal, actor: &AuditActor, instance_id: i64) -> DomainResult<()> {
        self.require(caller, actor, Permission::WorkflowDefine, "workflow.instance.cancel").await?;
        let mut tx = self.db.begin_write().await?;
        self.cancel_in(&mut tx, actor, instance_id, "workflow.instance.cancel").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stops an instance inside a slice's own transaction, for a slice that has checked that its
    /// caller may (e.g. the author recalls a document from review, 撤回送审); `reason` is audited.
    pub async fn cancel_in(
        &self,
        tx: &mut tongban_platform::WriteTx,
        actor: &AuditActor,
        instance_id: i64,
        reason: &str,
    ) -> DomainResult<()> {
        let StoredInstance { definition_id, revision, state: mut inst, .. } = self.load(instance_id).await?;
        let def = self.load_definition(definition_id).await?;
        let effects = inst.cancel(&def, now_millis()).map_err(engine_error)?;
        let calendar = self.calendar.calendar().await?;
        let entry = Entry::success("workflow.instance.cancel", "wf_instance", instance_id, json!({"reason": reason}));
        let change =
            Change { def: &def, inst: &inst, effects: &effects, calendar: &calendar, record: Record { actor, entry }, events: Vec::new() };
        if self.store.save_instance_in(tx, instance_id, revision, change).await? {
            Ok(())
        } else {
            Err(DomainError::Conflict("workflow.error.concurrent"))
        }
    }

    /// Lists tasks for the caller: to-do (held or claimable, by deadline) or done.
    pub async fn tasks(&self, caller: &Principal, list: TaskList) -> DomainResult<Vec<TaskRow>> {
        Ok(self.tasks_page(caller, list, 1).await?.0)
    }

    /// Page `page` (from 1, [`TASKS_PER_PAGE`] rows) of the caller's to-do or done list, and
    /// whether another page follows.
    pub async fn tasks_page(&self, caller: &Principal, list: TaskList, page: u32) -> DomainResult<(Vec<TaskRow>, bool)> {
        caller.require(Permission::WorkbenchUse)?;
        let offset = i64::from(page.max(1) - 1) * TASKS_PER_PAGE;
        // One row more than a page tells whether there is a next one, without counting them all.
        let window = RowWindow { offset, limit: TASKS_PER_PAGE + 1, instance_id: None };
        let mut records = match list {
            TaskList::Todo => {
                let (units, roles) = self.engine_keys(caller).await?;
                self.store.todo(caller.user_id, &units, &roles, window).await?
            }
            TaskList::Done => self.store.done(caller.user_id, window).await?,
        };
        let more = records.len() as i64 > TASKS_PER_PAGE;
        records.truncate(TASKS_PER_PAGE as usize);
        Ok((self.with_deadlines(records).await?, more))
    }

    /// The open tasks of one instance that the caller holds or may claim, however long their
    /// to-do list is.
    pub async fn instance_todo(&self, caller: &Principal, instance_id: i64) -> DomainResult<Vec<TaskRow>> {
        caller.require(Permission::WorkbenchUse)?;
        let (units, roles) = self.engine_keys(caller).await?;
        let window = RowWindow { offset: 0, limit: 1000, instance_id: Some(instance_id) };
        let records = self.store.todo(caller.user_id, &units, &roles, window).await?;
        self.with_deadlines(records).await
    }

    async fn with_deadlines(&self, records: Vec<TaskRow>) -> DomainResult<Vec<TaskRow>> {
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        Ok(records.into_iter().map(|r| with_deadline(r, &calendar, today, self.warn_days)).collect())
    }

    /// Whether the caller takes part in the instance: started it, holds or held one of its tasks,
    /// or may act on an open one (its unit or role is a candidate). Participants read the case
    /// data the instance carries; nothing is recorded here (the caller decides what a refusal means).
    pub async fn is_participant(&self, caller: &Principal, id: i64) -> DomainResult<bool> {
        let stored = self.load(id).await?;
        self.participates(caller, &stored.state).await
    }

    async fn participates(&self, caller: &Principal, inst: &Instance) -> DomainResult<bool> {
        let (units, roles) = self.engine_keys(caller).await?;
        let who = Actor { user_id: caller.user_id, units: &units, roles: &roles };
        Ok(inst.started_by == caller.user_id
            || inst
                .tasks
                .values()
                .any(|t| t.assignee == Some(caller.user_id) || t.completed_by == Some(caller.user_id) || inst.may_act(t.id, who)))
    }

    /// One instance with its history. Participants see all of it; holders of `workflow.define`
    /// who take no part see its technical state only ([`InstanceView::administrative`]): defining
    /// processes does not imply reading the personal data that cases carry.
    pub async fn instance(&self, caller: &Principal, actor: &AuditActor, id: i64) -> DomainResult<InstanceView> {
        caller.require(Permission::WorkbenchUse)?;
        let stored = self.load(id).await?;
        let inst = &stored.state;
        let participant = self.participates(caller, inst).await?;
        if !participant && !caller.has(Permission::WorkflowDefine) {
            self.deny(actor, "workflow.instance.read", ("wf_instance", id), "not_participant").await;
            return Err(NOT_FOUND);
        }
        let def = self.load_definition(stored.definition_id).await?;
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        let mut earlier: Vec<(String, String)> = Vec::new();
        for t in inst.tasks.values().filter(|t| t.status == TaskStatus::Completed && t.cosign_of.is_none()) {
            let n = &def.nodes[t.node];
            if !earlier.iter().any(|(id, _)| *id == n.id) {
                earlier.push((n.id.clone(), n.label().to_string()));
            }
        }
        let administrative = !participant;
        let tasks = self
            .store
            .instance_tasks(id)
            .await?
            .into_iter()
            .map(|r| with_deadline(r, &calendar, today, self.warn_days))
            .map(|r| if administrative { TaskRow { opinion: None, ..r } } else { r })
            .collect();
        Ok(InstanceView {
            id,
            title: stored.title,
            business_key: stored.business_key,
            process: format!("{} v{}", stored.process_name, stored.process_version),
            definition_id: stored.definition_id,
            status: stored.status,
            variables: if administrative { Map::new() } else { inst.variables.clone() },
            tasks,
            earlier_steps: earlier,
            decision_steps: (0..def.nodes.len()).filter(|n| def.decides(*n)).map(|n| def.nodes[n].id.clone()).collect(),
            started_at: inst.started_at,
            started_by: inst.started_by,
            administrative,
        })
    }

    // ---- supervision (电子监察) ------------------------------------------------------------------

    /// Every open task with its department and deadline colour (`supervision.read`).
    pub async fn supervised_tasks(&self, caller: &Principal, actor: &AuditActor) -> DomainResult<Vec<(TaskRow, String)>> {
        self.require(caller, actor, Permission::SupervisionRead, "supervision.read").await?;
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        Ok(self
            .store
            .open_tasks_by_unit()
            .await?
            .into_iter()
            .map(|(r, u)| (with_deadline(r, &calendar, today, self.warn_days), u))
            .collect())
    }

    /// The supervision overview (`supervision.read`): per department the open, warning and
    /// overdue counts, and the most urgent tasks (overdue or in warning), at most `limit`.
    pub async fn supervision_overview(&self, caller: &Principal, actor: &AuditActor, limit: i64) -> DomainResult<SupervisionOverview> {
        self.require(caller, actor, Permission::SupervisionRead, "supervision.read").await?;
        let calendar = self.calendar.calendar().await?;
        let today = local_date(now_millis());
        let mut departments: Vec<DepartmentCounts> = Vec::new();
        for (dept, due, n) in self.store.open_task_counts().await? {
            let alert = match (due.as_deref().and_then(parse_date), today) {
                (Some(d), Some(t)) => alert_level(&calendar, t, d, self.warn_days),
                _ => 0,
            };
            let i = match departments.iter().position(|d| d.name == dept) {
                Some(i) => i,
                None => {
                    departments.push(DepartmentCounts { name: dept.clone(), ..DepartmentCounts::default() });
                    departments.len() - 1
                }
            };
            departments[i].open += n;
            match alert {
                2 => departments[i].overdue += n,
                1 => departments[i].warning += n,
                _ => {}
            }
        }
        departments.sort_by(|a, b| b.overdue.cmp(&a.overdue).then(b.warning.cmp(&a.warning)).then(a.name.cmp(&b.name)));
        let due_by = today
            .and_then(|t| calendar.add_working_days(t, u32::try_from(self.warn_days).unwrap_or(0)))
            .map(crate::store::sql::date_text)
            .unwrap_or_default();
        let urgent = self
            .store
            .urgent_tasks(&due_by, limit)
            .await?
            .into_iter()
            .map(|(r, u)| (with_deadline(r, &calendar, today, self.warn_days), u))
            .collect();
        Ok(SupervisionOverview { departments, urgent })
    }

    /// Urges the holder of an open task (催办): recorded, audited and sent as a notification event.
    pub async fn urge(&self, caller: &Principal, actor: &AuditActor, task_id: i64, note: &str) -> DomainResult<()> {
        self.require(caller, actor, Permission::SupervisionRead, "supervision.urge").await?;
        let note = note.trim();
        tongban_platform::text::check_multiline("note", note)?;
        if note.chars().count() > 500 {
            return Err(DomainError::invalid("note", "error.too_long"));
        }
        let note = if note.is_empty() { "请抓紧办理" } else { note };
        let record = Record { actor, entry: Entry::success("supervision.urge", "wf_task", task_id, json!({"note": note})) };
        if self.store.urge(task_id, caller.user_id, note, record).await? {
            Ok(())
        } else {
            Err(DomainError::Conflict("workflow.error.task_closed"))
        }
    }

    // ---- timers and deadlines ----------------------------------------------------------------

    /// Fires boundary timers whose day has passed and moves tasks to warning or overdue,
    /// notifying through the outbox. Run by the `workflow.tick` job.
    pub async fn tick(&self, now: i64) -> DomainResult<TickReport> {
        let mut report = TickReport::default();
        let Some(today) = local_date(now) else { return Ok(report) };
        let system = AuditActor::system("workflow.tick");
        for (instance_id, timer_no) in self.store.due_timers(&crate::store::sql::date_text(today)).await? {
            let StoredInstance { definition_id, revision, state: mut inst, .. } = self.load(instance_id).await?;
            let def = self.load_definition(definition_id).await?;
            let fired = u32::try_from(timer_no).ok().map(|t| inst.fire_timer(&def, t, now));
            match fired {
                Some(Ok(effects)) => {
                    let entry = Entry::success("workflow.timer.fire", "wf_instance", instance_id, json!({"timer": timer_no}));
                    match self.save(&system, &def, instance_id, revision, &inst, &effects, entry).await {
                        Ok(()) => report.timers_fired += 1,
                        Err(DomainError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                _ => self.store.drop_timer(instance_id, timer_no).await?,
            }
        }
        let calendar = self.calendar.calendar().await?;
        for d in self.store.open_deadlines().await? {
            let Some(due) = parse_date(&d.due_on) else { continue };
            let level = alert_level(&calendar, today, due, self.warn_days);
            if level <= d.alert {
                continue;
            }
            let topic = if level == 2 { "workflow.task.overdue" } else { "workflow.task.warning" };
            let payload =
                json!({"task_id": d.id, "instance_id": d.instance_id, "name": d.name, "assignee_id": d.assignee_id, "due_on": d.due_on});
            let record = Record { actor: &system, entry: Entry::success(topic, "wf_task", d.id, payload.clone()) };
            self.store.set_alert(d.id, level, record, topic, &payload).await?;
            if level == 2 {
                report.overdue += 1;
            } else {
                report.warned += 1;
            }
        }
        Ok(report)
    }

    /// Queues the sweep job unless one is already queued or running (called at start-up).
    pub async fn ensure_tick_scheduled(&self) -> DomainResult<()> {
        self.store.ensure_job(TICK_JOB).await
    }
}

/// The job kind of the timer and deadline sweep.
pub const TICK_JOB: &str = "workflow.tick";
/// How often the sweep runs.
pub const TICK_EVERY_MS: i64 = 60_000;

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
        self.0.store.queue_job_at(TICK_JOB, now + TICK_EVERY_MS).await.map_err(|e| e.to_string())
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

/// Fills in the working days left and the alert colour of an open task.
fn with_deadline(mut row: TaskRow, calendar: &Calendar, today: Option<Date>, warn_days: i64) -> TaskRow {
    let due = row.due_on.as_deref().and_then(parse_date);
    if let (Some(d), Some(t), "open") = (due, today, row.status.as_str()) {
        row.remaining = Some(if t > d { -calendar.working_days_between(d, t) } else { calendar.working_days_between(t, d) });
        row.alert = match alert_level(calendar, t, d, warn_days) {
            2 => "overdue",
            1 => "warning",
            _ => "normal",
        };
    }
    row
}

/// A decision step (决定环节) needs an explicit choice, and no other step may make it: a
/// reviewer's opinion cannot set the lead's decision, and a decision is never taken by default.
fn check_decision(decides: bool, vars: &Map<String, Value>) -> DomainResult<()> {
    match (decides, vars.get(DECISION_FIELD)) {
        (true, Some(Value::Bool(_))) | (false, None) => Ok(()),
        (true, _) => Err(DomainError::invalid(DECISION_FIELD, "workflow.error.decision_required")),
        (false, Some(_)) => Err(DomainError::invalid(&format!("variables.{DECISION_FIELD}"), "workflow.error.not_decision_step")),
    }
}

/// Puts the ids of resolved units in place of the names, codes or ids a file wrote; a unit that
/// did not resolve matches no unit at all.
fn apply_unit_ids(def: &mut ProcessDefinition, unit_ids: &BTreeMap<String, i64>) {
    for node in def.nodes.iter_mut() {
        let NodeKind::UserTask(spec) = &mut node.kind else { continue };
        for c in spec.candidate_units.iter_mut() {
            if let Candidate::Literal(written) = c {
                *written = unit_ids.get(written.as_str()).map(i64::to_string).unwrap_or_else(|| format!("unresolved:{written}"));
            }
        }
    }
}

/// The variables tasks take their candidate units from, and the lists those are elements of.
fn unit_variables(def: &ProcessDefinition) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for node in &def.nodes {
        let NodeKind::UserTask(spec) = &node.kind else { continue };
        for c in &spec.candidate_units {
            let Candidate::Variable(v) = c else { continue };
            match &spec.multi_instance {
                Some(mi) if mi.element_variable == *v => drop(names.insert(mi.collection.clone())),
                _ => drop(names.insert(v.clone())),
            }
        }
    }
    names
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
            None if def.is_collection(k) => match v {
                Value::Array(items) => items.len() <= 200 && items.iter().all(|i| i.is_string() || i.is_number()),
                other => !other.is_object(),
            },
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
