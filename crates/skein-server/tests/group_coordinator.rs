//! Group coordination on a 3-node cluster, over the wire: a group's coordinator is the leader of its
//! `__consumer_offsets` partition (listed as an internal topic, refused to producers); committed offsets are in that
//! replicated partition, so after the coordinator's SIGKILL the new leader coordinates the group with every
//! acknowledged commit; the other brokers answer NOT_COORDINATOR. KIP-848 members, their epochs and assignments are
//! there too: they heartbeat on at the new coordinator without rejoining.

use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
    OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::cluster::index_of;
use skein_test_support::records::simple_batch;
use skein_test_support::requests::{
    consumer_heartbeat_request, consumer_join_request, create_topic, metadata, produce,
};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// Few coordinator partitions, three replicas each; a dead broker is noticed within 6 s.
const CLUSTER_YAML: &str =
    "offsets.topic.num.partitions: 3\noffsets.topic.replication.factor: 3\nreplica.lag.time.max.ms: 2000\n";
const WAIT: Duration = Duration::from_secs(40);

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// The group's coordinator as `client`'s broker names it (`None` while it has none).
fn coordinator(client: &mut RawClient, group_id: &str) -> anyhow::Result<Option<i32>> {
    let response = client.request(4, &FindCoordinatorRequest::default().with_coordinator_keys(vec![str(group_id)]))?;
    let answer = response.coordinators.first().ok_or_else(|| anyhow::anyhow!("no coordinator answered"))?;
    match answer.error_code {
        NONE => Ok(Some(answer.node_id.0)),
        COORDINATOR_NOT_AVAILABLE => Ok(None),
        other => anyhow::bail!("FindCoordinator answered {other}"),
    }
}

fn commit(client: &mut RawClient, group_id: &str, topic: &str, offsets: &[(i32, i64)]) -> anyhow::Result<Vec<i16>> {
    let partitions = offsets
        .iter()
        .map(|&(partition, offset)| {
            OffsetCommitRequestPartition::default().with_partition_index(partition).with_committed_offset(offset)
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str(group_id)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(skein_test_support::requests::topic_name(topic))
                .with_partitions(partitions),
        ]);
    let response = client.request(8, &request)?;
    Ok(response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect())
}

/// OffsetFetch v7 of `topic`'s partitions 0..count: (group error, [(partition, offset)]).
fn fetch_offsets(client: &mut RawClient, group_id: &str, topic: &str, count: i32) -> anyhow::Result<(i16, Vec<i64>)> {
    let request = OffsetFetchRequest::default().with_group_id(GroupId(str(group_id))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default()
            .with_name(skein_test_support::requests::topic_name(topic))
            .with_partition_indexes((0..count).collect()),
    ]));
    let response: OffsetFetchResponse = client.request(7, &request)?;
    let offsets = response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.committed_offset)).collect();
    Ok((response.error_code, offsets))
}

