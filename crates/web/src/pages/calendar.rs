//! The working-day calendar page (工作日历): a year's twelve month grids with holidays and make-up
//! working days marked, the schedule and its source; for the system administrator, a form to
//! change one day and one to import a year's schedule.

use askama::Template;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use time::{Date, Month};
use tongban_authz::Permission;
use tongban_calendar::{Calendar, DayEdit, DayKind, date_serde, to_toml};
use tongban_platform::{DomainError, clock::format_local};

use super::{Layout, PageResult, form_error, render_status, see_other};
use crate::{
    api::calendar::{date_param, refusal},
    ctx::Ctx,
    parse::{PageForm, QueryOf},
    state::AppState,
};

/// One cell of a month grid.
struct Cell {
    /// Day of the month; 0 for padding before the 1st and after the last day.
    day: u8,
    /// CSS class: `cal-working`, `cal-weekend`, `cal-holiday`, `cal-makeup`.
    class: &'static str,
    /// Visible text marker (休 / 班), empty for ordinary days.
    marker: String,
    /// Full description for assistive technology and the tooltip.
    label: String,
}

struct MonthView {
    name: String,
    weeks: Vec<Vec<Cell>>,
}

struct PeriodRow {
    name: String,
    from: String,
    to: String,
    makeup: String,
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    l: Layout,
    year: i32,
    scheduled: bool,
    source: String,
    updated: String,
    working_days: i64,
    weekdays: Vec<String>,
    months: Vec<MonthView>,
    periods: Vec<PeriodRow>,
    can_write: bool,
    day_form: DayForm,
    day_error: String,
    day_error_field: String,
    import_text: String,
    import_error: String,
}

/// `?year=2026&done=…`
#[derive(Deserialize, Default)]
pub struct YearQuery {
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// The one-day form.
#[derive(Deserialize, Default)]
pub struct DayForm {
    #[serde(default)]
    date: String,
    /// `holiday`, `workday` or `clear`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

/// The import form.
#[derive(Deserialize, Default)]
pub struct ImportForm {
    #[serde(default)]
    text: String,
}

fn kind_label(l: &Layout, k: &DayKind) -> String {
    let kind = l.tr.t(&format!("calendar.kind_{}", k.code())).to_string();
    match k.name() {
        Some(name) => format!("{name} {kind}"),
        None => kind,
    }
}

fn month_grid(l: &Layout, cal: &Calendar, year: i32, month: Month, name: String) -> MonthView {
    let mut weeks = Vec::new();
    let Ok(first) = Date::from_calendar_date(year, month, 1) else {
        return MonthView { name, weeks };
    };
    let mut week: Vec<Cell> = Vec::new();
    let blank = || Cell { day: 0, class: "", marker: String::new(), label: String::new() };
    for _ in 0..first.weekday().number_days_from_monday() {
        week.push(blank());
    }
    let mut d = first;
    while d.month() == month && d.year() == year {
        let kind = cal.kind(d);
        let (class, marker) = match kind {
            DayKind::Working => ("cal-working", String::new()),
            DayKind::Weekend => ("cal-weekend", String::new()),
            DayKind::Holiday { .. } => ("cal-holiday", l.tr.t("calendar.marker_holiday").to_string()),
            DayKind::MakeUpWorkday { .. } => ("cal-makeup", l.tr.t("calendar.marker_makeup").to_string()),
        };
        week.push(Cell { day: d.day(), class, marker, label: format!("{} {}", date_serde::format(d), kind_label(l, &kind)) });
        if week.len() == 7 {
            weeks.push(std::mem::take(&mut week));
        }
        match d.next_day() {
            Some(n) => d = n,
            None => break,
        }
    }
    if !week.is_empty() {
        while week.len() < 7 {
            week.push(blank());
        }
        weeks.push(week);
    }
    MonthView { name, weeks }
}

fn parse_year(q: Option<&str>) -> Result<i32, DomainError> {
    match q.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(time::OffsetDateTime::now_utc().to_offset(tongban_platform::clock::china_offset()).year()),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|y| tongban_calendar::import::YEARS.contains(y))
            .map(|y| y as i32)
            .ok_or_else(|| DomainError::invalid("year", "calendar.error.year_range")),
    }
}

struct Errors {
    day: (String, String),
    import: String,
    status: StatusCode,
}

impl Default for Errors {
    fn default() -> Self {
        Errors { day: Default::default(), import: String::new(), status: StatusCode::OK }
    }
}

