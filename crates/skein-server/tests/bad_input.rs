//! Bad input on one connection closes that connection only: the broker keeps serving every other client.
//!
//! Each case sends its bytes on a fresh connection while a second client stays connected; that client must get a
//! correct ApiVersions answer afterwards and the broker process must still be running.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafka_protocol::protocol::{Encodable, Request};
use skein_broker::router::SUPPORTED_APIS;
use skein_test_support::requests::{API_VERSIONS_VERSION, METADATA_VERSION, api_versions};
use skein_test_support::{RawClient, TestBroker, encode_request_frame, raw_request_frame};

/// Asserts `client` gets a full, correct ApiVersions answer.
fn assert_api_versions_answered(client: &mut RawClient) {
    let response = api_versions(client, API_VERSIONS_VERSION).expect("ApiVersions answered");
    assert_eq!(response.error_code, 0);
    let listed: Vec<(i16, i16, i16)> =
        response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    let expected: Vec<(i16, i16, i16)> =
        SUPPORTED_APIS.iter().map(|(key, min, max)| (*key as i16, *min, *max)).collect();
    assert_eq!(listed, expected);
}

/// Sends `bytes` on a new connection (then EOF if `then_eof`), asserts the broker closes that connection, and that a
/// client connected before and a client connected after are both served.
fn assert_only_this_connection_closes(bytes: &[u8], then_eof: bool) {
    let mut broker = TestBroker::start().expect("start skein");
    let mut healthy = broker.client().expect("connect healthy client");
    assert_api_versions_answered(&mut healthy);

    let mut bad = broker.client().expect("connect bad client");
    bad.set_read_timeout(Duration::from_secs(10)).expect("set timeout");
    bad.send_raw(bytes).expect("send bad bytes");
    if then_eof {
        bad.shutdown_write().expect("shutdown write");
    }
    assert!(bad.is_closed(), "the broker kept the connection open; log:\n{}", broker.log_tail());

    assert_api_versions_answered(&mut healthy);
    let mut later = broker.client().expect("connect after the bad client");
    assert_api_versions_answered(&mut later);
    assert!(broker.is_running(), "the broker died; log:\n{}", broker.log_tail());
}

