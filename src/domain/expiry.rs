//! Token expiry (DOMAIN.md): a date means 00:00 UTC that day; a token is invalid from that
//! instant on (`now >= expires_at`), one rule everywhere.

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expires_at must be a date (YYYY-MM-DD) or an RFC 3339 date-time, got {0:?}")]
pub struct ExpiryParseError(pub String);

/// Parses `2027-01-01` (midnight UTC) or an RFC 3339 date-time such as `2027-01-01T12:00:00Z`.
/// A date-time without an offset (`2027-01-01T12:00:00`) is taken as UTC, as GitLab does.
/// Years past 9999 are refused: SQLite compares stored dates as text.
pub fn parse_expires_at(text: &str) -> Result<DateTime<Utc>, ExpiryParseError> {
    let text = text.trim();
    let parsed = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc())
    } else if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        Some(instant.with_timezone(&Utc))
    } else {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|local| local.and_utc())
    };
    parsed
        .filter(|instant| instant.year() <= 9999)
        .ok_or_else(|| ExpiryParseError(text.to_owned()))
}

/// True from the expiry instant on.
pub fn is_expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|instant| now >= instant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_date_means_midnight_utc_that_day() {
        assert_eq!(
            parse_expires_at("2027-01-01").unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_date_time_keeps_its_offset() {
        assert_eq!(
            parse_expires_at("2027-01-01T02:00:00+02:00").unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_date_time_without_offset_is_utc() {
        assert_eq!(
            parse_expires_at("2027-01-01T12:30:00").unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 1, 12, 30, 0).unwrap()
        );
    }

    #[test]
    fn years_past_9999_are_refused() {
        assert!(parse_expires_at("9999-12-31").is_ok());
        assert!(parse_expires_at("+10000-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_input() {
        let error = parse_expires_at("next tuesday").unwrap_err();
        assert!(error.to_string().contains("next tuesday"));
        assert!(parse_expires_at("2027-02-30").is_err());
    }

    #[test]
    fn a_token_is_expired_at_the_instant_and_not_a_nanosecond_before() {
        let instant = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert!(!is_expired(
            Some(instant),
            instant - Duration::nanoseconds(1)
        ));
        assert!(is_expired(Some(instant), instant));
        assert!(is_expired(Some(instant), instant + Duration::seconds(1)));
        assert!(!is_expired(None, instant));
    }
}
