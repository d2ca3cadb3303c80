//! Permissions, scopes, roles and grants.

use serde::{Deserialize, Serialize};

/// One thing a user may do. Stored by its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// See units (单位查看).
    #[serde(rename = "unit.read")]
    UnitRead,
    /// Create and edit units (单位管理) — system administrator only.
    #[serde(rename = "unit.write")]
    UnitWrite,
    /// See staff accounts.
    #[serde(rename = "user.read")]
    UserRead,
    /// Create, edit, lock and reset staff accounts.
    #[serde(rename = "user.write")]
    UserWrite,
    /// See roles and grants.
    #[serde(rename = "role.read")]
    RoleRead,
    /// Create and edit roles — security administrator only.
    #[serde(rename = "role.write")]
    RoleWrite,
    /// Grant and revoke roles — security administrator only.
    #[serde(rename = "grant.write")]
    GrantWrite,
    /// Read the audit trail — auditor only.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Change platform configuration — system administrator only.
    #[serde(rename = "config.write")]
    ConfigWrite,
    /// Use the staff workbench.
    #[serde(rename = "workbench.use")]
    WorkbenchUse,
    /// Upload and manage process definitions (流程定义管理).
    #[serde(rename = "workflow.define")]
    WorkflowDefine,
    /// Start process instances by hand (发起流程).
    #[serde(rename = "workflow.start")]
    WorkflowStart,
    /// Manage the service catalogue (事项管理).
    #[serde(rename = "catalogue.write")]
    CatalogueWrite,
    /// Receive applications at the window: accept, refuse, request supplements (窗口受理).
    #[serde(rename = "approval.accept")]
    ApprovalAccept,
    /// Electronic supervision: every deadline, urge holders, export (电子监察).
    #[serde(rename = "supervision.read")]
    SupervisionRead,
    /// Run the certificate authority: issue and revoke certificates (证书管理) — security
    /// administrator only.
    #[serde(rename = "pki.manage")]
    PkiManage,
    /// Use a unit's electronic seal on a document (用印), for the units in scope.
    #[serde(rename = "seal.use")]
    SealUse,
    /// Number and issue official documents (公文编号、发文), for the units in scope.
    #[serde(rename = "document.issue")]
    DocumentIssue,
}

impl Permission {
    /// Every permission, in display order.
    pub const ALL: [Permission; 18] = [
        Permission::UnitRead,
        Permission::UnitWrite,
        Permission::UserRead,
        Permission::UserWrite,
        Permission::RoleRead,
        Permission::RoleWrite,
        Permission::GrantWrite,
        Permission::AuditRead,
        Permission::ConfigWrite,
        Permission::WorkbenchUse,
        Permission::WorkflowDefine,
        Permission::WorkflowStart,
        Permission::CatalogueWrite,
        Permission::ApprovalAccept,
        Permission::SupervisionRead,
        Permission::PkiManage,
        Permission::SealUse,
        Permission::DocumentIssue,
    ];

    /// The stored name, e.g. `user.write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UnitRead => "unit.read",
            Permission::UnitWrite => "unit.write",
            Permission::UserRead => "user.read",
            Permission::UserWrite => "user.write",
            Permission::RoleRead => "role.read",
            Permission::RoleWrite => "role.write",
            Permission::GrantWrite => "grant.write",
            Permission::AuditRead => "audit.read",
            Permission::ConfigWrite => "config.write",
            Permission::WorkbenchUse => "workbench.use",
            Permission::WorkflowDefine => "workflow.define",
            Permission::WorkflowStart => "workflow.start",
            Permission::CatalogueWrite => "catalogue.write",
            Permission::ApprovalAccept => "approval.accept",
            Permission::SupervisionRead => "supervision.read",
            Permission::PkiManage => "pki.manage",
            Permission::SealUse => "seal.use",
            Permission::DocumentIssue => "document.issue",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Permissions reserved to the built-in three administrator roles; custom roles may not hold them.
    pub fn is_reserved(self) -> bool {
        matches!(
            self,
            Permission::UnitWrite
                | Permission::RoleWrite
                | Permission::GrantWrite
                | Permission::AuditRead
                | Permission::ConfigWrite
                | Permission::PkiManage
        )
    }
}

/// How far a grant reaches (数据范围), from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only the user's own records (本人).
    #[serde(rename = "self")]
    Own,
    /// The user's own unit (本单位).
    Unit,
    /// The user's unit and every unit below it (本单位及下级).
    Subtree,
    /// Everything (全部).
    All,
}

impl Scope {
    /// Every scope, narrowest first.
    pub const ALL: [Scope; 4] = [Scope::Own, Scope::Unit, Scope::Subtree, Scope::All];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Own => "self",
            Scope::Unit => "unit",
            Scope::Subtree => "subtree",
            Scope::All => "all",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Which of the three administrators (三员) a role makes its holder, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminClass {
    /// System administrator (系统管理员).
    System,
    /// Security administrator (安全管理员).
    Security,
    /// Security auditor (安全审计员).
    Audit,
}

impl AdminClass {
    /// Parses the stored name; `none` and unknown names are `None`.
    pub fn parse(s: &str) -> Option<AdminClass> {
        match s {
            "system" => Some(AdminClass::System),
            "security" => Some(AdminClass::Security),
            "audit" => Some(AdminClass::Audit),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminClass::System => "system",
            AdminClass::Security => "security",
            AdminClass::Audit => "audit",
        }
    }
}

/// A role (角色): a named bundle of permissions.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// Id.
    pub id: i64,
    /// Stable code, e.g. `sys_admin`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Which administrator it makes its holder.
    pub admin_class: Option<AdminClass>,
    /// Built-in roles cannot be edited or deleted.
    pub builtin: bool,
    /// Unit administrators may grant it within their scope (分级管理); set by the security
    /// administrator, never for the three administrator roles.
    pub assignable: bool,
    /// Its permissions.
    pub permissions: Vec<Permission>,
}

/// A grant (授权): a role given to a user with a data scope.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// Id.
    pub id: i64,
    /// The user holding it.
    pub user_id: i64,
    /// The role.
    pub role_id: i64,
    /// Role code.
    pub role_code: String,
    /// Role name.
    pub role_name: String,
    /// The data scope.
    pub scope: Scope,
    /// Granted at, UTC ms.
    pub created_at: i64,
}
