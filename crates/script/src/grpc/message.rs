//! Lua tables to protobuf messages and back, by the message's descriptor.
//! A field the message does not have, or a value of the wrong type, is an
//! error naming the field (`pkg.Msg.field`) and what it expects.
//!
//! Back in Lua, every singular scalar field is present with its value or
//! its default (as generated code reads them); unset message fields are
//! nil; enums are their value's name; 64-bit integers are Lua numbers.

use std::collections::HashMap;

use mlua::{Lua, Table, Value as Lua_};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};

use crate::io::shown;
use crate::luax::{number, type_name};

/// The message `desc` from the Lua table `t`.
pub fn from_lua(desc: &MessageDescriptor, t: &Table) -> Result<DynamicMessage, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    for pair in t.pairs::<Lua_, Lua_>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let Lua_::String(k) = &k else {
            return Err(format!(
                "{}: field names must be strings, got {}",
                desc.full_name(),
                shown(&k)
            ));
        };
        let key = k.to_string_lossy();
        let Some(field) = desc.get_field_by_name(&key) else {
            let known: Vec<String> = desc.fields().map(|f| f.name().to_string()).collect();
            return Err(format!(
                "{} has no field {key:?}; its fields: {}",
                desc.full_name(),
                known.join(", ")
            ));
        };
        let value = field_value(&field, &v)?;
        msg.set_field(&field, value);
    }
    Ok(msg)
}

fn field_value(field: &FieldDescriptor, v: &Lua_) -> Result<Value, String> {
    let what = field.full_name();
    if field.is_map() {
        let Lua_::Table(t) = v else {
            return Err(format!(
                "{what}: expected a table (a map), got a {}",
                type_name(v)
            ));
        };
        let Kind::Message(entry) = field.kind() else {
            return Err(format!("{what}: a map without an entry type"));
        };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let mut map = HashMap::new();
        for pair in t.pairs::<Lua_, Lua_>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            let key = map_key(&scalar(&kf.kind(), &k, what)?, what)?;
            map.insert(key, scalar(&vf.kind(), &v, what)?);
        }
        return Ok(Value::Map(map));
    }
    if field.is_list() {
        let Lua_::Table(t) = v else {
            return Err(format!(
                "{what}: expected a list (a table), got a {}",
                type_name(v)
            ));
        };
        let mut list = Vec::new();
        for item in t.sequence_values::<Lua_>() {
            let item = item.map_err(|e| e.to_string())?;
            list.push(scalar(&field.kind(), &item, what)?);
        }
        return Ok(Value::List(list));
    }
    scalar(&field.kind(), v, what)
}

fn map_key(v: &Value, what: &str) -> Result<MapKey, String> {
    Ok(match v {
        Value::Bool(b) => MapKey::Bool(*b),
        Value::I32(n) => MapKey::I32(*n),
        Value::I64(n) => MapKey::I64(*n),
        Value::U32(n) => MapKey::U32(*n),
        Value::U64(n) => MapKey::U64(*n),
        Value::String(s) => MapKey::String(s.clone()),
        _ => return Err(format!("{what}: this map key type is not supported")),
    })
}

