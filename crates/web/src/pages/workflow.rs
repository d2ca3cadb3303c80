//! Workflow pages: process definitions (上传、版本、步骤与流程图), starting a process, the to-do
//! and done lists sorted by deadline (待办/已办), and an instance's page with the task actions.

use askama::Template;
use axum::extract::{Multipart, State};
use serde::Deserialize;
use serde_json::{Map, Value};
use tongban_authz::Permission;
use tongban_platform::{DomainError, clock::format_local};
use tongban_workflow::{
    TaskList,
    definition::FieldType,
    diagram::Diagram,
    service::{DefinitionSummary, InstanceView, StepView, TaskRow},
};

use super::{Layout, PageResult, admin_units::Done, form_error, render, render_status, see_other};
use crate::{
    api::workflow::{ActionDto, task_action},
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "workflow_defs.html")]
struct DefinitionsPage {
    l: Layout,
    defs: Vec<(DefinitionSummary, String)>,
    can_define: bool,
    error: String,
}

async fn definitions_page(state: &AppState, ctx: &Ctx, error: String, done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    let defs = state
        .workflow
        .definitions(p)
        .await?
        .into_iter()
        .map(|d| {
            let t = format_local(d.created_at);
            (d, t)
        })
        .collect();
    let status = if error.is_empty() { axum::http::StatusCode::OK } else { axum::http::StatusCode::UNPROCESSABLE_ENTITY };
    let view = DefinitionsPage {
        l: Layout::new(ctx, "workflow.title", "workflow").with_flash(done),
        defs,
        can_define: p.has(Permission::WorkflowDefine),
        error,
    };
    render_status(status, &view)
}

/// The definitions list with the upload form.
pub async fn definitions(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    definitions_page(&state, &ctx, String::new(), q.done.as_deref()).await
}

/// Reads the uploaded file (or the pasted XML) from the multipart form.
async fn uploaded_xml(mut form: Multipart) -> Result<String, DomainError> {
    let mut file = String::new();
    let mut pasted = String::new();
    while let Some(field) = form.next_field().await.map_err(|_| DomainError::invalid("file", "error.malformed"))? {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" && name != "xml" {
            continue;
        }
        let bytes = field.bytes().await.map_err(|_| DomainError::invalid("file", "error.malformed"))?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| DomainError::invalid("file", "workflow.error.not_utf8"))?;
        if name == "file" { file = text } else { pasted = text }
    }
    Ok(if file.trim().is_empty() { pasted } else { file })
}

/// Uploads a `.bpmn` file.
pub async fn upload(State(state): State<AppState>, ctx: Ctx, form: Multipart) -> PageResult {
    let p = ctx.principal()?;
    let result = match uploaded_xml(form).await {
        Ok(xml) => state.workflow.upload(p, &ctx.actor(), &xml).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(d) => see_other(&format!("/admin/workflows/{}?done=definition_saved", d.id)),
        Err(e) => {
            let (_, message) = form_error(&ctx.tr, e)?;
            definitions_page(&state, &ctx, message, None).await
        }
    }
}

/// An input for one declared field on the start form.
struct FieldInput {
    name: String,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "workflow_def.html")]
struct DefinitionPage {
    l: Layout,
    def: DefinitionSummary,
    created: String,
    steps: Vec<StepView>,
    diagram: Option<Diagram>,
    fields: Vec<FieldInput>,
    can_start: bool,
    error: String,
    error_field: String,
}

async fn definition_page(state: &AppState, ctx: &Ctx, id: i64, error: (String, String), done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    let d = state.workflow.definition(p, id).await?;
    let fields = d
        .fields
        .iter()
        .map(|(name, t)| FieldInput {
            name: name.clone(),
            kind: match t {
                FieldType::Number => "number",
                FieldType::Boolean => "checkbox",
                FieldType::Date => "date",
                FieldType::String => "text",
            },
        })
        .collect();
    let status = if error.1.is_empty() { axum::http::StatusCode::OK } else { axum::http::StatusCode::UNPROCESSABLE_ENTITY };
    let view = DefinitionPage {
        l: Layout::new(ctx, "workflow.title", "workflow").with_flash(done),
        created: format_local(d.summary.created_at),
        def: d.summary,
        steps: d.steps.into_iter().filter(|s| s.kind != "start" || !s.next.is_empty()).collect(),
        diagram: d.diagram,
        fields,
        can_start: p.has(Permission::WorkflowStart),
        error_field: error.0,
        error: error.1,
    };
    render_status(status, &view)
}

