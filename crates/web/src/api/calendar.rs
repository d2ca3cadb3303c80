//! The working-day calendar API (工作日历接口) under `/api/v1/calendar`: working days between two
//! dates, deadlines, the kind of a day, a year's schedule, and the administrator's import.

use axum::{Json, body::Bytes, extract::State};
use serde::{Deserialize, Serialize};
use time::Date;
use tongban_calendar::{Calendar, DayKind, ImportError, ImportRefusal, date_serde};
use tongban_platform::{DomainError, clock::format_rfc3339};

use crate::{
    ctx::Ctx,
    error::{ApiError, ErrorBody},
    i18n::Tr,
    parse::{PathParams, QueryOf},
    state::AppState,
};

type ApiResult<T> = Result<T, ApiError>;

/// The longest time limit accepted, in working days (about 14 years).
pub const MAX_DAYS: u32 = 3650;

/// Parses a required `YYYY-MM-DD` parameter, naming it on failure.
pub(crate) fn date_param(field: &str, value: Option<&str>) -> Result<Date, DomainError> {
    let value = value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| DomainError::invalid(field, "calendar.error.required"))?;
    let date = date_serde::parse(value).ok_or_else(|| DomainError::invalid(field, "calendar.error.date"))?;
    if !tongban_calendar::import::YEARS.contains(&i64::from(date.year())) {
        return Err(DomainError::invalid(field, "calendar.error.year_range"));
    }
    Ok(date)
}

/// Years in `from..=to` answered by the weekend rule only (no schedule loaded).
fn unscheduled(cal: &Calendar, from: Date, to: Date) -> Vec<i32> {
    (from.year().min(to.year())..=from.year().max(to.year())).filter(|y| !cal.has_schedule(*y)).collect()
}

/// A day's kind as the API answers it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayKindDto {
    /// `working`, `weekend`, `holiday` or `makeup_workday`.
    pub kind: String,
    /// The holiday's name, for holidays and make-up working days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<&DayKind> for DayKindDto {
    fn from(k: &DayKind) -> Self {
        DayKindDto { kind: k.code().into(), name: k.name().map(String::from) }
    }
}

/// Query of `/working-days`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkingDaysQuery {
    /// First date, `YYYY-MM-DD` (not counted).
    #[serde(default)]
    from: Option<String>,
    /// Last date, `YYYY-MM-DD` (counted).
    #[serde(default)]
    to: Option<String>,
}

/// The number of working days between two dates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkingDaysDto {
    /// First date (not counted).
    pub from: String,
    /// Last date (counted).
    pub to: String,
    /// Working days `d` with `from < d <= to`; 0 when `to <= from`.
    pub working_days: i64,
    /// Years in the range without a loaded schedule (answered by the weekend rule only).
    pub unscheduled_years: Vec<i32>,
}

/// Working days after `from` up to and including `to`.
#[utoipa::path(get, path = "/api/v1/calendar/working-days", tag = "calendar", params(WorkingDaysQuery),
    responses((status = 200, body = WorkingDaysDto), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn working_days(
    State(state): State<AppState>,
    ctx: Ctx,
    QueryOf(q): QueryOf<WorkingDaysQuery>,
) -> ApiResult<Json<WorkingDaysDto>> {
    ctx.principal()?;
    let from = date_param("from", q.from.as_deref())?;
    let to = date_param("to", q.to.as_deref())?;
    let cal = state.calendar.calendar().await?;
    Ok(Json(WorkingDaysDto {
        from: date_serde::format(from),
        to: date_serde::format(to),
        working_days: cal.working_days_between(from, to),
        unscheduled_years: unscheduled(&cal, from, to),
    }))
}

/// Query of `/deadline`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadlineQuery {
    /// The start date, `YYYY-MM-DD` (e.g. the day of acceptance; not counted).
    #[serde(default)]
    start: Option<String>,
    /// The time limit in working days, 0–3650.
    #[serde(default)]
    days: Option<String>,
}

