//! The metadata quorum end to end, in one process: real TCP between nodes (each on its own 127.0.0.x),
//! real RocksDB in temporary directories. Tests take a shared lock so that only one cluster runs at a
//! time on a small machine, and each is bounded in time.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use skein_cluster::{
    ConfigResource, ConfigResourceType, ControllerError, ControllerRequest, ControllerResponse, MetadataImage,
    MetadataQuorum, NO_LEADER, NodeId, QuorumConfig, QuorumError, UserScramCredentialRecord,
};
use support::{endpoint, free_addr, init_tracing, tune, wait_until};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEST_BUDGET: Duration = Duration::from_secs(120);

async fn bounded<F: Future<Output = ()>>(body: F) {
    init_tracing();
    let _serial = SERIAL.lock().await;
    tokio::time::timeout(TEST_BUDGET, body).await.expect("test exceeded its time budget");
}

fn loopback(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(i + 1).unwrap()))
}

struct Cluster {
    dirs: Vec<TempDir>,
    configs: Vec<QuorumConfig>,
    nodes: Vec<Option<MetadataQuorum>>,
}

impl Cluster {
    fn configs(n: usize, adjust: impl Fn(&mut QuorumConfig)) -> (Vec<TempDir>, Vec<QuorumConfig>) {
        let dirs: Vec<TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let voters: Vec<(NodeId, SocketAddr)> =
            (0..n).map(|i| (NodeId::try_from(i + 1).unwrap(), free_addr(loopback(i)))).collect();
        let configs = (0..n)
            .map(|i| {
                let mut c = QuorumConfig::new(voters[i].0, voters.clone(), voters[i].1, dirs[i].path().to_path_buf());
                tune(&mut c);
                adjust(&mut c);
                c
            })
            .collect();
        (dirs, configs)
    }

    async fn start(n: usize, adjust: impl Fn(&mut QuorumConfig)) -> Cluster {
        let (dirs, configs) = Self::configs(n, adjust);
        let mut cluster = Cluster { dirs, configs, nodes: Vec::new() };
        for i in 0..n {
            cluster.nodes.push(Some(MetadataQuorum::start(cluster.configs[i].clone()).await.unwrap()));
        }
        cluster
    }

    fn node(&self, id: NodeId) -> &MetadataQuorum {
        self.nodes[usize::try_from(id - 1).unwrap()].as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &MetadataQuorum> {
        self.nodes.iter().flatten()
    }

    /// Waits until every running node names the same leader, which is one of them.
    async fn wait_leader(&self, within: Duration) -> NodeId {
        let running: BTreeSet<NodeId> = self.running().map(MetadataQuorum::node_id).collect();
        wait_until(within, "a leader all running nodes agree on", || {
            let leaders: BTreeSet<Option<NodeId>> = self.running().map(MetadataQuorum::leader_id).collect();
            match leaders.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(leader)] if running.contains(leader) && self.node(*leader).is_leader() => Some(*leader),
                _ => None,
            }
        })
        .await
    }

    fn follower(&self, leader: NodeId) -> NodeId {
        self.running().map(MetadataQuorum::node_id).find(|id| *id != leader).unwrap()
    }

    async fn stop(&mut self, id: NodeId) {
        let node = self.nodes[usize::try_from(id - 1).unwrap()].take().unwrap();
        node.shutdown().await.unwrap();
    }

    async fn restart(&mut self, id: NodeId) {
        let i = usize::try_from(id - 1).unwrap();
        assert!(self.nodes[i].is_none());
        self.nodes[i] = Some(MetadataQuorum::start(self.configs[i].clone()).await.unwrap());
    }

    async fn shutdown(mut self) {
        for id in 1..=NodeId::try_from(self.nodes.len()).unwrap() {
            if self.nodes[usize::try_from(id - 1).unwrap()].is_some() {
                self.stop(id).await;
            }
        }
        drop(self.dirs);
    }

    /// Waits until every running node's image satisfies `check`.
    async fn converge(&self, within: Duration, what: &str, check: impl Fn(&MetadataImage) -> bool) {
        wait_until(within, what, || self.running().all(|n| check(&n.image())).then_some(())).await;
    }
}

