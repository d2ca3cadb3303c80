//! Time helpers. Time is stored as UTC milliseconds since the Unix epoch and shown in
//! China Standard Time (Asia/Shanghai, UTC+8, no daylight saving).

use time::{OffsetDateTime, UtcOffset, macros::format_description};

/// Milliseconds since the Unix epoch, UTC: the one representation of instants in the database.
pub type Millis = i64;

/// The current instant in UTC milliseconds.
pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// China Standard Time, the offset every page shows.
pub fn china_offset() -> UtcOffset {
    UtcOffset::from_whole_seconds(8 * 3600).unwrap_or(UtcOffset::UTC)
}

/// Formats an instant as `YYYY-MM-DD HH:MM:SS` in China Standard Time.
pub fn format_local(ms: Millis) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) else {
        return String::new();
    };
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.to_offset(china_offset()).format(&fmt).unwrap_or_default()
}

/// Formats an instant as RFC 3339 in UTC, for APIs and exports.
pub fn format_rfc3339(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses a local date (`YYYY-MM-DD`, China Standard Time) to the instant of its midnight.
pub fn parse_local_date(s: &str) -> Option<Millis> {
    let fmt = format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s.trim(), &fmt).ok()?;
    let t = date.midnight().assume_offset(china_offset());
    Some((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

/// The local (China Standard Time) calendar date of an instant.
pub fn local_date(ms: Millis) -> Option<time::Date> {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok().map(|t| t.to_offset(china_offset()).date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_formatting_is_utc_plus_eight() {
        assert_eq!(format_local(0), "1970-01-01 08:00:00");
        assert_eq!(parse_local_date("1970-01-02"), Some(16 * 3600 * 1000));
        assert_eq!(parse_local_date("2026-13-01"), None);
    }
}
