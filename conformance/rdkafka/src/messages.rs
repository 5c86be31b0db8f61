//! The deterministic test messages every conformance driver produces and verifies.
//! conformance/common/messages.md is the definition; this is a literal reimplementation.
//! Seeds are below 2^31 and indexes below 2^31, so no arithmetic here can overflow a u64.

pub const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;
pub const PARTITIONS: i32 = 3;
pub const DEFAULT_SEED: u64 = 1;
pub const LARGE_VALUE_BYTES: usize = 2 * 1024 * 1024;

/// One message as it is sent and as it must read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMessage {
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// (name, value) pairs in order; the repeated name "h" is deliberate.
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: i64,
}

pub fn partition(i: u64) -> i32 {
    (i % PARTITIONS as u64) as i32
}

pub fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

pub fn timestamp_ms(i: u64) -> i64 {
    BASE_TIMESTAMP_MS + i as i64
}

pub fn headers(i: u64) -> Vec<(String, Vec<u8>)> {
    vec![
        ("h".to_string(), b"a".to_vec()),
        ("h".to_string(), b"b".to_vec()),
        ("idx".to_string(), i.to_string().into_bytes()),
    ]
}

/// Value length: 0 (an empty value, not null) when i % 97 == 0, else 1..=200.
pub fn value_length(seed: u64, i: u64) -> usize {
    if i.is_multiple_of(97) {
        return 0;
    }
    (1 + (i * 7919 + seed * 13) % 200) as usize
}

/// Value bytes for message i: arbitrary bytes (usually not UTF-8; 0x00 and 0x0A occur).
pub fn value(seed: u64, i: u64) -> Vec<u8> {
    (0..value_length(seed, i) as u64)
        .map(|j| ((seed * 131 + i * 31 + j * j + j * 17) % 256) as u8)
        .collect()
}

/// The 2 MiB value of message-too-large: byte j = j % 251.
pub fn large_value() -> Vec<u8> {
    (0..LARGE_VALUE_BYTES).map(|j| (j % 251) as u8).collect()
}

/// Message i of the roundtrip scenarios.
pub fn roundtrip_message(seed: u64, i: u64) -> TestMessage {
    TestMessage {
        partition: partition(i),
        key: key(i),
        value: value(seed, i),
        headers: headers(i),
        timestamp_ms: timestamp_ms(i),
    }
}

/// Messages per partition, in send order, for the first `count` roundtrip messages.
pub fn roundtrip_messages_by_partition(seed: u64, count: u64) -> Vec<Vec<TestMessage>> {
    let mut by_partition = vec![Vec::new(); PARTITIONS as usize];
    for i in 0..count {
        let message = roundtrip_message(seed, i);
        by_partition[message.partition as usize].push(message);
    }
    by_partition
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The check values published in conformance/common/messages.md (seed 1).
    #[test]
    fn matches_the_published_check_values() {
        assert_eq!(value(1, 0), b"");
        assert_eq!(value_length(1, 1), 133);
        assert_eq!(hex(&value(1, 1)[..10]), "a2b4c8def6102c4a6a8c");
        assert_eq!(value_length(1, 2), 52);
        assert_eq!(hex(&value(1, 2)[..10]), "c1d3e7fd152f4b6989ab");
        assert_eq!(hex(&value(1, 5)), "1e30445a728ca8c6e6");
        assert_eq!(hex(&value(1, 10)), "b9cbdff5");
        assert_eq!(value(1, 97), b"");
        let message = roundtrip_message(1, 10);
        assert_eq!(
            (message.partition, message.key.as_slice()),
            (1, &b"key-10"[..])
        );
        assert_eq!(message.timestamp_ms, 1_700_000_000_010);
    }
}
