//! Role pages (角色管理): the security administrator's area.

use askama::Template;
use axum::{extract::State, http::StatusCode};
use tongban_authz::{Permission, Role, RoleInput};

use super::{Layout, PageResult, admin_units::Done, form_error, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

struct RoleRow {
    id: i64,
    code: String,
    name: String,
    class_key: String,
    permissions: Vec<&'static str>,
    builtin: bool,
    assignable: bool,
    admin: bool,
}

#[derive(Template)]
#[template(path = "roles.html")]
struct RolesPage {
    l: Layout,
    roles: Vec<RoleRow>,
    can_write: bool,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let roles = state.identity.authz().roles(p).await?;
    let rows = roles
        .into_iter()
        .map(|r| RoleRow {
            id: r.id,
            code: r.code,
            name: r.name,
            class_key: format!("admin_class.{}", r.admin_class.map(|c| c.as_str()).unwrap_or("none")),
            permissions: r.permissions.iter().map(|p| p.as_str()).collect(),
            builtin: r.builtin,
            assignable: r.assignable,
            admin: r.admin_class.is_some(),
        })
        .collect();
    let l = Layout::new(&ctx, "roles.title", "roles").with_flash(q.done.as_deref());
    render(&RolesPage { l, roles: rows, can_write: p.has(Permission::RoleWrite) })
}

#[derive(Template)]
#[template(path = "role_form.html")]
struct RoleForm {
    l: Layout,
    heading: String,
    action: String,
    is_new: bool,
    code: String,
    name: String,
    description: String,
    permissions: Vec<(&'static str, bool, String)>,
    error: String,
    error_field: String,
}

fn form(ctx: &Ctx, editing: Option<i64>, input: &RoleInput, error: (String, String)) -> PageResult {
    let (key, action) = match editing {
        Some(id) => ("roles.edit", format!("/admin/roles/{id}")),
        None => ("roles.new", "/admin/roles".to_string()),
    };
    let permissions = Permission::ALL
        .iter()
        .filter(|p| !p.is_reserved())
        .map(|p| (p.as_str(), input.permissions.iter().any(|x| x == p.as_str()), format!("permission.{}", p.as_str())))
        .collect();
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = RoleForm {
        l: Layout::new(ctx, key, "roles"),
        heading: ctx.tr.t(key).into(),
        action,
        is_new: editing.is_none(),
        code: input.code.clone(),
        name: input.name.clone(),
        description: input.description.clone(),
        permissions,
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &page)
}

/// The role form's fields; `permissions` repeats, so it is collected from pairs.
fn role_input(pairs: Vec<(String, String)>) -> RoleInput {
    let mut input = RoleInput { code: String::new(), name: String::new(), description: String::new(), permissions: Vec::new() };
    for (k, v) in pairs {
        match k.as_str() {
            "code" => input.code = v,
            "name" => input.name = v,
            "description" => input.description = v,
            "permissions" => input.permissions.push(v),
            _ => {}
        }
    }
    input
}

pub async fn new_form(ctx: Ctx) -> PageResult {
    ctx.principal()?.require(Permission::RoleWrite)?;
    form(&ctx, None, &role_input(Vec::new()), Default::default())
}

pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(pairs): PageForm<Vec<(String, String)>>) -> PageResult {
    let p = ctx.principal()?;
    let input = role_input(pairs);
    match state.identity.authz().create_role(p, &ctx.actor(), input.clone()).await {
        Ok(_) => see_other("/admin/roles?done=role_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form(&ctx, None, &input, err)
        }
    }
}

fn to_input(r: Role) -> RoleInput {
    RoleInput {
        code: r.code,
        name: r.name,
        description: r.description,
        permissions: r.permissions.iter().map(|p| p.as_str().to_string()).collect(),
    }
}

pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    p.require(Permission::RoleWrite)?;
    let role = state.identity.authz().role(p, id).await?;
    form(&ctx, Some(id), &to_input(role), Default::default())
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(pairs): PageForm<Vec<(String, String)>>,
) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let input = role_input(pairs);
    match state.identity.authz().update_role(p, &ctx.actor(), id, input.clone()).await {
        Ok(()) => see_other("/admin/roles?done=role_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form(&ctx, Some(id), &input, err)
        }
    }
}

/// `POST /admin/roles/{id}/{assignable|not-assignable}`: opens a role to unit administrators
/// (分级管理), or closes it (security administrator).
pub async fn set_assignable(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let on = match params.text("action") {
        "assignable" => true,
        "not-assignable" => false,
        _ => return Err(tongban_platform::DomainError::NotFound("error.no_such_page").into()),
    };
    state.identity.authz().set_role_assignable(p, &ctx.actor(), params.id("id")?, on).await?;
    see_other("/admin/roles?done=role_saved")
}
