//! The broker's error enum and its single mapping to Kafka error codes.

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong while serving a request, in Kafka's terms.
///
/// Handlers return these per partition (or per topic / resource); [`error_code`] turns each into the code a real
/// Kafka broker would put in the response. Messages are for the broker's log and the response's error message field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Records of a batch that Kafka's log validator refuses one by one (KIP-467), the whole batch with them; the
    /// message is Kafka's, which clients show.
    #[error("{}", record_errors_message(.0))]
    InvalidRecords(Vec<RecordError>),
    /// Records refused one by one, at least one of them for its timestamp (out of the topic's
    /// `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms`): Kafka then refuses the batch with
    /// INVALID_TIMESTAMP and this message.
    #[error("One or more records have been rejected due to invalid timestamp")]
    InvalidTimestamps(Vec<RecordError>),
    #[error("message too large: {0}")]
    MessageTooLarge(String),
    #[error("invalid required acks {0}")]
    InvalidRequiredAcks(i16),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the leader epoch {requested} is older than the current epoch {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("the leader epoch {requested} is newer than the current epoch {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    #[error("unsupported compression type")]
    UnsupportedCompressionType,
    #[error("resource type not supported: {0}")]
    InvalidResourceType(String),
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("group id not found")]
    GroupIdNotFound,
    #[error("session timeout {requested} ms is outside [{min}, {max}] ms")]
    InvalidSessionTimeout { requested: i32, min: i64, max: i64 },
    #[error("inconsistent group protocol: {0}")]
    InconsistentGroupProtocol(String),
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("generation {requested} is not the group's generation {current}")]
    IllegalGeneration { requested: i32, current: i32 },
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("a member id is required: rejoin with member id {member_id}")]
    MemberIdRequired { member_id: String },
    #[error("group instance id is fenced by a newer member")]
    FencedInstanceId,
    #[error("the coordinator is not available: {0}")]
    CoordinatorNotAvailable(String),
    /// Another broker coordinates the group (or transactional id): the client finds the coordinator again.
    #[error("this broker is not the coordinator of {0}")]
    NotCoordinator(String),
    /// This broker is taking over the group's coordinator partition and still loading its state.
    #[error("the coordinator of {0} is loading its state")]
    CoordinatorLoadInProgress(String),
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("the offset metadata is too large")]
    OffsetMetadataTooLarge,
    #[error("member epoch {requested} does not match the coordinator's epoch {current}: rejoin")]
    FencedMemberEpoch { requested: i32, current: i32 },
    #[error("member epoch {requested} is older than the member's epoch {current}")]
    StaleMemberEpoch { requested: i32, current: i32 },
    #[error("group instance id {0} is still owned by another member")]
    UnreleasedInstanceId(String),
    #[error("unsupported assignor {0}")]
    UnsupportedAssignor(String),
    #[error("invalid regular expression: {0}")]
    InvalidRegularExpression(String),
    #[error("the producer id does not match the transactional id's")]
    InvalidProducerIdMapping,
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    #[error("the producer was fenced by a newer epoch {current}")]
    ProducerFenced { requested: i16, current: i16 },
    #[error("another operation on this transactional id is completing")]
    ConcurrentTransactions,
    #[error("transaction timeout {requested} ms is outside (0, {max}] ms")]
    InvalidTransactionTimeout { requested: i32, max: i32 },
    #[error("unknown transactional id")]
    TransactionalIdNotFound,
    #[error("not attempted because another partition of the request failed")]
    OperationNotAttempted,
    #[error("endpoint type {0} is not supported")]
    UnsupportedEndpointType(i8),
    #[error("no reassignment is in progress")]
    NoReassignmentInProgress,
    /// The partition has the leader the election asks for already (Kafka's wording).
    #[error("Leader election not needed for topic partition.")]
    ElectionNotNeeded,
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// INVALID_REQUEST with exactly this message (Kafka's, word for word: clients and tools print it).
    #[error("{0}")]
    InvalidRequestMessage(String),
    /// INVALID_CONFIG with exactly this message (Kafka's, word for word: tools print it).
    #[error("{0}")]
    InvalidConfigMessage(String),
    /// A quota entity type Kafka does not know: it answers UNSUPPORTED_VERSION.
    #[error("Unsupported entity type {0}")]
    UnsupportedQuotaEntityType(String),
    /// A request Kafka fails as a whole without saying why (UNKNOWN_SERVER_ERROR, no message).
    #[error("{0}")]
    UnknownServerError(String),
    /// The ACLs refuse the principal an operation on a topic.
    #[error("Topic authorization failed.")]
    TopicAuthorizationFailed,
    /// The ACLs refuse the principal an operation on a group.
    #[error("Group authorization failed.")]
    GroupAuthorizationFailed,
    /// The ACLs refuse the principal an operation on the cluster.
    #[error("Cluster authorization failed.")]
    ClusterAuthorizationFailed,
    /// The ACLs refuse the principal an operation on a transactional id.
    #[error("Transactional Id authorization failed.")]
    TransactionalIdAuthorizationFailed,
    /// The ACL APIs without an authorizer configured; the message is Kafka's, which differs between APIs.
    #[error("{0}")]
    SecurityDisabled(&'static str),
    /// SASL authentication failed (wrong password, unknown user, a malformed exchange); Kafka's message.
    #[error("{0}")]
    SaslAuthenticationFailed(String),
    /// A SASL request where the connection's state does not allow it (a handshake on a plaintext listener, or
    /// after authentication).
    #[error("{0}")]
    IllegalSaslState(String),
    /// A SCRAM mechanism Kafka does not know (AlterUserScramCredentials).
    #[error("{0}")]
    UnsupportedSaslMechanism(String),
    /// A credential that does not exist was to be described or deleted.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The same user (or user and mechanism) twice in one request.
    #[error("{0}")]
    DuplicateResource(String),
    /// A topic or partition change refused because the client is over its `controller_mutation_rate` (KIP-599).
    #[error("The throttling quota has been exceeded.")]
    ThrottlingQuotaExceeded,
    /// A SCRAM credential Kafka would refuse (iterations out of bounds, an empty user name).
    #[error("{0}")]
    UnacceptableCredential(String),
    /// One request asked for more than Kafka's controller does in one operation (CreatePartitions past
    /// [`crate::MAX_PARTITIONS_PER_REQUEST`]); Kafka answers UNKNOWN_SERVER_ERROR.
    #[error("{0}")]
    TooManyRecordsInOperation(String),
    /// Kafka answers a JoinGroup whose generated member id would pass the request string limit this way.
    #[error("the generated member id would be {length} bytes, longer than a request string may hold")]
    GeneratedMemberIdTooLong { length: usize },
    /// This broker does not lead the partition (the leader, when one is known, is in the metadata).
    #[error("this broker is not the leader of the partition")]
    NotLeaderOrFollower,
    /// Kafka's message for a directory that is not among `log.dirs`.
    #[error("Log dir {0} is not found in the config.")]
    LogDirNotFound(String),
    #[error("the replica is not available on this broker")]
    ReplicaNotAvailable,
    #[error(
        "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels."
    )]
    DelegationTokenRequestNotAllowed,
    #[error("Delegation Token feature is not enabled.")]
    DelegationTokenAuthDisabled,
    #[error("Delegation Token authorization failed.")]
    DelegationTokenAuthorizationFailed,
    #[error("Supplied principalType is not supported.")]
    InvalidPrincipalType,
    /// A voter change on a static metadata quorum (`controller.quorum.voters`): Kafka's message.
    #[error("Cluster doesn't support {0} voter because the kraft.version feature is 0")]
    StaticQuorum(&'static str),
    /// Share groups (KIP-932) and streams groups (KIP-1071) are off (no share.version or streams.version
    /// finalized): Kafka's answer to their APIs.
    #[error("The version of API is not supported.")]
    GroupTypeDisabled,
    /// UpdateFeatures refused (the message says which update and why).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// UnregisterBroker of an id with no registration (Kafka's controller's wording).
    #[error("Broker ID {0} is not currently registered")]
    BrokerIdNotRegistered(i32),
    /// No share coordinator runs here, so none owns the state asked for ("read share group state", ...).
    #[error("Unable to {0}: This is not the correct coordinator.")]
    NotShareCoordinator(&'static str),
    #[error("The given id \"{given}\" doesn't match the cluster id \"{ours}\"")]
    InconsistentClusterId { given: String, ours: String },
    /// The partition has no leader right now (an election is due).
    #[error("the partition has no leader")]
    LeaderNotAvailable,
    /// The metadata quorum has no leader that this broker can reach.
    #[error("no controller available: {0}")]
    NotController(String),
    /// A metadata operation did not complete in time; it may still take effect.
    #[error("request timed out: {0}")]
    RequestTimedOut(String),
    /// A broker epoch that is no longer the broker's registration.
    #[error("stale broker epoch: {0}")]
    StaleBrokerEpoch(String),
    /// No replica may become leader.
    #[error("no eligible leader: {0}")]
    EligibleLeadersNotAvailable(String),
    /// A preferred-leader election whose preferred replica is fenced or out of the ISR.
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`: refused before anything is written.
    #[error("not enough in-sync replicas: {isr} in sync, min.insync.replicas is {min}")]
    NotEnoughReplicas { isr: usize, min: usize },
    /// acks=all whose records were written but the ISR shrank below `min.insync.replicas` before they were
    /// replicated: not acknowledged.
    #[error("not enough in-sync replicas after append: {isr} in sync, min.insync.replicas is {min}")]
    NotEnoughReplicasAfterAppend { isr: usize, min: usize },
    /// Another broker's answer to a request this one sent it on a client's behalf (e.g. the transaction
    /// coordinator verifying a transactional produce): its Kafka error code, passed on unchanged.
    #[error("broker {node_id} answered error code {code}")]
    FromBroker { node_id: i32, code: i16 },
    /// A transactional produce whose partition the transaction coordinator could not verify yet (it is loading,
    /// moved, or busy ending the transaction): NOT_ENOUGH_REPLICAS, as Kafka answers, so every producer retries.
    #[error("the transaction coordinator could not verify the partition yet: {0}")]
    TransactionNotVerified(String),
}

/// One record a produce refuses (KIP-467's `record_errors`): its index within its batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Kafka's form (`ProduceResponse.RecordError`), which its error message lists.
impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordError(batchIndex={}, message='{}')", self.batch_index, self.message)
    }
}

/// The error message of a batch refused for `errors`, word for word Kafka's (`LogValidator.processRecordErrors`),
/// which names at most the first three.
fn record_errors_message(errors: &[RecordError]) -> String {
    let shown: Vec<String> = errors.iter().take(3).map(RecordError::to_string).collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three \
         errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

/// The one mapping from [`BrokerError`] to the Kafka error code a real broker returns for it. Exhaustive on purpose:
/// a new error variant does not compile until it has a code.
pub fn error_code(error: &BrokerError) -> i16 {
    let kafka = match error {
        BrokerError::FromBroker { code, .. } => return *code,
        BrokerError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        BrokerError::UnknownTopicId => ResponseError::UnknownTopicId,
        BrokerError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        BrokerError::LogDirNotFound(_) => ResponseError::LogDirNotFound,
        BrokerError::ReplicaNotAvailable => ResponseError::ReplicaNotAvailable,
        BrokerError::DelegationTokenRequestNotAllowed => ResponseError::DelegationTokenRequestNotAllowed,
        BrokerError::DelegationTokenAuthDisabled => ResponseError::DelegationTokenAuthDisabled,
        BrokerError::DelegationTokenAuthorizationFailed => ResponseError::DelegationTokenAuthorizationFailed,
        BrokerError::InvalidPrincipalType => ResponseError::InvalidPrincipalType,
        BrokerError::StaticQuorum(_) => ResponseError::UnsupportedVersion,
        BrokerError::GroupTypeDisabled => ResponseError::UnsupportedVersion,
        BrokerError::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
        BrokerError::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
        BrokerError::NotShareCoordinator(_) => ResponseError::NotCoordinator,
        BrokerError::InconsistentClusterId { .. } => ResponseError::InconsistentClusterId,
        BrokerError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        BrokerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        BrokerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        BrokerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        BrokerError::InvalidConfig(_) => ResponseError::InvalidConfig,
        BrokerError::CorruptMessage(_) => ResponseError::CorruptMessage,
        BrokerError::InvalidRecord(_) => ResponseError::InvalidRecord,
        BrokerError::InvalidRecords(_) => ResponseError::InvalidRecord,
        BrokerError::InvalidTimestamps(_) => ResponseError::InvalidTimestamp,
        BrokerError::MessageTooLarge(_) => ResponseError::MessageTooLarge,
        BrokerError::InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
        BrokerError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        BrokerError::UnsupportedVersion { .. } => ResponseError::UnsupportedVersion,
        BrokerError::InvalidRequest(_) => ResponseError::InvalidRequest,
        BrokerError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        BrokerError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        BrokerError::UnsupportedCompressionType => ResponseError::UnsupportedCompressionType,
        BrokerError::InvalidResourceType(_) => ResponseError::InvalidRequest,
        BrokerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        BrokerError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
        BrokerError::Storage(_) => ResponseError::KafkaStorageError,
        BrokerError::InvalidGroupId => ResponseError::InvalidGroupId,
        BrokerError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        BrokerError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        BrokerError::InconsistentGroupProtocol(_) => ResponseError::InconsistentGroupProtocol,
        BrokerError::UnknownMemberId => ResponseError::UnknownMemberId,
        BrokerError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        BrokerError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        BrokerError::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
        BrokerError::FencedInstanceId => ResponseError::FencedInstanceId,
        BrokerError::CoordinatorNotAvailable(_) => ResponseError::CoordinatorNotAvailable,
        BrokerError::NotCoordinator(_) => ResponseError::NotCoordinator,
        BrokerError::CoordinatorLoadInProgress(_) => ResponseError::CoordinatorLoadInProgress,
        BrokerError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        BrokerError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        BrokerError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        BrokerError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
        BrokerError::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
        BrokerError::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
        BrokerError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
        BrokerError::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
        BrokerError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        BrokerError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        BrokerError::ProducerFenced { .. } => ResponseError::ProducerFenced,
        BrokerError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        BrokerError::InvalidTransactionTimeout { .. } => ResponseError::InvalidTransactionTimeout,
        BrokerError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        BrokerError::OperationNotAttempted => ResponseError::OperationNotAttempted,
        BrokerError::UnsupportedEndpointType(_) => ResponseError::UnsupportedEndpointType,
        BrokerError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        BrokerError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
        BrokerError::PolicyViolation(_) => ResponseError::PolicyViolation,
        BrokerError::SecurityDisabled(_) => ResponseError::SecurityDisabled,
        BrokerError::InvalidRequestMessage(_) => ResponseError::InvalidRequest,
        BrokerError::InvalidConfigMessage(_) => ResponseError::InvalidConfig,
        BrokerError::UnsupportedQuotaEntityType(_) => ResponseError::UnsupportedVersion,
        BrokerError::UnknownServerError(_) => ResponseError::UnknownServerError,
        BrokerError::TopicAuthorizationFailed => ResponseError::TopicAuthorizationFailed,
        BrokerError::GroupAuthorizationFailed => ResponseError::GroupAuthorizationFailed,
        BrokerError::ClusterAuthorizationFailed => ResponseError::ClusterAuthorizationFailed,
        BrokerError::TransactionalIdAuthorizationFailed => ResponseError::TransactionalIdAuthorizationFailed,
        BrokerError::UnsupportedSaslMechanism(_) => ResponseError::UnsupportedSaslMechanism,
        BrokerError::SaslAuthenticationFailed(_) => ResponseError::SaslAuthenticationFailed,
        BrokerError::IllegalSaslState(_) => ResponseError::IllegalSaslState,
        BrokerError::ResourceNotFound(_) => ResponseError::ResourceNotFound,
        BrokerError::DuplicateResource(_) => ResponseError::DuplicateResource,
        BrokerError::UnacceptableCredential(_) => ResponseError::UnacceptableCredential,
        BrokerError::ThrottlingQuotaExceeded => ResponseError::ThrottlingQuotaExceeded,
        BrokerError::TooManyRecordsInOperation(_) => ResponseError::UnknownServerError,
        BrokerError::GeneratedMemberIdTooLong { .. } => ResponseError::UnknownServerError,
        BrokerError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        BrokerError::LeaderNotAvailable => ResponseError::LeaderNotAvailable,
        BrokerError::NotController(_) => ResponseError::NotController,
        BrokerError::RequestTimedOut(_) => ResponseError::RequestTimedOut,
        BrokerError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        BrokerError::TransactionNotVerified(_) => ResponseError::NotEnoughReplicas,
        BrokerError::NotEnoughReplicasAfterAppend { .. } => ResponseError::NotEnoughReplicasAfterAppend,
        BrokerError::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
        BrokerError::EligibleLeadersNotAvailable(_) => ResponseError::EligibleLeadersNotAvailable,
        BrokerError::PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
    };
    kafka.code()
}

impl From<skein_protocol::BatchError> for BrokerError {
    fn from(err: skein_protocol::BatchError) -> Self {
        match err {
            skein_protocol::BatchError::Corrupt(msg) => BrokerError::CorruptMessage(msg),
            skein_protocol::BatchError::Invalid(msg) => BrokerError::InvalidRecord(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(error_code(&BrokerError::UnknownTopicOrPartition), 3);
        assert_eq!(error_code(&BrokerError::InvalidTopic(String::new())), 17);
        assert_eq!(error_code(&BrokerError::TopicAlreadyExists(String::new())), 36);
        assert_eq!(error_code(&BrokerError::CorruptMessage(String::new())), 2);
        assert_eq!(error_code(&BrokerError::MessageTooLarge(String::new())), 10);
        assert_eq!(error_code(&BrokerError::InvalidRecord(String::new())), 87);
        assert_eq!(error_code(&BrokerError::InvalidRecords(Vec::new())), 87);
        assert_eq!(error_code(&BrokerError::InvalidTimestamps(Vec::new())), 32);
        assert_eq!(error_code(&BrokerError::SecurityDisabled("")), 54);
        assert_eq!(error_code(&BrokerError::TopicAuthorizationFailed), 29);
        assert_eq!(error_code(&BrokerError::GroupAuthorizationFailed), 30);
        assert_eq!(error_code(&BrokerError::ClusterAuthorizationFailed), 31);
        assert_eq!(error_code(&BrokerError::TransactionalIdAuthorizationFailed), 53);
        assert_eq!(error_code(&BrokerError::UnsupportedSaslMechanism(String::new())), 33);
        assert_eq!(error_code(&BrokerError::ResourceNotFound(String::new())), 91);
        assert_eq!(error_code(&BrokerError::SaslAuthenticationFailed(String::new())), 58);
        assert_eq!(error_code(&BrokerError::IllegalSaslState(String::new())), 34);
        assert_eq!(error_code(&BrokerError::DuplicateResource(String::new())), 92);
        assert_eq!(error_code(&BrokerError::UnacceptableCredential(String::new())), 93);
        assert_eq!(error_code(&BrokerError::UnsupportedVersion { api_key: 0, version: 0 }), 35);
        assert_eq!(error_code(&BrokerError::OffsetOutOfRange { offset: 5, log_start_offset: 0, log_end_offset: 1 }), 1);
        assert_eq!(error_code(&BrokerError::InvalidRequiredAcks(2)), 21);
        assert_eq!(error_code(&BrokerError::UnknownTopicId), 100);
        assert_eq!(error_code(&BrokerError::Storage(String::new())), 56);
        assert_eq!(error_code(&BrokerError::InvalidProducerEpoch { producer_id: 1, epoch: 0, current: 1 }), 47);
        assert_eq!(error_code(&BrokerError::OutOfOrderSequence(String::new())), 45);
        assert_eq!(error_code(&BrokerError::IllegalGeneration { requested: 1, current: 2 }), 22);
        assert_eq!(error_code(&BrokerError::InconsistentGroupProtocol(String::new())), 23);
        assert_eq!(error_code(&BrokerError::InvalidGroupId), 24);
        assert_eq!(error_code(&BrokerError::UnknownMemberId), 25);
        assert_eq!(error_code(&BrokerError::InvalidSessionTimeout { requested: 1, min: 2, max: 3 }), 26);
        assert_eq!(error_code(&BrokerError::RebalanceInProgress), 27);
        assert_eq!(error_code(&BrokerError::CoordinatorNotAvailable(String::new())), 15);
        assert_eq!(error_code(&BrokerError::CoordinatorLoadInProgress(String::new())), 14);
        assert_eq!(error_code(&BrokerError::NotCoordinator(String::new())), 16);
        assert_eq!(error_code(&BrokerError::NonEmptyGroup), 68);
        assert_eq!(error_code(&BrokerError::GroupIdNotFound), 69);
        assert_eq!(error_code(&BrokerError::MemberIdRequired { member_id: String::new() }), 79);
        assert_eq!(error_code(&BrokerError::FencedInstanceId), 82);
        assert_eq!(error_code(&BrokerError::GroupSubscribedToTopic), 86);
        assert_eq!(error_code(&BrokerError::OffsetMetadataTooLarge), 12);
        assert_eq!(error_code(&BrokerError::FencedMemberEpoch { requested: 2, current: 1 }), 110);
        assert_eq!(error_code(&BrokerError::UnreleasedInstanceId(String::new())), 111);
        assert_eq!(error_code(&BrokerError::UnsupportedAssignor(String::new())), 112);
        assert_eq!(error_code(&BrokerError::StaleMemberEpoch { requested: 1, current: 2 }), 113);
        assert_eq!(error_code(&BrokerError::InvalidRegularExpression(String::new())), 128);
        assert_eq!(error_code(&BrokerError::InvalidTxnState(String::new())), 48);
        assert_eq!(error_code(&BrokerError::InvalidProducerIdMapping), 49);
        assert_eq!(error_code(&BrokerError::InvalidTransactionTimeout { requested: 0, max: 1 }), 50);
        assert_eq!(error_code(&BrokerError::ConcurrentTransactions), 51);
        assert_eq!(error_code(&BrokerError::OperationNotAttempted), 55);
        assert_eq!(error_code(&BrokerError::ProducerFenced { requested: 0, current: 1 }), 90);
        assert_eq!(error_code(&BrokerError::TransactionalIdNotFound), 105);
        assert_eq!(error_code(&BrokerError::PolicyViolation(String::new())), 44);
        assert_eq!(error_code(&BrokerError::InvalidRequest(String::new())), 42);
        assert_eq!(error_code(&BrokerError::GeneratedMemberIdTooLong { length: 32_804 }), -1);
        assert_eq!(error_code(&BrokerError::PreferredLeaderNotAvailable(String::new())), 80);
        assert_eq!(error_code(&BrokerError::EligibleLeadersNotAvailable(String::new())), 83);
        assert_eq!(error_code(&BrokerError::ElectionNotNeeded), 84);
    }

    #[test]
    fn record_errors_read_as_kafka_writes_them() {
        let errors: Vec<RecordError> =
            (0..4).map(|batch_index| RecordError { batch_index, message: "no key".into() }).collect();
        assert_eq!(
            BrokerError::InvalidRecords(errors[..1].to_vec()).to_string(),
            "One or more records have been rejected due to 1 record errors in total, and only showing the first \
             three errors at most: [RecordError(batchIndex=0, message='no key')]"
        );
        let four = BrokerError::InvalidRecords(errors).to_string();
        assert!(four.starts_with("One or more records have been rejected due to 4 record errors"), "{four}");
        assert!(four.ends_with("RecordError(batchIndex=2, message='no key')]"), "{four}");
    }

    #[test]
    fn batch_errors_map_to_corrupt_and_invalid() {
        let corrupt: BrokerError = skein_protocol::BatchError::Corrupt("crc".into()).into();
        assert_eq!(error_code(&corrupt), 2);
        let invalid: BrokerError = skein_protocol::BatchError::Invalid("magic".into()).into();
        assert_eq!(error_code(&invalid), 87);
    }
}
