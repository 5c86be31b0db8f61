//! The server-side assignors of KIP-848 consumer groups: `uniform` (balanced and sticky) and `range`.
//!
//! Both are pure functions from the members' subscriptions, the subscribed topics' partition counts and the
//! previous target assignment to the new target assignment, so they are tested here without a broker.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A server-side assignor, by the name clients give in `group.remote.assignor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "uniform" => Some(Assignor::Uniform),
            "range" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }
}

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub(crate) struct MemberSubscription {
    pub(crate) member_id: String,
    /// The ids of the existing topics it subscribes to.
    pub(crate) topics: BTreeSet<Uuid>,
}

/// Computes the target assignment of every member. `partitions` has the partition count of every subscribed topic;
/// `previous` is the current target, which `uniform` keeps where balance allows.
pub(crate) fn assign(
    assignor: Assignor,
    members: &[MemberSubscription],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut target: BTreeMap<String, Assignment> =
        members.iter().map(|member| (member.member_id.clone(), Assignment::new())).collect();
    match assignor {
        Assignor::Range => assign_range(members, partitions, &mut target),
        Assignor::Uniform => assign_uniform(members, partitions, previous, &mut target),
    }
    target
}

/// Per topic, the subscribed members in member-id order get contiguous ranges; the first `count % members` get one
/// more.
fn assign_range(
    members: &[MemberSubscription],
    partitions: &BTreeMap<Uuid, i32>,
    target: &mut BTreeMap<String, Assignment>,
) {
    for (topic, count) in partitions {
        let mut subscribers: Vec<&str> =
            members.iter().filter(|m| m.topics.contains(topic)).map(|m| m.member_id.as_str()).collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let count = usize::try_from(*count).unwrap_or(0);
        let (base, extra) = (count / subscribers.len(), count % subscribers.len());
        let mut next = 0usize;
        for (index, member_id) in subscribers.iter().enumerate() {
            let take = base + usize::from(index < extra);
            let range: BTreeSet<i32> = (next..next + take).filter_map(|p| i32::try_from(p).ok()).collect();
            next += take;
            if !range.is_empty()
                && let Some(assignment) = target.get_mut(*member_id)
            {
                assignment.insert(*topic, range);
            }
        }
    }
}

/// Balanced and sticky: every partition goes to a subscribed member; a partition stays with its previous owner while
/// that keeps the owner within one partition of the others; then partitions move from the most to the least loaded
/// eligible member until no move narrows the spread.
fn assign_uniform(
    members: &[MemberSubscription],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
    target: &mut BTreeMap<String, Assignment>,
) {
    let subscribers = |topic: &Uuid| -> Vec<&str> {
        members.iter().filter(|m| m.topics.contains(topic)).map(|m| m.member_id.as_str()).collect()
    };
    let all: Vec<(Uuid, i32)> = partitions
        .iter()
        .filter(|(topic, _)| !subscribers(topic).is_empty())
        .flat_map(|(topic, count)| (0..*count).map(move |partition| (*topic, partition)))
        .collect();
    if all.is_empty() {
        return;
    }
    // The most any member should hold if the subscriptions were identical: a sticky owner keeps up to this many.
    let ceiling = all.len().div_ceil(members.len().max(1));
    let mut load: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id.as_str(), 0)).collect();
    let mut owner: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    let eligible =
        |member: &str, topic: &Uuid| members.iter().any(|m| m.member_id == member && m.topics.contains(topic));

    // 1. Keep previous owners, up to the ceiling.
    for (member_id, assignment) in previous {
        for (topic, assigned) in assignment {
            for partition in assigned {
                let key = (*topic, *partition);
                if partition_exists(partitions, key)
                    && eligible(member_id, topic)
                    && let Some((member, count)) = load.get_key_value(member_id.as_str()).map(|(m, c)| (*m, *c))
                    && count < ceiling
                    && !owner.contains_key(&key)
                {
                    owner.insert(key, member);
                    load.insert(member, count + 1);
                }
            }
        }
    }
    // 2. Give every other partition to its least loaded subscriber.
    for key in &all {
        if owner.contains_key(key) {
            continue;
        }
        let least =
            subscribers(&key.0).into_iter().min_by_key(|member| (load.get(member).copied().unwrap_or(0), *member));
        if let Some(member) = least {
            owner.insert(*key, member);
            *load.entry(member).or_default() += 1;
        }
    }
    // 3. Narrow the spread: move a partition from a member to an eligible one holding at least two fewer.
    let mut moved = true;
    let mut budget = all.len() * members.len();
    while moved && budget > 0 {
        moved = false;
        budget -= 1;
        let candidate = owner.iter().rev().find_map(|(key, from)| {
            let from_load = load.get(from).copied().unwrap_or(0);
            subscribers(&key.0)
                .into_iter()
                .filter(|to| load.get(to).copied().unwrap_or(0) + 1 < from_load)
                .min_by_key(|to| (load.get(to).copied().unwrap_or(0), *to))
                .map(|to| (*key, *from, to))
        });
        if let Some((key, from, to)) = candidate {
            owner.insert(key, to);
            *load.entry(from).or_default() -= 1;
            *load.entry(to).or_default() += 1;
            moved = true;
        }
    }
    for ((topic, partition), member) in owner {
        if let Some(assignment) = target.get_mut(member) {
            assignment.entry(topic).or_default().insert(partition);
        }
    }
}

