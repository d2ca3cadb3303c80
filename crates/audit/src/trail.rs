//! Appending to the trail inside the caller's transaction.

use std::path::PathBuf;

use sqlx::Row;
use tongban_crypto::{AuditSigner, hmac_sm3_hex, sm3_hex};
use tongban_platform::{Db, WriteTx, clock::now_millis};

use crate::{
    model::{Actor, AuditRecord, Entry, redact},
    sinks::{CheckpointSinks, LastWrites},
};

/// The audit trail: appends records and writes signed checkpoints.
#[derive(Clone)]
pub struct AuditTrail {
    pub(crate) signer: AuditSigner,
    pub(crate) checkpoint_path: PathBuf,
    pub(crate) sinks: CheckpointSinks,
    pub(crate) last_writes: LastWrites,
}

impl AuditTrail {
    /// A trail that signs with `signer` and checkpoints into `checkpoint_path`.
    pub fn new(signer: AuditSigner, checkpoint_path: PathBuf) -> Self {
        AuditTrail { signer, checkpoint_path, sinks: CheckpointSinks::default(), last_writes: Default::default() }
    }

    /// The same trail, also writing every checkpoint to `sinks`.
    pub fn with_sinks(mut self, sinks: CheckpointSinks) -> Self {
        self.sinks = sinks;
        self
    }

    /// Appends one record in `tx`. The chain head row is updated first, which serialises
    /// concurrent appenders (row lock on PostgreSQL, the write lock on SQLite).
    pub async fn append(&self, tx: &mut WriteTx, actor: &Actor, entry: Entry) -> Result<i64, sqlx::Error> {
        let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash").fetch_one(tx.conn()).await?;
        let mut record = AuditRecord {
            seq: head.get(0),
            at: now_millis(),
            actor_id: actor.user_id,
            actor_name: truncate(&actor.name, 128),
            actor_unit: truncate(&actor.unit, 128),
            ip: truncate(&actor.ip, 64),
            user_agent: truncate(&actor.user_agent, 256),
            action: entry.action,
            object_type: entry.object_type,
            object_id: entry.object_id,
            result: entry.outcome.as_str().into(),
            details: redact(&entry.details).to_string(),
            prev_hash: head.get(1),
            hash: String::new(),
            mac: String::new(),
        };
        record.hash = sm3_hex(&record.canonical());
        record.mac = hmac_sm3_hex(self.signer.mac_key(), record.hash.as_bytes());
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor_id, actor_name, actor_unit, ip, user_agent, action, object_type, \
             object_id, result, details, prev_hash, hash, mac) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
        )
        .bind(record.seq)
        .bind(record.at)
        .bind(record.actor_id)
        .bind(&record.actor_name)
        .bind(&record.actor_unit)
        .bind(&record.ip)
        .bind(&record.user_agent)
        .bind(&record.action)
        .bind(&record.object_type)
        .bind(&record.object_id)
        .bind(&record.result)
        .bind(&record.details)
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .bind(&record.mac)
        .execute(tx.conn())
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&record.hash).execute(tx.conn()).await?;
        Ok(record.seq)
    }

    /// Records one entry in its own transaction (for events with no other state change, such
    /// as a refused permission check).
    pub async fn record(&self, db: &Db, actor: &Actor, entry: Entry) -> Result<i64, sqlx::Error> {
        let mut tx = db.begin_write().await?;
        let seq = self.append(&mut tx, actor, entry).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Records a refused action (outcome `denied`) in its own transaction. A failure to record
    /// is logged, not returned: the caller is refusing anyway.
    pub async fn record_denied(&self, db: &Db, actor: &Actor, action: &str, object_type: &str, object_id: impl ToString, reason: &str) {
        let entry = Entry::success(action, object_type, object_id, serde_json::json!({"reason": reason}))
            .with_outcome(crate::model::Outcome::Denied);
        if let Err(e) = self.record(db, actor, entry).await {
            tracing::error!("audit of a refused {action} failed: {e}");
        }
    }
}

/// How long one read record stands for further reads of the same object by the same actor.
pub const READ_RECORD_WINDOW_MS: i64 = 60 * 60 * 1000;

impl AuditTrail {
    /// Records a read of personal data (个人信息查阅): who, which object, and the purpose (the
    /// route that read it, from [`Actor::purpose`]). To keep the trail readable, one record per
    /// actor and object stands for an hour ([`READ_RECORD_WINDOW_MS`]) of further reads.
    ///
    /// The check is made against the trail itself, so it holds across every instance behind a
    /// load balancer: a cheap look first, then — only when a record is due — a second look under
    /// the chain-head lock that every append takes, so two concurrent reads write one record.
    /// Answers whether a record was written. A failure is returned: personal data is not handed
    /// out unrecorded.
    pub async fn record_read(
        &self,
        db: &Db,
        actor: &Actor,
        action: &str,
        object_type: &str,
        object_id: impl ToString,
    ) -> Result<bool, sqlx::Error> {
        let object_id = object_id.to_string();
        let since = now_millis() - READ_RECORD_WINDOW_MS;
        let recent = "SELECT COUNT(*) FROM audit_log WHERE at > $1 AND action = $2 AND object_type = $3 AND object_id = $4 AND actor_name = $5 \
                      AND result = 'success'";
        let seen = |n: i64| n > 0;
        let n: i64 = sqlx::query_scalar(recent)
            .bind(since)
            .bind(action)
            .bind(object_type)
            .bind(&object_id)
            .bind(truncate(&actor.name, 128))
            .fetch_one(db.pool())
            .await?;
        if seen(n) {
            return Ok(false);
        }
        let mut tx = db.begin_write().await?;
        // Takes the chain-head lock before looking again.
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(tx.conn()).await?;
        let n: i64 = sqlx::query_scalar(recent)
            .bind(since)
            .bind(action)
            .bind(object_type)
            .bind(&object_id)
            .bind(truncate(&actor.name, 128))
            .fetch_one(tx.conn())
            .await?;
        if seen(n) {
            return Ok(false);
        }
        let entry = Entry::success(action, object_type, &object_id, serde_json::json!({"purpose": actor.purpose}));
        self.append(&mut tx, actor, entry).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
