//! The coordinator: one task owns every group and serves commands from a bounded channel, so no lock is shared with
//! the handlers. JoinGroup and SyncGroup answers that must wait (for other members, for the leader) are kept as
//! one-shot senders in the group and sent when the rebalance moves on; every deadline (rebalance timeout, initial
//! rebalance delay, session timeouts) is a timer of the task's loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skein_core::BrokerError;
use skein_core::limits::{self, IdKind};
use skein_storage::{ClassicMemberRecord, GroupRecord, GroupType, StorageError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consumer_group::{
    ConsumerGroup, ConsumerGroupDescription, ConsumerHeartbeat, HeartbeatOutcome, LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use crate::group::{Group, GroupSettings, GroupState, JoinReply, Member, SyncReply};
use crate::journal::StateJournal;
use crate::offsets::OffsetStore;

/// The protocol type of KIP-848 consumer groups in ListGroups.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// How many commands may queue for the coordinator before callers wait.
const COMMAND_QUEUE: usize = 1024;
/// How long a call that the coordinator answers at once may take (queueing included).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A JoinGroup request, in the coordinator's terms.
#[derive(Debug, Clone)]
pub struct JoinGroup {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// Versions without it (v0) pass the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference; the metadata is carried untouched.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join without an instance id is answered MEMBER_ID_REQUIRED with its new member id.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the client understands `skip_assignment`.
    pub supports_skip_assignment: bool,
}

/// A member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A successful JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinedMember>,
    /// A static leader rejoining a stable group need not compute the assignment again.
    pub skip_assignment: bool,
}

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignments: (member id, assignment bytes, carried untouched).
    pub assignments: Vec<(String, Bytes)>,
}

/// A successful SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// One member leaving (LeaveGroup v3+ may name several; by member id, or by instance id alone).
#[derive(Debug, Clone)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Who is committing offsets: OffsetCommit's group fields.
#[derive(Debug, Clone)]
pub struct CommitCheck {
    pub group_id: String,
    /// -1 for a commit from outside the group protocol.
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The committed partitions by topic id: a KIP-848 member may commit with its previous epoch for partitions
    /// it still owns.
    pub partitions: Vec<(uuid::Uuid, i32)>,
}

/// A group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// As Kafka names the state of a group of this type.
    pub state: &'static str,
    pub group_type: GroupType,
    /// Its members (a classic member told to rejoin with its new member id counts once it has).
    pub members: usize,
}

/// A member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Its metadata for the group's chosen protocol (empty before one is chosen).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub generation_id: i32,
    pub members: Vec<MemberDescription>,
}

type Reply<T> = oneshot::Sender<Result<T, BrokerError>>;

#[derive(Debug)]
enum Command {
    Join(JoinGroup, JoinReply),
    Sync(SyncGroup, SyncReply),
    Heartbeat {
        group_id: String,
        member_id: String,
        group_instance_id: Option<String>,
        generation_id: i32,
        reply: Reply<()>,
    },
    Leave {
        group_id: String,
        members: Vec<LeaveMember>,
        reply: Reply<Vec<Result<(), BrokerError>>>,
    },
    CheckCommit(CommitCheck, Reply<()>),
    List(Reply<Vec<GroupListing>>),
    Describe(String, Reply<Option<GroupDescription>>),
    Delete(String, Reply<()>),
    ConsumerHeartbeat(Box<ConsumerHeartbeat>, Reply<HeartbeatOutcome>),
    ConsumerDescribe(String, Reply<Option<ConsumerGroupDescription>>),
    /// Take over the groups of a coordinator partition from storage; answers how many.
    Load(i32, Reply<usize>),
    /// Drop the groups of a coordinator partition (another broker coordinates them now); answers how many.
    Unload(i32, Reply<usize>),
}

/// The handle handlers use; cheap to clone. Every call is bounded in time.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    commands: mpsc::Sender<Command>,
    settings: GroupSettings,
    journal: Arc<dyn StateJournal>,
}

/// The coordinator's task: run it with [`CoordinatorTask::run`] until shutdown.
#[derive(Debug)]
pub struct CoordinatorTask {
    commands: mpsc::Receiver<Command>,
    /// Classic groups. A group id is in at most one of `groups` and `consumer_groups`.
    groups: HashMap<String, Group>,
    /// KIP-848 consumer groups.
    consumer_groups: HashMap<String, ConsumerGroup>,
    /// The last record journaled for each KIP-848 group: a change is journaled only when the record differs.
    saved_consumer_groups: HashMap<String, GroupRecord>,
    settings: GroupSettings,
    store: OffsetStore,
    /// Groups whose record must be written after the current command.
    dirty: BTreeSet<String>,
    /// Since when (wall-clock ms) each group without members has been seen without members, for offset expiry.
    empty_since: HashMap<String, i64>,
}

fn unavailable() -> BrokerError {
    BrokerError::CoordinatorNotAvailable("the group coordinator is shutting down".into())
}

impl GroupCoordinator {
    /// Loads the groups this broker coordinates from `store` (blocking: call before serving) and returns the handle
    /// and the task.
    pub fn open(settings: GroupSettings, store: OffsetStore) -> Result<(Self, CoordinatorTask), StorageError> {
        let (groups, consumer_groups, saved_consumer_groups) =
            groups_from(store.load_groups()?, &settings, Instant::now());
        let journal = Arc::clone(store.journal());
        let (sender, receiver) = mpsc::channel(COMMAND_QUEUE);
        let task = CoordinatorTask {
            commands: receiver,
            groups,
            consumer_groups,
            saved_consumer_groups,
            settings: settings.clone(),
            store,
            dirty: BTreeSet::new(),
            empty_since: HashMap::new(),
        };
        Ok((GroupCoordinator { commands: sender, settings, journal }, task))
    }

    /// Takes over the groups of coordinator partition `partition` from storage, where the broker has replayed the
    /// partition's journal; answers how many groups.
    pub async fn load_partition(&self, partition: i32) -> Result<usize, BrokerError> {
        self.call(CALL_TIMEOUT, |reply| Command::Load(partition, reply)).await
    }

    /// Drops the groups of coordinator partition `partition` (another broker coordinates them now): their members'
    /// waiting requests are answered as a lost coordinator; answers how many groups.
    pub async fn unload_partition(&self, partition: i32) -> Result<usize, BrokerError> {
        self.call(CALL_TIMEOUT, |reply| Command::Unload(partition, reply)).await
    }

