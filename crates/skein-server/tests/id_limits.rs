//! Length limits on group ids, member ids, group instance ids, transactional ids and client ids, answered as Apache
//! Kafka 4.3.1 answers them (measured against the real broker with raw frames):
//!
//! - Kafka's request parser refuses every string field longer than 32,767 bytes, in the compact (varint-length)
//!   strings of flexible versions too: it logs an `InvalidRequestException` ("string field groupId had invalid
//!   length 40000") and closes the connection without an answer. Measured at 32,768, 40,000, 65,535, 65,536 and
//!   70,000 bytes for every request and field below; 32,767 bytes are served.
//! - A member id Kafka generates for a first JoinGroup (`<group instance id or client id>-<UUID>`, 37 bytes more)
//!   that passes 32,767 bytes is answered UNKNOWN_SERVER_ERROR (-1) with an empty member id: a client id or instance
//!   id of 32,730 bytes is served (a 32,767-byte member id), 32,731 is not.
//!
//! The codes are hard-coded from that experiment; the broker must answer exactly these.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
    DeleteGroupsRequest, DescribeGroupsRequest, DescribeTransactionsRequest, EndTxnRequest, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListTransactionsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest, ProducerId, RequestHeader,
    SyncGroupRequest, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use skein_test_support::requests::{API_VERSIONS_VERSION, METADATA_VERSION, api_versions, create_topic, topic_name};
use skein_test_support::{RawClient, TestBroker, decode_response_frame, encode_request_frame};

/// The longest string Kafka's request parser accepts, in bytes.
const LIMIT: usize = 32_767;
/// Id lengths Kafka 4.3.1 refused by closing the connection, in every case below.
const TOO_LONG: [usize; 5] = [32_768, 40_000, 65_535, 65_536, 70_000];

const NONE: i16 = 0;
const UNKNOWN_SERVER_ERROR: i16 = -1;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;

const TOPIC: &str = "t1";

/// Groups rebalance at once (as the Kafka broker of the experiment did, `group.initial.rebalance.delay.ms=0`).
const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms: 0\n";

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn group(id: &str) -> GroupId {
    GroupId(str(id))
}

fn txn(id: &str) -> TransactionalId {
    TransactionalId(str(id))
}

fn frame<R: Request>(version: i16, request: &R) -> Vec<u8> {
    encode_request_frame(version, 7, request).expect("encode request")
}

fn join_group(group_id: &str, member_id: &str, group_instance_id: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(str(member_id))
        .with_group_instance_id(group_instance_id.map(str))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(str("range"))])
}

fn offset_commit(group_id: &str, generation_id: i32, member_id: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(str(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(TOPIC)).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
        ])])
}

fn offset_fetch(group_id: &str, member_id: Option<&str>) -> OffsetFetchRequest {
    OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(group(group_id))
            .with_member_id(member_id.map(str))
            .with_member_epoch(-1)
            .with_topics(Some(vec![
                OffsetFetchRequestTopics::default().with_name(topic_name(TOPIC)).with_partition_indexes(vec![0]),
            ])),
    ])
}

fn consumer_heartbeat(group_id: &str, member_id: &str, instance_id: Option<&str>) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(str(member_id))
        .with_member_epoch(0)
        .with_instance_id(instance_id.map(str))
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(TOPIC)]))
        .with_topic_partitions(Some(Vec::new()))
}

fn txn_offset_commit(transactional_id: &str, group_id: &str, member_id: &str) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(txn(transactional_id))
        .with_group_id(group(group_id))
        .with_producer_id(ProducerId(1))
        .with_generation_id(-1)
        .with_member_id(str(member_id))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(topic_name(TOPIC)).with_partitions(vec![
            TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1),
        ])])
}

