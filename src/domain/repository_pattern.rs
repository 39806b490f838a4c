//! Repository patterns: a token limited to some repositories below its owner
//! (`repository_patterns`, globs relative to the owner's path: a token of `acme/web` with
//! `["app", "tools/*"]` reaches `acme/web/app` and `acme/web/tools/x`). `*` matches within
//! one path segment, `**` (a whole segment) any number of segments, none included.
//!
//! A pattern is checked when the token is created so that it can only narrow: it is
//! relative (no leading `/`), has no `.` or `..` segment, no `%`, `\`, uppercase or anything
//! else a registry name cannot hold; a segment without `*` must itself be a valid name
//! component, or it could never match. Patterns are parsed once, when the row is read.

use std::fmt;
use std::sync::Arc;

use super::deploy_token::ValidationError;
use super::path::{is_valid_component, MAX_PATH_LEN};

/// Most patterns one token may hold.
pub const MAX_PATTERNS: usize = 100;

const FIELD: &str = "repository_patterns";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    /// A name component, matched exactly.
    Literal(String),
    /// A segment with `*` wildcards: the pieces between them, in order.
    Wildcard(Vec<String>),
    /// `**`: any number of segments, none included.
    Any,
}

/// One pattern, as written and as segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryPattern {
    text: String,
    segments: Vec<Segment>,
}

impl RepositoryPattern {
    pub fn parse(text: &str) -> Result<RepositoryPattern, ValidationError> {
        let invalid = |message: String| ValidationError::new(FIELD, message);
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("has an empty pattern".to_owned()));
        }
        if text.len() > MAX_PATH_LEN {
            return Err(invalid(format!(
                "pattern {text:?} is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        if text.starts_with('/') {
            return Err(invalid(format!(
                "pattern {text:?} starts with '/': patterns are relative to the token's project or group"
            )));
        }
        let mut segments = Vec::new();
        for segment in text.split('/') {
            segments.push(parse_segment(text, segment).map_err(invalid)?);
        }
        Ok(RepositoryPattern {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern matches a path given as its segments below the owner.
    pub fn matches(&self, path: &[&str]) -> bool {
        matches_from(&self.segments, path)
    }

    /// Whether the pattern matches every path at or below `prefix` (it is `prefix` matched
    /// segment by segment, then `**`): what a group-wide operation below the owner needs.
    pub fn covers_everything_below(&self, prefix: &[&str]) -> bool {
        match self.segments.split_last() {
            Some((Segment::Any, head)) => matches_from(head, prefix),
            _ => false,
        }
    }
}

fn parse_segment(pattern: &str, segment: &str) -> Result<Segment, String> {
    if segment.is_empty() {
        return Err(format!(
            "pattern {pattern:?} has an empty segment ('//' or a trailing '/')"
        ));
    }
    if segment == "." || segment == ".." {
        return Err(format!(
            "pattern {pattern:?} has a {segment:?} segment: a pattern can only narrow, never leave the token's project or group"
        ));
    }
    if segment == "**" {
        return Ok(Segment::Any);
    }
    if segment.contains("**") {
        return Err(format!("pattern {pattern:?}: '**' must be a whole segment"));
    }
    if let Some(bad) = segment.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '*'))
    }) {
        let why = if bad.is_ascii_uppercase() {
            "registry names are lowercase".to_owned()
        } else {
            format!("{bad:?} cannot appear in a registry name")
        };
        return Err(format!("pattern {pattern:?}: {why}"));
    }
    if !segment.contains('*') {
        return if is_valid_component(segment) {
            Ok(Segment::Literal(segment.to_owned()))
        } else {
            Err(format!(
                "pattern {pattern:?}: {segment:?} is not a valid name component (lowercase [a-z0-9]+ runs joined by '.', '_', '__' or '-')"
            ))
        };
    }
    Ok(Segment::Wildcard(
        segment.split('*').map(str::to_owned).collect(),
    ))
}

fn matches_from(pattern: &[Segment], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((Segment::Any, rest)) => {
            (0..=path.len()).any(|skip| matches_from(rest, &path[skip..]))
        }
        Some((segment, rest)) => match path.split_first() {
            Some((first, tail)) => segment_matches(segment, first) && matches_from(rest, tail),
            None => false,
        },
    }
}

fn segment_matches(segment: &Segment, text: &str) -> bool {
    match segment {
        Segment::Literal(literal) => literal == text,
        Segment::Any => true,
        Segment::Wildcard(pieces) => wildcard_matches(pieces, text),
    }
}

/// `pieces` are the text between `*`s: the first must start the text, the last end it, the
/// others appear in order between.
fn wildcard_matches(pieces: &[String], text: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return false;
    };
    let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for piece in middle {
        match remaining.find(piece.as_str()) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last.as_str())
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The patterns of a token, parsed once and shared cheaply: empty means "every repository
/// the owner reaches".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryPatterns(Arc<[RepositoryPattern]>);

