//! [`MetadataImage`]: the applied metadata log, as every node serves it.
//!
//! An image is immutable once published: the state machine clones it (cheap — topics sit behind `Arc`s and
//! only the touched ones are copied), applies a batch and publishes the new `Arc<MetadataImage>` on a
//! `watch` channel. Readers take the current `Arc` and keep a consistent view for as long as they hold it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclBinding;
use crate::quota::{ClientQuotas, QuotaEntity};
use crate::records::{
    ConfigResource, ConfigResourceType, Endpoint, MetadataRecord, NO_LEADER, NodeId, PartitionChangeRecord,
    PartitionRecord, UserScramCredentialRecord,
};

/// A position in the metadata log: Raft index and the term of the entry there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MetadataOffset {
    /// The Raft log index (KRaft's metadata offset).
    pub index: u64,
    /// The Raft term of the entry at `index` (KRaft's epoch).
    pub term: u64,
}

/// A registered broker as the image holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The broker's node id.
    pub node_id: NodeId,
    /// The process incarnation that registered.
    pub incarnation_id: Uuid,
    /// The log index of the registration record (KIP-903 broker epoch).
    pub broker_epoch: i64,
    /// Advertised listeners.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing, are in no ISR and are left out of Metadata.
    pub fenced: bool,
}

/// A partition's replication state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRegistration {
    /// Replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// In-sync replicas.
    pub isr: Vec<NodeId>,
    /// Leader, or [`NO_LEADER`].
    pub leader: NodeId,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
    /// During a reassignment (KIP-455): target replicas not yet in the ISR. `replicas` holds the target
    /// replicas first, then the ones being removed.
    #[serde(default)]
    pub adding_replicas: Vec<NodeId>,
    /// During a reassignment: replicas that leave once every adding one is in the ISR.
    #[serde(default)]
    pub removing_replicas: Vec<NodeId>,
}

/// A topic and its partitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// The applied metadata: what every node serves from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    last_applied: Option<MetadataOffset>,
    brokers: BTreeMap<NodeId, BrokerRegistration>,
    topics: BTreeMap<String, Arc<TopicImage>>,
    topic_names: BTreeMap<Uuid, String>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    next_producer_id: i64,
    /// SCRAM credentials: user name → mechanism type → credential. (Absent from images written before SCRAM.)
    #[serde(default)]
    scram_credentials: BTreeMap<String, BTreeMap<i8, UserScramCredentialRecord>>,
    /// The ACLs. (Absent from images written before ACLs.)
    #[serde(default)]
    acls: BTreeSet<AclBinding>,
    /// Client quotas, by entity (a list: JSON maps need string keys). (Absent from images written before quotas.)
    #[serde(default)]
    client_quotas: Vec<(QuotaEntity, BTreeMap<String, f64>)>,
}

impl MetadataImage {
    /// The last log entry applied into this image (`None` for the empty image).
    pub fn last_applied(&self) -> Option<MetadataOffset> {
        self.last_applied
    }

    /// Every registered broker, fenced or not, by id.
    pub fn brokers(&self) -> &BTreeMap<NodeId, BrokerRegistration> {
        &self.brokers
    }

