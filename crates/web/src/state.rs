//! Shared application state.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tongban_identity::IdentityService;
use tongban_platform::{Config, Db};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Identity, which also holds the authz service and the audit trail.
    pub identity: IdentityService,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Renders /metrics.
    pub metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// State over an identity service and configuration.
    pub fn new(identity: IdentityService, config: Arc<Config>, metrics: Option<PrometheusHandle>) -> Self {
        AppState { identity, config, metrics }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        self.identity.db()
    }

    /// Whether cookies get the `Secure` flag.
    pub fn secure_cookies(&self) -> bool {
        self.config.tls_enabled() || self.config.security.secure_cookies
    }
}
