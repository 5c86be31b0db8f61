//! Heartbeat: keeps a member's session alive and tells it when the group rebalances.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use skein_core::error_code;

use crate::broker::Broker;

pub(crate) async fn handle(broker: &Arc<Broker>, request: HeartbeatRequest, version: i16) -> HeartbeatResponse {
    let group_instance_id = if version >= 3 { request.group_instance_id.map(|id| id.to_string()) } else { None };
    let result = broker
        .groups
        .heartbeat(
            request.group_id.0.to_string(),
            request.member_id.to_string(),
            group_instance_id,
            request.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |err| error_code(&err)))
}
