//! The two date formats SigV4 meets on the wire, parsed strictly by hand
//! (no format-description machinery, no panics on any input).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parses ISO-8601 basic format exactly as SigV4 uses it: `20150830T123600Z`.
pub(crate) fn parse_basic(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[4..6])?;
    let day = digits(&b[6..8])?;
    let hour = digits(&b[9..11])?;
    let minute = digits(&b[11..13])?;
    let second = digits(&b[13..15])?;
    build(year, month, day, hour, minute, second)
}

/// Parses an HTTP `Date` header in IMF-fixdate form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7). The weekday is
/// not cross-checked: it carries no information the rest does not.
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    let day = digits(&b[5..7])?;
    let month = match &b[8..11] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = digits(&b[12..16])?;
    let hour = digits(&b[17..19])?;
    let minute = digits(&b[20..22])?;
    let second = digits(&b[23..25])?;
    build(year, month, day, hour, minute, second)
}

/// Formats a time as ISO-8601 basic format in UTC, truncated to seconds.
pub(crate) fn format_basic(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How AWS prints the skew window in its expiry messages: `15 min.`.
/// Windows that are not whole minutes are printed in seconds.
pub(crate) fn format_window(window: time::Duration) -> String {
    let secs = window.whole_seconds();
    if secs % 60 == 0 {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

fn build(
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn basic_format_round_trips() {
        let t = parse_basic("20150830T123600Z").expect("valid");
        assert_eq!(t, datetime!(2015-08-30 12:36:00 UTC));
        assert_eq!(format_basic(t), "20150830T123600Z");
    }

    #[test]
    fn basic_format_rejects_near_misses() {
        for bad in [
            "",
            "2015-08-30T12:36:00Z",
            "20150830T123600",
            "20150830 123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T253600Z",
            "20150830T126000Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "20150830T123600z",
            "20150830T1236000Z",
            "２０150830T123600Z",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Mon, 09 Sep 2011 23:36:00 GMT"),
            Some(datetime!(2011-09-09 23:36:00 UTC))
        );
        assert_eq!(parse_http_date("Mon, 09 Sap 2011 23:36:00 GMT"), None);
        assert_eq!(parse_http_date("Mon, 09 Sep 2011 23:36:00 UTC"), None);
        assert_eq!(parse_http_date("Mon, 31 Sep 2011 23:36:00 GMT"), None);
        assert_eq!(parse_http_date("Mon,  9 Sep 2011 23:36:00 GMT"), None);
    }

    #[test]
    fn formats_in_utc() {
        let t = datetime!(2015-08-30 14:36:00.75 +02:00);
        assert_eq!(format_basic(t), "20150830T123600Z");
        assert_eq!(format_window(time::Duration::minutes(15)), "15 min.");
        assert_eq!(format_window(time::Duration::seconds(90)), "90 sec.");
    }
}
