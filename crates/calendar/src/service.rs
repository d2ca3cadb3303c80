//! Storage and use cases of the calendar: the stored years and days, an in-memory [`Calendar`]
//! rebuilt after every change, seeding of the official schedules, imports and single-day edits.
//!
//! Storage (`0002_calendar.sql`): `calendar_years` holds each loaded year and its source,
//! `calendar_days` each day that differs from the weekend rule (`holiday` or `workday`, with the
//! holiday's name). Only holders of `config.write` (the system administrator) change them; any
//! logged-in staff member may read.
//!
//! With several instances on one database, an instance notices another's change when its cache
//! is older than [`REFRESH_AFTER`]; its own changes are visible at once.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use serde_json::json;
use sqlx::Row;
use time::{Date, Weekday};
use tongban_audit::{Actor, AuditTrail, Entry};
use tongban_authz::{Permission, Principal};
use tongban_platform::{Db, DomainError, WriteTx, clock::now_millis, error::DomainResult, outbox};

use crate::{
    import::{ImportError, official_schedules, parse_schedule},
    model::{Calendar, DayKind, StoredYear, YearSchedule, date_serde},
};

/// How long a cached calendar is trusted before it is reloaded (other instances' changes).
pub const REFRESH_AFTER: Duration = Duration::from_secs(60);

/// What an administrator may set one day to (单日调整).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdit {
    /// A day off (放假).
    Holiday,
    /// A make-up working day on a Saturday or Sunday (调休上班).
    Workday,
}

impl DayEdit {
    /// Parses `holiday` or `workday`.
    pub fn parse(s: &str) -> Option<DayEdit> {
        match s.trim() {
            "holiday" => Some(DayEdit::Holiday),
            "workday" => Some(DayEdit::Workday),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DayEdit::Holiday => "holiday",
            DayEdit::Workday => "workday",
        }
    }
}

/// A stored year's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearInfo {
    /// The year.
    pub year: i32,
    /// The schedule's source (notice), or empty for a year only edited by hand.
    pub source: String,
    /// Last change, UTC milliseconds.
    pub updated_at: i64,
    /// Who made it.
    pub updated_by: String,
}

struct Cache {
    calendar: Arc<Calendar>,
    loaded_at: Option<Instant>,
}

/// The calendar service (工作日历服务).
#[derive(Clone)]
pub struct CalendarService {
    db: Db,
    audit: AuditTrail,
    cache: Arc<RwLock<Cache>>,
}

impl CalendarService {
    /// A service over `db`, recording to `audit`. The calendar is loaded on first use.
    pub fn new(db: Db, audit: AuditTrail) -> Self {
        CalendarService { db, audit, cache: Arc::new(RwLock::new(Cache { calendar: Arc::new(Calendar::default()), loaded_at: None })) }
    }

    /// The current calendar, from the cache (reloaded when stale or never loaded).
    pub async fn calendar(&self) -> DomainResult<Arc<Calendar>> {
        if let Ok(c) = self.cache.read()
            && c.loaded_at.is_some_and(|t| t.elapsed() < REFRESH_AFTER)
        {
            return Ok(c.calendar.clone());
        }
        self.reload().await
    }

    /// Reloads the calendar from the database into the cache.
    pub async fn reload(&self) -> DomainResult<Arc<Calendar>> {
        let years = sqlx::query("SELECT year, source FROM calendar_years ORDER BY year").fetch_all(self.db.pool()).await?;
        let days = sqlx::query("SELECT day, year, kind, name FROM calendar_days ORDER BY day").fetch_all(self.db.pool()).await?;
        let mut by_year: Vec<StoredYear> = years.iter().map(|r| (r.get::<i64, _>(0) as i32, r.get::<String, _>(1), Vec::new())).collect();
        for r in &days {
            let day: String = r.get(0);
            let year = r.get::<i64, _>(1) as i32;
            let name: String = r.get(3);
            let Some(date) = date_serde::parse(&day) else {
                tracing::warn!(day, "unreadable calendar day skipped");
                continue;
            };
            let kind = match r.get::<String, _>(2).as_str() {
                "holiday" => DayKind::Holiday { name },
                "workday" => DayKind::MakeUpWorkday { name },
                other => {
                    tracing::warn!(day, kind = other, "unknown calendar day kind skipped");
                    continue;
                }
            };
            if let Some(entry) = by_year.iter_mut().find(|(y, _, _)| *y == year) {
                entry.2.push((date, kind));
            }
        }
        let calendar = Arc::new(Calendar::from_overrides(by_year));
        if let Ok(mut c) = self.cache.write() {
            c.calendar = calendar.clone();
            c.loaded_at = Some(Instant::now());
        }
        Ok(calendar)
    }

