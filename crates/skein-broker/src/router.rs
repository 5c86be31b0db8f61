//! The supported-API table, dispatch by api key, and response encoding.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use skein_protocol::{RequestFrame, encode_response};

use crate::broker::Broker;
use crate::handlers;
use crate::metrics::ErrorCodes;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this response frame (length prefix included); `error_codes` are the response's non-zero error codes,
    /// for the metrics.
    Respond { frame: Bytes, error_codes: Vec<i16> },
    /// Send nothing (produce with acks=0).
    NoResponse,
    /// Close the connection, as Kafka does for requests it cannot parse or serve; the reason is logged.
    Close(String),
}

/// Every API Skein serves and the versions it implements. ApiVersions answers from this table, and requests
/// outside it are refused, so what is advertised is exactly what is implemented.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    // Produce is advertised from v0 like Kafka 4 (librdkafka disables compression when the minimum is above 0);
    // v0-v2 are refused per request with UNSUPPORTED_VERSION.
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
];

/// The supported version range of `key`, if Skein serves it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key).map(|(_, min, max)| (*min, *max))
}

/// Serves one request and counts it in the metrics. `client_host` is the peer's address as Kafka reports it in
/// DescribeGroups (`/127.0.0.1`).
pub async fn handle_request(broker: &Arc<Broker>, frame: RequestFrame, client_host: &str) -> Outcome {
    let started = Instant::now();
    let (api_key, api_version) = (frame.api_key, frame.api_version);
    let outcome = dispatch(broker, frame, client_host).await;
    broker.metrics.record_request(api_key, api_version, &outcome, started.elapsed());
    outcome
}

async fn dispatch(broker: &Arc<Broker>, frame: RequestFrame, client_host: &str) -> Outcome {
    let Ok(key) = ApiKey::try_from(frame.api_key) else {
        return Outcome::Close(format!("unknown api key {}", frame.api_key));
    };
    if key == ApiKey::ApiVersions {
        return handlers::api_versions::handle(&frame);
    }
    let version = frame.api_version;
    match supported_versions(key) {
        Some((min, max)) if (min..=max).contains(&version) => {}
        _ => return Outcome::Close(format!("unsupported version {version} of {key:?}")),
    }
    match key {
        ApiKey::Produce => handlers::produce::handle(broker, frame).await,
        ApiKey::Fetch => respond(frame, |req, v| handlers::fetch::handle(broker, req, v)).await,
        ApiKey::ListOffsets => respond(frame, |req, v| handlers::list_offsets::handle(broker, req, v)).await,
        ApiKey::Metadata => respond(frame, |req, v| handlers::metadata::handle(broker, req, v)).await,
        ApiKey::CreateTopics => respond(frame, |req, v| handlers::create_topics::handle(broker, req, v)).await,
        ApiKey::DeleteTopics => respond(frame, |req, v| handlers::delete_topics::handle(broker, req, v)).await,
        ApiKey::DescribeConfigs => {
            respond(frame, |req, v| async move { handlers::describe_configs::handle(broker, req, v) }).await
        }
        ApiKey::InitProducerId => respond(frame, |req, v| handlers::init_producer_id::handle(broker, req, v)).await,
        ApiKey::FindCoordinator => respond(frame, |req, v| handlers::find_coordinator::handle(broker, req, v)).await,
        ApiKey::JoinGroup => {
            let client = (frame.client_id.clone().unwrap_or_default(), client_host.to_string());
            respond(frame, |req, v| handlers::join_group::handle(broker, req, v, client)).await
        }
        ApiKey::SyncGroup => respond(frame, |req, v| handlers::sync_group::handle(broker, req, v)).await,
        ApiKey::Heartbeat => respond(frame, |req, v| handlers::heartbeat::handle(broker, req, v)).await,
        ApiKey::LeaveGroup => respond(frame, |req, v| handlers::leave_group::handle(broker, req, v)).await,
        ApiKey::OffsetCommit => respond(frame, |req, v| handlers::offset_commit::handle(broker, req, v)).await,
        ApiKey::OffsetFetch => respond(frame, |req, v| handlers::offset_fetch::handle(broker, req, v)).await,
        ApiKey::ListGroups => respond(frame, |req, v| handlers::list_groups::handle(broker, req, v)).await,
        ApiKey::DescribeGroups => respond(frame, |req, v| handlers::describe_groups::handle(broker, req, v)).await,
        ApiKey::DeleteGroups => respond(frame, |req, v| handlers::delete_groups::handle(broker, req, v)).await,
        ApiKey::OffsetDelete => respond(frame, |req, v| handlers::offset_delete::handle(broker, req, v)).await,
        ApiKey::ConsumerGroupHeartbeat => {
            let client = (frame.client_id.clone().unwrap_or_default(), client_host.to_string());
            respond(frame, |req, v| handlers::consumer_group_heartbeat::handle(broker, req, v, client)).await
        }
        ApiKey::ConsumerGroupDescribe => {
            respond(frame, |req, v| handlers::consumer_group_describe::handle(broker, req, v)).await
        }
        ApiKey::AddPartitionsToTxn => {
            respond(frame, |req, v| handlers::add_partitions_to_txn::handle(broker, req, v)).await
        }
        ApiKey::AddOffsetsToTxn => respond(frame, |req, v| handlers::add_offsets_to_txn::handle(broker, req, v)).await,
        ApiKey::EndTxn => respond(frame, |req, v| handlers::end_txn::handle(broker, req, v)).await,
        ApiKey::TxnOffsetCommit => respond(frame, |req, v| handlers::txn_offset_commit::handle(broker, req, v)).await,
        ApiKey::DescribeTransactions => {
            respond(frame, |req, v| handlers::describe_transactions::handle(broker, req, v)).await
        }
        ApiKey::ListTransactions => respond(frame, |req, v| handlers::list_transactions::handle(broker, req, v)).await,
        ApiKey::CreatePartitions => respond(frame, |req, v| handlers::create_partitions::handle(broker, req, v)).await,
        ApiKey::DeleteRecords => respond(frame, |req, v| handlers::delete_records::handle(broker, req, v)).await,
        ApiKey::AlterConfigs => respond(frame, |req, v| handlers::alter_configs::handle_alter(broker, req, v)).await,
        ApiKey::IncrementalAlterConfigs => {
            respond(frame, |req, v| handlers::alter_configs::handle_incremental(broker, req, v)).await
        }
        ApiKey::DescribeCluster => respond(frame, |req, v| handlers::describe_cluster::handle(broker, req, v)).await,
        ApiKey::DescribeLogDirs => respond(frame, |req, v| handlers::describe_log_dirs::handle(broker, req, v)).await,
        ApiKey::ListPartitionReassignments => {
            respond(frame, |req, v| handlers::list_partition_reassignments::handle(broker, req, v)).await
        }
        ApiKey::ElectLeaders => respond(frame, |req, v| handlers::elect_leaders::handle(broker, req, v)).await,
        ApiKey::DescribeProducers => {
            respond(frame, |req, v| handlers::describe_producers::handle(broker, req, v)).await
        }
        other => Outcome::Close(format!("{other:?} is not served")),
    }
}

