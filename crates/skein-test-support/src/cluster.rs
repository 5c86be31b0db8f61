//! Helpers for tests on a cluster of [`TestBroker`]s: where a partition is placed as one broker's Metadata shows
//! it, waiting until every node shows the same, creating a topic and waiting until it is in sync everywhere, and
//! producing to a leader that may not have taken its leadership yet.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest};

use crate::broker::TestBroker;
use crate::client::RawClient;
use crate::requests::{CREATE_TOPICS_VERSION, metadata, produce, topic_name};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

/// Bound on each wait of this module for the cluster to reach a state (a leader change takes the 6 s broker
/// session [`TestBroker::start_cluster`] sets).
pub const CLUSTER_WAIT: Duration = Duration::from_secs(30);

/// One partition as one broker's Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub topic_id: uuid::Uuid,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    /// Sorted.
    pub isr: Vec<i32>,
}

/// `partition` of `topic` as `client`'s broker shows it in Metadata; `None` while that broker does not know the
/// topic or the partition, or answers an error for either.
pub fn placement(client: &mut RawClient, topic: &str, partition: i32) -> anyhow::Result<Option<Placement>> {
    let response = metadata(client, &[topic], false)?;
    let Some(found) = response.topics.into_iter().find(|t| t.error_code == NONE) else {
        return Ok(None);
    };
    Ok(found.partitions.iter().find(|p| p.partition_index == partition && p.error_code == NONE).map(|p| {
        let mut isr: Vec<i32> = p.isr_nodes.iter().map(|id| id.0).collect();
        isr.sort_unstable();
        Placement {
            topic_id: found.topic_id,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.iter().map(|id| id.0).collect(),
            isr,
        }
    }))
}

/// The placement of `topic`/`partition` once every node of `nodes` shows the same one and it satisfies `holds`,
/// polled every 100 ms (one connection per node) for at most [`CLUSTER_WAIT`]; an error names `what` was awaited
/// and what each node showed last.
pub fn wait_everywhere(
    nodes: &[&TestBroker],
    topic: &str,
    partition: i32,
    what: &str,
    holds: impl Fn(&Placement) -> bool,
) -> anyhow::Result<Placement> {
    let mut clients = nodes.iter().map(|n| n.client()).collect::<anyhow::Result<Vec<_>>>()?;
    let mut last = Vec::new();
    crate::wait_for(what, CLUSTER_WAIT, || {
        let seen = clients.iter_mut().map(|c| placement(c, topic, partition)).collect::<anyhow::Result<Vec<_>>>()?;
        let agreed = match seen.first() {
            Some(Some(first)) if holds(first) && seen.iter().all(|s| s.as_ref() == Some(first)) => Some(first.clone()),
            _ => None,
        };
        last = seen;
        Ok(agreed)
    })
    .with_context(|| {
        let ids: Vec<i32> = nodes.iter().map(|n| n.node_id()).collect();
        format!("{topic}-{partition} last shown by nodes {ids:?}: {last:?}")
    })
}

/// A topic named `name` with a manual replica assignment: partition `i` on the replicas `assignments[i]`, the
/// first of them its preferred leader.
pub fn assigned_topic(name: &str, assignments: &[&[i32]]) -> CreatableTopic {
    let assignment = assignments
        .iter()
        .zip(0..)
        .map(|(replicas, index)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(index)
                .with_broker_ids(replicas.iter().copied().map(BrokerId).collect())
        })
        .collect();
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(assignment)
}

/// Creates `topic` on `nodes[0]` and waits until every node shows each of its partitions led with every replica
/// in sync (and `replication_factor` replicas when it names one; with a manual assignment, the assigned replicas
/// led by the first); returns those placements in partition order. Until every node has registered, a replica on
/// it or a replication factor over the registered brokers is refused, so CreateTopics is retried meanwhile;
/// it answers once the quorum committed the topic, each broker applies it a moment later.
pub fn create_topic_in_sync(nodes: &[TestBroker], topic: CreatableTopic) -> anyhow::Result<Vec<Placement>> {
    let name = topic.name.0.to_string();
    let assignments: Vec<(i32, Vec<i32>)> =
        topic.assignments.iter().map(|a| (a.partition_index, a.broker_ids.iter().map(|id| id.0).collect())).collect();
    let partitions: Vec<i32> = if assignments.is_empty() {
        anyhow::ensure!(topic.num_partitions > 0, "{name}: name the partition count or assign the replicas");
        (0..topic.num_partitions).collect()
    } else {
        assignments.iter().map(|(partition, _)| *partition).collect()
    };
    let replication_factor = usize::try_from(topic.replication_factor).ok();
    let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(30_000);
    let mut client = nodes.first().context("no nodes")?.client()?;
    crate::wait_for(&format!("{name} to be created"), CLUSTER_WAIT, || {
        let response = client.request(CREATE_TOPICS_VERSION, &request)?;
        let code = response.topics.first().context("CreateTopics answered no topic")?.error_code;
        anyhow::ensure!(
            matches!(code, NONE | INVALID_REPLICATION_FACTOR | INVALID_REPLICA_ASSIGNMENT),
            "CreateTopics answered {code}: {response:?}"
        );
        Ok((code == NONE).then_some(()))
    })?;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let mut placed = Vec::new();
    for partition in partitions {
        let assigned = assignments.iter().find(|(index, _)| *index == partition).map(|(_, replicas)| replicas);
        placed.push(wait_everywhere(&all, &name, partition, &format!("{name}-{partition} in sync everywhere"), |p| {
            let mut replicas = p.replicas.clone();
            replicas.sort_unstable();
            p.leader > 0
                && p.isr == replicas
                && replication_factor.is_none_or(|factor| p.replicas.len() == factor)
                && assigned.is_none_or(|assigned| p.replicas == *assigned && p.replicas.first() == Some(&p.leader))
        })?);
    }
    Ok(placed)
}

/// Produces `batch` to `topic`/`partition` with `acks` (Produce v11, 30 s timeout), retrying for at most
/// [`CLUSTER_WAIT`] while the broker has not yet taken the leadership Metadata already shows
/// (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER: nothing is written then); returns the
/// answer to the first attempt that got past that.
pub fn produce_at_leader(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    batch: &Bytes,
    acks: i16,
) -> anyhow::Result<PartitionProduceResponse> {
    crate::wait_for("the leader to take a produce", CLUSTER_WAIT, || {
        let answer = produce(client, topic, partition, batch.clone(), acks)?;
        if matches!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE | NOT_LEADER_OR_FOLLOWER) {
            eprintln!("produce not led yet: {answer:?}");
            return Ok(None);
        }
        Ok(Some(answer))
    })
}

/// The index in `nodes` of the node whose id is `node_id`; panics when there is none (a mistake in the test).
pub fn index_of(nodes: &[TestBroker], node_id: i32) -> usize {
    nodes.iter().position(|n| n.node_id() == node_id).expect("a node with that id")
}
