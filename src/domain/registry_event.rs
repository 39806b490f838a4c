//! The registry's notifications (CNCF distribution, `notifications.endpoints`): the envelope
//! parsed into events, each with what it did to which repository and who did it (WIRE-FORMATS
//! §2(c)). One odd event never spoils its envelope: it comes back as an [`OddEvent`] beside the
//! good ones, so that the receiver can log and count it and still take the rest.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::deploy_token::DEFAULT_USERNAME_PREFIX;

/// The envelope media types: distribution 2.8 (`v1`) and 3.x (`v2`).
pub const ENVELOPE_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json",
];

/// Whether a `Content-Type` names an envelope (parameters and case ignored).
pub fn is_envelope_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    ENVELOPE_MEDIA_TYPES
        .iter()
        .any(|known| known.eq_ignore_ascii_case(essence))
}

/// Longest repository name distribution accepts.
const MAX_REPOSITORY: usize = 255;
const MAX_TAG: usize = 128;
const MAX_ID: usize = 200;
const MAX_DIGEST: usize = 200;
const MAX_ACTOR: usize = 255;
/// Descriptive fields are cut to these lengths (in characters), never refused.
const MAX_MEDIA_TYPE: usize = 200;
const MAX_ADDRESS: usize = 100;
const MAX_USER_AGENT: usize = 300;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum RegistryAction {
    Push,
    Pull,
    /// A cross-repository blob mount (`from_repository` names the source).
    Mount,
    Delete,
}

impl RegistryAction {
    pub const ALL: [RegistryAction; 4] = [
        RegistryAction::Push,
        RegistryAction::Pull,
        RegistryAction::Mount,
        RegistryAction::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<RegistryAction> {
        text.parse().ok()
    }
}

/// What the event is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr, strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum TargetKind {
    Manifest,
    Blob,
    /// A tag deleted (`target.tag` without a digest).
    Tag,
    /// A repository deleted (neither digest nor tag).
    Repository,
}

impl TargetKind {
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Manifest,
        TargetKind::Blob,
        TargetKind::Tag,
        TargetKind::Repository,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<TargetKind> {
        text.parse().ok()
    }

    /// From the target's fields. A digest with a manifest or index media type is a manifest,
    /// with another media type a blob; a deleted digest carries no media type and is taken
    /// for a manifest (distribution sends blob deletes only for the API's rare blob DELETE).
    fn of(digest: Option<&str>, tag: Option<&str>, media_type: Option<&str>) -> TargetKind {
        match (digest, tag, media_type) {
            (None, Some(_), _) => TargetKind::Tag,
            (None, None, _) => TargetKind::Repository,
            (Some(_), _, Some(media_type)) if !is_manifest_media_type(media_type) => {
                TargetKind::Blob
            }
            (Some(_), _, _) => TargetKind::Manifest,
        }
    }
}

fn is_manifest_media_type(media_type: &str) -> bool {
    let media_type = media_type.to_ascii_lowercase();
    media_type.contains("manifest") || media_type.contains("image.index")
}

/// One event as the registry reported it, checked and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    /// The registry's event id (a UUID): what retries are recognised by.
    pub id: String,
    /// The registry's timestamp (the time received when it sent none that parses).
    pub at: DateTime<Utc>,
    pub action: RegistryAction,
    pub kind: TargetKind,
    /// `actor.name`: the registry JWT's `sub`; empty for anonymous pulls.
    pub actor: String,
    pub repository: String,
    pub from_repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    /// `request.addr` (the registry's view of the client; see WIRE-FORMATS on spoofing).
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

impl RegistryEvent {
    /// Blob pulls dominate the volume: they are kept as one row per actor, repository and
    /// day, under this key. Everything else is kept whole (`None`).
    pub fn aggregate_key(&self) -> Option<String> {
        (self.action == RegistryAction::Pull && self.kind == TargetKind::Blob).then(|| {
            format!(
                "blob-pull/{}/{}/{}",
                self.at.date_naive(),
                self.actor,
                self.repository
            )
        })
    }
}

/// An event taken out of its envelope: its id (when it had a usable one), its action (when
/// known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OddEvent {
    pub id: Option<String>,
    pub action: Option<RegistryAction>,
    pub reason: String,
}

/// A body that is not an envelope at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a registry notification envelope: {0}")]
pub struct EnvelopeError(pub String);

