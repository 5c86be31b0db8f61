//! The `storage_codec` target: every key and value decoder of skein-storage (`keys.rs`, `records.rs`) on the same
//! bytes, as if read back from a damaged or hostile data directory. What decodes must encode back to what decodes
//! the same (and, for the fixed layouts, to the very bytes read).

use skein_storage::keys;
use skein_storage::{
    AbortedTxn, CommittedOffset, DynamicBrokerConfigsRecord, GroupRecord, PartitionState, ProducerState, StorageError,
    TopicRecord, TxnRecord,
};

/// The check of one input. Errors are expected (most inputs are malformed); a panic or an abort is the finding.
pub fn check(data: &[u8]) {
    check_keys(data);

    // v1 partition states re-encode as v2: compare decoded values.
    round_trip(PartitionState::decode, |state| Ok(state.encode()), data);
    if let Ok(entry) = AbortedTxn::decode(data) {
        assert_eq!(entry.encode(), data, "aborted txn entry re-encodes to other bytes");
    }
    // v1 producer states re-encode as v2, and lossy metadata as valid UTF-8: compare decoded values.
    round_trip(ProducerState::decode, |state| Ok(state.encode()), data);
    round_trip(CommittedOffset::decode, |offset| Ok(offset.encode()), data);
    round_trip(TxnRecord::decode, TxnRecord::encode, data);
    round_trip(DynamicBrokerConfigsRecord::decode, DynamicBrokerConfigsRecord::encode, data);
    round_trip(TopicRecord::decode, TopicRecord::encode, data);
    round_trip(GroupRecord::decode, GroupRecord::encode, data);
}

fn check_keys(key: &[u8]) {
    let _ = keys::log_key_offset(key);
    let _ = keys::producer_key_id(key);
    if let Some((group, topic, partition)) = keys::decode_offset_key(key) {
        assert_eq!(keys::offset_key(&group, &topic, partition), key, "offset key re-encodes to other bytes");
    }
    if let Some(group) = keys::decode_group_key(key) {
        assert_eq!(keys::group_key(&group), key, "group key re-encodes to other bytes");
    }
}

fn round_trip<T: PartialEq + std::fmt::Debug>(
    decode: fn(&[u8]) -> Result<T, StorageError>,
    encode: fn(&T) -> Result<Vec<u8>, StorageError>,
    data: &[u8],
) {
    let Ok(value) = decode(data) else {
        return;
    };
    let encoded = encode(&value).expect("a decoded value encodes");
    let again = decode(&encoded).expect("an encoded value decodes");
    assert_eq!(again, value, "{} changes in a re-encode", std::any::type_name::<T>());
}
