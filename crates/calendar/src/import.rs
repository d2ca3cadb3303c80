//! The schedule file format (节假日安排导入格式): one year per TOML file, the same format as the
//! official data in `data/` and the administrator's import.
//!
//! ```toml
//! year = 2026
//! source = "《国务院办公厅关于2026年部分节假日安排的通知》"
//! [[period]]
//! name = "春节"
//! from = 2026-02-15
//! to = 2026-02-23
//! makeup_workdays = [2026-02-14, 2026-02-28]
//! ```
//!
//! A file is accepted whole or refused whole: [`parse_schedule`] answers the first problem with
//! the period (index and name), the field and, where known, the line.

use std::{collections::HashMap, fmt, ops::Range};

use serde::Deserialize;
use time::{Date, Month, Weekday};
use toml::{Spanned, value::Datetime};

use crate::model::{HolidayPeriod, YearSchedule, date_serde};

/// The years a schedule may be for.
pub const YEARS: std::ops::RangeInclusive<i64> = 1949..=2100;

/// The longest holiday name accepted, in characters.
const MAX_NAME: usize = 64;

/// What is wrong with a schedule file (导入错误类型).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not valid TOML, a missing or unknown key, or a value of the wrong type; toml's message.
    Syntax(String),
    /// A date with a time or offset, or not a date at all.
    NotADate,
    /// `year` outside 1949–2100.
    YearOutOfRange,
    /// `source` is empty.
    EmptySource,
    /// The file has no `[[period]]`.
    NoPeriods,
    /// A period without a name.
    EmptyName,
    /// A name longer than 64 characters.
    NameTooLong,
    /// `from` is after `to`.
    FromAfterTo,
    /// A date outside the file's `year`.
    OutsideYear,
    /// Two periods share days.
    Overlap {
        /// Index of the other period.
        other: usize,
        /// Name of the other period.
        other_name: String,
    },
    /// A make-up working day falls on a day off of some period.
    MakeupInHoliday {
        /// The day.
        date: Date,
        /// The period it falls in.
        holiday: String,
    },
    /// The same make-up working day is listed twice.
    DuplicateMakeup {
        /// The day.
        date: Date,
    },
    /// A make-up working day that is Monday–Friday (it must be a Saturday or Sunday).
    MakeupOnWeekday {
        /// The day.
        date: Date,
    },
}

/// A refused schedule file (导入错误): the problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// What is wrong.
    pub problem: Problem,
    /// Index (from 0) of the `[[period]]` at fault, if any.
    pub period: Option<usize>,
    /// Name of that period, when it has one.
    pub period_name: Option<String>,
    /// The key at fault: `year`, `source`, `name`, `from`, `to`, `makeup_workdays`, or `toml`.
    pub field: String,
    /// Line (from 1), where known.
    pub line: Option<usize>,
}

impl ImportError {
    /// The field as a path, as the API reports it: `period[2].makeup_workdays`, `year`, `toml`.
    pub fn field_path(&self) -> String {
        match self.period {
            Some(i) if self.field.is_empty() => format!("period[{i}]"),
            Some(i) => format!("period[{i}].{}", self.field),
            None => self.field.clone(),
        }
    }

    /// The i18n key of the problem (`calendar.error.*`).
    pub fn message_key(&self) -> &'static str {
        match self.problem {
            Problem::Syntax(_) => "calendar.error.syntax",
            Problem::NotADate => "calendar.error.not_a_date",
            Problem::YearOutOfRange => "calendar.error.year_range",
            Problem::EmptySource => "calendar.error.empty_source",
            Problem::NoPeriods => "calendar.error.no_periods",
            Problem::EmptyName => "calendar.error.empty_name",
            Problem::NameTooLong => "calendar.error.name_too_long",
            Problem::FromAfterTo => "calendar.error.from_after_to",
            Problem::OutsideYear => "calendar.error.outside_year",
            Problem::Overlap { .. } => "calendar.error.overlap",
            Problem::MakeupInHoliday { .. } => "calendar.error.makeup_in_holiday",
            Problem::DuplicateMakeup { .. } => "calendar.error.duplicate_makeup",
            Problem::MakeupOnWeekday { .. } => "calendar.error.makeup_on_weekday",
        }
    }

    /// Facts that complete the message: the other period, the date, or toml's own message.
    pub fn detail(&self) -> String {
        match &self.problem {
            Problem::Syntax(m) => m.clone(),
            Problem::Overlap { other, other_name } => format!("period[{other}] {other_name}"),
            Problem::MakeupInHoliday { date, holiday } => format!("{} ({holiday})", date_serde::format(*date)),
            Problem::DuplicateMakeup { date } | Problem::MakeupOnWeekday { date } => date_serde::format(*date),
            _ => String::new(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}", self.field_path())?;
        if let Some(name) = &self.period_name {
            write!(f, " ({name})")?;
        }
        write!(f, ": {:?}", self.problem)
    }
}

