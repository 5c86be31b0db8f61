//! The supported-API table, dispatch by api key, and response encoding.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};
use skein_core::BrokerError;
use skein_core::limits::{self, IdKind};
use skein_protocol::{RequestFrame, encode_response};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers;
use crate::metrics::ErrorCodes;
use crate::quotas::ThrottleTime;

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

pub use skein_protocol::apis::{SUPPORTED_APIS, supported_versions};

/// Serves one request from `ctx` and counts it in the metrics.
pub async fn handle_request(broker: &Arc<Broker>, frame: RequestFrame, ctx: &RequestContext) -> Outcome {
    let started = Instant::now();
    let (api_key, api_version) = (frame.api_key, frame.api_version);
    let outcome = dispatch(broker, frame, ctx).await;
    broker.metrics.record_request(api_key, api_version, &outcome, started.elapsed());
    outcome
}

async fn dispatch(broker: &Arc<Broker>, frame: RequestFrame, ctx: &RequestContext) -> Outcome {
    let client_host = ctx.client_host();
    let Ok(key) = ApiKey::try_from(frame.api_key) else {
        return Outcome::Close(format!("unknown api key {}", frame.api_key));
    };
    if key == ApiKey::ApiVersions {
        return handlers::api_versions::handle(&frame);
    }
    // The header's i16 length keeps a client id within the limit; checked all the same, as every other id is.
    if let Err(err) = limits::validate_optional_id(IdKind::ClientId, frame.client_id.as_deref()) {
        return Outcome::Close(format!("{key:?} request refused: {err}"));
    }
    let version = frame.api_version;
    match supported_versions(key) {
        Some((min, max)) if (min..=max).contains(&version) => {}
        _ => return Outcome::Close(format!("unsupported version {version} of {key:?}")),
    }
    let quota = RequestQuota::Of(broker, ctx);
    match key {
        ApiKey::Produce => handlers::produce::handle(broker, ctx, frame).await,
        ApiKey::Fetch => respond(quota, frame, |req, v| handlers::fetch::handle(broker, ctx, req, v)).await,
        ApiKey::ListOffsets => {
            respond(quota, frame, |req, v| handlers::list_offsets::handle(broker, ctx, req, v)).await
        }
        ApiKey::Metadata => respond(quota, frame, |req, v| handlers::metadata::handle(broker, ctx, req, v)).await,
        ApiKey::CreateTopics => {
            respond(quota, frame, |req, v| handlers::create_topics::handle(broker, ctx, req, v)).await
        }
        ApiKey::DeleteTopics => {
            respond(quota, frame, |req, v| handlers::delete_topics::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeConfigs => {
            respond(quota, frame, |req, v| async move { handlers::describe_configs::handle(broker, ctx, req, v) }).await
        }
        ApiKey::InitProducerId => {
            let handler = |req, v| handlers::init_producer_id::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::init_producer_id::check_ids, handler).await
        }
        ApiKey::FindCoordinator => {
            let handler = |req, v| handlers::find_coordinator::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::find_coordinator::check_ids, handler).await
        }
        ApiKey::JoinGroup => {
            let client = (frame.client_id.clone().unwrap_or_default(), client_host.clone());
            let handler = |req, v| handlers::join_group::handle(broker, ctx, req, v, client);
            respond_checked(quota, frame, handlers::join_group::check_ids, handler).await
        }
        ApiKey::SyncGroup => {
            let handler = |req, v| handlers::sync_group::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::sync_group::check_ids, handler).await
        }
        ApiKey::Heartbeat => {
            let handler = |req, v| handlers::heartbeat::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::heartbeat::check_ids, handler).await
        }
        ApiKey::LeaveGroup => {
            let handler = |req, v| handlers::leave_group::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::leave_group::check_ids, handler).await
        }
        ApiKey::OffsetCommit => {
            let handler = |req, v| handlers::offset_commit::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::offset_commit::check_ids, handler).await
        }
        ApiKey::OffsetFetch => {
            let handler = |req, v| handlers::offset_fetch::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::offset_fetch::check_ids, handler).await
        }
        ApiKey::ListGroups => respond(quota, frame, |req, v| handlers::list_groups::handle(broker, ctx, req, v)).await,
        ApiKey::DescribeGroups => {
            let handler = |req, v| handlers::describe_groups::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::describe_groups::check_ids, handler).await
        }
        ApiKey::DeleteGroups => {
            let handler = |req, v| handlers::delete_groups::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::delete_groups::check_ids, handler).await
        }
        ApiKey::OffsetDelete => {
            let handler = |req, v| handlers::offset_delete::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::offset_delete::check_ids, handler).await
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let client = (frame.client_id.clone().unwrap_or_default(), client_host.clone());
            let handler = |req, v| handlers::consumer_group_heartbeat::handle(broker, ctx, req, v, client);
            respond_checked(quota, frame, handlers::consumer_group_heartbeat::check_ids, handler).await
        }
        ApiKey::ConsumerGroupDescribe => {
            let handler = |req, v| handlers::consumer_group_describe::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::consumer_group_describe::check_ids, handler).await
        }
        ApiKey::AddPartitionsToTxn => {
            let handler = |req, v| handlers::add_partitions_to_txn::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::add_partitions_to_txn::check_ids, handler).await
        }
        ApiKey::AddOffsetsToTxn => {
            let handler = |req, v| handlers::add_offsets_to_txn::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::add_offsets_to_txn::check_ids, handler).await
        }
        ApiKey::EndTxn => {
            let handler = |req, v| handlers::end_txn::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::end_txn::check_ids, handler).await
        }
        ApiKey::TxnOffsetCommit => {
            let handler = |req, v| handlers::txn_offset_commit::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::txn_offset_commit::check_ids, handler).await
        }
        ApiKey::WriteTxnMarkers => {
            // Between brokers: exempt from request quotas, as Kafka.
            respond(RequestQuota::Exempt, frame, |req, v| handlers::write_txn_markers::handle(broker, ctx, req, v))
                .await
        }
        ApiKey::DescribeTransactions => {
            let handler = |req, v| handlers::describe_transactions::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::describe_transactions::check_ids, handler).await
        }
        ApiKey::ListTransactions => {
            respond(quota, frame, |req, v| handlers::list_transactions::handle(broker, ctx, req, v)).await
        }
        ApiKey::CreatePartitions => {
            respond(quota, frame, |req, v| handlers::create_partitions::handle(broker, ctx, req, v)).await
        }
        ApiKey::DeleteRecords => {
            respond(quota, frame, |req, v| handlers::delete_records::handle(broker, ctx, req, v)).await
        }
        ApiKey::AlterConfigs => {
            respond(quota, frame, |req, v| handlers::alter_configs::handle_alter(broker, ctx, req, v)).await
        }
        ApiKey::IncrementalAlterConfigs => {
            respond(quota, frame, |req, v| handlers::alter_configs::handle_incremental(broker, ctx, req, v)).await
        }
        ApiKey::DescribeCluster => {
            respond(quota, frame, |req, v| handlers::describe_cluster::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeLogDirs => {
            respond(quota, frame, |req, v| handlers::describe_log_dirs::handle(broker, ctx, req, v)).await
        }
        ApiKey::AlterReplicaLogDirs => {
            respond(quota, frame, |req, v| handlers::alter_replica_log_dirs::handle(broker, ctx, req, v)).await
        }
        ApiKey::AlterPartitionReassignments => {
            respond(quota, frame, |req, v| handlers::alter_partition_reassignments::handle(broker, ctx, req, v)).await
        }
        ApiKey::ListPartitionReassignments => {
            respond(quota, frame, |req, v| handlers::list_partition_reassignments::handle(broker, ctx, req, v)).await
        }
        ApiKey::ElectLeaders => {
            respond(quota, frame, |req, v| handlers::elect_leaders::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeQuorum => {
            respond(quota, frame, |req, v| handlers::describe_quorum::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeTopicPartitions => {
            respond(quota, frame, |req, v| handlers::describe_topic_partitions::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeProducers => {
            respond(quota, frame, |req, v| handlers::describe_producers::handle(broker, ctx, req, v)).await
        }
        ApiKey::OffsetForLeaderEpoch => {
            respond(quota, frame, |req, _| async move { handlers::offset_for_leader_epoch::handle(broker, ctx, req) })
                .await
        }
        ApiKey::DescribeAcls => {
            respond(quota, frame, |req, v| async move { handlers::describe_acls::handle(broker, ctx, req, v) }).await
        }
        ApiKey::CreateAcls => {
            let handler = |req, v| handlers::create_acls::handle(broker, ctx, req, v);
            respond_checked(quota, frame, handlers::create_acls::check_codes, handler).await
        }
        ApiKey::DeleteAcls => respond(quota, frame, |req, v| handlers::delete_acls::handle(broker, ctx, req, v)).await,
        // Only a SASL listener's unauthenticated connection authenticates (crate::sasl); here the state is wrong.
        ApiKey::SaslHandshake => {
            respond(quota, frame, |req: kafka_protocol::messages::SaslHandshakeRequest, _| async move {
                let err = BrokerError::IllegalSaslState(format!(
                    "Unexpected handshake request with client mechanism {}",
                    req.mechanism.as_str()
                ));
                kafka_protocol::messages::SaslHandshakeResponse::default().with_error_code(skein_core::error_code(&err))
            })
            .await
        }
        ApiKey::SaslAuthenticate => {
            respond(quota, frame, |_: kafka_protocol::messages::SaslAuthenticateRequest, _| async move {
                // Kafka 4.3's wording, whatever the listener.
                let err = BrokerError::IllegalSaslState(
                    "SaslAuthenticate request received after successful authentication".into(),
                );
                kafka_protocol::messages::SaslAuthenticateResponse::default()
                    .with_error_code(skein_core::error_code(&err))
                    .with_error_message(handlers::message(err.to_string()))
            })
            .await
        }
        ApiKey::DescribeClientQuotas => {
            respond(quota, frame, |req, v| async move { handlers::describe_client_quotas::handle(broker, ctx, req, v) })
                .await
        }
        ApiKey::AlterClientQuotas => {
            respond(quota, frame, |req, v| handlers::alter_client_quotas::handle(broker, ctx, req, v)).await
        }
        ApiKey::DescribeUserScramCredentials => {
            respond(quota, frame, |req, v| handlers::describe_user_scram_credentials::handle(broker, ctx, req, v)).await
        }
        ApiKey::AlterUserScramCredentials => {
            respond(quota, frame, |req, v| handlers::alter_user_scram_credentials::handle(broker, ctx, req, v)).await
        }
        ApiKey::CreateDelegationToken => {
            respond(quota, frame, |req, v| handlers::delegation_tokens::create(broker, ctx, req, v)).await
        }
        ApiKey::RenewDelegationToken => {
            respond(quota, frame, |req, v| handlers::delegation_tokens::renew(broker, ctx, req, v)).await
        }
        ApiKey::ExpireDelegationToken => {
            respond(quota, frame, |req, v| handlers::delegation_tokens::expire(broker, ctx, req, v)).await
        }
        ApiKey::DescribeDelegationToken => {
            respond(quota, frame, |req, v| handlers::delegation_tokens::describe(broker, ctx, req, v)).await
        }
        ApiKey::ListConfigResources => {
            respond(quota, frame, |req, v| handlers::list_config_resources::handle(broker, ctx, req, v)).await
        }
        ApiKey::AddRaftVoter => respond(quota, frame, |req, v| handlers::raft_voters::add(broker, ctx, req, v)).await,
        ApiKey::RemoveRaftVoter => {
            respond(quota, frame, |req, v| handlers::raft_voters::remove(broker, ctx, req, v)).await
        }
        ApiKey::UpdateFeatures => {
            respond(quota, frame, |req, v| handlers::update_features::handle(broker, ctx, req, v)).await
        }
        ApiKey::UnregisterBroker => {
            respond(quota, frame, |req, v| handlers::unregister_broker::handle(broker, ctx, req, v)).await
        }
        ApiKey::StreamsGroupHeartbeat => {
            respond(quota, frame, |req, _| async move { handlers::streams_groups::heartbeat(req) }).await
        }
        ApiKey::StreamsGroupDescribe => {
            respond(quota, frame, |req, _| async move { handlers::streams_groups::describe(req) }).await
        }
        ApiKey::ShareGroupHeartbeat => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::heartbeat(req) }).await
        }
        ApiKey::ShareGroupDescribe => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::describe(req) }).await
        }
        ApiKey::ShareFetch => respond(quota, frame, |req, _| async move { handlers::share_groups::fetch(req) }).await,
        ApiKey::ShareAcknowledge => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::acknowledge(req) }).await
        }
        ApiKey::DescribeShareGroupOffsets => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::describe_offsets(req) }).await
        }
        ApiKey::AlterShareGroupOffsets => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::alter_offsets(req) }).await
        }
        ApiKey::DeleteShareGroupOffsets => {
            respond(quota, frame, |req, _| async move { handlers::share_groups::delete_offsets(req) }).await
        }
        // The share coordinator's state APIs are between brokers: exempt from request quotas, as Kafka.
        ApiKey::InitializeShareGroupState => {
            let handler = |req, _| async move { handlers::share_groups::initialize_state(broker, ctx, req) };
            respond(RequestQuota::Exempt, frame, handler).await
        }
        ApiKey::ReadShareGroupState => {
            let handler = |req, _| async move { handlers::share_groups::read_state(broker, ctx, req) };
            respond(RequestQuota::Exempt, frame, handler).await
        }
        ApiKey::WriteShareGroupState => {
            let handler = |req, _| async move { handlers::share_groups::write_state(broker, ctx, req) };
            respond(RequestQuota::Exempt, frame, handler).await
        }
        ApiKey::DeleteShareGroupState => {
            let handler = |req, _| async move { handlers::share_groups::delete_state(broker, ctx, req) };
            respond(RequestQuota::Exempt, frame, handler).await
        }
        ApiKey::ReadShareGroupStateSummary => {
            let handler = |req, _| async move { handlers::share_groups::read_state_summary(broker, ctx, req) };
            respond(RequestQuota::Exempt, frame, handler).await
        }
        other => Outcome::Close(format!("{other:?} is not served")),
    }
}

