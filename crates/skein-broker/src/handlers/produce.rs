//! Produce: validate each partition's batch, append all of a request's batches in one write, answer per partition.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::Decodable;
use skein_core::limits::validate_optional_id;
use skein_core::{BrokerError, IdKind, RecordError, TopicPartition, error_code};
use skein_log::{AppendRequest, append_batches};
use skein_protocol::{RecordBatchHeader, RequestFrame, uncompressed_limit, validate_client_batch, walk_records};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{message, topic_name};
use crate::quotas::QuotaKind;
use crate::router::{Outcome, RequestQuota, busy_time, decode_with_null_prefix, encode};
use crate::topics::TimestampBounds;
use crate::txn_markers;

/// Produce versions below this are advertised (as Kafka 4 does) but refused per partition.
const MIN_SERVED_VERSION: i16 = 3;

pub(crate) async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, frame: RequestFrame) -> Outcome {
    let version = frame.api_version;
    if version < MIN_SERVED_VERSION {
        return refuse_old_version(&frame);
    }
    let mut body = frame.body.clone();
    let request = match ProduceRequest::decode(&mut body, version) {
        Ok(request) => request,
        Err(err) => return Outcome::Close(format!("malformed Produce v{version}: {err}")),
    };
    // As for every id Kafka's parser reads: longer than a request string may be, the request is unparseable.
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.as_str());
    if let Err(err) = validate_optional_id(IdKind::TransactionalId, transactional_id) {
        return Outcome::Close(format!("malformed Produce v{version}: {err}"));
    }
    let acks = request.acks;
    let request = with_topic_names(broker, request, version);
    let (mut response, busy) = busy_time(produce(broker, ctx, request.clone(), version)).await;
    broker.metrics.record_produced(&request, &response);
    // The request's bytes count against the client's producer_byte_rate quota, its handler time against the
    // request quota (Kafka exempts acks=0, which has no response to carry a throttle time).
    let image = broker.image();
    let throttle = broker.quotas.record(&image, QuotaKind::Produce, ctx.quota_user(), &ctx.client_id, frame.body.len());
    if !throttle.is_zero() {
        broker.metrics.quota_throttled("produce");
        ctx.throttle(throttle);
    }
    let quota = if acks == 0 { RequestQuota::Exempt } else { RequestQuota::Of(broker, ctx) };
    let throttle = throttle.max(quota.record(busy));
    if !throttle.is_zero() {
        response.throttle_time_ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
    }
    if acks == 0 {
        // With acks=0 there is no response to carry an error; Kafka closes the connection so the client notices.
        let failed = response.responses.iter().flat_map(|t| &t.partition_responses).any(|p| p.error_code != 0);
        return if failed { Outcome::Close("acks=0 produce failed".into()) } else { Outcome::NoResponse };
    }
    encode::<ProduceRequest>(frame.correlation_id, version, &response)
}

/// From this version topics are named by id (KIP-516).
const TOPIC_IDS_VERSION: i16 = 13;

/// Names each topic of a v13+ request by its id, as the metadata image has it (left empty for an unknown id), so
/// the rest of the handler and the metrics work by name.
fn with_topic_names(broker: &Broker, mut request: ProduceRequest, version: i16) -> ProduceRequest {
    if version >= TOPIC_IDS_VERSION {
        let image = broker.image();
        for topic in &mut request.topic_data {
            topic.name = image.topic_by_id(topic.topic_id).map_or_else(Default::default, |t| topic_name(&t.name));
        }
    }
    request
}

/// Produce v0-v2: the body is v3's without `transactional_id`, and the v2 response is laid out as v3's; every
/// partition gets UNSUPPORTED_VERSION. Older layouts (v0, v1) differ, so those connections are closed.
fn refuse_old_version(frame: &RequestFrame) -> Outcome {
    if frame.api_version < 2 {
        return Outcome::Close(format!("Produce v{} is not supported", frame.api_version));
    }
    let Some(request) = decode_with_null_prefix::<ProduceRequest>(&frame.body, MIN_SERVED_VERSION) else {
        return Outcome::Close("malformed Produce v2".into());
    };
    let unsupported = BrokerError::UnsupportedVersion { api_key: 0, version: frame.api_version };
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            TopicProduceResponse::default().with_name(topic.name.clone()).with_partition_responses(
                topic.partition_data.iter().map(|p| error_partition(p.index, &unsupported)).collect(),
            )
        })
        .collect();
    if request.acks == 0 {
        return Outcome::Close("acks=0 produce with an unsupported version".into());
    }
    encode::<ProduceRequest>(
        frame.correlation_id,
        MIN_SERVED_VERSION,
        &ProduceResponse::default().with_responses(responses),
    )
}

