//! API handlers: parse, call the domain service, answer JSON.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;
use tongban_audit::Entry;
use tongban_authz::{Permission, RoleInput, Scope};
use tongban_identity::{NewUser, UnitInput, UserProfile};
use tongban_platform::{DomainError, clock::format_rfc3339};

use super::dto::*;
use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    pages::audit::AuditQuery,
    parse::{ApiJson, PathParams, QueryOf},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// The caller's identity and permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, body = MeDto), (status = 401, body = ErrorBody)))]
pub async fn me(ctx: Ctx) -> ApiResult<Json<MeDto>> {
    let p = ctx.principal()?;
    Ok(Json(MeDto {
        user_id: p.user_id,
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        unit_id: p.unit_id,
        unit_name: p.unit_name.clone(),
        permissions: p.permissions.iter().map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string())).collect(),
        admin_class: p.admin_class.map(|c| c.as_str().into()),
    }))
}

/// Units within the caller's data scope, in tree order.
#[utoipa::path(get, path = "/api/v1/units", tag = "units", responses((status = 200, body = Vec<UnitDto>), (status = 403, body = ErrorBody)))]
pub async fn list_units(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<UnitDto>>> {
    let units = state.identity.units(ctx.principal()?).await?;
    Ok(Json(units.into_iter().map(UnitDto::from).collect()))
}

/// One unit.
#[utoipa::path(get, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)), responses((status = 200, body = UnitDto), (status = 404, body = ErrorBody)))]
pub async fn get_unit(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<UnitDto>> {
    let id = params.id("id")?;
    Ok(Json(state.identity.unit(ctx.principal()?, id).await?.into()))
}

fn unit_input(b: UnitBody) -> UnitInput {
    UnitInput { parent_id: b.parent_id, name: b.name, kind: b.kind, region_code: b.region_code, sort_order: b.sort_order }
}

/// Creates a unit (system administrator).
#[utoipa::path(post, path = "/api/v1/units", tag = "units", request_body = UnitBody, responses((status = 201, body = UnitDto), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_unit(State(state): State<AppState>, ctx: Ctx, ApiJson(body): ApiJson<UnitBody>) -> ApiResult<impl IntoResponse> {
    let p = ctx.principal()?;
    let id = state.identity.create_unit(p, &ctx.actor(), unit_input(body)).await?;
    let unit = state.identity.unit(p, id).await?;
    Ok((StatusCode::CREATED, Json(UnitDto::from(unit))))
}

/// Edits a unit; a new parent moves its subtree.
#[utoipa::path(put, path = "/api/v1/units/{id}", tag = "units", params(("id" = i64, Path)), request_body = UnitBody, responses((status = 200, body = UnitDto), (status = 422, body = ErrorBody)))]
pub async fn update_unit(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    ApiJson(body): ApiJson<UnitBody>,
) -> ApiResult<Json<UnitDto>> {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    state.identity.update_unit(p, &ctx.actor(), id, unit_input(body)).await?;
    Ok(Json(state.identity.unit(p, id).await?.into()))
}

/// Filters for listing accounts.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only this unit.
    #[serde(default)]
    unit_id: Option<i64>,
    /// Search in user name and real name.
    #[serde(default)]
    q: String,
}

/// Accounts within the caller's data scope.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery), responses((status = 200, body = Vec<UserDto>), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<UserListQuery>) -> ApiResult<Json<Vec<UserDto>>> {
    let users = state.identity.users(ctx.principal()?, q.unit_id, &q.q).await?;
    Ok(Json(users.into_iter().map(UserDto::from).collect()))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = UserDto), (status = 404, body = ErrorBody)))]
pub async fn get_user(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<UserDto>> {
    let id = params.id("id")?;
    Ok(Json(state.identity.user(ctx.principal()?, &ctx.actor(), id).await?.into()))
}

/// Creates an account; answers its one-time password once.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserBody, responses((status = 201, body = OneTimePasswordDto), (status = 422, body = ErrorBody)))]
pub async fn create_user(State(state): State<AppState>, ctx: Ctx, ApiJson(b): ApiJson<NewUserBody>) -> ApiResult<impl IntoResponse> {
    let profile = UserProfile { display_name: b.display_name, unit_id: b.unit_id, position: b.position, email: b.email, phone: b.phone };
    let input = NewUser { username: b.username, profile };
    let (user_id, one_time_password) = state.identity.create_user(ctx.principal()?, &ctx.actor(), input).await?;
    Ok((StatusCode::CREATED, Json(OneTimePasswordDto { user_id, one_time_password })))
}

/// Edits an account.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserBody, responses((status = 200, body = UserDto), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    ApiJson(b): ApiJson<UserBody>,
) -> ApiResult<Json<UserDto>> {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let input = UserProfile { display_name: b.display_name, unit_id: b.unit_id, position: b.position, email: b.email, phone: b.phone };
    state.identity.update_user(p, &ctx.actor(), id, input).await?;
    Ok(Json(state.identity.user(p, &ctx.actor(), id).await?.into()))
}

