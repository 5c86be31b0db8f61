//! Record-level reads of a v2 record batch, for the few places that need them: produce validation, offsets by
//! timestamp and compaction. The produce/fetch path otherwise moves batches as bytes.
//!
//! Every read is bounded by the bytes of the batch, never by the record count it declares, and a compressed batch
//! is decompressed as a stream that stops at a limit: a small batch that inflates without bound (a decompression
//! bomb) is refused instead of exhausting memory.

use std::io::{self, BufRead, BufReader, Read};

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::batch::{BATCH_HEADER_SIZE, BatchError, RecordBatchHeader};

/// A decoded record (kafka-protocol's `Record`): offset, timestamp, key, value and headers.
pub type RecordView = kafka_protocol::records::Record;

/// The decompressed size any batch may reach, whatever its topic's `max.message.bytes`. Producers bound a batch's
/// compressed size, not its decompressed one (the Java producer fills `batch.size` with compressed bytes), so
/// very compressible data legitimately inflates far beyond the batch; this is well past that and still bounded.
pub const MIN_UNCOMPRESSED_LIMIT_BYTES: usize = 256 << 20;

/// The largest zstd window a batch may ask for (2^27 = 128 MiB, zstd's default decoder limit and the JVM's).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Buffer of the streaming decompressors.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The decompressed-size limit of a batch for a topic whose `max.message.bytes` is `max_message_bytes`.
pub fn uncompressed_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.max(MIN_UNCOMPRESSED_LIMIT_BYTES)
}

/// What a walk over a batch learns of one record (without copying its key, value or headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// The key's length; `-1` for a null key.
    pub key_length: i32,
    /// The value's length; `-1` for a null value (a tombstone).
    pub value_length: i32,
}

/// Reads every record of `batch` (one whole v2 batch, header included; the header already parsed into `header`)
/// and calls `visit` for each, as Kafka's log validator does: the records must be exactly the declared count,
/// with offset deltas 0, 1, 2, … (INVALID_RECORD otherwise), each well formed (CORRUPT_MESSAGE otherwise), and a
/// compressed batch must decompress within `max_uncompressed_bytes` (CORRUPT_MESSAGE otherwise).
pub fn walk_records(
    batch: &[u8],
    header: &RecordBatchHeader,
    max_uncompressed_bytes: usize,
    mut visit: impl FnMut(&RecordInfo) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let records = batch
        .get(BATCH_HEADER_SIZE..header.size_in_bytes())
        .ok_or_else(|| BatchError::Corrupt(format!("a batch of {} bytes is shorter than its header", batch.len())))?;
    let count = header.records_count;
    match header.compression_codec() {
        0 => walk(records, count, &mut visit),
        codec => {
            let reader = decompressing_reader(codec, records, max_uncompressed_bytes)?;
            walk(BufReader::with_capacity(READ_BUFFER_BYTES, reader), count, &mut visit)
        }
    }
}

/// Decodes every record of `batch` (one whole v2 batch), decompressing within `max_uncompressed_bytes`.
pub fn decode_batch_records(batch: &[u8], max_uncompressed_bytes: usize) -> Result<Vec<RecordView>, BatchError> {
    let mut buf = Bytes::copy_from_slice(batch);
    let decompress = |records: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let codec = match compression {
            Compression::None => return Ok(std::mem::take(records)),
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        };
        let mut reader = decompressing_reader(codec, &records[..], max_uncompressed_bytes)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|err| decompression_error(&err))?;
        Ok(Bytes::from(out))
    };
    RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(decompress)).map(|set| set.records).map_err(
        |err| match err.downcast::<BatchError>() {
            Ok(batch_error) => batch_error,
            Err(err) => BatchError::Corrupt(format!("cannot decode the records: {err}")),
        },
    )
}

fn walk<R: BufRead>(
    mut reader: R,
    count: i32,
    visit: &mut impl FnMut(&RecordInfo) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    for index in 0..count {
        let length = match read_varint(&mut reader) {
            Ok(length) => length,
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(BatchError::Invalid(format!("the batch declares {count} records but holds {index}")));
            }
            Err(err) => return Err(read_error(&err)),
        };
        let length = u64::try_from(length)
            .map_err(|_| BatchError::Corrupt(format!("record {index} has a negative length {length}")))?;
        let mut record = (&mut reader).take(length);
        let info = read_record(&mut record).map_err(|err| read_error(&err))?;
        if record.limit() != 0 {
            return Err(BatchError::Corrupt(format!("record {index} is shorter than its length {length}")));
        }
        if info.offset_delta != index {
            return Err(BatchError::Invalid(format!(
                "record {index} has offset delta {}: inner offsets must be incremental",
                info.offset_delta
            )));
        }
        visit(&info)?;
    }
    match reader.fill_buf() {
        Ok([]) => Ok(()),
        Ok(_) => Err(BatchError::Invalid(format!("the batch holds more than the {count} records it declares"))),
        Err(err) => Err(read_error(&err)),
    }
}

