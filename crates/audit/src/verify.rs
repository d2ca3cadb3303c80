//! Walking the chain (审计链校验): `tongban audit verify`.

use serde::Serialize;
use sqlx::Row;
use tongban_crypto::{hmac_sm3_hex, sm3_hex};
use tongban_platform::Db;

use crate::{checkpoint::Checkpoint, model::AuditRecord, trail::AuditTrail};

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
    /// A checkpoint line is malformed or its signature is invalid.
    BadCheckpoint,
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
    /// Valid checkpoints compared.
    pub checkpoints: i64,
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
    /// Verifies every record's hash, link and MAC, the sequence, the head row and all signed
    /// checkpoints.
    pub async fn verify(&self, db: &Db) -> Result<VerifyReport, sqlx::Error> {
        let mut problems = Vec::new();
        let mut records = 0;
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS.to_string();
        let mut hashes: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        let checkpoints = self.checkpoint_lines().unwrap_or_default();
        let wanted: std::collections::HashSet<i64> = checkpoints.iter().filter_map(|(_, c)| c.as_ref().map(|c| c.seq)).collect();
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
        let mut valid = 0;
        for (line, cp) in checkpoints {
            let Some(cp) = cp.filter(|c| self.signer.verify_hex(Checkpoint::message(c.seq, &c.hash, c.at).as_bytes(), &c.signature)) else {
                problems.push(problem(
                    line as i64,
                    ProblemKind::BadCheckpoint,
                    format!("checkpoint line {line} is malformed or not signed by the audit key"),
                ));
                continue;
            };
            valid += 1;
            if cp.seq > last_seq {
                problems.push(problem(
                    last_seq + 1,
                    ProblemKind::Truncated,
                    format!("records {}..{} were signed in a checkpoint but are gone (truncated at the end)", last_seq + 1, cp.seq),
                ));
            } else if hashes.get(&cp.seq).is_some_and(|h| *h != cp.hash) {
                problems.push(problem(
                    cp.seq,
                    ProblemKind::CheckpointMismatch,
                    format!("record {} differs from the signed checkpoint taken at that point", cp.seq),
                ));
            }
        }
        problems.sort_by_key(|p| (p.kind == ProblemKind::BadCheckpoint, p.seq));
        problems.dedup_by(|a, b| a.seq == b.seq && a.kind == b.kind);
        Ok(VerifyReport { records, checkpoints: valid, problems })
    }
}

fn problem(seq: i64, kind: ProblemKind, message: String) -> Problem {
    Problem { seq, kind, message }
}
