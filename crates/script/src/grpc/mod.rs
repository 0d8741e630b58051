//! `self.grpc`: gRPC clients for scripts. `self.grpc:connect(url, opts)`
//! compiles the `.proto` files it names (`protos.rs`, from the script's
//! files) and dials with the http crate (its TLS configuration,
//! `--resolve`); the client's `invoke` (unary) and `stream` (server
//! streaming) park their work for the user's driver (`io.rs`) and record
//! one entry per call: `GRPC`, `pkg.Service/Method` unless `name` says
//! otherwise, failed when the status is not OK, with the status's name and
//! message (`NOT_FOUND: no such user`) as the error.

mod call;
mod message;
mod options;
pub mod protos;

use std::cell::RefCell;
use std::rc::Rc;

use http::HeaderMap;
use mlua::{Function, Lua, Table, UserData, Value};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MethodDescriptor};
use stats::Sample;
use tokio::time::Instant;

use crate::io::{self, Reply, Ret, park, wrapper};
use crate::lua_env::LuaEnv;
use crate::luax::fault;
use call::{Call, Channel, Head, Status};
use options::{CallOptions, ConnectOptions, Target};

/// The stats method of gRPC entries.
pub const GRPC_METHOD: &str = "GRPC";

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `self.grpc` table of a Lua state.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let connect = wrapper(lua)?.call::<Function>(lua.create_function(prepare_connect)?)?;
    t.raw_set("connect", connect)?;
    Ok(t)
}

/// A connected client.
struct Client {
    shared: Rc<LuaEnv>,
    pool: prost_reflect::DescriptorPool,
    /// Taken when its user ends (`io::close_all`): the connection closes
    /// once no call holds it.
    channel: RefCell<Option<Channel>>,
    metadata: Vec<(http::HeaderName, http::HeaderValue)>,
}

pub struct GrpcClient(Rc<Client>);

fn prepare_connect(lua: &Lua, (this, url, opts): (Value, Value, Value)) -> mlua::Result<()> {
    if !matches!(this, Value::Table(_)) {
        return Err(fault(
            "connect: call it as self.grpc:connect(url, opts), with a colon",
        ));
    }
    let target = Target::parse(url)?;
    let opts = ConnectOptions::parse(opts)?;
    let shared = LuaEnv::from_lua(lua)?;
    let pool = protos::pool(&shared, &opts.protos)
        .map_err(|e| fault(format!("self.grpc:connect: {e}")))?;
    let user = io::current_user(lua, "self.grpc:connect")?;
    let hosts = user.hosts.clone();
    let owner = Rc::downgrade(&user);
    park(&user, async move {
        let name = format!("connect {}", target.authority);
        let start = Instant::now();
        let limit = opts.timeout.unwrap_or(CONNECT_TIMEOUT);
        let dialing = dial(&shared, &hosts, &target);
        let result = tokio::time::timeout(limit, dialing)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "timeout after {}",
                    humantime::format_duration(limit)
                ))
            });
        let error = result.as_ref().err().map(String::as_str);
        record(&shared, &name, start, 0, error);
        match result {
            Ok(channel) => {
                let client = Rc::new(Client {
                    shared,
                    pool,
                    channel: RefCell::new(Some(channel)),
                    metadata: opts.metadata,
                });
                if let Some(owner) = owner.upgrade() {
                    let weak = Rc::downgrade(&client) as std::rc::Weak<dyn io::Closable>;
                    io::track(&owner, weak);
                }
                let make =
                    move |lua: &Lua| lua.create_userdata(GrpcClient(client)).map(Value::UserData);
                Ok(vec![Ret::Make(Box::new(make))])
            }
            Err(why) => Ok(vec![Ret::Nil, Ret::Text(why)]),
        }
    });
    Ok(())
}

async fn dial(
    shared: &LuaEnv,
    hosts: &[http_client::HostOverride],
    target: &Target,
) -> Result<Channel, String> {
    let addr = http_client::settings::lookup(hosts, &target.host, target.port);
    let config = match target.tls {
        true => Some((
            shared.tls.for_version(http_client::HttpVersion::Http2)?,
            target.host.as_str(),
        )),
        false => None,
    };
    let stream = http_client::dial(&target.host, target.port, addr, config).await?;
    Channel::open(stream, target.tls, target.authority.clone()).await
}

fn record(shared: &LuaEnv, name: &str, start: Instant, length: u64, error: Option<&str>) {
    shared.record(&Sample {
        method: GRPC_METHOD,
        name,
        response_time_us: start.elapsed().as_micros() as u64,
        due_latency_us: None,
        content_length: length,
        error,
    });
}

fn client(this: &Value, what: &str) -> mlua::Result<Rc<Client>> {
    match this {
        Value::UserData(ud) => ud.borrow::<GrpcClient>().map(|c| c.0.clone()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        fault(format!(
            "{what}: call it on a gRPC client with a colon (g:{})",
            &what[2..]
        ))
    })
}

