//! The calendar slice (工作日历): public holidays and make-up working days (法定节假日、调休),
//! deadlines counted in working days (按工作日计算的办理时限) with pauses and extensions, the
//! schedule import format, and the stored calendar with its use cases.
//!
//! [`model`] is pure logic; [`import`] parses and checks schedule files; [`CalendarService`]
//! stores the calendar, keeps it cached in memory and audits every change.

pub mod import;
pub mod model;
mod service;

pub use import::{ImportError, Problem, official_schedules, parse_schedule, to_toml};
pub use model::{Calendar, ClockError, DayKind, DeadlineClock, Extension, HolidayPeriod, Pause, StoredYear, YearSchedule, date_serde};
pub use service::{CalendarService, DayEdit, ImportRefusal, REFRESH_AFTER, YearInfo};
#[cfg(test)]
mod tests;
