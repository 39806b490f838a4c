//! Background work on the records and the mail regauth sends: how long token-issue audit
//! records are kept, when the daily expiry notices go, and the SMTP server every mail goes
//! through (expiry notices, leaked-token notices, new-address mail).

use serde::{Deserialize, Serialize};
use url::Url;

use super::{invalid, optional_url, parse_from, NotifyAt, SettingsError, SmtpSettings};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Days registry-token-issue audit records are kept (`0`: forever); token
    /// creation/revocation/deletion records are always kept.
    audit_retention_days: u32,
    /// Time of day (`HH:MM`, UTC) of the daily expiry notification run.
    notify_at: String,
    /// SMTP server for the mail regauth sends (expiry notices, leaked-token notices,
    /// new-address mail): `smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`. Not
    /// set: no mail.
    #[serde(with = "optional_url")]
    smtp_url: Option<Url>,
    /// Sender of that mail (`addr` or `Name <addr>`).
    smtp_from: String,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            audit_retention_days: 90,
            notify_at: "01:00".into(),
            smtp_url: None,
            smtp_from: "regauth@localhost".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HousekeepingSettings {
    /// Days that audit records of registry token issues are kept (0: forever). Records of
    /// token creation, revocation and deletion are always kept.
    pub audit_retention_days: u32,
    /// When the daily expiry notification run starts (UTC).
    pub notify_at: NotifyAt,
    /// Where all mail is sent through; `None` turns mail off.
    pub smtp: Option<SmtpSettings>,
}

impl Raw {
    pub(super) fn validate(self) -> Result<HousekeepingSettings, SettingsError> {
        if self.audit_retention_days > 36_500 {
            return Err(invalid(
                "audit_retention_days",
                "at most 36500 (0 keeps records forever)",
            ));
        }
        let notify_at =
            NotifyAt::parse(&self.notify_at).map_err(|message| invalid("notify_at", message))?;
        let smtp = match &self.smtp_url {
            Some(url) => SmtpSettings::parse(url.as_str(), &self.smtp_from).map(Some),
            None => parse_from(&self.smtp_from).map(|_| None),
        }
        .map_err(|error| invalid(error.setting, error.message))?;
        Ok(HousekeepingSettings {
            audit_retention_days: self.audit_retention_days,
            notify_at,
            smtp,
        })
    }
}
