//! `swarmer inspect -f SCRIPT`: what a script declares, without running
//! it — user types with their weights, waits, hosts and tasks (weights,
//! tags), the load shape or arrivals, and the master's extensions. Text for
//! people, `--json` for tools. The script is loaded exactly as a run loads
//! it, so a script that inspects cleanly also starts.

use std::fmt::Write as _;
use std::path::Path;

use script::declare::shape::ShapeInfo;
use script::{ScriptListing, ScriptSource, UserTypeInfo};

use crate::config::{UsageError, usage};

/// Loads the script and prints its listing; a script that does not load is
/// a usage error naming the file and line, as for a run.
pub fn run(path: &Path, json: bool) -> Result<i32, UsageError> {
    let src = ScriptSource::read(&path.to_string_lossy()).map_err(|e| usage(e.to_string()))?;
    let listing =
        script::listing(&src, script::LuaLimits::default()).map_err(|e| usage(e.to_string()))?;
    if json {
        let text = serde_json::to_string_pretty(&json_listing(&src.path, &listing))
            .map_err(|e| usage(format!("cannot write the listing as JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", text_listing(&src.path, &listing));
    }
    Ok(0)
}

/// One object per user type with its wait beside what `ScriptInfo` says.
fn json_listing(path: &str, listing: &ScriptListing) -> serde_json::Value {
    let types: Vec<serde_json::Value> = listing
        .info
        .user_types
        .iter()
        .zip(&listing.types)
        .map(|(info, more)| {
            let mut v = serde_json::to_value(info).unwrap_or_default();
            v["wait"] = more.wait.clone().into();
            v["sequential"] = more.sequential.into();
            v
        })
        .collect();
    serde_json::json!({
        "script": path,
        "user_types": types,
        "shape": listing.info.shape,
        "extensions": listing.extensions,
    })
}

fn text_listing(path: &str, listing: &ScriptListing) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{path}");
    let _ = writeln!(out, "\nUser types:");
    for (info, more) in listing.info.user_types.iter().zip(&listing.types) {
        user_type(&mut out, info, &more.wait, more.sequential);
    }
    let _ = writeln!(
        out,
        "\nLoad shape: {}",
        shape_text(listing.info.shape.as_ref())
    );
    let ext = &listing.extensions;
    let names = |items: Vec<&str>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(out, "\nExtensions (run by the master):");
    let _ = writeln!(
        out,
        "  views:   {}",
        names(ext.views.iter().map(|v| v.id.as_str()).collect())
    );
    let _ = writeln!(
        out,
        "  actions: {}",
        names(ext.actions.iter().map(|a| a.id.as_str()).collect())
    );
    let _ = writeln!(
        out,
        "  routes:  {}",
        names(ext.routes.iter().map(String::as_str).collect())
    );
    let _ = writeln!(
        out,
        "  hooks:   {}",
        names(ext.hooks.iter().map(String::as_str).collect())
    );
    out
}

fn user_type(out: &mut String, info: &UserTypeInfo, wait: &str, sequential: bool) {
    let mut head = format!("  {}  weight {}", info.name, info.weight);
    if let Some(n) = info.fixed_count {
        let _ = write!(head, "  fixed_count {n}");
    }
    let _ = write!(head, "  wait {wait}");
    if sequential {
        head.push_str("  sequential");
    }
    if let Some(host) = &info.host {
        let _ = write!(head, "  host {host}");
    }
    let _ = writeln!(out, "{head}");
    if let Some(arrivals) = &info.arrivals {
        let text = serde_json::to_string(arrivals).unwrap_or_default();
        let _ = writeln!(out, "    arrivals {text}");
    }
    for task in &info.tasks {
        let tags = if task.tags.is_empty() {
            String::new()
        } else {
            format!("  tags {}", task.tags.join(", "))
        };
        let _ = writeln!(out, "    task {}  weight {}{tags}", task.name, task.weight);
    }
}

fn shape_text(shape: Option<&ShapeInfo>) -> String {
    match shape {
        None => "none (a fixed count: -u/-r/-t, or --stages)".to_string(),
        Some(ShapeInfo::Function) => "a function (swarmer.shape(function ...))".to_string(),
        Some(ShapeInfo::Stages { stages }) => {
            // In --stages' own words: DURATION:USERS, each a ramp.
            let stages: Vec<String> = stages
                .iter()
                .map(|s| {
                    let mut stage = format!(
                        "{}:{}",
                        humantime::format_duration(std::time::Duration::from_millis(s.duration_ms)),
                        s.users
                    );
                    if let Some(rate) = s.spawn_rate {
                        let _ = write!(stage, " (rate {rate}/s)");
                    }
                    if !s.user_types.is_empty() {
                        let _ = write!(stage, " (types {})", s.user_types.join(", "));
                    }
                    stage
                })
                .collect();
            format!("stages {}", stages.join(", "))
        }
    }
}
