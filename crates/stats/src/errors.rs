//! Failure groups and exceptions.
//!
//! Failures are grouped by (method, name, error text) as Locust does, with
//! when each group was first and last seen; exceptions raised by user code
//! are grouped by (message, traceback) with the nodes that raised them.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Identifies a failure group. Its strings are kept inline up to 24 bytes
/// each: a report carries a group per failing (entry, error), and a master
/// decoding thousands of reports a second paid three allocations for each
/// (and their frees on another thread) when they were `String`s.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ErrorKey {
    pub method: CompactString,
    pub name: CompactString,
    pub error: CompactString,
}

impl ErrorKey {
    pub fn new(method: &str, name: &str, error: &str) -> Self {
        Self {
            method: method.into(),
            name: name.into(),
            error: error.into(),
        }
    }
}

/// How often one failure group occurred, and when (unix ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub occurrences: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

impl ErrorEntry {
    /// A group seen once, at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            occurrences: 1,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
        }
    }

    /// Counts one more occurrence at `now_ms`.
    pub fn occur(&mut self, now_ms: u64) {
        self.occurrences = self.occurrences.saturating_add(1);
        self.first_seen_ms = self.first_seen_ms.min(now_ms);
        self.last_seen_ms = self.last_seen_ms.max(now_ms);
    }

    /// Adds another tally of the same group (exact, commutative).
    pub fn merge(&mut self, other: &ErrorEntry) {
        if other.occurrences == 0 {
            return;
        }
        if self.occurrences == 0 {
            *self = *other;
            return;
        }
        self.occurrences = self.occurrences.saturating_add(other.occurrences);
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
    }
}

/// One exception group: how often it was raised, and on which nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    pub message: String,
    pub traceback: String,
    pub count: u64,
    pub nodes: BTreeSet<String>,
}

impl ExceptionEntry {
    /// Adds another tally of the same exception (exact, commutative).
    pub fn merge(&mut self, other: &ExceptionEntry) {
        self.count = self.count.saturating_add(other.count);
        self.nodes.extend(other.nodes.iter().cloned());
    }
}

/// A view of an error key as three borrowed strings, so a failure's group is
/// found without building its key: a map keyed by `ErrorKey` is searched
/// with `&dyn KeyTriple`.
pub(crate) trait KeyTriple {
    fn triple(&self) -> (&str, &str, &str);
}

impl KeyTriple for ErrorKey {
    fn triple(&self) -> (&str, &str, &str) {
        (&self.method, &self.name, &self.error)
    }
}

impl KeyTriple for (&str, &str, &str) {
    fn triple(&self) -> (&str, &str, &str) {
        (self.0, self.1, self.2)
    }
}

impl<'a> Borrow<dyn KeyTriple + 'a> for ErrorKey {
    fn borrow(&self) -> &(dyn KeyTriple + 'a) {
        self
    }
}

impl PartialEq for dyn KeyTriple + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.triple() == other.triple()
    }
}

impl Eq for dyn KeyTriple + '_ {}

impl PartialOrd for dyn KeyTriple + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyTriple + '_ {
    // Same field order as ErrorKey's derived Ord, which borrowed lookups need.
    fn cmp(&self, other: &Self) -> Ordering {
        self.triple().cmp(&other.triple())
    }
}