impl std::error::Error for ImportError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    year: Spanned<i64>,
    source: Spanned<String>,
    #[serde(default)]
    period: Vec<RawPeriod>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    name: Spanned<String>,
    from: Spanned<Datetime>,
    to: Spanned<Datetime>,
    #[serde(default)]
    makeup_workdays: Vec<Spanned<Datetime>>,
}

/// Line (from 1) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Byte offset of the start of the line holding `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0)
}

/// The `[[period]]` (index from 0) that a byte offset falls in, by counting headers before it.
fn period_at(text: &str, offset: usize) -> Option<usize> {
    let end = offset.min(text.len());
    let mut count = 0usize;
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        if pos > end {
            break;
        }
        if line.trim_start().starts_with("[[period]]") && pos <= end {
            count += 1;
        }
        pos += line.len();
    }
    count.checked_sub(1)
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ImportError {
    let message = e.message().trim().to_string();
    let span: Option<Range<usize>> = e.span();
    let is_key = |f: &&str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // serde names a missing or unknown key between backticks; a bad value sits on its key's line.
    let on_line = span.as_ref().and_then(|s| text.get(line_start(text, s.start)..)).and_then(|l| l.split('=').next()).map(str::trim);
    let field = message.split('`').nth(1).filter(is_key).or(on_line.filter(|_| !message.contains('`')).filter(is_key)).unwrap_or("toml");
    let period = span.as_ref().and_then(|s| period_at(text, s.start));
    ImportError {
        problem: Problem::Syntax(message.clone()),
        period,
        period_name: None,
        field: field.to_string(),
        line: span.map(|s| line_of(text, s.start)),
    }
}

/// A TOML local date (no time, no offset) as a date.
fn to_date(dt: &Datetime) -> Option<Date> {
    if dt.time.is_some() || dt.offset.is_some() {
        return None;
    }
    let d = dt.date?;
    Date::from_calendar_date(i32::from(d.year), Month::try_from(d.month).ok()?, d.day).ok()
}

struct Checker<'a> {
    text: &'a str,
}

impl Checker<'_> {
    fn at(&self, problem: Problem, period: Option<(usize, &str)>, field: &str, span: Range<usize>) -> ImportError {
        ImportError {
            problem,
            period: period.map(|p| p.0),
            period_name: period.map(|p| p.1.to_string()).filter(|n| !n.is_empty()),
            field: field.to_string(),
            line: Some(line_of(self.text, span.start)),
        }
    }
}

/// Parses and checks one year's schedule. The whole file is refused on the first problem.
pub fn parse_schedule(text: &str) -> Result<YearSchedule, ImportError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
    let c = Checker { text };
    let year = *raw.year.get_ref();
    if !YEARS.contains(&year) {
        return Err(c.at(Problem::YearOutOfRange, None, "year", raw.year.span()));
    }
    let year = year as i32;
    let source = raw.source.get_ref().trim().to_string();
    if source.is_empty() {
        return Err(c.at(Problem::EmptySource, None, "source", raw.source.span()));
    }
    if raw.period.is_empty() {
        return Err(ImportError { problem: Problem::NoPeriods, period: None, period_name: None, field: "period".into(), line: None });
    }
    // Per period: (index, name, from, to, make-up days with their spans), first in file order.
    let mut periods: Vec<(usize, HolidayPeriod, Range<usize>)> = Vec::new();
    let mut makeups: Vec<(usize, Date, Range<usize>)> = Vec::new();
    let mut seen: HashMap<Date, usize> = HashMap::new();
    for (i, p) in raw.period.iter().enumerate() {
        let name = p.name.get_ref().trim().to_string();
        let here = Some((i, name.as_str()));
        if name.is_empty() {
            return Err(c.at(Problem::EmptyName, here, "name", p.name.span()));
        }
        if name.chars().count() > MAX_NAME {
            return Err(c.at(Problem::NameTooLong, here, "name", p.name.span()));
        }
        let date = |field: &str, v: &Spanned<Datetime>| -> Result<Date, ImportError> {
            let d = to_date(v.get_ref()).ok_or_else(|| c.at(Problem::NotADate, here, field, v.span()))?;
            if d.year() != year {
                return Err(c.at(Problem::OutsideYear, here, field, v.span()));
            }
            Ok(d)
        };
        let from = date("from", &p.from)?;
        let to = date("to", &p.to)?;
        if from > to {
            return Err(c.at(Problem::FromAfterTo, here, "to", p.to.span()));
        }
        let mut makeup_workdays = Vec::new();
        for m in &p.makeup_workdays {
            let d = date("makeup_workdays", m)?;
            if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(c.at(Problem::MakeupOnWeekday { date: d }, here, "makeup_workdays", m.span()));
            }
            if seen.insert(d, i).is_some() {
                return Err(c.at(Problem::DuplicateMakeup { date: d }, here, "makeup_workdays", m.span()));
            }
            makeup_workdays.push(d);
            makeups.push((i, d, m.span()));
        }
        let span = p.name.span();
        periods.push((i, HolidayPeriod { name, from, to, makeup_workdays }, span));
    }
    // Overlaps: after sorting by first day, a period overlaps another exactly when it overlaps a
    // neighbour. The later one in the file is blamed.
    let mut order: Vec<usize> = (0..periods.len()).collect();
    order.sort_by_key(|&k| (periods[k].1.from, periods[k].0));
    for w in order.windows(2) {
        let (a, b) = (&periods[w[0]], &periods[w[1]]);
        if b.1.from <= a.1.to {
            let (blamed, other) = if a.0 > b.0 { (a, b) } else { (b, a) };
            let problem = Problem::Overlap { other: other.0, other_name: other.1.name.clone() };
            let field = if blamed.1.from >= other.1.from { "from" } else { "to" };
            let span = if field == "from" { raw.period[blamed.0].from.span() } else { raw.period[blamed.0].to.span() };
            return Err(c.at(problem, Some((blamed.0, &blamed.1.name)), field, span));
        }
    }
    for (i, d, span) in &makeups {
        if let Some((_, h, _)) = periods.iter().find(|(_, h, _)| h.from <= *d && *d <= h.to) {
            let problem = Problem::MakeupInHoliday { date: *d, holiday: h.name.clone() };
            return Err(c.at(problem, Some((*i, &periods[*i].1.name)), "makeup_workdays", span.clone()));
        }
    }
    let mut out: Vec<HolidayPeriod> = periods.into_iter().map(|(_, p, _)| p).collect();
    out.sort_by_key(|p| p.from);
    Ok(YearSchedule { year, source, periods: out })
}