/// One value of `kind` from Lua.
fn scalar(kind: &Kind, v: &Lua_, what: &str) -> Result<Value, String> {
    let wrong = |expected: &str| format!("{what}: expected {expected}, got {}", shown(v));
    let int = |lo: f64, hi: f64, name: &str| -> Result<f64, String> {
        match number(v) {
            Some(n) if n.fract() == 0.0 && n >= lo && n <= hi => Ok(n),
            _ => Err(wrong(name)),
        }
    };
    Ok(match kind {
        Kind::Double => Value::F64(number(v).ok_or_else(|| wrong("a number"))?),
        Kind::Float => Value::F32(number(v).ok_or_else(|| wrong("a number"))? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(int(i32::MIN as f64, i32::MAX as f64, "a 32-bit integer")? as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(int(-9.2e18, 9.2e18, "an integer")? as i64)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(int(0.0, u32::MAX as f64, "an unsigned 32-bit integer")? as u32)
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(int(0.0, 1.8e19, "an unsigned integer")? as u64),
        Kind::Bool => match v {
            Lua_::Boolean(b) => Value::Bool(*b),
            _ => return Err(wrong("a boolean")),
        },
        Kind::String => match v {
            Lua_::String(s) => {
                Value::String(s.to_str().map_err(|_| wrong("UTF-8 text"))?.to_string())
            }
            _ => return Err(wrong("a string")),
        },
        Kind::Bytes => match v {
            Lua_::String(s) => Value::Bytes(s.as_bytes().to_vec().into()),
            _ => return Err(wrong("a string (bytes)")),
        },
        Kind::Enum(e) => match v {
            Lua_::String(s) => {
                let name = s.to_string_lossy();
                let value = e.get_value_by_name(&name).ok_or_else(|| {
                    let known: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
                    format!(
                        "{what}: {name:?} is not a value of {}; it has: {}",
                        e.full_name(),
                        known.join(", ")
                    )
                })?;
                Value::EnumNumber(value.number())
            }
            _ => Value::EnumNumber(
                int(i32::MIN as f64, i32::MAX as f64, "an enum name or number")? as i32,
            ),
        },
        Kind::Message(m) => match v {
            Lua_::Table(t) => Value::Message(from_lua(m, t)?),
            _ => return Err(wrong(&format!("a table ({})", m.full_name()))),
        },
    })
}

/// `msg` as a Lua table.
pub fn to_lua(lua: &Lua, msg: &DynamicMessage) -> mlua::Result<Lua_> {
    let t = lua.create_table()?;
    for field in msg.descriptor().fields() {
        let singular_message =
            matches!(field.kind(), Kind::Message(_)) && !field.is_list() && !field.is_map();
        if singular_message && !msg.has_field(&field) {
            continue;
        }
        if field.containing_oneof().is_some() && !msg.has_field(&field) {
            continue;
        }
        let v = msg.get_field(&field);
        t.raw_set(field.name(), value_to_lua(lua, &field.kind(), &v)?)?;
    }
    Ok(Lua_::Table(t))
}

fn value_to_lua(lua: &Lua, kind: &Kind, v: &Value) -> mlua::Result<Lua_> {
    Ok(match v {
        Value::Bool(b) => Lua_::Boolean(*b),
        Value::I32(n) => Lua_::Integer((*n).into()),
        Value::I64(n) => Lua_::Number(*n as f64),
        Value::U32(n) => Lua_::Integer((*n).into()),
        Value::U64(n) => Lua_::Number(*n as f64),
        Value::F32(n) => Lua_::Number((*n).into()),
        Value::F64(n) => Lua_::Number(*n),
        Value::String(s) => Lua_::String(lua.create_string(s)?),
        Value::Bytes(b) => Lua_::String(lua.create_string(b)?),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => Lua_::String(lua.create_string(v.name())?),
                None => Lua_::Integer((*n).into()),
            },
            _ => Lua_::Integer((*n).into()),
        },
        Value::Message(m) => to_lua(lua, m)?,
        Value::List(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, value_to_lua(lua, kind, item)?)?;
            }
            Lua_::Table(t)
        }
        Value::Map(map) => {
            let t = lua.create_table()?;
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            for (k, v) in map {
                let key = match k {
                    MapKey::Bool(b) => Lua_::Boolean(*b),
                    MapKey::I32(n) => Lua_::Integer((*n).into()),
                    MapKey::I64(n) => Lua_::Number(*n as f64),
                    MapKey::U32(n) => Lua_::Integer((*n).into()),
                    MapKey::U64(n) => Lua_::Number(*n as f64),
                    MapKey::String(s) => Lua_::String(lua.create_string(s)?),
                };
                t.raw_set(key, value_to_lua(lua, &value_kind, v)?)?;
            }
            Lua_::Table(t)
        }
    })
}
