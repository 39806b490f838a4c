//! The management API's requests: one `Deserialize` struct per request shape, each naming the
//! endpoints that take it, with the checks that turn it into what the services take.
//!
//! GitLab's clients send parameters in the query string, a form or a JSON body, scalars as
//! text or JSON numbers and booleans, lists as JSON arrays, comma lists or repeated `key[]`.
//! Every field is therefore a [`Param`], which keeps what was sent; the struct's methods read
//! the fields in a fixed order with the messages GitLab's clients are used to. Where a
//! request takes its parameters from the query string and the body, [`Sources`] merges them
//! into one JSON object first (each struct says which wins), and the struct is read from that.
//! Unknown fields are ignored.

mod deploy_token;
mod list;
mod namespace;
mod user;

pub use deploy_token::{CreateDeployTokenBody, DeployTokenUpdate, RotateParams};
pub use list::ListQuery;
pub use namespace::{GroupLimitsParams, ProjectUpdate};
pub use user::{AdminTokenBody, PreferencesUpdate};

use actix_web::http::header;
use actix_web::HttpRequest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{ApiError, Error};

/// One parameter as it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Param {
    #[default]
    Absent,
    /// JSON `null`.
    Null,
    /// A JSON string, or a value from the query string or a form.
    Text(String),
    /// A JSON number or boolean, as its JSON text (`12`, `true`).
    Scalar(String),
    /// A JSON array of strings, or a repeated form or query key.
    List(Vec<String>),
    /// Anything else: an object, an array holding something other than strings.
    Invalid,
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Param::of(Value::deserialize(deserializer)?))
    }
}

impl Param {
    fn of(value: Value) -> Self {
        match value {
            Value::Null => Param::Null,
            Value::String(text) => Param::Text(text),
            scalar @ (Value::Bool(_) | Value::Number(_)) => Param::Scalar(scalar.to_string()),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map_or(Param::Invalid, Param::List),
            Value::Object(_) => Param::Invalid,
        }
    }

    /// A string; a number or a list is invalid.
    fn string(self, key: &str) -> Result<Option<String>, ApiError> {
        match self {
            Param::Absent | Param::Null => Ok(None),
            Param::Text(text) => Ok(Some(text)),
            _ => Err(invalid(key)),
        }
    }

    /// A scalar as text (GitLab reads a JSON `true` or `12` as the text `true`, `12`).
    fn text(self, key: &str) -> Result<Option<String>, ApiError> {
        match self {
            Param::Absent | Param::Null => Ok(None),
            Param::Text(text) | Param::Scalar(text) => Ok(Some(text)),
            _ => Err(invalid(key)),
        }
    }

    /// Strings: a list, or one string (a comma list, as GitLab accepts); none when absent.
    fn list(self, key: &str) -> Result<Vec<String>, ApiError> {
        match self {
            Param::Absent | Param::Null => Ok(Vec::new()),
            Param::Text(text) => Ok(vec![text]),
            Param::List(items) => Ok(items),
            _ => Err(invalid(key)),
        }
    }

    /// A setting that may be cleared: absent `None`; `Some(None)` when `null` or blank.
    /// (`Sources::merged` lets no list or object through to a setting.)
    fn setting(&self) -> Option<Option<&str>> {
        match self {
            Param::Absent => None,
            Param::Text(text) | Param::Scalar(text) => {
                Some(Some(text.trim()).filter(|text| !text.is_empty()))
            }
            Param::Null | Param::List(_) | Param::Invalid => Some(None),
        }
    }
}

fn invalid(key: &str) -> ApiError {
    Error::InvalidRequest(format!("{key} is invalid")).into()
}

/// Where a request's parameters come from: its query string and its body (already read).
pub struct Sources<'a> {
    request: &'a HttpRequest,
    body: &'a [u8],
}

impl<'a> Sources<'a> {
    pub fn new(request: &'a HttpRequest, body: &'a [u8]) -> Self {
        Sources { request, body }
    }

    fn query(&self) -> Result<Vec<(String, String)>, ApiError> {
        serde_urlencoded::from_str(self.request.query_string())
            .map_err(|_| Error::InvalidRequest("the query is not valid URL encoding".into()).into())
    }

    fn is_json(&self) -> bool {
        self.request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().starts_with("application/json"))
    }

    /// The body as a form, or as JSON when it says it is JSON; `Body::Empty` when empty.
    fn body(&self) -> Result<Body, ApiError> {
        if self.body.is_empty() {
            return Ok(Body::Empty);
        }
        if self.is_json() {
            return Ok(Body::Json(json_value(self.body)?));
        }
        Ok(Body::Form(form_pairs(self.body)?))
    }

    /// The `fields` and `lists` from the query string, else (any of them not there) from the
    /// body; the first value of a key wins, a list is every value of the first source that
    /// has one (`key` or `key[]`, repeatable). JSON `null` is kept (it clears).
    fn query_first(&self, fields: &[&str], lists: &[&str]) -> Result<Map<String, Value>, ApiError> {
        let mut merged = pairs_map(self.query()?, fields, lists, Keep::First);
        let wanted = || fields.iter().chain(lists);
        if wanted().all(|field| merged.contains_key(*field)) {
            return Ok(merged);
        }
        let from_body = match self.body()? {
            Body::Empty => Map::new(),
            Body::Json(Value::Object(object)) => object,
            // Not an object: no parameters in it.
            Body::Json(_) => Map::new(),
            Body::Form(pairs) => pairs_map(pairs, fields, lists, Keep::First),
        };
        for (key, value) in from_body {
            merged.entry(key).or_insert(value);
        }
        Ok(merged)
    }

    /// Every parameter, the body's over the query string's, the last value of a key winning.
    /// The JSON body must be an object whose values are scalars or `null` (known or not),
    /// except the `lists`.
    fn merged(&self, lists: &[&str]) -> Result<Map<String, Value>, ApiError> {
        let mut merged: Map<String, Value> = self
            .query()?
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect();
        match self.body()? {
            Body::Empty => {}
            Body::Json(Value::Object(object)) => {
                for (key, value) in object {
                    let scalar = matches!(
                        value,
                        Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_)
                    );
                    if !scalar && !lists.contains(&key.as_str()) {
                        return Err(invalid(&key));
                    }
                    merged.insert(key, value);
                }
            }
            Body::Json(_) => {
                return Err(Error::InvalidRequest("the body must be a JSON object".into()).into())
            }
            Body::Form(pairs) => merged.extend(
                pairs
                    .into_iter()
                    .map(|(key, value)| (key, Value::String(value))),
            ),
        }
        Ok(merged)
    }
}