/// Reads one record's body (everything after its length), skipping key, value and headers.
fn read_record<R: BufRead>(record: &mut R) -> io::Result<RecordInfo> {
    let mut attributes = [0u8; 1];
    record.read_exact(&mut attributes)?;
    let timestamp_delta = read_varlong(record)?;
    let offset_delta = read_varint(record)?;
    let key_length = read_varint(record)?;
    skip_field(record, key_length, "key")?;
    let value_length = read_varint(record)?;
    skip_field(record, value_length, "value")?;
    let headers = read_varint(record)?;
    if headers < 0 {
        return Err(invalid_data(format!("negative header count {headers}")));
    }
    for _ in 0..headers {
        let key_length = read_varint(record)?;
        if key_length < 0 {
            return Err(invalid_data(format!("negative header key length {key_length}")));
        }
        skip_field(record, key_length, "header key")?;
        let value_length = read_varint(record)?;
        skip_field(record, value_length, "header value")?;
    }
    Ok(RecordInfo { offset_delta, timestamp_delta, key_length, value_length })
}

/// Skips a length-prefixed field; `-1` is null, other negative lengths are invalid.
fn skip_field<R: BufRead>(reader: &mut R, length: i32, what: &str) -> io::Result<()> {
    if length == -1 {
        return Ok(());
    }
    let wanted = u64::try_from(length).map_err(|_| invalid_data(format!("negative {what} length {length}")))?;
    let skipped = io::copy(&mut reader.take(wanted), &mut io::sink())?;
    if skipped != wanted {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{what} cut short")));
    }
    Ok(())
}

/// A zigzag varint of at most 5 bytes (Kafka's `ByteUtils.readVarint`).
fn read_varint<R: Read>(reader: &mut R) -> io::Result<i32> {
    let raw = read_unsigned_varint(reader, 5)?;
    let raw = u32::try_from(raw).map_err(|_| invalid_data("varint overflows 32 bits".into()))?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
fn read_varlong<R: Read>(reader: &mut R) -> io::Result<i64> {
    let raw = read_unsigned_varint(reader, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned_varint<R: Read>(reader: &mut R, max_bytes: u32) -> io::Result<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid_data(format!("varint longer than {max_bytes} bytes")))
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn read_error(err: &io::Error) -> BatchError {
    match err.kind() {
        io::ErrorKind::UnexpectedEof => BatchError::Corrupt("a record is cut short".into()),
        _ => decompression_error(err),
    }
}

fn decompression_error(err: &io::Error) -> BatchError {
    BatchError::Corrupt(format!("cannot read the records: {err}"))
}

/// A reader of the decompressed records of a batch with codec `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd) that
/// fails once more than `limit` bytes come out.
fn decompressing_reader<'a>(codec: i16, compressed: &'a [u8], limit: usize) -> Result<Box<dyn Read + 'a>, BatchError> {
    let corrupt = |err: io::Error| BatchError::Corrupt(format!("cannot decompress the records: {err}"));
    let inner: Box<dyn Read + 'a> = match codec {
        1 => Box::new(flate2::read::GzDecoder::new(compressed)),
        2 => Box::new(SnappyReader::new(compressed, limit)),
        3 => Box::new(lz4::Decoder::new(compressed).map_err(corrupt)?),
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed).map_err(corrupt)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            Box::new(decoder)
        }
        other => return Err(BatchError::Invalid(format!("unknown compression codec {other}"))),
    };
    Ok(Box::new(LimitedReader { inner, left: limit, limit }))
}

/// Passes bytes through until `limit` have come out, then fails if the inner reader has more.
struct LimitedReader<R> {
    inner: R,
    left: usize,
    limit: usize,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(invalid_data(format!("the records decompress to more than {} bytes", self.limit))),
            };
        }
        let wanted = buf.len().min(self.left);
        let read = self.inner.read(&mut buf[..wanted])?;
        self.left -= read;
        Ok(read)
    }
}

/// Kafka's snappy: the xerial framing (a 16-byte header, then blocks each prefixed by its compressed length) that
/// the Java client writes, or one raw snappy block (what some other clients write).
struct SnappyReader<'a> {
    compressed: &'a [u8],
    framed: bool,
    /// The decompressed bytes of the current block not yet read, and where they start.
    block: Vec<u8>,
    position: usize,
    /// Decompressed bytes allowed still: no block may claim more.
    left: usize,
}

const XERIAL_HEADER: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
/// Snappy's densest encoding (a 3-byte copy of 64 bytes) expands about 21 times; a block claiming more than this
/// is not snappy, and its claim must not size an allocation.
const SNAPPY_MAX_EXPANSION: usize = 24;

impl<'a> SnappyReader<'a> {
    fn new(compressed: &'a [u8], limit: usize) -> Self {
        let framed = compressed.len() >= XERIAL_HEADER_BYTES && compressed.starts_with(XERIAL_HEADER);
        let compressed = if framed { &compressed[XERIAL_HEADER_BYTES..] } else { compressed };
        SnappyReader { compressed, framed, block: Vec::new(), position: 0, left: limit }
    }