/// Every request and id field measured against Kafka 4.3.1, each building its frame around the id it is given.
#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, Box<dyn Fn(&str) -> Vec<u8>>)> {
    vec![
        (
            "FindCoordinator v6 group key",
            Box::new(|id| {
                frame(6, &FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![str(id)]))
            }),
        ),
        (
            "FindCoordinator v6 transaction key",
            Box::new(|id| {
                frame(6, &FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![str(id)]))
            }),
        ),
        ("FindCoordinator v3 key", Box::new(|id| frame(3, &FindCoordinatorRequest::default().with_key(str(id))))),
        ("JoinGroup v9 group id", Box::new(|id| frame(9, &join_group(id, "", None)))),
        ("JoinGroup v9 member id", Box::new(|id| frame(9, &join_group("jg", id, None)))),
        ("JoinGroup v9 group instance id", Box::new(|id| frame(9, &join_group("jg", "", Some(id))))),
        (
            "SyncGroup v5 group id",
            Box::new(|id| {
                frame(
                    5,
                    &SyncGroupRequest::default()
                        .with_group_id(group(id))
                        .with_generation_id(1)
                        .with_member_id(str("m")),
                )
            }),
        ),
        (
            "SyncGroup v5 assignment member id",
            Box::new(|id| {
                let assignment = SyncGroupRequestAssignment::default().with_member_id(str(id));
                let request = SyncGroupRequest::default()
                    .with_group_id(group("sg"))
                    .with_generation_id(1)
                    .with_member_id(str("m"))
                    .with_assignments(vec![assignment]);
                frame(5, &request)
            }),
        ),
        (
            "Heartbeat v4 group id",
            Box::new(|id| {
                frame(
                    4,
                    &HeartbeatRequest::default()
                        .with_group_id(group(id))
                        .with_generation_id(1)
                        .with_member_id(str("m")),
                )
            }),
        ),
        (
            "Heartbeat v4 group instance id",
            Box::new(|id| {
                let request = HeartbeatRequest::default()
                    .with_group_id(group("hb"))
                    .with_generation_id(1)
                    .with_member_id(str("m"))
                    .with_group_instance_id(Some(str(id)));
                frame(4, &request)
            }),
        ),
        (
            "LeaveGroup v5 group id",
            Box::new(|id| {
                let member = MemberIdentity::default().with_member_id(str("m"));
                frame(5, &LeaveGroupRequest::default().with_group_id(group(id)).with_members(vec![member]))
            }),
        ),
        (
            "LeaveGroup v5 member id",
            Box::new(|id| {
                let member = MemberIdentity::default().with_member_id(str(id));
                frame(5, &LeaveGroupRequest::default().with_group_id(group("lg")).with_members(vec![member]))
            }),
        ),
        (
            "LeaveGroup v5 group instance id",
            Box::new(|id| {
                let member = MemberIdentity::default().with_member_id(str("m")).with_group_instance_id(Some(str(id)));
                frame(5, &LeaveGroupRequest::default().with_group_id(group("lg")).with_members(vec![member]))
            }),
        ),
        ("OffsetCommit v9 group id", Box::new(|id| frame(9, &offset_commit(id, -1, "", 5)))),
        ("OffsetCommit v9 member id", Box::new(|id| frame(9, &offset_commit("oc", 1, id, 5)))),
        ("OffsetFetch v9 group id", Box::new(|id| frame(9, &offset_fetch(id, None)))),
        ("OffsetFetch v9 member id", Box::new(|id| frame(9, &offset_fetch("of", Some(id))))),
        (
            "OffsetFetch v7 group id",
            Box::new(|id| {
                let topic =
                    OffsetFetchRequestTopic::default().with_name(topic_name(TOPIC)).with_partition_indexes(vec![0]);
                frame(7, &OffsetFetchRequest::default().with_group_id(group(id)).with_topics(Some(vec![topic])))
            }),
        ),
        ("DescribeGroups v6", Box::new(|id| frame(6, &DescribeGroupsRequest::default().with_groups(vec![group(id)])))),
        (
            "DeleteGroups v2",
            Box::new(|id| frame(2, &DeleteGroupsRequest::default().with_groups_names(vec![group(id)]))),
        ),
        ("ConsumerGroupHeartbeat v1 group id", Box::new(|id| frame(1, &consumer_heartbeat(id, "member-1", None)))),
        ("ConsumerGroupHeartbeat v1 member id", Box::new(|id| frame(1, &consumer_heartbeat("cgh", id, None)))),
        (
            "ConsumerGroupHeartbeat v1 instance id",
            Box::new(|id| frame(1, &consumer_heartbeat("cgh", "member-1", Some(id)))),
        ),
        (
            "ConsumerGroupDescribe v1",
            Box::new(|id| frame(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![group(id)]))),
        ),
        (
            "InitProducerId v5 transactional id",
            Box::new(|id| {
                let request = InitProducerIdRequest::default()
                    .with_transactional_id(Some(txn(id)))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1);
                frame(5, &request)
            }),
        ),
        (
            "AddPartitionsToTxn v3 transactional id",
            Box::new(|id| {
                let topic = AddPartitionsToTxnTopic::default().with_name(topic_name(TOPIC)).with_partitions(vec![0]);
                let request = AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn(id))
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_topics(vec![topic]);
                frame(3, &request)
            }),
        ),
        (
            "AddPartitionsToTxn v5 transactional id",
            Box::new(|id| {
                let topic = AddPartitionsToTxnTopic::default().with_name(topic_name(TOPIC)).with_partitions(vec![0]);
                let transaction = AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn(id))
                    .with_producer_id(ProducerId(1))
                    .with_topics(vec![topic]);
                frame(5, &AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]))
            }),
        ),
        (
            "AddOffsetsToTxn v4 transactional id",
            Box::new(|id| {
                let request = AddOffsetsToTxnRequest::default()
                    .with_transactional_id(txn(id))
                    .with_producer_id(ProducerId(1))
                    .with_group_id(group("og"));
                frame(4, &request)
            }),
        ),
        (
            "AddOffsetsToTxn v4 group id",
            Box::new(|id| {
                let request = AddOffsetsToTxnRequest::default()
                    .with_transactional_id(txn("short-txn"))
                    .with_producer_id(ProducerId(1))
                    .with_group_id(group(id));
                frame(4, &request)
            }),
        ),
        (
            "EndTxn v5 transactional id",
            Box::new(|id| {
                let request = EndTxnRequest::default()
                    .with_transactional_id(txn(id))
                    .with_producer_id(ProducerId(1))
                    .with_committed(true);
                frame(5, &request)
            }),
        ),
        ("TxnOffsetCommit v4 transactional id", Box::new(|id| frame(4, &txn_offset_commit(id, "tg", "")))),
        ("TxnOffsetCommit v4 group id", Box::new(|id| frame(4, &txn_offset_commit("short-txn", id, "")))),
        ("TxnOffsetCommit v4 member id", Box::new(|id| frame(4, &txn_offset_commit("short-txn", "tg", id)))),
        (
            "DescribeTransactions v0",
            Box::new(|id| frame(0, &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn(id)]))),
        ),
    ]
}

