//! Fetch: whole stored batches up to the high watermark (the last stable offset for `read_committed`, with the
//! aborted transactions in range so the client can drop their records), long-polling until `min_bytes` arrive or `max_wait_ms`
//! passes. Sessionless: the response's session id is 0, so clients send full fetch requests (KIP-227 allows it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use skein_core::{BrokerError, error_code};
use skein_log::{Isolation, PartitionLog};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;
use crate::quotas::{ClientQuotaManager, QuotaKind};

/// Longest a fetch may wait, whatever the client asks (Kafka's request timeout bounds it on the client side).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// One partition of the request, resolved.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    log: Result<Arc<PartitionLog>, BrokerError>,
    /// Where this log and the fetcher's diverged: (epoch, end offset) of the fetcher's last fetched epoch here.
    diverging: Option<(i32, i64)>,
    /// An error for this partition although the log is known (its marks go into the answer).
    refused: Option<BrokerError>,
    /// The leader epoch the log led in when the request came: a fetch that waited is answered only while it
    /// still leads in that epoch (a log that stopped leading may have been emptied or truncated meanwhile).
    leader_epoch: i32,
}

/// The fetching replica's node id, for a follower's fetch (`None` for consumers): v15+ carry it in the replica
/// state, older versions in `replica_id`.
fn fetching_replica(request: &FetchRequest, version: i16) -> Option<i32> {
    let id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    (id >= 0).then_some(id)
}

