//! [`WorkflowStore`] on the platform database: the only workflow code that touches SQL. Tables in
//! `0003_workflow.sql`: `wf_definitions`, `wf_instances` (engine state as JSON + revision),
//! `wf_tasks` and `wf_task_candidates` (the projection that to-do lists query), `wf_timers`.

use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::{Row, any::AnyRow};
use tongban_audit::AuditTrail;
use tongban_calendar::Calendar;
use tongban_platform::{Db, DomainError, WriteTx, clock::local_date, error::DomainResult, jobs, outbox};

use super::{Change, DeadlineRecord, NewDefinition, NewInstance, Record, RowWindow, StoredInstance, TaskRow, WorkflowStore};
use crate::{Effect, Instance, ProcessDefinition, engine::TaskId, service::DefinitionSummary};

/// The SQL store.
#[derive(Clone)]
pub struct SqlStore {
    db: Db,
    audit: AuditTrail,
}

impl SqlStore {
    /// A store on `db`, writing audit records to `audit`.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        SqlStore { db, audit }
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn date_text(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn state_json(inst: &Instance) -> DomainResult<String> {
    serde_json::to_string(inst).map_err(|e| DomainError::Internal(format!("serialising instance: {e}")))
}

fn summary_of(r: &AnyRow) -> DefinitionSummary {
    DefinitionSummary { id: r.get(0), key: r.get(1), version: r.get(2), name: r.get(3), sm3: r.get(4), created_at: r.get(5) }
}

const TASK_COLUMNS: &str = "SELECT t.id, t.instance_id, i.title, d.name, t.node_id, t.name, t.status, t.assignee_id, u.display_name, \
     t.created_at, t.due_on, t.cosign_of, t.opinion, t.closed_at \
     FROM wf_tasks t JOIN wf_instances i ON i.id = t.instance_id JOIN wf_definitions d ON d.id = i.definition_id";

fn task_row(r: &AnyRow) -> TaskRow {
    TaskRow {
        id: r.get(0),
        instance_id: r.get(1),
        title: r.get(2),
        process: r.get(3),
        node_id: r.get(4),
        name: r.get(5),
        status: r.get(6),
        assignee_id: r.get(7),
        assignee_name: r.get(8),
        created_at: r.get(9),
        due_on: r.get(10),
        remaining: None,
        alert: "normal",
        cosign: r.get::<Option<i64>, _>(11).is_some(),
        opinion: r.get(12),
        closed_at: r.get(13),
    }
}

impl SqlStore {
    async fn write_record(&self, tx: &mut WriteTx, record: Record<'_>, object_id: i64) -> DomainResult<()> {
        let mut entry = record.entry;
        if entry.object_id.is_empty() {
            entry.object_id = object_id.to_string();
        }
        self.audit.append(tx, record.actor, entry).await?;
        Ok(())
    }

    /// Projection, audit record and events of a change, inside `tx`.
    async fn apply(&self, tx: &mut WriteTx, instance_id: i64, change: Change<'_>) -> DomainResult<()> {
        project(tx, change.def, change.calendar, instance_id, change.inst, change.effects).await?;
        self.write_record(tx, change.record, instance_id).await?;
        publish_effects(tx, change.def, instance_id, change.inst, change.effects).await?;
        for (topic, payload) in &change.events {
            let mut payload = payload.clone();
            if let Some(o) = payload.as_object_mut() {
                o.insert("instance_id".into(), json!(instance_id));
            }
            outbox::publish(tx, topic, &payload).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl WorkflowStore for SqlStore {
    async fn latest_version(&self, key: &str) -> DomainResult<Option<(i64, i64, String)>> {
        let row = sqlx::query("SELECT id, version, sm3 FROM wf_definitions WHERE process_key = $1 ORDER BY version DESC LIMIT 1")
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    async fn has_version_with_digest(&self, key: &str, sm3: &str) -> DomainResult<bool> {
        let row = sqlx::query("SELECT 1 FROM wf_definitions WHERE process_key = $1 AND sm3 = $2 LIMIT 1")
            .bind(key)
            .bind(sm3)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    async fn insert_definition(&self, d: &NewDefinition<'_>, record: Record<'_>) -> DomainResult<i64> {
        let mut tx = self.db.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM wf_definitions WHERE process_key = $1 AND version = $2")
            .bind(d.key)
            .bind(d.version)
            .fetch_optional(tx.conn())
            .await?;
        if taken.is_some() {
            return Err(DomainError::Conflict("workflow.error.concurrent"));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO wf_definitions (process_key, version, name, xml, sm3, created_by, created_at, unit_ids) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
        )
        .bind(d.key)
        .bind(d.version)
        .bind(d.name)
        .bind(d.xml)
        .bind(d.sm3)
        .bind(d.created_by)
        .bind(d.created_at)
        .bind(d.unit_ids)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = record.entry.details.clone();
        self.write_record(&mut tx, record, id).await?;
        outbox::publish(&mut tx, "workflow.definition.uploaded", &details).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn definitions(&self) -> DomainResult<Vec<DefinitionSummary>> {
        let rows =
            sqlx::query("SELECT id, process_key, version, name, sm3, created_at FROM wf_definitions ORDER BY process_key, version DESC")
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.iter().map(summary_of).collect())
    }

    async fn definition(&self, id: i64) -> DomainResult<Option<(DefinitionSummary, String)>> {
        let row = sqlx::query("SELECT id, process_key, version, name, sm3, created_at, xml FROM wf_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| (summary_of(&r), r.get(6))))
    }

    async fn definition_unit_ids(&self, id: i64) -> DomainResult<Option<String>> {
        let row = sqlx::query("SELECT unit_ids FROM wf_definitions WHERE id = $1").bind(id).fetch_optional(self.db.pool()).await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    async fn units_matching(&self, key: &str) -> DomainResult<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM units WHERE name = $1 OR region_code = $1 OR CAST(id AS TEXT) = $1 ORDER BY id")
            .bind(key.trim())
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }

    async fn insert_instance_in(&self, tx: &mut WriteTx, new: &NewInstance<'_>, change: Change<'_>) -> DomainResult<i64> {
        let inst = change.inst;
        let id: i64 = sqlx::query(
            "INSERT INTO wf_instances (definition_id, business_key, title, status, state, revision, started_by, started_at, ended_at) \
             VALUES ($1,$2,$3,$4,$5,1,$6,$7,$8) RETURNING id",
        )
        .bind(new.definition_id)
        .bind(new.business_key)
        .bind(new.title)
        .bind(inst.status.as_str())
        .bind(state_json(inst)?)
        .bind(inst.started_by)
        .bind(inst.started_at)
        .bind(inst.ended_at)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        self.apply(tx, id, change).await?;
        Ok(id)
    }

    async fn load_instance(&self, id: i64) -> DomainResult<Option<StoredInstance>> {
        let row = sqlx::query(
            "SELECT i.definition_id, d.name, d.version, i.revision, i.title, i.business_key, i.status, i.state \
             FROM wf_instances i JOIN wf_definitions d ON d.id = i.definition_id WHERE i.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let state: Instance =
            serde_json::from_str(&r.get::<String, _>(7)).map_err(|e| DomainError::Internal(format!("instance {id} state: {e}")))?;
        Ok(Some(StoredInstance {
            definition_id: r.get(0),
            process_name: r.get(1),
            process_version: r.get(2),
            revision: r.get(3),
            title: r.get(4),
            business_key: r.get(5),
            status: r.get(6),
            state,
        }))
    }

    async fn save_instance(&self, id: i64, expected_revision: i64, change: Change<'_>) -> DomainResult<bool> {
        let mut tx = self.db.begin_write().await?;
        if !self.save_instance_in(&mut tx, id, expected_revision, change).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn save_instance_in(&self, tx: &mut WriteTx, id: i64, expected_revision: i64, change: Change<'_>) -> DomainResult<bool> {
        let inst = change.inst;
        let updated = sqlx::query(
            "UPDATE wf_instances SET state = $1, revision = revision + 1, status = $2, ended_at = $3 WHERE id = $4 AND revision = $5",
        )
        .bind(state_json(inst)?)
        .bind(inst.status.as_str())
        .bind(inst.ended_at)
        .bind(id)
        .bind(expected_revision)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if updated != 1 {
            return Ok(false);
        }
        self.apply(tx, id, change).await?;
        Ok(true)
    }

    async fn task_ref(&self, task_id: i64) -> DomainResult<Option<(i64, TaskId)>> {
        let row =
            sqlx::query("SELECT instance_id, task_no FROM wf_tasks WHERE id = $1").bind(task_id).fetch_optional(self.db.pool()).await?;
        Ok(row.and_then(|r| Some((r.get(0), TaskId::try_from(r.get::<i64, _>(1)).ok()?))))
    }

    async fn role_keys(&self, user_id: i64) -> DomainResult<Vec<String>> {
        let rows = sqlx::query("SELECT r.code, r.name FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1")
            .bind(user_id)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().flat_map(|r| [r.get::<String, _>(0), r.get::<String, _>(1)]).collect())
    }

    async fn user_enabled(&self, user_id: i64) -> DomainResult<bool> {
        let row = sqlx::query("SELECT enabled FROM users WHERE id = $1").bind(user_id).fetch_optional(self.db.pool()).await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) != 0))
    }

    async fn todo(&self, user_id: i64, units: &[String], roles: &[String], rows: RowWindow) -> DomainResult<Vec<TaskRow>> {
        // The candidate index (kind, value) finds queue tasks and the assignee index held ones,
        // so the cost follows the caller's tasks, not every open task.
        let keys: Vec<(&str, &String)> = units.iter().map(|u| ("unit", u)).chain(roles.iter().map(|r| ("role", r))).collect();
        let matches = if keys.is_empty() {
            "1 = 0".to_string()
        } else {
            (0..keys.len()).map(|i| format!("(c.kind = ${} AND c.value = ${})", 2 + 2 * i, 3 + 2 * i)).collect::<Vec<_>>().join(" OR ")
        };
        // Only whole numbers go into the SQL text; the instance filter applies to both halves.
        let (one_q, one) = match rows.instance_id {
            Some(id) => (format!(" AND q.instance_id = {id}"), format!(" AND instance_id = {id}")),
            None => (String::new(), String::new()),
        };
        let (limit, offset) = (rows.limit.max(0), rows.offset.max(0));
        // Narrow rows first (id, deadline), sorted and cut to the window, then their details.
        let sql = format!(
            "{TASK_COLUMNS} LEFT JOIN users u ON u.id = t.assignee_id WHERE t.id IN (SELECT id FROM (\
             SELECT q.id, q.due_on, q.created_at FROM wf_task_candidates c JOIN wf_tasks q ON q.id = c.task_id \
             WHERE ({matches}) AND q.status = 'open' AND q.assignee_id IS NULL{one_q} \
             UNION SELECT id, due_on, created_at FROM wf_tasks WHERE assignee_id = $1 AND status = 'open'{one}) AS narrow \
             ORDER BY CASE WHEN due_on IS NULL THEN 1 ELSE 0 END, due_on, created_at, id LIMIT {limit} OFFSET {offset}) \
             ORDER BY CASE WHEN t.due_on IS NULL THEN 1 ELSE 0 END, t.due_on, t.created_at, t.id"
        );
        let mut q = sqlx::query(&sql).bind(user_id);
        for (kind, value) in keys {
            q = q.bind(kind.to_string()).bind(value.clone());
        }
        Ok(q.fetch_all(self.db.pool()).await?.iter().map(task_row).collect())
    }

    async fn done(&self, user_id: i64, rows: RowWindow) -> DomainResult<Vec<TaskRow>> {
        let (limit, offset) = (rows.limit.max(0), rows.offset.max(0));
        let sql = format!(
            "{TASK_COLUMNS} LEFT JOIN users u ON u.id = t.completed_by WHERE t.completed_by = $1 AND t.status <> 'open' \
             ORDER BY t.closed_at DESC, t.id DESC LIMIT {limit} OFFSET {offset}"
        );
        Ok(sqlx::query(&sql).bind(user_id).fetch_all(self.db.pool()).await?.iter().map(task_row).collect())
    }

    async fn instance_tasks(&self, instance_id: i64) -> DomainResult<Vec<TaskRow>> {
        let sql = format!(
            "{TASK_COLUMNS} LEFT JOIN users u ON u.id = COALESCE(t.completed_by, t.assignee_id) WHERE t.instance_id = $1 ORDER BY t.task_no"
        );
        Ok(sqlx::query(&sql).bind(instance_id).fetch_all(self.db.pool()).await?.iter().map(task_row).collect())
    }

    async fn due_timers(&self, day: &str) -> DomainResult<Vec<(i64, i64)>> {
        let rows =
            sqlx::query("SELECT instance_id, timer_no FROM wf_timers WHERE due_on < $1 ORDER BY due_on, instance_id, timer_no LIMIT 500")
                .bind(day)
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn drop_timer(&self, instance_id: i64, timer_no: i64) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM wf_timers WHERE instance_id = $1 AND timer_no = $2")
            .bind(instance_id)
            .bind(timer_no)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_deadlines(&self) -> DomainResult<Vec<DeadlineRecord>> {
        let rows = sqlx::query(
            "SELECT id, instance_id, name, assignee_id, due_on, alert FROM wf_tasks WHERE status = 'open' AND due_on IS NOT NULL AND alert < 2",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadlineRecord {
                id: r.get(0),
                instance_id: r.get(1),
                name: r.get(2),
                assignee_id: r.get(3),
                due_on: r.get(4),
                alert: r.get(5),
            })
            .collect())
    }

    async fn set_alert(&self, task_id: i64, level: i64, record: Record<'_>, topic: &str, payload: &Value) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE wf_tasks SET alert = $1 WHERE id = $2").bind(level).bind(task_id).execute(tx.conn()).await?;
        self.write_record(&mut tx, record, task_id).await?;
        outbox::publish(&mut tx, topic, payload).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn open_tasks_by_unit(&self) -> DomainResult<Vec<(TaskRow, String)>> {
        let sql = format!(
            "{TASK_COLUMNS} LEFT JOIN users u ON u.id = t.assignee_id LEFT JOIN units hu ON hu.id = u.unit_id WHERE t.status = 'open' ORDER BY t.due_on, t.id"
        );
        let rows = sqlx::query(&sql).fetch_all(self.db.pool()).await?;
        let units: std::collections::HashMap<i64, String> = sqlx::query(
            "SELECT t.id, COALESCE(hu.name, t.queue_unit, '') FROM wf_tasks t LEFT JOIN users u ON u.id = t.assignee_id \
             LEFT JOIN units hu ON hu.id = u.unit_id WHERE t.status = 'open'",
        )
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
        .collect();
        Ok(rows
            .iter()
            .map(|r| {
                let row = task_row(r);
                let unit = units.get(&row.id).cloned().unwrap_or_default();
                (row, unit)
            })
            .collect())
    }

    async fn open_task_counts(&self) -> DomainResult<Vec<(String, Option<String>, i64)>> {
        let rows = sqlx::query(
            // Group on the covering index first, then name the few hundred groups' departments.
            "SELECT COALESCE(hu.name, g.queue_unit, '') AS dept, g.due_on, CAST(SUM(g.n) AS BIGINT) FROM \
             (SELECT assignee_id, queue_unit, due_on, COUNT(*) AS n FROM wf_tasks WHERE status = 'open' \
              GROUP BY assignee_id, queue_unit, due_on) g \
             LEFT JOIN users u ON u.id = g.assignee_id LEFT JOIN units hu ON hu.id = u.unit_id \
             GROUP BY COALESCE(hu.name, g.queue_unit, ''), g.due_on",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1), r.get::<i64, _>(2))).collect())
    }

    async fn urgent_tasks(&self, due_by: &str, limit: i64) -> DomainResult<Vec<(TaskRow, String)>> {
        let sql = format!(
            "{TASK_COLUMNS} LEFT JOIN users u ON u.id = t.assignee_id WHERE t.status = 'open' AND t.due_on <= $1 ORDER BY t.due_on, t.id LIMIT $2"
        );
        let rows: Vec<TaskRow> = sqlx::query(&sql).bind(due_by).bind(limit).fetch_all(self.db.pool()).await?.iter().map(task_row).collect();
        let ids = rows.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(",");
        let depts: std::collections::HashMap<i64, String> = if ids.is_empty() {
            Default::default()
        } else {
            sqlx::query(&format!(
                "SELECT t.id, COALESCE(hu.name, t.queue_unit, '') FROM wf_tasks t LEFT JOIN users u ON u.id = t.assignee_id \
                 LEFT JOIN units hu ON hu.id = u.unit_id WHERE t.id IN ({ids})"
            ))
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)))
            .collect()
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let d = depts.get(&r.id).cloned().unwrap_or_default();
                (r, d)
            })
            .collect())
    }

    async fn urge(&self, task_id: i64, by_user: i64, note: &str, record: Record<'_>) -> DomainResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let task = sqlx::query("SELECT assignee_id, name, instance_id FROM wf_tasks WHERE id = $1 AND status = 'open'")
            .bind(task_id)
            .fetch_optional(tx.conn())
            .await?;
        let Some(task) = task else { return Ok(false) };
        sqlx::query("INSERT INTO urges (task_id, by_user, at, note) VALUES ($1,$2,$3,$4)")
            .bind(task_id)
            .bind(by_user)
            .bind(tongban_platform::clock::now_millis())
            .bind(note)
            .execute(tx.conn())
            .await?;
        self.write_record(&mut tx, record, task_id).await?;
        let payload = json!({"task_id": task_id, "assignee_id": task.get::<Option<i64>, _>(0), "name": task.get::<String, _>(1), "instance_id": task.get::<i64, _>(2), "note": note});
        outbox::publish(&mut tx, "supervision.urge", &payload).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_attachment(&self, task_id: i64, by: i64, file: &super::Attachment, record: Record<'_>) -> DomainResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let held = sqlx::query("SELECT 1 FROM wf_tasks WHERE id = $1 AND status = 'open' AND assignee_id = $2")
            .bind(task_id)
            .bind(by)
            .fetch_optional(tx.conn())
            .await?;
        if held.is_none() {
            return Ok(false);
        }
        let id: i64 = sqlx::query(
            "INSERT INTO wf_task_attachments (task_id, file_name, content_type, size, sm3, uploaded_by, uploaded_at) VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id",
        )
        .bind(task_id)
        .bind(&file.file_name)
        .bind(&file.content_type)
        .bind(file.size)
        .bind(&file.sm3)
        .bind(by)
        .bind(file.uploaded_at)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        self.write_record(&mut tx, record, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn attachments(&self, instance_id: i64) -> DomainResult<Vec<super::Attachment>> {
        let rows = sqlx::query(
            "SELECT a.id, a.task_id, a.file_name, a.content_type, a.size, a.sm3, a.uploaded_by, a.uploaded_at FROM wf_task_attachments a \
             JOIN wf_tasks t ON t.id = a.task_id WHERE t.instance_id = $1 ORDER BY a.id",
        )
        .bind(instance_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| super::Attachment {
                id: r.get(0),
                task_id: r.get(1),
                file_name: r.get(2),
                content_type: r.get(3),
                size: r.get(4),
                sm3: r.get(5),
                uploaded_by: r.get(6),
                uploaded_at: r.get(7),
            })
            .collect())
    }

    async fn ensure_job(&self, kind: &str) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        let queued = sqlx::query("SELECT 1 FROM jobs WHERE kind = $1 AND status IN ('queued', 'running')")
            .bind(kind)
            .fetch_optional(tx.conn())
            .await?;
        if queued.is_none() {
            jobs::enqueue(&mut tx, kind, &json!({}), 3).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue_job_at(&self, kind: &str, run_at: i64) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        jobs::enqueue_at(&mut tx, kind, &json!({}), 3, run_at).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The name of the unit whose queue a task is in (candidates are unit ids).
async fn queue_unit_name(tx: &mut WriteTx, candidate: Option<&String>) -> Result<Option<String>, sqlx::Error> {
    let Some(c) = candidate else { return Ok(None) };
    let Ok(id) = c.parse::<i64>() else { return Ok(Some(c.clone())) };
    let row = sqlx::query("SELECT name FROM units WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?;
    Ok(Some(row.map(|r| r.get::<String, _>(0)).unwrap_or_else(|| c.clone())))
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
                    "INSERT INTO wf_tasks (instance_id, task_no, node_id, name, status, assignee_id, cosign_of, created_at, due_on, alert, queue_unit) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,0,$10) RETURNING id",
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
                .bind(queue_unit_name(tx, t.candidate_units.first()).await?)
                .fetch_one(tx.conn())
                .await?
                .get(0);
                for (kind, values) in [("unit", &t.candidate_units), ("role", &t.candidate_roles)] {
                    let mut seen: Vec<&String> = Vec::new();
                    for v in values.iter().filter(|v| !v.is_empty()) {
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
                // The deciding opinion (the last one given), for the result document's reasons.
                let last_opinion =
                    inst.tasks.values().filter(|t| t.completed_by.is_some()).max_by_key(|t| t.closed_at).and_then(|t| t.opinion.clone());
                let payload = json!({"instance_id": instance_id, "process": def.key, "variables": inst.variables, "last_opinion": last_opinion,
                        "has_decision": (0..def.nodes.len()).any(|n| def.decides(n))});
                outbox::publish(tx, "workflow.instance.completed", &payload).await?;
            }
            Effect::InstanceCancelled => {
                outbox::publish(tx, "workflow.instance.cancelled", &json!({"instance_id": instance_id, "process": def.key})).await?;
            }
            _ => {}
        }
    }
    Ok(())
}
