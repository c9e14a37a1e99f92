//! Sharding: which services this replica watches, when several replicas split the work.
//!
//! Rendezvous (highest random weight) hashing of `parent_segment/pz_service`: every replica
//! computes the same owner for a service without talking to the others, the replicas together
//! cover every service exactly once, and going from N to N+1 replicas moves only the services
//! the new replica wins, about 1/(N+1) of them.

use std::fmt;
use std::str::FromStr;

use crate::hash::stable_hash;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid shard {0:?}: write I/N with 0 <= I < N, e.g. --shard=0/3")]
pub struct ShardError(String);

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s.split_once('/').ok_or_else(|| ShardError(s.into()))?;
        let index: u32 = i.trim().parse().map_err(|_| ShardError(s.into()))?;
        let count: u32 = n.trim().parse().map_err(|_| ShardError(s.into()))?;
        Shard::new(index, count).ok_or_else(|| ShardError(s.into()))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    /// The shard of a StatefulSet pod: `SHARD_INDEX` may be a number or a pod name such as
    /// `td-pz-exporter-2` (the ordinal is the number after the last dash).
    pub fn from_env(index: &str, count: &str) -> Result<Shard, ShardError> {
        let ordinal = index.rsplit('-').next().unwrap_or(index);
        Shard::from_str(&format!("{ordinal}/{count}"))
    }

    /// The replica that owns `key` among `count` replicas.
    pub fn owner(key: &str, count: u32) -> u32 {
        (0..count.max(1))
            .max_by_key(|i| stable_hash(&format!("{key}#{i}")))
            .unwrap_or(0)
    }

    pub fn owns(&self, key: &str) -> bool {
        Shard::owner(key, self.count) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_and_pod_names() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(
            Shard::from_env("td-pz-exporter-2", "3").unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert_eq!(
            Shard::from_env("0", "1").unwrap(),
            Shard { index: 0, count: 1 }
        );
    }

    #[test]
    fn shards_cover_every_service_once_and_move_little() {
        let keys: Vec<String> = (0..3000).map(|i| format!("394649/svc_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for k in &keys {
            assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
        }
        let per: Vec<usize> = shards
            .iter()
            .map(|s| keys.iter().filter(|k| s.owns(k)).count())
            .collect();
        assert!(
            per.iter().all(|n| (800..1200).contains(n)),
            "balanced: {per:?}"
        );
        let moved = keys
            .iter()
            .filter(|k| Shard::owner(k, 3) != Shard::owner(k, 4))
            .count();
        let share = moved as f64 / keys.len() as f64;
        assert!(share < 0.30, "moved {share}");
        // Every move goes to the new replica.
        assert!(keys
            .iter()
            .all(|k| Shard::owner(k, 3) == Shard::owner(k, 4) || Shard::owner(k, 4) == 3));
    }
}
