//! DescribeClientQuotas (KIP-546): the quota entities a filter matches, with their values, as Kafka's metadata
//! image answers: a component matches an entity by exact name, the default, or any name of its type
//! (`SPECIFIED`, the default included); `strict` keeps only entities with no other component types.

use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::acl::AclOperation;
use skein_cluster::quota::{self, EntityName, QuotaEntity};
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// What one filter component asks of an entity's component of its type.
enum Wanted {
    Exact(EntityName),
    Any,
}

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
    _version: i16,
) -> DescribeClientQuotasResponse {
    let refuse = |err: BrokerError| {
        DescribeClientQuotasResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()))
            .with_entries(None)
    };
    if !broker.authorized_on_cluster(ctx, AclOperation::DescribeConfigs) {
        return refuse(BrokerError::ClusterAuthorizationFailed);
    }
    let filter = match read_filter(&request.components) {
        Ok(filter) => filter,
        Err(err) => return refuse(err),
    };
    let image = broker.cluster.image();
    let entries = image
        .client_quotas()
        .iter()
        .filter(|(entity, _)| {
            let components = entity.components();
            let matches = filter.iter().all(|(kind, wanted)| {
                components.iter().any(|(k, name)| {
                    k == kind
                        && match wanted {
                            Wanted::Exact(exact) => *name == exact,
                            Wanted::Any => true,
                        }
                })
            });
            // With no component at all and strict, nothing matches (Kafka's reading).
            matches && (!request.strict || (components.len() == filter.len() && !filter.is_empty()))
        })
        .map(|(entity, values)| entry(entity, values))
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

/// The filter as (entity type, wanted), checked as Kafka checks it.
fn read_filter(components: &[ComponentData]) -> Result<Vec<(&'static str, Wanted)>, BrokerError> {
    let mut filter: Vec<(&'static str, Wanted)> = Vec::new();
    for component in components {
        let kind = component.entity_type.as_str();
        if kind.is_empty() {
            return Err(BrokerError::InvalidRequestMessage("Invalid empty entity type.".into()));
        }
        if filter.iter().any(|(k, _)| *k == kind) {
            return Err(BrokerError::InvalidRequestMessage(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        let kind = match kind {
            quota::USER => quota::USER,
            quota::CLIENT_ID => quota::CLIENT_ID,
            quota::IP => quota::IP,
            other => return Err(BrokerError::UnsupportedQuotaEntityType(other.to_owned())),
        };
        let matched = component._match.as_ref().map(|m| m.to_string());
        let wanted = match (component.match_type, matched) {
            (MATCH_EXACT, Some(name)) => Wanted::Exact(EntityName::Named(name)),
            (MATCH_EXACT, None) => {
                return Err(BrokerError::InvalidRequestMessage(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                ));
            }
            (MATCH_DEFAULT, None) => Wanted::Exact(EntityName::Default),
            (MATCH_DEFAULT, Some(_)) => {
                return Err(BrokerError::InvalidRequestMessage(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.".into(),
                ));
            }
            (MATCH_SPECIFIED, None) => Wanted::Any,
            (MATCH_SPECIFIED, Some(_)) => {
                return Err(BrokerError::InvalidRequestMessage(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.".into(),
                ));
            }
            (other, _) => return Err(BrokerError::InvalidRequestMessage(format!("Unknown match type {other}"))),
        };
        filter.push((kind, wanted));
    }
    let has = |kind: &str| filter.iter().any(|(k, _)| *k == kind);
    if has(quota::IP) && (has(quota::USER) || has(quota::CLIENT_ID)) {
        return Err(BrokerError::InvalidRequestMessage(
            "Invalid entity filter component combination. IP filter component should not be used with user or \
             clientId filter component."
                .into(),
        ));
    }
    Ok(filter)
}

fn entry(entity: &QuotaEntity, values: &std::collections::BTreeMap<String, f64>) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .components()
                .into_iter()
                .map(|(kind, name)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(kind))
                        .with_entity_name(name.as_wire().map(|n| StrBytes::from_string(n.to_owned())))
                })
                .collect(),
        )
        .with_values(
            values
                .iter()
                .map(|(key, value)| {
                    ValueData::default().with_key(StrBytes::from_string(key.clone())).with_value(*value)
                })
                .collect(),
        )
}
