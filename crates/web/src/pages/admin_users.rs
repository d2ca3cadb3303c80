//! Staff account pages (账号管理) and grants on an account's page (授权).

use askama::Template;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use tongban_authz::{AccountControl, Permission, Scope};
use tongban_identity::{NewUser, User, UserProfile};
use tongban_platform::{
    DomainError,
    clock::{format_local, now_millis},
};

use super::{
    Layout, PageResult,
    admin_units::{UnitOption, unit_options},
    form_error, parse_id, render, render_status, see_other,
};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    unit_name: String,
    position: String,
    status_key: &'static str,
}

fn status_key(u: &User) -> &'static str {
    if !u.enabled {
        "common.disabled"
    } else if u.is_locked(now_millis()) {
        "users.locked"
    } else {
        "common.enabled"
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    l: Layout,
    users: Vec<UserRow>,
    units: Vec<UnitOption>,
    unit_filter: i64,
    q: String,
    can_write: bool,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    q: String,
    done: Option<String>,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(query): QueryOf<UsersQuery>) -> PageResult {
    let p = ctx.principal()?;
    let unit_filter = if query.unit.trim().is_empty() { None } else { Some(parse_id("unit", &query.unit)?) };
    let users = state.identity.users(p, unit_filter, &query.q).await?;
    let units = if p.has(Permission::UnitRead) { unit_options(&state.identity.units(p).await?) } else { Vec::new() };
    let rows = users
        .iter()
        .map(|u| UserRow {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            unit_name: u.unit_name.clone(),
            position: u.position.clone(),
            status_key: status_key(u),
        })
        .collect();
    let l = Layout::new(&ctx, "users.title", "users").with_flash(query.done.as_deref());
    render(&UsersPage { l, users: rows, units, unit_filter: unit_filter.unwrap_or(0), q: query.q, can_write: p.has(Permission::UserWrite) })
}

#[derive(Template)]
#[template(path = "user_form.html")]
struct UserForm {
    l: Layout,
    heading: String,
    action: String,
    is_new: bool,
    username: String,
    display_name: String,
    unit_id: i64,
    position: String,
    email: String,
    phone: String,
    units: Vec<UnitOption>,
    error: String,
    error_field: String,
}

#[derive(Deserialize, Default)]
pub struct UserFormData {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    unit_id: String,
    #[serde(default)]
    position: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

impl UserFormData {
    fn profile(&self, unit_id: i64) -> UserProfile {
        UserProfile {
            display_name: self.display_name.clone(),
            unit_id,
            position: self.position.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
        }
    }
}

async fn form_page(state: &AppState, ctx: &Ctx, editing: Option<i64>, data: UserFormData, error: (String, String)) -> PageResult {
    let p = ctx.principal()?;
    let units = state.identity.units(p).await?;
    let (key, action) = match editing {
        Some(id) => ("users.edit", format!("/admin/users/{id}")),
        None => ("users.new", "/admin/users".into()),
    };
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UserForm {
        l: Layout::new(ctx, key, "users"),
        heading: ctx.tr.t(key).into(),
        action,
        is_new: editing.is_none(),
        username: data.username,
        display_name: data.display_name,
        unit_id: data.unit_id.parse().unwrap_or(0),
        position: data.position,
        email: data.email,
        phone: data.phone,
        units: unit_options(&units),
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &page)
}

pub async fn new_form(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.principal()?.require(Permission::UserWrite)?;
    form_page(&state, &ctx, None, UserFormData::default(), Default::default()).await
}

pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(data): PageForm<UserFormData>) -> PageResult {
    let p = ctx.principal()?;
    let result = match parse_id("unit_id", &data.unit_id) {
        Ok(unit_id) => {
            let input = NewUser { username: data.username.clone(), profile: data.profile(unit_id) };
            state.identity.create_user(p, &ctx.actor(), input).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((id, secret)) => detail_page(&state, &ctx, id, secret, FormError::None, Some("user_created")).await,
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(&state, &ctx, None, data, err).await
        }
    }
}

struct GrantRow {
    id: i64,
    role_name: String,
    scope_key: String,
}