fn partition_exists(partitions: &BTreeMap<Uuid, i32>, (topic, partition): (Uuid, i32)) -> bool {
    partitions.get(&topic).is_some_and(|count| (0..*count).contains(&partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[Uuid]) -> MemberSubscription {
        MemberSubscription { member_id: id.into(), topics: topics.iter().copied().collect() }
    }

    fn sizes(target: &BTreeMap<String, Assignment>) -> Vec<usize> {
        target.values().map(|a| a.values().map(BTreeSet::len).sum()).collect()
    }

    /// Every partition of every subscribed topic is assigned exactly once.
    fn assert_covers(target: &BTreeMap<String, Assignment>, partitions: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for assignment in target.values() {
            for (topic, assigned) in assignment {
                for partition in assigned {
                    assert!(seen.insert((*topic, *partition)), "partition {partition} assigned twice");
                }
            }
        }
        let expected: usize = partitions.values().map(|c| usize::try_from(*c).unwrap_or(0)).sum();
        assert_eq!(seen.len(), expected);
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let topic = Uuid::from_u128(1);
        let partitions = BTreeMap::from([(topic, 7)]);
        let members = [member("b", &[topic]), member("a", &[topic]), member("c", &[topic])];
        let target = assign(Assignor::Range, &members, &partitions, &BTreeMap::new());
        assert_eq!(target["a"][&topic], BTreeSet::from([0, 1, 2]));
        assert_eq!(target["b"][&topic], BTreeSet::from([3, 4]));
        assert_eq!(target["c"][&topic], BTreeSet::from([5, 6]));
    }

    #[test]
    fn uniform_balances_and_covers() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partitions = BTreeMap::from([(t1, 6), (t2, 5)]);
        let members = [member("a", &[t1, t2]), member("b", &[t1, t2]), member("c", &[t1, t2])];
        let target = assign(Assignor::Uniform, &members, &partitions, &BTreeMap::new());
        assert_covers(&target, &partitions);
        let mut loads = sizes(&target);
        loads.sort_unstable();
        assert_eq!(loads, vec![3, 4, 4]);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_leaves_or_joins() {
        let topic = Uuid::from_u128(7);
        let partitions = BTreeMap::from([(topic, 6)]);
        let three = [member("a", &[topic]), member("b", &[topic]), member("c", &[topic])];
        let before = assign(Assignor::Uniform, &three, &partitions, &BTreeMap::new());
        // "c" leaves: "a" and "b" keep what they had and split c's partitions.
        let two = [member("a", &[topic]), member("b", &[topic])];
        let after = assign(Assignor::Uniform, &two, &partitions, &before);
        assert_covers(&after, &partitions);
        assert_eq!(sizes(&after), vec![3, 3]);
        for id in ["a", "b"] {
            assert!(before[id][&topic].is_subset(&after[id][&topic]), "{id} lost a partition it had");
        }
        // A fourth member joins three with two each: it takes one partition from two of them, nothing else moves.
        let four = [member("a", &[topic]), member("b", &[topic]), member("c", &[topic]), member("d", &[topic])];
        let joined = assign(Assignor::Uniform, &four, &partitions, &before);
        assert_covers(&joined, &partitions);
        let mut loads = sizes(&joined);
        loads.sort_unstable();
        assert_eq!(loads, vec![1, 1, 2, 2]);
        for id in ["a", "b", "c"] {
            let kept = joined[id].get(&topic).cloned().unwrap_or_default();
            assert!(kept.is_subset(&before[id][&topic]), "{id} was given a partition it did not have");
        }
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partitions = BTreeMap::from([(t1, 4), (t2, 2)]);
        let members = [member("a", &[t1]), member("b", &[t1, t2])];
        let target = assign(Assignor::Uniform, &members, &partitions, &BTreeMap::new());
        assert_covers(&target, &partitions);
        assert!(!target["a"].contains_key(&t2), "a is not subscribed to t2");
        assert_eq!(sizes(&target), vec![3, 3]);
    }
}
