//! Full paths of groups and projects (DOMAIN.md "Namespaces"), and the name grammar they
//! share with registry repository names (PROTOCOL.md §5: lowercase components `[a-z0-9]+`
//! joined by `.`, `_`, `__` or runs of `-`, separated by `/`). Ancestry is by whole
//! components, so `acme` is not an ancestor of `acme-evil`.

use std::fmt;

/// Longest accepted path (group, project or repository), in bytes.
pub const MAX_PATH_LEN: usize = 255;

/// Why a path or repository name was refused. Each message names the rule broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is the empty string.
    #[error("path is empty")]
    Empty,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("path is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Holds an uppercase letter.
    #[error("path contains uppercase letters; registry names are lowercase")]
    Uppercase,
    /// Holds a `:`, as in a `host:port` prefix.
    #[error("path contains ':'; a host:port prefix is not part of a repository name")]
    HostPort,
    /// Starts with `/`.
    #[error("path starts with '/'")]
    LeadingSlash,
    /// Ends with `/`.
    #[error("path ends with '/'")]
    TrailingSlash,
    /// Holds `//`.
    #[error("path has an empty component ('//')")]
    EmptyComponent,
    /// Holds `..`.
    #[error("path contains '..'")]
    DotDot,
    /// A component breaks the component grammar.
    #[error(
        "component \"{0}\" is not lowercase [a-z0-9]+ runs joined by '.', '_', '__' or runs of '-'"
    )]
    InvalidComponent(String),
}

/// Validates a whole path; on success every component matches the grammar.
pub(crate) fn validate(s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: s.len(),
            max: MAX_PATH_LEN,
        });
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(PathError::Uppercase);
    }
    if s.contains(':') {
        return Err(PathError::HostPort);
    }
    if s.starts_with('/') {
        return Err(PathError::LeadingSlash);
    }
    if s.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    if s.contains("//") {
        return Err(PathError::EmptyComponent);
    }
    if s.contains("..") {
        return Err(PathError::DotDot);
    }
    match s.split('/').find(|c| !is_valid_component(c)) {
        Some(bad) => Err(PathError::InvalidComponent(bad.to_owned())),
        None => Ok(()),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub(crate) fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        // One or more alphanumerics.
        let start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // One separator: '.', '_', '__' or a run of '-'.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// True when `prefix` equals `path` or is an ancestor of it by whole components.
pub(crate) fn is_component_prefix(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

/// Full path of a group or project (`acme`, `acme/platform/web`), validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacePath(String);

impl NamespacePath {
    /// Parses a full path: lowercase registry-name components separated by `/`, no empty
    /// components, no `..`, no trailing `/`, at most [`MAX_PATH_LEN`] bytes.
    pub fn parse(s: &str) -> Result<NamespacePath, PathError> {
        validate(s)?;
        Ok(NamespacePath(s.to_owned()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// The enclosing group's path, or `None` for a top-level path.
    pub fn parent(&self) -> Option<NamespacePath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| NamespacePath(parent.to_owned()))
    }

    /// This path and every ancestor, longest first (`acme/platform/web`, `acme/platform`,
    /// `acme`): the namespaces whose memberships apply here.
    pub fn self_and_ancestors(&self) -> Vec<NamespacePath> {
        std::iter::successors(Some(self.clone()), NamespacePath::parent).collect()
    }

    /// True when `self` is `other` or one of its ancestors, by whole components
    /// (`acme` is an ancestor of `acme/web`, not of `acme-evil`).
    pub fn is_same_or_ancestor_of(&self, other: &NamespacePath) -> bool {
        is_component_prefix(&self.0, &other.0)
    }

    /// The last component (`web` for `acme/web`).
    pub fn last_component(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl AsRef<NamespacePath> for NamespacePath {
    fn as_ref(&self) -> &NamespacePath {
        self
    }
}

impl fmt::Display for NamespacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> NamespacePath {
        match NamespacePath::parse(s) {
            Ok(path) => path,
            Err(err) => panic!("test path {s:?} is invalid: {err}"),
        }
    }

    #[test]
    fn path_error_messages_name_the_rule_broken() {
        assert_eq!(
            PathError::TooLong { len: 300, max: 255 }.to_string(),
            "path is 300 bytes long; the limit is 255"
        );
        assert_eq!(PathError::TrailingSlash.to_string(), "path ends with '/'");
        assert_eq!(
            PathError::HostPort.to_string(),
            "path contains ':'; a host:port prefix is not part of a repository name"
        );
    }

    #[test]
    fn a_namespace_path_exposes_components_parent_and_last_component() {
        let path = ns("acme/platform/web");
        assert_eq!(path.as_str(), "acme/platform/web");
        assert_eq!(
            path.components().collect::<Vec<_>>(),
            ["acme", "platform", "web"]
        );
        assert_eq!(path.last_component(), "web");
        assert_eq!(path.parent(), Some(ns("acme/platform")));
        assert_eq!(ns("acme").parent(), None);
        assert_eq!(ns("acme").last_component(), "acme");
    }

    #[test]
    fn self_and_ancestors_go_up_to_the_top_level_group() {
        let path = NamespacePath::parse("acme/platform/web").unwrap();
        let names: Vec<String> = path
            .self_and_ancestors()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(names, vec!["acme/platform/web", "acme/platform", "acme"]);
    }
}
