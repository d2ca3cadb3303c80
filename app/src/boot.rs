//! Opening what every command needs, the same way for `serve` and the other commands: the
//! configuration, the database (migrated), the audit trail and the services.

use std::sync::Arc;

use anyhow::Context;
use tongban_audit::AuditTrail;
use tongban_calendar::CalendarService;
use tongban_crypto::AuditSigner;
use tongban_identity::IdentityService;
use tongban_platform::{Config, Db, migrate};

/// Everything opened.
#[derive(Clone)]
pub struct Opened {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The audit trail.
    pub audit: AuditTrail,
    /// The identity service.
    pub identity: IdentityService,
    /// The working-day calendar (工作日历).
    pub calendar: CalendarService,
    /// The workflow engine service (工作流).
    pub workflow: tongban_workflow::WorkflowService,
    /// The service catalogue (事项目录).
    pub catalogue: tongban_approval::CatalogueService,
    /// Public intake of applications (网上申报).
    pub intake: tongban_approval::intake::IntakeService,
    /// Internal processing of applications (内网办理).
    pub cases: tongban_approval::cases::CaseService,
    /// The blob store (文件存储) the services above keep uploaded files in.
    pub blobs: tongban_platform::blobs::BlobStore,
}

/// Connects to the database, applies migrations, and loads (or creates) the audit key.
pub async fn open(config: Config) -> anyhow::Result<Opened> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url(), config.database.max_connections)
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(&config.database_url())))?;
    migrate::run(&db).await.context("applying migrations")?;
    let key_path = config.audit_key_path();
    if !key_path.exists() {
        // A new key would make every existing record look forged: refuse instead.
        let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(db.pool()).await?;
        anyhow::ensure!(
            records == 0,
            "the audit key {} is missing but the audit trail has {records} records; restore the key file (audit.key_file)",
            key_path.display()
        );
    }
    let signer = AuditSigner::load_or_create(&config.audit_key_path()).context("loading the audit key")?;
    let secrets = tongban_crypto::seal::SecretBox::load_or_create(&config.secret_key_path()).context("loading the secret key")?;
    let syslog = match config.audit.syslog.trim() {
        "" => None,
        url => Some(
            tongban_audit::SyslogTarget::parse(url)
                .with_context(|| format!("audit.syslog {url:?} must be udp://host:port or tcp://host:port"))?,
        ),
    };
    let sinks = tongban_audit::CheckpointSinks { mirror: config.audit.checkpoint_mirror.clone(), syslog };
    let audit = AuditTrail::new(signer, config.audit_checkpoint_path()).with_sinks(sinks);
    let ca = tongban_pki::ca::CaService::new(db.clone(), audit.clone(), secrets, &config.public_url());
    let identity = IdentityService::new(db.clone(), audit.clone(), config.security.clone())
        .with_public_url(&config.public_url())
        .with_certificate_trust(Arc::new(CountyCa(ca)));
    let calendar = CalendarService::new(db.clone(), audit.clone());
    calendar.ensure_official().await.context("storing the official holiday schedules")?;
    let blobs = tongban_platform::blobs::BlobStore::from_config(&config).context("opening the blob store (blobs.*)")?;
    let workflow = tongban_workflow::WorkflowService::new(db.clone(), audit.clone(), calendar.clone())
        .with_blobs(blobs.clone(), config.server.max_upload_bytes);
    let catalogue = tongban_approval::CatalogueService::new(db.clone(), audit.clone());
    let intake = tongban_approval::intake::IntakeService::new(
        db.clone(),
        audit.clone(),
        blobs.clone(),
        catalogue.clone(),
        config.server.max_upload_bytes,
    );
    let cases = tongban_approval::cases::CaseService::new(
        db.clone(),
        audit.clone(),
        calendar.clone(),
        workflow.clone(),
        catalogue.clone(),
        blobs.clone(),
    )
    .with_upload_limit(config.server.max_upload_bytes);
    Ok(Opened { config: Arc::new(config), db, audit, identity, calendar, workflow, catalogue, intake, cases, blobs })
}

/// The county CA as the trust anchor of certificate log-in.
struct CountyCa(tongban_pki::ca::CaService);

#[async_trait::async_trait]
impl tongban_identity::CertificateTrust for CountyCa {
    async fn status_for(
        &self,
        cert: &tongban_crypto::cert::CertificateInfo,
        user_id: i64,
    ) -> tongban_platform::error::DomainResult<tongban_identity::CertificateStatus> {
        use tongban_identity::CertificateStatus;
        Ok(match self.0.staff_login_status(&cert.pem, &cert.fingerprint, user_id).await? {
            None => CertificateStatus::Untrusted,
            Some(true) => CertificateStatus::Revoked,
            Some(false) => CertificateStatus::Trusted,
        })
    }
}