/// Decodes the body as `R`, runs the handler, encodes its response at the request's version.
pub(crate) async fn respond<R, F, Fut>(frame: RequestFrame, handler: F) -> Outcome
where
    R: Request,
    R::Response: ErrorCodes,
    F: FnOnce(R, i16) -> Fut,
    Fut: Future<Output = R::Response>,
{
    let version = frame.api_version;
    let mut body = frame.body;
    let request = match R::decode(&mut body, version) {
        Ok(request) => request,
        Err(err) => return Outcome::Close(format!("malformed request (api key {}, v{version}): {err}", R::KEY)),
    };
    let response = handler(request, version).await;
    encode::<R>(frame.correlation_id, version, &response)
}

/// Encodes a response of `R` at `version` with the header version the protocol prescribes.
pub(crate) fn encode<R: Request>(correlation_id: i32, version: i16, response: &R::Response) -> Outcome
where
    R::Response: ErrorCodes,
{
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    match encode_response(correlation_id, header_version, response, version) {
        Ok(frame) => Outcome::Respond { frame, error_codes: response.error_codes() },
        Err(err) => Outcome::Close(format!("could not encode response (api key {}, v{version}): {err}", R::KEY)),
    }
}

/// Decodes a request body at a version the codec lacks by prefixing what the next version adds. Used for Produce
/// v0-v2, whose layout is v3's without the leading nullable `transactional_id`.
pub(crate) fn decode_with_null_prefix<R: Decodable>(body: &Bytes, as_version: i16) -> Option<R> {
    let mut prefixed = BytesMut::with_capacity(body.len() + 2);
    prefixed.put_i16(-1);
    prefixed.put_slice(body);
    let mut buf = prefixed.freeze();
    R::decode(&mut buf, as_version).ok()
}
