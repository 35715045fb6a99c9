//! The typed values of condition operators: dates, numbers, base64 and IP ranges. Each parser
//! serves both sides: the policy's values once at parse time, the request's on every
//! evaluation, so none of them allocates.

use std::net::IpAddr;

/// A point in time: nanoseconds since 1970-01-01T00:00:00Z.
pub(crate) type Instant = i128;

const NANOS: i128 = 1_000_000_000;

/// Parses a date as IAM's date operators accept it: epoch seconds (`1700000000`, optionally
/// negative or with a fraction) or ISO 8601 (`2024-05-01`, `2024-05-01T12:30Z`,
/// `2024-05-01T12:30:00.123+02:00`; a time without offset is UTC).
pub(crate) fn parse_date(s: &str) -> Option<Instant> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_epoch(s);
    }
    parse_iso(s.as_bytes())
}

fn parse_epoch(s: &str) -> Option<Instant> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if whole.is_empty() || whole.len() > 18 || frac.contains('.') {
        return None;
    }
    let secs: i128 = whole.parse().ok()?;
    let nanos = fraction_nanos(frac.as_bytes())?;
    let total = secs * NANOS + nanos;
    Some(if negative { -total } else { total })
}

/// `123` after a decimal point as nanoseconds (digits past the ninth are dropped).
fn fraction_nanos(digits: &[u8]) -> Option<i128> {
    let mut nanos = 0i128;
    let mut scale = NANOS;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        scale /= 10;
        nanos += i128::from(d - b'0') * scale;
    }
    Some(nanos)
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.at += 1;
        }
        hit
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let field = self.s.get(self.at..self.at + n)?;
        let mut v = 0i64;
        for &d in field {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
        }
        self.at += n;
        Some(v)
    }

    fn done(&self) -> bool {
        self.at == self.s.len()
    }
}

