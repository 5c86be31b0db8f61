//! Which error codes a response carries, for `skein_request_errors_total`: the top-level code and every per-topic,
//! per-partition, per-group, per-member and per-transaction code the response has. Zero (no error) is left out.
//! A field the request's version does not carry stays at its default (0, empty), so every field is read.

use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, ApiVersionsResponse, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse, CreateTopicsResponse, DeleteGroupsResponse, DeleteTopicsResponse,
    DescribeConfigsResponse, DescribeGroupsResponse, DescribeTransactionsResponse, EndTxnResponse, FetchResponse,
    FindCoordinatorResponse, HeartbeatResponse, InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, ListOffsetsResponse, ListTransactionsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, ProduceResponse, SyncGroupResponse, TxnOffsetCommitResponse,
};
use kafka_protocol::messages::{
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, AlterReplicaLogDirsResponse, CreatePartitionsResponse,
    DeleteRecordsResponse, DescribeClusterResponse, DescribeLogDirsResponse, DescribeProducersResponse,
    ElectLeadersResponse, IncrementalAlterConfigsResponse, ListPartitionReassignmentsResponse,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsResponse, CreateAclsResponse, DeleteAclsResponse, DescribeAclsResponse,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::messages::{DescribeQuorumResponse, DescribeTopicPartitionsResponse, OffsetForLeaderEpochResponse};

/// A response whose error codes are counted.
pub(crate) trait ErrorCodes {
    /// The non-zero error codes in the response, one for each place that reports an error.
    fn error_codes(&self) -> Vec<i16>;
}

fn nonzero(codes: impl IntoIterator<Item = i16>) -> Vec<i16> {
    codes.into_iter().filter(|code| *code != 0).collect()
}

/// Responses with a single top-level error code.
macro_rules! top_level_error_code {
    ($($response:ty),* $(,)?) => {
        $(
            impl ErrorCodes for $response {
                fn error_codes(&self) -> Vec<i16> {
                    nonzero([self.error_code])
                }
            }
        )*
    };
}

top_level_error_code!(
    AddOffsetsToTxnResponse,
    ApiVersionsResponse,
    ConsumerGroupHeartbeatResponse,
    EndTxnResponse,
    HeartbeatResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    ListGroupsResponse,
    ListTransactionsResponse,
    SyncGroupResponse,
    DescribeClusterResponse,
    ListPartitionReassignmentsResponse,
    DescribeAclsResponse,
    kafka_protocol::messages::SaslHandshakeResponse,
    kafka_protocol::messages::SaslAuthenticateResponse,
    kafka_protocol::messages::CreateDelegationTokenResponse,
    kafka_protocol::messages::RenewDelegationTokenResponse,
    kafka_protocol::messages::ExpireDelegationTokenResponse,
    kafka_protocol::messages::DescribeDelegationTokenResponse,
    kafka_protocol::messages::ListConfigResourcesResponse,
    kafka_protocol::messages::AddRaftVoterResponse,
    kafka_protocol::messages::RemoveRaftVoterResponse,
    kafka_protocol::messages::UnregisterBrokerResponse,
    kafka_protocol::messages::ShareGroupHeartbeatResponse,
    kafka_protocol::messages::ShareFetchResponse,
    kafka_protocol::messages::ShareAcknowledgeResponse,
    kafka_protocol::messages::AlterShareGroupOffsetsResponse,
    kafka_protocol::messages::DeleteShareGroupOffsetsResponse,
    kafka_protocol::messages::StreamsGroupHeartbeatResponse,
);

impl ErrorCodes for kafka_protocol::messages::UpdateFeaturesResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code).chain(self.results.iter().map(|r| r.error_code)))
    }
}

impl ErrorCodes for kafka_protocol::messages::ShareGroupDescribeResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.groups.iter().map(|g| g.error_code))
    }
}

impl ErrorCodes for kafka_protocol::messages::StreamsGroupDescribeResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.groups.iter().map(|g| g.error_code))
    }
}

impl ErrorCodes for kafka_protocol::messages::DescribeShareGroupOffsetsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.groups.iter().map(|g| g.error_code))
    }
}

/// The share coordinator's state responses: a code per partition.
macro_rules! partition_results_error_codes {
    ($($response:ident),* $(,)?) => {
        $(
            impl ErrorCodes for kafka_protocol::messages::$response {
                fn error_codes(&self) -> Vec<i16> {
                    nonzero(self.results.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)))
                }
            }
        )*
    };
}

partition_results_error_codes!(
    InitializeShareGroupStateResponse,
    ReadShareGroupStateResponse,
    WriteShareGroupStateResponse,
    DeleteShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse,
);

impl ErrorCodes for AlterUserScramCredentialsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for DescribeUserScramCredentialsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code).chain(self.results.iter().map(|r| r.error_code)))
    }
}

impl ErrorCodes for kafka_protocol::messages::DescribeClientQuotasResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code))
    }
}

impl ErrorCodes for kafka_protocol::messages::AlterClientQuotasResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.entries.iter().map(|e| e.error_code))
    }
}

