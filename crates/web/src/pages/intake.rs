//! Citizens' application pages (网上申报): start from a guide, fill the form, upload materials,
//! save, submit, print the receipt, follow the status, withdraw; and the status query without
//! log-in (办件查询).

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
};
use serde::Deserialize;
use serde_json::{Map, Value};
use tongban_approval::{
    form::FieldKind,
    intake::{ApplicationSummary, ApplicationView, PublicStatus, Receipt, status},
};
use tongban_platform::{DomainError, clock::format_local};

use super::{Layout, PageResult, admin_units::Done, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

/// `POST /public/applications` (item_id): starts a draft and opens it.
pub async fn start(State(state): State<AppState>, ctx: Ctx, PageForm(f): PageForm<Vec<(String, String)>>) -> PageResult {
    let who = ctx.citizen()?;
    let item_id = f
        .iter()
        .find(|(k, _)| k == "item_id")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| DomainError::invalid("item_id", "error.required"))?;
    let id = state.intake.start(who, &ctx.actor(), item_id).await?;
    see_other(&format!("/public/applications/{id}"))
}

/// One form field with its current value, for the template.
struct FieldView {
    name: String,
    label: String,
    input: &'static str,
    select: bool,
    textarea: bool,
    checkbox: bool,
    required: bool,
    options: Vec<String>,
    help: String,
    value: String,
}

/// One line of the materials list: (index, name, required, uploaded files as (id, name, size)).
type MaterialSlot = (u32, String, bool, Vec<(i64, String, i64)>);

#[derive(Template)]
#[template(path = "intake_application.html")]
struct ApplicationPage {
    l: Layout,
    a: ApplicationView,
    fields: Vec<FieldView>,
    materials: Vec<MaterialSlot>,
    status_key: String,
    editable: bool,
    events: Vec<(String, String, String)>,
    can_rate: bool,
    rating: Option<(i64, String)>,
    error: String,
    error_field: String,
}

fn status_key(s: &str) -> String {
    format!("intake.status_{s}")
}

async fn application_page(state: &AppState, ctx: &Ctx, id: i64, error: (String, String), done: Option<&str>) -> PageResult {
    let who = ctx.citizen()?;
    let a = state.intake.application(who, &ctx.actor(), id).await?;
    let fields = a
        .item
        .spec
        .form
        .iter()
        .map(|f| FieldView {
            name: f.name.clone(),
            label: f.label.clone(),
            input: f.kind.input_type(),
            select: f.kind == FieldKind::Select,
            textarea: f.kind == FieldKind::Textarea,
            checkbox: f.kind == FieldKind::Checkbox,
            required: f.required,
            options: f.options.clone(),
            help: f.help.clone(),
            value: match a.form.get(&f.name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            },
        })
        .collect();
    let materials = a
        .item
        .spec
        .materials
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let files = a.materials.iter().filter(|x| x.index as usize == i).map(|x| (x.id, x.file_name.clone(), x.size)).collect();
            (i as u32, m.name.clone(), m.required, files)
        })
        .collect();
    let editable = a.status == status::DRAFT;
    let rating = state.intake.rating(who, &ctx.actor(), id).await?;
    let can_rate = rating.is_none() && [status::APPROVED, status::DENIED, status::REFUSED].contains(&a.status.as_str());
    let events = a.events.iter().map(|e| (format_local(e.at), status_key(&e.status), e.note.clone())).collect();
    let code = if error.1.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = ApplicationPage {
        l: Layout::new(ctx, "intake.application", "public").with_flash(done),
        status_key: status_key(&a.status),
        fields,
        materials,
        editable,
        events,
        can_rate,
        rating,
        a,
        error_field: error.0,
        error: error.1,
    };
    render_status(code, &view)
}

/// `GET /public/applications/{id}`.
pub async fn application(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    let id = params.id("id")?;
    application_page(&state, &ctx, id, Default::default(), q.done.as_deref()).await
}

fn page_error(ctx: &Ctx, e: DomainError) -> Result<(String, String), super::PageError> {
    super::form_error(&ctx.tr, e)
}

