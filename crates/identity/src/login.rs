//! Log-in (登录): password with lock-out per account and per source IP, then TOTP (or a
//! recovery code), then a forced password change or TOTP enrolment when the policy demands.

use serde::Serialize;
use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, Entry, Outcome};
use tongban_crypto::{password, sm3_hex, token, totp};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult};

use crate::{service::IdentityService, sessions::AuthSession, throttle::AttemptKey};

/// An argon2id hash verified for unknown user names, so that their timing matches real ones.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash_password("tongban-dummy-password").unwrap_or_default())
}

/// The answer to a wrong credential: "locked" once the failure locked the account, else a
/// plain "wrong user name or password" that says nothing about which was wrong.
pub(crate) fn refusal(locked: bool) -> DomainError {
    if locked { DomainError::Locked("error.account_locked") } else { DomainError::Unauthenticated("error.bad_credentials") }
}

/// How far a log-in has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Password accepted; a TOTP code is needed.
    Totp,
    /// The password must be changed (first log-in, reset or expiry).
    PasswordChange,
    /// An administrator without TOTP must enrol now.
    TotpEnroll,
    /// Logged in.
    Complete,
}

impl Stage {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Totp => "totp",
            Stage::PasswordChange => "password_change",
            Stage::TotpEnroll => "totp_enroll",
            Stage::Complete => "complete",
        }
    }

    /// Parses a stored name (unknown names are the most restrictive stage).
    pub fn parse(s: &str) -> Stage {
        match s {
            "complete" => Stage::Complete,
            "password_change" => Stage::PasswordChange,
            "totp_enroll" => Stage::TotpEnroll,
            _ => Stage::Totp,
        }
    }
}

/// The result of a successful password step.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The session secret for the cookie.
    pub session_secret: String,
    /// What must happen next.
    pub stage: Stage,
}

/// What the enrolment page shows.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// Base32 secret, for typing in by hand.
    pub secret: String,
    /// `otpauth://` URL.
    pub url: String,
    /// QR code of the URL, SVG.
    pub qr_svg: String,
}

pub(crate) struct Credentials {
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) unit_name: String,
    pub(crate) enabled: bool,
    pub(crate) password_hash: String,
    pub(crate) password_changed_at: i64,
    pub(crate) must_change: bool,
    pub(crate) failed: i64,
    pub(crate) locked_until: Option<i64>,
    pub(crate) totp_secret: Option<String>,
    pub(crate) totp_enabled: bool,
    pub(crate) totp_last_step: Option<i64>,
}

fn credentials_from_row(r: &AnyRow) -> Credentials {
    Credentials {
        id: r.get(0),
        username: r.get(1),
        unit_name: r.get(2),
        enabled: r.get::<i64, _>(3) != 0,
        password_hash: r.get::<Option<String>, _>(4).unwrap_or_default(),
        password_changed_at: r.get::<Option<i64>, _>(5).unwrap_or(0),
        must_change: r.get::<i64, _>(6) != 0,
        failed: r.get(7),
        locked_until: r.get(8),
        totp_secret: r.get(9),
        totp_enabled: r.get::<i64, _>(10) != 0,
        totp_last_step: r.get(11),
    }
}

const CRED_SELECT: &str = "SELECT u.id, u.username, n.name, u.enabled, u.password_hash, u.password_changed_at, u.must_change_password, \
     u.failed_logins, u.locked_until, u.totp_secret, u.totp_enabled, u.totp_last_step FROM users u JOIN units n ON n.id = u.unit_id";

fn unix_seconds() -> u64 {
    (now_millis() / 1000).max(0) as u64
}

impl IdentityService {
    async fn credentials_by_name(&self, username: &str) -> DomainResult<Option<Credentials>> {
        let row = sqlx::query(&format!("{CRED_SELECT} WHERE u.username = $1")).bind(username).fetch_optional(self.db.pool()).await?;
        Ok(row.as_ref().map(credentials_from_row))
    }

