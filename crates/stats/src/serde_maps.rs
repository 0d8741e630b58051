//! Serde `with` helpers for maps whose keys are structs.
//!
//! msgpack (rmp-serde) and JSON cannot carry struct keys in maps portably,
//! so such maps travel as sequences: `pairs` as `[(key, value)]`, and
//! `values` as `[value]` for values that carry their own key (no
//! duplication, and a key can never disagree with its value after
//! decoding). The entries, in a table of their own, do the same in
//! `entries.rs`.

use std::collections::BTreeMap;

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