/// One definition: diagram, steps, and the start form.
pub async fn definition(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    let id = params.id("id")?;
    definition_page(&state, &ctx, id, Default::default(), q.done.as_deref()).await
}

/// Starts an instance from the definition page; form fields named `f.<field>` become its data.
pub async fn start(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(form): PageForm<Vec<(String, String)>>,
) -> PageResult {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let d = state.workflow.definition(p, id).await?;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut vars = Map::new();
    for (name, t) in &d.fields {
        let raw = get(&format!("f.{name}"));
        let value = match t {
            FieldType::Boolean => Value::Bool(raw == "on" || raw == "true"),
            _ if raw.trim().is_empty() => continue,
            FieldType::Number => match raw.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Value::Number(n),
                None => {
                    let e = DomainError::invalid(&format!("variables.{name}"), "error.invalid_value");
                    let err = form_error(&ctx.tr, e)?;
                    return definition_page(&state, &ctx, id, err, None).await;
                }
            },
            _ => Value::String(raw.trim().to_string()),
        };
        vars.insert(name.clone(), value);
    }
    match state.workflow.start(p, &ctx.actor(), &d.summary.key, &get("title"), &get("business_key"), vars).await {
        Ok(instance) => see_other(&format!("/workflow/instances/{instance}?done=instance_started")),
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            definition_page(&state, &ctx, id, err, None).await
        }
    }
}

#[derive(Template)]
#[template(path = "workflow_tasks.html")]
struct TasksPage {
    l: Layout,
    done_list: bool,
    tasks: Vec<(TaskRow, String)>,
    page: u32,
    more: bool,
}

#[derive(Deserialize, Default)]
pub struct TasksQuery {
    #[serde(default)]
    list: Option<String>,
    #[serde(default)]
    page: Option<u32>,
}

/// The to-do list (by deadline, warnings and overdue marked) or the done list.
pub async fn tasks(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<TasksQuery>) -> PageResult {
    let p = ctx.principal()?;
    let done_list = q.list.as_deref() == Some("done");
    let page = q.page.unwrap_or(1).max(1);
    let (rows, more) = state.workflow.tasks_page(p, if done_list { TaskList::Done } else { TaskList::Todo }, page).await?;
    let tasks = rows
        .into_iter()
        .map(|t| {
            let at = format_local(t.closed_at.unwrap_or(t.created_at));
            (t, at)
        })
        .collect();
    let title = if done_list { "workflow.done_title" } else { "workflow.tasks_title" };
    render(&TasksPage { l: Layout::new(&ctx, title, "tasks"), done_list, tasks, page, more })
}

#[derive(Template)]
#[template(path = "workflow_instance.html")]
struct InstancePage {
    l: Layout,
    inst: InstanceView,
    started: String,
    history: Vec<(TaskRow, String)>,
    mine: Vec<TaskRow>,
    withdrawable: Vec<TaskRow>,
    claimable: Vec<TaskRow>,
    variables: Vec<(String, String)>,
    status_key: String,
    files: Vec<(i64, i64, String, i64)>,
    error: String,
}

async fn instance_page(state: &AppState, ctx: &Ctx, id: i64, error: String, done: Option<&str>) -> PageResult {
    let p = ctx.principal()?;
    let inst = state.workflow.instance(p, &ctx.actor(), id).await?;
    let todo = state.workflow.instance_todo(p, id).await?;
    let mine: Vec<TaskRow> = todo.iter().filter(|t| t.instance_id == id && t.assignee_id == Some(p.user_id)).cloned().collect();
    let claimable: Vec<TaskRow> = todo.iter().filter(|t| t.instance_id == id && t.assignee_id.is_none()).cloned().collect();
    let withdrawable: Vec<TaskRow> = inst
        .tasks
        .iter()
        .filter(|t| t.status == "completed" && t.assignee_id == Some(p.user_id) && inst.status == "running")
        .cloned()
        .collect();
    let history = inst.tasks.iter().map(|t| (t.clone(), t.closed_at.map(format_local).unwrap_or_default())).collect();
    let variables = inst.variables.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    // A process administrator who takes no part sees the steps, not the case's files.
    let files = if inst.administrative {
        Vec::new()
    } else {
        state.workflow.attachments(p, &ctx.actor(), id).await?.into_iter().map(|a| (a.task_id, a.id, a.file_name, a.size)).collect()
    };
    let status = if error.is_empty() { axum::http::StatusCode::OK } else { axum::http::StatusCode::UNPROCESSABLE_ENTITY };
    let view = InstancePage {
        l: Layout::new(ctx, "workflow.instance_title", "tasks").with_flash(done),
        started: format_local(inst.started_at),
        history,
        mine,
        withdrawable,
        claimable,
        variables,
        status_key: format!("workflow.status_{}", inst.status),
        files,
        inst,
        error,
    };
    render_status(status, &view)
}