/// `enable`, `disable`, `lock`, `unlock` or `reset-password` an account.
#[utoipa::path(post, path = "/api/v1/users/{id}/{action}", tag = "users", params(("id" = i64, Path), ("action" = String, Path)), responses((status = 200, body = UserActionDto), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn user_action(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<axum::response::Response> {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let actor = ctx.actor();
    let ids = &state.identity;
    match params.text("action") {
        "enable" => ids.set_user_enabled(p, &actor, id, true).await?,
        "disable" => ids.set_user_enabled(p, &actor, id, false).await?,
        "lock" => ids.set_user_locked(p, &actor, id, true).await?,
        "unlock" => ids.set_user_locked(p, &actor, id, false).await?,
        "reset-password" => {
            let one_time_password = ids.reset_password(p, &actor, id).await?;
            state.oidc.staff_sessions_ended(id, &actor).await?;
            return Ok(Json(UserActionDto::Password(OneTimePasswordDto { user_id: id, one_time_password })).into_response());
        }
        _ => return Err(DomainError::invalid("action", "error.invalid_choice").into()),
    }
    state.oidc.staff_sessions_ended(id, &actor).await?;
    Ok(Json(UserActionDto::Done(OkDto { ok: true })).into_response())
}

/// Grants of an account.
#[utoipa::path(get, path = "/api/v1/users/{id}/grants", tag = "authz", params(("id" = i64, Path)), responses((status = 200, body = Vec<GrantDto>)))]
pub async fn list_grants(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<Vec<GrantDto>>> {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    if !p.has(Permission::GrantWrite) && !p.has(Permission::RoleRead) {
        state.identity.user(p, &ctx.actor(), id).await?;
    }
    let grants = state.identity.authz().grants_of(id).await?;
    Ok(Json(
        grants
            .into_iter()
            .map(|g| GrantDto { id: g.id, user_id: g.user_id, role_id: g.role_id, role_code: g.role_code, scope: g.scope.as_str().into() })
            .collect(),
    ))
}

/// Grants a role with a data scope (security administrator).
#[utoipa::path(post, path = "/api/v1/users/{id}/grants", tag = "authz", params(("id" = i64, Path)), request_body = GrantBody, responses((status = 201, body = IdDto), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_grant(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    ApiJson(b): ApiJson<GrantBody>,
) -> ApiResult<impl IntoResponse> {
    let id = params.id("id")?;
    let scope = Scope::parse(&b.scope).ok_or_else(|| DomainError::invalid("scope", "error.invalid_choice"))?;
    let grant_id = state.identity.authz().grant(ctx.principal()?, &ctx.actor(), id, b.role_id, scope).await?;
    // The account's sessions ended with the change of roles: so do its sign-ins at other systems.
    state.oidc.staff_sessions_ended(id, &ctx.actor()).await?;
    Ok((StatusCode::CREATED, Json(IdDto { id: grant_id })))
}