/// Registers brokers `ids` (through node `via`) and unfences them; answers their broker epochs.
async fn register_live_brokers(
    quorum: &MetadataQuorum,
    ids: &[NodeId],
    racks: &[Option<&str>],
) -> BTreeMap<NodeId, i64> {
    let controller = quorum.controller();
    let mut epochs = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let rack = racks.get(i).copied().flatten().map(str::to_owned);
        let epoch = controller.register_broker(id, Uuid::new_v4(), endpoint(id), rack).await.unwrap();
        let fenced = controller.heartbeat(id, epoch, false).await.unwrap();
        assert!(!fenced, "broker {id} still fenced after its first heartbeat");
        epochs.insert(id, epoch);
    }
    epochs
}

const ELECTION_BUDGET: Duration = Duration::from_secs(15);
const CONVERGE_BUDGET: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_a_leader_and_report_status() {
    bounded(async {
        let cluster = Cluster::start(3, |_| {}).await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;

        // One cluster id, generated by the bootstrapping node and learned by the others.
        let ids = wait_until(CONVERGE_BUDGET, "a cluster id on every node", || {
            let ids: BTreeSet<Option<String>> = cluster.running().map(MetadataQuorum::cluster_id).collect();
            (ids.len() == 1 && !ids.contains(&None)).then_some(ids)
        })
        .await;
        assert_eq!(ids.into_iter().next().flatten().unwrap().len(), 22);

        // DescribeQuorum on the leader: three voters, all caught up with the leader's log end.
        let status = wait_until(CONVERGE_BUDGET, "all voters caught up", || {
            let s = cluster.node(leader).status();
            s.voters.iter().all(|v| v.log_end_offset >= 1 && v.last_caught_up_timestamp_ms.is_some()).then_some(s)
        })
        .await;
        assert_eq!(status.leader_id, Some(leader));
        assert!(status.leader_epoch >= 1);
        assert_eq!(status.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(status.high_watermark >= 1);

        // A follower reports the leader but cannot describe the others' progress.
        let follower = cluster.node(cluster.follower(leader)).status();
        assert_eq!(follower.leader_id, Some(leader));
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_through_a_follower_converge_and_spread_leaders() {
    bounded(async {
        let cluster = Cluster::start(3, |_| {}).await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let follower = cluster.node(cluster.follower(leader));
        register_live_brokers(follower, &[1, 2, 3], &[]).await;

        let configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
        let (topic_id, partitions) = follower.controller().create_topic("orders", 6, 3, configs).await.unwrap();
        assert_eq!(partitions.len(), 6);
        cluster
            .converge(CONVERGE_BUDGET, "the topic on every node", |image| {
                image.topic("orders").is_some_and(|t| t.topic_id == topic_id && t.partitions == partitions)
            })
            .await;

        // Leaders spread evenly, every partition on three distinct brokers, ISR = replicas.
        let mut leaders = BTreeMap::new();
        for p in partitions.values() {
            assert_eq!(p.replicas.iter().collect::<BTreeSet<_>>().len(), 3);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, p.replicas[0]);
            assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
            *leaders.entry(p.leader).or_insert(0) += 1;
        }
        assert_eq!(leaders, BTreeMap::from([(1, 2), (2, 2), (3, 2)]));
        for node in cluster.running() {
            let image = node.image();
            assert_eq!(image.topic_by_id(topic_id).map(|t| t.name.as_str()), Some("orders"));
            assert_eq!(
                image
                    .configs(ConfigResourceType::Topic, "orders")
                    .and_then(|c| c.get("cleanup.policy"))
                    .map(String::as_str),
                Some("compact")
            );
            assert_eq!(image.live_brokers().count(), 3);
        }

        // RF above the live brokers, a duplicate name, a bad name, zero partitions.
        let controller = cluster.node(leader).controller();
        let err = controller.create_topic("too-wide", 1, 4, BTreeMap::new()).await.unwrap_err();
        assert_eq!(err, ControllerError::InvalidReplicationFactor { requested: 4, available: 3 });
        let err = follower.controller().create_topic("orders", 1, 1, BTreeMap::new()).await.unwrap_err();
        assert_eq!(err, ControllerError::TopicAlreadyExists("orders".into()));
        assert!(matches!(
            controller.create_topic("bad name", 1, 1, BTreeMap::new()).await,
            Err(ControllerError::InvalidTopicName(_))
        ));
        assert!(matches!(
            controller.create_topic("empty", 0, 1, BTreeMap::new()).await,
            Err(ControllerError::InvalidPartitions(_))
        ));

        // Configs, partitions and deletion go through the follower too and reach everyone.
        let resource = ConfigResource { resource_type: ConfigResourceType::Topic, name: "orders".into() };
        follower
            .controller()
            .alter_configs(
                resource,
                vec![("retention.ms".into(), Some("1000".into())), ("cleanup.policy".into(), None)],
            )
            .await
            .unwrap();
        follower.controller().create_partitions("orders", 8).await.unwrap();
        follower.controller().create_topic("short-lived", 1, 1, BTreeMap::new()).await.unwrap();
        follower.controller().delete_topic("short-lived").await.unwrap();
        cluster
            .converge(CONVERGE_BUDGET, "configs, partitions and deletion everywhere", |image| {
                let configs = image.configs(ConfigResourceType::Topic, "orders");
                configs.is_some_and(|c| c.get("retention.ms").map(String::as_str) == Some("1000") && c.len() == 1)
                    && image.topic("orders").is_some_and(|t| t.partitions.len() == 8)
                    && image.topic("short-lived").is_none()
            })
            .await;
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_credentials_set_through_a_follower_reach_every_node() {
    bounded(async {
        let cluster = Cluster::start(3, |_| {}).await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let follower = cluster.node(cluster.follower(leader));
        let credential = |name: &str, mechanism: i8| UserScramCredentialRecord {
            name: name.to_owned(),
            mechanism,
            salt: b"salt".to_vec(),
            stored_key: vec![1; 32],
            server_key: vec![2; 32],
            iterations: 4096,
        };
        let failed = follower
            .controller()
            .alter_scram_credentials(
                Vec::new(),
                vec![credential("alice", 1), credential("alice", 2), credential("bob", 1)],
            )
            .await
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        // A user whose deletion names a missing credential fails as a whole; the others are applied.
        let failed = follower
            .controller()
            .alter_scram_credentials(vec![("alice".into(), 1), ("bob".into(), 2)], vec![credential("bob", 1)])
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "bob");
        assert!(matches!(failed[0].1, ControllerError::ResourceNotFound(_)));
        cluster
            .converge(CONVERGE_BUDGET, "the credentials on every node", |image| {
                image.scram_credential("alice", 1).is_none()
                    && image.scram_credential("alice", 2) == Some(&credential("alice", 2))
                    && image.scram_credential("bob", 1) == Some(&credential("bob", 1))
                    && image.scram_credentials().len() == 2
            })
            .await;
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rack_aware_placement_uses_every_rack() {
    bounded(async {
        let cluster = Cluster::start(1, |_| {}).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(1);
        register_live_brokers(node, &[1, 2, 3, 4], &[Some("a"), Some("a"), Some("b"), Some("b")]).await;
        let (_, partitions) = node.controller().create_topic("racked", 8, 2, BTreeMap::new()).await.unwrap();
        let rack = |id: NodeId| if id <= 2 { "a" } else { "b" };
        for p in partitions.values() {
            assert_ne!(rack(p.replicas[0]), rack(p.replicas[1]), "{:?}", p.replicas);
        }
        let leaders: BTreeSet<NodeId> = partitions.values().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 4);
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_fenced_after_session_expiry_and_unfenced_by_heartbeat() {
    bounded(async {
        let cluster = Cluster::start(3, |c| c.broker_session_timeout_ms = 4000).await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(cluster.follower(leader));
        let epochs = register_live_brokers(node, &[1, 2, 3], &[]).await;

        // Every broker heartbeats (through a follower) until the topic exists; then broker 3 goes silent.
        let beating = std::sync::Arc::new(std::sync::Mutex::new(vec![1, 2, 3]));
        let controller = node.controller();
        let (live_epochs, who) = (epochs.clone(), std::sync::Arc::clone(&beating));
        let heartbeats = tokio::spawn(async move {
            loop {
                let ids = who.lock().unwrap().clone();
                for id in ids {
                    let _ = controller.heartbeat(id, live_epochs[&id], false).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let (topic_id, _) = node.controller().create_topic("fencing", 3, 3, BTreeMap::new()).await.unwrap();
        beating.lock().unwrap().retain(|id| *id != 3);
        cluster
            .converge(Duration::from_secs(20), "broker 3 fenced everywhere", |image| {
                image.broker(3).is_some_and(|b| b.fenced)
            })
            .await;
        // It left every ISR and leads nothing; its partition got a new leader with a bumped leader epoch.
        for node in cluster.running() {
            let image = node.image();
            let topic = image.topic_by_id(topic_id).unwrap();
            for p in topic.partitions.values() {
                assert!(!p.isr.contains(&3), "{p:?}");
                assert!(p.leader == 1 || p.leader == 2, "{p:?}");
            }
            assert!(topic.partitions.values().any(|p| p.leader_epoch == 1), "broker 3's partition moved");
            assert_eq!(image.live_brokers().map(|b| b.node_id).collect::<Vec<_>>(), vec![1, 2]);
        }

        // A heartbeat with the right epoch unfences it; a stale epoch is refused.
        let stale = node.controller().heartbeat(3, epochs[&3] - 1, false).await.unwrap_err();
        assert!(matches!(stale, ControllerError::StaleBrokerEpoch { node_id: 3, .. }), "{stale:?}");
        let fenced = node.controller().heartbeat(3, epochs[&3], false).await.unwrap();
        assert!(!fenced);
        cluster.converge(CONVERGE_BUDGET, "broker 3 unfenced", |image| image.is_live(3)).await;
        heartbeats.abort();
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_changes_check_epochs_and_elect_only_from_the_isr() {
    bounded(async {
        let cluster = Cluster::start(1, |c| c.broker_session_timeout_ms = 60_000).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(1);
        let epochs = register_live_brokers(node, &[1, 2, 3], &[]).await;
        let controller = node.controller();
        let (topic_id, partitions) = controller.create_topic("isr", 1, 3, BTreeMap::new()).await.unwrap();
        let p = &partitions[&0];
        let leader = p.leader;
        let others: Vec<NodeId> = p.replicas.iter().copied().filter(|r| *r != leader).collect();

        // Wrong leader epoch, wrong partition epoch, not the leader, ISR without the leader.
        let shrink = vec![leader, others[0]];
        let alter = |who: NodeId, le: i32, pe: i32, isr: Vec<NodeId>| {
            controller.alter_partition(who, epochs[&who], topic_id, 0, le, pe, isr)
        };
        assert_eq!(
            alter(leader, 1, 0, shrink.clone()).await.unwrap_err(),
            ControllerError::FencedLeaderEpoch { current: 0, requested: 1 }
        );
        assert_eq!(
            alter(leader, 0, 5, shrink.clone()).await.unwrap_err(),
            ControllerError::InvalidUpdateVersion { current: 0, requested: 5 }
        );
        assert!(matches!(alter(others[0], 0, 0, shrink.clone()).await, Err(ControllerError::NotLeader { .. })));
        assert!(matches!(alter(leader, 0, 0, vec![others[0]]).await, Err(ControllerError::InvalidRequest(_))));
        let err = controller.alter_partition(leader, epochs[&leader] + 100, topic_id, 0, 0, 0, shrink.clone()).await;
        assert!(matches!(err, Err(ControllerError::StaleBrokerEpoch { .. })), "{err:?}");

        // A valid shrink bumps the partition epoch only.
        let after = alter(leader, 0, 0, shrink.clone()).await.unwrap();
        assert_eq!((after.isr.clone(), after.leader_epoch, after.partition_epoch), (shrink.clone(), 0, 1));

        // The leader is fenced (wants to be): leadership moves inside the ISR only.
        assert!(controller.heartbeat(leader, epochs[&leader], true).await.unwrap());
        let p = node.image().partition(topic_id, 0).cloned().unwrap();
        assert_eq!(p.leader, others[0], "the only other ISR member leads");
        assert_eq!(p.leader_epoch, 1);
        assert_eq!(p.isr, vec![others[0]]);
        assert_eq!(controller.elect_leader(topic_id, 0).await.unwrap_err(), ControllerError::ElectionNotNeeded);

        // Fence the new leader too: the ISR keeps its last member and the partition has no leader; the
        // remaining live replica is outside the ISR, so no automatic (clean) election happens.
        assert!(controller.heartbeat(others[0], epochs[&others[0]], true).await.unwrap());
        let p = node.image().partition(topic_id, 0).cloned().unwrap();
        assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![others[0]]));

        // An unclean election (ElectLeaders type 1) needs a live replica: with every replica fenced, none.
        assert!(controller.heartbeat(others[1], epochs[&others[1]], true).await.unwrap());
        assert_eq!(
            controller.elect_leader(topic_id, 0).await.unwrap_err(),
            ControllerError::EligibleLeadersNotAvailable
        );
        // Unfenced, the out-of-sync replica does not lead by itself ...
        assert!(!controller.heartbeat(others[1], epochs[&others[1]], false).await.unwrap());
        assert_eq!(node.image().partition(topic_id, 0).map(|p| p.leader), Some(NO_LEADER));
        // ... but an unclean election takes it, whatever unclean.leader.election.enable says (Kafka, KIP-460).
        let p = controller.elect_leader(topic_id, 0).await.unwrap();
        assert_eq!((p.leader, p.isr.clone()), (others[1], vec![others[1]]));

        // The ISR's fenced member comes back: no leader change while one is live.
        assert!(!controller.heartbeat(others[0], epochs[&others[0]], false).await.unwrap());
        assert_eq!(node.image().partition(topic_id, 0).map(|p| p.leader), Some(others[1]));
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_broker_leaves_every_partition_and_the_cluster() {
    bounded(async {
        let cluster = Cluster::start(1, |c| c.broker_session_timeout_ms = 60_000).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(1);
        let epochs = register_live_brokers(node, &[1, 2], &[]).await;
        let controller = node.controller();
        let (topic_id, partitions) = controller.create_topic("unregister", 1, 2, BTreeMap::new()).await.unwrap();
        let leader = partitions[&0].leader;
        let other = if leader == 1 { 2 } else { 1 };
        let alone = ControllerRequest::CreateTopic {
            name: "alone".to_owned(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignments: vec![vec![leader]],
        };
        let Ok(ControllerResponse::TopicCreated { topic_id: alone_id, .. }) = controller.submit(alone).await else {
            panic!("the topic on one broker was not created");
        };

        assert_eq!(
            controller.unregister_broker(4711).await.unwrap_err(),
            ControllerError::BrokerNotRegistered { node_id: 4711 }
        );
        controller.unregister_broker(leader).await.unwrap();
        let image = node.image();
        assert!(image.broker(leader).is_none(), "the registration is gone");
        let p = image.partition(topic_id, 0).cloned().unwrap();
        assert_eq!((p.leader, p.isr.clone()), (other, vec![other]), "leadership and the ISR moved");
        // A partition only it held keeps it as its last ISR member, without a leader (as when fenced).
        let alone = image.partition(alone_id, 0).cloned().unwrap();
        assert_eq!((alone.leader, alone.isr.clone()), (NO_LEADER, vec![leader]));

        // Its heartbeats are refused; it is not registered again by them, and unregistering again is refused.
        assert_eq!(
            controller.heartbeat(leader, epochs[&leader], false).await.unwrap_err(),
            ControllerError::BrokerNotRegistered { node_id: leader }
        );
        assert!(node.image().broker(leader).is_none());
        assert!(matches!(controller.unregister_broker(leader).await, Err(ControllerError::BrokerNotRegistered { .. })));

        // A restart registers it again; unfenced, it leads the partition only it holds.
        let epoch = controller.register_broker(leader, Uuid::new_v4(), endpoint(leader), None).await.unwrap();
        assert!(!controller.heartbeat(leader, epoch, false).await.unwrap());
        assert_eq!(node.image().partition(alone_id, 0).map(|p| p.leader), Some(leader));
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_leader_election_needs_the_first_replica_live_and_in_the_isr() {
    bounded(async {
        let cluster = Cluster::start(1, |c| c.auto_leader_rebalance_enable = false).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(1);
        let epochs = register_live_brokers(node, &[1, 2, 3], &[]).await;
        let controller = node.controller();
        let (topic_id, partitions) = controller.create_topic("pref", 1, 3, BTreeMap::new()).await.unwrap();
        let preferred = partitions[&0].replicas[0];
        assert_eq!(partitions[&0].leader, preferred);

        // The preferred replica leads already.
        let err = controller.elect_preferred_leader(topic_id, 0).await.unwrap_err();
        assert_eq!(err, ControllerError::ElectionNotNeeded);
        // Unknown partition, unknown topic.
        let err = controller.elect_preferred_leader(topic_id, 7).await.unwrap_err();
        assert!(matches!(err, ControllerError::UnknownTopicOrPartition(_)), "{err:?}");
        let err = controller.elect_preferred_leader(Uuid::new_v4(), 0).await.unwrap_err();
        assert!(matches!(err, ControllerError::UnknownTopicId(_)), "{err:?}");

        // Fenced: leadership moves to the next ISR replica, and the preferred one cannot take it back.
        assert!(controller.heartbeat(preferred, epochs[&preferred], true).await.unwrap());
        let p = node.image().partition(topic_id, 0).cloned().unwrap();
        assert_ne!(p.leader, preferred);
        assert!(!p.isr.contains(&preferred));
        let not_available = ControllerError::PreferredLeaderNotAvailable { preferred };
        assert_eq!(controller.elect_preferred_leader(topic_id, 0).await.unwrap_err(), not_available);

        // Live again but not back in the ISR: still not available, nothing changed.
        assert!(!controller.heartbeat(preferred, epochs[&preferred], false).await.unwrap());
        assert_eq!(controller.elect_preferred_leader(topic_id, 0).await.unwrap_err(), not_available);
        assert_eq!(node.image().partition(topic_id, 0), Some(&p));

        // The leader takes it back into the ISR: now the election moves leadership, bumping the leader epoch.
        let mut isr = p.isr.clone();
        isr.push(preferred);
        let expanded = controller
            .alter_partition(p.leader, epochs[&p.leader], topic_id, 0, p.leader_epoch, p.partition_epoch, isr.clone())
            .await
            .unwrap();
        let elected = controller.elect_preferred_leader(topic_id, 0).await.unwrap();
        assert_eq!(elected.leader, preferred);
        assert_eq!(elected.isr, isr, "a preferred election leaves the ISR alone");
        assert_eq!(elected.leader_epoch, expanded.leader_epoch + 1);
        assert_eq!(node.image().partition(topic_id, 0), Some(&elected));
        let err = controller.elect_preferred_leader(topic_id, 0).await.unwrap_err();
        assert_eq!(err, ControllerError::ElectionNotNeeded);
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_moves_leadership_back_to_preferred_replicas() {
    bounded(async {
        let cluster = Cluster::start(1, |c| {
            c.auto_leader_rebalance_enable = true;
            c.leader_imbalance_check_interval_ms = 200;
        })
        .await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let node = cluster.node(1);
        let epochs = register_live_brokers(node, &[1, 2, 3], &[]).await;
        let controller = node.controller();
        let (topic_id, partitions) = controller.create_topic("balance", 3, 3, BTreeMap::new()).await.unwrap();
        let (&index, moved) = partitions.iter().next().unwrap();
        let preferred = moved.replicas[0];

        // Its preferred broker is fenced and comes back: its partitions are led elsewhere (100 % imbalance).
        assert!(controller.heartbeat(preferred, epochs[&preferred], true).await.unwrap());
        assert!(!controller.heartbeat(preferred, epochs[&preferred], false).await.unwrap());
        let p = node.image().partition(topic_id, index).cloned().unwrap();
        assert_ne!(p.leader, preferred);
        // Out of the ISR the check leaves it alone.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(node.image().partition(topic_id, index).map(|p| p.leader), Some(p.leader));

        // Back in the ISR, the next check gives it its partitions back.
        let mut isr = p.isr.clone();
        isr.push(preferred);
        controller
            .alter_partition(p.leader, epochs[&p.leader], topic_id, index, p.leader_epoch, p.partition_epoch, isr)
            .await
            .unwrap();
        let back = wait_until(CONVERGE_BUDGET, "leadership back on the preferred replica", || {
            node.image().partition(topic_id, index).filter(|now| now.leader == preferred).cloned()
        })
        .await;
        assert_eq!(back.leader_epoch, p.leader_epoch + 1);
        let image = node.image();
        for p in image.topic_by_id(topic_id).unwrap().partitions.values() {
            assert_eq!(p.leader, p.replicas[0], "{p:?}");
        }
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_id_blocks_never_overlap_across_nodes() {
    bounded(async {
        let cluster = Cluster::start(3, |_| {}).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let epochs = register_live_brokers(cluster.node(1), &[1, 2, 3], &[]).await;
        let mut tasks = Vec::new();
        for id in [1, 2, 3] {
            let controller = cluster.node(id).controller();
            let epoch = epochs[&id];
            tasks.push(tokio::spawn(async move {
                let mut blocks = Vec::new();
                for _ in 0..8 {
                    blocks.push(controller.allocate_producer_ids(id, epoch).await.unwrap());
                }
                blocks
            }));
        }
        let mut ranges = Vec::new();
        for task in tasks {
            for block in task.await.unwrap() {
                assert_eq!(block.size, 1000);
                ranges.push((block.first_producer_id, block.first_producer_id + i64::from(block.size)));
            }
        }
        ranges.sort_unstable();
        assert_eq!(ranges.len(), 24);
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlapping blocks {pair:?}");
        }
        let end = ranges.last().unwrap().1;
        cluster.converge(CONVERGE_BUDGET, "next producer id everywhere", |image| image.next_producer_id() == end).await;
        // A stale broker epoch gets no block.
        let err = cluster.node(2).controller().allocate_producer_ids(2, epochs[&2] + 1).await.unwrap_err();
        assert!(matches!(err, ControllerError::StaleBrokerEpoch { node_id: 2, .. }), "{err:?}");
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_elects_a_new_leader_and_the_old_one_catches_up() {
    bounded(async {
        // Compact eagerly, so the returning node has to be sent a snapshot.
        let mut cluster = Cluster::start(3, |c| {
            c.snapshot_after_entries = 3;
            c.entries_kept_after_snapshot = 0;
        })
        .await;
        let old_leader = cluster.wait_leader(ELECTION_BUDGET).await;
        register_live_brokers(cluster.node(old_leader), &[1, 2, 3], &[]).await;
        cluster.node(old_leader).controller().create_topic("before", 3, 2, BTreeMap::new()).await.unwrap();

        cluster.stop(old_leader).await;
        let started = tokio::time::Instant::now();
        let new_leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let elapsed = started.elapsed();
        assert_ne!(new_leader, old_leader);
        assert!(elapsed < Duration::from_secs(10), "new leader after {elapsed:?}");

        // Writes continue, through either survivor.
        let other = cluster.follower(new_leader);
        cluster.node(other).controller().create_topic("during", 2, 2, BTreeMap::new()).await.unwrap();
        cluster.node(new_leader).controller().create_topic("during-2", 1, 1, BTreeMap::new()).await.unwrap();
        for i in 0..5 {
            cluster.node(other).controller().create_topic(&format!("filler-{i}"), 1, 1, BTreeMap::new()).await.unwrap();
        }
        wait_until(CONVERGE_BUDGET, "the log purged on the leader", || cluster.node(new_leader).snapshot_state().1)
            .await;

        cluster.restart(old_leader).await;
        cluster
            .converge(CONVERGE_BUDGET, "the old leader caught up", |image| {
                ["before", "during", "during-2", "filler-4"].iter().all(|t| image.topic(t).is_some())
            })
            .await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let images: Vec<_> = cluster.running().map(|n| n.image()).collect();
        assert!(images.windows(2).all(|w| w[0].topics().eq(w[1].topics())));
        assert!(cluster.running().any(|n| n.node_id() == leader));
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_all_from_data_dirs_keeps_the_image_across_a_snapshot() {
    bounded(async {
        // Snapshot every few entries and keep none below it, so the log really is compacted.
        let mut cluster = Cluster::start(3, |c| {
            c.snapshot_after_entries = 4;
            c.entries_kept_after_snapshot = 0;
        })
        .await;
        let leader = cluster.wait_leader(ELECTION_BUDGET).await;
        let epochs = register_live_brokers(cluster.node(leader), &[1, 2, 3], &[]).await;
        let controller = cluster.node(leader).controller();
        for i in 0..6 {
            controller.create_topic(&format!("t{i}"), 2, 3, BTreeMap::new()).await.unwrap();
        }
        let block = controller.allocate_producer_ids(1, epochs[&1]).await.unwrap();
        for node in cluster.running() {
            node.snapshot().await.unwrap();
        }
        wait_until(CONVERGE_BUDGET, "a snapshot and a purged log on every node", || {
            cluster.running().all(|n| matches!(n.snapshot_state(), (Some(_), Some(_)))).then_some(())
        })
        .await;
        // Entries after the snapshot live only in the log.
        controller.create_topic("after-snapshot", 1, 1, BTreeMap::new()).await.unwrap();
        cluster.converge(CONVERGE_BUDGET, "the last topic everywhere", |i| i.topic("after-snapshot").is_some()).await;
        let before = cluster.node(leader).image();
        let cluster_id = cluster.node(1).cluster_id();

        for id in [1, 2, 3] {
            cluster.stop(id).await;
        }
        for id in [1, 2, 3] {
            cluster.restart(id).await;
        }
        cluster.wait_leader(ELECTION_BUDGET).await;
        cluster
            .converge(CONVERGE_BUDGET, "the image restored", |image| {
                image.topics().eq(before.topics())
                    && image.brokers() == before.brokers()
                    && image.next_producer_id() == block.first_producer_id + 1000
            })
            .await;
        for node in cluster.running() {
            assert_eq!(node.cluster_id(), cluster_id);
        }
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_cluster_or_node_is_refused() {
    bounded(async {
        let cluster = Cluster::start(1, |_| {}).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let generated = wait_until(CONVERGE_BUDGET, "a cluster id", || cluster.node(1).cluster_id()).await;
        let mut config = cluster.configs[0].clone();
        let dir = cluster.dirs[0].path().to_path_buf();
        register_live_brokers(cluster.node(1), &[1], &[]).await;
        cluster.node(1).controller().create_topic("kept", 1, 1, BTreeMap::new()).await.unwrap();
        let Cluster { dirs, nodes, .. } = cluster;
        for node in nodes.into_iter().flatten() {
            node.shutdown().await.unwrap();
        }

        config.cluster_id = Some("another-cluster".into());
        match MetadataQuorum::start(config.clone()).await {
            Err(QuorumError::ClusterIdMismatch { stored, configured, .. }) => {
                assert_eq!((stored.as_str(), configured.as_str()), (generated.as_str(), "another-cluster"));
            }
            other => panic!("expected a cluster id mismatch, got {other:?}"),
        }
        let err = MetadataQuorum::start(config.clone()).await.unwrap_err();
        assert!(err.to_string().contains("belongs to cluster"), "{err}");

        // The same directory under another node id.
        let mut other_node = config.clone();
        other_node.cluster_id = None;
        other_node.node_id = 7;
        other_node.voters = vec![(7, config.listen)];
        assert!(matches!(
            MetadataQuorum::start(other_node).await,
            Err(QuorumError::NodeIdMismatch { stored: 1, configured: 7, .. })
        ));

        // The right cluster id (or none) still opens it, with its data.
        config.cluster_id = Some(generated.clone());
        let node = MetadataQuorum::start(config).await.unwrap();
        assert_eq!(node.cluster_id(), Some(generated));
        wait_until(CONVERGE_BUDGET, "the data back", || node.image().topic("kept").is_some().then_some(())).await;
        node.shutdown().await.unwrap();
        assert!(dir.exists());
        drop(dirs);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_frames_close_only_their_connection() {
    bounded(async {
        let cluster = Cluster::start(1, |_| {}).await;
        cluster.wait_leader(ELECTION_BUDGET).await;
        let addr = cluster.node(1).local_addr();

        // A 4 GiB length is refused before any allocation: the node just closes the connection.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "connection should be closed, got {read:?}");

        // An undecodable body of a known kind, and an unknown kind: closed too.
        for (kind, body) in [(2u8, b"not json".as_slice()), (99u8, b"{}".as_slice())] {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let len = u32::try_from(body.len() + 1).unwrap();
            stream.write_all(&len.to_be_bytes()).await.unwrap();
            stream.write_all(&[kind]).await.unwrap();
            stream.write_all(body).await.unwrap();
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap();
            assert!(matches!(read, Ok(0) | Err(_)), "connection should be closed, got {read:?}");
        }

        // The node is unharmed.
        cluster.node(1).controller().create_topic("still-fine", 1, 1, BTreeMap::new()).await.unwrap_err();
        register_live_brokers(cluster.node(1), &[1], &[]).await;
        cluster.node(1).controller().create_topic("still-fine", 1, 1, BTreeMap::new()).await.unwrap();
        cluster.shutdown().await;
    })
    .await;
}
