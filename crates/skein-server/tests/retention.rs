//! Retention at the wire level: `retention.ms` moves the log start past batches whose newest record is older than
//! the limit, `retention.bytes` keeps a partition within its limit plus one batch, a fetch below the new start is
//! OFFSET_OUT_OF_RANGE and the earliest offset moves.

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skein_test_support::records::simple_batch;
use skein_test_support::requests::{create_topic, fetch, list_offset, produce};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const EARLIEST: i64 = -2;
/// Retention is checked this often in these tests.
const FAST_RETENTION: &str = "log.retention.check.interval.ms: 200\n";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Waits until the partition's earliest offset is `expected` (bounded).
fn wait_for_log_start(client: &mut RawClient, topic: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let earliest = list_offset(client, topic, 0, EARLIEST).expect("earliest").offset;
        if earliest == expected {
            return;
        }
        assert!(Instant::now() < deadline, "log start is {earliest}, expected {expected}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn time_retention_drops_old_batches_and_keeps_new_ones() {
    let broker = TestBroker::start_with_yaml(FAST_RETENTION).expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "old", 1, &[("retention.ms", "2000")]).expect("create").error_code, NONE);
    // Two batches stamped an hour ago, then one stamped now: offsets 0..3 and 4..5 are expired, 6..7 are not.
    let hour_ago = now_ms() - 3_600_000;
    for (count, timestamp) in [(4, hour_ago), (2, hour_ago), (2, now_ms())] {
        let batch = simple_batch(count, timestamp, 10).expect("batch");
        assert_eq!(produce(&mut client, "old", 0, batch, -1).expect("produce").error_code, NONE);
    }
    wait_for_log_start(&mut client, "old", 6);
    assert_eq!(fetch(&mut client, "old", 0, 0).expect("fetch").error_code, OFFSET_OUT_OF_RANGE);
    let kept = fetch(&mut client, "old", 0, 6).expect("fetch");
    assert_eq!((kept.error_code, kept.log_start_offset, kept.high_watermark), (NONE, 6, 8));
    // A topic without a time limit keeps everything.
    assert_eq!(create_topic(&mut client, "forever", 1, &[("retention.ms", "-1")]).expect("create").error_code, NONE);
    let batch = simple_batch(3, hour_ago, 10).expect("batch");
    assert_eq!(produce(&mut client, "forever", 0, batch, -1).expect("produce").error_code, NONE);
    thread::sleep(Duration::from_millis(800));
    assert_eq!(list_offset(&mut client, "forever", 0, EARLIEST).expect("earliest").offset, 0);
}

#[test]
fn size_retention_keeps_a_partition_within_its_limit() {
    let broker = TestBroker::start_with_yaml(FAST_RETENTION).expect("start skein");
    let mut client = broker.client().expect("connect");
    let batch = simple_batch(10, now_ms(), 1_000).expect("batch");
    let batch_bytes = batch.len();
    // Room for three batches.
    let limit = (3 * batch_bytes).to_string();
    let configs = [("retention.bytes", limit.as_str()), ("retention.ms", "-1")];
    assert_eq!(create_topic(&mut client, "sized", 1, &configs).expect("create").error_code, NONE);
    for _ in 0..40 {
        let batch = simple_batch(10, now_ms(), 1_000).expect("batch");
        assert_eq!(produce(&mut client, "sized", 0, batch, -1).expect("produce").error_code, NONE);
    }
    // 40 batches of 10 records: the newest three stay, so the log starts at offset 370.
    wait_for_log_start(&mut client, "sized", 370);
    let kept = fetch(&mut client, "sized", 0, 370).expect("fetch");
    assert_eq!((kept.error_code, kept.high_watermark), (NONE, 400));
    assert!(kept.records.as_ref().map_or(0, |r| r.len()) <= 3 * batch_bytes);
}
