//! Background jobs (后台任务): a table of work items that any number of instances claim
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; serialised writes on SQLite), retry with
//! exponential backoff, and give up on into the `dead` state (dead letter) after `max_attempts`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::Row;

use crate::{Db, DbKind, WriteTx, clock::now_millis};

/// How long a claimed job is reserved before another worker may take it over.
const LEASE_MILLIS: i64 = 5 * 60 * 1000;

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker.
    Running,
    /// Finished successfully.
    Done,
    /// Failed `max_attempts` times: kept for an operator to look at (dead letter).
    Dead,
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }
}

/// A claimed job handed to its handler.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// The handler's kind.
    pub kind: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// This is attempt number `attempt` (1-based).
    pub attempt: i64,
}

/// Code that performs one kind of job.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs the job. An error schedules a retry (or the dead state after the last attempt).
    async fn run(&self, job: &Job) -> Result<(), String>;
}

/// Delay before retry number `attempts` + 1: 2^attempts seconds, capped at one hour.
pub fn backoff_millis(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 12) as u32;
    (1000_i64 << exp).min(3_600_000)
}

/// Enqueues a job in the caller's transaction.
pub async fn enqueue(tx: &mut WriteTx, kind: &str, payload: &serde_json::Value, max_attempts: i64) -> Result<i64, sqlx::Error> {
    enqueue_at(tx, kind, payload, max_attempts, now_millis()).await
}

/// Enqueues a job that becomes ready at `run_at` (UTC ms), in the caller's transaction.
pub async fn enqueue_at(
    tx: &mut WriteTx,
    kind: &str,
    payload: &serde_json::Value,
    max_attempts: i64,
    run_at: i64,
) -> Result<i64, sqlx::Error> {
    let now = now_millis();
    let row = sqlx::query(
        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, 'queued', 0, $3, $4, $5, $5) RETURNING id",
    )
    .bind(kind)
    .bind(payload.to_string())
    .bind(max_attempts.max(1))
    .bind(run_at)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    Ok(row.get(0))
}

/// Outcome of one [`JobRunner::run_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Nothing was ready.
    Idle,
    /// The job succeeded.
    Done(i64),
    /// The job failed and will be retried.
    Retry(i64),
    /// The job failed for the last time.
    Dead(i64),
}

/// Claims and runs jobs with registered handlers.
#[derive(Clone)]
pub struct JobRunner {
    db: Db,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl JobRunner {
    /// A runner with no handlers.
    pub fn new(db: Db) -> Self {
        JobRunner { db, handlers: HashMap::new() }
    }

    /// Registers the handler for `kind`.
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_string(), handler);
    }

    async fn claim(&self) -> Result<Option<Job>, sqlx::Error> {
        let now = now_millis();
        let lock = match self.db.kind() {
            DbKind::Postgres => "FOR UPDATE SKIP LOCKED",
            DbKind::Sqlite => "",
        };
        let kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        if kinds.is_empty() {
            return Ok(None);
        }
        let kind_list = kinds.iter().map(|k| format!("'{}'", k.replace('\'', "''"))).collect::<Vec<_>>().join(",");
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
             WHERE id = (SELECT id FROM jobs WHERE kind IN ({kind_list}) AND \
               ((status = 'queued' AND run_at <= $1) OR (status = 'running' AND locked_until < $1)) \
               ORDER BY run_at, id LIMIT 1 {lock}) \
             RETURNING id, kind, payload, attempts"
        );
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(&sql).bind(now).bind(now + LEASE_MILLIS).fetch_optional(tx.conn()).await?;
        tx.commit().await?;
        Ok(row.map(|r| {
            let payload: String = r.get(2);
            Job {
                id: r.get(0),
                kind: r.get(1),
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                attempt: r.get(3),
            }
        }))
    }

    /// Claims one ready job and runs it.
    pub async fn run_once(&self) -> Result<RunOutcome, sqlx::Error> {
        let Some(job) = self.claim().await? else {
            return Ok(RunOutcome::Idle);
        };
        let result = match self.handlers.get(&job.kind) {
            Some(h) => h.run(&job).await,
            None => Err(format!("no handler for job kind {}", job.kind)),
        };
        let now = now_millis();
        let mut tx = self.db.begin_write().await?;
        let outcome = match result {
            Ok(()) => {
                sqlx::query("UPDATE jobs SET status = 'done', locked_until = NULL, updated_at = $2 WHERE id = $1")
                    .bind(job.id)
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
                RunOutcome::Done(job.id)
            }
            Err(reason) => {
                let max: i64 = sqlx::query("SELECT max_attempts FROM jobs WHERE id = $1").bind(job.id).fetch_one(tx.conn()).await?.get(0);
                let dead = job.attempt >= max;
                let (status, run_at) = if dead { ("dead", now) } else { ("queued", now + backoff_millis(job.attempt)) };
                sqlx::query(
                    "UPDATE jobs SET status = $2, run_at = $3, last_error = $4, locked_until = NULL, updated_at = $5 WHERE id = $1",
                )
                .bind(job.id)
                .bind(status)
                .bind(run_at)
                .bind(&reason)
                .bind(now)
                .execute(tx.conn())
                .await?;
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempt, dead, "job failed: {reason}");
                if dead { RunOutcome::Dead(job.id) } else { RunOutcome::Retry(job.id) }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Count of jobs per status, for /metrics.
pub async fn counts_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    Ok(sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Runs the outbox dispatcher and the job runner until `stop` turns true.
pub async fn run_background(dispatcher: crate::outbox::Dispatcher, runner: JobRunner, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let mut busy = false;
        match dispatcher.dispatch_once(100).await {
            Ok(n) => busy |= n > 0,
            Err(e) => tracing::error!("outbox dispatch: {e}"),
        }
        match runner.run_once().await {
            Ok(RunOutcome::Idle) => {}
            Ok(_) => busy = true,
            Err(e) => tracing::error!("job runner: {e}"),
        }
        if *stop.borrow() {
            return;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_millis;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        assert_eq!(backoff_millis(0), 1000);
        assert_eq!(backoff_millis(3), 8000);
        assert_eq!(backoff_millis(30), 3_600_000);
    }
}
