//! Limits that keep one client from exhausting the broker: idle connections closed after
//! `connections.max.idle.ms`, `max.connections` and `max.connections.per.ip` refusing at once, and record batches
//! whose records disagree with their header or inflate past the decompression limit refused without a write.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::TransactionalId;
use kafka_protocol::protocol::StrBytes;
use skein_test_support::requests::{
    API_VERSIONS_VERSION, PRODUCE_VERSION, api_versions, create_topic, fetch, produce, produce_request,
};
use skein_test_support::{RawClient, TestBroker, TestRecord, record_batch};

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;
const POLICY_VIOLATION: i16 = 44;

fn assert_served(client: &mut RawClient) {
    let response = api_versions(client, API_VERSIONS_VERSION).expect("ApiVersions answered");
    assert_eq!(response.error_code, 0);
}

#[test]
fn idle_connections_are_closed_and_busy_ones_kept() {
    let broker = TestBroker::start_with_yaml("connections.max.idle.ms: 1500\n").expect("start skein");
    let mut idle = broker.client().expect("connect");
    assert_served(&mut idle);
    let mut busy = broker.client().expect("connect");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3_000) {
        assert_served(&mut busy);
        std::thread::sleep(Duration::from_millis(300));
    }
    idle.set_read_timeout(Duration::from_secs(5)).expect("timeout");
    assert!(idle.is_closed(), "an idle connection stayed open; log:\n{}", broker.log_tail());
    assert_served(&mut busy);

    // A frame whose body stops arriving is idle too.
    let mut stalled = broker.client().expect("connect");
    stalled.send_raw(&100i32.to_be_bytes()).expect("send a length prefix only");
    stalled.set_read_timeout(Duration::from_secs(5)).expect("timeout");
    assert!(stalled.is_closed(), "a stalled frame kept its connection; log:\n{}", broker.log_tail());
}

#[test]
fn connections_over_the_per_address_limit_are_refused_at_once() {
    let broker = TestBroker::start_with_yaml("max.connections.per.ip: 3\n").expect("start skein");
    let mut admitted: Vec<RawClient> = (0..3).map(|_| served_client(&broker)).collect();
    let mut extra = broker.client().expect("the TCP connect itself succeeds");
    extra.set_read_timeout(Duration::from_secs(5)).expect("timeout");
    assert!(extra.is_closed(), "a fourth connection from 127.0.0.1 was kept");
    assert!(broker.log_tail().contains("max.connections.per.ip=3"), "no log line:\n{}", broker.log_tail());

    // A freed place is taken again.
    drop(admitted.pop());
    let _again = served_client(&broker);
    for client in &mut admitted {
        assert_served(client);
    }
}

