//! The window and supervision API (受理与监察接口): cases received from intake, acceptance actions,
//! and the supervision figures, for a county's service hall software and dashboards.

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use tongban_approval::cases::{WindowApplication, WindowMaterial, WindowReceipt};

use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    parse::{PathParams, QueryOf, json_body},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// List parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CasesQuery {
    /// `pending` (default) or `all`.
    #[serde(default)]
    pub list: Option<String>,
    /// Only the case with this application number.
    #[serde(default)]
    pub number: Option<String>,
}

/// Received cases (`approval.accept`).
#[utoipa::path(get, path = "/api/v1/cases", tag = "approval", params(CasesQuery), responses((status = 200, body = Vec<tongban_approval::cases::CaseSummary>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    QueryOf(q): QueryOf<CasesQuery>,
) -> ApiResult<Json<Vec<tongban_approval::cases::CaseSummary>>> {
    let pending = match q.list.as_deref().unwrap_or("pending") {
        "pending" => true,
        "all" => false,
        _ => return Err(tongban_platform::DomainError::invalid("list", "error.invalid_value").into()),
    };
    let cases = match q.number.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(n) => state.cases.case_by_number(ctx.principal()?, n).await?,
        None => state.cases.cases(ctx.principal()?, pending).await?,
    };
    Ok(Json(cases))
}

/// One case with applicant, form, materials (SM3 digests) and history.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "approval", params(("id" = i64, Path)), responses((status = 200, body = tongban_approval::cases::CaseView), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<tongban_approval::cases::CaseView>> {
    Ok(Json(state.cases.case(ctx.principal()?, &ctx.actor(), params.id("id")?).await?))
}

/// The body of a window action.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseActionDto {
    /// refuse: the reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// supplement: every missing material.
    #[serde(default)]
    pub items: Vec<String>,
    /// deliver: `window` (collected) or `post`.
    #[serde(default)]
    pub method: Option<String>,
    /// deliver: who collected it, or the tracking number.
    #[serde(default)]
    pub note: Option<String>,
    /// supplement-answer (window registrations): the materials brought in.
    #[serde(default)]
    pub materials: Vec<WindowMaterial>,
}

/// Acts on a case: `accept`, `refuse` (reason), `supplement` (items); for window registrations
/// also `supplement-answer` (materials brought in) and `deliver` (method, note).
#[utoipa::path(post, path = "/api/v1/cases/{id}/{action}", tag = "approval", params(("id" = i64, Path), ("action" = String, Path)), request_body = CaseActionDto,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<StatusCode> {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let b: CaseActionDto = if body.iter().all(u8::is_ascii_whitespace) { CaseActionDto::default() } else { json_body(&body)? };
    let actor = ctx.actor();
    match params.text("action") {
        "accept" => state.cases.accept(p, &actor, id).await?,
        "refuse" => state.cases.refuse(p, &actor, id, b.reason.as_deref().unwrap_or("")).await?,
        "supplement" => state.cases.request_supplement(p, &actor, id, &b.items).await?,
        "supplement-answer" => state.cases.supplement_at_window(p, &actor, id, &b.materials).await?,
        "deliver" => state.cases.deliver(p, &actor, id, b.method.as_deref().unwrap_or(""), b.note.as_deref().unwrap_or("")).await?,
        _ => return Err(tongban_platform::DomainError::NotFound("error.not_found").into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Registers an application handed in at a service-hall window (窗口收件), for the county's
/// service-hall software: applicant (ID number or credit code checked), form and base64
/// materials are checked like an online submission; the case waits for acceptance.
#[utoipa::path(post, path = "/api/v1/cases", tag = "approval", request_body = WindowApplication,
    responses((status = 201, body = WindowReceipt), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> ApiResult<(StatusCode, Json<WindowReceipt>)> {
    let p = ctx.principal()?;
    let app: WindowApplication = json_body(&body)?;
    let receipt = state.cases.register(p, &ctx.actor(), &app).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// The result document (结果文书) of a decided case, as HTML.
#[utoipa::path(get, path = "/api/v1/cases/{id}/result", tag = "approval", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/html"), (status = 404, body = ErrorBody)))]
pub async fn result(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let (name, sm3) = state.cases.result_document(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    let bytes = state
        .blobs
        .get(&sm3)
        .await
        .map_err(|e| tongban_platform::DomainError::Internal(format!("reading blob: {e}")))?
        .ok_or(tongban_platform::DomainError::NotFound("error.not_found"))?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
        (axum::http::header::HeaderName::from_static("x-document-sm3"), sm3),
        (axum::http::header::HeaderName::from_static("x-document-name"), name.bytes().map(|b| format!("%{b:02X}")).collect()),
    ];
    Ok((headers, bytes).into_response())
}

/// Status query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Application number.
    pub number: String,
    /// Query code from the receipt.
    pub code: String,
}

/// The status of an online application by number and query code, without logging in (办件查询),
/// for kiosks and mini-programs; unknown numbers and wrong codes answer the same 404.
#[utoipa::path(get, path = "/api/v1/applications/status", tag = "approval", params(StatusQuery),
    responses((status = 200, body = tongban_approval::intake::PublicStatus), (status = 404, body = ErrorBody)))]
pub async fn public_status(
    State(state): State<AppState>,
    QueryOf(q): QueryOf<StatusQuery>,
) -> ApiResult<Json<tongban_approval::intake::PublicStatus>> {
    Ok(Json(state.intake.status_by_code(&q.number, &q.code).await?))
}

/// Supervision figures: case counts, on-time rate, per item; open tasks with deadline state.
#[utoipa::path(get, path = "/api/v1/supervision", tag = "approval", responses((status = 200, body = crate::api::dto::SupervisionDto), (status = 403, body = ErrorBody)))]
pub async fn supervision(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<crate::api::dto::SupervisionDto>> {
    let p = ctx.principal()?;
    let actor = ctx.actor();
    let stats = state.cases.stats(p, &actor).await?;
    let open_tasks = state
        .workflow
        .supervised_tasks(p, &actor)
        .await?
        .into_iter()
        .map(|(task, department)| crate::api::dto::SupervisedTaskDto { task, department })
        .collect();
    Ok(Json(crate::api::dto::SupervisionDto { cases: stats, open_tasks }))
}
