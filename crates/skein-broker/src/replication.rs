//! Partition replication between brokers, Kafka's way: a follower fetches from each partition's leader with
//! Fetch requests that name it as a replica (its node id and broker epoch), appends the leader's batches
//! unchanged and takes the leader's high watermark; a leader keeps its ISR current through the controller
//! (AlterPartition). One fetcher task per leader broker serves every partition this node follows there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use skein_core::{BrokerError, wall_clock_ms};
use skein_log::PartitionLog;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::broker::Broker;
use crate::peer::PeerConnection;

/// The Fetch version followers send: topic ids (v13+) and the replica state with the broker epoch (v15+).
const REPLICA_FETCH_VERSION: i16 = 15;
/// How long a follower's fetch waits at the leader for new records.
const REPLICA_FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition and per response a follower asks for.
const REPLICA_FETCH_PARTITION_BYTES: i32 = 1 << 20;
const REPLICA_FETCH_RESPONSE_BYTES: i32 = 10 << 20;
/// The largest response frame a follower accepts: the response limit plus room for the framing.
const MAX_RESPONSE_FRAME_BYTES: usize = (REPLICA_FETCH_RESPONSE_BYTES as usize) + (1 << 20);
/// After an error (no connection, the leader refusing), wait this long before fetching again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How often a leader checks whether its ISRs should change.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// A partition this node follows.
#[derive(Clone)]
struct Followed {
    topic_id: Uuid,
    partition: i32,
    leader_epoch: i32,
    log: Arc<PartitionLog>,
}

impl PartialEq for Followed {
    fn eq(&self, other: &Self) -> bool {
        (self.topic_id, self.partition, self.leader_epoch) == (other.topic_id, other.partition, other.leader_epoch)
            && Arc::ptr_eq(&self.log, &other.log)
    }
}

