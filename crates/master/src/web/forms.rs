//! Turning what a user typed (Locust's form fields or the JSON API's body)
//! into a validated [`RunRequest`] or worker count.
//!
//! Validation happens here, before anything reaches the master or the
//! scaler, so a bad value is refused with a message naming the field and
//! never changes the running test or the cluster.

use std::time::Duration;

use script::ScriptInfo;
use serde_json::Value;

use super::error::ApiError;
use crate::RunRequest;
use crate::validate::{self, RunField};

/// The run fields as text, whichever way they arrived.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunFields {
    pub user_count: Option<String>,
    pub spawn_rate: Option<String>,
    pub host: Option<String>,
    pub run_time: Option<String>,
    pub user_classes: Vec<String>,
    /// Whether the caller named user types at all (an empty list means all).
    pub user_types_given: bool,
    /// The JSON API's `stages` or `shape` (Locust's form has none).
    pub profile: super::profile_json::ProfileAsk,
}

/// Reads Locust's `/swarm` form. `user_classes` repeats, which serde's
/// urlencoded maps cannot express, hence the hand-rolled loop.
pub fn run_fields_from_form(body: &[u8]) -> RunFields {
    let mut fields = RunFields::default();
    for (key, value) in form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "user_count" => fields.user_count = Some(value),
            "spawn_rate" => fields.spawn_rate = Some(value),
            "host" => fields.host = Some(value),
            "run_time" => fields.run_time = Some(value),
            "user_classes" if !value.is_empty() => {
                fields.user_types_given = true;
                fields.user_classes.push(value)
            }
            _ => {}
        }
    }
    fields
}

/// Reads the JSON API's body: `{"users", "spawn_rate", "host", "run_time",
/// "user_types"}`.
pub fn run_fields_from_json(body: &[u8]) -> Result<RunFields, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let text = |field: &'static str| -> Result<Option<String>, ApiError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(ApiError::field(
                field,
                format!("must be a number or text, got {other}"),
            )),
        }
    };
    let user_classes = match map.get("user_types") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ApiError::field(
                    "user_types",
                    format!("must list names, got {other}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::field(
                "user_types",
                format!("must be a list of names, got {other}"),
            ));
        }
    };
    Ok(RunFields {
        user_count: text("users")?,
        spawn_rate: text("spawn_rate")?,
        host: text("host")?,
        run_time: text("run_time")?,
        user_types_given: map.get("user_types").is_some_and(|v| !v.is_null()),
        user_classes,
        profile: super::profile_json::read(&map)?,
    })
}

/// Names the fields as the caller knows them: Locust's form or the JSON API.
#[derive(Debug, Clone, Copy)]
pub struct FieldNames {
    pub users: &'static str,
    pub user_types: &'static str,
}

pub const FORM_NAMES: FieldNames = FieldNames {
    users: "user_count",
    user_types: "user_classes",
};

pub const JSON_NAMES: FieldNames = FieldNames {
    users: "users",
    user_types: "user_types",
};

/// Reads the fields, then checks the request with [`validate`]'s rules,
/// naming the field as the caller knows it.
pub fn run_request(
    fields: &RunFields,
    info: &ScriptInfo,
    names: FieldNames,
    max_users: u32,
) -> Result<RunRequest, ApiError> {
    let profile = super::profile_json::resolve(&fields.profile, info)?;
    // A profile sets the users and the rate itself, from its first second.
    let (users, spawn_rate) = if profile.is_some() {
        (0, 1.0)
    } else {
        (
            parse_users(fields.user_count.as_deref(), names.users)?,
            parse_spawn_rate(fields.spawn_rate.as_deref())?,
        )
    };
    let host = parse_host(fields.host.as_deref())?;
    let run_time = match fields.run_time.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(parse_run_time(text)?),
    };
    let request = RunRequest {
        users,
        spawn_rate,
        host,
        run_time,
        user_types: fields.user_classes.clone(),
        profile,
    };
    validate::run_request(&request, info, max_users).map_err(|e| {
        let field = match e.field() {
            RunField::Users => names.users,
            RunField::UserTypes => names.user_types,
            other => other.json_name(),
        };
        ApiError::field(field, e.to_string())
    })?;
    Ok(request)
}

fn parse_users(text: Option<&str>, field: &'static str) -> Result<u32, ApiError> {
    let text = required(text, field)?;
    whole_number(text, field, u32::MAX)
}

/// A whole number from 0 to `max`, with a message for each way it can fail.
pub fn whole_number(text: &str, field: &'static str, max: u32) -> Result<u32, ApiError> {
    if let Ok(n) = text.parse::<u64>() {
        return u32::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| ApiError::field(field, format!("must be at most {max}, got {text}")));
    }
    let problem = if text.parse::<i64>().is_ok() {
        format!("must not be negative, got {text}")
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("must be at most {max}, got {text}")
    } else {
        match text.parse::<f64>() {
            Ok(x) if x < 0.0 => format!("must not be negative, got {text}"),
            Ok(_) => format!("must be a whole number, got {text}"),
            Err(_) => format!("must be a whole number, got {text:?}"),
        }
    };
    Err(ApiError::field(field, problem))
}

