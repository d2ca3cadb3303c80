//! The authorisation slice (权限): permissions, roles that bundle them, grants that give a role
//! to a user with a data scope (数据范围: self / own unit / unit subtree / all), and the
//! three-admin separation (三员分立) enforced here, in the service layer.

mod model;
mod principal;
mod service;

pub use model::{AdminClass, Grant, Permission, Role, Scope};
pub use principal::{Principal, ScopeFilter, Target};
pub use service::{AccountControl, AuthzService, RoleInput, RolesChanged};