/// `POST /public/applications/{id}`: saves the draft form (`f.<name>` fields), and submits it
/// when the `submit` button was used.
pub async fn save(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(pairs): PageForm<Vec<(String, String)>>,
) -> PageResult {
    let who = ctx.citizen()?;
    let id = params.id("id")?;
    let values: Map<String, Value> =
        pairs.iter().filter_map(|(k, v)| k.strip_prefix("f.").map(|name| (name.to_string(), Value::String(v.clone())))).collect();
    let submitting = pairs.iter().any(|(k, _)| k == "submit");
    if let Err(e) = state.intake.save_form(who, &ctx.actor(), id, values).await {
        let err = page_error(&ctx, e)?;
        return application_page(&state, &ctx, id, err, None).await;
    }
    if !submitting {
        return see_other(&format!("/public/applications/{id}?done=draft_saved"));
    }
    match state.intake.submit(who, &ctx.actor(), id).await {
        Ok(_) => see_other(&format!("/public/applications/{id}/receipt")),
        Err(e) => {
            let err = page_error(&ctx, e)?;
            application_page(&state, &ctx, id, err, None).await
        }
    }
}

/// `POST /public/applications/{id}/materials` (multipart: `material_index`, `file`).
pub async fn upload(State(state): State<AppState>, ctx: Ctx, params: PathParams, req: axum::extract::Request) -> PageResult {
    let who = ctx.citizen()?.clone();
    let id = params.id("id")?;
    let result = upload_parts(&state, &ctx, &who, id, req).await;
    match result {
        Ok(()) => see_other(&format!("/public/applications/{id}?done=material_uploaded")),
        Err(e) => {
            let err = page_error(&ctx, e)?;
            application_page(&state, &ctx, id, err, None).await
        }
    }
}

