//! The service catalogue: public service guides (办事指南) with search and a print view, open to
//! everyone, and the administrators' item pages (事项管理, `catalogue.write`).

use askama::Template;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use tongban_approval::{
    catalogue::{Audience, GuideQuery, ItemKind, ItemSpec, LIFE_EVENTS, Material, ServiceItem},
    form::FormField,
};
use tongban_authz::Permission;
use tongban_platform::DomainError;

use super::{Layout, PageResult, admin_units::Done, form_error, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "guide_list.html")]
struct GuideList {
    l: Layout,
    items: Vec<ServiceItem>,
    departments: Vec<(i64, String)>,
    events: Vec<&'static str>,
    q: String,
    unit: i64,
    event: String,
}

#[derive(Deserialize, Default)]
pub struct GuideParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    event: String,
}

/// `GET /guide`: the public catalogue, searched by name, department and life event.
pub async fn guide_list(State(state): State<AppState>, ctx: Ctx, QueryOf(p): QueryOf<GuideParams>) -> PageResult {
    let unit = p.unit.trim().parse::<i64>().ok();
    let event = if LIFE_EVENTS.contains(&p.event.as_str()) { p.event.clone() } else { String::new() };
    let query = GuideQuery { text: p.q.chars().take(50).collect(), unit_id: unit, life_event: event.clone() };
    let items = state.catalogue.search(&query).await?;
    let departments = state.catalogue.departments().await?;
    render(&GuideList {
        l: Layout::new(&ctx, "guide.title", "guide"),
        items,
        departments,
        events: LIFE_EVENTS.to_vec(),
        q: query.text,
        unit: unit.unwrap_or(0),
        event,
    })
}

#[derive(Template)]
#[template(path = "guide.html")]
struct GuidePage {
    l: Layout,
    item: ServiceItem,
    kind_key: String,
    steps: Vec<(String, String, Option<u32>)>,
    print: bool,
}

async fn guide_page(state: &AppState, ctx: &Ctx, params: &PathParams, print: bool) -> PageResult {
    let id = params.id("id")?;
    let admin = ctx.principal().is_ok_and(|p| p.has(Permission::CatalogueWrite));
    let item = state.catalogue.item(id, admin).await?;
    let steps = state.workflow.process_steps(&item.spec.process_key).await?;
    let kind_key = format!("guide.kind_{}", item.spec.kind.as_str());
    render(&GuidePage { l: Layout::new(ctx, "guide.title", "guide"), item, kind_key, steps, print })
}

/// `GET /guide/{id}`: one service guide.
pub async fn guide(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    guide_page(&state, &ctx, &params, false).await
}

/// `GET /guide/{id}/print`: the guide on its own, for paper.
pub async fn guide_print(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    guide_page(&state, &ctx, &params, true).await
}

#[derive(Template)]
#[template(path = "catalogue_admin.html")]
struct AdminList {
    l: Layout,
    items: Vec<ServiceItem>,
}

/// `GET /admin/catalogue`: every item, enabled or not.
pub async fn admin_list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    ctx.principal()?.require(Permission::CatalogueWrite)?;
    let items = state.catalogue.items(true).await?;
    render(&AdminList { l: Layout::new(&ctx, "catalogue.title", "catalogue").with_flash(q.done.as_deref()), items })
}

/// The item form as submitted: lists as TOML text; co-departments and life events are repeated
/// checkbox fields (which serde's url-encoded reader cannot collect, hence [`ItemForm::from_pairs`]).
#[derive(Default, Clone)]
pub struct ItemForm {
    code: String,
    name: String,
    kind: String,
    audience: String,
    lead_unit_id: String,
    co_unit_ids: Vec<String>,
    legal_basis: String,
    conditions: String,
    legal_days: String,
    promised_days: String,
    fee: String,
    process_key: String,
    visits: String,
    life_events: Vec<String>,
    location: String,
    phone: String,
    materials: String,
    form: String,
}

#[derive(Deserialize, Default)]
struct MaterialsToml {
    #[serde(default)]
    material: Vec<Material>,
}

#[derive(Deserialize, Default)]
struct FieldsToml {
    #[serde(default)]
    field: Vec<FormField>,
}

fn number(field: &str, v: &str) -> Result<u32, DomainError> {
    v.trim().parse().map_err(|_| DomainError::invalid(field, "approval.error.number"))
}

