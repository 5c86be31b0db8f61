//! Values stored under the keys of [`crate::keys`]. Each starts with a version byte so the format can evolve.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::StorageError;
use crate::keys::PartitionId;

const PARTITION_STATE_V1: u8 = 1;
const PARTITION_STATE_V1_LEN: usize = 1 + 8 + 8 + 4;
/// v2 appends the high watermark.
const PARTITION_STATE_V2: u8 = 2;
const PARTITION_STATE_LEN: usize = PARTITION_STATE_V1_LEN + 8;
const TOPIC_RECORD_V1: u8 = 1;

/// A partition's durable state, written in the same batch as the records it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub log_start_offset: i64,
    /// The offset the next appended record gets (the log end offset).
    pub next_offset: i64,
    pub leader_epoch: i32,
    /// The high watermark when the state was written: at most the true one (it only grows), so after a restart
    /// nothing a consumer never could see becomes visible before the replicas confirm it again.
    pub high_watermark: i64,
}

impl PartitionState {
    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(PARTITION_STATE_LEN);
        value.push(PARTITION_STATE_V2);
        value.extend_from_slice(&self.log_start_offset.to_be_bytes());
        value.extend_from_slice(&self.next_offset.to_be_bytes());
        value.extend_from_slice(&self.leader_epoch.to_be_bytes());
        value.extend_from_slice(&self.high_watermark.to_be_bytes());
        value
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: &str| StorageError::CorruptValue { key: "partition".into(), reason: reason.into() };
        let v1 = value.len() == PARTITION_STATE_V1_LEN && value.first() == Some(&PARTITION_STATE_V1);
        let v2 = value.len() == PARTITION_STATE_LEN && value.first() == Some(&PARTITION_STATE_V2);
        if !v1 && !v2 {
            return Err(corrupt("unknown version or length"));
        }
        let i64_at = |at: usize| -> Result<i64, StorageError> {
            let bytes: [u8; 8] = value[at..at + 8].try_into().map_err(|_| corrupt("short i64"))?;
            Ok(i64::from_be_bytes(bytes))
        };
        let epoch: [u8; 4] = value[17..21].try_into().map_err(|_| corrupt("short i32"))?;
        let next_offset = i64_at(9)?;
        Ok(PartitionState {
            log_start_offset: i64_at(1)?,
            next_offset,
            leader_epoch: i32::from_be_bytes(epoch),
            // Before replication every record was committed once written.
            high_watermark: if v2 { i64_at(21)?.min(next_offset) } else { next_offset },
        })
    }
}

const PRODUCER_STATE_V1: u8 = 1;
/// v2 appends the first offset of the producer's ongoing transaction in the partition and the last batch's newest
/// record timestamp.
const PRODUCER_STATE_V2: u8 = 2;
/// How many recent batches per producer are remembered for duplicate detection (Kafka's number; clients keep at
/// most 5 requests in flight).
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// One recent batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
}

/// An idempotent producer's state in one partition, written in the same batch as the records it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    pub producer_epoch: i16,
    /// Wall-clock time (ms) of the producer's last append, for `producer.id.expiration.ms`.
    pub last_timestamp: i64,
    /// Oldest first, at most [`PRODUCER_BATCHES_KEPT`].
    pub batches: Vec<ProducerBatch>,
    /// The first offset of the producer's ongoing transaction in this partition, or -1 when none is open.
    pub txn_first_offset: i64,
    /// The newest record timestamp of its last batch (DescribeProducers' `last_timestamp`), -1 if unknown.
    pub last_batch_timestamp: i64,
}

