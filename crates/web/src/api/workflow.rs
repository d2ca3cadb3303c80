//! The workflow API (工作流接口) under `/api/v1/workflow`: process definitions (upload a `.bpmn`
//! file as the request body), instances, and the caller's tasks with their actions.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tongban_platform::{DomainError, clock::format_rfc3339};
use tongban_workflow::{
    TaskAction, TaskList,
    service::{DefinitionDetail, DefinitionSummary, InstanceView, TaskRow},
};

use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    parse::{ApiJson, PathParams, QueryOf, json_body},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// A stored process definition version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefinitionDto {
    /// Id.
    pub id: i64,
    /// Process id from the file.
    pub key: String,
    /// Version (1, 2, …) per key.
    pub version: i64,
    /// Name.
    pub name: String,
    /// SM3 digest of the file.
    pub sm3: String,
    /// Uploaded at (RFC 3339).
    pub created_at: String,
}

impl From<DefinitionSummary> for DefinitionDto {
    fn from(d: DefinitionSummary) -> Self {
        DefinitionDto { id: d.id, key: d.key, version: d.version, name: d.name, sm3: d.sm3, created_at: format_rfc3339(d.created_at) }
    }
}

/// One step of a process.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepDto {
    /// Element id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `start`, `end`, `user_task`, `parallel`, `exclusive`, `inclusive` or `timer`.
    pub kind: String,
    /// Units, roles or assignee allowed to do it.
    pub who: Vec<String>,
    /// Time limit in working days.
    pub due_working_days: Option<u32>,
    /// Names of the steps it leads to.
    pub next: Vec<String>,
}

/// A definition with its steps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefinitionDetailDto {
    /// The definition.
    pub definition: DefinitionDto,
    /// Its steps in file order.
    pub steps: Vec<StepDto>,
}

impl From<DefinitionDetail> for DefinitionDetailDto {
    fn from(d: DefinitionDetail) -> Self {
        let steps = d
            .steps
            .into_iter()
            .map(|s| StepDto {
                id: s.id,
                name: s.name,
                kind: s.kind.into(),
                who: s.who,
                due_working_days: s.due_working_days,
                next: s.next.into_iter().map(|(_, to)| to).collect(),
            })
            .collect();
        DefinitionDetailDto { definition: d.summary.into(), steps }
    }
}

/// A task in a list or in an instance's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskDto {
    /// Id (use it in action URLs).
    pub id: i64,
    /// Instance id.
    pub instance_id: i64,
    /// Instance title.
    pub title: String,
    /// Process name.
    pub process: String,
    /// Step element id.
    pub step: String,
    /// Step name.
    pub name: String,
    /// `open`, `completed`, `withdrawn`, `sent_back`, `cancelled`, `timed_out`.
    pub status: String,
    /// Holder (or doer, in history).
    pub assignee_id: Option<i64>,
    /// Holder's name.
    pub assignee_name: Option<String>,
    /// Due date (YYYY-MM-DD).
    pub due_on: Option<String>,
    /// Working days left; negative when overdue.
    pub remaining_working_days: Option<i64>,
    /// `normal`, `warning` or `overdue`.
    pub alert: String,
    /// A co-signer's task (加签).
    pub cosign: bool,
    /// Opinion.
    pub opinion: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
}

impl From<TaskRow> for TaskDto {
    fn from(t: TaskRow) -> Self {
        TaskDto {
            id: t.id,
            instance_id: t.instance_id,
            title: t.title,
            process: t.process,
            step: t.node_id,
            name: t.name,
            status: t.status,
            assignee_id: t.assignee_id,
            assignee_name: t.assignee_name,
            due_on: t.due_on,
            remaining_working_days: t.remaining,
            alert: t.alert.into(),
            cosign: t.cosign,
            opinion: t.opinion,
            created_at: format_rfc3339(t.created_at),
        }
    }
}

