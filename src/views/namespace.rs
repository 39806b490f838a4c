//! Projects and groups, as GitLab's projects and groups APIs answer them.

use serde::Serialize;

use super::Timestamp;
use crate::domain::address_range::IpRanges;
use crate::domain::token_lifetime::LifetimeLimits;
use crate::domain::{Namespace, NamespaceKind};

/// A project or a group, each in its own shape.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum NamespaceView<'a> {
    Project(ProjectView<'a>),
    Group(GroupView<'a>),
}

impl<'a> NamespaceView<'a> {
    /// The namespace in its kind's shape, without a group's settings; `web_url` under
    /// `public_url`.
    pub fn new(namespace: &'a Namespace, public_url: &str) -> Self {
        match namespace.kind {
            NamespaceKind::Project => {
                NamespaceView::Project(ProjectView::new(namespace, public_url))
            }
            NamespaceKind::Group => {
                NamespaceView::Group(GroupView::new(namespace, public_url, None))
            }
        }
    }
}

/// A project: `GET` and `PUT /api/v4/projects/:id`; `regauth project list --json`.
#[derive(Debug, Serialize)]
pub struct ProjectView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub path: &'a str,
    pub path_with_namespace: &'a str,
    pub namespace: ParentView,
    pub web_url: String,
    pub visibility: &'static str,
    pub created_at: Timestamp,
}

/// The group a project is in (`null`s for a project at the top).
#[derive(Debug, Serialize)]
pub struct ParentView {
    pub id: Option<i64>,
    pub full_path: Option<String>,
}

impl<'a> ProjectView<'a> {
    pub fn new(project: &'a Namespace, public_url: &str) -> Self {
        let full_path = project.full_path.as_str();
        ProjectView {
            id: project.id,
            name: &project.name,
            path: project.full_path.last_component(),
            path_with_namespace: full_path,
            namespace: ParentView {
                id: project.parent_id,
                full_path: project.full_path.parent().map(|p| p.as_str().to_owned()),
            },
            web_url: format!("{public_url}/{full_path}"),
            visibility: project.visibility.as_str(),
            created_at: Timestamp(project.created_at),
        }
    }
}

/// A group: `GET` and `PUT /api/v4/groups/:id` (with its [`GroupSettingsView`]); `regauth
/// group list --json` (without).
#[derive(Debug, Serialize)]
pub struct GroupView<'a> {
    pub id: i64,
    pub name: &'a str,
    pub path: &'a str,
    pub full_path: &'a str,
    pub parent_id: Option<i64>,
    pub web_url: String,
    pub created_at: Timestamp,
    /// Absent (not `null`) where the answer leaves the settings out.
    #[serde(flatten)]
    pub settings: Option<GroupSettingsView>,
}

impl<'a> GroupView<'a> {
    pub fn new(
        group: &'a Namespace,
        public_url: &str,
        settings: Option<GroupSettingsView>,
    ) -> Self {
        let full_path = group.full_path.as_str();
        GroupView {
            id: group.id,
            name: &group.name,
            path: group.full_path.last_component(),
            full_path,
            parent_id: group.parent_id,
            web_url: format!("{public_url}/{full_path}"),
            created_at: Timestamp(group.created_at),
            settings,
        }
    }
}

/// A group's own restrictions on its tokens, in [`GroupView`].
#[derive(Debug, Serialize)]
pub struct GroupSettingsView {
    /// Comma-separated, `""` when none.
    pub ip_restriction_ranges: String,
    #[serde(flatten)]
    pub limits: GroupLimitsView,
}

impl GroupSettingsView {
    pub fn new(ranges: &IpRanges, limits: LifetimeLimits) -> Self {
        GroupSettingsView {
            ip_restriction_ranges: ranges.to_text(),
            limits: GroupLimitsView::new(limits),
        }
    }
}

/// A group's own limits on new tokens: in [`GroupSettingsView`]; `regauth group update`
/// prints them.
#[derive(Debug, Serialize)]
pub struct GroupLimitsView {
    /// `null`: no maximum of the group's own.
    pub max_token_lifetime_days: Option<u32>,
    pub require_token_expiry: bool,
}

impl GroupLimitsView {
    pub fn new(limits: LifetimeLimits) -> Self {
        GroupLimitsView {
            max_token_lifetime_days: limits.max_days,
            require_token_expiry: limits.require_expiry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NamespacePath;
    use chrono::{TimeZone as _, Utc};
    use serde_json::json;

    fn namespace(kind: NamespaceKind, path: &str, parent_id: Option<i64>) -> Namespace {
        Namespace {
            id: 7,
            kind,
            parent_id,
            full_path: NamespacePath::parse(path).unwrap(),
            name: "Web".into(),
            visibility: Default::default(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_top_level_project_has_a_null_namespace() {
        let project = namespace(NamespaceKind::Project, "web", None);
        let view = serde_json::to_value(NamespaceView::new(&project, "https://r.test")).unwrap();
        assert_eq!(view["namespace"], json!({"id": null, "full_path": null}));
        assert_eq!(view["web_url"], "https://r.test/web");
    }

    #[test]
    fn a_groups_settings_are_left_out_where_the_answer_has_none_and_null_when_unset() {
        let group = namespace(NamespaceKind::Group, "acme/tools", Some(3));
        let listed = serde_json::to_value(NamespaceView::new(&group, "https://r.test")).unwrap();
        let keys: Vec<&str> = listed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "created_at",
                "full_path",
                "id",
                "name",
                "parent_id",
                "path",
                "web_url"
            ]
        );
        let settings = GroupSettingsView::new(&IpRanges::default(), LifetimeLimits::default());
        let shown =
            serde_json::to_value(GroupView::new(&group, "https://r.test", Some(settings))).unwrap();
        assert_eq!(shown["ip_restriction_ranges"], "");
        assert_eq!(shown["max_token_lifetime_days"], serde_json::Value::Null);
        assert_eq!(shown["require_token_expiry"], false);
        assert_eq!(shown["path"], "tools");
    }
}
