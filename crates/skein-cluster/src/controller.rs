//! The controller: validates metadata operations against the image and proposes the records they imply.
//!
//! Only the quorum leader runs operations ([`Controller::execute`]); elsewhere they fail with
//! [`ControllerError::NotController`], and [`crate::ControllerClient`] forwards them to the leader.
//! Operations are serialized by one lock and each starts with a linearizable read (openraft's
//! `ensure_linearizable`), so every decision sees every earlier one applied: two topics never get one name,
//! two producer-id blocks never overlap. Apply ([`crate::image`]) only records the decisions.
//!
//! Broker sessions (`broker.session.timeout.ms`) live in the leader's memory, as in KRaft: a new leader
//! gives every broker a fresh session, and fences those that then stay silent.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::acl::{AclBinding, AclFilter};
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionRegistration};
use crate::placement::{self, Candidate};
use crate::quota::ClientQuotaRecord;
use crate::records::{
    ConfigRecord, ConfigResource, ConfigResourceType, Endpoint, FenceBrokerRecord, MetadataBatch, MetadataRecord,
    NO_LEADER, NodeId, PartitionChangeRecord, PartitionRecord, ProducerIdBlockRecord, RegisterBrokerRecord,
    RemoveTopicRecord, RemoveUserScramCredentialRecord, TopicRecord, UnfenceBrokerRecord, UnregisterBrokerRecord,
    UserScramCredentialRecord,
};
use crate::types::{Raft, RaftNodeId, kafka_id};

/// Preferred-leader elections one automatic rebalance makes at most (Kafka's `MAX_ELECTIONS_PER_IMBALANCE`):
/// bounds a single metadata entry; the rest wait for the next check.
const MAX_ELECTIONS_PER_REBALANCE: usize = 1_000;

/// Producer ids handed out per block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Partitions one CreateTopics or CreatePartitions may add: bounds a single metadata entry.
pub const MAX_PARTITIONS_PER_REQUEST: i32 = 100_000;

/// The topic config that allows electing a leader from outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// A metadata operation, as run by the quorum leader (and forwarded to it by other nodes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// BrokerRegistration: a broker process announces itself; answers its broker epoch.
    RegisterBroker {
        /// Broker id.
        node_id: NodeId,
        /// Random per process start.
        incarnation_id: Uuid,
        /// Advertised listeners.
        endpoints: Vec<Endpoint>,
        /// `broker.rack`.
        rack: Option<String>,
    },
    /// BrokerHeartbeat: keeps the session; unfences a fenced broker unless it asks to stay fenced.
    BrokerHeartbeat {
        /// Broker id.
        node_id: NodeId,
        /// The epoch its registration was given.
        broker_epoch: i64,
        /// Ask to be fenced (controlled shutdown) or to stay fenced (not caught up yet).
        want_fence: bool,
    },
    /// UnregisterBroker: removes a broker's registration, as fencing moves its partitions first.
    UnregisterBroker {
        /// Broker id.
        node_id: NodeId,
    },
    /// CreateTopics for one topic.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Partition count (>= 1).
        partitions: i32,
        /// Replication factor (1..=live brokers).
        replication_factor: i32,
        /// Topic config overrides.
        configs: BTreeMap<String, String>,
        /// Manual replica assignment, one replica list per partition (then `partitions` and
        /// `replication_factor` must match it); empty: placed by the controller.
        #[serde(default)]
        assignments: Vec<Vec<NodeId>>,
    },
    /// DeleteTopics for one topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// CreatePartitions for one topic: grow to `count` partitions.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New total partition count.
        count: i32,
        /// Manual replica assignment of the new partitions; empty: placed by the controller.
        #[serde(default)]
        assignments: Vec<Vec<NodeId>>,
    },
    /// IncrementalAlterConfigs for one resource: set (`Some`) or delete (`None`) keys.
    AlterConfigs {
        /// The resource.
        resource: ConfigResource,
        /// Key → new value or deletion.
        changes: Vec<(String, Option<String>)>,
    },
    /// AlterPartition: the leader changes a partition's ISR.
    AlterPartition {
        /// The requesting broker (must be the leader).
        broker_id: NodeId,
        /// Its broker epoch.
        broker_epoch: i64,
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// The leader epoch the leader knows.
        leader_epoch: i32,
        /// The partition epoch the leader knows.
        partition_epoch: i32,
        /// Proposed ISR.
        new_isr: Vec<NodeId>,
    },
    /// AllocateProducerIds: a block of [`PRODUCER_ID_BLOCK_SIZE`] ids for one broker.
    AllocateProducerIds {
        /// Broker id.
        node_id: NodeId,
        /// Its broker epoch.
        broker_epoch: i64,
    },
    /// Upgrade of a one-node data directory: a topic that exists in the node's storage, from before the
    /// metadata quorum, joins the metadata log with its own id, configs and leader epochs, led by that node.
    /// Does nothing when the name or the id is taken already.
    ImportTopic {
        /// The node whose storage holds the topic.
        node_id: NodeId,
        /// Topic name.
        name: String,
        /// Its id in storage.
        topic_id: Uuid,
        /// Each partition's leader epoch, by index.
        leader_epochs: Vec<i32>,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// Upgrade of a one-node data directory: producer ids below `below` were handed out before the quorum
    /// existed; blocks allocated from now on start at or above it.
    ReserveProducerIds {
        /// The first id the quorum may hand out.
        below: i64,
    },
    /// DescribeQuorum: every voter's progress, answered by the quorum leader (not a metadata change).
    DescribeQuorum,
    /// AlterUserScramCredentials, checked by the broker already (mechanisms, iterations, duplicates): deletes and
    /// sets credentials. A user any of whose deletions names a credential that does not exist fails as a whole.
    AlterScramCredentials {
        /// (user, mechanism type) to delete.
        deletions: Vec<(String, i8)>,
        /// Credentials to set.
        upsertions: Vec<UserScramCredentialRecord>,
    },
    /// CreateAcls, each binding checked by the broker already: the ones not yet present are added.
    CreateAcls {
        /// The bindings.
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls, each filter checked by the broker already: every ACL any filter matches is deleted.
    DeleteAcls {
        /// The filters.
        filters: Vec<AclFilter>,
    },
    /// AlterClientQuotas, checked by the broker already: each value set or removed.
    AlterClientQuotas {
        /// The changes.
        changes: Vec<ClientQuotaRecord>,
    },
    /// ElectLeaders with election type UNCLEAN for one partition (KIP-460): only a partition without a live
    /// ISR leader gets one — from the live ISR if it can, else the first live replica, whatever
    /// `unclean.leader.election.enable` says (an operator asking for an unclean election accepts the loss).
    ElectLeader {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
    },
    /// ElectLeaders with election type PREFERRED for one partition: its first replica becomes leader when it
    /// is live and in the ISR.
    ElectPreferredLeader {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
    },
    /// AlterPartitionReassignments for one partition (KIP-455): `Some(target)` starts a reassignment to the
    /// target replicas (replacing one under way), `None` cancels the one under way. The target's new replicas
    /// join as followers; once all of them are in the ISR, the replicas not in the target leave (and a leader
    /// among them hands over to a target replica).
    ReassignPartition {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// The replicas the partition should end with, preferred leader first; `None` cancels.
        target: Option<Vec<NodeId>>,
        /// KIP-860: whether the replica count may change.
        allow_replication_factor_change: bool,
    },
    /// An observer (a non-voting, broker-only node) asks to follow the metadata log: the leader makes it an
    /// openraft learner reached at `address`, or moves it there when it was a learner at another address.
    /// Idempotent; refused (`InvalidRequest`) for a voter's id. Changes the Raft membership, writes no record.
    AddObserver {
        /// The observer's node id.
        node_id: NodeId,
        /// Its controller listener, `host:port` (an IP address).
        address: String,
    },
}

/// A successful operation's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// The broker's epoch.
    BrokerRegistered {
        /// Broker epoch: the log index of the registration.
        broker_epoch: i64,
    },
    /// Heartbeat answered.
    Heartbeat {
        /// Whether the broker is fenced now.
        fenced: bool,
    },
    /// A topic was created.
    TopicCreated {
        /// Its id.
        topic_id: Uuid,
        /// Its partitions, by index.
        partitions: BTreeMap<i32, PartitionRegistration>,
    },
    /// Done, nothing to report.
    Done,
    /// A partition's state after the change.
    Partition(PartitionRegistration),
    /// A producer id block.
    ProducerIds(ProducerIdBlock),
    /// The quorum's state, from its leader.
    Quorum(crate::quorum::QuorumStatus),
    /// AlterScramCredentials: the users whose alterations failed, each with why; the others are applied.
    ScramCredentialsAltered {
        /// User → the error of its alterations.
        failed: Vec<(String, ControllerError)>,
    },
    /// DeleteAcls: for each filter, in order, the ACLs it matched (now deleted).
    AclsDeleted {
        /// The matched ACLs, one list per filter.
        matched: Vec<Vec<AclBinding>>,
    },
}

