//! Walking the chain (审计链校验): `tongban audit verify`.

use serde::Serialize;
use sqlx::Row;
use tongban_crypto::{hmac_sm3_hex, sm3_hex};
use tongban_platform::Db;

use crate::{
    checkpoint::{Checkpoint, CheckpointLines, checkpoint_lines},
    model::AuditRecord,
    sinks::SinkKind,
    trail::AuditTrail,
};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is wrong at one place in the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProblemKind {
    /// The record's content does not match its hash: it was edited.
    Edited,
    /// The hash is consistent but the MAC is not: the chain was recomputed without the key.
    Recomputed,
    /// The record does not link to its predecessor: something was inserted or removed before it.
    BrokenLink,
    /// A sequence number is missing: the record was deleted.
    Missing,
    /// Records that a signed checkpoint covers are gone from the end.
    Truncated,
    /// The chain differs from what a signed checkpoint recorded.
    CheckpointMismatch,
    /// A checkpoint line is malformed or its signature is invalid, or a checkpoint file cannot be read.
    BadCheckpoint,
    /// A checkpoint that another sink holds is missing from a checkpoint file (its lines were
    /// removed, or writing to that file failed).
    CheckpointMissing,
    /// The head row disagrees with the last record.
    HeadMismatch,
}

/// One problem, naming the first affected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first record affected (for checkpoint problems, the checkpoint's line number).
    pub seq: i64,
    /// What is wrong.
    pub kind: ProblemKind,
    /// A sentence for the operator.
    pub message: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Records read.
    pub records: i64,
    /// Valid checkpoints compared (one that several files hold counts once).
    pub checkpoints: i64,
    /// The checkpoint files read, primary first.
    pub checkpoint_files: Vec<String>,
    /// Everything found, first problem first.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the trail is intact.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl AuditTrail {
    /// Verifies every record's hash, link and MAC, the sequence, the head row and the signed
    /// checkpoints of every checkpoint file (the primary file and the mirror): records a
    /// checkpoint in any file covers must be there, and a file must hold every checkpoint the
    /// other files hold from its first checkpoint on.
    pub async fn verify(&self, db: &Db) -> Result<VerifyReport, sqlx::Error> {
        let mut problems = Vec::new();
        let mut records = 0;
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS.to_string();
        let mut hashes: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        let files: Vec<(SinkKind, String, std::io::Result<CheckpointLines>)> =
            self.checkpoint_files().into_iter().map(|(kind, path)| (kind, path.display().to_string(), checkpoint_lines(path))).collect();
        let wanted: std::collections::HashSet<i64> =
            files.iter().filter_map(|(_, _, l)| l.as_ref().ok()).flatten().filter_map(|(_, c)| c.as_ref().map(|c| c.seq)).collect();
        let mut after = 0i64;
        loop {
            let batch: Vec<AuditRecord> = sqlx::query_as(
                "SELECT seq, at, actor_id, actor_name, actor_unit, ip, user_agent, action, object_type, object_id, \
                 result, details, prev_hash, hash, mac FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 2000",
            )
            .bind(after)
            .fetch_all(db.pool())
            .await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in &batch {
                records += 1;
                if r.seq != expected_seq {
                    problems.push(problem(
                        expected_seq,
                        ProblemKind::Missing,
                        format!("records {expected_seq}..{} are missing (deleted)", r.seq - 1),
                    ));
                }
                if r.prev_hash != prev_hash {
                    problems.push(problem(
                        r.seq,
                        ProblemKind::BrokenLink,
                        format!("record {} does not link to the record before it", r.seq),
                    ));
                }
                let recomputed = sm3_hex(&r.canonical());
                if recomputed != r.hash {
                    problems.push(problem(
                        r.seq,
                        ProblemKind::Edited,
                        format!("record {} was edited: its content does not match its hash", r.seq),
                    ));
                } else if hmac_sm3_hex(self.signer.mac_key(), r.hash.as_bytes()) != r.mac {
                    problems.push(problem(
                        r.seq,
                        ProblemKind::Recomputed,
                        format!("record {} carries a hash not made with the audit key (chain recomputed)", r.seq),
                    ));
                }
                if wanted.contains(&r.seq) {
                    hashes.insert(r.seq, r.hash.clone());
                }
                prev_hash = r.hash.clone();
                expected_seq = r.seq + 1;
            }
        }
        let last_seq = expected_seq - 1;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db.pool()).await?;
        let (head_seq, head_hash): (i64, String) = (head.get(0), head.get(1));
        if head_seq != last_seq || (last_seq > 0 && head_hash != prev_hash) {
            problems.push(problem(
                last_seq + 1,
                ProblemKind::HeadMismatch,
                format!("the chain head says record {head_seq} but the last record is {last_seq}"),
            ));
        }
        // Each file's validly signed checkpoints; bad lines and unreadable files are problems.
        let mut valid_per_file: Vec<(SinkKind, &str, Vec<Checkpoint>)> = Vec::new();
        for (kind, path, lines) in &files {
            let lines = match lines {
                Ok(l) => l,
                Err(e) => {
                    problems.push(problem(0, ProblemKind::BadCheckpoint, format!("checkpoint file {path} cannot be read: {e}")));
                    continue;
                }
            };
            let mut valid = Vec::new();
            for (line, cp) in lines {
                match cp.as_ref().filter(|c| self.signature_valid(c)) {
                    Some(c) => valid.push(c.clone()),
                    None => problems.push(problem(
                        *line as i64,
                        ProblemKind::BadCheckpoint,
                        match kind {
                            SinkKind::Primary => format!("checkpoint line {line} is malformed or not signed by the audit key"),
                            _ => format!("checkpoint line {line} of {path} is malformed or not signed by the audit key"),
                        },
                    )),
                }
            }
            valid_per_file.push((*kind, path.as_str(), valid));
        }
        let mut distinct: Vec<(&Checkpoint, &str)> = Vec::new();
        for (_, path, cps) in &valid_per_file {
            for cp in cps {
                if !distinct.iter().any(|(c, _)| *c == cp) {
                    distinct.push((cp, path));
                }
            }
        }
        for (cp, _) in &distinct {
            if hashes.get(&cp.seq).is_some_and(|h| *h != cp.hash) {
                problems.push(problem(
                    cp.seq,
                    ProblemKind::CheckpointMismatch,
                    format!("record {} differs from the signed checkpoint taken at that point", cp.seq),
                ));
            }
        }
        if let Some((highest, path)) = distinct.iter().max_by_key(|(c, _)| c.seq)
            && highest.seq > last_seq
        {
            problems.push(problem(
                last_seq + 1,
                ProblemKind::Truncated,
                format!(
                    "records {}..{} were signed in a checkpoint (in {path}) but are gone (truncated at the end)",
                    last_seq + 1,
                    highest.seq
                ),
            ));
        }
        // A file that lacks a checkpoint another file holds, taken after the file's own first one
        // (a mirror configured later lacks the older ones). The primary file is written at every
        // checkpoint, so when it has none left, it lacks them all.
        for (kind, path, cps) in &valid_per_file {
            let first_at = match cps.iter().map(|c| c.at).min() {
                Some(at) => at,
                None if *kind == SinkKind::Primary => i64::MIN,
                None => continue,
            };
            for (cp, other) in &distinct {
                if cp.at > first_at && !cps.contains(cp) {
                    problems.push(problem(
                        cp.seq,
                        ProblemKind::CheckpointMissing,
                        format!("the checkpoint of record {} is in {other} but not in {path}: lines were removed from it", cp.seq),
                    ));
                }
            }
        }
        let valid = distinct.len() as i64;
        problems.sort_by_key(|p| (p.kind == ProblemKind::BadCheckpoint, p.seq));
        problems.dedup_by(|a, b| a.seq == b.seq && a.kind == b.kind);
        let checkpoint_files = files.into_iter().map(|(_, path, _)| path).collect();
        Ok(VerifyReport { records, checkpoints: valid, checkpoint_files, problems })
    }
}

fn problem(seq: i64, kind: ProblemKind, message: String) -> Problem {
    Problem { seq, kind, message }
}
