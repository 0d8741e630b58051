//! Checking an action's arguments against its declared fields on the
//! server, before the handler runs, so a handler only ever sees arguments
//! that fit (the page's own checks are a convenience, not a guarantee:
//! anyone can POST).

use script::declare::fields::check_value;
use serde_json::{Map, Value as Json};

use crate::{ExtError, FieldSpec};

/// Checks an action's arguments (a JSON object; `null` means none) against
/// its fields: unknown names are refused, missing ones get their default.
pub fn validate(fields: &[FieldSpec], args: &Json) -> Result<Map<String, Json>, ExtError> {
    let empty = Map::new();
    let given = match args {
        Json::Null => &empty,
        Json::Object(map) => map,
        _ => {
            return Err(ExtError::Invalid {
                field: "arguments".into(),
                problem: "must be a JSON object of field names to values".into(),
            });
        }
    };
    if let Some(unknown) = given.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        return Err(ExtError::Invalid {
            field: unknown.clone(),
            problem: if known.is_empty() {
                "unknown field: this action takes no arguments".into()
            } else {
                format!("unknown field (this action takes: {})", known.join(", "))
            },
        });
    }
    let mut out = Map::new();
    for f in fields {
        let invalid = |problem: String| ExtError::Invalid {
            field: f.name.clone(),
            problem,
        };
        match given.get(&f.name).filter(|v| !v.is_null()) {
            Some(v) => {
                out.insert(f.name.clone(), check_value(f, v).map_err(invalid)?);
            }
            None => match &f.default {
                Some(d) => {
                    out.insert(f.name.clone(), d.clone());
                }
                None if f.required => return Err(invalid("is required".into())),
                None => {}
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldKind;
    use serde_json::json;

    fn spec(name: &str, kind: FieldKind, required: bool) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            label: name.into(),
            kind,
            required,
            default: None,
        }
    }

    #[test]
    fn arguments_are_checked_against_their_fields() {
        let fields = vec![
            spec(
                "n",
                FieldKind::Number {
                    min: Some(0.0),
                    max: Some(10.0),
                    integer: true,
                },
                true,
            ),
            spec(
                "confirm",
                FieldKind::Choice {
                    choices: vec!["yes".into(), "no".into()],
                },
                true,
            ),
            spec("note", FieldKind::Text { max_length: 3 }, false),
        ];
        let ok = validate(&fields, &json!({ "n": "4", "confirm": "yes" })).unwrap();
        assert_eq!(Json::Object(ok), json!({ "n": 4, "confirm": "yes" }));
        let bad = |args: Json| validate(&fields, &args).unwrap_err().to_string();
        assert_eq!(
            bad(json!({ "n": -1, "confirm": "yes" })),
            "n: must be >= 0, got -1"
        );
        assert_eq!(
            bad(json!({ "n": 1.5, "confirm": "yes" })),
            "n: must be a whole number, got 1.5"
        );
        assert_eq!(
            bad(json!({ "n": 1, "confirm": "maybe" })),
            "confirm: must be one of \"yes\", \"no\", got \"maybe\""
        );
        assert_eq!(bad(json!({ "confirm": "no" })), "n: is required");
        assert!(bad(json!({ "n": 1, "confirm": "no", "x": 1 })).starts_with("x: unknown field"));
        assert_eq!(
            bad(json!({ "n": 1, "confirm": "no", "note": "long" })),
            "note: must be at most 3 characters, got 4"
        );
        assert_eq!(
            bad(json!([1])),
            "arguments: must be a JSON object of field names to values"
        );
    }
}