impl ProducerState {
    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(1 + 2 + 8 + 1 + 16 * self.batches.len());
        value.push(PRODUCER_STATE_V2);
        value.extend_from_slice(&self.producer_epoch.to_be_bytes());
        value.extend_from_slice(&self.last_timestamp.to_be_bytes());
        let count = self.batches.len().min(PRODUCER_BATCHES_KEPT);
        value.push(u8::try_from(count).unwrap_or(0));
        for batch in &self.batches[self.batches.len() - count..] {
            value.extend_from_slice(&batch.first_sequence.to_be_bytes());
            value.extend_from_slice(&batch.last_sequence.to_be_bytes());
            value.extend_from_slice(&batch.base_offset.to_be_bytes());
        }
        value.extend_from_slice(&self.txn_first_offset.to_be_bytes());
        value.extend_from_slice(&self.last_batch_timestamp.to_be_bytes());
        value
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt =
            || StorageError::CorruptValue { key: "producers".into(), reason: "malformed producer state".into() };
        let take = |at: usize, len: usize| value.get(at..at + len).ok_or_else(corrupt);
        let trailer = match value.first() {
            Some(&PRODUCER_STATE_V1) => 0,
            Some(&PRODUCER_STATE_V2) => 16,
            _ => return Err(corrupt()),
        };
        let producer_epoch = i16::from_be_bytes(take(1, 2)?.try_into().map_err(|_| corrupt())?);
        let last_timestamp = i64::from_be_bytes(take(3, 8)?.try_into().map_err(|_| corrupt())?);
        let count = usize::from(*take(11, 1)?.first().ok_or_else(corrupt)?);
        if count > PRODUCER_BATCHES_KEPT || value.len() != 12 + 16 * count + trailer {
            return Err(corrupt());
        }
        let mut batches = Vec::with_capacity(count);
        for i in 0..count {
            let at = 12 + 16 * i;
            batches.push(ProducerBatch {
                first_sequence: i32::from_be_bytes(take(at, 4)?.try_into().map_err(|_| corrupt())?),
                last_sequence: i32::from_be_bytes(take(at + 4, 4)?.try_into().map_err(|_| corrupt())?),
                base_offset: i64::from_be_bytes(take(at + 8, 8)?.try_into().map_err(|_| corrupt())?),
            });
        }
        let trailing = |at: usize| -> Result<i64, StorageError> {
            if trailer == 0 {
                return Ok(-1);
            }
            Ok(i64::from_be_bytes(take(12 + 16 * count + at, 8)?.try_into().map_err(|_| corrupt())?))
        };
        let (txn_first_offset, last_batch_timestamp) = (trailing(0)?, trailing(8)?);
        Ok(ProducerState { producer_epoch, last_timestamp, batches, txn_first_offset, last_batch_timestamp })
    }
}

/// One aborted transaction in a partition (the key holds the marker's offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

const ABORTED_TXN_V1: u8 = 1;

impl AbortedTxn {
    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(17);
        value.push(ABORTED_TXN_V1);
        value.extend_from_slice(&self.producer_id.to_be_bytes());
        value.extend_from_slice(&self.first_offset.to_be_bytes());
        value
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = || StorageError::CorruptValue { key: "aborted_txns".into(), reason: "malformed entry".into() };
        if value.len() != 17 || value.first() != Some(&ABORTED_TXN_V1) {
            return Err(corrupt());
        }
        let field = |at: usize| value.get(at..at + 8).and_then(|b| b.try_into().ok()).map(i64::from_be_bytes);
        Ok(AbortedTxn { producer_id: field(1).ok_or_else(corrupt)?, first_offset: field(9).ok_or_else(corrupt)? })
    }
}

/// The state of a transaction, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
}

/// A consumer offset committed inside a transaction, applied to the group only when the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOffset {
    pub group_id: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// What the transaction coordinator keeps of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions in the ongoing (or completing) transaction.
    pub partitions: Vec<(String, i32)>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: Vec<String>,
    pub pending_offsets: Vec<PendingOffset>,
    /// When the ongoing transaction started (wall-clock ms), -1 when none is open.
    pub start_timestamp: i64,
    pub last_update_timestamp: i64,
}

const TXN_RECORD_V1: u8 = 1;

impl TxnRecord {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let mut value = vec![TXN_RECORD_V1];
        serde_json::to_writer(&mut value, self).map_err(|err| StorageError::Engine(err.to_string()))?;
        Ok(value)
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::CorruptValue { key: "transactions".into(), reason };
        match value.split_first() {
            Some((&TXN_RECORD_V1, json)) => serde_json::from_slice(json).map_err(|err| corrupt(err.to_string())),
            _ => Err(corrupt("unknown version".into())),
        }
    }
}