#[derive(Template)]
#[template(path = "user_detail.html")]
struct DetailPage {
    l: Layout,
    user: User,
    status_key: &'static str,
    secret: String,
    can_write: bool,
    can_grant: bool,
    actions: Vec<(&'static str, &'static str)>,
    grants: Vec<GrantRow>,
    roles: Vec<(i64, String)>,
    scopes: Vec<(&'static str, String)>,
    grant_error: String,
    certificates: Vec<(tongban_identity::BoundCertificate, String)>,
    can_manage: bool,
    control_note: &'static str,
}

/// Which form on the account page failed, and how.
enum FormError {
    None,
    Grant(String),
}

async fn detail_page(state: &AppState, ctx: &Ctx, id: i64, secret: String, error: FormError, done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    let user = state.identity.user(p, &ctx.actor(), id).await?;
    // What this caller may do to this account (三员分立, 分级管理): the buttons shown match what the
    // service would allow.
    let control = if id == p.user_id { AccountControl::Full } else { state.identity.authz().account_control(p, id).await? };
    let can_write = p.has(Permission::UserWrite) && id != p.user_id && control != AccountControl::AdminAccount;
    let can_manage = can_write && control == AccountControl::Full;
    let control_note = match control {
        AccountControl::AdminAccount if id != p.user_id => "error.admin_account",
        AccountControl::RoleNotCovered if p.has(Permission::UserWrite) => "users.protective_only",
        _ => "",
    };
    // The security administrator grants any role; account administrators the assignable ones (分级管理).
    let can_grant =
        (p.has(Permission::GrantWrite) || (p.has(Permission::UserWrite) && control != AccountControl::AdminAccount)) && id != p.user_id;
    let grants = state
        .identity
        .authz()
        .grants_of(id)
        .await?
        .into_iter()
        .map(|g| GrantRow { id: g.id, role_name: g.role_name, scope_key: format!("scope.{}", g.scope.as_str()) })
        .collect();
    let roles =
        if can_grant { state.identity.authz().grantable_roles(p).await?.into_iter().map(|r| (r.id, r.name)).collect() } else { Vec::new() };
    let mut actions = vec![if user.enabled { ("disable", "common.disable") } else { ("enable", "common.enable") }];
    actions.push(if user.is_locked(now_millis()) { ("unlock", "users.unlock") } else { ("lock", "users.lock") });
    if can_manage {
        actions.push(("reset-password", "users.reset_password"));
    }
    actions.push(("end-sessions", "users.end_sessions"));
    let certificates = state
        .identity
        .certificates(p, &ctx.actor(), id)
        .await?
        .into_iter()
        .map(|c| {
            let until = format_local(c.not_after);
            (c, until)
        })
        .collect();
    let (status, grant_error) = match error {
        FormError::None => (StatusCode::OK, String::new()),
        FormError::Grant(e) => (StatusCode::CONFLICT, e),
    };
    let page = DetailPage {
        l: Layout::new(ctx, "users.profile", "users").with_flash(done),
        status_key: status_key(&user),
        user,
        secret,
        can_write,
        can_grant,
        actions,
        grants,
        roles,
        scopes: Scope::ALL.iter().map(|s| (s.as_str(), format!("scope.{}", s.as_str()))).collect(),
        grant_error,
        certificates,
        can_manage,
        control_note,
    };
    render_status(status, &page)
}

pub async fn detail(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    QueryOf(q): QueryOf<super::admin_units::Done>,
) -> PageResult {
    let id = params.id("id")?;
    let done = q.done;
    detail_page(&state, &ctx, id, String::new(), FormError::None, done.as_deref()).await
}

pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    p.require(Permission::UserWrite)?;
    let u = state.identity.user(p, &ctx.actor(), id).await?;
    let data = UserFormData {
        username: u.username,
        display_name: u.display_name,
        unit_id: u.unit_id.to_string(),
        position: u.position,
        email: u.email,
        phone: u.phone,
    };
    form_page(&state, &ctx, Some(id), data, Default::default()).await
}

pub async fn update(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(data): PageForm<UserFormData>) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let result = match parse_id("unit_id", &data.unit_id) {
        Ok(unit_id) => {
            let input = data.profile(unit_id);
            state.identity.update_user(p, &ctx.actor(), id, input).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other(&format!("/admin/users/{id}?done=user_saved")),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(&state, &ctx, Some(id), data, err).await
        }
    }
}

pub async fn action(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let action = params.text("action").to_string();
    let p = ctx.principal()?;
    let actor = ctx.actor();
    let ids = &state.identity;
    match action.as_str() {
        "enable" => ids.set_user_enabled(p, &actor, id, true).await?,
        "disable" => ids.set_user_enabled(p, &actor, id, false).await?,
        "lock" => ids.set_user_locked(p, &actor, id, true).await?,
        "unlock" => ids.set_user_locked(p, &actor, id, false).await?,
        "end-sessions" => {
            ids.end_user_sessions(p, &actor, id).await?;
            state.oidc.staff_sessions_ended(id, &actor).await?;
            return see_other(&format!("/admin/users/{id}?done=sessions_ended"));
        }
        "reset-password" => {
            let secret = ids.reset_password(p, &actor, id).await?;
            // Single sign-on: the systems the user's sessions reached end theirs too.
            state.oidc.staff_sessions_ended(id, &actor).await?;
            return detail_page(&state, &ctx, id, secret, FormError::None, Some("password_reset")).await;
        }
        _ => return Err(DomainError::NotFound("error.no_such_page").into()),
    }
    state.oidc.staff_sessions_ended(id, &actor).await?;
    see_other(&format!("/admin/users/{id}?done=user_saved"))
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    role_id: String,
    #[serde(default)]
    scope: String,
}

pub async fn add_grant(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(form): PageForm<GrantForm>) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let role_id = parse_id("role_id", &form.role_id)?;
    let scope = Scope::parse(&form.scope).ok_or_else(|| DomainError::invalid("scope", "error.invalid_choice"))?;
    match state.identity.authz().grant(p, &ctx.actor(), id, role_id, scope).await {
        Ok(_) => see_other(&format!("/admin/users/{id}?done=grant_saved")),
        Err(e @ (DomainError::Conflict(_) | DomainError::Invalid(_))) => {
            let msg = crate::error::message(&ctx.tr, &e);
            detail_page(&state, &ctx, id, String::new(), FormError::Grant(msg), None).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_grant(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let grant_id = params.id("id")?;
    let p = ctx.principal()?;
    let user_id = state.identity.authz().revoke(p, &ctx.actor(), grant_id).await?;
    see_other(&format!("/admin/users/{user_id}?done=grant_saved"))
}

/// `POST /admin/users/{id}/certificates/{cid}/unbind`.
pub async fn unbind_certificate(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let (id, cid) = (params.id("id")?, params.id("cid")?);
    state.identity.unbind_certificate(ctx.principal()?, &ctx.actor(), id, cid).await?;
    see_other(&format!("/admin/users/{id}?done=certificate_unbound"))
}
