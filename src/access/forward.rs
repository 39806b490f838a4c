//! Which git or package operation an original request (as a reverse proxy reports it to
//! `/-/forward-auth`) is, and on which project or group.
//!
//! Git smart HTTP (as `git http-backend` serves it, and GitLab's URLs):
//! `/<project path>.git/info/refs?service=git-upload-pack`, `POST /<project path>.git/git-upload-pack`
//! are fetches; `service=git-receive-pack` and `POST .../git-receive-pack` are pushes. Any other
//! GET or HEAD below `<project>.git/` (the dumb protocol, LFS downloads) is a fetch, and the LFS
//! batch `POST .../info/lfs/objects/batch` too; every other method is a push.
//!
//! Packages (GitLab's API paths): `/api/v4/projects/<id or url-encoded path>/packages/<format>/...`
//! and the group-level `/api/v4/groups/<id or url-encoded path>/-/packages/<format>/...`; GET and
//! HEAD read, DELETE deletes, any other method writes.
//!
//! The proxy decides which file or backend serves the request from the *normalised* path, while
//! this module sees the raw one: a `.` or `..` segment, an empty segment or an encoded `/` in
//! any segment but the project id could make the two disagree (`/public.git/../private.git/`),
//! so such a request maps to nothing and is refused.

use percent_encoding::percent_decode_str;

use crate::access::policy::Operation;
use crate::domain::NamespacePath;

/// How the original URL names a project or group: a numeric id or a full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceId {
    Id(i64),
    Path(NamespacePath),
}

/// The project or group an operation is done to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetRef {
    Project(NamespaceId),
    Group(NamespaceId),
}

/// A request regauth guards: what it does, and to what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardedRequest {
    pub operation: Operation,
    pub target: TargetRef,
}

/// Classifies the original request; `None` when it is not a git or package request regauth
/// knows (or its path is ambiguous), which the caller refuses.
pub fn classify(method: &str, uri: &str) -> Option<GuardedRequest> {
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, query),
        None => (uri, ""),
    };
    let raw: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for segment in &raw {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        if decoded.is_empty() || decoded == "." || decoded == ".." || decoded.contains('\\') {
            return None;
        }
        segments.push(decoded.into_owned());
    }
    let method = method.to_ascii_uppercase();
    if segments.first().map(String::as_str) == Some("api") {
        return classify_package(&method, &segments);
    }
    classify_git(&method, &segments, query)
}

fn classify_package(method: &str, segments: &[String]) -> Option<GuardedRequest> {
    let rest: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (target, format) = match rest.as_slice() {
        ["api", "v4", "projects", id, "packages", format, ..] => {
            let id = namespace_id(id)?;
            if matches!(&id, NamespaceId::Path(path) if path.parent().is_none()) {
                return None;
            }
            (TargetRef::Project(id), *format)
        }
        ["api", "v4", "groups", id, "-", "packages", format, ..] => {
            (TargetRef::Group(namespace_id(id)?), *format)
        }
        _ => return None,
    };
    if format.is_empty()
        || !format
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    // Only the id may hold an encoded '/': anywhere else it would be read differently by
    // the proxy, which decodes it.
    let id_index = 3;
    if segments
        .iter()
        .enumerate()
        .any(|(i, s)| i != id_index && s.contains('/'))
    {
        return None;
    }
    let operation = match method {
        "GET" | "HEAD" => Operation::PackageRead,
        "DELETE" => Operation::PackageDelete,
        _ => Operation::PackageWrite,
    };
    Some(GuardedRequest { operation, target })
}

fn namespace_id(text: &str) -> Option<NamespaceId> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(NamespaceId::Id);
    }
    NamespacePath::parse(text).ok().map(NamespaceId::Path)
}

