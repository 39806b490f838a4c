//! Hiding the secrets a URL may carry, for log lines and error messages.

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs (database and
/// SMTP URLs alike). Uses the URL parser, so a password holding `@` or `:` is hidden whole; a
/// URL that does not parse is hidden entirely.
pub fn redact_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<URL>".into();
            }
            parsed.to_string()
        }
        Err(_) => "<URL that does not parse>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
