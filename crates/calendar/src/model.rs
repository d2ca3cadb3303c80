//! The working-day calendar (工作日历) as pure logic: what kind of day a date is, and deadline
//! arithmetic in working days (工作日). No I/O.
//!
//! # Years without a schedule
//! The State Council publishes each year's holiday schedule (节假日安排) in November of the year
//! before. A year for which no schedule is loaded falls back to plain weekends: Monday to Friday
//! are working days, Saturday and Sunday are not, and there are no holidays. [`Calendar::has_schedule`]
//! tells callers (and the admin page) when an answer rests on that fallback.
//!
//! # Speed
//! Every year is answered from a table of cumulative working-day counts by day of the year
//! (`prefix[ordinal]`), so `is_working_day` and `working_days_between` are O(1) per year touched and
//! `add_working_days` is O(log 366) per year touched. Years without a schedule share one of the 14
//! possible weekend-only tables (by weekday of 1 January and leap year), built once per process.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, OnceLock},
};

use serde::{Deserialize, Serialize};
use time::{Date, Month, Weekday};

/// What kind of day a date is (日期类型).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DayKind {
    /// An ordinary working day, Monday to Friday (工作日).
    Working,
    /// An ordinary Saturday or Sunday (周末).
    Weekend,
    /// A day off in a statutory holiday period (法定节假日/放假调休), even when it is a weekend day.
    Holiday {
        /// The holiday's name, e.g. 春节.
        name: String,
    },
    /// A Saturday or Sunday worked in exchange for a day off (调休上班).
    MakeUpWorkday {
        /// The holiday it belongs to, e.g. 春节.
        name: String,
    },
}

impl DayKind {
    /// Whether people work on this day.
    pub fn is_working(&self) -> bool {
        matches!(self, DayKind::Working | DayKind::MakeUpWorkday { .. })
    }

    /// A stable short code: `working`, `weekend`, `holiday` or `makeup_workday`.
    pub fn code(&self) -> &'static str {
        match self {
            DayKind::Working => "working",
            DayKind::Weekend => "weekend",
            DayKind::Holiday { .. } => "holiday",
            DayKind::MakeUpWorkday { .. } => "makeup_workday",
        }
    }

    /// The holiday name for holidays and make-up working days.
    pub fn name(&self) -> Option<&str> {
        match self {
            DayKind::Holiday { name } | DayKind::MakeUpWorkday { name } => Some(name),
            _ => None,
        }
    }
}

/// One holiday period of a year's schedule (放假安排): days off from `from` to `to` inclusive, and
/// the weekend days worked in exchange (调休上班日).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolidayPeriod {
    /// Name, e.g. 春节 or 国庆节、中秋节.
    pub name: String,
    /// First day off.
    #[serde(with = "date_serde")]
    pub from: Date,
    /// Last day off (inclusive).
    #[serde(with = "date_serde")]
    pub to: Date,
    /// Saturdays and Sundays that are working days because of this holiday.
    #[serde(with = "date_serde::vec", default)]
    pub makeup_workdays: Vec<Date>,
}

/// The holiday schedule of one year (年度节假日安排), as published by the State Council.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearSchedule {
    /// The calendar year.
    pub year: i32,
    /// Where the schedule comes from, e.g. the notice's title and number (通知文号).
    pub source: String,
    /// The holiday periods in date order.
    pub periods: Vec<HolidayPeriod>,
}

