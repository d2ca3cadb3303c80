//! The window (受理台): received applications, each with the applicant, form and materials, and
//! the clerk's actions: accept (受理), refuse (不予受理), request supplements (一次性告知).
//! Department handlers reach a case from their task.

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;
use tongban_approval::cases::{CaseSummary, CaseView};
use tongban_authz::Permission;
use tongban_platform::{DomainError, clock::format_local};

use super::{Layout, PageResult, admin_units::Done, form_error, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "cases.html")]
struct CasesPage {
    l: Layout,
    all: bool,
    cases: Vec<(CaseSummary, String, String)>,
}

#[derive(Deserialize, Default)]
pub struct CasesQuery {
    #[serde(default)]
    all: Option<String>,
}

/// `GET /cases`: the queue of applications waiting for acceptance (or all with `?all=1`).
pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<CasesQuery>) -> PageResult {
    let p = ctx.principal()?;
    let all = q.all.is_some();
    let cases = state
        .cases
        .cases(p, !all)
        .await?
        .into_iter()
        .map(|c| {
            let k = format!("cases.status_{}", c.status);
            let t = format_local(c.received_at);
            (c, k, t)
        })
        .collect();
    render(&CasesPage { l: Layout::new(&ctx, "cases.title", "cases"), all, cases })
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    l: Layout,
    c: CaseView,
    status_key: String,
    received: String,
    form: Vec<(String, String)>,
    events: Vec<(String, String, String, String)>,
    window: bool,
    has_accepted: bool,
    has_supplement: bool,
    delivered: Option<String>,
    error: String,
}

async fn case_page(state: &AppState, ctx: &Ctx, id: i64, error: String, done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    let c = state.cases.case(p, &ctx.actor(), id).await?;
    let item = state.catalogue.item(c.item_id, true).await?;
    let form = item
        .spec
        .form
        .iter()
        .map(|f| {
            let v = match c.form.get(&f.name) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => {
                    if *b {
                        "✓".into()
                    } else {
                        "✗".into()
                    }
                }
                Some(v) => v.to_string(),
                None => String::new(),
            };
            (f.label.clone(), v)
        })
        .collect();
    let events =
        c.events.iter().map(|e| (format_local(e.at), e.actor.clone(), format!("cases.event_{}", e.action), e.note.clone())).collect();
    let code = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let view = CasePage {
        l: Layout::new(ctx, "cases.case", "cases").with_flash(done),
        status_key: format!("cases.status_{}", c.summary.status),
        received: format_local(c.summary.received_at),
        form,
        events,
        window: p.has(Permission::ApprovalAccept),
        has_accepted: c.events.iter().any(|e| e.action == "accepted"),
        has_supplement: c.events.iter().any(|e| e.action == "supplement_requested"),
        delivered: c.delivered_at.map(format_local),
        c,
        error,
    };
    render_status(code, &view)
}

/// `GET /cases/{id}`.
pub async fn show(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    let id = params.id("id")?;
    case_page(&state, &ctx, id, String::new(), q.done.as_deref()).await
}

/// The action form: a reason or the supplement list (one item per line).
#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    items: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    note: String,
}

