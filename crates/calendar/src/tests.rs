//! Tests of the calendar model against the State Council notices, typed in here independently of
//! the shipped data files.

use proptest::prelude::*;
use time::{Date, Duration, Weekday, macros::date};

use crate::{
    import::official_schedules,
    model::{Calendar, ClockError, DayKind, DeadlineClock, HolidayPeriod, YearSchedule},
};

/// Days off per the notices: (first, last, name).
const HOLIDAYS: &[(Date, Date, &str)] = &[
    // 国办发明电〔2024〕12号
    (date!(2025 - 01 - 01), date!(2025 - 01 - 01), "元旦"),
    (date!(2025 - 01 - 28), date!(2025 - 02 - 04), "春节"),
    (date!(2025 - 04 - 04), date!(2025 - 04 - 06), "清明节"),
    (date!(2025 - 05 - 01), date!(2025 - 05 - 05), "劳动节"),
    (date!(2025 - 05 - 31), date!(2025 - 06 - 02), "端午节"),
    (date!(2025 - 10 - 01), date!(2025 - 10 - 08), "国庆节、中秋节"),
    // 2026 notice (2025-11-04)
    (date!(2026 - 01 - 01), date!(2026 - 01 - 03), "元旦"),
    (date!(2026 - 02 - 15), date!(2026 - 02 - 23), "春节"),
    (date!(2026 - 04 - 04), date!(2026 - 04 - 06), "清明节"),
    (date!(2026 - 05 - 01), date!(2026 - 05 - 05), "劳动节"),
    (date!(2026 - 06 - 19), date!(2026 - 06 - 21), "端午节"),
    (date!(2026 - 09 - 25), date!(2026 - 09 - 27), "中秋节"),
    (date!(2026 - 10 - 01), date!(2026 - 10 - 07), "国庆节"),
];

/// Weekend days worked per the notices (调休上班).
const MAKEUP: &[(Date, &str)] = &[
    (date!(2025 - 01 - 26), "春节"),
    (date!(2025 - 02 - 08), "春节"),
    (date!(2025 - 04 - 27), "劳动节"),
    (date!(2025 - 09 - 28), "国庆节、中秋节"),
    (date!(2025 - 10 - 11), "国庆节、中秋节"),
    (date!(2026 - 01 - 04), "元旦"),
    (date!(2026 - 02 - 14), "春节"),
    (date!(2026 - 02 - 28), "春节"),
    (date!(2026 - 05 - 09), "劳动节"),
    (date!(2026 - 09 - 20), "国庆节"),
    (date!(2026 - 10 - 10), "国庆节"),
];

fn official() -> Calendar {
    Calendar::new(official_schedules())
}

fn expected(d: Date) -> DayKind {
    if let Some((_, _, name)) = HOLIDAYS.iter().find(|(a, b, _)| *a <= d && d <= *b) {
        return DayKind::Holiday { name: name.to_string() };
    }
    if let Some((_, name)) = MAKEUP.iter().find(|(m, _)| *m == d) {
        return DayKind::MakeUpWorkday { name: name.to_string() };
    }
    if matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) { DayKind::Weekend } else { DayKind::Working }
}

#[test]
fn every_day_of_2025_and_2026_is_classified_as_the_notices_say() {
    let cal = official();
    let mut d = date!(2025 - 01 - 01);
    let mut days = 0;
    let mut working = [0i64; 2];
    while d.year() <= 2026 {
        let want = expected(d);
        assert_eq!(cal.kind(d), want, "{d}");
        assert_eq!(cal.is_working_day(d), want.is_working(), "{d}");
        if want.is_working() {
            working[(d.year() - 2025) as usize] += 1;
        }
        days += 1;
        d = d.next_day().unwrap();
    }
    assert_eq!(days, 730);
    // 261 weekdays in 2025, 18 of them off, 5 make-up days: 248. 2026: 261 − 19 + 6 = 248.
    assert_eq!(working, [248, 248]);
    assert_eq!(cal.working_days_between(date!(2024 - 12 - 31), date!(2025 - 12 - 31)), 248);
    assert_eq!(cal.working_days_between(date!(2025 - 12 - 31), date!(2026 - 12 - 31)), 248);
    assert!(cal.has_schedule(2025) && cal.has_schedule(2026) && !cal.has_schedule(2027));
}

#[test]
fn a_holiday_on_a_weekend_is_a_holiday() {
    let cal = official();
    assert_eq!(date!(2026 - 02 - 15).weekday(), Weekday::Sunday);
    assert_eq!(cal.kind(date!(2026 - 02 - 15)), DayKind::Holiday { name: "春节".into() });
    assert_eq!(cal.kind(date!(2026 - 02 - 14)), DayKind::MakeUpWorkday { name: "春节".into() });
}

