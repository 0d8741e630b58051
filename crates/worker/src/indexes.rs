//! This worker's run-wide user indexes (`self.index`), shared by its
//! cores: the master grants a set with every plan; a user takes the lowest
//! free one when it starts and gives it back when it ends (its [`Lease`]
//! drops with its task, whether it finished or was aborted).
//!
//! An index the master took back while a user holds it stays with that
//! user until it ends, then goes in the list of released indexes that the
//! next report carries, so the master never hands it to another worker
//! while it is in use.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::IndexRange;

#[derive(Debug, Default)]
struct Book {
    /// `None`: the master grants none (an older master); users are
    /// numbered from 1 on this worker instead.
    granted: Option<BTreeSet<u32>>,
    free: BTreeSet<u32>,
    in_use: BTreeSet<u32>,
    /// Taken back by the master and no longer in use, not yet reported.
    released: Vec<u32>,
}

/// The pool; cheap to clone (every core holds one).
#[derive(Debug, Clone, Default)]
pub struct Indexes(Arc<Mutex<Book>>);

impl Indexes {
    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic elsewhere while holding it leaves consistent sets.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The master's grant for the plan at hand (`None`: none given).
    pub fn grant(&self, ranges: Option<&[IndexRange]>) {
        let mut book = self.book();
        let Some(ranges) = ranges else {
            book.granted = None;
            return;
        };
        let new: BTreeSet<u32> = ranges.iter().flat_map(|r| r.first..=r.last).collect();
        let old = book.granted.take().unwrap_or_default();
        for gone in old.difference(&new) {
            if book.free.remove(gone) {
                book.released.push(*gone);
            }
        }
        for added in new.difference(&old) {
            if !book.in_use.contains(added) {
                book.free.insert(*added);
            }
        }
        book.granted = Some(new);
    }

    /// A new run: nothing from the old one is held or owed.
    pub fn reset(&self) {
        *self.book() = Book::default();
    }

    /// The lowest free index for a user about to start; `None` while every
    /// granted index is held (users that are stopping still hold theirs).
    pub fn take(&self) -> Option<Lease> {
        let mut book = self.book();
        let index = match &book.granted {
            Some(_) => book.free.pop_first()?,
            None => (1..).find(|i| !book.in_use.contains(i))?,
        };
        book.in_use.insert(index);
        Some(Lease {
            index,
            pool: self.clone(),
        })
    }

    /// Whether the master still grants `index` to this worker (always,
    /// without a grant).
    pub fn is_granted(&self, index: u32) -> bool {
        match &self.book().granted {
            Some(g) => g.contains(&index),
            None => true,
        }
    }

    /// Indexes taken back by the master that no user holds any more,
    /// since the last call.
    pub fn take_released(&self) -> Vec<u32> {
        std::mem::take(&mut self.book().released)
    }

    fn give_back(&self, index: u32) {
        let mut book = self.book();
        if !book.in_use.remove(&index) {
            return;
        }
        match &book.granted {
            Some(g) if g.contains(&index) => {
                book.free.insert(index);
            }
            Some(_) => book.released.push(index),
            None => {}
        }
    }
}

/// One user's index, given back when dropped.
#[derive(Debug)]
pub struct Lease {
    pub index: u32,
    pool: Indexes,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.give_back(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u32, last: u32) -> IndexRange {
        IndexRange { first, last }
    }

    #[test]
    fn users_take_the_lowest_free_index_and_give_it_back() {
        let pool = Indexes::default();
        pool.grant(Some(&[r(4, 6)]));
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!((a.index, b.index), (4, 5));
        drop(a);
        assert_eq!(pool.take().unwrap().index, 4);
        let _c = pool.take().unwrap();
        let _d = pool.take().unwrap();
        assert!(pool.take().is_none(), "three granted, three held");
    }

    #[test]
    fn an_index_taken_back_is_released_only_once_its_user_ends() {
        let pool = Indexes::default();
        pool.grant(Some(&[r(1, 3)]));
        let one = pool.take().unwrap();
        let two = pool.take().unwrap();
        pool.grant(Some(&[r(1, 1)]));
        assert_eq!(pool.take_released(), [3], "3 was free");
        assert!(pool.take().is_none(), "1 is still held");
        drop(two);
        assert_eq!(pool.take_released(), [2]);
        drop(one);
        assert_eq!(pool.take().unwrap().index, 1);
        assert!(pool.take_released().is_empty());
    }

    #[test]
    fn without_a_grant_users_are_numbered_on_this_worker() {
        let pool = Indexes::default();
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert_eq!((a.index, b.index), (1, 2));
        drop(a);
        assert_eq!(pool.take().unwrap().index, 1);
        drop(b);
        assert!(pool.take_released().is_empty());
    }
}
