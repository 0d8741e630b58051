//! A run's entries, one per (method, name), found by those two strings
//! without a key of their own.
//!
//! An entry holds its method and name already. A map keyed by a copy of
//! them cost a master two string allocations per entry of every report it
//! decoded (and the decoded entries went through a `Vec` on the way in),
//! freed again on another thread once merged; a hash table of entries
//! looked up by their own fields costs neither.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use rustc_hash::FxBuildHasher;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::entry::{StatsEntry, cmp_pairs, hash_pair};

/// Entries decoded from a peer are reserved for up to this many at once,
/// whatever count the peer announces.
const MAX_RESERVED: usize = 1024;

/// The entries of a [`crate::RequestStats`], without its total.
#[derive(Clone, Default)]
pub(crate) struct Entries {
    table: HashTable<StatsEntry>,
}

fn hash(method: &str, name: &str) -> u64 {
    let mut state = FxBuildHasher.build_hasher();
    hash_pair((method, name), &mut state);
    state.finish()
}

fn hash_of(entry: &StatsEntry) -> u64 {
    hash(&entry.method, &entry.name)
}

fn is(method: &str, name: &str) -> impl Fn(&StatsEntry) -> bool {
    move |e| e.method == method && e.name == name
}

impl Entries {
    pub fn get(&self, method: &str, name: &str) -> Option<&StatsEntry> {
        self.table.find(hash(method, name), is(method, name))
    }

    /// The entry of (method, name), empty if there was none.
    pub fn get_or_new(&mut self, method: &str, name: &str) -> &mut StatsEntry {
        match self
            .table
            .entry(hash(method, name), is(method, name), hash_of)
        {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(vacant) => vacant.insert(StatsEntry::new(method, name)).into_mut(),
        }
    }

    /// Adds `other` into the entry of its (method, name).
    pub fn merge(&mut self, other: &StatsEntry) {
        let h = hash_of(other);
        match self.table.find_mut(h, is(&other.method, &other.name)) {
            Some(mine) => mine.merge(other),
            None => {
                // Merged into an empty entry rather than cloned, so a
                // histogram decoded from a report becomes a dense one
                // here, once, not at every later merge or query.
                let mut mine = StatsEntry::new(&other.method, &other.name);
                mine.merge(other);
                self.table.insert_unique(h, mine, hash_of);
            }
        }
    }

    /// Takes `entry` in, merged into one of the same (method, name) if a
    /// peer sent that twice: nothing it counted is lost.
    fn take_in(&mut self, entry: StatsEntry) {
        let h = hash_of(&entry);
        match self.table.find_mut(h, is(&entry.method, &entry.name)) {
            Some(mine) => mine.merge(&entry),
            None => {
                self.table.insert_unique(h, entry, hash_of);
            }
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &StatsEntry> {
        self.table.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut StatsEntry> {
        self.table.iter_mut()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// In Locust's order: by name, then method.
    pub fn sorted(&self) -> Vec<&StatsEntry> {
        let mut sorted: Vec<&StatsEntry> = self.table.iter().collect();
        sorted.sort_unstable_by(|a, b| cmp_pairs((&a.method, &a.name), (&b.method, &b.name)));
        sorted
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.table.len() == other.table.len()
            && self
                .values()
                .all(|e| other.get(&e.method, &e.name) == Some(e))
    }
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.sorted()).finish()
    }
}

/// A sequence of entries, sorted so the bytes are deterministic.
impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.sorted())
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of stats entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries, A::Error> {
        let reserve = seq.size_hint().unwrap_or(0).min(MAX_RESERVED);
        let mut entries = Entries {
            table: HashTable::with_capacity(reserve),
        };
        while let Some(entry) = seq.next_element::<StatsEntry>()? {
            entries.take_in(entry);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sample;

    fn entry(method: &str, name: &str, requests: u64) -> StatsEntry {
        let mut e = StatsEntry::new(method, name);
        for i in 0..requests {
            let sample = Sample {
                method,
                name,
                response_time_us: 1_000 + i,
                due_latency_us: None,
                content_length: 1,
                error: None,
            };
            e.record(&sample, 1_000);
        }
        e
    }

    #[test]
    fn an_entry_sent_twice_is_merged_not_dropped() {
        let sent = vec![
            entry("GET", "/a", 3),
            entry("GET", "/b", 1),
            entry("GET", "/a", 2),
        ];
        let bytes = rmp_serde::to_vec(&sent).expect("encode");
        let got: Entries = rmp_serde::from_slice(&bytes).expect("decode");
        let a = got.get("GET", "/a").expect("/a");
        assert_eq!(a.num_requests, 5);
        assert_eq!(a.histogram.len(), 5);
        assert_eq!(got.sorted().len(), 2);
    }

    #[test]
    fn entries_are_found_by_both_strings_and_sorted_as_locust_sorts() {
        let mut entries = Entries::default();
        entries.get_or_new("POST", "/b").num_requests = 1;
        entries.get_or_new("GET", "/b").num_requests = 2;
        entries.get_or_new("GET", "/a").num_requests = 3;
        entries.get_or_new("GET", "/b").num_requests += 10;
        let order: Vec<(&str, &str, u64)> = entries
            .sorted()
            .into_iter()
            .map(|e| (e.method.as_str(), e.name.as_str(), e.num_requests))
            .collect();
        assert_eq!(
            order,
            [("GET", "/a", 3), ("GET", "/b", 12), ("POST", "/b", 1)]
        );
        assert!(entries.get("PUT", "/b").is_none());
        // ("GE", "T/a") must not find ("GET", "/a").
        assert!(entries.get("GE", "T/a").is_none());
    }
}
