//! Official documents on the pages (公文): the unit's documents, drafting with the GB/T 9704
//! elements, numbering, sealing and sending to units with tracking; the inbox with signing for
//! and refusing.

use askama::Template;
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use tongban_documents::{
    Attachment, Countersign, Delivery, DistributionGroup, Document, DocumentFields, IssueRequest, Submission, URGENCIES,
};
use tongban_pki::seals::Seal;
use tongban_platform::{DomainError, clock::format_local};

use super::{Layout, PageResult, admin_units::Done, form_error, form_texts_and_files, parse_id, render, render_status, see_other};
use crate::{
    ctx::Ctx,
    error::PageError,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

/// The form's fields, without the CSRF token, as the elements.
fn fields_of(pairs: Vec<(String, String)>) -> Result<DocumentFields, DomainError> {
    let map: Map<String, Value> = pairs.into_iter().filter(|(k, _)| k != "_csrf").map(|(k, v)| (k, Value::String(v))).collect();
    serde_json::from_value(Value::Object(map)).map_err(|e| DomainError::invalid_detail("body", "error.invalid_value", e.to_string()))
}

#[derive(Template)]
#[template(path = "documents.html")]
struct ListPage {
    l: Layout,
    documents: Vec<(Document, String, String)>,
    can_issue: bool,
}

/// `GET /documents`: the unit's documents.
pub async fn list(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let documents = state
        .documents
        .documents(p)
        .await?
        .into_iter()
        .map(|d| {
            let (at, status_key) = (format_local(d.updated_at), format!("document.status_{}", d.status));
            (d, at, status_key)
        })
        .collect();
    let can_issue = state.documents.can_issue(p, p.unit_id).await?;
    render(&ListPage { l: Layout::new(&ctx, "document.title", "documents").with_flash(q.done.as_deref()), documents, can_issue })
}

#[derive(Template)]
#[template(path = "document_form.html")]
struct FormPage {
    l: Layout,
    f: DocumentFields,
    urgencies: Vec<&'static str>,
    error: String,
    error_field: String,
}

/// `GET /documents/new`: a blank draft with today's date.
pub async fn new_form(ctx: Ctx) -> PageResult {
    let p = ctx.principal()?;
    let today = tongban_platform::clock::local_date(tongban_platform::clock::now_millis()).map(|d| d.to_string()).unwrap_or_default();
    let f = DocumentFields { issuing_authority: p.unit_name.clone(), date: today, ..DocumentFields::default() };
    render(&FormPage {
        l: Layout::new(&ctx, "document.new", "documents"),
        f,
        urgencies: URGENCIES.to_vec(),
        error: String::new(),
        error_field: String::new(),
    })
}

/// `POST /documents`: starts the draft.
pub async fn create(State(state): State<AppState>, ctx: Ctx, PageForm(pairs): PageForm<Vec<(String, String)>>) -> PageResult {
    let p = ctx.principal()?;
    let refuse = |e: DomainError, f: DocumentFields| {
        let (error_field, error) = form_error(&ctx.tr, e)?;
        let l = Layout::new(&ctx, "document.new", "documents");
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &FormPage { l, f, urgencies: URGENCIES.to_vec(), error, error_field })
    };
    let fields = match fields_of(pairs) {
        Ok(f) => f,
        Err(e) => return refuse(e, DocumentFields::default()),
    };
    match state.documents.create_draft(p, &ctx.actor(), &fields).await {
        Ok(id) => see_other(&format!("/documents/{id}?done=document_saved")),
        Err(e) => refuse(e, fields),
    }
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    l: Layout,
    d: Document,
    status_key: String,
    can_issue: bool,
    can_submit: bool,
    can_recall: bool,
    countersigns: Vec<(Countersign, String, String)>,
    attachments: Vec<Attachment>,
    can_edit: bool,
    groups: Vec<DistributionGroup>,
    seals: Vec<Seal>,
    units: Vec<(i64, String)>,
    tracking: Vec<(Delivery, String, String)>,
    error: String,
}

