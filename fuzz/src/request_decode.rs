//! The `request_decode` target: what the router does with a request frame body (everything after the 4-byte
//! length), for every api key and version Skein serves: the header with `skein_protocol::decode_request_frame`,
//! then the body as kafka-protocol's request type of that key at that version, as
//! `skein-broker/src/router.rs` does. A decoded request is also encoded back and decoded again, and the batches of
//! a Produce request go through `validate_client_batch` and `walk_records` as in the produce handler.
//!
//! This file is also compiled into `crates/skein-protocol/tests/fuzz_regressions.rs` (`#[path]`), so it uses only
//! what skein-protocol's own tests can: `skein_protocol`, `kafka_protocol`, `bytes`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;

/// The api keys and versions Skein serves (the router's table); `visit_request_type` must know every key listed.
pub use skein_protocol::apis::SUPPORTED_APIS as SERVED_APIS;

/// The lowest Produce version the codec knows; the router decodes v2 as v3 without `transactional_id` and refuses
/// v0 and v1 without decoding.
const PRODUCE_CODEC_MIN_VERSION: i16 = 3;

/// The decompressed-size limit for the records of a produced batch here (see `check_produce`).
const PRODUCE_FUZZ_UNCOMPRESSED_LIMIT: usize = 1 << 20;

/// Work done with the kafka-protocol request type of an api key (the type is only known at run time).
pub trait RequestTypeVisitor {
    type Output;
    fn visit<R: Request + Default>(self) -> Self::Output;
}

