//! Driving a coroutine: resume it, and whenever it yields, do the work it
//! parked in its [`UserCtx`] (an HTTP request, a sleep, other I/O;
//! [`perform`]) and resume it with the result, until it returns. [`drive`]
//! is the loop of the master's extension calls; a user's task runs the
//! same [`perform`] from its own loop (`user.rs`), which keeps its
//! coroutine in the Lua registry between resumes.
//!
//! Parking the work and yielding keeps mlua's async machinery (a boxed
//! future and an internal userdata per call) off the per-request path.

use std::rc::Rc;

use mlua::thread::ThreadStatus;
use mlua::{FromLuaMulti, IntoLuaMulti, Lua, Thread, Value};

use crate::lua_env::{LuaEnv, Op, UserCtx};

/// Runs `thread` from `args` until it returns, and gives what it returned.
/// `around` is called before each resume and its value dropped after it,
/// for whatever must hold only while Lua code runs (the master's deadline).
/// An `Err` is a failure of the resume itself (the runner catches script
/// errors and returns them as values).
pub(crate) async fn drive<A, R, G>(
    lua: &Lua,
    shared: &LuaEnv,
    ctx: &Rc<UserCtx>,
    thread: &Thread,
    args: A,
    mut around: impl FnMut() -> G,
) -> mlua::Result<R>
where
    A: IntoLuaMulti,
    R: FromLuaMulti,
{
    let mut args = Some(args);
    let mut input = Value::Nil;
    loop {
        let out = {
            let _current = Current::set(shared, ctx);
            let _around = around();
            match args.take() {
                Some(a) => thread.resume::<R>(a),
                None => thread.resume::<R>(std::mem::take(&mut input)),
            }
        }?;
        if thread.status() != ThreadStatus::Resumable {
            return Ok(out);
        }
        input = perform(lua, shared, ctx).await;
    }
}

/// Does the work the coroutine yielded for; returns what to resume it with.
pub(crate) async fn perform(lua: &Lua, shared: &LuaEnv, ctx: &UserCtx) -> Value {
    let op = ctx.op.borrow_mut().take();
    match op {
        Some(Op::Http(op)) => {
            let outcome = InFlight::watch(shared, &op).run(op).await;
            match response_object(lua, shared, outcome) {
                Ok(v) => v,
                Err(e) => Value::Error(Box::new(e)),
            }
        }
        Some(Op::Io(work)) => {
            let reply = work.await;
            crate::io::to_lua(lua, reply).unwrap_or_else(|e| Value::Error(Box::new(e)))
        }
        Some(Op::Sleep(d)) if d.is_zero() => {
            tokio::task::yield_now().await;
            Value::Nil
        }
        Some(Op::Sleep(d)) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = ctx.stop.cancelled() => {}
            }
            Value::Nil
        }
        // The script yielded by itself: treat it as a pause point.
        None => {
            tokio::task::yield_now().await;
            Value::Nil
        }
    }
}

/// The Lua object of a response, under the state's response metatable
/// (made on first use).
fn response_object(
    lua: &Lua,
    shared: &LuaEnv,
    outcome: Rc<crate::http::response::Outcome>,
) -> mlua::Result<Value> {
    let meta = match shared.response_meta.get() {
        Some(meta) => meta,
        None => {
            let meta = crate::http::response_ud::ResponseMeta::new(lua)?;
            shared.response_meta.get_or_init(|| meta)
        }
    };
    meta.create(lua, outcome)
}

/// Marks `ctx` as the running user while its Lua code runs, so global
/// functions (`swarmer.sleep`, `swarmer.record`, `swarmer.log`) act for it.
pub(crate) struct Current<'a> {
    shared: &'a LuaEnv,
    prev: Option<Rc<UserCtx>>,
}

impl<'a> Current<'a> {
    pub(crate) fn set(shared: &'a LuaEnv, ctx: &Rc<UserCtx>) -> Self {
        let prev = shared.current.replace(Some(ctx.clone()));
        Current { shared, prev }
    }
}

impl Drop for Current<'_> {
    fn drop(&mut self) {
        *self.shared.current.borrow_mut() = self.prev.take();
    }
}

/// A request on the wire: if the user is dropped before it completes (the
/// stop timeout passed), it is counted as a failure "cancelled at stop"
/// instead of vanishing from the totals.
struct InFlight<'a> {
    shared: &'a LuaEnv,
    method: http::Method,
    name: Rc<str>,
    done: bool,
}

impl<'a> InFlight<'a> {
    fn watch(shared: &'a LuaEnv, op: &crate::http::HttpOp) -> Self {
        let (method, name) = op.label();
        InFlight {
            shared,
            method,
            name,
            done: false,
        }
    }

    async fn run(mut self, op: Box<crate::http::HttpOp>) -> Rc<crate::http::response::Outcome> {
        let outcome = op.run().await;
        self.done = true;
        outcome
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.shared.record(&stats::Sample {
                method: self.method.as_str(),
                name: &self.name,
                response_time_us: 0,
                due_latency_us: None,
                content_length: 0,
                error: Some("cancelled at stop"),
            });
        }
    }
}