/// A block of producer ids owned by one broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    /// The broker.
    pub node_id: NodeId,
    /// First id.
    pub first_producer_id: i64,
    /// Number of ids.
    pub size: i32,
}

/// How the answer is built once the records are applied.
enum Finish {
    Ready(ControllerResponse),
    BrokerEpoch,
    Heartbeat(NodeId),
    Topic(Uuid),
    Partition(Uuid, i32),
}

/// An operation: a client's, or the leader's own periodic work (session expiry, leader rebalance).
pub(crate) enum Op {
    Client(ControllerRequest),
    ExpireSession {
        node_id: NodeId,
        broker_epoch: i64,
    },
    /// `auto.leader.rebalance.enable`: move leadership back to preferred replicas for brokers whose share of
    /// partitions led by someone else exceeds `leader.imbalance.per.broker.percentage`.
    RebalanceLeaders {
        max_imbalance_percentage: u32,
    },
}

struct Sessions {
    term: u64,
    last_heartbeat: HashMap<NodeId, Instant>,
    /// Brokers heard from in this term (the others only got a fresh session when the term began).
    heard: HashSet<NodeId>,
}

/// The leader-side controller of one node.
pub(crate) struct Controller {
    node_id: RaftNodeId,
    raft: Raft,
    image: watch::Receiver<Arc<MetadataImage>>,
    write_lock: tokio::sync::Mutex<()>,
    sessions: Mutex<Sessions>,
    session_timeout: Duration,
    unclean_default: bool,
    op_timeout: Duration,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::fmt::Display) -> ControllerError {
    ControllerError::Unavailable(err.to_string())
}

impl Controller {
    pub(crate) fn new(
        node_id: RaftNodeId,
        raft: Raft,
        image: watch::Receiver<Arc<MetadataImage>>,
        session_timeout: Duration,
        unclean_default: bool,
        op_timeout: Duration,
    ) -> Self {
        Self {
            node_id,
            raft,
            image,
            write_lock: tokio::sync::Mutex::new(()),
            sessions: Mutex::new(Sessions { term: 0, last_heartbeat: HashMap::new(), heard: HashSet::new() }),
            session_timeout,
            unclean_default,
            op_timeout,
        }
    }