    pub(crate) async fn credentials_by_id(&self, id: i64) -> DomainResult<Credentials> {
        let row = sqlx::query(&format!("{CRED_SELECT} WHERE u.id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        row.as_ref().map(credentials_from_row).ok_or(DomainError::Unauthenticated("error.login_required"))
    }

    /// Whether the account must have a second factor: every member of staff under
    /// `security.second_factor_required = "all_staff"`, else the three administrators.
    async fn requires_totp(&self, user_id: i64) -> DomainResult<bool> {
        if self.policy.all_staff_need_second_factor() {
            return Ok(true);
        }
        self.is_admin_class(user_id).await
    }

    /// Whether the account holds one of the three administrators' roles.
    pub(crate) async fn is_admin_class(&self, user_id: i64) -> DomainResult<bool> {
        let row = sqlx::query("SELECT 1 FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1 AND r.admin_class <> 'none'")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    /// What comes after the log-in's factors: `second_factor` is true after TOTP or a passkey.
    pub(crate) async fn next_stage(&self, c: &Credentials, second_factor: bool) -> DomainResult<Stage> {
        let expiry = self.policy.password_expiry_days * 86_400_000;
        let expired = expiry > 0 && c.password_changed_at + expiry < now_millis();
        Ok(if c.totp_enabled && !second_factor {
            Stage::Totp
        } else if c.must_change || expired {
            Stage::PasswordChange
        } else if !c.totp_enabled && !second_factor && self.requires_totp(c.id).await? {
            Stage::TotpEnroll
        } else {
            Stage::Complete
        })
    }

    /// The password step. Refuses locked accounts and blocked IPs; counts failures.
    pub async fn login_password(&self, username: &str, password_plain: &str, ip: &str, user_agent: &str) -> DomainResult<LoginResult> {
        let username = username.trim();
        let actor = |id: Option<i64>, unit: &str| Actor {
            user_id: id,
            name: username.chars().take(64).collect(),
            unit: unit.into(),
            ip: ip.into(),
            user_agent: user_agent.into(),
        };
        if username.is_empty() {
            return Err(DomainError::invalid("username", "error.required"));
        }
        if password_plain.is_empty() {
            return Err(DomainError::invalid("password", "error.required"));
        }
        if self.ip_blocked(ip).await? {
            self.audit_login_failure(&actor(None, ""), "ip_blocked").await?;
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let Some(c) = self.credentials_by_name(username).await? else {
            // Answered exactly as a real account would be, lock-out included.
            if self.throttled_until(&AttemptKey::unknown_staff_name(username)).await?.is_some() {
                self.audit_login_failure(&actor(None, ""), "locked").await?;
                return Err(DomainError::Locked("error.account_locked"));
            }
            let _ = password::verify_password(password_plain, dummy_hash());
            let locked = self.login_failed(None, &actor(None, ""), "unknown_user").await?;
            return Err(refusal(locked));
        };
        let who = actor(Some(c.id), &c.unit_name);
        if c.locked_until.is_some_and(|t| t > now_millis()) {
            self.audit_login_failure(&who, "locked").await?;
            return Err(DomainError::Locked("error.account_locked"));
        }
        if !password::verify_password(password_plain, &c.password_hash) || !c.enabled {
            let reason = if c.enabled { "bad_password" } else { "disabled" };
            let locked = self.login_failed(Some(&c), &who, reason).await?;
            return Err(refusal(locked));
        }
        let stage = self.next_stage(&c, false).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1").bind(c.id).execute(tx.conn()).await?;
        let secret = self.open_session(&mut tx, c.id, stage, "pwd", ip, user_agent).await?;
        let details = json!({"factor": "password", "next": stage.as_str()});
        self.audit.append(&mut tx, &who, Entry::success("auth.login", "user", c.id, details)).await?;
        tx.commit().await?;
        Ok(LoginResult { session_secret: secret, stage })
    }

    /// Re-authentication (再次验证) of the browser's live session by its password, when a system
    /// demands a fresh log-in (`prompt=login`, `max_age`): the session, and the systems it signed
    /// in to, stay; its sign-in time and methods are renewed. A TOTP step follows when enrolled.
    pub async fn reauthenticate(&self, session: &AuthSession, password_plain: &str, actor: &Actor) -> DomainResult<Stage> {
        if password_plain.is_empty() {
            return Err(DomainError::invalid("password", "error.required"));
        }
        if self.ip_blocked(&actor.ip).await? {
            return Err(DomainError::Locked("error.ip_locked"));
        }
        let c = self.credentials_by_id(session.user_id).await?;
        if c.locked_until.is_some_and(|t| t > now_millis()) {
            return Err(DomainError::Locked("error.account_locked"));
        }
        if !password::verify_password(password_plain, &c.password_hash) {
            let locked = self.login_failed(Some(&c), actor, "bad_password").await?;
            return Err(refusal(locked));
        }
        let stage = self.next_stage(&c, false).await?;
        let mut tx = self.db.begin_write().await?;
        if !crate::passkeys::renew_session(&mut tx, crate::Realm::Staff, session.session_id, c.id, stage, "pwd").await? {
            return Err(DomainError::Unauthenticated("error.login_required"));
        }
        let details = json!({"factor": "password", "next": stage.as_str(), "reauthenticated": true});
        self.audit.append(&mut tx, actor, Entry::success("auth.login", "user", c.id, details)).await?;
        tx.commit().await?;
        Ok(stage)
    }

    pub(crate) async fn ip_blocked(&self, ip: &str) -> DomainResult<bool> {
        let row = sqlx::query("SELECT locked_until FROM login_throttle WHERE ip = $1").bind(ip).fetch_optional(self.db.pool()).await?;
        Ok(row.and_then(|r| r.get::<Option<i64>, _>(0)).is_some_and(|t| t > now_millis()))
    }

    async fn audit_login_failure(&self, actor: &Actor, reason: &str) -> DomainResult<()> {
        let entry =
            Entry::success("auth.login", "user", actor.user_id.map(|i| i.to_string()).unwrap_or_default(), json!({"reason": reason}))
                .with_outcome(Outcome::Failure);
        self.audit.record(&self.db, actor, entry).await?;
        Ok(())
    }

    /// Counts a failure against the account (if known) and the source IP, in one transaction with
    /// its audit record. Returns whether the account is now locked.
    async fn login_failed(&self, c: Option<&Credentials>, actor: &Actor, reason: &str) -> DomainResult<bool> {
        let now = now_millis();
        let lock_for = self.policy.lockout_minutes * 60_000;
        let mut tx = self.db.begin_write().await?;
        let mut locked = false;
        if let Some(c) = c {
            let failed = c.failed + 1;
            locked = failed >= self.policy.lockout_threshold;
            let (failed, until) = if locked { (0, Some(now + lock_for)) } else { (failed, None) };
            sqlx::query("UPDATE users SET failed_logins = $2, locked_until = COALESCE($3, locked_until) WHERE id = $1")
                .bind(c.id)
                .bind(failed)
                .bind(until)
                .execute(tx.conn())
                .await?;
        } else if !actor.name.is_empty() {
            let key = AttemptKey::unknown_staff_name(&actor.name);
            locked = self.count_attempt(&mut tx, &key, self.policy.lockout_threshold, lock_for, true).await?.is_some();
        }
        self.count_ip_failure(&mut tx, &actor.ip, now, lock_for).await?;
        let entry = Entry::success(
            "auth.login",
            "user",
            c.map(|c| c.id.to_string()).unwrap_or_default(),
            json!({"reason": reason, "locked": locked}),
        )
        .with_outcome(Outcome::Failure);
        self.audit.append(&mut tx, actor, entry).await?;
        if let (true, Some(c)) = (locked, c) {
            let id = c.id;
            let e = Entry::success("user.lockout", "user", id, json!({"minutes": self.policy.lockout_minutes}));
            self.audit.append(&mut tx, actor, e).await?;
        }
        tx.commit().await?;
        Ok(locked)
    }

    pub(crate) async fn count_ip_failure(&self, tx: &mut WriteTx, ip: &str, now: i64, window: i64) -> Result<(), sqlx::Error> {
        let row = sqlx::query("SELECT failures, window_start FROM login_throttle WHERE ip = $1").bind(ip).fetch_optional(tx.conn()).await?;
        let (failures, start) = match row {
            Some(r) if r.get::<i64, _>(1) + window > now => (r.get::<i64, _>(0) + 1, r.get::<i64, _>(1)),
            _ => (1, now),
        };
        let until = (failures >= self.policy.ip_lockout_threshold).then_some(now + window);
        sqlx::query("DELETE FROM login_throttle WHERE ip = $1").bind(ip).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO login_throttle (ip, failures, window_start, locked_until) VALUES ($1, $2, $3, $4)")
            .bind(ip)
            .bind(if until.is_some() { 0 } else { failures })
            .bind(start)
            .bind(until)
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    async fn set_stage(&self, tx: &mut WriteTx, session_id: i64, stage: Stage) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sessions SET stage = $2 WHERE id = $1").bind(session_id).bind(stage.as_str()).execute(tx.conn()).await?;
        Ok(())
    }

    /// The TOTP step: a 6-digit code (each usable once) or a recovery code.
    pub async fn login_totp(&self, session: &AuthSession, actor: &Actor, code: &str) -> DomainResult<Stage> {
        if session.stage != Stage::Totp {
            return Err(DomainError::Conflict("error.wrong_stage"));
        }
        let c = self.credentials_by_id(session.user_id).await?;
        let code = code.trim();
        if code.is_empty() {
            return Err(DomainError::invalid("totp_code", "error.required"));
        }
        let secret = c.totp_secret.clone().unwrap_or_default();
        let step = totp::verify(&secret, code, unix_seconds(), c.totp_last_step);
        let recovery_id = if step.is_none() && code.len() == 14 { self.find_recovery_code(c.id, code).await? } else { None };
        if step.is_none() && recovery_id.is_none() {
            let locked = self.login_failed(Some(&c), actor, "bad_totp").await?;
            if locked {
                let mut tx = self.db.begin_write().await?;
                crate::users::end_sessions(&mut tx, c.id).await?;
                tx.commit().await?;
                return Err(DomainError::Locked("error.account_locked"));
            }
            return Err(DomainError::invalid("totp_code", "error.bad_code"));
        }
        let stage = self.next_stage(&c, true).await?;
        let mut tx = self.db.begin_write().await?;
        if let Some(step) = step {
            sqlx::query("UPDATE users SET totp_last_step = $2, failed_logins = 0 WHERE id = $1")
                .bind(c.id)
                .bind(step)
                .execute(tx.conn())
                .await?;
        }
        if let Some(id) = recovery_id {
            sqlx::query("UPDATE recovery_codes SET used_at = $2 WHERE id = $1").bind(id).bind(now_millis()).execute(tx.conn()).await?;
        }
        self.set_stage(&mut tx, session.session_id, stage).await?;
        sqlx::query("UPDATE sessions SET amr = COALESCE(amr, 'pwd') || ' otp mfa', auth_time = $2 WHERE id = $1")
            .bind(session.session_id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        let factor = if step.is_some() { "totp" } else { "recovery_code" };
        self.audit.append(&mut tx, actor, Entry::success("auth.second_factor", "user", c.id, json!({"factor": factor}))).await?;
        tx.commit().await?;
        Ok(stage)
    }

    async fn find_recovery_code(&self, user_id: i64, code: &str) -> DomainResult<Option<i64>> {
        let row = sqlx::query("SELECT id FROM recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(sm3_hex(code.to_ascii_lowercase().as_bytes()))
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Starts (or shows again) TOTP enrolment for a user who has none.
    pub async fn begin_totp_enrolment(&self, session: &AuthSession) -> DomainResult<TotpEnrolment> {
        if !matches!(session.stage, Stage::TotpEnroll | Stage::Complete) {
            return Err(DomainError::Conflict("error.wrong_stage"));
        }
        let c = self.credentials_by_id(session.user_id).await?;
        if c.totp_enabled {
            return Err(DomainError::Conflict("error.totp_already"));
        }
        let secret = match c.totp_secret {
            Some(s) if !s.is_empty() => s,
            _ => {
                let s = totp::new_secret();
                sqlx::query("UPDATE users SET totp_secret = $2 WHERE id = $1 AND totp_enabled = 0")
                    .bind(c.id)
                    .bind(&s)
                    .execute(self.db.pool())
                    .await?;
                s
            }
        };
        let url = totp::provisioning_url(&secret, &c.username).ok_or(DomainError::Internal("totp url".into()))?;
        let qr_svg = totp::qr_svg(&url).unwrap_or_default();
        Ok(TotpEnrolment { secret, url, qr_svg })
    }

    /// Confirms enrolment with a first code; returns ten single-use recovery codes.
    pub async fn confirm_totp_enrolment(&self, session: &AuthSession, actor: &Actor, code: &str) -> DomainResult<(Stage, Vec<String>)> {
        if !matches!(session.stage, Stage::TotpEnroll | Stage::Complete) {
            return Err(DomainError::Conflict("error.wrong_stage"));
        }
        let c = self.credentials_by_id(session.user_id).await?;
        if c.totp_enabled {
            return Err(DomainError::Conflict("error.totp_already"));
        }
        let secret = c.totp_secret.clone().unwrap_or_default();
        let Some(step) = totp::verify(&secret, code, unix_seconds(), None) else {
            return Err(DomainError::invalid("totp_code", "error.bad_code"));
        };
        let codes: Vec<String> = (0..10).map(|_| token::recovery_code()).collect();
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET totp_enabled = 1, totp_last_step = $2, updated_at = $3 WHERE id = $1")
            .bind(c.id)
            .bind(step)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(c.id).execute(tx.conn()).await?;
        for code in &codes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(c.id)
                .bind(sm3_hex(code.as_bytes()))
                .execute(tx.conn())
                .await?;
        }
        let enrolled = Credentials { totp_enabled: true, ..c };
        let stage = self.next_stage(&enrolled, true).await?;
        self.set_stage(&mut tx, session.session_id, stage).await?;
        // The first code proved the new factor in this session.
        sqlx::query("UPDATE sessions SET amr = COALESCE(amr, 'pwd') || ' otp mfa' WHERE id = $1")
            .bind(session.session_id)
            .execute(tx.conn())
            .await?;
        self.audit.append(&mut tx, actor, Entry::success("auth.totp_enrol", "user", enrolled.id, json!({}))).await?;
        tx.commit().await?;
        Ok((stage, codes))
    }

    /// Changes the caller's password: checks the current one, the policy and the history.
    pub async fn change_password(
        &self,
        session: &AuthSession,
        actor: &Actor,
        current: &str,
        new: &str,
        confirm: &str,
    ) -> DomainResult<Stage> {
        if !matches!(session.stage, Stage::PasswordChange | Stage::Complete) {
            return Err(DomainError::Conflict("error.wrong_stage"));
        }
        let c = self.credentials_by_id(session.user_id).await?;
        if !password::verify_password(current, &c.password_hash) {
            let locked = self.login_failed(Some(&c), actor, "bad_current_password").await?;
            if locked {
                return Err(DomainError::Locked("error.account_locked"));
            }
            return Err(DomainError::invalid("current_password", "error.bad_password"));
        }
        if new != confirm {
            return Err(DomainError::invalid("confirm_password", "error.password_mismatch"));
        }
        let phone: String = sqlx::query("SELECT phone FROM users WHERE id = $1").bind(c.id).fetch_one(self.db.pool()).await?.get(0);
        password::check_policy(new, &c.username, &[&phone]).map_err(|v| DomainError::invalid("new_password", v.message_key()))?;
        let history = sqlx::query("SELECT hash FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(c.id)
            .bind(self.policy.password_history)
            .fetch_all(self.db.pool())
            .await?;
        if history.iter().any(|r| password::verify_password(new, &r.get::<String, _>(0)))
            || password::verify_password(new, &c.password_hash)
        {
            return Err(DomainError::invalid("new_password", "error.password_reused"));
        }
        let hash = password::hash_password(new).map_err(DomainError::Internal)?;
        let now = now_millis();
        let changed = Credentials { must_change: false, password_changed_at: now, ..c };
        // A changed password is no second factor: enrolment comes next where the account needs one.
        let stage = self.next_stage(&changed, session.second_factor).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = $3, must_change_password = 0, updated_at = $3 WHERE id = $1",
        )
        .bind(changed.id)
        .bind(&hash)
        .bind(now)
        .execute(tx.conn())
        .await?;
        sqlx::query("INSERT INTO password_history (user_id, hash, created_at) VALUES ($1, $2, $3)")
            .bind(changed.id)
            .bind(&hash)
            .bind(now)
            .execute(tx.conn())
            .await?;
        // Other sessions and every API token end; this session goes on.
        sqlx::query("UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL")
            .bind(changed.id)
            .bind(session.session_id)
            .bind(now)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(changed.id)
            .bind(now)
            .execute(tx.conn())
            .await?;
        self.set_stage(&mut tx, session.session_id, stage).await?;
        self.audit.append(&mut tx, actor, Entry::success("auth.password_change", "user", changed.id, json!({}))).await?;
        tx.commit().await?;
        Ok(stage)
    }
}
