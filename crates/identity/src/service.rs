//! The identity service: one struct that the web layer and the CLI call.

use tongban_audit::{Actor, AuditTrail};
use tongban_authz::{AuthzService, Permission, Principal, Target};
use tongban_platform::{Db, DomainError, config::SecurityConfig, error::DomainResult};

/// Use cases of the identity slice.
#[derive(Clone)]
pub struct IdentityService {
    pub(crate) db: Db,
    pub(crate) audit: AuditTrail,
    pub(crate) authz: AuthzService,
    pub(crate) policy: SecurityConfig,
    pub(crate) passkeys: Option<crate::PasskeyParty>,
    /// The server's public URL (bound into signed log-in challenges).
    pub(crate) public_url: String,
    /// Who says whether a certificate may log in (the county CA).
    pub(crate) certificate_trust: Option<std::sync::Arc<dyn crate::CertificateTrust>>,
}

impl IdentityService {
    /// A service over `db`, recording to `audit`, with the given security policy.
    pub fn new(db: Db, audit: AuditTrail, policy: SecurityConfig) -> Self {
        let authz =
            AuthzService::new(db.clone(), audit.clone()).with_roles_changed(std::sync::Arc::new(crate::users::EndSessionsOnRoleChange));
        IdentityService { db, audit, authz, policy, passkeys: None, public_url: String::new(), certificate_trust: None }
    }

    /// Names the server's public URL: passkeys are bound to it (none for a bare IP address other
    /// than loopback) and certificate log-in challenges carry it.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.passkeys = crate::PasskeyParty::for_public_url(public_url);
        self.public_url = public_url.trim_end_matches('/').to_string();
        self
    }

    /// Trusts certificates for log-in as `trust` says (the county CA).
    pub fn with_certificate_trust(mut self, trust: std::sync::Arc<dyn crate::CertificateTrust>) -> Self {
        self.certificate_trust = Some(trust);
        self
    }

    /// The roles-and-grants service sharing this database.
    pub fn authz(&self) -> &AuthzService {
        &self.authz
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditTrail {
        &self.audit
    }

    /// The security policy in force.
    pub fn policy(&self) -> &SecurityConfig {
        &self.policy
    }

    /// Checks that `caller` may do `p` on `target`; records a refusal and answers 403 without the
    /// permission, or 404 when the object is outside the caller's scope (so it is not revealed).
    pub(crate) async fn check(
        &self,
        caller: &Principal,
        actor: &Actor,
        p: Permission,
        target: Target<'_>,
        action: &str,
        object: (&str, i64),
    ) -> DomainResult<()> {
        if caller.allows(p, target) {
            return Ok(());
        }
        let reason = if caller.has(p) { "out_of_scope" } else { "missing_permission" };
        self.audit.record_denied(&self.db, actor, action, object.0, object.1, reason).await;
        if caller.has(p) { Err(DomainError::NotFound("error.not_found")) } else { Err(DomainError::Forbidden("error.forbidden")) }
    }

    /// Checks that `caller` holds `p` at all, recording a refusal.
    pub(crate) async fn check_has(&self, caller: &Principal, actor: &Actor, p: Permission, action: &str) -> DomainResult<()> {
        if caller.has(p) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "-", caller.user_id, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }
}
