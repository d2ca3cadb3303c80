//! Operational endpoints: `/healthz` (the process answers), `/readyz` (the database answers)
//! and `/metrics` (Prometheus text format, 监控指标).
//!
//! `/metrics` names routes and counts administrative activity, so it is not public. On the main
//! listener it answers only: nobody when `server.metrics_bind` gives it a listener of its own;
//! with `server.metrics_token` set, requests bearing that token; otherwise requests from a
//! loopback peer that did not come through a proxy. Anyone else gets 404 (401 when a token is
//! configured), as if there were no such page.

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::state::AppState;

/// The operational routes of the main listener.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics_main))
}

/// The router of the separate metrics listener (`server.metrics_bind`): `/metrics` only, behind
/// `server.metrics_token` when one is set.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", get(metrics_dedicated)).with_state(state)
}

/// Who may read `/metrics` on the main listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricsAccess {
    Allowed,
    /// 404: the page is not there for this caller.
    Hidden,
    /// 401: a token is configured and was not presented.
    TokenRequired,
}

/// Whether the request bears the configured metrics token (compared in constant time, over
/// digests so that the length is not revealed either).
fn bears_token(headers: &HeaderMap, expected: &str) -> bool {
    let presented = crate::ctx::authorization(headers, "Bearer").unwrap_or("");
    let a = tongban_crypto::sm3_hex(presented.as_bytes());
    let b = tongban_crypto::sm3_hex(expected.as_bytes());
    !presented.is_empty() && tongban_crypto::token::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// Whether the request came straight from this machine: a loopback peer and no sign of a proxy
/// in between (a reverse proxy on the same host would otherwise make every client local). A
/// request without a known peer (no `ConnectInfo`) is not local.
fn from_loopback(headers: &HeaderMap, extensions: &Extensions) -> bool {
    let peer_is_loopback = extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|c| c.0.ip().is_loopback());
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"].iter().any(|h| headers.contains_key(*h));
    peer_is_loopback && !proxied
}

fn main_listener_access(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> MetricsAccess {
    let server = &state.config.server;
    if !server.metrics_bind.trim().is_empty() {
        MetricsAccess::Hidden
    } else if !server.metrics_token.is_empty() {
        if bears_token(headers, &server.metrics_token) { MetricsAccess::Allowed } else { MetricsAccess::TokenRequired }
    } else if from_loopback(headers, extensions) {
        MetricsAccess::Allowed
    } else {
        MetricsAccess::Hidden
    }
}

fn refused(access: MetricsAccess) -> Response {
    match access {
        MetricsAccess::TokenRequired => {
            let mut r = (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"metrics\""));
            r
        }
        _ => crate::error::PageError(tongban_platform::DomainError::NotFound("error.no_such_page")).into_response(),
    }
}

async fn metrics_main(State(state): State<AppState>, headers: HeaderMap, extensions: Extensions) -> Response {
    match main_listener_access(&state, &headers, &extensions) {
        MetricsAccess::Allowed => metrics_text(&state).await.into_response(),
        refusal => refused(refusal),
    }
}

async fn metrics_dedicated(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = &state.config.server.metrics_token;
    if !token.is_empty() && !bears_token(&headers, token) {
        return refused(MetricsAccess::TokenRequired);
    }
    metrics_text(&state).await.into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db().ping().await { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "database unavailable") }
}

async fn metrics_text(state: &AppState) -> impl IntoResponse + use<> {
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