impl YearSchedule {
    /// The days this schedule changes from the plain weekend rule, in date order.
    pub fn overrides(&self) -> Vec<(Date, DayKind)> {
        let mut out = BTreeMap::new();
        for p in &self.periods {
            let mut d = p.from;
            while d <= p.to {
                out.insert(d, DayKind::Holiday { name: p.name.clone() });
                match d.next_day() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
        for p in &self.periods {
            for d in &p.makeup_workdays {
                out.entry(*d).or_insert_with(|| DayKind::MakeUpWorkday { name: p.name.clone() });
            }
        }
        out.into_iter().collect()
    }

    /// Rebuilds a schedule from single-day overrides (as stored): consecutive holidays with the
    /// same name form one period; a make-up working day joins the nearest period with its name,
    /// or the nearest period at all when no period carries its name. This is the display form of
    /// stored days; [`Calendar::from_overrides`] keeps the days themselves.
    pub fn from_overrides(year: i32, source: &str, days: &[(Date, DayKind)]) -> YearSchedule {
        let mut sorted: Vec<&(Date, DayKind)> = days.iter().collect();
        sorted.sort_by_key(|(d, _)| *d);
        let mut periods: Vec<HolidayPeriod> = Vec::new();
        for (d, kind) in &sorted {
            if let DayKind::Holiday { name } = kind {
                match periods.last_mut() {
                    Some(p) if p.name == *name && p.to.next_day() == Some(*d) => p.to = *d,
                    _ => periods.push(HolidayPeriod { name: name.clone(), from: *d, to: *d, makeup_workdays: Vec::new() }),
                }
            }
        }
        for (d, kind) in &sorted {
            if let DayKind::MakeUpWorkday { name } = kind {
                let distance = |p: &HolidayPeriod| {
                    if *d < p.from { (p.from - *d).whole_days() } else { (*d - p.to).whole_days() }
                };
                let named = periods.iter().enumerate().filter(|(_, p)| p.name == *name).min_by_key(|(_, p)| distance(p)).map(|(i, _)| i);
                let any = || periods.iter().enumerate().min_by_key(|(_, p)| distance(p)).map(|(i, _)| i);
                // With no holiday period at all in the year, the day stays in the stored overrides
                // (and in the calendar) but has no period to be listed under.
                if let Some(i) = named.or_else(any) {
                    periods[i].makeup_workdays.push(*d);
                }
            }
        }
        YearSchedule { year, source: source.to_string(), periods }
    }
}

/// Cumulative working-day counts of one year: `prefix[i]` is the number of working days among
/// the days of the year with ordinal `1..=i` (`prefix[0] == 0`).
#[derive(Clone)]
struct YearTable {
    prefix: [u16; 367],
    days: u16,
}

impl YearTable {
    fn build(year: i32, working: impl Fn(Date) -> bool) -> YearTable {
        let days = time::util::days_in_year(year);
        let mut prefix = [0u16; 367];
        for ord in 1..=days {
            let w = Date::from_ordinal_date(year, ord).map(&working).unwrap_or(false);
            prefix[ord as usize] = prefix[ord as usize - 1] + u16::from(w);
        }
        // Unused tail (365-day years) repeats the total so that searches stay monotone.
        for i in days as usize + 1..367 {
            prefix[i] = prefix[days as usize];
        }
        YearTable { prefix, days }
    }

    fn total(&self) -> u16 {
        self.prefix[self.days as usize]
    }

    fn is_working(&self, ordinal: u16) -> bool {
        let i = ordinal as usize;
        self.prefix[i] > self.prefix[i - 1]
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The 14 weekend-only year tables, by (weekday of 1 January, leap year).
fn weekend_table(year: i32) -> &'static YearTable {
    static TABLES: OnceLock<Vec<YearTable>> = OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        // 2017 starts on a Sunday; 2017..2045 covers every (weekday, leap) combination.
        let mut slots: Vec<Option<YearTable>> = vec![None; 14];
        for y in 2017..2045 {
            let i = slot(y);
            if slots[i].is_none() {
                slots[i] = Some(YearTable::build(y, |d| !is_weekend(d)));
            }
        }
        slots.into_iter().map(|t| t.unwrap_or_else(|| YearTable::build(2001, |d| !is_weekend(d)))).collect()
    });
    &tables[slot(year)]
}

fn slot(year: i32) -> usize {
    let jan1 = Date::from_calendar_date(year, Month::January, 1).map(|d| d.weekday().number_days_from_monday()).unwrap_or(0);
    jan1 as usize * 2 + usize::from(time::util::is_leap_year(year))
}

/// One stored year: the year, the source of its schedule, and its days that differ from the
/// weekend rule.
pub type StoredYear = (i32, String, Vec<(Date, DayKind)>);

/// A loaded year: its source, its changed days and its table.
#[derive(Clone)]
struct ScheduledYear {
    schedule: YearSchedule,
    overrides: BTreeMap<Date, DayKind>,
    table: YearTable,
}

/// The working-day calendar (工作日历): the loaded years' schedules plus the weekend rule.
/// Cheap to share behind an [`Arc`]; rebuilt whenever the stored calendar changes.
#[derive(Clone, Default)]
pub struct Calendar {
    years: BTreeMap<i32, Arc<ScheduledYear>>,
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar").field("years", &self.years.keys().collect::<Vec<_>>()).finish()
    }
}

