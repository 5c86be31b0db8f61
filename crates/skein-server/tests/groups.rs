//! Consumer groups at the wire level: FindCoordinator, the classic join/sync/heartbeat protocol with two members,
//! rebalances on leave and on session expiry, and committed offsets surviving kill -9.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::requests::{create_topic, topic_name};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

const JOIN_VERSION: i16 = 7;
const SYNC_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;

/// Groups rebalance at once and sessions may be short, so the tests run in seconds.
const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms: 0\ngroup.min.session.timeout.ms: 1000\n";

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn group(id: &str) -> GroupId {
    GroupId(str(id))
}

fn join_request(group_id: &str, member_id: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(str(member_id))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(str("range")).with_metadata(Bytes::from_static(b"range-md")),
            JoinGroupRequestProtocol::default()
                .with_name(str("roundrobin"))
                .with_metadata(Bytes::from_static(b"rr-md")),
        ])
}

/// A first join: MEMBER_ID_REQUIRED with the member id to use, which is returned.
fn member_id_for(client: &mut RawClient, group_id: &str, session_timeout_ms: i32) -> String {
    let response = client.request(JOIN_VERSION, &join_request(group_id, "", session_timeout_ms)).expect("JoinGroup");
    assert_eq!(response.error_code, MEMBER_ID_REQUIRED);
    assert!(!response.member_id.is_empty());
    response.member_id.to_string()
}

fn join(client: &mut RawClient, group_id: &str, member_id: &str, session_timeout_ms: i32) -> JoinGroupResponse {
    client.request(JOIN_VERSION, &join_request(group_id, member_id, session_timeout_ms)).expect("JoinGroup")
}

/// Joins from another thread (the answer waits for the rebalance); the thread is joined by the caller.
fn join_in_background(
    broker: &TestBroker,
    group_id: &str,
    member_id: &str,
    session_timeout_ms: i32,
) -> thread::JoinHandle<JoinGroupResponse> {
    let mut client = broker.client().expect("connect");
    let (group_id, member_id) = (group_id.to_string(), member_id.to_string());
    thread::spawn(move || join(&mut client, &group_id, &member_id, session_timeout_ms))
}

fn sync(
    client: &mut RawClient,
    group_id: &str,
    joined: &JoinGroupResponse,
    assignments: &[(&str, &[u8])],
) -> (i16, Bytes) {
    let request = SyncGroupRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_protocol_type(Some(str("consumer")))
        .with_protocol_name(joined.protocol_name.clone())
        .with_assignments(
            assignments
                .iter()
                .map(|(member_id, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(str(member_id))
                        .with_assignment(Bytes::copy_from_slice(assignment))
                })
                .collect(),
        );
    let response = client.request(SYNC_VERSION, &request).expect("SyncGroup");
    (response.error_code, response.assignment)
}

fn heartbeat(client: &mut RawClient, group_id: &str, member_id: &str, generation_id: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(group(group_id))
        .with_member_id(str(member_id))
        .with_generation_id(generation_id);
    client.request(HEARTBEAT_VERSION, &request).expect("Heartbeat").error_code
}

#[test]
fn find_coordinator_names_this_node_for_groups_and_transactions() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let port = i32::from(broker.addr().port());
    for version in 0..=3 {
        let response = client.request(version, &FindCoordinatorRequest::default().with_key(str("g"))).expect("v0-3");
        assert_eq!((response.error_code, response.node_id.0, response.port), (NONE, 1, port), "v{version}");
        assert_eq!(response.host.as_str(), "127.0.0.1");
    }
    for version in 4..=6 {
        let request = FindCoordinatorRequest::default().with_coordinator_keys(vec![str("a"), str("b")]);
        let response = client.request(version, &request).expect("v4+");
        let keys: Vec<(&str, i16, i32, i32)> =
            response.coordinators.iter().map(|c| (c.key.as_str(), c.error_code, c.node_id.0, c.port)).collect();
        assert_eq!(keys, vec![("a", NONE, 1, port), ("b", NONE, 1, port)], "v{version}");
    }
    let transactions = FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![str("txn")]);
    let response = client.request(4, &transactions).expect("transaction key");
    let coordinator = &response.coordinators[0];
    assert_eq!((coordinator.error_code, coordinator.node_id.0, coordinator.port), (NONE, 1, port));
}