    /// The current leader as this node sees it.
    pub(crate) fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader.map(kafka_id)
    }

    /// The term this node leads in, if it is the leader now.
    fn leading_term(&self) -> Option<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader && m.current_leader == Some(self.node_id)).then_some(m.current_term)
    }

    /// Whether this node leads the quorum now (its periodic work runs only then).
    pub(crate) fn is_leading(&self) -> bool {
        self.leading_term().is_some()
    }

    /// Runs a client operation here; fails with `NotController` unless this node leads the quorum.
    pub(crate) async fn execute(&self, request: ControllerRequest) -> Result<ControllerResponse, ControllerError> {
        self.run(Op::Client(request)).await
    }

    pub(crate) async fn run(&self, op: Op) -> Result<ControllerResponse, ControllerError> {
        match tokio::time::timeout(self.op_timeout, self.run_inner(op)).await {
            Ok(result) => result,
            Err(_) => Err(ControllerError::Timeout),
        }
    }

    async fn run_inner(&self, op: Op) -> Result<ControllerResponse, ControllerError> {
        if let Op::Client(ControllerRequest::BrokerHeartbeat { node_id, broker_epoch, want_fence }) = &op
            && let Some(response) = self.heartbeat_fast_path(*node_id, *broker_epoch, *want_fence)
        {
            return Ok(response);
        }
        let _serialized = self.write_lock.lock().await;
        self.ensure_leader().await?;
        if let Op::Client(ControllerRequest::AddObserver { node_id, address }) = &op {
            return self.add_observer(*node_id, address).await;
        }
        let image = Arc::clone(&self.image.borrow());
        let Some(term) = self.leading_term() else {
            return Err(ControllerError::NotController { leader_id: self.leader_id() });
        };
        self.refresh_sessions(term, &image);
        let (records, finish) = self.plan(op, &image)?;
        let index = if records.is_empty() {
            None
        } else {
            let response = self.raft.client_write(MetadataBatch::new(records)).await.map_err(|e| match e {
                RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                    ControllerError::NotController { leader_id: f.leader_id.map(kafka_id) }
                }
                other => unavailable(other),
            })?;
            Some(response.log_id.index)
        };
        // client_write returns after the entry is applied here, so the image already shows it.
        let image = Arc::clone(&self.image.borrow());
        Ok(match finish {
            Finish::Ready(response) => response,
            Finish::BrokerEpoch => ControllerResponse::BrokerRegistered {
                broker_epoch: index.and_then(|i| i64::try_from(i).ok()).unwrap_or_default(),
            },
            Finish::Heartbeat(node_id) => {
                ControllerResponse::Heartbeat { fenced: image.broker(node_id).is_none_or(|b| b.fenced) }
            }
            Finish::Topic(topic_id) => ControllerResponse::TopicCreated {
                topic_id,
                partitions: image.topic_by_id(topic_id).map(|t| t.partitions.clone()).unwrap_or_default(),
            },
            Finish::Partition(topic_id, partition) => match image.partition(topic_id, partition) {
                Some(p) => ControllerResponse::Partition(p.clone()),
                None => return Err(ControllerError::UnknownTopicOrPartition(format!("{topic_id}-{partition}"))),
            },
        })
    }

    /// Makes `node_id` a learner at `address` (leader only, under the write lock). Uses openraft's
    /// `change_membership(SetNodes, retain)`: one uniform config (voters unchanged, so no joint phase) that
    /// adds the learner or replaces its address (`add_learner` would keep an old address). Returns once the
    /// membership entry is committed — not when the observer has caught up (it catches up in the background,
    /// like KRaft's observers fetching).
    async fn add_observer(&self, node_id: NodeId, address: &str) -> Result<ControllerResponse, ControllerError> {
        let raft_node = u64::try_from(node_id)
            .map_err(|_| ControllerError::InvalidRequest(format!("observer id {node_id} must be >= 0")))?;
        let addr: std::net::SocketAddr = address.parse().map_err(|_| {
            ControllerError::InvalidRequest(format!("observer address {address:?} is not an IP address and port"))
        })?;
        if addr.ip().is_unspecified() || addr.port() == 0 {
            return Err(ControllerError::InvalidRequest(format!("observer address {addr} is not reachable")));
        }
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let membership = membership.membership();
        if membership.voter_ids().any(|id| id == raft_node) {
            return Err(ControllerError::InvalidRequest(format!("node {node_id} is a voter, not an observer")));
        }
        let node = BasicNode::new(addr);
        if membership.get_node(&raft_node) == Some(&node) {
            return Ok(ControllerResponse::Done);
        }
        let changes = ChangeMembers::SetNodes(BTreeMap::from([(raft_node, node)]));
        self.raft.change_membership(changes, true).await.map_err(|e| match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ControllerError::NotController { leader_id: f.leader_id.map(kafka_id) }
            }
            // Another membership change still in flight: the observer retries.
            other => unavailable(other),
        })?;
        tracing::info!(node_id, %addr, "observer added to the metadata quorum as a learner");
        Ok(ControllerResponse::Done)
    }

    async fn ensure_leader(&self) -> Result<(), ControllerError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ControllerError::NotController { leader_id: f.leader_id.map(kafka_id) })
            }
            // Leader without a quorum behind it: it cannot decide anything; callers retry elsewhere.
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(ControllerError::NotController { leader_id: None })
            }
            Err(RaftError::Fatal(f)) => Err(unavailable(f)),
        }
    }

    /// A new term gives every broker a fresh session (the previous leader's clocks are gone).
    fn refresh_sessions(&self, term: u64, image: &MetadataImage) {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sessions.term != term {
            sessions.term = term;
            sessions.last_heartbeat.clear();
            sessions.heard.clear();
        }
        for id in image.brokers().keys() {
            sessions.last_heartbeat.entry(*id).or_insert(now);
        }
    }

    fn touch(&self, node_id: NodeId) {
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.last_heartbeat.insert(node_id, Instant::now());
        sessions.heard.insert(node_id);
    }

    /// Whether the broker has been heard from in this term.
    fn heard(&self, node_id: NodeId) -> bool {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).heard.contains(&node_id)
    }

    fn session_alive(&self, node_id: NodeId) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.last_heartbeat.get(&node_id).is_some_and(|t| t.elapsed() < self.session_timeout)
    }

    /// A heartbeat that changes nothing needs no log write and no lock.
    fn heartbeat_fast_path(&self, node_id: NodeId, broker_epoch: i64, want_fence: bool) -> Option<ControllerResponse> {
        let term = self.leading_term()?;
        let image = Arc::clone(&self.image.borrow());
        let broker = image.broker(node_id)?;
        if broker.broker_epoch != broker_epoch || broker.fenced != want_fence {
            return None;
        }
        self.refresh_sessions(term, &image);
        self.touch(node_id);
        Some(ControllerResponse::Heartbeat { fenced: broker.fenced })
    }

    /// Brokers whose session ran out, to be fenced (leader only).
    pub(crate) fn expired_sessions(&self) -> Vec<(NodeId, i64)> {
        let Some(term) = self.leading_term() else { return Vec::new() };
        let image = Arc::clone(&self.image.borrow());
        self.refresh_sessions(term, &image);
        image.live_brokers().filter(|b| !self.session_alive(b.node_id)).map(|b| (b.node_id, b.broker_epoch)).collect()
    }

    fn unclean_enabled(&self, image: &MetadataImage, topic: &str) -> bool {
        let lookup =
            |t, name: &str| image.configs(t, name).and_then(|c| c.get(UNCLEAN_LEADER_ELECTION_ENABLE).cloned());
        lookup(ConfigResourceType::Topic, topic)
            .or_else(|| lookup(ConfigResourceType::Broker, ""))
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(self.unclean_default)
    }

    fn plan(&self, op: Op, image: &MetadataImage) -> Result<(Vec<MetadataRecord>, Finish), ControllerError> {
        let request = match op {
            Op::ExpireSession { node_id, broker_epoch } => {
                let still_live = image.broker(node_id).is_some_and(|b| b.broker_epoch == broker_epoch && !b.fenced);
                if !still_live || self.session_alive(node_id) {
                    return Ok((Vec::new(), Finish::Ready(ControllerResponse::Done)));
                }
                tracing::info!(node_id, broker_epoch, "broker session expired: fencing");
                let mut records = vec![MetadataRecord::FenceBroker(FenceBrokerRecord { node_id, epoch: broker_epoch })];
                records.extend(self.leave_partitions(image, node_id));
                return Ok((records, Finish::Ready(ControllerResponse::Done)));
            }
            Op::RebalanceLeaders { max_imbalance_percentage } => {
                let records = rebalance_leaders(image, max_imbalance_percentage, MAX_ELECTIONS_PER_REBALANCE);
                if !records.is_empty() {
                    tracing::info!(
                        elections = records.len(),
                        "leader imbalance: moving leadership to preferred replicas"
                    );
                }
                return Ok((records, Finish::Ready(ControllerResponse::Done)));
            }
            Op::Client(request) => request,
        };
        match request {
            ControllerRequest::RegisterBroker { node_id, incarnation_id, endpoints, rack } => {
                if node_id < 0 {
                    return Err(ControllerError::InvalidRequest(format!("broker id {node_id} is negative")));
                }
                if let Some(existing) = image.broker(node_id) {
                    if existing.incarnation_id == incarnation_id {
                        // A retried registration of the same process.
                        self.touch(node_id);
                        let epoch = existing.broker_epoch;
                        return Ok((
                            Vec::new(),
                            Finish::Ready(ControllerResponse::BrokerRegistered { broker_epoch: epoch }),
                        ));
                    }
                    // A live session of another incarnation means two processes claim the id. A session the
                    // leader only granted when its term began (nothing heard since) is not evidence of that: it
                    // is typically this very process before a crash, e.g. a one-node cluster restarting.
                    if !existing.fenced && self.session_alive(node_id) && self.heard(node_id) {
                        return Err(ControllerError::DuplicateBrokerRegistration { node_id });
                    }
                }
                let mut records = vec![MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                    node_id,
                    incarnation_id,
                    endpoints,
                    rack,
                    fenced: true,
                })];
                // The new registration starts fenced: whatever the old one led moves away now.
                records.extend(self.leave_partitions(image, node_id));
                self.touch(node_id);
                Ok((records, Finish::BrokerEpoch))
            }
            ControllerRequest::BrokerHeartbeat { node_id, broker_epoch, want_fence } => {
                let broker = image.broker(node_id).ok_or(ControllerError::BrokerNotRegistered { node_id })?;
                if broker.broker_epoch != broker_epoch {
                    return Err(ControllerError::StaleBrokerEpoch {
                        node_id,
                        current: broker.broker_epoch,
                        requested: broker_epoch,
                    });
                }
                self.touch(node_id);
                let mut records = Vec::new();
                if want_fence && !broker.fenced {
                    records.push(MetadataRecord::FenceBroker(FenceBrokerRecord { node_id, epoch: broker_epoch }));
                    records.extend(self.leave_partitions(image, node_id));
                } else if !want_fence && broker.fenced {
                    records.push(MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { node_id, epoch: broker_epoch }));
                    records.extend(lead_leaderless(image, node_id));
                }
                Ok((records, Finish::Heartbeat(node_id)))
            }
            ControllerRequest::UnregisterBroker { node_id } => {
                let broker = image.broker(node_id).ok_or(ControllerError::BrokerNotRegistered { node_id })?;
                tracing::info!(node_id, broker_epoch = broker.broker_epoch, "unregistering broker");
                let mut records = self.leave_partitions(image, node_id);
                records.push(MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
                    node_id,
                    epoch: broker.broker_epoch,
                }));
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::CreateTopic { name, partitions, replication_factor, configs, assignments } => {
                validate_topic_name(&name)?;
                if image.topic(&name).is_some() {
                    return Err(ControllerError::TopicAlreadyExists(name));
                }
                let collision = image.topics().find(|t| t.name != name && collides(&t.name, &name));
                if let Some(other) = collision {
                    return Err(ControllerError::InvalidTopicName(format!(
                        "{name} collides with existing topic {} ('.' and '_' are the same in metric names)",
                        other.name
                    )));
                }
                check_partition_count(partitions)?;
                let registered = candidates(image)?;
                let rf = check_replication_factor(replication_factor, registered.len())?;
                if configs.keys().any(String::is_empty) {
                    return Err(ControllerError::InvalidConfig("empty config name".to_owned()));
                }
                let topic_id = new_topic_id(image);
                let start = usize::from(topic_id.as_bytes()[0]);
                let assignment = if assignments.is_empty() {
                    live_leaders(
                        image,
                        placement::assign(&placement_pool(image, registered, rf), partitions, rf, 0, start),
                        0,
                    )
                } else {
                    check_assignments(image, &assignments, partitions, rf)?;
                    assignments
                };
                let mut records = Vec::with_capacity(assignment.len() + 1);
                records.push(MetadataRecord::Topic(TopicRecord { name, topic_id, configs }));
                for (partition, replicas) in (0..).zip(assignment) {
                    records.push(MetadataRecord::Partition(new_partition(image, topic_id, partition, replicas)));
                }
                Ok((records, Finish::Topic(topic_id)))
            }
            ControllerRequest::DeleteTopic { name } => {
                let topic = image.topic(&name).ok_or(ControllerError::UnknownTopicOrPartition(name))?;
                let records = vec![MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: topic.topic_id })];
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::CreatePartitions { name, count, assignments } => {
                let topic = image.topic(&name).ok_or_else(|| ControllerError::UnknownTopicOrPartition(name.clone()))?;
                let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                if count <= current {
                    return Err(ControllerError::InvalidPartitions(format!(
                        "topic {name} has {current} partitions; the new count {count} must be larger"
                    )));
                }
                check_partition_count(count - current)?;
                let rf_now = topic.partitions.values().next().map_or(1, |p| p.replicas.len());
                let registered = candidates(image)?;
                let start = usize::from(topic.topic_id.as_bytes()[0]);
                let assignment = if assignments.is_empty() {
                    let rf = check_replication_factor(i32::try_from(rf_now).unwrap_or(i32::MAX), registered.len())?;
                    let pool = placement_pool(image, registered, rf);
                    live_leaders(image, placement::assign(&pool, count - current, rf, current, start), current)
                } else {
                    check_assignments(image, &assignments, count - current, rf_now)?;
                    assignments
                };
                let records = (current..)
                    .zip(assignment)
                    .map(|(partition, replicas)| {
                        MetadataRecord::Partition(new_partition(image, topic.topic_id, partition, replicas))
                    })
                    .collect();
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::AlterConfigs { resource, changes } => {
                if resource.resource_type == ConfigResourceType::Topic && image.topic(&resource.name).is_none() {
                    return Err(ControllerError::UnknownTopicOrPartition(resource.name));
                }
                if changes.iter().any(|(key, _)| key.is_empty()) {
                    return Err(ControllerError::InvalidConfig("empty config name".to_owned()));
                }
                let records = changes
                    .into_iter()
                    .map(|(name, value)| {
                        MetadataRecord::Config(ConfigRecord {
                            resource_type: resource.resource_type,
                            resource_name: resource.name.clone(),
                            name,
                            value,
                        })
                    })
                    .collect();
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::AlterPartition {
                broker_id,
                broker_epoch,
                topic_id,
                partition,
                leader_epoch,
                partition_epoch,
                new_isr,
            } => {
                check_broker_epoch(image, broker_id, broker_epoch)?;
                let p = find_partition(image, topic_id, partition)?;
                if p.leader != broker_id {
                    return Err(ControllerError::NotLeader { requester: broker_id, leader: p.leader });
                }
                if leader_epoch != p.leader_epoch {
                    return Err(ControllerError::FencedLeaderEpoch {
                        current: p.leader_epoch,
                        requested: leader_epoch,
                    });
                }
                if partition_epoch != p.partition_epoch {
                    return Err(ControllerError::InvalidUpdateVersion {
                        current: p.partition_epoch,
                        requested: partition_epoch,
                    });
                }
                validate_isr(image, p, &new_isr)?;
                if new_isr == p.isr {
                    return Ok((Vec::new(), Finish::Ready(ControllerResponse::Partition(p.clone()))));
                }
                let mut change = PartitionChangeRecord {
                    topic_id,
                    partition,
                    isr: Some(new_isr.clone()),
                    ..PartitionChangeRecord::default()
                };
                // The last adding replica joining the ISR completes a reassignment under way.
                let is_live = |id: NodeId| image.is_live(id);
                complete_reassignment(
                    p,
                    &p.replicas,
                    &p.adding_replicas,
                    &p.removing_replicas,
                    &new_isr,
                    is_live,
                    &mut change,
                );
                Ok((vec![MetadataRecord::PartitionChange(change)], Finish::Partition(topic_id, partition)))
            }
            ControllerRequest::AllocateProducerIds { node_id, broker_epoch } => {
                check_broker_epoch(image, node_id, broker_epoch)?;
                let first_producer_id = image.next_producer_id();
                if first_producer_id.checked_add(i64::from(PRODUCER_ID_BLOCK_SIZE)).is_none() {
                    return Err(unavailable("producer ids exhausted"));
                }
                let block = ProducerIdBlock { node_id, first_producer_id, size: PRODUCER_ID_BLOCK_SIZE };
                let records = vec![MetadataRecord::ProducerIdBlock(ProducerIdBlockRecord {
                    node_id,
                    first_producer_id,
                    size: PRODUCER_ID_BLOCK_SIZE,
                })];
                Ok((records, Finish::Ready(ControllerResponse::ProducerIds(block))))
            }
            ControllerRequest::ImportTopic { node_id, name, topic_id, leader_epochs, configs } => {
                validate_topic_name(&name)?;
                if image.topic(&name).is_some() || image.topic_by_id(topic_id).is_some() || topic_id.is_nil() {
                    return Ok((Vec::new(), Finish::Ready(ControllerResponse::Done)));
                }
                check_partition_count(i32::try_from(leader_epochs.len()).unwrap_or(i32::MAX))?;
                let mut records = vec![MetadataRecord::Topic(TopicRecord { name, topic_id, configs })];
                for (partition, leader_epoch) in (0..).zip(leader_epochs) {
                    records.push(MetadataRecord::Partition(PartitionRecord {
                        leader_epoch: leader_epoch.max(0),
                        ..new_partition(image, topic_id, partition, vec![node_id])
                    }));
                }
                Ok((records, Finish::Topic(topic_id)))
            }
            ControllerRequest::ReserveProducerIds { below } => {
                if below <= image.next_producer_id() {
                    return Ok((Vec::new(), Finish::Ready(ControllerResponse::Done)));
                }
                // A block record moves the next id to first + size.
                let records = vec![MetadataRecord::ProducerIdBlock(ProducerIdBlockRecord {
                    node_id: -1,
                    first_producer_id: below - 1,
                    size: 1,
                })];
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::AlterScramCredentials { deletions, upsertions } => {
                let mut failed: Vec<(String, ControllerError)> = Vec::new();
                for (name, mechanism) in &deletions {
                    if image.scram_credential(name, *mechanism).is_none() && !failed.iter().any(|(f, _)| f == name) {
                        // Kafka's wording.
                        let message = "Attempt to delete a user credential that does not exist".to_owned();
                        failed.push((name.clone(), ControllerError::ResourceNotFound(message)));
                    }
                }
                let applies = |name: &String| !failed.iter().any(|(f, _)| f == name);
                let records = deletions
                    .into_iter()
                    .filter(|(name, _)| applies(name))
                    .map(|(name, mechanism)| {
                        MetadataRecord::RemoveUserScramCredential(RemoveUserScramCredentialRecord { name, mechanism })
                    })
                    .chain(upsertions.into_iter().filter(|r| applies(&r.name)).map(MetadataRecord::UserScramCredential))
                    .collect();
                Ok((records, Finish::Ready(ControllerResponse::ScramCredentialsAltered { failed })))
            }
            ControllerRequest::CreateAcls { bindings } => {
                let mut new = BTreeSet::new();
                for binding in bindings {
                    if !image.acls().contains(&binding) {
                        new.insert(binding);
                    }
                }
                let records = new.into_iter().map(MetadataRecord::AccessControlEntry).collect();
                Ok((records, Finish::Ready(ControllerResponse::Done)))
            }
            ControllerRequest::DeleteAcls { filters } => {
                let matched: Vec<Vec<AclBinding>> = filters
                    .iter()
                    .map(|filter| image.acls().iter().filter(|b| filter.matches(b)).cloned().collect())
                    .collect();
                let removed: BTreeSet<&AclBinding> = matched.iter().flatten().collect();
                let records = removed.into_iter().cloned().map(MetadataRecord::RemoveAccessControlEntry).collect();
                Ok((records, Finish::Ready(ControllerResponse::AclsDeleted { matched })))
            }
            ControllerRequest::AlterClientQuotas { changes } => Ok((
                changes.into_iter().map(MetadataRecord::ClientQuota).collect(),
                Finish::Ready(ControllerResponse::Done),
            )),
            ControllerRequest::DescribeQuorum => {
                // Answered from Raft's state before reaching the controller (quorum.rs, network.rs).
                Err(ControllerError::InvalidRequest("DescribeQuorum is not a metadata operation".to_owned()))
            }
            ControllerRequest::AddObserver { .. } => {
                // A membership change, run by `add_observer` before planning.
                Err(ControllerError::InvalidRequest("AddObserver is not a metadata record".to_owned()))
            }
            ControllerRequest::ElectLeader { topic_id, partition } => {
                let p = find_partition(image, topic_id, partition)?;
                if p.leader != NO_LEADER && image.is_live(p.leader) && p.isr.contains(&p.leader) {
                    return Err(ControllerError::ElectionNotNeeded);
                }
                let is_live = |id: NodeId| image.is_live(id);
                // Kafka's UNCLEAN election type ignores the topic config: the request is the operator's consent.
                let change = elect(topic_id, partition, p, &p.isr, is_live, true)
                    .ok_or(ControllerError::EligibleLeadersNotAvailable)?;
                if change.leader == Some(NO_LEADER) || change.leader.is_none() {
                    return Err(ControllerError::EligibleLeadersNotAvailable);
                }
                Ok((vec![MetadataRecord::PartitionChange(change)], Finish::Partition(topic_id, partition)))
            }
            ControllerRequest::ReassignPartition { topic_id, partition, target, allow_replication_factor_change } => {
                let p = find_partition(image, topic_id, partition)?;
                let is_live = |id: NodeId| image.is_live(id);
                let change = match target {
                    Some(target) => {
                        check_reassignment_target(image, &target)?;
                        let current: Vec<NodeId> =
                            p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
                        if !allow_replication_factor_change && current.len() != target.len() {
                            return Err(ControllerError::ReplicationFactorChange {
                                current: current.len(),
                                requested: target.len(),
                            });
                        }
                        reassign(topic_id, partition, p, &target, is_live)
                    }
                    None if !p.is_reassigning() => {
                        return Err(ControllerError::NoReassignmentInProgress(format!("{topic_id}-{partition}")));
                    }
                    None => revert_reassignment(topic_id, partition, p, is_live)?,
                };
                if change == (PartitionChangeRecord { topic_id, partition, ..PartitionChangeRecord::default() }) {
                    return Ok((Vec::new(), Finish::Ready(ControllerResponse::Partition(p.clone()))));
                }
                Ok((vec![MetadataRecord::PartitionChange(change)], Finish::Partition(topic_id, partition)))
            }
            ControllerRequest::ElectPreferredLeader { topic_id, partition } => {
                let p = find_partition(image, topic_id, partition)?;
                let leader = preferred_election(p, |id| image.is_live(id))?;
                let change = PartitionChangeRecord {
                    topic_id,
                    partition,
                    leader: Some(leader),
                    ..PartitionChangeRecord::default()
                };
                Ok((vec![MetadataRecord::PartitionChange(change)], Finish::Partition(topic_id, partition)))
            }
        }
    }

    /// Partition changes that take a fenced (or re-registering) broker out of every ISR and leadership.
    fn leave_partitions(&self, image: &MetadataImage, node_id: NodeId) -> Vec<MetadataRecord> {
        let is_live = |id: NodeId| id != node_id && image.is_live(id);
        let mut out = Vec::new();
        for topic in image.topics() {
            let unclean = self.unclean_enabled(image, &topic.name);
            for (&partition, p) in &topic.partitions {
                if !p.isr.contains(&node_id) && p.leader != node_id {
                    continue;
                }
                let others: Vec<NodeId> = p.isr.iter().copied().filter(|&r| r != node_id).collect();
                // KRaft keeps the last ISR member rather than emptying the ISR: it holds the latest data.
                let new_isr = if others.is_empty() { p.isr.clone() } else { others };
                let change = if p.leader == node_id || p.leader == NO_LEADER {
                    elect(topic.topic_id, partition, p, &new_isr, is_live, unclean)
                } else {
                    None
                };
                let mut change = change.unwrap_or(PartitionChangeRecord {
                    topic_id: topic.topic_id,
                    partition,
                    isr: None,
                    leader: (p.leader == node_id).then_some(NO_LEADER),
                    replicas: None,
                    ..PartitionChangeRecord::default()
                });
                if change.isr.is_none() && new_isr != p.isr {
                    change.isr = Some(new_isr);
                }
                if change.isr.is_some() || change.leader.is_some_and(|l| l != p.leader) {
                    out.push(MetadataRecord::PartitionChange(change));
                }
            }
        }
        out
    }
}

