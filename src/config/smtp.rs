//! The SMTP server and sender of the expiry notices (`smtp_url`, `smtp_from`), checked at
//! load. The mailer (`crate::mail`) is built from these.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::redact::redact_url_password;

/// The SMTP server and sender, validated; `Debug` hides the password.
#[derive(Clone)]
pub struct SmtpSettings {
    url: String,
    from: Mailbox,
}

/// A setting that does not parse, with the setting's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct SmtpSettingsError {
    pub setting: &'static str,
    pub message: String,
}

impl SmtpSettings {
    /// Checks the URL (scheme, host, `tls=` parameter) and the sender address. Error
    /// messages never repeat the URL, which may hold a password.
    pub fn parse(url: &str, from: &str) -> Result<SmtpSettings, SmtpSettingsError> {
        let url = url.trim();
        let from = parse_from(from)?;
        let scheme_ok = url.starts_with("smtp://") || url.starts_with("smtps://");
        if !scheme_ok {
            return Err(SmtpSettingsError {
                setting: "smtp_url",
                message: "must start with smtp:// or smtps:// (e.g. smtp://user:pass@mail.example.com:587?tls=required)".into(),
            });
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|error| SmtpSettingsError {
            setting: "smtp_url",
            message: format!("{error} (URL {})", redact_url_password(url)),
        })?;
        Ok(SmtpSettings {
            url: url.to_owned(),
            from,
        })
    }

    /// The URL with the password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The URL as given, password included: for the mailer's transport only, never a log.
    pub(crate) fn url_with_password(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.redacted_url())
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// Parses the sender (`regauth@example.com` or `regauth <regauth@example.com>`).
pub fn parse_from(from: &str) -> Result<Mailbox, SmtpSettingsError> {
    from.trim()
        .parse::<Mailbox>()
        .map_err(|error| SmtpSettingsError {
            setting: "smtp_from",
            message: format!("{from:?} is not a mail address ({error})"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_url_forms_parse() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com",
        ] {
            SmtpSettings::parse(url, "regauth@localhost").unwrap();
        }
    }

    #[test]
    fn a_bad_url_or_sender_is_named_and_the_password_not_repeated() {
        let error =
            SmtpSettings::parse("http://user:hunter2@mail.example.com", "regauth@localhost")
                .unwrap_err();
        assert_eq!(error.setting, "smtp_url");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = SmtpSettings::parse(
            "smtp://user:hunter2@mail.example.com?tls=sometimes",
            "regauth@localhost",
        )
        .unwrap_err();
        assert_eq!(error.setting, "smtp_url");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let error = SmtpSettings::parse("smtp://mail.example.com", "not an address").unwrap_err();
        assert_eq!(error.setting, "smtp_from");
    }

    #[test]
    fn the_sender_may_carry_a_name() {
        let from = parse_from("Registry <regauth@example.com>").unwrap();
        assert_eq!(from.email.to_string(), "regauth@example.com");
        parse_from("regauth@localhost").unwrap();
    }
}
