//! Serde `with` helpers for maps whose keys are structs.
//!
//! msgpack (rmp-serde) and JSON cannot carry struct keys in maps portably,
//! so such maps travel as sequences: `pairs` as `[(key, value)]`, and
//! `values` / `hash_values` as `[value]` for values that carry their own key
//! (no duplication, and a key can never disagree with its value after
//! decoding). Hash maps are written in key order so the bytes are
//! deterministic.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that knows the map key it is stored under.
pub(crate) trait Keyed {
    type Key: Ord;
    fn map_key(&self) -> Self::Key;
}

pub(crate) mod pairs {
    use super::*;

    pub fn serialize<K, V, S>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        let pairs = Vec::<(K, V)>::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

pub(crate) mod values {
    use super::*;

    pub fn serialize<K, V, S>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        V: Serialize,
        S: Serializer,
    {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, V, D>(d: D) -> Result<BTreeMap<V::Key, V>, D::Error>
    where
        V: Deserialize<'de> + Keyed,
        D: Deserializer<'de>,
    {
        let values = Vec::<V>::deserialize(d)?;
        Ok(values.into_iter().map(|v| (v.map_key(), v)).collect())
    }
}

pub(crate) mod hash_values {
    use super::*;

    pub fn serialize<K, V, H, S>(map: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut sorted: Vec<(&K, &V)> = map.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(sorted.into_iter().map(|(_, v)| v))
    }

    pub fn deserialize<'de, V, H, D>(d: D) -> Result<HashMap<V::Key, V, H>, D::Error>
    where
        V: Deserialize<'de> + Keyed,
        V::Key: Hash,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let values = Vec::<V>::deserialize(d)?;
        Ok(values.into_iter().map(|v| (v.map_key(), v)).collect())
    }
}
