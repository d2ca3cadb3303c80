//! Operational endpoints: `/healthz` (the process answers), `/readyz` (the database answers)
//! and `/metrics` (Prometheus text format).

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

use crate::state::AppState;

/// The operational routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics_text))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db().ping().await { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "database unavailable") }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = state.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    let (size, idle) = state.db().pool_stats();
    out.push_str("# HELP tongban_db_pool_connections Open database connections.\n# TYPE tongban_db_pool_connections gauge\n");
    out.push_str(&format!("tongban_db_pool_connections {size}\n"));
    out.push_str("# HELP tongban_db_pool_idle Idle database connections.\n# TYPE tongban_db_pool_idle gauge\n");
    out.push_str(&format!("tongban_db_pool_idle {idle}\n"));
    out.push_str("# HELP tongban_jobs Jobs by status.\n# TYPE tongban_jobs gauge\n");
    let counts = tongban_platform::jobs::counts_by_status(state.db()).await.unwrap_or_default();
    for status in ["queued", "running", "done", "dead"] {
        let n = counts.iter().find(|(s, _)| s == status).map(|(_, n)| *n).unwrap_or(0);
        out.push_str(&format!("tongban_jobs{{status=\"{status}\"}} {n}\n"));
    }
    let pending = tongban_platform::outbox::pending_count(state.db()).await.unwrap_or(0);
    out.push_str("# HELP tongban_outbox_pending Outbox events not yet delivered.\n# TYPE tongban_outbox_pending gauge\n");
    out.push_str(&format!("tongban_outbox_pending {pending}\n"));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