enum Body {
    Empty,
    Json(Value),
    Form(Vec<(String, String)>),
}

fn json_value(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        Error::InvalidRequest(format!("the body is not valid JSON: {error}")).into()
    })
}

fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| Error::InvalidRequest("the form is not valid URL encoding".into()).into())
}

/// Which of a key's values counts.
#[derive(Clone, Copy)]
enum Keep {
    First,
    Last,
}

/// From query or form pairs: one value of each of the `fields`, every value of each of the
/// `lists` (given as `key` or `key[]`); other keys are left out.
fn pairs_map(
    pairs: Vec<(String, String)>,
    fields: &[&str],
    lists: &[&str],
    keep: Keep,
) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        let list_key = key.strip_suffix("[]").unwrap_or(&key);
        if lists.contains(&list_key) {
            if let Value::Array(items) = map
                .entry(list_key.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                items.push(Value::String(value));
            }
        } else if fields.contains(&key.as_str()) {
            match keep {
                Keep::First => {
                    map.entry(key).or_insert(Value::String(value));
                }
                Keep::Last => {
                    map.insert(key, Value::String(value));
                }
            }
        }
    }
    map
}

/// A request struct from merged parameters. Every field is a [`Param`], which takes any JSON
/// value, so this fails only for a struct that is not made of `Param`s.
fn from_map<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(map))
        .map_err(|error| Error::internal_from("a request's parameters", error).into())
}

/// A boolean parameter as GitLab (Grape) reads it: `true`/`false`, `1`/`0`, `t`/`f`,
/// `yes`/`no`, `y`/`n`, `on`/`off`, in any case. python-gitlab sends `True`.
pub fn parse_gitlab_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["true", "1", "t", "yes", "y", "on"];
    const FALSE: [&str; 6] = ["false", "0", "f", "no", "n", "off"];
    let text = text.trim();
    if TRUE.iter().any(|word| word.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|word| word.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// A blank text is no value.
fn non_blank(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_are_read_as_gitlab_reads_them() {
        for text in [
            "true", "True", "TRUE", "1", "t", "T", "yes", "Yes", "y", "on",
        ] {
            assert_eq!(parse_gitlab_bool(text), Some(true), "{text}");
        }
        for text in ["false", "False", "0", "f", "F", "no", "NO", "n", "off"] {
            assert_eq!(parse_gitlab_bool(text), Some(false), "{text}");
        }
        for text in ["", "2", "yes please", "truee", "nil"] {
            assert_eq!(parse_gitlab_bool(text), None, "{text}");
        }
    }

    #[test]
    fn a_param_keeps_what_kind_of_value_was_sent() {
        let cases = [
            (json!(null), Param::Null),
            (json!("a"), Param::Text("a".into())),
            (json!(12), Param::Scalar("12".into())),
            (json!(1.5), Param::Scalar("1.5".into())),
            (json!(true), Param::Scalar("true".into())),
            (json!(["a", "b"]), Param::List(vec!["a".into(), "b".into()])),
            (json!(["a", 1]), Param::Invalid),
            (json!({"a": 1}), Param::Invalid),
        ];
        for (value, param) in cases {
            assert_eq!(
                serde_json::from_value::<Param>(value.clone()).unwrap(),
                param,
                "{value}"
            );
        }
    }

    #[test]
    fn each_reading_accepts_its_kinds_of_value() {
        let text = || Param::Text("x".into());
        let scalar = || Param::Scalar("12".into());
        assert_eq!(text().string("k").unwrap(), Some("x".into()));
        assert!(scalar().string("k").is_err());
        assert_eq!(scalar().text("k").unwrap(), Some("12".into()));
        assert!(Param::List(vec![]).text("k").is_err());
        assert_eq!(text().list("k").unwrap(), vec!["x".to_owned()]);
        assert!(scalar().list("k").is_err());
        assert_eq!(Param::Absent.setting(), None);
        assert_eq!(Param::Text(" ".into()).setting(), Some(None));
        assert_eq!(Param::Null.setting(), Some(None));
    }

    #[test]
    fn pairs_keep_one_value_and_collect_lists_under_either_key() {
        let pairs = vec![
            ("name".to_owned(), "a".to_owned()),
            ("name".to_owned(), "b".to_owned()),
            ("scopes[]".to_owned(), "x".to_owned()),
            ("scopes".to_owned(), "y".to_owned()),
            ("other".to_owned(), "z".to_owned()),
        ];
        assert_eq!(
            Value::Object(pairs_map(
                pairs.clone(),
                &["name"],
                &["scopes"],
                Keep::First
            )),
            json!({"name": "a", "scopes": ["x", "y"]})
        );
        assert_eq!(
            Value::Object(pairs_map(pairs, &["name"], &[], Keep::Last)),
            json!({"name": "b"})
        );
    }
}
