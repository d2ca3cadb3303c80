//! Signed checkpoints of the chain head (审计检查点), appended to a file outside the database
//! and to every configured sink (a mirror file, a syslog collector; see [`crate::sinks`]). A line
//! reads `tongban-audit-checkpoint v1 seq=<n> hash=<hex> at=<ms> sig=<hex>`.

use std::{io::Write, path::Path};

use serde::Serialize;
use sqlx::Row;
use tongban_platform::{Db, clock::now_millis};

use crate::{
    sinks::{CheckpointStatus, SinkKind, SinkState, SinkWrite, local_hostname, syslog_message},
    trail::AuditTrail,
};

/// One signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    /// The line as written to the files (with its newline).
    pub fn to_line(&self) -> String {
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
    /// Signs the current chain head and writes it to the checkpoint file and every other sink,
    /// unless the head has not moved since the last checkpoint in the file. A sink that fails is
    /// logged and shown on the auditor's page; a failing primary file fails the checkpoint (after
    /// the other sinks were tried). Returns the checkpoint written, if any.
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
        let primary = append_line(&self.checkpoint_path, &cp);
        let mut writes = vec![write_outcome(SinkKind::Primary, &self.checkpoint_path.display().to_string(), &cp, &primary)];
        if let Some(mirror) = &self.sinks.mirror {
            writes.push(write_outcome(SinkKind::Mirror, &mirror.display().to_string(), &cp, &append_line(mirror, &cp)));
        }
        if let Some(target) = &self.sinks.syslog {
            let sent = target.send(&syslog_message(&cp, &local_hostname(), std::process::id())).await;
            writes.push(write_outcome(SinkKind::Syslog, &target.url(), &cp, &sent));
        }
        for w in writes.iter().filter(|w| !w.error.is_empty()) {
            tracing::error!(sink = w.kind.as_str(), target = %w.target, seq = w.seq, "audit checkpoint not written: {}", w.error);
        }
        if let Ok(mut last) = self.last_writes.lock() {
            *last = writes;
        }
        primary?;
        Ok(Some(cp))
    }

    /// All checkpoints in the primary file, in order (malformed lines are returned by `verify` as problems).
    pub fn checkpoints(&self) -> std::io::Result<Vec<Checkpoint>> {
        Ok(checkpoint_lines(&self.checkpoint_path)?.into_iter().filter_map(|(_, cp)| cp).collect())
    }

    /// The file sinks, primary first: what `verify` reads.
    pub(crate) fn checkpoint_files(&self) -> Vec<(SinkKind, &Path)> {
        let mut files = vec![(SinkKind::Primary, self.checkpoint_path.as_path())];
        if let Some(m) = &self.sinks.mirror {
            files.push((SinkKind::Mirror, m.as_path()));
        }
        files
    }

    /// The latest validly signed checkpoint in any file sink, and which sinks hold it (for the
    /// auditor's page).
    pub fn checkpoint_status(&self) -> CheckpointStatus {
        type FileCheckpoints<'a> = (SinkKind, &'a Path, Result<Vec<Checkpoint>, String>);
        let per_file: Vec<FileCheckpoints> = self
            .checkpoint_files()
            .into_iter()
            .map(|(kind, path)| {
                let cps = checkpoint_lines(path)
                    .map(|lines| lines.into_iter().filter_map(|(_, c)| c).filter(|c| self.signature_valid(c)).collect())
                    .map_err(|e| e.to_string());
                (kind, path, cps)
            })
            .collect();
        let latest = per_file.iter().filter_map(|(_, _, cps)| cps.as_ref().ok()).flatten().max_by_key(|c| (c.seq, c.at)).cloned();
        let last_writes = self.last_writes.lock().map(|w| w.clone()).unwrap_or_default();
        let last_error = |kind: SinkKind| last_writes.iter().find(|w| w.kind == kind).map(|w| w.error.clone()).unwrap_or_default();
        let mut sinks: Vec<SinkState> = per_file
            .iter()
            .map(|(kind, path, cps)| SinkState {
                kind: *kind,
                target: path.display().to_string(),
                holds_latest: Some(match (cps, &latest) {
                    (Ok(cps), Some(l)) => cps.iter().any(|c| c == l),
                    _ => false,
                }),
                last_error: match cps {
                    Err(e) => e.clone(),
                    Ok(_) => last_error(*kind),
                },
            })
            .collect();
        if let Some(target) = &self.sinks.syslog {
            let sent = last_writes.iter().find(|w| w.kind == SinkKind::Syslog);
            sinks.push(SinkState {
                kind: SinkKind::Syslog,
                target: target.url(),
                holds_latest: sent.map(|w| w.error.is_empty() && latest.as_ref().is_some_and(|l| l.seq == w.seq)),
                last_error: sent.map(|w| w.error.clone()).unwrap_or_default(),
            });
        }
        CheckpointStatus { latest, sinks }
    }

    pub(crate) fn signature_valid(&self, c: &Checkpoint) -> bool {
        self.signer.verify_hex(Checkpoint::message(c.seq, &c.hash, c.at).as_bytes(), &c.signature)
    }
}

fn write_outcome<E: std::fmt::Display>(kind: SinkKind, target: &str, cp: &Checkpoint, result: &Result<(), E>) -> SinkWrite {
    SinkWrite { kind, target: target.to_string(), seq: cp.seq, error: result.as_ref().err().map(|e| e.to_string()).unwrap_or_default() }
}

/// Appends the checkpoint's line to a file (made with its directory if missing) and syncs it.
fn append_line(path: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(cp.to_line().as_bytes())?;
    f.sync_data()
}

/// A checkpoint file's lines: line number and the checkpoint (`None`: malformed).
pub(crate) type CheckpointLines = Vec<(usize, Option<Checkpoint>)>;

/// The non-empty lines of a checkpoint file with their line numbers, parsed (`None`: malformed).
/// A missing file has no lines.
pub(crate) fn checkpoint_lines(path: &Path) -> std::io::Result<CheckpointLines> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            Ok(text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, Checkpoint::parse(l))).collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
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
