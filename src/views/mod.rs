//! The management API's answers in GitLab's shapes, one `Serialize` struct per shape, shared
//! by the REST API and the CLI's `--json` output so that both print the same thing. Each
//! struct's doc comment names the endpoints and commands that answer with it.
//!
//! The shapes are a contract (scripts written against GitLab read them): an `Option` field
//! is always present, `null` when empty, as GitLab prints it; times are [`Timestamp`]s.

mod admin_token;
mod deploy_token;
mod namespace;
mod registry_event;
mod user;
mod workload_identity;

pub use admin_token::{
    DeployTokenInformation, PersonalAccessTokenInformation, PresentedSecret,
    RevocableTokenTypesView, TokenInformation, TokenOwnerView, TokenUserView,
    WorkloadCredentialInformation,
};
pub use deploy_token::{
    CiCredentialsView, CiOwnerView, CreatedDeployTokenView, DeployTokenView, RotatedDeployTokenView,
};
pub use namespace::{
    GroupLimitsView, GroupSettingsView, GroupView, NamespaceView, ParentView, ProjectView,
};
pub use registry_event::{EnvelopeReceiptView, IssuedTokenView, RegistryEventView};
pub use user::{
    CreatedPersonalAccessTokenView, PatExpiry, PersonalAccessTokenView, PreferencesView,
    RotatedPersonalAccessTokenView, UserView,
};
pub use workload_identity::{CreatedWorkloadIdentityView, WorkloadIdentityView};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// ISO 8601 with milliseconds, as GitLab prints times.
pub fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An instant in an answer, written as [`timestamp`] writes it (`2026-12-05T12:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&timestamp(self.0))
    }
}

/// An optional instant as an answer writes it: `null` when there is none.
fn optional(instant: Option<DateTime<Utc>>) -> Option<Timestamp> {
    instant.map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn timestamps_are_written_with_milliseconds_in_utc() {
        let instant = Utc.with_ymd_and_hms(2026, 12, 5, 12, 30, 0).unwrap();
        assert_eq!(
            serde_json::to_value(Timestamp(instant)).unwrap(),
            "2026-12-05T12:30:00.000Z"
        );
        assert_eq!(
            serde_json::to_value(optional(None)).unwrap(),
            serde_json::Value::Null
        );
    }
}