/// Sends `bytes` on a fresh connection; true if the broker closed it without an answer.
fn closes_connection(broker: &TestBroker, bytes: &[u8]) -> bool {
    let mut client = broker.client().expect("connect");
    client.set_read_timeout(Duration::from_secs(10)).expect("set timeout");
    client.send_raw(bytes).expect("send");
    client.is_closed()
}

fn assert_served(client: &mut RawClient) {
    assert_eq!(api_versions(client, API_VERSIONS_VERSION).expect("ApiVersions answered").error_code, NONE);
}

/// A request frame whose header carries `client_id` (the test client's frames carry a fixed one).
fn frame_with_client_id<R: Request>(version: i16, client_id: &str, request: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(11)
        .with_client_id(Some(str(client_id)));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, R::header_version(version)).expect("encode header");
    request.encode(&mut frame, version).expect("encode body");
    let length = i32::try_from(frame.len() - 4).expect("frame length");
    frame[..4].copy_from_slice(&length.to_be_bytes());
    frame.to_vec()
}

/// Sends `request` with `client_id` in its header and decodes the answer.
fn request_as<R: Request>(client: &mut RawClient, version: i16, client_id: &str, request: &R) -> R::Response {
    client.send_raw(&frame_with_client_id(version, client_id, request)).expect("send");
    let answer: Bytes = client.read_frame().expect("answered");
    let (correlation_id, response) = decode_response_frame::<R>(answer, version).expect("decode");
    assert_eq!(correlation_id, 11);
    response
}

