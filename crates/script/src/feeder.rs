//! `swarmer.feeder(rows, { strategy = ..., name = ... })`: hands rows of a
//! data set (a Lua array, e.g. `swarmer.data("users.csv")`) to users, one
//! per `f:next()`.
//!
//! `circular`, `sequential` and `random` work per core: every core walks
//! (or draws from) all the rows by itself, which needs no coordination.
//! `unique` guarantees that no row goes to two users anywhere in the run:
//! the core leases blocks of row numbers from the master
//! ([`LeaseRequest`], through the worker's session) and hands them out;
//! a block is small, so an uneven cluster does not run out early. When
//! every row is out, `next` raises a Lua error naming the feeder and its
//! row count: the task fails (it shows in the exceptions) and the user
//! goes on with its next task.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use crate::io::{Ret, park_current, wrapper};
use crate::lua_env::LuaEnv;
use crate::luax::{check_keys, fault, type_name};

/// A core asks for the next `want` rows of the `unique` feeder `feeder`,
/// which has `rows` rows. The reply is the 0-based row numbers granted
/// (empty: all are out), or why none could be asked for.
#[derive(Debug)]
pub struct LeaseRequest {
    pub feeder: String,
    pub rows: u32,
    pub want: u32,
    pub reply: oneshot::Sender<Result<Range<u32>, String>>,
}

/// Where a core's `unique` feeders send their [`LeaseRequest`]s.
pub type LeaseSender = mpsc::UnboundedSender<LeaseRequest>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Circular,
    Sequential,
    Random,
    Unique,
}

impl Strategy {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "circular" => Strategy::Circular,
            "sequential" => Strategy::Sequential,
            "random" => Strategy::Random,
            "unique" => Strategy::Unique,
            _ => return None,
        })
    }
}

/// One feeder on one core.
struct Feeder {
    name: String,
    rows: Table,
    len: u32,
    /// Next row (0-based) for `circular` and `sequential`; for `unique`
    /// without a master, the next of all rows.
    next: Cell<u32>,
    /// `unique`: the rows leased and not handed out yet.
    leased: RefCell<Vec<Range<u32>>>,
}

impl Feeder {
    fn row(&self, i: u32) -> mlua::Result<Value> {
        self.rows.raw_get(i + 1)
    }

    /// The next leased row not handed out yet.
    fn take_leased(&self) -> Option<u32> {
        let mut leased = self.leased.borrow_mut();
        while let Some(first) = leased.first_mut() {
            if let Some(i) = first.next() {
                return Some(i);
            }
            leased.remove(0);
        }
        None
    }

    fn exhausted(&self, strategy: &str, scope: &str) -> String {
        format!(
            "feeder {:?} ({strategy}): all {} rows are used{scope}",
            self.name, self.len
        )
    }

    /// Leased rows per request: small enough that the rows other cores
    /// hold unused when the run ends are few, large enough that a big
    /// data set does not cost a round trip per row.
    fn block_size(&self) -> u32 {
        (self.len / 1000).clamp(1, 100)
    }
}

/// `swarmer.feeder(rows, opts)`.
pub fn install(lua: &Lua, swarmer: &Table) -> mlua::Result<()> {
    let wrap = wrapper(lua)?;
    let make = lua
        .create_function(move |lua, (rows, opts): (Value, Value)| create(lua, &wrap, rows, opts))?;
    swarmer.set("feeder", make)
}

const WHAT: &str = "swarmer.feeder";