    async fn call<T>(&self, wait: Duration, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, BrokerError> {
        let (reply, answer) = oneshot::channel();
        let exchange = async {
            self.commands.send(command(reply)).await.map_err(|_| unavailable())?;
            answer.await.map_err(|_| unavailable())?
        };
        tokio::time::timeout(wait, exchange)
            .await
            .map_err(|_| BrokerError::CoordinatorNotAvailable("the group coordinator did not answer in time".into()))?
    }

    /// Joins (or rejoins) a group; waits until the rebalance completes.
    pub async fn join(&self, request: JoinGroup) -> Result<JoinOutcome, BrokerError> {
        check_member_ids(&request.group_id, &request.member_id, request.group_instance_id.as_deref())?;
        self.journal.check_coordinator(&request.group_id)?;
        limits::validate_id(IdKind::ClientId, &request.client_id)?;
        // The coordinator answers by the group's rebalance timeout at the latest; this bound is only a safety net.
        let rebalance = Duration::from_millis(u64::try_from(request.rebalance_timeout_ms).unwrap_or(0));
        let wait =
            rebalance.max(self.settings.max_session_timeout) + self.settings.initial_rebalance_delay + CALL_TIMEOUT;
        self.call(wait, |reply| Command::Join(request, reply)).await
    }

    /// Sends the leader's assignments or waits for them; returns this member's assignment.
    pub async fn sync(&self, request: SyncGroup) -> Result<SyncOutcome, BrokerError> {
        check_member_ids(&request.group_id, &request.member_id, request.group_instance_id.as_deref())?;
        self.journal.check_coordinator(&request.group_id)?;
        limits::validate_ids(IdKind::MemberId, request.assignments.iter().map(|(member_id, _)| member_id.as_str()))?;
        let wait = self.settings.max_session_timeout + CALL_TIMEOUT;
        self.call(wait, |reply| Command::Sync(request, reply)).await
    }

    pub async fn heartbeat(
        &self,
        group_id: String,
        member_id: String,
        group_instance_id: Option<String>,
        generation_id: i32,
    ) -> Result<(), BrokerError> {
        check_member_ids(&group_id, &member_id, group_instance_id.as_deref())?;
        self.journal.check_coordinator(&group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::Heartbeat {
            group_id,
            member_id,
            group_instance_id,
            generation_id,
            reply,
        })
        .await
    }

    /// Removes members; one result per member, in order.
    pub async fn leave(&self, group_id: String, members: Vec<LeaveMember>) -> Vec<Result<(), BrokerError>> {
        let count = members.len();
        let checked = limits::validate_id(IdKind::GroupId, &group_id).and_then(|()| {
            members.iter().try_for_each(|member| {
                limits::validate_id(IdKind::MemberId, &member.member_id)?;
                limits::validate_optional_id(IdKind::GroupInstanceId, member.group_instance_id.as_deref())
            })
        });
        if let Err(err) = checked.and_then(|()| self.journal.check_coordinator(&group_id)) {
            return vec![Err(err); count];
        }
        match self.call(CALL_TIMEOUT, |reply| Command::Leave { group_id, members, reply }).await {
            Ok(results) => results,
            Err(err) => vec![Err(err); count],
        }
    }

    /// Checks an OffsetCommit may proceed (and creates the group for a simple commit to an unknown group).
    pub async fn check_commit(&self, check: CommitCheck) -> Result<(), BrokerError> {
        check_member_ids(&check.group_id, &check.member_id, check.group_instance_id.as_deref())?;
        self.journal.check_coordinator(&check.group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::CheckCommit(check, reply)).await
    }

    pub async fn list(&self) -> Result<Vec<GroupListing>, BrokerError> {
        self.call(CALL_TIMEOUT, Command::List).await
    }

    /// The group, or `None` if it does not exist.
    pub async fn describe(&self, group_id: String) -> Result<Option<GroupDescription>, BrokerError> {
        self.journal.check_coordinator(&group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::Describe(group_id, reply)).await
    }

    /// Deletes an Empty group and its committed offsets.
    pub async fn delete(&self, group_id: String) -> Result<(), BrokerError> {
        self.journal.check_coordinator(&group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::Delete(group_id, reply)).await
    }

    /// A ConsumerGroupHeartbeat (KIP-848): join, heartbeat, or leave (epoch -1 / -2).
    pub async fn consumer_heartbeat(&self, request: ConsumerHeartbeat) -> Result<HeartbeatOutcome, BrokerError> {
        check_member_ids(&request.group_id, &request.member_id, request.instance_id.as_deref())?;
        limits::validate_id(IdKind::ClientId, &request.client_id)?;
        self.journal.check_coordinator(&request.group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::ConsumerHeartbeat(Box::new(request), reply)).await
    }

    /// The consumer group, or `None` if there is no KIP-848 group of that id.
    pub async fn describe_consumer_group(
        &self,
        group_id: String,
    ) -> Result<Option<ConsumerGroupDescription>, BrokerError> {
        self.journal.check_coordinator(&group_id)?;
        self.call(CALL_TIMEOUT, |reply| Command::ConsumerDescribe(group_id, reply)).await
    }

    /// The heartbeat interval consumer group members are told to keep.
    pub fn consumer_heartbeat_interval(&self) -> Duration {
        self.settings.consumer.heartbeat_interval
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// Refuses ids longer than a request may carry (handlers close such a request's connection before it gets here, as
/// Kafka does): no group, member or stored key is ever made from one.
fn check_member_ids(group_id: &str, member_id: &str, group_instance_id: Option<&str>) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, group_id)?;
    limits::validate_id(IdKind::MemberId, member_id)?;
    limits::validate_optional_id(IdKind::GroupInstanceId, group_instance_id)
}

/// Classic and KIP-848 groups from their stored records (a group with offsets only is a classic one), with the
/// records the KIP-848 groups were loaded from. Their members' sessions start at `now`.
fn groups_from(
    stored: BTreeMap<String, Option<GroupRecord>>,
    settings: &GroupSettings,
    now: Instant,
) -> (HashMap<String, Group>, HashMap<String, ConsumerGroup>, HashMap<String, GroupRecord>) {
    let mut groups = HashMap::new();
    let mut consumer_groups = HashMap::new();
    let mut saved = HashMap::new();
    for (group_id, record) in stored {
        if let Some(record) = record.as_ref().filter(|r| r.group_type == GroupType::Consumer) {
            let restored = record.consumer.as_ref().map(|state| {
                ConsumerGroup::from_record(group_id.clone(), record.generation_id, state, &settings.consumer, now)
            });
            let group = match restored {
                Some(Ok(group)) => group,
                Some(Err(reason)) => {
                    tracing::warn!(%group_id, %reason, "consumer group record unreadable: its members will rejoin");
                    ConsumerGroup::new(group_id.clone(), record.generation_id)
                }
                None => ConsumerGroup::new(group_id.clone(), record.generation_id),
            };
            saved.insert(group_id.clone(), record.clone());
            consumer_groups.insert(group_id, group);
            continue;
        }
        let group = match record {
            Some(record) => classic_group_from(group_id.clone(), record, now),
            None => Group::new(group_id.clone()),
        };
        groups.insert(group_id, group);
    }
    (groups, consumer_groups, saved)
}

/// A classic group from its record: a stable group with its members (their sessions starting at `now`) when it was
/// stored stable, else an empty one at its generation.
fn classic_group_from(group_id: String, record: GroupRecord, now: Instant) -> Group {
    let mut group = Group::new(group_id);
    group.generation_id = record.generation_id;
    group.protocol_type = Some(record.protocol_type).filter(|t| !t.is_empty());
    let (Some(protocol_name), Some(leader_id)) = (record.protocol_name, record.leader_id) else { return group };
    if record.members.is_empty() {
        return group;
    }
    for stored in record.members {
        let session_timeout = Duration::from_millis(stored.session_timeout_ms);
        if let Some(instance_id) = &stored.group_instance_id {
            group.static_members.insert(instance_id.clone(), stored.member_id.clone());
        }
        let member = Member {
            member_id: stored.member_id.clone(),
            group_instance_id: stored.group_instance_id,
            client_id: stored.client_id,
            client_host: stored.client_host,
            session_timeout,
            rebalance_timeout: Duration::from_millis(stored.rebalance_timeout_ms),
            protocols: vec![(protocol_name.clone(), Bytes::from(stored.subscription))],
            assignment: Bytes::from(stored.assignment),
            awaiting_join: None,
            awaiting_sync: None,
            supports_skip_assignment: false,
            session_deadline: now + session_timeout,
        };
        group.members.insert(stored.member_id, member);
    }
    group.state = GroupState::Stable;
    group.protocol_name = Some(protocol_name);
    group.leader_id = Some(leader_id);
    group
}

/// A classic group's record: with its members and leader while it is stable (what lets them carry on at another
/// coordinator), as Kafka stores a group when its rebalance completes.
fn classic_group_record(group: &Group) -> GroupRecord {
    let stable = group.state == GroupState::Stable;
    let members = if stable {
        group
            .members
            .values()
            .map(|member| ClassicMemberRecord {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                session_timeout_ms: u64::try_from(member.session_timeout.as_millis()).unwrap_or(u64::MAX),
                rebalance_timeout_ms: u64::try_from(member.rebalance_timeout.as_millis()).unwrap_or(u64::MAX),
                subscription: group
                    .protocol_name
                    .as_deref()
                    .map(|p| member.metadata_for(p).to_vec())
                    .unwrap_or_default(),
                assignment: member.assignment.to_vec(),
            })
            .collect()
    } else {
        Vec::new()
    };
    GroupRecord {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation_id: group.generation_id,
        protocol_name: group.protocol_name.clone(),
        group_type: GroupType::Classic,
        leader_id: if stable { group.leader_id.clone() } else { None },
        members,
        consumer: None,
    }
}

impl CoordinatorTask {
    /// Takes over the stored groups of coordinator partition `partition`; answers how many.
    async fn load_partition(&mut self, partition: i32) -> Result<usize, BrokerError> {
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.load_groups_of(partition))
            .await
            .map_err(|err| BrokerError::Storage(format!("storage task failed: {err}")))?
            .map_err(|err| BrokerError::Storage(err.to_string()))?;
        let (groups, consumer_groups, saved) = groups_from(stored, &self.settings, Instant::now());
        let count = groups.len() + consumer_groups.len();
        for (group_id, group) in groups {
            self.groups.entry(group_id).or_insert(group);
        }
        for (group_id, group) in consumer_groups {
            if let std::collections::hash_map::Entry::Vacant(entry) = self.consumer_groups.entry(group_id.clone()) {
                entry.insert(group);
                if let Some(record) = saved.get(&group_id) {
                    self.saved_consumer_groups.insert(group_id, record.clone());
                }
            }
        }
        tracing::debug!(partition, groups = count, "coordinator partition loaded");
        Ok(count)
    }

    /// Drops the groups of coordinator partition `partition`; answers how many. Replies they still hold are
    /// dropped, which their callers see as COORDINATOR_NOT_AVAILABLE (clients then find the new coordinator).
    fn unload_partition(&mut self, partition: i32) -> usize {
        let journal = Arc::clone(self.store.journal());
        let moved = |group_id: &String| journal.partition_for(group_id) == partition;
        let before = self.groups.len() + self.consumer_groups.len();
        self.groups.retain(|group_id, _| !moved(group_id));
        self.consumer_groups.retain(|group_id, _| !moved(group_id));
        self.saved_consumer_groups.retain(|group_id, _| !moved(group_id));
        self.dirty.retain(|group_id| !moved(group_id));
        self.empty_since.retain(|group_id, _| !moved(group_id));
        let count = before - self.groups.len() - self.consumer_groups.len();
        tracing::debug!(partition, groups = count, "coordinator partition unloaded");
        count
    }