    /// Decompresses the next block into `self.block`; `false` at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.compressed.is_empty() {
            return Ok(false);
        }
        let block = if self.framed {
            let (length, rest) = self
                .compressed
                .split_first_chunk::<4>()
                .ok_or_else(|| invalid_data("snappy block length cut short".into()))?;
            let length = usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
            let block = rest.get(..length).ok_or_else(|| invalid_data("snappy block cut short".into()))?;
            self.compressed = &rest[length..];
            block
        } else {
            std::mem::take(&mut self.compressed)
        };
        let size = snap::raw::decompress_len(block).map_err(|err| invalid_data(err.to_string()))?;
        if size > self.left || size > block.len().saturating_mul(SNAPPY_MAX_EXPANSION).saturating_add(64) {
            return Err(invalid_data(format!("a snappy block claims {size} bytes, more than it may hold")));
        }
        self.left -= size;
        self.block.clear();
        self.block.resize(size, 0);
        snap::raw::Decoder::new().decompress(block, &mut self.block).map_err(|err| invalid_data(err.to_string()))?;
        self.position = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let available = &self.block[self.position..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    fn record(offset: i64, key: Option<&'static [u8]>, value: Option<Vec<u8>>) -> RecordView {
        RecordView {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder starts a new batch where offset - sequence changes: keep it constant for one batch.
            sequence: i32::try_from(offset - 1).unwrap_or(i32::MAX),
            timestamp: 1_000 + offset,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from),
            headers: Default::default(),
        }
    }

    fn encoded(records: &[RecordView], compression: Compression) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression })
            .expect("encode");
        buf.to_vec()
    }

    fn codecs() -> [Compression; 5] {
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
    }

    #[test]
    fn every_codec_walks_and_decodes() {
        let records: Vec<_> = (0..50).map(|i| record(i, Some(b"key"), Some(vec![b'v'; 100]))).collect();
        for compression in codecs() {
            let batch = encoded(&records, compression);
            let header = RecordBatchHeader::parse(&batch).expect("header");
            let mut seen = Vec::new();
            walk_records(&batch, &header, 1 << 20, |info| {
                seen.push(*info);
                Ok(())
            })
            .unwrap_or_else(|err| panic!("{compression:?}: {err}"));
            assert_eq!(seen.len(), 50, "{compression:?}");
            assert_eq!(seen[7], RecordInfo { offset_delta: 7, timestamp_delta: 7, key_length: 3, value_length: 100 });
            let decoded = decode_batch_records(&batch, 1 << 20).expect("decode");
            assert_eq!(decoded.len(), 50);
            assert_eq!(decoded[49].value.as_deref(), Some(&[b'v'; 100][..]));
        }
    }

    #[test]
    fn a_batch_inflating_past_the_limit_is_corrupt() {
        // 4 MiB of zeros compresses to a few KiB in every codec.
        let records = vec![record(0, None, Some(vec![0; 4 << 20]))];
        for compression in codecs().into_iter().skip(1) {
            let batch = encoded(&records, compression);
            assert!(batch.len() < 300_000, "{compression:?}: {} bytes", batch.len());
            let header = RecordBatchHeader::parse(&batch).expect("header");
            let walked = walk_records(&batch, &header, 1 << 20, |_| Ok(()));
            assert!(matches!(walked, Err(BatchError::Corrupt(_))), "{compression:?}: {walked:?}");
            let decoded = decode_batch_records(&batch, 1 << 20);
            assert!(matches!(decoded, Err(BatchError::Corrupt(_))), "{compression:?}: {decoded:?}");
            assert!(walk_records(&batch, &header, 8 << 20, |_| Ok(())).is_ok(), "{compression:?}");
        }
    }

    /// Sets the declared record count and fixes the CRC.
    fn with_count(mut batch: Vec<u8>, count: i32) -> Vec<u8> {
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[test]
    fn a_declared_count_that_disagrees_with_the_records_is_invalid() {
        let records: Vec<_> = (0..3).map(|i| record(i, None, Some(vec![1]))).collect();
        for compression in codecs() {
            for count in [2, 4, i32::MAX] {
                let batch = with_count(encoded(&records, compression), count);
                let header = RecordBatchHeader::parse(&batch).expect("header");
                let walked = walk_records(&batch, &header, 1 << 20, |_| Ok(()));
                assert!(matches!(walked, Err(BatchError::Invalid(_))), "{compression:?} count {count}: {walked:?}");
                // The declared count never sizes an allocation in the full decoder either.
                let _ = decode_batch_records(&batch, 1 << 20);
            }
        }
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        let batch = encoded(&[record(0, Some(b"k"), Some(vec![7; 10]))], Compression::None);
        for at in BATCH_HEADER_SIZE..batch.len() {
            for byte in [0x00, 0x7f, 0x80, 0xff] {
                let mut broken = batch.clone();
                broken[at] = byte;
                let header = RecordBatchHeader::parse(&broken).expect("header");
                let _ = walk_records(&broken, &header, 1 << 20, |_| Ok(()));
                let _ = decode_batch_records(&broken, 1 << 20);
            }
        }
    }
}
