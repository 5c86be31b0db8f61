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

/// `meta`: the first producer id not yet handed out in a block (ids below it may have been used).
pub const META_PRODUCER_ID_BLOCK_END: &[u8] = b"producer_id_block_end";

/// `meta`: the storage format version.
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
/// `meta`: the cluster id, created on first start.
pub const META_CLUSTER_ID: &[u8] = b"cluster_id";
/// `meta`: the next unused partition id.
pub const META_NEXT_PARTITION_ID: &[u8] = b"next_partition_id";
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

#[cfg(test)]
mod tests {
    use super::*;

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
