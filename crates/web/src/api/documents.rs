//! The documents API (公文接口): drafts with the GB/T 9704 elements, the unit's number prefix, and
//! numbering (发文字号) for document-handling software.

use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tongban_documents::{DocumentFields, Submission};

use super::dto::{DeliveryPackageDto, IdDto, InstanceStartedDto, IssuedDto, OkDto, ReceiptDto, WithdrawnDto};
use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    parse::{PathParams, json_body},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// A new document's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentCreatedDto {
    /// Id.
    pub id: i64,
}

/// The number a document received.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentNumberDto {
    /// 发文字号, e.g. 嘉政发〔2026〕12号.
    pub doc_number: String,
}

/// A unit's number prefix.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixDto {
    /// 机关代字, e.g. 嘉政发.
    pub prefix: String,
}

/// Starts a draft in the caller's unit; a classified level, a bad date or a missing element is
/// refused naming the field.
#[utoipa::path(post, path = "/api/v1/documents", tag = "documents", request_body = DocumentFields, responses((status = 200, body = DocumentCreatedDto), (status = 422, body = ErrorBody)))]
pub async fn create(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> ApiResult<Json<DocumentCreatedDto>> {
    let fields: DocumentFields = json_body(&body)?;
    let id = state.documents.create_draft(ctx.principal()?, &ctx.actor(), &fields).await?;
    Ok(Json(DocumentCreatedDto { id }))
}

/// A document (its unit's staff and its issuing office).
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = tongban_documents::Document), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<tongban_documents::Document>> {
    Ok(Json(state.documents.document(ctx.principal()?, &ctx.actor(), params.id("id")?).await?))
}

/// Changes a draft.
#[utoipa::path(put, path = "/api/v1/documents/{id}", tag = "documents", params(("id" = i64, Path)), request_body = DocumentFields, responses((status = 200, body = OkDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<OkDto>> {
    let fields: DocumentFields = json_body(&body)?;
    state.documents.update_draft(ctx.principal()?, &ctx.actor(), params.id("id")?, &fields).await?;
    Ok(Json(OkDto { ok: true }))
}

/// Numbers a draft (`document.issue` over its unit).
#[utoipa::path(post, path = "/api/v1/documents/{id}/number", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = DocumentNumberDto), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn number(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<DocumentNumberDto>> {
    let doc_number = state.documents.assign_number(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(Json(DocumentNumberDto { doc_number }))
}

/// Sets a unit's number prefix (`document.issue` over the unit).
#[utoipa::path(put, path = "/api/v1/units/{id}/document-prefix", tag = "documents", params(("id" = i64, Path)), request_body = PrefixDto, responses((status = 200, body = OkDto), (status = 422, body = ErrorBody)))]
pub async fn prefix(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<OkDto>> {
    let p: PrefixDto = json_body(&body)?;
    state.documents.set_prefix(ctx.principal()?, &ctx.actor(), params.id("id")?, &p.prefix).await?;
    Ok(Json(OkDto { ok: true }))
}

/// Issuing: the seal, the document file and the recipient units.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueDto {
    /// The issuing unit's seal.
    pub seal_id: i64,
    /// File name of the document (with `file`).
    #[serde(default)]
    pub file_name: String,
    /// The document, base64; left out, the document is rendered as a GB/T 9704 PDF with the seal.
    #[serde(default)]
    pub file: String,
    /// Recipient unit ids.
    #[serde(default)]
    pub recipients: Vec<i64>,
    /// Distribution groups (分发组) of the issuing unit, by id: their units receive it too.
    #[serde(default)]
    pub group_ids: Vec<i64>,
}

/// A refusal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseDto {
    /// Why (拒收理由).
    pub reason: String,
}

/// Seals a numbered document and sends it to the recipient units (`document.issue`, `seal.use`).
#[utoipa::path(post, path = "/api/v1/documents/{id}/issue", tag = "documents", params(("id" = i64, Path)), request_body = IssueDto, responses((status = 200, body = IssuedDto), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn issue(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<IssuedDto>> {
    use base64::Engine;
    let dto: IssueDto = json_body(&body)?;
    let file = base64::engine::general_purpose::STANDARD
        .decode(dto.file.trim())
        .map_err(|_| tongban_platform::DomainError::invalid("file", "error.malformed"))?;
    let req = tongban_documents::IssueRequest {
        seal_id: dto.seal_id,
        file_name: &dto.file_name,
        file: &file,
        recipients: &dto.recipients,
        groups: &dto.group_ids,
    };
    let n = state.documents.issue(&state.ca, ctx.principal()?, &ctx.actor(), params.id("id")?, &req).await?;
    Ok(Json(IssuedDto { recipients: n }))
}

