//! cluster: bootstrapped at one node of a three-broker cluster, the client's metadata shows the three
//! brokers and the topic's partitions with three replicas each, all in sync, led by three different
//! brokers; then the roundtrip, whose produce and fetch requests must go to each partition's leader
//! (conformance/common/messages.md, "Cluster scenario").

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};

use crate::client::{ErrorLog, REQUEST_TIMEOUT};
use crate::scenarios::{self, Context};

pub const DEFAULT_COUNT: u64 = 3_000;
const BROKERS: usize = 3;
const REPLICATION_FACTOR: usize = 3;
const PARTITIONS: i32 = 3;
/// Brokers learn of a new topic a moment apart: the metadata is re-read this long before the checks fail.
const METADATA_WAIT: Duration = Duration::from_secs(30);

/// Node id -> (host, port) as advertised.
type Brokers = BTreeMap<i32, (String, i32)>;

#[derive(Debug)]
struct PartitionInfo {
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

pub fn cluster(ctx: &Context, count: u64) -> Result<(), String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &ctx.bootstrap);
    let admin = AdminClient::from_config_and_context(&config, ErrorLog::default())
        .map_err(|e| format!("cannot create admin client: {e}"))?;
    let deadline = Instant::now() + METADATA_WAIT;
    loop {
        let (brokers, partitions) = metadata(&admin, &ctx.topic)?;
        match check(&ctx.bootstrap, &brokers, &partitions) {
            Ok(()) => {
                eprintln!("cluster: brokers {brokers:?}, partitions {partitions:?}");
                break;
            }
            Err(problem) if Instant::now() >= deadline => return Err(problem),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    drop(admin);
    scenarios::roundtrip(ctx, count, "none")
}

/// The brokers and `topic`'s partitions from a metadata request for all topics (naming the topic could
/// auto-create it).
fn metadata(
    admin: &AdminClient<ErrorLog>,
    topic: &str,
) -> Result<(Brokers, BTreeMap<i32, PartitionInfo>), String> {
    let metadata = admin
        .inner()
        .fetch_metadata(None, REQUEST_TIMEOUT)
        .map_err(|e| format!("metadata request failed: {e}"))?;
    let brokers: Brokers = metadata
        .brokers()
        .iter()
        .map(|broker| (broker.id(), (broker.host().to_string(), broker.port())))
        .collect();
    let mut partitions = BTreeMap::new();
    if let Some(described) = metadata.topics().iter().find(|t| t.name() == topic) {
        if let Some(error) = described.error() {
            return Err(format!("metadata for {topic} has error {error:?}"));
        }
        for partition in described.partitions() {
            partitions.insert(
                partition.id(),
                PartitionInfo {
                    leader: partition.leader(),
                    replicas: partition.replicas().to_vec(),
                    isr: partition.isr().to_vec(),
                },
            );
        }
    }
    Ok((brokers, partitions))
}

/// The checks of messages.md's "Cluster scenario", step 1 (`check_cluster_metadata` in messages.py).
fn check(
    bootstrap: &str,
    brokers: &Brokers,
    partitions: &BTreeMap<i32, PartitionInfo>,
) -> Result<(), String> {
    if brokers.len() != BROKERS {
        return Err(format!(
            "metadata lists {} brokers, expected {BROKERS}: {brokers:?}",
            brokers.len()
        ));
    }
    let endpoints: BTreeSet<String> = brokers
        .values()
        .map(|(host, port)| format!("{host}:{port}"))
        .collect();
    if endpoints.len() != BROKERS {
        return Err(format!("brokers share an advertised address: {brokers:?}"));
    }
    if !endpoints.contains(bootstrap) {
        return Err(format!(
            "the bootstrap address {bootstrap} is not a listed broker: {brokers:?}"
        ));
    }
    let numbers: Vec<i32> = partitions.keys().copied().collect();
    if numbers != (0..PARTITIONS).collect::<Vec<i32>>() {
        return Err(format!(
            "topic has partitions {numbers:?}, expected 0..{}",
            PARTITIONS - 1
        ));
    }
    let mut leaders = BTreeSet::new();
    for (number, info) in partitions {
        let place = format!(
            "partition {number} (leader {}, replicas {:?}, isr {:?})",
            info.leader, info.replicas, info.isr
        );
        let distinct: BTreeSet<i32> = info.replicas.iter().copied().collect();
        if info.replicas.len() != REPLICATION_FACTOR || distinct.len() != info.replicas.len() {
            return Err(format!(
                "{place}: expected {REPLICATION_FACTOR} distinct replicas"
            ));
        }
        if !distinct.iter().all(|id| brokers.contains_key(id)) {
            let ids: Vec<&i32> = brokers.keys().collect();
            return Err(format!("{place}: a replica is not a listed broker {ids:?}"));
        }
        let mut isr = info.isr.clone();
        isr.sort_unstable();
        let mut replicas = info.replicas.clone();
        replicas.sort_unstable();
        if isr != replicas {
            return Err(format!("{place}: the in-sync replicas are not all the replicas"));
        }
        if !info.replicas.contains(&info.leader) {
            return Err(format!("{place}: the leader is not a replica"));
        }
        leaders.insert(info.leader);
    }
    if leaders.len() != partitions.len() {
        let all: Vec<i32> = partitions.values().map(|info| info.leader).collect();
        return Err(format!(
            "partition leaders {all:?}: expected every partition led by a different broker"
        ));
    }
    Ok(())
}