/// What `invoke` and `stream` check before anything is sent.
struct Prepared {
    client: Rc<Client>,
    method: MethodDescriptor,
    path: String,
    body: Vec<u8>,
    opts: CallOptions,
    name: String,
}

fn prepare(
    this: &Value,
    method: Value,
    request: Value,
    opts: Value,
    what: &str,
) -> mlua::Result<Prepared> {
    let client = client(this, what)?;
    let Value::String(full) = method else {
        return Err(fault(format!(
            "{what}: the method must be a string such as \"pkg.Service/Method\""
        )));
    };
    let full = full.to_str()?.to_string();
    let method = protos::method(&client.pool, &full).map_err(|e| fault(format!("{what}: {e}")))?;
    let body = match request {
        Value::Table(t) => message::from_lua(&method.input(), &t),
        Value::Nil => Ok(DynamicMessage::new(method.input())),
        other => Err(format!(
            "the request must be a table ({}), got a {}",
            method.input().full_name(),
            crate::luax::type_name(&other)
        )),
    }
    .map_err(|e| fault(format!("{what} {full}: {e}")))?
    .encode_to_vec();
    let opts = CallOptions::parse(opts, what)?;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| full.trim_start_matches('/').to_string());
    Ok(Prepared {
        path: format!("/{}/{}", method.parent_service().full_name(), method.name()),
        client,
        method,
        body,
        opts,
        name,
    })
}

async fn begin(p: &Prepared) -> Call {
    // A call's metadata replaces the client's under the same key.
    let mut metadata: Vec<_> = p
        .client
        .metadata
        .iter()
        .filter(|(k, _)| !p.opts.metadata.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    metadata.extend(p.opts.metadata.iter().cloned());
    let head = Head {
        path: &p.path,
        metadata: &metadata,
        timeout: p.opts.timeout,
    };
    let channel = p.client.channel.borrow().clone();
    match channel {
        Some(channel) => call::start(&channel, head, &p.body).await,
        None => Call::failed(Status::new(14, "the client is closed")),
    }
}

impl io::Closable for Client {
    fn is_open(&self) -> bool {
        self.channel.borrow().is_some()
    }

    fn close_now(&self) {
        self.channel.borrow_mut().take();
    }
}

/// `r`: `status`, `message`, `headers`, `trailers`, `error` (not OK).
fn result(
    lua: &Lua,
    status: &Status,
    message: Option<&DynamicMessage>,
    headers: &HeaderMap,
    trailers: &HeaderMap,
) -> mlua::Result<Value> {
    let r = lua.create_table()?;
    r.raw_set("status", status.code)?;
    r.raw_set("status_name", status.name())?;
    if status.code != 0 {
        r.raw_set("error", status.shown())?;
    }
    if let Some(m) = message {
        r.raw_set("message", message::to_lua(lua, m)?)?;
    }
    r.raw_set("headers", fields(lua, headers)?)?;
    r.raw_set("trailers", fields(lua, trailers)?)?;
    Ok(Value::Table(r))
}

fn fields(lua: &Lua, map: &HeaderMap) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (k, v) in map {
        t.raw_set(k.as_str(), lua.create_string(v.as_bytes())?)?;
    }
    Ok(t)
}

fn decode(method: &MethodDescriptor, bytes: &[u8]) -> Result<DynamicMessage, Status> {
    DynamicMessage::decode(method.output(), bytes).map_err(|e| {
        Status::new(
            13,
            format!("cannot decode {}: {e}", method.output().full_name()),
        )
    })
}

/// `g:invoke(method, request, opts)`: one unary call.
async fn invoke(p: Prepared) -> Reply {
    let start = Instant::now();
    let mut call = begin(&p).await;
    let first = call.next().await;
    let (mut status, trailers) = call.finish().await;
    let mut message = None;
    if status.code == 0 {
        match first.as_deref().map(|b| decode(&p.method, b)) {
            Some(Ok(m)) => message = Some(m),
            Some(Err(s)) => status = s,
            None => status = Status::new(13, "the server sent no message"),
        }
    }
    let error = (status.code != 0).then(|| status.shown());
    record(
        &p.client.shared,
        &p.name,
        start,
        call.bytes,
        error.as_deref(),
    );
    let headers = call.headers;
    let make = move |lua: &Lua| result(lua, &status, message.as_ref(), &headers, &trailers);
    Ok(vec![Ret::Make(Box::new(make))])
}

/// A server-streaming call between `g:stream`'s steps.
pub struct GrpcCall {
    prepared: Prepared,
    call: RefCell<Option<Call>>,
    start: Instant,
    count: std::cell::Cell<u64>,
    /// A message that did not decode ends the call with this status.
    failed: RefCell<Option<Status>>,
}