#[test]
fn twenty_working_days_across_the_2026_spring_festival() {
    // Accepted Tue 2026-02-10. Counting from the next day: Feb 11, 12, 13 (1–3), Sat Feb 14
    // make-up day (4); Feb 15–23 off; Feb 24, 25, 26, 27 (5–8), Sat Feb 28 make-up day (9);
    // Mar 2–6 (10–14), Mar 9–13 (15–19), Mon Mar 16 (20).
    let cal = official();
    assert_eq!(cal.add_working_days(date!(2026 - 02 - 10), 20), Some(date!(2026 - 03 - 16)));
    assert_eq!(cal.working_days_between(date!(2026 - 02 - 10), date!(2026 - 03 - 16)), 20);
    // With weekends only (no schedule) the same limit would end on Tue Mar 10.
    assert_eq!(Calendar::default().add_working_days(date!(2026 - 02 - 10), 20), Some(date!(2026 - 03 - 10)));
}

#[test]
fn twenty_working_days_across_the_2026_national_day() {
    // Accepted Fri 2026-09-18. Sun Sep 20 make-up day (1), Sep 21–24 (2–5), Sep 25–27 off
    // (中秋节), Sep 28–30 (6–8), Oct 1–7 off, Oct 8, 9 (9, 10), Sat Oct 10 make-up day (11),
    // Oct 12–16 (12–16), Oct 19–22 (17–20): due Thu Oct 22.
    let cal = official();
    assert_eq!(cal.add_working_days(date!(2026 - 09 - 18), 20), Some(date!(2026 - 10 - 22)));
}

#[test]
fn the_start_day_never_counts() {
    let cal = official();
    // A Monday start: the first working day is Tuesday.
    assert_eq!(cal.add_working_days(date!(2026 - 03 - 02), 1), Some(date!(2026 - 03 - 03)));
    // Starting on a holiday: the next working day.
    assert_eq!(cal.add_working_days(date!(2026 - 02 - 16), 1), Some(date!(2026 - 02 - 24)));
    assert_eq!(cal.add_working_days(date!(2026 - 02 - 16), 0), Some(date!(2026 - 02 - 16)));
}

#[test]
fn working_days_between_counts_after_from_up_to_to() {
    let cal = official();
    assert_eq!(cal.working_days_between(date!(2026 - 03 - 02), date!(2026 - 03 - 02)), 0);
    assert_eq!(cal.working_days_between(date!(2026 - 03 - 06), date!(2026 - 03 - 02)), 0);
    assert_eq!(cal.working_days_between(date!(2026 - 03 - 02), date!(2026 - 03 - 03)), 1);
    // Fri to Mon: only Monday.
    assert_eq!(cal.working_days_between(date!(2026 - 03 - 06), date!(2026 - 03 - 09)), 1);
    // The whole National Day week, make-up Saturday included: Sep 30 → Oct 12 = Oct 8, 9, 10, 12.
    assert_eq!(cal.working_days_between(date!(2026 - 09 - 30), date!(2026 - 10 - 12)), 4);
    // Across years, one of them without a schedule (weekends only).
    let a = cal.working_days_between(date!(2026 - 12 - 01), date!(2027 - 01 - 31));
    assert_eq!(a, 22 + 21);
}

#[test]
fn years_without_a_schedule_fall_back_to_weekends() {
    let cal = official();
    assert_eq!(cal.kind(date!(2027 - 01 - 01)), DayKind::Working, "no 2027 schedule: 元旦 unknown");
    assert_eq!(cal.kind(date!(2027 - 01 - 02)), DayKind::Weekend);
    assert_eq!(cal.working_days_between(date!(2030 - 12 - 31), date!(2031 - 12 - 31)), 261);
    assert_eq!(cal.add_working_days(date!(2031 - 01 - 03), 1), Some(date!(2031 - 01 - 06)));
}

#[test]
fn schedules_rebuild_from_their_days() {
    for s in official_schedules() {
        let rebuilt = YearSchedule::from_overrides(s.year, &s.source, &s.overrides());
        assert_eq!(rebuilt, s);
    }
    let cal = Calendar::from_overrides(official_schedules().into_iter().map(|s| (s.year, s.source.clone(), s.overrides())));
    let mut d = date!(2025 - 01 - 01);
    while d.year() <= 2026 {
        assert_eq!(cal.kind(d), expected(d));
        d = d.next_day().unwrap();
    }
}