fn frame_with_length(length: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = length.to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A Metadata v12 request whose body is cut short: the header is valid, the topics array claims more than is there.
fn metadata_frame_with_malformed_body() -> Vec<u8> {
    // Compact array of 5 topics (length + 1), then nothing.
    let body = [6u8];
    raw_request_frame(MetadataRequest::KEY, METADATA_VERSION, 2, 7, &body).expect("frame")
}

#[test]
fn http_request_instead_of_kafka_closes_the_connection() {
    // "GET " read as a length prefix is 1.19 GB, over socket.request.max.bytes.
    assert_only_this_connection_closes(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", false);
}

#[test]
fn garbage_bytes_close_the_connection() {
    // All 0xff: a negative length prefix.
    assert_only_this_connection_closes(&[0xff; 300], false);
    // A well-sized frame of pseudo-random bytes: its "api key" 187 is no API.
    let garbage: Vec<u8> = (0u32..512).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(&garbage[..2], &[0x00, 0xbb]);
    assert_only_this_connection_closes(&frame_with_length(512, &garbage), false);
}

#[test]
fn truncated_frame_then_eof_closes_the_connection() {
    let full = encode_request_frame(API_VERSIONS_VERSION, 1, &kafka_protocol::messages::ApiVersionsRequest::default())
        .expect("frame");
    assert_only_this_connection_closes(&full[..full.len() - 3], true);
}

#[test]
fn two_gib_length_prefix_closes_the_connection() {
    assert_only_this_connection_closes(&frame_with_length(i32::MAX, b"\x00\x12\x00\x03"), false);
}

#[test]
fn negative_length_closes_the_connection() {
    assert_only_this_connection_closes(&frame_with_length(-1, &[]), false);
    assert_only_this_connection_closes(&frame_with_length(i32::MIN, &[0; 16]), false);
}

#[test]
fn zero_length_closes_the_connection() {
    assert_only_this_connection_closes(&frame_with_length(0, &[]), false);
}

#[test]
fn frame_shorter_than_a_request_header_closes_the_connection() {
    assert_only_this_connection_closes(&frame_with_length(3, &[0, 18, 0]), false);
}

#[test]
fn unknown_api_key_closes_the_connection() {
    let frame = raw_request_frame(9999, 0, 1, 5, &[]).expect("frame");
    assert_only_this_connection_closes(&frame, false);
}

#[test]
fn known_api_served_by_kafka_but_not_by_skein_closes_the_connection() {
    // BrokerHeartbeat (63) is a real Kafka API, served by Kafka's controllers only; Skein's client listener does not
    // list it in ApiVersions.
    assert!(!SUPPORTED_APIS.iter().any(|(key, _, _)| *key == ApiKey::BrokerHeartbeat));
    let frame = raw_request_frame(ApiKey::BrokerHeartbeat as i16, 1, 2, 5, &[0; 32]).expect("frame");
    assert_only_this_connection_closes(&frame, false);
}

#[test]
fn unsupported_version_of_a_known_api_closes_the_connection() {
    let mut body = bytes::BytesMut::new();
    MetadataRequest::default().encode(&mut body, METADATA_VERSION).expect("encode");
    // Metadata v99 with a flexible header (what a newer client would send).
    let frame = raw_request_frame(MetadataRequest::KEY, 99, 2, 5, &body).expect("frame");
    assert_only_this_connection_closes(&frame, false);
    // Fetch v3, below the supported minimum.
    let frame = raw_request_frame(ApiKey::Fetch as i16, 3, 1, 6, &[0; 64]).expect("frame");
    assert_only_this_connection_closes(&frame, false);
}

#[test]
fn malformed_body_after_a_valid_header_closes_the_connection() {
    assert_only_this_connection_closes(&metadata_frame_with_malformed_body(), false);
}

#[test]
fn length_prefix_near_the_limit_does_not_allocate_up_front() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut healthy = broker.client().expect("connect");
    assert_api_versions_answered(&mut healthy);
    let before = (broker.memory_bytes("VmSize").expect("vm size"), broker.memory_bytes("VmRSS").expect("rss"));

    // Ten connections each announce a 100 MB frame (just under socket.request.max.bytes) and send 1 KiB of it.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut client = broker.client().expect("connect");
        client.send_raw(&frame_with_length(104_857_000, &[0u8; 1024])).expect("send");
        stalled.push(client);
    }
    // The broker still serves others while those frames are pending.
    assert_api_versions_answered(&mut healthy);
    let after = (broker.memory_bytes("VmSize").expect("vm size"), broker.memory_bytes("VmRSS").expect("rss"));
    // Allocating the announced 1 GB would show in the virtual size even before any page is touched.
    let virtual_growth = after.0.saturating_sub(before.0);
    let resident_growth = after.1.saturating_sub(before.1);
    eprintln!("memory growth for 10 pending 100 MB frames: virtual {virtual_growth} B, resident {resident_growth} B");
    assert!(virtual_growth < 256 * 1024 * 1024, "virtual memory grew by {virtual_growth} bytes for 10 KiB received");
    assert!(resident_growth < 64 * 1024 * 1024, "resident memory grew by {resident_growth} bytes for 10 KiB received");
    drop(stalled);
    assert_api_versions_answered(&mut healthy);
    assert!(broker.is_running());
}

#[test]
fn many_bad_connections_at_once_leave_the_broker_serving() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut healthy = broker.client().expect("connect");
    assert_api_versions_answered(&mut healthy);

    let truncated = {
        let full =
            encode_request_frame(API_VERSIONS_VERSION, 1, &kafka_protocol::messages::ApiVersionsRequest::default())
                .expect("frame");
        full[..full.len() - 3].to_vec()
    };
    let cases: Vec<(Vec<u8>, bool)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), false),
        (frame_with_length(i32::MAX, &[]), false),
        (frame_with_length(-7, &[]), false),
        (frame_with_length(0, &[]), false),
        (raw_request_frame(9999, 0, 1, 5, &[]).expect("frame"), false),
        (raw_request_frame(MetadataRequest::KEY, 99, 2, 5, &[0]).expect("frame"), false),
        (metadata_frame_with_malformed_body(), false),
        (truncated, true),
    ];
    // Open every bad connection first, then send, so they are all open at the same time.
    let mut bad: Vec<(RawClient, Vec<u8>, bool)> =
        cases.into_iter().map(|(bytes, eof)| (broker.client().expect("connect"), bytes, eof)).collect();
    for (client, bytes, eof) in &mut bad {
        client.send_raw(bytes).expect("send");
        if *eof {
            client.shutdown_write().expect("shutdown write");
        }
    }
    assert_api_versions_answered(&mut healthy);
    for (index, (client, _, _)) in bad.iter_mut().enumerate() {
        client.set_read_timeout(Duration::from_secs(10)).expect("set timeout");
        assert!(client.is_closed(), "bad connection {index} was not closed; log:\n{}", broker.log_tail());
    }
    assert_api_versions_answered(&mut healthy);
    assert!(broker.is_running(), "the broker died; log:\n{}", broker.log_tail());
    let status = broker.stop().expect("stop");
    assert_eq!(status.code(), Some(0), "graceful stop after bad input; log:\n{}", broker.log_tail());
}
