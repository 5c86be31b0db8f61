//! Observers (KRaft's broker-only nodes): a non-voting member follows the metadata log as an openraft
//! learner. Three voters and one observer in one process, real TCP on 127.0.0.x, real RocksDB in temporary
//! directories; the observer listens on port 0 and advertises the port it got.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use skein_cluster::{
    ControllerError, ControllerRequest, MetadataImage, MetadataQuorum, NodeId, QuorumConfig, QuorumError,
};
use support::{endpoint, free_addr, init_tracing, wait_until};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const TEST_BUDGET: Duration = Duration::from_secs(90);
const BUDGET: Duration = Duration::from_secs(15);
const OBSERVER: NodeId = 4;

async fn bounded<F: Future<Output = ()>>(body: F) {
    init_tracing();
    tokio::time::timeout(TEST_BUDGET, body).await.expect("test exceeded its time budget");
}

fn loopback(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(id).unwrap()))
}

/// The shared timeouts, and: a snapshot purges the whole log below it, so a node that missed entries needs it.
fn tune(config: &mut QuorumConfig) {
    support::tune(config);
    config.entries_kept_after_snapshot = 0;
}

/// Nodes 1..=3 vote; node 4 observes.
struct Cluster {
    dirs: Vec<TempDir>,
    configs: Vec<QuorumConfig>,
    nodes: Vec<Option<MetadataQuorum>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let voters: Vec<(NodeId, SocketAddr)> = (1..=3).map(|id| (id, free_addr(loopback(id)))).collect();
        let configs: Vec<QuorumConfig> = (1..=4)
            .map(|id: NodeId| {
                let dir = dirs[usize::try_from(id - 1).unwrap()].path().to_path_buf();
                let listen = if id == OBSERVER {
                    SocketAddr::new(loopback(id), 0)
                } else {
                    voters[usize::try_from(id - 1).unwrap()].1
                };
                let mut c = QuorumConfig::new(id, voters.clone(), listen, dir);
                c.observer = id == OBSERVER;
                tune(&mut c);
                c
            })
            .collect();
        let mut cluster = Cluster { dirs, configs, nodes: Vec::new() };
        for config in &cluster.configs {
            cluster.nodes.push(Some(MetadataQuorum::start(config.clone()).await.unwrap()));
        }
        cluster
    }

    fn node(&self, id: NodeId) -> &MetadataQuorum {
        self.nodes[usize::try_from(id - 1).unwrap()].as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &MetadataQuorum> {
        self.nodes.iter().flatten()
    }

    /// Waits until every running node, the observer included, names the same leader, a running voter.
    async fn wait_leader(&self) -> NodeId {
        wait_until(BUDGET, "a leader every running node agrees on", || {
            let leaders: BTreeSet<Option<NodeId>> = self.running().map(MetadataQuorum::leader_id).collect();
            match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(leader)]
                    if *leader != OBSERVER && self.running().any(|n| n.node_id() == *leader && n.is_leader()) =>
                {
                    Some(*leader)
                }
                _ => None,
            }
        })
        .await
    }

    async fn stop(&mut self, id: NodeId) {
        let node = self.nodes[usize::try_from(id - 1).unwrap()].take().unwrap();
        node.shutdown().await.unwrap();
    }

    async fn restart(&mut self, id: NodeId) {
        let i = usize::try_from(id - 1).unwrap();
        self.nodes[i] = Some(MetadataQuorum::start(self.configs[i].clone()).await.unwrap());
    }

    async fn converge(&self, what: &str, check: impl Fn(&MetadataImage) -> bool) {
        wait_until(BUDGET, what, || self.running().all(|n| check(&n.image())).then_some(())).await;
    }

    async fn shutdown(mut self) {
        for id in 1..=4 {
            if self.nodes[usize::try_from(id - 1).unwrap()].is_some() {
                self.stop(id).await;
            }
        }
        drop(self.dirs);
    }
}

/// One raw request on the controller frame; answers the reply's JSON body.
async fn raw_call(addr: SocketAddr, kind: u8, body: &serde_json::Value) -> serde_json::Value {
    let body = serde_json::to_vec(body).unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&u32::try_from(body.len() + 1).unwrap().to_be_bytes()).await.unwrap();
    stream.write_all(&[kind]).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(BUDGET, stream.read_exact(&mut len)).await.unwrap().unwrap();
    let mut reply_kind = [0u8; 1];
    stream.read_exact(&mut reply_kind).await.unwrap();
    assert_eq!(reply_kind[0], kind | 0x80);
    let mut reply = vec![0u8; usize::try_from(u32::from_be_bytes(len) - 1).unwrap()];
    stream.read_exact(&mut reply).await.unwrap();
    serde_json::from_slice(&reply).unwrap()
}