#[test]
fn a_pause_stops_the_clock_from_its_day_until_the_resume_day() {
    let cal = official();
    // 10 working days from Mon 2026-03-02; without a pause: Mon Mar 16.
    let mut clock = DeadlineClock::new(date!(2026 - 03 - 02), 10);
    assert_eq!(clock.due_date(&cal), Some(date!(2026 - 03 - 16)));
    // Paused Thu Mar 5 (补正), resumed Tue Mar 10. Counted: Mar 3, 4 (1, 2); Mar 5, 6, 9 do not
    // count; Mar 10 counts (3), Mar 11–13 (4–6), Mar 16–19 (7–10): due Thu Mar 19.
    clock.pause(date!(2026 - 03 - 05), "补正").unwrap();
    assert_eq!(clock.due_date(&cal), None, "no due date while paused");
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 06)), None);
    assert_eq!(clock.pause(date!(2026 - 03 - 06), "again"), Err(ClockError::AlreadyPaused));
    assert_eq!(
        clock.resume(date!(2026 - 03 - 04)),
        Err(ClockError::ResumeBeforePause { pause: date!(2026 - 03 - 05), resume: date!(2026 - 03 - 04) })
    );
    clock.resume(date!(2026 - 03 - 10)).unwrap();
    assert_eq!(clock.resume(date!(2026 - 03 - 11)), Err(ClockError::NotPaused));
    assert_eq!(clock.due_date(&cal), Some(date!(2026 - 03 - 19)));
    // Remaining on Mar 10: Mar 11, 12, 13, 16, 17, 18, 19.
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 10)), Some(7));
    // Remaining on Mar 4 (before the pause): Mar 10 … Mar 19 = 8; the paused days are left out.
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 04)), Some(8));
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 19)), Some(0));
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 20)), Some(-1));
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 21)), Some(-1), "a Saturday after the due date is overdue");
    assert_eq!(clock.remaining_working_days(&cal, date!(2026 - 03 - 24)), Some(-3));
    // A pause must not begin before the last resume.
    assert!(matches!(clock.pause(date!(2026 - 03 - 09), "x"), Err(ClockError::PauseTooEarly { .. })));
    // A pause that begins after the due date does not move it.
    let mut late = DeadlineClock::new(date!(2026 - 03 - 02), 10);
    late.pause(date!(2026 - 03 - 17), "听证").unwrap();
    late.resume(date!(2026 - 04 - 01)).unwrap();
    assert_eq!(late.due_date(&cal), Some(date!(2026 - 03 - 16)));
}

#[test]
fn pause_boundaries_on_the_same_day_and_on_the_start_day() {
    let cal = official();
    let mut clock = DeadlineClock::new(date!(2026 - 03 - 02), 10);
    // Paused and resumed the same day: nothing is left out.
    clock.pause(date!(2026 - 03 - 04), "专家评审").unwrap();
    clock.resume(date!(2026 - 03 - 04)).unwrap();
    assert_eq!(clock.due_date(&cal), Some(date!(2026 - 03 - 16)));
    // Paused on the start day, resumed Thu Mar 5: Mar 3 and 4 do not count, Mar 5 does.
    let mut clock = DeadlineClock::new(date!(2026 - 03 - 02), 10);
    clock.pause(date!(2026 - 03 - 02), "补正").unwrap();
    clock.resume(date!(2026 - 03 - 05)).unwrap();
    // Counted: Mar 5, 6, 9–13, 16, 17, 18 → due Wed Mar 18.
    assert_eq!(clock.due_date(&cal), Some(date!(2026 - 03 - 18)));
    assert!(matches!(
        DeadlineClock::new(date!(2026 - 03 - 02), 1).pause(date!(2026 - 03 - 01), "x"),
        Err(ClockError::PauseTooEarly { .. })
    ));
    assert_eq!(DeadlineClock::new(date!(2026 - 03 - 02), 1).pause(date!(2026 - 03 - 03), " "), Err(ClockError::EmptyReason));
}

#[test]
fn extensions_add_working_days() {
    let cal = official();
    let mut clock = DeadlineClock::new(date!(2026 - 02 - 10), 20);
    assert_eq!(clock.extend(0, "x"), Err(ClockError::ZeroExtension));
    assert_eq!(clock.extend(5, ""), Err(ClockError::EmptyReason));
    clock.extend(10, "经本行政机关负责人批准延长十日").unwrap();
    assert_eq!(clock.total_working_days(), 30);
    // Twenty days end Mon Mar 16; ten more: Mar 17–20, Mar 23–27, Mon Mar 30.
    assert_eq!(clock.due_date(&cal), Some(date!(2026 - 03 - 30)));
}