impl Calendar {
    /// A calendar from year schedules. A later schedule of the same year replaces an earlier one;
    /// where periods overlap (the importer refuses that) the later period wins.
    pub fn new(schedules: impl IntoIterator<Item = YearSchedule>) -> Calendar {
        let mut cal = Calendar::default();
        for schedule in schedules {
            let days = schedule.overrides();
            cal.insert(schedule, days);
        }
        cal
    }

    /// A calendar from stored single-day overrides: `(year, source, days)` per year.
    pub fn from_overrides(years: impl IntoIterator<Item = StoredYear>) -> Calendar {
        let mut cal = Calendar::default();
        for (year, source, days) in years {
            let schedule = YearSchedule::from_overrides(year, &source, &days);
            cal.insert(schedule, days);
        }
        cal
    }

    fn insert(&mut self, schedule: YearSchedule, days: Vec<(Date, DayKind)>) {
        let year = schedule.year;
        let overrides: BTreeMap<Date, DayKind> = days
            .into_iter()
            .filter(|(d, k)| d.year() == year && matches!(k, DayKind::Holiday { .. } | DayKind::MakeUpWorkday { .. }))
            .collect();
        let table = YearTable::build(year, |d| match overrides.get(&d) {
            Some(k) => k.is_working(),
            None => !is_weekend(d),
        });
        self.years.insert(year, Arc::new(ScheduledYear { schedule, overrides, table }));
    }

    fn table(&self, year: i32) -> &YearTable {
        match self.years.get(&year) {
            Some(y) => &y.table,
            None => weekend_table(year),
        }
    }

    /// Whether `year` has a loaded schedule (otherwise it falls back to plain weekends).
    pub fn has_schedule(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The loaded years, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// The schedule of `year`, if loaded.
    pub fn schedule(&self, year: i32) -> Option<&YearSchedule> {
        self.years.get(&year).map(|y| &y.schedule)
    }

    /// The days of `year` that differ from the weekend rule, in date order.
    pub fn overrides(&self, year: i32) -> Vec<(Date, DayKind)> {
        self.years.get(&year).map(|y| y.overrides.iter().map(|(d, k)| (*d, k.clone())).collect()).unwrap_or_default()
    }

    /// What kind of day `date` is.
    pub fn kind(&self, date: Date) -> DayKind {
        if let Some(k) = self.years.get(&date.year()).and_then(|y| y.overrides.get(&date)) {
            return k.clone();
        }
        if is_weekend(date) { DayKind::Weekend } else { DayKind::Working }
    }

    /// Whether `date` is a working day (工作日), make-up working days included.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.table(date.year()).is_working(date.ordinal())
    }

    /// The number of working days `d` with `from < d <= to`; 0 when `to <= from`.
    pub fn working_days_between(&self, from: Date, to: Date) -> i64 {
        if to <= from {
            return 0;
        }
        let mut count = 0i64;
        for year in from.year()..=to.year() {
            let t = self.table(year);
            let lower = if year == from.year() { from.ordinal() as usize } else { 0 };
            let upper = if year == to.year() { to.ordinal() as usize } else { t.days as usize };
            count += i64::from(t.prefix[upper]) - i64::from(t.prefix[lower]);
        }
        count
    }

    /// The `n`th working day after `start` (the start day itself never counts: a time limit runs
    /// from the next day, 行政许可法 counting). `n == 0` answers `start`. `None` only past the
    /// last representable date.
    pub fn add_working_days(&self, start: Date, n: u32) -> Option<Date> {
        if n == 0 {
            return Some(start);
        }
        let mut remaining = n;
        let mut year = start.year();
        let mut lower = start.ordinal() as usize;
        loop {
            let t = self.table(year);
            let before = t.prefix[lower];
            let available = u32::from(t.total() - before);
            if remaining <= available {
                let target = before + remaining as u16;
                // The first ordinal whose cumulative count reaches the target.
                let ord = t.prefix[..=t.days as usize].partition_point(|&c| c < target);
                return Date::from_ordinal_date(year, ord as u16).ok();
            }
            remaining -= available;
            year += 1;
            lower = 0;
            if year > time::Date::MAX.year() {
                return None;
            }
        }
    }
}

