//! Signed checkpoints of the chain head (审计检查点), appended to a file outside the database
//! that can be shipped off the server. A line reads
//! `tongban-audit-checkpoint v1 seq=<n> hash=<hex> at=<ms> sig=<hex>`.

use std::io::Write;

use sqlx::Row;
use tongban_platform::{Db, clock::now_millis};

use crate::trail::AuditTrail;

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the head record.
    pub seq: i64,
    /// Hash of the head record.
    pub hash: String,
    /// When it was taken, UTC milliseconds.
    pub at: i64,
    /// SM2 signature over [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The signed message.
    pub fn message(seq: i64, hash: &str, at: i64) -> String {
        format!("tongban-audit-checkpoint|{seq}|{hash}|{at}")
    }

    fn to_line(&self) -> String {
        format!("tongban-audit-checkpoint v1 seq={} hash={} at={} sig={}\n", self.seq, self.hash, self.at, self.signature)
    }

    /// Parses one line; `None` when it is malformed.
    pub fn parse(line: &str) -> Option<Checkpoint> {
        let rest = line.trim().strip_prefix("tongban-audit-checkpoint v1 ")?;
        let mut seq = None;
        let mut hash = None;
        let mut at = None;
        let mut sig = None;
        for part in rest.split(' ') {
            let (k, v) = part.split_once('=')?;
            match k {
                "seq" => seq = v.parse().ok(),
                "hash" => hash = Some(v.to_string()),
                "at" => at = v.parse().ok(),
                "sig" => sig = Some(v.to_string()),
                _ => return None,
            }
        }
        Some(Checkpoint { seq: seq?, hash: hash?, at: at?, signature: sig? })
    }
}

/// Errors writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading the head failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Writing the file failed.
    #[error("checkpoint file: {0}")]
    Io(#[from] std::io::Error),
}

impl AuditTrail {
    /// Signs the current chain head and appends it to the checkpoint file, unless the head has
    /// not moved since the last checkpoint. Returns the checkpoint written, if any.
    pub async fn checkpoint(&self, db: &Db) -> Result<Option<Checkpoint>, CheckpointError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
        let (seq, hash): (i64, String) = (row.get(0), row.get(1));
        if seq == 0 {
            return Ok(None);
        }
        if let Some(last) = self.checkpoints()?.last()
            && last.seq == seq
            && last.hash == hash
        {
            return Ok(None);
        }
        let at = now_millis();
        let signature = self.signer.sign_hex(Checkpoint::message(seq, &hash, at).as_bytes());
        let cp = Checkpoint { seq, hash, at, signature };
        if let Some(dir) = self.checkpoint_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.checkpoint_path)?;
        f.write_all(cp.to_line().as_bytes())?;
        f.sync_data()?;
        Ok(Some(cp))
    }

    /// All checkpoints in the file, in order (malformed lines are returned by `verify` as problems).
    pub fn checkpoints(&self) -> std::io::Result<Vec<Checkpoint>> {
        Ok(self.checkpoint_lines()?.into_iter().filter_map(|(_, cp)| cp).collect())
    }

    pub(crate) fn checkpoint_lines(&self) -> std::io::Result<Vec<(usize, Option<Checkpoint>)>> {
        match std::fs::read_to_string(&self.checkpoint_path) {
            Ok(text) => {
                Ok(text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, Checkpoint::parse(l))).collect())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_lines_round_trip_and_reject_garbage() {
        let cp = Checkpoint { seq: 7, hash: "ab".into(), at: 9, signature: "cd".into() };
        assert_eq!(Checkpoint::parse(&cp.to_line()), Some(cp));
        assert_eq!(Checkpoint::parse("tongban-audit-checkpoint v1 seq=x hash=a at=1 sig=b"), None);
        assert_eq!(Checkpoint::parse("hello"), None);
    }
}
