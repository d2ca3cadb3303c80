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

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let p = ctx.principal()?;
    let grants = state.identity.authz().grants_of(p.user_id).await?.into_iter().map(|g| g.role_name).collect();
    render(&WorkbenchPage {
        l: Layout::new(&ctx, "workbench.title", "workbench"),
        username: p.username.clone(),
        unit_name: p.unit_name.clone(),
        grants,
    })
}
