//! The service catalogue API (事项目录接口) under `/api/v1/catalogue`, so that a county's service
//! hall software can read the items and an administrator can maintain them.

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tongban_approval::catalogue::{GuideQuery, ItemSpec, ServiceItem};
use tongban_authz::Permission;

use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    parse::{PathParams, QueryOf, json_body},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// A catalogue item: `id`, `spec` (as posted), unit names and `enabled`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemDto {
    /// Id.
    pub id: i64,
    /// The description: code, name, kind, audience, lead_unit_id, co_unit_ids, legal_basis,
    /// conditions, legal_days, promised_days, fee, materials, form, process_key, visits,
    /// life_events, location, phone.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// Lead department's name.
    pub lead_unit_name: String,
    /// Co-departments' names.
    pub co_unit_names: Vec<String>,
    /// Listed publicly.
    pub enabled: bool,
}

impl From<ServiceItem> for ItemDto {
    fn from(i: ServiceItem) -> Self {
        ItemDto {
            id: i.id,
            spec: serde_json::to_value(&i.spec).unwrap_or(Value::Null),
            lead_unit_name: i.lead_unit_name,
            co_unit_names: i.co_unit_names,
            enabled: i.enabled,
        }
    }
}

/// Search parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogueQuery {
    /// Part of the name or code.
    #[serde(default)]
    pub q: Option<String>,
    /// A department (lead or co).
    #[serde(default)]
    pub unit_id: Option<i64>,
    /// A life event such as 开办企业.
    #[serde(default)]
    pub life_event: Option<String>,
}

/// The listed items, searched.
#[utoipa::path(get, path = "/api/v1/catalogue", tag = "approval", params(CatalogueQuery), responses((status = 200, body = Vec<ItemDto>)))]
pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<CatalogueQuery>) -> ApiResult<Json<Vec<ItemDto>>> {
    ctx.principal()?;
    let query = GuideQuery { text: q.q.unwrap_or_default(), unit_id: q.unit_id, life_event: q.life_event.unwrap_or_default() };
    Ok(Json(state.catalogue.search(&query).await?.into_iter().map(ItemDto::from).collect()))
}

/// One item.
#[utoipa::path(get, path = "/api/v1/catalogue/{id}", tag = "approval", params(("id" = i64, Path)),
    responses((status = 200, body = ItemDto), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<ItemDto>> {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    Ok(Json(state.catalogue.item(id, p.has(Permission::CatalogueWrite)).await?.into()))
}

/// The new item's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemCreatedDto {
    /// Id.
    pub id: i64,
}

/// Adds an item (`catalogue.write`); the body is the item's `spec`.
#[utoipa::path(post, path = "/api/v1/catalogue", tag = "approval", request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = ItemCreatedDto), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> ApiResult<(StatusCode, Json<ItemCreatedDto>)> {
    let p = ctx.principal()?;
    let spec: ItemSpec = json_body(&body)?;
    let id = state.catalogue.create(p, &ctx.actor(), spec).await?;
    Ok((StatusCode::CREATED, Json(ItemCreatedDto { id })))
}

/// Replaces an item's description (`catalogue.write`).
#[utoipa::path(put, path = "/api/v1/catalogue/{id}", tag = "approval", params(("id" = i64, Path)), request_body(content = Object, content_type = "application/json"),
    responses((status = 204), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<StatusCode> {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let spec: ItemSpec = json_body(&body)?;
    state.catalogue.update(p, &ctx.actor(), id, spec).await?;
    Ok(StatusCode::NO_CONTENT)
}
