//! A partition's place in replication: whether this node leads it, and as leader, how far each follower has
//! got. The high watermark follows from it: what every member of the ISR has.

use std::collections::BTreeMap;

/// A broker's node id.
pub type NodeId = i32;

/// How far one follower has got, as its fetches show (Kafka's replica state on the leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch. -1 until it fetched in this leader epoch.
    pub log_end_offset: i64,
    /// When the follower last had everything the leader had (ms).
    pub last_caught_up_ms: i64,
    /// The follower's log start offset, as its last fetch said. -1 until it fetched in this leader epoch.
    pub log_start_offset: i64,
    /// When it last fetched (ms), and the leader's log end offset then.
    last_fetch_ms: i64,
    leader_end_at_last_fetch: i64,
}

impl FollowerProgress {
    /// A follower that has not fetched in this leader epoch, counted as caught up at `caught_up_ms`.
    pub(crate) fn fresh(caught_up_ms: i64) -> Self {
        FollowerProgress {
            log_end_offset: -1,
            last_caught_up_ms: caught_up_ms,
            log_start_offset: -1,
            last_fetch_ms: 0,
            leader_end_at_last_fetch: -1,
        }
    }
}

/// The leader's view of its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    pub node_id: NodeId,
    pub leader_epoch: i32,
    pub replicas: Vec<NodeId>,
    /// The ISR the controller committed.
    pub isr: Vec<NodeId>,
    /// The committed ISR plus members an in-flight expansion adds: the high watermark waits for them too, so a
    /// replica the controller admits always has everything below the high watermark (Kafka's "maximal ISR").
    pub maximal_isr: Vec<NodeId>,
    pub followers: BTreeMap<NodeId, FollowerProgress>,
    /// An ISR change sent to the controller and not yet seen in the metadata.
    pub change_in_flight: bool,
}

/// A partition's role on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Every record is committed once written: a log outside any cluster (tests, tools).
    Standalone,
    /// Opened from storage, role not known yet: the high watermark stays where it was stored.
    Unassigned,
    /// This node leads the partition.
    Leader(LeaderState),
    /// This node copies the partition from its leader; the high watermark is the leader's, capped at the log end.
    Follower { leader_epoch: i32 },
}

impl Role {
    /// The high watermark this role allows with the log end at `log_end`: `None` when the role does not move it.
    pub(crate) fn high_watermark(&self, log_end: i64) -> Option<i64> {
        match self {
            Role::Standalone => Some(log_end),
            Role::Leader(leader) => {
                let mut lowest = log_end;
                for member in leader.maximal_isr.iter().filter(|&&m| m != leader.node_id) {
                    let progress = leader.followers.get(member).map_or(-1, |p| p.log_end_offset);
                    lowest = lowest.min(progress);
                }
                Some(lowest)
            }
            Role::Unassigned | Role::Follower { .. } => None,
        }
    }

    /// The lowest log start offset over this leader (whose own is `log_start`) and its in-sync followers
    /// (Kafka's low watermark, which DeleteRecords answers); -1 while a follower's is not known yet.
    pub(crate) fn low_watermark(&self, log_start: i64) -> i64 {
        match self {
            Role::Leader(leader) => leader
                .maximal_isr
                .iter()
                .filter(|&&m| m != leader.node_id)
                .map(|m| leader.followers.get(m).map_or(-1, |p| p.log_start_offset))
                .fold(log_start, i64::min),
            Role::Standalone | Role::Unassigned | Role::Follower { .. } => log_start,
        }
    }

    /// How many replicas are in sync (the committed ISR), for `min.insync.replicas`.
    pub fn isr_size(&self) -> usize {
        match self {
            Role::Standalone => 1,
            Role::Leader(leader) => leader.isr.len(),
            Role::Unassigned | Role::Follower { .. } => 0,
        }
    }
}

impl LeaderState {
    /// A leader at the start of its epoch: followers in the ISR count as caught up now, so none leaves the ISR
    /// before it had the chance to fetch.
    pub fn new(node_id: NodeId, leader_epoch: i32, replicas: Vec<NodeId>, isr: Vec<NodeId>, now_ms: i64) -> Self {
        let followers = replicas
            .iter()
            .filter(|&&r| r != node_id)
            .map(|&r| (r, FollowerProgress::fresh(if isr.contains(&r) { now_ms } else { 0 })))
            .collect();
        LeaderState {
            node_id,
            leader_epoch,
            replicas,
            maximal_isr: isr.clone(),
            isr,
            followers,
            change_in_flight: false,
        }
    }

