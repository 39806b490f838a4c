//! The lifetime policy of new tokens (issue #27, item 3): the instance and every group above
//! a token's owner may cap how long a new deploy token or personal access token lives
//! (`max_token_lifetime_days`) and whether it must expire at all (`require_token_expiry`).
//! The strictest level wins; a refusal names the limit and where it comes from. Existing
//! tokens are never judged again: only creation and an expiry changed at rotation are.

use std::fmt;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::ValidationError;

/// The longest a limit may be (100 years): beyond it `now + days` could leave the dates
/// SQLite compares as text.
pub const MAX_LIFETIME_DAYS: u32 = 36_500;

/// A personal access token created without an expiry where one is required, and no
/// maximum applies, lives this long (GitLab's default).
pub const DEFAULT_PERSONAL_ACCESS_TOKEN_DAYS: u32 = 365;

/// The limits one level sets: the instance (settings) or one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifetimeLimits {
    pub max_days: Option<u32>,
    pub require_expiry: bool,
}

/// Where a limit comes from, as refusals name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitSource {
    Instance,
    /// A group, by its full path.
    Group(String),
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::Instance => f.write_str("the instance setting"),
            LimitSource::Group(path) => write!(f, "the setting of group {path}"),
        }
    }
}

/// What a creation does when no expiry is given but one is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingExpiry {
    /// Refused (deploy tokens: GitLab has no default for them, and a pipeline's token that
    /// silently expires is worse than an error at creation).
    Refuse,
    /// The longest allowed, as a date (personal access tokens, as GitLab does).
    LongestAllowed,
}

/// The strictest limits of the instance and the groups above a token's owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifetimePolicy {
    max: Option<(u32, LimitSource)>,
    require_expiry: Option<LimitSource>,
}

impl LifetimePolicy {
    /// `groups`: the owner's enclosing groups (and the owner itself if a group), any order.
    /// Of equal maxima the first named wins: the instance, then the groups as given.
    pub fn new(
        instance: LifetimeLimits,
        groups: impl IntoIterator<Item = (String, LifetimeLimits)>,
    ) -> LifetimePolicy {
        let mut policy = LifetimePolicy::default();
        let levels = std::iter::once((LimitSource::Instance, instance)).chain(
            groups
                .into_iter()
                .map(|(path, limits)| (LimitSource::Group(path), limits)),
        );
        for (source, limits) in levels {
            if let Some(days) = limits.max_days {
                if policy.max.as_ref().is_none_or(|(max, _)| days < *max) {
                    policy.max = Some((days, source.clone()));
                }
            }
            if limits.require_expiry && policy.require_expiry.is_none() {
                policy.require_expiry = Some(source);
            }
        }
        policy
    }

    /// The maximum lifetime in days and where it comes from, if any.
    pub fn max_days(&self) -> Option<(u32, &LimitSource)> {
        self.max.as_ref().map(|(days, source)| (*days, source))
    }

    /// A maximum lifetime implies an expiry.
    pub fn expiry_required(&self) -> bool {
        self.max.is_some() || self.require_expiry.is_some()
    }