/// Calls `visitor` with the request type of `key`: the one list of decoders, for the keys in [`SERVED_APIS`];
/// `None` for any other key.
pub fn visit_request_type<V: RequestTypeVisitor>(key: ApiKey, visitor: V) -> Option<V::Output> {
    Some(match key {
        ApiKey::Produce => visitor.visit::<ProduceRequest>(),
        ApiKey::Fetch => visitor.visit::<FetchRequest>(),
        ApiKey::ListOffsets => visitor.visit::<ListOffsetsRequest>(),
        ApiKey::Metadata => visitor.visit::<MetadataRequest>(),
        ApiKey::ApiVersions => visitor.visit::<ApiVersionsRequest>(),
        ApiKey::CreateTopics => visitor.visit::<CreateTopicsRequest>(),
        ApiKey::DeleteTopics => visitor.visit::<DeleteTopicsRequest>(),
        ApiKey::DescribeConfigs => visitor.visit::<DescribeConfigsRequest>(),
        ApiKey::InitProducerId => visitor.visit::<InitProducerIdRequest>(),
        ApiKey::FindCoordinator => visitor.visit::<FindCoordinatorRequest>(),
        ApiKey::JoinGroup => visitor.visit::<JoinGroupRequest>(),
        ApiKey::SyncGroup => visitor.visit::<SyncGroupRequest>(),
        ApiKey::Heartbeat => visitor.visit::<HeartbeatRequest>(),
        ApiKey::LeaveGroup => visitor.visit::<LeaveGroupRequest>(),
        ApiKey::OffsetCommit => visitor.visit::<OffsetCommitRequest>(),
        ApiKey::OffsetFetch => visitor.visit::<OffsetFetchRequest>(),
        ApiKey::ListGroups => visitor.visit::<ListGroupsRequest>(),
        ApiKey::DescribeGroups => visitor.visit::<DescribeGroupsRequest>(),
        ApiKey::DeleteGroups => visitor.visit::<DeleteGroupsRequest>(),
        ApiKey::OffsetDelete => visitor.visit::<OffsetDeleteRequest>(),
        ApiKey::ConsumerGroupHeartbeat => visitor.visit::<ConsumerGroupHeartbeatRequest>(),
        ApiKey::ConsumerGroupDescribe => visitor.visit::<ConsumerGroupDescribeRequest>(),
        ApiKey::AddPartitionsToTxn => visitor.visit::<AddPartitionsToTxnRequest>(),
        ApiKey::AddOffsetsToTxn => visitor.visit::<AddOffsetsToTxnRequest>(),
        ApiKey::EndTxn => visitor.visit::<EndTxnRequest>(),
        ApiKey::TxnOffsetCommit => visitor.visit::<TxnOffsetCommitRequest>(),
        ApiKey::WriteTxnMarkers => visitor.visit::<WriteTxnMarkersRequest>(),
        ApiKey::DescribeTransactions => visitor.visit::<DescribeTransactionsRequest>(),
        ApiKey::ListTransactions => visitor.visit::<ListTransactionsRequest>(),
        ApiKey::CreatePartitions => visitor.visit::<CreatePartitionsRequest>(),
        ApiKey::DeleteRecords => visitor.visit::<DeleteRecordsRequest>(),
        ApiKey::AlterConfigs => visitor.visit::<AlterConfigsRequest>(),
        ApiKey::IncrementalAlterConfigs => visitor.visit::<IncrementalAlterConfigsRequest>(),
        ApiKey::DescribeCluster => visitor.visit::<DescribeClusterRequest>(),
        ApiKey::DescribeLogDirs => visitor.visit::<DescribeLogDirsRequest>(),
        ApiKey::AlterPartitionReassignments => visitor.visit::<AlterPartitionReassignmentsRequest>(),
        ApiKey::ListPartitionReassignments => visitor.visit::<ListPartitionReassignmentsRequest>(),
        ApiKey::ElectLeaders => visitor.visit::<ElectLeadersRequest>(),
        ApiKey::DescribeProducers => visitor.visit::<DescribeProducersRequest>(),
        ApiKey::DescribeQuorum => visitor.visit::<DescribeQuorumRequest>(),
        ApiKey::DescribeTopicPartitions => visitor.visit::<DescribeTopicPartitionsRequest>(),
        ApiKey::OffsetForLeaderEpoch => visitor.visit::<OffsetForLeaderEpochRequest>(),
        ApiKey::DescribeAcls => visitor.visit::<DescribeAclsRequest>(),
        ApiKey::CreateAcls => visitor.visit::<CreateAclsRequest>(),
        ApiKey::DeleteAcls => visitor.visit::<DeleteAclsRequest>(),
        ApiKey::SaslHandshake => visitor.visit::<SaslHandshakeRequest>(),
        ApiKey::SaslAuthenticate => visitor.visit::<SaslAuthenticateRequest>(),
        ApiKey::DescribeUserScramCredentials => visitor.visit::<DescribeUserScramCredentialsRequest>(),
        ApiKey::AlterUserScramCredentials => visitor.visit::<AlterUserScramCredentialsRequest>(),
        ApiKey::DescribeClientQuotas => visitor.visit::<DescribeClientQuotasRequest>(),
        ApiKey::AlterClientQuotas => visitor.visit::<AlterClientQuotasRequest>(),
        ApiKey::AlterReplicaLogDirs => visitor.visit::<AlterReplicaLogDirsRequest>(),
        ApiKey::CreateDelegationToken => visitor.visit::<CreateDelegationTokenRequest>(),
        ApiKey::RenewDelegationToken => visitor.visit::<RenewDelegationTokenRequest>(),
        ApiKey::ExpireDelegationToken => visitor.visit::<ExpireDelegationTokenRequest>(),
        ApiKey::DescribeDelegationToken => visitor.visit::<DescribeDelegationTokenRequest>(),
        ApiKey::ListConfigResources => visitor.visit::<ListConfigResourcesRequest>(),
        ApiKey::AddRaftVoter => visitor.visit::<AddRaftVoterRequest>(),
        ApiKey::RemoveRaftVoter => visitor.visit::<RemoveRaftVoterRequest>(),
        ApiKey::UpdateFeatures => visitor.visit::<UpdateFeaturesRequest>(),
        ApiKey::UnregisterBroker => visitor.visit::<UnregisterBrokerRequest>(),
        ApiKey::ShareGroupHeartbeat => visitor.visit::<ShareGroupHeartbeatRequest>(),
        ApiKey::ShareGroupDescribe => visitor.visit::<ShareGroupDescribeRequest>(),
        ApiKey::ShareFetch => visitor.visit::<ShareFetchRequest>(),
        ApiKey::ShareAcknowledge => visitor.visit::<ShareAcknowledgeRequest>(),
        ApiKey::InitializeShareGroupState => visitor.visit::<InitializeShareGroupStateRequest>(),
        ApiKey::ReadShareGroupState => visitor.visit::<ReadShareGroupStateRequest>(),
        ApiKey::WriteShareGroupState => visitor.visit::<WriteShareGroupStateRequest>(),
        ApiKey::DeleteShareGroupState => visitor.visit::<DeleteShareGroupStateRequest>(),
        ApiKey::ReadShareGroupStateSummary => visitor.visit::<ReadShareGroupStateSummaryRequest>(),
        ApiKey::DescribeShareGroupOffsets => visitor.visit::<DescribeShareGroupOffsetsRequest>(),
        ApiKey::AlterShareGroupOffsets => visitor.visit::<AlterShareGroupOffsetsRequest>(),
        ApiKey::DeleteShareGroupOffsets => visitor.visit::<DeleteShareGroupOffsetsRequest>(),
        _ => return None,
    })
}