/// A leader for a partition: the first replica (preferred order) that is in `isr` and live; else, with
/// unclean election, the first live replica (and the ISR shrinks to it). `None` when no one qualifies.
fn elect(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionRegistration,
    isr: &[NodeId],
    is_live: impl Fn(NodeId) -> bool,
    unclean: bool,
) -> Option<PartitionChangeRecord> {
    let change = |leader: NodeId, isr: Option<Vec<NodeId>>| PartitionChangeRecord {
        topic_id,
        partition,
        isr,
        leader: (leader != p.leader).then_some(leader),
        replicas: None,
        ..PartitionChangeRecord::default()
    };
    if let Some(&leader) = p.replicas.iter().find(|&&r| isr.contains(&r) && is_live(r)) {
        return Some(change(leader, (isr != p.isr.as_slice()).then(|| isr.to_vec())));
    }
    if unclean && let Some(&leader) = p.replicas.iter().find(|&&r| is_live(r)) {
        tracing::warn!(%topic_id, partition, leader, "unclean leader election: leader from outside the ISR");
        return Some(change(leader, Some(vec![leader])));
    }
    None
}

/// A reassignment's target: a non-empty list of distinct registered brokers (fenced ones included, as KRaft's
/// `validateManualPartitionAssignment`).
fn check_reassignment_target(image: &MetadataImage, target: &[NodeId]) -> Result<(), ControllerError> {
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".to_owned(),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    for id in sorted {
        if image.broker(id).is_none() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if !seen.insert(id) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
    }
    Ok(())
}