/// The broker settings changed at run time, by Kafka name: for every broker of the cluster (the BROKER resource
/// named "") and for this broker (named by its node id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigsRecord {
    pub cluster_default: BTreeMap<String, String>,
    pub this_broker: BTreeMap<String, String>,
}

const DYNAMIC_BROKER_CONFIGS_V1: u8 = 1;

impl DynamicBrokerConfigsRecord {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let mut value = vec![DYNAMIC_BROKER_CONFIGS_V1];
        serde_json::to_writer(&mut value, self).map_err(|err| StorageError::Engine(err.to_string()))?;
        Ok(value)
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::CorruptValue { key: "dynamic_broker_configs".into(), reason };
        match value.split_first() {
            Some((&DYNAMIC_BROKER_CONFIGS_V1, json)) => {
                serde_json::from_slice(json).map_err(|err| corrupt(err.to_string()))
            }
            _ => Err(corrupt("unknown version".into())),
        }
    }
}

/// A topic's metadata: its id, the storage ids of its partitions (index = partition number), and config overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    /// The topic id (UUID) as 16 bytes.
    pub topic_id: [u8; 16],
    pub partitions: Vec<PartitionId>,
    /// Topic-level config overrides (`retention.ms`, ...), by Kafka name.
    pub configs: BTreeMap<String, String>,
}

impl TopicRecord {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let mut value = vec![TOPIC_RECORD_V1];
        serde_json::to_writer(&mut value, self).map_err(|err| StorageError::Engine(err.to_string()))?;
        Ok(value)
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::CorruptValue { key: "topic".into(), reason };
        match value.split_first() {
            Some((&TOPIC_RECORD_V1, json)) => serde_json::from_slice(json).map_err(|err| corrupt(err.to_string())),
            _ => Err(corrupt("unknown version".into())),
        }
    }
}

const COMMITTED_OFFSET_V1: u8 = 1;
const GROUP_RECORD_V1: u8 = 1;

/// A committed offset of one group in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not say.
    pub leader_epoch: i32,
    /// The client's metadata string; `None` when it sent null.
    pub metadata: Option<String>,
    /// Wall-clock time (ms) of the commit, for `offsets.retention.minutes`.
    pub commit_timestamp: i64,
}

impl CommittedOffset {
    pub fn encode(&self) -> Vec<u8> {
        let metadata = self.metadata.as_deref().map(str::as_bytes);
        let mut value = Vec::with_capacity(1 + 8 + 4 + 8 + 4 + metadata.map_or(0, <[u8]>::len));
        value.push(COMMITTED_OFFSET_V1);
        value.extend_from_slice(&self.offset.to_be_bytes());
        value.extend_from_slice(&self.leader_epoch.to_be_bytes());
        value.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        match metadata {
            Some(bytes) => {
                value.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
                value.extend_from_slice(bytes);
            }
            None => value.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        value
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt =
            || StorageError::CorruptValue { key: "offsets".into(), reason: "malformed committed offset".into() };
        let take = |at: usize, len: usize| value.get(at..at + len).ok_or_else(corrupt);
        if value.first() != Some(&COMMITTED_OFFSET_V1) {
            return Err(corrupt());
        }
        let offset = i64::from_be_bytes(take(1, 8)?.try_into().map_err(|_| corrupt())?);
        let leader_epoch = i32::from_be_bytes(take(9, 4)?.try_into().map_err(|_| corrupt())?);
        let commit_timestamp = i64::from_be_bytes(take(13, 8)?.try_into().map_err(|_| corrupt())?);
        let metadata_len = i32::from_be_bytes(take(21, 4)?.try_into().map_err(|_| corrupt())?);
        let metadata = match usize::try_from(metadata_len) {
            Ok(len) if value.len() == 25 + len => Some(String::from_utf8_lossy(take(25, len)?).into_owned()),
            Err(_) if metadata_len == -1 && value.len() == 25 => None,
            _ => return Err(corrupt()),
        };
        Ok(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp })
    }
}