/// A deadline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadlineDto {
    /// The start date (not counted).
    pub start: String,
    /// The limit in working days.
    pub days: u32,
    /// The due date: the `days`th working day after `start`.
    pub due: String,
    /// Years up to the due date without a loaded schedule (answered by the weekend rule only).
    pub unscheduled_years: Vec<i32>,
}

/// The due date of a time limit of `days` working days counted from the day after `start`.
#[utoipa::path(get, path = "/api/v1/calendar/deadline", tag = "calendar", params(DeadlineQuery),
    responses((status = 200, body = DeadlineDto), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn deadline(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<DeadlineQuery>) -> ApiResult<Json<DeadlineDto>> {
    ctx.principal()?;
    let start = date_param("start", q.start.as_deref())?;
    let days = q
        .days
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DomainError::invalid("days", "calendar.error.required"))?;
    let days: u32 =
        days.parse().ok().filter(|d| *d <= MAX_DAYS).ok_or_else(|| DomainError::invalid("days", "calendar.error.days_range"))?;
    let cal = state.calendar.calendar().await?;
    let due = cal.add_working_days(start, days).ok_or_else(|| DomainError::invalid("days", "calendar.error.days_range"))?;
    Ok(Json(DeadlineDto {
        start: date_serde::format(start),
        days,
        due: date_serde::format(due),
        unscheduled_years: unscheduled(&cal, start, due),
    }))
}

/// Query of `/is-working-day`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The date, `YYYY-MM-DD`.
    #[serde(default)]
    date: Option<String>,
}

/// One day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayDto {
    /// The date.
    pub date: String,
    /// Whether it is a working day (make-up working days included).
    pub working: bool,
    /// Its kind.
    #[serde(flatten)]
    pub kind: DayKindDto,
    /// Whether the date's year has a loaded schedule (otherwise only weekends are known).
    pub scheduled: bool,
}

/// Whether a date is a working day, and what kind of day it is.
#[utoipa::path(get, path = "/api/v1/calendar/is-working-day", tag = "calendar", params(DayQuery),
    responses((status = 200, body = DayDto), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn is_working_day(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<DayQuery>) -> ApiResult<Json<DayDto>> {
    ctx.principal()?;
    let date = date_param("date", q.date.as_deref())?;
    let cal = state.calendar.calendar().await?;
    let kind = cal.kind(date);
    Ok(Json(DayDto {
        date: date_serde::format(date),
        working: kind.is_working(),
        kind: (&kind).into(),
        scheduled: cal.has_schedule(date.year()),
    }))
}

/// One holiday period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeriodDto {
    /// Name.
    pub name: String,
    /// First day off.
    pub from: String,
    /// Last day off.
    pub to: String,
    /// Saturdays and Sundays worked in exchange.
    pub makeup_workdays: Vec<String>,
}

/// One changed day.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleDayDto {
    /// The date.
    pub date: String,
    /// `holiday` or `makeup_workday`, with the holiday's name.
    #[serde(flatten)]
    pub kind: DayKindDto,
}

/// A year's schedule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct YearScheduleDto {
    /// The year.
    pub year: i32,
    /// The notice it follows (empty for a year only edited by hand).
    pub source: String,
    /// Holiday periods in date order.
    pub periods: Vec<PeriodDto>,
    /// Every day that differs from the weekend rule.
    pub days: Vec<ScheduleDayDto>,
    /// Working days in the year.
    pub working_days: i64,
    /// Last change (RFC 3339), when stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Who made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

