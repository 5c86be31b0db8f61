//! The key codec: every key layout in one place. Integers are big-endian so byte order is numeric order and a
//! fetch is a seek. Offsets are never negative in keys.

/// A partition's storage id: a u32 assigned from a counter in `meta` when the partition is created (never reused),
/// so renaming or deleting topics never rewrites log keys.
pub type PartitionId = u32;

/// `log`: partition id (u32 BE) | base offset (i64 BE).
pub fn log_key(partition: PartitionId, base_offset: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(12);
    key.extend_from_slice(&partition.to_be_bytes());
    key.extend_from_slice(&base_offset.to_be_bytes());
    key
}

/// The half-open key range holding all of a partition's batches.
pub fn log_range(partition: PartitionId) -> (Vec<u8>, Vec<u8>) {
    (log_key(partition, 0), log_key(partition, i64::MAX))
}

/// Decodes the base offset from a `log` key.
pub fn log_key_offset(key: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = key.get(4..12)?.try_into().ok()?;
    Some(i64::from_be_bytes(bytes))
}

/// `partition`: partition id (u32 BE).
pub fn partition_key(partition: PartitionId) -> Vec<u8> {
    partition.to_be_bytes().to_vec()
}

/// `partition`: partition id (u32 BE) | leader epoch (u32 BE) → the first offset of that epoch (the leader
/// epoch cache; beside the state key, which is the bare partition id).
pub fn leader_epoch_key(partition: PartitionId, leader_epoch: i32) -> Vec<u8> {
    let mut key = partition_key(partition);
    key.extend_from_slice(&u32::try_from(leader_epoch).unwrap_or(0).to_be_bytes());
    key
}

/// The half-open key range holding a partition's leader epoch cache.
pub fn leader_epoch_range(partition: PartitionId) -> (Vec<u8>, Vec<u8>) {
    let mut to = partition_key(partition);
    to.extend_from_slice(&[0xFF; 5]);
    (leader_epoch_key(partition, 0), to)
}

/// Decodes the leader epoch from a leader epoch cache key.
pub fn leader_epoch_key_epoch(key: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = key.get(4..8)?.try_into().ok()?;
    i32::try_from(u32::from_be_bytes(bytes)).ok()
}

/// `producers`: partition id (u32 BE) | producer id (i64 BE, never negative).
pub fn producer_key(partition: PartitionId, producer_id: i64) -> Vec<u8> {
    log_key(partition, producer_id)
}

/// The half-open key range holding all of a partition's producer states.
pub fn producer_range(partition: PartitionId) -> (Vec<u8>, Vec<u8>) {
    log_range(partition)
}

/// Decodes the producer id from a `producers` key.
pub fn producer_key_id(key: &[u8]) -> Option<i64> {
    log_key_offset(key)
}

/// `aborted_txns`: partition id (u32 BE) | offset of the abort marker (i64 BE).
pub fn aborted_txn_key(partition: PartitionId, marker_offset: i64) -> Vec<u8> {
    log_key(partition, marker_offset)
}

/// The half-open key range holding all of a partition's aborted transactions.
pub fn aborted_txn_range(partition: PartitionId) -> (Vec<u8>, Vec<u8>) {
    log_range(partition)
}

/// `transactions`: the transactional id's UTF-8 bytes (the whole key).
pub fn transaction_key(transactional_id: &str) -> Vec<u8> {
    transactional_id.as_bytes().to_vec()
}

/// `meta`: the first producer id not yet handed out in a block (ids below it may have been used).
pub const META_PRODUCER_ID_BLOCK_END: &[u8] = b"producer_id_block_end";

