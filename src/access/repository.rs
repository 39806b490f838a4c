//! Registry repository names and which project a repository belongs to.
//!
//! Repository names follow the name grammar of PROTOCOL.md §5, shared with the namespace paths
//! of DOMAIN.md "Namespaces" ([`NamespacePath`], in `domain::path`, re-exported here), and
//! DOMAIN.md "Which repositories a token reaches" (a repository maps to the
//! project with the longest full path that prefixes it; the image part below the project is at
//! most two components; invalid names — uppercase, `..`, empty components, trailing `/`,
//! over-long — are dropped).

use std::fmt;

use crate::domain::path::{is_component_prefix, validate};
pub use crate::domain::path::{NamespacePath, PathError, MAX_PATH_LEN};

/// Most components a repository name may have below its project (`acme/web/api/v2`).
pub const MAX_IMAGE_DEPTH: usize = 2;

/// Fewest components a project path has: a project always lives in a group.
const MIN_PROJECT_COMPONENTS: usize = 2;

/// A registry repository name (`acme/web`, `acme/web/api/v2`), validated; never holds `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryPath(String);

impl RepositoryPath {
    /// Parses a repository name. Rejects uppercase, `..`, empty components, a leading or
    /// trailing `/`, `host:port`, and names over [`MAX_PATH_LEN`] bytes.
    pub fn parse(s: &str) -> Result<RepositoryPath, PathError> {
        validate(s)?;
        Ok(RepositoryPath(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// Candidate project full paths for this repository, longest first: the name itself and
    /// the name with 1 or 2 trailing components removed (image part below the project is up to
    /// two components), never fewer than 2 components left (a project lives in a group).
    ///
    /// The caller looks these up in ONE query and hands the hits to [`resolve_project`].
    pub fn candidate_project_paths(&self) -> Vec<NamespacePath> {
        let mut candidates = Vec::with_capacity(MAX_IMAGE_DEPTH + 1);
        let mut current: &str = &self.0;
        for removed in 0..=MAX_IMAGE_DEPTH {
            if current.split('/').count() < MIN_PROJECT_COMPONENTS {
                break;
            }
            // A prefix of a valid name, cut at '/', is itself a valid path (parse never fails here).
            if let Ok(path) = NamespacePath::parse(current) {
                candidates.push(path);
            }
            if removed == MAX_IMAGE_DEPTH {
                break;
            }
            match current.rsplit_once('/') {
                Some((parent, _)) => current = parent,
                None => break,
            }
        }
        candidates
    }

    /// True when the repository lies at or under `namespace`, by whole components.
    pub fn is_within(&self, namespace: &NamespacePath) -> bool {
        is_component_prefix(namespace.as_str(), &self.0)
    }

    /// True when `project` is one of [`Self::candidate_project_paths`].
    pub fn has_candidate_project(&self, project: &NamespacePath) -> bool {
        if !self.is_within(project) {
            return false;
        }
        let project_depth = project.components().count();
        let depth = self.components().count();
        project_depth >= MIN_PROJECT_COMPONENTS && depth - project_depth <= MAX_IMAGE_DEPTH
    }
}

impl fmt::Display for RepositoryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Given the projects that exist among the candidates (looked up by the caller in ONE query),
/// picks the one with the longest full path that is a whole-component prefix of the repository.
///
/// Entries that are not candidates of `repo` (see
/// [`RepositoryPath::candidate_project_paths`]: too shallow, more than two components above
/// the repository, or not a prefix at all) are ignored, so a sloppy query cannot widen access.
pub fn resolve_project<'p, P: AsRef<NamespacePath>>(
    repo: &RepositoryPath,
    existing: &'p [P],
) -> Option<&'p P> {
    existing
        .iter()
        .filter(|p| repo.has_candidate_project(p.as_ref()))
        .max_by_key(|p| p.as_ref().as_str().len())
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

    fn repo(s: &str) -> RepositoryPath {
        match RepositoryPath::parse(s) {
            Ok(path) => path,
            Err(err) => panic!("test repository {s:?} is invalid: {err}"),
        }
    }

    #[test]
    fn valid_names_are_accepted_by_both_parsers() {
        let long_ok = format!("a/{}", "b".repeat(MAX_PATH_LEN - 2));
        let cases = [
            "acme",
            "acme/web",
            "acme/platform/infra/web/api/v2",
            "a0/9z",
            "my.app/my_app/my__app/my-app/my---app",
            "acme-evil/web",
            "1/2/3",
            long_ok.as_str(),
        ];
        for case in cases {
            assert_eq!(
                RepositoryPath::parse(case).map(|r| r.to_string()),
                Ok(case.to_owned())
            );
            assert_eq!(
                NamespacePath::parse(case).map(|r| r.to_string()),
                Ok(case.to_owned())
            );
        }
    }

    #[test]
    fn invalid_names_are_rejected_with_the_rule_they_break() {
        use PathError::*;
        let too_long = format!("a/{}", "b".repeat(MAX_PATH_LEN - 1));
        let cases: Vec<(&str, PathError)> = vec![
            ("", Empty),
            (too_long.as_str(), TooLong { len: 256, max: 255 }),
            ("Acme/web", Uppercase),
            ("acme/Web", Uppercase),
            ("localhost:5000/acme/web", HostPort),
            ("acme/web:latest", HostPort),
            ("/acme/web", LeadingSlash),
            ("acme/web/", TrailingSlash),
            ("/", LeadingSlash),
            ("acme//web", EmptyComponent),
            ("acme/../web", DotDot),
            ("acme/..", DotDot),
            ("acme/web..x", DotDot),
            ("acme/./web", InvalidComponent(".".to_owned())),
            ("acme/.web", InvalidComponent(".web".to_owned())),
            ("acme/web.", InvalidComponent("web.".to_owned())),
            ("acme/-web", InvalidComponent("-web".to_owned())),
            ("acme/web-", InvalidComponent("web-".to_owned())),
            ("acme/_web", InvalidComponent("_web".to_owned())),
            ("acme/we___b", InvalidComponent("we___b".to_owned())),
            ("acme/we._b", InvalidComponent("we._b".to_owned())),
            ("acme/we b", InvalidComponent("we b".to_owned())),
            ("acme/wéb", InvalidComponent("wéb".to_owned())),
            ("acme/web@sha256", InvalidComponent("web@sha256".to_owned())),
        ];
        for (input, expected) in cases {
            assert_eq!(
                RepositoryPath::parse(input),
                Err(expected.clone()),
                "input {input:?}"
            );
            assert_eq!(
                NamespacePath::parse(input),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn ancestry_is_by_whole_components() {
        let cases = [
            ("acme", "acme", true),
            ("acme", "acme/web", true),
            ("acme", "acme/platform/infra/web", true),
            ("acme/platform", "acme/platform/web", true),
            ("acme", "acme-evil", false),
            ("acme", "acme-evil/web", false),
            ("acme", "acmeco/web", false),
            ("acme/web", "acme/web-api", false),
            ("acme/web", "acme", false),
            ("acme/platform", "acme/other/web", false),
            ("acme/platform/web", "acme/platform", false),
        ];
        for (ancestor, path, expected) in cases {
            assert_eq!(
                ns(ancestor).is_same_or_ancestor_of(&ns(path)),
                expected,
                "{ancestor} ancestor of {path}"
            );
            assert_eq!(
                repo(path).is_within(&ns(ancestor)),
                expected,
                "{path} within {ancestor}"
            );
        }
    }

    #[test]
    fn candidate_project_paths_go_at_most_two_components_up_and_keep_a_group() {
        let cases: &[(&str, &[&str])] = &[
            ("acme", &[]),
            ("acme/web", &["acme/web"]),
            ("acme/web/api", &["acme/web/api", "acme/web"]),
            (
                "acme/web/api/v2",
                &["acme/web/api/v2", "acme/web/api", "acme/web"],
            ),
            (
                "acme/platform/web/api/v2",
                &[
                    "acme/platform/web/api/v2",
                    "acme/platform/web/api",
                    "acme/platform/web",
                ],
            ),
        ];
        for (input, expected) in cases {
            let candidates: Vec<String> = repo(input)
                .candidate_project_paths()
                .iter()
                .map(|c| c.to_string())
                .collect();
            assert_eq!(candidates, *expected, "candidates of {input}");
        }
    }

    #[test]
    fn a_repository_resolves_to_the_longest_existing_candidate_project() {
        let existing = [ns("acme/web"), ns("acme/web/api"), ns("acme-evil/web")];
        let cases: &[(&str, Option<&str>)] = &[
            ("acme/web", Some("acme/web")),
            ("acme/web/cache", Some("acme/web")),
            ("acme/web/cache/v2", Some("acme/web")),
            // Too deep: the image part below acme/web would be three components.
            ("acme/web/cache/v2/x", None),
            ("acme/web/api", Some("acme/web/api")),
            ("acme/web/api/v2", Some("acme/web/api")),
            ("acme/web/api/v2/x", Some("acme/web/api")),
            ("acme/web/api/v2/x/y", None),
            ("acme/web-api", None),
            ("acme/webapp/x", None),
            ("acme-evil/web", Some("acme-evil/web")),
            ("acme/other", None),
            ("acme", None),
        ];
        for (input, expected) in cases {
            let resolved = resolve_project(&repo(input), &existing).map(|p| p.as_str());
            assert_eq!(resolved, *expected, "resolving {input}");
        }
    }

    #[test]
    fn resolution_ignores_existing_entries_that_are_not_candidates() {
        // A top-level path can never be a project, even if the caller passes it.
        let existing = [ns("acme")];
        assert_eq!(resolve_project(&repo("acme/web"), &existing), None);
        let none: [NamespacePath; 0] = [];
        assert_eq!(resolve_project(&repo("acme/web"), &none), None);
    }

    #[test]
    fn resolution_works_on_caller_types_that_hold_a_namespace_path() {
        struct Project {
            id: u32,
            path: NamespacePath,
        }
        impl AsRef<NamespacePath> for Project {
            fn as_ref(&self) -> &NamespacePath {
                &self.path
            }
        }
        let existing = [
            Project {
                id: 1,
                path: ns("acme/web"),
            },
            Project {
                id: 2,
                path: ns("acme/web/api"),
            },
        ];
        let resolved = resolve_project(&repo("acme/web/api/v2"), &existing).map(|p| p.id);
        assert_eq!(resolved, Some(2));
    }
}
