//! [`MetadataQuorum`]: one node's membership in the metadata quorum — storage, Raft, the controller
//! listener, bootstrap, broker-session expiry — and [`ControllerClient`], which runs controller operations
//! on whichever node leads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{BasicNode, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::QuorumConfig;
use crate::controller::{Controller, ControllerRequest, ControllerResponse, Op, ProducerIdBlock};
use crate::error::{ControllerError, QuorumError};
use crate::image::{MetadataImage, PartitionRegistration};
use crate::network::{
    self, CallError, ClientSettings, HelloReply, Identity, KIND_HELLO, KIND_PROPOSE, NetworkFactory, PeerConnection,
    PeerStats, ServerContext,
};
use crate::records::{ConfigResource, Endpoint, NodeId};
use crate::storage::{DbClosed, LogStore, MetadataDb, StateMachine};
use crate::types::{Raft, RaftNodeId, kafka_id, raft_id};

/// One voter's (or observer's) replication state, as DescribeQuorum reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoterStatus {
    /// The voter.
    pub node_id: NodeId,
    /// Its log end offset (last index + 1) as the leader knows it; -1 when unknown.
    pub log_end_offset: i64,
    /// When the leader last heard from it (ms since the epoch); `None` when unknown.
    pub last_fetch_timestamp_ms: Option<i64>,
    /// When it was last caught up with the leader's log end (ms since the epoch); `None` when unknown.
    pub last_caught_up_timestamp_ms: Option<i64>,
}

/// The quorum as this node sees it (complete only on the leader, as in KRaft's DescribeQuorum).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumStatus {
    /// The leader, if known.
    pub leader_id: Option<NodeId>,
    /// The current Raft term (KRaft's leader epoch).
    pub leader_epoch: u64,
    /// Applied log end (last applied index + 1), which on the leader is the committed end.
    pub high_watermark: i64,
    /// Every voter.
    pub voters: Vec<VoterStatus>,
    /// The observers (non-voting learners) in the membership this node knows, KRaft's `CurrentObservers`;
    /// their progress is known on the leader only.
    #[serde(default)]
    pub observers: Vec<VoterStatus>,
}

/// DescribeQuorum answered by this node: only the leader knows every voter's progress.
fn describe_quorum_here(inner: &Inner) -> Result<ControllerResponse, ControllerError> {
    let voters: Vec<NodeId> = inner.config.voters.iter().map(|(id, _)| *id).collect();
    let status = quorum_status(&inner.raft, &inner.stats, inner.node_id, &voters);
    if status.leader_id != Some(inner.node_id) {
        return Err(ControllerError::NotController { leader_id: status.leader_id });
    }
    Ok(ControllerResponse::Quorum(status))
}

/// The quorum status from one node's Raft metrics and peer statistics: the configured voters, and as
/// observers the learners of the membership this node has seen.
pub(crate) fn quorum_status(raft: &Raft, stats: &PeerStats, node_id: NodeId, voters: &[NodeId]) -> QuorumStatus {
    let m = raft.metrics().borrow().clone();
    let now = network::now_ms();
    let leading = m.state == ServerState::Leader;
    let to_offset = |index: Option<u64>| index.and_then(|i| i64::try_from(i).ok()).map_or(-1, |i| i + 1);
    let observers: Vec<NodeId> =
        m.membership_config.membership().learner_ids().map(kafka_id).filter(|id| !voters.contains(id)).collect();
    let progress = |&id: &NodeId| {
        if id == node_id {
            return VoterStatus {
                node_id: id,
                log_end_offset: to_offset(m.last_log_index),
                last_fetch_timestamp_ms: leading.then_some(now),
                last_caught_up_timestamp_ms: leading.then_some(now),
            };
        }
        let matched = m.replication.as_ref().and_then(|r| r.get(&raft_id(id)).cloned().flatten());
        let stat = stats.get(id);
        VoterStatus {
            node_id: id,
            log_end_offset: if leading { to_offset(matched.map(|l| l.index)) } else { -1 },
            last_fetch_timestamp_ms: if leading { stat.last_fetch_ms } else { None },
            last_caught_up_timestamp_ms: if leading { stat.last_caught_up_ms } else { None },
        }
    };
    QuorumStatus {
        leader_id: m.current_leader.map(kafka_id),
        leader_epoch: m.current_term,
        high_watermark: to_offset(m.last_applied.map(|l| l.index)),
        voters: voters.iter().map(progress).collect(),
        observers: observers.iter().map(progress).collect(),
    }
}