#[test]
fn committed_offsets_survive_the_coordinators_sigkill() -> anyhow::Result<()> {
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let mut first = nodes[0].client()?;
    let topic = "orders";
    skein_test_support::wait_for("the topic to be created", WAIT, || {
        Ok((create_topic(&mut first, topic, 2, &[])?.error_code == NONE).then_some(()))
    })?;

    // The internal topic: created once three brokers are registered, listed as internal, not for producers.
    let internal = skein_test_support::wait_for("__consumer_offsets in Metadata", WAIT, || {
        let response = metadata(&mut first, &["__consumer_offsets"], false)?;
        Ok(response.topics.into_iter().find(|t| t.error_code == NONE && t.partitions.len() == 3))
    })?;
    assert!(internal.is_internal, "{internal:?}");
    assert!(internal.partitions.iter().all(|p| p.replica_nodes.len() == 3), "{internal:?}");
    let refused = produce(&mut first, "__consumer_offsets", 0, simple_batch(1, 1_000, 8)?, -1)?;
    assert_eq!(refused.error_code, INVALID_TOPIC_EXCEPTION, "{refused:?}");

    let group_id = "billing";
    let coordinator_id = skein_test_support::wait_for("a coordinator", WAIT, || coordinator(&mut first, group_id))?;
    let mut at_coordinator = nodes[index_of(&nodes, coordinator_id)].client()?;
    // Commits are acknowledged once replicated (retried while the coordinator is still loading).
    skein_test_support::wait_for("the first commit", WAIT, || {
        let codes = commit(&mut at_coordinator, group_id, topic, &[(0, 17), (1, 5)])?;
        anyhow::ensure!(codes.iter().all(|&c| c == NONE || c == COORDINATOR_LOAD_IN_PROGRESS), "{codes:?}");
        Ok(codes.iter().all(|&c| c == NONE).then_some(()))
    })?;
    assert_eq!(commit(&mut at_coordinator, group_id, topic, &[(1, 9)])?, vec![NONE]);
    assert_eq!(fetch_offsets(&mut at_coordinator, group_id, topic, 2)?, (NONE, vec![17, 9]));
    // Another broker does not coordinate the group.
    let other = nodes.iter().position(|n| n.node_id() != coordinator_id).expect("another node");
    let mut at_other = nodes[other].client()?;
    assert_eq!(fetch_offsets(&mut at_other, group_id, topic, 2)?.0, NOT_COORDINATOR);
    assert_eq!(commit(&mut at_other, group_id, topic, &[(0, 1)])?, vec![NOT_COORDINATOR]);

    let killed = index_of(&nodes, coordinator_id);
    nodes[killed].kill9()?;
    let new_coordinator = skein_test_support::wait_for("a new coordinator", WAIT, || {
        Ok(coordinator(&mut at_other, group_id)?.filter(|&id| id != coordinator_id))
    })?;
    let mut at_new = nodes[index_of(&nodes, new_coordinator)].client()?;
    let fetched = skein_test_support::wait_for("the new coordinator to serve the group", WAIT, || {
        let (code, offsets) = fetch_offsets(&mut at_new, group_id, topic, 2)?;
        anyhow::ensure!(matches!(code, NONE | COORDINATOR_LOAD_IN_PROGRESS | NOT_COORDINATOR), "OffsetFetch {code}");
        Ok((code == NONE).then_some(offsets))
    })?;
    assert_eq!(fetched, vec![17, 9], "every acknowledged commit is at the new coordinator");
    assert_eq!(commit(&mut at_new, group_id, topic, &[(0, 20)])?, vec![NONE]);
    assert_eq!(fetch_offsets(&mut at_new, group_id, topic, 2)?, (NONE, vec![20, 9]));
    Ok(())
}

/// ConsumerGroupHeartbeat v1 at `client`'s broker.
fn consumer_heartbeat(
    client: &mut RawClient,
    request: &ConsumerGroupHeartbeatRequest,
) -> anyhow::Result<ConsumerGroupHeartbeatResponse> {
    client.request(1, request)
}

/// The partitions an answer assigns, if it carries an assignment.
fn assigned(response: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    response.assignment.as_ref().map(|a| a.topic_partitions.iter().flat_map(|t| t.partitions.iter().copied()).collect())
}