#[test]
fn ids_longer_than_32767_bytes_close_the_connection_as_kafka_does() {
    let mut broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut healthy = broker.client().expect("connect");
    assert_eq!(create_topic(&mut healthy, TOPIC, 1, &[]).expect("create topic").error_code, NONE);

    for length in TOO_LONG {
        // Two ids per length that differ only after their first 32,767 (and 65,535) bytes.
        for (name, build) in cases() {
            for last in ['a', 'b'] {
                let id = format!("{}{last}", "x".repeat(length - 1));
                assert!(
                    closes_connection(&broker, &build(&id)),
                    "{name} with a {length}-byte id was answered; Kafka 4.3.1 closes the connection\n{}",
                    broker.log_tail()
                );
            }
        }
    }
    assert!(broker.is_running(), "the broker died; log:\n{}", broker.log_tail());
    assert_served(&mut healthy);

    // Nothing was kept under any of those ids: no group, no transactional id, no committed offset.
    let groups = healthy.request(5, &ListGroupsRequest::default()).expect("ListGroups");
    assert_eq!(groups.error_code, NONE);
    assert!(groups.groups.is_empty(), "groups were made: {:?}", groups.groups);
    let transactions = healthy.request(1, &ListTransactionsRequest::default()).expect("ListTransactions");
    assert!(transactions.transaction_states.is_empty());
}

#[test]
fn ids_of_32767_bytes_are_served_as_kafka_serves_them() {
    let broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, TOPIC, 1, &[]).expect("create topic").error_code, NONE);
    let group_id = "g".repeat(LIMIT);
    let transactional_id = "x".repeat(LIMIT);

    // The answers Kafka 4.3.1 gave, request by request, in this order.
    for key_type in [0, 1] {
        let request =
            FindCoordinatorRequest::default().with_key_type(key_type).with_coordinator_keys(vec![str(&group_id)]);
        let response = client.request(6, &request).expect("FindCoordinator v6");
        assert_eq!(response.coordinators[0].error_code, NONE);
        assert_eq!(response.coordinators[0].key.len(), LIMIT);
    }
    let response = client.request(3, &FindCoordinatorRequest::default().with_key(str(&group_id))).expect("v3");
    assert_eq!(response.error_code, NONE);

    let response = client.request(9, &join_group(&group_id, "", None)).expect("JoinGroup");
    assert_eq!(response.error_code, MEMBER_ID_REQUIRED);
    let response = client.request(9, &join_group("jg-short", &"m".repeat(LIMIT), None)).expect("JoinGroup");
    assert_eq!(response.error_code, UNKNOWN_MEMBER_ID);

    let response = client.request(9, &offset_commit(&group_id, -1, "", 5)).expect("OffsetCommit");
    assert_eq!(response.topics[0].partitions[0].error_code, NONE);
    let response = client.request(9, &offset_fetch(&group_id, None)).expect("OffsetFetch");
    let fetched = &response.groups[0].topics[0].partitions[0];
    assert_eq!((response.groups[0].error_code, fetched.error_code, fetched.committed_offset), (NONE, NONE, 5));
    let response =
        client.request(6, &DescribeGroupsRequest::default().with_groups(vec![group(&group_id)])).expect("v6");
    assert_eq!(response.groups[0].error_code, NONE);
    let response =
        client.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![group(&group_id)])).expect("v2");
    assert_eq!(response.results[0].error_code, NONE);

    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn(&transactional_id)))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // As a client: the coordinator lookup creates `__transaction_state`, then the id's partition loads (NOT_COORDINATOR
    // and COORDINATOR_LOAD_IN_PROGRESS meanwhile).
    let lookup =
        FindCoordinatorRequest::default().with_key_type(1).with_key(StrBytes::from_string(transactional_id.clone()));
    let initialized = skein_test_support::wait_for("the transaction coordinator", Duration::from_secs(30), || {
        client.request(3, &lookup)?;
        let code = client.request(5, &request)?.error_code;
        Ok((![14, 15, 16].contains(&code)).then_some(code))
    })
    .expect("InitProducerId");
    assert_eq!(initialized, NONE);

    let response = client.request(1, &consumer_heartbeat(&"c".repeat(LIMIT), "member-1", None)).expect("CGH");
    assert_eq!(response.error_code, NONE);
    let response = client.request(1, &consumer_heartbeat("cgh-short", &"m".repeat(LIMIT), None)).expect("CGH");
    assert_eq!(response.error_code, NONE);
    let response =
        client.request(1, &consumer_heartbeat("cgh-static", "member-2", Some(&"i".repeat(LIMIT)))).expect("CGH");
    assert_eq!(response.error_code, NONE);

    // A client id of 32,767 bytes (the most the header's i16 length can say) is served.
    let response =
        request_as(&mut client, METADATA_VERSION, &"c".repeat(LIMIT), &MetadataRequest::default().with_topics(None));
    assert!(response.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC)));
}