/// The change starting a reassignment of `p` to `target` (Kafka's `PartitionReassignmentReplicas`): the
/// replicas become the target followed by the current replicas outside it; those are the removing ones, and
/// the target's replicas outside the original ones (those before a reassignment under way added any) the adding
/// ones. Completes at once when every target replica is in the ISR.
fn reassign(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionRegistration,
    target: &[NodeId],
    is_live: impl Fn(NodeId) -> bool,
) -> PartitionChangeRecord {
    let original: Vec<NodeId> = p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
    let removing: Vec<NodeId> = p.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
    let adding: Vec<NodeId> = target.iter().copied().filter(|r| !original.contains(r)).collect();
    let replicas: Vec<NodeId> = target.iter().chain(&removing).copied().collect();
    let mut change = PartitionChangeRecord { topic_id, partition, ..PartitionChangeRecord::default() };
    if replicas != p.replicas {
        change.replicas = Some(replicas.clone());
    }
    if adding != p.adding_replicas {
        change.adding_replicas = Some(adding.clone());
    }
    if removing != p.removing_replicas {
        change.removing_replicas = Some(removing.clone());
    }
    complete_reassignment(p, &replicas, &adding, &removing, &p.isr, is_live, &mut change);
    change
}

/// Completes a reassignment (replicas `replicas`, `adding`, `removing`) in `change` when the ISR `isr` holds
/// every target replica (Kafka's `maybeCompleteReassignment`): the removing replicas leave the replicas and the
/// ISR, and a leader among them hands over to the first live target replica in the ISR. Nothing when no
/// reassignment is under way or it is not done.
fn complete_reassignment(
    p: &PartitionRegistration,
    replicas: &[NodeId],
    adding: &[NodeId],
    removing: &[NodeId],
    isr: &[NodeId],
    is_live: impl Fn(NodeId) -> bool,
    change: &mut PartitionChangeRecord,
) {
    if adding.is_empty() && removing.is_empty() {
        return;
    }
    let new_isr: Vec<NodeId> = isr.iter().copied().filter(|r| !removing.contains(r)).collect();
    let new_replicas: Vec<NodeId> = replicas.iter().copied().filter(|r| !removing.contains(r)).collect();
    if new_isr.is_empty() || !new_replicas.iter().all(|r| new_isr.contains(r)) {
        return;
    }
    if !new_isr.contains(&p.leader) || !is_live(p.leader) {
        let leader = new_replicas.iter().copied().find(|&r| new_isr.contains(&r) && is_live(r)).unwrap_or(NO_LEADER);
        change.leader = (leader != p.leader).then_some(leader);
    }
    change.replicas = (new_replicas != p.replicas).then_some(new_replicas);
    change.isr = (new_isr != p.isr).then_some(new_isr);
    change.adding_replicas = (!p.adding_replicas.is_empty()).then(Vec::new);
    change.removing_replicas = (!p.removing_replicas.is_empty()).then(Vec::new);
}

