//! Inputs of the micro-benchmarks of the broker's hot paths (`benches/hot_paths.rs`): a produce request and a
//! fetch response as clients send and receive them, built by the codec, and a partition log on RocksDB in a
//! temporary directory. The benchmarks time the broker's own functions on them; the tests below check that the
//! inputs are what they claim to be.

use std::sync::Arc;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use skein_core::types::TopicPartition;
use skein_log::{AppendRequest, PartitionLog, append_batches};
use skein_protocol::batch::validate_client_batch;
use skein_storage::{Durability, Engine, RocksEngine, StoreBatch};

/// Records in each produced batch.
pub const RECORDS_PER_BATCH: usize = 16;
/// Value size of each record.
pub const VALUE_BYTES: usize = 1024;
/// The Produce version clients send today (flexible, by topic name).
pub const PRODUCE_VERSION: i16 = 9;
/// The Fetch version of the response benchmark (flexible, by topic name).
pub const FETCH_VERSION: i16 = 12;

/// One batch as a producer sends it: [`RECORDS_PER_BATCH`] records of [`VALUE_BYTES`] each, compressed with
/// `compression`.
pub fn produce_batch_compressed(compression: Compression) -> anyhow::Result<Bytes> {
    let records = skein_test_support::records::simple_records(RECORDS_PER_BATCH, 1_700_000_000_000, VALUE_BYTES);
    skein_test_support::records::record_batch_compressed(&records, compression)
}

/// [`produce_batch_compressed`] uncompressed.
pub fn produce_batch() -> anyhow::Result<Bytes> {
    produce_batch_compressed(Compression::None)
}

/// A Produce request frame as the broker reads it off the socket (header and body, no length prefix), carrying
/// `batch` for partition 0 of topic `bench`, acks=all.
pub fn produce_request_frame(batch: Bytes) -> anyhow::Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("micro-bench")));
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch))]),
    ]);
    let mut frame = BytesMut::new();
    header.encode(&mut frame, ApiKey::Produce.request_header_version(PRODUCE_VERSION)).context("request header")?;
    request.encode(&mut frame, PRODUCE_VERSION).context("produce request")?;
    Ok(frame.freeze())
}

/// A Fetch response with `partitions` partitions of topic `bench`, each serving `records`.
pub fn fetch_response(partitions: i32, records: &Bytes) -> FetchResponse {
    let served = (0..partitions)
        .map(|index| {
            PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(1_000_000)
                .with_last_stable_offset(1_000_000)
                .with_log_start_offset(0)
                .with_records(Some(records.clone()))
        })
        .collect();
    FetchResponse::default().with_responses(vec![
        FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("bench")))
            .with_partitions(served),
    ])
}

/// `count` produce batches back to back, as a fetch response carries them (base offsets as stored do not matter
/// to the encoder).
pub fn concatenated(batch: &Bytes, count: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(batch.len() * count);
    for _ in 0..count {
        out.put_slice(batch);
    }
    out.freeze()
}

/// One partition's log on RocksDB (the broker's engine, default settings) in a temporary directory, outside any
/// cluster: every record is committed once written.
pub struct StoredPartition {
    pub engine: Arc<dyn Engine>,
    pub log: Arc<PartitionLog>,
    _dir: tempfile::TempDir,
}

impl StoredPartition {
    pub fn create() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(dir.path()).context("open RocksDB")?);
        let mut setup = StoreBatch::default();
        let log =
            PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("bench", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).context("create the partition")?;
        Ok(StoredPartition { engine, log, _dir: dir })
    }

    /// Appends `batch` as the produce path does (the broker's default durability) and returns its base offset.
    pub async fn append(&self, batch: Bytes) -> anyhow::Result<i64> {
        let header = validate_client_batch(&batch).context("validate the batch")?;
        let request = AppendRequest { log: Arc::clone(&self.log), records: batch, header, log_append_time: None };
        let mut results =
            append_batches(&self.engine, vec![request], Durability::ProcessCrash, 0).await.context("append")?;
        let appended = results.pop().context("no append result")?.context("append refused")?;
        Ok(appended.base_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;
    use skein_log::Isolation;
    use skein_protocol::batch::RecordBatchHeader;
    use skein_protocol::header::{decode_request_frame, encode_response};

    #[test]
    fn the_produce_frame_decodes_to_its_batch() -> anyhow::Result<()> {
        let batch = produce_batch()?;
        let header = validate_client_batch(&batch)?;
        assert_eq!(header.records_count, i32::try_from(RECORDS_PER_BATCH)?);
        assert!(batch.len() > RECORDS_PER_BATCH * VALUE_BYTES);

        let frame = decode_request_frame(produce_request_frame(batch.clone())?)?;
        assert_eq!((frame.api_key, frame.api_version, frame.correlation_id), (0, PRODUCE_VERSION, 7));
        let mut body = frame.body;
        let request = ProduceRequest::decode(&mut body, PRODUCE_VERSION)?;
        let records = request.topic_data[0].partition_data[0].records.clone();
        assert_eq!(records, Some(batch));
        Ok(())
    }

    #[test]
    fn the_fetch_response_encodes_every_partition() -> anyhow::Result<()> {
        let records = concatenated(&produce_batch()?, 4);
        let encoded = encode_response(9, 1, &fetch_response(8, &records), FETCH_VERSION)?;
        let length = usize::try_from(i32::from_be_bytes(encoded[..4].try_into()?))?;
        assert_eq!(length, encoded.len() - 4);
        let mut body = encoded.slice(4..);
        kafka_protocol::messages::ResponseHeader::decode(&mut body, 1)?;
        let decoded = FetchResponse::decode(&mut body, FETCH_VERSION)?;
        let partitions = &decoded.responses[0].partitions;
        assert_eq!(partitions.len(), 8);
        assert!(partitions.iter().all(|p| p.records.as_ref() == Some(&records)));
        Ok(())
    }

    #[tokio::test]
    async fn the_stored_partition_appends_and_reads_back() -> anyhow::Result<()> {
        let stored = StoredPartition::create()?;
        let batch = produce_batch()?;
        assert_eq!(stored.append(batch.clone()).await?, 0);
        assert_eq!(stored.append(batch.clone()).await?, i64::try_from(RECORDS_PER_BATCH)?);
        stored.engine.flush()?;

        let read = stored.log.read(0, 1 << 20, true, Isolation::ReadUncommitted).await?;
        assert_eq!(read.records.len(), 2 * batch.len());
        let second = RecordBatchHeader::parse(&read.records[batch.len()..])?;
        assert_eq!(second.base_offset, i64::try_from(RECORDS_PER_BATCH)?);
        // Past the offsets the append rewrote, the stored batch is the produced one byte for byte.
        assert_eq!(read.records[16..batch.len()], batch[16..]);
        Ok(())
    }
}
