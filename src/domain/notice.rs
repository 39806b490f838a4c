//! Expiry notices (DOMAIN.md "Expiry notifications"): which notice window a deploy token is
//! in, and who is told. Pure functions, tested as tables.
//!
//! Days left count calendar days in UTC, as GitLab counts them for its date-only expiries:
//! a token expiring on 2027-01-01 (00:00 UTC) has 7 days left on 2026-12-25, whatever the
//! hour of the run, and 0 days left only if it expires later on the day of the run. From
//! the expiry instant on the token is expired and in no window (`now >= expires_at`, the one
//! rule of [`super::expiry::is_expired`]).

use chrono::{DateTime, Utc};

use super::expiry::is_expired;
use super::namespace::NamespaceKind;
use super::user::Role;

/// The three notices a token gets before it expires, each at most once per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, strum::EnumCount)]
pub enum NoticeWindow {
    /// 0–7 days left.
    Days7,
    /// 8–30 days left.
    Days30,
    /// 31–60 days left.
    Days60,
}

impl NoticeWindow {
    pub const ALL: [NoticeWindow; 3] = [
        NoticeWindow::Days60,
        NoticeWindow::Days30,
        NoticeWindow::Days7,
    ];

    /// The window's name in days, as stored (`window_days`) and shown.
    pub fn days(self) -> i32 {
        match self {
            NoticeWindow::Days7 => 7,
            NoticeWindow::Days30 => 30,
            NoticeWindow::Days60 => 60,
        }
    }

    pub fn from_days(days: i32) -> Option<NoticeWindow> {
        NoticeWindow::ALL
            .into_iter()
            .find(|window| window.days() == days)
    }

    /// The window for a number of days left; none beyond 60 days (or below 0).
    pub fn for_days_left(days_left: i64) -> Option<NoticeWindow> {
        match days_left {
            0..=7 => Some(NoticeWindow::Days7),
            8..=30 => Some(NoticeWindow::Days30),
            31..=60 => Some(NoticeWindow::Days60),
            _ => None,
        }
    }
}

impl std::fmt::Display for NoticeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-day", self.days())
    }
}