/// Revokes a grant (security administrator).
#[utoipa::path(delete, path = "/api/v1/grants/{id}", tag = "authz", params(("id" = i64, Path)), responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn delete_grant(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    let id = params.id("id")?;
    let user_id = state.identity.authz().revoke(ctx.principal()?, &ctx.actor(), id).await?;
    state.oidc.staff_sessions_ended(user_id, &ctx.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every role.
#[utoipa::path(get, path = "/api/v1/roles", tag = "authz", responses((status = 200, body = Vec<RoleDto>), (status = 403, body = ErrorBody)))]
pub async fn list_roles(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<RoleDto>>> {
    let roles = state.identity.authz().roles(ctx.principal()?).await?;
    Ok(Json(roles.into_iter().map(RoleDto::from).collect()))
}

fn role_input(b: RoleBody) -> RoleInput {
    RoleInput { code: b.code, name: b.name, description: b.description, permissions: b.permissions }
}

/// Creates a custom role (security administrator).
#[utoipa::path(post, path = "/api/v1/roles", tag = "authz", request_body = RoleBody, responses((status = 201, body = IdDto), (status = 422, body = ErrorBody)))]
pub async fn create_role(State(state): State<AppState>, ctx: Ctx, ApiJson(b): ApiJson<RoleBody>) -> ApiResult<impl IntoResponse> {
    let id = state.identity.authz().create_role(ctx.principal()?, &ctx.actor(), role_input(b)).await?;
    Ok((StatusCode::CREATED, Json(IdDto { id })))
}

/// Edits a custom role.
#[utoipa::path(put, path = "/api/v1/roles/{id}", tag = "authz", params(("id" = i64, Path)), request_body = RoleBody, responses((status = 200, body = OkDto), (status = 409, body = ErrorBody)))]
pub async fn update_role(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<Json<OkDto>> {
    let id = params.id("id")?;
    state.identity.authz().update_role(ctx.principal()?, &ctx.actor(), id, role_input(b)).await?;
    Ok(Json(OkDto { ok: true }))
}

/// Audit records, newest first, 50 a page (auditor).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(("from" = Option<String>, Query), ("to" = Option<String>, Query), ("actor" = Option<String>, Query), ("unit" = Option<String>, Query), ("action" = Option<String>, Query), ("object_type" = Option<String>, Query), ("object_id" = Option<String>, Query), ("result" = Option<String>, Query), ("page" = Option<i64>, Query)), responses((status = 200, body = AuditPageDto), (status = 403, body = ErrorBody)))]
pub async fn audit_records(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<AuditQuery>) -> ApiResult<Json<AuditPageDto>> {
    let p = ctx.principal()?;
    if p.require(Permission::AuditRead).is_err() {
        state.identity.audit().record_denied(state.db(), &ctx.actor(), "audit.read", "audit", "", "missing_permission").await;
        return Err(DomainError::Forbidden("error.forbidden").into());
    }
    let filter = q.filter()?;
    let page = if q.page.is_empty() { 1 } else { crate::pages::parse_id("page", &q.page)? };
    let result = filter.page(state.db(), page, 50).await?;
    state
        .identity
        .audit()
        .record(state.db(), &ctx.actor(), Entry::success("audit.read", "audit", "", json!({"api": true, "page": page})))
        .await?;
    Ok(Json(AuditPageDto {
        records: result
            .records
            .into_iter()
            .map(|r| AuditRecordDto {
                seq: r.seq,
                at: format_rfc3339(r.at),
                actor_id: r.actor_id,
                actor: r.actor_name,
                unit: r.actor_unit,
                ip: r.ip,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                result: r.result,
                details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
                hash: r.hash,
            })
            .collect(),
        total: result.total,
        page: result.page,
        per_page: result.per_page,
    }))
}

/// The caller's open sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "identity", responses((status = 200, body = Vec<SessionDto>)))]
pub async fn list_sessions(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<SessionDto>>> {
    ctx.principal()?;
    let sessions = state.identity.my_sessions(ctx.session()?).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionDto {
                id: s.id,
                created_at: format_rfc3339(s.created_at),
                last_seen_at: format_rfc3339(s.last_seen_at),
                ip: s.ip,
                user_agent: s.user_agent,
                current: s.current,
            })
            .collect(),
    ))
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "identity", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_session(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    let id = params.id("id")?;
    ctx.principal()?;
    state.identity.revoke_session(ctx.session()?, &ctx.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", responses((status = 200, body = Vec<TokenDto>)))]
pub async fn list_tokens(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<TokenDto>>> {
    ctx.principal()?;
    let tokens = state.identity.my_api_tokens(ctx.session()?).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenDto { id: t.id, name: t.name, prefix: t.prefix, scopes: t.scopes, expires_at: format_rfc3339(t.expires_at) })
            .collect(),
    ))
}

/// Creates an API token; the secret is answered once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", request_body = TokenBody, responses((status = 201, body = NewTokenDto), (status = 422, body = ErrorBody)))]
pub async fn create_token(State(state): State<AppState>, ctx: Ctx, ApiJson(b): ApiJson<TokenBody>) -> ApiResult<impl IntoResponse> {
    ctx.principal()?;
    let t = state.identity.create_api_token(ctx.session()?, &ctx.actor(), &b.name, b.days, b.write).await?;
    Ok((StatusCode::CREATED, Json(NewTokenDto { id: t.id, token: t.secret })))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_token(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    let id = params.id("id")?;
    ctx.principal()?;
    state.identity.revoke_api_token(ctx.session()?, &ctx.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every region (GB/T 2260).
#[utoipa::path(get, path = "/api/v1/regions", tag = "units", responses((status = 200, body = Vec<RegionDto>)))]
pub async fn list_regions(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<RegionDto>>> {
    ctx.principal()?.require(Permission::UnitRead)?;
    let regions = state.identity.regions().await?;
    Ok(Json(regions.into_iter().map(|r| RegionDto { code: r.code, name: r.name, parent_code: r.parent_code, level: r.level }).collect()))
}

/// Adds a region (system administrator).
#[utoipa::path(post, path = "/api/v1/regions", tag = "units", request_body = RegionDto, responses((status = 201), (status = 422, body = ErrorBody)))]
pub async fn create_region(State(state): State<AppState>, ctx: Ctx, ApiJson(b): ApiJson<RegionDto>) -> ApiResult<StatusCode> {
    let region = tongban_identity::Region { code: b.code, name: b.name, parent_code: b.parent_code, level: 0 };
    state.identity.create_region(ctx.principal()?, &ctx.actor(), region).await?;
    Ok(StatusCode::CREATED)
}
