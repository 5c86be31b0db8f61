//! KIP-848 consumer groups at the wire level: ConsumerGroupHeartbeat joins, reconciliation between two members,
//! request validation and its error codes, leave, ConsumerGroupDescribe and ListGroups, OffsetCommit epoch checks,
//! and a group that keeps its members, epochs and assignments across a restart.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId,
    JoinGroupRequest, ListGroupsRequest, OffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::requests::{
    consumer_heartbeat_request as heartbeat, consumer_join_request as join_request, create_topic, metadata, topic_name,
};
use skein_test_support::{RawClient, TestBroker};
use uuid::Uuid;

const NONE: i16 = 0;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;

const HEARTBEAT_VERSION: i16 = 1;
const DESCRIBE_VERSION: i16 = 1;

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn send(client: &mut RawClient, request: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    client.request(HEARTBEAT_VERSION, request).expect("ConsumerGroupHeartbeat")
}

/// The partitions of the answer's assignment, or `None` when it carries none.
fn assigned(response: &ConsumerGroupHeartbeatResponse) -> Option<BTreeSet<i32>> {
    response.assignment.as_ref().map(|a| a.topic_partitions.iter().flat_map(|t| t.partitions.iter().copied()).collect())
}

fn topic_id(client: &mut RawClient, topic: &str) -> Uuid {
    metadata(client, &[topic], false).expect("metadata").topics[0].topic_id
}

fn commit(client: &mut RawClient, group_id: &str, member_id: &str, epoch: i32, topic: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str(group_id)))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(str(member_id))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(5),
        ])]);
    let response = client.request(9, &request).expect("OffsetCommit");
    response.topics[0].partitions[0].error_code
}

