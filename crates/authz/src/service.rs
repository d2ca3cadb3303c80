//! Use cases for roles and grants, with the three-admin rules:
//! - only a holder of `role.write` edits roles, only a holder of `grant.write` grants;
//! - nobody changes their own grants;
//! - one account never holds two administrator classes;
//! - custom roles never carry the permissions reserved to the three administrators.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use serde::Deserialize;
use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_platform::{Db, DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::{
    model::{AdminClass, Grant, Permission, Role, Scope},
    principal::{Principal, Target},
};

/// Input for creating or editing a custom role.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleInput {
    /// Stable code: lower-case letters, digits and `_`, 2–32 characters.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Permission names.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// What a caller may do to another account, by the roles that account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountControl {
    /// Everything the caller's permissions allow: the caller could grant each of its roles.
    Full,
    /// It holds a role the caller could not grant: no credential or profile changes.
    RoleNotCovered,
    /// It is one of the three administrators' accounts: nothing through the web or API.
    AdminAccount,
}

/// Told, inside the transaction that changes an account's roles, so that what the account could
/// do before ends with it: the identity slice ends its sessions and API tokens, so that a new
/// administrator role is used only after a fresh log-in with the second factor it demands.
#[async_trait::async_trait]
pub trait RolesChanged: Send + Sync {
    /// The roles of `user_id` change in `tx`.
    async fn roles_changed(&self, tx: &mut WriteTx, user_id: i64) -> Result<(), sqlx::Error>;
}

/// Roles and grants.
#[derive(Clone)]
pub struct AuthzService {
    db: Db,
    audit: AuditTrail,
    on_roles_changed: Option<Arc<dyn RolesChanged>>,
}

