//! Interrupts Lua code that runs too long without yielding.
//!
//! A core runs all its users on one thread, so a task stuck in
//! `while true do end` would starve every other user of that core, and its
//! stop. The core marks each entry into Lua (an atomic counter, odd while
//! inside); a watchdog thread per Lua state samples it, and when the same
//! entry has lasted longer than the limit it installs a Lua count hook from
//! its own thread (the way `lua.c` handles Ctrl-C). The hook, on the core's
//! thread, raises "task ran for more than N s" at the running line; the
//! runner records it as an exception and the user goes on.
//!
//! The same watchdog bounds the state's memory: it reads the state's
//! allocated total (`lua_gc(LUA_GCCOUNT)`, a plain read) every 100 ms and
//! interrupts the Lua code running while it is past the limit. mlua's own
//! `set_memory_limit` was measured first: it makes mlua run its API calls
//! in protected mode, which cost 45% of the engine's throughput on trivial
//! tasks; this check stays off the core's thread, at the price of a soft
//! bound (a script allocating very fast overshoots by what it allocates in
//! 100 ms).
//!
//! LuaJIT's compiled loops do not look at hooks unless LuaJIT is built with
//! `LUAJIT_ENABLE_CHECKHOOK` (one byte load per loop iteration); the
//! workspace's `.cargo/config.toml` sets it for the vendored build.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mlua::{Lua, ffi};

/// Bounds on one core's Lua state, so no script can stall or exhaust a
/// worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LuaLimits {
    /// Longest a task (or hook, or wait function) may run without yielding.
    pub task_time: Duration,
    /// Longest loading the script (its top-level code) may take.
    pub load_time: Duration,
    /// Most memory one Lua state may allocate, in bytes (0: no bound).
    pub memory_bytes: usize,
}

impl Default for LuaLimits {
    fn default() -> Self {
        LuaLimits {
            task_time: Duration::from_secs(5),
            load_time: Duration::from_secs(30),
            memory_bytes: 1 << 30,
        }
    }
}

/// How often the watchdog reads the state's memory when it is bounded.
const MEMORY_POLL: Duration = Duration::from_millis(100);

/// Where the hook finds its watchdog: a light userdata in the registry.
const REGISTRY_KEY: &std::ffi::CStr = c"swarmer.watchdog";

/// One Lua state's watchdog, held by its owner on the core's thread.
pub struct Watchdog {
    inner: Arc<Inner>,
}

struct Inner {
    /// Entries into Lua so far, counting both enter and leave: odd while
    /// the state runs Lua code.
    epoch: AtomicU64,
    /// The epoch the hook must interrupt (0: none).
    interrupt: AtomicU64,
    /// Interruptions so far.
    fired: AtomicU64,
    /// The main state, while it is alive; `lua_sethook` acts on the whole
    /// LuaJIT state from any of its threads.
    state: Mutex<Option<StatePtr>>,
    /// What the hook raises.
    message: Mutex<CString>,
    limit: Mutex<Limit>,
    /// Most bytes the state may hold (0: no bound).
    memory_bytes: usize,
}

#[derive(Clone, Copy)]
struct Limit {
    duration: Duration,
    /// "task" or "loading the script", for the message.
    what: &'static str,
}

struct StatePtr(*mut ffi::lua_State);

// SAFETY: the pointer is only used under `Inner::state`'s lock, and only for
// `lua_sethook`, which Lua documents as safe to call asynchronously (from a
// signal handler or another thread); the owner clears it before closing
// the state.
unsafe impl Send for StatePtr {}

/// Marks the core as inside Lua until dropped.
pub struct Busy<'a>(&'a Inner);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.epoch.fetch_add(1, Ordering::Release);
    }
}

impl Watchdog {
    /// Watches `lua`: Lua code that runs longer than `limit` in one go is
    /// interrupted. `what` names it in the message ("task").
    /// Lua code running while the state holds more than `memory_bytes`
    /// (0: no bound) is interrupted too.
    pub fn attach(lua: &Lua, limit: Duration, what: &'static str, memory_bytes: usize) -> Watchdog {
        let inner = Arc::new(Inner {
            epoch: AtomicU64::new(0),
            interrupt: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            state: Mutex::new(Some(StatePtr(lua.state()))),
            message: Mutex::new(CString::default()),
            limit: Mutex::new(Limit {
                duration: limit,
                what,
            }),
            memory_bytes,
        });
        let raw = Arc::as_ptr(&inner) as *mut std::ffi::c_void;
        // SAFETY: the main state, outside any callback, with a balanced
        // stack; `Inner` outlives the state's use of it (see `detach`).
        unsafe {
            let l = lua.state();
            ffi::lua_pushlightuserdata(l, raw);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        }
        let weak = Arc::downgrade(&inner);
        let mut period = (limit / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        if memory_bytes > 0 {
            period = period.min(MEMORY_POLL);
        }
        let spawned = std::thread::Builder::new()
            .name("swarmer-watchdog".into())
            .spawn(move || watch(weak, period));
        if let Err(e) = spawned {
            tracing::error!(
                "cannot start the Lua watchdog thread ({e}); long tasks will not be interrupted"
            );
        }
        Watchdog { inner }
    }

    /// Changes the limit (loading has its own, then tasks theirs).
    pub fn set_limit(&self, limit: Duration, what: &'static str) {
        if let Ok(mut l) = self.inner.limit.lock() {
            *l = Limit {
                duration: limit,
                what,
            };
        }
    }

    /// The state is inside Lua until the guard drops.
    #[inline]
    pub fn enter(&self) -> Busy<'_> {
        self.inner.epoch.fetch_add(1, Ordering::Release);
        Busy(&self.inner)
    }