#[test]
fn two_members_join_sync_heartbeat_and_rebalance_when_one_leaves() {
    let broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut a = broker.client().expect("connect");
    let mut b = broker.client().expect("connect");

    // A alone: generation 1, A leads.
    let a_id = member_id_for(&mut a, "g", 10_000);
    let a_joined = join(&mut a, "g", &a_id, 10_000);
    assert_eq!((a_joined.error_code, a_joined.generation_id), (NONE, 1));
    assert_eq!(a_joined.leader.as_str(), a_id);
    assert_eq!(sync(&mut a, "g", &a_joined, &[(&a_id, b"all")]), (NONE, Bytes::from_static(b"all")));

    // B joins: A hears of the rebalance through its heartbeat and rejoins; both land in generation 2.
    let b_id = member_id_for(&mut b, "g", 10_000);
    let b_join = join_in_background(&broker, "g", &b_id, 10_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut a, "g", &a_id, 1) != REBALANCE_IN_PROGRESS {
        assert!(Instant::now() < deadline, "A never heard of the rebalance");
        thread::sleep(Duration::from_millis(50));
    }
    let a_joined = join(&mut a, "g", &a_id, 10_000);
    let b_joined = b_join.join().expect("join thread");
    assert_eq!((a_joined.error_code, b_joined.error_code), (NONE, NONE));
    assert_eq!((a_joined.generation_id, b_joined.generation_id), (2, 2));
    assert_eq!(a_joined.leader.as_str(), a_id, "the leader stays the leader");
    assert_eq!(b_joined.leader.as_str(), a_id);
    assert_eq!(a_joined.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    let mut seen: Vec<(String, Bytes)> =
        a_joined.members.iter().map(|m| (m.member_id.to_string(), m.metadata.clone())).collect();
    seen.sort();
    let mut expected =
        vec![(a_id.clone(), Bytes::from_static(b"range-md")), (b_id.clone(), Bytes::from_static(b"range-md"))];
    expected.sort();
    assert_eq!(seen, expected, "the leader sees every member's metadata for the chosen protocol");
    assert!(b_joined.members.is_empty());

    // B's SyncGroup waits for the leader's assignments.
    let b_sync = {
        let mut client = broker.client().expect("connect");
        let b_joined = b_joined.clone();
        thread::spawn(move || sync(&mut client, "g", &b_joined, &[]))
    };
    thread::sleep(Duration::from_millis(200));
    assert!(!b_sync.is_finished(), "a follower's SyncGroup waits for the leader");
    assert_eq!(
        sync(&mut a, "g", &a_joined, &[(&a_id, b"p0-p2"), (&b_id, b"p3-p5")]),
        (NONE, Bytes::from_static(b"p0-p2"))
    );
    assert_eq!(b_sync.join().expect("sync thread"), (NONE, Bytes::from_static(b"p3-p5")));
    assert_eq!(heartbeat(&mut a, "g", &a_id, 2), NONE);
    assert_eq!(heartbeat(&mut b, "g", &b_id, 2), NONE);
    assert_eq!(heartbeat(&mut b, "g", &b_id, 1), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut b, "g", "stranger", 2), UNKNOWN_MEMBER_ID);

    // Members commit with their generation; a stale generation or a commit from outside the group is refused.
    assert_eq!(create_topic(&mut a, "t", 1, &[]).expect("create").error_code, NONE);
    let commit_code = |client: &mut RawClient, generation_id: i32, member_id: &str| {
        let request = commit_request("g", generation_id, member_id, &[("t", 0, 42)]);
        client.request(8, &request).expect("OffsetCommit").topics[0].partitions[0].error_code
    };
    assert_eq!(commit_code(&mut b, 2, &b_id), NONE);
    assert_eq!(commit_code(&mut b, 1, &b_id), ILLEGAL_GENERATION);
    assert_eq!(commit_code(&mut b, -1, ""), UNKNOWN_MEMBER_ID);

    let described = a.request(5, &DescribeGroupsRequest::default().with_groups(vec![group("g")])).expect("describe");
    let described = &described.groups[0];
    assert_eq!((described.group_state.as_str(), described.protocol_data.as_str()), ("Stable", "range"));
    assert_eq!(described.members.len(), 2);
    let listed = a.request(4, &ListGroupsRequest::default().with_states_filter(vec![str("stable")])).expect("list");
    assert_eq!(listed.groups.iter().map(|g| g.group_id.0.as_str()).collect::<Vec<_>>(), vec!["g"]);
    let listed = a.request(4, &ListGroupsRequest::default().with_states_filter(vec![str("Empty")])).expect("list");
    assert!(listed.groups.is_empty());

    // B leaves (batched form): A rebalances alone into generation 3.
    let leave = LeaveGroupRequest::default()
        .with_group_id(group("g"))
        .with_members(vec![MemberIdentity::default().with_member_id(str(&b_id))]);
    let left = b.request(3, &leave).expect("LeaveGroup");
    assert_eq!((left.error_code, left.members[0].error_code), (NONE, NONE));
    assert_eq!(heartbeat(&mut a, "g", &a_id, 2), REBALANCE_IN_PROGRESS);
    let a_joined = join(&mut a, "g", &a_id, 10_000);
    assert_eq!((a_joined.error_code, a_joined.generation_id, a_joined.members.len()), (NONE, 3, 1));

    // A group with a member cannot be deleted.
    let deleted = a.request(2, &DeleteGroupsRequest::default().with_groups_names(vec![group("g")])).expect("delete");
    assert_eq!(deleted.results[0].error_code, NON_EMPTY_GROUP);
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut a = broker.client().expect("connect");
    let mut b = broker.client().expect("connect");
    let a_id = member_id_for(&mut a, "g", 2_000);
    let a_joined = join(&mut a, "g", &a_id, 2_000);
    let b_id = member_id_for(&mut b, "g", 2_000);
    let b_join = join_in_background(&broker, "g", &b_id, 2_000);
    thread::sleep(Duration::from_millis(100));
    let a_joined2 = join(&mut a, "g", &a_id, 2_000);
    let b_joined = b_join.join().expect("join thread");
    assert_eq!((a_joined.generation_id, a_joined2.generation_id, b_joined.generation_id), (1, 2, 2));
    assert_eq!(sync(&mut a, "g", &a_joined2, &[]).0, NONE);
    assert_eq!(sync(&mut b, "g", &b_joined, &[]).0, NONE);

    // A heartbeats, B stays silent: after B's 2 s session A is told to rejoin, and rejoins alone.
    let started = Instant::now();
    let mut answer = NONE;
    while started.elapsed() < Duration::from_secs(8) {
        answer = heartbeat(&mut a, "g", &a_id, 2);
        if answer != NONE {
            break;
        }
        thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(answer, REBALANCE_IN_PROGRESS);
    assert!(started.elapsed() >= Duration::from_millis(1_500), "B expired early: {:?}", started.elapsed());
    let a_joined = join(&mut a, "g", &a_id, 2_000);
    assert_eq!((a_joined.error_code, a_joined.generation_id, a_joined.members.len()), (NONE, 3, 1));
    assert_eq!(heartbeat(&mut b, "g", &b_id, 2), UNKNOWN_MEMBER_ID);
}

fn commit_request(
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let entry = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(0)
            .with_committed_metadata(Some(str(&format!("md-{offset}"))));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(existing) => existing.partitions.push(entry),
            None => topics
                .push(OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(vec![entry])),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(str(member_id))
        .with_topics(topics)
}

/// (topic, partition, offset, metadata) of OffsetFetch v7 for `group_id`; all committed partitions when `topics` is
/// `None`.
fn fetch_offsets(
    client: &mut RawClient,
    group_id: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<(String, i32, i64, String)> {
    let request = OffsetFetchRequest::default().with_group_id(group(group_id)).with_topics(topics.map(|topics| {
        topics
            .iter()
            .map(|(name, partitions)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name(name))
                    .with_partition_indexes(partitions.to_vec())
            })
            .collect()
    }));
    let response = client.request(7, &request).expect("OffsetFetch");
    assert_eq!(response.error_code, NONE);
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                assert_eq!(p.error_code, NONE);
                let metadata = p.metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
                (t.name.0.to_string(), p.partition_index, p.committed_offset, metadata)
            })
        })
        .collect()
}

