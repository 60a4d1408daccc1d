//! `Retry-After` values (A4): delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
//!
//! Dates are parsed here, without a clock: the caller gives the wall clock. All three
//! formats a recipient must accept are read (IMF-fixdate, RFC 850, asctime).

/// The wait a `Retry-After` value asks for, in milliseconds from `now_unix_ms`;
/// `None` when the value is unreadable. A date in the past asks for no wait.
pub(crate) fn retry_after_ms(value: &str, now_unix_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = value.parse().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1000));
    }
    let at_unix_s = parse_http_date(value)?;
    Some(at_unix_s.saturating_mul(1000).saturating_sub(now_unix_ms))
}

/// Unix seconds of an HTTP date.
fn parse_http_date(value: &str) -> Option<u64> {
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut fields = date.split('-');
            let day = fields.next()?.parse().ok()?;
            let month = fields.next()?;
            let short_year: u64 = fields.next()?.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
            let year = if short_year < 70 {
                2000 + short_year
            } else {
                1900 + short_year
            };
            (day, month, year, *time)
        }
        // asctime: "Sun Nov  6 08:49:37 1994"
        [_weekday, month, day, time, year] => {
            (day.parse().ok()?, *month, year.parse().ok()?, *time)
        }
        _ => return None,
    };
    let month = month_number(month)?;
    let mut hms = time.split(':');
    let hour: u64 = hms.next()?.parse().ok()?;
    let minute: u64 = hms.next()?.parse().ok()?;
    let second: u64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || hour > 23 || minute > 59 || second > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn month_number(name: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as u64 + 1)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm),
/// for years from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: u64 = 784_111_777;

    #[test]
    fn a4_retry_after_seconds() {
        assert_eq!(retry_after_ms("120", 0), Some(120_000));
        assert_eq!(retry_after_ms(" 0 ", 0), Some(0));
        assert_eq!(retry_after_ms("99999999999999999999999", 0), Some(u64::MAX));
        assert_eq!(retry_after_ms("-1", 0), None);
        assert_eq!(retry_after_ms("", 0), None);
        assert_eq!(retry_after_ms("soon", 0), None);
    }

    #[test]
    fn a4_retry_after_dates_in_all_three_formats() {
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(value), Some(NOV_6_1994), "{value}");
        }
        let now = (NOV_6_1994 - 30) * 1000;
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now + 60_000),
            Some(0)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
    }

    #[test]
    fn v3_malformed_dates_are_unreadable() {
        for value in [
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sunday 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(value), None, "{value}");
        }
        assert!(parse_http_date("Sun, 06 Nov 1994 23:59:60 GMT").is_some());
    }

    #[test]
    fn a4_rfc850_two_digit_years_pick_the_nearest_century() {
        let year_start = |value: &str| parse_http_date(value).map(|s| s / 86_400);
        // 2030-01-01, 1970-01-01 and 2069-01-01, in days since the epoch.
        assert_eq!(year_start("Tuesday, 01-Jan-30 00:00:00 GMT"), Some(21_915));
        assert_eq!(year_start("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(year_start("Thursday, 01-Jan-69 00:00:00 GMT"), Some(36_160));
    }
}