impl AuthzService {
    /// A service over `db` recording to `audit`.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        AuthzService { db, audit, on_roles_changed: None }
    }

    /// Calls `listener` whenever an account's grants change.
    pub fn with_roles_changed(mut self, listener: Arc<dyn RolesChanged>) -> Self {
        self.on_roles_changed = Some(listener);
        self
    }

    async fn roles_changed(&self, tx: &mut WriteTx, user_id: i64) -> Result<(), sqlx::Error> {
        match &self.on_roles_changed {
            Some(l) => l.roles_changed(tx, user_id).await,
            None => Ok(()),
        }
    }

    /// Loads what `user_id` may do. `None` if the user does not exist.
    pub async fn principal(&self, user_id: i64) -> DomainResult<Option<Principal>> {
        let Some(u) = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.unit_id, n.path, n.name FROM users u \
             JOIN units n ON n.id = u.unit_id WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT rp.permission, g.scope, r.admin_class FROM grants g JOIN roles r ON r.id = g.role_id \
             JOIN role_permissions rp ON rp.role_id = r.id WHERE g.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        let mut permissions: HashMap<Permission, Scope> = HashMap::new();
        let mut admin_class = None;
        for r in rows {
            let (perm, scope, class): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            if let (Some(p), Some(s)) = (Permission::parse(&perm), Scope::parse(&scope)) {
                let e = permissions.entry(p).or_insert(s);
                *e = (*e).max(s);
            }
            admin_class = admin_class.or(AdminClass::parse(&class));
        }
        Ok(Some(Principal {
            user_id: u.get(0),
            username: u.get(1),
            display_name: u.get(2),
            unit_id: u.get(3),
            unit_path: u.get(4),
            unit_name: u.get(5),
            permissions,
            admin_class,
        }))
    }

    /// Every role with its permissions.
    pub async fn roles(&self, caller: &Principal) -> DomainResult<Vec<Role>> {
        caller.require(Permission::RoleRead).or_else(|_| caller.require(Permission::GrantWrite))?;
        self.load_roles(None).await
    }

    /// One role.
    pub async fn role(&self, caller: &Principal, id: i64) -> DomainResult<Role> {
        caller.require(Permission::RoleRead)?;
        self.load_roles(Some(id)).await?.into_iter().next().ok_or(DomainError::NotFound("error.role_not_found"))
    }

    async fn load_roles(&self, only: Option<i64>) -> DomainResult<Vec<Role>> {
        let rows = sqlx::query(
            "SELECT id, code, name, description, admin_class, builtin, assignable FROM roles WHERE ($1 = 0 OR id = $1) ORDER BY builtin DESC, id",
        )
        .bind(only.unwrap_or(0))
        .fetch_all(self.db.pool())
        .await?;
        let perms = sqlx::query("SELECT role_id, permission FROM role_permissions").fetch_all(self.db.pool()).await?;
        let mut by_role: HashMap<i64, Vec<Permission>> = HashMap::new();
        for p in perms {
            if let Some(perm) = Permission::parse(&p.get::<String, _>(1)) {
                by_role.entry(p.get(0)).or_default().push(perm);
            }
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let mut permissions = by_role.remove(&id).unwrap_or_default();
                permissions.sort();
                Role {
                    id,
                    code: r.get(1),
                    name: r.get(2),
                    description: r.get(3),
                    admin_class: AdminClass::parse(&r.get::<String, _>(4)),
                    builtin: r.get::<i64, _>(5) != 0,
                    assignable: r.get::<i64, _>(6) != 0,
                    permissions,
                }
            })
            .collect())
    }

    fn validate_role(input: &RoleInput) -> DomainResult<BTreeSet<Permission>> {
        let code = input.code.trim();
        if code.len() < 2 || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(DomainError::invalid("code", "error.role_code"));
        }
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(DomainError::invalid("name", "error.required"));
        }
        let mut set = BTreeSet::new();
        for p in &input.permissions {
            let perm = Permission::parse(p).ok_or_else(|| DomainError::invalid("permissions", "error.unknown_permission"))?;
            if perm.is_reserved() {
                return Err(DomainError::invalid("permissions", "error.reserved_permission"));
            }
            set.insert(perm);
        }
        Ok(set)
    }

    /// Creates a custom role (security administrator).
    pub async fn create_role(&self, caller: &Principal, actor: &Actor, input: RoleInput) -> DomainResult<i64> {
        self.guard(caller, actor, Permission::RoleWrite, "role.create").await?;
        let perms = Self::validate_role(&input)?;
        let mut tx = self.db.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM roles WHERE code = $1").bind(input.code.trim()).fetch_optional(tx.conn()).await?;
        if exists.is_some() {
            return Err(DomainError::invalid("code", "error.duplicate"));
        }
        let now = now_millis();
        let id: i64 = sqlx::query(
            "INSERT INTO roles (code, name, description, admin_class, builtin, created_at, updated_at) VALUES ($1,$2,$3,'none',0,$4,$4) RETURNING id",
        )
        .bind(input.code.trim())
        .bind(input.name.trim())
        .bind(input.description.trim())
        .bind(now)
        .fetch_one(tx.conn())
        .await?
        .get(0);
        write_permissions(&mut tx, id, &perms).await?;
        let details = json!({"code": input.code.trim(), "name": input.name.trim(), "permissions": perm_names(&perms)});
        self.audit.append(&mut tx, actor, Entry::success("role.create", "role", id, details.clone())).await?;
        outbox::publish(&mut tx, "authz.role.created", &json!({"role_id": id})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Edits a custom role's name, description and permissions.
    pub async fn update_role(&self, caller: &Principal, actor: &Actor, id: i64, input: RoleInput) -> DomainResult<()> {
        self.guard(caller, actor, Permission::RoleWrite, "role.update").await?;
        let perms = Self::validate_role(&input)?;
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT builtin FROM roles WHERE id = $1").bind(id).fetch_optional(tx.conn()).await?;
        match row {
            None => return Err(DomainError::NotFound("error.role_not_found")),
            Some(r) if r.get::<i64, _>(0) != 0 => {
                return Err(DomainError::Conflict("error.builtin_role"));
            }
            _ => {}
        }
        sqlx::query("UPDATE roles SET name = $2, description = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(input.name.trim())
            .bind(input.description.trim())
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM role_permissions WHERE role_id = $1").bind(id).execute(tx.conn()).await?;
        write_permissions(&mut tx, id, &perms).await?;
        let details = json!({"name": input.name.trim(), "permissions": perm_names(&perms)});
        self.audit.append(&mut tx, actor, Entry::success("role.update", "role", id, details)).await?;
        outbox::publish(&mut tx, "authz.role.updated", &json!({"role_id": id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Grants of one user.
    pub async fn grants_of(&self, user_id: i64) -> DomainResult<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT g.id, g.user_id, g.role_id, r.code, r.name, g.scope, g.created_at FROM grants g \
             JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1 ORDER BY g.id",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Grant {
                id: r.get(0),
                user_id: r.get(1),
                role_id: r.get(2),
                role_code: r.get(3),
                role_name: r.get(4),
                scope: Scope::parse(&r.get::<String, _>(5)).unwrap_or(Scope::Own),
                created_at: r.get(6),
            })
            .collect())
    }

    /// Gives `role_id` to `user_id` with `scope` (security administrator).
    pub async fn grant(&self, caller: &Principal, actor: &Actor, user_id: i64, role_id: i64, scope: Scope) -> DomainResult<i64> {
        self.grant_guard(caller, actor, user_id, role_id, Some(scope), "grant.create").await?;
        let mut tx = self.db.begin_write().await?;
        let role = sqlx::query("SELECT admin_class, code FROM roles WHERE id = $1").bind(role_id).fetch_optional(tx.conn()).await?;
        let Some(role) = role else {
            return Err(DomainError::invalid("role_id", "error.role_not_found"));
        };
        let class = AdminClass::parse(&role.get::<String, _>(0));
        let role_code: String = role.get(1);
        if class.is_some() {
            let held = sqlx::query(
                "SELECT r.admin_class FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1 AND r.admin_class <> 'none' AND r.id <> $2",
            )
            .bind(user_id)
            .bind(role_id)
            .fetch_optional(tx.conn())
            .await?;
            if held.is_some() {
                drop(tx);
                self.record_denied(actor, "grant.create", user_id, "three_admin_conflict").await;
                return Err(DomainError::Conflict("error.three_admin_conflict"));
            }
        }
        let existing = sqlx::query("SELECT id FROM grants WHERE user_id = $1 AND role_id = $2")
            .bind(user_id)
            .bind(role_id)
            .fetch_optional(tx.conn())
            .await?;
        let id: i64 = match existing {
            Some(r) => {
                let id: i64 = r.get(0);
                sqlx::query("UPDATE grants SET scope = $2, granted_by = $3 WHERE id = $1")
                    .bind(id)
                    .bind(scope.as_str())
                    .bind(caller.user_id)
                    .execute(tx.conn())
                    .await?;
                id
            }
            None => {
                sqlx::query("INSERT INTO grants (user_id, role_id, scope, granted_by, created_at) VALUES ($1,$2,$3,$4,$5) RETURNING id")
                    .bind(user_id)
                    .bind(role_id)
                    .bind(scope.as_str())
                    .bind(caller.user_id)
                    .bind(now_millis())
                    .fetch_one(tx.conn())
                    .await?
                    .get(0)
            }
        };
        self.roles_changed(&mut tx, user_id).await?;
        let details = json!({"user_id": user_id, "role": role_code, "scope": scope.as_str()});
        self.audit.append(&mut tx, actor, Entry::success("grant.create", "user", user_id, details)).await?;
        outbox::publish(&mut tx, "authz.grant.changed", &json!({"user_id": user_id})).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Takes a grant away (security administrator). Returns the user it was taken from.
    pub async fn revoke(&self, caller: &Principal, actor: &Actor, grant_id: i64) -> DomainResult<i64> {
        let row = sqlx::query("SELECT g.user_id, r.code, r.id FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.id = $1")
            .bind(grant_id)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else {
            return Err(DomainError::NotFound("error.grant_not_found"));
        };
        let (user_id, role_code): (i64, String) = (row.get(0), row.get(1));
        self.grant_guard(caller, actor, user_id, row.get(2), None, "grant.revoke").await?;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM grants WHERE id = $1").bind(grant_id).execute(tx.conn()).await?;
        self.roles_changed(&mut tx, user_id).await?;
        let details = json!({"user_id": user_id, "role": role_code});
        self.audit.append(&mut tx, actor, Entry::success("grant.revoke", "user", user_id, details)).await?;
        outbox::publish(&mut tx, "authz.grant.changed", &json!({"user_id": user_id})).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    /// Who may give or take `role_id` to or from `user_id`: the security administrator
    /// (`grant.write`) within their scope, or — for roles marked assignable — anyone holding
    /// `user.write` over the account (分级管理: a unit administrator for their unit tree), never
    /// with a wider scope than their own.
    async fn grant_guard(
        &self,
        caller: &Principal,
        actor: &Actor,
        user_id: i64,
        role_id: i64,
        scope: Option<Scope>,
        action: &str,
    ) -> DomainResult<()> {
        if caller.has(Permission::GrantWrite) {
            return self.guard_target(caller, actor, user_id, action, Permission::GrantWrite).await;
        }
        let Some(own) = caller.scope(Permission::UserWrite) else {
            return self.guard(caller, actor, Permission::GrantWrite, action).await;
        };
        let role =
            sqlx::query("SELECT assignable, admin_class FROM roles WHERE id = $1").bind(role_id).fetch_optional(self.db.pool()).await?;
        let assignable = role.is_some_and(|r| r.get::<i64, _>(0) != 0 && AdminClass::parse(&r.get::<String, _>(1)).is_none());
        if !assignable {
            self.record_denied(actor, action, user_id, "role_not_assignable").await;
            return Err(DomainError::Forbidden("error.role_not_assignable"));
        }
        self.guard_target(caller, actor, user_id, action, Permission::UserWrite).await?;
        if scope.is_some_and(|s| s > own) {
            self.record_denied(actor, action, user_id, "scope_too_wide").await;
            return Err(DomainError::invalid("scope", "error.scope_too_wide"));
        }
        Ok(())
    }

    /// How far `caller` may manage the account `user_id` (三员分立, 分级管理): never an account of
    /// an administrator class (only the server's CLI changes those); its credentials and profile
    /// only when the caller could grant every role it holds, at the scope it holds it.
    pub async fn account_control(&self, caller: &Principal, user_id: i64) -> DomainResult<AccountControl> {
        let rows =
            sqlx::query("SELECT r.admin_class, r.assignable, g.scope FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = $1")
                .bind(user_id)
                .fetch_all(self.db.pool())
                .await?;
        let own = caller.scope(Permission::UserWrite);
        let mut control = AccountControl::Full;
        for r in rows {
            if AdminClass::parse(&r.get::<String, _>(0)).is_some() {
                return Ok(AccountControl::AdminAccount);
            }
            let assignable = r.get::<i64, _>(1) != 0;
            let scope = Scope::parse(&r.get::<String, _>(2)).unwrap_or(Scope::All);
            let grantable = caller.has(Permission::GrantWrite) || (assignable && own.is_some_and(|o| o >= scope));
            if !grantable {
                control = AccountControl::RoleNotCovered;
            }
        }
        Ok(control)
    }

    /// Roles the caller may grant: every role for the security administrator, the assignable
    /// ones for account administrators (分级管理).
    pub async fn grantable_roles(&self, caller: &Principal) -> DomainResult<Vec<Role>> {
        if caller.has(Permission::GrantWrite) {
            return self.load_roles(None).await;
        }
        caller.require(Permission::UserWrite)?;
        Ok(self.load_roles(None).await?.into_iter().filter(|r| r.assignable && r.admin_class.is_none()).collect())
    }

    /// Marks a role assignable by unit administrators, or not (security administrator). The three
    /// administrator roles never are.
    pub async fn set_role_assignable(&self, caller: &Principal, actor: &Actor, role_id: i64, assignable: bool) -> DomainResult<()> {
        self.guard(caller, actor, Permission::RoleWrite, "role.assignable").await?;
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query("SELECT admin_class, code FROM roles WHERE id = $1").bind(role_id).fetch_optional(tx.conn()).await?;
        let Some(row) = row else { return Err(DomainError::NotFound("error.role_not_found")) };
        if AdminClass::parse(&row.get::<String, _>(0)).is_some() {
            return Err(DomainError::Conflict("error.admin_role_not_assignable"));
        }
        sqlx::query("UPDATE roles SET assignable = $2, updated_at = $3 WHERE id = $1")
            .bind(role_id)
            .bind(i64::from(assignable))
            .bind(now_millis())
            .execute(tx.conn())
            .await?;
        let details = json!({"role": row.get::<String, _>(1), "assignable": assignable});
        self.audit.append(&mut tx, actor, Entry::success("role.assignable", "role", role_id, details)).await?;
        outbox::publish(&mut tx, "authz.role.updated", &json!({"role_id": role_id})).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a permission, recording a refusal in the audit trail.
    async fn guard(&self, caller: &Principal, actor: &Actor, p: Permission, action: &str) -> DomainResult<()> {
        if caller.has(p) {
            return Ok(());
        }
        self.record_denied(actor, action, caller.user_id, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// The target of a grant change must be someone else, inside the caller's scope.
    async fn guard_target(&self, caller: &Principal, actor: &Actor, user_id: i64, action: &str, p: Permission) -> DomainResult<()> {
        if user_id == caller.user_id {
            self.record_denied(actor, action, user_id, "own_grants").await;
            return Err(DomainError::Forbidden("error.own_grants"));
        }
        let row = sqlx::query("SELECT u.unit_id, n.path FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = $1")
            .bind(user_id)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = row else {
            return Err(DomainError::NotFound("error.user_not_found"));
        };
        let path: String = row.get(1);
        let target = Target { owner_user_id: Some(user_id), unit_id: row.get(0), unit_path: &path };
        if !caller.allows(p, target) {
            self.record_denied(actor, action, user_id, "out_of_scope").await;
            return Err(DomainError::NotFound("error.user_not_found"));
        }
        Ok(())
    }

    async fn record_denied(&self, actor: &Actor, action: &str, object_id: i64, reason: &str) {
        self.audit.record_denied(&self.db, actor, action, "user", object_id, reason).await;
    }
}

async fn write_permissions(tx: &mut WriteTx, role_id: i64, perms: &BTreeSet<Permission>) -> Result<(), sqlx::Error> {
    for p in perms {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(role_id)
            .bind(p.as_str())
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

fn perm_names(perms: &BTreeSet<Permission>) -> Vec<&'static str> {
    perms.iter().map(|p| p.as_str()).collect()
}
