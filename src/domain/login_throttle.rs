//! Brute-force protection, the pure part: given how many logins failed for a key (a client
//! address or a username tried) within the window and when the last one failed, may the next
//! attempt go ahead now, after a delay, or not at all?
//!
//! The escalation: the first two failures cost nothing (a typo), from the third on each
//! attempt waits 250 ms, doubling up to 4 s; at `max_failures` the key is locked until
//! `lockout` after its last failure. Since a locked key's attempts are refused before their
//! credentials are checked, they add no failure: the lock ends `lockout` after the last real
//! guess, and the next wrong guess (the count still full within the window) locks again.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Failures before attempts start to be delayed.
pub const DELAY_FROM_FAILURES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// What is known about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures within the window.
    pub failures: u32,
    pub last_failure: DateTime<Utc>,
}

/// The limits of one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures within the window that lock the key; 0 turns this kind of key off.
    pub max_failures: u32,
    pub lockout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// Go ahead after this long.
    Delay(Duration),
    /// Refused (429) without looking at the credentials; retry after this long.
    Locked {
        retry_after: Duration,
    },
}

impl Verdict {
    /// The stricter of two verdicts (for an address and a username at once).
    pub fn stricter(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Locked { retry_after: a }, Verdict::Locked { retry_after: b }) => {
                Verdict::Locked {
                    retry_after: a.max(b),
                }
            }
            (locked @ Verdict::Locked { .. }, _) | (_, locked @ Verdict::Locked { .. }) => locked,
            (Verdict::Delay(a), Verdict::Delay(b)) => Verdict::Delay(a.max(b)),
            (delay @ Verdict::Delay(_), Verdict::Proceed)
            | (Verdict::Proceed, delay @ Verdict::Delay(_)) => delay,
            (Verdict::Proceed, Verdict::Proceed) => Verdict::Proceed,
        }
    }
}

/// How long an attempt waits after `failures` failures (below the lock).
pub fn delay_after(failures: u32) -> Duration {
    if failures < DELAY_FROM_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - DELAY_FROM_FAILURES).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// The verdict for one key.
pub fn judge(record: Option<FailureRecord>, limit: Limit, now: DateTime<Utc>) -> Verdict {
    let Some(record) = record else {
        return Verdict::Proceed;
    };
    if limit.max_failures == 0 || record.failures == 0 {
        return Verdict::Proceed;
    }
    if record.failures >= limit.max_failures {
        let lockout = chrono::Duration::from_std(limit.lockout).unwrap_or(chrono::TimeDelta::MAX);
        let until = record
            .last_failure
            .checked_add_signed(lockout)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if now < until {
            let left = (until - now).to_std().unwrap_or_default();
            return Verdict::Locked {
                retry_after: left.max(Duration::from_secs(1)),
            };
        }
    }
    match delay_after(record.failures) {
        Duration::ZERO => Verdict::Proceed,
        delay => Verdict::Delay(delay),
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    const LIMIT: Limit = Limit {
        max_failures: 10,
        lockout: Duration::from_secs(300),
    };

    fn record(failures: u32, seconds_ago: i64) -> Option<FailureRecord> {
        Some(FailureRecord {
            failures,
            last_failure: now() - chrono::TimeDelta::seconds(seconds_ago),
        })
    }

    #[test]
    fn no_failures_or_a_typo_cost_nothing() {
        assert_eq!(judge(None, LIMIT, now()), Verdict::Proceed);
        assert_eq!(judge(record(1, 0), LIMIT, now()), Verdict::Proceed);
        assert_eq!(judge(record(2, 0), LIMIT, now()), Verdict::Proceed);
    }

    #[test]
    fn the_delay_doubles_from_the_third_failure_and_is_capped() {
        let delays: Vec<u64> = (3..=9).map(|n| delay_after(n).as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
        assert_eq!(
            judge(record(4, 0), LIMIT, now()),
            Verdict::Delay(Duration::from_millis(500))
        );
    }

    #[test]
    fn at_the_limit_the_key_is_locked_until_lockout_after_the_last_failure() {
        assert_eq!(
            judge(record(10, 100), LIMIT, now()),
            Verdict::Locked {
                retry_after: Duration::from_secs(200)
            }
        );
        // Lockout over: the next attempt goes ahead, delayed; one more failure locks again.
        assert_eq!(
            judge(record(10, 300), LIMIT, now()),
            Verdict::Delay(MAX_DELAY)
        );
    }

    #[test]
    fn a_zero_limit_turns_the_kind_of_key_off() {
        let off = Limit {
            max_failures: 0,
            ..LIMIT
        };
        assert_eq!(judge(record(1000, 0), off, now()), Verdict::Proceed);
    }

    #[test]
    fn the_stricter_verdict_wins() {
        let locked = Verdict::Locked {
            retry_after: Duration::from_secs(5),
        };
        let delay = Verdict::Delay(Duration::from_secs(1));
        assert_eq!(delay.stricter(locked), locked);
        assert_eq!(Verdict::Proceed.stricter(delay), delay);
        assert_eq!(
            locked.stricter(Verdict::Locked {
                retry_after: Duration::from_secs(9)
            }),
            Verdict::Locked {
                retry_after: Duration::from_secs(9)
            }
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    }
}
