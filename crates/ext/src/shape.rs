//! What a shape function returned, read strictly: `users, spawn_rate
//! [, user_types]` or `nil`; anything else is refused with what was wrong,
//! so a typo in the script stops the profile instead of steering the run.

use serde_json::Value as Json;

use crate::ShapeTarget;

/// The highest spawn rate a shape may ask for (the master's own limit).
const MAX_SPAWN_RATE: f64 = 100_000.0;

/// Reads the packed results (`{ users, spawn_rate, user_types }`).
pub fn target(out: &Json) -> Result<Option<ShapeTarget>, String> {
    let users = match out.get("users") {
        None | Some(Json::Null) => return Ok(None),
        Some(v) => v,
    };
    let users = users
        .as_f64()
        .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= f64::from(u32::MAX))
        .ok_or_else(|| format!("users must be a whole number of 0 or more, got {users}"))?
        as u32;
    let rate = out.get("spawn_rate").unwrap_or(&Json::Null);
    let spawn_rate = rate
        .as_f64()
        .filter(|r| *r > 0.0 && *r <= MAX_SPAWN_RATE)
        .ok_or_else(|| {
            format!("spawn_rate must be a positive number of users per second, got {rate}")
        })?;
    let user_types = match out.get("user_types") {
        None | Some(Json::Null) => vec![],
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("user_types must be a list of names, got {v} in it"))
            })
            .collect::<Result<_, _>>()?,
        // An empty Lua table comes back as an empty object.
        Some(Json::Object(m)) if m.is_empty() => vec![],
        Some(other) => return Err(format!("user_types must be a list of names, got {other}")),
    };
    Ok(Some(ShapeTarget {
        users,
        spawn_rate,
        user_types,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_read_strictly() {
        assert_eq!(target(&json!({})), Ok(None));
        let t = target(&json!({"users": 10, "spawn_rate": 2.5, "user_types": ["A"]}))
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.users, t.spawn_rate, t.user_types),
            (10, 2.5, vec!["A".into()])
        );
        for bad in [
            json!({"users": -1, "spawn_rate": 1}),
            json!({"users": 1.5, "spawn_rate": 1}),
            json!({"users": "ten", "spawn_rate": 1}),
            json!({"users": 1}),
            json!({"users": 1, "spawn_rate": 0}),
            json!({"users": 1, "spawn_rate": 1, "user_types": "A"}),
        ] {
            assert!(target(&bad).is_err(), "{bad}");
        }
    }
}