/// Whether Skein serves `version` of `key`.
pub fn is_served(key: ApiKey, version: i16) -> bool {
    SERVED_APIS.iter().any(|&(served, min, max)| served == key && (min..=max).contains(&version))
}

/// The check of one input. Errors are expected (most inputs are malformed); a panic or an abort is the finding.
pub fn check(data: &[u8]) {
    let Ok(frame) = skein_protocol::decode_request_frame(Bytes::copy_from_slice(data)) else {
        return;
    };
    let Ok(key) = ApiKey::try_from(frame.api_key) else {
        return;
    };
    let version = frame.api_version;
    // The router refuses what it does not serve before decoding the body.
    if !is_served(key, version) {
        return;
    }
    if key == ApiKey::Produce {
        check_produce(frame.body, version);
        return;
    }
    visit_request_type(key, RoundTrip { key, body: frame.body, version });
}

/// Decodes a body as the request type, encodes the request back and decodes that. Only a panic is a finding:
/// the re-encode is the client side of the codec, which Skein never uses, and kafka-protocol 0.18 does not read
/// back everything it accepts (an unknown tagged field numbered 2^31 or above decodes to a negative tag that the
/// encoder counts but does not write).
struct RoundTrip {
    key: ApiKey,
    body: Bytes,
    version: i16,
}

impl RequestTypeVisitor for RoundTrip {
    type Output = ();

    fn visit<R: Request + Default>(self) -> Self::Output {
        round_trip::<R>(self.key, self.body, self.version);
    }
}

fn round_trip<R: Request>(key: ApiKey, mut body: Bytes, version: i16) -> Option<R> {
    assert_eq!(R::KEY, key as i16, "visit_request_type maps {key:?} to the wrong request type");
    let request = R::decode(&mut body, version).ok()?;
    let mut encoded = BytesMut::new();
    if request.encode(&mut encoded, version).is_ok() {
        let _ = R::decode(&mut encoded.freeze(), version);
    }
    Some(request)
}

/// Produce as `skein-broker/src/handlers/produce.rs` reads it: v0 and v1 are refused unread, v2 is v3's layout
/// without `transactional_id`, and every partition's records go through the client batch validation.
fn check_produce(body: Bytes, version: i16) {
    let request = match version {
        ..2 => return,
        2 => {
            let mut prefixed = BytesMut::with_capacity(body.len() + 2);
            prefixed.extend_from_slice(&(-1i16).to_be_bytes());
            prefixed.extend_from_slice(&body);
            round_trip::<ProduceRequest>(ApiKey::Produce, prefixed.freeze(), PRODUCE_CODEC_MIN_VERSION)
        }
        _ => round_trip::<ProduceRequest>(ApiKey::Produce, body, version),
    };
    let Some(request) = request else {
        return;
    };
    for partition in request.topic_data.iter().flat_map(|topic| &topic.partition_data) {
        if let Some(records) = &partition.records
            && let Ok(header) = skein_protocol::validate_client_batch(records)
        {
            // The handler's limit is at least 256 MiB; the record_batch target's 1 MiB keeps executions fast and
            // reaches the same code.
            let _ = skein_protocol::walk_records(records, &header, PRODUCE_FUZZ_UNCOMPRESSED_LIMIT, |_| Ok(()));
        }
    }
}
