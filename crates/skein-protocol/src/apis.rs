//! The APIs Skein serves and their version ranges: the router dispatches by this table, ApiVersions answers from
//! it, and the fuzz targets decode every entry of it.

use kafka_protocol::messages::ApiKey;

/// Every API Skein serves and the versions it implements. ApiVersions answers from this table, and requests
/// outside it are refused, so what is advertised is exactly what is implemented.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    // Produce is advertised from v0 like Kafka 4 (librdkafka disables compression when the minimum is above 0);
    // v0-v2 are refused per request with UNSUPPORTED_VERSION.
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    // Between brokers: a transaction coordinator's markers for partitions led elsewhere (Kafka 4 serves v1).
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 5),
    // One data directory: a move to it succeeds and changes nothing (v0 was removed in Kafka 4.0).
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // v0 and v1 were removed in Kafka 4.0 (v2 added the fencing current_leader_epoch); Kafka 4 serves v2-v4.
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    // Without an authorizer answered SECURITY_DISABLED, as Kafka 4 without one (v0 was removed in Kafka 4.0).
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // SASL listeners authenticate with these (KIP-152); elsewhere they are answered ILLEGAL_SASL_STATE, as Kafka.
    // Handshake v0 (raw tokens after it) is not served.
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    // KIP-554: SCRAM credentials, kept in the metadata log.
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // KIP-546: client quotas, kept in the metadata log and enforced by throttling.
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // KIP-48 delegation tokens: Skein has none, and answers as Kafka without `delegation.token.secret.key`.
    (ApiKey::CreateDelegationToken, 1, 3),
    (ApiKey::RenewDelegationToken, 1, 2),
    (ApiKey::ExpireDelegationToken, 1, 2),
    (ApiKey::DescribeDelegationToken, 1, 3),
    // KIP-1142 (v0: ListClientMetricsResources).
    (ApiKey::ListConfigResources, 0, 1),
    // KIP-853 on a static quorum: Kafka's answers with kraft.version 0 (the codec knows AddRaftVoter v0 only).
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
    // KIP-584: Skein's feature levels are fixed; updates are checked as Kafka's controller checks them.
    (ApiKey::UpdateFeatures, 0, 2),
    // Removes a broker's registration (`kafka-cluster unregister`).
    (ApiKey::UnregisterBroker, 0, 0),
    // KIP-932 share groups, off (no share.version finalized): Kafka's answers with share.version 0
    // (UNSUPPORTED_VERSION; the share coordinator's state APIs NOT_COORDINATOR). Where Kafka 4.3 serves one more
    // version (ShareFetch and ShareAcknowledge 2, WriteShareGroupState, ReadShareGroupStateSummary and
    // DescribeShareGroupOffsets 1), the codec does not know it yet.
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::InitializeShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 0),
    (ApiKey::DeleteShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupStateSummary, 0, 0),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    // KIP-1071 streams groups, off (no streams.version finalized): Kafka's answers with streams.version 0,
    // UNSUPPORTED_VERSION. Kafka Streams then uses the classic group protocol, as it does by default.
    (ApiKey::StreamsGroupHeartbeat, 0, 0),
    (ApiKey::StreamsGroupDescribe, 0, 0),
];

/// The supported version range of `key`, if Skein serves it.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key).map(|(_, min, max)| (*min, *max))
}