/// `meta`: the storage format version.
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta`: the cluster id, created on first start.
pub const META_CLUSTER_ID: &[u8] = b"cluster_id";
/// `meta`: the next unused partition id.
pub const META_NEXT_PARTITION_ID: &[u8] = b"next_partition_id";
/// `meta`: the broker settings changed at run time (AlterConfigs on the BROKER resource).
pub const META_DYNAMIC_BROKER_CONFIGS: &[u8] = b"dynamic_broker_configs";
/// `meta`: prefix of topic records, followed by the topic name.
pub const META_TOPIC_PREFIX: &[u8] = b"topic/";
/// `meta`: the end of the topic key range (`'/' + 1`).
pub const META_TOPIC_END: &[u8] = b"topic0";

/// `meta`: the record of one topic.
pub fn topic_key(name: &str) -> Vec<u8> {
    let mut key = META_TOPIC_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// Longest variable-length part (group id, topic name) a key can hold: its length prefix is a u16.
///
/// Callers MUST refuse longer parts before building a key: two parts that agree on their first `u16::MAX` bytes
/// would otherwise get the same key. Group ids are at most [`skein_core::MAX_ID_BYTES`] (32,767) bytes, Kafka's
/// limit on every request string, checked where requests are served and again by the offset store; topic names are
/// at most 249 bytes.
pub const MAX_KEY_PART_BYTES: usize = u16::MAX as usize;

// Every id a request may carry fits a key part.
const _: () = assert!(skein_core::MAX_ID_BYTES <= MAX_KEY_PART_BYTES);

/// Whether `part` fits a key's length-prefixed part ([`MAX_KEY_PART_BYTES`]).
pub fn fits_key_part(part: &str) -> bool {
    part.len() <= MAX_KEY_PART_BYTES
}

/// Appends `bytes` with a u16 BE length prefix, so variable-length parts of a key never run into each other.
///
/// Precondition: `bytes` is at most [`MAX_KEY_PART_BYTES`] long (debug builds assert it). A longer part would be
/// cut to its first `u16::MAX` bytes, so callers refuse it first (see [`fits_key_part`]).
fn push_length_prefixed(key: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(
        bytes.len() <= MAX_KEY_PART_BYTES,
        "a {}-byte key part does not fit its u16 length prefix; it must be refused before a key is built",
        bytes.len()
    );
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

/// `groups`: group id (u16 length | UTF-8 bytes). The group id MUST fit ([`fits_key_part`]).
pub fn group_key(group_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + group_id.len());
    push_length_prefixed(&mut key, group_id.as_bytes());
    key
}

/// `offsets`: group id (u16 length | bytes) | topic (u16 length | bytes) | partition (i32 BE, never negative). Both
/// the group id and the topic MUST fit ([`fits_key_part`]).
pub fn offset_key(group_id: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + group_id.len() + topic.len());
    push_length_prefixed(&mut key, group_id.as_bytes());
    push_length_prefixed(&mut key, topic.as_bytes());
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The half-open `offsets` key range of one group (whose id MUST fit, [`fits_key_part`]). Topic names are at most 249 bytes, so the byte after the group
/// part (the high byte of the topic length) is always 0 and `group part | 0x01` bounds the range.
pub fn offset_group_range(group_id: &str) -> (Vec<u8>, Vec<u8>) {
    let from = group_key(group_id);
    let mut to = from.clone();
    to.push(0x01);
    (from, to)
}

/// The half-open `offsets` key range of one topic within a group (both MUST fit, [`fits_key_part`]).
pub fn offset_topic_range(group_id: &str, topic: &str) -> (Vec<u8>, Vec<u8>) {
    let mut from = group_key(group_id);
    push_length_prefixed(&mut from, topic.as_bytes());
    let mut to = from.clone();
    to.extend_from_slice(&[0xff; 5]);
    (from, to)
}

/// Splits an `offsets` key into (group id, topic, partition).
pub fn decode_offset_key(key: &[u8]) -> Option<(String, String, i32)> {
    let (group, rest) = split_length_prefixed(key)?;
    let (topic, rest) = split_length_prefixed(rest)?;
    let partition: [u8; 4] = rest.try_into().ok()?;
    Some((group, topic, i32::from_be_bytes(partition)))
}

/// `pending_offsets`: group id (u16 length | bytes) | producer id (i64 BE, never negative) | topic (u16 length |
/// bytes) | partition (i32 BE). Both the group id and the topic MUST fit ([`fits_key_part`]).
pub fn pending_offset_key(group_id: &str, producer_id: i64, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + group_id.len() + topic.len());
    push_length_prefixed(&mut key, group_id.as_bytes());
    key.extend_from_slice(&producer_id.to_be_bytes());
    push_length_prefixed(&mut key, topic.as_bytes());
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The half-open `pending_offsets` key range of one group (whose id MUST fit): producer ids are never negative,
/// so the byte after the group part is at most 0x7f and `group part | 0xff` bounds the range.
pub fn pending_offset_group_range(group_id: &str) -> (Vec<u8>, Vec<u8>) {
    let from = group_key(group_id);
    let mut to = from.clone();
    to.push(0xff);
    (from, to)
}

/// Splits a `pending_offsets` key into (group id, producer id, topic, partition).
pub fn decode_pending_offset_key(key: &[u8]) -> Option<(String, i64, String, i32)> {
    let (group, rest) = split_length_prefixed(key)?;
    let producer_id: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let (topic, rest) = split_length_prefixed(rest.get(8..)?)?;
    let partition: [u8; 4] = rest.try_into().ok()?;
    Some((group, i64::from_be_bytes(producer_id), topic, i32::from_be_bytes(partition)))
}

/// Decodes a `groups` key into the group id.
pub fn decode_group_key(key: &[u8]) -> Option<String> {
    match split_length_prefixed(key)? {
        (group, []) => Some(group),
        _ => None,
    }
}

fn split_length_prefixed(bytes: &[u8]) -> Option<(String, &[u8])> {
    let len: [u8; 2] = bytes.get(..2)?.try_into().ok()?;
    let end = 2 + usize::from(u16::from_be_bytes(len));
    let text = String::from_utf8(bytes.get(2..end)?.to_vec()).ok()?;
    Some((text, bytes.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_keys_group_by_group_then_topic_then_partition() {
        let key = offset_key("g", "orders", 7);
        assert_eq!(decode_offset_key(&key), Some(("g".to_string(), "orders".to_string(), 7)));
        let (from, to) = offset_group_range("g");
        assert!(from <= key && key < to);
        // A group whose name extends another's is outside the shorter one's range.
        let longer = offset_key("g2", "orders", 0);
        assert!(!(from <= longer && longer < to));
        let (from, to) = offset_topic_range("g", "orders");
        assert!(from <= key && key < to);
        assert!(!(from <= offset_key("g", "orders2", 0) && offset_key("g", "orders2", 0) < to));
        assert!(offset_key("g", "orders", 1) < offset_key("g", "orders", 2));
        assert_eq!(decode_group_key(&group_key("my-group")), Some("my-group".to_string()));
        assert_eq!(decode_offset_key(&[0, 9, 1]), None);
    }

    #[test]
    fn pending_offset_keys_stay_within_their_group() {
        let key = pending_offset_key("g", i64::MAX, "orders", 7);
        assert_eq!(decode_pending_offset_key(&key), Some(("g".to_string(), i64::MAX, "orders".to_string(), 7)));
        let (from, to) = pending_offset_group_range("g");
        for inside in [key, pending_offset_key("g", 0, "", 0)] {
            assert!(from <= inside && inside < to);
        }
        let longer = pending_offset_key("g2", 0, "orders", 0);
        assert!(!(from <= longer && longer < to));
        assert_eq!(decode_pending_offset_key(&offset_key("g", "orders", 1)), None);
    }

    #[test]
    fn group_ids_that_fit_are_never_cut() {
        // Two ids sharing their first 32,767 bytes (the longest a request may carry) and differing after, and two
        // of the longest length a key part holds: every one gets its own keys, which decode back whole.
        for length in [skein_core::MAX_ID_BYTES, MAX_KEY_PART_BYTES] {
            let shared = "g".repeat(length - 1);
            let (a, b) = (format!("{shared}a"), format!("{shared}b"));
            assert!(fits_key_part(&a) && fits_key_part(&b));
            assert_ne!(group_key(&a), group_key(&b));
            assert_ne!(offset_key(&a, "orders", 0), offset_key(&b, "orders", 0));
            assert_eq!(decode_group_key(&group_key(&a)), Some(a.clone()));
            assert_eq!(decode_offset_key(&offset_key(&b, "orders", 3)), Some((b.clone(), "orders".to_string(), 3)));
            let (from, to) = offset_group_range(&a);
            let other = offset_key(&b, "orders", 0);
            assert!(!(from <= other && other < to), "one group's range holds another's offsets");
        }
        assert!(!fits_key_part(&"g".repeat(MAX_KEY_PART_BYTES + 1)));
    }

    /// Debug builds catch a caller that forgot to refuse a part too long for its prefix (release builds run the
    /// tests without debug assertions, so this one only exists in debug builds).
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "does not fit its u16 length prefix")]
    fn a_part_too_long_for_its_prefix_is_a_bug_caught_in_debug_builds() {
        let _ = group_key(&"g".repeat(MAX_KEY_PART_BYTES + 1));
    }

    #[test]
    fn log_keys_sort_by_partition_then_offset() {
        let mut keys = vec![log_key(2, 0), log_key(1, 300), log_key(1, 5), log_key(1, 1 << 40)];
        keys.sort();
        assert_eq!(keys, vec![log_key(1, 5), log_key(1, 300), log_key(1, 1 << 40), log_key(2, 0)]);
        assert_eq!(log_key_offset(&log_key(7, 123_456)), Some(123_456));
        assert_eq!(log_key_offset(&[0, 1]), None);
        let (from, to) = log_range(1);
        assert!(from <= log_key(1, 0) && log_key(1, i64::MAX - 1) < to && to < log_key(2, 0));
    }

    #[test]
    fn topic_keys_fall_inside_the_topic_range() {
        for name in ["a", "zzz", "A-._9"] {
            let key = topic_key(name);
            assert!(key.as_slice() >= META_TOPIC_PREFIX && key.as_slice() < META_TOPIC_END);
        }
    }
}
