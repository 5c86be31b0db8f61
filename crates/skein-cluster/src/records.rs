//! The metadata records: what the metadata log holds, one [`MetadataBatch`] per Raft entry.
//!
//! Records are facts the controller has already validated: applying them never fails and never decides
//! anything (the decisions — placement, leader election, epoch checks — live in [`crate::controller`]).
//! A batch is applied atomically, so a topic and all its partitions appear in one step.
//!
//! # Encoding and versioning
//! JSON (serde_json), internally tagged by `"type"`: `{"type":"Topic","name":"orders",...}`. Chosen because
//! the metadata log is small (kilobytes to a few megabytes, written a few times a second at most), so
//! compactness buys nothing, while a self-describing encoding lets a record gain a field without a format
//! break (new fields carry `#[serde(default)]`) and makes the log readable with `ldb` when debugging. The
//! same encoding carries the log entries between controllers and the snapshot, so there is one codec.
//!
//! A record type a node does not know fails to decode. SCRAM credential and ACL records came after the first
//! release and are written without a gate, so every node of a cluster must run a version that knows them before
//! they are used; a `metadata.version` gate as in KRaft is still to come. [`MetadataBatch::version`] is the
//! batch format's version.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::quota::ClientQuotaRecord;

/// A broker's (and controller's) node id, Kafka's `node.id`.
pub type NodeId = i32;

/// The leader of a partition that has none (Kafka's `-1`).
pub const NO_LEADER: NodeId = -1;

/// The format version of [`MetadataBatch`] written by this build.
pub const METADATA_BATCH_VERSION: u16 = 1;

/// One Raft log entry's payload: records applied together, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataBatch {
    /// Batch format version ([`METADATA_BATCH_VERSION`]).
    pub version: u16,
    /// The records, applied in order as one atomic change of the image.
    pub records: Vec<MetadataRecord>,
}

impl MetadataBatch {
    /// A batch of the current format.
    pub fn new(records: Vec<MetadataRecord>) -> Self {
        Self { version: METADATA_BATCH_VERSION, records }
    }
}

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetadataBatch(v{}, {} records)", self.version, self.records.len())
    }
}

/// What a node applied an entry with; the entry's log id comes with openraft's response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied;

/// A metadata record. New kinds (ACLs, eligible leader replicas) become new variants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker (re-)registered. Its broker epoch is the log index of the entry holding this record (KIP-903):
    /// unique, increasing, and known only once the entry is appended, so it is not stored in the record.
    RegisterBroker(RegisterBrokerRecord),
    /// A broker was fenced: it leads nothing and is in no ISR.
    FenceBroker(FenceBrokerRecord),
    /// A fenced broker heartbeated again.
    UnfenceBroker(UnfenceBrokerRecord),
    /// A broker's registration was removed (UnregisterBroker): it is no longer part of the cluster.
    UnregisterBroker(UnregisterBrokerRecord),
    /// A topic was created (its partitions follow as `Partition` records in the same batch).
    Topic(TopicRecord),
    /// A partition's full state, written when it is created.
    Partition(PartitionRecord),
    /// A change to an existing partition.
    PartitionChange(PartitionChangeRecord),
    /// A topic and its partitions and configs were deleted.
    RemoveTopic(RemoveTopicRecord),
    /// A dynamic config was set or deleted.
    Config(ConfigRecord),
    /// A block of producer ids was handed to a broker.
    ProducerIdBlock(ProducerIdBlockRecord),
    /// A user's SCRAM credential for one mechanism was set (AlterUserScramCredentials).
    UserScramCredential(UserScramCredentialRecord),
    /// A user's SCRAM credential for one mechanism was deleted.
    RemoveUserScramCredential(RemoveUserScramCredentialRecord),
    /// An ACL was created (CreateAcls).
    AccessControlEntry(AclBinding),
    /// An ACL was deleted (DeleteAcls).
    RemoveAccessControlEntry(AclBinding),
    /// A client quota value was set or removed (AlterClientQuotas).
    ClientQuota(ClientQuotaRecord),
}

/// A listener a broker advertises.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Kafka's security protocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
    pub security_protocol: i16,
}

