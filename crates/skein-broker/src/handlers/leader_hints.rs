//! KIP-951: a Produce or Fetch refused with NOT_LEADER_OR_FOLLOWER tells the client who leads now (leader id
//! and epoch per partition, and the leaders' endpoints), so it can retry there without a Metadata round trip.

use std::collections::BTreeSet;

use kafka_protocol::messages::{BrokerId, FetchResponse, ProduceResponse, fetch_response, produce_response};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::MetadataImage;
use skein_core::{BrokerError, error_code};

use crate::cluster::endpoint;

/// Produce v10+ carries the hints.
const PRODUCE_HINTS_VERSION: i16 = 10;
/// Fetch v12+ carries the leader per partition, v16+ the endpoints.
const FETCH_LEADER_VERSION: i16 = 12;
const FETCH_ENDPOINTS_VERSION: i16 = 16;

fn not_leader() -> i16 {
    error_code(&BrokerError::NotLeaderOrFollower)
}

/// (leader, leader epoch) of a partition, or (-1, -1).
fn leader_of(image: &MetadataImage, topic: Option<&str>, topic_id: uuid::Uuid, partition: i32) -> (i32, i32) {
    let registered = match topic {
        Some(name) if !name.is_empty() => image.topic(name),
        _ => image.topic_by_id(topic_id),
    };
    registered.and_then(|t| t.partitions.get(&partition)).map_or((-1, -1), |p| (p.leader, p.leader_epoch))
}

fn endpoints<T>(
    image: &MetadataImage,
    leaders: &BTreeSet<i32>,
    make: impl Fn(i32, String, i32, Option<String>) -> T,
) -> Vec<T> {
    leaders
        .iter()
        .filter_map(|id| {
            let broker = image.broker(*id).filter(|b| !b.fenced)?;
            let endpoint = endpoint(broker, "")?;
            Some(make(*id, endpoint.host.clone(), i32::from(endpoint.port), broker.rack.clone()))
        })
        .collect()
}

pub(crate) fn add_to_produce(image: &MetadataImage, response: &mut ProduceResponse, version: i16) {
    if version < PRODUCE_HINTS_VERSION {
        return;
    }
    let mut leaders = BTreeSet::new();
    for topic in &mut response.responses {
        for partition in topic.partition_responses.iter_mut().filter(|p| p.error_code == not_leader()) {
            let (leader, epoch) = leader_of(image, Some(topic.name.0.as_str()), uuid::Uuid::nil(), partition.index);
            partition.current_leader =
                produce_response::LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader)).with_leader_epoch(epoch);
            if leader >= 0 {
                leaders.insert(leader);
            }
        }
    }
    response.node_endpoints = endpoints(image, &leaders, |id, host, port, rack| {
        produce_response::NodeEndpoint::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port)
            .with_rack(rack.map(StrBytes::from_string))
    });
}

pub(crate) fn add_to_fetch(image: &MetadataImage, response: &mut FetchResponse, version: i16) {
    if version < FETCH_LEADER_VERSION {
        return;
    }
    let mut leaders = BTreeSet::new();
    for topic in &mut response.responses {
        let name = topic.topic.0.to_string();
        for partition in topic.partitions.iter_mut().filter(|p| p.error_code == not_leader()) {
            let (leader, epoch) = leader_of(image, Some(&name), topic.topic_id, partition.partition_index);
            partition.current_leader =
                fetch_response::LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader)).with_leader_epoch(epoch);
            if leader >= 0 {
                leaders.insert(leader);
            }
        }
    }
    if version >= FETCH_ENDPOINTS_VERSION {
        response.node_endpoints = endpoints(image, &leaders, |id, host, port, rack| {
            fetch_response::NodeEndpoint::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_rack(rack.map(StrBytes::from_string))
        });
    }
}