impl ItemForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> ItemForm {
        let mut f = ItemForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "code" => f.code = v,
                "name" => f.name = v,
                "kind" => f.kind = v,
                "audience" => f.audience = v,
                "lead_unit_id" => f.lead_unit_id = v,
                "co_unit_ids" => f.co_unit_ids.push(v),
                "legal_basis" => f.legal_basis = v,
                "conditions" => f.conditions = v,
                "legal_days" => f.legal_days = v,
                "promised_days" => f.promised_days = v,
                "fee" => f.fee = v,
                "process_key" => f.process_key = v,
                "visits" => f.visits = v,
                "life_events" => f.life_events.push(v),
                "location" => f.location = v,
                "phone" => f.phone = v,
                "materials" => f.materials = v,
                "form" => f.form = v,
                _ => {}
            }
        }
        f
    }

    fn from_item(item: &ServiceItem) -> ItemForm {
        let s = &item.spec;
        ItemForm {
            code: s.code.clone(),
            name: s.name.clone(),
            kind: s.kind.as_str().into(),
            audience: s.audience.as_str().into(),
            lead_unit_id: s.lead_unit_id.to_string(),
            co_unit_ids: s.co_unit_ids.iter().map(i64::to_string).collect(),
            legal_basis: s.legal_basis.clone(),
            conditions: s.conditions.clone(),
            legal_days: s.legal_days.to_string(),
            promised_days: s.promised_days.to_string(),
            fee: s.fee.clone(),
            process_key: s.process_key.clone(),
            visits: s.visits.to_string(),
            life_events: s.life_events.clone(),
            location: s.location.clone(),
            phone: s.phone.clone(),
            materials: toml::to_string(&serde_json::json!({"material": s.materials})).unwrap_or_default(),
            form: toml::to_string(&serde_json::json!({"field": s.form})).unwrap_or_default(),
        }
    }

    fn spec(&self) -> Result<ItemSpec, DomainError> {
        let materials: MaterialsToml =
            toml::from_str(&self.materials).map_err(|e| DomainError::invalid_detail("materials", "approval.error.toml", e.message()))?;
        let fields: FieldsToml =
            toml::from_str(&self.form).map_err(|e| DomainError::invalid_detail("form", "approval.error.toml", e.message()))?;
        Ok(ItemSpec {
            code: self.code.clone(),
            name: self.name.clone(),
            kind: ItemKind::parse(&self.kind).ok_or_else(|| DomainError::invalid("kind", "approval.error.option"))?,
            audience: Audience::parse(&self.audience).ok_or_else(|| DomainError::invalid("audience", "approval.error.option"))?,
            lead_unit_id: self.lead_unit_id.trim().parse().map_err(|_| DomainError::invalid("lead_unit_id", "error.required"))?,
            co_unit_ids: self
                .co_unit_ids
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map_err(|_| DomainError::invalid("co_unit_ids", "error.invalid_value")))
                .collect::<Result<_, _>>()?,
            legal_basis: self.legal_basis.clone(),
            conditions: self.conditions.clone(),
            legal_days: number("legal_days", &self.legal_days)?,
            promised_days: number("promised_days", &self.promised_days)?,
            fee: self.fee.clone(),
            materials: materials.material,
            form: fields.field,
            process_key: self.process_key.clone(),
            visits: number("visits", &self.visits)?,
            life_events: self.life_events.clone(),
            location: self.location.clone(),
            phone: self.phone.clone(),
        })
    }
}

#[derive(Template)]
#[template(path = "catalogue_form.html")]
struct ItemFormPage {
    l: Layout,
    id: Option<i64>,
    f: ItemForm,
    units: Vec<(i64, String)>,
    processes: Vec<String>,
    kinds: Vec<&'static str>,
    events: Vec<&'static str>,
    error: String,
    error_field: String,
}

async fn form_page(state: &AppState, ctx: &Ctx, id: Option<i64>, f: ItemForm, error: (String, String)) -> PageResult {
    let p = ctx.principal()?;
    p.require(Permission::CatalogueWrite)?;
    let units = state.identity.all_units().await?.into_iter().filter(|u| u.enabled).map(|u| (u.id, u.name)).collect();
    let mut processes: Vec<String> = state.workflow.definitions(p).await?.into_iter().map(|d| d.key).collect();
    processes.dedup();
    let status = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = ItemFormPage {
        l: Layout::new(ctx, "catalogue.title", "catalogue"),
        id,
        f,
        units,
        processes,
        kinds: ItemKind::ALL.iter().map(|k| k.as_str()).collect(),
        events: LIFE_EVENTS.to_vec(),
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &view)
}

/// `GET /admin/catalogue/new`.
pub async fn new_form(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let f =
        ItemForm { kind: "license".into(), audience: "both".into(), visits: "0".into(), fee: "不收费".into(), ..ItemForm::default() };
    form_page(&state, &ctx, None, f, Default::default()).await
}

/// `GET /admin/catalogue/{id}/edit`.
pub async fn edit_form(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    ctx.principal()?.require(Permission::CatalogueWrite)?;
    let item = state.catalogue.item(id, true).await?;
    form_page(&state, &ctx, Some(id), ItemForm::from_item(&item), Default::default()).await
}

/// `POST /admin/catalogue` (create) and `POST /admin/catalogue/{id}` (update).
async fn save(state: &AppState, ctx: &Ctx, id: Option<i64>, f: ItemForm) -> PageResult {
    let p = ctx.principal()?;
    let result = match f.spec() {
        Ok(spec) => match id {
            None => state.catalogue.create(p, &ctx.actor(), spec).await,
            Some(id) => state.catalogue.update(p, &ctx.actor(), id, spec).await.map(|()| id),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => see_other(&format!("/guide/{id}?done=item_saved")),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            form_page(state, ctx, id, f, err).await
        }
    }
}

/// `POST /admin/catalogue`.
pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<Vec<(String, String)>>) -> PageResult {
    save(&state, &ctx, None, ItemForm::from_pairs(f)).await
}

/// `POST /admin/catalogue/{id}`.
pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(f): PageForm<Vec<(String, String)>>,
) -> PageResult {
    let id = params.id("id")?;
    save(&state, &ctx, Some(id), ItemForm::from_pairs(f)).await
}

/// `POST /admin/catalogue/{id}/{enable|disable}`.
pub async fn toggle(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let enabled = match params.text("action") {
        "enable" => true,
        "disable" => false,
        _ => return Err(DomainError::NotFound("error.not_found").into()),
    };
    state.catalogue.set_enabled(ctx.principal()?, &ctx.actor(), id, enabled).await?;
    see_other("/admin/catalogue?done=item_saved")
}
