//! The typed fields of an action's form (number, text, choice): parsed
//! from the declaration and listed for the UI to build its form. The
//! master checks arguments against them before the handler runs (the `ext`
//! crate's `args.rs`), with [`check_value`], which also checks defaults here.

use mlua::{Table, Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::convert::to_json;
use crate::luax::{self, check_keys, fault, opt_string, type_name};

/// Longest text accepted by a text field without `max_length`.
const DEFAULT_MAX_LENGTH: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldSpec {
    pub name: String,
    /// Shown beside the input; default: the name.
    pub label: String,
    #[serde(flatten)]
    pub kind: FieldKind,
    /// A missing argument without a default is refused.
    pub required: bool,
    /// Used when the argument is missing.
    pub default: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FieldKind {
    Number {
        min: Option<f64>,
        max: Option<f64>,
        /// Whole numbers only.
        integer: bool,
    },
    Text {
        max_length: usize,
    },
    Choice {
        choices: Vec<String>,
    },
}

const FIELD_KEYS: [&str; 10] = [
    "name",
    "label",
    "type",
    "required",
    "default",
    "min",
    "max",
    "integer",
    "max_length",
    "choices",
];

/// `fields = { { name = "n", type = "number", min = 0 }, ... }` (or nil).
pub fn parse_list(at: &str, v: Value) -> mlua::Result<Vec<FieldSpec>> {
    let list = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(t) => t,
        other => {
            return Err(fault(format!(
                "{at}: fields must be a list of fields, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut fields: Vec<FieldSpec> = Vec::new();
    for (i, item) in list.sequence_values::<Value>().enumerate() {
        let Value::Table(t) = item? else {
            return Err(fault(format!(
                "{at}: fields[{}] must be a table such as {{ name = \"n\", type = \"number\" }}",
                i + 1
            )));
        };
        let field = parse(&format!("{at}: fields[{}]", i + 1), &t)?;
        if fields.iter().any(|f| f.name == field.name) {
            return Err(fault(format!(
                "{at}: two fields are named {:?}",
                field.name
            )));
        }
        fields.push(field);
    }
    Ok(fields)
}

fn parse(at: &str, t: &Table) -> mlua::Result<FieldSpec> {
    check_keys(t, at, &FIELD_KEYS)?;
    let name = opt_string(&format!("{at}: name"), t.raw_get("name")?)?.unwrap_or_default();
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(fault(format!(
            "{at}: name {name:?} must be a short identifier (letters, digits, _)"
        )));
    }
    let at = format!("{at} {name:?}");
    let label = opt_string(&format!("{at}: label"), t.raw_get("label")?)?;
    let kind = kind(&at, t)?;
    let required = match t.raw_get::<Value>("required")? {
        Value::Nil => true,
        Value::Boolean(b) => b,
        other => {
            return Err(fault(format!(
                "{at}: required must be true or false, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut spec = FieldSpec {
        label: label.unwrap_or_else(|| name.clone()),
        name,
        kind,
        required,
        default: None,
    };
    let default =
        to_json(&t.raw_get::<Value>("default")?, &format!("{at}: default")).map_err(fault)?;
    if !default.is_null() {
        let checked = check_value(&spec, &default)
            .map_err(|problem| fault(format!("{at}: default: {problem}")))?;
        spec.default = Some(checked);
    }
    Ok(spec)
}

fn kind(at: &str, t: &Table) -> mlua::Result<FieldKind> {
    let ty = opt_string(&format!("{at}: type"), t.raw_get("type")?)?;
    let only = |key: &str, for_type: &str| -> mlua::Result<()> {
        if t.raw_get::<Value>(key)?.is_nil() {
            Ok(())
        } else {
            Err(fault(format!(
                "{at}: {key} applies to {for_type} fields only"
            )))
        }
    };
    match ty.as_deref() {
        Some("number") => {
            only("max_length", "text")?;
            only("choices", "choice")?;
            let min = number(at, "min", t.raw_get("min")?)?;
            let max = number(at, "max", t.raw_get("max")?)?;
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(fault(format!("{at}: min {lo} is more than max {hi}")));
            }
            let integer = match t.raw_get::<Value>("integer")? {
                Value::Nil => false,
                Value::Boolean(b) => b,
                _ => return Err(fault(format!("{at}: integer must be true or false"))),
            };
            Ok(FieldKind::Number { min, max, integer })
        }
        Some("text") => {
            for key in ["min", "max", "integer"] {
                only(key, "number")?;
            }
            only("choices", "choice")?;
            let max_length = match number(at, "max_length", t.raw_get("max_length")?)? {
                None => DEFAULT_MAX_LENGTH,
                Some(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
                Some(n) => {
                    return Err(fault(format!(
                        "{at}: max_length must be a whole number >= 1, got {n}"
                    )));
                }
            };
            Ok(FieldKind::Text { max_length })
        }
        Some("choice") => {
            for key in ["min", "max", "integer"] {
                only(key, "number")?;
            }
            only("max_length", "text")?;
            Ok(FieldKind::Choice {
                choices: choices(at, t.raw_get("choices")?)?,
            })
        }
        other => Err(fault(format!(
            "{at}: type must be \"number\", \"text\" or \"choice\", got {}",
            other.map_or("nothing".to_string(), |s| format!("{s:?}"))
        ))),
    }
}

fn number(at: &str, key: &str, v: Value) -> mlua::Result<Option<f64>> {
    match (&v, luax::number(&v)) {
        (Value::Nil, _) => Ok(None),
        (_, Some(n)) if n.is_finite() => Ok(Some(n)),
        _ => Err(fault(format!(
            "{at}: {key} must be a number, got a {}",
            type_name(&v)
        ))),
    }
}

fn choices(at: &str, v: Value) -> mlua::Result<Vec<String>> {
    let Value::Table(list) = v else {
        return Err(fault(format!(
            "{at}: a choice field needs choices = {{ \"a\", \"b\", ... }}"
        )));
    };
    let mut out = Vec::new();
    for item in list.sequence_values::<Value>() {
        match item? {
            Value::String(s) => out.push(s.to_str()?.to_string()),
            Value::Integer(i) => out.push(i.to_string()),
            other => {
                return Err(fault(format!(
                    "{at}: choices must be strings, got a {}",
                    type_name(&other)
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(fault(format!("{at}: choices must not be empty")));
    }
    Ok(out)
}

/// One value against its field; numbers may come as text (HTML forms).
pub fn check_value(f: &FieldSpec, v: &Json) -> Result<Json, String> {
    match &f.kind {
        FieldKind::Number { min, max, integer } => {
            let n = match v {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("must be a number, got {v}"))?;
            if *integer && n.fract() != 0.0 {
                return Err(format!("must be a whole number, got {n}"));
            }
            if let Some(lo) = min
                && n < *lo
            {
                return Err(format!("must be >= {lo}, got {n}"));
            }
            if let Some(hi) = max
                && n > *hi
            {
                return Err(format!("must be <= {hi}, got {n}"));
            }
            Ok(if n.fract() == 0.0 && n.abs() < 9e15 {
                Json::from(n as i64)
            } else {
                Json::from(n)
            })
        }
        FieldKind::Text { max_length } => {
            let Json::String(s) = v else {
                return Err(format!("must be text, got {v}"));
            };
            let len = s.chars().count();
            if len > *max_length {
                return Err(format!(
                    "must be at most {max_length} characters, got {len}"
                ));
            }
            Ok(v.clone())
        }
        FieldKind::Choice { choices } => match v {
            Json::String(s) if choices.contains(s) => Ok(v.clone()),
            _ => Err(format!(
                "must be one of {}, got {v}",
                choices
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}
