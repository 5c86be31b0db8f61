//! AlterClientQuotas (KIP-546): sets and removes quota values of user, client-id and ip entities
//! (`kafka-configs --entity-type users|clients|ips`), written to the metadata log. Each entry is checked as
//! Kafka's controller checks it (entity types and their combination, keys valid for the entity, whole numbers
//! where Kafka's key is an integer) and fails alone.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData as ResultEntry};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use skein_cluster::acl::AclOperation;
use skein_cluster::quota::{self, ClientQuotaRecord, EntityName, QuotaEntity};
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::create_acls::APPLIED_WAIT;
use crate::handlers::message;

/// The quota keys of user and client-id entities, and whether each takes whole numbers only.
const CLIENT_KEYS: &[(&str, bool)] = &[
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];
/// The quota keys of ip entities.
const IP_KEYS: &[(&str, bool)] = &[("connection_creation_rate", true)];

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
    _version: i16,
) -> AlterClientQuotasResponse {
    let authorized = broker.authorized_on_cluster(ctx, AclOperation::AlterConfigs);
    let mut checked: Vec<Result<Vec<ClientQuotaRecord>, BrokerError>> = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        checked.push(if authorized { check(entry).await } else { Err(BrokerError::ClusterAuthorizationFailed) });
    }
    let changes: Vec<ClientQuotaRecord> = checked.iter().filter_map(|c| c.as_ref().ok()).flatten().cloned().collect();
    let mut stored = Ok(());
    if !changes.is_empty() && !request.validate_only {
        stored = broker.cluster.controller().alter_client_quotas(changes.clone()).await.map_err(controller_error);
        if stored.is_ok() {
            let shows = |image: &skein_cluster::MetadataImage| {
                changes.iter().all(|change| {
                    let values = image.client_quotas().iter().find(|(e, _)| *e == change.entity).map(|(_, v)| v);
                    values.and_then(|v| v.get(&change.key)).copied() == change.value
                })
            };
            if broker.cluster.wait_for(APPLIED_WAIT, shows).await.is_none() {
                tracing::warn!("client quota changes not visible here within {APPLIED_WAIT:?}");
            }
        }
    }
    let entries = request
        .entries
        .iter()
        .zip(&checked)
        .map(|(entry, outcome)| {
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect();
            let answer = ResultEntry::default().with_entity(entity);
            match (outcome, &stored) {
                (Err(err), _) | (Ok(_), Err(err)) => {
                    answer.with_error_code(error_code(err)).with_error_message(message(err.to_string()))
                }
                // Kafka answers a success with a null message.
                (Ok(_), Ok(())) => answer.with_error_message(None),
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// One entry's changes, checked; Kafka's messages, word for word.
async fn check(entry: &EntryData) -> Result<Vec<ClientQuotaRecord>, BrokerError> {
    let invalid = |text: String| BrokerError::InvalidRequestMessage(text);
    let mut entity = QuotaEntity::default();
    if entry.entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity".into()));
    }
    for component in &entry.entity {
        let name = Some(EntityName::from_wire(component.entity_name.as_ref().map(|n| n.as_str())));
        let slot = match component.entity_type.as_str() {
            quota::USER => &mut entity.user,
            quota::CLIENT_ID => &mut entity.client_id,
            quota::IP => &mut entity.ip,
            other => return Err(invalid(format!("Unhandled client quota entity type: {other}"))),
        };
        if slot.is_some() {
            let kind = component.entity_type.as_str();
            return Err(invalid(format!("Duplicate {kind} entity in the client quota entity")));
        }
        *slot = name;
    }
    if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
        // Kafka's message, its missing space included.
        return Err(invalid(
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId".into(),
        ));
    }
    if let Some(EntityName::Named(host)) = &entity.ip
        && host.parse::<std::net::IpAddr>().is_err()
        && tokio::net::lookup_host((host.as_str(), 0)).await.map_or(true, |mut addrs| addrs.next().is_none())
    {
        return Err(invalid(format!("{host} is not a valid IP or resolvable host.")));
    }
    let keys = if entity.ip.is_some() { IP_KEYS } else { CLIENT_KEYS };
    entry
        .ops
        .iter()
        .map(|op| {
            let key = op.key.as_str();
            let Some((_, whole)) = keys.iter().find(|(k, _)| *k == key) else {
                return Err(invalid(format!("Invalid configuration key {key}")));
            };
            if op.remove {
                return Ok(ClientQuotaRecord { entity: entity.clone(), key: key.to_owned(), value: None });
            }
            let value = op.value;
            if *whole && value.fract() != 0.0 {
                return Err(invalid(format!("{key} cannot be a fractional value.")));
            }
            if *whole && (value.is_nan() || value.abs() >= i64::MAX as f64) {
                return Err(invalid(format!("Proposed value for {key} is too large for a LONG.")));
            }
            if value.is_nan() || value <= 0.0 {
                return Err(invalid(format!("Quota {key} must be greater than 0")));
            }
            Ok(ClientQuotaRecord { entity: entity.clone(), key: key.to_owned(), value: Some(value) })
        })
        .collect()
}