/// `POST /cases/{id}/{accept|refuse|supplement}`.
pub async fn act(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<ActionForm>) -> PageResult {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let actor = ctx.actor();
    let result = match params.text("action") {
        "accept" => state.cases.accept(p, &actor, id).await,
        "refuse" => state.cases.refuse(p, &actor, id, &f.reason).await,
        "supplement" => {
            let items: Vec<String> = f.items.lines().map(str::to_string).collect();
            state.cases.request_supplement(p, &actor, id, &items).await
        }
        "deliver" => state.cases.deliver(p, &actor, id, &f.method, &f.note).await,
        _ => Err(DomainError::NotFound("error.not_found")),
    };
    match result {
        Ok(()) => see_other(&format!("/cases/{id}?done=case_updated")),
        Err(e @ (DomainError::Invalid(_) | DomainError::Conflict(_))) => {
            let (_, message) = form_error(&ctx.tr, e)?;
            case_page(&state, &ctx, id, message, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /cases/{id}/materials/{mid}`: downloads a material (for those who may see the case).
pub async fn material(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let m = state.cases.material(p, &ctx.actor(), params.id("id")?, params.id("mid")?).await?;
    stored_file(&state, &m.sm3, &m.file_name, &m.content_type, false).await
}

/// `GET /cases/{id}/result`: the result document (结果文书), for those who may see the case.
pub async fn result(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let (name, sm3) = state.cases.result_document(p, &ctx.actor(), params.id("id")?).await?;
    stored_file(&state, &sm3, &name, "text/html; charset=utf-8", true).await
}

/// A file from the blob store as a response: a download, or shown in the browser (`inline`,
/// for generated documents: their own inline styles are all they may use).
pub(crate) async fn stored_file(state: &AppState, sm3: &str, file_name: &str, content_type: &str, inline: bool) -> PageResult {
    let bytes = state
        .blobs
        .get(sm3)
        .await
        .map_err(|e| DomainError::Internal(format!("reading blob: {e}")))?
        .ok_or(DomainError::NotFound("error.not_found"))?;
    let ascii: String = file_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let encoded: String = file_name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    let disposition = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let csp = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    let headers = [
        (header::CONTENT_TYPE, content_type.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CONTENT_SECURITY_POLICY, csp.to_string()),
    ];
    Ok((headers, bytes).into_response())
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage {
    l: Layout,
    kind: &'static str,
    title_key: &'static str,
    unit: String,
    c: CaseView,
    item_name: String,
    legal_basis: String,
    promised_days: u32,
    date: String,
    accepted: String,
    received: String,
    items: Vec<String>,
}

/// `GET /cases/{id}/notice/{kind}`: a printable notice generated from the case — `acceptance`
/// (受理通知书), `supplement` (补正告知书), `refusal` (不予受理决定书) or `decision`
/// (准予/不予许可决定书). Only notices that fit the case's state exist.
pub async fn notice(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let c = state.cases.case(p, &ctx.actor(), params.id("id")?).await?;
    let item = state.catalogue.item(c.item_id, true).await?;
    let happened = |action: &str| c.events.iter().rev().find(|e| e.action == action).map(|e| e.at);
    let (kind, title_key, at) = match params.text("kind") {
        "acceptance" => ("acceptance", "notice.acceptance", happened("accepted")),
        "supplement" => ("supplement", "notice.supplement", happened("supplement_requested")),
        "refusal" => ("refusal", "notice.refusal", happened("refused")),
        "decision" if c.summary.status == "approved" => ("approved", "notice.approved", happened("approved")),
        "decision" if c.summary.status == "denied" => ("denied", "notice.denied", happened("denied")),
        _ => ("", "", None),
    };
    let Some(at) = at else { return Err(DomainError::NotFound("error.not_found").into()) };
    let items = c
        .events
        .iter()
        .rev()
        .find(|e| e.action == "supplement_requested")
        .map(|e| e.note.split('；').map(str::to_string).collect())
        .unwrap_or_default();
    let date = format_local(at).chars().take(10).collect();
    let accepted = happened("accepted").map(|a| format_local(a).chars().take(10).collect()).unwrap_or_default();
    let view = NoticePage {
        l: Layout::new(&ctx, title_key, "cases"),
        kind,
        title_key,
        unit: format!("嘉禾县{}", item.lead_unit_name),
        item_name: item.spec.name.clone(),
        legal_basis: item.spec.legal_basis.clone(),
        promised_days: item.spec.promised_days,
        date,
        accepted,
        received: format_local(c.summary.received_at).chars().take(10).collect(),
        items,
        c,
    };
    render(&view)
}