    /// The latest expiry a token created at `now` may have.
    pub fn latest_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.max
            .as_ref()
            .map(|(days, _)| now + Duration::days(i64::from(*days)))
    }

    /// One line for forms and the CLI: what a new token must satisfy here.
    pub fn describe(&self) -> Option<String> {
        match (&self.max, &self.require_expiry) {
            (Some((days, source)), _) => Some(format!(
                "tokens must expire within {days} days (max_token_lifetime_days, {source})"
            )),
            (None, Some(source)) => Some(format!(
                "tokens must have an expiry date (require_token_expiry, {source})"
            )),
            (None, None) => None,
        }
    }

    /// Checks a requested expiry (already known to be in the future) against the limit.
    fn check_within(
        &self,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ValidationError> {
        match (&self.max, self.latest_expiry(now)) {
            (Some((days, source)), Some(latest)) if expires_at > latest => {
                Err(ValidationError::new(
                    "expires_at",
                    format!(
                        "must be at most {days} days from now (before {}): max_token_lifetime_days is {days}, {source}",
                        latest.format("%Y-%m-%d %H:%M UTC")
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The expiry a new token gets: the requested one if the policy allows it, the default
    /// `missing` says when none was given, or a refusal naming the limit.
    pub fn expiry_for_new_token(
        &self,
        requested: Option<DateTime<Utc>>,
        missing: MissingExpiry,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ValidationError> {
        if let Some(expires_at) = requested {
            if expires_at <= now {
                return Err(ValidationError::new("expires_at", "must be in the future"));
            }
            self.check_within(expires_at, now)?;
            return Ok(Some(expires_at));
        }
        if !self.expiry_required() {
            return Ok(None);
        }
        match missing {
            MissingExpiry::LongestAllowed => {
                let days = self
                    .max
                    .as_ref()
                    .map_or(DEFAULT_PERSONAL_ACCESS_TOKEN_DAYS, |(days, _)| *days);
                Ok(Some(midnight_days_after(now, days)))
            }
            MissingExpiry::Refuse => Err(ValidationError::new(
                "expires_at",
                match (&self.max, &self.require_expiry) {
                    (Some((days, source)), _) => format!(
                        "is required: tokens must expire within {days} days (max_token_lifetime_days is {days}, {source})"
                    ),
                    (None, Some(source)) => format!(
                        "is required: tokens must have an expiry date (require_token_expiry, {source})"
                    ),
                    (None, None) => "is required".to_owned(),
                },
            )),
        }
    }

    /// The expiry after a rotation: unchanged when none is requested (an existing token is
    /// not judged again, unless it has expired: then a new one is needed), else the
    /// requested one within the limit, counted from the rotation.
    pub fn expiry_after_rotation(
        &self,
        current: Option<DateTime<Utc>>,
        requested: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ValidationError> {
        match requested {
            Some(_) => self.expiry_for_new_token(requested, MissingExpiry::Refuse, now),
            None if current.is_some_and(|at| at <= now) => Err(ValidationError::new(
                "expires_at",
                "is required: the token has expired, so rotating it needs a new expiry",
            )),
            None => Ok(current),
        }
    }

    /// Checks a group's own maximum against the levels above it (`self`): a group can only
    /// be stricter.
    pub fn check_group_limit(&self, days: Option<u32>) -> Result<(), ValidationError> {
        let Some(days) = days else {
            return Ok(());
        };
        if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
            return Err(ValidationError::new(
                "max_token_lifetime_days",
                format!("must be between 1 and {MAX_LIFETIME_DAYS}"),
            ));
        }
        match &self.max {
            Some((max, source)) if days > *max => Err(ValidationError::new(
                "max_token_lifetime_days",
                format!(
                    "must be at most {max}: a group can only be stricter, and max_token_lifetime_days is {max}, {source}"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// 00:00 UTC of the day `days` after today: GitLab's expiry dates, always `<= now + days`.
fn midnight_days_after(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    (now.date_naive() + Duration::days(i64::from(days)))
        .and_time(NaiveTime::MIN)
        .and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 10, 30, 0).unwrap()
    }

    fn limits(max_days: Option<u32>, require_expiry: bool) -> LifetimeLimits {
        LifetimeLimits {
            max_days,
            require_expiry,
        }
    }

    fn group(path: &str, max_days: Option<u32>, require: bool) -> (String, LifetimeLimits) {
        (path.to_owned(), limits(max_days, require))
    }

    #[test]
    fn the_strictest_level_wins_and_is_named() {
        type Row = (
            LifetimeLimits,
            Vec<(String, LifetimeLimits)>,
            Option<(u32, LimitSource)>,
            bool,
        );
        let table: Vec<Row> = vec![
            (limits(None, false), vec![], None, false),
            (
                limits(Some(90), false),
                vec![],
                Some((90, LimitSource::Instance)),
                true,
            ),
            (limits(None, true), vec![], None, true),
            (
                limits(Some(90), false),
                vec![group("acme", Some(30), false)],
                Some((30, LimitSource::Group("acme".into()))),
                true,
            ),
            (
                limits(Some(30), false),
                vec![group("acme", Some(60), false)],
                Some((30, LimitSource::Instance)),
                true,
            ),
            (
                limits(None, false),
                vec![
                    group("acme", Some(60), false),
                    group("acme/platform", Some(7), false),
                ],
                Some((7, LimitSource::Group("acme/platform".into()))),
                true,
            ),
            // Equal maxima: the first level named keeps it.
            (
                limits(Some(30), false),
                vec![group("acme", Some(30), false)],
                Some((30, LimitSource::Instance)),
                true,
            ),
            (
                limits(None, false),
                vec![group("acme", None, true)],
                None,
                true,
            ),
        ];
        for (instance, groups, max, required) in table {
            let policy = LifetimePolicy::new(instance, groups.clone());
            assert_eq!(
                policy.max_days().map(|(d, s)| (d, s.clone())),
                max,
                "{instance:?} {groups:?}"
            );
            assert_eq!(
                policy.expiry_required(),
                required,
                "{instance:?} {groups:?}"
            );
        }
    }

    #[test]
    fn a_new_token_within_the_limit_is_accepted_and_past_it_refused_naming_the_limit() {
        let policy = LifetimePolicy::new(
            limits(Some(90), false),
            vec![group("acme", Some(30), false)],
        );
        let within = now() + Duration::days(30);
        assert_eq!(
            policy.expiry_for_new_token(Some(within), MissingExpiry::Refuse, now()),
            Ok(Some(within))
        );
        let past = within + Duration::seconds(1);
        let error = policy
            .expiry_for_new_token(Some(past), MissingExpiry::Refuse, now())
            .unwrap_err();
        assert_eq!(error.field, "expires_at");
        assert!(error.message.contains("at most 30 days"), "{error}");
        assert!(
            error.message.contains("max_token_lifetime_days is 30"),
            "{error}"
        );
        assert!(error.message.contains("group acme"), "{error}");
        // A date (00:00 UTC) 30 days on is within 30 days whatever the hour now.
        let date = crate::domain::expiry::parse_expires_at("2027-01-04").unwrap();
        assert!(policy
            .expiry_for_new_token(Some(date), MissingExpiry::Refuse, now())
            .is_ok());
        let day_after = crate::domain::expiry::parse_expires_at("2027-01-05").unwrap();
        assert!(policy
            .expiry_for_new_token(Some(day_after), MissingExpiry::Refuse, now())
            .is_err());
        let instance = LifetimePolicy::new(limits(Some(7), false), vec![]);
        let error = instance
            .expiry_for_new_token(
                Some(now() + Duration::days(8)),
                MissingExpiry::Refuse,
                now(),
            )
            .unwrap_err();
        assert!(error.message.contains("the instance setting"), "{error}");
    }

    #[test]
    fn a_missing_expiry_is_refused_or_defaulted_as_asked() {
        let none = LifetimePolicy::default();
        assert_eq!(
            none.expiry_for_new_token(None, MissingExpiry::Refuse, now()),
            Ok(None)
        );
        assert_eq!(
            none.expiry_for_new_token(None, MissingExpiry::LongestAllowed, now()),
            Ok(None)
        );
        let capped = LifetimePolicy::new(limits(None, false), vec![group("acme", Some(30), false)]);
        let error = capped
            .expiry_for_new_token(None, MissingExpiry::Refuse, now())
            .unwrap_err();
        assert!(error.message.starts_with("is required"), "{error}");
        assert!(error.message.contains("group acme"), "{error}");
        assert_eq!(
            capped.expiry_for_new_token(None, MissingExpiry::LongestAllowed, now()),
            Ok(Some(Utc.with_ymd_and_hms(2027, 1, 4, 0, 0, 0).unwrap()))
        );
        let required = LifetimePolicy::new(limits(None, true), vec![]);
        let error = required
            .expiry_for_new_token(None, MissingExpiry::Refuse, now())
            .unwrap_err();
        assert!(
            error
                .message
                .contains("require_token_expiry, the instance setting"),
            "{error}"
        );
        assert_eq!(
            required.expiry_for_new_token(None, MissingExpiry::LongestAllowed, now()),
            Ok(Some(Utc.with_ymd_and_hms(2027, 12, 5, 0, 0, 0).unwrap()))
        );
        assert!(required
            .expiry_for_new_token(Some(now()), MissingExpiry::Refuse, now())
            .is_err());
    }

    #[test]
    fn a_rotation_keeps_the_expiry_unless_a_new_one_is_asked_for_within_the_limit() {
        let policy = LifetimePolicy::new(limits(Some(30), false), vec![]);
        // An older token beyond today's limit keeps its expiry (existing tokens unaffected).
        let far = now() + Duration::days(300);
        assert_eq!(
            policy.expiry_after_rotation(Some(far), None, now()),
            Ok(Some(far))
        );
        assert_eq!(policy.expiry_after_rotation(None, None, now()), Ok(None));
        let extended = now() + Duration::days(29);
        assert_eq!(
            policy.expiry_after_rotation(Some(now() + Duration::days(1)), Some(extended), now()),
            Ok(Some(extended))
        );
        assert!(policy
            .expiry_after_rotation(None, Some(now() + Duration::days(31)), now())
            .is_err());
        // An expired token needs a new expiry to be worth rotating.
        let expired = now() - Duration::days(1);
        assert_eq!(
            policy
                .expiry_after_rotation(Some(expired), None, now())
                .unwrap_err()
                .field,
            "expires_at"
        );
    }

    #[test]
    fn a_group_can_only_be_stricter_than_the_levels_above_it() {
        let above = LifetimePolicy::new(
            limits(Some(90), false),
            vec![group("acme", Some(60), false)],
        );
        assert!(above.check_group_limit(Some(60)).is_ok());
        assert!(above.check_group_limit(Some(1)).is_ok());
        assert!(above.check_group_limit(None).is_ok());
        let error = above.check_group_limit(Some(61)).unwrap_err();
        assert_eq!(error.field, "max_token_lifetime_days");
        assert!(error.message.contains("at most 60"), "{error}");
        assert!(error.message.contains("group acme"), "{error}");
        let open = LifetimePolicy::default();
        assert!(open.check_group_limit(Some(MAX_LIFETIME_DAYS)).is_ok());
        assert!(open.check_group_limit(Some(0)).is_err());
        assert!(open.check_group_limit(Some(MAX_LIFETIME_DAYS + 1)).is_err());
    }

    #[test]
    fn the_description_names_the_limit_and_its_source() {
        assert_eq!(LifetimePolicy::default().describe(), None);
        let policy =
            LifetimePolicy::new(limits(Some(90), true), vec![group("acme", Some(30), false)]);
        assert_eq!(
            policy.describe().unwrap(),
            "tokens must expire within 30 days (max_token_lifetime_days, the setting of group acme)"
        );
    }
}