#[test]
fn committed_offsets_survive_kill_9_and_restart() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    for name in ["orders", "audit"] {
        assert_eq!(create_topic(&mut client, name, 3, &[]).expect("create").error_code, NONE);
    }
    // Simple commits (generation -1, no member) to groups without members.
    let response = client
        .request(
            8,
            &commit_request(
                "billing",
                -1,
                "",
                &[("orders", 0, 17), ("orders", 2, 5), ("audit", 1, 9), ("missing", 0, 1)],
            ),
        )
        .expect("OffsetCommit");
    let codes: Vec<(String, i32, i16)> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.error_code)))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("orders".into(), 0, NONE),
            ("orders".into(), 2, NONE),
            ("audit".into(), 1, NONE),
            ("missing".into(), 0, UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    let response = client.request(2, &commit_request("shipping", -1, "", &[("orders", 1, 100)])).expect("v2");
    assert_eq!(response.topics[0].partitions[0].error_code, NONE);
    // A commit claiming a generation of a group that does not exist is refused.
    let response = client.request(8, &commit_request("nobody", 3, "m", &[("orders", 1, 1)])).expect("commit");
    assert_eq!(response.topics[0].partitions[0].error_code, ILLEGAL_GENERATION);

    let expected_billing = vec![
        ("audit".to_string(), 1, 9, "md-9".to_string()),
        ("orders".to_string(), 0, 17, "md-17".to_string()),
        ("orders".to_string(), 2, 5, "md-5".to_string()),
    ];
    let check = |client: &mut RawClient| {
        assert_eq!(fetch_offsets(client, "billing", None), expected_billing);
        let asked: &[(&str, &[i32])] = &[("orders", &[0, 1, 2])];
        assert_eq!(
            fetch_offsets(client, "billing", Some(asked)),
            vec![
                ("orders".to_string(), 0, 17, "md-17".to_string()),
                ("orders".to_string(), 1, -1, String::new()),
                ("orders".to_string(), 2, 5, "md-5".to_string()),
            ]
        );
        // v8: several groups in one request, one of them unknown.
        let request = OffsetFetchRequest::default().with_groups(
            ["shipping", "unknown"]
                .iter()
                .map(|g| {
                    OffsetFetchRequestGroup::default().with_group_id(group(g)).with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(topic_name("orders"))
                            .with_partition_indexes(vec![1]),
                    ]))
                })
                .collect(),
        );
        let response = client.request(8, &request).expect("OffsetFetch v8");
        let offsets: Vec<(String, i64)> = response
            .groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.topics[0].partitions[0].committed_offset))
            .collect();
        assert_eq!(offsets, vec![("shipping".to_string(), 100), ("unknown".to_string(), -1)]);
    };
    check(&mut client);

    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    check(&mut client);
    let listed = client.request(3, &ListGroupsRequest::default()).expect("ListGroups");
    let mut names: Vec<&str> = listed.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["billing", "shipping"], "groups holding offsets are known after a restart");

    // OffsetDelete on an empty group drops just those partitions; DeleteGroups drops the rest.
    let delete = OffsetDeleteRequest::default().with_group_id(group("billing")).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(topic_name("audit"))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(1)]),
    ]);
    let response = client.request(0, &delete).expect("OffsetDelete");
    assert_eq!((response.error_code, response.topics[0].partitions[0].error_code), (NONE, NONE));
    assert_eq!(fetch_offsets(&mut client, "billing", None).len(), 2);
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group("billing"), group("never")]);
    let response = client.request(2, &request).expect("DeleteGroups");
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![NONE, GROUP_ID_NOT_FOUND]);
    assert!(fetch_offsets(&mut client, "billing", None).is_empty());
}