/// A refused partition. As Kafka's, its error message is sent only with the record errors of a batch its log
/// validator refused; every other refusal is the error code alone.
fn error_partition(index: i32, error: &BrokerError) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error_code(error))
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    match error {
        BrokerError::InvalidRecords(record_errors) | BrokerError::InvalidTimestamps(record_errors) => {
            response.with_error_message(message(error.to_string())).with_record_errors(
                record_errors
                    .iter()
                    .map(|record_error| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(record_error.batch_index)
                            .with_batch_index_error_message(message(record_error.message.clone()))
                    })
                    .collect(),
            )
        }
        _ => response,
    }
}

/// A record's timestamp when it has none (Kafka's `RecordBatch.NO_TIMESTAMP`): never out of range.
const NO_TIMESTAMP: i64 = -1;

/// Reads every record of a client batch as Kafka's log validator does (count, inner offsets, framing), so a
/// batch whose records do not match its header is refused before anything is written. Decompressing is CPU work
/// bounded by the topic's limit, so compressed batches are read on the blocking pool.
///
/// Each record is then checked as Kafka checks it, and every record that fails is reported by its index in the
/// batch (KIP-467), the whole batch refused: on a compacted topic (`compacted` names the partition) a record needs
/// a key, since compaction keeps the latest record of each key; on a CreateTime topic (`timestamps`) a record's
/// timestamp must lie within the topic's bounds around `now_ms`. One timestamp error makes the batch's error
/// INVALID_TIMESTAMP, else it is INVALID_RECORD.
async fn validate_records(
    records: Bytes,
    header: RecordBatchHeader,
    limit: usize,
    compacted: Option<TopicPartition>,
    timestamps: Option<TimestampBounds>,
    now_ms: i64,
) -> Result<Bytes, BrokerError> {
    let walk = move || {
        let mut errors = Vec::new();
        let mut timestamp_errors = false;
        walk_records(&records, &header, limit, |record| {
            // A null key has length -1; the walk has checked that offset deltas count 0, 1, 2, ...
            if let Some(topic_partition) = compacted.as_ref().filter(|_| record.key_length < 0) {
                // Kafka 4.3's message, word for word.
                let message =
                    format!("Compacted topic cannot accept message without key in topic partition {topic_partition}");
                errors.push(RecordError { batch_index: record.offset_delta, message });
            } else if let Some(bounds) = timestamps {
                let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
                let too_old = now_ms.wrapping_sub(timestamp) > bounds.before_max_ms;
                let too_new = timestamp.wrapping_sub(now_ms) > bounds.after_max_ms;
                if timestamp != NO_TIMESTAMP && (too_old || too_new) {
                    // Kafka's message; its bounds are computed in Java's wrapping arithmetic, so they are too.
                    let message = format!(
                        "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be \
                         within [{}, {}]",
                        record.offset_delta,
                        now_ms.wrapping_sub(bounds.before_max_ms),
                        now_ms.wrapping_add(bounds.after_max_ms)
                    );
                    errors.push(RecordError { batch_index: record.offset_delta, message });
                    timestamp_errors = true;
                }
            }
            Ok(())
        })?;
        if errors.is_empty() {
            Ok(records)
        } else if timestamp_errors {
            Err(BrokerError::InvalidTimestamps(errors))
        } else {
            Err(BrokerError::InvalidRecords(errors))
        }
    };
    if header.compression_codec() == 0 {
        walk()
    } else {
        tokio::task::spawn_blocking(walk)
            .await
            .map_err(|err| BrokerError::Storage(format!("record validation did not finish: {err}")))?
    }
}

