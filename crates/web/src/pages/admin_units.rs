//! Units admin pages (单位管理).

use askama::Template;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use tongban_authz::Permission;
use tongban_identity::{Unit, UnitInput, UnitKind};
use tongban_platform::DomainError;

use super::{Layout, PageResult, form_error, parse_id, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

/// A unit row as the list shows it.
struct UnitRow {
    id: i64,
    name: String,
    depth: usize,
    kind_key: String,
    region: String,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "units.html")]
struct UnitsPage {
    l: Layout,
    units: Vec<UnitRow>,
    can_write: bool,
}

/// An option of a unit picker, indented by depth.
pub struct UnitOption {
    pub id: i64,
    pub label: String,
}

/// Unit options in tree order.
pub fn unit_options(units: &[Unit]) -> Vec<UnitOption> {
    units.iter().map(|u| UnitOption { id: u.id, label: format!("{}{}", "　".repeat(u.depth), u.name) }).collect()
}

#[derive(Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let units = state.identity.units(p).await?;
    let rows = units
        .into_iter()
        .map(|u| UnitRow {
            id: u.id,
            name: u.name,
            depth: u.depth.min(5),
            kind_key: format!("unit_kind.{}", u.kind.as_str()),
            region: u.region_code.unwrap_or_default(),
            enabled: u.enabled,
        })
        .collect();
    let l = Layout::new(&ctx, "units.title", "units").with_flash(q.done.as_deref());
    render(&UnitsPage { l, units: rows, can_write: p.has(Permission::UnitWrite) })
}

#[derive(Template)]
#[template(path = "unit_form.html")]
struct UnitForm {
    l: Layout,
    heading: String,
    action: String,
    name: String,
    parent_id: i64,
    kind: String,
    region_code: String,
    sort_order: String,
    parents: Vec<UnitOption>,
    kinds: Vec<(&'static str, String)>,
    regions: Vec<(String, String)>,
    error: String,
    error_field: String,
}

#[derive(Deserialize)]
pub struct UnitFormData {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    sort_order: String,
}

impl UnitFormData {
    fn to_input(&self) -> Result<UnitInput, DomainError> {
        let sort_order = if self.sort_order.trim().is_empty() { 0 } else { parse_id("sort_order", &self.sort_order)? };
        let parent_id = if self.parent_id.trim().is_empty() { None } else { Some(parse_id("parent_id", &self.parent_id)?) };
        Ok(UnitInput {
            parent_id,
            name: self.name.clone(),
            kind: self.kind.clone(),
            region_code: Some(self.region_code.trim().to_string()).filter(|s| !s.is_empty()),
            sort_order,
        })
    }
}

async fn form_page(state: &AppState, ctx: &Ctx, editing: Option<i64>, data: UnitFormData, error: (String, String)) -> PageResult {
    let p = ctx.principal()?;
    let units = state.identity.units(p).await?;
    let parents = unit_options(&units).into_iter().filter(|o| Some(o.id) != editing).collect();
    let regions = state.identity.regions().await?.into_iter().map(|r| (r.code, r.name)).collect();
    let kinds = UnitKind::ALL.iter().map(|k| (k.as_str(), format!("unit_kind.{}", k.as_str()))).collect();
    let (heading_key, action) = match editing {
        Some(id) => ("units.edit", format!("/admin/units/{id}")),
        None => ("units.new", "/admin/units".to_string()),
    };
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UnitForm {
        l: Layout::new(ctx, heading_key, "units"),
        heading: ctx.tr.t(heading_key).to_string(),
        action,
        name: data.name,
        parent_id: data.parent_id.parse().unwrap_or(0),
        kind: data.kind,
        region_code: data.region_code,
        sort_order: data.sort_order,
        parents,
        kinds,
        regions,
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &page)
}

pub async fn new_form(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.principal()?.require(Permission::UnitWrite)?;
    let data = UnitFormData {
        name: String::new(),
        parent_id: String::new(),
        kind: "department".into(),
        region_code: String::new(),
        sort_order: "0".into(),
    };
    form_page(&state, &ctx, None, data, Default::default()).await
}

pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(data): PageForm<UnitFormData>) -> PageResult {
    let p = ctx.principal()?;
    let result = match data.to_input() {
        Ok(input) => state.identity.create_unit(p, &ctx.actor(), input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other("/admin/units?done=unit_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(&state, &ctx, None, data, err).await
        }
    }
}

pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    p.require(Permission::UnitWrite)?;
    let u = state.identity.unit(p, id).await?;
    let data = UnitFormData {
        name: u.name,
        parent_id: u.parent_id.map(|i| i.to_string()).unwrap_or_default(),
        kind: u.kind.as_str().into(),
        region_code: u.region_code.unwrap_or_default(),
        sort_order: u.sort_order.to_string(),
    };
    form_page(&state, &ctx, Some(id), data, Default::default()).await
}

pub async fn update(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(data): PageForm<UnitFormData>) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let result = match data.to_input() {
        Ok(input) => state.identity.update_unit(p, &ctx.actor(), id, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => see_other("/admin/units?done=unit_saved"),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(&state, &ctx, Some(id), data, err).await
        }
    }
}

pub async fn toggle(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let action = params.text("action").to_string();
    let p = ctx.principal()?;
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(DomainError::NotFound("error.no_such_page").into()),
    };
    state.identity.set_unit_enabled(p, &ctx.actor(), id, enabled).await?;
    see_other("/admin/units?done=unit_saved")
}
