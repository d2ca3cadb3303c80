//! The certificate authority's pages (证书管理): the public CA chain, CRL and certificates, and
//! the security administrator's page to issue staff certificates from USB-key requests, issue
//! units' seal certificates and revoke with a reason.

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tongban_crypto::cert::KeyAlgorithm;
use tongban_pki::ca::{Authority, IssuedRow, REASONS};
use tongban_platform::{DomainError, clock::format_local};

use super::{Layout, PageResult, admin_units::Done, form_error, parse_id, render_status, see_other};
use crate::{
    ctx::Ctx,
    error::PageError,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

/// `GET /pki/ca.pem`: the issuing CA and the root, to trust.
pub async fn chain(State(state): State<AppState>) -> Result<Response, PageError> {
    let pem = state.ca.chain_pem().await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file"), (header::CONTENT_DISPOSITION, "attachment; filename=\"tongban-ca.pem\"")], pem)
        .into_response())
}

/// `GET /pki/ca.crl`: the current revocation list (DER), named in every certificate.
pub async fn crl(State(state): State<AppState>) -> Result<Response, PageError> {
    let der = state.ca.crl().await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl"), (header::CACHE_CONTROL, "max-age=300")], der).into_response())
}

/// `GET /pki/certificates/{serial}`: an issued certificate, PEM (certificates are public).
pub async fn certificate(State(state): State<AppState>, params: PathParams) -> Result<Response, PageError> {
    let serial = params.text("serial");
    if serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PageError(DomainError::NotFound("error.not_found")));
    }
    let pem = state.ca.certificate_pem(serial).await?.ok_or(DomainError::NotFound("error.not_found"))?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

#[derive(Template)]
#[template(path = "pki.html")]
struct PkiPage {
    l: Layout,
    authorities: Vec<(Authority, String, String)>,
    certificates: Vec<(IssuedRow, String, String, String)>,
    units: Vec<(i64, String)>,
    reasons: Vec<(u8, String)>,
    username: String,
    csr: String,
    error: String,
    error_form: &'static str,
}

async fn page(state: &AppState, ctx: &Ctx, done: Option<&str>, form: (String, String), error: (&'static str, String)) -> PageResult {
    let p = ctx.principal()?;
    let certificates = state
        .ca
        .certificates(p, &ctx.actor())
        .await?
        .into_iter()
        .map(|c| {
            let until = format_local(c.not_after);
            let revoked = c.revoked_at.map(format_local).unwrap_or_default();
            let use_key = format!("pki.{}", c.profile);
            (c, until, revoked, use_key)
        })
        .collect();
    let authorities = state
        .ca
        .authorities()
        .await?
        .into_iter()
        .map(|a| {
            let (until, kind_key) = (format_local(a.not_after), format!("pki.{}", a.kind));
            (a, until, kind_key)
        })
        .collect();
    let units = state.identity.units(p).await?.into_iter().map(|u| (u.id, u.name)).collect();
    let reasons = REASONS.iter().map(|(code, key)| (*code, format!("pki.reason_{key}"))).collect();
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = PkiPage {
        l: Layout::new(ctx, "pki.title", "pki").with_flash(done),
        authorities,
        certificates,
        units,
        reasons,
        username: form.0,
        csr: form.1,
        error_form: error.0,
        error: error.1,
    };
    render_status(status, &view)
}

/// `GET /admin/pki`.
pub async fn admin(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    page(&state, &ctx, q.done.as_deref(), Default::default(), ("", String::new())).await
}

/// The staff certificate form.
#[derive(Deserialize)]
pub struct StaffForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    csr: String,
}

/// `POST /admin/pki/staff`: a certificate for the key on a member of staff's USB key.
pub async fn issue_staff(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<StaffForm>) -> PageResult {
    match state.ca.issue_staff(ctx.principal()?, &ctx.actor(), &f.username, &f.csr).await {
        Ok(_) => see_other("/admin/pki?done=certificate_issued"),
        Err(e) => {
            let (_, msg) = form_error(&ctx.tr, e)?;
            page(&state, &ctx, None, (f.username, f.csr), ("staff", msg)).await
        }
    }
}

/// The seal certificate form.
#[derive(Deserialize)]
pub struct SealForm {
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    algorithm: String,
}

/// `POST /admin/pki/seal`: a unit's seal certificate, its key made and kept sealed here.
pub async fn issue_seal(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<SealForm>) -> PageResult {
    let result = match (parse_id("unit_id", &f.unit_id), KeyAlgorithm::parse(&f.algorithm)) {
        (Ok(unit), Some(alg)) => state.ca.issue_seal(ctx.principal()?, &ctx.actor(), unit, alg).await,
        (Err(e), _) => Err(e),
        (_, None) => Err(DomainError::invalid("algorithm", "error.invalid_value")),
    };
    match result {
        Ok(_) => see_other("/admin/pki?done=certificate_issued"),
        Err(e) => {
            let (_, msg) = form_error(&ctx.tr, e)?;
            page(&state, &ctx, None, Default::default(), ("seal", msg)).await
        }
    }
}

/// The revocation form.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

/// `POST /admin/pki/{serial}/revoke`.
pub async fn revoke(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<RevokeForm>) -> PageResult {
    let reason: u8 = f.reason.trim().parse().map_err(|_| DomainError::invalid("reason", "error.invalid_value"))?;
    state.ca.revoke(ctx.principal()?, &ctx.actor(), params.text("serial"), reason).await?;
    see_other("/admin/pki?done=certificate_revoked")
}