/// One member runs the whole protocol at each version of every group API, so every response is encoded at every
/// advertised version (a field set at a version that lacks it would close the connection).
#[test]
fn every_version_of_the_group_apis_is_answered() {
    let broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "t", 1, &[]).expect("create").error_code, NONE);
    for version in 0..=9i16 {
        let group_id = format!("g{version}");
        let request = |member_id: &str| {
            let request = join_request(&group_id, member_id, 10_000);
            // v0 has no rebalance timeout: it must stay at its default to be encoded.
            if version == 0 { request.with_rebalance_timeout_ms(-1) } else { request }
        };
        let mut joined = client.request(version, &request("")).expect("JoinGroup");
        if version >= 4 {
            assert_eq!(joined.error_code, MEMBER_ID_REQUIRED, "JoinGroup v{version}");
            let member_id = joined.member_id.to_string();
            joined = client.request(version, &request(&member_id)).expect("JoinGroup");
        }
        assert_eq!((joined.error_code, joined.generation_id), (NONE, 1), "JoinGroup v{version}");
        assert_eq!(joined.members.len(), 1, "JoinGroup v{version}");
        let member_id = joined.member_id.clone();

        let sync_version = version.min(5);
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group(&group_id))
            .with_generation_id(1)
            .with_member_id(member_id.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(member_id.clone())
                    .with_assignment(Bytes::from_static(b"mine")),
            ]);
        if sync_version >= 5 {
            sync = sync.with_protocol_type(Some(str("consumer"))).with_protocol_name(Some(str("range")));
        }
        let synced = client.request(sync_version, &sync).expect("SyncGroup");
        assert_eq!((synced.error_code, synced.assignment.as_ref()), (NONE, &b"mine"[..]), "SyncGroup v{sync_version}");

        let heartbeat_version = version.min(4);
        let beat = HeartbeatRequest::default()
            .with_group_id(group(&group_id))
            .with_member_id(member_id.clone())
            .with_generation_id(1);
        assert_eq!(client.request(heartbeat_version, &beat).expect("Heartbeat").error_code, NONE);

        let commit_version = (version + 2).min(9);
        let mut commit = commit_request(&group_id, 1, &member_id, &[("t", 0, i64::from(version) + 10)]);
        if commit_version < 6 {
            commit.topics[0].partitions[0].committed_leader_epoch = -1;
        }
        let committed = client.request(commit_version, &commit).expect("OffsetCommit");
        assert_eq!(committed.topics[0].partitions[0].error_code, NONE, "OffsetCommit v{commit_version}");

        let fetch_version = (version + 1).min(9);
        let partition = vec![0];
        let offset = if fetch_version >= 8 {
            let request = OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default().with_group_id(group(&group_id)).with_topics(Some(vec![
                    OffsetFetchRequestTopics::default().with_name(topic_name("t")).with_partition_indexes(partition),
                ])),
            ]);
            client.request(fetch_version, &request).expect("OffsetFetch").groups[0].topics[0].partitions[0]
                .committed_offset
        } else {
            let request = OffsetFetchRequest::default().with_group_id(group(&group_id)).with_topics(Some(vec![
                OffsetFetchRequestTopic::default().with_name(topic_name("t")).with_partition_indexes(partition),
            ]));
            client.request(fetch_version, &request).expect("OffsetFetch").topics[0].partitions[0].committed_offset
        };
        assert_eq!(offset, i64::from(version) + 10, "OffsetFetch v{fetch_version}");

        let describe_version = version.min(6);
        let described = client
            .request(describe_version, &DescribeGroupsRequest::default().with_groups(vec![group(&group_id)]))
            .expect("DescribeGroups");
        let described = &described.groups[0];
        assert_eq!(described.group_state.as_str(), "Stable", "DescribeGroups v{describe_version}");
        assert_eq!(described.members[0].member_assignment.as_ref(), b"mine");
        assert_eq!(described.members[0].client_host.as_str(), "/127.0.0.1");
        assert_eq!(described.members[0].client_id.as_str(), skein_test_support::client::CLIENT_ID);

        let list_version = version.min(5);
        let listed = client.request(list_version, &ListGroupsRequest::default()).expect("ListGroups");
        assert!(listed.groups.iter().any(|g| g.group_id.0.as_str() == group_id), "ListGroups v{list_version}");

        let leave_version = version.min(5);
        let leave = if leave_version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group(&group_id))
                .with_members(vec![MemberIdentity::default().with_member_id(member_id.clone())])
        } else {
            LeaveGroupRequest::default().with_group_id(group(&group_id)).with_member_id(member_id.clone())
        };
        let left = client.request(leave_version, &leave).expect("LeaveGroup");
        assert_eq!(left.error_code, NONE, "LeaveGroup v{leave_version}");

        let delete_version = version.min(2);
        let deleted = client
            .request(delete_version, &DeleteGroupsRequest::default().with_groups_names(vec![group(&group_id)]))
            .expect("DeleteGroups");
        assert_eq!(deleted.results[0].error_code, NONE, "DeleteGroups v{delete_version}");
    }
    // An unknown group is Dead; from v6 it is also GROUP_ID_NOT_FOUND.
    for (version, code) in [(5, NONE), (6, GROUP_ID_NOT_FOUND)] {
        let described = client
            .request(version, &DescribeGroupsRequest::default().with_groups(vec![group("never")]))
            .expect("DescribeGroups");
        assert_eq!((described.groups[0].error_code, described.groups[0].group_state.as_str()), (code, "Dead"));
    }
}