#[derive(Deserialize)]
struct Envelope {
    events: Vec<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireEvent {
    id: Option<String>,
    timestamp: Option<String>,
    action: Option<String>,
    target: WireTarget,
    request: WireRequest,
    actor: WireActor,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireTarget {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    repository: Option<String>,
    from_repository: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireRequest {
    addr: Option<String>,
    useragent: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireActor {
    name: Option<String>,
}

/// The envelope's events, each parsed on its own; `received_at` stands in for a timestamp
/// that is missing or does not parse.
pub fn parse_envelope(
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Vec<Result<RegistryEvent, OddEvent>>, EnvelopeError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| EnvelopeError(error.to_string()))?;
    Ok(envelope
        .events
        .into_iter()
        .map(|value| parse_event(value, received_at))
        .collect())
}

fn parse_event(
    value: serde_json::Value,
    received_at: DateTime<Utc>,
) -> Result<RegistryEvent, OddEvent> {
    let raw_id = value
        .get("id")
        .and_then(|id| id.as_str())
        .map(str::to_owned);
    let odd = |action: Option<RegistryAction>, reason: String| OddEvent {
        id: raw_id
            .clone()
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID),
        action,
        reason,
    };
    let wire: WireEvent = serde_json::from_value(value)
        .map_err(|error| odd(None, format!("malformed event: {error}")))?;
    let action_text = wire.action.unwrap_or_default();
    let action = RegistryAction::parse(&action_text)
        .ok_or_else(|| odd(None, format!("unknown action {:?}", cut(&action_text, 40))))?;
    let id = wire
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| odd(Some(action), "no id".into()))?;
    if id.len() > MAX_ID || id.chars().any(char::is_control) {
        return Err(odd(
            Some(action),
            "the id is too long or holds control characters".into(),
        ));
    }
    let field =
        |name: &str, value: Option<String>, max: usize| -> Result<Option<String>, OddEvent> {
            match value.filter(|text| !text.is_empty()) {
                None => Ok(None),
                Some(text) if text.len() > max || text.chars().any(char::is_control) => Err(odd(
                    Some(action),
                    format!("{name} is longer than {max} bytes or holds control characters"),
                )),
                Some(text) => Ok(Some(text)),
            }
        };
    let repository = field("target.repository", wire.target.repository, MAX_REPOSITORY)?
        .ok_or_else(|| odd(Some(action), "no target.repository".into()))?;
    let from_repository = field(
        "target.fromRepository",
        wire.target.from_repository,
        MAX_REPOSITORY,
    )?;
    let tag = field("target.tag", wire.target.tag, MAX_TAG)?;
    let digest = field("target.digest", wire.target.digest, MAX_DIGEST)?;
    let actor = field("actor.name", wire.actor.name, MAX_ACTOR)?.unwrap_or_default();
    let media_type = bounded(wire.target.media_type, MAX_MEDIA_TYPE);
    let at = wire
        .timestamp
        .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
        .map_or(received_at, |at| at.with_timezone(&Utc));
    Ok(RegistryEvent {
        kind: TargetKind::of(digest.as_deref(), tag.as_deref(), media_type.as_deref()),
        id,
        at,
        action,
        actor,
        repository,
        from_repository,
        tag,
        digest,
        media_type,
        size: wire.target.size.filter(|size| *size >= 0),
        address: bounded(wire.request.addr, MAX_ADDRESS).map(|addr| without_port(&addr)),
        user_agent: bounded(wire.request.useragent, MAX_USER_AGENT),
    })
}

/// A descriptive field: control characters dropped, cut to `max` characters, `None` if empty.
fn bounded(value: Option<String>, max: usize) -> Option<String> {
    value
        .map(|text| {
            text.chars()
                .filter(|c| !c.is_control())
                .take(max)
                .collect::<String>()
        })
        .filter(|text| !text.is_empty())
}

/// `request.addr` is the TCP peer with its port (`127.0.0.1:50312`, `[::1]:50312`) unless a
/// proxy header named the client: the address alone, as regauth records its clients.
fn without_port(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map_or_else(|_| addr.to_owned(), |socket| socket.ip().to_string())
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Which credential an `actor.name` names: a default deploy-token username names its token by
/// id, `gitlab+workload-<id>` a workload identity policy (a name no deploy token may take);
/// anything else is looked up as a custom username. Empty: an anonymous pull.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorName {
    Anonymous,
    DeployTokenId(i64),
    WorkloadIdentityId(i64),
    Username(String),
}

impl ActorName {
    pub fn parse(actor: &str) -> ActorName {
        if actor.is_empty() {
            return ActorName::Anonymous;
        }
        if let Some(id) = super::workload_identity::parse_workload_username(actor) {
            return ActorName::WorkloadIdentityId(id);
        }
        match actor
            .strip_prefix(DEFAULT_USERNAME_PREFIX)
            .and_then(|id| id.parse::<i64>().ok())
        {
            // Only the canonical spelling: `...-007` is no token's username.
            Some(id) if id > 0 && actor == super::deploy_token::default_username(id) => {
                ActorName::DeployTokenId(id)
            }
            _ => ActorName::Username(actor.to_owned()),
        }
    }
}

/// A registry event as stored and shown: whole, or the blob pulls of a day added up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRegistryEvent {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub action: RegistryAction,
    pub kind: TargetKind,
    pub actor: String,
    pub deploy_token_id: Option<i64>,
    pub repository: String,
    pub from_repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<i64>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// How many events this row stands for (blob pulls of a day; 1 otherwise).
    pub count: i64,
}