impl RepositoryPatterns {
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<RepositoryPatterns, ValidationError> {
        let mut parsed: Vec<RepositoryPattern> = Vec::new();
        for pattern in patterns {
            let pattern = RepositoryPattern::parse(pattern.as_ref())?;
            if !parsed.contains(&pattern) {
                parsed.push(pattern);
            }
        }
        if parsed.len() > MAX_PATTERNS {
            return Err(ValidationError::new(
                FIELD,
                format!("has more than {MAX_PATTERNS} patterns"),
            ));
        }
        Ok(RepositoryPatterns(parsed.into()))
    }

    /// The stored form (a JSON list of strings); read back with [`RepositoryPatterns::from_stored`].
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::json!(self.texts()).to_string())
    }

    pub fn from_stored(stored: Option<&str>) -> Result<RepositoryPatterns, String> {
        let Some(stored) = stored.filter(|text| !text.is_empty()) else {
            return Ok(RepositoryPatterns::default());
        };
        let texts: Vec<String> = serde_json::from_str(stored)
            .map_err(|error| format!("repository_patterns: {error}"))?;
        RepositoryPatterns::parse(&texts).map_err(|error| error.to_string())
    }

    pub fn texts(&self) -> Vec<&str> {
        self.0.iter().map(RepositoryPattern::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a path, given as its segments below the owner, is allowed.
    pub fn allows(&self, below_owner: &[&str]) -> bool {
        self.is_empty() || self.0.iter().any(|pattern| pattern.matches(below_owner))
    }

    /// Whether everything at or below the path is allowed (a group-wide read).
    pub fn allows_everything_below(&self, below_owner: &[&str]) -> bool {
        self.is_empty()
            || self
                .0
                .iter()
                .any(|pattern| pattern.covers_everything_below(below_owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_could_reach_outside_the_owner_or_never_match_are_refused() {
        for (bad, says) in [
            ("", "empty"),
            ("/acme/web", "starts with '/'"),
            ("..", "\"..\" segment"),
            ("app/../../other", "\"..\" segment"),
            ("./app", "\".\" segment"),
            ("app//x", "empty segment"),
            ("app/", "empty segment"),
            ("App", "lowercase"),
            ("app%2fx", "'%'"),
            ("app%2Fx", "'%'"),
            ("app\\x", "'\\\\'"),
            ("app:1", "':'"),
            ("a**b", "whole segment"),
            ("-app", "not a valid name component"),
            ("app..x", "not a valid name component"),
            ("ap p", "' '"),
        ] {
            let error = RepositoryPattern::parse(bad).unwrap_err();
            assert_eq!(error.field, "repository_patterns");
            assert!(error.message.contains(says), "{bad:?}: {}", error.message);
        }
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("p{i}")).collect();
        assert!(RepositoryPatterns::parse(&many).is_err());
    }

    #[test]
    fn globs_match_by_whole_segments() {
        let pattern = |text: &str| RepositoryPattern::parse(text).unwrap();
        for (glob, path, matches) in [
            ("app", "app", true),
            ("app", "app/x", false),
            ("app", "ap", false),
            ("app", "", false),
            ("tools/*", "tools/x", true),
            ("tools/*", "tools", false),
            ("tools/*", "tools/x/y", false),
            ("*", "anything", true),
            ("*", "a/b", false),
            ("**", "", true),
            ("**", "a/b/c", true),
            ("app/**", "app", true),
            ("app/**", "app/x/y", true),
            ("app/**", "apps/x", false),
            ("**/cache", "a/b/cache", true),
            ("**/cache", "cache", true),
            ("**/cache", "a/cache/x", false),
            ("web-*", "web-api", true),
            ("web-*", "web-", true),
            ("web-*", "web", false),
            ("*-api", "web-api", true),
            ("*-api", "web-apis", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
        ] {
            let segments: Vec<&str> = if path.is_empty() {
                vec![]
            } else {
                path.split('/').collect()
            };
            assert_eq!(
                pattern(glob).matches(&segments),
                matches,
                "{glob:?} on {path:?}"
            );
        }
    }

    #[test]
    fn patterns_are_stored_as_a_json_list_and_read_back() {
        let patterns = RepositoryPatterns::parse(&["app", "tools/*", "app"]).unwrap();
        assert_eq!(patterns.texts(), ["app", "tools/*"], "duplicates merge");
        let stored = patterns.to_stored().unwrap();
        assert_eq!(stored, r#"["app","tools/*"]"#);
        assert_eq!(
            RepositoryPatterns::from_stored(Some(&stored)).unwrap(),
            patterns
        );
        assert!(RepositoryPatterns::from_stored(None).unwrap().is_empty());
        assert!(RepositoryPatterns::from_stored(Some("[\"..\"]")).is_err());
        assert_eq!(RepositoryPatterns::default().to_stored(), None);
    }
}