fn classify_git(method: &str, segments: &[String], query: &str) -> Option<GuardedRequest> {
    if segments.iter().any(|s| s.contains('/')) {
        return None;
    }
    let repo_index = segments.iter().position(|s| s.ends_with(".git"))?;
    let mut components: Vec<&str> = segments[..repo_index].iter().map(String::as_str).collect();
    let last = segments[repo_index].strip_suffix(".git")?;
    components.push(last);
    // A project always lives in a group.
    if components.len() < 2 {
        return None;
    }
    let project = NamespacePath::parse(&components.join("/")).ok()?;
    let rest: Vec<&str> = segments[repo_index + 1..]
        .iter()
        .map(String::as_str)
        .collect();
    let service = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "service")
        .map(|(_, value)| value);
    let push = service == Some("git-receive-pack") || rest.last() == Some(&"git-receive-pack");
    let operation = if push {
        Operation::GitPush
    } else {
        match (method, rest.as_slice()) {
            ("GET" | "HEAD", _) => Operation::GitFetch,
            ("POST", ["git-upload-pack"]) => Operation::GitFetch,
            ("POST", ["info", "lfs", "objects", "batch"]) => Operation::GitFetch,
            _ => Operation::GitPush,
        }
    };
    Some(GuardedRequest {
        operation,
        target: TargetRef::Project(NamespaceId::Path(project)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    fn path(p: &str) -> NamespaceId {
        NamespaceId::Path(NamespacePath::parse(p).unwrap())
    }

    fn project(operation: Operation, p: &str) -> Option<GuardedRequest> {
        Some(GuardedRequest {
            operation,
            target: TargetRef::Project(path(p)),
        })
    }

    #[test]
    fn git_smart_http_requests_map_to_fetch_or_push_on_their_project() {
        let cases = [
            (
                "GET",
                "/acme/web.git/info/refs?service=git-upload-pack",
                project(GitFetch, "acme/web"),
            ),
            (
                "POST",
                "/acme/web.git/git-upload-pack",
                project(GitFetch, "acme/web"),
            ),
            (
                "GET",
                "/acme/platform/infra.git/info/refs?service=git-upload-pack",
                project(GitFetch, "acme/platform/infra"),
            ),
            (
                "GET",
                "/acme/web.git/info/refs?service=git-receive-pack",
                project(GitPush, "acme/web"),
            ),
            (
                "POST",
                "/acme/web.git/git-receive-pack",
                project(GitPush, "acme/web"),
            ),
            ("GET", "/acme/web.git/HEAD", project(GitFetch, "acme/web")),
            (
                "HEAD",
                "/acme/web.git/objects/info/packs",
                project(GitFetch, "acme/web"),
            ),
            (
                "POST",
                "/acme/web.git/info/lfs/objects/batch",
                project(GitFetch, "acme/web"),
            ),
            (
                "PUT",
                "/acme/web.git/info/lfs/objects/abc",
                project(GitPush, "acme/web"),
            ),
            (
                "post",
                "/acme/web.git/git-upload-pack",
                project(GitFetch, "acme/web"),
            ),
        ];
        for (method, uri, want) in cases {
            assert_eq!(classify(method, uri), want, "{method} {uri}");
        }
    }

    #[test]
    fn package_requests_map_to_read_write_or_delete_on_their_project_or_group() {
        let generic = "/api/v4/projects/acme%2Fweb/packages/generic/tool/1.0.0/tool.tar.gz";
        assert_eq!(classify("GET", generic), project(PackageRead, "acme/web"));
        assert_eq!(classify("HEAD", generic), project(PackageRead, "acme/web"));
        assert_eq!(classify("PUT", generic), project(PackageWrite, "acme/web"));
        assert_eq!(classify("POST", generic), project(PackageWrite, "acme/web"));
        assert_eq!(
            classify("DELETE", generic),
            project(PackageDelete, "acme/web")
        );
        assert_eq!(
            classify(
                "GET",
                "/api/v4/projects/42/packages/maven/com/acme/app/1.0/app-1.0.jar"
            ),
            Some(GuardedRequest {
                operation: PackageRead,
                target: TargetRef::Project(NamespaceId::Id(42)),
            })
        );
        assert_eq!(
            classify(
                "GET",
                "/api/v4/groups/acme%2Fplatform/-/packages/npm/@acme/ui"
            ),
            Some(GuardedRequest {
                operation: PackageRead,
                target: TargetRef::Group(path("acme/platform")),
            })
        );
        assert_eq!(
            classify("PUT", "/api/v4/groups/7/-/packages/maven/x"),
            Some(GuardedRequest {
                operation: PackageWrite,
                target: TargetRef::Group(NamespaceId::Id(7)),
            })
        );
    }

    #[test]
    fn paths_the_proxy_could_read_differently_map_to_nothing() {
        let refused = [
            "/acme/public.git/../private.git/info/refs?service=git-upload-pack",
            "/acme/public.git/%2e%2e/%2E%2E/acme/private.git/git-upload-pack",
            "/acme/./web.git/info/refs",
            "//acme/web.git/info/refs",
            "/acme%2Fweb.git/info/refs",
            "/api/v4/projects/acme%2Fweb/packages/generic/a/..%2F..%2F..%2Fother%2Fsecret/x",
            "/api/v4/projects/acme%2Fweb/packages/generic/a/../../../../7/packages/generic/x",
            "/api/v4/projects/acme%2F..%2Fother/packages/generic/a/1/x",
            "/api/v4/projects/acme/web/packages/generic/a/1/x",
            "/api/v4/projects/Acme%2FWeb/packages/generic/a/1/x",
            "/api/v4/projects/acme%2Fweb/packages//generic",
            "/api/v4/projects/acme%2Fweb/packages/Generic/a",
            "/api/v4/projects/acme%2Fweb/deploy_tokens",
            "/api/v4/projects/acme%2Fweb/packages",
            "/acme/web/info/refs",
            "/web.git/info/refs",
            "/api/v4/projects/web/packages/generic/a/1/x",
            "/",
            "",
            "relative.git/info/refs",
            "/acme/web.git/info/refs%ff",
        ];
        for uri in refused {
            assert_eq!(classify("GET", uri), None, "{uri}");
        }
    }
}
