//! Electronic supervision (电子监察): open, warning and overdue tasks by department; case
//! figures (on-time completion rate, average working days per item); the overdue list with who
//! holds each task; urge (催办) a holder; CSV export. Read-only apart from urging.

use askama::Template;
use axum::{extract::State, http::header, response::IntoResponse};
use serde::Deserialize;
use tongban_approval::cases::{CaseStats, Followup};
use tongban_workflow::service::{DepartmentCounts, TaskRow};

use super::{Layout, PageResult, admin_units::Done, render, see_other};
use crate::{
    ctx::Ctx,
    parse::{PageForm, PathParams, QueryOf},
    state::AppState,
};

#[derive(Template)]
#[template(path = "supervision.html")]
struct Dashboard {
    l: Layout,
    departments: Vec<DepartmentCounts>,
    stats: CaseStats,
    rate: String,
    attention: Vec<(TaskRow, String)>,
    followups: Vec<Followup>,
    urgent_documents: Vec<(tongban_documents::Delivery, bool)>,
}

/// `GET /supervision`.
pub async fn dashboard(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<Done>) -> PageResult {
    let p = ctx.principal()?;
    let actor = ctx.actor();
    let overview = state.workflow.supervision_overview(p, &actor, 200).await?;
    let stats = state.cases.stats(p, &actor).await?;
    let rate = stats.on_time_rate.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "—".into());
    let attention = overview.urgent;
    let followups = state.cases.followups(p).await?;
    let urgent_documents = state.documents.urgent_unsigned(p).await?;
    render(&Dashboard {
        l: Layout::new(&ctx, "supervision.title", "supervision").with_flash(q.done.as_deref()),
        departments: overview.departments,
        stats,
        rate,
        attention,
        followups,
        urgent_documents,
    })
}

/// The urge form.
#[derive(Deserialize, Default)]
pub struct UrgeForm {
    #[serde(default)]
    note: String,
}

/// `POST /supervision/tasks/{id}/urge`.
pub async fn urge(State(state): State<AppState>, ctx: Ctx, params: PathParams, PageForm(f): PageForm<UrgeForm>) -> PageResult {
    let p = ctx.principal()?;
    state.workflow.urge(p, &ctx.actor(), params.id("id")?, &f.note).await?;
    see_other("/supervision?done=urged")
}

/// The follow-up form.
#[derive(Deserialize, Default)]
pub struct FollowupForm {
    #[serde(default)]
    resolution: String,
}

/// `POST /supervision/followups/{id}/close`: records how a bad rating was followed up.
pub async fn close_followup(
    State(state): State<AppState>,
    ctx: Ctx,
    params: PathParams,
    PageForm(f): PageForm<FollowupForm>,
) -> PageResult {
    let p = ctx.principal()?;
    state.cases.close_followup(p, &ctx.actor(), params.id("id")?, &f.resolution).await?;
    see_other("/supervision?done=followup_closed")
}

/// `GET /supervision/export.csv`: every open task with department, holder, deadline and state.
pub async fn export(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let p = ctx.principal()?;
    let tasks = state.workflow.supervised_tasks(p, &ctx.actor()).await?;
    let csv_error = |e: tongban_platform::csv_export::CsvError| tongban_platform::DomainError::Internal(e.to_string());
    let mut w = tongban_platform::csv_export::CsvExport::new(["部门", "环节", "办件", "流程", "办理人", "办理期限", "剩余工作日", "状态"])
        .map_err(csv_error)?;
    for (t, unit) in &tasks {
        let state_label = match t.alert {
            "overdue" => "超期",
            "warning" => "预警",
            _ => "正常",
        };
        let row = [
            unit.clone(),
            t.name.clone(),
            t.title.clone(),
            t.process.clone(),
            t.assignee_name.clone().unwrap_or_else(|| "待签收".into()),
            t.due_on.clone().unwrap_or_default(),
            t.remaining.map(|r| r.to_string()).unwrap_or_default(),
            state_label.to_string(),
        ];
        w.row(&row).map_err(csv_error)?;
    }
    let bytes = w.finish().map_err(csv_error)?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, "attachment; filename=\"supervision.csv\"")],
        bytes,
    )
        .into_response())
}
