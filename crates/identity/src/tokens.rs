//! Personal API tokens live in `sessions.rs` beside browser sessions; this module holds the
//! administrator's CLI operations on accounts, which act as the local system.

use tongban_audit::Actor;
use tongban_platform::{DomainError, error::DomainResult};

use crate::{model::NewUser, service::IdentityService};

impl IdentityService {
    /// `tongban user create`: creates an account as the local system; returns id and one-time password.
    pub async fn cli_create_user(&self, input: NewUser) -> DomainResult<(i64, String)> {
        let actor = Actor::system("user create");
        if !crate::model::valid_username(input.username.trim()) {
            return Err(DomainError::invalid("username", "error.username"));
        }
        self.load_unit(input.profile.unit_id).await?.ok_or_else(|| DomainError::invalid("unit_id", "error.unit_not_found"))?;
        let one_time = tongban_crypto::token::one_time_password();
        let mut tx = self.db.begin_write().await?;
        let id = crate::users::insert_user(&mut tx, &input, &one_time, true).await?;
        let details = serde_json::json!({"username": input.username.trim(), "unit_id": input.profile.unit_id});
        self.audit.append(&mut tx, &actor, tongban_audit::Entry::success("user.create", "user", id, details)).await?;
        tx.commit().await?;
        Ok((id, one_time))
    }

    /// `tongban user reset-password`.
    pub async fn cli_reset_password(&self, username: &str) -> DomainResult<String> {
        let user = self.user_by_username(username).await?.ok_or(DomainError::NotFound("error.user_not_found"))?;
        self.write_password_reset(&Actor::system("user reset-password"), &user).await
    }

    /// `tongban user reset-totp`: removes the account's TOTP and recovery codes and ends its
    /// sessions and tokens (the three administrators' second factor is reset only here).
    pub async fn cli_reset_totp(&self, username: &str) -> DomainResult<()> {
        let user = self.user_by_username(username).await?.ok_or(DomainError::NotFound("error.user_not_found"))?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $1")
            .bind(user.id)
            .bind(tongban_platform::clock::now_millis())
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user.id).execute(tx.conn()).await?;
        crate::users::end_sessions(&mut tx, user.id).await?;
        let details = serde_json::json!({"username": user.username});
        self.audit
            .append(&mut tx, &Actor::system("user reset-totp"), tongban_audit::Entry::success("user.reset_totp", "user", user.id, details))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `tongban user lock` / `unlock`.
    pub async fn cli_set_locked(&self, username: &str, locked: bool) -> DomainResult<()> {
        let user = self.user_by_username(username).await?.ok_or(DomainError::NotFound("error.user_not_found"))?;
        let cmd = if locked { "user lock" } else { "user unlock" };
        self.write_lock(&Actor::system(cmd), &user, locked).await
    }
}