/// KIP-320/595: when the fetcher's last fetched epoch ends here before its fetch offset, or this log has no such
/// epoch, the fetcher's log diverged from this one: it must truncate to the (epoch, end offset) returned. An epoch
/// newer than any this log has cannot be placed at all: OFFSET_OUT_OF_RANGE, as Kafka answers (with this log's
/// marks, from which a follower truncates).
fn divergence(
    log: &PartitionLog,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Result<Option<(i32, i64)>, BrokerError> {
    if last_fetched_epoch < 0 {
        return Ok(None);
    }
    match log.end_offset_for_epoch(last_fetched_epoch) {
        (-1, _) => Err(BrokerError::OffsetOutOfRange {
            offset: fetch_offset,
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
        }),
        (epoch, end_offset) if epoch != last_fetched_epoch || end_offset < fetch_offset => {
            Ok(Some((epoch, end_offset)))
        }
        _ => Ok(None),
    }
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let replica = fetching_replica(&request, version);
    if replica.is_some() {
        // Replication is exempt from the request quota, as in Kafka.
        ctx.exempt_from_request_quota();
    }
    let now_ms = crate::handlers::now_ms();
    // As Kafka: a follower needs CLUSTER_ACTION (else every partition is refused), a consumer READ on each topic.
    let authorization = broker.authorization(ctx);
    let follower_refused = replica.is_some() && !authorization.allows_on_cluster(AclOperation::ClusterAction);
    let image = broker.image();
    let mut topics: Vec<(TopicName, Uuid)> = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for fetch_topic in &request.topics {
        let topic_index = topics.len();
        topics.push((fetch_topic.topic.clone(), fetch_topic.topic_id));
        let name = if version >= 13 {
            image.topic_by_id(fetch_topic.topic_id).map(|topic| topic.name.clone())
        } else {
            Some(fetch_topic.topic.0.to_string())
        };
        let topic_refused = follower_refused
            || (replica.is_none()
                && name.as_deref().is_some_and(|n| !authorization.allows(AclOperation::Read, ResourceType::Topic, n)));
        for partition in &fetch_topic.partitions {
            // v13+ identifies topics by id only.
            let log = if topic_refused {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if version >= 13 {
                broker.leader_log_by_id(fetch_topic.topic_id, partition.partition)
            } else {
                broker.leader_log(fetch_topic.topic.0.as_str(), partition.partition)
            };
            let log = log.and_then(|log| {
                check_leader_epoch(partition.current_leader_epoch, log.leader_epoch())?;
                Ok(log)
            });
            let last_fetched_epoch = if version >= 12 { partition.last_fetched_epoch } else { -1 };
            let (diverging, refused) =
                match log.as_ref().map(|log| divergence(log, last_fetched_epoch, partition.fetch_offset)) {
                    Ok(Ok(diverging)) => (diverging, None),
                    Ok(Err(err)) => (None, Some(err)),
                    Err(_) => (None, None),
                };
            if let (Some(replica), Ok(log), None, None) = (replica, &log, diverging, &refused) {
                // The follower's fetch offset is its log end: the leader learns its progress from it.
                log.record_follower_fetch(replica, partition.fetch_offset, partition.log_start_offset, now_ms);
            }
            let leader_epoch = log.as_ref().map_or(-1, |log| log.leader_epoch());
            wanted.push(Wanted {
                topic_index,
                partition: partition.partition,
                fetch_offset: partition.fetch_offset,
                partition_max_bytes: usize::try_from(partition.partition_max_bytes).unwrap_or(0),
                log,
                diverging,
                refused,
                leader_epoch,
            });
        }
    }

    let mut max_bytes = usize::try_from(request.max_bytes.min(broker.config.fetch_max_bytes)).unwrap_or(0);
    // A consumer with a consumer_byte_rate quota gets at most what its quota allows over the quota window.
    if replica.is_none()
        && let Some((_, quota)) = ClientQuotaManager::quota(&image, QuotaKind::Fetch, ctx.quota_user(), &ctx.client_id)
    {
        max_bytes = max_bytes.min(broker.quotas.max_bytes_per_window(quota));
    }
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let isolation = if replica.is_some() { Isolation::LogEnd } else { Isolation::from_level(request.isolation_level) };

    let partitions = loop {
        // Subscribe before reading so an append between the read and the wait is not missed.
        let mut watchers: Vec<watch::Receiver<i64>> = wanted
            .iter()
            .filter_map(|w| w.log.as_ref().ok())
            .map(|log| if replica.is_some() { log.subscribe_log_end() } else { log.subscribe() })
            .collect();
        let (partitions, total_bytes, any_error) = read_all(&wanted, max_bytes, isolation).await;
        if total_bytes >= min_bytes || any_error || watchers.is_empty() || Instant::now() >= deadline {
            break partitions;
        }
        let changed = select_all(watchers.iter_mut().map(|rx| Box::pin(rx.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break read_all(&wanted, max_bytes, isolation).await.0;
        }
    };

    let mut responses: Vec<FetchableTopicResponse> = topics
        .into_iter()
        .map(|(name, id)| {
            let name = if version >= 13 { TopicName::default() } else { topic_name(name.0.as_str()) };
            FetchableTopicResponse::default().with_topic(name).with_topic_id(id)
        })
        .collect();
    for (w, data) in wanted.iter().zip(partitions) {
        if let (Ok(log), Some(records)) = (&w.log, &data.records) {
            broker.metrics.record_fetched(&log.topic_partition.topic, records.len());
        }
        if let Some(topic) = responses.get_mut(w.topic_index) {
            topic.partitions.push(data);
        }
    }
    if replica.is_none() {
        // The response's bytes count against the consumer's quota; over it, the answer is empty (the records
        // are fetched again later) and the connection muted, as Kafka does.
        let bytes: usize =
            responses.iter().flat_map(|t| &t.partitions).filter_map(|p| p.records.as_ref()).map(|r| r.len()).sum();
        let (user, client_id) = (ctx.quota_user(), ctx.client_id.as_str());
        let throttle = broker.quotas.record(&image, QuotaKind::Fetch, user, client_id, bytes);
        if !throttle.is_zero() {
            broker.quotas.unrecord(&image, QuotaKind::Fetch, user, client_id, bytes);
            broker.metrics.quota_throttled("fetch");
            ctx.throttle(throttle);
            let throttle_ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
            return FetchResponse::default().with_session_id(0).with_throttle_time_ms(throttle_ms);
        }
    }
    let mut response = FetchResponse::default().with_session_id(0).with_responses(responses);
    crate::handlers::leader_hints::add_to_fetch(&broker.image(), &mut response, version);
    response
}

fn check_leader_epoch(requested: i32, current: i32) -> Result<(), BrokerError> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested < current {
        Err(BrokerError::FencedLeaderEpoch { requested, current })
    } else {
        Err(BrokerError::UnknownLeaderEpoch { requested, current })
    }
}

/// Reads every partition once within the request's byte budget.
async fn read_all(wanted: &[Wanted], max_bytes: usize, isolation: Isolation) -> (Vec<PartitionData>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let base = PartitionData::default()
            .with_partition_index(w.partition)
            .with_aborted_transactions((isolation == Isolation::ReadCommitted).then(Vec::new))
            .with_records(Some(Bytes::new()));
        let result = match (&w.log, &w.refused) {
            // Leadership moved while the fetch waited (the log may have been emptied or truncated since).
            (Ok(log), _) if !log.is_leader() || log.leader_epoch() != w.leader_epoch => {
                Err(BrokerError::NotLeaderOrFollower)
            }
            (Ok(_), Some(refused)) => Err(refused.clone()),
            (Ok(log), None) if w.diverging.is_some() => {
                any_error = true;
                Ok(skein_log::FetchRead {
                    records: Bytes::new(),
                    high_watermark: log.high_watermark(),
                    last_stable_offset: log.last_stable_offset(),
                    log_start_offset: log.log_start_offset(),
                    aborted_transactions: None,
                })
            }
            (Ok(log), None) => {
                let budget = w.partition_max_bytes.min(max_bytes.saturating_sub(total));
                // The first batch of the first partition with data is returned whatever its size.
                let read = log.read(w.fetch_offset, budget, total == 0, isolation).await;
                // Leadership may have moved during the read (the role changes before the log is emptied).
                if !log.is_leader() || log.leader_epoch() != w.leader_epoch {
                    Err(BrokerError::NotLeaderOrFollower)
                } else {
                    read
                }
            }
            (Err(err), _) => Err(err.clone()),
        };
        out.push(match result {
            Ok(read) => {
                total += read.records.len();
                let aborted = read.aborted_transactions.map(|aborted| {
                    aborted
                        .into_iter()
                        .map(|(producer_id, first_offset)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(producer_id))
                                .with_first_offset(first_offset)
                        })
                        .collect()
                });
                let base = match w.diverging {
                    Some((epoch, end_offset)) => base
                        .with_diverging_epoch(EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset)),
                    None => base,
                };
                base.with_high_watermark(read.high_watermark)
                    .with_last_stable_offset(read.last_stable_offset)
                    .with_log_start_offset(read.log_start_offset)
                    .with_aborted_transactions(aborted)
                    .with_records(Some(read.records))
            }
            Err(err) => {
                any_error = true;
                let (hw, lso, start) = match &w.log {
                    Ok(log) => (log.high_watermark(), log.last_stable_offset(), log.log_start_offset()),
                    Err(_) => (-1, -1, -1),
                };
                base.with_error_code(error_code(&err))
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(start)
            }
        });
    }
    (out, total, any_error)
}