    /// One broker's registration.
    pub fn broker(&self, node_id: NodeId) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// Unfenced brokers, in id order.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether a broker is registered and unfenced.
    pub fn is_live(&self, node_id: NodeId) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| !b.fenced)
    }

    /// Topics by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values().map(Arc::as_ref)
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name).map(Arc::as_ref)
    }

    /// A topic by id.
    pub fn topic_by_id(&self, topic_id: Uuid) -> Option<&TopicImage> {
        self.topic_names.get(&topic_id).and_then(|name| self.topic(name))
    }

    /// One partition.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionRegistration> {
        self.topic_by_id(topic_id).and_then(|t| t.partitions.get(&partition))
    }

    /// Config overrides of one resource.
    pub fn configs(&self, resource_type: ConfigResourceType, name: &str) -> Option<&BTreeMap<String, String>> {
        self.configs.get(&ConfigResource { resource_type, name: name.to_owned() })
    }

    /// Every resource with config overrides.
    pub fn all_configs(&self) -> &BTreeMap<ConfigResource, BTreeMap<String, String>> {
        &self.configs
    }

    /// Every user's SCRAM credentials, by user name and mechanism type.
    pub fn scram_credentials(&self) -> &BTreeMap<String, BTreeMap<i8, UserScramCredentialRecord>> {
        &self.scram_credentials
    }

    /// One user's SCRAM credential for one mechanism.
    pub fn scram_credential(&self, name: &str, mechanism: i8) -> Option<&UserScramCredentialRecord> {
        self.scram_credentials.get(name).and_then(|by_mechanism| by_mechanism.get(&mechanism))
    }

    /// Every entity's client quotas.
    pub fn client_quotas(&self) -> &ClientQuotas {
        &self.client_quotas
    }

    /// Every ACL.
    pub fn acls(&self) -> &BTreeSet<AclBinding> {
        &self.acls
    }

    /// The first producer id no block has been given out for.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Applies one entry's records. Never fails: records are validated facts; a record that refers to
    /// something absent (possible only after a bug) is skipped with a warning rather than stopping the node.
    pub(crate) fn apply(&mut self, offset: MetadataOffset, records: &[MetadataRecord]) {
        for record in records {
            self.apply_record(offset, record);
        }
        self.last_applied = Some(offset);
    }

    /// Moves the applied position for an entry without records (blank and membership entries).
    pub(crate) fn advance(&mut self, offset: MetadataOffset) {
        self.last_applied = Some(offset);
    }

    fn apply_record(&mut self, offset: MetadataOffset, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                let broker_epoch = i64::try_from(offset.index).unwrap_or(i64::MAX);
                self.brokers.insert(
                    r.node_id,
                    BrokerRegistration {
                        node_id: r.node_id,
                        incarnation_id: r.incarnation_id,
                        broker_epoch,
                        endpoints: r.endpoints.clone(),
                        rack: r.rack.clone(),
                        fenced: r.fenced,
                    },
                );
            }
            MetadataRecord::FenceBroker(r) => self.set_fenced(r.node_id, r.epoch, true),
            MetadataRecord::UnfenceBroker(r) => self.set_fenced(r.node_id, r.epoch, false),
            MetadataRecord::UnregisterBroker(r) => {
                if self.brokers.get(&r.node_id).is_some_and(|b| b.broker_epoch == r.epoch) {
                    self.brokers.remove(&r.node_id);
                } else {
                    tracing::debug!(
                        node_id = r.node_id,
                        epoch = r.epoch,
                        "unregistration of an older registration ignored"
                    );
                }
            }
            MetadataRecord::Topic(r) => {
                if let Some(old_id) = self.topics.get(&r.name).map(|t| t.topic_id) {
                    self.topic_names.remove(&old_id);
                }
                self.topics.insert(
                    r.name.clone(),
                    Arc::new(TopicImage { name: r.name.clone(), topic_id: r.topic_id, partitions: BTreeMap::new() }),
                );
                self.topic_names.insert(r.topic_id, r.name.clone());
                let resource = ConfigResource { resource_type: ConfigResourceType::Topic, name: r.name.clone() };
                if r.configs.is_empty() {
                    self.configs.remove(&resource);
                } else {
                    self.configs.insert(resource, r.configs.clone());
                }
            }
            MetadataRecord::Partition(r) => self.put_partition(r),
            MetadataRecord::PartitionChange(r) => self.change_partition(r),
            MetadataRecord::RemoveTopic(r) => {
                if let Some(name) = self.topic_names.remove(&r.topic_id) {
                    self.topics.remove(&name);
                    self.configs.remove(&ConfigResource { resource_type: ConfigResourceType::Topic, name });
                }
            }
            MetadataRecord::Config(r) => {
                let resource = ConfigResource { resource_type: r.resource_type, name: r.resource_name.clone() };
                match &r.value {
                    Some(value) => {
                        self.configs.entry(resource).or_default().insert(r.name.clone(), value.clone());
                    }
                    None => {
                        if let Some(map) = self.configs.get_mut(&resource) {
                            map.remove(&r.name);
                            if map.is_empty() {
                                self.configs.remove(&resource);
                            }
                        }
                    }
                }
            }
            MetadataRecord::ProducerIdBlock(r) => {
                let end = r.first_producer_id.saturating_add(i64::from(r.size));
                self.next_producer_id = self.next_producer_id.max(end);
            }
            MetadataRecord::UserScramCredential(r) => {
                self.scram_credentials.entry(r.name.clone()).or_default().insert(r.mechanism, r.clone());
            }
            MetadataRecord::RemoveUserScramCredential(r) => {
                if let Some(by_mechanism) = self.scram_credentials.get_mut(&r.name) {
                    by_mechanism.remove(&r.mechanism);
                    if by_mechanism.is_empty() {
                        self.scram_credentials.remove(&r.name);
                    }
                }
            }
            MetadataRecord::AccessControlEntry(binding) => {
                self.acls.insert(binding.clone());
            }
            MetadataRecord::RemoveAccessControlEntry(binding) => {
                self.acls.remove(binding);
            }
            MetadataRecord::ClientQuota(r) => {
                let position = self.client_quotas.binary_search_by(|(entity, _)| entity.cmp(&r.entity));
                match (position, r.value) {
                    (Ok(index), value) => {
                        if let Some((_, values)) = self.client_quotas.get_mut(index) {
                            match value {
                                Some(value) => values.insert(r.key.clone(), value),
                                None => values.remove(&r.key),
                            };
                            if values.is_empty() {
                                self.client_quotas.remove(index);
                            }
                        }
                    }
                    (Err(index), Some(value)) => {
                        self.client_quotas.insert(index, (r.entity.clone(), BTreeMap::from([(r.key.clone(), value)])));
                    }
                    (Err(_), None) => {}
                }
            }
        }
    }

    fn set_fenced(&mut self, node_id: NodeId, epoch: i64, fenced: bool) {
        match self.brokers.get_mut(&node_id) {
            Some(b) if b.broker_epoch == epoch => b.fenced = fenced,
            _ => tracing::debug!(node_id, epoch, fenced, "fencing record for an older registration ignored"),
        }
    }

    fn topic_mut(&mut self, topic_id: Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_names.get(&topic_id)?;
        self.topics.get_mut(name).map(Arc::make_mut)
    }

    fn put_partition(&mut self, r: &PartitionRecord) {
        let Some(topic) = self.topic_mut(r.topic_id) else {
            tracing::warn!(topic_id = %r.topic_id, partition = r.partition, "partition record for an unknown topic");
            return;
        };
        topic.partitions.insert(
            r.partition,
            PartitionRegistration {
                replicas: r.replicas.clone(),
                isr: r.isr.clone(),
                leader: r.leader,
                leader_epoch: r.leader_epoch,
                partition_epoch: r.partition_epoch,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
    }

    fn change_partition(&mut self, r: &PartitionChangeRecord) {
        let Some(p) = self.topic_mut(r.topic_id).and_then(|t| t.partitions.get_mut(&r.partition)) else {
            tracing::warn!(topic_id = %r.topic_id, partition = r.partition, "partition change for an unknown partition");
            return;
        };
        if let Some(isr) = &r.isr {
            p.isr.clone_from(isr);
        }
        if let Some(replicas) = &r.replicas {
            p.replicas.clone_from(replicas);
        }
        if let Some(adding) = &r.adding_replicas {
            p.adding_replicas.clone_from(adding);
        }
        if let Some(removing) = &r.removing_replicas {
            p.removing_replicas.clone_from(removing);
        }
        if let Some(leader) = r.leader
            && leader != p.leader
        {
            p.leader = leader;
            p.leader_epoch = p.leader_epoch.saturating_add(1);
        }
        p.partition_epoch = p.partition_epoch.saturating_add(1);
    }
}

impl PartitionRegistration {
    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// Whether a reassignment is under way.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment under way ends with (all replicas when none is).
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }
}