/// A pause of a deadline clock (计时暂停): e.g. while the applicant supplements materials (补正),
/// during an expert review (专家评审), a hearing (听证), an inspection or a quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The day the clock stopped; this day does not count.
    #[serde(with = "date_serde")]
    pub from: Date,
    /// The day the clock runs again; this day counts. `None` while still paused.
    #[serde(with = "date_serde::option", default)]
    pub resume: Option<Date>,
    /// Why, e.g. 补正.
    pub reason: String,
}

/// An extension of the time limit (延期), in working days, e.g. approved by the head of the office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Extra working days.
    pub days: u32,
    /// Why, and on whose approval.
    pub reason: String,
}

/// What a deadline clock refuses (计时操作错误).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The clock is paused already.
    #[error("the clock is already paused")]
    AlreadyPaused,
    /// There is no open pause to end.
    #[error("the clock is not paused")]
    NotPaused,
    /// A resume date before the pause date.
    #[error("resume date {resume} is before the pause date {pause}")]
    ResumeBeforePause {
        /// The open pause's first day.
        pause: Date,
        /// The refused resume date.
        resume: Date,
    },
    /// A pause before the start date, or before the end of an earlier pause.
    #[error("pause date {date} is before {earliest}")]
    PauseTooEarly {
        /// The refused date.
        date: Date,
        /// The earliest date allowed.
        earliest: Date,
    },
    /// An extension of zero days.
    #[error("an extension must add at least one working day")]
    ZeroExtension,
    /// A pause or extension without a reason.
    #[error("a reason is required")]
    EmptyReason,
}

/// The time-limit clock of one case (办理时限时钟): a limit in working days counted from the day
/// after `start`, minus paused days, plus extensions.
///
/// # Counting rule
/// A working day `d` counts when `d > start` and `d` lies in no pause interval
/// `[pause.from, pause.resume)`: the day the clock is paused does not count, the day it resumes
/// does. The due date (办理期限) is the day on which the `limit + extensions`th counted working day
/// falls. Pauses that begin after that day do not move it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineClock {
    /// The day the case was accepted (受理日); counting starts the next day.
    #[serde(with = "date_serde")]
    pub start: Date,
    /// The time limit in working days (承诺/法定时限).
    pub working_days: u32,
    /// Pauses in date order; only the last one may be open.
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// Extensions granted.
    #[serde(default)]
    pub extensions: Vec<Extension>,
}

impl DeadlineClock {
    /// A clock of `working_days` working days starting the day after `start`.
    pub fn new(start: Date, working_days: u32) -> DeadlineClock {
        DeadlineClock { start, working_days, pauses: Vec::new(), extensions: Vec::new() }
    }

