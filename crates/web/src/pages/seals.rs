//! Electronic seals on the pages: registering a unit's seal (security administrator), sealing a
//! document (用印, `seal.use`), and verifying a sealed package (验章, anyone).

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;
use tongban_pki::{
    package::{SealPosition, Verification},
    seals::{Seal, SealRequest},
};
use tongban_platform::DomainError;

use super::{Layout, PageResult, admin_units::Done, form_error, form_texts_and_files, parse_id, render_status, see_other};
use crate::{ctx::Ctx, error::PageError, parse::QueryOf, state::AppState};

type Fields = Vec<(String, String, Vec<u8>)>;

fn text<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.iter().find(|(k, _, _)| k == name).and_then(|(_, _, v)| std::str::from_utf8(v).ok()).unwrap_or("").trim()
}

fn file<'a>(fields: &'a Fields, name: &str) -> Option<(&'a str, &'a [u8])> {
    fields.iter().find(|(k, f, v)| k == name && !f.is_empty() && !v.is_empty()).map(|(_, f, v)| (f.as_str(), v.as_slice()))
}

/// `POST /admin/pki/seals`: registers a unit's seal image with its seal certificate.
pub async fn register(State(state): State<AppState>, ctx: Ctx, req: axum::extract::Request) -> PageResult {
    let p = ctx.principal()?;
    let fields = form_texts_and_files(req, "file").await?;
    let unit = parse_id("unit_id", text(&fields, "unit_id"))?;
    let image = file(&fields, "image").map(|(_, b)| b).unwrap_or_default();
    state.ca.register_seal(p, &ctx.actor(), unit, image).await?;
    see_other("/admin/pki?done=seal_registered")
}

#[derive(Template)]
#[template(path = "seals.html")]
struct SealsPage {
    l: Layout,
    seals: Vec<Seal>,
    error: String,
}

/// `GET /seals`: the seals the user may use, and the form to seal a document.
pub async fn page(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let seals = state.ca.usable_seals(p).await?;
    render_status(
        StatusCode::OK,
        &SealsPage { l: Layout::new(&ctx, "seal.title", "seals").with_flash(q.done.as_deref()), seals, error: String::new() },
    )
}

/// `POST /seals`: seals the uploaded document; answers the package as a download.
pub async fn seal(State(state): State<AppState>, ctx: Ctx, req: axum::extract::Request) -> PageResult {
    let p = ctx.principal()?;
    let fields = form_texts_and_files(req, "file").await?;
    let result = async {
        let seal_id = parse_id("seal_id", text(&fields, "seal_id"))?;
        let (name, bytes) = file(&fields, "file").ok_or_else(|| DomainError::invalid("file", "seal.error.file"))?;
        let metadata = json!({"title": text(&fields, "title"), "doc_number": text(&fields, "doc_number")});
        let position = SealPosition { page: 1, x_mm: 120.0, y_mm: 220.0 };
        let request = SealRequest { seal_id, file_name: name, file: bytes, metadata, position };
        state.ca.seal_document(p, &ctx.actor(), &request).await.map(|b| (name.to_string(), b))
    }
    .await;
    match result {
        Ok((name, package)) => {
            let stem: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
            let disposition = format!("attachment; filename=\"{stem}.tbseal.json\"");
            Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)], package)
                .into_response())
        }
        Err(e @ (DomainError::Forbidden(_) | DomainError::Database(_) | DomainError::Internal(_))) => Err(PageError(e)),
        Err(e) => {
            let (_, error) = form_error(&ctx.tr, e)?;
            let seals = state.ca.usable_seals(p).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &SealsPage { l: Layout::new(&ctx, "seal.title", "seals"), seals, error })
        }
    }
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    l: Layout,
    report: Option<Verification>,
    status_key: String,
}

/// `GET /verify`: the form to check a sealed package (no log-in needed).
pub async fn verify_form(ctx: Ctx) -> PageResult {
    render_status(
        StatusCode::OK,
        &VerifyPage { l: Layout::new(&ctx, "seal.verify_title", "verify"), report: None, status_key: String::new() },
    )
}

/// `POST /verify`: the report — signer, unit, time, certificate status, content intact or not.
pub async fn verify(State(state): State<AppState>, ctx: Ctx, req: axum::extract::Request) -> PageResult {
    let fields = form_texts_and_files(req, "file").await?;
    let Some((_, bytes)) = file(&fields, "package") else {
        return Err(PageError(DomainError::invalid("package", "seal.error.file")));
    };
    let report = state.ca.verify(bytes).await?;
    let status_key =
        format!("seal.status_{}", if report.certificate_status.is_empty() { "unknown" } else { report.certificate_status.as_str() });
    let status = if report.ok() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(status, &VerifyPage { l: Layout::new(&ctx, "seal.verify_title", "verify"), report: Some(report), status_key })
}
