//! [`QuorumConfig`]: what a node needs to take part in the metadata quorum.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::QuorumError;
use crate::records::NodeId;
use crate::transport::QuorumTls;

/// Settings of one quorum member. Build with [`QuorumConfig::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// Kafka's `node.id`.
    pub node_id: NodeId,
    /// `controller.quorum.voters`: every voter's id and controller address (this node included).
    pub voters: Vec<(NodeId, SocketAddr)>,
    /// Address the controller listener binds (port 0: any free port).
    pub listen: SocketAddr,
    /// A non-voting member (KRaft's `process.roles=broker`): follows the metadata log as an openraft learner,
    /// never votes and never bootstraps. It MUST NOT be among `voters`; it asks the quorum leader to add it
    /// ([`crate::ControllerRequest::AddObserver`]) with its [`advertised`](Self::advertised) address.
    pub observer: bool,
    /// The controller address other nodes reach this node at, when it differs from the bound listener
    /// address (`listen` on a wildcard IP, NAT). `None`: the bound address (with the real port when `listen`
    /// has port 0). Only observers announce it; voters are reached at their `voters` entry.
    pub advertised: Option<SocketAddr>,
    /// Source address of outgoing controller connections; `None` uses the listen address's IP when it is
    /// a specific one (so a node on 127.0.0.2 also talks from 127.0.0.2), else lets the kernel choose.
    pub local_address: Option<IpAddr>,
    /// The node's `data.dir`; the quorum keeps its RocksDB in `<data_dir>/metadata`.
    pub data_dir: PathBuf,
    /// The cluster id this node must belong to. `None`: take the one stored in the data directory, or
    /// learn it from the voters, or (the bootstrapping node of a new cluster) generate one.
    pub cluster_id: Option<String>,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// `broker.session.timeout.ms`: a broker not heard from for this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `unclean.leader.election.enable` cluster default (a topic config of that name overrides it).
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: the quorum leader periodically moves leadership back to preferred
    /// replicas (see [`leader_imbalance_per_broker_percentage`](Self::leader_imbalance_per_broker_percentage)).
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms here: how often the quorum leader checks the balance.
    pub leader_imbalance_check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`: a broker's partitions (those it is the preferred replica of)
    /// may be led by others up to this share before the check moves them back.
    pub leader_imbalance_per_broker_percentage: u32,
    /// Take a snapshot after this many log entries since the last one.
    pub snapshot_after_entries: u64,
    /// Log entries kept below the snapshot (so a slightly lagging voter catches up without a snapshot).
    pub entries_kept_after_snapshot: u64,
    /// Connecting to a peer gives up after this long.
    pub connect_timeout_ms: u64,
    /// One RPC (other than a snapshot) gives up after this long.
    pub request_timeout_ms: u64,
    /// A controller operation (validate, replicate, apply) gives up after this long.
    pub operation_timeout_ms: u64,
    /// Largest frame accepted on the controller listener (a snapshot travels in one frame).
    pub max_frame_bytes: u32,
    /// Concurrent inbound controller connections.
    pub max_connections: usize,
    /// TLS on the controller listener (SSL), both ways; `None`: plain TCP.
    pub tls: Option<Arc<dyn QuorumTls>>,
    /// The voters' host names as configured (`controller.quorum.voters`), which their certificates name;
    /// a node missing here is reached by its IP address.
    pub voter_hosts: BTreeMap<NodeId, String>,
}

impl QuorumConfig {
    /// A config with Kafka-like defaults for everything but the node's identity and addresses.
    pub fn new(node_id: NodeId, voters: Vec<(NodeId, SocketAddr)>, listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            node_id,
            voters,
            listen,
            observer: false,
            advertised: None,
            local_address: None,
            data_dir,
            cluster_id: None,
            // KRaft: controller.quorum.election.timeout.ms = 1000, fetch (heartbeat) every ~500 ms.
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            heartbeat_ms: 250,
            broker_session_timeout_ms: 9000,
            unclean_leader_election_enable: false,
            // Kafka's defaults: enabled, every 300 s, 10 %.
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            leader_imbalance_per_broker_percentage: 10,
            snapshot_after_entries: 5000,
            entries_kept_after_snapshot: 500,
            connect_timeout_ms: 1000,
            request_timeout_ms: 5000,
            operation_timeout_ms: 10_000,
            max_frame_bytes: 64 * 1024 * 1024,
            max_connections: 64,
            tls: None,
            voter_hosts: BTreeMap::new(),
        }
    }

    /// Checks every setting and reports all problems at once.
    pub fn validate(&self) -> Result<(), QuorumError> {
        let mut problems = Vec::new();
        if self.node_id < 0 {
            problems.push(format!("node.id must be >= 0, got {}", self.node_id));
        }
        if self.voters.is_empty() {
            problems.push("controller.quorum.voters is empty".to_owned());
        }
        let mut seen = BTreeSet::new();
        for (id, _) in &self.voters {
            if *id < 0 {
                problems.push(format!("voter id must be >= 0, got {id}"));
            }
            if !seen.insert(*id) {
                problems.push(format!("voter {id} listed twice"));
            }
        }
        if self.observer && seen.contains(&self.node_id) {
            problems.push(format!(
                "node {} is among controller.quorum.voters but configured as an observer (broker-only)",
                self.node_id
            ));
        }
        if !self.observer && !seen.contains(&self.node_id) {
            problems.push(format!(
                "node {} is not among controller.quorum.voters (a node that does not vote must be an observer)",
                self.node_id
            ));
        }
        if self.observer && self.advertised.is_none() && self.listen.ip().is_unspecified() {
            problems.push(format!(
                "observer {} listens on {}: set an advertised controller address the voters can reach",
                self.node_id, self.listen
            ));
        }
        if let Some(addr) = self.advertised
            && (addr.ip().is_unspecified() || addr.port() == 0)
        {
            problems.push(format!("advertised controller address {addr} must have a specific IP and port"));
        }
        if self.heartbeat_ms == 0 {
            problems.push("heartbeat must be > 0 ms".to_owned());
        }
        if self.election_timeout_min_ms <= self.heartbeat_ms {
            problems.push("election timeout minimum must exceed the heartbeat interval".to_owned());
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            problems.push("election timeout maximum must exceed the minimum".to_owned());
        }
        if self.broker_session_timeout_ms == 0 {
            problems.push("broker.session.timeout.ms must be > 0".to_owned());
        }
        if self.leader_imbalance_check_interval_ms == 0 {
            problems.push("leader.imbalance.check.interval.seconds must be >= 1".to_owned());
        }
        if self.snapshot_after_entries == 0 {
            problems.push("snapshot interval must be > 0 entries".to_owned());
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 || self.operation_timeout_ms == 0 {
            problems.push("timeouts must be > 0 ms".to_owned());
        }
        if self.max_frame_bytes < 1024 {
            problems.push("max frame size must be at least 1024 bytes".to_owned());
        }
        if self.max_connections == 0 {
            problems.push("max connections must be > 0".to_owned());
        }
        if let Some(id) = &self.cluster_id
            && !valid_cluster_id(id)
        {
            problems.push(format!("cluster id {id:?} must be 1..=64 characters of [A-Za-z0-9_-]"));
        }
        if problems.is_empty() { Ok(()) } else { Err(QuorumError::Config(problems)) }
    }

    /// Where outgoing connections bind (port 0: any).
    pub(crate) fn outgoing_bind(&self) -> Option<IpAddr> {
        self.local_address.or_else(|| (!self.listen.ip().is_unspecified()).then(|| self.listen.ip()))
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub(crate) fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }

    pub(crate) fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.broker_session_timeout_ms)
    }

    pub(crate) fn leader_imbalance_check_interval(&self) -> Duration {
        Duration::from_millis(self.leader_imbalance_check_interval_ms)
    }

    pub(crate) fn metadata_dir(&self) -> PathBuf {
        self.data_dir.join("metadata")
    }
}

/// Kafka cluster ids are base64url UUIDs (22 characters); accept that alphabet and a sane length.
pub(crate) fn valid_cluster_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
