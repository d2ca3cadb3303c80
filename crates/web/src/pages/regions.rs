//! Regions page (行政区划, GB/T 2260): list, and add for the system administrator.

use askama::Template;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use tongban_authz::Permission;
use tongban_identity::Region;

use super::{Layout, PageResult, admin_units::Done, form_error, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "regions.html")]
struct RegionsPage {
    l: Layout,
    regions: Vec<Region>,
    can_write: bool,
    code: String,
    name: String,
    parent_code: String,
    error: String,
    error_field: String,
}

#[derive(Deserialize, Default)]
pub struct RegionForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent_code: String,
}

async fn page(state: &AppState, ctx: &Ctx, form: RegionForm, error: (String, String), done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    p.require(Permission::UnitRead)?;
    let regions = state.identity.regions().await?;
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = RegionsPage {
        l: Layout::new(ctx, "regions.title", "units").with_flash(done),
        regions,
        can_write: p.has(Permission::UnitWrite),
        code: form.code,
        name: form.name,
        parent_code: form.parent_code,
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &view)
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    page(&state, &ctx, RegionForm::default(), Default::default(), q.done.as_deref()).await
}

pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<RegionForm>) -> PageResult {
    let p = ctx.principal()?;
    let region = Region {
        code: form.code.clone(),
        name: form.name.clone(),
        parent_code: Some(form.parent_code.clone()).filter(|s| !s.is_empty()),
        level: 0,
    };
    match state.identity.create_region(p, &ctx.actor(), region).await {
        Ok(()) => see_other("/admin/regions?done=region_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            page(&state, &ctx, form, err, None).await
        }
    }
}
