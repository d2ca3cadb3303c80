//! Identity types.

use serde::{Deserialize, Serialize};

/// An administrative division (行政区划) with its GB/T 2260 code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    /// GB/T 2260 code: 2 digits (province), 4 (city), 6 (county) or 9 (town, per the statistical division codes).
    pub code: String,
    /// Name, e.g. 嘉禾县.
    pub name: String,
    /// Code of the region above.
    pub parent_code: Option<String>,
    /// 1 province, 2 city, 3 county, 4 town.
    pub level: i64,
}

/// What kind of unit a node of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// The county government itself (县人民政府).
    Government,
    /// A department (委办局).
    Department,
    /// A town or township (乡镇).
    Town,
    /// A section, window or station inside another unit (内设机构/下属单位).
    SubUnit,
}

impl UnitKind {
    /// Every kind.
    pub const ALL: [UnitKind; 4] = [UnitKind::Government, UnitKind::Department, UnitKind::Town, UnitKind::SubUnit];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Government => "government",
            UnitKind::Department => "department",
            UnitKind::Town => "town",
            UnitKind::SubUnit => "sub_unit",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<UnitKind> {
        UnitKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A unit (单位) in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    /// Id.
    pub id: i64,
    /// Parent unit; `None` for the root.
    pub parent_id: Option<i64>,
    /// Materialised path such as `/1/4/`.
    pub path: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: UnitKind,
    /// GB/T 2260 region code.
    pub region_code: Option<String>,
    /// Position among siblings.
    pub sort_order: i64,
    /// Disabled units accept no new accounts.
    pub enabled: bool,
    /// Depth in the tree, from 0.
    pub depth: usize,
}

/// Input for creating or editing a unit.
#[derive(Debug, Clone, Deserialize)]
pub struct UnitInput {
    /// Parent unit id (required except for the first unit).
    pub parent_id: Option<i64>,
    /// Name, 1–64 characters.
    pub name: String,
    /// Kind name.
    pub kind: String,
    /// Region code, optional.
    #[serde(default)]
    pub region_code: Option<String>,
    /// Sort order.
    #[serde(default)]
    pub sort_order: i64,
}

/// A staff account (工作人员账号).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Log-in name.
    pub username: String,
    /// Real name.
    pub display_name: String,
    /// Unit.
    pub unit_id: i64,
    /// Unit name.
    pub unit_name: String,
    /// Unit path.
    #[serde(skip)]
    pub unit_path: String,
    /// Position (职务).
    pub position: String,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Enabled.
    pub enabled: bool,
    /// Locked until (UTC ms), if locked.
    pub locked_until: Option<i64>,
    /// TOTP enrolled.
    pub totp_enabled: bool,
    /// Must change password at next log-in.
    pub must_change_password: bool,
}

/// Input for a new account: its log-in name and profile.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Log-in name: letters, digits, `.`, `_`, `-`, 3–32 characters.
    pub username: String,
    /// Name, unit, position and contacts.
    pub profile: UserProfile,
}

/// The editable fields of an account (档案信息).
#[derive(Debug, Clone, Deserialize)]
pub struct UserProfile {
    /// Real name.
    pub display_name: String,
    /// Unit id.
    pub unit_id: i64,
    /// Position.
    #[serde(default)]
    pub position: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
    /// Phone.
    #[serde(default)]
    pub phone: String,
}

impl UserProfile {
    /// A profile with no e-mail or phone.
    pub fn new(display_name: &str, unit_id: i64, position: &str) -> UserProfile {
        UserProfile { display_name: display_name.into(), unit_id, position: position.into(), email: String::new(), phone: String::new() }
    }
}

/// A session as listed under "my sessions".
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: i64,
    /// Started at, UTC ms.
    pub created_at: i64,
    /// Last request, UTC ms.
    pub last_seen_at: i64,
    /// Source IP.
    pub ip: String,
    /// Browser.
    pub user_agent: String,
    /// Whether it is the session making this request.
    pub current: bool,
}

/// A personal API token as listed (the secret is shown only once, at creation).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    /// Id.
    pub id: i64,
    /// Name the user gave it.
    pub name: String,
    /// First characters, to recognise it.
    pub prefix: String,
    /// `read` or `read write`.
    pub scopes: String,
    /// Created, UTC ms.
    pub created_at: i64,
    /// Expires, UTC ms.
    pub expires_at: i64,
    /// Last used, UTC ms.
    pub last_used_at: Option<i64>,
}

/// Checks a user name: 3–32 of letters, digits, `.`, `_`, `-`.
pub fn valid_username(s: &str) -> bool {
    (3..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks an optional e-mail address loosely (one `@`, a dot in the domain).
pub fn valid_email(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 128
            && s.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.contains('@') && !s.contains(' ')))
}

/// Checks an optional phone number: digits, `-`, `+`, 5–20 characters.
pub fn valid_phone(s: &str) -> bool {
    s.is_empty() || ((5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_checks() {
        assert!(valid_username("li.ming") && !valid_username("li ming") && !valid_username("ab"));
        assert!(valid_email("") && valid_email("a@b.cn") && !valid_email("a@b") && !valid_email("@b.cn"));
        assert!(valid_phone("0735-6621234") && !valid_phone("12ab5"));
    }
}
