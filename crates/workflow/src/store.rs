//! The storage seam of the workflow slice: what the service needs persisted, as a trait, so that
//! use cases in `service.rs` never touch SQL. [`sql::SqlStore`] is the implementation on the
//! platform database (SQLite or PostgreSQL).

pub mod sql;

use async_trait::async_trait;
use serde_json::Value;
use tongban_audit::{Actor as AuditActor, Entry};
use tongban_calendar::Calendar;
use tongban_platform::error::DomainResult;

use crate::{
    Effect, Instance, ProcessDefinition,
    engine::TaskId,
    service::{DefinitionSummary, TaskRow},
};

/// An audit record to write with a change.
pub struct Record<'a> {
    /// Who acted.
    pub actor: &'a AuditActor,
    /// What is recorded; an empty `object_id` is filled with the new row's id on inserts.
    pub entry: Entry,
}

/// Everything one action writes, atomically: the instance's new state, the task and timer rows
/// its effects touched, the audit record and the outbox events.
pub struct Change<'a> {
    /// The instance's definition.
    pub def: &'a ProcessDefinition,
    /// The new state.
    pub inst: &'a Instance,
    /// What the engine reported.
    pub effects: &'a [Effect],
    /// For due dates of new tasks and timers.
    pub calendar: &'a Calendar,
    /// The audit record.
    pub record: Record<'a>,
    /// Outbox events besides those derived from the effects.
    pub events: Vec<(&'static str, Value)>,
}

/// A definition version to store.
pub struct NewDefinition<'a> {
    /// Process id.
    pub key: &'a str,
    /// Version.
    pub version: i64,
    /// Name.
    pub name: &'a str,
    /// The file.
    pub xml: &'a str,
    /// Its SM3 digest.
    pub sm3: &'a str,
    /// Uploader.
    pub created_by: i64,
    /// Upload time (ms).
    pub created_at: i64,
    /// The units the file names, resolved to ids at upload (JSON object: as written → id).
    pub unit_ids: &'a str,
}

/// An instance to create.
pub struct NewInstance<'a> {
    /// Definition row.
    pub definition_id: i64,
    /// Title.
    pub title: &'a str,
    /// Business key.
    pub business_key: &'a str,
}

/// A stored instance.
pub struct StoredInstance {
    /// Definition row.
    pub definition_id: i64,
    /// Definition name.
    pub process_name: String,
    /// Definition version.
    pub process_version: i64,
    /// Revision for optimistic locking.
    pub revision: i64,
    /// Title.
    pub title: String,
    /// Business key.
    pub business_key: String,
    /// Status as stored.
    pub status: String,
    /// The engine state.
    pub state: Instance,
}

/// A file attached to a task's opinion (意见附件).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attachment {
    /// Id.
    pub id: i64,
    /// The task row.
    pub task_id: i64,
    /// File name.
    pub file_name: String,
    /// Content type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// SM3 digest (the blob key).
    pub sm3: String,
    /// Uploader.
    pub uploaded_by: i64,
    /// When (ms).
    pub uploaded_at: i64,
}

/// An open task with a deadline, for the sweep.
#[derive(Debug, Clone)]
pub struct DeadlineRecord {
    /// Row id.
    pub id: i64,
    /// Instance.
    pub instance_id: i64,
    /// Step name.
    pub name: String,
    /// Holder.
    pub assignee_id: Option<i64>,
    /// Due date.
    pub due_on: String,
    /// 0 none, 1 warned, 2 overdue.
    pub alert: i64,
}