/// An instance with its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceDto {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Business key.
    pub business_key: String,
    /// Process and version.
    pub process: String,
    /// `running`, `completed` or `cancelled`.
    pub status: String,
    /// Data.
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// Tasks, oldest first.
    pub tasks: Vec<TaskDto>,
    /// Steps one may send back to (element ids).
    pub earlier_steps: Vec<String>,
    /// Seen as a process administrator only: no variables, opinions or files (they are case data).
    pub administrative: bool,
}

impl From<InstanceView> for InstanceDto {
    fn from(v: InstanceView) -> Self {
        InstanceDto {
            id: v.id,
            title: v.title,
            business_key: v.business_key,
            process: v.process,
            status: v.status,
            variables: v.variables,
            tasks: v.tasks.into_iter().map(TaskDto::from).collect(),
            earlier_steps: v.earlier_steps.into_iter().map(|(id, _)| id).collect(),
            administrative: v.administrative,
        }
    }
}

/// Uploads a BPMN 2.0 file (the request body, `application/xml`) as the next version of its process.
#[utoipa::path(post, path = "/api/v1/workflow/definitions", tag = "workflow", request_body(content = String, content_type = "application/xml"),
    responses((status = 201, body = DefinitionDto), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<DefinitionDto>)> {
    let p = ctx.principal()?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !(ct.starts_with("application/xml") || ct.starts_with("text/xml") || ct.starts_with("application/bpmn")) {
        return Err(DomainError::invalid("content-type", "workflow.error.expected_xml").into());
    }
    let xml = std::str::from_utf8(&body).map_err(|_| DomainError::invalid("file", "workflow.error.not_utf8"))?;
    let d = state.workflow.upload(p, &ctx.actor(), xml).await?;
    Ok((StatusCode::CREATED, Json(d.into())))
}

/// Every definition version.
#[utoipa::path(get, path = "/api/v1/workflow/definitions", tag = "workflow", responses((status = 200, body = Vec<DefinitionDto>)))]
pub async fn definitions(State(state): State<AppState>, ctx: Ctx) -> ApiResult<Json<Vec<DefinitionDto>>> {
    let list = state.workflow.definitions(ctx.principal()?).await?;
    Ok(Json(list.into_iter().map(DefinitionDto::from).collect()))
}

/// One definition with its steps.
#[utoipa::path(get, path = "/api/v1/workflow/definitions/{id}", tag = "workflow", params(("id" = i64, Path)),
    responses((status = 200, body = DefinitionDetailDto), (status = 404, body = ErrorBody)))]
pub async fn definition(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<DefinitionDetailDto>> {
    let id = params.id("id")?;
    Ok(Json(state.workflow.definition(ctx.principal()?, id).await?.into()))
}

/// Starting an instance.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDto {
    /// The process id (the newest version is used).
    pub process: String,
    /// A title for to-do lists.
    pub title: String,
    /// A business key, e.g. an application number.
    #[serde(default)]
    pub business_key: String,
    /// Data for conditions and assignments.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

/// The new instance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedDto {
    /// Id.
    pub id: i64,
}

/// Starts an instance of the newest version of a process.
#[utoipa::path(post, path = "/api/v1/workflow/instances", tag = "workflow", request_body = StartDto,
    responses((status = 201, body = CreatedDto), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn start(State(state): State<AppState>, ctx: Ctx, ApiJson(b): ApiJson<StartDto>) -> ApiResult<(StatusCode, Json<CreatedDto>)> {
    let id = state.workflow.start(ctx.principal()?, &ctx.actor(), &b.process, &b.title, &b.business_key, b.variables).await?;
    Ok((StatusCode::CREATED, Json(CreatedDto { id })))
}

/// One instance with its history (participants and process administrators).
#[utoipa::path(get, path = "/api/v1/workflow/instances/{id}", tag = "workflow", params(("id" = i64, Path)),
    responses((status = 200, body = InstanceDto), (status = 404, body = ErrorBody)))]
