//! Client quotas (KIP-546): the entities quotas are set for, and the values the metadata log holds for them.
//!
//! An entity is a user, a client id, a user and a client id, or an IP address; each named, or the default
//! (`<default>` in Kafka's tools) that applies to the names without their own entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kafka's entity types.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// One component of an entity: a name, or the default.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// From the wire, where null means the default.
    pub fn from_wire(name: Option<&str>) -> Self {
        name.map_or(EntityName::Default, |n| EntityName::Named(n.to_owned()))
    }

    /// For the wire.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(name) => Some(name),
        }
    }
}

/// A quota entity: its components by type (`user`, `client-id`, `ip`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    /// Its components as (entity type, name), in Kafka's order.
    pub fn components(&self) -> Vec<(&'static str, &EntityName)> {
        [(USER, &self.user), (CLIENT_ID, &self.client_id), (IP, &self.ip)]
            .into_iter()
            .filter_map(|(kind, name)| name.as_ref().map(|n| (kind, n)))
            .collect()
    }
}

/// A quota value set (`Some`) or removed (`None`) for one key of one entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientQuotaRecord {
    pub entity: QuotaEntity,
    pub key: String,
    pub value: Option<f64>,
}

/// Every entity's quota values, sorted by entity.
pub type ClientQuotas = [(QuotaEntity, BTreeMap<String, f64>)];

/// The quota `key` that applies to `user` with `client_id`, and the entity it is set on: the most specific of
/// Kafka's eight levels (user and client id, user and default client, user, default user and client id, default
/// user and default client, default user, client id, default client) that sets the key.
pub fn resolve<'a>(quotas: &'a ClientQuotas, user: &str, client_id: &str, key: &str) -> Option<(&'a QuotaEntity, f64)> {
    let user_name = || Some(EntityName::Named(user.to_owned()));
    let client_name = || Some(EntityName::Named(client_id.to_owned()));
    let levels = [
        (user_name(), client_name()),
        (user_name(), Some(EntityName::Default)),
        (user_name(), None),
        (Some(EntityName::Default), client_name()),
        (Some(EntityName::Default), Some(EntityName::Default)),
        (Some(EntityName::Default), None),
        (None, client_name()),
        (None, Some(EntityName::Default)),
    ];
    levels.into_iter().find_map(|(user, client_id)| {
        let entity = QuotaEntity { user, client_id, ip: None };
        let index = quotas.binary_search_by(|(e, _)| e.cmp(&entity)).ok()?;
        let (entity, values) = quotas.get(index)?;
        values.get(key).map(|value| (entity, *value))
    })
}

/// The `connection_creation_rate` that applies to connections from `ip` (KIP-612), and the entity it is set on:
/// the IP's own entity, else the default IP's.
pub fn resolve_ip<'a>(quotas: &'a ClientQuotas, ip: &str) -> Option<(&'a QuotaEntity, f64)> {
    [EntityName::Named(ip.to_owned()), EntityName::Default].into_iter().find_map(|name| {
        let entity = QuotaEntity { user: None, client_id: None, ip: Some(name) };
        let index = quotas.binary_search_by(|(e, _)| e.cmp(&entity)).ok()?;
        let (entity, values) = quotas.get(index)?;
        values.get(CONNECTION_CREATION_RATE).map(|value| (entity, *value))
    })
}

/// The quota key of IP entities.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client_id: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity { user: user.map(EntityName::from_wire), client_id: client_id.map(EntityName::from_wire), ip: None }
    }

    #[test]
    fn the_most_specific_entity_setting_the_key_applies() {
        let mut map: BTreeMap<QuotaEntity, BTreeMap<String, f64>> = BTreeMap::new();
        let mut set = |e: QuotaEntity, key: &str, value: f64| {
            map.entry(e).or_default().insert(key.to_owned(), value);
        };
        set(entity(None, Some(None)), "producer_byte_rate", 1.0);
        set(entity(None, Some(Some("c1"))), "producer_byte_rate", 2.0);
        set(entity(Some(Some("alice")), None), "producer_byte_rate", 3.0);
        set(entity(Some(Some("alice")), Some(Some("c1"))), "consumer_byte_rate", 4.0);
        let quotas: Vec<_> = map.into_iter().collect();
        let value = |user, client, key| resolve(&quotas, user, client, key).map(|(_, v)| v);
        assert_eq!(value("bob", "other", "producer_byte_rate"), Some(1.0));
        assert_eq!(value("bob", "c1", "producer_byte_rate"), Some(2.0));
        assert_eq!(value("alice", "c1", "producer_byte_rate"), Some(3.0));
        assert_eq!(value("alice", "c1", "consumer_byte_rate"), Some(4.0));
        assert_eq!(value("bob", "c1", "consumer_byte_rate"), None);
    }
}