/// Checks that the blob store answers and takes the credentials (a wrong S3 key or bucket fails
/// here rather than at the first upload).
pub async fn check_blobs(opened: &Opened) -> anyhow::Result<()> {
    opened.blobs.check().await.with_context(|| blob_store_description(&opened.config))
}

/// Where the blob store is, for messages.
fn blob_store_description(config: &Config) -> String {
    if config.blobs.is_s3() {
        format!(
            "reaching the S3 blob store {} (bucket {}); check blobs.s3_endpoint, blobs.s3_bucket and the access key",
            config.blobs.s3_endpoint, config.blobs.s3_bucket
        )
    } else {
        format!("reading the blob directory {}", config.data_dir.join("blobs").display())
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The outbox handlers of every slice (zone messages between intake and processing …).
pub fn outbox_handlers(opened: &Opened) -> Vec<Arc<dyn tongban_platform::outbox::OutboxHandler>> {
    vec![
        Arc::new(tongban_approval::intake::PublicReceiver(opened.intake.clone())),
        Arc::new(tongban_approval::cases::InternalReceiver(opened.cases.clone())),
        Arc::new(tongban_notify::StaffNotifier),
        Arc::new(tongban_documents::DocumentFlowReceiver(
            tongban_documents::DocumentService::new(opened.db.clone(), opened.audit.clone()).with_workflow(opened.workflow.clone()),
        )),
    ]
}

/// The job handlers of every slice (workflow timers, outbound notifications).
pub fn job_runner(opened: &Opened) -> tongban_platform::jobs::JobRunner {
    let mut runner = tongban_platform::jobs::JobRunner::new(opened.db.clone());
    runner.register(tongban_workflow::service::TICK_JOB, Arc::new(tongban_workflow::service::TickJob(opened.workflow.clone())));
    runner.register(tongban_notify::SEND_JOB, Arc::new(tongban_notify::SendJob::new(opened.db.clone(), opened.config.notify.clone())));
    // The key file was opened (and created) by `open`; a failure here leaves logout tokens unsent
    // and their jobs retrying, never a crash.
    if let Ok(secrets) = tongban_crypto::seal::SecretBox::load_or_create(&opened.config.secret_key_path()) {
        let keys = tongban_oidc::keys::KeyRing::new(opened.db.clone(), secrets);
        runner.register(
            tongban_oidc::backchannel::BACKCHANNEL_JOB,
            Arc::new(tongban_oidc::backchannel::BackchannelJob::new(keys, &opened.config.public_url())),
        );
    }
    runner
}

/// Loads the demo county and, on top of it, the demo service catalogue with its processes. Answers
/// the demo log-ins when the county was loaded now (an empty database), `None` otherwise.
pub async fn load_demo(opened: &Opened) -> anyhow::Result<Option<Vec<tongban_identity::demo::DemoLogin>>> {
    let logins = tongban_identity::demo::load(&opened.identity).await?;
    let admin = opened.identity.user_by_username("sysadmin").await?.context("the demo system administrator is missing")?;
    let principal = opened.identity.authz().principal(admin.id).await?.context("the demo system administrator has no principal")?;
    let units: Vec<(i64, String)> = opened.identity.all_units().await?.into_iter().map(|u| (u.id, u.name)).collect();
    tongban_approval::demo::load(&opened.catalogue, &opened.workflow, &principal, &units).await?;
    tongban_oidc::demo::load(&tongban_oidc::clients::ClientRegistry::new(opened.db.clone(), opened.audit.clone())).await?;
    tongban_documents::DocumentService::new(opened.db.clone(), opened.audit.clone()).load_demo().await?;
    Ok(logins)
}

/// Adds demo applicants and applications in every state (for `serve --demo`; the test harness
/// loads the county and catalogue only, so that tests start from an empty window).
pub async fn load_demo_applications(opened: &Opened) -> anyhow::Result<usize> {
    let dispatcher = tongban_platform::outbox::Dispatcher::new(opened.db.clone(), outbox_handlers(opened));
    let services = tongban_approval::demo::DemoServices {
        identity: &opened.identity,
        intake: &opened.intake,
        cases: &opened.cases,
        workflow: &opened.workflow,
        dispatcher: &dispatcher,
    };
    Ok(tongban_approval::demo::load_applications(&services, &opened.catalogue).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_password() {
        assert_eq!(super::redact_url("postgres://tb:secret@localhost/tb"), "postgres://tb:***@localhost/tb");
        assert_eq!(super::redact_url("sqlite://./data/tongban.db"), "sqlite://./data/tongban.db");
    }
}
