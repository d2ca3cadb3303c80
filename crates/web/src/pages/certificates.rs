//! Certificate log-in for staff (证书登录, U 盾). For USB-key middleware: `POST
//! /login/certificate/challenge` answers a text to sign, `POST /login/certificate/finish` takes
//! the certificate and the signature (JSON, with the page's CSRF token like the passkey calls).
//! Behind a TLS-terminating proxy that verifies client certificates: `GET /login/certificate`
//! logs in with the certificate the proxy passes in `security.client_cert_header`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::json;
use tongban_identity::PasskeyLogin;

use tongban_platform::DomainError;

use super::{
    PageResult,
    auth::{refused_login, stage_path},
};
use crate::{
    ctx::Ctx,
    error::{ApiError, PageError},
    parse::ApiJson,
    state::AppState,
};

/// The signed answer to a challenge.
#[derive(Deserialize)]
pub struct SignedChallenge {
    handle: String,
    /// PEM or base64 DER.
    certificate: String,
    /// Base64 of the signature (DER or raw r‖s) over the challenge's `to_sign` text.
    signature: String,
}

fn current_session(ctx: &Ctx) -> Option<i64> {
    ctx.session.as_ref().map(|s| s.session_id).filter(|id| *id != 0)
}

/// Adds the session cookie of a new log-in to `resp`.
fn with_session(state: &AppState, done: &PasskeyLogin, mut resp: Response) -> Response {
    if let Some(secret) = &done.session_secret
        && let Ok(v) = header::HeaderValue::from_str(&crate::ctx::session_cookie(state, secret))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /login/certificate/challenge`.
pub async fn challenge(State(state): State<AppState>, ctx: Ctx) -> Result<Response, ApiError> {
    let c = state.identity.begin_certificate_login(&ctx.ip).await?;
    Ok(Json(json!({"handle": c.handle, "to_sign": c.to_sign})).into_response())
}

/// `POST /login/certificate/finish`: answers where to go next, with the session cookie.
pub async fn finish(State(state): State<AppState>, ctx: Ctx, ApiJson(a): ApiJson<SignedChallenge>) -> Result<Response, ApiError> {
    let done =
        state.identity.finish_certificate_login(&a.handle, &a.certificate, &a.signature, &ctx.actor(), current_session(&ctx)).await?;
    let next = stage_path(done.stage);
    Ok(with_session(&state, &done, Json(json!({"next": next})).into_response()))
}

/// `GET /login/certificate`: log-in by the client certificate a trusted proxy verified.
pub async fn proxy_login(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap) -> PageResult {
    let name = &state.config.security.client_cert_header;
    let value = if name.is_empty() { "" } else { headers.get(name.as_str()).and_then(|v| v.to_str().ok()).unwrap_or("") };
    match state.identity.certificate_login_from_proxy(value, &ctx.actor(), current_session(&ctx)).await {
        Ok(done) => Ok(with_session(&state, &done, Redirect::to(stage_path(done.stage)).into_response())),
        Err(e @ (DomainError::Database(_) | DomainError::Internal(_))) => Err(PageError(e)),
        Err(e) => refused_login(&state, &ctx, &e),
    }
}