/// A registry token regauth issued to a credential: one aggregated `registry_token.issue`
/// record (the same token, address and grant within a second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub address: Option<String>,
    /// The granted access, `repository:<name>:<actions>` entries separated by spaces.
    pub granted: String,
}

/// How sure a link from an event to an issued token is: the grant and lifetime match, and
/// the client address too, or not (a proxy, NAT, or another client of the same token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum IssueMatch {
    OtherAddress,
    SameAddress,
}

impl IssueMatch {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Registry tokens are issued a little before they are used; clocks differ a little too.
const ISSUED_BEFORE_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl Issuance {
    /// Whether the grant holds `action` on `repository` (`*` holds every action).
    fn grants(&self, repository: &str, action: &str) -> bool {
        self.granted.split(' ').any(|entry| {
            entry
                .strip_prefix("repository:")
                .and_then(|rest| rest.rsplit_once(':'))
                .is_some_and(|(name, actions)| {
                    name == repository && actions.split(',').any(|a| a == action || a == "*")
                })
        })
    }

    /// Whether this token could have done `event`: its grant holds the action (a mount:
    /// push on the target and pull on the source) and it was alive then
    /// (`iat − 10 s ≤ time ≤ exp`).
    fn covers(&self, event: &StoredRegistryEvent, token_ttl: chrono::TimeDelta) -> bool {
        let at = event.last_at;
        let alive = self.first - ISSUED_BEFORE_SLACK <= at && at <= self.last + token_ttl;
        let granted = match event.action {
            RegistryAction::Push => self.grants(&event.repository, "push"),
            RegistryAction::Pull => self.grants(&event.repository, "pull"),
            RegistryAction::Delete => self.grants(&event.repository, "delete"),
            RegistryAction::Mount => {
                self.grants(&event.repository, "push")
                    && event
                        .from_repository
                        .as_deref()
                        .is_none_or(|from| self.grants(from, "pull"))
            }
        };
        alive && granted
    }
}

/// The issued token most likely behind `event`, best effort (WIRE-FORMATS §2(c)): among the
/// issuances whose grant and lifetime cover it, one from the same client address if any,
/// then the latest issued.
pub fn matching_issuance<'a>(
    event: &StoredRegistryEvent,
    issuances: &'a [Issuance],
    token_ttl: chrono::TimeDelta,
) -> Option<(&'a Issuance, IssueMatch)> {
    issuances
        .iter()
        .filter(|issuance| issuance.covers(event, token_ttl))
        .map(|issuance| {
            let same = event.address.is_some() && issuance.address == event.address;
            let confidence = if same {
                IssueMatch::SameAddress
            } else {
                IssueMatch::OtherAddress
            };
            (issuance, confidence)
        })
        .max_by_key(|(issuance, confidence)| (*confidence, issuance.last))
}

/// The network an address counts for in the new-address warning: its /24 (IPv4) or /64
/// (IPv6), so that a client moving within its own network is no news; anything that is not an
/// IP address stands for itself.
pub fn network_of(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(&v4.to_string()),
            None => {
                let segments = v6.segments();
                let prefix = std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                );
                format!("{prefix}/64")
            }
        },
        Err(_) => address.to_owned(),
    }
}

/// A token acting from a network it had not used within the warning window (while it has
/// used others: a token's first network is no warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub deploy_token_id: i64,
    pub namespace_id: Option<i64>,
    pub actor: String,
    pub network: String,
    pub address: String,
    pub at: DateTime<Utc>,
    pub action: RegistryAction,
    pub repository: String,
}