/// Writes a schedule in the import format (for editing and re-importing).
pub fn to_toml(s: &YearSchedule) -> String {
    let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
    let mut out = format!("year = {}\nsource = {}\n", s.year, quote(&s.source));
    for p in &s.periods {
        out.push_str(&format!(
            "\n[[period]]\nname = {}\nfrom = {}\nto = {}\n",
            quote(&p.name),
            date_serde::format(p.from),
            date_serde::format(p.to)
        ));
        if !p.makeup_workdays.is_empty() {
            let days: Vec<String> = p.makeup_workdays.iter().map(|d| date_serde::format(*d)).collect();
            out.push_str(&format!("makeup_workdays = [{}]\n", days.join(", ")));
        }
    }
    out
}

/// The official schedules shipped with tongban (`data/*.toml`), as (year, file text).
pub const OFFICIAL: &[(i32, &str)] = &[(2025, include_str!("../data/2025.toml")), (2026, include_str!("../data/2026.toml"))];

/// The official schedules, parsed. A shipped file that fails to parse is a build defect caught by
/// the tests; it is skipped (and logged) rather than stopping the program.
pub fn official_schedules() -> Vec<YearSchedule> {
    OFFICIAL
        .iter()
        .filter_map(|(year, text)| match parse_schedule(text) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(year, "the shipped holiday schedule does not parse: {e}");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const GOOD: &str = r#"year = 2026
source = "test notice"

[[period]]
name = "春节"
from = 2026-02-15
to = 2026-02-23
makeup_workdays = [2026-02-14, 2026-02-28]

[[period]]
name = "清明节"
from = 2026-04-04
to = 2026-04-06
"#;

    fn refused(text: &str) -> ImportError {
        match parse_schedule(text) {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_good_file_parses_and_round_trips() {
        let s = parse_schedule(GOOD).unwrap();
        assert_eq!(s.year, 2026);
        assert_eq!(s.periods.len(), 2);
        assert_eq!(s.periods[0].makeup_workdays, vec![date!(2026 - 02 - 14), date!(2026 - 02 - 28)]);
        assert_eq!(parse_schedule(&to_toml(&s)).unwrap(), s);
    }

    #[test]
    fn the_shipped_files_parse() {
        assert_eq!(official_schedules().len(), OFFICIAL.len());
        for s in official_schedules() {
            assert!(s.source.contains("国务院办公厅") && s.source.contains(&s.year.to_string()), "{}", s.source);
        }
    }

    #[test]
    fn malformed_toml_and_dates_are_refused_with_a_line() {
        let e = refused("year = 2026\nsource = \"x\"\n[[period]\nname = \"a\"");
        assert!(matches!(e.problem, Problem::Syntax(_)));
        assert_eq!(e.line, Some(3));
        let e = refused(&GOOD.replace("to = 2026-02-23", "to = 2026-02-30"));
        assert!(matches!(e.problem, Problem::Syntax(_)), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        let e = refused(&GOOD.replace("to = 2026-04-06", "to = \"2026-04-06\""));
        assert!(matches!(e.problem, Problem::Syntax(_)), "{e}");
        assert_eq!((e.field_path(), e.line), ("period[1].to".into(), Some(13)), "{e}");
        let e = refused(&GOOD.replace("from = 2026-04-04", "from = 2026-04-04T08:00:00"));
        assert_eq!((e.problem.clone(), e.field_path(), e.line), (Problem::NotADate, "period[1].from".into(), Some(12)));
        let e = refused(&GOOD.replace("to = 2026-04-06", "too = 2026-04-06"));
        assert_eq!((e.field_path(), e.line.is_some()), ("period[1].too".into(), true), "{e}");
        let e = refused("year = 2026\n[[period]]\nname = \"a\"\nfrom = 2026-01-01\nto = 2026-01-01\n");
        assert_eq!(e.field, "source", "{e}");
    }

    #[test]
    fn each_rule_names_the_period_and_field() {
        let e = refused(&GOOD.replace("from = 2026-02-15", "from = 2026-02-25"));
        assert_eq!(
            (e.problem.clone(), e.field_path(), e.period_name.as_deref()),
            (Problem::FromAfterTo, "period[0].to".into(), Some("春节"))
        );
        let e = refused(&GOOD.replace("to = 2026-04-06", "to = 2027-04-06"));
        assert_eq!((e.problem.clone(), e.field_path()), (Problem::OutsideYear, "period[1].to".into()));
        let e = refused(&GOOD.replace("from = 2026-04-04", "from = 2026-02-20"));
        assert_eq!(e.problem, Problem::Overlap { other: 0, other_name: "春节".into() });
        assert_eq!((e.field_path(), e.line), ("period[1].from".into(), Some(12)));
        let e = refused(&GOOD.replace("2026-02-28]", "2026-02-28, 2026-04-04]"));
        assert_eq!(e.problem, Problem::MakeupInHoliday { date: date!(2026 - 04 - 04), holiday: "清明节".into() });
        assert_eq!(e.field_path(), "period[0].makeup_workdays");
        let e = refused(&GOOD.replace("2026-02-28]", "2026-02-28, 2026-02-14]"));
        assert_eq!(e.problem, Problem::DuplicateMakeup { date: date!(2026 - 02 - 14) });
        let e = refused(&GOOD.replace("2026-02-28]", "2026-03-02]"));
        assert_eq!(e.problem, Problem::MakeupOnWeekday { date: date!(2026 - 03 - 02) });
        assert_eq!(e.line, Some(8));
        let e = refused(&GOOD.replace("name = \"清明节\"", "name = \"  \""));
        assert_eq!((e.problem.clone(), e.field_path()), (Problem::EmptyName, "period[1].name".into()));
        let e = refused(&GOOD.replace("year = 2026", "year = 1800"));
        assert_eq!((e.problem.clone(), e.field_path(), e.line), (Problem::YearOutOfRange, "year".into(), Some(1)));
        let e = refused(&GOOD.replace("source = \"test notice\"", "source = \"\""));
        assert_eq!(e.problem, Problem::EmptySource);
        let e = refused("year = 2026\nsource = \"x\"\n");
        assert_eq!(e.problem, Problem::NoPeriods);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = parse_schedule(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_schedule(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn mutated_good_files_never_panic(pos in 0usize..400, insert in "[\\[\\]=\"0-9a-z\\-, \n]{0,12}", cut in 0usize..20) {
            let mut text = GOOD.to_string();
            let mut at = pos.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + cut).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(at..end, &insert);
            if let Err(e) = parse_schedule(&text) {
                prop_assert!(!e.message_key().is_empty());
                prop_assert!(e.line.is_none_or(|l| l >= 1 && l <= text.lines().count() + 1));
            }
        }

        #[test]
        fn generated_schedules_round_trip(ranges in proptest::collection::vec((1u16..=360, 0u16..5), 1..6)) {
            // Non-overlapping periods by construction: keep those that do not collide.
            let mut periods: Vec<HolidayPeriod> = Vec::new();
            for (k, (start, len)) in ranges.into_iter().enumerate() {
                let from = Date::from_ordinal_date(2026, start).unwrap();
                let to = Date::from_ordinal_date(2026, (start + len).min(365)).unwrap();
                if periods.iter().all(|p| to < p.from || from > p.to) {
                    periods.push(HolidayPeriod { name: format!("假期{k}"), from, to, makeup_workdays: vec![] });
                }
            }
            periods.sort_by_key(|p| p.from);
            let s = YearSchedule { year: 2026, source: "gen".into(), periods };
            prop_assert_eq!(parse_schedule(&to_toml(&s)).unwrap(), s);
        }
    }
}
