//! Throttles of log-in attempts by key (登录限速), kept in the database so every instance sees
//! them: a name that belongs to no account counts like a real one (so the answers do not tell
//! which names exist), and a public account is slowed per source and as a whole with growing
//! delays rather than locked (a stranger who knows a citizen's phone number cannot lock them out).

use sqlx::Row;
use tongban_crypto::sm3_hex;
use tongban_platform::{WriteTx, clock::now_millis, error::DomainResult};

use crate::service::IdentityService;

/// Failures of a whole public account (from any source) before its attempts are slowed.
pub(crate) const PUBLIC_ACCOUNT_THRESHOLD: i64 = 20;
/// The first delay once a key is throttled; each further failure doubles it.
const FIRST_DELAY_MILLIS: i64 = 60_000;

/// A throttled key: what it counts.
#[derive(Debug, Clone)]
pub(crate) struct AttemptKey(String);

impl AttemptKey {
    /// A staff log-in name that no account has.
    pub(crate) fn unknown_staff_name(name: &str) -> Self {
        AttemptKey(format!("staff-name:{}", sm3_hex(name.trim().to_lowercase().as_bytes())))
    }

    /// A public log-in name (phone or certificate number) tried from one source.
    pub(crate) fn public_from(login: &str, ip: &str) -> Self {
        AttemptKey(format!("public:{}:{ip}", sm3_hex(login.as_bytes())))
    }

    /// A public log-in name tried from anywhere.
    pub(crate) fn public_anywhere(login: &str) -> Self {
        AttemptKey(format!("public:{}", sm3_hex(login.as_bytes())))
    }
}

impl IdentityService {
    /// Until when `key` is refused, if it is now.
    pub(crate) async fn throttled_until(&self, key: &AttemptKey) -> DomainResult<Option<i64>> {
        let row = sqlx::query("SELECT blocked_until FROM login_attempts WHERE attempt_key = $1")
            .bind(&key.0)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.and_then(|r| r.get::<Option<i64>, _>(0)).filter(|t| *t > now_millis()))
    }

    /// Counts a failure of `key` within the lock-out window. From `threshold` failures on, the
    /// key is refused for a delay that starts at a minute and doubles with each failure, up to
    /// `max_delay`; with `fixed`, always for `max_delay` (the staff realm's lock-out).
    pub(crate) async fn count_attempt(
        &self,
        tx: &mut WriteTx,
        key: &AttemptKey,
        threshold: i64,
        max_delay: i64,
        fixed: bool,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now = now_millis();
        let window = (self.policy.lockout_minutes * 60_000).max(max_delay) * 4;
        let row = sqlx::query("SELECT failures, window_start, warned_at FROM login_attempts WHERE attempt_key = $1")
            .bind(&key.0)
            .fetch_optional(tx.conn())
            .await?;
        let warned = row.as_ref().and_then(|r| r.get::<Option<i64>, _>(2));
        let (failures, start) = match row {
            Some(r) if r.get::<i64, _>(1) + window > now => (r.get::<i64, _>(0) + 1, r.get::<i64, _>(1)),
            _ => (1, now),
        };
        let until = (failures >= threshold).then(|| {
            let doubling = (failures - threshold).clamp(0, 20) as u32;
            now + if fixed { max_delay } else { FIRST_DELAY_MILLIS.saturating_mul(1 << doubling).min(max_delay) }
        });
        sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1").bind(&key.0).execute(tx.conn()).await?;
        sqlx::query(
            "INSERT INTO login_attempts (attempt_key, failures, window_start, blocked_until, warned_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.0)
        .bind(if fixed && until.is_some() { 0 } else { failures })
        .bind(start)
        .bind(until)
        .bind(warned)
        .execute(tx.conn())
        .await?;
        Ok(until)
    }

    /// Whether the owner of `key` should be told of failed attempts now: at most once an hour.
    pub(crate) async fn due_warning(&self, tx: &mut WriteTx, key: &AttemptKey) -> Result<bool, sqlx::Error> {
        let now = now_millis();
        let done = sqlx::query("UPDATE login_attempts SET warned_at = $2 WHERE attempt_key = $1 AND (warned_at IS NULL OR warned_at < $3)")
            .bind(&key.0)
            .bind(now)
            .bind(now - 3_600_000)
            .execute(tx.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the failures of `key` (after a successful log-in).
    pub(crate) async fn clear_attempts(&self, tx: &mut WriteTx, key: &AttemptKey) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1").bind(&key.0).execute(tx.conn()).await?;
        Ok(())
    }
}
