//! Audit record types and the canonical form that is hashed.

use serde::Serialize;
use serde_json::Value;

/// Who did something, and from where (操作主体).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor {
    /// The account id, if known (failed log-ins of unknown names have none).
    pub user_id: Option<i64>,
    /// User name (or the attempted name for anonymous events).
    pub name: String,
    /// Name of the actor's unit.
    pub unit: String,
    /// Source IP address.
    pub ip: String,
    /// User agent string (truncated to 256 characters).
    pub user_agent: String,
    /// What the actor was doing (用途): the route, e.g. `GET /cases/{id}`; recorded with reads
    /// of personal data. Empty outside a request.
    pub purpose: String,
}

impl Actor {
    /// The actor for command-line operations on the server itself.
    pub fn system(command: &str) -> Actor {
        Actor {
            user_id: None,
            name: format!("system:{command}"),
            unit: String::new(),
            ip: "local".into(),
            user_agent: "tongban-cli".into(),
            purpose: command.into(),
        }
    }
}

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Done.
    Success,
    /// Attempted and failed (e.g. wrong password).
    Failure,
    /// Refused by a permission check.
    Denied,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// What a use case asks to be recorded.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Action name such as `user.create` or `auth.login`.
    pub action: String,
    /// Object type such as `user`.
    pub object_type: String,
    /// Object id (may be empty).
    pub object_id: String,
    /// Result.
    pub outcome: Outcome,
    /// Extra facts; secrets are redacted before storing.
    pub details: Value,
}

impl Entry {
    /// A successful action on an object.
    pub fn success(action: &str, object_type: &str, object_id: impl ToString, details: Value) -> Entry {
        Entry {
            action: action.into(),
            object_type: object_type.into(),
            object_id: object_id.to_string(),
            outcome: Outcome::Success,
            details,
        }
    }

    /// The same entry with another outcome.
    pub fn with_outcome(mut self, outcome: Outcome) -> Entry {
        self.outcome = outcome;
        self
    }
}

/// One stored record (审计记录).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Instant, UTC milliseconds.
    pub at: i64,
    /// Account id of the actor.
    pub actor_id: Option<i64>,
    /// Actor name.
    pub actor_name: String,
    /// Actor's unit name.
    pub actor_unit: String,
    /// Source IP.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
    /// Action.
    pub action: String,
    /// Object type.
    pub object_type: String,
    /// Object id.
    pub object_id: String,
    /// `success`, `failure` or `denied`.
    pub result: String,
    /// JSON details.
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
    /// HMAC-SM3 of the hash under the audit key.
    pub mac: String,
}

impl AuditRecord {
    /// The canonical byte string that is hashed: previous hash, then every field in a fixed
    /// order as a JSON array (unambiguous, independent of the database).
    pub fn canonical(&self) -> Vec<u8> {
        let content = serde_json::json!([
            self.seq,
            self.at,
            self.actor_id,
            self.actor_name,
            self.actor_unit,
            self.ip,
            self.user_agent,
            self.action,
            self.object_type,
            self.object_id,
            self.result,
            self.details
        ]);
        let mut out = self.prev_hash.clone().into_bytes();
        out.push(b'|');
        out.extend_from_slice(content.to_string().as_bytes());
        out
    }
}

const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "token", "otp", "recovery", "csrf"];

/// Replaces the values of keys that look like secrets with `"[redacted]"`, at any depth, so
/// that passwords and tokens never reach the audit trail.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                        (k.clone(), Value::String("[redacted]".into()))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = serde_json::json!({"username": "li", "new_password": "x", "inner": [{"api_token": "t"}]});
        let r = redact(&v);
        assert_eq!(r["username"], "li");
        assert_eq!(r["new_password"], "[redacted]");
        assert_eq!(r["inner"][0]["api_token"], "[redacted]");
    }
}