struct Inner {
    node_id: NodeId,
    config: QuorumConfig,
    raft: Raft,
    controller: Arc<Controller>,
    image: watch::Receiver<Arc<MetadataImage>>,
    identity: Arc<Identity>,
    stats: Arc<PeerStats>,
    settings: ClientSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
    db_closed: Mutex<Option<DbClosed>>,
    local_addr: SocketAddr,
    /// Where other nodes reach this one (an observer announces it in AddObserver).
    advertised: SocketAddr,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without shutdown(): still stop our tasks; openraft stops once its handles are gone.
        self.cancel.cancel();
    }
}

/// A running member of the metadata quorum (clones share it).
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.inner.node_id)
            .field("listen", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl MetadataQuorum {
    /// Opens the data directory, starts Raft and the controller listener, and (on the lowest-id voter of
    /// a cluster nobody has initialized yet) bootstraps the membership.
    ///
    /// An observer ([`QuorumConfig::observer`]) returns as soon as it runs; it asks the leader to add it as
    /// a learner in the background (every 500 ms until its membership shows it at its advertised address)
    /// and applies the log from then on. Its [`controller`](Self::controller) works at once (operations are
    /// forwarded to the leader, found through the voters until the leader contacts this node);
    /// [`is_member`](Self::is_member) and [`wait_for_applied`](Self::wait_for_applied) tell when it follows.
    pub async fn start(config: QuorumConfig) -> Result<MetadataQuorum, QuorumError> {
        config.validate()?;
        let dir = config.metadata_dir();
        let node_id = config.node_id;
        let configured = config.cluster_id.clone();
        let (db, cluster_id, db_closed) =
            tokio::task::spawn_blocking(move || MetadataDb::open(&dir, node_id, configured.as_deref()))
                .await
                .map_err(|e| QuorumError::Storage(e.to_string()))??;

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| QuorumError::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| QuorumError::Listen { addr: config.listen, source })?;
        // `validate` made sure an observer on a wildcard listener has an advertised address.
        let advertised = config.advertised.unwrap_or(local_addr);

        let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::default()));
        let image_tx = Arc::new(image_tx);
        let state_machine = StateMachine::open(Arc::clone(&db), Arc::clone(&image_tx)).await?;
        let log_store = LogStore::new(Arc::clone(&db));

        let voters: BTreeMap<RaftNodeId, SocketAddr> = config.voters.iter().map(|(id, a)| (raft_id(*id), *a)).collect();
        let identity = Arc::new(Identity::new(node_id, cluster_id, Arc::clone(&db)));
        let stats = Arc::new(PeerStats::default());
        let settings = ClientSettings {
            bind: config.outgoing_bind(),
            connect_timeout: config.connect_timeout(),
            request_timeout: config.request_timeout(),
            max_frame_bytes: config.max_frame_bytes,
            tls: config.tls.clone(),
            hosts: Arc::new(config.voter_hosts.clone()),
        };
        let factory = NetworkFactory {
            voters: voters.clone(),
            settings: settings.clone(),
            identity: Arc::clone(&identity),
            stats: Arc::clone(&stats),
        };

        let raft_config = openraft::Config {
            cluster_name: "skein-metadata".to_owned(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            install_snapshot_timeout: config.operation_timeout_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
            max_in_snapshot_log_to_keep: config.entries_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(vec![e.to_string()]))?;
        let raft = Raft::new(raft_id(node_id), Arc::new(raft_config), factory, log_store, state_machine)
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        drop(image_tx);

        let controller = Arc::new(Controller::new(
            raft_id(node_id),
            raft.clone(),
            image_rx.clone(),
            config.session_timeout(),
            config.unclean_leader_election_enable,
            config.operation_timeout(),
        ));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ctx = Arc::new(ServerContext {
            node_id,
            stats: Arc::clone(&stats),
            raft: raft.clone(),
            controller: Arc::clone(&controller),
            identity: Arc::clone(&identity),
            voters,
            max_frame_bytes: config.max_frame_bytes,
            tls: config.tls.clone(),
        });
        tracker.spawn(network::serve(listener, ctx, config.max_connections, cancel.child_token(), tracker.clone()));

        let inner = Arc::new(Inner {
            node_id,
            config,
            raft,
            controller,
            image: image_rx,
            identity,
            stats,
            settings,
            cancel,
            tracker,
            db_closed: Mutex::new(Some(db_closed)),
            local_addr,
            advertised,
        });
        drop(db);
        spawn_metrics_task(&inner);
        spawn_session_task(&inner);
        spawn_leader_rebalance_task(&inner);
        let lowest = inner.config.voters.iter().map(|(id, _)| *id).min();
        if inner.config.observer {
            spawn_join_task(&inner);
        } else if lowest == Some(node_id) {
            spawn_bootstrap_task(&inner);
        }
        let observer = inner.config.observer;
        tracing::info!(node_id, listen = %local_addr, observer, "metadata quorum member started");
        Ok(MetadataQuorum { inner })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The address the controller listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The controller address other nodes reach this node at ([`QuorumConfig::advertised`], else the bound
    /// address).
    pub fn advertised_addr(&self) -> SocketAddr {
        self.inner.advertised
    }

    /// Whether this node is a non-voting observer ([`QuorumConfig::observer`]).
    pub fn is_observer(&self) -> bool {
        self.inner.config.observer
    }

    /// Whether the Raft membership this node has seen includes it: a voter once the quorum is bootstrapped,
    /// an observer once the leader added it as a learner at its advertised address and told it so.
    pub fn is_member(&self) -> bool {
        member_state(&self.inner) == Member::Current
    }

    /// The cluster id, once known (configured, stored, learned from a voter, or generated at bootstrap).
    pub fn cluster_id(&self) -> Option<String> {
        self.inner.identity.cluster_id()
    }

    /// The current image: a consistent view that stays valid while held.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.inner.image.borrow())
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.image.clone()
    }

    /// Waits until the image has applied the log up to `index`; `None` if the quorum stops first.
    pub async fn wait_for_applied(&self, index: u64) -> Option<Arc<MetadataImage>> {
        let mut rx = self.inner.image.clone();
        loop {
            {
                let image = rx.borrow_and_update();
                if image.last_applied().is_some_and(|o| o.index >= index) {
                    return Some(Arc::clone(&image));
                }
            }
            tokio::select! {
                () = self.inner.cancel.cancelled() => return None,
                changed = rx.changed() => if changed.is_err() { return None },
            }
        }
    }

    /// A disagreement on the cluster id with another voter (this node's data directory belongs to another
    /// cluster, or a voter's does), if one was seen.
    pub fn cluster_id_conflict(&self) -> Option<String> {
        self.inner.identity.conflict()
    }

    /// The quorum leader as this node knows it.
    pub fn leader_id(&self) -> Option<NodeId> {
        self.inner.controller.leader_id()
    }

    /// Whether this node leads the quorum now.
    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(raft_id(self.inner.node_id))
    }

    /// Runs controller operations on the leader, forwarding from here when needed.
    pub fn controller(&self) -> ControllerClient {
        ControllerClient { inner: Arc::clone(&self.inner) }
    }

    /// DescribeQuorum's view as this node has it: leader, epoch, high watermark and each voter's progress
    /// (known on the leader only; [`ControllerClient::describe_quorum`] asks the leader).
    pub fn status(&self) -> QuorumStatus {
        let voters: Vec<NodeId> = self.inner.config.voters.iter().map(|(id, _)| *id).collect();
        quorum_status(&self.inner.raft, &self.inner.stats, self.inner.node_id, &voters)
    }

    /// The voters with their replication progress (`status().voters`).
    pub fn voters(&self) -> Vec<VoterStatus> {
        self.status().voters
    }

    /// Takes a snapshot of the applied image now and waits (up to the operation timeout) until it is stored.
    pub async fn snapshot(&self) -> Result<(), QuorumError> {
        let target = self.inner.raft.metrics().borrow().last_applied.map(|l| l.index);
        self.inner.raft.trigger().snapshot().await.map_err(|e| QuorumError::Raft(e.to_string()))?;
        self.inner
            .raft
            .wait(Some(self.inner.config.operation_timeout()))
            .metrics(|m| m.snapshot.map(|s| s.index) >= target, "snapshot taken")
            .await
            .map(|_| ())
            .map_err(|e| QuorumError::Raft(e.to_string()))
    }

    /// The index of the last snapshot and of the last purged entry, for observing compaction.
    pub fn snapshot_state(&self) -> (Option<u64>, Option<u64>) {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        (m.snapshot.map(|s| s.index), m.purged.map(|p| p.index))
    }

    /// Stops the listener, the background tasks and Raft, and closes the database (so the directory can
    /// be opened again, by this process too).
    pub async fn shutdown(self) -> Result<(), QuorumError> {
        let inner = &self.inner;
        inner.cancel.cancel();
        inner.tracker.close();
        let raft_result = inner.raft.shutdown().await.map_err(|e| QuorumError::Raft(e.to_string()));
        if tokio::time::timeout(Duration::from_secs(10), inner.tracker.wait()).await.is_err() {
            tracing::warn!("metadata quorum tasks did not stop within 10 s");
        }
        inner.identity.release_db();
        let closed = inner.db_closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        drop(self);
        // openraft's storage tasks end shortly after shutdown; wait until they let go and RocksDB is closed.
        if let Some(closed) = closed
            && tokio::time::timeout(Duration::from_secs(10), closed).await.is_err()
        {
            return Err(QuorumError::Storage("metadata database still open 10 s after shutdown".to_owned()));
        }
        raft_result
    }
}

