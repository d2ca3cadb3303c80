//! First-run set-up (初始化): a fresh installation has no account at all until `tongban init`
//! (or the first start) creates the three administrators with one-time passwords.

use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_platform::{DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::{
    model::{NewUser, UnitInput, UnitKind, UserProfile},
    service::IdentityService,
    users::insert_user,
};

/// An administrator account created at set-up, with its one-time password.
#[derive(Debug, Clone)]
pub struct InitialAdmin {
    /// Log-in name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// One-time password (shown once; must be changed at first log-in).
    pub password: String,
}

impl IdentityService {
    /// Whether any account exists.
    pub async fn has_users(&self) -> DomainResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM users LIMIT 1").fetch_optional(self.db.pool()).await?.is_some())
    }

    /// Creates the root unit and the three administrators (三员). Refused once any account exists.
    pub async fn init(&self, root_unit_name: &str) -> DomainResult<Vec<InitialAdmin>> {
        if self.has_users().await? {
            return Err(DomainError::Conflict("error.already_initialised"));
        }
        let actor = Actor::system("init");
        let mut tx = self.db.begin_write().await?;
        let root = match sqlx::query("SELECT id FROM units WHERE parent_id IS NULL ORDER BY id LIMIT 1").fetch_optional(tx.conn()).await? {
            Some(r) => r.get::<i64, _>(0),
            None => {
                let input =
                    UnitInput { parent_id: None, name: root_unit_name.into(), kind: "government".into(), region_code: None, sort_order: 0 };
                self.insert_unit(&mut tx, None, &input, UnitKind::Government).await?
            }
        };
        let mut admins = Vec::new();
        for (username, name, role) in
            [("sysadmin", "系统管理员", "sys_admin"), ("secadmin", "安全管理员", "sec_admin"), ("auditor", "安全审计员", "auditor")]
        {
            let password = tongban_crypto::token::one_time_password();
            let input = NewUser { username: username.into(), profile: UserProfile::new(name, root, name) };
            let id = insert_user(&mut tx, &input, &password, true).await?;
            grant_builtin(&mut tx, id, role, "all").await?;
            self.audit
                .append(&mut tx, &actor, Entry::success("user.create", "user", id, json!({"username": username, "role": role})))
                .await?;
            admins.push(InitialAdmin { username: username.into(), role: name.into(), password });
        }
        outbox::publish(&mut tx, "identity.initialised", &json!({"root_unit": root})).await?;
        tx.commit().await?;
        Ok(admins)
    }
}

/// Grants a built-in role by code (set-up and demo only; no actor checks apply).
pub(crate) async fn grant_builtin(tx: &mut WriteTx, user_id: i64, role_code: &str, scope: &str) -> DomainResult<()> {
    let role_id: i64 = sqlx::query("SELECT id FROM roles WHERE code = $1")
        .bind(role_code)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(DomainError::Internal(format!("built-in role {role_code} missing")))?
        .get(0);
    sqlx::query("INSERT INTO grants (user_id, role_id, scope, granted_by, created_at) VALUES ($1, $2, $3, NULL, $4)")
        .bind(user_id)
        .bind(role_id)
        .bind(scope)
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
    Ok(())
}
