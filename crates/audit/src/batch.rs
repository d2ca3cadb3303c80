//! Group commit for audit-only events (审计批量提交): when an action writes nothing but its audit
//! record (a client-credentials token, say), concurrent records share one transaction. Each
//! caller still waits until its record is committed, so nothing is answered before it is on disk.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tongban_platform::Db;

use crate::{Actor, AuditTrail, Entry};

/// Most records in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<(), String>>;

/// Appends audit-only records in shared transactions.
#[derive(Clone)]
pub struct AuditBatcher {
    db: Db,
    trail: AuditTrail,
    sender: Arc<OnceLock<mpsc::Sender<(Actor, Entry, Reply)>>>,
}

impl AuditBatcher {
    /// A batcher writing to `db` through `trail`; its writer task starts on first use.
    pub fn new(db: Db, trail: AuditTrail) -> Self {
        AuditBatcher { db, trail, sender: Arc::new(OnceLock::new()) }
    }

    fn sender(&self) -> &mpsc::Sender<(Actor, Entry, Reply)> {
        self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(write_batches(self.db.clone(), self.trail.clone(), rx));
            tx
        })
    }

    /// Appends one record and waits for its transaction to commit.
    pub async fn append(&self, actor: Actor, entry: Entry) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.sender().send((actor, entry, reply)).await.map_err(|_| "the audit writer stopped".to_string())?;
        done.await.map_err(|_| "the audit writer stopped".to_string())?
    }
}

async fn write_batches(db: Db, trail: AuditTrail, mut rx: mpsc::Receiver<(Actor, Entry, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let result = write(&db, &trail, &batch).await.map_err(|e| e.to_string());
        for (_, _, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

async fn write(db: &Db, trail: &AuditTrail, batch: &[(Actor, Entry, Reply)]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    for (actor, entry, _) in batch {
        trail.append(&mut tx, actor, entry.clone()).await?;
    }
    tx.commit().await
}
