//! Sessions (会话) and personal API tokens: creation, lookup with idle and absolute expiry,
//! listing and revocation. Only SM3 hashes of the secrets are stored.

use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_authz::Principal;
use tongban_crypto::{sm3_hex, token};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult};

use crate::{login::Stage, model::SessionInfo, service::IdentityService};

/// How often `last_seen_at` is written: at most once a minute per session.
const TOUCH_EVERY_MILLIS: i64 = 60_000;

/// An authenticated request's session: either a browser session or an API token.
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// Session id (0 for API tokens).
    pub session_id: i64,
    /// The account.
    pub user_id: i64,
    /// Log-in name.
    pub username: String,
    /// How far the log-in has got.
    pub stage: Stage,
    /// CSRF token bound to this session (empty for API tokens).
    pub csrf_token: String,
    /// What the user may do (loaded once the log-in is complete).
    pub principal: Option<Principal>,
    /// For API tokens: whether the token may change state.
    pub api_write: Option<bool>,
    /// Whether the log-in proved a second factor (TOTP, a passkey, a certificate, a one-time
    /// code), or for an API token, whether the session that made it had.
    pub second_factor: bool,
}

/// Whether the methods `amr` (RFC 8176, space-separated) include more than a password.
pub(crate) fn amr_has_second_factor(amr: &str) -> bool {
    amr.split(' ').any(|m| matches!(m, "mfa" | "otp" | "hwk" | "sc"))
}

impl AuthSession {
    /// The principal of a fully logged-in session.
    pub fn principal(&self) -> DomainResult<&Principal> {
        match (&self.principal, self.stage) {
            (Some(p), Stage::Complete) => Ok(p),
            _ => Err(DomainError::Unauthenticated("error.login_required")),
        }
    }
}

/// A newly created API token; `secret` is shown once.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Id.
    pub id: i64,
    /// The bearer secret, `tbp_…`.
    pub secret: String,
}