/// The furthest a token may expire and still be in a window: expiring before the start of
/// the 61st day after `now`'s day means at most 60 days left.
pub fn notice_horizon(now: DateTime<Utc>) -> DateTime<Utc> {
    let day = now.date_naive() + chrono::Days::new(61);
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Calendar days (UTC) from `now` to the expiry; `None` when the token never expires or has
/// expired.
pub fn days_left(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<i64> {
    let expires_at = expires_at?;
    if is_expired(Some(expires_at), now) {
        return None;
    }
    Some((expires_at.date_naive() - now.date_naive()).num_days())
}

/// The window a token expiring at `expires_at` is in at `now`, if any. Only the current
/// window counts: a token first seen with 20 days left gets the 30-day notice, never a
/// late 60-day one.
pub fn notice_window(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<NoticeWindow> {
    days_left(expires_at, now).and_then(NoticeWindow::for_days_left)
}

/// Who is told about a token: for a project token its Maintainers and Owners, for a group
/// token its Owners; `highest_role` is the user's highest role on the owner or any ancestor
/// group (inherited, as everywhere). Blocked users get nothing.
pub fn is_notice_recipient(
    owner_kind: NamespaceKind,
    highest_role: Option<Role>,
    blocked: bool,
) -> bool {
    let needed = match owner_kind {
        NamespaceKind::Project => Role::Maintainer,
        NamespaceKind::Group => Role::Owner,
    };
    !blocked && highest_role.is_some_and(|role| role >= needed)
}

crate::every_variant_listed!(NoticeWindow);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    /// A daily run at 01:00 UTC.
    fn run_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).unwrap()
    }

    /// A token expiring at midnight UTC `days` days after the run's day.
    fn midnight_in(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    #[test]
    fn days_left_map_to_windows_as_the_table_says() {
        use NoticeWindow::{Days30, Days60, Days7};
        let table: [(i64, Option<NoticeWindow>); 14] = [
            (-1, None),
            (0, Some(Days7)),
            (1, Some(Days7)),
            (7, Some(Days7)),
            (8, Some(Days30)),
            (20, Some(Days30)),
            (30, Some(Days30)),
            (31, Some(Days60)),
            (45, Some(Days60)),
            (60, Some(Days60)),
            (61, None),
            (90, None),
            (365, None),
            (i64::MAX, None),
        ];
        for (days, window) in table {
            assert_eq!(
                NoticeWindow::for_days_left(days),
                window,
                "{days} days left"
            );
        }
    }

    #[test]
    fn windows_of_tokens_expiring_at_midnight_seen_by_the_daily_run() {
        use NoticeWindow::{Days30, Days60, Days7};
        let table: [(i64, Option<NoticeWindow>); 9] = [
            (1, Some(Days7)),
            (7, Some(Days7)),
            (8, Some(Days30)),
            (30, Some(Days30)),
            (31, Some(Days60)),
            (60, Some(Days60)),
            (61, None),
            // expired at 00:00, an hour before the run
            (0, None),
            (-3, None),
        ];
        for (days, window) in table {
            assert_eq!(
                notice_window(Some(midnight_in(days)), run_at()),
                window,
                "expiring in {days} days"
            );
        }
    }

    #[test]
    fn a_token_expiring_later_today_has_zero_days_left_and_gets_the_7_day_notice() {
        let later_today = run_at() + Duration::hours(5);
        assert_eq!(days_left(Some(later_today), run_at()), Some(0));
        assert_eq!(
            notice_window(Some(later_today), run_at()),
            Some(NoticeWindow::Days7)
        );
    }

    #[test]
    fn exactly_at_expiry_and_after_there_is_no_window() {
        let expiry = run_at();
        assert_eq!(notice_window(Some(expiry), expiry), None);
        assert_eq!(
            notice_window(Some(expiry), expiry + Duration::seconds(1)),
            None
        );
        assert_eq!(
            notice_window(Some(expiry), expiry - Duration::seconds(1)),
            Some(NoticeWindow::Days7),
            "a second before expiry is still 0 days left"
        );
    }

    #[test]
    fn a_token_that_never_expires_is_in_no_window() {
        assert_eq!(notice_window(None, run_at()), None);
    }

    #[test]
    fn days_left_count_calendar_days_whatever_the_hour() {
        let expiry = midnight_in(7);
        for hour in [0, 1, 12, 23] {
            let now = Utc.with_ymd_and_hms(2026, 12, 1, hour, 59, 59).unwrap();
            assert_eq!(days_left(Some(expiry), now), Some(7), "at {hour}:59:59");
        }
    }

    #[test]
    fn the_horizon_is_the_first_instant_with_61_days_left() {
        let horizon = notice_horizon(run_at());
        assert_eq!(horizon, midnight_in(61));
        assert_eq!(notice_window(Some(horizon), run_at()), None);
        assert_eq!(
            notice_window(Some(horizon - Duration::nanoseconds(1)), run_at()),
            Some(NoticeWindow::Days60)
        );
    }

    #[test]
    fn window_days_round_trip() {
        for window in NoticeWindow::ALL {
            assert_eq!(NoticeWindow::from_days(window.days()), Some(window));
        }
        assert_eq!(NoticeWindow::from_days(14), None);
        assert_eq!(NoticeWindow::Days30.to_string(), "30-day");
    }

    #[test]
    fn project_maintainers_and_owners_and_group_owners_are_told() {
        use NamespaceKind::{Group, Project};
        // (owner kind, highest role, told?)
        let table: [(NamespaceKind, Option<Role>, bool); 12] = [
            (Project, None, false),
            (Project, Some(Role::Guest), false),
            (Project, Some(Role::Reporter), false),
            (Project, Some(Role::Developer), false),
            (Project, Some(Role::Maintainer), true),
            (Project, Some(Role::Owner), true),
            (Group, None, false),
            (Group, Some(Role::Guest), false),
            (Group, Some(Role::Reporter), false),
            (Group, Some(Role::Developer), false),
            (Group, Some(Role::Maintainer), false),
            (Group, Some(Role::Owner), true),
        ];
        for (kind, role, told) in table {
            assert_eq!(
                is_notice_recipient(kind, role, false),
                told,
                "{kind} {role:?}"
            );
            assert!(
                !is_notice_recipient(kind, role, true),
                "blocked {kind} {role:?}"
            );
        }
    }
}