pub(crate) fn schedule_dto(cal: &Calendar, year: i32) -> Option<YearScheduleDto> {
    let s = cal.schedule(year)?;
    let periods = s
        .periods
        .iter()
        .map(|p| PeriodDto {
            name: p.name.clone(),
            from: date_serde::format(p.from),
            to: date_serde::format(p.to),
            makeup_workdays: p.makeup_workdays.iter().map(|d| date_serde::format(*d)).collect(),
        })
        .collect();
    let days = cal.overrides(year).iter().map(|(d, k)| ScheduleDayDto { date: date_serde::format(*d), kind: k.into() }).collect();
    let bounds = (
        Date::from_ordinal_date(year - 1, time::util::days_in_year(year - 1)).ok(),
        Date::from_ordinal_date(year, time::util::days_in_year(year)).ok(),
    );
    let working_days = match bounds {
        (Some(a), Some(b)) => cal.working_days_between(a, b),
        _ => 0,
    };
    Some(YearScheduleDto { year, source: s.source.clone(), periods, days, working_days, updated_at: None, updated_by: None })
}

/// A year's holiday schedule; 404 when none is loaded.
#[utoipa::path(get, path = "/api/v1/calendar/years/{year}", tag = "calendar", params(("year" = i32, Path)),
    responses((status = 200, body = YearScheduleDto), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn year(State(state): State<AppState>, ctx: Ctx, params: PathParams) -> ApiResult<Json<YearScheduleDto>> {
    ctx.principal()?;
    let year = params
        .text("year")
        .parse::<i64>()
        .ok()
        .filter(|y| tongban_calendar::import::YEARS.contains(y))
        .ok_or_else(|| DomainError::invalid("year", "calendar.error.year_range"))? as i32;
    let cal = state.calendar.calendar().await?;
    let mut dto = schedule_dto(&cal, year).ok_or(DomainError::NotFound("calendar.error.no_schedule"))?;
    if let Some(info) = state.calendar.years().await?.into_iter().find(|y| y.year == year) {
        dto.updated_at = Some(format_rfc3339(info.updated_at));
        dto.updated_by = Some(info.updated_by);
    }
    Ok(Json(dto))
}

/// A refused import as a field error: the period and key as the field, the line, period name
/// and particulars as the localised detail.
pub(crate) fn import_error(tr: &Tr, e: &ImportError) -> DomainError {
    let mut parts = Vec::new();
    if let Some(line) = e.line {
        parts.push(tr.t1("calendar.at_line", &line.to_string()));
    }
    if let Some(name) = &e.period_name {
        parts.push(name.clone());
    }
    let detail = e.detail();
    if !detail.is_empty() {
        parts.push(detail);
    }
    if parts.is_empty() {
        DomainError::invalid(&e.field_path(), e.message_key())
    } else {
        DomainError::invalid_detail(&e.field_path(), e.message_key(), parts.join(", "))
    }
}

/// Refusals of an import, localised.
pub(crate) fn refusal(tr: &Tr, r: ImportRefusal) -> DomainError {
    match r {
        ImportRefusal::Invalid(e) => import_error(tr, &e),
        ImportRefusal::Domain(e) => e,
    }
}

/// Imports one year's holiday schedule (system administrator). The body is the TOML file
/// (see the README, "Working-day calendar"); it replaces everything stored for that year. A file
/// with any problem is refused whole with 422, naming the period and key (`period[2].from`) and,
/// in the message, the line.
#[utoipa::path(post, path = "/api/v1/calendar/import", tag = "calendar", request_body(content = String, content_type = "application/toml"),
    responses((status = 200, body = YearScheduleDto), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn import(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> ApiResult<Json<YearScheduleDto>> {
    let p = ctx.principal()?;
    let text = std::str::from_utf8(&body).map_err(|_| DomainError::invalid("body", "calendar.error.not_utf8"))?;
    let schedule = state.calendar.import(p, &ctx.actor(), text).await.map_err(|r| refusal(&ctx.tr, r))?;
    let cal = state.calendar.calendar().await?;
    Ok(Json(schedule_dto(&cal, schedule.year).ok_or(DomainError::NotFound("calendar.error.no_schedule"))?))
}
