//! Micro-benchmarks of the broker's hot paths, so a regression shows in the change that causes it:
//! `cargo bench -p skein-micro-bench` (criterion keeps the last run in target/criterion and reports the change
//! against it). `cargo test` runs each once, as a check that it still works.
//!
//! - request decode: a Produce frame's header and body, as the connection task and the handler decode them;
//! - response encode: a Fetch response of 8 partitions × 256 KiB, as the connection task frames it;
//! - batch validation: the CRC and header checks, the walk over every record, and the rewrite for append that the
//!   produce path runs on each batch (uncompressed and LZ4);
//! - storage: appending a batch to a partition log on RocksDB, and reading back from the blob files 1 MiB and the
//!   newest batch alone.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::Compression;
use skein_log::Isolation;
use skein_micro_bench::{
    FETCH_VERSION, PRODUCE_VERSION, RECORDS_PER_BATCH, StoredPartition, concatenated, fetch_response, produce_batch,
    produce_batch_compressed, produce_request_frame,
};
use skein_protocol::{decode_request_frame, encode_response, rewrite_for_append, validate_client_batch, walk_records};

/// A fixture that cannot be built is a broken benchmark: fail loudly.
fn fixture<T>(what: &str, built: anyhow::Result<T>) -> T {
    match built {
        Ok(value) => value,
        Err(err) => panic!("cannot build {what}: {err:#}"),
    }
}

fn bytes_throughput(len: usize) -> Throughput {
    Throughput::Bytes(u64::try_from(len).unwrap_or(u64::MAX))
}

fn request_decode(c: &mut Criterion) {
    let frame = fixture("the produce frame", produce_batch().and_then(produce_request_frame));
    let mut group = c.benchmark_group("request_decode");
    group.throughput(bytes_throughput(frame.len()));
    group.bench_function("produce_v9_16x1KiB", |b| {
        b.iter(|| {
            let decoded = decode_request_frame(black_box(frame.clone()))
                .map(|mut frame| ProduceRequest::decode(&mut frame.body, PRODUCE_VERSION).is_ok());
            black_box(decoded.is_ok_and(|body_decoded| body_decoded))
        });
    });
    group.finish();
}

fn response_encode(c: &mut Criterion) {
    let batch = fixture("the batch", produce_batch());
    let records = concatenated(&batch, (256 * 1024) / batch.len());
    let response = fetch_response(8, &records);
    let mut group = c.benchmark_group("response_encode");
    group.throughput(bytes_throughput(8 * records.len()));
    group.bench_function("fetch_v12_8x256KiB", |b| {
        b.iter(|| black_box(encode_response(7, 1, black_box(&response), FETCH_VERSION).map(|frame| frame.len())));
    });
    group.finish();
}

fn batch_validation(c: &mut Criterion) {
    let plain = fixture("the batch", produce_batch());
    let lz4 = fixture("the LZ4 batch", produce_batch_compressed(Compression::Lz4));

    let mut group = c.benchmark_group("batch_validation");
    group.throughput(bytes_throughput(plain.len()));
    group.bench_function("validate_client_batch_16x1KiB", |b| {
        b.iter(|| black_box(validate_client_batch(black_box(&plain)).is_ok()));
    });
    for (name, batch) in [("walk_records_16x1KiB", &plain), ("walk_records_lz4_16x1KiB", &lz4)] {
        let header = fixture("the header", validate_client_batch(batch).map_err(anyhow::Error::from));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut values = 0usize;
                let walked = walk_records(black_box(batch), &header, 1 << 20, |record| {
                    values += usize::try_from(record.value_length).unwrap_or(0);
                    Ok(())
                });
                black_box((walked.is_ok(), values))
            });
        });
    }
    group.bench_function("rewrite_for_append_16x1KiB", |b| {
        b.iter(|| black_box(rewrite_for_append(black_box(&plain), 1234, 3, None).len()));
    });
    group.finish();
}

fn storage(c: &mut Criterion) {
    let runtime = fixture(
        "the runtime",
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().map_err(Into::into),
    );
    let stored = fixture("the partition", StoredPartition::create());
    let batch = fixture("the batch", produce_batch());

    let mut group = c.benchmark_group("storage");
    group.throughput(bytes_throughput(batch.len()));
    group.bench_function("append_16x1KiB", |b| {
        b.iter_batched(
            || batch.clone(),
            |batch| black_box(runtime.block_on(stored.append(batch)).is_ok()),
            BatchSize::SmallInput,
        );
    });

    // 1 MiB read back from blob files: a fresh partition filled with 64 batches, flushed.
    let filled = fixture("the read partition", StoredPartition::create());
    let appended: anyhow::Result<()> = runtime.block_on(async {
        for _ in 0..64 {
            filled.append(batch.clone()).await?;
        }
        filled.engine.flush()?;
        Ok(())
    });
    fixture("the filled partition", appended);
    let read_bytes = 1 << 20;
    group.throughput(bytes_throughput(read_bytes));
    group.bench_function("read_1MiB", |b| {
        b.iter(|| {
            let read = runtime.block_on(filled.log.read(0, read_bytes, true, Isolation::ReadUncommitted));
            black_box(read.map(|read| read.records.len()).unwrap_or(0))
        });
    });
    // A consumer near the log end: a fetch from inside the newest batch returns that batch alone.
    let inside_newest = i64::try_from(63 * RECORDS_PER_BATCH + RECORDS_PER_BATCH / 2).unwrap_or(i64::MAX);
    group.throughput(bytes_throughput(batch.len()));
    group.bench_function("read_newest_batch", |b| {
        b.iter(|| {
            let read = runtime.block_on(filled.log.read(inside_newest, read_bytes, true, Isolation::ReadUncommitted));
            black_box(read.map(|read| read.records.len()).unwrap_or(0))
        });
    });
    group.finish();
}

criterion_group!(benches, request_decode, response_encode, batch_validation, storage);
criterion_main!(benches);
