//! Text that people typed and that other people will read: token names, usernames. Control
//! characters (ANSI escapes, newlines, NUL, C1 codes) and the invisible bidirectional
//! overrides can repaint a terminal, forge a log or mail line, or hide what a name says, so
//! names refuse them and whatever is printed escapes them.

use std::borrow::Cow;

use super::ValidationError;

/// A character that must not appear in a name: a control character (C0, DEL, C1), a
/// bidirectional mark, embedding, override or isolate ("Trojan Source"), a zero-width character
/// (which makes two names that look the same differ) or a line or paragraph separator (a new
/// line to a log reader that is not a control character).
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Refuses a value holding a forbidden character, naming the field.
pub fn refuse_control_characters(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.chars().any(is_forbidden) {
        return Err(ValidationError::new(
            field,
            "must not contain control or invisible characters",
        ));
    }
    Ok(())
}

/// The text with every forbidden character written as a `\u{…}` escape (and `\` as `\\`
/// when something was escaped, so the escape cannot be forged). Plain text comes back as is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_forbidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_forbidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_escapes_newlines_and_bidi_overrides_are_forbidden() {
        for bad in [
            "\u{1b}[31mred",
            "a\nb",
            "a\rb",
            "nul\0",
            "\u{9b}31m",
            "a\u{202e}b",
            "\u{7f}",
            "zero\u{200b}width",
            "joiner\u{200d}",
            "word\u{2060}joiner",
            "bom\u{feff}",
            "line\u{2028}separator",
            "paragraph\u{2029}separator",
        ] {
            let error = refuse_control_characters("name", bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                "name must not contain control or invisible characters"
            );
        }
        assert!(refuse_control_characters("name", "CI pusher — prod (ünïcode) 🚀").is_ok());
    }

    #[test]
    fn printable_escapes_only_what_is_forbidden() {
        assert!(matches!(
            printable("plain name"),
            Cow::Borrowed("plain name")
        ));
        assert_eq!(printable("\u{1b}[31mred\nx"), "\\u{1b}[31mred\\u{a}x");
        assert_eq!(printable("a\\u{1b}\u{7}"), "a\\\\u{1b}\\u{7}");
        assert!(!printable("\u{1b}\u{9b}\u{202e}\t")
            .chars()
            .any(is_forbidden));
    }
}
