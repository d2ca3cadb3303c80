//! Staff accounts (工作人员账号): listing within the caller's data scope, creation with a
//! one-time password, editing, enabling, locking and password resets.

use serde_json::json;
use sqlx::{Row, any::AnyRow};
use tongban_audit::{Actor, Entry};
use tongban_authz::{AccountControl, Permission, Principal, ScopeFilter, Target};
use tongban_crypto::{password, token};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::{
    model::{NewUser, User, UserProfile, valid_email, valid_phone, valid_username},
    service::IdentityService,
};

const USER_SELECT: &str = "SELECT u.id, u.username, u.display_name, u.unit_id, n.name, n.path, u.position, u.email, u.phone, \
     u.enabled, u.locked_until, u.totp_enabled, u.must_change_password FROM users u JOIN units n ON n.id = u.unit_id";

fn user_from_row(r: &AnyRow) -> User {
    User {
        id: r.get(0),
        username: r.get(1),
        display_name: r.get(2),
        unit_id: r.get(3),
        unit_name: r.get(4),
        unit_path: r.get(5),
        position: r.get(6),
        email: r.get(7),
        phone: r.get(8),
        enabled: r.get::<i64, _>(9) != 0,
        locked_until: r.get(10),
        totp_enabled: r.get::<i64, _>(11) != 0,
        must_change_password: r.get::<i64, _>(12) != 0,
    }
}

impl User {
    /// Whether a lock-out is in force now.
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    fn target(&self) -> Target<'_> {
        Target { owner_user_id: Some(self.id), unit_id: self.unit_id, unit_path: &self.unit_path }
    }
}

