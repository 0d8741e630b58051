//! What a request gave back, as the Lua `Response` object, and the rule for
//! when it is recorded: exactly once, at the first of `r:success()`,
//! `r:failure(msg)`, the same user's next request, or the end of the task
//! (Locust's `catch_response`, without the `with` block).
//!
//! Lua values (headers table, body string, parsed JSON) are built only when
//! the script asks for them: most load-test tasks never look at the body.
//! Its Lua object is in `response_ud.rs`.
//! The response keeps its head as received, and header fields are parsed
//! from it again only for `r.headers` and `r:header(name)`.

use std::cell::Cell;
use std::rc::Rc;

use http::{Method, Uri};
use mlua::{Lua, Value};
use stats::{PhaseSample, Sample};

use crate::convert::json_to_lua;
use crate::lua_env::LuaEnv;
use crate::luax::fault;
use http_client::{Message, Origin, Proto, Timings};

pub struct Outcome {
    pub shared: Rc<LuaEnv>,
    pub method: Method,
    pub name: std::rc::Rc<str>,
    /// Where the (last, after redirects) request went.
    pub origin: Rc<Origin>,
    pub uri: Uri,
    /// The response: status 0 and empty when none came (transport error).
    pub message: Message,
    pub elapsed_us: u64,
    /// For paced users: response time plus the iteration's lateness.
    pub due_latency_us: Option<u64>,
    pub error: Option<String>,
    /// The body's size as received, before content decoding (the stats
    /// count the decoded size, as Locust does).
    pub wire_size: u64,
    /// Where the time went (`r.timings`).
    pub timings: Timings,
    /// The protocol it came over (`r.proto`).
    pub proto: Proto,
    pub recorded: Cell<bool>,
}

impl Outcome {
    /// The verdict when the script gave none: failed on a transport error
    /// or a status >= 400.
    pub fn settle_default(&self) {
        if self.recorded.get() {
            return;
        }
        if let Some(e) = &self.error {
            self.record(Some(e));
        } else if self.message.status >= 400 {
            self.record(Some(&format!("HTTP {}", self.message.status)));
        } else {
            self.record(None);
        }
    }

    fn record(&self, error: Option<&str>) {
        self.recorded.set(true);
        let sample = Sample {
            method: self.method.as_str(),
            name: &self.name,
            response_time_us: self.elapsed_us,
            due_latency_us: self.due_latency_us,
            content_length: self.message.body().len() as u64,
            error,
        };
        // Without a response (a transport error) the phases are partial
        // and would pull the percentiles towards zero.
        if self.message.status == 0 {
            self.shared.record(&sample);
        } else {
            self.shared
                .record_with_phases(&sample, &phases_of(&self.timings));
        }
    }

    /// Records an explicit verdict; a second one is a script bug worth
    /// reporting, because the first already counted.
    pub(super) fn verdict(&self, error: Option<&str>) -> mlua::Result<()> {
        if self.recorded.get() {
            return Err(fault(format!(
                "the response of {} {} was already recorded: call r:success()/r:failure() before the user's next request and at most once",
                self.method, self.name
            )));
        }
        self.record(error);
        Ok(())
    }

    pub fn url(&self) -> String {
        self.origin
            .url_of(self.uri.path_and_query().map_or("/", |p| p.as_str()))
    }
}

fn phases_of(t: &Timings) -> PhaseSample {
    let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    PhaseSample {
        connect_us: us(t.connect),
        tls_us: us(t.tls),
        ttfb_us: us(t.ttfb),
    }
}

/// `r.timings`: each phase in milliseconds (fractions of a millisecond
/// kept), as k6's `res.timings`.
pub(super) fn timings_table(lua: &Lua, t: &Timings) -> mlua::Result<mlua::Table> {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let table = lua.create_table_with_capacity(0, 5)?;
    table.raw_set("dns", ms(t.dns))?;
    table.raw_set("connect", ms(t.connect))?;
    table.raw_set("tls", ms(t.tls))?;
    table.raw_set("ttfb", ms(t.ttfb))?;
    table.raw_set("receive", ms(t.receive))?;
    Ok(table)
}

/// Header names are lowercase (HTTP/1 names are case-insensitive); repeated
/// headers are joined with ", " as RFC 9110 allows (Set-Cookie with "\n").
pub(super) fn headers_table(lua: &Lua, message: &Message) -> mlua::Result<mlua::Table> {
    // (lowercase name, values joined), in order of first appearance.
    let mut joined: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (name, value) in message.headers().iter() {
        let name = name.to_ascii_lowercase();
        match joined.iter_mut().find(|(n, _)| *n == name) {
            Some((n, v)) => {
                let sep: &[u8] = if n == b"set-cookie" { b"\n" } else { b", " };
                v.extend_from_slice(sep);
                v.extend_from_slice(value);
            }
            None => joined.push((name, value.to_vec())),
        }
    }
    let t = lua.create_table_with_capacity(0, joined.len())?;
    for (name, value) in joined {
        t.raw_set(lua.create_string(&name)?, lua.create_string(&value)?)?;
    }
    Ok(t)
}

pub(super) fn json_value(lua: &Lua, r: &Outcome) -> mlua::Result<Value> {
    match serde_json::from_slice::<serde_json::Value>(r.message.body()) {
        Ok(v) => json_to_lua(lua, &v),
        Err(e) => {
            let body = r.message.body();
            let preview: String = String::from_utf8_lossy(&body[..body.len().min(60)])
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            Err(fault(format!(
                "r:json(): the body of {} {} (status {}) is not JSON ({e}); it starts with {preview:?}",
                r.method, r.name, r.message.status
            )))
        }
    }
}
