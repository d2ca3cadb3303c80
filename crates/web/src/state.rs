//! Shared application state.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tongban_approval::{CatalogueService, cases::CaseService, intake::IntakeService};
use tongban_calendar::CalendarService;
use tongban_identity::IdentityService;
use tongban_platform::{Config, Db};
use tongban_workflow::WorkflowService;

/// What every handler can reach: a cheap handle (one reference count) on [`Services`], since
/// axum clones the state for every extractor and middleware of every request.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Clone)]
pub struct Services {
    /// Identity, which also holds the authz service and the audit trail.
    pub identity: IdentityService,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Renders /metrics.
    pub metrics: Option<PrometheusHandle>,
    /// The working-day calendar (工作日历).
    pub calendar: CalendarService,
    /// The workflow service (工作流).
    pub workflow: WorkflowService,
    /// The service catalogue (事项目录).
    pub catalogue: CatalogueService,
    /// Public intake (网上申报).
    pub intake: IntakeService,
    /// Internal processing (内网办理).
    pub cases: CaseService,
    /// Uploaded files.
    pub blobs: tongban_platform::blobs::BlobStore,
    /// In-app notifications.
    pub notify: tongban_notify::NotifyService,
    /// The OpenID Connect provider (统一身份认证).
    pub oidc: tongban_oidc::provider::Provider,
    /// The certificate authority (数字证书认证).
    pub ca: tongban_pki::ca::CaService,
    /// Official documents (公文).
    pub documents: tongban_documents::DocumentService,
}

impl AppState {
    /// State over an identity service and configuration. The calendar service shares the
    /// identity service's database and audit trail; [`AppState::with_calendar`] shares an
    /// existing one (and its cache) instead.
    pub fn new(identity: IdentityService, config: Arc<Config>, metrics: Option<PrometheusHandle>) -> Self {
        let calendar = CalendarService::new(identity.db().clone(), identity.audit().clone());
        let blobs = tongban_platform::blobs::BlobStore::from_config(&config).unwrap_or_else(|e| {
            // `tongban serve` opens the same store before this and stops on errors; reaching here
            // means a test or tool with a broken `blobs` configuration: uploads fail, visibly.
            tracing::error!("blob store: {e}");
            tongban_platform::blobs::BlobStore::unavailable(e)
        });
        let workflow = WorkflowService::new(identity.db().clone(), identity.audit().clone(), calendar.clone())
            .with_blobs(blobs.clone(), config.server.max_upload_bytes);
        let catalogue = CatalogueService::new(identity.db().clone(), identity.audit().clone());
        let intake = IntakeService::new(
            identity.db().clone(),
            identity.audit().clone(),
            blobs.clone(),
            catalogue.clone(),
            config.server.max_upload_bytes,
        );
        let cases = CaseService::new(
            identity.db().clone(),
            identity.audit().clone(),
            calendar.clone(),
            workflow.clone(),
            catalogue.clone(),
            blobs.clone(),
        )
        .with_upload_limit(config.server.max_upload_bytes);
        let notify = tongban_notify::NotifyService::new(identity.db().clone());
        let secrets = tongban_crypto::seal::SecretBox::load_or_create(&config.secret_key_path()).unwrap_or_else(|e| {
            // `tongban serve` opens the key file before this and stops on errors; reaching here
            // means a test or tool without one, where keys need not outlive the process.
            tracing::error!("secret key: {e}; using a key for this process only");
            tongban_crypto::seal::SecretBox::new(rand::random())
        });
        let documents = tongban_documents::DocumentService::new(identity.db().clone(), identity.audit().clone())
            .with_font(config.documents.font_file.as_deref())
            .with_workflow(workflow.clone())
            .with_calendar(calendar.clone())
            .with_blobs(blobs.clone(), config.server.max_upload_bytes);
        let ca = tongban_pki::ca::CaService::new(identity.db().clone(), identity.audit().clone(), secrets.clone(), &config.public_url());
        let keys = tongban_oidc::keys::KeyRing::new(identity.db().clone(), secrets);
        let oidc = tongban_oidc::provider::Provider::new(identity.db().clone(), identity.audit().clone(), keys, &config.public_url());
        AppState(Arc::new(Services {
            identity,
            config,
            metrics,
            calendar,
            workflow,
            catalogue,
            intake,
            cases,
            blobs,
            notify,
            oidc,
            ca,
            documents,
        }))
    }

    /// The same state with this calendar service.
    pub fn with_calendar(mut self, calendar: CalendarService) -> Self {
        Arc::make_mut(&mut self.0).calendar = calendar;
        self
    }

    /// The same state with this catalogue service.
    pub fn with_catalogue(mut self, catalogue: CatalogueService) -> Self {
        Arc::make_mut(&mut self.0).catalogue = catalogue;
        self
    }

    /// The same state with this case service.
    pub fn with_cases(mut self, cases: CaseService) -> Self {
        Arc::make_mut(&mut self.0).cases = cases;
        self
    }

    /// The same state with this intake service.
    pub fn with_intake(mut self, intake: IntakeService) -> Self {
        Arc::make_mut(&mut self.0).intake = intake;
        self
    }

    /// The same state with this workflow service.
    pub fn with_workflow(mut self, workflow: WorkflowService) -> Self {
        let services = Arc::make_mut(&mut self.0);
        services.documents = services.documents.clone().with_workflow(workflow.clone());
        services.workflow = workflow;
        self
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
