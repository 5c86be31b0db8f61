//! Transaction requests between brokers: markers, and the checks a partition leader or a group coordinator asks
//! of the transaction coordinator ([`add_partitions_at`], [`add_offsets_at`]).
//!
//! Markers, Kafka's way: the transaction coordinator writes a transaction's COMMIT or
//! ABORT marker into each of its partitions at that partition's leader — itself, or another broker with
//! WriteTxnMarkers — and sends the same decision to the coordinator of each of its groups as a marker for the
//! group's `__consumer_offsets` partition, which commits or drops the transaction's offsets there.
//!
//! A marker counts as written once the partition's in-sync replicas have it (`min.insync.replicas`), so a new
//! leader has it too. Markers are idempotent: the coordinator repeats them all until every one is written.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, GroupId, ProducerId, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, wall_clock_ms};
use skein_group::StateJournal;
use skein_log::append_marker;
use skein_protocol::MarkerType;
use skein_txn::{MarkerFuture, MarkerWriter, TxnMarkers};

use crate::broker::Broker;
use crate::group_log::GROUP_STATE_TOPIC;
use crate::handlers::topic_name;
use crate::peer::PeerConnection;

/// How long a marker may wait for its partition's in-sync replicas, and for another broker's answer.
const MARKER_TIMEOUT: Duration = Duration::from_secs(10);
/// The WriteTxnMarkers version brokers send (Kafka 4 serves only v1).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// The largest WriteTxnMarkers answer accepted.
const MAX_MARKERS_RESPONSE_BYTES: usize = 1 << 20;

/// How long a transaction's markers are retried (a partition's leader moving, another broker restarting) before
/// the coordinator gives up for now; its periodic check repeats them later.
const MARKER_RETRY_TIME: Duration = Duration::from_secs(20);
/// The pause between two attempts.
const MARKER_RETRY_BACKOFF: Duration = Duration::from_millis(200);

impl MarkerWriter for Broker {
    fn write_markers<'a>(&'a self, markers: &'a TxnMarkers) -> MarkerFuture<'a> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + MARKER_RETRY_TIME;
            loop {
                // Markers are idempotent: an attempt writes them all again, at the leaders the metadata names now.
                match write_markers_once(self, markers).await {
                    Ok(()) => return Ok(()),
                    Err(err) if tokio::time::Instant::now() >= deadline => return Err(err),
                    Err(_) => tokio::time::sleep(MARKER_RETRY_BACKOFF).await,
                }
            }
        })
    }
}

/// One attempt at every marker of a transaction.
async fn write_markers_once(broker: &Broker, markers: &TxnMarkers) -> Result<(), BrokerError> {
    let image = broker.image();
    let node_id = broker.config.node_id;
    // Partitions by the broker that leads them.
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in &markers.partitions {
        // A partition deleted since it joined the transaction has nothing left to mark.
        let Some(leader) = image.topic(topic).and_then(|t| t.partitions.get(partition)).map(|p| p.leader) else {
            continue;
        };
        by_leader.entry(leader).or_default().push((topic.clone(), *partition));
    }
    let mut group_partitions: Vec<i32> =
        markers.groups.iter().map(|group_id| broker.group_log.partition_for(group_id)).collect();
    group_partitions.sort_unstable();
    group_partitions.dedup();
    for partition in group_partitions {
        let leader =
            image.topic(GROUP_STATE_TOPIC).and_then(|t| t.partitions.get(&partition)).map_or(node_id, |p| p.leader);
        by_leader.entry(leader).or_default().push((GROUP_STATE_TOPIC.to_owned(), partition));
    }
    for (leader, partitions) in by_leader {
        let written = if leader < 0 {
            Err(BrokerError::LeaderNotAvailable)
        } else if leader == node_id {
            write_local(broker, markers.producer_id, markers.producer_epoch, markers.commit, &partitions).await
        } else {
            write_remote(broker, leader, markers, &partitions).await
        };
        written.map_err(|err| {
            tracing::debug!(
                transactional_id = %markers.transactional_id,
                leader,
                error = %err,
                "transaction markers not written yet"
            );
            // The client retries its EndTxn (CONCURRENT_TRANSACTIONS while the coordinator repeats them).
            BrokerError::CoordinatorNotAvailable(format!("markers not written at broker {leader}: {err}"))
        })?;
    }
    Ok(())
}

/// Writes one marker into each of `partitions`, all led here: a control record in a data partition, the commit
/// or drop of the producer's pending offsets in a `__consumer_offsets` partition. Per partition: Ok, or the error
/// its leader answers.
pub(crate) async fn write_local_partition(
    broker: &Broker,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    topic: &str,
    partition: i32,
) -> Result<(), BrokerError> {
    if topic == GROUP_STATE_TOPIC {
        broker.leader_log(topic, partition)?;
        // Only once the partition is loaded: before, its pending offsets may not be replayed yet, and a marker
        // that found none would be lost (COORDINATOR_LOAD_IN_PROGRESS: the coordinator repeats it).
        broker.group_log.check_partition(partition)?;
        return broker.offsets.complete_transaction(Some(partition), producer_id, commit).await.map(|_| ());
    }
    let log = broker.leader_log(topic, partition)?;
    let marker = if commit { MarkerType::Commit } else { MarkerType::Abort };
    let written =
        append_marker(&broker.engine, &log, producer_id, producer_epoch, marker, broker.durability(), wall_clock_ms())
            .await?;
    if let Some(offset) = written {
        let min_insync = broker.topics.get(topic).map_or(1, |t| t.min_insync_replicas(&broker.current_config()));
        log.wait_replicated(offset.saturating_add(1), min_insync, MARKER_TIMEOUT).await?;
    }
    Ok(())
}

