//! Run-wide user indexes (`self.index`): which worker may give which
//! index to its users. Pure bookkeeping, no I/O, so rebalances are
//! unit-tested here.
//!
//! Every worker holds one index per user it may run at once (its users
//! plus its arrival pools' bounds). A worker that needs more takes the
//! lowest free indexes first, so indexes stay within 1..peak. A worker
//! that needs fewer gives back its highest, but they are *draining*, not
//! free: users of that worker may still hold them until they stop, and
//! an index is never handed to another worker while a user holds it. The
//! worker reports them released (`Report::released_indexes`) once no
//! user holds them; a worker that leaves or is lost releases everything.

use std::collections::{BTreeMap, BTreeSet};

use protocol::IndexRange;

#[derive(Debug, Default)]
pub struct IndexBook {
    /// What each worker may hand out.
    held: BTreeMap<String, BTreeSet<u32>>,
    /// Taken back from a worker, possibly still used by its users.
    draining: BTreeMap<String, BTreeSet<u32>>,
    free: BTreeSet<u32>,
    /// The highest index ever handed out.
    top: u32,
}

impl IndexBook {
    /// Gives `worker` exactly `want` indexes, keeping the ones it has as
    /// far as it can. Returns them as ranges, and whether they changed.
    pub fn assign(&mut self, worker: &str, want: u32) -> (Vec<IndexRange>, bool) {
        let held = self.held.entry(worker.to_string()).or_default();
        let want = want as usize;
        let changed = held.len() != want;
        while held.len() > want {
            let Some(top) = held.pop_last() else { break };
            self.draining
                .entry(worker.to_string())
                .or_default()
                .insert(top);
        }
        while held.len() < want {
            // Its own draining indexes first: only its own users can hold
            // them, and the worker knows which.
            let own = self.draining.get_mut(worker).and_then(|d| d.pop_first());
            let index = match own.or_else(|| self.free.pop_first()) {
                Some(i) => i,
                None => {
                    self.top += 1;
                    self.top
                }
            };
            held.insert(index);
        }
        (ranges(held), changed)
    }

    /// `worker` says no user of it holds `indexes` any more.
    pub fn released(&mut self, worker: &str, indexes: &[u32]) {
        let Some(draining) = self.draining.get_mut(worker) else {
            return;
        };
        for i in indexes {
            // Only what it was draining: a resent report, or an index
            // granted back since, changes nothing.
            if draining.remove(i) {
                self.free.insert(*i);
            }
        }
    }

    /// Workers not in `live` run no users of this run any more (they left
    /// or were lost): everything they held is free.
    pub fn keep_only(&mut self, live: &BTreeSet<&str>) {
        let gone: Vec<String> = self
            .held
            .keys()
            .chain(self.draining.keys())
            .filter(|w| !live.contains(w.as_str()))
            .cloned()
            .collect();
        for w in gone {
            let held = self.held.remove(&w).unwrap_or_default();
            let draining = self.draining.remove(&w).unwrap_or_default();
            self.free.extend(held);
            self.free.extend(draining);
        }
    }
}

/// `set` as inclusive runs, in order.
pub fn ranges(set: &BTreeSet<u32>) -> Vec<IndexRange> {
    let mut out: Vec<IndexRange> = Vec::new();
    for &i in set {
        match out.last_mut() {
            Some(r) if r.last + 1 == i => r.last = i,
            _ => out.push(IndexRange { first: i, last: i }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: &[IndexRange]) -> Vec<u32> {
        r.iter().flat_map(|r| r.first..=r.last).collect()
    }

    #[test]
    fn workers_get_disjoint_indexes_from_one() {
        let mut book = IndexBook::default();
        let (a, _) = book.assign("a", 3);
        let (b, _) = book.assign("b", 2);
        assert_eq!(all(&a), [1, 2, 3]);
        assert_eq!(all(&b), [4, 5]);
        assert_eq!(book.assign("a", 3), (a, false));
    }

    #[test]
    fn an_index_taken_back_goes_to_another_worker_only_once_released() {
        let mut book = IndexBook::default();
        book.assign("a", 4);
        // A third worker joins: a shrinks, c must not get a's 3 and 4
        // while a's users may still hold them.
        let (a, changed) = book.assign("a", 2);
        assert!(changed);
        assert_eq!(all(&a), [1, 2]);
        let (c, _) = book.assign("c", 2);
        assert_eq!(all(&c), [5, 6]);
        book.released("a", &[3]);
        book.released("a", &[3]); // a resent report
        let (d, _) = book.assign("d", 2);
        assert_eq!(all(&d), [3, 7]);
        // a grows back: its own draining 4 first.
        let (a, _) = book.assign("a", 3);
        assert_eq!(all(&a), [1, 2, 4]);
    }

    #[test]
    fn a_worker_that_is_gone_frees_everything() {
        let mut book = IndexBook::default();
        book.assign("a", 2);
        book.assign("b", 2);
        book.assign("b", 1);
        book.keep_only(&BTreeSet::from(["a"]));
        let (c, _) = book.assign("c", 3);
        assert_eq!(all(&c), [3, 4, 5]);
        assert_eq!(ranges(&BTreeSet::from([1, 2, 4, 6, 7])).len(), 3);
    }
}
