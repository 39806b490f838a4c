//! Sending mail: the [`Mailer`] trait the expiry notices go through (so the job can be tested
//! with a fake) and [`SmtpMailer`], its SMTP implementation with `lettre`.
//!
//! The server is given as one URL in lettre's form (`REGAUTH_SMTP_URL`):
//! `smtp://host:25` plain, `smtp://user:pass@host:587?tls=required` STARTTLS,
//! `smtps://user:pass@host:465` TLS from the first byte (rustls, the system's root
//! certificates). The URL may hold a password: it is never logged nor shown by `Debug`; use
//! [`SmtpSettings::redacted_url`].

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::redact_url_password;

/// One plain-text mail to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Display name of the recipient (a username).
    pub to_name: String,
    pub to_email: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid recipient address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Message(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
}

/// Delivers mail; a failure means the mail was not accepted and may be tried again.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// How long one SMTP exchange may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Sends through one SMTP server, a new connection per mail (the notices are few, once a
/// day).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<SmtpMailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|error| MailError::Smtp(error.to_string()))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(SmtpMailer {
            transport,
            from: settings.from.clone(),
            server: settings.redacted_url(),
        })
    }
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let address = mail
            .to_email
            .trim()
            .parse()
            .map_err(|_| MailError::Address(mail.to_email.clone()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(mail.to_name.clone()), address))
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|error| MailError::Message(error.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|error| MailError::Smtp(error.to_string()))?;
        Ok(())
    }
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
    fn the_password_never_reaches_debug_output() {
        let settings = SmtpSettings::parse(
            "smtp://user:hunter2@mail.example.com:587?tls=required",
            "regauth@localhost",
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert_eq!(
            settings.redacted_url(),
            "smtp://user:***@mail.example.com:587?tls=required"
        );
        let mailer = SmtpMailer::new(&settings).unwrap();
        let debug = format!("{mailer:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("mail.example.com"), "{debug}");
    }

    #[test]
    fn a_password_with_special_characters_is_hidden_whole() {
        let redacted = redact_url_password("smtp://user:p%40ss%3Aw0rd@mail.example.com");
        assert_eq!(redacted, "smtp://user:***@mail.example.com");
        assert_eq!(
            redact_url_password("smtp://mail.example.com:25"),
            "smtp://mail.example.com:25"
        );
        assert!(!redact_url_password("not a url hunter2").contains("hunter2"));
    }

    #[test]
    fn the_sender_may_carry_a_name() {
        let from = parse_from("Registry <regauth@example.com>").unwrap();
        assert_eq!(from.email.to_string(), "regauth@example.com");
        parse_from("regauth@localhost").unwrap();
    }
}