async fn write_local(
    broker: &Broker,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    partitions: &[(String, i32)],
) -> Result<(), BrokerError> {
    for (topic, partition) in partitions {
        match write_local_partition(broker, producer_id, producer_epoch, commit, topic, *partition).await {
            Ok(()) | Err(BrokerError::UnknownTopicOrPartition) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

async fn write_remote(
    broker: &Broker,
    leader: i32,
    markers: &TxnMarkers,
    partitions: &[(String, i32)],
) -> Result<(), BrokerError> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(markers.producer_id))
        .with_producer_epoch(markers.producer_epoch)
        .with_transaction_result(markers.commit)
        .with_coordinator_epoch(0)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, indexes)| {
                    WritableTxnMarkerTopic::default().with_name(topic_name(name)).with_partition_indexes(indexes)
                })
                .collect(),
        );
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
    let client_id = format!("skein-txn-coordinator-{}", broker.config.node_id);
    let mut connection = PeerConnection::open(broker, leader, client_id, MAX_MARKERS_RESPONSE_BYTES).await?;
    let response = connection.send(&request, WRITE_TXN_MARKERS_VERSION, MARKER_TIMEOUT).await?;
    for result in &response.markers {
        for topic in &result.topics {
            for partition in &topic.partitions {
                match partition.error_code {
                    0 => {}
                    // Deleted meanwhile: nothing left to mark.
                    3 => {}
                    code => {
                        return Err(BrokerError::Storage(format!(
                            "broker {leader} answered {code} for the marker of {}-{}",
                            topic.name.0.as_str(),
                            partition.partition_index
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The AddPartitionsToTxn version a partition leader sends its transaction coordinator (v4+ is the brokers'
/// batched form with `verify_only`).
const ADD_PARTITIONS_VERSION: i16 = 5;
/// The AddOffsetsToTxn version a group coordinator sends the transaction coordinator.
const ADD_OFFSETS_VERSION: i16 = 4;
/// The largest answer to a transaction request accepted from another broker.
const MAX_TXN_RESPONSE_BYTES: usize = 1 << 20;

/// Who coordinates `transactional_id`: `None` when this broker does; `Some(node)`, the leader of the id's
/// `__transaction_state` partition, when another broker does.
pub(crate) fn remote_coordinator(broker: &Broker, transactional_id: &str) -> Result<Option<i32>, BrokerError> {
    match broker.transactions.check_coordinator(transactional_id) {
        Ok(()) => Ok(None),
        Err(BrokerError::NotCoordinator(_)) => {
            let leader = crate::txn_log::leader_of(broker, transactional_id)?;
            if leader == broker.config.node_id {
                // Named leader a moment before the partition is loaded here.
                return Err(BrokerError::CoordinatorLoadInProgress(transactional_id.to_owned()));
            }
            Ok(Some(leader))
        }
        Err(err) => Err(err),
    }
}

/// AddPartitionsToTxn at another broker, the transaction coordinator: adds the partitions to the producer's
/// transaction, or (`verify_only`) checks that they are in it (KIP-890).
pub(crate) async fn add_partitions_at(
    broker: &Broker,
    coordinator: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    verify_only: bool,
) -> Result<(), BrokerError> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id.to_owned())))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_verify_only(verify_only)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    AddPartitionsToTxnTopic::default().with_name(topic_name(name)).with_partitions(partitions)
                })
                .collect(),
        );
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let client_id = format!("skein-broker-{}", broker.config.node_id);
    let mut connection = PeerConnection::open(broker, coordinator, client_id, MAX_TXN_RESPONSE_BYTES).await?;
    let response = connection.send(&request, ADD_PARTITIONS_VERSION, MARKER_TIMEOUT).await?;
    let codes = std::iter::once(response.error_code).chain(
        response
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| p.partition_error_code),
    );
    match codes.into_iter().find(|&code| code != 0) {
        None => Ok(()),
        Some(code) => Err(BrokerError::FromBroker { node_id: coordinator, code }),
    }
}

/// AddOffsetsToTxn at another broker, the transaction coordinator: the group joins the producer's transaction
/// (a TxnOffsetCommit v5+ adds it itself, Transactions V2).
pub(crate) async fn add_offsets_at(
    broker: &Broker,
    coordinator: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    group_id: &str,
) -> Result<(), BrokerError> {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id.to_owned())))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(producer_epoch)
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_owned())));
    let client_id = format!("skein-broker-{}", broker.config.node_id);
    let mut connection = PeerConnection::open(broker, coordinator, client_id, MAX_TXN_RESPONSE_BYTES).await?;
    let response = connection.send(&request, ADD_OFFSETS_VERSION, MARKER_TIMEOUT).await?;
    match response.error_code {
        0 => Ok(()),
        code => Err(BrokerError::FromBroker { node_id: coordinator, code }),
    }
}
