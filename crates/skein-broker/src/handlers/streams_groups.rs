//! The streams group APIs (KIP-1071), answered as Apache Kafka answers them with streams groups off (storage
//! formatted with `streams.version=0`), which is Skein's situation: it finalizes no streams.version. Kafka then
//! still advertises both APIs and answers UNSUPPORTED_VERSION before any other check, per group for a describe.
//! Kafka Streams uses the classic group protocol unless told otherwise (`group.protocol=streams`).

use kafka_protocol::messages::streams_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    StreamsGroupDescribeRequest, StreamsGroupDescribeResponse, StreamsGroupHeartbeatRequest,
    StreamsGroupHeartbeatResponse,
};
use skein_core::{BrokerError, error_code};

fn disabled_code() -> i16 {
    error_code(&BrokerError::GroupTypeDisabled)
}

/// StreamsGroupHeartbeat: the top-level code, no message (Kafka's error response for this API carries none).
pub(crate) fn heartbeat(_request: StreamsGroupHeartbeatRequest) -> StreamsGroupHeartbeatResponse {
    StreamsGroupHeartbeatResponse::default().with_error_code(disabled_code())
}

/// StreamsGroupDescribe: each group asked for, with the code and no message.
pub(crate) fn describe(request: StreamsGroupDescribeRequest) -> StreamsGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|group_id| DescribedGroup::default().with_group_id(group_id).with_error_code(disabled_code()))
        .collect();
    StreamsGroupDescribeResponse::default().with_groups(groups)
}
