//! Which git or package operation an original request (as a reverse proxy reports it to
//! `/-/forward-auth`) is, and on which project or group.
//!
//! Git smart HTTP (as `git http-backend` serves it, and GitLab's URLs):
//! `/<project path>.git/info/refs?service=git-upload-pack`, `POST /<project path>.git/git-upload-pack`
//! are fetches; `service=git-receive-pack` and `POST .../git-receive-pack` are pushes. Any other
//! GET or HEAD below `<project>.git/` (the dumb protocol, LFS downloads) is a fetch; the LFS
//! batch `POST .../info/lfs/objects/batch` is what its body's `operation` says (`download`: a
//! fetch, `upload`: a push), and a push when the proxy does not pass the body on (nginx's
//! `auth_request` never does): it hands out upload URLs, which may point at storage no other
//! check guards. Every other method is a push. `service=` is read as git http-backend reads
//! it: the last `service` parameter, percent-decoded.
//!
//! Exactly one segment may end in `.git`, and no group or project component may end in `.git`
//! or `.atom` (GitLab refuses such paths): otherwise `/acme/pub.git/private.git/...` could be
//! authorized as project `acme/pub` and served as `acme/pub.git/private`.
//!
//! Packages (GitLab's API paths): `/api/v4/projects/<id or url-encoded path>/packages/<format>/...`
//! and the group-level `/api/v4/groups/<id or url-encoded path>/-/packages/<format>/...`; GET and
//! HEAD read, DELETE deletes, any other method writes.
//!
//! The proxy decides which file or backend serves the request from the *normalised* path, while
//! this module sees the raw one: a `.` or `..` segment, an empty segment or an encoded `/` in
//! any segment but the project id could make the two disagree (`/public.git/../private.git/`),
//! so such a request maps to nothing and is refused. So are segments that some backends
//! normalise and others do not: any segment of dots alone (`...`), dots followed by blanks
//! (`..%20`), a `;` path parameter (`..;`, `.;`, Tomcat and Spring strip them), a trailing
//! blank, and control characters.

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
    classify_with_lfs(method, uri, None)
}

/// [`classify`], with the operation of an LFS batch request's body where the proxy passed it.
pub fn classify_with_lfs(
    method: &str,
    uri: &str,
    lfs: Option<LfsBatchOperation>,
) -> Option<GuardedRequest> {
    let (path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, query),
        None => (uri, ""),
    };
    let raw: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for segment in &raw {
        let decoded = percent_decode_str(segment).decode_utf8().ok()?;
        if is_ambiguous_segment(&decoded) {
            return None;
        }
        segments.push(decoded.into_owned());
    }
    let method = method.to_ascii_uppercase();
    if segments.first().map(String::as_str) == Some("api") {
        return classify_package(&method, &segments);
    }
    classify_git(&method, &segments, query, lfs)
}

/// A segment that backends could read as something else than this module does.
fn is_ambiguous_segment(segment: &str) -> bool {
    segment.is_empty()
        || segment.contains(['\\', ';'])
        || segment.chars().any(char::is_control)
        || segment.ends_with([' ', '\t'])
        || segment.trim_end_matches([' ', '\t', '.']).is_empty()
}

/// What an LFS batch request's body says it wants; `None` when the proxy sent no body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LfsBatchOperation {
    Download,
    Upload,
}

impl LfsBatchOperation {
    /// The `operation` of a batch request body (git-lfs API); `None` for anything else.
    pub fn from_body(body: &[u8]) -> Option<LfsBatchOperation> {
        #[derive(serde::Deserialize)]
        struct Batch {
            operation: String,
        }
        match serde_json::from_slice::<Batch>(body)
            .ok()?
            .operation
            .as_str()
        {
            "download" => Some(LfsBatchOperation::Download),
            "upload" => Some(LfsBatchOperation::Upload),
            _ => None,
        }
    }
}

/// Whether the original request is an LFS batch request, whose operation is in its body.
pub fn is_lfs_batch(method: &str, uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or_default();
    method.eq_ignore_ascii_case("POST") && path.ends_with(".git/info/lfs/objects/batch")
}

/// The last `service` parameter, decoded, as git http-backend reads its query.
fn git_service(query: &str) -> Option<String> {
    query.split('&').rev().find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(key) == "service").then(|| decode(value))
    })
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