async fn document_page(state: &AppState, ctx: &Ctx, id: i64, done: Option<&str>, error: String) -> PageResult {
    let p = ctx.principal()?;
    let d = state.documents.document(p, &ctx.actor(), id).await?;
    let can_issue = state.documents.can_issue(p, d.unit_id).await?;
    let can_submit = d.status == "draft" && (d.created_by == p.user_id || can_issue);
    let can_recall = d.status == "in_review" && (d.created_by == p.user_id || can_issue);
    let can_edit = d.status == "draft" && (d.created_by == p.user_id || can_issue);
    let attachments = state.documents.attachments(&d).await?;
    let groups = if can_issue && d.status == "numbered" { state.documents.groups(p, &ctx.actor(), d.unit_id).await? } else { Vec::new() };
    let countersigns = state
        .documents
        .countersigns(&d)
        .await?
        .into_iter()
        .map(|c| {
            let key = format!("workflow.task_{}", c.status);
            let at = c.closed_at.map(format_local).unwrap_or_default();
            (c, key, at)
        })
        .collect();
    let seals =
        if can_issue { state.ca.usable_seals(p).await?.into_iter().filter(|s| s.unit_id == d.unit_id).collect() } else { Vec::new() };
    let units = state.identity.all_units().await?.into_iter().filter(|u| u.id != d.unit_id && u.enabled).map(|u| (u.id, u.name)).collect();
    let tracking = if d.status == "issued" {
        state
            .documents
            .tracking(p, &ctx.actor(), id)
            .await?
            .into_iter()
            .map(|t| {
                let key = format!("document.delivery_{}", t.status);
                let at = t.signed_at.or(t.refused_at).or(t.read_at).map(format_local).unwrap_or_default();
                (t, key, at)
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let status_key = format!("document.status_{}", d.status);
    let l = Layout::new(ctx, "document.title", "documents").with_flash(done);
    render_status(
        status,
        &DocumentPage {
            l,
            d,
            status_key,
            can_issue,
            can_submit,
            can_recall,
            countersigns,
            attachments,
            can_edit,
            groups,
            seals,
            units,
            tracking,
            error,
        },
    )
}

/// After an action on document `id`: to its page with `done` flashed, or back to the page with
/// the message for bad input or a state that does not allow it.
async fn on_document<T>(state: &AppState, ctx: &Ctx, id: i64, result: Result<T, DomainError>, done: &str) -> PageResult {
    match result {
        Ok(_) => see_other(&format!("/documents/{id}?done={done}")),
        Err(e @ (DomainError::Invalid(_) | DomainError::Conflict(_))) => {
            document_page(state, ctx, id, None, crate::error::message(&ctx.tr, &e)).await
        }
        Err(e) => Err(PageError(e)),
    }
}

/// [`on_document`] for a received document's page (`/inbox/{id}`).
async fn on_delivery<T>(state: &AppState, ctx: &Ctx, id: i64, result: Result<T, DomainError>, done: &str) -> PageResult {
    match result {
        Ok(_) => see_other(&format!("/inbox/{id}?done={done}")),
        Err(e @ (DomainError::Invalid(_) | DomainError::Conflict(_))) => {
            delivery_page(state, ctx, id, None, crate::error::message(&ctx.tr, &e)).await
        }
        Err(e) => Err(PageError(e)),
    }
}

/// The numeric values of a field a form repeats (ticked checkboxes), refused naming `field`.
fn repeated_ids<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, key: &str, field: &str) -> Result<Vec<i64>, DomainError> {
    pairs.into_iter().filter(|(k, _)| *k == key).map(|(_, v)| parse_id(field, v)).collect()
}

/// `GET /documents/{id}`.
pub async fn show(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    document_page(&state, &ctx, params.id("id")?, q.done.as_deref(), String::new()).await
}

/// `POST /documents/{id}/number`.
pub async fn number(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let result = state.documents.assign_number(ctx.principal()?, &ctx.actor(), id).await;
    on_document(&state, &ctx, id, result, "document_numbered").await
}

/// `POST /documents/{id}/issue` (multipart): seal, file, recipients.
pub async fn issue(State(state): State<AppState>, ctx: Ctx, params: PathParams, req: axum::extract::Request) -> PageResult {
    let id = params.id("id")?;
    let p = ctx.principal()?;
    let fields = form_texts_and_files(req, "file").await?;
    let text =
        |name: &str| fields.iter().find(|(k, _, _)| k == name).and_then(|(_, _, v)| std::str::from_utf8(v).ok()).unwrap_or("").to_string();
    let texts = || fields.iter().filter_map(|(k, _, v)| Some((k.as_str(), std::str::from_utf8(v).ok()?)));
    let file = fields.iter().find(|(k, f, v)| k == "file" && !f.is_empty() && !v.is_empty());
    let result = async {
        let recipients = repeated_ids(texts(), "recipients", "recipients")?;
        let groups = repeated_ids(texts(), "groups", "groups")?;
        let seal_id = parse_id("seal_id", &text("seal_id"))?;
        // No file: the document is rendered in the GB/T 9704 layout.
        let (name, bytes): (&str, &[u8]) = file.map(|(_, n, b)| (n.as_str(), b.as_slice())).unwrap_or(("", &[]));
        let req = IssueRequest { seal_id, file_name: name, file: bytes, recipients: &recipients, groups: &groups };
        state.documents.issue(&state.ca, p, &ctx.actor(), id, &req).await
    }
    .await;
    on_document(&state, &ctx, id, result, "document_issued").await
}

/// `GET /documents/{id}/pdf`: the document as a PDF — the sealed file once issued, else a
/// rendering of the current draft (without a seal) to check the layout.
pub async fn pdf(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let p = ctx.principal()?;
    let d = state.documents.document(p, &ctx.actor(), params.id("id")?).await?;
    let bytes = match state.documents.issued_file(d.id).await? {
        Some(file) => file,
        None => state.documents.render(&d, None)?,
    };
    Ok(file_response("application/pdf", "document.pdf", bytes, true))
}

/// A stored file as a response: shown in the page (`inline`, for previews in a frame or an
/// image) or downloaded. Previews may be framed by tongban's own pages and nothing else.
fn file_response(content_type: &str, file_name: &str, bytes: Vec<u8>, inline: bool) -> axum::response::Response {
    let ascii: String = file_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    let encoded: String = form_urlencoded::byte_serialize(file_name.as_bytes()).collect::<String>().replace('+', "%20");
    let kind = if inline { "inline" } else { "attachment" };
    let disposition = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let policy = if content_type == "application/pdf" {
        // Chromium's PDF viewer needs the document's defaults; only who may frame it is limited.
        "frame-ancestors 'self'"
    } else {
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
    };
    let headers = [
        (header::CONTENT_TYPE, content_type.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CONTENT_SECURITY_POLICY, policy.to_string()),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN".to_string()),
        (header::CACHE_CONTROL, "private, no-store".to_string()),
    ];
    (headers, bytes).into_response()
}

/// `POST /documents/{id}/attachments` (multipart `file`): attaches a file to a draft.
pub async fn attach(State(state): State<AppState>, ctx: Ctx, params: PathParams, req: axum::extract::Request) -> PageResult {
    let id = params.id("id")?;
    let result = async {
        let fields = form_texts_and_files(req, "attachment").await?;
        let (_, name, bytes) = fields
            .iter()
            .find(|(k, f, _)| k == "file" && !f.is_empty())
            .ok_or_else(|| DomainError::invalid("attachment", "approval.error.upload_empty"))?;
        state.documents.add_attachment(ctx.principal()?, &ctx.actor(), id, name, bytes).await
    }
    .await;
    on_document(&state, &ctx, id, result, "attachment_added#attachments").await
}

/// `POST /documents/{id}/attachments/{aid}/delete`: removes an attachment from a draft.
pub async fn detach(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let result = state.documents.remove_attachment(ctx.principal()?, &ctx.actor(), id, params.id("aid")?).await;
    on_document(&state, &ctx, id, result, "attachment_removed#attachments").await
}

/// The `?download=1` switch of file links.
#[derive(Deserialize, Default)]
pub struct FileQuery {
    #[serde(default)]
    download: Option<String>,
}

/// `GET /documents/{id}/attachments/{aid}`: an attachment, shown in the page when a browser can
/// (PDF, images) unless `?download=1`; for the document's readers and the units it was sent to.
pub async fn attachment(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<FileQuery>) -> PageResult {
    let (a, bytes) = state.documents.attachment_file(ctx.principal()?, &ctx.actor(), params.id("aid")?).await?;
    if a.document_id != params.id("id")? {
        return Err(PageError(DomainError::NotFound("error.not_found")));
    }
    let inline = a.previewable() && q.download.is_none();
    Ok(file_response(&a.content_type, &a.file_name, bytes, inline))
}

/// `GET /inbox/{id}/file`: the sealed file of a received document, for reading in the page.
pub async fn delivered_file(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let (d, package) = state.documents.open_delivery(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    let (name, bytes) = tongban_pki::package::file_of(&package).ok_or(PageError(DomainError::NotFound("error.not_found")))?;
    let pdf = bytes.starts_with(b"%PDF-");
    let content_type = if pdf { "application/pdf" } else { "application/octet-stream" };
    let name = if name.is_empty() { format!("document-{}.pdf", d.document_id) } else { name };
    Ok(file_response(content_type, &name, bytes, pdf))
}

/// `POST /documents/{id}/submit`: sends the draft for review, countersigning and sign-off
/// (送审); the form repeats `countersign_units` once per ticked unit.
pub async fn submit(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: axum::body::Bytes) -> PageResult {
    let id = params.id("id")?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let text = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let result = async {
        let units = repeated_ids(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), "countersign_units", "countersign_units")?;
        let to = Submission { reviewer: text("reviewer"), signer: text("signer"), countersign_units: &units };
        state.documents.submit(ctx.principal()?, &ctx.actor(), id, &to).await
    }
    .await;
    on_document(&state, &ctx, id, result, "document_submitted").await
}

/// `POST /documents/{id}/recall`: takes a draft back from review (撤回送审).
pub async fn recall(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let result = state.documents.recall(ctx.principal()?, &ctx.actor(), id).await;
    on_document(&state, &ctx, id, result, "document_recalled").await
}

/// `POST /documents/{id}/withdraw`.
pub async fn withdraw(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    state.documents.withdraw(ctx.principal()?, &ctx.actor(), id).await?;
    see_other(&format!("/documents/{id}?done=document_withdrawn"))
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    l: Layout,
    deliveries: Vec<(Delivery, String, String)>,
}

/// `GET /inbox`: the unit's received documents (特急 first).
pub async fn inbox(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let deliveries = state
        .documents
        .inbox(p)
        .await?
        .into_iter()
        .map(|d| {
            let (at, key) = (format_local(d.delivered_at), format!("document.delivery_{}", d.status));
            (d, at, key)
        })
        .collect();
    render(&InboxPage { l: Layout::new(&ctx, "document.inbox", "inbox").with_flash(q.done.as_deref()), deliveries })
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    l: Layout,
    d: Delivery,
    status_key: String,
    manifest: Value,
    attachments: Vec<(bool, Attachment)>,
    can_sign: bool,
    can_register: bool,
    units: Vec<(i64, String)>,
    archived: String,
    error: String,
}

async fn delivery_page(state: &AppState, ctx: &Ctx, id: i64, done: Option<&str>, error: String) -> PageResult {
    let p = ctx.principal()?;
    let (d, package) = state.documents.open_delivery(p, &ctx.actor(), id).await?;
    let manifest = serde_json::from_str::<Value>(&package)
        .ok()
        .and_then(|v| v["manifest"].as_str().and_then(|m| serde_json::from_str(m).ok()))
        .unwrap_or(Value::Null);
    let office = state.documents.can_issue(p, d.recipient_unit_id).await?;
    let can_sign = matches!(d.status.as_str(), "delivered" | "read") && office;
    let can_register = d.status == "signed" && d.instance_id.is_none() && office;
    let units = if can_register { state.identity.units(p).await?.into_iter().map(|u| (u.id, u.name)).collect() } else { Vec::new() };
    let archived = d.archived_at.map(format_local).unwrap_or_default();
    // Each attachment with whether its digest is among those sealed with the document.
    let sealed: Vec<&str> = manifest["metadata"]["attachments"]
        .as_array()
        .map(|list| list.iter().filter_map(|a| a["sm3"].as_str()).collect())
        .unwrap_or_default();
    let attachments =
        state.documents.delivery_attachments(p, id).await?.into_iter().map(|a| (sealed.contains(&a.sm3.as_str()), a)).collect();
    let status_key = format!("document.delivery_{}", d.status);
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let l = Layout::new(ctx, "document.inbox", "inbox").with_flash(done);
    render_status(status, &DeliveryPage { l, d, status_key, manifest, attachments, can_sign, can_register, units, archived, error })
}

/// `GET /inbox/{id}`: opens a received document (marks it read).
pub async fn delivery(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    delivery_page(&state, &ctx, params.id("id")?, q.done.as_deref(), String::new()).await
}

/// `GET /inbox/{id}/package`: the sealed package, to keep or verify elsewhere.
pub async fn package(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let (d, package) = state.documents.open_delivery(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    let name: String = d.doc_number.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let disposition = format!("attachment; filename=\"document-{name}-{}.tbseal.json\"", d.document_id);
    Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)], package).into_response())
}