fn parse_spawn_rate(text: Option<&str>) -> Result<f64, ApiError> {
    let text = required(text, "spawn_rate")?;
    match text.parse::<f64>() {
        Ok(rate) => Ok(rate),
        Err(_) => Err(ApiError::field(
            "spawn_rate",
            format!("must be a number, got {text:?}"),
        )),
    }
}

fn parse_host(text: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(host) = text.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let rest = host
        .strip_prefix("http://")
        .or_else(|| host.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => {
            Ok(Some(host.to_string()))
        }
        _ => Err(ApiError::field(
            "host",
            format!("must be an http:// or https:// URL, got {host:?}"),
        )),
    }
}

/// Locust's run time: `20s`, `3m`, `1h20m`, or plain seconds (whether it
/// is too short or too long is [`validate::run_time`]'s call).
pub fn parse_run_time(text: &str) -> Result<Duration, ApiError> {
    let parsed = match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text),
    };
    match parsed {
        Ok(d) => Ok(d),
        Err(_) => Err(ApiError::field(
            "run_time",
            format!("cannot read {text:?}; expected a duration such as 30s, 5m or 1h20m"),
        )),
    }
}

fn required<'a>(text: Option<&'a str>, field: &'static str) -> Result<&'a str, ApiError> {
    match text.map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(ApiError::field(field, "is required")),
    }
}

/// The requested worker count from `PUT /api/v1/workers/scale`'s body.
pub fn workers_from_json(body: &[u8], max: u32) -> Result<u32, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    match value.get("workers") {
        None | Some(Value::Null) => Err(ApiError::field("workers", "is required")),
        Some(Value::Number(n)) => whole_number(&n.to_string(), "workers", max),
        Some(Value::String(s)) => whole_number(s.trim(), "workers", max),
        Some(other) => Err(ApiError::field(
            "workers",
            format!("must be a whole number, got {other}"),
        )),
    }
}

/// The requested worker count from `POST /rescale`'s form.
pub fn workers_from_form(body: &[u8], max: u32) -> Result<u32, ApiError> {
    let value = form_urlencoded::parse(body)
        .find(|(k, _)| k == "worker_count")
        .map(|(_, v)| v.into_owned());
    let text = required(value.as_deref(), "worker_count")?;
    whole_number(text, "worker_count", max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ScriptInfo {
        crate::validate::two_types_info()
    }

    fn form(body: &str) -> Result<RunRequest, ApiError> {
        run_request(
            &run_fields_from_form(body.as_bytes()),
            &info(),
            FORM_NAMES,
            100,
        )
    }

    #[test]
    fn reads_locust_forms() {
        let r = form(
            "user_count=10&spawn_rate=2.5&host=http%3A%2F%2Fx&run_time=1h20m&user_classes=Buy",
        )
        .unwrap();
        assert_eq!(r.users, 10);
        assert_eq!(r.spawn_rate, 2.5);
        assert_eq!(r.host.as_deref(), Some("http://x"));
        assert_eq!(r.run_time, Some(Duration::from_secs(4800)));
        assert_eq!(r.user_types, vec!["Buy".to_string()]);
        assert_eq!(
            form("user_count=1&spawn_rate=1&run_time=90")
                .unwrap()
                .run_time,
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn names_the_field_and_the_problem() {
        let msg = |body: &str| form(body).unwrap_err().to_string();
        assert!(msg("user_count=-5&spawn_rate=1").contains("user_count: must not be negative"));
        assert!(msg("user_count=abc&spawn_rate=1").contains("user_count: must be a whole number"));
        assert!(msg("user_count=1.5&spawn_rate=1").contains("whole number"));
        assert!(msg("spawn_rate=1").contains("user_count: is required"));
        assert!(msg("user_count=1&spawn_rate=0").contains("spawn_rate: must be a positive"));
        assert!(msg("user_count=1&spawn_rate=x").contains("spawn_rate: must be a number"));
        assert!(msg("user_count=1&spawn_rate=1&run_time=soon").contains("run_time: cannot read"));
        assert!(msg("user_count=1&spawn_rate=1&host=ftp://x").contains("host:"));
        assert!(msg("user_count=1&spawn_rate=1&user_classes=Nope").contains("Browse, Buy"));
        assert!(msg("user_count=101&spawn_rate=1").contains("user_count: must be at most 100"));
        assert!(msg("user_count=1&spawn_rate=1&run_time=0").contains("run_time: must be longer"));
    }

    #[test]
    fn worker_counts_are_whole_and_bounded() {
        assert_eq!(workers_from_json(br#"{"workers": 3}"#, 10).unwrap(), 3);
        assert_eq!(workers_from_json(br#"{"workers": 0}"#, 10).unwrap(), 0);
        for bad in [
            r#"{"workers": -1}"#,
            r#"{"workers": 1.5}"#,
            r#"{"workers": "abc"}"#,
            r#"{"workers": 11}"#,
            "{}",
            "nope",
        ] {
            assert!(workers_from_json(bad.as_bytes(), 10).is_err(), "{bad}");
        }
        assert_eq!(workers_from_form(b"worker_count=4", 10).unwrap(), 4);
        assert!(workers_from_form(b"worker_count=", 10).is_err());
    }
}