/// The change cancelling the reassignment under way (Kafka's `PartitionReassignmentRevert`): the adding
/// replicas leave the replicas and the ISR, and a leader among them hands back to the first live original
/// replica in the ISR. Refused when no original replica is in the ISR (only an unclean election could lead).
fn revert_reassignment(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionRegistration,
    is_live: impl Fn(NodeId) -> bool,
) -> Result<PartitionChangeRecord, ControllerError> {
    let replicas: Vec<NodeId> = p.replicas.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
    let isr: Vec<NodeId> = p.isr.iter().copied().filter(|r| !p.adding_replicas.contains(r)).collect();
    if isr.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Unable to revert partition assignment for {topic_id}-{partition} because it would require an unclean              leader election."
        )));
    }
    let mut change = PartitionChangeRecord {
        topic_id,
        partition,
        replicas: (replicas != p.replicas).then(|| replicas.clone()),
        isr: (isr != p.isr).then(|| isr.clone()),
        adding_replicas: Some(Vec::new()),
        removing_replicas: Some(Vec::new()),
        ..PartitionChangeRecord::default()
    };
    if !isr.contains(&p.leader) || !is_live(p.leader) {
        let leader = replicas.iter().copied().find(|&r| isr.contains(&r) && is_live(r)).unwrap_or(NO_LEADER);
        change.leader = (leader != p.leader).then_some(leader);
    }
    Ok(change)
}

/// The new leader of a preferred election, as Kafka's `PartitionChangeBuilder` picks it: the first replica
/// when it is live and in the ISR; else a current leader that is live and in the ISR keeps leading
/// (PREFERRED_LEADER_NOT_AVAILABLE); else (no usable leader) the first live ISR replica.
fn preferred_election(p: &PartitionRegistration, is_live: impl Fn(NodeId) -> bool) -> Result<NodeId, ControllerError> {
    let preferred = p.replicas.first().copied().unwrap_or(NO_LEADER);
    if p.leader == preferred {
        return Err(ControllerError::ElectionNotNeeded);
    }
    let eligible = |id: NodeId| id != NO_LEADER && p.isr.contains(&id) && is_live(id);
    if eligible(preferred) {
        return Ok(preferred);
    }
    let not_available = ControllerError::PreferredLeaderNotAvailable { preferred };
    if eligible(p.leader) {
        return Err(not_available);
    }
    p.replicas.iter().copied().find(|&id| eligible(id)).ok_or(not_available)
}

/// Automatic leader rebalance, with the per-broker threshold of Kafka's `auto.leader.rebalance.enable`: for
/// each broker, the partitions it is the preferred replica of (first in the replica list) and, among them,
/// those it does not lead. When that share exceeds `max_imbalance_percentage`, each such partition whose
/// preferred replica is live and in the ISR moves to it. At most `limit` elections.
fn rebalance_leaders(image: &MetadataImage, max_imbalance_percentage: u32, limit: usize) -> Vec<MetadataRecord> {
    let mut by_preferred: BTreeMap<NodeId, PreferredLeadership<'_>> = BTreeMap::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            let Some(&preferred) = p.replicas.first() else { continue };
            let share = by_preferred.entry(preferred).or_default();
            share.preferred += 1;
            if p.leader != preferred {
                share.led_elsewhere.push((topic.topic_id, partition, p));
            }
        }
    }
    let allowed = usize::try_from(max_imbalance_percentage).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (preferred, share) in by_preferred {
        // led_elsewhere / preferred > percentage / 100, in integers.
        let imbalanced = share.led_elsewhere.len().saturating_mul(100) > share.preferred.saturating_mul(allowed);
        if !imbalanced || !image.is_live(preferred) {
            continue;
        }
        for (topic_id, partition, p) in share.led_elsewhere {
            if out.len() >= limit {
                return out;
            }
            if p.isr.contains(&preferred) {
                out.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                    topic_id,
                    partition,
                    isr: None,
                    leader: Some(preferred),
                    replicas: None,
                    ..PartitionChangeRecord::default()
                }));
            }
        }
    }
    out
}

/// One broker's preferred leadership, for [`rebalance_leaders`].
#[derive(Default)]
struct PreferredLeadership<'a> {
    /// Partitions whose first replica is the broker.
    preferred: usize,
    /// Among them, those led by another broker or by none.
    led_elsewhere: Vec<(Uuid, i32, &'a PartitionRegistration)>,
}

/// Partition changes giving leaderless partitions to a broker that just became live and is in their ISR.
fn lead_leaderless(image: &MetadataImage, node_id: NodeId) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (&partition, p) in &topic.partitions {
            if p.leader == NO_LEADER && p.isr.contains(&node_id) {
                out.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
                    topic_id: topic.topic_id,
                    partition,
                    isr: None,
                    leader: Some(node_id),
                    replicas: None,
                    ..PartitionChangeRecord::default()
                }));
            }
        }
    }
    out
}

/// A new partition as KRaft creates one: the ISR is its unfenced replicas (empty replicas all hold the same
/// nothing), led by the first of them.
fn new_partition(image: &MetadataImage, topic_id: Uuid, partition: i32, replicas: Vec<NodeId>) -> PartitionRecord {
    let mut isr: Vec<NodeId> = replicas.iter().copied().filter(|&r| image.is_live(r)).collect();
    if isr.is_empty() {
        // Only an imported topic's own (not yet unfenced) node: it leads once it is unfenced.
        isr.clone_from(&replicas);
    }
    let leader = isr.first().copied().unwrap_or(NO_LEADER);
    PartitionRecord { topic_id, partition, isr, replicas, leader, leader_epoch: 0, partition_epoch: 0 }
}

/// Placement over every registered broker (as KRaft, fenced ones included) may give a partition only fenced
/// replicas: then one of them is swapped for an unfenced broker, and an unfenced replica goes first (the
/// preferred leader), so every new partition starts with a leader.
fn live_leaders(image: &MetadataImage, mut assignment: Vec<Vec<NodeId>>, first_partition: i32) -> Vec<Vec<NodeId>> {
    let live: Vec<NodeId> = image.live_brokers().map(|b| b.node_id).collect();
    for (offset, replicas) in assignment.iter_mut().enumerate() {
        if !replicas.iter().any(|r| live.contains(r)) {
            let p = usize::try_from(first_partition).unwrap_or(0) + offset;
            let spare = (0..live.len()).map(|i| live[(p + i) % live.len()]).find(|b| !replicas.contains(b));
            if let (Some(spare), Some(first)) = (spare, replicas.first_mut()) {
                *first = spare;
            }
        }
        if let Some(position) = replicas.iter().position(|r| live.contains(r)) {
            replicas[..=position].rotate_right(1);
        }
    }
    assignment
}

fn new_topic_id(image: &MetadataImage) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if image.topic_by_id(id).is_none() {
            return id;
        }
    }
}

/// Where replicas go: the unfenced brokers when there are enough of them, else every registered one (as
/// KRaft's placer prefers unfenced brokers and uses fenced ones only to reach the replication factor).
fn placement_pool(image: &MetadataImage, registered: Vec<Candidate>, rf: usize) -> Vec<Candidate> {
    let live: Vec<Candidate> = registered.iter().filter(|c| image.is_live(c.node_id)).cloned().collect();
    if live.len() >= rf { live } else { registered }
}