#[test]
fn observer_config_is_validated() {
    let addr: SocketAddr = "127.0.0.1:9093".parse().unwrap();
    let voters = vec![(1, addr)];
    let mut config = QuorumConfig::new(1, voters.clone(), addr, "/tmp/unused".into());
    config.observer = true;
    let Err(QuorumError::Config(problems)) = config.validate() else { panic!("a voter cannot observe") };
    assert!(problems.iter().any(|p| p.contains("observer")), "{problems:?}");

    let other = QuorumConfig::new(2, voters.clone(), addr, "/tmp/unused".into());
    assert!(other.validate().is_err(), "a non-voter must be an observer");
    let mut observer = other.clone();
    observer.observer = true;
    observer.validate().unwrap();
    observer.advertised = Some("0.0.0.0:9093".parse().unwrap());
    assert!(observer.validate().is_err(), "a wildcard advertised address is refused");
    observer.advertised = None;
    observer.listen = "0.0.0.0:0".parse().unwrap();
    assert!(observer.validate().is_err(), "a wildcard listener needs an advertised address");
    observer.advertised = Some("10.0.0.4:9093".parse().unwrap());
    observer.validate().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_the_log_across_leader_loss_and_its_own_restart() {
    bounded(async {
        let mut cluster = Cluster::start().await;
        let observer = cluster.node(OBSERVER).clone();
        assert!(observer.is_observer());
        assert_eq!(observer.advertised_addr(), observer.local_addr());
        assert_ne!(observer.local_addr().port(), 0);

        // The observer learns the leader from its AppendEntries, joins, and never votes or leads.
        let leader = cluster.wait_leader().await;
        wait_until(BUDGET, "the observer in the membership", || observer.is_member().then_some(())).await;
        assert!(!observer.is_leader());

        // Brokers register and a topic is created through the observer's controller client; every node,
        // the observer included, applies it.
        let controller = observer.controller();
        for id in 1..=4 {
            let epoch = controller.register_broker(id, Uuid::new_v4(), endpoint(id), None).await.unwrap();
            assert!(!controller.heartbeat(id, epoch, false).await.unwrap());
        }
        let (topic_id, partitions) = controller.create_topic("orders", 4, 3, BTreeMap::new()).await.unwrap();
        cluster
            .converge("the topic on every node", |image| {
                image.topic("orders").is_some_and(|t| t.topic_id == topic_id && t.partitions == partitions)
                    && image.live_brokers().count() == 4
            })
            .await;

        // DescribeQuorum: the observer is listed among the observers, with its progress, not among voters.
        let status = wait_until(BUDGET, "the observer caught up in the leader's status", || {
            let s = cluster.node(leader).status();
            let hw = s.high_watermark;
            s.observers.iter().any(|o| o.node_id == OBSERVER && o.log_end_offset >= hw).then_some(s)
        })
        .await;
        assert_eq!(status.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(status.observers.len(), 1);
        assert!(status.observers[0].last_fetch_timestamp_ms.is_some());
        let described = controller.describe_quorum().await.unwrap();
        assert_eq!(described.leader_id, Some(leader));
        assert_eq!(described.observers.iter().map(|o| o.node_id).collect::<Vec<_>>(), vec![OBSERVER]);

        // A voter cannot be added as an observer; an unreachable address is refused; re-adding is harmless.
        let add = |node_id: NodeId, address: String| ControllerRequest::AddObserver { node_id, address };
        let err = controller.submit(add(2, "127.0.0.9:1".into())).await.unwrap_err();
        assert!(matches!(err, ControllerError::InvalidRequest(_)), "{err:?}");
        let err = controller.submit(add(OBSERVER, "0.0.0.0:0".into())).await.unwrap_err();
        assert!(matches!(err, ControllerError::InvalidRequest(_)), "{err:?}");
        controller.submit(add(OBSERVER, observer.advertised_addr().to_string())).await.unwrap();

        // Raft traffic from a non-voter is refused; its Propose (here DescribeQuorum) is served.
        let from_observer =
            |body: serde_json::Value| serde_json::json!({"from": OBSERVER, "cluster_id": null, "body": body});
        let append = serde_json::json!({
            "vote": {"leader_id": {"term": 99, "node_id": OBSERVER}, "committed": true},
            "prev_log_id": null, "entries": [], "leader_commit": null
        });
        let leader_addr = cluster.node(leader).local_addr();
        let reply = raw_call(leader_addr, 2, &from_observer(append)).await;
        assert_eq!(reply, serde_json::json!({"Err": {"UnknownSender": OBSERVER}}));
        let reply = raw_call(leader_addr, 5, &from_observer(serde_json::json!("DescribeQuorum"))).await;
        assert!(reply["Ok"]["Ok"]["Quorum"]["observers"].is_array(), "{reply}");

        // The leader goes away: the observer follows the new one and keeps applying what it decides.
        cluster.stop(leader).await;
        let new_leader = cluster.wait_leader().await;
        assert_ne!(new_leader, leader);
        let (after_id, _) = controller.create_topic("after-failover", 1, 2, BTreeMap::new()).await.unwrap();
        cluster.converge("the post-failover topic", |image| image.topic_by_id(after_id).is_some()).await;

        // The observer restarts on the same data directory (and, its listener on port 0, another port):
        // it re-joins at its new address and catches up with what it missed, which the leader has
        // compacted into a snapshot meanwhile (so the snapshot is sent to the observer's new address).
        cluster.stop(OBSERVER).await;
        let voter = cluster.node(new_leader).controller();
        let (missed_id, _) = voter.create_topic("while-away", 1, 2, BTreeMap::new()).await.unwrap();
        let missed_index = cluster.node(new_leader).image().last_applied().unwrap().index;
        cluster.node(new_leader).snapshot().await.unwrap();
        wait_until(BUDGET, "the leader's log purged past the missed topic", || {
            let (_, purged) = cluster.node(new_leader).snapshot_state();
            purged.is_some_and(|p| p >= missed_index).then_some(())
        })
        .await;
        cluster.restart(OBSERVER).await;
        let observer = cluster.node(OBSERVER).clone();
        wait_until(BUDGET, "the restarted observer in the membership", || observer.is_member().then_some(())).await;
        cluster
            .converge("the missed topic on every node", |image| {
                image.topic_by_id(missed_id).is_some() && image.topic_by_id(topic_id).is_some()
            })
            .await;
        wait_until(BUDGET, "the restarted observer in the leader's status", || {
            let s = cluster.node(new_leader).status();
            s.observers.iter().any(|o| o.node_id == OBSERVER && o.log_end_offset >= s.high_watermark).then_some(())
        })
        .await;
        let (installed, _) = observer.snapshot_state();
        assert!(installed.is_some_and(|i| i >= missed_index), "observer did not install the snapshot: {installed:?}");
        // Still working through it after the restart.
        let (last_id, _) = observer.controller().create_topic("after-restart", 1, 2, BTreeMap::new()).await.unwrap();
        cluster.converge("the topic created after the restart", |image| image.topic_by_id(last_id).is_some()).await;
        assert_eq!(observer.cluster_id(), cluster.node(new_leader).cluster_id());

        // An observer whose data directory belongs to another cluster is refused and never joins; the voters
        // neither adopt its cluster id nor count its mismatch as their own conflict.
        let stray_dir = tempfile::tempdir().unwrap();
        let mut stray = cluster.configs[usize::try_from(OBSERVER - 1).unwrap()].clone();
        stray.node_id = 5;
        stray.listen = SocketAddr::new(loopback(5), 0);
        stray.data_dir = stray_dir.path().to_path_buf();
        stray.cluster_id = Some("another-cluster".into());
        let stray = MetadataQuorum::start(stray).await.unwrap();
        let conflict = wait_until(BUDGET, "the stray observer refused", || stray.cluster_id_conflict()).await;
        assert!(conflict.contains("another-cluster"), "{conflict}");
        assert!(!stray.is_member());
        assert!(cluster.running().all(|n| n.cluster_id_conflict().is_none()));
        assert!(cluster.node(new_leader).status().observers.iter().all(|o| o.node_id != 5));
        stray.shutdown().await.unwrap();
        cluster.shutdown().await;
    })
    .await;
}