#[derive(PartialEq, Eq)]
enum Member {
    /// Not in the membership this node has seen.
    No,
    /// In it, but at another address (an observer restarted on another port).
    Moved,
    /// In it at its advertised address (voters: in it at all).
    Current,
}

fn member_state(inner: &Inner) -> Member {
    let m = inner.raft.metrics();
    let m = m.borrow();
    let membership = m.membership_config.membership();
    match membership.get_node(&raft_id(inner.node_id)) {
        None => Member::No,
        Some(_) if !inner.config.observer => Member::Current,
        Some(node) if node.addr == inner.advertised.to_string() => Member::Current,
        Some(_) => Member::Moved,
    }
}

/// On an observer: ask the leader (AddObserver, forwarded like any operation) to add this node as a learner
/// at its advertised address, every 500 ms until the membership this node receives shows it there. A
/// restarted observer asks again (harmless: the leader answers Done without a change when nothing moved).
fn spawn_join_task(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.child_token();
    inner.tracker.spawn(async move {
        let mut answered = false;
        let mut attempts = 0u64;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            if answered && member_state(&inner) == Member::Current {
                tracing::info!(node_id = inner.node_id, advertised = %inner.advertised, "observer joined the metadata quorum");
                return;
            }
            let request =
                ControllerRequest::AddObserver { node_id: inner.node_id, address: inner.advertised.to_string() };
            let client = ControllerClient { inner: Arc::clone(&inner) };
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                result = client.submit(request) => result,
            };
            attempts += 1;
            match result {
                Ok(_) => answered = true,
                Err(ControllerError::InvalidRequest(reason)) => {
                    tracing::error!(node_id = inner.node_id, %reason, "the quorum refused this observer; not retrying");
                    return;
                }
                // Logged loudly only now and then: the voters may simply not be up yet.
                Err(err) if attempts % 20 == 1 => {
                    tracing::warn!(node_id = inner.node_id, %err, attempts, "observer cannot join the quorum yet; retrying");
                }
                Err(err) => tracing::debug!(node_id = inner.node_id, %err, "observer join attempt failed"),
            }
            drop(client);
            drop(inner);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

fn spawn_metrics_task(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let mut metrics = inner.raft.metrics();
    let cancel = inner.cancel.child_token();
    inner.tracker.spawn(async move {
        let mut last_leader = None;
        loop {
            {
                let Some(inner) = weak.upgrade() else { return };
                let m = metrics.borrow_and_update();
                inner.stats.leader_last_index.store(m.last_log_index.unwrap_or(0), Ordering::Relaxed);
                if m.current_leader != last_leader {
                    last_leader = m.current_leader;
                    inner.stats.clear();
                    tracing::info!(node_id = inner.node_id, leader = ?last_leader.map(kafka_id), term = m.current_term, "metadata quorum leader changed");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
        }
    });
}

fn spawn_session_task(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.child_token();
    let period = (inner.config.session_timeout() / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    inner.tracker.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            for (node_id, broker_epoch) in inner.controller.expired_sessions() {
                let op = Op::ExpireSession { node_id, broker_epoch };
                let result = tokio::select! {
                    () = cancel.cancelled() => return,
                    result = inner.controller.run(op) => result,
                };
                if let Err(err) = result {
                    tracing::debug!(node_id, %err, "fencing an expired broker failed; retrying next tick");
                }
            }
        }
    });
}

/// `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds` the quorum leader moves
/// leadership back to preferred replicas of imbalanced brokers. The first check comes one interval after
/// start, as in Kafka; elections past the per-check bound wait for the next one.
fn spawn_leader_rebalance_task(inner: &Arc<Inner>) {
    if !inner.config.auto_leader_rebalance_enable {
        return;
    }
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.child_token();
    let period = inner.config.leader_imbalance_check_interval();
    let max_imbalance_percentage = inner.config.leader_imbalance_per_broker_percentage;
    inner.tracker.spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            if !inner.controller.is_leading() {
                continue;
            }
            let op = Op::RebalanceLeaders { max_imbalance_percentage };
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                result = inner.controller.run(op) => result,
            };
            if let Err(err) = result {
                tracing::debug!(%err, "leader rebalance failed; retrying next check");
            }
        }
    });
}