/// `POST /inbox/{id}/sign`: signs for it with the unit's seal.
pub async fn sign(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    let id = params.id("id")?;
    let result = state.documents.sign_for(&state.ca, ctx.principal()?, &ctx.actor(), id).await;
    on_delivery(&state, &ctx, id, result, "document_signed").await
}

/// The refusal form.
#[derive(Deserialize)]
pub struct RefuseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /inbox/{id}/register`: starts handling (拟办 → 批示 → 承办); `handler_units` repeats once
/// per ticked unit.
pub async fn register(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: axum::body::Bytes) -> PageResult {
    let id = params.id("id")?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let text = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let result = async {
        let units = repeated_ids(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), "handler_units", "handler_unit_ids")?;
        state.documents.register_received(ctx.principal()?, &ctx.actor(), id, (text("proposer"), text("leader"), &units)).await
    }
    .await;
    on_delivery(&state, &ctx, id, result, "document_registered").await
}

/// `POST /inbox/{id}/refuse`.
pub async fn refuse(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<RefuseForm>) -> PageResult {
    let id = params.id("id")?;
    let result = state.documents.refuse(ctx.principal()?, &ctx.actor(), id, &f.reason).await;
    on_delivery(&state, &ctx, id, result, "document_refused").await
}

#[derive(Template)]
#[template(path = "document_groups.html")]
struct GroupsPage {
    l: Layout,
    groups: Vec<DistributionGroup>,
    units: Vec<(i64, String)>,
    error: String,
}

async fn groups_page(state: &AppState, ctx: &Ctx, done: Option<&str>, error: String) -> PageResult {
    let p = ctx.principal()?;
    let groups = state.documents.groups(p, &ctx.actor(), p.unit_id).await?;
    let units = state.identity.all_units().await?.into_iter().filter(|u| u.id != p.unit_id && u.enabled).map(|u| (u.id, u.name)).collect();
    let status = if error.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let l = Layout::new(ctx, "document.groups", "documents").with_flash(done);
    render_status(status, &GroupsPage { l, groups, units, error })
}

/// `GET /documents/groups`: the distribution groups of the caller's unit (分发组).
pub async fn groups(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    groups_page(&state, &ctx, q.done.as_deref(), String::new()).await
}

/// `POST /documents/groups`: creates a group (`name`, `members` repeated).
pub async fn create_group(State(state): State<AppState>, ctx: Ctx, body: axum::body::Bytes) -> PageResult {
    let p = ctx.principal()?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let result = async {
        let members = repeated_ids(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), "members", "members")?;
        let name = pairs.iter().find(|(k, _)| k == "name").map(|(_, v)| v.as_str()).unwrap_or("");
        state.documents.create_group(p, &ctx.actor(), p.unit_id, name, &members).await
    }
    .await;
    match result {
        Ok(_) => see_other("/documents/groups?done=group_created"),
        Err(e @ DomainError::Invalid(_)) => groups_page(&state, &ctx, None, crate::error::message(&ctx.tr, &e)).await,
        Err(e) => Err(PageError(e)),
    }
}

/// `POST /documents/groups/{id}/delete`.
pub async fn delete_group(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    state.documents.delete_group(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    see_other("/documents/groups?done=group_deleted")
}
