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

use axum::http::StatusCode;

use super::{
    Layout, PageResult,
    admin_units::Done,
    auth::{refused_login, stage_path},
    form_error, render_status, see_other,
};
use crate::{
    ctx::Ctx,
    error::{ApiError, PageError},
    parse::{ApiJson, PageForm, QueryOf},
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

/// The holder's own certificates (我的证书) and the binding form: paste the certificate the
/// security administrator issued, then sign the challenge with the USB key.
#[derive(askama::Template)]
#[template(path = "my_certificates.html")]
struct MyCertificatesPage {
    l: Layout,
    certificates: Vec<(tongban_identity::BoundCertificate, String)>,
    /// Set once the certificate was accepted: the text to sign and its handle.
    challenge: Option<tongban_identity::CertificateChallenge>,
    certificate: String,
    can_bind: bool,
    error: String,
}

/// The binding form's fields.
#[derive(Deserialize)]
pub struct BindForm {
    #[serde(default)]
    certificate: String,
    #[serde(default)]
    handle: String,
    #[serde(default)]
    signature: String,
}

async fn my_page(
    state: &AppState,
    ctx: &Ctx,
    challenge: Option<tongban_identity::CertificateChallenge>,
    certificate: String,
    error: Option<DomainError>,
    done: Option<&str>,
) -> PageResult {
    let session = ctx.session()?;
    let certificates = state
        .identity
        .my_certificates(session)
        .await?
        .into_iter()
        .map(|c| {
            let until = tongban_platform::clock::format_local(c.not_after);
            (c, until)
        })
        .collect();
    let (status, error) = match error {
        None => (StatusCode::OK, String::new()),
        Some(e) => (StatusCode::UNPROCESSABLE_ENTITY, form_error(&ctx.tr, e)?.1),
    };
    let l = Layout::new(ctx, "cert.mine", "me").with_flash(done);
    let page = MyCertificatesPage { l, certificates, challenge, certificate, can_bind: session.second_factor, error };
    render_status(status, &page)
}

/// `GET /me/certificates`.
pub async fn mine(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    ctx.principal()?;
    my_page(&state, &ctx, None, String::new(), None, q.done.as_deref()).await
}

/// `POST /me/certificates`: checks the pasted certificate and shows the challenge to sign.
pub async fn bind_begin(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<BindForm>) -> PageResult {
    ctx.principal()?;
    match state.identity.begin_certificate_binding(ctx.session()?, &ctx.actor(), &f.certificate).await {
        Ok(c) => my_page(&state, &ctx, Some(c), f.certificate, None, None).await,
        Err(e @ (DomainError::Database(_) | DomainError::Internal(_))) => Err(PageError(e)),
        Err(e) => my_page(&state, &ctx, None, f.certificate, Some(e), None).await,
    }
}

/// `POST /me/certificates/bind`: binds the certificate once its key signed the challenge.
pub async fn bind_finish(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<BindForm>) -> PageResult {
    ctx.principal()?;
    match state.identity.finish_certificate_binding(ctx.session()?, &ctx.actor(), &f.handle, &f.certificate, &f.signature).await {
        Ok(_) => see_other("/me/certificates?done=certificate_bound"),
        Err(e @ (DomainError::Database(_) | DomainError::Internal(_))) => Err(PageError(e)),
        Err(e) => my_page(&state, &ctx, None, f.certificate, Some(e), None).await,
    }
}