#[test]
fn consumer_group_members_carry_on_at_the_new_coordinator_after_a_sigkill() -> anyhow::Result<()> {
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let mut first = nodes[0].client()?;
    let topic = "events";
    skein_test_support::wait_for("the topic to be created", WAIT, || {
        Ok((create_topic(&mut first, topic, 2, &[])?.error_code == NONE).then_some(()))
    })?;
    let topic_id = metadata(&mut first, &[topic], false)?.topics[0].topic_id;
    let group_id = "streaming";
    let coordinator_id = skein_test_support::wait_for("a coordinator", WAIT, || coordinator(&mut first, group_id))?;
    let mut at_coordinator = nodes[index_of(&nodes, coordinator_id)].client()?;
    // The coordinator assigns only what its own metadata image has.
    skein_test_support::wait_for("the coordinator to know the topic", WAIT, || {
        let known = metadata(&mut at_coordinator, &[topic], false)?;
        Ok((known.topics[0].error_code == NONE && known.topics[0].partitions.len() == 2).then_some(()))
    })?;

    // Two members split the topic and reach a stable group at epoch 2.
    let joined = skein_test_support::wait_for("m to join", WAIT, || {
        let answer = consumer_heartbeat(&mut at_coordinator, &consumer_join_request(group_id, "m", topic))?;
        anyhow::ensure!(matches!(answer.error_code, NONE | COORDINATOR_LOAD_IN_PROGRESS), "{answer:?}");
        Ok((answer.error_code == NONE).then_some(answer))
    })?;
    assert_eq!((joined.member_epoch, assigned(&joined)), (1, Some(vec![0, 1])));
    let n = consumer_heartbeat(&mut at_coordinator, &consumer_join_request(group_id, "n", topic))?;
    assert_eq!((n.error_code, n.member_epoch), (NONE, 2), "{n:?}");
    let revoke = consumer_heartbeat(
        &mut at_coordinator,
        &consumer_heartbeat_request(group_id, "m", 1, &[(topic_id, vec![0, 1])]),
    )?;
    let m_kept = assigned(&revoke).ok_or_else(|| anyhow::anyhow!("m is asked to revoke: {revoke:?}"))?;
    let m_done = consumer_heartbeat(
        &mut at_coordinator,
        &consumer_heartbeat_request(group_id, "m", 1, &[(topic_id, m_kept.clone())]),
    )?;
    assert_eq!(m_done.member_epoch, 2, "{m_done:?}");
    let n_given = consumer_heartbeat(&mut at_coordinator, &consumer_heartbeat_request(group_id, "n", 2, &[]))?;
    let n_owned = assigned(&n_given).ok_or_else(|| anyhow::anyhow!("n gets a partition: {n_given:?}"))?;
    assert_eq!(m_kept.len() + n_owned.len(), 2);

    // The coordinator dies; the new one knows both members, their epochs and assignments: they heartbeat on.
    let killed = index_of(&nodes, coordinator_id);
    nodes[killed].kill9()?;
    let other = nodes.iter().position(|node| node.node_id() != coordinator_id).expect("another node");
    let mut at_other = nodes[other].client()?;
    let new_coordinator = skein_test_support::wait_for("a new coordinator", WAIT, || {
        Ok(coordinator(&mut at_other, group_id)?.filter(|&id| id != coordinator_id))
    })?;
    let mut at_new = nodes[index_of(&nodes, new_coordinator)].client()?;
    let m_again = skein_test_support::wait_for("m's heartbeat at the new coordinator", WAIT, || {
        let request = consumer_heartbeat_request(group_id, "m", 2, &[(topic_id, m_kept.clone())]);
        let answer = consumer_heartbeat(&mut at_new, &request)?;
        anyhow::ensure!(
            matches!(answer.error_code, NONE | COORDINATOR_LOAD_IN_PROGRESS | NOT_COORDINATOR),
            "m is not known with its epoch: {answer:?}"
        );
        Ok((answer.error_code == NONE).then_some(answer))
    })?;
    assert_eq!(m_again.member_epoch, 2, "{m_again:?}");
    assert!(assigned(&m_again).is_none_or(|partitions| partitions == m_kept), "{m_again:?}");
    let n_again =
        consumer_heartbeat(&mut at_new, &consumer_heartbeat_request(group_id, "n", 2, &[(topic_id, n_owned.clone())]))?;
    assert_eq!((n_again.error_code, n_again.member_epoch), (NONE, 2), "{n_again:?}");

    // The group is Stable at the epoch it had, with both members.
    let described: ConsumerGroupDescribeResponse =
        at_new.request(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(str(group_id))]))?;
    let group = described.groups.first().ok_or_else(|| anyhow::anyhow!("no group described"))?;
    assert_eq!((group.error_code, group.group_state.as_str(), group.group_epoch), (NONE, "Stable", 2), "{group:?}");
    let mut members: Vec<(String, i32)> =
        group.members.iter().map(|m| (m.member_id.as_str().to_string(), m.member_epoch)).collect();
    members.sort();
    assert_eq!(members, vec![("m".to_string(), 2), ("n".to_string(), 2)]);
    Ok(())
}
