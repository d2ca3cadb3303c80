//! The audit slice (安全审计): a hash-chained, append-only trail of every state change and
//! security event, with signed checkpoints kept outside the database, verification, queries and
//! CSV export.
//!
//! Each record stores `hash = SM3(prev_hash ‖ canonical content)` and `mac = HMAC-SM3(key, hash)`,
//! where the key derives from the audit key file (not in the database). An edit breaks the hash;
//! an edit followed by recomputing the chain breaks the MAC; deleting the newest rows is caught
//! by the signed checkpoints of the chain head, written to the primary file and to every
//! configured sink (a mirror file, a syslog collector).

mod batch;
mod checkpoint;
mod model;
mod query;
mod sinks;
mod trail;
mod verify;

pub use batch::AuditBatcher;
pub use checkpoint::Checkpoint;
pub use model::{Actor, AuditRecord, Entry, Outcome, redact};
pub use query::{AuditFilter, AuditPage, to_csv};
pub use sinks::{
    CheckpointSinks, CheckpointStatus, SinkKind, SinkState, SinkWrite, SyslogTarget, SyslogTransport, local_hostname, syslog_message,
};
pub use trail::AuditTrail;
pub use verify::{Problem, ProblemKind, VerifyReport};
