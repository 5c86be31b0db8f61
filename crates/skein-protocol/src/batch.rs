//! A view over the fixed 61-byte header of a v2 record batch.
//!
//! The broker stores and serves batches as the bytes the producer sent; it only validates the header, checks the
//! CRC-32C and rewrites the fields Kafka's log rewrites on append. Records are never decoded on this path (decoding
//! would cost CPU and, with some codecs, lose details such as repeated header keys).

/// Byte offsets of the header fields (Kafka's `DefaultRecordBatch`).
mod field {
    pub(super) const BASE_OFFSET: usize = 0;
    pub(super) const BATCH_LENGTH: usize = 8;
    pub(super) const PARTITION_LEADER_EPOCH: usize = 12;
    pub(super) const MAGIC: usize = 16;
    pub(super) const CRC: usize = 17;
    pub(super) const ATTRIBUTES: usize = 21;
    pub(super) const LAST_OFFSET_DELTA: usize = 23;
    pub(super) const BASE_TIMESTAMP: usize = 27;
    pub(super) const MAX_TIMESTAMP: usize = 35;
    pub(super) const PRODUCER_ID: usize = 43;
    pub(super) const PRODUCER_EPOCH: usize = 51;
    pub(super) const BASE_SEQUENCE: usize = 53;
    pub(super) const RECORDS_COUNT: usize = 57;
}

/// Size of the v2 batch header; the smallest valid batch.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before (and not counted by) the batch length field.
const LOG_OVERHEAD: usize = 12;
const CURRENT_MAGIC: i8 = 2;

const ATTRIBUTE_COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Why a batch was refused; each maps to the error code Kafka returns for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Size fields disagree with the bytes received, or the CRC does not match: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// A well-formed batch that breaks a rule (magic, record count, control batch from a client): INVALID_RECORD.
    #[error("invalid record batch: {0}")]
    Invalid(String),
}

/// Header fields of one v2 record batch, read from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

impl RecordBatchHeader {
    /// Reads the header at the front of `buf`. `buf` must hold at least [`BATCH_HEADER_SIZE`] bytes and the whole
    /// batch its length field announces; nothing else is checked here.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_SIZE {
            return Err(BatchError::Corrupt(format!(
                "{} bytes is smaller than a batch header ({BATCH_HEADER_SIZE})",
                buf.len()
            )));
        }
        let header = RecordBatchHeader {
            base_offset: read_i64(buf, field::BASE_OFFSET),
            batch_length: read_i32(buf, field::BATCH_LENGTH),
            partition_leader_epoch: read_i32(buf, field::PARTITION_LEADER_EPOCH),
            magic: i8::from_be_bytes([buf[field::MAGIC]]),
            crc: u32::from_be_bytes([buf[field::CRC], buf[field::CRC + 1], buf[field::CRC + 2], buf[field::CRC + 3]]),
            attributes: read_i16(buf, field::ATTRIBUTES),
            last_offset_delta: read_i32(buf, field::LAST_OFFSET_DELTA),
            base_timestamp: read_i64(buf, field::BASE_TIMESTAMP),
            max_timestamp: read_i64(buf, field::MAX_TIMESTAMP),
            producer_id: read_i64(buf, field::PRODUCER_ID),
            producer_epoch: read_i16(buf, field::PRODUCER_EPOCH),
            base_sequence: read_i32(buf, field::BASE_SEQUENCE),
            records_count: read_i32(buf, field::RECORDS_COUNT),
        };
        let total = header.size_in_bytes();
        if header.batch_length < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32 || total > buf.len() {
            return Err(BatchError::Corrupt(format!(
                "batch length {} does not fit the {} bytes received",
                header.batch_length,
                buf.len()
            )));
        }
        Ok(header)
    }

    /// Total bytes of the batch including the offset and length fields.
    pub fn size_in_bytes(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0).saturating_add(LOG_OVERHEAD)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression_codec(&self) -> i16 {
        self.attributes & ATTRIBUTE_COMPRESSION_MASK
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }

    pub fn has_log_append_time(&self) -> bool {
        self.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0
    }
}

