-- The working-day calendar (工作日历): loaded years with the source of their schedule, and the
-- days that differ from the weekend rule. A day is `holiday` (a day off, 放假) or `workday`
-- (a Saturday or Sunday worked in exchange, 调休上班); every other day follows the weekend rule.

CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY,
    source TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE calendar_days (
    day TEXT PRIMARY KEY,
    year BIGINT NOT NULL REFERENCES calendar_years(year),
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT NOT NULL
);
CREATE INDEX calendar_days_year ON calendar_days(year);
