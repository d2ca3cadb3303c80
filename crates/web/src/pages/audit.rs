//! The auditor's pages (审计查询): filters, paging, CSV export. Reading the trail is itself audited.

use askama::Template;
use axum::{extract::State, http::header, response::IntoResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tongban_audit::{AuditFilter, Entry, SinkKind};
use tongban_authz::Permission;
use tongban_platform::{
    DomainError,
    clock::{format_local, parse_local_date},
};

use super::{Layout, PageResult, render};
use crate::{ctx::Ctx, parse::QueryOf, state::AppState};

/// The filter form as typed: dates are local `YYYY-MM-DD`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub object_type: String,
    #[serde(default)]
    pub object_id: String,
    #[serde(default)]
    pub result: String,
    #[serde(default, skip_serializing)]
    pub page: String,
}

impl AuditQuery {
    /// The domain filter; a malformed date names its field.
    pub fn filter(&self) -> Result<AuditFilter, DomainError> {
        let date = |field: &str, s: &str| -> Result<Option<i64>, DomainError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            parse_local_date(s).map(Some).ok_or_else(|| DomainError::invalid(field, "error.date"))
        };
        if !self.result.is_empty() && !["success", "failure", "denied"].contains(&self.result.as_str()) {
            return Err(DomainError::invalid("result", "error.invalid_choice"));
        }
        Ok(AuditFilter {
            from: date("from", &self.from)?,
            to: date("to", &self.to)?.map(|t| t + 86_400_000),
            actor: self.actor.clone(),
            unit: self.unit.clone(),
            action: self.action.clone(),
            object_type: self.object_type.clone(),
            object_id: self.object_id.clone(),
            result: self.result.clone(),
        })
    }
}

struct Row {
    seq: i64,
    time: String,
    actor: String,
    unit: String,
    ip: String,
    action: String,
    object: String,
    result: String,
    details: String,
}

/// The latest signed checkpoint as the page shows it.
struct CheckpointView {
    time: String,
    seq: i64,
    hash: String,
    sinks: Vec<SinkView>,
}

/// One checkpoint sink: its kind, where it is, and whether it holds the latest checkpoint.
struct SinkView {
    kind: String,
    target: String,
    state: String,
    ok: bool,
}

fn checkpoint_view(ctx: &Ctx, status: tongban_audit::CheckpointStatus) -> Option<CheckpointView> {
    let latest = status.latest?;
    let tr = &ctx.tr;
    let sinks = status
        .sinks
        .into_iter()
        .map(|s| {
            let kind = tr.t(match s.kind {
                SinkKind::Primary => "audit.sink_primary",
                SinkKind::Mirror => "audit.sink_mirror",
                SinkKind::Syslog => "audit.sink_syslog",
            });
            let (state, ok) = match (s.holds_latest, s.last_error.is_empty()) {
                (Some(true), _) => (tr.t("audit.sink_holds").to_string(), true),
                (_, false) => (tr.t1("audit.sink_failed", &s.last_error), false),
                (Some(false), true) => (tr.t("audit.sink_missing").to_string(), false),
                (None, true) => (tr.t("audit.sink_unknown").to_string(), true),
            };
            SinkView { kind: kind.to_string(), target: s.target, state, ok }
        })
        .collect();
    Some(CheckpointView { time: format_local(latest.at), seq: latest.seq, hash: latest.hash, sinks })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPageView {
    l: Layout,
    checkpoint: Option<CheckpointView>,
    f: AuditQuery,
    query: String,
    records: Vec<Row>,
    total: String,
    page: i64,
    pages: i64,
    error: String,
}

const PER_PAGE: i64 = 50;

pub async fn page(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<AuditQuery>) -> PageResult {
    let p = ctx.principal()?;
    if p.require(Permission::AuditRead).is_err() {
        state.identity.audit().record_denied(state.db(), &ctx.actor(), "audit.read", "audit", "", "missing_permission").await;
        return Err(DomainError::Forbidden("error.forbidden").into());
    }
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    let (filter, error) = match q.filter() {
        Ok(f) => (f, String::new()),
        Err(e) => (AuditFilter::default(), crate::error::message(&ctx.tr, &e)),
    };
    let page_no = if q.page.is_empty() { 1 } else { super::parse_id("page", &q.page)?.max(1) };
    let result = filter.page(state.db(), page_no, PER_PAGE).await?;
    let records = result
        .records
        .into_iter()
        .map(|r| Row {
            seq: r.seq,
            time: format_local(r.at),
            actor: r.actor_name,
            unit: r.actor_unit,
            ip: r.ip,
            action: r.action,
            object: format!("{} {}", r.object_type, r.object_id),
            result: r.result,
            details: r.details,
        })
        .collect();
    let pages = ((result.total + PER_PAGE - 1) / PER_PAGE).max(1);
    state
        .identity
        .audit()
        .record(state.db(), &ctx.actor(), Entry::success("audit.read", "audit", "", json!({"query": query, "page": page_no})))
        .await?;
    let checkpoint = checkpoint_view(&ctx, state.identity.audit().checkpoint_status());
    let l = Layout::new(&ctx, "audit.title", "audit");
    render(&AuditPageView { l, checkpoint, f: q, query, records, total: result.total.to_string(), page: page_no, pages, error })
}

/// Most rows one export returns.
pub const EXPORT_LIMIT: i64 = 100_000;

pub async fn export(
    State(state): State<AppState>,
    ctx: Ctx,
    QueryOf(q): QueryOf<AuditQuery>,
) -> Result<axum::response::Response, crate::error::PageError> {
    let p = ctx.principal()?;
    if p.require(Permission::AuditRead).is_err() {
        state.identity.audit().record_denied(state.db(), &ctx.actor(), "audit.export", "audit", "", "missing_permission").await;
        return Err(DomainError::Forbidden("error.forbidden").into());
    }
    let filter = q.filter()?;
    let records = filter.all(state.db(), EXPORT_LIMIT).await?;
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    let details = json!({"query": query, "rows": records.len()});
    state.identity.audit().record(state.db(), &ctx.actor(), Entry::success("audit.export", "audit", "", details)).await?;
    let body = tongban_audit::to_csv(&records).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"tongban-audit.csv\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
