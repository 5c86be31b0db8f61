//! Record batches as a producer sends them (magic 2, built by `kafka-protocol`'s encoder), and the bytes the broker
//! is expected to store and serve for them.

use anyhow::{Context, ensure};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, Record, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

/// Byte range of the base offset in a v2 batch header.
const BASE_OFFSET: std::ops::Range<usize> = 0..8;
/// Byte range of the partition leader epoch in a v2 batch header.
const PARTITION_LEADER_EPOCH: std::ops::Range<usize> = 12..16;

/// One record of a test batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// CreateTime timestamp in milliseconds.
    pub timestamp: i64,
    /// Header keys must be distinct (the encoder keeps them in a map).
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl TestRecord {
    /// A record with a key, a value and a timestamp, no headers.
    pub fn new(key: &[u8], value: &[u8], timestamp: i64) -> Self {
        TestRecord {
            key: Some(Bytes::copy_from_slice(key)),
            value: Some(Bytes::copy_from_slice(value)),
            timestamp,
            headers: Vec::new(),
        }
    }
}

/// One uncompressed batch holding `records`, as a non-idempotent producer sends it (base offset 0, no producer id,
/// base sequence -1).
pub fn record_batch(records: &[TestRecord]) -> anyhow::Result<Bytes> {
    record_batch_compressed(records, Compression::None)
}

/// One batch holding `records`, compressed with `compression`.
pub fn record_batch_compressed(records: &[TestRecord], compression: Compression) -> anyhow::Result<Bytes> {
    ensure!(!records.is_empty(), "a record batch holds at least one record");
    let encoded: Vec<Record> = records
        .iter()
        .zip(0i64..)
        .map(|(record, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder splits batches where offset - sequence changes; offset - 1 keeps them in one batch and
            // makes the base sequence -1 (no sequence), as for a non-idempotent producer.
            sequence: i32::try_from(offset - 1).unwrap_or(i32::MAX),
            timestamp: record.timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record
                .headers
                .iter()
                .map(|(key, value)| (StrBytes::from_string(key.clone()), value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &encoded, &RecordEncodeOptions { version: 2, compression })
        .context("cannot encode the record batch")?;
    Ok(buf.freeze())
}

/// `count` records with keys `key-{i}`, deterministic values of `value_len` bytes and timestamps
/// `base_timestamp + i`.
pub fn simple_records(count: usize, base_timestamp: i64, value_len: usize) -> Vec<TestRecord> {
    (0..count)
        .zip(0i64..)
        .map(|(i, delta)| {
            let value: Vec<u8> = (0..value_len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
            TestRecord::new(format!("key-{i}").as_bytes(), &value, base_timestamp + delta)
        })
        .collect()
}

/// One uncompressed batch of [`simple_records`].
pub fn simple_batch(count: usize, base_timestamp: i64, value_len: usize) -> anyhow::Result<Bytes> {
    record_batch(&simple_records(count, base_timestamp, value_len))
}

/// Byte offsets of v2 batch header fields a producer stamps.
const ATTRIBUTES: std::ops::Range<usize> = 21..23;
const CRC: std::ops::Range<usize> = 17..21;
const PRODUCER_ID: std::ops::Range<usize> = 43..51;
const PRODUCER_EPOCH: std::ops::Range<usize> = 51..53;
const BASE_SEQUENCE: std::ops::Range<usize> = 53..57;
/// The transactional bit of the batch attributes.
const TRANSACTIONAL: i16 = 0x10;

/// A `simple_batch` of `count` records as an idempotent producer sends it: stamped with its producer id, epoch
/// and base sequence (and the transactional bit when `transactional`), CRC recomputed.
pub fn producer_batch(
    count: usize,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> anyhow::Result<Bytes> {
    let mut batch = simple_batch(count, 1_700_000_000_000, 16)?.to_vec();
    if transactional {
        batch[ATTRIBUTES].copy_from_slice(&TRANSACTIONAL.to_be_bytes());
    }
    batch[PRODUCER_ID].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH].copy_from_slice(&epoch.to_be_bytes());
    batch[BASE_SEQUENCE].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES.start..]);
    batch[CRC].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(batch))
}

/// The bytes the broker stores for `batch` appended at `base_offset` under `partition_leader_epoch`: the producer's
/// bytes with those two header fields (outside the CRC) rewritten. CreateTime topics only.
pub fn as_stored(batch: &[u8], base_offset: i64, partition_leader_epoch: i32) -> Vec<u8> {
    let mut stored = batch.to_vec();
    if stored.len() >= PARTITION_LEADER_EPOCH.end {
        stored[BASE_OFFSET].copy_from_slice(&base_offset.to_be_bytes());
        stored[PARTITION_LEADER_EPOCH].copy_from_slice(&partition_leader_epoch.to_be_bytes());
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn record_batch_is_one_batch_that_decodes_to_the_records() {
        let records = vec![
            TestRecord::new(b"a", b"1", 100),
            TestRecord {
                key: None,
                value: None,
                timestamp: 105,
                headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
            },
            TestRecord::new(b"c", b"", 90),
        ];
        let batch = record_batch(&records).expect("encode");
        // One batch: its length field covers every byte after the first 12.
        let length = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
        assert_eq!(usize::try_from(length).expect("positive") + 12, batch.len());
        // No producer id, no sequence: what a plain producer sends.
        assert_eq!(&batch[43..51], &(-1i64).to_be_bytes());
        assert_eq!(&batch[53..57], &(-1i32).to_be_bytes());
        assert_eq!(&batch[57..61], &3i32.to_be_bytes());

        let decoded = RecordBatchDecoder::decode(&mut batch.clone()).expect("decode");
        let got: Vec<(Option<Bytes>, Option<Bytes>, i64, i64)> =
            decoded.records.iter().map(|r| (r.key.clone(), r.value.clone(), r.timestamp, r.offset)).collect();
        let want: Vec<(Option<Bytes>, Option<Bytes>, i64, i64)> =
            records.iter().zip(0..).map(|(r, offset)| (r.key.clone(), r.value.clone(), r.timestamp, offset)).collect();
        assert_eq!(got, want);
        assert_eq!(decoded.records[1].headers.get("h".as_bytes()), Some(&Some(Bytes::from_static(b"x"))));
    }

    #[test]
    fn as_stored_rewrites_only_base_offset_and_leader_epoch() {
        let batch = simple_batch(2, 1000, 4).expect("encode");
        let stored = as_stored(&batch, 42, 7);
        assert_eq!(&stored[0..8], &42i64.to_be_bytes());
        assert_eq!(&stored[12..16], &7i32.to_be_bytes());
        assert_eq!(&stored[8..12], &batch[8..12]);
        assert_eq!(&stored[16..], &batch[16..]);
    }
}