/// A network a deploy token acted from, and when (first and last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenNetwork {
    pub network: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Notes in `known` (a token's networks) that it acted from `network` at `at`; true when
/// that is news: the token had not used it within `window` before `at` (nor after it: events
/// may come out of order), and had used another network (its first is no news).
pub fn note_network(
    known: &mut Vec<SeenNetwork>,
    network: &str,
    at: DateTime<Utc>,
    window: chrono::TimeDelta,
) -> bool {
    let since = at.checked_sub_signed(window).unwrap_or(at);
    match known.iter_mut().find(|seen| seen.network == network) {
        Some(seen) => {
            let news = !(seen.last_seen >= since && seen.first_seen <= at);
            seen.last_seen = seen.last_seen.max(at);
            seen.first_seen = seen.first_seen.min(at);
            news
        }
        None => {
            let news = !known.is_empty();
            known.push(SeenNetwork {
                network: network.to_owned(),
                first_seen: at,
                last_seen: at,
            });
            news
        }
    }
}

crate::every_variant_listed!(RegistryAction, in_order);
crate::every_variant_listed!(TargetKind, in_order);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_news_when_unused_within_the_window_and_not_the_first() {
        let at = |hour: i64| DateTime::from_timestamp(1_800_000_000 + hour * 3600, 0).unwrap();
        let window = chrono::TimeDelta::days(1);
        let mut known = Vec::new();
        assert!(
            !note_network(&mut known, "10.0.0.0/24", at(0), window),
            "the first"
        );
        assert!(
            !note_network(&mut known, "10.0.0.0/24", at(1), window),
            "known"
        );
        assert!(
            note_network(&mut known, "10.9.9.0/24", at(2), window),
            "another"
        );
        assert!(
            !note_network(&mut known, "10.9.9.0/24", at(3), window),
            "now known"
        );
        assert!(
            !note_network(&mut known, "10.9.9.0/24", at(20), window),
            "within a day"
        );
        assert!(
            note_network(&mut known, "10.0.0.0/24", at(100), window),
            "unused for days"
        );
        assert_eq!(known[0].first_seen, at(0));
        assert_eq!(known[0].last_seen, at(100));
        assert_eq!((known[1].first_seen, known[1].last_seen), (at(2), at(20)));
    }

    fn received() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn one(json: &str) -> Result<RegistryEvent, OddEvent> {
        let body = format!("{{\"events\":[{json}]}}");
        parse_envelope(body.as_bytes(), received())
            .unwrap()
            .pop()
            .unwrap()
    }

    const MANIFEST_PUSH: &str = r#"{"id":"320678d8-ca14-430f-8bb6-4ca139cd83f7",
        "timestamp":"2016-03-09T14:44:26.402973972-08:00","action":"push",
        "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
          "digest":"sha256:abc","size":708,"length":708,"repository":"grp/app",
          "url":"https://registry/v2/grp/app/manifests/sha256:abc","tag":"1.0"},
        "request":{"id":"6df24a34","addr":"10.1.2.3","host":"registry.example.com",
          "method":"PUT","useragent":"docker/27"},
        "actor":{"name":"gitlab+deploy-token-5"},
        "source":{"addr":"registry-0:5000","instanceID":"a53db899"}}"#;

    #[test]
    fn a_manifest_push_is_read_whole() {
        let event = one(MANIFEST_PUSH).unwrap();
        assert_eq!(event.id, "320678d8-ca14-430f-8bb6-4ca139cd83f7");
        assert_eq!(event.action, RegistryAction::Push);
        assert_eq!(event.kind, TargetKind::Manifest);
        assert_eq!(event.repository, "grp/app");
        assert_eq!(event.tag.as_deref(), Some("1.0"));
        assert_eq!(event.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(event.size, Some(708));
        assert_eq!(event.address.as_deref(), Some("10.1.2.3"));
        assert_eq!(event.user_agent.as_deref(), Some("docker/27"));
        assert_eq!(event.actor, "gitlab+deploy-token-5");
        assert_eq!(event.at.to_rfc3339(), "2016-03-09T22:44:26.402973972+00:00");
        assert_eq!(event.aggregate_key(), None);
    }

    #[test]
    fn targets_are_told_apart_by_digest_tag_and_media_type() {
        let kind = |target: &str| {
            one(&format!(
                r#"{{"id":"x","action":"delete","target":{{"repository":"a/b"{target}}}}}"#
            ))
            .unwrap()
            .kind
        };
        assert_eq!(kind(r#","digest":"sha256:1""#), TargetKind::Manifest);
        assert_eq!(kind(r#","tag":"v1""#), TargetKind::Tag);
        assert_eq!(kind(""), TargetKind::Repository);
        assert_eq!(
            kind(r#","digest":"sha256:1","mediaType":"application/octet-stream""#),
            TargetKind::Blob
        );
        assert_eq!(
            kind(r#","digest":"sha256:1","mediaType":"application/vnd.oci.image.index.v1+json""#),
            TargetKind::Manifest
        );
        assert_eq!(
            kind(
                r#","digest":"sha256:1","mediaType":"application/vnd.docker.distribution.manifest.list.v2+json""#
            ),
            TargetKind::Manifest
        );
    }

    #[test]
    fn blob_pulls_are_aggregated_per_actor_repository_and_day() {
        let event = one(
            r#"{"id":"b","timestamp":"2027-01-02T23:59:59Z","action":"pull",
            "target":{"mediaType":"application/octet-stream","digest":"sha256:1","repository":"a/b"},
            "actor":{"name":"ci"}}"#,
        )
        .unwrap();
        assert_eq!(
            event.aggregate_key().as_deref(),
            Some("blob-pull/2027-01-02/ci/a/b")
        );
        let push = one(
            r#"{"id":"c","action":"push",
            "target":{"mediaType":"application/octet-stream","digest":"sha256:1","repository":"a/b"}}"#,
        )
        .unwrap();
        assert_eq!(push.aggregate_key(), None);
    }

    #[test]
    fn odd_events_are_set_apart_with_their_reason_and_never_spoil_the_envelope() {
        let body = format!(
            r#"{{"events":[{MANIFEST_PUSH},
            {{"id":"u1","action":"frobnicate","target":{{"repository":"a/b"}}}},
            {{"action":"push","target":{{"repository":"a/b"}}}},
            {{"id":"u3","action":"pull","target":{{}}}},
            {{"id":"u4","action":"pull","target":{{"repository":"{long}"}}}},
            {{"id":"u5","action":"pull","target":"not an object"}},
            17]}}"#,
            long = "a".repeat(256)
        );
        let events = parse_envelope(body.as_bytes(), received()).unwrap();
        assert_eq!(events.len(), 7);
        assert!(events[0].is_ok());
        let reasons: Vec<String> = events[1..]
            .iter()
            .map(|event| event.clone().unwrap_err().reason)
            .collect();
        assert!(reasons[0].contains("unknown action"), "{reasons:?}");
        assert_eq!(reasons[1], "no id");
        assert_eq!(reasons[2], "no target.repository");
        assert!(
            reasons[3].contains("target.repository is longer"),
            "{reasons:?}"
        );
        assert!(reasons[4].contains("malformed"), "{reasons:?}");
        assert!(reasons[5].contains("malformed"), "{reasons:?}");
        assert_eq!(
            events[2].clone().unwrap_err().action,
            Some(RegistryAction::Push)
        );
    }

    #[test]
    fn a_missing_or_bad_timestamp_becomes_the_time_received_and_long_texts_are_cut() {
        let event = one(&format!(
            r#"{{"id":"t","timestamp":"yesterday","action":"pull",
            "target":{{"repository":"a/b","digest":"sha256:1","mediaType":"application/vnd.oci.image.manifest.v1+json"}},
            "request":{{"useragent":"{agent}"}}}}"#,
            agent = "x".repeat(1000)
        ))
        .unwrap();
        assert_eq!(event.at, received());
        assert_eq!(event.user_agent.unwrap().len(), MAX_USER_AGENT);
        assert_eq!(event.actor, "");
    }

    #[test]
    fn addresses_count_by_their_24_or_64_network() {
        assert_eq!(network_of("10.1.2.3"), "10.1.2.0/24");
        assert_eq!(network_of("10.1.2.254"), "10.1.2.0/24");
        assert_eq!(network_of("10.1.3.1"), "10.1.3.0/24");
        assert_eq!(network_of("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(network_of("::ffff:10.1.2.3"), "10.1.2.0/24");
        assert_eq!(network_of("client.example"), "client.example");
    }

    #[test]
    fn the_clients_port_is_dropped_from_its_address() {
        let address = |addr: &str| {
            one(&format!(
                r#"{{"id":"a","action":"pull","target":{{"repository":"a/b"}},"request":{{"addr":"{addr}"}}}}"#
            ))
            .unwrap()
            .address
            .unwrap()
        };
        assert_eq!(address("127.0.0.1:50312"), "127.0.0.1");
        assert_eq!(address("[2001:db8::1]:50312"), "2001:db8::1");
        assert_eq!(address("10.1.2.3"), "10.1.2.3");
        assert_eq!(address("2001:db8::1"), "2001:db8::1");
        assert_eq!(address("client.example"), "client.example");
    }

    #[test]
    fn a_body_without_an_events_list_is_no_envelope() {
        for body in ["", "[]", "{}", "{\"events\":{}}", "not json"] {
            assert!(
                parse_envelope(body.as_bytes(), received()).is_err(),
                "{body}"
            );
        }
        assert_eq!(
            parse_envelope(b"{\"events\":[]}", received()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn both_envelope_media_types_are_known() {
        assert!(is_envelope_media_type(
            "application/vnd.docker.distribution.events.v1+json"
        ));
        assert!(is_envelope_media_type(
            "application/vnd.docker.distribution.events.v2+json; charset=utf-8"
        ));
        assert!(!is_envelope_media_type("application/json"));
        assert!(!is_envelope_media_type(""));
    }

    fn stored(action: RegistryAction, at: i64, address: &str) -> StoredRegistryEvent {
        let at = DateTime::from_timestamp(1_800_000_000 + at, 0).unwrap();
        StoredRegistryEvent {
            id: 1,
            created_at: at,
            last_at: at,
            action,
            kind: TargetKind::Manifest,
            actor: "ci".into(),
            deploy_token_id: Some(1),
            repository: "acme/web".into(),
            from_repository: None,
            tag: None,
            digest: None,
            media_type: None,
            size: None,
            address: Some(address.into()),
            user_agent: None,
            count: 1,
        }
    }

    fn issued(at: i64, address: &str, granted: &str) -> Issuance {
        let at = DateTime::from_timestamp(1_800_000_000 + at, 0).unwrap();
        Issuance {
            first: at,
            last: at,
            address: Some(address.into()),
            granted: granted.into(),
        }
    }

    #[test]
    fn an_event_is_linked_to_the_issued_token_whose_grant_and_lifetime_cover_it() {
        let ttl = chrono::TimeDelta::seconds(300);
        let issuances = [
            issued(0, "10.0.0.1", "repository:acme/web:pull"),
            issued(100, "10.0.0.2", "repository:acme/web:pull,push"),
            issued(200, "10.0.0.1", "repository:acme/other:pull,push"),
        ];
        let link = |event: &StoredRegistryEvent| {
            matching_issuance(event, &issuances, ttl).map(|(issuance, confidence)| {
                (issuance.first.timestamp() - 1_800_000_000, confidence)
            })
        };
        // The same address wins over a later issuance from elsewhere.
        assert_eq!(
            link(&stored(RegistryAction::Pull, 150, "10.0.0.1")),
            Some((0, IssueMatch::SameAddress))
        );
        // Only the second grants push.
        assert_eq!(
            link(&stored(RegistryAction::Push, 150, "10.0.0.1")),
            Some((100, IssueMatch::OtherAddress))
        );
        // Issued at most 10 s after the event (clocks), alive until its expiry.
        assert_eq!(
            link(&stored(RegistryAction::Push, 91, "10.0.0.2")),
            Some((100, IssueMatch::SameAddress))
        );
        assert_eq!(link(&stored(RegistryAction::Push, 89, "10.0.0.2")), None);
        assert_eq!(link(&stored(RegistryAction::Push, 401, "10.0.0.2")), None);
        // Nothing grants delete.
        assert_eq!(link(&stored(RegistryAction::Delete, 150, "10.0.0.2")), None);
        // A mount needs pull on the source too.
        let mut mount = stored(RegistryAction::Mount, 150, "10.0.0.2");
        mount.from_repository = Some("acme/other".into());
        assert_eq!(link(&mount), None);
        mount.from_repository = Some("acme/web".into());
        assert_eq!(link(&mount), Some((100, IssueMatch::SameAddress)));
    }

    #[test]
    fn actor_names_name_a_token_by_id_a_username_or_nobody() {
        assert_eq!(ActorName::parse(""), ActorName::Anonymous);
        assert_eq!(
            ActorName::parse("gitlab+deploy-token-42"),
            ActorName::DeployTokenId(42)
        );
        assert_eq!(
            ActorName::parse("gitlab+deploy-token-042"),
            ActorName::Username("gitlab+deploy-token-042".into())
        );
        assert_eq!(ActorName::parse("ci"), ActorName::Username("ci".into()));
    }
}