/// Every registered broker may take replicas (KRaft counts fenced ones too), but at least one must be unfenced.
fn candidates(image: &MetadataImage) -> Result<Vec<Candidate>, ControllerError> {
    if image.live_brokers().next().is_none() {
        return Err(ControllerError::InvalidReplicationFactor { requested: 0, available: 0 });
    }
    Ok(image.brokers().values().map(|b| Candidate { node_id: b.node_id, rack: b.rack.clone() }).collect())
}

fn check_partition_count(count: i32) -> Result<(), ControllerError> {
    if count < 1 {
        return Err(ControllerError::InvalidPartitions(format!("partition count {count} is below 1")));
    }
    if count > MAX_PARTITIONS_PER_REQUEST {
        return Err(ControllerError::InvalidPartitions(format!(
            "{count} partitions exceed {MAX_PARTITIONS_PER_REQUEST} per request"
        )));
    }
    Ok(())
}

fn check_replication_factor(requested: i32, available: usize) -> Result<usize, ControllerError> {
    match usize::try_from(requested) {
        Ok(rf) if rf >= 1 && rf <= available => Ok(rf),
        _ => Err(ControllerError::InvalidReplicationFactor { requested, available }),
    }
}

/// A manual assignment: `count` lists of `rf` distinct live brokers each.
fn check_assignments(
    image: &MetadataImage,
    assignments: &[Vec<NodeId>],
    count: i32,
    rf: usize,
) -> Result<(), ControllerError> {
    if usize::try_from(count).ok() != Some(assignments.len()) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "{} replica lists given for {count} partitions",
            assignments.len()
        )));
    }
    for replicas in assignments {
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() || replicas.len() != rf {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "replica list {replicas:?} must name {rf} distinct brokers"
            )));
        }
        if let Some(id) = replicas.iter().find(|&&id| image.broker(id).is_none()) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "broker {id} of replica list {replicas:?} is not registered"
            )));
        }
        if !replicas.iter().any(|&id| image.is_live(id)) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "every broker of replica list {replicas:?} is fenced: the partition would have no leader"
            )));
        }
    }
    Ok(())
}

fn check_broker_epoch(image: &MetadataImage, node_id: NodeId, epoch: i64) -> Result<(), ControllerError> {
    let broker = image.broker(node_id).ok_or(ControllerError::BrokerNotRegistered { node_id })?;
    if broker.broker_epoch != epoch {
        return Err(ControllerError::StaleBrokerEpoch { node_id, current: broker.broker_epoch, requested: epoch });
    }
    Ok(())
}

fn find_partition(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
) -> Result<&PartitionRegistration, ControllerError> {
    let topic = image.topic_by_id(topic_id).ok_or(ControllerError::UnknownTopicId(topic_id))?;
    topic
        .partitions
        .get(&partition)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition(format!("{}-{partition}", topic.name)))
}

fn validate_isr(image: &MetadataImage, p: &PartitionRegistration, isr: &[NodeId]) -> Result<(), ControllerError> {
    if isr.is_empty() {
        return Err(ControllerError::InvalidRequest("the ISR cannot be empty".to_owned()));
    }
    let distinct: BTreeSet<_> = isr.iter().collect();
    if distinct.len() != isr.len() {
        return Err(ControllerError::InvalidRequest(format!("duplicate replicas in ISR {isr:?}")));
    }
    if let Some(r) = isr.iter().find(|r| !p.replicas.contains(r)) {
        return Err(ControllerError::InvalidRequest(format!("ISR member {r} is not a replica of {:?}", p.replicas)));
    }
    if !isr.contains(&p.leader) {
        return Err(ControllerError::InvalidRequest(format!("the ISR {isr:?} must contain the leader {}", p.leader)));
    }
    if let Some(&replica) = isr.iter().find(|&&r| !image.is_live(r)) {
        return Err(ControllerError::IneligibleReplica { replica });
    }
    Ok(())
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(ControllerError::InvalidTopicName(format!("{name:?} is not a legal topic name")));
    }
    if name.len() > 249 {
        return Err(ControllerError::InvalidTopicName(format!("topic name is {} characters; at most 249", name.len())));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(ControllerError::InvalidTopicName(format!("{name:?} has characters outside [a-zA-Z0-9._-]")));
    }
    Ok(())
}