/// See [`MetadataRecord::RegisterBroker`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterBrokerRecord {
    /// The broker's node id.
    pub node_id: NodeId,
    /// Random per process start: tells a restart from a duplicate.
    pub incarnation_id: Uuid,
    /// Listeners the broker advertises.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    #[serde(default)]
    pub rack: Option<String>,
    /// A registration starts fenced; the first heartbeat unfences it.
    pub fenced: bool,
}

/// See [`MetadataRecord::FenceBroker`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceBrokerRecord {
    /// The broker.
    pub node_id: NodeId,
    /// The broker epoch being fenced; a record for an older registration does nothing.
    pub epoch: i64,
}

/// See [`MetadataRecord::UnfenceBroker`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfenceBrokerRecord {
    /// The broker.
    pub node_id: NodeId,
    /// The broker epoch being unfenced; a record for an older registration does nothing.
    pub epoch: i64,
}

/// See [`MetadataRecord::UnregisterBroker`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnregisterBrokerRecord {
    /// The broker.
    pub node_id: NodeId,
    /// The broker epoch being removed; a record for an older registration does nothing.
    pub epoch: i64,
}

/// See [`MetadataRecord::Topic`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Topic config overrides given at creation.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// See [`MetadataRecord::Partition`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas.
    pub isr: Vec<NodeId>,
    /// Leader, or [`NO_LEADER`].
    pub leader: NodeId,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of the partition.
    pub partition_epoch: i32,
}

/// See [`MetadataRecord::PartitionChange`]. Applying it bumps `partition_epoch`, and `leader_epoch` when
/// the leader changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChangeRecord {
    /// The topic.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// New ISR, if it changes.
    #[serde(default)]
    pub isr: Option<Vec<NodeId>>,
    /// New leader ([`NO_LEADER`] for none), if it changes.
    #[serde(default)]
    pub leader: Option<NodeId>,
    /// New replica list, if it changes.
    #[serde(default)]
    pub replicas: Option<Vec<NodeId>>,
    /// Replicas a reassignment is adding (not yet in the ISR), if they change; empty ends the reassignment.
    #[serde(default)]
    pub adding_replicas: Option<Vec<NodeId>>,
    /// Replicas a reassignment will remove once the added ones are in sync, if they change.
    #[serde(default)]
    pub removing_replicas: Option<Vec<NodeId>>,
}

/// See [`MetadataRecord::RemoveTopic`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveTopicRecord {
    /// The topic.
    pub topic_id: Uuid,
}

/// The kind of resource a config belongs to (Kafka's `ConfigResource.Type` ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResourceType {
    /// A topic (Kafka id 2).
    Topic,
    /// A broker; the empty name is the cluster-wide default (Kafka id 4).
    Broker,
    /// A broker logger (Kafka id 8).
    BrokerLogger,
    /// Client metrics subscriptions (Kafka id 16).
    ClientMetrics,
    /// A consumer group (Kafka id 32).
    Group,
}

/// A config resource: its type and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConfigResource {
    /// Resource type.
    pub resource_type: ConfigResourceType,
    /// Resource name (topic name, broker id as text, or empty for the broker default).
    pub name: String,
}

/// See [`MetadataRecord::Config`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// Resource type.
    pub resource_type: ConfigResourceType,
    /// Resource name.
    pub resource_name: String,
    /// Config key.
    pub name: String,
    /// New value; `None` deletes the override.
    pub value: Option<String>,
}

/// See [`MetadataRecord::ProducerIdBlock`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlockRecord {
    /// The broker the block was given to.
    pub node_id: NodeId,
    /// First id of the block.
    pub first_producer_id: i64,
    /// Number of ids in the block.
    pub size: i32,
}

/// See [`MetadataRecord::UserScramCredential`]. What a SCRAM server needs to check a client's proof (RFC 5802):
/// never the password, nor the salted password it is derived from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserScramCredentialRecord {
    /// The user name (of principal `User:<name>`).
    pub name: String,
    /// Kafka's mechanism type: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
    pub mechanism: i8,
    /// The salt the client salted its password with.
    pub salt: Vec<u8>,
    /// H(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// See [`MetadataRecord::RemoveUserScramCredential`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveUserScramCredentialRecord {
    /// The user name.
    pub name: String,
    /// Kafka's mechanism type.
    pub mechanism: i8,
}