/// A failed verification of a transactional batch as the producer should see it: the coordinator being away,
/// loading or busy ending the transaction is NOT_ENOUGH_REPLICAS (every producer retries that), as Kafka answers;
/// a fenced epoch is INVALID_PRODUCER_EPOCH, as a partition leader says it.
fn unverified(err: BrokerError) -> BrokerError {
    const RETRIABLE: [i16; 4] = [14, 15, 16, 51];
    match err {
        BrokerError::CoordinatorLoadInProgress(_)
        | BrokerError::CoordinatorNotAvailable(_)
        | BrokerError::NotCoordinator(_)
        | BrokerError::ConcurrentTransactions
        | BrokerError::Storage(_)
        | BrokerError::RequestTimedOut(_)
        | BrokerError::LeaderNotAvailable => BrokerError::TransactionNotVerified(err.to_string()),
        BrokerError::FromBroker { code, .. } if RETRIABLE.contains(&code) => {
            BrokerError::TransactionNotVerified(err.to_string())
        }
        // PRODUCER_FENCED at the coordinator.
        BrokerError::FromBroker { node_id, code: 90 } => BrokerError::FromBroker { node_id, code: 47 },
        other => other,
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Where each partition of the request stands: answered already (an error), or waiting for the append.
enum Slot {
    Done(PartitionProduceResponse),
    Appending { index: i32, request_position: usize },
}

/// What acks=all waits for once a batch is appended: its log, its records' count and the topic's
/// `min.insync.replicas`.
struct Replication {
    log: Arc<skein_log::PartitionLog>,
    records: i64,
    min_insync: usize,
}

/// From this version a transactional produce adds its partition to the transaction itself (Transactions V2).
const ADDS_PARTITIONS_VERSION: i16 = 12;

async fn produce(broker: &Arc<Broker>, ctx: &RequestContext, request: ProduceRequest, version: i16) -> ProduceResponse {
    let adds_partitions = version >= ADDS_PARTITIONS_VERSION;
    let acks_valid = matches!(request.acks, -1..=1);
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
    let authorization = broker.authorization(ctx);
    // As Kafka: a transactional produce without WRITE on its transactional id fails as a whole.
    let transaction_refused = transactional_id
        .as_deref()
        .is_some_and(|id| !authorization.allows(AclOperation::Write, ResourceType::TransactionalId, id));
    // Transactional batches are checked by the id's coordinator: this broker's, held until the append is durable
    // so the transaction cannot end between its check and the append, or another broker's (AddPartitionsToTxn).
    let coordinator = transactional_id.as_deref().map(|id| txn_markers::remote_coordinator(broker, id));
    let mut verifier = match (&coordinator, transactional_id.as_deref()) {
        (Some(Ok(None)), Some(id)) => Some(broker.transactions.produce_verifier(id).await),
        _ => None,
    };
    let mut appends = Vec::new();
    let mut replications = Vec::new();
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let mut topics: Vec<(kafka_protocol::messages::TopicName, uuid::Uuid, Vec<Slot>)> = Vec::new();
    for topic_data in request.topic_data {
        let topic_name = topic_data.name.0.to_string();
        // As Kafka: a v13 topic id no topic has is UNKNOWN_TOPIC_ID, before any authorization of the topic.
        let unknown_id = version >= TOPIC_IDS_VERSION && topic_name.is_empty();
        let topic_refused =
            transaction_refused || !authorization.allows(AclOperation::Write, ResourceType::Topic, &topic_name);
        let mut slots = Vec::with_capacity(topic_data.partition_data.len());
        for partition_data in topic_data.partition_data {
            let index = partition_data.index;
            let prepared = async {
                if transaction_refused {
                    return Err(BrokerError::TransactionalIdAuthorizationFailed);
                }
                if unknown_id {
                    return Err(BrokerError::UnknownTopicId);
                }
                if topic_refused {
                    return Err(BrokerError::TopicAuthorizationFailed);
                }
                if !acks_valid {
                    return Err(BrokerError::InvalidRequiredAcks(request.acks));
                }
                if skein_core::types::is_internal_topic(&topic_name) {
                    // As Kafka: only the coordinators write to their internal topics, and the refusal comes
                    // before leadership, so every broker gives the same answer.
                    return Err(BrokerError::InvalidTopic(format!("Cannot append to internal topic {topic_name}")));
                }
                let log = broker.leader_log(&topic_name, index)?;
                let topic = broker.topics.get(&topic_name).ok_or(BrokerError::UnknownTopicOrPartition)?;
                let records = partition_data
                    .records
                    .ok_or_else(|| BrokerError::InvalidRecord("produce request carries no records".into()))?;
                let current = broker.current_config();
                let max = topic.max_message_bytes(&current);
                if records.len() > max {
                    return Err(BrokerError::MessageTooLarge(format!(
                        "the batch is {} bytes, larger than max.message.bytes ({max}) of topic {}",
                        records.len(),
                        topic.name
                    )));
                }
                let min_insync = topic.min_insync_replicas(&current);
                if acks == -1 && log.isr_size() < min_insync {
                    return Err(BrokerError::NotEnoughReplicas { isr: log.isr_size(), min: min_insync });
                }
                let header = validate_client_batch(&records)?;
                let compacted = topic.is_compacted(&current).then(|| log.topic_partition.clone());
                let timestamps = topic.timestamp_bounds(&current);
                let limit = uncompressed_limit(max);
                let records = validate_records(records, header, limit, compacted, timestamps, now_ms()).await?;
                let log_append_time = topic.uses_log_append_time(&current).then(now_ms);
                Ok((AppendRequest { log, records, header, log_append_time }, min_insync))
            }
            .await;
            let prepared = match prepared {
                Ok((append, min_insync)) if append.header.is_transactional() => {
                    // Transactional batches go in only for partitions of the producer's ongoing transaction.
                    let partition = (topic_data.name.0.to_string(), index);
                    let header = &append.header;
                    let verified = match (&transactional_id, verifier.as_mut(), &coordinator) {
                        (Some(_), Some(verifier), _) => {
                            verifier
                                .verify(
                                    header.producer_id,
                                    header.producer_epoch,
                                    &partition,
                                    adds_partitions,
                                    now_ms(),
                                )
                                .await
                        }
                        (Some(transactional_id), None, Some(Ok(Some(node)))) => {
                            txn_markers::add_partitions_at(
                                broker,
                                *node,
                                transactional_id,
                                header.producer_id,
                                header.producer_epoch,
                                std::slice::from_ref(&partition),
                                !adds_partitions,
                            )
                            .await
                        }
                        (Some(_), None, Some(Err(err))) => Err(err.clone()),
                        _ => Err(BrokerError::InvalidRecord("transactional batch without a transactional id".into())),
                    };
                    verified.map_err(unverified).map(|()| (append, min_insync))
                }
                other => other,
            };
            slots.push(match prepared {
                Ok((append, min_insync)) => {
                    if acks == -1 {
                        let records = i64::from(append.header.last_offset_delta) + 1;
                        replications
                            .push((appends.len(), Replication { log: Arc::clone(&append.log), records, min_insync }));
                    }
                    appends.push(append);
                    Slot::Appending { index, request_position: appends.len() - 1 }
                }
                Err(err) => {
                    tracing::debug!(topic = %topic_data.name.0, partition = index, error = %err, "produce refused");
                    let mut response = error_partition(index, &err);
                    if let BrokerError::InvalidRecords(_) = err {
                        // Kafka answers refused records with the partition's log start offset (its log was found).
                        response.log_start_offset =
                            broker.leader_log(&topic_name, index).map_or(-1, |log| log.log_start_offset());
                    }
                    Slot::Done(response)
                }
            });
        }
        topics.push((topic_data.name, topic_data.topic_id, slots));
    }

    let appended = if appends.is_empty() {
        Ok(Vec::new())
    } else {
        append_batches(&broker.engine, appends, broker.durability(), now_ms()).await
    };
    drop(verifier);
    if let Err(err) = &appended {
        tracing::error!(error = %err, "append failed");
    }
    // acks=all: each appended batch is acknowledged once the in-sync replicas have it.
    let mut appended = appended;
    if let Ok(results) = &mut appended {
        let waits = replications.into_iter().filter_map(|(position, replication)| {
            let base_offset = results.get(position)?.as_ref().ok()?.base_offset;
            Some(async move {
                let end = base_offset + replication.records;
                (position, replication.log.wait_replicated(end, replication.min_insync, timeout).await)
            })
        });
        for (position, outcome) in futures::future::join_all(waits).await {
            if let (Err(err), Some(result)) = (outcome, results.get_mut(position)) {
                tracing::debug!(error = %err, "acks=all produce not acknowledged");
                *result = Err(err);
            }
        }
    }

    let responses = topics
        .into_iter()
        .map(|(name, topic_id, slots)| {
            let partition_responses = slots
                .into_iter()
                .map(|slot| match slot {
                    Slot::Done(response) => response,
                    Slot::Appending { index, request_position } => match &appended {
                        Ok(results) => match results.get(request_position) {
                            Some(Ok(result)) => PartitionProduceResponse::default()
                                .with_index(index)
                                .with_base_offset(result.base_offset)
                                .with_log_append_time_ms(result.log_append_time)
                                .with_log_start_offset(result.log_start_offset),
                            Some(Err(err)) => error_partition(index, err),
                            None => error_partition(index, &BrokerError::Storage("append result missing".into())),
                        },
                        Err(err) => error_partition(index, err),
                    },
                })
                .collect();
            // v13 answers by topic id (the name is not sent).
            let answered = TopicProduceResponse::default().with_partition_responses(partition_responses);
            if version >= TOPIC_IDS_VERSION {
                answered.with_topic_id(topic_id)
            } else {
                answered.with_name(topic_name(name.0.as_str()))
            }
        })
        .collect();
    let mut response = ProduceResponse::default().with_responses(responses);
    crate::handlers::leader_hints::add_to_produce(&broker.image(), &mut response, version);
    response
}
