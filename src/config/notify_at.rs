//! `notify_at`: the time of day (UTC) of the daily expiry-notice run.

use chrono::{DateTime, Days, NaiveTime, Utc};

/// The time of day (UTC) of the daily run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyAt(NaiveTime);

impl Default for NotifyAt {
    /// 01:00 UTC, as GitLab's expiring-token worker.
    fn default() -> Self {
        NotifyAt(NaiveTime::from_hms_opt(1, 0, 0).unwrap_or(NaiveTime::MIN))
    }
}

impl NotifyAt {
    /// `HH:MM`, 24-hour, UTC.
    pub fn parse(text: &str) -> Result<NotifyAt, String> {
        let text = text.trim();
        let parsed = text.split_once(':').and_then(|(hours, minutes)| {
            let two_digits =
                |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
            if !(two_digits(hours) && two_digits(minutes)) {
                return None;
            }
            NaiveTime::from_hms_opt(hours.parse().ok()?, minutes.parse().ok()?, 0)
        });
        parsed
            .map(NotifyAt)
            .ok_or_else(|| format!("{text:?} is not a time of day HH:MM (UTC), such as 01:00"))
    }

    /// The first run strictly after `now`: today at this time if that is still ahead,
    /// otherwise tomorrow.
    pub fn next_after(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive().and_time(self.0).and_utc();
        if today > now {
            today
        } else {
            let tomorrow = now.date_naive() + Days::new(1);
            tomorrow.and_time(self.0).and_utc()
        }
    }
}

impl std::fmt::Display for NotifyAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(text: &str) -> NotifyAt {
        NotifyAt::parse(text).unwrap()
    }

    fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 31, h, m, s).unwrap()
    }

    #[test]
    fn notify_at_is_hh_mm() {
        assert_eq!(at("01:00"), NotifyAt::default());
        assert_eq!(at("23:59").to_string(), "23:59");
        assert_eq!(at(" 00:00 ").to_string(), "00:00");
        for bad in [
            "1:00", "24:00", "12:60", "noon", "01:00:00", "", "01-00", "+1:00", "0a:00",
        ] {
            let error = NotifyAt::parse(bad).unwrap_err();
            assert!(error.contains("HH:MM"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn the_next_run_is_today_if_still_ahead_else_tomorrow() {
        let one = NotifyAt::default();
        assert_eq!(one.next_after(utc(0, 30, 0)), utc(1, 0, 0));
        assert_eq!(one.next_after(utc(0, 59, 59)), utc(1, 0, 0));
        // exactly at the time: that run is now, the next one is tomorrow
        let tomorrow_one = Utc.with_ymd_and_hms(2027, 1, 1, 1, 0, 0).unwrap();
        assert_eq!(one.next_after(utc(1, 0, 0)), tomorrow_one);
        assert_eq!(one.next_after(utc(13, 0, 0)), tomorrow_one);
        assert_eq!(
            at("00:00").next_after(utc(23, 59, 59)),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
