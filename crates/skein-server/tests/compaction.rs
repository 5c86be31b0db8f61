//! Log compaction at the wire level: a compacted topic keeps the latest value of each key at its original offset,
//! and a consumer reading from the start sees exactly those.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use skein_test_support::records::{TestRecord, record_batch};
use skein_test_support::requests::{create_topic, fetch, produce};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const KEYS: usize = 10;
const UPDATES_PER_KEY: usize = 20;

/// (offset, key, value) of every record in partition 0 from offset 0.
fn read_all(client: &mut RawClient) -> Vec<(i64, String, String)> {
    let partition = fetch(client, "compacted", 0, 0).expect("fetch");
    assert_eq!(partition.error_code, NONE);
    let mut records: Bytes = partition.records.unwrap_or_default();
    let mut out = Vec::new();
    while !records.is_empty() {
        let set = RecordBatchDecoder::decode(&mut records).expect("decode");
        for record in set.records {
            let text = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            out.push((record.offset, text(record.key), text(record.value)));
        }
    }
    out
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_each_key_at_its_offset() {
    let broker = TestBroker::start_with_yaml("log.cleaner.backoff.ms: 200\n").expect("start skein");
    let mut client = broker.client().expect("connect");
    let configs = [("cleanup.policy", "compact"), ("min.cleanable.dirty.ratio", "0.01")];
    assert_eq!(create_topic(&mut client, "compacted", 1, &configs).expect("create").error_code, NONE);
    // Update i sets key-(i % KEYS) to value-i, one batch per round of keys.
    for round in 0..UPDATES_PER_KEY {
        let records: Vec<TestRecord> = (0..KEYS)
            .map(|k| {
                let i = round * KEYS + k;
                TestRecord::new(format!("key-{k}").as_bytes(), format!("value-{i}").as_bytes(), 1_700_000_000_000)
            })
            .collect();
        let batch = record_batch(&records).expect("batch");
        assert_eq!(produce(&mut client, "compacted", 0, batch, -1).expect("produce").error_code, NONE);
    }
    let expected: Vec<(i64, String, String)> = (0..KEYS)
        .map(|k| {
            let i = (UPDATES_PER_KEY - 1) * KEYS + k;
            (i as i64, format!("key-{k}"), format!("value-{i}"))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = read_all(&mut client);
        if now.len() == KEYS {
            assert_eq!(now, expected);
            break;
        }
        assert!(Instant::now() < deadline, "not compacted: {} records left", now.len());
        thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = broker.http_get("/metrics").expect("metrics");
    assert_eq!(status, 200);
    let removed = (KEYS * (UPDATES_PER_KEY - 1)).to_string();
    assert!(body.lines().any(|l| l == format!("skein_cleaner_records_removed_total {removed}")), "{body}");
    let runs = body
        .lines()
        .find_map(|l| l.strip_prefix("skein_cleaner_runs_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(runs >= 1, "no cleaner run counted:\n{body}");
    assert!(
        body.lines().any(|l| l.starts_with("skein_partition_disk_bytes{partition=\"0\",topic=\"compacted\"} ")),
        "{body}"
    );
}