/// The caller's unit's inbox (特急 first).
#[utoipa::path(get, path = "/api/v1/inbox", tag = "documents", responses((status = 200, body = Vec<tongban_documents::Delivery>)))]
pub async fn inbox(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<tongban_documents::Delivery>>> {
    Ok(Json(state.documents.inbox(ctx.principal()?).await?))
}

/// Opens a delivery (marks it read) with the sealed package.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = DeliveryPackageDto), (status = 404, body = ErrorBody)))]
pub async fn delivery(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<DeliveryPackageDto>> {
    let (delivery, package) = state.documents.open_delivery(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(Json(DeliveryPackageDto { delivery, package: serde_json::from_str::<Value>(&package).unwrap_or(Value::Null) }))
}

/// Signs for a delivery with the receiving unit's seal; answers the receipt.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/sign", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = ReceiptDto), (status = 409, body = ErrorBody)))]
pub async fn sign(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<Value>> {
    Ok(Json(state.documents.sign_for(&state.ca, ctx.principal()?, &ctx.actor(), params.id("id")?).await?))
}

/// Refuses a delivery with a reason.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/refuse", tag = "documents", params(("id" = i64, Path)), request_body = RefuseDto, responses((status = 200, body = OkDto), (status = 409, body = ErrorBody)))]
pub async fn refuse(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<OkDto>> {
    let dto: RefuseDto = json_body(&body)?;
    state.documents.refuse(ctx.principal()?, &ctx.actor(), params.id("id")?, &dto.reason).await?;
    Ok(Json(OkDto { ok: true }))
}

/// Withdraws a document from every recipient that has not signed for it.
#[utoipa::path(post, path = "/api/v1/documents/{id}/withdraw", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = WithdrawnDto), (status = 403, body = ErrorBody)))]
pub async fn withdraw(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<WithdrawnDto>> {
    let n = state.documents.withdraw(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(Json(WithdrawnDto { withdrawn: n }))
}

/// Every recipient's state with its receipt checked (the sender's tracking).
#[utoipa::path(get, path = "/api/v1/documents/{id}/tracking", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = Vec<tongban_documents::Delivery>), (status = 404, body = ErrorBody)))]
pub async fn tracking(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<Vec<tongban_documents::Delivery>>> {
    Ok(Json(state.documents.tracking(ctx.principal()?, &ctx.actor(), params.id("id")?).await?))
}

/// Sending a draft for review and sign-off.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitDto {
    /// Who checks it (核稿人), by user name.
    pub reviewer: String,
    /// Who signs it off (签发人), by user name.
    pub signer: String,
    /// Units that countersign it in parallel (会签单位), by id; empty or left out: none.
    #[serde(default)]
    pub countersign_unit_ids: Vec<i64>,
}

/// Sends a draft for review (核稿), countersigning by units (会签) and sign-off (签发) through the
/// workflow engine.
#[utoipa::path(post, path = "/api/v1/documents/{id}/submit", tag = "documents", params(("id" = i64, Path)), request_body = SubmitDto, responses((status = 200, body = InstanceStartedDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<InstanceStartedDto>> {
    let dto: SubmitDto = json_body(&body)?;
    let to = Submission { reviewer: &dto.reviewer, signer: &dto.signer, countersign_units: &dto.countersign_unit_ids };
    let instance_id = state.documents.submit(ctx.principal()?, &ctx.actor(), params.id("id")?, &to).await?;
    Ok(Json(InstanceStartedDto { instance_id }))
}

/// Takes a draft back from review before sign-off (撤回送审): the process stops, the draft returns.
#[utoipa::path(post, path = "/api/v1/documents/{id}/recall", tag = "documents", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn recall(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    state.documents.recall(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where countersigning stands: per unit, state, doer, opinion and time.
#[utoipa::path(get, path = "/api/v1/documents/{id}/countersigns", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = Vec<tongban_documents::Countersign>), (status = 404, body = ErrorBody)))]
pub async fn countersigns(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
) -> ApiResult<Json<Vec<tongban_documents::Countersign>>> {
    let doc = state.documents.document(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(Json(state.documents.countersigns(&doc).await?))
}

/// Registering a received document for handling.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDto {
    /// Proposes how to handle it (拟办), by user name.
    pub proposer: String,
    /// Instructs (批示), by user name.
    pub leader: String,
    /// The units that handle it in parallel (承办单位).
    #[serde(default)]
    pub handler_unit_ids: Vec<i64>,
    /// One handling unit (the same as a one-element `handler_unit_ids`).
    #[serde(default)]
    pub handler_unit_id: Option<i64>,
}

/// Registers a signed-for document for handling (收文登记 → 拟办 → 批示 → 承办 → 办结、归档).
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/register", tag = "documents", params(("id" = i64, Path)), request_body = RegisterDto, responses((status = 200, body = InstanceStartedDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<InstanceStartedDto>> {
    let dto: RegisterDto = json_body(&body)?;
    let units: Vec<i64> = dto.handler_unit_id.into_iter().chain(dto.handler_unit_ids).collect();
    let people = (dto.proposer.as_str(), dto.leader.as_str(), units.as_slice());
    let instance_id = state.documents.register_received(ctx.principal()?, &ctx.actor(), params.id("id")?, people).await?;
    Ok(Json(InstanceStartedDto { instance_id }))
}

/// The document's attachments (附件): name, type, size and SM3 of each.
#[utoipa::path(get, path = "/api/v1/documents/{id}/attachments", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = Vec<tongban_documents::Attachment>), (status = 404, body = ErrorBody)))]
pub async fn attachments(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
) -> ApiResult<Json<Vec<tongban_documents::Attachment>>> {
    let doc = state.documents.document(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(Json(state.documents.attachments(&doc).await?))
}

/// Attaches a file to a draft (multipart field `file`: PDF, OFD, JPEG or PNG); answers its id.
#[utoipa::path(post, path = "/api/v1/documents/{id}/attachments", tag = "documents", params(("id" = i64, Path)), request_body(content = String, content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 200, body = IdDto), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn attach(State(state): State<AppState>, ctx: Ctx, params: PathParams, req: axum::extract::Request) -> ApiResult<Json<IdDto>> {
    let fields = crate::pages::form_texts_and_files(req, "attachment").await?;
    let (_, name, bytes) = fields
        .iter()
        .find(|(k, f, _)| k == "file" && !f.is_empty())
        .ok_or_else(|| tongban_platform::DomainError::invalid("attachment", "approval.error.upload_empty"))?;
    let id = state.documents.add_attachment(ctx.principal()?, &ctx.actor(), params.id("id")?, name, bytes).await?;
    Ok(Json(IdDto { id }))
}

/// A new distribution group.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupDto {
    /// Its name (e.g. 各乡镇人民政府), unique within the unit.
    pub name: String,
    /// Member unit ids.
    pub member_unit_ids: Vec<i64>,
}

/// The distribution groups (分发组) of an issuing unit (its document office).
#[utoipa::path(get, path = "/api/v1/units/{id}/document-groups", tag = "documents", params(("id" = i64, Path)), responses((status = 200, body = Vec<tongban_documents::DistributionGroup>), (status = 403, body = ErrorBody)))]
pub async fn groups(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
) -> ApiResult<Json<Vec<tongban_documents::DistributionGroup>>> {
    Ok(Json(state.documents.groups(ctx.principal()?, &ctx.actor(), params.id("id")?).await?))
}

/// Creates a distribution group of the unit; answers its id.
#[utoipa::path(post, path = "/api/v1/units/{id}/document-groups", tag = "documents", params(("id" = i64, Path)), request_body = GroupDto, responses((status = 200, body = IdDto), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_group(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<Json<IdDto>> {
    let dto: GroupDto = json_body(&body)?;
    let id = state.documents.create_group(ctx.principal()?, &ctx.actor(), params.id("id")?, &dto.name, &dto.member_unit_ids).await?;
    Ok(Json(IdDto { id }))
}

/// Deletes a distribution group.
#[utoipa::path(delete, path = "/api/v1/document-groups/{id}", tag = "documents", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_group(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    state.documents.delete_group(ctx.principal()?, &ctx.actor(), params.id("id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
