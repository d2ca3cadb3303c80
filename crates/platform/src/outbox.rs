//! The transactional outbox (事务性发件箱). A use case calls [`publish`] inside its write
//! transaction, so an event exists exactly when the state change it describes was committed.
//! The [`Dispatcher`] later hands each event to every interested [`OutboxHandler`] inside a
//! transaction that also records the delivery, so a handler's database effects (typically
//! enqueuing a job) happen once per event, even across restarts and with several instances.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;

use crate::{Db, WriteTx, clock::now_millis};

/// One event as stored in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Sequence id of the event.
    pub id: i64,
    /// Topic such as `identity.user.created`.
    pub topic: String,
    /// JSON payload.
    pub payload: serde_json::Value,
}

/// Appends an event in the caller's transaction.
pub async fn publish(tx: &mut WriteTx, topic: &str, payload: &serde_json::Value) -> Result<i64, sqlx::Error> {
    let now = now_millis();
    let row = sqlx::query("INSERT INTO outbox (topic, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $3) RETURNING id")
        .bind(topic)
        .bind(payload.to_string())
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
    Ok(row.get(0))
}

/// Something that reacts to outbox events, inside the delivering transaction.
#[async_trait]
pub trait OutboxHandler: Send + Sync {
    /// A stable name, recorded with each delivery.
    fn name(&self) -> &'static str;
    /// Whether this handler wants events of `topic`.
    fn accepts(&self, topic: &str) -> bool;
    /// Handles one event. Errors roll the delivery back; it is retried with backoff.
    async fn handle(&self, tx: &mut WriteTx, event: &OutboxEvent) -> Result<(), String>;
}

/// Delivers pending outbox events to handlers.
#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    handlers: Vec<Arc<dyn OutboxHandler>>,
}

impl Dispatcher {
    /// A dispatcher with the given handlers.
    pub fn new(db: Db, handlers: Vec<Arc<dyn OutboxHandler>>) -> Self {
        Dispatcher { db, handlers }
    }

    /// Delivers up to `batch` pending events; returns how many were delivered.
    pub async fn dispatch_once(&self, batch: i64) -> Result<usize, sqlx::Error> {
        let now = now_millis();
        let ids: Vec<i64> = sqlx::query("SELECT id FROM outbox WHERE dispatched_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $2")
            .bind(now)
            .bind(batch)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut delivered = 0;
        for id in ids {
            match self.deliver(id).await {
                Ok(true) => delivered += 1,
                Ok(false) => {}
                Err(reason) => self.record_failure(id, &reason).await?,
            }
        }
        Ok(delivered)
    }

    /// Delivers one event in one transaction. `Ok(false)` when another worker already did.
    async fn deliver(&self, id: i64) -> Result<bool, String> {
        let mut tx = self.db.begin_write().await.map_err(|e| e.to_string())?;
        // Claiming by update takes the row lock on PostgreSQL; a second instance waits and then
        // sees `dispatched_at` set.
        let claimed = sqlx::query("UPDATE outbox SET dispatched_at = $2 WHERE id = $1 AND dispatched_at IS NULL RETURNING topic, payload")
            .bind(id)
            .bind(now_millis())
            .fetch_optional(tx.conn())
            .await
            .map_err(|e| e.to_string())?;
        let Some(row) = claimed else { return Ok(false) };
        let payload: String = row.get(1);
        let event = OutboxEvent { id, topic: row.get(0), payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null) };
        for handler in self.handlers.iter().filter(|h| h.accepts(&event.topic)) {
            handler.handle(&mut tx, &event).await?;
            sqlx::query("INSERT INTO outbox_deliveries (event_id, handler, delivered_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(handler.name())
                .bind(now_millis())
                .execute(tx.conn())
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(true)
    }

    async fn record_failure(&self, id: i64, reason: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let attempts: i64 = sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1 RETURNING attempts")
            .bind(id)
            .bind(reason)
            .fetch_one(tx.conn())
            .await?
            .get(0);
        sqlx::query("UPDATE outbox SET next_attempt_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_millis() + crate::jobs::backoff_millis(attempts))
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        tracing::warn!(event = id, attempts, "outbox delivery failed: {reason}");
        Ok(())
    }
}

/// Number of events not yet delivered.
pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query("SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL").fetch_one(db.pool()).await?.get(0))
}