    /// Stored years with their source and last change.
    pub async fn years(&self) -> DomainResult<Vec<YearInfo>> {
        let rows =
            sqlx::query("SELECT year, source, updated_at, updated_by FROM calendar_years ORDER BY year").fetch_all(self.db.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| YearInfo { year: r.get::<i64, _>(0) as i32, source: r.get(1), updated_at: r.get(2), updated_by: r.get(3) })
            .collect())
    }

    /// Stores the official schedules shipped with tongban (2025, 2026) for years that have none yet.
    /// Called at start-up; safe with several instances starting at once. Returns the years stored.
    pub async fn ensure_official(&self) -> DomainResult<Vec<i32>> {
        let actor = Actor::system("calendar-seed");
        let mut stored = Vec::new();
        for schedule in official_schedules() {
            let mut tx = self.db.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO calendar_years (year, source, updated_at, updated_by) VALUES ($1, $2, $3, $4) ON CONFLICT (year) DO NOTHING",
            )
            .bind(i64::from(schedule.year))
            .bind(&schedule.source)
            .bind(now_millis())
            .bind(&actor.name)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            insert_days(&mut tx, &schedule).await?;
            let details = json!({"year": schedule.year, "source": schedule.source, "periods": schedule.periods.len()});
            // Audited, but no `calendar.changed` event: nothing can have used the year before it existed.
            self.audit.append(&mut tx, &actor, Entry::success("calendar.seed", "calendar_year", schedule.year, details)).await?;
            tx.commit().await?;
            stored.push(schedule.year);
        }
        if !stored.is_empty() {
            tracing::info!(?stored, "official holiday schedules stored");
        }
        self.reload().await?;
        Ok(stored)
    }

    async fn check_write(&self, caller: &Principal, actor: &Actor, action: &str, object: &str) -> DomainResult<()> {
        if caller.has(Permission::ConfigWrite) {
            return Ok(());
        }
        self.audit.record_denied(&self.db, actor, action, "calendar_year", object, "missing_permission").await;
        Err(DomainError::Forbidden("error.forbidden"))
    }

    /// Imports one year's schedule (TOML, see [`crate::import`]), replacing everything stored for
    /// that year, in one audited transaction. A file with any problem changes nothing.
    pub async fn import(&self, caller: &Principal, actor: &Actor, text: &str) -> Result<YearSchedule, ImportRefusal> {
        self.check_write(caller, actor, "calendar.import", "-").await?;
        let schedule = parse_schedule(text).map_err(ImportRefusal::Invalid)?;
        let mut tx = self.db.begin_write().await.map_err(DomainError::from)?;
        let replaced: i64 = sqlx::query("SELECT COUNT(*) FROM calendar_days WHERE year = $1")
            .bind(i64::from(schedule.year))
            .fetch_one(tx.conn())
            .await
            .map_err(DomainError::from)?
            .get(0);
        sqlx::query("DELETE FROM calendar_days WHERE year = $1")
            .bind(i64::from(schedule.year))
            .execute(tx.conn())
            .await
            .map_err(DomainError::from)?;
        upsert_year(&mut tx, schedule.year, Some(&schedule.source), &actor.name).await?;
        let days = insert_days(&mut tx, &schedule).await?;
        let details = json!({
            "year": schedule.year,
            "source": schedule.source,
            "periods": schedule.periods.iter().map(|p| json!({
                "name": p.name, "from": date_serde::format(p.from), "to": date_serde::format(p.to),
                "makeup_workdays": p.makeup_workdays.iter().map(|d| date_serde::format(*d)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "days_replaced": replaced,
            "days_stored": days,
        });
        self.audit
            .append(&mut tx, actor, Entry::success("calendar.import", "calendar_year", schedule.year, details))
            .await
            .map_err(DomainError::from)?;
        outbox::publish(&mut tx, "calendar.changed", &json!({"years": [schedule.year]})).await.map_err(DomainError::from)?;
        tx.commit().await.map_err(DomainError::from)?;
        self.reload().await?;
        Ok(schedule)
    }

    /// Sets one day to a day off or a make-up working day (a Saturday or Sunday), named after
    /// its holiday. Audited as `calendar.set_day`.
    pub async fn set_day(&self, caller: &Principal, actor: &Actor, date: Date, kind: DayEdit, name: &str) -> DomainResult<()> {
        let day = date_serde::format(date);
        self.check_write(caller, actor, "calendar.set_day", &day).await?;
        let name = name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("name", "calendar.error.empty_name"));
        }
        tongban_platform::text::check_name("name", name)?;
        if name.chars().count() > 64 {
            return Err(DomainError::invalid("name", "calendar.error.name_too_long"));
        }
        if !crate::import::YEARS.contains(&i64::from(date.year())) {
            return Err(DomainError::invalid("date", "calendar.error.year_range"));
        }
        if kind == DayEdit::Workday && !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) {
            return Err(DomainError::invalid("date", "calendar.error.makeup_on_weekday"));
        }
        let mut tx = self.db.begin_write().await?;
        let before = stored_day(&mut tx, &day).await?;
        upsert_year(&mut tx, date.year(), None, &actor.name).await?;
        sqlx::query("DELETE FROM calendar_days WHERE day = $1").bind(&day).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO calendar_days (day, year, kind, name) VALUES ($1, $2, $3, $4)")
            .bind(&day)
            .bind(i64::from(date.year()))
            .bind(kind.as_str())
            .bind(name)
            .execute(tx.conn())
            .await?;
        let details = json!({"day": day, "kind": kind.as_str(), "name": name, "before": before});
        self.audit.append(&mut tx, actor, Entry::success("calendar.set_day", "calendar_day", &day, details)).await?;
        outbox::publish(&mut tx, "calendar.changed", &json!({"years": [date.year()], "day": day})).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }

    /// Returns one day to the weekend rule (removes its holiday or make-up entry). Audited as
    /// `calendar.clear_day`; clearing a day with no entry is refused as not found.
    pub async fn clear_day(&self, caller: &Principal, actor: &Actor, date: Date) -> DomainResult<()> {
        let day = date_serde::format(date);
        self.check_write(caller, actor, "calendar.clear_day", &day).await?;
        let mut tx = self.db.begin_write().await?;
        let Some(before) = stored_day(&mut tx, &day).await? else {
            return Err(DomainError::NotFound("calendar.error.no_entry"));
        };
        sqlx::query("DELETE FROM calendar_days WHERE day = $1").bind(&day).execute(tx.conn()).await?;
        upsert_year(&mut tx, date.year(), None, &actor.name).await?;
        let details = json!({"day": day, "before": before});
        self.audit.append(&mut tx, actor, Entry::success("calendar.clear_day", "calendar_day", &day, details)).await?;
        outbox::publish(&mut tx, "calendar.changed", &json!({"years": [date.year()], "day": day})).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(())
    }
}

