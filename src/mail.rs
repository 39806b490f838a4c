//! Sending mail: the [`Mailer`] trait the expiry notices go through (so the job can be tested
//! with a fake) and [`SmtpMailer`], its SMTP implementation with `lettre`.
//!
//! The server is given as one URL in lettre's form (`REGAUTH_SMTP_URL`):
//! `smtp://host:25` plain, `smtp://user:pass@host:587?tls=required` STARTTLS,
//! `smtps://user:pass@host:465` TLS from the first byte (rustls, the system's root
//! certificates), parsed at load into [`SmtpSettings`] (`config`). The URL may hold a password:
//! it is never logged nor shown by `Debug`; use [`SmtpSettings::redacted_url`].

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::SmtpSettings;

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

/// Sends through one SMTP server, a new connection per mail (the notices are few, once a
/// day).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<SmtpMailer, MailError> {
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url_with_password())
                .map_err(|error| MailError::Smtp(error.to_string()))?
                .timeout(Some(SMTP_TIMEOUT))
                .build();
        Ok(SmtpMailer {
            transport,
            from: settings.from().clone(),
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
}