/// What is kept of a group across restarts and coordinator moves: as in Kafka, the members of a stable classic
/// group (`members`, `leader_id`) and of a KIP-848 group (`consumer`), so that they carry on with their generation
/// or epochs and their assignments at the new coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Empty for groups that only hold offsets committed outside the group protocol.
    pub protocol_type: String,
    pub generation_id: i32,
    /// The protocol (assignor) chosen in that generation, if any.
    pub protocol_name: Option<String>,
    /// Absent in records written before KIP-848 groups existed: those are classic.
    #[serde(default)]
    pub group_type: GroupType,
    /// A stable classic group's leader; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<String>,
    /// A stable classic group's members; empty otherwise (and in records written before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ClassicMemberRecord>,
    /// A KIP-848 group's members, targets and epochs; absent in records written before they were kept (the
    /// members of such a group rejoin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerGroupRecord>,
}

/// One member of a stable classic group, with what it subscribed with in the generation's protocol and the
/// assignment its leader gave it. Its session starts again where it is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A KIP-848 group's reconciliation state (Kafka keeps the same in its member metadata, target assignment and
/// current assignment records). The group epoch is the record's `generation_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupRecord {
    pub assignment_epoch: i32,
    pub members: Vec<ConsumerMemberRecord>,
    /// The subscribed topics the target assignment was computed with.
    pub subscribed_topics: Vec<SubscribedTopicRecord>,
}

/// One member of a KIP-848 group. Its session starts again where it is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMemberRecord {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: ConsumerMemberStateRecord,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: u64,
    pub assigned: Vec<TopicPartitionsRecord>,
    pub pending_revocation: Vec<TopicPartitionsRecord>,
    pub target: Vec<TopicPartitionsRecord>,
}

/// Where a member is in its reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMemberStateRecord {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

/// Partitions of one topic, by topic id (hyphenated UUID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitionsRecord {
    pub topic_id: String,
    pub partitions: Vec<i32>,
}

/// A subscribed topic as the target assignment saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTopicRecord {
    pub name: String,
    pub topic_id: String,
    pub partitions: i32,
}

/// Which group protocol a group speaks. For a consumer group, `generation_id` holds the group epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupType {
    #[default]
    Classic,
    /// KIP-848 (`group.protocol=consumer`).
    Consumer,
}

impl GroupType {
    /// Kafka's name of the group type, as ListGroups reports it.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

impl GroupRecord {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let mut value = vec![GROUP_RECORD_V1];
        serde_json::to_writer(&mut value, self).map_err(|err| StorageError::Engine(err.to_string()))?;
        Ok(value)
    }

