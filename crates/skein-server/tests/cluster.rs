//! Three `skein` processes in one cluster, driven over the wire: a broker asked for a partition another broker
//! leads answers NOT_LEADER_OR_FOLLOWER, and from Produce v10 / Fetch v12 (v16 for endpoints) it says who leads
//! (KIP-951), so a client can go there without asking for Metadata first. The leader itself serves the request.

use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_request::FetchTopic;
use skein_test_support::TestBroker;
use skein_test_support::cluster::wait_everywhere;
use skein_test_support::records::simple_batch;
use skein_test_support::requests::{
    create_topic, fetch_request_for, list_offset, metadata, produce_request, topic_name,
};

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const PARTITIONS: i32 = 6;
/// Produce v12 and Fetch v17 are the newest Skein serves; v9 and v11 predate the hints.
const PRODUCE_WITH_HINTS: i16 = 12;
const PRODUCE_WITHOUT_HINTS: i16 = 9;
const FETCH_WITH_ENDPOINTS: i16 = 17;
const FETCH_WITHOUT_HINTS: i16 = 11;

#[test]
fn a_broker_that_does_not_lead_a_partition_names_its_leader() -> anyhow::Result<()> {
    let nodes = TestBroker::start_cluster(3, "")?;
    let topic = "kip951";
    let mut first = nodes[0].client()?;
    let created = create_topic(&mut first, topic, PARTITIONS, &[])?;
    assert_eq!(created.error_code, 0, "{created:?}");

    // Every partition has a leader, and they are spread over the three brokers. CreateTopics answers once the
    // quorum has committed the topic; each broker applies it a moment later, so wait until all of them agree.
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let mut placed = Vec::new();
    for partition in 0..PARTITIONS {
        let what = format!("{topic}-{partition} led, the same on every broker");
        let p = wait_everywhere(&all, topic, partition, &what, |p| p.leader > 0)?;
        placed.push((partition, p.leader, p.leader_epoch));
    }
    let led: std::collections::BTreeSet<i32> = placed.iter().map(|(_, leader, _)| *leader).collect();
    assert_eq!(led.len(), 3, "{placed:?}");
    let topic_id = metadata(&mut first, &[topic], false)?.topics[0].topic_id;

    for (partition, leader, leader_epoch) in placed {
        let leader_node = nodes.iter().find(|n| n.node_id() == leader).expect("a node leads");
        let other = nodes.iter().find(|n| n.node_id() != leader).expect("another node");
        let mut client = other.client()?;

        // Produce: the error and, from v10, the current leader and its endpoint.
        let request = produce_request(topic, partition, simple_batch(1, 1_700_000_000_000, 8)?, 1);
        let refused = client.request(PRODUCE_WITH_HINTS, &request)?;
        let answer = &refused.responses[0].partition_responses[0];
        assert_eq!(answer.error_code, NOT_LEADER_OR_FOLLOWER, "{answer:?}");
        assert_eq!((answer.current_leader.leader_id.0, answer.current_leader.leader_epoch), (leader, leader_epoch));
        let endpoint = refused.node_endpoints.iter().find(|e| e.node_id.0 == leader).expect("the leader's endpoint");
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port),
            (leader_node.addr().ip().to_string().as_str(), i32::from(leader_node.addr().port()))
        );
        let old = client.request(PRODUCE_WITHOUT_HINTS, &request)?;
        assert_eq!(old.responses[0].partition_responses[0].error_code, NOT_LEADER_OR_FOLLOWER);

        // Fetch by topic id: the error, the leader and (v16+) its endpoint.
        let fetch = fetch_request_for(FetchTopic::default().with_topic_id(topic_id), partition, 0, 0, 0);
        let refused: FetchResponse = client.request(FETCH_WITH_ENDPOINTS, &fetch)?;
        let answer = &refused.responses[0].partitions[0];
        assert_eq!(answer.error_code, NOT_LEADER_OR_FOLLOWER, "{answer:?}");
        assert_eq!((answer.current_leader.leader_id.0, answer.current_leader.leader_epoch), (leader, leader_epoch));
        assert!(refused.node_endpoints.iter().any(|e| e.node_id.0 == leader), "{:?}", refused.node_endpoints);
        let by_name = fetch_request_for(FetchTopic::default().with_topic(topic_name(topic)), partition, 0, 0, 0);
        let old: FetchResponse = client.request(FETCH_WITHOUT_HINTS, &by_name)?;
        assert_eq!(old.responses[0].partitions[0].error_code, NOT_LEADER_OR_FOLLOWER);

        assert_eq!(list_offset(&mut client, topic, partition, -1)?.error_code, NOT_LEADER_OR_FOLLOWER);

        // The leader takes the same produce and serves the record.
        let mut at_leader = leader_node.client()?;
        let accepted = at_leader.request(PRODUCE_WITH_HINTS, &request)?;
        let answer = &accepted.responses[0].partition_responses[0];
        assert_eq!((answer.error_code, answer.base_offset), (0, 0), "{answer:?}");
        assert!(accepted.node_endpoints.is_empty());
        assert_eq!(list_offset(&mut at_leader, topic, partition, -1)?.offset, 1);
    }
    Ok(())
}