/// What the workflow service stores and queries.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// The newest version of a process: (row id, version, SM3 of its file).
    async fn latest_version(&self, key: &str) -> DomainResult<Option<(i64, i64, String)>>;
    /// Whether some version of `key` has exactly this SM3 digest.
    async fn has_version_with_digest(&self, key: &str, sm3: &str) -> DomainResult<bool>;
    /// Stores a definition version with its audit record and event; answers its row id. Fails
    /// with a conflict when the version already exists (a concurrent upload).
    async fn insert_definition(&self, d: &NewDefinition<'_>, record: Record<'_>) -> DomainResult<i64>;
    /// Every definition version, newest version of each key first.
    async fn definitions(&self) -> DomainResult<Vec<DefinitionSummary>>;
    /// One definition and its file.
    async fn definition(&self, id: i64) -> DomainResult<Option<(DefinitionSummary, String)>>;
    /// The units a definition names, as resolved at upload (JSON); `None` for versions stored
    /// before units were resolved at upload.
    async fn definition_unit_ids(&self, id: i64) -> DomainResult<Option<String>>;
    /// The ids of every unit whose id, name or region code is `key` (exact match).
    async fn units_matching(&self, key: &str) -> DomainResult<Vec<i64>>;
    /// Creates an instance inside the caller's transaction (a slice starting a process as part
    /// of its own change, e.g. accepting an application); answers its id.
    async fn insert_instance_in(&self, tx: &mut tongban_platform::WriteTx, new: &NewInstance<'_>, change: Change<'_>) -> DomainResult<i64>;
    /// Loads an instance.
    async fn load_instance(&self, id: i64) -> DomainResult<Option<StoredInstance>>;
    /// Writes a change if the instance is still at `expected_revision`; `false` when someone
    /// else changed it first (nothing is written then).
    async fn save_instance(&self, id: i64, expected_revision: i64, change: Change<'_>) -> DomainResult<bool>;
    /// [`Self::save_instance`] inside the caller's transaction (a slice's own change).
    async fn save_instance_in(
        &self,
        tx: &mut tongban_platform::WriteTx,
        id: i64,
        expected_revision: i64,
        change: Change<'_>,
    ) -> DomainResult<bool>;
    /// The instance and task number behind a task row id.
    async fn task_ref(&self, task_id: i64) -> DomainResult<Option<(i64, TaskId)>>;
    /// Codes and names of the roles a user holds.
    async fn role_keys(&self, user_id: i64) -> DomainResult<Vec<String>>;
    /// Whether the account exists and is enabled.
    async fn user_enabled(&self, user_id: i64) -> DomainResult<bool>;
    /// Open tasks held by the user or claimable through `units` / `roles`, by deadline, the
    /// window `rows` of them (only those of one instance when `rows.instance_id` is set). Rows
    /// come without `remaining` and with alert `normal`: the service works those out from the
    /// calendar.
    async fn todo(&self, user_id: i64, units: &[String], roles: &[String], rows: RowWindow) -> DomainResult<Vec<TaskRow>>;
    /// Tasks the user finished, newest first, the window `rows` of them.
    async fn done(&self, user_id: i64, rows: RowWindow) -> DomainResult<Vec<TaskRow>>;
    /// Every task of an instance, oldest first (with the doer's name for closed ones).
    async fn instance_tasks(&self, instance_id: i64) -> DomainResult<Vec<TaskRow>>;
    /// Timers due before `day` (YYYY-MM-DD): (instance id, timer number).
    async fn due_timers(&self, day: &str) -> DomainResult<Vec<(i64, i64)>>;
    /// Forgets a timer that can no longer fire.
    async fn drop_timer(&self, instance_id: i64, timer_no: i64) -> DomainResult<()>;
    /// Open tasks with a deadline not yet marked overdue.
    async fn open_deadlines(&self) -> DomainResult<Vec<DeadlineRecord>>;
    /// Marks a task warned (1) or overdue (2), with its audit record and outbox event.
    async fn set_alert(&self, task_id: i64, level: i64, record: Record<'_>, topic: &str, payload: &Value) -> DomainResult<()>;
    /// Every open task with the department holding it (the holder's unit, else the first
    /// candidate unit), for supervision.
    async fn open_tasks_by_unit(&self) -> DomainResult<Vec<(TaskRow, String)>>;
    /// Open tasks counted by (department, due date), for the supervision figures.
    async fn open_task_counts(&self) -> DomainResult<Vec<(String, Option<String>, i64)>>;
    /// Open tasks due on or before `due_by`, earliest first, with their department.
    async fn urgent_tasks(&self, due_by: &str, limit: i64) -> DomainResult<Vec<(TaskRow, String)>>;
    /// Records an urge (催办) of an open task with its audit record and notification event;
    /// `false` when the task is not open.
    async fn urge(&self, task_id: i64, by_user: i64, note: &str, record: Record<'_>) -> DomainResult<bool>;
    /// Records a file attached to an open task held by `by`, with its audit record; `false` when
    /// the task is not open or not held by `by`.
    async fn add_attachment(&self, task_id: i64, by: i64, file: &Attachment, record: Record<'_>) -> DomainResult<bool>;
    /// The files attached to the tasks of an instance.
    async fn attachments(&self, instance_id: i64) -> DomainResult<Vec<Attachment>>;
    /// Queues job `kind` now unless one is queued or running.
    async fn ensure_job(&self, kind: &str) -> DomainResult<()>;
    /// Queues job `kind` at `run_at` (ms).
    async fn queue_job_at(&self, kind: &str, run_at: i64) -> DomainResult<()>;
}

/// Which rows of a task list to read: `limit` rows after skipping `offset`; optionally only
/// those of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowWindow {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to read.
    pub limit: i64,
    /// Only this instance's tasks.
    pub instance_id: Option<i64>,
}