async fn page(
    state: &AppState,
    ctx: &Ctx,
    year: i32,
    day_form: DayForm,
    import_text: Option<String>,
    errors: Errors,
    done: Option<&str>,
) -> PageResult {
    let p = ctx.principal()?;
    let cal = state.calendar.calendar().await?;
    let mut l = Layout::new(ctx, "calendar.title", "calendar");
    if let Some(key) = done.filter(|k| matches!(*k, "day_saved" | "day_cleared" | "imported")) {
        l.flash = l.tr.t(&format!("calendar.flash.{key}")).to_string();
    }
    let info = state.calendar.years().await?.into_iter().find(|y| y.year == year);
    let schedule = cal.schedule(year);
    let month_names: Vec<String> = l.tr.t("calendar.months").split_whitespace().map(String::from).collect();
    let months = (1..=12u8)
        .filter_map(|m| Month::try_from(m).ok())
        .map(|m| {
            let name = month_names.get(m as usize - 1).cloned().unwrap_or_else(|| (m as u8).to_string());
            month_grid(&l, &cal, year, m, name)
        })
        .collect();
    let periods = schedule
        .map(|s| {
            s.periods
                .iter()
                .map(|p| PeriodRow {
                    name: p.name.clone(),
                    from: date_serde::format(p.from),
                    to: date_serde::format(p.to),
                    makeup: p.makeup_workdays.iter().map(|d| date_serde::format(*d)).collect::<Vec<_>>().join("、"),
                })
                .collect()
        })
        .unwrap_or_default();
    let (Some(first), Some(last)) = (
        Date::from_ordinal_date(year, 1).ok().and_then(|d| d.previous_day()),
        Date::from_ordinal_date(year, time::util::days_in_year(year)).ok(),
    ) else {
        return Err(DomainError::invalid("year", "calendar.error.year_range").into());
    };
    let view = CalendarPage {
        year,
        scheduled: schedule.is_some(),
        source: schedule.map(|s| s.source.clone()).unwrap_or_default(),
        updated: info.as_ref().map(|i| format!("{} · {}", format_local(i.updated_at), i.updated_by)).unwrap_or_default(),
        working_days: cal.working_days_between(first, last),
        weekdays: l.tr.t("calendar.weekdays").split_whitespace().map(String::from).collect(),
        months,
        periods,
        can_write: p.has(Permission::ConfigWrite),
        day_form,
        day_error_field: errors.day.0,
        day_error: errors.day.1,
        import_text: import_text.unwrap_or_else(|| schedule.map(to_toml).unwrap_or_default()),
        import_error: errors.import,
        l,
    };
    render_status(errors.status, &view)
}

/// `GET /admin/calendar?year=2026`: any logged-in staff member.
pub async fn show(State(state): State<AppState>, ctx: Ctx, QueryOf(q): QueryOf<YearQuery>) -> PageResult {
    ctx.principal()?;
    let year = parse_year(q.year.as_deref())?;
    page(&state, &ctx, year, DayForm::default(), None, Errors::default(), q.done.as_deref()).await
}

/// `POST /admin/calendar/day`: set or clear one day (system administrator).
pub async fn set_day(State(state): State<AppState>, ctx: Ctx, PageForm(form): PageForm<DayForm>) -> PageResult {
    let p = ctx.principal()?;
    let actor = ctx.actor();
    let result = async {
        let date = date_param("date", Some(&form.date))?;
        match form.kind.as_str() {
            "clear" => state.calendar.clear_day(p, &actor, date).await.map(|_| (date, "day_cleared")),
            k => {
                let kind = DayEdit::parse(k).ok_or_else(|| DomainError::invalid("kind", "calendar.error.kind"))?;
                state.calendar.set_day(p, &actor, date, kind, &form.name).await.map(|_| (date, "day_saved"))
            }
        }
    }
    .await;
    match result {
        Ok((date, done)) => see_other(&format!("/admin/calendar?year={}&done={done}", date.year())),
        Err(DomainError::NotFound(key)) => {
            // Clearing a day without an entry: say so on the form.
            let msg = ctx.tr.t(key).to_string();
            let year = date_serde::parse(&form.date).map(|d| d.year()).unwrap_or_else(|| parse_year(None).unwrap_or(2026));
            let errors = Errors { day: ("date".into(), msg), status: StatusCode::UNPROCESSABLE_ENTITY, ..Default::default() };
            page(&state, &ctx, year, form, None, errors, None).await
        }
        Err(e) => {
            let err = form_error(&ctx.tr, e)?;
            let year = date_serde::parse(&form.date)
                .map(|d| d.year())
                .filter(|y| (1949..=2100).contains(y))
                .unwrap_or_else(|| parse_year(None).unwrap_or(2026));
            let errors = Errors { day: err, status: StatusCode::UNPROCESSABLE_ENTITY, ..Default::default() };
            page(&state, &ctx, year, form, None, errors, None).await
        }
    }
}

/// `POST /admin/calendar/import`: replace a year's schedule (system administrator).
/// The file input wins over the text area when both are filled.
pub async fn import(State(state): State<AppState>, ctx: Ctx, req: axum::extract::Request) -> PageResult {
    let p = ctx.principal()?;
    let fields = super::form_texts(req).await?;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let file = field("file");
    let form = ImportForm { text: if file.trim().is_empty() { field("text") } else { file } };
    match state.calendar.import(p, &ctx.actor(), &form.text).await {
        Ok(s) => see_other(&format!("/admin/calendar?year={}&done=imported", s.year)),
        Err(r) => {
            let e = refusal(&ctx.tr, r);
            let (_, msg) = form_error(&ctx.tr, e)?;
            let year = tongban_calendar::parse_schedule(&form.text).map(|s| s.year).ok().or_else(|| {
                // The refused file's year, when it can be read, else this year.
                toml::from_str::<toml::Table>(&form.text)
                    .ok()
                    .and_then(|t| t.get("year").and_then(|y| y.as_integer()))
                    .filter(|y| tongban_calendar::import::YEARS.contains(y))
                    .map(|y| y as i32)
            });
            let year = match year {
                Some(y) => y,
                None => parse_year(None)?,
            };
            let errors = Errors { import: msg, status: StatusCode::UNPROCESSABLE_ENTITY, ..Default::default() };
            page(&state, &ctx, year, DayForm::default(), Some(form.text), errors, None).await
        }
    }
}