fn create(lua: &Lua, wrap: &Function, rows: Value, opts: Value) -> mlua::Result<Table> {
    let Value::Table(rows) = rows else {
        return Err(fault(format!(
            "{WHAT}: rows must be an array (e.g. swarmer.data(\"users.csv\")), got a {}",
            type_name(&rows)
        )));
    };
    let len = u32::try_from(rows.raw_len()).unwrap_or(u32::MAX);
    let shared = LuaEnv::from_lua(lua)?;
    let number = shared.feeders.get() + 1;
    shared.feeders.set(number);
    let (mut strategy, mut name) = (Strategy::Circular, format!("feeder {number}"));
    match opts {
        Value::Nil => {}
        Value::Table(t) => {
            check_keys(&t, WHAT, &["strategy", "name"])?;
            if let Some(s) = crate::io::string_opt(&t, "strategy", WHAT)? {
                strategy = Strategy::parse(&s).ok_or_else(|| {
                    fault(format!(
                        "{WHAT}: unknown strategy {s:?}; use \"circular\", \"sequential\", \
                         \"random\" or \"unique\""
                    ))
                })?;
            }
            if let Some(n) = crate::io::string_opt(&t, "name", WHAT)? {
                name = n;
            }
        }
        other => {
            return Err(fault(format!(
                "{WHAT}: options must be a table, got a {}",
                type_name(&other)
            )));
        }
    }
    if len == 0 {
        return Err(fault(format!("{WHAT}: feeder {name:?} has no rows")));
    }
    let feeder = Rc::new(Feeder {
        name: name.clone(),
        rows,
        len,
        next: Cell::new(0),
        leased: RefCell::new(Vec::new()),
    });
    let next = match strategy {
        Strategy::Unique => {
            let f = feeder.clone();
            let prepare = lua.create_function(move |lua, _this: Value| prepare_unique(lua, &f))?;
            wrap.call::<Function>(prepare)?
        }
        local => {
            let f = feeder.clone();
            lua.create_function(move |lua, _this: Value| next_local(lua, &f, local))?
        }
    };
    let t = lua.create_table()?;
    t.raw_set("next", next)?;
    t.raw_set("name", name)?;
    t.raw_set("size", len)?;
    Ok(t)
}

fn next_local(lua: &Lua, f: &Feeder, strategy: Strategy) -> mlua::Result<Value> {
    let i = match strategy {
        Strategy::Random => {
            let shared = LuaEnv::from_lua(lua)?;
            shared.rng.borrow_mut().random_range(0..f.len)
        }
        Strategy::Sequential => {
            let i = f.next.get();
            if i >= f.len {
                return Err(fault(f.exhausted("sequential", " on this core")));
            }
            f.next.set(i + 1);
            i
        }
        _ => {
            let i = f.next.get() % f.len;
            f.next.set(i + 1);
            i
        }
    };
    f.row(i)
}

/// Parks the `unique` feeder's next row: at once from the leased block,
/// else after a lease from the master.
fn prepare_unique(lua: &Lua, f: &Rc<Feeder>) -> mlua::Result<()> {
    let what = format!("{:?}:next()", f.name);
    let taken = f.take_leased();
    let f = f.clone();
    if let Some(i) = taken {
        return park_current(lua, &what, async move { Ok(vec![row_ret(&f, i)]) });
    }
    let shared = LuaEnv::from_lua(lua)?;
    let Some(leases) = shared.config.feeder_leases.clone() else {
        // No master to ask (a script run outside a worker): unique on
        // this core.
        let i = f.next.get();
        if i >= f.len {
            return Err(fault(f.exhausted("unique", "")));
        }
        f.next.set(i + 1);
        return park_current(lua, &what, async move { Ok(vec![row_ret(&f, i)]) });
    };
    park_current(lua, &what, async move {
        let (reply, answer) = oneshot::channel();
        let request = LeaseRequest {
            feeder: f.name.clone(),
            rows: f.len,
            want: f.block_size(),
            reply,
        };
        let lost = || format!("feeder {:?}: the master's link is down", f.name);
        leases.send(request).map_err(|_| lost())?;
        let mut granted = answer.await.map_err(|_| lost())??;
        granted.end = granted.end.min(f.len);
        let Some(i) = granted.next() else {
            return Err(f.exhausted("unique", " across the run"));
        };
        // The rest of the block (other users of this core may have leased
        // blocks meanwhile: all are kept).
        if !granted.is_empty() {
            f.leased.borrow_mut().push(granted);
        }
        Ok(vec![row_ret(&f, i)])
    })
}

fn row_ret(f: &Rc<Feeder>, i: u32) -> Ret {
    let f = f.clone();
    Ret::Make(Box::new(move |_| f.row(i)))
}