    /// Serves commands and fires deadlines until `shutdown` is cancelled. Answers still held are dropped then, which
    /// their callers see as COORDINATOR_NOT_AVAILABLE.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut retention_check = tokio::time::interval(self.settings.offsets_retention_check_interval);
        retention_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                () = shutdown.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.serve(command).await,
                    None => break,
                },
                () = sleep_until(deadline), if deadline.is_some() => {}
                _ = retention_check.tick() => self.expire_offsets(wall_clock_ms()).await,
            }
            self.fire_deadlines(Instant::now());
            self.save_dirty_groups().await;
        }
    }

    async fn serve(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Join(request, reply) => self.join(request, reply, now),
            Command::Sync(request, reply) => self.sync(request, reply, now),
            Command::Heartbeat { group_id, member_id, group_instance_id, generation_id, reply } => {
                let result = self.heartbeat(&group_id, &member_id, group_instance_id.as_deref(), generation_id, now);
                if let Err(err) = &result {
                    tracing::debug!(%group_id, %member_id, generation_id, error = %err, "Heartbeat refused");
                }
                let _ = reply.send(result);
            }
            Command::Leave { group_id, members, reply } => {
                let _ = reply.send(Ok(self.leave(&group_id, &members, now)));
            }
            Command::CheckCommit(check, reply) => {
                let _ = reply.send(self.check_commit(&check, now));
            }
            Command::List(reply) => {
                let mut listings: Vec<GroupListing> = self
                    .groups
                    .values()
                    .map(|group| GroupListing {
                        group_id: group.group_id.clone(),
                        protocol_type: group.protocol_type.clone().unwrap_or_default(),
                        state: group.state.name(),
                        group_type: GroupType::Classic,
                        members: group.members.len(),
                    })
                    .chain(self.consumer_groups.values().map(|group| GroupListing {
                        group_id: group.group_id.clone(),
                        protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                        state: group.state().name(),
                        group_type: GroupType::Consumer,
                        members: group.members.len(),
                    }))
                    .collect();
                listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
                let _ = reply.send(Ok(listings));
            }
            Command::Describe(group_id, reply) => {
                let _ = reply.send(Ok(self.groups.get(&group_id).map(describe)));
            }
            Command::Delete(group_id, reply) if self.consumer_groups.contains_key(&group_id) => {
                let result = if self.consumer_groups.get(&group_id).is_some_and(|g| !g.members.is_empty()) {
                    Err(BrokerError::NonEmptyGroup)
                } else {
                    self.consumer_groups.remove(&group_id);
                    self.saved_consumer_groups.remove(&group_id);
                    self.dirty.remove(&group_id);
                    self.store.delete_group(&group_id).await
                };
                let _ = reply.send(result);
            }
            Command::ConsumerHeartbeat(request, reply) => {
                let group_id = request.group_id.clone();
                let outcome = self.consumer_heartbeat(*request, now);
                // The answer waits until the change it reports is journaled, as in Kafka: a member never holds an
                // epoch or a partition that the group's next coordinator would not know about.
                let journaled = self.journal_consumer_group(&group_id).await;
                let _ = reply.send(outcome.and_then(|outcome| journaled.map(|()| outcome)));
            }
            Command::Load(partition, reply) => {
                let _ = reply.send(self.load_partition(partition).await);
            }
            Command::Unload(partition, reply) => {
                let _ = reply.send(Ok(self.unload_partition(partition)));
            }
            Command::ConsumerDescribe(group_id, reply) => {
                let description = self.consumer_groups.get(&group_id).map(|g| g.describe(&self.settings.consumer));
                let _ = reply.send(Ok(description));
            }
            Command::Delete(group_id, reply) => {
                let result = match self.groups.get(&group_id) {
                    None => Err(BrokerError::GroupIdNotFound),
                    Some(group) if group.state != GroupState::Empty => Err(BrokerError::NonEmptyGroup),
                    Some(_) => {
                        self.groups.remove(&group_id);
                        self.dirty.remove(&group_id);
                        self.store.delete_group(&group_id).await
                    }
                };
                let _ = reply.send(result);
            }
        }
    }

    fn join(&mut self, request: JoinGroup, reply: JoinReply, now: Instant) {
        tracing::debug!(
            group_id = %request.group_id,
            member_id = %request.member_id,
            group_instance_id = ?request.group_instance_id,
            client_id = %request.client_id,
            state = ?self.groups.get(&request.group_id).map(|group| group.state),
            "JoinGroup"
        );
        if request.group_id.is_empty() {
            let _ = reply.send(Err(BrokerError::InvalidGroupId));
            return;
        }
        if let Some(group) = self.consumer_groups.get(&request.group_id) {
            // An empty consumer group becomes a classic group again; members of both protocols in one group are
            // not supported.
            if !group.members.is_empty() {
                let _ = reply.send(Err(BrokerError::InconsistentGroupProtocol(
                    "the group is a consumer group (group.protocol=consumer) with members".into(),
                )));
                return;
            }
            self.consumer_groups.remove(&request.group_id);
        }
        let session_timeout = millis(request.session_timeout_ms);
        if request.session_timeout_ms < 0
            || session_timeout < self.settings.min_session_timeout
            || session_timeout > self.settings.max_session_timeout
        {
            let _ = reply.send(Err(BrokerError::InvalidSessionTimeout {
                requested: request.session_timeout_ms,
                min: i64::try_from(self.settings.min_session_timeout.as_millis()).unwrap_or(i64::MAX),
                max: i64::try_from(self.settings.max_session_timeout.as_millis()).unwrap_or(i64::MAX),
            }));
            return;
        }
        // A first join gets a member id `<group instance id or client id>-<UUID>`; one too long to send back is
        // refused, as Kafka refuses it.
        let generated_member_id = if request.member_id.is_empty() {
            let prefix = request.group_instance_id.as_deref().unwrap_or(&request.client_id);
            let member_id = new_member_id(prefix);
            if let Err(err) = limits::validate_generated_member_id(&member_id) {
                let _ = reply.send(Err(err));
                return;
            }
            Some(member_id)
        } else {
            None
        };
        let settings = self.settings.clone();
        // A refused join must not leave a new, empty group behind.
        let accepted = match self.groups.get(&request.group_id) {
            Some(group) => group.accepts_protocols(&request.protocol_type, &request.protocols),
            None if !request.member_id.is_empty() => {
                let _ = reply.send(Err(BrokerError::UnknownMemberId));
                return;
            }
            None => !request.protocol_type.is_empty() && !request.protocols.is_empty(),
        };
        if !accepted {
            let _ = reply.send(Err(BrokerError::InconsistentGroupProtocol(format!(
                "protocol type '{}' with protocols {:?} does not match the group's",
                request.protocol_type,
                request.protocols.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>()
            ))));
            return;
        }
        let group = self.groups.entry(request.group_id.clone()).or_insert_with(|| Group::new(request.group_id.clone()));
        if let Some(member_id) = generated_member_id {
            if let Some(old_member_id) = group.static_member(request.group_instance_id.as_deref()).map(String::from) {
                replace_static_member(group, &old_member_id, member_id, request, reply, now, &settings);
                if group.state == GroupState::Stable {
                    // The stored members name the new member id (Kafka stores the group on a static replacement).
                    self.dirty.insert(group.group_id.clone());
                }
                return;
            }
            if request.group_instance_id.is_none() && request.require_known_member_id {
                group.pending_members.insert(member_id.clone(), now + session_timeout);
                let _ = reply.send(Err(BrokerError::MemberIdRequired { member_id }));
                return;
            }
            add_member(group, member_id, request, reply, now, &settings);
            return;
        }
        if group.pending_members.remove(&request.member_id).is_some() {
            let member_id = request.member_id.clone();
            add_member(group, member_id, request, reply, now, &settings);
            return;
        }
        if let Err(err) = group.validate_member(&request.member_id, request.group_instance_id.as_deref()) {
            let _ = reply.send(Err(err));
            return;
        }
        let is_leader = group.leader_id.as_deref() == Some(request.member_id.as_str());
        let state = group.state;
        let Some(member) = group.members.get_mut(&request.member_id) else {
            let _ = reply.send(Err(BrokerError::UnknownMemberId));
            return;
        };
        let protocols_changed = member.protocols != request.protocols;
        member.session_deadline = now + session_timeout;
        match state {
            GroupState::PreparingRebalance => {
                update_member(member, request, reply);
                maybe_complete_join(group, now);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if !protocols_changed && (state == GroupState::CompletingRebalance || !is_leader) =>
            {
                // A member that lost the JoinGroup answer asks again: same generation, nothing changes.
                let _ = reply.send(Ok(group.join_outcome(&request.member_id, false)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                update_member(member, request, reply);
                prepare_rebalance(group, now);
                // If it was the only member (or every member is already back), the rebalance completes now.
                maybe_complete_join(group, now);
            }
            GroupState::Empty | GroupState::Dead => {
                let _ = reply.send(Err(BrokerError::UnknownMemberId));
            }
        }
    }

    fn sync(&mut self, request: SyncGroup, reply: SyncReply, now: Instant) {
        tracing::debug!(
            group_id = %request.group_id,
            member_id = %request.member_id,
            generation_id = request.generation_id,
            assignments = request.assignments.len(),
            state = ?self.groups.get(&request.group_id).map(|group| group.state),
            "SyncGroup"
        );
        let Some(group) = self.groups.get_mut(&request.group_id) else {
            let _ = reply.send(Err(BrokerError::UnknownMemberId));
            return;
        };
        if let Err(err) = group.validate_member(&request.member_id, request.group_instance_id.as_deref()) {
            let _ = reply.send(Err(err));
            return;
        }
        if request.generation_id != group.generation_id {
            let _ = reply.send(Err(BrokerError::IllegalGeneration {
                requested: request.generation_id,
                current: group.generation_id,
            }));
            return;
        }
        let type_differs = request.protocol_type.is_some() && request.protocol_type != group.protocol_type;
        let name_differs = request.protocol_name.is_some() && request.protocol_name != group.protocol_name;
        if type_differs || name_differs {
            let _ = reply.send(Err(BrokerError::InconsistentGroupProtocol(
                "SyncGroup names another protocol than the group's".into(),
            )));
            return;
        }
        let is_leader = group.leader_id.as_deref() == Some(request.member_id.as_str());
        let Some(member) = group.members.get_mut(&request.member_id) else {
            let _ = reply.send(Err(BrokerError::UnknownMemberId));
            return;
        };
        member.session_deadline = now + member.session_timeout;
        match group.state {
            GroupState::Empty | GroupState::Dead => {
                let _ = reply.send(Err(BrokerError::UnknownMemberId));
            }
            GroupState::PreparingRebalance => {
                let _ = reply.send(Err(BrokerError::RebalanceInProgress));
            }
            GroupState::Stable => {
                let _ = reply.send(Ok(SyncOutcome {
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                }));
            }
            GroupState::CompletingRebalance => {
                member.awaiting_sync = Some(reply);
                if is_leader {
                    let assignments: HashMap<String, Bytes> = request.assignments.into_iter().collect();
                    for member in group.members.values_mut() {
                        member.assignment = assignments.get(&member.member_id).cloned().unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    tracing::info!(
                        group_id = %group.group_id,
                        generation_id = group.generation_id,
                        members = group.members.len(),
                        "group stable: the leader's assignments are handed out"
                    );
                    self.dirty.insert(group.group_id.clone());
                    for member in group.members.values_mut() {
                        if let Some(reply) = member.awaiting_sync.take() {
                            let _ = reply.send(Ok(SyncOutcome {
                                protocol_type: group.protocol_type.clone(),
                                protocol_name: group.protocol_name.clone(),
                                assignment: member.assignment.clone(),
                            }));
                        }
                    }
                }
            }
        }
    }

    fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: Instant,
    ) -> Result<(), BrokerError> {
        let group = self.groups.get_mut(group_id).ok_or(BrokerError::UnknownMemberId)?;
        group.validate_member(member_id, group_instance_id)?;
        if generation_id != group.generation_id {
            return Err(BrokerError::IllegalGeneration { requested: generation_id, current: group.generation_id });
        }
        let state = group.state;
        let member = group.members.get_mut(member_id).ok_or(BrokerError::UnknownMemberId)?;
        member.session_deadline = now + member.session_timeout;
        match state {
            GroupState::PreparingRebalance => Err(BrokerError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            GroupState::Empty | GroupState::Dead => Err(BrokerError::UnknownMemberId),
        }
    }

    fn leave(&mut self, group_id: &str, members: &[LeaveMember], now: Instant) -> Vec<Result<(), BrokerError>> {
        tracing::debug!(
            %group_id,
            members = ?members.iter().map(|m| m.member_id.as_str()).collect::<Vec<_>>(),
            state = ?self.groups.get(group_id).map(|group| group.state),
            "LeaveGroup"
        );
        let Some(group) = self.groups.get_mut(group_id) else {
            return members.iter().map(|_| Err(BrokerError::UnknownMemberId)).collect();
        };
        let mut removed_any = false;
        let results = members
            .iter()
            .map(|leaving| {
                let instance_id = leaving.group_instance_id.as_deref();
                let member_id = if leaving.member_id.is_empty() {
                    group.static_member(instance_id).map(String::from).ok_or(BrokerError::UnknownMemberId)?
                } else {
                    leaving.member_id.clone()
                };
                if group.is_fenced(&member_id, instance_id) {
                    return Err(BrokerError::FencedInstanceId);
                }
                if group.pending_members.remove(&member_id).is_some() {
                    return Ok(());
                }
                if !group.members.contains_key(&member_id) {
                    return Err(BrokerError::UnknownMemberId);
                }
                group.remove_member(&member_id, &BrokerError::UnknownMemberId);
                removed_any = true;
                Ok(())
            })
            .collect();
        if removed_any {
            if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                prepare_rebalance(group, now);
            }
            maybe_complete_join(group, now);
            if group.state == GroupState::Empty {
                self.dirty.insert(group.group_id.clone());
            }
        }
        results
    }

    fn check_commit(&mut self, check: &CommitCheck, now: Instant) -> Result<(), BrokerError> {
        if check.group_id.is_empty() {
            return Err(BrokerError::InvalidGroupId);
        }
        if let Some(group) = self.consumer_groups.get(&check.group_id) {
            return group.check_commit(&check.member_id, check.generation_id, &check.partitions);
        }
        let is_member_commit =
            check.generation_id >= 0 || !check.member_id.is_empty() || check.group_instance_id.is_some();
        let group = match self.groups.get_mut(&check.group_id) {
            Some(group) => group,
            None if is_member_commit => {
                return Err(BrokerError::IllegalGeneration { requested: check.generation_id, current: -1 });
            }
            None => self.groups.entry(check.group_id.clone()).or_insert_with(|| Group::new(check.group_id.clone())),
        };
        if is_member_commit {
            group.validate_member(&check.member_id, check.group_instance_id.as_deref())?;
            if check.generation_id != group.generation_id {
                return Err(BrokerError::IllegalGeneration {
                    requested: check.generation_id,
                    current: group.generation_id,
                });
            }
        } else if group.state != GroupState::Empty {
            // Commits without member id and generation are only accepted while the group has no members.
            return Err(BrokerError::UnknownMemberId);
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(BrokerError::RebalanceInProgress);
        }
        if let Some(member) = group.members.get_mut(&check.member_id) {
            member.session_deadline = now + member.session_timeout;
        }
        Ok(())
    }

    /// Serves a ConsumerGroupHeartbeat in memory; the caller journals the group's change.
    fn consumer_heartbeat(
        &mut self,
        request: ConsumerHeartbeat,
        now: Instant,
    ) -> Result<HeartbeatOutcome, BrokerError> {
        let group_id = request.group_id.clone();
        let settings = &self.settings.consumer;
        if matches!(request.member_epoch, LEAVE_GROUP_MEMBER_EPOCH | LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
            // The caller journals what changed.
            let group = self.consumer_groups.get_mut(&group_id).ok_or(BrokerError::GroupIdNotFound)?;
            return group.leave(&request.member_id, request.instance_id.as_deref(), request.member_epoch, settings);
        }
        if !self.consumer_groups.contains_key(&group_id) {
            // Joining creates the group; an empty classic group (e.g. one that only holds offsets) becomes a
            // consumer group, keeping its committed offsets.
            let classic_is_empty =
                self.groups.get(&group_id).map(|group| group.members.is_empty() && group.pending_members.is_empty());
            if request.member_epoch != 0 || classic_is_empty == Some(false) {
                return Err(BrokerError::GroupIdNotFound);
            }
            self.groups.remove(&group_id);
            self.consumer_groups.insert(group_id.clone(), ConsumerGroup::new(group_id.clone(), 0));
        }
        let group = self.consumer_groups.get_mut(&group_id).ok_or(BrokerError::GroupIdNotFound)?;
        let outcome = group.heartbeat(request, settings, now);
        if outcome.is_err() && group.members.is_empty() && group.group_epoch == 0 {
            // A refused first join must not leave a new, empty group behind.
            self.consumer_groups.remove(&group_id);
        }
        outcome
    }

    /// The earliest deadline of any group, if any.
    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Instant| next = Some(next.map_or(at, |current| current.min(at)));
        for group in self.groups.values() {
            if let Some(at) = group.rebalance_deadline {
                consider(at);
            }
            for at in group.pending_members.values() {
                consider(*at);
            }
            for member in group.members.values().filter(|member| member.session_can_expire()) {
                consider(member.session_deadline);
            }
        }
        for at in self.consumer_groups.values().filter_map(ConsumerGroup::next_deadline) {
            consider(at);
        }
        next
    }

    /// Expires sessions and member ids handed out, and completes rebalances whose time is up.
    fn fire_deadlines(&mut self, now: Instant) {
        for group in self.consumer_groups.values_mut() {
            for member_id in group.expired_members(now) {
                tracing::info!(group_id = %group.group_id, %member_id, "consumer group member expired or fenced");
                group.remove_member(&member_id, &self.settings.consumer);
                self.dirty.insert(group.group_id.clone());
            }
        }
        for group in self.groups.values_mut() {
            let pending_before = group.pending_members.len();
            group.pending_members.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|member| member.session_can_expire() && member.session_deadline <= now)
                .map(|member| member.member_id.clone())
                .collect();
            for member_id in &expired {
                tracing::info!(group_id = %group.group_id, %member_id, "member session expired");
                group.remove_member(member_id, &BrokerError::UnknownMemberId);
            }
            if !expired.is_empty() && matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                prepare_rebalance(group, now);
            }
            if !expired.is_empty() || group.pending_members.len() != pending_before {
                maybe_complete_join(group, now);
            }
            let mut completed = false;
            if group.state == GroupState::PreparingRebalance && group.rebalance_deadline.is_some_and(|at| at <= now) {
                complete_join(group, now);
                completed = true;
            }
            if group.state == GroupState::Empty && (completed || !expired.is_empty()) {
                self.dirty.insert(group.group_id.clone());
            }
        }
    }

    /// Kafka's offset expiry: in a group without members, an offset goes once both its commit and the moment the
    /// group lost its last member are older than `offsets.retention.minutes`; a group left without offsets goes too.
    async fn expire_offsets(&mut self, now_ms: i64) {
        let retention_ms = i64::try_from(self.settings.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(retention_ms);
        let without_members: BTreeSet<String> = self
            .groups
            .values()
            .filter(|group| group.state == GroupState::Empty && group.pending_members.is_empty())
            .map(|group| group.group_id.clone())
            .chain(self.consumer_groups.values().filter(|g| g.members.is_empty()).map(|g| g.group_id.clone()))
            .collect();
        self.empty_since.retain(|group_id, _| without_members.contains(group_id));
        for group_id in without_members {
            let since = *self.empty_since.entry(group_id.clone()).or_insert(now_ms);
            if since > cutoff {
                continue;
            }
            let offsets = match self.store.fetch_all(&group_id).await {
                Ok(offsets) => offsets,
                Err(err) => {
                    tracing::warn!(%group_id, error = %err, "could not read offsets for expiry");
                    continue;
                }
            };
            let expired: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, _, committed)| committed.commit_timestamp <= cutoff)
                .map(|(topic, partition, _)| (topic.clone(), *partition))
                .collect();
            let result = if expired.len() == offsets.len() {
                tracing::info!(%group_id, expired = expired.len(), "group expired with its offsets");
                self.groups.remove(&group_id);
                self.consumer_groups.remove(&group_id);
                self.saved_consumer_groups.remove(&group_id);
                self.dirty.remove(&group_id);
                self.empty_since.remove(&group_id);
                self.store.delete_group(&group_id).await
            } else if expired.is_empty() {
                Ok(())
            } else {
                tracing::info!(%group_id, expired = expired.len(), "committed offsets expired");
                self.store.delete_offsets(&group_id, expired).await
            };
            if let Err(err) = result {
                tracing::warn!(%group_id, error = %err, "could not expire offsets");
            }
        }
    }

    async fn save_dirty_groups(&mut self) {
        for group_id in std::mem::take(&mut self.dirty) {
            if self.consumer_groups.contains_key(&group_id) {
                // Already logged there when it fails.
                let _ = self.journal_consumer_group(&group_id).await;
                continue;
            }
            self.saved_consumer_groups.remove(&group_id);
            let Some(group) = self.groups.get(&group_id) else { continue };
            let record = classic_group_record(group);
            if let Err(err) = self.store.save_group(&group_id, &record).await {
                tracing::warn!(%group_id, error = %err, "could not save the group record");
            }
        }
    }

    /// Journals a KIP-848 group's record if it changed since it was last journaled. A failure is answered as
    /// Kafka answers a group write that failed: NOT_COORDINATOR once another broker leads the group's partition,
    /// else COORDINATOR_NOT_AVAILABLE (the member retries; the coordinator keeps the change and journals it then).
    async fn journal_consumer_group(&mut self, group_id: &str) -> Result<(), BrokerError> {
        let Some(group) = self.consumer_groups.get(group_id) else {
            self.saved_consumer_groups.remove(group_id);
            return Ok(());
        };
        let record = GroupRecord {
            protocol_type: CONSUMER_PROTOCOL_TYPE.into(),
            generation_id: group.group_epoch,
            protocol_name: None,
            group_type: GroupType::Consumer,
            leader_id: None,
            members: Vec::new(),
            consumer: Some(group.to_record()),
        };
        if self.saved_consumer_groups.get(group_id) == Some(&record) {
            return Ok(());
        }
        match self.store.save_group(group_id, &record).await {
            Ok(()) => {
                self.saved_consumer_groups.insert(group_id.to_string(), record);
                Ok(())
            }
            Err(err) => {
                tracing::warn!(%group_id, error = %err, "could not journal the consumer group");
                Err(match err {
                    BrokerError::NotCoordinator(_) | BrokerError::CoordinatorLoadInProgress(_) => err,
                    other => {
                        BrokerError::CoordinatorNotAvailable(format!("the group's state was not journaled: {other}"))
                    }
                })
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn describe(group: &Group) -> GroupDescription {
    let protocol_name = group.protocol_name.clone().unwrap_or_default();
    GroupDescription {
        group_id: group.group_id.clone(),
        state: group.state,
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol_name: protocol_name.clone(),
        generation_id: group.generation_id,
        members: group
            .members
            .values()
            .map(|member| MemberDescription {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                metadata: member.metadata_for(&protocol_name),
                assignment: member.assignment.clone(),
            })
            .collect(),
    }
}

/// Takes a rejoining member's new protocols and timeouts and holds its answer.
fn update_member(member: &mut Member, request: JoinGroup, reply: JoinReply) {
    member.rebalance_timeout = rebalance_timeout(&request);
    member.session_timeout = millis(request.session_timeout_ms);
    member.protocols = request.protocols;
    member.client_id = request.client_id;
    member.client_host = request.client_host;
    member.supports_skip_assignment = request.supports_skip_assignment;
    if let Some(previous) = member.awaiting_join.replace(reply) {
        let _ = previous.send(Err(BrokerError::RebalanceInProgress));
    }
}

fn rebalance_timeout(request: &JoinGroup) -> Duration {
    if request.rebalance_timeout_ms > 0 {
        millis(request.rebalance_timeout_ms)
    } else {
        millis(request.session_timeout_ms)
    }
}

/// Adds a new member whose JoinGroup answer waits for the rebalance it starts (or joins).
fn add_member(
    group: &mut Group,
    member_id: String,
    request: JoinGroup,
    reply: JoinReply,
    now: Instant,
    settings: &GroupSettings,
) {
    let session_timeout = millis(request.session_timeout_ms);
    let rebalance_timeout = rebalance_timeout(&request);
    if group.members.is_empty() {
        group.protocol_type = Some(request.protocol_type.clone());
    }
    if let Some(instance_id) = &request.group_instance_id {
        group.static_members.insert(instance_id.clone(), member_id.clone());
    }
    group.members.insert(
        member_id.clone(),
        Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout,
            rebalance_timeout,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(reply),
            awaiting_sync: None,
            supports_skip_assignment: request.supports_skip_assignment,
            session_deadline: now + session_timeout,
        },
    );
    if group.leader_id.is_none() {
        group.leader_id = Some(member_id);
    }
    match group.state {
        GroupState::Empty | GroupState::Dead => {
            // The first rebalance of an empty group waits `group.initial.rebalance.delay.ms` for more members,
            // extended by each new member up to the rebalance timeout.
            group.state = GroupState::PreparingRebalance;
            group.rebalance_deadline = Some(now + settings.initial_rebalance_delay);
            group.initial_delay_limit = Some(now + rebalance_timeout.max(settings.initial_rebalance_delay));
            if settings.initial_rebalance_delay.is_zero() {
                group.initial_delay_limit = None;
                maybe_complete_join(group, now);
            }
        }
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, now),
        GroupState::PreparingRebalance => {
            if let Some(limit) = group.initial_delay_limit {
                group.rebalance_deadline = Some((now + settings.initial_rebalance_delay).min(limit));
            } else {
                maybe_complete_join(group, now);
            }
        }
    }
}

/// A static member rejoins under a new member id: the old id is fenced and the new one takes its place (and its
/// assignment). A stable group does not rebalance unless the member's protocols no longer fit.
fn replace_static_member(
    group: &mut Group,
    old_member_id: &str,
    new_member_id: String,
    request: JoinGroup,
    reply: JoinReply,
    now: Instant,
    settings: &GroupSettings,
) {
    let Some(instance_id) = request.group_instance_id.clone() else { return };
    let Some(mut member) = group.members.remove(old_member_id) else {
        group.static_members.remove(&instance_id);
        add_member(group, new_member_id, request, reply, now, settings);
        return;
    };
    if let Some(held) = member.awaiting_join.take() {
        let _ = held.send(Err(BrokerError::FencedInstanceId));
    }
    if let Some(held) = member.awaiting_sync.take() {
        let _ = held.send(Err(BrokerError::FencedInstanceId));
    }
    member.member_id = new_member_id.clone();
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
    member.session_timeout = millis(request.session_timeout_ms);
    member.rebalance_timeout = rebalance_timeout(&request);
    member.protocols = request.protocols.clone();
    member.supports_skip_assignment = request.supports_skip_assignment;
    member.session_deadline = now + member.session_timeout;
    group.static_members.insert(instance_id, new_member_id.clone());
    let was_leader = group.leader_id.as_deref() == Some(old_member_id);
    if was_leader {
        group.leader_id = Some(new_member_id.clone());
    }
    group.members.insert(new_member_id.clone(), member);
    // As Kafka: a stable group rebalances only if its protocol for the next generation would change with the new
    // member's protocols (a group loaded from storage knows only each member's protocol of this generation).
    let protocol_kept = group.protocol_name.is_some() && group.select_protocol() == group.protocol_name;
    match group.state {
        GroupState::Stable if protocol_kept => {
            tracing::info!(group_id = %group.group_id, %new_member_id, "static member rejoined without a rebalance");
            let mut outcome = group.join_outcome(&new_member_id, true);
            if was_leader && !request.supports_skip_assignment {
                // Before JoinGroup v9 a leader cannot be told to skip the assignment: as Kafka does, it is named
                // the old leader id, so it acts as a follower and gets its assignment back from SyncGroup.
                outcome.leader = old_member_id.to_string();
                outcome.members.clear();
                outcome.skip_assignment = false;
            }
            let _ = reply.send(Ok(outcome));
        }
        _ => {
            if let Some(member) = group.members.get_mut(&new_member_id) {
                member.awaiting_join = Some(reply);
            }
            if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                prepare_rebalance(group, now);
            }
            maybe_complete_join(group, now);
        }
    }
}

