//! Lua values that Rust keeps across awaits (a user's table, its running
//! coroutine), held the fast way while there is room and the unbounded way
//! after.
//!
//! A handle (`Table`, `Thread`) takes a slot of mlua's reference stack,
//! which LuaJIT caps at about 8,000: holding one per user capped a core at
//! about 7,700 users. The registry has no such cap, but every use then
//! costs a lookup and a fresh handle, about 0.3 µs per request on the
//! HTTP hot path (measured with `bench/run.sh`). So each core gives out a
//! fixed number of handle slots; values beyond it go to the registry.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{FromLua, IntoLua, Lua, RegistryKey};

/// Handle slots one core hands out: far below the reference stack's cap,
/// leaving room for the handles mlua and the runtime take for themselves.
pub const HANDLE_SLOTS: usize = 4_000;

/// The slots left on one core; shared by every [`Held`] it made.
#[derive(Clone)]
pub struct Slots(Rc<Cell<usize>>);

impl Slots {
    pub fn new(n: usize) -> Self {
        Slots(Rc::new(Cell::new(n)))
    }

    #[cfg(test)]
    fn left(&self) -> usize {
        self.0.get()
    }

    fn take(&self) -> Option<SlotGuard> {
        let n = self.0.get();
        (n > 0).then(|| {
            self.0.set(n - 1);
            SlotGuard(self.clone())
        })
    }
}

/// Gives its slot back when the handle it was taken for is dropped.
pub struct SlotGuard(Slots);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let cell = &(self.0).0;
        cell.set(cell.get() + 1);
    }
}

/// A value kept by Rust: a handle while slots last, else a registry key.
pub enum Held<T> {
    Handle { value: T, _slot: SlotGuard },
    Registry(RegistryKey),
}

impl<T: IntoLua + FromLua> Held<T> {
    pub fn new(lua: &Lua, slots: &Slots, value: T) -> mlua::Result<Self> {
        Ok(match slots.take() {
            Some(slot) => Held::Handle { value, _slot: slot },
            None => Held::Registry(lua.create_registry_value(value)?),
        })
    }

    /// Runs `f` with the value: by reference for a handle, after a
    /// registry lookup otherwise.
    pub fn with<R>(&self, lua: &Lua, f: impl FnOnce(&T) -> mlua::Result<R>) -> mlua::Result<R> {
        match self {
            Held::Handle { value, .. } => f(value),
            Held::Registry(key) => f(&lua.registry_value::<T>(key)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Table;

    #[test]
    fn slots_are_given_back_and_overflow_goes_to_the_registry() {
        let lua = Lua::new();
        let slots = Slots::new(2);
        let a = Held::new(&lua, &slots, lua.create_table().unwrap()).unwrap();
        let b = Held::new(&lua, &slots, lua.create_table().unwrap()).unwrap();
        let c = Held::new(&lua, &slots, lua.create_table().unwrap()).unwrap();
        assert!(matches!(a, Held::Handle { .. }));
        assert!(matches!(b, Held::Handle { .. }));
        assert!(matches!(c, Held::Registry(_)));
        assert_eq!(slots.left(), 0);
        drop(a);
        assert_eq!(slots.left(), 1);
        drop(c);
        assert_eq!(slots.left(), 1);
        drop(b);
        assert_eq!(slots.left(), 2);
    }

    #[test]
    fn both_kinds_give_the_same_value() {
        let lua = Lua::new();
        let slots = Slots::new(1);
        let make = |n: i64| -> Table {
            let t = lua.create_table().unwrap();
            t.set("n", n).unwrap();
            t
        };
        let fast = Held::new(&lua, &slots, make(1)).unwrap();
        let slow = Held::new(&lua, &slots, make(2)).unwrap();
        let n = |h: &Held<Table>| h.with(&lua, |t| t.get::<i64>("n")).unwrap();
        assert_eq!((n(&fast), n(&slow)), (1, 2));
    }
}