/// A connection that got an answer: the start-up probe's connection may hold a place for a moment after it
/// closed, so a refusal right after start is retried.
fn served_client(broker: &TestBroker) -> RawClient {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = broker.client().expect("connect");
        client.set_read_timeout(Duration::from_secs(2)).expect("timeout");
        if api_versions(&mut client, API_VERSIONS_VERSION).is_ok() {
            return client;
        }
        assert!(Instant::now() < deadline, "no connection was admitted; log:\n{}", broker.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn connections_over_max_connections_are_refused_at_once() {
    let broker = TestBroker::start_with_yaml("max.connections: 2\n").expect("start skein");
    let mut first = served_client(&broker);
    let _second = served_client(&broker);
    let mut third = broker.client().expect("connect");
    third.set_read_timeout(Duration::from_secs(5)).expect("timeout");
    assert!(third.is_closed(), "a third connection was kept with max.connections=2");
    assert_served(&mut first);
}

/// Sets a batch's declared record count (and last offset delta, so the header stays self-consistent) and fixes
/// its CRC-32C.
fn with_declared_count(batch: &Bytes, count: i32) -> Bytes {
    let mut bytes = batch.to_vec();
    bytes[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    bytes[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// A zstd batch of one record whose value is `value_len` zero bytes, compressed as a stream (never held whole).
fn zstd_bomb(value_len: usize) -> Bytes {
    fn varint(value: i64, out: &mut Vec<u8>) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        while zigzag >= 0x80 {
            out.push((zigzag as u8) | 0x80);
            zigzag >>= 7;
        }
        out.push(zigzag as u8);
    }
    // The record after its length: attributes, timestamp delta, offset delta, null key, value length.
    let mut head = vec![0u8, 0, 0];
    varint(-1, &mut head);
    varint(value_len as i64, &mut head);
    let body_len = head.len() + value_len + 1; // + the header count
    let mut record = Vec::new();
    varint(body_len as i64, &mut record);
    record.extend_from_slice(&head);
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd encoder");
    encoder.write_all(&record).expect("compress");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..value_len / zeros.len() {
        encoder.write_all(&zeros).expect("compress");
    }
    encoder.write_all(&zeros[..value_len % zeros.len()]).expect("compress");
    encoder.write_all(&[0]).expect("compress");
    let compressed = encoder.finish().expect("finish");

    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&((49 + compressed.len()) as i32).to_be_bytes()); // batch length
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // CRC, set below
    batch.extend_from_slice(&4i16.to_be_bytes()); // attributes: zstd
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // records
    batch.extend_from_slice(&compressed);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

#[test]
fn batches_whose_records_break_their_header_are_refused_and_not_written() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let created = create_topic(&mut client, "checked", 1, &[]).expect("create");
    assert_eq!(created.error_code, 0);
    let records: Vec<TestRecord> = (0..3).map(|i| TestRecord::new(b"k", &[i; 10], 1_700_000_000_000)).collect();
    let batch = record_batch(&records).expect("batch");

    for count in [2, 4, 1_000_000] {
        let answer = produce(&mut client, "checked", 0, with_declared_count(&batch, count), -1).expect("produce");
        assert_eq!(answer.error_code, INVALID_RECORD, "declared {count} records of 3");
    }

    // 300 MiB of zeros in a few hundred KiB: past the 256 MiB limit, so the batch is corrupt and nothing is kept.
    let bomb = zstd_bomb(300 << 20);
    assert!(bomb.len() < 1 << 20, "the bomb is {} bytes", bomb.len());
    let rss_before = broker.memory_bytes("VmRSS").expect("rss");
    let answer = produce(&mut client, "checked", 0, bomb, -1).expect("produce");
    assert_eq!(answer.error_code, CORRUPT_MESSAGE);
    let rss_after = broker.memory_bytes("VmRSS").expect("rss");
    assert!(
        rss_after < rss_before + (64 << 20),
        "RSS grew from {rss_before} to {rss_after} bytes reading a decompression bomb"
    );

    // Nothing of the refused batches was written; a good batch still lands at offset 0.
    let answer = produce(&mut client, "checked", 0, batch, -1).expect("produce");
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    let fetched = fetch(&mut client, "checked", 0, 0).expect("fetch");
    assert_eq!(fetched.high_watermark, 3);
}

#[test]
fn a_request_for_billions_of_partitions_is_refused_as_kafka_refuses_it() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let rss_before = broker.memory_bytes("VmRSS").expect("rss");
    let refused = create_topic(&mut client, "huge", i32::MAX, &[]).expect("create");
    assert_eq!(refused.error_code, POLICY_VIOLATION);
    let message = refused.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("Excessively large number of partitions per request."), "{message}");
    let created = create_topic(&mut client, "fits", 10_000, &[]).expect("create");
    assert_eq!(created.error_code, 0);
    let rss_after = broker.memory_bytes("VmRSS").expect("rss");
    assert!(rss_after < rss_before + (256 << 20), "RSS grew from {rss_before} to {rss_after} bytes");
}

#[test]
fn a_produce_with_a_transactional_id_longer_than_a_request_string_closes_the_connection() {
    // Kafka's parser refuses every request string over 32,767 bytes and closes the connection.
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "txn-id", 1, &[]).expect("create").error_code, 0);
    let records: Vec<TestRecord> = vec![TestRecord::new(b"k", b"v", 1_700_000_000_000)];
    let long_id = TransactionalId(StrBytes::from_string("t".repeat(40_000)));
    let request =
        produce_request("txn-id", 0, record_batch(&records).expect("batch"), -1).with_transactional_id(Some(long_id));
    let _ = client.send(PRODUCE_VERSION, &request).expect("send");
    client.set_read_timeout(Duration::from_secs(5)).expect("timeout");
    assert!(client.is_closed(), "the connection stayed open");
    assert_served(&mut broker.client().expect("connect"));
}