/// Runs the fetchers for every partition this node follows, and the ISR checks for every partition it leads,
/// until `shutdown`.
pub async fn run(broker: Arc<Broker>, shutdown: CancellationToken) {
    let isr = tokio::spawn(maintain_isrs(Arc::clone(&broker), shutdown.child_token()));
    let mut images = broker.cluster.quorum().subscribe();
    let mut fetchers: HashMap<i32, watch::Sender<Vec<Followed>>> = HashMap::new();
    loop {
        // The broker applies each image to its logs first (roles, new partitions); follow what it applied.
        let image = Arc::clone(&images.borrow_and_update());
        let wanted = followed_partitions(&broker, &image);
        fetchers.retain(|leader, sender| {
            if wanted.contains_key(leader) {
                return true;
            }
            sender.send_replace(Vec::new());
            false
        });
        for (leader, partitions) in wanted {
            match fetchers.get(&leader) {
                Some(sender) => {
                    sender.send_if_modified(|current| {
                        let changed = *current != partitions;
                        if changed {
                            *current = partitions;
                        }
                        changed
                    });
                }
                None => {
                    let (sender, receiver) = watch::channel(partitions);
                    tokio::spawn(fetch_from(Arc::clone(&broker), leader, receiver, shutdown.child_token()));
                    fetchers.insert(leader, sender);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = images.changed() => if changed.is_err() { break },
            // The image is applied to the logs just after it is published: look again shortly.
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    for sender in fetchers.values() {
        sender.send_replace(Vec::new());
    }
    let _ = isr.await;
}

/// The partitions this node follows, by leader: it is a replica, another live broker leads, and the local
/// log has taken the follower role in the current leader epoch.
fn followed_partitions(broker: &Broker, image: &skein_cluster::MetadataImage) -> BTreeMap<i32, Vec<Followed>> {
    let node_id = broker.config.node_id;
    let mut wanted: BTreeMap<i32, Vec<Followed>> = BTreeMap::new();
    for topic in image.topics() {
        let Some(local) = broker.topics.get(&topic.name).filter(|local| local.id == topic.topic_id) else {
            continue;
        };
        for (&partition, registration) in &topic.partitions {
            if registration.leader == node_id
                || registration.leader < 0
                || !registration.replicas.contains(&node_id)
                || !image.is_live(registration.leader)
            {
                continue;
            }
            let Some(log) = local.partition(partition) else { continue };
            wanted.entry(registration.leader).or_default().push(Followed {
                topic_id: topic.topic_id,
                partition,
                leader_epoch: registration.leader_epoch,
                log: Arc::clone(log),
            });
        }
    }
    wanted
}

/// One leader's fetcher: fetches every partition in `partitions` from `leader` until the set is empty.
async fn fetch_from(
    broker: Arc<Broker>,
    leader: i32,
    mut partitions: watch::Receiver<Vec<Followed>>,
    shutdown: CancellationToken,
) {
    let mut connection: Option<PeerConnection> = None;
    loop {
        let current = partitions.borrow_and_update().clone();
        if current.is_empty() || shutdown.is_cancelled() {
            return;
        }
        if connection.is_none() {
            let client_id = format!("skein-replica-{}", broker.config.node_id);
            match PeerConnection::open(&broker, leader, client_id, MAX_RESPONSE_FRAME_BYTES).await {
                Ok(opened) => connection = Some(opened),
                Err(err) => {
                    tracing::debug!(leader, error = %err, "cannot reach the partition leader");
                    if pause(&shutdown, &mut partitions).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else { continue };
        let request = fetch_request(&broker, &current);
        let response = tokio::select! {
            () = shutdown.cancelled() => return,
            response = open.send(&request, REPLICA_FETCH_VERSION, fetch_wait()) => response,
        };
        match response {
            Ok(response) => {
                let progressed = apply_response(&current, response).await;
                if !progressed && pause(&shutdown, &mut partitions).await {
                    return;
                }
            }
            Err(err) => {
                tracing::info!(leader, error = %err, "replica fetch failed");
                connection = None;
                if pause(&shutdown, &mut partitions).await {
                    return;
                }
            }
        }
    }
}

/// How long a follower waits for a fetch's answer: the leader's wait for records, and time to send them.
fn fetch_wait() -> Duration {
    Duration::from_millis(u64::try_from(REPLICA_FETCH_WAIT_MS).unwrap_or(500)) + Duration::from_secs(10)
}

/// Waits out the retry backoff, or less when the followed partitions change. True when the fetcher should stop.
async fn pause(shutdown: &CancellationToken, partitions: &mut watch::Receiver<Vec<Followed>>) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        changed = partitions.changed() => changed.is_err(),
        () = tokio::time::sleep(RETRY_BACKOFF) => false,
    }
}

fn fetch_request(broker: &Broker, partitions: &[Followed]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for followed in partitions {
        let log = &followed.log;
        let partition = FetchPartition::default()
            .with_partition(followed.partition)
            .with_current_leader_epoch(followed.leader_epoch)
            .with_fetch_offset(log.log_end_offset())
            .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
            .with_log_start_offset(log.log_start_offset())
            .with_partition_max_bytes(REPLICA_FETCH_PARTITION_BYTES);
        match topics.iter_mut().find(|t| t.topic_id == followed.topic_id) {
            Some(topic) => topic.partitions.push(partition),
            None => {
                topics.push(FetchTopic::default().with_topic_id(followed.topic_id).with_partitions(vec![partition]))
            }
        }
    }
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(broker.config.node_id))
                .with_replica_epoch(broker.cluster.broker_epoch()),
        )
        .with_max_wait_ms(REPLICA_FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(REPLICA_FETCH_RESPONSE_BYTES)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Applies a leader's answer to the followed logs. True when every partition was answered without error.
async fn apply_response(partitions: &[Followed], response: FetchResponse) -> bool {
    let mut all_ok = response.error_code == 0;
    for topic in response.responses {
        for data in topic.partitions {
            let Some(followed) =
                partitions.iter().find(|f| f.topic_id == topic.topic_id && f.partition == data.partition_index)
            else {
                continue;
            };
            if let Err(err) = apply_partition(followed, data).await {
                all_ok = false;
                tracing::info!(topic_id = %followed.topic_id, partition = followed.partition, error = %err,
                    "replica fetch of a partition failed");
            }
        }
    }
    all_ok
}

const OFFSET_OUT_OF_RANGE: i16 = 1;

async fn apply_partition(
    followed: &Followed,
    data: kafka_protocol::messages::fetch_response::PartitionData,
) -> Result<(), BrokerError> {
    let log = &followed.log;
    if data.error_code == OFFSET_OUT_OF_RANGE {
        // Behind the leader's log start (retention or DeleteRecords moved it): start again there. Ahead of the
        // leader's log: keep what the leader has committed and fetch the rest again.
        if log.log_end_offset() < data.log_start_offset {
            log.restart_at(data.log_start_offset, followed.leader_epoch).await?;
        } else if data.high_watermark < log.high_watermark() {
            // Never drop what this replica knows committed on a leader's word (as Kafka refuses a truncation
            // below the high watermark without unclean election): a leader that lost it answered wrongly.
            return Err(BrokerError::Storage(format!(
                "the leader's high watermark {} is below this replica's {}: not truncating",
                data.high_watermark,
                log.high_watermark()
            )));
        } else {
            log.truncate_to(data.high_watermark.max(0), followed.leader_epoch).await?;
        }
        return Ok(());
    }
    if data.error_code != 0 {
        return Err(BrokerError::Storage(format!("the leader answered error code {}", data.error_code)));
    }
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let (epoch, end_offset) = (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
        let target = if epoch < 0 {
            // The leader has no epoch this old: keep only what is known committed.
            log.high_watermark()
        } else {
            let (local_epoch, local_end) = log.end_offset_for_epoch(epoch);
            if local_epoch < 0 { log.log_start_offset() } else { end_offset.min(local_end) }
        };
        log.truncate_to(target, followed.leader_epoch).await?;
        return Ok(());
    }
    if let Some(records) = data.records.filter(|r| !r.is_empty()) {
        log.append_replicated(records, followed.leader_epoch, wall_clock_ms()).await?;
    }
    log.follow_leader_marks(data.high_watermark, data.log_start_offset, followed.leader_epoch).await
}

/// Every `ISR_CHECK_INTERVAL`: for each partition this node leads, asks the controller to change the ISR when
/// a follower fell behind for `replica.lag.time.max.ms` or caught up again.
async fn maintain_isrs(broker: Arc<Broker>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ISR_CHECK_INTERVAL) => {}
        }
        let image = broker.image();
        let node_id = broker.config.node_id;
        let max_lag = broker.config.replica_lag_time_max_ms;
        for topic in image.topics() {
            let Some(local) = broker.topics.get(&topic.name).filter(|local| local.id == topic.topic_id) else {
                continue;
            };
            for (&partition, registration) in &topic.partitions {
                if registration.leader != node_id || registration.replicas.len() < 2 {
                    continue;
                }
                let Some(log) = local.partition(partition) else { continue };
                let Some((leader_epoch, new_isr)) = log.isr_change(wall_clock_ms(), max_lag) else { continue };
                if leader_epoch != registration.leader_epoch {
                    log.isr_change_failed();
                    continue;
                }
                tracing::info!(topic = %topic.name, partition, from = ?registration.isr, to = ?new_isr, "changing the ISR");
                let controller = broker.cluster.controller();
                let log = Arc::clone(log);
                let metrics = Arc::clone(&broker.metrics);
                let before = registration.isr.len();
                let (broker_epoch, topic_id, partition_epoch) =
                    (broker.cluster.broker_epoch(), topic.topic_id, registration.partition_epoch);
                tokio::spawn(async move {
                    let result = controller
                        .alter_partition(
                            node_id,
                            broker_epoch,
                            topic_id,
                            partition,
                            leader_epoch,
                            partition_epoch,
                            new_isr,
                        )
                        .await;
                    match result {
                        Ok(changed) => metrics.record_isr_change(before, changed.isr.len()),
                        Err(err) => {
                            tracing::info!(%topic_id, partition, error = %err, "ISR change refused");
                            log.isr_change_failed();
                        }
                    }
                });
            }
        }
    }
}
