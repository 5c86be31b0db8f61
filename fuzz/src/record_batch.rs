//! The `record_batch` target: a v2 record batch as a producer sends it and the log stores it. The header view and
//! client validation (`RecordBatchHeader`, `validate_client_batch`), the append rewrite, and the record readers
//! (`walk_records`, `decode_batch_records`) with a 1 MiB decompression limit, for every codec.
//!
//! This file is also compiled into `crates/skein-protocol/tests/fuzz_regressions.rs` (`#[path]`), so it uses only
//! what skein-protocol's own tests can: `skein_protocol`, `crc32c`.

use skein_protocol::{
    RecordBatchHeader, decode_batch_records, rewrite_for_append, validate_client_batch, walk_records,
};

/// The decompressed bytes a batch may reach here.
pub const MAX_UNCOMPRESSED_BYTES: usize = 1 << 20;

/// Where the CRC-32C sits in a batch and where the bytes it covers begin.
const CRC_AT: usize = 17;
const CRC_COVERS_FROM: usize = 21;

/// The check of one input. Errors are expected (most inputs are malformed); a panic or an abort is the finding.
pub fn check(data: &[u8]) {
    // As received: a random CRC stops most inputs at the CRC check, which is what a corrupt batch meets.
    let _ = validate_client_batch(data);

    // With the CRC made right, so mutations reach every check after it and the record readers.
    let mut batch = data.to_vec();
    if let Some(covered) = batch.get(CRC_COVERS_FROM..) {
        let crc = crc32c::crc32c(covered).to_be_bytes();
        batch[CRC_AT..CRC_COVERS_FROM].copy_from_slice(&crc);
    }
    if let Ok(header) = RecordBatchHeader::parse(&batch) {
        let _ = walk_records(&batch, &header, MAX_UNCOMPRESSED_BYTES, |_| Ok(()));
    }
    if let Ok(header) = validate_client_batch(&batch) {
        assert_eq!(header.size_in_bytes(), batch.len(), "a valid client batch is exactly its bytes");
        check_append_rewrite(&batch, header);
    }
    // The log decodes stored batches (validated on produce, but read back from disk); any bytes must be safe.
    let _ = decode_batch_records(&batch, MAX_UNCOMPRESSED_BYTES);
}

/// What the log stores must still be a valid batch, with the broker's offset, epoch and timestamp.
fn check_append_rewrite(batch: &[u8], header: RecordBatchHeader) {
    let (base_offset, leader_epoch, now_ms) = (1_000_000, 7, 1_700_000_000_000);
    let stored = rewrite_for_append(batch, base_offset, leader_epoch, None);
    let rewritten = validate_client_batch(&stored).expect("a rewritten valid batch stays valid");
    assert_eq!(
        (rewritten.base_offset, rewritten.partition_leader_epoch, rewritten.max_timestamp),
        (base_offset, leader_epoch, header.max_timestamp)
    );
    let stored = rewrite_for_append(batch, base_offset, leader_epoch, Some(now_ms));
    let rewritten = validate_client_batch(&stored).expect("a batch rewritten with LogAppendTime stays valid");
    assert!(rewritten.has_log_append_time());
    assert_eq!((rewritten.base_offset, rewritten.max_timestamp), (base_offset, now_ms));
}