fn classify_git(
    method: &str,
    segments: &[String],
    query: &str,
    lfs: Option<LfsBatchOperation>,
) -> Option<GuardedRequest> {
    if segments.iter().any(|s| s.contains('/')) {
        return None;
    }
    let repo_index = segments.iter().position(|s| s.ends_with(".git"))?;
    if segments[repo_index + 1..]
        .iter()
        .any(|s| s.ends_with(".git"))
    {
        return None;
    }
    let mut components: Vec<&str> = segments[..repo_index].iter().map(String::as_str).collect();
    let last = segments[repo_index].strip_suffix(".git")?;
    components.push(last);
    if components
        .iter()
        .any(|component| component.ends_with(".git") || component.ends_with(".atom"))
    {
        return None;
    }
    // A project always lives in a group.
    if components.len() < 2 {
        return None;
    }
    let project = NamespacePath::parse(&components.join("/")).ok()?;
    let rest: Vec<&str> = segments[repo_index + 1..]
        .iter()
        .map(String::as_str)
        .collect();
    // What git serves below a repository; anything else would be read as a longer repository
    // path by a backend (`/acme/pub.git/private/info/refs` is repository `acme/pub.git/private`).
    if !matches!(
        rest.first(),
        None | Some(&("info" | "objects" | "HEAD" | "git-upload-pack" | "git-receive-pack"))
    ) {
        return None;
    }
    let service = git_service(query);
    let push =
        service.as_deref() == Some("git-receive-pack") || rest.last() == Some(&"git-receive-pack");
    let operation = if push {
        Operation::GitPush
    } else {
        match (method, rest.as_slice()) {
            ("GET" | "HEAD", _) => Operation::GitFetch,
            ("POST", ["git-upload-pack"]) => Operation::GitFetch,
            ("POST", ["info", "lfs", "objects", "batch"])
                if lfs == Some(LfsBatchOperation::Download) =>
            {
                Operation::GitFetch
            }
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
            // Without its body, an LFS batch request may be an upload.
            (
                "POST",
                "/acme/web.git/info/lfs/objects/batch",
                project(GitPush, "acme/web"),
            ),
            // git http-backend reads the last `service`, decoded.
            (
                "GET",
                "/acme/web.git/info/refs?service=git-upload-pack&service=git-receive-pack",
                project(GitPush, "acme/web"),
            ),
            (
                "GET",
                "/acme/web.git/info/refs?service=git-%72eceive-pack",
                project(GitPush, "acme/web"),
            ),
            (
                "GET",
                "/acme/web.git/info/refs?service=git-receive-pack&service=git-upload-pack",
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
            // Namespaces ending in .git or .atom, or two .git segments: ambiguous.
            "/acme/pub.git/private.git/info/refs?service=git-upload-pack",
            "/acme/pub.git/private/info/refs",
            "/acme.atom/web.git/info/refs",
            "/acme/feed.atom.git/info/refs",
            // Segments that backends normalise differently.
            "/acme/public.git/..;/private.git/info/refs",
            "/acme/public.git/.;/info/refs",
            "/acme/public.git/..%20/private.git/info/refs",
            "/acme/public.git/.../info/refs",
            "/acme/web.git/info/refs;jsessionid=1",
            "/acme/web.git/info%09/refs",
            "/acme/web.git/info /refs",
            "/api/v4/projects/acme%2Fweb/packages/generic/a/..;/x",
            "/api/v4/projects/acme%2Fweb/packages/generic/a/.../x",
        ];
        for uri in refused {
            assert_eq!(classify("GET", uri), None, "{uri}");
        }
    }

    #[test]
    fn an_lfs_batch_request_is_what_its_body_says() {
        let uri = "/acme/web.git/info/lfs/objects/batch";
        let download = LfsBatchOperation::from_body(br#"{"operation":"download","objects":[]}"#);
        let upload = LfsBatchOperation::from_body(br#"{"operation":"upload","objects":[]}"#);
        assert_eq!(download, Some(LfsBatchOperation::Download));
        assert_eq!(upload, Some(LfsBatchOperation::Upload));
        assert_eq!(LfsBatchOperation::from_body(b"not json"), None);
        assert_eq!(
            LfsBatchOperation::from_body(br#"{"operation":"delete"}"#),
            None
        );
        assert_eq!(
            classify_with_lfs("POST", uri, download),
            project(GitFetch, "acme/web")
        );
        assert_eq!(
            classify_with_lfs("POST", uri, upload),
            project(GitPush, "acme/web")
        );
        assert_eq!(
            classify_with_lfs("POST", uri, None),
            project(GitPush, "acme/web")
        );
        assert!(is_lfs_batch("post", uri));
        assert!(!is_lfs_batch("GET", uri));
    }
}
