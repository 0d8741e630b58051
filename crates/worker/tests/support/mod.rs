//! What the worker's tests share: an engine's configuration with one core
//! and the defaults, for each test to change what it is about.

use std::time::Duration;

use script::LuaLimits;
use worker::EngineConfig;

/// One core, node "w", the default Lua limits, a 1 s stop timeout.
pub fn one_core() -> EngineConfig {
    EngineConfig {
        cores: 1,
        node_id: "w".into(),
        insecure_tls: false,
        http: Default::default(),
        base_dir: None,
        limits: LuaLimits::default(),
        stop_timeout: Duration::from_secs(1),
    }
}