impl UserData for GrpcCall {}
impl UserData for GrpcClient {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", method_fns);
    }
}

fn the_call(v: &Value) -> mlua::Result<mlua::UserDataRef<GrpcCall>> {
    match v {
        Value::UserData(ud) => ud.borrow::<GrpcCall>(),
        _ => Err(fault("g:stream: not a call")),
    }
}

/// `g:stream(method, request, fn, opts)`: opens, hands each message to
/// `fn`, and returns the result when the server ends the stream.
const METHODS: &str = r#"
local wrap, invoke, open, next_msg, finish = ...
local methods = { invoke = wrap(invoke) }
local open_m, next_m, finish_m = wrap(open), wrap(next_msg), wrap(finish)
function methods.stream(self, method, request, fn, opts)
  if type(fn) ~= "function" then
    error("g:stream: the third argument must be a function called with each message", 2)
  end
  local call = open_m(self, method, request, opts)
  while true do
    local msg = next_m(call)
    if msg == nil then break end
    fn(msg)
  end
  return finish_m(call)
end
return methods
"#;

fn method_fns(lua: &Lua) -> mlua::Result<Table> {
    let invoke =
        lua.create_function(|lua, (this, m, req, opts): (Value, Value, Value, Value)| {
            let p = prepare(&this, m, req, opts, "g:invoke")?;
            io::park_current(lua, "g:invoke", invoke(p))
        })?;
    let open = lua.create_function(|lua, (this, m, req, opts): (Value, Value, Value, Value)| {
        let p = prepare(&this, m, req, opts, "g:stream")?;
        io::park_current(lua, "g:stream", async move {
            let start = Instant::now();
            let call = begin(&p).await;
            let state = GrpcCall {
                prepared: p,
                call: RefCell::new(Some(call)),
                start,
                count: std::cell::Cell::new(0),
                failed: RefCell::new(None),
            };
            let make = move |lua: &Lua| lua.create_userdata(state).map(Value::UserData);
            Ok(vec![Ret::Make(Box::new(make))])
        })
    })?;
    let next = lua.create_function(|lua, this: Value| {
        let ud = match &this {
            Value::UserData(ud) => ud.clone(),
            _ => return Err(fault("g:stream: not a call")),
        };
        the_call(&this)?;
        io::park_current(lua, "g:stream", next_message(ud))
    })?;
    let finish = lua.create_function(|lua, this: Value| {
        let ud = match &this {
            Value::UserData(ud) => ud.clone(),
            _ => return Err(fault("g:stream: not a call")),
        };
        the_call(&this)?;
        io::park_current(lua, "g:stream", finish_stream(ud))
    })?;
    lua.load(METHODS)
        .set_name("=swarmer.grpc")
        .call((wrapper(lua)?, invoke, open, next, finish))
}

async fn next_message(ud: mlua::AnyUserData) -> Reply {
    let Ok(state) = ud.borrow::<GrpcCall>() else {
        return Err("g:stream: the call is gone".into());
    };
    // Out of its slot while it awaits: no borrow is held across the await.
    let Some(mut call) = state.call.borrow_mut().take() else {
        return Ok(vec![Ret::Nil]);
    };
    let got = call.next().await;
    *state.call.borrow_mut() = Some(call);
    let Some(bytes) = got else {
        return Ok(vec![Ret::Nil]);
    };
    match decode(&state.prepared.method, &bytes) {
        Ok(m) => {
            state.count.set(state.count.get() + 1);
            let make = move |lua: &Lua| message::to_lua(lua, &m);
            Ok(vec![Ret::Make(Box::new(make))])
        }
        Err(s) => {
            *state.failed.borrow_mut() = Some(s);
            Ok(vec![Ret::Nil])
        }
    }
}

async fn finish_stream(ud: mlua::AnyUserData) -> Reply {
    let Ok(state) = ud.borrow::<GrpcCall>() else {
        return Err("g:stream: the call is gone".into());
    };
    let Some(mut call) = state.call.borrow_mut().take() else {
        return Err("g:stream: the call has ended".into());
    };
    let (mut status, trailers) = call.finish().await;
    if let Some(s) = state.failed.borrow_mut().take() {
        status = s;
    }
    let p = &state.prepared;
    let error = (status.code != 0).then(|| status.shown());
    record(
        &p.client.shared,
        &p.name,
        state.start,
        call.bytes,
        error.as_deref(),
    );
    let (headers, count) = (call.headers, state.count.get());
    let make = move |lua: &Lua| {
        let r = result(lua, &status, None, &headers, &trailers)?;
        if let Value::Table(t) = &r {
            t.raw_set("count", count)?;
        }
        Ok(r)
    };
    Ok(vec![Ret::Make(Box::new(make))])
}