#[test]
fn a_clock_round_trips_through_json() {
    let mut clock = DeadlineClock::new(date!(2026 - 02 - 10), 20);
    clock.pause(date!(2026 - 02 - 12), "补正").unwrap();
    clock.resume(date!(2026 - 02 - 26)).unwrap();
    clock.pause(date!(2026 - 03 - 02), "听证").unwrap();
    clock.extend(5, "延期").unwrap();
    let text = serde_json::to_string(&clock).unwrap();
    assert!(text.contains("\"start\":\"2026-02-10\"") && text.contains("\"resume\":null"), "{text}");
    assert_eq!(serde_json::from_str::<DeadlineClock>(&text).unwrap(), clock);
    let kind = serde_json::to_value(DayKind::Holiday { name: "春节".into() }).unwrap();
    assert_eq!(kind, serde_json::json!({"kind": "holiday", "name": "春节"}));
}

fn any_date() -> impl Strategy<Value = Date> {
    (2023i32..2029, 1u16..=365).prop_map(|(y, o)| Date::from_ordinal_date(y, o).unwrap())
}

fn slow_add(cal: &Calendar, start: Date, n: u32) -> Date {
    let mut d = start;
    let mut left = n;
    while left > 0 {
        d = d.next_day().unwrap();
        if cal.is_working_day(d) {
            left -= 1;
        }
    }
    d
}

proptest! {
    #[test]
    fn between_undoes_add(start in any_date(), n in 0u32..800) {
        let cal = official();
        let due = cal.add_working_days(start, n).unwrap();
        prop_assert_eq!(cal.working_days_between(start, due), i64::from(n));
        prop_assert!(n == 0 || cal.is_working_day(due));
        prop_assert_eq!(due, slow_add(&cal, start, n));
    }

    #[test]
    fn between_matches_a_day_by_day_count(a in any_date(), len in 0i64..900) {
        let cal = official();
        let b = a + Duration::days(len);
        let mut count = 0;
        let mut d = a;
        while d < b {
            d = d.next_day().unwrap();
            if cal.kind(d).is_working() { count += 1; }
        }
        prop_assert_eq!(cal.working_days_between(a, b), count);
        prop_assert_eq!(cal.working_days_between(b, a), 0);
    }

    #[test]
    fn a_closed_pause_moves_the_due_date_by_the_working_days_in_it(
        start in any_date(), n in 1u32..60, offset in 0i64..40, len in 0i64..30,
    ) {
        let cal = official();
        let mut clock = DeadlineClock::new(start, n);
        let from = start + Duration::days(offset);
        let resume = from + Duration::days(len);
        clock.pause(from, "补正").unwrap();
        clock.resume(resume).unwrap();
        let plain = cal.add_working_days(start, n).unwrap();
        let due = clock.due_date(&cal).unwrap();
        if from > plain {
            prop_assert_eq!(due, plain);
        } else {
            // Paused working days are those in [from, resume).
            let paused = cal.working_days_between(from.previous_day().unwrap().max(start), resume.previous_day().unwrap().max(start));
            prop_assert_eq!(cal.working_days_between(start, due), i64::from(n) + paused);
            prop_assert_eq!(clock.remaining_working_days(&cal, start), Some(i64::from(n)));
        }
    }

    #[test]
    fn random_schedules_agree_with_a_naive_model(
        ranges in proptest::collection::vec((1u16..=360, 0u16..6), 0..8),
        probes in proptest::collection::vec((1u16..=365, 0u32..40), 1..20),
    ) {
        let mut periods: Vec<HolidayPeriod> = Vec::new();
        for (k, (s, len)) in ranges.into_iter().enumerate() {
            let from = Date::from_ordinal_date(2027, s).unwrap();
            let to = Date::from_ordinal_date(2027, (s + len).min(365)).unwrap();
            if periods.iter().all(|p| to < p.from || from > p.to) {
                periods.push(HolidayPeriod { name: format!("h{k}"), from, to, makeup_workdays: vec![] });
            }
        }
        let holidays = periods.clone();
        let cal = Calendar::new([YearSchedule { year: 2027, source: "t".into(), periods }]);
        let naive = |d: Date| !holidays.iter().any(|p| p.from <= d && d <= p.to) && !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        for (o, n) in probes {
            let d = Date::from_ordinal_date(2027, o).unwrap();
            prop_assert_eq!(cal.is_working_day(d), naive(d));
            let due = cal.add_working_days(d, n).unwrap();
            let mut x = d;
            let mut left = n;
            while left > 0 { x = x.next_day().unwrap(); if naive(x) { left -= 1; } }
            prop_assert_eq!(due, x);
        }
    }
}