/// Why an import was refused: a problem in the file (with its location) or anything else.
#[derive(Debug)]
pub enum ImportRefusal {
    /// The file is wrong; nothing was stored.
    Invalid(ImportError),
    /// Permission, storage, ….
    Domain(DomainError),
}

impl From<DomainError> for ImportRefusal {
    fn from(e: DomainError) -> Self {
        ImportRefusal::Domain(e)
    }
}

impl From<ImportRefusal> for DomainError {
    fn from(r: ImportRefusal) -> Self {
        match r {
            ImportRefusal::Invalid(e) => DomainError::invalid(&e.field_path(), e.message_key()),
            ImportRefusal::Domain(e) => e,
        }
    }
}

async fn stored_day(tx: &mut WriteTx, day: &str) -> DomainResult<Option<serde_json::Value>> {
    let row = sqlx::query("SELECT kind, name FROM calendar_days WHERE day = $1").bind(day).fetch_optional(tx.conn()).await?;
    Ok(row.map(|r| json!({"kind": r.get::<String, _>(0), "name": r.get::<String, _>(1)})))
}

/// Creates or touches a year row; `source` replaces the stored one when given.
async fn upsert_year(tx: &mut WriteTx, year: i32, source: Option<&str>, by: &str) -> DomainResult<()> {
    let now = now_millis();
    sqlx::query(
        "INSERT INTO calendar_years (year, source, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (year) DO UPDATE SET source = COALESCE($5, calendar_years.source), updated_at = $3, updated_by = $4",
    )
    .bind(i64::from(year))
    .bind(source.unwrap_or(""))
    .bind(now)
    .bind(by)
    .bind(source)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Inserts a schedule's days (the year's old days must be gone). Returns how many.
async fn insert_days(tx: &mut WriteTx, schedule: &YearSchedule) -> DomainResult<usize> {
    let days = schedule.overrides();
    for (date, kind) in &days {
        let (code, name) = match kind {
            DayKind::Holiday { name } => ("holiday", name),
            DayKind::MakeUpWorkday { name } => ("workday", name),
            _ => continue,
        };
        sqlx::query("INSERT INTO calendar_days (day, year, kind, name) VALUES ($1, $2, $3, $4)")
            .bind(date_serde::format(*date))
            .bind(i64::from(schedule.year))
            .bind(code)
            .bind(name)
            .execute(tx.conn())
            .await?;
    }
    Ok(days.len())
}