    /// How many times Lua code was interrupted: a user whose task was
    /// interrupted yields to the core's other work before its next task.
    #[inline]
    pub fn interruptions(&self) -> u64 {
        self.inner.fired.load(Ordering::Relaxed)
    }

    /// Must run before the state closes: the watchdog thread no longer
    /// touches it.
    pub fn detach(&self) {
        if let Ok(mut state) = self.inner.state.lock() {
            *state = None;
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.detach();
    }
}

fn watch(inner: Weak<Inner>, period: Duration) {
    // The entry seen running, and since when.
    let mut seen: Option<(u64, Instant)> = None;
    loop {
        std::thread::sleep(period);
        let Some(inner) = inner.upgrade() else { return };
        let Ok(state) = inner.state.lock() else {
            return;
        };
        let Some(state) = state.as_ref() else { return };
        let epoch = inner.epoch.load(Ordering::Acquire);
        if epoch % 2 == 0 {
            seen = None;
            continue;
        }
        if inner.interrupt.load(Ordering::Acquire) == epoch {
            continue;
        }
        if let Some(text) = over_memory(&inner, state) {
            arm(&inner, state, epoch, text);
            continue;
        }
        let since = match seen {
            Some((e, since)) if e == epoch => since,
            _ => {
                seen = Some((epoch, Instant::now()));
                continue;
            }
        };
        let Ok(limit) = inner.limit.lock().map(|l| *l) else {
            return;
        };
        // `since` is when this entry was first seen, up to one period after
        // it began, so the entry has run at least this long.
        if since.elapsed() >= limit.duration {
            let secs = limit.duration.as_secs_f64();
            arm(
                &inner,
                state,
                epoch,
                format!("{} ran for more than {secs} s without yielding", limit.what),
            );
            // A script that catches the interruption gets another full limit.
            seen = Some((epoch, Instant::now()));
        }
    }
}

/// The message for a state past its memory bound, if it is.
fn over_memory(inner: &Inner, state: &StatePtr) -> Option<String> {
    if inner.memory_bytes == 0 {
        return None;
    }
    // SAFETY: the state is alive while `inner.state` is locked (see
    // `detach`); LUA_GCCOUNT only reads the allocated total.
    let kib = unsafe { ffi::lua_gc(state.0, ffi::LUA_GCCOUNT, 0) };
    let bytes = usize::try_from(kib).unwrap_or(0) * 1024;
    (bytes > inner.memory_bytes).then(|| {
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        format!(
            "the Lua state holds {:.0} MB, past its memory limit of {:.0} MB (--lua-memory-limit)",
            mib(bytes),
            mib(inner.memory_bytes)
        )
    })
}

/// Makes the hook interrupt entry `epoch` with `text`.
fn arm(inner: &Inner, state: &StatePtr, epoch: u64, text: String) {
    if let Ok(mut m) = inner.message.lock() {
        *m = CString::new(text).unwrap_or_default();
    }
    inner.interrupt.store(epoch, Ordering::Release);
    // SAFETY: the state is alive while `inner.state` is locked (see
    // `detach`); Lua documents `lua_sethook` as safe to call from another
    // thread or a signal handler.
    unsafe {
        ffi::lua_sethook(state.0, Some(hook), ffi::LUA_MASKCOUNT, 1);
    }
}

/// Runs on the core's thread, at the next instruction of the state.
unsafe extern "C-unwind" fn hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: called by Lua with a valid state; the registry entry was set
    // by `attach` and the `Inner` it points to lives as long as the state.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_KEY.as_ptr());
        let inner = ffi::lua_touserdata(l, -1) as *const Inner;
        ffi::lua_pop(l, 1);
        let Some(inner) = inner.as_ref() else {
            ffi::lua_sethook(l, None, 0, 0);
            return;
        };
        let target = inner.interrupt.load(Ordering::Acquire);
        if inner.epoch.load(Ordering::Acquire) != target {
            // That entry ended before the hook ran: nothing to interrupt.
            ffi::lua_sethook(l, None, 0, 0);
            return;
        }
        // Fires once: the runner's own code must be able to record the
        // error. A script that catches it and keeps spinning is interrupted
        // again after another full limit.
        inner.interrupt.store(0, Ordering::Release);
        inner.fired.fetch_add(1, Ordering::Relaxed);
        ffi::lua_sethook(l, None, 0, 0);
        let msg = inner.message.lock().map(|m| m.clone()).unwrap_or_default();
        ffi::luaL_where(l, 0);
        ffi::lua_pushstring(l, msg.as_ptr());
        // Nothing owned may be alive while Lua unwinds through this frame.
        drop(msg);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l);
    }
}