/// Kafka-style cluster id: a random UUID in unpadded base64url (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = Uuid::new_v4().as_u128();
    // 128 bits = 21 full 6-bit groups + 2 bits; emit 22 symbols from the most significant end.
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let bits = if shift >= 0 { (value >> shift) & 0x3f } else { (value << -shift) & 0x3f };
            char::from(ALPHABET[usize::try_from(bits).unwrap_or(0) & 0x3f])
        })
        .collect()
}

/// On the lowest-id voter: initialize the membership once a majority of voters answer that they are not
/// initialized and none says it is (as `kafka-storage format` does once for a new cluster).
fn spawn_bootstrap_task(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let cancel = inner.cancel.child_token();
    inner.tracker.spawn(async move {
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                outcome = try_bootstrap(&inner) => outcome,
            };
            match outcome {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => tracing::warn!(%err, "metadata quorum bootstrap failed; retrying"),
            }
            drop(inner);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

/// One bootstrap attempt; `Ok(true)` when there is nothing more to do.
async fn try_bootstrap(inner: &Inner) -> Result<bool, String> {
    if inner.raft.is_initialized().await.map_err(|e| e.to_string())? {
        return Ok(true);
    }
    let mut uninitialized = 1; // this node
    let mut learned_cluster_id = None;
    for (id, addr) in &inner.config.voters {
        if *id == inner.node_id {
            continue;
        }
        let mut conn = PeerConnection::new(*id, Some(*addr), inner.settings.clone(), Arc::clone(&inner.identity));
        match conn.call::<_, HelloReply>(KIND_HELLO, (), inner.settings.request_timeout).await {
            Ok(reply) if reply.initialized => {
                // Someone has the cluster already: it will contact us; never start a second one.
                tracing::info!(peer = id, "a voter is initialized already; not bootstrapping");
                return Ok(true);
            }
            Ok(reply) => {
                uninitialized += 1;
                learned_cluster_id = learned_cluster_id.or(reply.cluster_id);
            }
            Err(err) => tracing::debug!(peer = id, %err, "bootstrap probe failed"),
        }
    }
    let majority = inner.config.voters.len() / 2 + 1;
    if uninitialized < majority {
        return Ok(false);
    }
    let cluster_id = match inner.identity.cluster_id() {
        Some(id) => id,
        None => inner.identity.adopt(&learned_cluster_id.unwrap_or_else(new_cluster_id)).await?,
    };
    let members: BTreeMap<RaftNodeId, BasicNode> =
        inner.config.voters.iter().map(|(id, addr)| (raft_id(*id), BasicNode::new(addr))).collect();
    match inner.raft.initialize(members).await {
        Ok(()) => {
            tracing::info!(%cluster_id, voters = inner.config.voters.len(), "metadata quorum bootstrapped");
            Ok(true)
        }
        Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(true),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs controller operations on the quorum leader: locally when this node leads, else forwarded.
/// Retries while there is no leader (or the leader moves) until the operation timeout.
#[derive(Clone)]
pub struct ControllerClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ControllerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerClient").field("node_id", &self.inner.node_id).finish()
    }
}

fn unexpected(response: &ControllerResponse) -> ControllerError {
    ControllerError::Unavailable(format!("unexpected controller response {response:?}"))
}

impl ControllerClient {
    /// Sends one operation to the leader and returns its answer.
    ///
    /// The leader is the one Raft names here, or the one a `NotController` answer named. An observer that
    /// knows none (not yet a learner, or its leader is gone) asks the voters in turn.
    pub async fn submit(&self, request: ControllerRequest) -> Result<ControllerResponse, ControllerError> {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + inner.config.operation_timeout();
        let mut metrics = inner.raft.metrics();
        // A leader named by the last NotController answer, tried next.
        let mut hint: Option<NodeId> = None;
        // On an observer: the node that just failed as the leader, skipped once in favour of a voter probe.
        let mut last_failed: Option<NodeId> = None;
        let mut probe = 0usize;
        // Hints followed without pausing (bounds a chase between nodes that name each other).
        let mut hops = 0u32;
        loop {
            let known = inner.controller.leader_id();
            let failed = last_failed.take();
            let target =
                hint.take().or(known.filter(|id| Some(*id) != failed)).or_else(|| self.probe_voter(&mut probe));
            let attempt = match target {
                Some(id) if id == inner.node_id && request == ControllerRequest::DescribeQuorum => {
                    describe_quorum_here(inner)
                }
                Some(id) if id == inner.node_id => inner.controller.execute(request.clone()).await,
                Some(id) => self.forward(id, request.clone(), deadline).await,
                None => Err(ControllerError::NotController { leader_id: None }),
            };
            match attempt {
                Err(ControllerError::NotController { leader_id }) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ControllerError::NotController { leader_id: leader_id.or(known) });
                    }
                    match leader_id {
                        Some(next) if Some(next) != target && next != inner.node_id && hops < 3 => {
                            hops += 1;
                            hint = Some(next);
                            continue;
                        }
                        // An observer asks a voter next time instead (its leader may be gone).
                        _ if inner.config.observer => last_failed = target,
                        _ => {}
                    }
                    hops = 0;
                    // Wait for a leader change (or a short while), then try again.
                    tokio::select! {
                        () = inner.cancel.cancelled() => return Err(ControllerError::Unavailable("quorum stopped".to_owned())),
                        _ = metrics.changed() => {}
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                other => return other,
            }
        }
    }

    /// On an observer: the next voter to ask (round robin); voters wait for an election instead.
    fn probe_voter(&self, probe: &mut usize) -> Option<NodeId> {
        let inner = &self.inner;
        if !inner.config.observer || inner.config.voters.is_empty() {
            return None;
        }
        let (id, _) = inner.config.voters[*probe % inner.config.voters.len()];
        *probe = probe.wrapping_add(1);
        Some(id)
    }

    async fn forward(
        &self,
        leader: NodeId,
        request: ControllerRequest,
        deadline: tokio::time::Instant,
    ) -> Result<ControllerResponse, ControllerError> {
        let inner = &self.inner;
        // A configured voter's address; else the one in the membership (a leader always is a voter).
        let addr = inner.config.voters.iter().find(|(id, _)| *id == leader).map(|(_, a)| *a).or_else(|| {
            let m = inner.raft.metrics();
            let m = m.borrow();
            m.membership_config.membership().get_node(&raft_id(leader)).and_then(|n| n.addr.parse().ok())
        });
        let mut conn = PeerConnection::new(leader, addr, inner.settings.clone(), Arc::clone(&inner.identity));
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let reply: Result<Result<ControllerResponse, ControllerError>, CallError> =
            conn.call(KIND_PROPOSE, request, remaining.max(Duration::from_millis(1))).await;
        match reply {
            Ok(result) => result,
            // Never reached the leader: safe to look for it again.
            Err(err) if err.not_sent() => {
                tracing::debug!(leader, %err, "forwarding to the controller failed");
                Err(ControllerError::NotController { leader_id: None })
            }
            Err(CallError::Timeout(_)) => Err(ControllerError::Timeout),
            Err(err) => Err(ControllerError::Unavailable(err.to_string())),
        }
    }

    /// DescribeQuorum as the quorum leader sees it (every voter's progress), asked of the leader.
    pub async fn describe_quorum(&self) -> Result<QuorumStatus, ControllerError> {
        match self.submit(ControllerRequest::DescribeQuorum).await? {
            ControllerResponse::Quorum(status) => Ok(status),
            other => Err(unexpected(&other)),
        }
    }

    /// Registers a broker process; answers its broker epoch.
    pub async fn register_broker(
        &self,
        node_id: NodeId,
        incarnation_id: Uuid,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
    ) -> Result<i64, ControllerError> {
        match self.submit(ControllerRequest::RegisterBroker { node_id, incarnation_id, endpoints, rack }).await? {
            ControllerResponse::BrokerRegistered { broker_epoch } => Ok(broker_epoch),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes a broker's registration (UnregisterBroker).
    pub async fn unregister_broker(&self, node_id: NodeId) -> Result<(), ControllerError> {
        match self.submit(ControllerRequest::UnregisterBroker { node_id }).await? {
            ControllerResponse::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// A broker heartbeat; answers whether the broker is fenced afterwards.
    pub async fn heartbeat(
        &self,
        node_id: NodeId,
        broker_epoch: i64,
        want_fence: bool,
    ) -> Result<bool, ControllerError> {
        match self.submit(ControllerRequest::BrokerHeartbeat { node_id, broker_epoch, want_fence }).await? {
            ControllerResponse::Heartbeat { fenced } => Ok(fenced),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates a topic with replicas placed over the unfenced brokers.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<(Uuid, BTreeMap<i32, PartitionRegistration>), ControllerError> {
        let request = ControllerRequest::CreateTopic {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs,
            assignments: Vec::new(),
        };
        match self.submit(request).await? {
            ControllerResponse::TopicCreated { topic_id, partitions } => Ok((topic_id, partitions)),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ControllerError> {
        self.submit(ControllerRequest::DeleteTopic { name: name.to_owned() }).await.map(|_| ())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<(), ControllerError> {
        let request = ControllerRequest::CreatePartitions { name: name.to_owned(), count, assignments: Vec::new() };
        self.submit(request).await.map(|_| ())
    }

    /// Sets (`Some`) or deletes (`None`) config keys of one resource.
    pub async fn alter_configs(
        &self,
        resource: ConfigResource,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), ControllerError> {
        self.submit(ControllerRequest::AlterConfigs { resource, changes }).await.map(|_| ())
    }

    /// Deletes and sets SCRAM credentials; answers the users whose alterations failed, with why.
    pub async fn alter_scram_credentials(
        &self,
        deletions: Vec<(String, i8)>,
        upsertions: Vec<crate::records::UserScramCredentialRecord>,
    ) -> Result<Vec<(String, ControllerError)>, ControllerError> {
        match self.submit(ControllerRequest::AlterScramCredentials { deletions, upsertions }).await? {
            ControllerResponse::ScramCredentialsAltered { failed } => Ok(failed),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets and removes client quota values.
    pub async fn alter_client_quotas(
        &self,
        changes: Vec<crate::quota::ClientQuotaRecord>,
    ) -> Result<(), ControllerError> {
        self.submit(ControllerRequest::AlterClientQuotas { changes }).await.map(|_| ())
    }

    /// Adds the ACLs not yet present.
    pub async fn create_acls(&self, bindings: Vec<crate::acl::AclBinding>) -> Result<(), ControllerError> {
        self.submit(ControllerRequest::CreateAcls { bindings }).await.map(|_| ())
    }

    /// Deletes every ACL a filter matches; answers, per filter, the ACLs it matched.
    pub async fn delete_acls(
        &self,
        filters: Vec<crate::acl::AclFilter>,
    ) -> Result<Vec<Vec<crate::acl::AclBinding>>, ControllerError> {
        match self.submit(ControllerRequest::DeleteAcls { filters }).await? {
            ControllerResponse::AclsDeleted { matched } => Ok(matched),
            other => Err(unexpected(&other)),
        }
    }

    /// AlterPartition from a partition leader; answers the partition's new state.
    #[allow(clippy::too_many_arguments)]
    pub async fn alter_partition(
        &self,
        broker_id: NodeId,
        broker_epoch: i64,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<NodeId>,
    ) -> Result<PartitionRegistration, ControllerError> {
        let request = ControllerRequest::AlterPartition {
            broker_id,
            broker_epoch,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        };
        self.submit_for_partition(request).await
    }

    /// Submits an operation that answers a partition's new state.
    async fn submit_for_partition(&self, request: ControllerRequest) -> Result<PartitionRegistration, ControllerError> {
        match self.submit(request).await? {
            ControllerResponse::Partition(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// A block of producer ids for a broker.
    pub async fn allocate_producer_ids(
        &self,
        node_id: NodeId,
        broker_epoch: i64,
    ) -> Result<ProducerIdBlock, ControllerError> {
        match self.submit(ControllerRequest::AllocateProducerIds { node_id, broker_epoch }).await? {
            ControllerResponse::ProducerIds(block) => Ok(block),
            other => Err(unexpected(&other)),
        }
    }

    /// Brings a topic from a one-node data directory of before the quorum into the metadata log.
    pub async fn import_topic(
        &self,
        node_id: NodeId,
        name: &str,
        topic_id: Uuid,
        leader_epochs: Vec<i32>,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        let request =
            ControllerRequest::ImportTopic { node_id, name: name.to_owned(), topic_id, leader_epochs, configs };
        self.submit(request).await.map(|_| ())
    }

    /// Makes every producer id allocated from now on at least `below`.
    pub async fn reserve_producer_ids(&self, below: i64) -> Result<(), ControllerError> {
        self.submit(ControllerRequest::ReserveProducerIds { below }).await.map(|_| ())
    }

    /// ElectLeaders PREFERRED for one partition: makes its first replica the leader; answers the new state.
    pub async fn elect_preferred_leader(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<PartitionRegistration, ControllerError> {
        self.submit_for_partition(ControllerRequest::ElectPreferredLeader { topic_id, partition }).await
    }

    /// ElectLeaders UNCLEAN for a partition without a live ISR leader (from outside the ISR if need be).
    pub async fn elect_leader(&self, topic_id: Uuid, partition: i32) -> Result<PartitionRegistration, ControllerError> {
        self.submit_for_partition(ControllerRequest::ElectLeader { topic_id, partition }).await
    }

    /// AlterPartitionReassignments for one partition: starts a reassignment to `target`, or cancels the one
    /// under way (`None`); answers the partition's state after the change.
    pub async fn reassign_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        target: Option<Vec<NodeId>>,
        allow_replication_factor_change: bool,
    ) -> Result<PartitionRegistration, ControllerError> {
        let request =
            ControllerRequest::ReassignPartition { topic_id, partition, target, allow_replication_factor_change };
        self.submit_for_partition(request).await
    }
}
