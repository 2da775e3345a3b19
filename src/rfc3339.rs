//! Instants as conecta reads and writes them: RFC 3339, UTC with `Z` for machines, local time
//! with its offset for people. The writers are hand-rolled because `schedule simulate`
//! formats over a million of them a second; `chrono`'s format strings are far slower.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};

/// Why an instant given on the command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected an RFC 3339 instant like \"2026-11-27T10:00:00Z\" or \"2026-11-27T05:00:00-05:00\", got: {0:?}"
)]
pub struct BadInstant(pub String);

/// Reads an RFC 3339 instant. A date-time without offset, or a bare date, is taken as UTC.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, BadInstant> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    Err(BadInstant(text.to_string()))
}

/// Appends `2026-11-27T10:00:00Z` (seconds precision).
pub fn push_utc(out: &mut Vec<u8>, instant: DateTime<Utc>) {
    push_naive(out, instant.naive_utc());
    out.push(b'Z');
}

/// Appends the local reading of `instant` at `offset_seconds`, as `2026-11-27T05:00:00-05:00`.
pub fn push_local(out: &mut Vec<u8>, instant: DateTime<Utc>, offset_seconds: i32) {
    let local = instant.naive_utc() + TimeDelta::seconds(i64::from(offset_seconds));
    push_naive(out, local);
    let sign = if offset_seconds < 0 { b'-' } else { b'+' };
    let abs = offset_seconds.unsigned_abs();
    out.push(sign);
    push2(out, abs / 3600);
    out.push(b':');
    push2(out, abs % 3600 / 60);
}

/// `push_utc` into a fresh string.
pub fn utc(instant: DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(20);
    push_utc(&mut out, instant);
    String::from_utf8(out).expect("ascii")
}

/// `push_local` into a fresh string.
pub fn local(instant: DateTime<Utc>, offset_seconds: i32) -> String {
    let mut out = Vec::with_capacity(25);
    push_local(&mut out, instant, offset_seconds);
    String::from_utf8(out).expect("ascii")
}

fn push_naive(out: &mut Vec<u8>, t: NaiveDateTime) {
    let year = t.year();
    if (0..=9999).contains(&year) {
        let y = year as u32;
        push2(out, y / 100);
        push2(out, y % 100);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    out.push(b'-');
    push2(out, t.month());
    out.push(b'-');
    push2(out, t.day());
    out.push(b'T');
    push2(out, t.hour());
    out.push(b':');
    push2(out, t.minute());
    out.push(b':');
    push2(out, t.second());
}

fn push2(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_utc_and_local_with_offset() {
        let t = parse_instant("2026-03-08T07:00:00Z").unwrap();
        assert_eq!(utc(t), "2026-03-08T07:00:00Z");
        assert_eq!(local(t, -4 * 3600), "2026-03-08T03:00:00-04:00");
        assert_eq!(local(t, 5 * 3600 + 45 * 60), "2026-03-08T12:45:00+05:45");
        assert_eq!(local(t, 10 * 3600 + 30 * 60), "2026-03-08T17:30:00+10:30");
    }

    #[test]
    fn reads_offsets_and_bare_forms_as_utc() {
        let z = parse_instant("2026-03-08T07:00:00Z").unwrap();
        assert_eq!(parse_instant("2026-03-08T03:00:00-04:00").unwrap(), z);
        assert_eq!(parse_instant("2026-03-08T07:00:00").unwrap(), z);
        assert_eq!(
            parse_instant("2026-03-08").unwrap(),
            parse_instant("2026-03-08T00:00:00Z").unwrap()
        );
        assert!(parse_instant("yesterday").is_err());
    }
}
