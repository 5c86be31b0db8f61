//! This broker's membership in the cluster: the metadata quorum it belongs to, its registration and
//! heartbeats, and the one metadata image every handler reads (who leads what, which brokers are live).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use skein_cluster::{
    BrokerRegistration, ControllerClient, ControllerError, Endpoint, MetadataImage, MetadataQuorum,
    PartitionRegistration, TopicImage, Uuid,
};
use skein_core::{BrokerError, ClusterLayout, Listener};
use tokio_util::sync::CancellationToken;

/// Broker epoch before the registration is done.
const UNREGISTERED: i64 = -1;

/// How long a node keeps trying to register while a voter disagrees on the cluster id.
const CONFLICT_GRACE: Duration = Duration::from_secs(5);

/// The broker's side of the cluster.
pub struct ClusterMember {
    quorum: MetadataQuorum,
    node_id: i32,
    incarnation_id: Uuid,
    layout: ClusterLayout,
    rack: Option<String>,
    broker_epoch: AtomicI64,
}

impl std::fmt::Debug for ClusterMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMember")
            .field("node_id", &self.node_id)
            .field("broker_epoch", &self.broker_epoch())
            .finish_non_exhaustive()
    }
}

/// Why registration failed for good (a retry would not help).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the metadata quorum refused this node: {0}")]
    Refused(String),
    #[error("no metadata quorum leader answered within {0:?}: are the other voters running?")]
    NoQuorum(Duration),
    #[error("the metadata quorum stopped")]
    Stopped,
}

