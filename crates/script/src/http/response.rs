//! What a request gave back, as the Lua `Response` object, and the rule for
//! when it is recorded: exactly once, at the first of `r:success()`,
//! `r:failure(msg)`, the same user's next request, or the end of the task
//! (Locust's `catch_response`, without the `with` block).
//!
//! Lua values (headers table, body string, parsed JSON) are built only when
//! the script asks for them: most load-test tasks never look at the body.
//! The response keeps its head as received, and header fields are parsed
//! from it again only for `r.headers` and `r:header(name)`.

use std::cell::Cell;
use std::rc::Rc;

use http::{Method, Uri};
use mlua::{Lua, UserData, UserDataFields, UserDataMethods, Value};
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
    fn verdict(&self, error: Option<&str>) -> mlua::Result<()> {
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

/// The Lua face of an [`Outcome`].
pub struct Response(pub Rc<Outcome>);

impl UserData for Response {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("status", |_, r| Ok(r.0.message.status));
        fields.add_field_method_get("ok", |_, r| {
            Ok(r.0.error.is_none() && (200..400).contains(&r.0.message.status))
        });
        fields.add_field_method_get("body", |lua, r| lua.create_string(r.0.message.body()));
        fields.add_field_method_get("headers", |lua, r| headers_table(lua, &r.0.message));
        fields.add_field_method_get("url", |_, r| Ok(r.0.url()));
        fields.add_field_method_get("elapsed_ms", |_, r| Ok(r.0.elapsed_us as f64 / 1000.0));
        fields.add_field_method_get("error", |_, r| Ok(r.0.error.clone()));
        fields.add_field_method_get("wire_size", |_, r| Ok(r.0.wire_size));
        fields.add_field_method_get("timings", |lua, r| timings_table(lua, &r.0.timings));
        fields.add_field_method_get("proto", |_, r| Ok(r.0.proto.as_str()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("json", |lua, r, ()| json_value(lua, &r.0));
        methods.add_method("header", |lua, r, name: mlua::LuaString| {
            match r.0.message.header(&name.to_str()?) {
                Some(v) => Ok(Some(lua.create_string(v)?)),
                None => Ok(None),
            }
        });
        methods.add_method("success", |_, r, ()| r.0.verdict(None));
        methods.add_method("failure", |_, r, msg: Option<String>| {
            let msg = msg.unwrap_or_else(|| "failed".to_string());
            r.0.verdict(Some(&msg))
        });
        methods.add_meta_method("__tostring", |_, r, ()| {
            Ok(format!("<Response {} {}>", r.0.message.status, r.0.url()))
        });
    }
}

/// `r.timings`: each phase in milliseconds (fractions of a millisecond
/// kept), as k6's `res.timings`.
fn timings_table(lua: &Lua, t: &Timings) -> mlua::Result<mlua::Table> {
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
fn headers_table(lua: &Lua, message: &Message) -> mlua::Result<mlua::Table> {
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

fn json_value(lua: &Lua, r: &Outcome) -> mlua::Result<Value> {
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