    /// Records a follower's fetch from `fetch_offset` while the leader's log ends at `leader_end`. A follower is
    /// caught up when it asked for the log end, or for at least what the log end was at its previous fetch (then
    /// it was caught up as of that fetch) — Kafka's rule.
    pub(crate) fn record_fetch(
        &mut self,
        replica: NodeId,
        fetch_offset: i64,
        log_start_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(progress) = self.followers.get_mut(&replica) else {
            return false;
        };
        progress.log_start_offset = log_start_offset;
        if fetch_offset >= leader_end {
            progress.last_caught_up_ms = now_ms;
        } else if fetch_offset >= progress.leader_end_at_last_fetch && progress.leader_end_at_last_fetch >= 0 {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.leader_end_at_last_fetch = leader_end;
        progress.last_fetch_ms = now_ms;
        progress.log_end_offset = fetch_offset;
        true
    }

    /// The ISR to propose, if it should change: followers behind for longer than `max_lag_ms` leave; followers
    /// that have everything below the high watermark, and at least the start of this leader epoch, come back.
    pub(crate) fn proposed_isr(
        &self,
        high_watermark: i64,
        epoch_start: i64,
        now_ms: i64,
        max_lag_ms: i64,
    ) -> Option<Vec<NodeId>> {
        if self.change_in_flight {
            return None;
        }
        let mut isr: Vec<NodeId> = self
            .isr
            .iter()
            .copied()
            .filter(|m| {
                *m == self.node_id
                    || self.followers.get(m).is_some_and(|p| now_ms.saturating_sub(p.last_caught_up_ms) <= max_lag_ms)
            })
            .collect();
        for (&replica, progress) in &self.followers {
            if !isr.contains(&replica)
                && progress.log_end_offset >= high_watermark
                && progress.log_end_offset >= epoch_start
                && now_ms.saturating_sub(progress.last_caught_up_ms) <= max_lag_ms
            {
                isr.push(replica);
            }
        }
        isr.sort_by_key(|m| self.replicas.iter().position(|r| r == m));
        let mut current = self.isr.clone();
        current.sort_by_key(|m| self.replicas.iter().position(|r| r == m));
        (isr != current).then_some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_what_every_isr_member_has() {
        let mut leader = LeaderState::new(1, 3, vec![1, 2, 3], vec![1, 2, 3], 1000);
        let role = |l: &LeaderState| Role::Leader(l.clone());
        // No follower fetched yet in this epoch: nothing new is committed.
        assert_eq!(role(&leader).high_watermark(10), Some(-1));
        leader.record_fetch(2, 10, 0, 10, 1100);
        leader.record_fetch(3, 7, 0, 10, 1100);
        assert_eq!(role(&leader).high_watermark(10), Some(7));
        // A replica outside the ISR does not hold the high watermark back.
        leader.isr = vec![1, 2];
        leader.maximal_isr = vec![1, 2];
        assert_eq!(role(&leader).high_watermark(10), Some(10));
    }

    #[test]
    fn the_low_watermark_is_the_lowest_log_start_over_the_isr() {
        let mut leader = LeaderState::new(1, 3, vec![1, 2, 3], vec![1, 2, 3], 1000);
        let role = |l: &LeaderState| Role::Leader(l.clone());
        // A follower that has not fetched yet: its log start is unknown.
        assert_eq!(role(&leader).low_watermark(40), -1);
        leader.record_fetch(2, 50, 40, 50, 1100);
        leader.record_fetch(3, 50, 25, 50, 1100);
        assert_eq!(role(&leader).low_watermark(40), 25);
        // Out of the ISR, a follower no longer holds it back.
        leader.maximal_isr = vec![1, 2];
        assert_eq!(role(&leader).low_watermark(40), 40);
        assert_eq!(Role::Follower { leader_epoch: 3 }.low_watermark(7), 7);
    }

    #[test]
    fn followers_leave_the_isr_when_behind_too_long_and_return_when_caught_up() {
        let mut leader = LeaderState::new(1, 0, vec![1, 2, 3], vec![1, 2, 3], 0);
        leader.record_fetch(2, 5, 0, 5, 100);
        leader.record_fetch(3, 2, 0, 5, 100);
        assert_eq!(leader.proposed_isr(2, 0, 500, 1000), None);
        // Replica 3 stays behind: after the lag limit it leaves.
        leader.record_fetch(2, 9, 0, 9, 1500);
        assert_eq!(leader.proposed_isr(2, 0, 1500, 1000), Some(vec![1, 2]));
        leader.isr = vec![1, 2];
        // It fetches up to the log end: it is caught up and has the high watermark, so it comes back.
        leader.record_fetch(3, 9, 0, 9, 1600);
        assert_eq!(leader.proposed_isr(9, 0, 1600, 1000), Some(vec![1, 2, 3]));
        // But not before it reached the start of this leader epoch.
        assert_eq!(leader.proposed_isr(9, 10, 1600, 1000), None);
    }
}