fn static_join(client: &mut RawClient, member_id: &str, instance_id: &str) -> JoinGroupResponse {
    let request = join_request("static", member_id, 10_000).with_group_instance_id(Some(str(instance_id)));
    client.request(JOIN_VERSION, &request).expect("JoinGroup")
}

#[test]
fn static_member_rejoins_without_a_rebalance_and_the_group_survives_restart() {
    let mut broker = TestBroker::start_with_yaml(FAST_GROUPS).expect("start skein");
    let mut client = broker.client().expect("connect");
    // A static member needs no MEMBER_ID_REQUIRED round trip.
    let first = static_join(&mut client, "", "instance-1");
    assert_eq!((first.error_code, first.generation_id), (NONE, 1));
    let first_id = first.member_id.to_string();
    assert!(first_id.starts_with("instance-1-"), "{first_id}");
    let sync_request = |joined: &JoinGroupResponse, assignment: &'static [u8]| {
        SyncGroupRequest::default()
            .with_group_id(group("static"))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_group_instance_id(Some(str("instance-1")))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(joined.member_id.clone())
                    .with_assignment(Bytes::from_static(assignment)),
            ])
    };
    let synced = client.request(3, &sync_request(&first, b"kept")).expect("SyncGroup");
    assert_eq!((synced.error_code, synced.assignment.as_ref()), (NONE, &b"kept"[..]));

    // The instance restarts and joins with no member id: a new member id, no new generation, the same assignment.
    // It is the leader; before JoinGroup v9 (no skip_assignment) Kafka rebalances for a leader, so join as v9.
    let request = join_request("static", "", 10_000).with_group_instance_id(Some(str("instance-1")));
    let replaced = client.request(9, &request).expect("JoinGroup v9");
    assert_eq!((replaced.error_code, replaced.generation_id, replaced.skip_assignment), (NONE, 1, true));
    assert_ne!(replaced.member_id.as_str(), first_id);
    let synced = client.request(3, &sync_request(&replaced, b"ignored")).expect("SyncGroup");
    assert_eq!((synced.error_code, synced.assignment.as_ref()), (NONE, &b"kept"[..]));
    // The old member id is fenced.
    let stale = HeartbeatRequest::default()
        .with_group_id(group("static"))
        .with_member_id(str(&first_id))
        .with_group_instance_id(Some(str("instance-1")))
        .with_generation_id(1);
    assert_eq!(client.request(3, &stale).expect("Heartbeat").error_code, FENCED_INSTANCE_ID);

    // After a restart the group is Stable with its member, its generation and its assignment (stored with the
    // group, as Kafka stores them): the member heartbeats on, and the instance joining again is no rebalance.
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    let described =
        client.request(5, &DescribeGroupsRequest::default().with_groups(vec![group("static")])).expect("describe");
    let described = &described.groups[0];
    assert_eq!(
        (described.group_state.as_str(), described.protocol_type.as_str(), described.members.len()),
        ("Stable", "consumer", 1)
    );
    assert_eq!(described.members[0].member_id, replaced.member_id);
    assert_eq!(described.members[0].member_assignment.as_ref(), &b"kept"[..]);
    let beat = HeartbeatRequest::default()
        .with_group_id(group("static"))
        .with_member_id(replaced.member_id.clone())
        .with_group_instance_id(Some(str("instance-1")))
        .with_generation_id(1);
    assert_eq!(client.request(3, &beat).expect("Heartbeat").error_code, NONE);
    let rejoined = static_join(&mut client, "", "instance-1");
    assert_eq!((rejoined.error_code, rejoined.generation_id), (NONE, 1));
}

#[test]
fn deleting_a_topic_deletes_its_committed_offsets() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    for name in ["doomed", "kept"] {
        assert_eq!(create_topic(&mut client, name, 2, &[]).expect("create").error_code, NONE);
    }
    for group_id in ["g1", "g2"] {
        let request = commit_request(group_id, -1, "", &[("doomed", 0, 7), ("doomed", 1, 8), ("kept", 0, 9)]);
        let response = client.request(8, &request).expect("OffsetCommit");
        assert!(response.topics.iter().all(|t| t.partitions.iter().all(|p| p.error_code == NONE)));
    }
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("doomed")]).with_timeout_ms(30_000);
    assert_eq!(client.request(5, &delete).expect("DeleteTopics").responses[0].error_code, NONE);
    assert_eq!(create_topic(&mut client, "doomed", 2, &[]).expect("create").error_code, NONE);
    for group_id in ["g1", "g2"] {
        assert_eq!(fetch_offsets(&mut client, group_id, None), vec![("kept".to_string(), 0, 9, "md-9".to_string())]);
    }
}
