//! Replica placement for new partitions: Kafka's `assignReplicasToBrokers`, rack-unaware and rack-aware.
//!
//! Partition `p`'s first replica (its preferred leader) is broker `(start + p) mod n`, so leaders go round
//! the brokers; the other replicas follow at a shift that grows each time the partitions wrap round, so
//! followers spread too. With racks, the broker list alternates racks and a replica is placed on a rack that
//! has none of the partition's replicas yet while such a rack exists.

use std::collections::{BTreeMap, BTreeSet};

use crate::records::NodeId;

/// A broker that can take replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) node_id: NodeId,
    pub(crate) rack: Option<String>,
}

/// Replica lists for partitions `first_partition .. first_partition + count`.
///
/// `brokers` must be non-empty and `replication_factor` in `1..=brokers.len()` (the controller checks
/// both first). `start` picks where the round starts, so topics do not all put partition 0 on one broker.
/// Rack-aware only when every broker has a rack, as Kafka.
pub(crate) fn assign(
    brokers: &[Candidate],
    count: i32,
    replication_factor: usize,
    first_partition: i32,
    start: usize,
) -> Vec<Vec<NodeId>> {
    let mut sorted = brokers.to_vec();
    sorted.sort_by_key(|b| b.node_id);
    if sorted.is_empty() || replication_factor == 0 || replication_factor > sorted.len() {
        return Vec::new();
    }
    if sorted.iter().all(|b| b.rack.is_some()) {
        rack_aware(&sorted, count, replication_factor, first_partition, start)
    } else {
        let ids: Vec<NodeId> = sorted.iter().map(|b| b.node_id).collect();
        rack_unaware(&ids, count, replication_factor, first_partition, start)
    }
}

fn replica_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    // n > 1 whenever a second replica is asked for (replication_factor <= n).
    let spread = 1 + (shift + j) % (n - 1).max(1);
    (first + spread) % n
}

fn rack_unaware(ids: &[NodeId], count: i32, rf: usize, first_partition: i32, start: usize) -> Vec<Vec<NodeId>> {
    let n = ids.len();
    let start = start % n;
    let mut shift = start;
    let mut out = Vec::new();
    let first_partition = usize::try_from(first_partition.max(0)).unwrap_or(0);
    for p in first_partition..first_partition + usize::try_from(count.max(0)).unwrap_or(0) {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(ids[first]);
        for j in 0..rf - 1 {
            replicas.push(ids[replica_index(first, shift, j, n)]);
        }
        out.push(replicas);
    }
    out
}

/// Brokers ordered so that consecutive ones are on different racks: one from each rack in turn.
fn rack_alternated(brokers: &[Candidate]) -> Vec<Candidate> {
    let mut by_rack: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.as_deref().unwrap_or("")).or_default().push(b);
    }
    let mut iters: Vec<_> = by_rack.into_values().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(brokers.len());
    while out.len() < brokers.len() {
        for it in &mut iters {
            if let Some(b) = it.next() {
                out.push(b.clone());
            }
        }
    }
    out
}

fn rack_aware(brokers: &[Candidate], count: i32, rf: usize, first_partition: i32, start: usize) -> Vec<Vec<NodeId>> {
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    let racks: BTreeSet<&str> = arranged.iter().map(|b| b.rack.as_deref().unwrap_or("")).collect();
    let num_racks = racks.len();
    let start = start % n;
    let mut shift = start;
    let mut out = Vec::new();
    let first_partition = usize::try_from(first_partition.max(0)).unwrap_or(0);
    for p in first_partition..first_partition + usize::try_from(count.max(0)).unwrap_or(0) {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let leader = &arranged[first];
        let mut replicas = vec![leader.node_id];
        let mut racks_with: BTreeSet<&str> = BTreeSet::from([leader.rack.as_deref().unwrap_or("")]);
        let mut brokers_with: BTreeSet<NodeId> = BTreeSet::from([leader.node_id]);
        let mut k = 0;
        // Each replica is found within n * num_racks probes in Kafka's algorithm; the bound only guards
        // against a mistake turning into an endless loop.
        let max_probes = n * num_racks * rf + n;
        while replicas.len() < rf && k < max_probes {
            let candidate = &arranged[replica_index(first, shift * num_racks, k, n)];
            let rack = candidate.rack.as_deref().unwrap_or("");
            if (!racks_with.contains(rack) || racks_with.len() == num_racks)
                && (!brokers_with.contains(&candidate.node_id) || brokers_with.len() == n)
            {
                replicas.push(candidate.node_id);
                racks_with.insert(rack);
                brokers_with.insert(candidate.node_id);
            }
            k += 1;
        }
        // Fall back to any unused broker should the probe bound ever be hit.
        for b in &arranged {
            if replicas.len() >= rf {
                break;
            }
            if !replicas.contains(&b.node_id) {
                replicas.push(b.node_id);
            }
        }
        out.push(replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[NodeId]) -> Vec<Candidate> {
        ids.iter().map(|&node_id| Candidate { node_id, rack: None }).collect()
    }

    #[test]
    fn leaders_and_replicas_spread_without_racks() {
        let out = assign(&plain(&[1, 2, 3]), 6, 3, 0, 0);
        assert_eq!(out.len(), 6);
        let mut leaders = BTreeMap::new();
        for replicas in &out {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn rack_aware_puts_replicas_on_distinct_racks() {
        let brokers = vec![
            Candidate { node_id: 1, rack: Some("a".into()) },
            Candidate { node_id: 2, rack: Some("a".into()) },
            Candidate { node_id: 3, rack: Some("b".into()) },
            Candidate { node_id: 4, rack: Some("b".into()) },
        ];
        let rack_of = |id: NodeId| brokers.iter().find(|b| b.node_id == id).and_then(|b| b.rack.clone());
        for start in 0..4 {
            let out = assign(&brokers, 8, 2, 0, start);
            for replicas in &out {
                assert_eq!(replicas.len(), 2);
                assert_ne!(rack_of(replicas[0]), rack_of(replicas[1]), "{replicas:?}");
            }
            let leaders: BTreeSet<_> = out.iter().map(|r| r[0]).collect();
            assert_eq!(leaders.len(), 4);
        }
    }

    #[test]
    fn rf_one_and_extra_partitions() {
        let out = assign(&plain(&[5]), 3, 1, 2, 7);
        assert_eq!(out, vec![vec![5], vec![5], vec![5]]);
        assert!(assign(&plain(&[1, 2]), 1, 3, 0, 0).is_empty());
    }
}