    pub fn decode(value: &[u8]) -> Result<Self, StorageError> {
        let corrupt = |reason: String| StorageError::CorruptValue { key: "groups".into(), reason };
        match value.split_first() {
            Some((&GROUP_RECORD_V1, json)) => serde_json::from_slice(json).map_err(|err| corrupt(err.to_string())),
            _ => Err(corrupt("unknown version".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_offset_round_trips_with_and_without_metadata() {
        for metadata in [None, Some(String::new()), Some("resume here".to_string())] {
            let committed =
                CommittedOffset { offset: 42, leader_epoch: 3, metadata, commit_timestamp: 1_700_000_000_000 };
            assert_eq!(CommittedOffset::decode(&committed.encode()).expect("decode"), committed);
        }
        let mut truncated =
            CommittedOffset { offset: 1, leader_epoch: -1, metadata: Some("abc".into()), commit_timestamp: 0 }.encode();
        truncated.pop();
        assert!(CommittedOffset::decode(&truncated).is_err());
        let record = GroupRecord {
            protocol_type: "consumer".into(),
            generation_id: 4,
            protocol_name: Some("range".into()),
            group_type: GroupType::Consumer,
            leader_id: None,
            members: Vec::new(),
            consumer: None,
        };
        assert_eq!(GroupRecord::decode(&record.encode().expect("encode")).expect("decode"), record);
        let with_members = GroupRecord {
            consumer: Some(ConsumerGroupRecord {
                assignment_epoch: 4,
                members: vec![ConsumerMemberRecord {
                    member_id: "m".into(),
                    instance_id: Some("i".into()),
                    rack_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    member_epoch: 4,
                    previous_member_epoch: 3,
                    state: ConsumerMemberStateRecord::UnrevokedPartitions,
                    subscribed_topic_names: vec!["t".into()],
                    subscribed_topic_regex: None,
                    server_assignor: Some("uniform".into()),
                    rebalance_timeout_ms: 30_000,
                    assigned: vec![TopicPartitionsRecord {
                        topic_id: "00000000-0000-0000-0000-000000000abc".into(),
                        partitions: vec![0, 2],
                    }],
                    pending_revocation: Vec::new(),
                    target: Vec::new(),
                }],
                subscribed_topics: vec![SubscribedTopicRecord {
                    name: "t".into(),
                    topic_id: "00000000-0000-0000-0000-000000000abc".into(),
                    partitions: 3,
                }],
            }),
            ..record.clone()
        };
        assert_eq!(GroupRecord::decode(&with_members.encode().expect("encode")).expect("decode"), with_members);
        let stable_classic = GroupRecord {
            group_type: GroupType::Classic,
            leader_id: Some("a".into()),
            members: vec![ClassicMemberRecord {
                member_id: "a".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: vec![0, 1, 2],
                assignment: vec![3, 4],
            }],
            consumer: None,
            ..record
        };
        assert_eq!(GroupRecord::decode(&stable_classic.encode().expect("encode")).expect("decode"), stable_classic);
        // A record from before group types were stored is a classic group.
        let old = b"\x01{\"protocol_type\":\"consumer\",\"generation_id\":2,\"protocol_name\":null}";
        assert_eq!(GroupRecord::decode(old).expect("decode").group_type, GroupType::Classic);
    }

    #[test]
    fn partition_state_round_trips_and_rejects_garbage() {
        let state = PartitionState { log_start_offset: 5, next_offset: 1 << 40, leader_epoch: 3, high_watermark: 7 };
        assert_eq!(PartitionState::decode(&state.encode()).expect("decode"), state);
        // A v1 state (before replication) reads with the high watermark at the log end.
        let v1 = [&[1u8][..], &5i64.to_be_bytes(), &9i64.to_be_bytes(), &3i32.to_be_bytes()].concat();
        assert_eq!(
            PartitionState::decode(&v1).expect("decode v1"),
            PartitionState { high_watermark: 9, next_offset: 9, ..state }
        );
        assert!(PartitionState::decode(&[1, 2, 3]).is_err());
        let mut wrong_version = state.encode();
        wrong_version[0] = 9;
        assert!(PartitionState::decode(&wrong_version).is_err());
    }

    #[test]
    fn producer_state_round_trips_and_keeps_five_batches() {
        let batches: Vec<ProducerBatch> = (0..7)
            .map(|i| ProducerBatch {
                first_sequence: i * 10,
                last_sequence: i * 10 + 9,
                base_offset: i64::from(i) * 100,
            })
            .collect();
        let state = ProducerState {
            producer_epoch: 3,
            last_timestamp: 42,
            batches,
            txn_first_offset: 77,
            last_batch_timestamp: 1_700_000_000_000,
        };
        let decoded = ProducerState::decode(&state.encode()).expect("decode");
        assert_eq!(decoded.producer_epoch, 3);
        assert_eq!(decoded.batches.len(), PRODUCER_BATCHES_KEPT);
        assert_eq!(decoded.batches[0].first_sequence, 20);
        assert!(ProducerState::decode(&[1, 0]).is_err());
        let mut truncated = state.encode();
        truncated.pop();
        assert!(ProducerState::decode(&truncated).is_err());
    }

    #[test]
    fn topic_record_round_trips() {
        let record = TopicRecord {
            name: "orders".into(),
            topic_id: [7; 16],
            partitions: vec![4, 5, 6],
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
        };
        assert_eq!(TopicRecord::decode(&record.encode().expect("encode")).expect("decode"), record);
        assert!(TopicRecord::decode(b"\x02{}").is_err());
    }
}