async fn upload_parts(
    state: &AppState,
    ctx: &Ctx,
    who: &tongban_identity::PublicPrincipal,
    id: i64,
    req: axum::extract::Request,
) -> Result<(), DomainError> {
    use axum::extract::FromRequest;
    let mut form =
        axum::extract::Multipart::from_request(req, &()).await.map_err(|_| DomainError::invalid("material", "error.malformed"))?;
    let mut index = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = form.next_field().await.map_err(|_| DomainError::invalid("material", "approval.error.upload_too_large"))? {
        match field.name().unwrap_or("") {
            "material_index" => index = field.text().await.ok().and_then(|t| t.trim().parse::<u32>().ok()),
            "file" => {
                let name = field.file_name().unwrap_or("").to_string();
                let bytes = field.bytes().await.map_err(|_| DomainError::invalid("material", "approval.error.upload_too_large"))?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    let index = index.ok_or_else(|| DomainError::invalid("material_index", "error.required"))?;
    let (name, bytes) = file.ok_or_else(|| DomainError::invalid("material", "approval.error.upload_empty"))?;
    state.intake.upload(who, &ctx.actor(), id, index, &name, &bytes).await.map(|_| ())
}

/// `POST /public/applications/{id}/materials/{mid}/remove`.
pub async fn remove_material(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let who = ctx.citizen()?;
    let id = params.id("id")?;
    state.intake.remove_material(who, &ctx.actor(), id, params.id("mid")?).await?;
    see_other(&format!("/public/applications/{id}"))
}

/// `POST /public/applications/{id}/supplement`: sends the supplemented materials.
pub async fn answer_supplement(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let who = ctx.citizen()?;
    let id = params.id("id")?;
    match state.intake.answer_supplement(who, &ctx.actor(), id).await {
        Ok(()) => see_other(&format!("/public/applications/{id}?done=supplement_sent")),
        Err(e) => {
            let err = page_error(&ctx, e)?;
            application_page(&state, &ctx, id, err, None).await
        }
    }
}

/// The rating form.
#[derive(Deserialize, Default)]
pub struct RateForm {
    #[serde(default)]
    level: String,
    #[serde(default)]
    comment: String,
}

/// `POST /public/applications/{id}/rate` (好差评).
pub async fn rate(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<RateForm>) -> PageResult {
    let who = ctx.citizen()?;
    let id = params.id("id")?;
    let level = f.level.trim().parse::<u8>().unwrap_or(0);
    match state.intake.rate(who, &ctx.actor(), id, level, &f.comment).await {
        Ok(()) => see_other(&format!("/public/applications/{id}?done=rated")),
        Err(e) => {
            let err = page_error(&ctx, e)?;
            application_page(&state, &ctx, id, err, None).await
        }
    }
}

/// `POST /public/applications/{id}/withdraw`.
pub async fn withdraw(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let who = ctx.citizen()?;
    let id = params.id("id")?;
    match state.intake.withdraw(who, &ctx.actor(), id).await {
        Ok(()) => see_other(&format!("/public/applications/{id}?done=withdrawn")),
        Err(e) => {
            let err = page_error(&ctx, e)?;
            application_page(&state, &ctx, id, err, None).await
        }
    }
}

#[derive(Template)]
#[template(path = "intake_receipt.html")]
struct ReceiptPage {
    l: Layout,
    a: ApplicationView,
    r: Receipt,
    submitted: String,
}

/// `GET /public/applications/{id}/receipt`: the printable receipt (申报回执).
pub async fn receipt(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let who = ctx.citizen()?;
    let a = state.intake.application(who, &ctx.actor(), params.id("id")?).await?;
    let (Some(number), Some(code), Some(at)) = (a.number.clone(), a.query_code.clone(), a.submitted_at) else {
        return Err(DomainError::NotFound("error.not_found").into());
    };
    let r = Receipt { number, query_code: code, submitted_at: at };
    render(&ReceiptPage { l: Layout::new(&ctx, "intake.receipt", "public"), submitted: format_local(at), a, r })
}

/// `GET /public/applications/{id}/result`: the result document (结果文书). The first opening is
/// the proof of delivery (送达).
pub async fn result(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let who = ctx.citizen()?;
    let doc = state.intake.result_document(who, &ctx.actor(), params.id("id")?).await?;
    super::cases::stored_file(&state, &doc.sm3, &doc.file_name, "text/html; charset=utf-8", true).await
}

#[derive(Template)]
#[template(path = "intake_status.html")]
struct StatusPage {
    l: Layout,
    number: String,
    found: Option<PublicStatus>,
    status_key: String,
    events: Vec<(String, String, String)>,
    error: String,
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    #[serde(default)]
    number: String,
    #[serde(default)]
    code: String,
}

/// `GET /status?number=&code=`: the status query without log-in (办件查询).
pub async fn status_query(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<StatusQuery>) -> PageResult {
    let mut page = StatusPage {
        l: Layout::new(&ctx, "intake.status_query", "status"),
        number: q.number.clone(),
        found: None,
        status_key: String::new(),
        events: Vec::new(),
        error: String::new(),
    };
    if q.number.trim().is_empty() {
        return render(&page);
    }
    match state.intake.status_by_code(&q.number, &q.code).await {
        Ok(s) => {
            page.status_key = status_key(&s.status);
            page.events = s.events.iter().map(|e| (format_local(e.at), status_key(&e.status), e.note.clone())).collect();
            page.found = Some(s);
            render(&page)
        }
        Err(e) => {
            page.error = crate::error::message(&ctx.tr, &e);
            render_status(StatusCode::NOT_FOUND, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "public_home.html")]
struct HomePage {
    l: Layout,
    me: tongban_identity::PublicPrincipal,
    apps: Vec<(ApplicationSummary, String, String)>,
    notes: Vec<(tongban_notify::Notification, String)>,
    passkeys: Vec<(tongban_identity::PasskeyInfo, String, String)>,
    passkey_origin: String,
    passkey_action: &'static str,
}

/// `GET /public`: the citizen's home with "my applications" (我的办件).
pub async fn home(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>, headers: axum::http::HeaderMap) -> PageResult {
    let me = ctx.citizen()?.clone();
    // Logged in on the way to another system (单点登录): continue its authorization request.
    if let Some(back) = crate::oidc::saved_return(&headers).filter(|b| b.starts_with("/realms/public/")) {
        let mut page = crate::oidc::continue_page(&ctx, &back)?;
        if let Ok(v) = axum::http::HeaderValue::from_str(&crate::oidc::clear_return()) {
            page.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(page);
    }
    let apps = state
        .intake
        .mine(&me)
        .await?
        .into_iter()
        .map(|a| {
            let k = status_key(&a.status);
            let t = format_local(a.updated_at);
            (a, k, t)
        })
        .collect();
    let to = tongban_notify::Recipient::Public(me.account_id);
    let notes = state
        .notify
        .list(to)
        .await?
        .into_iter()
        .take(10)
        .map(|n| {
            let t = format_local(n.created_at);
            (n, t)
        })
        .collect();
    state.notify.mark_all_read(to).await?;
    let passkeys = super::me::passkey_rows(&state, tongban_identity::Realm::Public, me.account_id).await?;
    let passkey_origin = state.identity.passkey_origin().unwrap_or_default().to_string();
    let l = Layout::new(&ctx, "public.home", "public").with_flash(q.done.as_deref());
    render(&HomePage { l, me, apps, notes, passkeys, passkey_origin, passkey_action: "/public/passkeys" })
}
