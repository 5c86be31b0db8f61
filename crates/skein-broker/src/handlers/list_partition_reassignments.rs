//! ListPartitionReassignments: a single node never reassigns replicas, so none is ever in progress.

use std::sync::Arc;

use kafka_protocol::messages::{ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};

use crate::broker::Broker;

pub(crate) async fn handle(
    _broker: &Arc<Broker>,
    _request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
