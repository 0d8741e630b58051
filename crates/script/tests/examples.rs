//! The shipped examples load, and run against a target that serves the
//! demo target's routes without a single script error.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use script::{RuntimeConfig, ScriptSource};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> ScriptSource {
    ScriptSource::read(examples_dir().join(name).to_str().unwrap()).unwrap()
}

#[test]
fn every_example_loads() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // extend*.lua extend the web UI, not the user API.
        if !name.ends_with(".lua") || name.starts_with("extend") {
            continue;
        }
        let info = script::inspect(&example(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!info.user_types.is_empty(), "{name}");
        seen += 1;
    }
    assert!(seen >= 4, "found {seen} examples");
}

fn run_example(name: &str, users: &[(&str, usize)], min_requests: u64) {
    let addr = start_server();
    let src = example(name);
    let config = RuntimeConfig {
        host: Some(host(addr)),
        ..Default::default()
    };
    let stats = run_with_source(
        &src,
        config,
        users,
        |s| s.num_requests() >= min_requests,
        Duration::from_secs(20),
    );
    assert!(
        exceptions(&stats).is_empty(),
        "{name}: {:?}",
        exceptions(&stats)
    );
    assert!(
        stats.num_requests() >= min_requests,
        "{name}: {} requests",
        stats.num_requests()
    );
}

#[test]
fn quickstart_runs_against_a_demo_like_target() {
    run_example("quickstart.lua", &[("Shopper", 30), ("Browser", 10)], 60);
}

#[test]
fn other_examples_run() {
    run_example("paced.lua", &[("Reader", 5)], 10);
    run_example("custom.lua", &[("Buyer", 5)], 10);
    run_example("data.lua", &[("Member", 5)], 10);
}
