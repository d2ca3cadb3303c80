//! The staff workbench (工作台): later slices add their to-do lists here.

use askama::Template;
use axum::extract::State;

use super::{Layout, PageResult, render};
use crate::{ctx::Ctx, state::AppState};

#[derive(Template)]
#[template(path = "workbench.html")]
struct WorkbenchPage {
    l: Layout,
    username: String,
    unit_name: String,
    grants: Vec<String>,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx, headers: axum::http::HeaderMap) -> PageResult {
    let p = ctx.principal()?;
    // Logged in on the way to another system (单点登录): continue its authorization request.
    if let Some(back) = crate::oidc::saved_return(&headers).filter(|b| b.starts_with("/realms/staff/")) {
        let mut page = crate::oidc::continue_page(&ctx, &back)?;
        if let Ok(v) = axum::http::HeaderValue::from_str(&crate::oidc::clear_return()) {
            page.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
        return Ok(page);
    }
    let grants = state.identity.authz().grants_of(p.user_id).await?.into_iter().map(|g| g.role_name).collect();
    render(&WorkbenchPage {
        l: Layout::new(&ctx, "workbench.title", "workbench"),
        username: p.username.clone(),
        unit_name: p.unit_name.clone(),
        grants,
    })
}
