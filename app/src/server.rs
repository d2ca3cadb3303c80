//! `tongban serve`: first-start set-up or demo data, background work (outbox, jobs, audit
//! checkpoints), and the HTTP(S) server with graceful shutdown.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use tokio::sync::watch;
use tongban_platform::{jobs::run_background, outbox::Dispatcher};
use tongban_web::AppState;

use crate::boot::{Opened, open};

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(mut config: tongban_platform::Config, demo: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    if demo && config.security.second_factor_required.is_none() {
        config.security.second_factor_required = Some(tongban_platform::config::SecondFactorRequired::Administrators);
        println!(
            "demo: only the three administrators need a second factor (security.second_factor_required = \"administrators\"); \
             a real installation requires one of every member of staff"
        );
    }
    let opened = open(config).await?;
    crate::boot::check_blobs(&opened).await?;
    first_start(&opened, demo).await?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let state = AppState::new(opened.identity.clone(), opened.config.clone(), metrics)
        .with_calendar(opened.calendar.clone())
        .with_workflow(opened.workflow.clone())
        .with_catalogue(opened.catalogue.clone())
        .with_intake(opened.intake.clone())
        .with_cases(opened.cases.clone());
    for realm in [tongban_oidc::Realm::Staff, tongban_oidc::Realm::Public] {
        state.oidc.keys.ensure(realm).await.context("creating the OpenID Connect signing keys")?;
    }
    if state.ca.ensure().await.context("creating the certificate authority")? {
        tracing::info!("certificate authority created (SM2 root and issuing CA)");
    }
    if demo {
        let units = ["行政审批服务局（政务服务中心）", "县政府办公室", "自然资源局", "住房和城乡建设局"];
        let made = state.ca.load_demo_seals(&units).await.context("making the demo seals")?;
        if made > 0 {
            tracing::info!(made, "demo seals registered");
        }
    }
    let metrics_listener = match opened.config.server.metrics_bind.trim() {
        "" => None,
        bind => {
            let addr: SocketAddr = bind.parse().with_context(|| format!("server.metrics_bind {bind:?} is not an address"))?;
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr} (server.metrics_bind)"))?;
            tracing::info!(%addr, "metrics listening (http)");
            let app = tongban_web::metrics_router(state.clone());
            Some(tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await }))
        }
    };
    let app = tongban_web::router(state).into_make_service_with_connect_info::<SocketAddr>();

    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = crate::boot::job_runner(&opened);
    opened.workflow.ensure_tick_scheduled().await.context("scheduling the workflow timer job")?;
    let background =
        tokio::spawn(run_background(Dispatcher::new(opened.db.clone(), crate::boot::outbox_handlers(&opened)), runner, stop_rx.clone()));
    let checkpoints = tokio::spawn(checkpoint_loop(opened.clone(), stop_rx.clone()));
    let statistics = tokio::spawn(statistics_loop(opened.db.clone(), stop_rx));

    let addr: SocketAddr =
        opened.config.server.bind.parse().with_context(|| format!("server.bind {:?} is not an address", opened.config.server.bind))?;
    if let (Some(cert), Some(key)) = (&opened.config.server.tls_cert, &opened.config.server.tls_key) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.context("loading the TLS certificate and key")?;
        let handle = axum_server::Handle::new();
        let shutdown_handle = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            shutdown_handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "tongban listening (https)");
        axum_server::bind_rustls(addr, tls).handle(handle).serve(app).await?;
    } else {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "tongban listening (http)");
        println!("tongban is running at http://{addr}/");
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    }

    let _ = stop_tx.send(true);
    if let Some(m) = metrics_listener {
        m.abort();
    }
    let _ = background.await;
    let _ = checkpoints.await;
    let _ = statistics.await;
    match opened.audit.checkpoint(&opened.db).await {
        Ok(Some(cp)) => tracing::info!(seq = cp.seq, "audit checkpoint written at shutdown"),
        Ok(None) => {}
        Err(e) => tracing::error!("audit checkpoint at shutdown failed: {e}"),
    }
    opened.db.close().await;
    Ok(())
}

/// On an empty database: the demo county with `--demo`, otherwise the three administrators.
async fn first_start(opened: &Opened, demo: bool) -> anyhow::Result<()> {
    if demo {
        let loaded = crate::boot::load_demo(opened).await?;
        if crate::boot::load_demo_applications(opened).await? > 0 {
            println!(
                "\nDemo applications loaded. Demo applicants (password {}): 13807351234 (李嘉禾), 13907355678 (嘉禾县珠泉建设开发有限公司).",
                tongban_approval::demo::DEMO_CITIZEN_PASSWORD
            );
        }
        if let Some(logins) = loaded {
            println!("\nDemo county 嘉禾县 (431024) loaded. Demo log-ins (password {} for all):", tongban_identity::demo::DEMO_PASSWORD);
            for l in logins {
                println!("  {:<10} {}  {}  [{}]", l.username, l.display_name, l.unit, l.role);
            }
            println!("The three administrators (sysadmin, secadmin, auditor) enrol a TOTP authenticator at first log-in.\n");
        }
        return Ok(());
    }
    if !opened.identity.has_users().await? {
        let admins = opened.identity.init("县人民政府").await?;
        crate::cli::print_initial_admins(&admins);
    }
    Ok(())
}

/// Keeps the planner's statistics current: at start (after a restore or a bulk import) and hourly.
async fn statistics_loop(db: tongban_platform::Db, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = db.optimize().await {
            tracing::warn!("refreshing planner statistics failed: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn checkpoint_loop(opened: Opened, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(opened.config.audit.checkpoint_interval_seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = opened.audit.checkpoint(&opened.db).await {
            tracing::error!("audit checkpoint failed: {e}");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