/// Validates the single batch a produce request carries for one partition, as Kafka's log validator does for
/// client batches: exactly one v2 batch, consistent sizes, matching CRC-32C, a record count that agrees with the
/// offset range, a known codec, and no control batch.
pub fn validate_client_batch(records: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    if records.len() > field::MAGIC && records[field::MAGIC] as i8 != CURRENT_MAGIC {
        return Err(BatchError::Invalid(format!(
            "produce requests of version 3 and above carry magic v2 batches only, got magic {}",
            records[field::MAGIC] as i8
        )));
    }
    let header = RecordBatchHeader::parse(records)?;
    let size = header.size_in_bytes();
    if size != records.len() {
        return Err(BatchError::Invalid(
            "produce requests of version 3 and above must contain exactly one record batch".into(),
        ));
    }
    let computed = crc32c::crc32c(&records[field::ATTRIBUTES..size]);
    if computed != header.crc {
        return Err(BatchError::Corrupt(format!(
            "CRC-32C mismatch: batch says {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    if header.last_offset_delta < 0 || header.records_count <= 0 {
        return Err(BatchError::Invalid(format!(
            "invalid record count {} with last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
        return Err(BatchError::Invalid(format!(
            "inconsistent batch: last offset delta {} but {} records",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.compression_codec() > 4 {
        return Err(BatchError::Invalid(format!("unknown compression codec {}", header.compression_codec())));
    }
    if header.is_control() {
        return Err(BatchError::Invalid("clients may not write control batches".into()));
    }
    Ok(header)
}

/// Checks one batch a follower received from its leader, as stored there: magic v2, a length that fits `buf`, a
/// matching CRC-32C and a sane offset range. The leader validated its records when it appended them; this guards
/// against damage in between, so a follower never stores bytes its leader did not.
pub fn verify_stored_batch(buf: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    let header = RecordBatchHeader::parse(buf)?;
    if header.magic != CURRENT_MAGIC {
        return Err(BatchError::Invalid(format!("replicated batch has magic {}", header.magic)));
    }
    let size = header.size_in_bytes();
    let computed = crc32c::crc32c(&buf[field::ATTRIBUTES..size]);
    if computed != header.crc {
        return Err(BatchError::Corrupt(format!(
            "CRC-32C mismatch: batch says {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    if header.base_offset < 0 || header.last_offset_delta < 0 {
        return Err(BatchError::Invalid(format!(
            "replicated batch at offset {} with last offset delta {}",
            header.base_offset, header.last_offset_delta
        )));
    }
    Ok(header)
}

/// Rewrites a validated batch for append: the base offset and partition leader epoch (outside the CRC), and for
/// topics with `message.timestamp.type=LogAppendTime` the timestamp type and max timestamp (inside it, so the CRC is
/// recomputed). Returns the bytes to store, as the one copy the storage write takes over.
pub fn rewrite_for_append(
    records: &[u8],
    base_offset: i64,
    partition_leader_epoch: i32,
    log_append_time: Option<i64>,
) -> Vec<u8> {
    let mut buf = records.to_vec();
    buf[field::BASE_OFFSET..field::BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    buf[field::PARTITION_LEADER_EPOCH..field::PARTITION_LEADER_EPOCH + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
    if let Some(now_ms) = log_append_time {
        let attributes = read_i16(&buf, field::ATTRIBUTES) | ATTRIBUTE_LOG_APPEND_TIME;
        buf[field::ATTRIBUTES..field::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        buf[field::MAX_TIMESTAMP..field::MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = crc32c::crc32c(&buf[field::ATTRIBUTES..]);
        buf[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
    buf
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an uncompressed batch of `count` empty-valued records, as a producer would.
    pub(crate) fn sample_batch(count: i32, base_timestamp: i64) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            // record: length, attributes, timestampDelta, offsetDelta, keyLen(-1), valueLen(0), headers(0) as varints
            let body = [0u8, zigzag(i64::from(i)), zigzag(i64::from(i)), 1, 0, 0];
            records.push(zigzag(body.len() as i64));
            records.extend_from_slice(&body);
        }
        let mut batch = Vec::new();
        batch.extend_from_slice(&0i64.to_be_bytes());
        batch.extend_from_slice(&((BATCH_HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
        batch.extend_from_slice(&(-1i32).to_be_bytes());
        batch.push(2);
        batch.extend_from_slice(&[0, 0, 0, 0]);
        batch.extend_from_slice(&0i16.to_be_bytes());
        batch.extend_from_slice(&(count - 1).to_be_bytes());
        batch.extend_from_slice(&base_timestamp.to_be_bytes());
        batch.extend_from_slice(&(base_timestamp + i64::from(count - 1)).to_be_bytes());
        batch.extend_from_slice(&(-1i64).to_be_bytes());
        batch.extend_from_slice(&(-1i16).to_be_bytes());
        batch.extend_from_slice(&(-1i32).to_be_bytes());
        batch.extend_from_slice(&count.to_be_bytes());
        batch.extend_from_slice(&records);
        let crc = crc32c::crc32c(&batch[field::ATTRIBUTES..]);
        batch[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    fn zigzag(value: i64) -> u8 {
        u8::try_from((value << 1) ^ (value >> 63)).expect("small test values")
    }

    #[test]
    fn valid_batch_passes_and_reports_its_fields() {
        let batch = sample_batch(3, 1_700_000_000_000);
        let header = validate_client_batch(&batch).expect("valid");
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.max_timestamp, 1_700_000_000_002);
        assert_eq!(header.size_in_bytes(), batch.len());
    }

    #[test]
    fn crc_mismatch_is_corrupt() {
        let mut batch = sample_batch(2, 0);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(validate_client_batch(&batch), Err(BatchError::Corrupt(_))));
    }

    #[test]
    fn truncated_and_oversized_length_are_corrupt() {
        let batch = sample_batch(2, 0);
        assert!(matches!(validate_client_batch(&batch[..40]), Err(BatchError::Corrupt(_))));
        let mut lying = batch.clone();
        lying[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(validate_client_batch(&lying), Err(BatchError::Corrupt(_))));
        let mut negative = batch;
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(validate_client_batch(&negative), Err(BatchError::Corrupt(_))));
    }

    #[test]
    fn wrong_magic_count_mismatch_and_two_batches_are_invalid() {
        let mut old_magic = sample_batch(1, 0);
        old_magic[field::MAGIC] = 1;
        assert!(matches!(validate_client_batch(&old_magic), Err(BatchError::Invalid(_))));

        let mut two = sample_batch(1, 0);
        two.extend_from_slice(&sample_batch(1, 0));
        assert!(matches!(validate_client_batch(&two), Err(BatchError::Invalid(_))));

        let mut mismatch = sample_batch(2, 0);
        mismatch[field::RECORDS_COUNT..field::RECORDS_COUNT + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&mismatch[field::ATTRIBUTES..]);
        mismatch[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate_client_batch(&mismatch), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn rewrite_sets_offset_and_epoch_and_keeps_crc_valid() {
        let batch = sample_batch(2, 5);
        let stored = rewrite_for_append(&batch, 1000, 7, None);
        let header = RecordBatchHeader::parse(&stored).expect("parse");
        assert_eq!((header.base_offset, header.partition_leader_epoch, header.last_offset()), (1000, 7, 1001));
        assert_eq!(header.crc, crc32c::crc32c(&stored[field::ATTRIBUTES..]));
        assert_eq!(&stored[field::ATTRIBUTES..], &batch[field::ATTRIBUTES..]);

        let stamped = rewrite_for_append(&batch, 0, 0, Some(99));
        let header = RecordBatchHeader::parse(&stamped).expect("parse");
        assert!(header.has_log_append_time());
        assert_eq!(header.max_timestamp, 99);
        assert_eq!(header.crc, crc32c::crc32c(&stamped[field::ATTRIBUTES..]));
    }
}