    /// Whether the clock is paused now (an open pause).
    pub fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.resume.is_none())
    }

    /// The limit plus every extension.
    pub fn total_working_days(&self) -> u64 {
        u64::from(self.working_days) + self.extensions.iter().map(|e| u64::from(e.days)).sum::<u64>()
    }

    /// Stops the clock on `date` (that day does not count).
    pub fn pause(&mut self, date: Date, reason: &str) -> Result<(), ClockError> {
        if self.is_paused() {
            return Err(ClockError::AlreadyPaused);
        }
        if reason.trim().is_empty() {
            return Err(ClockError::EmptyReason);
        }
        let earliest = self.pauses.last().and_then(|p| p.resume).unwrap_or(self.start).max(self.start);
        if date < earliest {
            return Err(ClockError::PauseTooEarly { date, earliest });
        }
        self.pauses.push(Pause { from: date, resume: None, reason: reason.trim().to_string() });
        Ok(())
    }

    /// Restarts the clock on `date` (that day counts).
    pub fn resume(&mut self, date: Date) -> Result<(), ClockError> {
        let Some(open) = self.pauses.last_mut().filter(|p| p.resume.is_none()) else {
            return Err(ClockError::NotPaused);
        };
        if date < open.from {
            return Err(ClockError::ResumeBeforePause { pause: open.from, resume: date });
        }
        open.resume = Some(date);
        Ok(())
    }

    /// Adds `days` working days to the limit (延期).
    pub fn extend(&mut self, days: u32, reason: &str) -> Result<(), ClockError> {
        if days == 0 {
            return Err(ClockError::ZeroExtension);
        }
        if reason.trim().is_empty() {
            return Err(ClockError::EmptyReason);
        }
        self.extensions.push(Extension { days, reason: reason.trim().to_string() });
        Ok(())
    }

    /// The due date (办理期限); `None` while paused (or past the last representable date).
    pub fn due_date(&self, calendar: &Calendar) -> Option<Date> {
        if self.is_paused() {
            return None;
        }
        let mut remaining = self.total_working_days();
        // `cursor`: counting continues with the days after it.
        let mut cursor = self.start;
        for p in &self.pauses {
            let resume = p.resume?;
            if p.from > cursor {
                let last_counted = p.from.previous_day()?;
                let available = calendar.working_days_between(cursor, last_counted) as u64;
                if remaining <= available {
                    break;
                }
                remaining -= available;
            }
            cursor = cursor.max(resume.previous_day()?);
        }
        calendar.add_working_days(cursor, u32::try_from(remaining).ok()?)
    }

    /// Counted working days in `(from, to]`, pause intervals left out.
    fn counted_between(&self, calendar: &Calendar, from: Date, to: Date) -> i64 {
        let mut n = calendar.working_days_between(from, to);
        for p in &self.pauses {
            // Paused days are [p.from, resume), i.e. (p.from - 1, resume - 1].
            let (Some(lo), Some(hi)) = (p.from.previous_day(), p.resume.and_then(|r| r.previous_day())) else {
                continue;
            };
            let lo = lo.max(from);
            let hi = hi.min(to);
            n -= calendar.working_days_between(lo, hi);
        }
        n
    }

    /// Working days left on `today`: counted working days after `today` up to the due date, so 0
    /// on the due date itself. Negative when overdue: minus the working days elapsed since the
    /// due date, and at least -1 on any day after it (a weekend after the due date is overdue too).
    /// `None` while paused.
    pub fn remaining_working_days(&self, calendar: &Calendar, today: Date) -> Option<i64> {
        let due = self.due_date(calendar)?;
        if today <= due {
            Some(self.counted_between(calendar, today, due))
        } else {
            Some(-calendar.working_days_between(due, today).max(1))
        }
    }
}

/// `YYYY-MM-DD` formatting and parsing of dates.
pub mod date_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::{Date, macros::format_description};

    /// Formats a date as `YYYY-MM-DD`.
    pub fn format(d: Date) -> String {
        let fmt = format_description!("[year]-[month]-[day]");
        d.format(&fmt).unwrap_or_default()
    }

    /// Parses `YYYY-MM-DD` (surrounding spaces allowed).
    pub fn parse(s: &str) -> Option<Date> {
        let fmt = format_description!("[year]-[month]-[day]");
        Date::parse(s.trim(), &fmt).ok()
    }

    /// Serialises as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Deserialises `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom("expected a date YYYY-MM-DD"))
    }

    /// For `Option<Date>`.
    pub mod option {
        use super::*;

        /// Serialises `Some` as `YYYY-MM-DD`, `None` as null.
        pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&format(*d)),
                None => s.serialize_none(),
            }
        }

        /// Deserialises null or `YYYY-MM-DD`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => parse(&s).map(Some).ok_or_else(|| serde::de::Error::custom("expected a date YYYY-MM-DD")),
                None => Ok(None),
            }
        }
    }

    /// For `Vec<Date>`.
    pub mod vec {
        use super::*;

        /// Serialises a list of `YYYY-MM-DD`.
        pub fn serialize<S: Serializer>(d: &[Date], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(d.iter().map(|d| format(*d)))
        }

        /// Deserialises a list of `YYYY-MM-DD`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Date>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|s| parse(s).ok_or_else(|| serde::de::Error::custom("expected a date YYYY-MM-DD")))
                .collect()
        }
    }
}
