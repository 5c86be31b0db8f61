//! Transaction markers: the control batches that end a transaction in a partition (Kafka's COMMIT and ABORT
//! markers), encoded with the codec's record batch encoder.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// The control record type of a marker (the key's second field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    Abort = 0,
    Commit = 1,
}

/// One marker batch for `producer_id`/`producer_epoch`, offset 0 (the log assigns the real offset on append).
/// Key: version 0 (i16) and the marker type (i16); value: version 0 (i16) and the coordinator epoch (i32).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: MarkerType,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Result<Bytes, String> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(marker as i16).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, [&record], &options).map_err(|err| err.to_string())?;
    Ok(buf.freeze())
}

/// The marker type of a control batch (its first record's key: version, then type), `None` when the batch holds
/// no readable marker.
pub fn marker_type_of(batch: &[u8]) -> Option<MarkerType> {
    let records = crate::decode_batch_records(batch, 1 << 16).ok()?;
    let key = records.first()?.key.as_ref()?;
    match i16::from_be_bytes([*key.get(2)?, *key.get(3)?]) {
        0 => Some(MarkerType::Abort),
        1 => Some(MarkerType::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordBatchHeader;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn markers_are_transactional_control_batches_with_kafkas_layout() {
        let batch = marker_batch(42, 3, MarkerType::Commit, 0, 1_700_000_000_000).expect("encode");
        let header = RecordBatchHeader::parse(&batch).expect("header");
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (42, 3, -1));
        assert_eq!((header.records_count, header.last_offset_delta), (1, 0));
        let mut buf = batch.clone();
        let decoded = RecordBatchDecoder::decode(&mut buf).expect("decode");
        let record = &decoded.records[0];
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 0][..]));
        assert_eq!(marker_type_of(&batch), Some(MarkerType::Commit));
        assert_eq!(crate::verify_stored_batch(&batch).map(|h| h.producer_id), Ok(42));
        let abort = marker_batch(42, 3, MarkerType::Abort, 0, 0).expect("encode");
        assert_eq!(marker_type_of(&abort), Some(MarkerType::Abort));
        let mut buf = abort.clone();
        assert_eq!(
            RecordBatchDecoder::decode(&mut buf).expect("decode").records[0].key.as_deref(),
            Some(&[0u8, 0, 0, 0][..])
        );
    }
}
