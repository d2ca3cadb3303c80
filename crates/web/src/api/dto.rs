//! The API's request and response bodies. They mirror the domain types but are the API's own
//! contract, so the domain can change without breaking clients.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeDto {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub unit_id: i64,
    pub unit_name: String,
    /// Permission → widest data scope held.
    pub permissions: std::collections::BTreeMap<String, String>,
    /// `system`, `security`, `audit` or null.
    pub admin_class: Option<String>,
}

/// A unit.
#[derive(Serialize, ToSchema)]
pub struct UnitDto {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    /// `government`, `department`, `town` or `sub_unit`.
    pub kind: String,
    pub region_code: Option<String>,
    pub sort_order: i64,
    pub enabled: bool,
    pub depth: usize,
}

impl From<tongban_identity::Unit> for UnitDto {
    fn from(u: tongban_identity::Unit) -> Self {
        UnitDto {
            id: u.id,
            parent_id: u.parent_id,
            name: u.name,
            kind: u.kind.as_str().into(),
            region_code: u.region_code,
            sort_order: u.sort_order,
            enabled: u.enabled,
            depth: u.depth,
        }
    }
}

/// Creating or editing a unit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitBody {
    pub parent_id: Option<i64>,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub sort_order: i64,
}

/// An account.
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub unit_id: i64,
    pub unit_name: String,
    pub position: String,
    pub email: String,
    pub phone: String,
    pub enabled: bool,
    pub locked: bool,
    pub totp_enabled: bool,
}

impl From<tongban_identity::User> for UserDto {
    fn from(u: tongban_identity::User) -> Self {
        UserDto {
            locked: u.is_locked(tongban_platform::clock::now_millis()),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            unit_id: u.unit_id,
            unit_name: u.unit_name,
            position: u.position,
            email: u.email,
            phone: u.phone,
            enabled: u.enabled,
            totp_enabled: u.totp_enabled,
        }
    }
}

/// Creating an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub display_name: String,
    pub unit_id: i64,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
}

/// Editing an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub display_name: String,
    pub unit_id: i64,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
}

/// A created account or a reset password: the one-time password is shown once.
#[derive(Serialize, ToSchema)]
pub struct OneTimePasswordDto {
    pub user_id: i64,
    pub one_time_password: String,
}

/// A role.
#[derive(Serialize, ToSchema)]
pub struct RoleDto {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub description: String,
    pub admin_class: Option<String>,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

impl From<tongban_authz::Role> for RoleDto {
    fn from(r: tongban_authz::Role) -> Self {
        RoleDto {
            id: r.id,
            code: r.code,
            name: r.name,
            description: r.description,
            admin_class: r.admin_class.map(|c| c.as_str().into()),
            builtin: r.builtin,
            permissions: r.permissions.iter().map(|p| p.as_str().into()).collect(),
        }
    }
}

/// Creating or editing a custom role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A grant.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    pub id: i64,
    pub user_id: i64,
    pub role_id: i64,
    pub role_code: String,
    /// `self`, `unit`, `subtree` or `all`.
    pub scope: String,
}

/// Granting a role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub role_id: i64,
    /// `self`, `unit`, `subtree` or `all`.
    pub scope: String,
}

/// An audit record.
#[derive(Serialize, ToSchema)]
pub struct AuditRecordDto {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub unit: String,
    pub ip: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub result: String,
    pub details: serde_json::Value,
    pub hash: String,
}

/// A page of audit records.
#[derive(Serialize, ToSchema)]
pub struct AuditPageDto {
    pub records: Vec<AuditRecordDto>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// A session.
#[derive(Serialize, ToSchema)]
pub struct SessionDto {
    pub id: i64,
    pub created_at: String,
    pub last_seen_at: String,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
}

/// An API token (without its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenDto {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub expires_at: String,
}

/// Creating an API token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub name: String,
    /// Lifetime in days, 1–365.
    pub days: i64,
    /// Whether the token may change state.
    #[serde(default)]
    pub write: bool,
}

/// A created API token: the secret is shown once.
#[derive(Serialize, ToSchema)]
pub struct NewTokenDto {
    pub id: i64,
    pub token: String,
}

/// A region (GB/T 2260).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionDto {
    /// 2, 4, 6 or 9 digits.
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub parent_code: Option<String>,
    /// 1 province … 4 town (ignored on input).
    #[serde(default)]
    pub level: i64,
}

/// A change that answers only that it was made.
#[derive(Serialize, ToSchema)]
pub struct OkDto {
    /// Always true.
    pub ok: bool,
}

/// The id of what was created.
#[derive(Serialize, ToSchema)]
pub struct IdDto {
    /// Id.
    pub id: i64,
}

/// What an account action answers: the one-time password after `reset-password`, else `ok`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserActionDto {
    /// `reset-password`.
    Password(OneTimePasswordDto),
    /// `enable`, `disable`, `lock`, `unlock`.
    Done(OkDto),
}

/// How many recipient units a document was sent to (发文).
#[derive(Serialize, ToSchema)]
pub struct IssuedDto {
    /// Recipient units.
    pub recipients: usize,
}

/// How many deliveries a withdrawal (撤回) reached.
#[derive(Serialize, ToSchema)]
pub struct WithdrawnDto {
    /// Deliveries withdrawn.
    pub withdrawn: usize,
}

/// The workflow instance a document was sent into.
#[derive(Serialize, ToSchema)]
pub struct InstanceStartedDto {
    /// Workflow instance id.
    pub instance_id: i64,
}

/// An opened delivery (收文) and the sealed package it carries.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPackageDto {
    /// The delivery.
    pub delivery: tongban_documents::Delivery,
    /// The sealed package as issued (document, seal, signature), or null when it cannot be read.
    pub package: serde_json::Value,
}

/// A signed receipt (回执) for a delivery.
#[derive(Serialize, ToSchema)]
pub struct ReceiptDto {
    /// The signed text: receipt kind, delivery, document number, package SM3, unit, time.
    pub text: String,
    /// SM2 signature over `text`, hex.
    pub signature: String,
    /// `sm2-with-sm3`.
    pub algorithm: String,
    /// The signing unit's certificate (PEM).
    pub certificate: String,
}

/// The supervision figures (电子监察).
#[derive(Serialize, ToSchema)]
pub struct SupervisionDto {
    /// Case counts and on-time rates, in total and per item.
    pub cases: tongban_approval::cases::CaseStats,
    /// Open tasks with their deadline state.
    pub open_tasks: Vec<SupervisedTaskDto>,
}

/// An open task and the department that holds it.
#[derive(Serialize, ToSchema)]
pub struct SupervisedTaskDto {
    /// The task.
    pub task: tongban_workflow::service::TaskRow,
    /// The department.
    pub department: String,
}