/// Decodes the body as `R`, runs the handler, encodes its response at the request's version.
pub(crate) async fn respond<R, F, Fut>(quota: RequestQuota<'_>, frame: RequestFrame, handler: F) -> Outcome
where
    R: Request,
    R::Response: ErrorCodes + ThrottleTime,
    F: FnOnce(R, i16) -> Fut,
    Fut: Future<Output = R::Response>,
{
    respond_checked(quota, frame, |_: &R| Ok(()), handler).await
}

/// Like [`respond`], with `check_ids` run on the decoded request before the handler: a request carrying an id longer
/// than Kafka's request parser accepts ([`skein_core::limits`]) closes the connection unanswered, as Kafka closes it.
pub(crate) async fn respond_checked<R, C, F, Fut>(
    quota: RequestQuota<'_>,
    frame: RequestFrame,
    check_ids: C,
    handler: F,
) -> Outcome
where
    R: Request,
    R::Response: ErrorCodes + ThrottleTime,
    C: FnOnce(&R) -> Result<(), BrokerError>,
    F: FnOnce(R, i16) -> Fut,
    Fut: Future<Output = R::Response>,
{
    let version = frame.api_version;
    let mut body = frame.body;
    let request = match R::decode(&mut body, version) {
        Ok(request) => request,
        Err(err) => return Outcome::Close(format!("malformed request (api key {}, v{version}): {err}", R::KEY)),
    };
    if let Err(err) = check_ids(&request) {
        return Outcome::Close(format!("request refused (api key {}, v{version}): {err}", R::KEY));
    }
    let (mut response, busy) = busy_time(handler(request, version)).await;
    let throttle = quota.record(busy);
    if !throttle.is_zero() {
        response.raise_throttle_time_ms(i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX));
    }
    encode::<R>(frame.correlation_id, version, &response)
}

/// Whose request quota (`request_percentage`) a request's handler time counts against.
#[derive(Clone, Copy)]
pub(crate) enum RequestQuota<'a> {
    Of(&'a Broker, &'a RequestContext),
    /// Authentication and broker-to-broker requests, which Kafka exempts.
    Exempt,
}

impl RequestQuota<'_> {
    /// Records `busy` for the client and answers how long it is throttled; the connection is muted for that long.
    pub(crate) fn record(self, busy: Duration) -> Duration {
        let RequestQuota::Of(broker, ctx) = self else { return Duration::ZERO };
        if ctx.request_quota_exempt.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let throttle = broker.quotas.record_request_time(&broker.image(), ctx.quota_user(), &ctx.client_id, busy);
        if !throttle.is_zero() {
            broker.metrics.quota_throttled("request");
            ctx.throttle(throttle);
        }
        throttle
    }
}

/// Runs `future` and answers its output with the time spent in its polls: the time it ran on a thread, not the
/// time it waited (a fetch's long poll, a produce waiting for its replicas), as Kafka's request quota counts.
pub(crate) async fn busy_time<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let started = Instant::now();
        let poll = future.as_mut().poll(cx);
        busy += started.elapsed();
        poll
    })
    .await;
    (output, busy)
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