fn collides(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| x == y || (matches!(x, b'.' | b'_') && matches!(y, b'.' | b'_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(replicas: &[NodeId], isr: &[NodeId], leader: NodeId) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 3,
            partition_epoch: 7,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    #[test]
    fn election_prefers_replica_order_within_live_isr() {
        let p = partition(&[1, 2, 3], &[2, 3], NO_LEADER);
        let id = Uuid::nil();
        let change = elect(id, 0, &p, &p.isr, |r| r != 2, false).map(|c| c.leader);
        assert_eq!(change, Some(Some(3)));
        assert!(elect(id, 0, &p, &p.isr, |r| r == 1, false).is_none(), "1 is live but not in the ISR");
        let unclean = elect(id, 0, &p, &p.isr, |r| r == 1, true);
        assert_eq!(unclean.map(|c| (c.leader, c.isr)), Some((Some(1), Some(vec![1]))));
    }

    fn image_with_brokers(brokers: &[(NodeId, bool)]) -> MetadataImage {
        let records: Vec<MetadataRecord> = brokers
            .iter()
            .map(|&(node_id, fenced)| {
                MetadataRecord::RegisterBroker(RegisterBrokerRecord {
                    node_id,
                    incarnation_id: Uuid::new_v4(),
                    endpoints: Vec::new(),
                    rack: None,
                    fenced,
                })
            })
            .collect();
        let mut image = MetadataImage::default();
        image.apply(crate::image::MetadataOffset { index: 1, term: 1 }, &records);
        image
    }

    #[test]
    fn new_partitions_get_a_live_leader_and_an_isr_of_live_replicas() {
        let image = image_with_brokers(&[(1, false), (2, false), (3, true)]);
        let placed = live_leaders(&image, vec![vec![3, 1], vec![3], vec![2, 3]], 0);
        assert_eq!(placed, vec![vec![1, 3], vec![2], vec![2, 3]]);
        let p = new_partition(&image, Uuid::nil(), 0, vec![3, 1, 2]);
        assert_eq!((p.leader, p.isr), (1, vec![1, 2]));
        // Enough unfenced brokers: the fenced one is left out; too few: it is used to reach the factor.
        let registered = candidates(&image).expect("a live broker");
        let ids = |pool: Vec<Candidate>| pool.into_iter().map(|c| c.node_id).collect::<Vec<_>>();
        assert_eq!(ids(placement_pool(&image, registered.clone(), 2)), vec![1, 2]);
        assert_eq!(ids(placement_pool(&image, registered, 3)), vec![1, 2, 3]);
        assert!(candidates(&image_with_brokers(&[(1, true)])).is_err(), "every broker fenced");
    }

    /// A partition's state after `change`, as the image applies it (leader and partition epochs aside).
    fn applied(p: &PartitionRegistration, change: &PartitionChangeRecord) -> PartitionRegistration {
        let topic_id = Uuid::from_u128(7);
        let mut image = MetadataImage::default();
        let offset = crate::image::MetadataOffset { index: 1, term: 1 };
        let topic = TopicRecord { name: "t".to_owned(), topic_id, configs: BTreeMap::new() };
        let mut created = new_partition(&image, topic_id, 0, p.replicas.clone());
        (created.isr, created.leader, created.leader_epoch, created.partition_epoch) =
            (p.isr.clone(), p.leader, p.leader_epoch, p.partition_epoch);
        image.apply(offset, &[MetadataRecord::Topic(topic), MetadataRecord::Partition(created)]);
        let reassignment_under_way = PartitionChangeRecord {
            topic_id,
            adding_replicas: Some(p.adding_replicas.clone()),
            removing_replicas: Some(p.removing_replicas.clone()),
            ..PartitionChangeRecord::default()
        };
        let change = PartitionChangeRecord { topic_id, partition: 0, ..change.clone() };
        image.apply(
            offset,
            &[MetadataRecord::PartitionChange(reassignment_under_way), MetadataRecord::PartitionChange(change)],
        );
        let mut next = image.partition(topic_id, 0).cloned().expect("the partition");
        (next.leader_epoch, next.partition_epoch) = (p.leader_epoch, p.partition_epoch);
        next
    }

    #[test]
    fn a_reassignment_adds_first_and_removes_once_the_new_replicas_are_in_sync() {
        let id = Uuid::nil();
        let live = |_: NodeId| true;
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        // [1,2,3] -> [4,2,3]: 4 joins as a follower, 1 (the leader) stays until 4 is in sync.
        let started = applied(&p, &reassign(id, 0, &p, &[4, 2, 3], live));
        assert_eq!(
            (&started.replicas, &started.adding_replicas, &started.removing_replicas, &started.isr, started.leader),
            (&vec![4, 2, 3, 1], &vec![4], &vec![1], &vec![1, 2, 3], 1)
        );
        assert!(started.is_reassigning());
        assert_eq!(started.target_replicas(), vec![4, 2, 3]);
        // 4 joins the ISR but 2 has left it: not complete (every target replica must be in sync, as in KRaft).
        let (r, a, m) = (&started.replicas, &started.adding_replicas, &started.removing_replicas);
        let mut change = PartitionChangeRecord { isr: Some(vec![1, 3, 4]), ..PartitionChangeRecord::default() };
        complete_reassignment(&started, r, a, m, &[1, 3, 4], live, &mut change);
        assert_eq!((change.replicas, change.leader), (None, None));
        // With 2 back too it completes.
        let mut change = PartitionChangeRecord { isr: Some(vec![1, 3, 4, 2]), ..PartitionChangeRecord::default() };
        complete_reassignment(&started, r, a, m, &[1, 3, 4, 2], live, &mut change);
        let done = applied(&started, &change);
        assert_eq!(
            (&done.replicas, &done.isr, done.leader, done.is_reassigning()),
            (&vec![4, 2, 3], &vec![3, 4, 2], 4, false),
            "1 leaves; the first live in-sync target replica leads"
        );
        // Sending the same target again keeps it under way; replacing it keeps 4 adding and 1 removing.
        let again = applied(&started, &reassign(id, 0, &started, &[4, 2, 3], live));
        assert_eq!((&again.adding_replicas, &again.removing_replicas), (&vec![4], &vec![1]));
        let replaced = applied(&started, &reassign(id, 0, &started, &[4, 2], live));
        assert_eq!(
            (&replaced.replicas, &replaced.adding_replicas, &replaced.removing_replicas),
            (&vec![4, 2, 3, 1], &vec![4], &vec![3, 1])
        );
        // While 4 is not in sync nothing completes.
        let mut change = PartitionChangeRecord { isr: Some(vec![1, 2]), ..PartitionChangeRecord::default() };
        complete_reassignment(&started, r, a, m, &[1, 2], live, &mut change);
        assert_eq!((change.replicas, change.leader), (None, None));
    }

    #[test]
    fn a_reassignment_without_new_replicas_completes_at_once() {
        let id = Uuid::nil();
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let shrunk = applied(&p, &reassign(id, 0, &p, &[2, 3], |_| true));
        assert_eq!(
            (&shrunk.replicas, &shrunk.isr, shrunk.leader, shrunk.is_reassigning()),
            (&vec![2, 3], &vec![2, 3], 2, false)
        );
        // A removal waits while a remaining target replica is out of the ISR.
        let lagging = partition(&[1, 2, 3], &[1, 2], 1);
        let waiting = applied(&lagging, &reassign(id, 0, &lagging, &[2, 3], |_| true));
        assert_eq!((&waiting.replicas, &waiting.removing_replicas, waiting.leader), (&vec![2, 3, 1], &vec![1], 1));
        let reordered = reassign(id, 0, &p, &[3, 2, 1], |_| true);
        assert_eq!((reordered.replicas, reordered.isr, reordered.leader), (Some(vec![3, 2, 1]), None, None));
        // The same list again changes nothing.
        assert_eq!(
            reassign(id, 0, &p, &[1, 2, 3], |_| true),
            PartitionChangeRecord { topic_id: id, ..PartitionChangeRecord::default() }
        );
    }

    #[test]
    fn cancelling_a_reassignment_restores_the_original_replicas() {
        let id = Uuid::nil();
        let p = partition(&[1, 2], &[1, 2], 1);
        let started = applied(&p, &reassign(id, 0, &p, &[3, 4], |_| true));
        assert_eq!(
            (&started.replicas, &started.adding_replicas, &started.removing_replicas),
            (&vec![3, 4, 1, 2], &vec![3, 4], &vec![1, 2])
        );
        let in_sync = PartitionRegistration { isr: vec![1, 2, 3], ..started.clone() };
        let reverted = applied(&in_sync, &revert_reassignment(id, 0, &in_sync, |_| true).expect("revertible"));
        assert_eq!(
            (&reverted.replicas, &reverted.isr, reverted.leader, reverted.is_reassigning()),
            (&vec![1, 2], &vec![1, 2], 1, false)
        );
        // Only adding replicas in sync: reverting would need an unclean election.
        let only_new = PartitionRegistration { isr: vec![3], leader: 3, ..started };
        assert!(matches!(
            revert_reassignment(id, 0, &only_new, |_| true),
            Err(ControllerError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn preferred_election_follows_kafka() {
        let live = |r: NodeId| r != 4;
        let elected =
            |replicas: &[NodeId], isr: &[NodeId], leader| preferred_election(&partition(replicas, isr, leader), live);
        assert_eq!(elected(&[1, 2, 3], &[1, 2, 3], 1), Err(ControllerError::ElectionNotNeeded));
        assert_eq!(elected(&[1, 2, 3], &[1, 2, 3], 2), Ok(1));
        let not_available = |preferred| Err(ControllerError::PreferredLeaderNotAvailable { preferred });
        assert_eq!(elected(&[1, 2, 3], &[2, 3], 2), not_available(1), "out of the ISR");
        assert_eq!(elected(&[4, 2, 3], &[4, 2, 3], 2), not_available(4), "fenced");
        // Without a usable leader the first live ISR replica takes over, as Kafka's PartitionChangeBuilder does.
        assert_eq!(elected(&[1, 2, 3], &[3], NO_LEADER), Ok(3));
        assert_eq!(elected(&[1, 4], &[4], NO_LEADER), not_available(1));
    }

    #[test]
    fn rebalance_moves_leaders_of_brokers_above_the_imbalance_threshold() {
        let mut image = image_with_brokers(&[(1, false), (2, false), (3, false)]);
        let topic_id = Uuid::new_v4();
        // Ten partitions preferring broker 1: partitions 0 and 1 led by 2 (1 in the ISR of 0 only), the rest
        // by 1; one partition preferring broker 3 led by 2.
        let mut records =
            vec![MetadataRecord::Topic(TopicRecord { name: "t".into(), topic_id, configs: BTreeMap::new() })];
        for partition in 0..11 {
            let (replicas, isr, leader) = match partition {
                0 => (vec![1, 2], vec![1, 2], 2),
                1 => (vec![1, 2], vec![2], 2),
                10 => (vec![3, 2], vec![3, 2], 2),
                _ => (vec![1, 2], vec![1, 2], 1),
            };
            records.push(MetadataRecord::Partition(PartitionRecord {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
            }));
        }
        image.apply(crate::image::MetadataOffset { index: 2, term: 1 }, &records);
        let moved = |percentage, limit| {
            rebalance_leaders(&image, percentage, limit)
                .into_iter()
                .map(|r| match r {
                    MetadataRecord::PartitionChange(c) => (c.partition, c.leader),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        // Broker 1: 2 of 10 led elsewhere (20 %); broker 3: 1 of 1 (100 %).
        assert_eq!(moved(10, 100), vec![(0, Some(1)), (10, Some(3))], "partition 1's preferred is out of the ISR");
        assert_eq!(moved(20, 100), vec![(10, Some(3))], "20 % does not exceed 20 %");
        assert_eq!(moved(100, 100), Vec::new());
        assert_eq!(moved(0, 1), vec![(0, Some(1))], "bounded per check");
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1-x_y").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.c"));
    }
}