pub async fn instance(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<InstanceDto>> {
    let id = params.id("id")?;
    Ok(Json(state.workflow.instance(ctx.principal()?, &ctx.actor(), id).await?.into()))
}

/// Stops an instance (process administrators).
#[utoipa::path(post, path = "/api/v1/workflow/instances/{id}/cancel", tag = "workflow", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<StatusCode> {
    let id = params.id("id")?;
    state.workflow.cancel(ctx.principal()?, &ctx.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the task list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// `todo` (default: held or claimable, by deadline) or `done`.
    #[serde(default)]
    pub list: Option<String>,
    /// Page, from 1 (200 tasks each).
    #[serde(default)]
    pub page: Option<u32>,
}

/// The caller's to-do list sorted by deadline, or done list, a page of 200 at a time; when more
/// follow, the `X-Next-Page` header names the next page.
#[utoipa::path(get, path = "/api/v1/workflow/tasks", tag = "workflow", params(TasksQuery), responses((status = 200, body = Vec<TaskDto>)))]
pub async fn tasks(
    State(state): State<AppState>,
    ctx: Ctx,
    QueryOf(q): QueryOf<TasksQuery>,
) -> ApiResult<(axum::http::HeaderMap, Json<Vec<TaskDto>>)> {
    let list = match q.list.as_deref().unwrap_or("todo") {
        "todo" => TaskList::Todo,
        "done" => TaskList::Done,
        _ => return Err(DomainError::invalid("list", "error.invalid_value").into()),
    };
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(DomainError::invalid("page", "error.invalid_value").into());
    }
    let (rows, more) = state.workflow.tasks_page(ctx.principal()?, list, page).await?;
    let mut headers = axum::http::HeaderMap::new();
    if more {
        headers.insert("x-next-page", axum::http::HeaderValue::from(page + 1));
    }
    Ok((headers, Json(rows.into_iter().map(TaskDto::from).collect())))
}

/// The body of a task action; which fields apply depends on the action.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionDto {
    /// complete: the opinion (办理意见).
    #[serde(default)]
    pub opinion: Option<String>,
    /// complete: data to merge (e.g. `{"approved": true}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// send-back: the element id of the earlier step.
    #[serde(default)]
    pub target: Option<String>,
    /// send-back: why.
    #[serde(default)]
    pub reason: Option<String>,
    /// transfer / add-cosigner: the user.
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// Parses an action name and body into a [`TaskAction`].
pub(crate) fn task_action(name: &str, b: ActionDto) -> Result<TaskAction, DomainError> {
    let user = || b.user_id.ok_or_else(|| DomainError::invalid("user_id", "error.required"));
    Ok(match name {
        "claim" => TaskAction::Claim,
        "complete" => TaskAction::Complete { opinion: b.opinion.clone(), variables: b.variables.clone() },
        "send-back" => TaskAction::SendBack {
            target: b.target.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| DomainError::invalid("target", "error.required"))?,
            reason: b.reason.clone(),
        },
        "withdraw" => TaskAction::Withdraw,
        "transfer" => TaskAction::Transfer { to_user: user()? },
        "add-cosigner" => TaskAction::AddCosigner { user: user()? },
        _ => return Err(DomainError::NotFound("error.not_found")),
    })
}

/// Acts on a task: `claim`, `complete`, `send-back`, `withdraw`, `transfer` or `add-cosigner`.
#[utoipa::path(post, path = "/api/v1/workflow/tasks/{id}/{action}", tag = "workflow",
    params(("id" = i64, Path), ("action" = String, Path)), request_body = ActionDto,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(State(state): State<AppState>, ctx: Ctx, params: PathParams, body: Bytes) -> ApiResult<StatusCode> {
    let id = params.id("id")?;
    let name = params.text("action").to_string();
    let b: ActionDto = if body.iter().all(u8::is_ascii_whitespace) { ActionDto::default() } else { json_body(&body)? };
    let action = task_action(&name, b)?;
    state.workflow.act(ctx.principal()?, &ctx.actor(), id, action).await?;
    Ok(StatusCode::NO_CONTENT)
}
