//! The authenticated caller and the checks made against it.

use std::collections::HashMap;

use serde::Serialize;
use tongban_platform::DomainError;

use crate::model::{AdminClass, Permission, Scope};

/// The caller of a use case (主体): who they are, where they sit, and what they may do.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// Account id.
    pub user_id: i64,
    /// Log-in name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// The account's unit.
    pub unit_id: i64,
    /// Materialised path of the unit (`/1/4/`), for subtree checks.
    pub unit_path: String,
    /// Unit name.
    pub unit_name: String,
    /// Widest scope held for each permission.
    pub permissions: HashMap<Permission, Scope>,
    /// The administrator class held, if any.
    pub admin_class: Option<AdminClass>,
}

/// What a check is made against: an object owned by a user and/or sitting in a unit.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The user the object belongs to (for `self` scope).
    pub owner_user_id: Option<i64>,
    /// The object's unit.
    pub unit_id: i64,
    /// The object's unit path.
    pub unit_path: &'a str,
}

/// How a list query must be narrowed to the caller's data scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeFilter {
    /// No narrowing.
    All,
    /// Units whose path starts with this.
    UnitSubtree(String),
    /// Exactly this unit.
    Unit(i64),
    /// Only this user's own objects.
    OwnUser(i64),
}

impl Principal {
    /// The scope held for `p`, if any.
    pub fn scope(&self, p: Permission) -> Option<Scope> {
        self.permissions.get(&p).copied()
    }

    /// Whether the caller holds `p` at all.
    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains_key(&p)
    }

    /// Fails with 403 unless the caller holds `p`.
    pub fn require(&self, p: Permission) -> Result<Scope, DomainError> {
        self.scope(p).ok_or(DomainError::Forbidden("error.forbidden"))
    }

    /// Whether the caller may do `p` on `target`, given the grant's data scope.
    pub fn allows(&self, p: Permission, target: Target<'_>) -> bool {
        match self.scope(p) {
            None => false,
            Some(Scope::All) => true,
            Some(Scope::Subtree) => target.unit_path.starts_with(&self.unit_path),
            Some(Scope::Unit) => target.unit_id == self.unit_id,
            Some(Scope::Own) => target.owner_user_id == Some(self.user_id),
        }
    }

    /// Fails with 403 unless [`Principal::allows`].
    pub fn require_on(&self, p: Permission, target: Target<'_>) -> Result<(), DomainError> {
        if self.allows(p, target) { Ok(()) } else { Err(DomainError::Forbidden("error.out_of_scope")) }
    }

    /// The narrowing a list query for `p` needs, or 403 without `p`.
    pub fn filter(&self, p: Permission) -> Result<ScopeFilter, DomainError> {
        Ok(match self.require(p)? {
            Scope::All => ScopeFilter::All,
            Scope::Subtree => ScopeFilter::UnitSubtree(self.unit_path.clone()),
            Scope::Unit => ScopeFilter::Unit(self.unit_id),
            Scope::Own => ScopeFilter::OwnUser(self.user_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scope: Scope) -> Principal {
        Principal {
            user_id: 7,
            username: "u".into(),
            display_name: "U".into(),
            unit_id: 4,
            unit_path: "/1/4/".into(),
            unit_name: "x".into(),
            permissions: HashMap::from([(Permission::UserRead, scope)]),
            admin_class: None,
        }
    }

    #[test]
    fn scopes_reach_as_far_as_they_say() {
        let own = Target { owner_user_id: Some(7), unit_id: 4, unit_path: "/1/4/" };
        let child = Target { owner_user_id: Some(9), unit_id: 12, unit_path: "/1/4/12/" };
        let sibling = Target { owner_user_id: Some(9), unit_id: 5, unit_path: "/1/5/" };
        // A path prefix of "/1/4" would wrongly match "/1/40/": paths end with a slash.
        let lookalike = Target { owner_user_id: Some(9), unit_id: 40, unit_path: "/1/40/" };
        let p = principal(Scope::Subtree);
        assert!(p.allows(Permission::UserRead, own) && p.allows(Permission::UserRead, child));
        assert!(!p.allows(Permission::UserRead, sibling) && !p.allows(Permission::UserRead, lookalike));
        assert!(!p.allows(Permission::UserWrite, own));
        let p = principal(Scope::Unit);
        assert!(p.allows(Permission::UserRead, own) && !p.allows(Permission::UserRead, child));
        let p = principal(Scope::Own);
        assert!(p.allows(Permission::UserRead, own) && !p.allows(Permission::UserRead, child));
        assert!(principal(Scope::All).allows(Permission::UserRead, sibling));
    }
}
