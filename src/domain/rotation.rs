//! Secret rotation (issue #27, item 4): a token gets a new secret and keeps its id, username,
//! scopes and restrictions; the secret it replaced keeps working for a grace period, so that
//! a pipeline can be given the new one without a failed pull in between. Rotating again ends
//! an earlier grace period (only one previous secret is kept); revoking ends both secrets.

use chrono::{DateTime, Duration, Utc};

use super::ValidationError;

/// What a token knows of its rotations, and which of its secrets a lookup matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretRotation {
    /// The last rotation, if any.
    pub rotated_at: Option<DateTime<Utc>>,
    /// Until when the secret replaced at the last rotation works (exclusive).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Set on a token a lookup found by its previous secret: that one was presented.
    pub found_by_previous_secret: bool,
}

impl SecretRotation {
    /// Whether the previous secret still works at `now`.
    pub fn in_grace(&self, now: DateTime<Utc>) -> bool {
        self.previous_secret_expires_at.is_some_and(|end| now < end)
    }

    /// Whether the secret the lookup matched works at `now`: the current one always (expiry
    /// and revocation are the token's), the previous one only within its grace period.
    pub fn presented_secret_works(&self, now: DateTime<Utc>) -> bool {
        !self.found_by_previous_secret || self.in_grace(now)
    }
}

/// The grace period of one rotation: what the request asks for, at most what the instance
/// allows (`token_rotation_grace`); the instance's when the request says nothing.
pub fn grace_period(
    allowed: Duration,
    requested_seconds: Option<i64>,
) -> Result<Duration, ValidationError> {
    let Some(seconds) = requested_seconds else {
        return Ok(allowed);
    };
    if seconds < 0 {
        return Err(ValidationError::new(
            "grace_period_seconds",
            "must be 0 or more",
        ));
    }
    let requested = Duration::try_seconds(seconds).unwrap_or(Duration::MAX);
    if requested > allowed {
        return Err(ValidationError::new(
            "grace_period_seconds",
            format!(
                "must be at most {} (token_rotation_grace, the instance setting)",
                allowed.num_seconds()
            ),
        ));
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 10, 30, 0).unwrap()
    }

    #[test]
    fn the_grace_period_is_the_instances_unless_the_request_asks_for_less() {
        let hour = Duration::hours(1);
        let table = [
            (hour, None, Ok(hour)),
            (hour, Some(0), Ok(Duration::zero())),
            (hour, Some(600), Ok(Duration::seconds(600))),
            (hour, Some(3600), Ok(hour)),
            (hour, Some(3601), Err("grace_period_seconds")),
            (hour, Some(-1), Err("grace_period_seconds")),
            (hour, Some(i64::MAX), Err("grace_period_seconds")),
            (Duration::zero(), None, Ok(Duration::zero())),
            (Duration::zero(), Some(1), Err("grace_period_seconds")),
        ];
        for (allowed, requested, expected) in table {
            let got = grace_period(allowed, requested).map_err(|error| error.field);
            assert_eq!(got, expected, "{allowed} {requested:?}");
        }
        let error = grace_period(hour, Some(7200)).unwrap_err();
        assert!(error.message.contains("at most 3600"), "{error}");
        assert!(error.message.contains("token_rotation_grace"), "{error}");
    }

    #[test]
    fn the_previous_secret_works_until_the_grace_ends_and_not_an_instant_after() {
        let end = now() + Duration::seconds(30);
        let previous = SecretRotation {
            rotated_at: Some(now()),
            previous_secret_expires_at: Some(end),
            found_by_previous_secret: true,
        };
        assert!(previous.presented_secret_works(now()));
        assert!(previous.presented_secret_works(end - Duration::nanoseconds(1)));
        assert!(!previous.presented_secret_works(end));
        assert!(!previous.presented_secret_works(end + Duration::days(1)));
        // No grace (0 s): the previous secret is refused from the rotation on.
        let no_grace = SecretRotation {
            previous_secret_expires_at: Some(now()),
            ..previous
        };
        assert!(!no_grace.presented_secret_works(now()));
        // The current secret does not depend on the grace.
        let current = SecretRotation {
            found_by_previous_secret: false,
            ..previous
        };
        assert!(current.presented_secret_works(end + Duration::days(1)));
        assert!(SecretRotation::default().presented_secret_works(now()));
        // A token found by a previous secret without a recorded end: refused.
        let unknown_end = SecretRotation {
            found_by_previous_secret: true,
            ..SecretRotation::default()
        };
        assert!(!unknown_end.presented_secret_works(now()));
    }
}