impl ErrorCodes for CreateAclsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for DeleteAclsResponse {
    fn error_codes(&self) -> Vec<i16> {
        // Each filter's code, and each matching ACL's (none while there is no authorizer).
        let matching = self.filter_results.iter().flat_map(|f| &f.matching_acls).map(|a| a.error_code);
        nonzero(self.filter_results.iter().map(|f| f.error_code).chain(matching))
    }
}

impl ErrorCodes for CreatePartitionsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().map(|t| t.error_code))
    }
}

impl ErrorCodes for DeleteRecordsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for kafka_protocol::messages::WriteTxnMarkersResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.markers.iter().flat_map(|m| &m.topics).flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for AlterConfigsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.responses.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for IncrementalAlterConfigsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.responses.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for DescribeLogDirsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code).chain(self.results.iter().map(|r| r.error_code)))
    }
}

impl ErrorCodes for AlterReplicaLogDirsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for AlterPartitionReassignmentsResponse {
    fn error_codes(&self) -> Vec<i16> {
        let partitions = self.responses.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for ElectLeadersResponse {
    fn error_codes(&self) -> Vec<i16> {
        let partitions = self.replica_election_results.iter().flat_map(|t| &t.partition_result).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for DescribeProducersResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for OffsetForLeaderEpochResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for ProduceResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.responses.iter().flat_map(|t| &t.partition_responses).map(|p| p.error_code))
    }
}

impl ErrorCodes for FetchResponse {
    fn error_codes(&self) -> Vec<i16> {
        let partitions = self.responses.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for ListOffsetsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self) -> Vec<i16> {
        let topics = self.topics.iter().map(|t| t.error_code);
        let partitions = self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(topics).chain(partitions))
    }
}

impl ErrorCodes for DescribeQuorumResponse {
    fn error_codes(&self) -> Vec<i16> {
        let partitions = self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for DescribeTopicPartitionsResponse {
    fn error_codes(&self) -> Vec<i16> {
        let topics = self.topics.iter().map(|t| t.error_code);
        let partitions = self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(topics.chain(partitions))
    }
}

impl ErrorCodes for CreateTopicsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().map(|t| t.error_code))
    }
}

impl ErrorCodes for DeleteTopicsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.responses.iter().map(|t| t.error_code))
    }
}

impl ErrorCodes for DescribeConfigsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code).chain(self.coordinators.iter().map(|c| c.error_code)))
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(std::iter::once(self.error_code).chain(self.members.iter().map(|m| m.error_code)))
    }
}

impl ErrorCodes for OffsetCommitResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self) -> Vec<i16> {
        // Up to v7 one group at the top level; from v8 a list of groups.
        let partitions = self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        let groups = self.groups.iter().map(|g| g.error_code);
        let group_partitions =
            self.groups.iter().flat_map(|g| &g.topics).flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions).chain(groups).chain(group_partitions))
    }
}

impl ErrorCodes for DescribeGroupsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.groups.iter().map(|g| g.error_code))
    }
}

impl ErrorCodes for DeleteGroupsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.results.iter().map(|r| r.error_code))
    }
}

impl ErrorCodes for OffsetDeleteResponse {
    fn error_codes(&self) -> Vec<i16> {
        let partitions = self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for ConsumerGroupDescribeResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.groups.iter().map(|g| g.error_code))
    }
}

impl ErrorCodes for AddPartitionsToTxnResponse {
    fn error_codes(&self) -> Vec<i16> {
        // Up to v3 results by topic; from v4 a top-level code and results by transaction.
        let by_topic = self.results_by_topic_v3_and_below.iter();
        let by_transaction = self.results_by_transaction.iter().flat_map(|t| &t.topic_results);
        let partitions =
            by_topic.chain(by_transaction).flat_map(|t| &t.results_by_partition).map(|p| p.partition_error_code);
        nonzero(std::iter::once(self.error_code).chain(partitions))
    }
}

impl ErrorCodes for TxnOffsetCommitResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code))
    }
}

impl ErrorCodes for DescribeTransactionsResponse {
    fn error_codes(&self) -> Vec<i16> {
        nonzero(self.transaction_states.iter().map(|s| s.error_code))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};

    use super::*;

    #[test]
    fn every_partition_error_is_counted_and_successes_are_not() {
        let partition = |code| PartitionProduceResponse::default().with_error_code(code);
        let produce = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(vec![partition(0), partition(3)]),
            TopicProduceResponse::default().with_partition_responses(vec![partition(3), partition(10)]),
        ]);
        assert_eq!(produce.error_codes(), vec![3, 3, 10]);

        let fetch = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_partitions(vec![PartitionData::default(), PartitionData::default().with_error_code(1)]),
        ]);
        assert_eq!(fetch.error_codes(), vec![1]);
        assert_eq!(HeartbeatResponse::default().with_error_code(27).error_codes(), vec![27]);
        assert!(HeartbeatResponse::default().error_codes().is_empty());
    }
}
