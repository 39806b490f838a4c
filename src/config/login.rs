//! Signing in: how long a web sign-in lasts, and the brute-force protection of every login
//! (`service::login_guard`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, Seconds, SettingsError};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// How long a [web pages](web-pages.md) sign-in lasts (1 min – 31 d); the session cookie is
    /// `Secure` when regauth serves TLS or `public_url` is `https://`.
    session_ttl: Seconds,
    /// Seconds over which failed logins are counted (10–86400).
    login_failure_window: Seconds,
    /// Seconds a locked client address or username stays locked after its last failure (at most
    /// the window).
    login_lockout: Seconds,
    /// Failed logins from one client address within the window that lock it (`0`: addresses are
    /// not limited).
    login_max_failures_per_address: u32,
    /// Failed logins for one username within the window that lock it (`0`: usernames are not
    /// limited); both `0` turns brute-force protection off.
    login_max_failures_per_username: u32,
    /// Login attempts that may wait out their delay at once, per process; beyond, 429 at once.
    login_max_delayed: u32,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            session_ttl: Seconds(8 * 3600),
            login_failure_window: Seconds(600),
            login_lockout: Seconds(300),
            login_max_failures_per_address: 20,
            login_max_failures_per_username: 20,
            login_max_delayed: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginSettings {
    /// How long a web sign-in lasts before the user must sign in again.
    pub session_ttl: Duration,
    pub throttle: LoginThrottleSettings,
}

/// Brute-force protection (see `service::login_guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottleSettings {
    /// Failures are counted over this sliding window.
    pub window: Duration,
    /// How long a locked address or username stays locked after its last failure.
    pub lockout: Duration,
    /// Failures within the window that lock a client address; 0: addresses are not limited.
    pub max_failures_per_address: u32,
    /// Failures within the window that lock a username; 0: usernames are not limited.
    pub max_failures_per_username: u32,
    /// Attempts that may wait out their delay at once (per process); beyond, 429 at once.
    pub max_delayed: u32,
}

impl LoginThrottleSettings {
    pub fn enabled(&self) -> bool {
        self.max_failures_per_address > 0 || self.max_failures_per_username > 0
    }
}

impl Raw {
    pub(super) fn validate(self) -> Result<LoginSettings, SettingsError> {
        let session_ttl = self
            .session_ttl
            .within("session_ttl", 60, 31 * 86_400, " (31d)")?;
        let window = self.login_failure_window.0;
        if !(10..=86_400).contains(&window) {
            return Err(invalid(
                "login_failure_window",
                format!("{window} is out of range: seconds between 10 and 86400"),
            ));
        }
        if self.login_lockout.0 == 0 || self.login_lockout.0 > window {
            return Err(invalid(
                "login_lockout",
                format!(
                    "{} is out of range: at least 1 second and at most login_failure_window ({window})",
                    self.login_lockout.0
                ),
            ));
        }
        if self.login_max_delayed == 0 || self.login_max_delayed > 100_000 {
            return Err(invalid("login_max_delayed", "between 1 and 100000"));
        }
        Ok(LoginSettings {
            session_ttl,
            throttle: LoginThrottleSettings {
                window: self.login_failure_window.duration(),
                lockout: self.login_lockout.duration(),
                max_failures_per_address: self.login_max_failures_per_address,
                max_failures_per_username: self.login_max_failures_per_username,
                max_delayed: self.login_max_delayed,
            },
        })
    }
}