#[test]
fn two_members_share_a_topic_after_the_first_revokes() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "orders", 4, &[]).expect("create").error_code, NONE);
    let orders = topic_id(&mut client, "orders");

    let a = send(&mut client, &join_request("g", "member-a", "orders"));
    assert_eq!(a.error_code, NONE, "{:?}", a.error_message);
    assert_eq!(a.member_id.as_deref(), Some("member-a"));
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.heartbeat_interval_ms, 5_000);
    assert_eq!(assigned(&a), Some(BTreeSet::from([0, 1, 2, 3])));

    // b joins: its target is held by a, so it gets nothing yet; a is asked to give two partitions up.
    let b = send(&mut client, &join_request("g", "member-b", "orders"));
    assert_eq!((b.error_code, b.member_epoch), (NONE, 2));
    assert_eq!(assigned(&b), Some(BTreeSet::new()));
    let a = send(&mut client, &heartbeat("g", "member-a", 1, &[(orders, vec![0, 1, 2, 3])]));
    assert_eq!(a.member_epoch, 1, "a keeps its epoch until it has revoked");
    let kept = assigned(&a).expect("a's reduced assignment");
    assert_eq!(kept.len(), 2);

    // a confirms; b then receives the two released partitions.
    let a = send(&mut client, &heartbeat("g", "member-a", 1, &[(orders, kept.iter().copied().collect())]));
    assert_eq!(a.member_epoch, 2);
    let b = send(&mut client, &heartbeat("g", "member-b", 2, &[]));
    let b_partitions = assigned(&b).expect("b's assignment");
    assert_eq!(b_partitions.len(), 2);
    assert!(b_partitions.is_disjoint(&kept));

    // ConsumerGroupDescribe and ListGroups see a stable consumer group with both members.
    let described = client
        .request(DESCRIBE_VERSION, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str("g"))]))
        .expect("ConsumerGroupDescribe");
    let group = &described.groups[0];
    assert_eq!(group.error_code, NONE);
    assert_eq!(group.group_state.as_str(), "Stable");
    assert_eq!((group.group_epoch, group.assignment_epoch), (2, 2));
    assert_eq!(group.assignor_name.as_str(), "uniform");
    assert_eq!(group.members.len(), 2);
    assert!(group.members.iter().all(|m| m.assignment.topic_partitions[0].topic_name.0.as_str() == "orders"));
    let listed = client.request(5, &ListGroupsRequest::default()).expect("ListGroups");
    let listing = listed.groups.iter().find(|g| g.group_id.0.as_str() == "g").expect("listed");
    assert_eq!(
        (listing.protocol_type.as_str(), listing.group_state.as_str(), listing.group_type.as_str()),
        ("consumer", "Stable", "consumer")
    );

    // Commits carry the member epoch.
    assert_eq!(commit(&mut client, "g", "member-b", 2, "orders"), NONE);
    assert_eq!(commit(&mut client, "g", "member-b", 1, "orders"), STALE_MEMBER_EPOCH);
    assert_eq!(commit(&mut client, "g", "stranger", 2, "orders"), UNKNOWN_MEMBER_ID);

    // An epoch from the future is fenced; a classic JoinGroup to this group is refused.
    let fenced = send(&mut client, &heartbeat("g", "member-b", 7, &[]));
    assert_eq!(fenced.error_code, FENCED_MEMBER_EPOCH);
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(str("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(str("consumer"));
    assert_eq!(client.request(7, &classic).expect("JoinGroup").error_code, INCONSISTENT_GROUP_PROTOCOL);

    // b leaves: a is given everything again.
    let left = send(&mut client, &heartbeat("g", "member-b", -1, &[]));
    assert_eq!((left.error_code, left.member_epoch), (NONE, -1));
    let a = send(&mut client, &heartbeat("g", "member-a", 2, &[(orders, kept.iter().copied().collect())]));
    assert_eq!(a.member_epoch, 3);
    assert_eq!(assigned(&a), Some(BTreeSet::from([0, 1, 2, 3])));
}

#[test]
fn malformed_heartbeats_get_kafkas_errors() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "t", 1, &[]).expect("create").error_code, NONE);

    let cases = [
        ("no member id in v1", join_request("g", "", "t"), INVALID_REQUEST),
        ("no group id", join_request("", "m", "t"), INVALID_REQUEST),
        ("join without rebalance timeout", join_request("g", "m", "t").with_rebalance_timeout_ms(-1), INVALID_REQUEST),
        ("join owning partitions", join_request("g", "m", "t").with_topic_partitions(None), INVALID_REQUEST),
        ("join without subscription", join_request("g", "m", "t").with_subscribed_topic_names(None), INVALID_REQUEST),
        ("epoch below -2", join_request("g", "m", "t").with_member_epoch(-3), INVALID_REQUEST),
        (
            "unknown assignor",
            join_request("g", "m", "t").with_server_assignor(Some(str("sticky"))),
            UNSUPPORTED_ASSIGNOR,
        ),
        ("unknown group", heartbeat("nope", "m", 3, &[]), GROUP_ID_NOT_FOUND),
    ];
    for (case, request, expected) in cases {
        assert_eq!(send(&mut client, &request).error_code, expected, "{case}");
    }
    // None of the refused joins left a group behind.
    let described = client
        .request(DESCRIBE_VERSION, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str("g"))]))
        .expect("ConsumerGroupDescribe");
    assert_eq!(described.groups[0].error_code, GROUP_ID_NOT_FOUND);

    // A member the group does not know is told so, and rejoins with epoch 0.
    assert_eq!(send(&mut client, &join_request("g", "m", "t")).error_code, NONE);
    assert_eq!(send(&mut client, &heartbeat("g", "other", 1, &[])).error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn a_consumer_group_keeps_its_members_across_a_restart() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "t", 2, &[]).expect("create").error_code, NONE);
    let id = topic_id(&mut client, "t");
    let first = send(&mut client, &join_request("g", "m", "t"));
    assert_eq!(first.member_epoch, 1);
    assert_eq!(assigned(&first), Some(BTreeSet::from([0, 1])));
    assert_eq!(commit(&mut client, "g", "m", 1, "t"), NONE);
    drop(client);

    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    // The member is kept with its epoch and assignment: it carries on without rejoining, and commits with its epoch.
    let again = send(&mut client, &heartbeat("g", "m", 1, &[(id, vec![0, 1])]));
    assert_eq!(again.error_code, NONE, "{again:?}");
    assert_eq!(again.member_epoch, 1);
    assert_eq!(commit(&mut client, "g", "m", 1, "t"), NONE);
    // A member the group never had is still unknown.
    assert_eq!(send(&mut client, &heartbeat("g", "other", 1, &[])).error_code, UNKNOWN_MEMBER_ID);
    // A second member joins the restored group: the group epoch continues, and the first member is asked to give
    // up a partition (its answer carries its new target), which the second gets once it is given up.
    let second = send(&mut client, &join_request("g", "n", "t"));
    assert_eq!(second.error_code, NONE);
    assert_eq!(second.member_epoch, 2);
    let revoke = send(&mut client, &heartbeat("g", "m", 1, &[(id, vec![0, 1])]));
    assert_eq!(revoke.error_code, NONE);
    let kept = assigned(&revoke).expect("m's assignment shrinks");
    assert_eq!(kept.len(), 1);
    let kept: Vec<i32> = kept.into_iter().collect();
    assert_eq!(send(&mut client, &heartbeat("g", "m", 1, &[(id, kept.clone())])).member_epoch, 2);
    let given = send(&mut client, &heartbeat("g", "n", 2, &[]));
    let given = assigned(&given).expect("n gets the released partition");
    assert_eq!(given.len(), 1);
    assert!(!given.contains(&kept[0]));
}