fn parse_iso(s: &[u8]) -> Option<Instant> {
    let mut c = Cursor { s, at: 0 };
    let year = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0i128;
    if c.done() {
        return Some(i128::from(secs) * NANOS);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    let mut second = 0;
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.at;
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.at += 1;
            }
            let frac = s.get(start..c.at)?;
            if frac.is_empty() {
                return None;
            }
            nanos = fraction_nanos(frac)?;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    secs += hour * 3600 + minute * 60 + second;
    // The offset: none or `Z` is UTC; `+hh:mm`, `+hhmm` or `+hh` is east of UTC.
    match c.peek() {
        None => {}
        Some(b'Z' | b'z') => c.at += 1,
        Some(sign @ (b'+' | b'-')) => {
            c.at += 1;
            let oh = c.digits(2)?;
            let om = if c.eat(b':') {
                c.digits(2)?
            } else if c.done() {
                0
            } else {
                c.digits(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            secs += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return None,
    }
    if !c.done() {
        return None;
    }
    Some(i128::from(secs) * NANOS + nanos)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date. Counts in 400-year cycles of
/// 146 097 days over a year that starts on 1 March, so the leap day comes last.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let cycle = year.div_euclid(400);
    let year_of_cycle = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719 468 days lie between 0000-03-01 and 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

/// Parses a number as the numeric operators compare them (integers or decimals).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    // Rust also accepts `inf`, `NaN` and the like, which are not numbers in a policy.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn sextet(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional), handing each byte to
/// `out`. `None` if `s` is not base64.
fn decode_base64(s: &str, mut out: impl FnMut(u8) -> bool) -> Option<()> {
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in body.as_bytes() {
        acc = (acc << 6) | sextet(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if !out(((acc >> bits) & 0xff) as u8) {
                return None;
            }
        }
    }
    Some(())
}

/// The bytes of a base64 policy value.
pub(crate) fn base64_bytes(s: &str) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(s.len() / 4 * 3 + 2);
    decode_base64(s, |b| {
        v.push(b);
        true
    })?;
    Some(v)
}

/// Whether the base64 text `s` decodes to exactly `want`, without allocating.
pub(crate) fn base64_equals(s: &str, want: &[u8]) -> bool {
    let mut at = 0;
    let ok = decode_base64(s, |b| {
        let same = want.get(at) == Some(&b);
        at += 1;
        same
    });
    ok.is_some() && at == want.len()
}

/// An IP range of the `IpAddress` operators: `203.0.113.0/24`, `2001:db8::/32`, or a single
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) if !b.is_empty() && b.bytes().all(|d| d.is_ascii_digit()) => {
                (a, Some(b.parse::<u32>().ok()?))
            }
            Some(_) => return None,
            None => (s, None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let bits = bits.unwrap_or(32);
                if bits > 32 {
                    return None;
                }
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                Some(Cidr::V4 {
                    net: u32::from(a) & mask,
                    mask,
                })
            }
            IpAddr::V6(a) => {
                let bits = bits.unwrap_or(128);
                if bits > 128 {
                    return None;
                }
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                Some(Cidr::V6 {
                    net: u128::from(a) & mask,
                    mask,
                })
            }
        }
    }

    /// Whether the address text `ip` lies in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address). Text that is not an address lies in no range.
    pub(crate) fn contains(&self, ip: &str) -> bool {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            return false;
        };
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match (self, ip) {
            (Cidr::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Option<i128> {
        parse_date(s).map(|n| n / NANOS)
    }

    #[test]
    fn dates() {
        assert_eq!(secs("1970-01-01"), Some(0));
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(secs("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(secs("2024-02-29T14:00:00+02:00"), Some(1_709_208_000));
        assert_eq!(secs("2024-02-29T07:00-0500"), Some(1_709_208_000));
        assert_eq!(secs("2024-02-29T14:00+02"), Some(1_709_208_000));
        assert_eq!(secs("2024-02-29t12:00:00z"), Some(1_709_208_000));
        assert_eq!(secs("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(secs("1700000000"), Some(1_700_000_000));
        assert_eq!(secs("-5"), Some(-5));
        assert_eq!(
            parse_date("2020-01-01T00:00:00.5Z"),
            Some(1_577_836_800 * NANOS + NANOS / 2)
        );
        assert_eq!(parse_date("1.25"), Some(NANOS + NANOS / 4));
        for bad in [
            "",
            "-",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-01-01T24:00:00Z",
            "2024-01-01T10",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T10:00:00+25:00",
            "2024-01-01T10:00:00Zjunk",
            "2024/01/01",
            "1.2.3",
            "yesterday",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        for bad in ["", "abc", "inf", "NaN", "1_000", "0x10", "1e999"] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_bytes("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_bytes("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_bytes(""), Some(vec![]));
        assert_eq!(base64_bytes("a"), None);
        assert_eq!(base64_bytes("aGVs!G8="), None);
        assert_eq!(base64_bytes("aGVsbG8==="), None);
        assert!(base64_equals("aGVsbG8=", b"hello"));
        assert!(base64_equals("aGVsbG8", b"hello"));
        assert!(!base64_equals("aGVsbA==", b"hello"));
        assert!(!base64_equals("aGVsbG8hIQ==", b"hello"));
        assert!(!base64_equals("not base64!", b"hello"));
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").expect("v4");
        assert!(c.contains("203.0.113.7"));
        assert!(!c.contains("203.0.114.7"));
        assert!(c.contains("::ffff:203.0.113.7"));
        assert!(!c.contains("2001:db8::1"));
        assert!(!c.contains("not an ip"));
        // Host bits in the policy value are ignored.
        assert!(Cidr::parse("203.0.113.99/24")
            .expect("v4")
            .contains("203.0.113.1"));
        assert!(Cidr::parse("0.0.0.0/0").expect("v4").contains("8.8.8.8"));
        assert!(Cidr::parse("192.0.2.1").expect("v4").contains("192.0.2.1"));
        assert!(!Cidr::parse("192.0.2.1").expect("v4").contains("192.0.2.2"));
        let c = Cidr::parse("2001:db8::/32").expect("v6");
        assert!(c.contains("2001:db8:1::5"));
        assert!(!c.contains("2001:db9::5"));
        assert!(!c.contains("192.0.2.1"));
        assert!(Cidr::parse("::/0").expect("v6").contains("::1"));
        for bad in [
            "",
            "1.2.3.4/33",
            "1.2.3/24",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "x/8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad:?}");
        }
    }
}