impl IdentityService {
    /// Creates a session in `tx`, logged in by the methods `amr` (RFC 8176, space-separated), and
    /// returns its secret token.
    pub(crate) async fn open_session(
        &self,
        tx: &mut WriteTx,
        user_id: i64,
        stage: Stage,
        amr: &str,
        ip: &str,
        ua: &str,
    ) -> DomainResult<String> {
        let secret = token::random_token();
        let now = now_millis();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent, amr, auth_time) \
             VALUES ($1,$2,$3,$4,$5,$5,$6,$7,$8,$9,$5)",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .bind(user_id)
        .bind(stage.as_str())
        .bind(token::random_token())
        .bind(now)
        .bind(now + self.policy.session_absolute_hours * 3_600_000)
        .bind(ip)
        .bind(ua.chars().take(256).collect::<String>())
        .bind(amr)
        .execute(tx.conn())
        .await?;
        Ok(secret)
    }

    /// Looks up a browser session by its secret; `None` when unknown, revoked, idle too long,
    /// past its absolute lifetime, or its account is disabled or locked.
    pub async fn session(&self, secret: &str) -> DomainResult<Option<AuthSession>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT s.id, s.user_id, u.username, s.stage, s.csrf_token, s.last_seen_at, s.expires_at, s.revoked_at, u.enabled, u.locked_until, \
             s.amr FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let now = now_millis();
        let last_seen: i64 = r.get(5);
        let expires: i64 = r.get(6);
        let revoked: Option<i64> = r.get(7);
        let enabled = r.get::<i64, _>(8) != 0;
        let locked = r.get::<Option<i64>, _>(9).is_some_and(|t| t > now);
        let idle_limit = self.policy.session_idle_minutes * 60_000;
        if revoked.is_some() || expires <= now || last_seen + idle_limit <= now || !enabled || locked {
            return Ok(None);
        }
        let id: i64 = r.get(0);
        if now - last_seen > TOUCH_EVERY_MILLIS {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1").bind(id).bind(now).execute(self.db.pool()).await?;
        }
        let user_id: i64 = r.get(1);
        let stage = Stage::parse(&r.get::<String, _>(3));
        let principal = if stage == Stage::Complete { self.authz.principal(user_id).await? } else { None };
        let second_factor = amr_has_second_factor(&r.get::<Option<String>, _>(10).unwrap_or_default());
        Ok(Some(AuthSession {
            session_id: id,
            user_id,
            username: r.get(2),
            stage,
            csrf_token: r.get(4),
            principal,
            api_write: None,
            second_factor,
        }))
    }

    /// The open sessions of the caller.
    pub async fn my_sessions(&self, session: &AuthSession) -> DomainResult<Vec<SessionInfo>> {
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT id, created_at, last_seen_at, ip, user_agent FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND last_seen_at > $3 ORDER BY last_seen_at DESC",
        )
        .bind(session.user_id)
        .bind(now)
        .bind(now - self.policy.session_idle_minutes * 60_000)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                SessionInfo {
                    id,
                    created_at: r.get(1),
                    last_seen_at: r.get(2),
                    ip: r.get(3),
                    user_agent: r.get(4),
                    current: id == session.session_id,
                }
            })
            .collect())
    }

    /// Ends one of the caller's own sessions (log-out when it is the current one).
    pub async fn revoke_session(&self, session: &AuthSession, actor: &Actor, session_id: i64) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("UPDATE sessions SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(session_id)
            .bind(session.user_id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound("error.session_not_found"));
        }
        let action = if session_id == session.session_id { "auth.logout" } else { "session.revoke" };
        self.audit.append(&mut tx, actor, Entry::success(action, "session", session_id, json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a personal API token valid for `days` (1–365); `write` lets it change state.
    pub async fn create_api_token(
        &self,
        session: &AuthSession,
        actor: &Actor,
        name: &str,
        days: i64,
        write: bool,
    ) -> DomainResult<NewApiToken> {
        if session.session_id == 0 {
            // A token never makes tokens: one stolen token would otherwise outlive its revocation.
            self.audit.record_denied(&self.db, actor, "token.create", "api_token", 0, "token_from_token").await;
            return Err(DomainError::Forbidden("error.token_from_token"));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(DomainError::invalid("name", "error.required"));
        }
        if !(1..=self.policy.api_token_max_days).contains(&days) {
            return Err(DomainError::invalid_detail("days", "error.token_days", self.policy.api_token_max_days.to_string()));
        }
        let secret = format!("tbp_{}", token::random_token());
        let now = now_millis();
        let scopes = if write { "read write" } else { "read" };
        let mut tx = self.db.begin_write().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO api_tokens (user_id, name, prefix, token_hash, scopes, created_at, expires_at, second_factor) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id",
        )
        .bind(session.user_id)
        .bind(name)
        .bind(&secret[..10])
        .bind(sm3_hex(secret.as_bytes()))
        .bind(scopes)
        .bind(now)
        .bind(now + days * 86_400_000)
        .bind(i64::from(session.second_factor))
        .fetch_one(tx.conn())
        .await?
        .get(0);
        let details = json!({"name": name, "scopes": scopes, "days": days});
        self.audit.append(&mut tx, actor, Entry::success("token.create", "api_token", id, details)).await?;
        tx.commit().await?;
        Ok(NewApiToken { id, secret })
    }

    /// The caller's live API tokens.
    pub async fn my_api_tokens(&self, session: &AuthSession) -> DomainResult<Vec<crate::model::ApiTokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at FROM api_tokens WHERE user_id = $1 \
             AND revoked_at IS NULL AND expires_at > $2 ORDER BY id DESC",
        )
        .bind(session.user_id)
        .bind(now_millis())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| crate::model::ApiTokenInfo {
                id: r.get(0),
                name: r.get(1),
                prefix: r.get(2),
                scopes: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                last_used_at: r.get(6),
            })
            .collect())
    }

    /// Revokes one of the caller's API tokens.
    pub async fn revoke_api_token(&self, session: &AuthSession, actor: &Actor, id: i64) -> DomainResult<()> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
            .bind(id)
            .bind(session.user_id)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound("error.token_not_found"));
        }
        self.audit.append(&mut tx, actor, Entry::success("token.revoke", "api_token", id, json!({}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Authenticates a bearer API token.
    pub async fn api_token(&self, secret: &str) -> DomainResult<Option<AuthSession>> {
        if !secret.starts_with("tbp_") || secret.len() > 128 {
            return Ok(None);
        }
        let now = now_millis();
        let row = sqlx::query(
            "SELECT t.id, t.user_id, u.username, t.scopes, t.last_used_at, t.second_factor FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.enabled = 1 \
             AND (u.locked_until IS NULL OR u.locked_until <= $2)",
        )
        .bind(sm3_hex(secret.as_bytes()))
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let last_used: Option<i64> = r.get(4);
        if last_used.is_none_or(|t| now - t > TOUCH_EVERY_MILLIS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(r.get::<i64, _>(0))
                .bind(now)
                .execute(self.db.pool())
                .await?;
        }
        let user_id: i64 = r.get(1);
        let scopes: String = r.get(3);
        let second_factor = r.get::<i64, _>(5) != 0;
        let principal = self.authz.principal(user_id).await?;
        if !second_factor && principal.as_ref().is_some_and(|p| p.admin_class.is_some()) {
            // Made in a session without the second factor that the account's roles demand.
            return Ok(None);
        }
        Ok(Some(AuthSession {
            session_id: 0,
            user_id,
            username: r.get(2),
            stage: Stage::Complete,
            csrf_token: String::new(),
            principal,
            api_write: Some(scopes.split(' ').any(|s| s == "write")),
            second_factor,
        }))
    }
}