#[test]
fn a_generated_member_id_over_32767_bytes_is_an_unknown_server_error_as_in_kafka() {
    let broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut client = broker.client().expect("connect");
    // Kafka 4.3.1: client id 32,730 -> MEMBER_ID_REQUIRED with a 32,767-byte member id; 32,731 (and 32,767) ->
    // UNKNOWN_SERVER_ERROR with an empty member id, for JoinGroup v5 and v9 alike.
    for version in [5, 9] {
        let response = request_as(&mut client, version, &"k".repeat(32_730), &join_group("jg-cid", "", None));
        assert_eq!((response.error_code, response.member_id.len()), (MEMBER_ID_REQUIRED, LIMIT), "v{version}");
        for length in [32_731, LIMIT] {
            let response = request_as(&mut client, version, &"k".repeat(length), &join_group("jg-cid", "", None));
            assert_eq!((response.error_code, response.member_id.as_str()), (UNKNOWN_SERVER_ERROR, ""), "v{version}");
        }
    }
    // Static members: the member id is `<group instance id>-<UUID>`. 32,730 joins, 32,731 and 32,767 do not.
    let response = client.request(9, &join_group("jg-static", "", Some(&"i".repeat(32_730)))).expect("JoinGroup");
    assert_eq!((response.error_code, response.member_id.len()), (NONE, LIMIT));
    for length in [32_731, LIMIT] {
        let response = client.request(9, &join_group("jg-static-2", "", Some(&"i".repeat(length)))).expect("JoinGroup");
        assert_eq!((response.error_code, response.member_id.as_str()), (UNKNOWN_SERVER_ERROR, ""));
    }
    let groups = client.request(5, &ListGroupsRequest::default()).expect("ListGroups");
    let mut names: Vec<&str> = groups.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["jg-cid", "jg-static"], "the refused static join made no group");
}

#[test]
fn group_ids_sharing_their_first_65535_bytes_never_overwrite_each_others_offsets() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, TOPIC, 1, &[]).expect("create topic").error_code, NONE);

    // Storage keys hold a group id behind a u16 length: these two were both cut to their shared 65,535 bytes, so the
    // second commit overwrote the first. Kafka refuses both requests (closing the connection), and so does Skein.
    let shared = "g".repeat(65_535);
    for (group_id, offset) in [(format!("{shared}a"), 1), (format!("{shared}b"), 2)] {
        assert!(closes_connection(&broker, &frame(9, &offset_commit(&group_id, -1, "", offset))), "commit answered");
        assert!(closes_connection(&broker, &frame(9, &offset_fetch(&group_id, None))), "fetch answered");
    }
    for group_id in [shared.clone(), "g".repeat(LIMIT + 1)] {
        assert!(closes_connection(&broker, &frame(9, &offset_commit(&group_id, -1, "", 3))), "commit answered");
    }
    assert!(client.request(5, &ListGroupsRequest::default()).expect("ListGroups").groups.is_empty());

    // The longest group ids a request may carry, differing only in their last byte, keep their own offsets, also
    // after a restart reads them back from storage.
    let shared = "g".repeat(LIMIT - 1);
    let (a, b) = (format!("{shared}a"), format!("{shared}b"));
    for (group_id, offset) in [(&a, 1), (&b, 2)] {
        let response = client.request(9, &offset_commit(group_id, -1, "", offset)).expect("OffsetCommit");
        assert_eq!(response.topics[0].partitions[0].error_code, NONE);
    }
    let fetch = |client: &mut RawClient, group_id: &str| {
        let response = client.request(9, &offset_fetch(group_id, None)).expect("OffsetFetch");
        response.groups[0].topics[0].partitions[0].committed_offset
    };
    assert_eq!((fetch(&mut client, &a), fetch(&mut client, &b)), (1, 2));
    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("connect");
    assert_eq!((fetch(&mut client, &a), fetch(&mut client, &b)), (1, 2));
    let groups = client.request(5, &ListGroupsRequest::default()).expect("ListGroups");
    assert_eq!(groups.groups.len(), 2);
    assert!(groups.groups.iter().all(|g| g.group_id.0.len() == LIMIT));
}