impl IdentityService {
    /// Accounts `caller` may see, optionally only those of `unit_id` and matching `search`.
    pub async fn users(&self, caller: &Principal, unit_id: Option<i64>, search: &str) -> DomainResult<Vec<User>> {
        let filter = caller.filter(Permission::UserRead)?;
        let (scope_sql, scope_bind) = match filter {
            ScopeFilter::All => ("1 = 1", String::new()),
            ScopeFilter::UnitSubtree(path) => ("n.path LIKE $1", format!("{path}%")),
            ScopeFilter::Unit(id) => ("CAST(u.unit_id AS TEXT) = $1", id.to_string()),
            ScopeFilter::OwnUser(id) => ("CAST(u.id AS TEXT) = $1", id.to_string()),
        };
        let sql = format!(
            "{USER_SELECT} WHERE ({scope_sql} OR $1 = '') AND ($2 = 0 OR u.unit_id = $2) \
             AND ($3 = '' OR u.username LIKE $3 OR u.display_name LIKE $3) ORDER BY n.path, u.username LIMIT 1000"
        );
        let search = search.trim().replace(['%', '_'], "");
        let pattern = if search.is_empty() { String::new() } else { format!("%{search}%") };
        let rows = sqlx::query(&sql)
            .bind(if matches!(scope_sql, "1 = 1") { String::new() } else { scope_bind })
            .bind(unit_id.unwrap_or(0))
            .bind(pattern)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    /// One account by id without checks (internal).
    pub(crate) async fn load_user(&self, id: i64) -> DomainResult<Option<User>> {
        let row = sqlx::query(&format!("{USER_SELECT} WHERE u.id = $1")).bind(id).fetch_optional(self.db.pool()).await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// One account by log-in name without checks (CLI).
    pub async fn user_by_username(&self, username: &str) -> DomainResult<Option<User>> {
        let row = sqlx::query(&format!("{USER_SELECT} WHERE u.username = $1")).bind(username).fetch_optional(self.db.pool()).await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// One account, if `caller` may see it (out-of-scope accounts are "not found").
    pub async fn user(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<User> {
        let user = self.load_user(id).await?.ok_or(DomainError::NotFound("error.user_not_found"))?;
        self.check(caller, actor, Permission::UserRead, user.target(), "user.read", ("user", id)).await?;
        Ok(user)
    }

    async fn validate_new(&self, input: &NewUser) -> DomainResult<crate::model::Unit> {
        if !valid_username(input.username.trim()) {
            return Err(DomainError::invalid("username", "error.username"));
        }
        self.validate_profile(&input.profile)?;
        let unit = self.load_unit(input.profile.unit_id).await?.ok_or_else(|| DomainError::invalid("unit_id", "error.unit_not_found"))?;
        if !unit.enabled {
            return Err(DomainError::invalid("unit_id", "error.unit_disabled"));
        }
        Ok(unit)
    }

    fn validate_profile(&self, profile: &UserProfile) -> DomainResult<()> {
        let name = profile.display_name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("display_name", "error.required"));
        }
        if name.chars().count() > 64 {
            return Err(DomainError::invalid("display_name", "error.too_long"));
        }
        if profile.position.chars().count() > 64 {
            return Err(DomainError::invalid("position", "error.too_long"));
        }
        if !valid_email(profile.email.trim()) {
            return Err(DomainError::invalid("email", "error.email"));
        }
        if !valid_phone(profile.phone.trim()) {
            return Err(DomainError::invalid("phone", "error.phone"));
        }
        Ok(())
    }

    /// Creates an account in a unit within the caller's scope. Returns its id and a one-time
    /// password that must be changed at first log-in.
    pub async fn create_user(&self, caller: &Principal, actor: &Actor, input: NewUser) -> DomainResult<(i64, String)> {
        self.check_has(caller, actor, Permission::UserWrite, "user.create").await?;
        let unit = self.validate_new(&input).await?;
        let target = Target { owner_user_id: None, unit_id: unit.id, unit_path: &unit.path };
        if !caller.allows(Permission::UserWrite, target) {
            self.audit.record_denied(&self.db, actor, "user.create", "unit", unit.id, "out_of_scope").await;
            return Err(DomainError::invalid("unit_id", "error.out_of_scope"));
        }
        let one_time = token::one_time_password();
        let mut tx = self.db.begin_write().await?;
        let id = insert_user(&mut tx, &input, &one_time, true).await?;
        let details = json!({"username": input.username.trim(), "unit_id": unit.id, "display_name": input.profile.display_name.trim()});
        self.audit.append(&mut tx, actor, Entry::success("user.create", "user", id, details)).await?;
        outbox::publish(&mut tx, "identity.user.created", &json!({"user_id": id})).await?;
        tx.commit().await?;
        Ok((id, one_time))
    }

    /// Edits an account's profile and unit.
    pub async fn update_user(&self, caller: &Principal, actor: &Actor, id: i64, input: UserProfile) -> DomainResult<()> {
        let user = self.guard_user_write(caller, actor, id, "user.update").await?;
        self.validate_profile(&input)?;
        if input.unit_id != user.unit_id {
            let unit = self.load_unit(input.unit_id).await?.ok_or_else(|| DomainError::invalid("unit_id", "error.unit_not_found"))?;
            let target = Target { owner_user_id: None, unit_id: unit.id, unit_path: &unit.path };
            if !caller.allows(Permission::UserWrite, target) {
                return Err(DomainError::invalid("unit_id", "error.out_of_scope"));
            }
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE users SET display_name = $2, unit_id = $3, position = $4, email = $5, phone = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(input.display_name.trim())
        .bind(input.unit_id)
        .bind(input.position.trim())
        .bind(input.email.trim())
        .bind(input.phone.trim())
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
        let details = json!({"display_name": input.display_name.trim(), "unit_id": input.unit_id, "position": input.position.trim()});
        self.audit.append(&mut tx, actor, Entry::success("user.update", "user", id, details)).await?;
        outbox::publish(&mut tx, "identity.user.updated", &json!({"user_id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enables or disables an account; disabling ends its sessions.
    pub async fn set_user_enabled(&self, caller: &Principal, actor: &Actor, id: i64, enabled: bool) -> DomainResult<()> {
        let action = if enabled { "user.enable" } else { "user.disable" };
        let user = self.guard_account(caller, actor, id, action, AccountChange::Protective).await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET enabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(enabled as i64)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        if !enabled {
            end_sessions(&mut tx, id).await?;
        }
        self.audit.append(&mut tx, actor, Entry::success(action, "user", id, json!({"username": user.username}))).await?;
        outbox::publish(&mut tx, "identity.user.updated", &json!({"user_id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Locks (for `minutes`) or unlocks an account.
    pub async fn set_user_locked(&self, caller: &Principal, actor: &Actor, id: i64, locked: bool) -> DomainResult<()> {
        let action = if locked { "user.lock" } else { "user.unlock" };
        let user = self.guard_account(caller, actor, id, action, AccountChange::Protective).await?;
        self.write_lock(actor, &user, locked).await
    }

    pub(crate) async fn write_lock(&self, actor: &Actor, user: &User, locked: bool) -> DomainResult<()> {
        let action = if locked { "user.lock" } else { "user.unlock" };
        // An administrative lock lasts until an unlock (far future), unlike a lock-out.
        let until = if locked { Some(i64::MAX / 2) } else { None };
        let mut tx = self.db.begin_write().await?;
        sqlx::query("UPDATE users SET locked_until = $2, failed_logins = 0, updated_at = $3 WHERE id = $1")
            .bind(user.id)
            .bind(until)
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        if locked {
            end_sessions(&mut tx, user.id).await?;
        }
        self.audit.append(&mut tx, actor, Entry::success(action, "user", user.id, json!({"username": user.username}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resets an account's password to a one-time password (returned) that must be changed.
    pub async fn reset_password(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<String> {
        let user = self.guard_user_write(caller, actor, id, "user.reset_password").await?;
        self.write_password_reset(actor, &user).await
    }

    pub(crate) async fn write_password_reset(&self, actor: &Actor, user: &User) -> DomainResult<String> {
        let one_time = token::one_time_password();
        let hash = password::hash_password(&one_time).map_err(DomainError::Internal)?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, must_change_password = 1, failed_logins = 0, locked_until = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(user.id)
        .bind(hash)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
        end_sessions(&mut tx, user.id).await?;
        self.audit
            .append(&mut tx, actor, Entry::success("user.reset_password", "user", user.id, json!({"username": user.username})))
            .await?;
        tx.commit().await?;
        Ok(one_time)
    }

    /// Ends every session of an account (强制下线), e.g. when a device is lost; the systems they
    /// reached are told by the caller (back-channel logout).
    pub async fn end_user_sessions(&self, caller: &Principal, actor: &Actor, id: i64) -> DomainResult<()> {
        let user = self.guard_account(caller, actor, id, "user.sessions.end", AccountChange::Protective).await?;
        let mut tx = self.db.begin_write().await?;
        end_sessions(&mut tx, user.id).await?;
        self.audit.append(&mut tx, actor, Entry::success("user.sessions.end", "user", user.id, json!({"username": user.username}))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a change by `caller` to another account: `user.write` over it, never one's own,
    /// never an administrator-class account (only the server's CLI changes those), and, unless the
    /// change only takes access away, every role it holds must be one the caller could grant.
    pub(crate) async fn guard_user_write(&self, caller: &Principal, actor: &Actor, id: i64, action: &str) -> DomainResult<User> {
        self.guard_account(caller, actor, id, action, AccountChange::Manage).await
    }

    pub(crate) async fn guard_account(
        &self,
        caller: &Principal,
        actor: &Actor,
        id: i64,
        action: &str,
        change: AccountChange,
    ) -> DomainResult<User> {
        let user = self.load_user(id).await?.ok_or(DomainError::NotFound("error.user_not_found"))?;
        self.check(caller, actor, Permission::UserWrite, user.target(), action, ("user", id)).await?;
        if id == caller.user_id {
            self.audit.record_denied(&self.db, actor, action, "user", id, "own_account").await;
            return Err(DomainError::Forbidden("error.own_account"));
        }
        let refusal = match self.authz.account_control(caller, id).await? {
            AccountControl::AdminAccount => Some(("admin_account", "error.admin_account")),
            AccountControl::RoleNotCovered if change == AccountChange::Manage => Some(("role_not_covered", "error.role_not_covered")),
            _ => None,
        };
        if let Some((reason, message)) = refusal {
            self.audit.record_denied(&self.db, actor, action, "user", id, reason).await;
            return Err(DomainError::Forbidden(message));
        }
        Ok(user)
    }
}

/// What an administrator's change to another account can do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountChange {
    /// Only takes access away or gives back what the account had (lock, disable, end sessions,
    /// unbind a certificate, and their reverses): possible over any account in scope.
    Protective,
    /// Sets credentials or the profile (password reset, edits, moves): only over accounts whose
    /// every role the caller could grant.
    Manage,
}

/// Inserts an account row with `password` hashed; records it in the password history.
pub(crate) async fn insert_user(tx: &mut WriteTx, input: &NewUser, password_plain: &str, must_change: bool) -> DomainResult<i64> {
    let hash = password::hash_password(password_plain).map_err(DomainError::Internal)?;
    insert_user_hashed(tx, input, &hash, must_change).await
}

/// Inserts an account row with an already hashed password (the demo hashes its one password once).
pub(crate) async fn insert_user_hashed(tx: &mut WriteTx, input: &NewUser, hash: &str, must_change: bool) -> DomainResult<i64> {
    let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1").bind(input.username.trim()).fetch_optional(tx.conn()).await?;
    if taken.is_some() {
        return Err(DomainError::invalid("username", "error.duplicate"));
    }
    let now = now_millis();
    let id: i64 = sqlx::query(
        "INSERT INTO users (username, display_name, unit_id, position, email, phone, enabled, password_hash, password_changed_at, \
         must_change_password, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,1,$7,$8,$9,$8,$8) RETURNING id",
    )
    .bind(input.username.trim())
    .bind(input.profile.display_name.trim())
    .bind(input.profile.unit_id)
    .bind(input.profile.position.trim())
    .bind(input.profile.email.trim())
    .bind(input.profile.phone.trim())
    .bind(hash)
    .bind(now)
    .bind(must_change as i64)
    .fetch_one(tx.conn())
    .await?
    .get(0);
    sqlx::query("INSERT INTO password_history (user_id, hash, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(id)
}

/// Revokes every open session and every API token of a user: what was signed in with the old
/// credentials or the old roles signs in no more.
pub(crate) async fn end_sessions(tx: &mut WriteTx, user_id: i64) -> Result<(), sqlx::Error> {
    let now = now_millis();
    sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Ends an account's sessions and tokens when its roles change (the authz slice calls it in the
/// transaction of the change).
pub(crate) struct EndSessionsOnRoleChange;

#[async_trait::async_trait]
impl tongban_authz::RolesChanged for EndSessionsOnRoleChange {
    async fn roles_changed(&self, tx: &mut WriteTx, user_id: i64) -> Result<(), sqlx::Error> {
        end_sessions(tx, user_id).await
    }
}