impl ClusterMember {
    pub fn new(quorum: MetadataQuorum, node_id: i32, layout: ClusterLayout, rack: Option<String>) -> Self {
        ClusterMember {
            quorum,
            node_id,
            incarnation_id: Uuid::new_v4(),
            layout,
            rack,
            broker_epoch: AtomicI64::new(UNREGISTERED),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The metadata quorum (DescribeQuorum, status, shutdown).
    pub fn quorum(&self) -> &MetadataQuorum {
        &self.quorum
    }

    /// Runs metadata operations on the quorum leader (forwarded from here when needed).
    pub fn controller(&self) -> ControllerClient {
        self.quorum.controller()
    }

    /// The metadata as this broker has applied it: a consistent view while held.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The cluster id (known once the node has joined).
    pub fn cluster_id(&self) -> String {
        self.quorum.cluster_id().unwrap_or_default()
    }

    /// The epoch of this broker's registration (KIP-903), or -1 before it registered.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    /// The client listeners, as advertised.
    pub fn advertised_listeners(&self) -> &[Listener] {
        &self.layout.advertised_listeners
    }

    /// The layout this node runs with.
    pub fn layout(&self) -> &ClusterLayout {
        &self.layout
    }

    /// Registers this broker process and waits until this node's image has applied the registration (and so
    /// everything before it). Retries while there is no quorum leader, until `patience` runs out.
    pub async fn register(&self, patience: Duration) -> Result<i64, JoinError> {
        let endpoints = self
            .layout
            .advertised_listeners
            .iter()
            .map(|l| Endpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
                security_protocol: self.layout.security_protocol(&l.name).id(),
            })
            .collect::<Vec<_>>();
        let started = tokio::time::Instant::now();
        let deadline = started + patience;
        let mut logged = false;
        let epoch = loop {
            let attempt = self
                .controller()
                .register_broker(self.node_id, self.incarnation_id, endpoints.clone(), self.rack.clone())
                .await;
            match attempt {
                Ok(epoch) => break epoch,
                Err(ControllerError::Unavailable(reason)) if reason.contains("stopped") => {
                    return Err(JoinError::Stopped);
                }
                Err(ControllerError::InvalidRequest(reason)) => return Err(JoinError::Refused(reason)),
                Err(err) => {
                    // Healthy voters see a stray node's mismatch too, but they register; a node that cannot
                    // register while a voter disagrees on the cluster id is the stray one.
                    if started.elapsed() > CONFLICT_GRACE
                        && let Some(conflict) = self.quorum.cluster_id_conflict()
                    {
                        return Err(JoinError::Refused(format!(
                            "{conflict}; data.dir holds another cluster's metadata (use this cluster's data \
                             directory or an empty one)"
                        )));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(match err {
                            ControllerError::NotController { .. } | ControllerError::Timeout => {
                                JoinError::NoQuorum(patience)
                            }
                            other => JoinError::Refused(other.to_string()),
                        });
                    }
                    if !logged {
                        // A restarted broker waits for its previous session to expire (DUPLICATE_BROKER_REGISTRATION).
                        tracing::info!(error = %err, "registration with the metadata quorum not done yet; retrying");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let index = u64::try_from(epoch).unwrap_or(0);
        self.quorum.wait_for_applied(index).await.ok_or(JoinError::Stopped)?;
        self.broker_epoch.store(epoch, Ordering::Release);
        tracing::info!(node_id = self.node_id, broker_epoch = epoch, "registered with the metadata quorum");
        Ok(epoch)
    }

    /// Heartbeats every `interval` until `shutdown`: keeps the session, and unfences this broker (it then
    /// leads partitions and appears in Metadata). A heartbeat refused for a stale epoch re-registers; one refused
    /// because the registration was removed does not.
    ///
    /// Each heartbeat is given two intervals: one sent to a controller that froze (stopped, not crashed: its
    /// socket still accepts) is given up and the next goes to the new quorum leader, well within the session the
    /// new controller grants. A heartbeat is idempotent, so one that did arrive after all does no harm.
    pub async fn heartbeat_loop(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let epoch = self.broker_epoch();
            let controller = self.controller();
            let heartbeat = controller.heartbeat(self.node_id, epoch, false);
            let result = tokio::time::timeout(interval * 2, heartbeat).await.unwrap_or(Err(ControllerError::Timeout));
            match result {
                Ok(_) => failures = 0,
                // Unregistered (UnregisterBroker, e.g. `kafka-cluster unregister`): as Kafka, the broker stays out
                // of the cluster until it restarts, its heartbeats refused.
                Err(ControllerError::BrokerNotRegistered { .. }) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(100) {
                        tracing::warn!("this broker was unregistered from the cluster; restart it to register again");
                    }
                }
                Err(ControllerError::StaleBrokerEpoch { .. }) => {
                    tracing::warn!("the controller no longer knows this registration; registering again");
                    if let Err(err) = self.register(interval * 10).await {
                        tracing::warn!(error = %err, "re-registration failed");
                    }
                }
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(error = %err, failures, "broker heartbeat failed");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// Controlled shutdown: asks to be fenced so partitions move to other brokers before this one stops.
    pub async fn fence_self(&self) {
        let epoch = self.broker_epoch();
        if epoch == UNREGISTERED {
            return;
        }
        let controller = self.controller();
        let fence = controller.heartbeat(self.node_id, epoch, true);
        match tokio::time::timeout(Duration::from_secs(5), fence).await {
            Ok(Ok(_)) => tracing::info!("fenced for shutdown: partitions moved to other brokers"),
            Ok(Err(err)) => tracing::info!(error = %err, "controlled shutdown not acknowledged"),
            Err(_) => tracing::info!("controlled shutdown timed out"),
        }
    }

    /// Waits until the image satisfies `ready` (an admin change applied here), up to `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        ready: impl Fn(&MetadataImage) -> bool,
    ) -> Option<Arc<MetadataImage>> {
        let mut images = self.quorum.subscribe();
        let wait = async {
            loop {
                {
                    let image = images.borrow_and_update();
                    if ready(&image) {
                        return Some(Arc::clone(&image));
                    }
                }
                if images.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// Whether this broker may serve `topic`/`partition` as its leader now.
    pub fn check_leader(&self, topic: &TopicImage, partition: i32) -> Result<&'static str, NotLeader> {
        leadership(self.node_id, topic.partitions.get(&partition))
    }

    /// The metadata quorum's leader (Kafka's active controller), if one is known.
    pub fn quorum_leader_id(&self) -> Option<i32> {
        self.quorum.leader_id()
    }

    /// The controller id clients are given: the quorum leader when it is a live broker (it always is in
    /// combined mode), else the lowest live broker. KRaft gives clients a live broker too: they cannot talk
    /// to controllers, and any broker forwards admin requests.
    pub fn controller_id_for_clients(&self, image: &MetadataImage) -> i32 {
        match self.quorum.leader_id() {
            Some(id) if image.is_live(id) => id,
            _ => image.live_brokers().map(|b| b.node_id).next().unwrap_or(-1),
        }
    }
}

/// A request for a partition this broker does not lead: who does, as far as it knows (KIP-951 hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader, or -1.
    pub leader_id: i32,
    /// The leader epoch, or -1.
    pub leader_epoch: i32,
    /// Whether the partition exists at all.
    pub exists: bool,
}

impl NotLeader {
    /// The error for the response: no such partition, no leader now, or another broker leads.
    pub fn error(&self) -> BrokerError {
        if !self.exists {
            BrokerError::UnknownTopicOrPartition
        } else if self.leader_id < 0 {
            BrokerError::LeaderNotAvailable
        } else {
            BrokerError::NotLeaderOrFollower
        }
    }
}

fn leadership(node_id: i32, partition: Option<&PartitionRegistration>) -> Result<&'static str, NotLeader> {
    match partition {
        Some(p) if p.leader == node_id => Ok("leader"),
        Some(p) => Err(NotLeader { leader_id: p.leader, leader_epoch: p.leader_epoch, exists: true }),
        None => Err(NotLeader { leader_id: -1, leader_epoch: -1, exists: false }),
    }
}

/// A broker's endpoint for the listener `name`, falling back to its first endpoint.
pub fn endpoint<'a>(broker: &'a BrokerRegistration, name: &str) -> Option<&'a Endpoint> {
    broker.endpoints.iter().find(|e| e.name == name).or_else(|| broker.endpoints.first())
}

/// The Kafka error of a failed controller operation (the broker's errors map to codes in `skein_core`).
pub fn controller_error(err: ControllerError) -> BrokerError {
    {
        let text = err.to_string();
        match err {
            ControllerError::NotController { .. } | ControllerError::Unavailable(_) => BrokerError::NotController(text),
            ControllerError::Timeout => BrokerError::RequestTimedOut(text),
            ControllerError::InvalidReplicationFactor { available: 0, .. } => {
                BrokerError::InvalidReplicationFactor("All brokers are currently fenced.".into())
            }
            ControllerError::InvalidReplicationFactor { requested, available } => {
                // Kafka 4.3's wording, which tools print as is.
                BrokerError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {requested} time(s): The target replication factor of \
                     {requested} cannot be reached because only {available} broker(s) are registered or some \
                     brokers have all their log directories cordoned."
                ))
            }
            ControllerError::ReplicationFactorChange { .. } => BrokerError::InvalidReplicationFactor(text),
            ControllerError::NoReassignmentInProgress(_) => BrokerError::NoReassignmentInProgress,
            ControllerError::InvalidPartitions(msg) => BrokerError::InvalidPartitions(msg),
            ControllerError::InvalidReplicaAssignment(msg) => BrokerError::InvalidReplicaAssignment(msg),
            ControllerError::InvalidTopicName(msg) => BrokerError::InvalidTopic(msg),
            ControllerError::TopicAlreadyExists(name) => BrokerError::TopicAlreadyExists(name),
            ControllerError::UnknownTopicOrPartition(_) => BrokerError::UnknownTopicOrPartition,
            ControllerError::UnknownTopicId(_) => BrokerError::UnknownTopicId,
            ControllerError::BrokerNotRegistered { node_id } => BrokerError::BrokerIdNotRegistered(node_id),
            ControllerError::StaleBrokerEpoch { .. } => BrokerError::StaleBrokerEpoch(text),
            ControllerError::DuplicateBrokerRegistration { .. } => BrokerError::InvalidRequest(text),
            ControllerError::NotLeader { .. } => BrokerError::NotLeaderOrFollower,
            ControllerError::FencedLeaderEpoch { current, requested } => {
                BrokerError::FencedLeaderEpoch { requested, current }
            }
            ControllerError::InvalidUpdateVersion { .. } | ControllerError::IneligibleReplica { .. } => {
                BrokerError::InvalidRequest(text)
            }
            ControllerError::EligibleLeadersNotAvailable => BrokerError::EligibleLeadersNotAvailable(text),
            ControllerError::ElectionNotNeeded => BrokerError::ElectionNotNeeded,
            ControllerError::PreferredLeaderNotAvailable { .. } => BrokerError::PreferredLeaderNotAvailable(text),
            ControllerError::InvalidConfig(msg) => BrokerError::InvalidConfig(msg),
            ControllerError::InvalidRequest(msg) => BrokerError::InvalidRequest(msg),
            ControllerError::ResourceNotFound(msg) => BrokerError::ResourceNotFound(msg),
        }
    }
}
