//! One group's state: its members, generation, chosen protocol and leader, and the responses it is holding back
//! while a rebalance is under way. The transitions themselves are driven by [`crate::coordinator`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use skein_core::BrokerError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::consumer_group::ConsumerGroupSettings;
use crate::coordinator::{JoinOutcome, JoinedMember, SyncOutcome};

/// The classic group states, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Waiting for every known member to (re)join.
    PreparingRebalance,
    /// Joins answered; waiting for the leader's assignments.
    CompletingRebalance,
    Stable,
    /// Deleted; kept only while a caller may still see it.
    Dead,
}

impl GroupState {
    /// The state as Kafka spells it in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The broker settings the coordinator obeys (`group.*`).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an Empty group waits for more members.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
    /// `group.consumer.*`: KIP-848 consumer groups.
    pub consumer: ConsumerGroupSettings,
    /// `offsets.retention.minutes`: how long the offsets of a group without members are kept after their commit.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            initial_rebalance_delay: Duration::from_millis(3_000),
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            consumer: ConsumerGroupSettings::default(),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_millis(600_000),
        }
    }
}

pub(crate) type JoinReply = oneshot::Sender<Result<JoinOutcome, BrokerError>>;
pub(crate) type SyncReply = oneshot::Sender<Result<SyncOutcome, BrokerError>>;

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    /// The protocols (assignors) it supports with their metadata, in its order of preference.
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation (empty until the leader's SyncGroup).
    pub(crate) assignment: Bytes,
    /// Its JoinGroup response, held until the rebalance completes.
    pub(crate) awaiting_join: Option<JoinReply>,
    /// Its SyncGroup response, held until the leader's assignments arrive.
    pub(crate) awaiting_sync: Option<SyncReply>,
    /// Supports JoinGroup v9's `skip_assignment` (a static leader rejoining a stable group).
    pub(crate) supports_skip_assignment: bool,
    /// When its session ends unless it heartbeats (ignored while a join or sync is held for it).
    pub(crate) session_deadline: Instant,
}

impl Member {
    pub(crate) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    pub(crate) fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Whether its session may expire now: not while the coordinator holds a response for it.
    pub(crate) fn session_can_expire(&self) -> bool {
        self.awaiting_join.is_none() && self.awaiting_sync.is_none()
    }
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) group_id: String,
    pub(crate) state: GroupState,
    pub(crate) generation_id: i32,
    /// `None` until a member joins (groups known only from committed offsets have none).
    pub(crate) protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    /// Members by member id.
    pub(crate) members: BTreeMap<String, Member>,
    /// Static members: group instance id → member id.
    pub(crate) static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet, and when they lapse.
    pub(crate) pending_members: HashMap<String, Instant>,
    /// When the current rebalance completes even if not every member has rejoined.
    pub(crate) rebalance_deadline: Option<Instant>,
    /// While the first rebalance of an Empty group waits for more members: the latest it may be extended to.
    pub(crate) initial_delay_limit: Option<Instant>,
}

impl Group {
    pub(crate) fn new(group_id: String) -> Self {
        Group {
            group_id,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_limit: None,
        }
    }

    /// The protocols every member supports, in the first member's preference order.
    pub(crate) fn common_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else { return Vec::new() };
        let mut common: Vec<String> = first.protocols.iter().map(|(name, _)| name.clone()).collect();
        for member in members {
            common.retain(|name| member.supports(name));
        }
        common
    }

    /// Whether a member offering `protocol_type` and `protocols` may join without breaking the group's agreement.
    pub(crate) fn accepts_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let common = self.common_protocols();
        protocols.iter().any(|(name, _)| common.contains(name))
    }

    /// Kafka's choice: every member votes for the first protocol it lists among those all support; most votes wins
    /// (ties go to the earlier in the first member's order).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols();
        let mut votes: Vec<(String, usize)> = common.iter().map(|name| (name.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(name, _)| common.contains(name))
                && let Some(entry) = votes.iter_mut().find(|(candidate, _)| candidate == name)
            {
                entry.1 += 1;
            }
        }
        let best = votes.iter().map(|(_, count)| *count).max()?;
        votes.into_iter().find(|(_, count)| *count == best).map(|(name, _)| name)
    }

    /// The longest rebalance timeout of the members: how long a rebalance waits for rejoins.
    pub(crate) fn max_rebalance_timeout(&self) -> Duration {
        self.members.values().map(|member| member.rebalance_timeout).max().unwrap_or_default()
    }

    /// Every known member has rejoined and no member id handed out is still expected.
    pub(crate) fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|member| member.awaiting_join.is_some())
    }

    /// The member id a static instance id currently maps to.
    pub(crate) fn static_member(&self, group_instance_id: Option<&str>) -> Option<&str> {
        group_instance_id.and_then(|id| self.static_members.get(id)).map(String::as_str)
    }

    /// Kafka's fencing rule: a request naming an instance id that now belongs to another member id is stale.
    pub(crate) fn is_fenced(&self, member_id: &str, group_instance_id: Option<&str>) -> bool {
        matches!(self.static_member(group_instance_id), Some(current) if current != member_id)
    }

    /// Checks `member_id` (and its instance id) belongs to the group.
    pub(crate) fn validate_member(&self, member_id: &str, group_instance_id: Option<&str>) -> Result<(), BrokerError> {
        if self.is_fenced(member_id, group_instance_id) {
            return Err(BrokerError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(BrokerError::UnknownMemberId);
        }
        Ok(())
    }

    /// The JoinGroup answer for `member_id` in the current generation; the leader also gets every member's metadata.
    pub(crate) fn join_outcome(&self, member_id: &str, skip_assignment: bool) -> JoinOutcome {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members
                .values()
                .map(|member| JoinedMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    metadata: member.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: is_leader && skip_assignment,
        }
    }

    /// Removes a member, answering whatever the coordinator holds for it with `error`.
    pub(crate) fn remove_member(&mut self, member_id: &str, error: &BrokerError) {
        if let Some(mut member) = self.members.remove(member_id) {
            if let Some(reply) = member.awaiting_join.take() {
                let _ = reply.send(Err(error.clone()));
            }
            if let Some(reply) = member.awaiting_sync.take() {
                let _ = reply.send(Err(error.clone()));
            }
            if let Some(instance_id) = &member.group_instance_id
                && self.static_members.get(instance_id).map(String::as_str) == Some(member_id)
            {
                self.static_members.remove(instance_id);
            }
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols.iter().map(|name| (name.to_string(), Bytes::from(name.to_string()))).collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            supports_skip_assignment: false,
            session_deadline: Instant::now(),
        }
    }

    #[test]
    fn protocol_selection_takes_the_most_preferred_common_protocol() {
        let mut group = Group::new("g".into());
        group.protocol_type = Some("consumer".into());
        group.members.insert("a".into(), member("a", &["range", "roundrobin", "sticky"]));
        group.members.insert("b".into(), member("b", &["roundrobin", "range"]));
        group.members.insert("c".into(), member("c", &["roundrobin", "range"]));
        assert_eq!(group.common_protocols(), vec!["range".to_string(), "roundrobin".to_string()]);
        assert_eq!(group.select_protocol().as_deref(), Some("roundrobin"));
        let offered = vec![("sticky".to_string(), Bytes::new())];
        assert!(!group.accepts_protocols("consumer", &offered), "sticky is not supported by b and c");
        let offered = vec![("range".to_string(), Bytes::new())];
        assert!(group.accepts_protocols("consumer", &offered));
        assert!(!group.accepts_protocols("connect", &offered));
    }
}
