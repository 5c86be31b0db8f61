//! The share group APIs (KIP-932), answered as Apache Kafka answers them with share groups off: storage formatted
//! with `share.version=0`, which is Skein's situation (it finalizes no share.version). Kafka then still advertises
//! every share group API:
//! - the client APIs (ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch, ShareAcknowledge and the share group
//!   offset APIs) answer UNSUPPORTED_VERSION before any other check, per group where the response has groups;
//! - the share coordinator's state APIs (between brokers: Initialize, Read, Write, Delete and
//!   ReadSummary ShareGroupState) check CLUSTER_ACTION first, then answer every partition NOT_COORDINATOR, as no
//!   share coordinator owns any group's state.

use std::sync::Arc;

use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
    ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse, ShareAcknowledgeRequest,
    ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
};
use kafka_protocol::messages::{
    delete_share_group_state_response, describe_share_group_offsets_response, initialize_share_group_state_response,
    read_share_group_state_response, read_share_group_state_summary_response, share_group_describe_response,
    write_share_group_state_response,
};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::acl::AclOperation;
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;

fn disabled_code() -> i16 {
    error_code(&BrokerError::GroupTypeDisabled)
}

/// ShareGroupHeartbeat: the top-level code, no message (Kafka's error response for this API carries none).
pub(crate) fn heartbeat(_request: ShareGroupHeartbeatRequest) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default().with_error_code(disabled_code())
}

/// ShareGroupDescribe: each group asked for, with the code and no message.
pub(crate) fn describe(request: ShareGroupDescribeRequest) -> ShareGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| {
            share_group_describe_response::DescribedGroup::default()
                .with_group_id(group_id)
                .with_error_code(disabled_code())
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// ShareFetch: the top-level code, no message, no partitions.
pub(crate) fn fetch(_request: ShareFetchRequest) -> ShareFetchResponse {
    ShareFetchResponse::default().with_error_code(disabled_code())
}

/// ShareAcknowledge: the top-level code, no message, no partitions.
pub(crate) fn acknowledge(_request: ShareAcknowledgeRequest) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default().with_error_code(disabled_code())
}

/// DescribeShareGroupOffsets: each group asked for, with the code, no message and no topics.
pub(crate) fn describe_offsets(request: DescribeShareGroupOffsetsRequest) -> DescribeShareGroupOffsetsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group| {
            describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseGroup::default()
                .with_group_id(group.group_id)
                .with_error_code(disabled_code())
        })
        .collect();
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}

/// AlterShareGroupOffsets: the top-level code with the error's message, no topics.
pub(crate) fn alter_offsets(_request: AlterShareGroupOffsetsRequest) -> AlterShareGroupOffsetsResponse {
    let err = BrokerError::GroupTypeDisabled;
    AlterShareGroupOffsetsResponse::default()
        .with_error_code(error_code(&err))
        .with_error_message(message(err.to_string()))
}

/// DeleteShareGroupOffsets: the top-level code with the error's message, no topics.
pub(crate) fn delete_offsets(_request: DeleteShareGroupOffsetsRequest) -> DeleteShareGroupOffsetsResponse {
    let err = BrokerError::GroupTypeDisabled;
    DeleteShareGroupOffsetsResponse::default()
        .with_error_code(error_code(&err))
        .with_error_message(message(err.to_string()))
}

/// The error every partition of a state request gets: CLUSTER_AUTHORIZATION_FAILED without CLUSTER_ACTION (Kafka's
/// global error response, with the code's message), else NOT_COORDINATOR for `what`.
fn state_error(broker: &Arc<Broker>, ctx: &RequestContext, what: &'static str) -> (i16, Option<StrBytes>) {
    let err = if broker.authorized_on_cluster(ctx, AclOperation::ClusterAction) {
        BrokerError::NotShareCoordinator(what)
    } else {
        BrokerError::ClusterAuthorizationFailed
    };
    (error_code(&err), message(err.to_string()))
}

/// A state API's handler: every partition of every topic asked for gets [`state_error`] for `what`.
macro_rules! state_handler {
    ($name:ident, $request:ty, $response:ty, $module:ident, $result:ident, $what:literal) => {
        pub(crate) fn $name(broker: &Arc<Broker>, ctx: &RequestContext, request: $request) -> $response {
            use $module::{PartitionResult, $result};
            let (code, text) = state_error(broker, ctx, $what);
            let results = request
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic.partitions.iter().map(|p| {
                        PartitionResult::default()
                            .with_partition(p.partition)
                            .with_error_code(code)
                            .with_error_message(text.clone())
                    });
                    $result::default().with_topic_id(topic.topic_id).with_partitions(partitions.collect())
                })
                .collect();
            <$response>::default().with_results(results)
        }
    };
}

state_handler!(
    initialize_state,
    InitializeShareGroupStateRequest,
    InitializeShareGroupStateResponse,
    initialize_share_group_state_response,
    InitializeStateResult,
    "initialize share group state"
);
state_handler!(
    read_state,
    ReadShareGroupStateRequest,
    ReadShareGroupStateResponse,
    read_share_group_state_response,
    ReadStateResult,
    "read share group state"
);
state_handler!(
    write_state,
    WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
    write_share_group_state_response,
    WriteStateResult,
    "write share group state"
);
state_handler!(
    delete_state,
    DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse,
    delete_share_group_state_response,
    DeleteStateResult,
    "delete share group state"
);
state_handler!(
    read_state_summary,
    ReadShareGroupStateSummaryRequest,
    ReadShareGroupStateSummaryResponse,
    read_share_group_state_summary_response,
    ReadStateSummaryResult,
    "read share group state summary"
);