/// Starts a rebalance: members must rejoin within the group's rebalance timeout.
fn prepare_rebalance(group: &mut Group, now: Instant) {
    tracing::info!(
        group_id = %group.group_id,
        generation_id = group.generation_id,
        from = %group.state,
        members = group.members.len(),
        rebalance_timeout_ms = group.max_rebalance_timeout().as_millis(),
        "rebalance started"
    );
    if group.state == GroupState::CompletingRebalance {
        for member in group.members.values_mut() {
            if let Some(reply) = member.awaiting_sync.take() {
                let _ = reply.send(Err(BrokerError::RebalanceInProgress));
            }
        }
    }
    group.state = GroupState::PreparingRebalance;
    group.rebalance_deadline = Some(now + group.max_rebalance_timeout());
    group.initial_delay_limit = None;
}

/// Completes the join phase early when every member has rejoined (never during the initial delay).
fn maybe_complete_join(group: &mut Group, now: Instant) {
    if group.state == GroupState::PreparingRebalance
        && group.initial_delay_limit.is_none()
        && group.all_members_joined()
    {
        complete_join(group, now);
    }
}

/// Ends the join phase: members that did not rejoin are dropped, the generation advances, a protocol and a leader
/// are chosen and every held JoinGroup is answered.
fn complete_join(group: &mut Group, now: Instant) {
    let missing: Vec<String> =
        group.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.member_id.clone()).collect();
    for member_id in &missing {
        group.remove_member(member_id, &BrokerError::UnknownMemberId);
    }
    group.rebalance_deadline = None;
    group.initial_delay_limit = None;
    group.generation_id = group.generation_id.wrapping_add(1);
    tracing::info!(
        group_id = %group.group_id,
        generation_id = group.generation_id,
        members = group.members.len(),
        dropped = ?missing,
        "join phase complete"
    );
    if group.members.is_empty() {
        group.state = GroupState::Empty;
        group.protocol_name = None;
        group.leader_id = None;
        return;
    }
    group.protocol_name = group.select_protocol();
    group.state = GroupState::CompletingRebalance;
    if !group.leader_id.as_ref().is_some_and(|leader| group.members.contains_key(leader)) {
        group.leader_id = group.members.keys().next().cloned();
    }
    let outcomes: BTreeMap<String, JoinOutcome> =
        group.members.keys().map(|member_id| (member_id.clone(), group.join_outcome(member_id, false))).collect();
    for (member_id, outcome) in outcomes {
        if let Some(member) = group.members.get_mut(&member_id) {
            member.assignment = Bytes::new();
            member.session_deadline = now + member.session_timeout;
            if let Some(reply) = member.awaiting_join.take() {
                let _ = reply.send(Ok(outcome));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use skein_storage::{CommittedOffset, Durability, MemoryEngine};

    use super::*;

    const SESSION_MS: i32 = 10_000;

    fn start(settings: GroupSettings) -> (GroupCoordinator, CancellationToken) {
        let store =
            OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(crate::LocalJournal));
        let (coordinator, task) = GroupCoordinator::open(settings, store).expect("open");
        let shutdown = CancellationToken::new();
        tokio::spawn(task.run(shutdown.clone()));
        (coordinator, shutdown)
    }

    #[tokio::test]
    async fn offsets_of_groups_without_members_expire_after_the_retention() {
        let settings = GroupSettings { offsets_retention: Duration::from_secs(60), ..GroupSettings::default() };
        let store =
            OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(crate::LocalJournal));
        let t0 = 1_000_000_000;
        let offset =
            |commit_timestamp| CommittedOffset { offset: 7, leader_epoch: -1, metadata: None, commit_timestamp };
        store.commit("old", vec![("t".into(), 0, offset(t0 - 500_000))]).await.expect("commit");
        store.commit("recent", vec![("t".into(), 0, offset(t0 + 30_000))]).await.expect("commit");
        let mixed = vec![("t".into(), 0, offset(t0 - 500_000)), ("t".into(), 1, offset(t0 + 30_000))];
        store.commit("mixed", mixed).await.expect("commit");
        let (_, mut task) = GroupCoordinator::open(settings, store.clone()).expect("open");

        // The first look only notes since when each group has had no members: nothing expires yet.
        task.expire_offsets(t0).await;
        assert_eq!(store.fetch_all("old").await.expect("fetch").len(), 1);
        // A retention later, offsets committed before the cutoff go, and a group left with none goes too.
        task.expire_offsets(t0 + 60_001).await;
        assert!(store.fetch_all("old").await.expect("fetch").is_empty());
        assert!(!task.groups.contains_key("old"));
        assert_eq!(store.fetch_all("recent").await.expect("fetch").len(), 1);
        let left: Vec<i32> = store.fetch_all("mixed").await.expect("fetch").iter().map(|(_, p, _)| *p).collect();
        assert_eq!(left, vec![1]);
        assert!(task.groups.contains_key("mixed"));
    }

    fn settings() -> GroupSettings {
        GroupSettings { initial_rebalance_delay: Duration::from_millis(3_000), ..GroupSettings::default() }
    }

    fn join_request(member_id: &str, instance_id: Option<&str>, protocols: &[&str]) -> JoinGroup {
        JoinGroup {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: instance_id.map(String::from),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|name| (name.to_string(), Bytes::from(format!("meta-{name}")))).collect(),
            require_known_member_id: true,
            supports_skip_assignment: false,
        }
    }

    /// Joins the v4+ way: the first join is refused with a member id to rejoin with.
    async fn join_new(coordinator: &GroupCoordinator) -> JoinOutcome {
        let member_id = match coordinator.join(join_request("", None, &["range"])).await {
            Err(BrokerError::MemberIdRequired { member_id }) => member_id,
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        };
        assert!(member_id.starts_with("client-"), "{member_id}");
        coordinator.join(join_request(&member_id, None, &["range"])).await.expect("join")
    }

    fn sync_request(outcome: &JoinOutcome, assignments: Vec<(String, Bytes)>) -> SyncGroup {
        SyncGroup {
            group_id: "g".into(),
            generation_id: outcome.generation_id,
            member_id: outcome.member_id.clone(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments,
        }
    }

    async fn heartbeat(coordinator: &GroupCoordinator, outcome: &JoinOutcome) -> Result<(), BrokerError> {
        coordinator.heartbeat("g".into(), outcome.member_id.clone(), None, outcome.generation_id).await
    }

    /// Two members join during the initial delay, one generation, the leader sees both and its assignments reach
    /// the follower.
    async fn two_member_group(coordinator: &GroupCoordinator) -> (JoinOutcome, JoinOutcome) {
        let first = tokio::spawn({
            let coordinator = coordinator.clone();
            async move { join_new(&coordinator).await }
        });
        let second = tokio::spawn({
            let coordinator = coordinator.clone();
            async move { join_new(&coordinator).await }
        });
        let (first, second) = (first.await.expect("task"), second.await.expect("task"));
        let (leader, follower) = if first.member_id == first.leader { (first, second) } else { (second, first) };
        (leader, follower)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stable_group_reopened_from_its_store_keeps_its_members_and_assignments() {
        let store =
            OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(crate::LocalJournal));
        let (coordinator, task) = GroupCoordinator::open(settings(), store.clone()).expect("open");
        let shutdown = CancellationToken::new();
        tokio::spawn(task.run(shutdown.clone()));
        let (leader, follower) = two_member_group(&coordinator).await;
        let follower_sync = tokio::spawn({
            let coordinator = coordinator.clone();
            let request = sync_request(&follower, Vec::new());
            async move { coordinator.sync(request).await }
        });
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"partitions 0-2")),
            (follower.member_id.clone(), Bytes::from_static(b"partitions 3-5")),
        ];
        coordinator.sync(sync_request(&leader, assignments)).await.expect("leader sync");
        follower_sync.await.expect("task").expect("follower sync");
        // Wait for the coordinator's loop to store the stable group, then stop it: another coordinator opens the
        // same storage (as one that takes the group's partition over).
        coordinator.describe("g".into()).await.expect("describe");
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(10)).await;

        let (coordinator, _shutdown) = {
            let (coordinator, task) = GroupCoordinator::open(settings(), store).expect("reopen");
            let shutdown = CancellationToken::new();
            tokio::spawn(task.run(shutdown.clone()));
            (coordinator, shutdown)
        };
        let description = coordinator.describe("g".into()).await.expect("describe").expect("exists");
        assert_eq!(description.state, GroupState::Stable);
        assert_eq!(description.generation_id, 1);
        assert_eq!(description.members.len(), 2);
        // Both members heartbeat on in their generation, and the follower's SyncGroup (a lost answer) gets its
        // assignment back.
        assert_eq!(heartbeat(&coordinator, &leader).await, Ok(()));
        assert_eq!(heartbeat(&coordinator, &follower).await, Ok(()));
        let again = coordinator.sync(sync_request(&follower, Vec::new())).await.expect("follower sync again");
        assert_eq!(again.assignment, Bytes::from_static(b"partitions 3-5"));
        // Their sessions started again at the load: one that stops heartbeating expires, and the group rebalances.
        tokio::time::sleep(Duration::from_millis(u64::try_from(SESSION_MS).expect("positive") + 1_000)).await;
        assert_eq!(heartbeat(&coordinator, &leader).await, Err(BrokerError::UnknownMemberId));
    }

    #[tokio::test(start_paused = true)]
    async fn ids_longer_than_a_request_string_make_no_group() {
        let (coordinator, _shutdown) = start(settings());
        let too_long = "x".repeat(skein_core::MAX_ID_BYTES + 1);
        let mut join = join_request("", None, &["range"]);
        join.group_id = too_long.clone();
        let err = coordinator.join(join).await.expect_err("group id too long");
        assert_eq!(skein_core::error_code(&err), 42);
        let err = coordinator.join(join_request(&too_long, None, &["range"])).await.expect_err("member id too long");
        assert_eq!(skein_core::error_code(&err), 42);
        let err =
            coordinator.join(join_request("", Some(&too_long), &["range"])).await.expect_err("instance id too long");
        assert_eq!(skein_core::error_code(&err), 42);
        let check = CommitCheck {
            group_id: too_long.clone(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            partitions: Vec::new(),
        };
        assert_eq!(skein_core::error_code(&coordinator.check_commit(check).await.expect_err("too long")), 42);
        assert!(coordinator.list().await.expect("list").is_empty(), "no group was made");
    }

    #[tokio::test(start_paused = true)]
    async fn a_generated_member_id_too_long_to_send_back_is_an_unknown_server_error() {
        // Kafka 4.3.1: `<client id or instance id>-<UUID>` (37 bytes more) over 32,767 bytes is answered
        // UNKNOWN_SERVER_ERROR; up to 32,767 it is handed out.
        let (coordinator, _shutdown) = start(settings());
        let longest_prefix = skein_core::MAX_ID_BYTES - 37;
        let mut join = join_request("", None, &["range"]);
        join.client_id = "c".repeat(longest_prefix);
        match coordinator.join(join.clone()).await {
            Err(BrokerError::MemberIdRequired { member_id }) => assert_eq!(member_id.len(), skein_core::MAX_ID_BYTES),
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        }
        join.client_id.push('c');
        let err = coordinator.join(join).await.expect_err("member id too long");
        assert_eq!(err, BrokerError::GeneratedMemberIdTooLong { length: skein_core::MAX_ID_BYTES + 1 });
        assert_eq!(skein_core::error_code(&err), -1);

        let mut join = join_request("", Some(&"i".repeat(longest_prefix + 1)), &["range"]);
        join.group_id = "static".into();
        let err = coordinator.join(join).await.expect_err("member id too long");
        assert_eq!(skein_core::error_code(&err), -1);
        let groups: Vec<String> = coordinator.list().await.expect("list").into_iter().map(|g| g.group_id).collect();
        assert_eq!(groups, vec!["g".to_string()], "the refused static join made no group");
    }

    #[tokio::test(start_paused = true)]
    async fn two_members_join_sync_and_heartbeat() {
        let (coordinator, shutdown) = start(settings());
        let started = Instant::now();
        let (leader, follower) = two_member_group(&coordinator).await;
        assert!(started.elapsed() >= Duration::from_millis(3_000), "the initial rebalance delay was not applied");
        assert_eq!(leader.generation_id, 1);
        assert_eq!(follower.generation_id, 1);
        assert_eq!(follower.leader, leader.member_id);
        assert_eq!(leader.protocol_name.as_deref(), Some("range"));
        assert_eq!(leader.members.len(), 2);
        assert!(follower.members.is_empty(), "only the leader gets the member list");
        assert!(leader.members.iter().all(|m| m.metadata == Bytes::from_static(b"meta-range")));

        // The follower's SyncGroup waits for the leader's assignments.
        let follower_sync = tokio::spawn({
            let coordinator = coordinator.clone();
            let request = sync_request(&follower, Vec::new());
            async move { coordinator.sync(request).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!follower_sync.is_finished());
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"partitions 0-2")),
            (follower.member_id.clone(), Bytes::from_static(b"partitions 3-5")),
        ];
        let leader_sync = coordinator.sync(sync_request(&leader, assignments)).await.expect("leader sync");
        assert_eq!(leader_sync.assignment, Bytes::from_static(b"partitions 0-2"));
        let follower_sync = follower_sync.await.expect("task").expect("follower sync");
        assert_eq!(follower_sync.assignment, Bytes::from_static(b"partitions 3-5"));
        assert_eq!(follower_sync.protocol_name.as_deref(), Some("range"));

        assert_eq!(heartbeat(&coordinator, &leader).await, Ok(()));
        let stale = JoinOutcome { generation_id: 0, ..follower.clone() };
        assert!(matches!(heartbeat(&coordinator, &stale).await, Err(BrokerError::IllegalGeneration { .. })));
        let stranger = JoinOutcome { member_id: "nobody".into(), ..follower.clone() };
        assert_eq!(heartbeat(&coordinator, &stranger).await, Err(BrokerError::UnknownMemberId));
        let description = coordinator.describe("g".into()).await.expect("describe").expect("exists");
        assert_eq!(description.state, GroupState::Stable);
        assert_eq!(description.members.len(), 2);
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn leave_and_session_expiry_rebalance_the_group() {
        let (coordinator, shutdown) = start(settings());
        let (leader, follower) = two_member_group(&coordinator).await;
        coordinator.sync(sync_request(&leader, Vec::new())).await.expect("leader sync");
        coordinator.sync(sync_request(&follower, Vec::new())).await.expect("follower sync");

        // The leader leaves: the follower learns of the rebalance from its heartbeat and rejoins alone.
        let left = coordinator
            .leave("g".into(), vec![LeaveMember { member_id: leader.member_id.clone(), group_instance_id: None }])
            .await;
        assert_eq!(left, vec![Ok(())]);
        assert_eq!(heartbeat(&coordinator, &follower).await, Err(BrokerError::RebalanceInProgress));
        let rejoined = coordinator.join(join_request(&follower.member_id, None, &["range"])).await.expect("rejoin");
        assert_eq!(rejoined.generation_id, 2);
        assert_eq!(rejoined.leader, follower.member_id);
        assert_eq!(rejoined.members.len(), 1);
        coordinator.sync(sync_request(&rejoined, Vec::new())).await.expect("sync");

        // A second member joins, then stops heartbeating: after its session timeout it is removed.
        let second = tokio::spawn({
            let coordinator = coordinator.clone();
            async move { join_new(&coordinator).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(heartbeat(&coordinator, &rejoined).await, Err(BrokerError::RebalanceInProgress));
        let first = coordinator.join(join_request(&rejoined.member_id, None, &["range"])).await.expect("rejoin");
        let second = second.await.expect("task");
        assert_eq!((first.generation_id, second.generation_id), (3, 3));
        coordinator.sync(sync_request(&first, Vec::new())).await.expect("sync");
        coordinator.sync(sync_request(&second, Vec::new())).await.expect("sync");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(3_000)).await;
            assert_eq!(heartbeat(&coordinator, &first).await, Ok(()), "the live member's session holds");
        }
        // 11 s since the second member's last request: past its 10 s session.
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        assert_eq!(heartbeat(&coordinator, &second).await, Err(BrokerError::UnknownMemberId));
        assert_eq!(heartbeat(&coordinator, &first).await, Err(BrokerError::RebalanceInProgress));
        let alone = coordinator.join(join_request(&first.member_id, None, &["range"])).await.expect("rejoin");
        assert_eq!(alone.generation_id, 4);
        assert_eq!(alone.members.len(), 1);

        // The last member leaves: the group is Empty and may be deleted.
        coordinator.sync(sync_request(&alone, Vec::new())).await.expect("sync");
        assert_eq!(coordinator.delete("g".into()).await, Err(BrokerError::NonEmptyGroup));
        let left = coordinator
            .leave("g".into(), vec![LeaveMember { member_id: alone.member_id.clone(), group_instance_id: None }])
            .await;
        assert_eq!(left, vec![Ok(())]);
        let listed = coordinator.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "Empty");
        assert_eq!(coordinator.delete("g".into()).await, Ok(()));
        assert_eq!(coordinator.delete("g".into()).await, Err(BrokerError::GroupIdNotFound));
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn static_member_rejoin_keeps_its_assignment_without_a_rebalance() {
        let (coordinator, shutdown) =
            start(GroupSettings { initial_rebalance_delay: Duration::ZERO, ..GroupSettings::default() });
        let leader = coordinator.join(join_request("", Some("instance-a"), &["range"])).await.expect("join a");
        assert_eq!(leader.generation_id, 1);
        let follower = tokio::spawn({
            let coordinator = coordinator.clone();
            async move { coordinator.join(join_request("", Some("instance-b"), &["range"])).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let leader =
            coordinator.join(join_request(&leader.member_id, Some("instance-a"), &["range"])).await.expect("a");
        let follower = follower.await.expect("task").expect("join b");
        assert_eq!((leader.generation_id, follower.generation_id), (2, 2));
        let assignments = vec![
            (leader.member_id.clone(), Bytes::from_static(b"for a")),
            (follower.member_id.clone(), Bytes::from_static(b"for b")),
        ];
        coordinator.sync(sync_request(&leader, assignments)).await.expect("sync a");
        let follower_sync =
            SyncGroup { group_instance_id: Some("instance-b".into()), ..sync_request(&follower, vec![]) };
        coordinator.sync(follower_sync).await.expect("sync b");

        // instance-b restarts and joins without its member id: a new id, same generation, same assignment.
        let replaced = coordinator.join(join_request("", Some("instance-b"), &["range"])).await.expect("rejoin b");
        assert_ne!(replaced.member_id, follower.member_id);
        assert_eq!(replaced.generation_id, 2);
        let sync = SyncGroup { group_instance_id: Some("instance-b".into()), ..sync_request(&replaced, vec![]) };
        assert_eq!(coordinator.sync(sync).await.expect("sync").assignment, Bytes::from_static(b"for b"));
        let fenced = coordinator
            .heartbeat("g".into(), follower.member_id.clone(), Some("instance-b".into()), follower.generation_id)
            .await;
        assert_eq!(fenced, Err(BrokerError::FencedInstanceId));
        assert_eq!(heartbeat(&coordinator, &leader).await, Ok(()), "no rebalance for the others");

        // The leader (instance-a) restarts with a JoinGroup older than v9: it is named the old leader id, so it
        // acts as a follower, and still nobody rebalances.
        let leader_back = coordinator.join(join_request("", Some("instance-a"), &["range"])).await.expect("rejoin a");
        assert_eq!(leader_back.generation_id, 2);
        assert_eq!(leader_back.leader, leader.member_id, "the old leader id");
        assert!(leader_back.members.is_empty());
        let sync = SyncGroup { group_instance_id: Some("instance-a".into()), ..sync_request(&leader_back, vec![]) };
        assert_eq!(coordinator.sync(sync).await.expect("sync").assignment, Bytes::from_static(b"for a"));
        assert_eq!(heartbeat(&coordinator, &replaced).await, Ok(()), "no rebalance for the others");
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn a_sole_leader_rejoining_with_new_metadata_gets_the_next_generation_at_once() {
        let (coordinator, shutdown) =
            start(GroupSettings { initial_rebalance_delay: Duration::ZERO, ..GroupSettings::default() });
        let member_id = match coordinator.join(join_request("", None, &["range"])).await {
            Err(BrokerError::MemberIdRequired { member_id }) => member_id,
            other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
        };
        let first = coordinator.join(join_request(&member_id, None, &["range"])).await.expect("join");
        coordinator.sync(sync_request(&first, vec![(member_id.clone(), Bytes::new())])).await.expect("sync");
        // New subscription metadata (e.g. metadata for a topic arrived): a rebalance that completes at once.
        let mut changed = join_request(&member_id, None, &["range"]);
        changed.protocols = vec![("range".into(), Bytes::from_static(b"new metadata"))];
        let started = Instant::now();
        let rejoined = coordinator.join(changed).await.expect("rejoin");
        assert_eq!(rejoined.generation_id, first.generation_id + 1);
        assert_eq!(rejoined.leader, member_id);
        assert_eq!(Instant::now(), started, "answered without waiting for a timeout");
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn offset_commit_checks_follow_the_group_state() {
        let (coordinator, shutdown) = start(settings());
        let simple = |group_id: &str| CommitCheck {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            partitions: Vec::new(),
        };
        assert_eq!(coordinator.check_commit(simple("standalone")).await, Ok(()));
        assert_eq!(coordinator.check_commit(simple("")).await, Err(BrokerError::InvalidGroupId));
        let listed = coordinator.list().await.expect("list");
        assert_eq!(listed.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(), vec!["standalone"]);

        let (leader, _follower) = two_member_group(&coordinator).await;
        let member = |generation_id| CommitCheck {
            group_id: "g".into(),
            generation_id,
            member_id: leader.member_id.clone(),
            group_instance_id: None,
            partitions: Vec::new(),
        };
        assert_eq!(coordinator.check_commit(member(1)).await, Err(BrokerError::RebalanceInProgress));
        coordinator.sync(sync_request(&leader, Vec::new())).await.expect("sync");
        assert_eq!(coordinator.check_commit(member(1)).await, Ok(()));
        assert!(matches!(coordinator.check_commit(member(7)).await, Err(BrokerError::IllegalGeneration { .. })));
        assert_eq!(coordinator.check_commit(simple("g")).await, Err(BrokerError::UnknownMemberId));
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn joins_with_bad_settings_or_protocols_are_refused() {
        let (coordinator, shutdown) = start(settings());
        let short_session = JoinGroup { session_timeout_ms: 1_000, ..join_request("", None, &["range"]) };
        assert!(matches!(coordinator.join(short_session).await, Err(BrokerError::InvalidSessionTimeout { .. })));
        let no_group = JoinGroup { group_id: String::new(), ..join_request("", None, &["range"]) };
        assert_eq!(coordinator.join(no_group).await, Err(BrokerError::InvalidGroupId));
        let no_protocols = JoinGroup { protocols: Vec::new(), ..join_request("", None, &[]) };
        assert!(matches!(coordinator.join(no_protocols).await, Err(BrokerError::InconsistentGroupProtocol(_))));
        let unknown_member = join_request("made-up", None, &["range"]);
        assert_eq!(coordinator.join(unknown_member).await, Err(BrokerError::UnknownMemberId));
        assert_eq!(coordinator.list().await, Ok(Vec::new()), "refused joins create no group");
        let (leader, _) = two_member_group(&coordinator).await;
        assert_eq!(leader.generation_id, 1);
        let other_protocol = JoinGroup { require_known_member_id: false, ..join_request("", None, &["roundrobin"]) };
        assert!(matches!(coordinator.join(other_protocol).await, Err(BrokerError::InconsistentGroupProtocol(_))));
        shutdown.cancel();
    }
}