/// An instance: its history and what the caller may do.
pub async fn instance(State(state): State<AppState>, ctx: Ctx, params: PathParams, QueryOf(q): QueryOf<Done>) -> PageResult {
    let id = params.id("id")?;
    instance_page(&state, &ctx, id, String::new(), q.done.as_deref()).await
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    instance_id: i64,
    #[serde(default)]
    opinion: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    user: String,
}

/// A task action from a form; comes back to the instance page.
pub async fn act(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<ActionForm>) -> PageResult {
    let p = ctx.principal()?;
    let id = params.id("id")?;
    let name = params.text("action").to_string();
    let mut variables = Map::new();
    match f.decision.as_str() {
        "approve" => drop(variables.insert("approved".into(), Value::Bool(true))),
        "deny" => drop(variables.insert("approved".into(), Value::Bool(false))),
        _ => {}
    }
    let user_id = match f.user.trim() {
        "" => None,
        name => match state.identity.user_by_username(name).await? {
            Some(u) => Some(u.id),
            None => {
                let message = crate::error::message(&ctx.tr, &DomainError::invalid("user", "workflow.error.bad_target"));
                return instance_page(&state, &ctx, f.instance_id, message, None).await;
            }
        },
    };
    let body = ActionDto {
        opinion: Some(f.opinion.clone()).filter(|o| !o.trim().is_empty()),
        variables,
        target: Some(f.target.clone()).filter(|t| !t.is_empty()),
        reason: Some(f.opinion.clone()).filter(|o| !o.trim().is_empty()),
        user_id,
    };
    let result = match task_action(&name, body) {
        Ok(action) => state.workflow.act(p, &ctx.actor(), id, action).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let to = if name == "complete" || name == "send-back" || name == "transfer" {
                "/tasks?done=task_done".to_string()
            } else {
                format!("/workflow/instances/{}?done=task_done", f.instance_id)
            };
            see_other(&to)
        }
        Err(e @ (DomainError::Invalid(_) | DomainError::Conflict(_))) => {
            let message = crate::error::message(&ctx.tr, &e);
            instance_page(&state, &ctx, f.instance_id, message, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /workflow/tasks/{id}/attachments` (multipart: `instance_id`, `file`): attaches a file to
/// the opinion of a task the caller holds.
pub async fn attach(State(state): State<AppState>, ctx: Ctx, params: PathParams, req: axum::extract::Request) -> PageResult {
    let p = ctx.principal()?;
    let task = params.id("id")?;
    let fields = super::form_texts_and_files(req, "attachment").await?;
    let instance: i64 =
        fields.iter().find(|(k, _, _)| k == "instance_id").and_then(|(_, _, v)| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
    let Some((_, name, bytes)) = fields.iter().find(|(k, _, _)| k == "file") else {
        return Err(DomainError::invalid("attachment", "approval.error.upload_empty").into());
    };
    match state.workflow.attach(p, &ctx.actor(), task, name, bytes).await {
        Ok(_) => see_other(&format!("/workflow/instances/{instance}?done=attached")),
        Err(e @ DomainError::Invalid(_)) => {
            let message = crate::error::message(&ctx.tr, &e);
            instance_page(&state, &ctx, instance, message, None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /workflow/instances/{id}/attachments/{aid}`: downloads an opinion attachment.
pub async fn attachment(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> PageResult {
    use axum::response::IntoResponse;
    let p = ctx.principal()?;
    let (a, bytes) = state.workflow.attachment_file(p, &ctx.actor(), params.id("id")?, params.id("aid")?).await?;
    let ascii: String = a.file_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
    let headers = [
        (axum::http::header::CONTENT_TYPE, a.content_type),
        (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{ascii}\"")),
    ];
    Ok((headers, bytes).into_response())
}
