//! Length limits on the ids requests carry, as Apache Kafka enforces them: the one place that knows them.
//!
//! Kafka's request parser (generated from its message schemas) refuses every string field longer than 32,767
//! bytes (`0x7fff`), in the compact encodings of flexible versions too, whose varint length could say more. The
//! request is then unparseable: Kafka logs an `InvalidRequestException` and closes the connection without an
//! answer. Kafka 4.3.1 does this for group ids, member ids, group instance ids, transactional ids and coordinator
//! keys in every request that carries them (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups, ConsumerGroupHeartbeat, InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeTransactions), at 32,768, 40,000, 65,535,
//! 65,536 and 70,000 bytes alike. Its group coordinator itself only refuses empty group ids (INVALID_GROUP_ID).
//!
//! The client id sits in the request header as a non-compact nullable string in every header version, so its i16
//! length cannot exceed the limit on the wire.
//!
//! A member id the classic group coordinator generates is `<group instance id or client id>-<UUID>`, 37 bytes longer
//! than its prefix; when that passes the limit, Kafka 4.3.1 answers the JoinGroup UNKNOWN_SERVER_ERROR with an empty
//! member id ([`validate_generated_member_id`]).
//!
//! Storage keys prefix group ids with a u16 length, so an id within [`MAX_ID_BYTES`] always fits.

use std::fmt;

use crate::error::BrokerError;

/// Most partitions one CreateTopics or CreatePartitions request may create, all its topics together: Kafka's
/// controller caps the records of one operation at 10,000 (CreateTopics beyond it: POLICY_VIOLATION "Excessively
/// large number of partitions per request."; CreatePartitions: UNKNOWN_SERVER_ERROR). Without it one request could
/// ask for 2^31 partitions and exhaust memory.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Longest id (group id, member id, group instance id, transactional id, client id, coordinator key) a request may
/// carry, in bytes of UTF-8: Kafka's limit on every request string, `Short.MAX_VALUE`.
pub const MAX_ID_BYTES: usize = 32_767;

/// Which id a request carries, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    GroupId,
    MemberId,
    GroupInstanceId,
    TransactionalId,
    ClientId,
    /// FindCoordinator's key: a group id or a transactional id, by key type.
    CoordinatorKey,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::GroupId => "group id",
            IdKind::MemberId => "member id",
            IdKind::GroupInstanceId => "group instance id",
            IdKind::TransactionalId => "transactional id",
            IdKind::ClientId => "client id",
            IdKind::CoordinatorKey => "coordinator key",
        })
    }
}

/// Checks one id against [`MAX_ID_BYTES`]. A longer id makes the request one Kafka cannot parse:
/// [`BrokerError::InvalidRequest`], on which the request's connection is closed, as Kafka closes it.
pub fn validate_id(kind: IdKind, id: &str) -> Result<(), BrokerError> {
    if id.len() > MAX_ID_BYTES {
        return Err(BrokerError::InvalidRequest(format!(
            "{kind} is {} bytes, longer than the {MAX_ID_BYTES} bytes a request string may hold",
            id.len()
        )));
    }
    Ok(())
}

/// [`validate_id`] for an optional id (`None` passes).
pub fn validate_optional_id(kind: IdKind, id: Option<&str>) -> Result<(), BrokerError> {
    id.map_or(Ok(()), |id| validate_id(kind, id))
}

/// [`validate_id`] for every id of a list; the first too long one fails.
pub fn validate_ids<'a>(kind: IdKind, ids: impl IntoIterator<Item = &'a str>) -> Result<(), BrokerError> {
    ids.into_iter().try_for_each(|id| validate_id(kind, id))
}

/// Checks a member id the coordinator generated (`<group instance id or client id>-<UUID>`): one longer than
/// [`MAX_ID_BYTES`] could not be sent back, and Kafka 4.3.1 answers such a JoinGroup UNKNOWN_SERVER_ERROR
/// ([`BrokerError::GeneratedMemberIdTooLong`]).
pub fn validate_generated_member_id(member_id: &str) -> Result<(), BrokerError> {
    if member_id.len() > MAX_ID_BYTES {
        return Err(BrokerError::GeneratedMemberIdTooLong { length: member_id.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_code;

    /// INVALID_REQUEST: the code of Kafka's `InvalidRequestException`, which closes the connection.
    const INVALID_REQUEST: i16 = 42;
    const UNKNOWN_SERVER_ERROR: i16 = -1;

    #[test]
    fn ids_up_to_32767_bytes_pass() {
        for kind in [
            IdKind::GroupId,
            IdKind::MemberId,
            IdKind::GroupInstanceId,
            IdKind::TransactionalId,
            IdKind::ClientId,
            IdKind::CoordinatorKey,
        ] {
            assert_eq!(validate_id(kind, ""), Ok(()));
            assert_eq!(validate_id(kind, &"g".repeat(MAX_ID_BYTES)), Ok(()));
        }
        assert_eq!(MAX_ID_BYTES, i16::MAX as usize);
    }

    #[test]
    fn longer_ids_are_invalid_requests() {
        for length in [32_768, 40_000, 65_535, 65_536, 70_000] {
            let err = validate_id(IdKind::GroupId, &"g".repeat(length)).expect_err("too long");
            assert_eq!(error_code(&err), INVALID_REQUEST);
            assert!(err.to_string().contains(&format!("group id is {length} bytes")), "{err}");
        }
        // The limit counts bytes, not characters: 16,384 two-byte characters are 32,768 bytes.
        assert!(validate_id(IdKind::TransactionalId, &"é".repeat(16_384)).is_err());
        assert!(validate_id(IdKind::TransactionalId, &"é".repeat(16_383)).is_ok());
    }

    #[test]
    fn optional_and_listed_ids() {
        assert_eq!(validate_optional_id(IdKind::GroupInstanceId, None), Ok(()));
        assert!(validate_optional_id(IdKind::GroupInstanceId, Some(&"i".repeat(MAX_ID_BYTES + 1))).is_err());
        let long = "g".repeat(MAX_ID_BYTES + 1);
        assert_eq!(validate_ids(IdKind::GroupId, ["a", "b"]), Ok(()));
        assert!(validate_ids(IdKind::GroupId, ["a", long.as_str(), "b"]).is_err());
    }

    #[test]
    fn generated_member_ids_over_the_limit_are_unknown_server_errors() {
        assert_eq!(validate_generated_member_id(&"m".repeat(MAX_ID_BYTES)), Ok(()));
        let err = validate_generated_member_id(&"m".repeat(MAX_ID_BYTES + 1)).expect_err("too long");
        assert_eq!(error_code(&err), UNKNOWN_SERVER_ERROR);
    }
}
