//! The committed seed corpus, `fuzz/corpus/<target>/`: well-formed inputs the fuzzer mutates from, so it starts
//! past the length, CRC and version checks. Regenerate (after a codec or `SERVED_APIS` change) with
//! `cargo test --manifest-path fuzz/Cargo.toml --lib -- --ignored write_seed_corpus`.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use skein_storage::{
    AbortedTxn, ClassicMemberRecord, CommittedOffset, ConsumerGroupRecord, ConsumerMemberRecord,
    ConsumerMemberStateRecord, DynamicBrokerConfigsRecord, GroupRecord, GroupType, PartitionState, PendingOffset,
    ProducerBatch, ProducerState, SubscribedTopicRecord, TopicPartitionsRecord, TopicRecord, TxnRecord, TxnState, keys,
};

use crate::request_decode::{RequestTypeVisitor, SERVED_APIS, visit_request_type};
use crate::{record_batch, request_decode, storage_codec};

const CODECS: [(Compression, &str); 5] = [
    (Compression::None, "none"),
    (Compression::Gzip, "gzip"),
    (Compression::Snappy, "snappy"),
    (Compression::Lz4, "lz4"),
    (Compression::Zstd, "zstd"),
];

/// `count` records as a producer sends them: offsets from 0, keys, values (one null), a header on some.
fn records(count: i64, producer_id: i64) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let mut record = Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { 0 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: if producer_id < 0 { -1 } else { i32::try_from(i).unwrap_or(0) },
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: (i != 2).then(|| Bytes::from(format!("value {i} ").repeat(8))),
                headers: Default::default(),
            };
            if i % 2 == 1 {
                record.headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from_static(b"abc")));
            }
            record
        })
        .collect()
}

fn batch(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression })
        .expect("encode a record batch");
    buf.freeze()
}

fn record_batch_seeds() -> Seeds {
    let mut seeds = Vec::new();
    for (compression, name) in CODECS {
        seeds.push((format!("{name}-1-record"), batch(&records(1, -1), compression).to_vec()));
        seeds.push((format!("{name}-5-records-idempotent"), batch(&records(5, 4242), compression).to_vec()));
    }
    seeds
}

fn frame(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, key.request_header_version(version)).expect("encode a request header");
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// The default request of a type, encoded at a version; `None` where a default field cannot be written at it.
struct DefaultBody(i16);

impl RequestTypeVisitor for DefaultBody {
    type Output = Option<Vec<u8>>;

    fn visit<R: Request + Default>(self) -> Self::Output {
        let mut buf = BytesMut::new();
        R::default().encode(&mut buf, self.0).ok()?;
        Some(buf.to_vec())
    }
}

fn produce_body(version: i16, compression: Compression) -> Vec<u8> {
    let partition =
        PartitionProduceData::default().with_index(0).with_records(Some(batch(&records(3, -1), compression)));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_data(vec![partition]);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let mut buf = BytesMut::new();
    // v2 is v3's layout without the leading (null) transactional id.
    request.encode(&mut buf, version.max(3)).expect("encode a produce request");
    if version == 2 { buf[2..].to_vec() } else { buf.to_vec() }
}

fn request_decode_seeds() -> Seeds {
    let mut seeds = Vec::new();
    for &(key, min, max) in SERVED_APIS {
        for version in min..=max {
            let name = format!("{key:?}-v{version}");
            if key == ApiKey::Produce {
                if version >= 2 {
                    for (compression, codec) in [(Compression::None, "none"), (Compression::Zstd, "zstd")] {
                        seeds.push((
                            format!("{name}-{codec}"),
                            frame(key, version, &produce_body(version, compression)),
                        ));
                    }
                }
                continue;
            }
            if let Some(Some(body)) = visit_request_type(key, DefaultBody(version)) {
                seeds.push((name, frame(key, version, &body)));
            }
        }
    }
    seeds
}

fn storage_codec_seeds() -> Seeds {
    let txn = TxnRecord {
        producer_id: 7,
        producer_epoch: 1,
        timeout_ms: 60_000,
        state: TxnState::Ongoing,
        partitions: vec![("orders".into(), 0)],
        groups: vec!["g".into()],
        pending_offsets: vec![PendingOffset {
            group_id: "g".into(),
            topic: "orders".into(),
            partition: 0,
            offset: 10,
            leader_epoch: -1,
            metadata: Some("m".into()),
        }],
        start_timestamp: 1,
        last_update_timestamp: 2,
    };
    let topic = TopicRecord {
        name: "orders".into(),
        topic_id: [7; 16],
        partitions: vec![1, 2, 3],
        configs: [("retention.ms".to_string(), "1000".to_string())].into(),
    };
    let producer = ProducerState {
        producer_epoch: 3,
        last_timestamp: 1_700_000_000_000,
        batches: vec![ProducerBatch { first_sequence: 0, last_sequence: 4, base_offset: 100 }],
        txn_first_offset: -1,
        last_batch_timestamp: 5,
    };
    let group = GroupRecord {
        protocol_type: "consumer".into(),
        generation_id: 3,
        protocol_name: Some("range".into()),
        group_type: GroupType::Classic,
        leader_id: None,
        members: Vec::new(),
        consumer: None,
    };
    // A group record with members, both kinds: a stable classic group's and a KIP-848 group's.
    let member_partitions =
        vec![TopicPartitionsRecord { topic_id: "00000000-0000-0000-0000-000000000007".into(), partitions: vec![0, 2] }];
    let group_with_members = GroupRecord {
        leader_id: Some("m".into()),
        members: vec![ClassicMemberRecord {
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            subscription: vec![0, 1, 2],
            assignment: vec![3, 4],
        }],
        consumer: Some(ConsumerGroupRecord {
            assignment_epoch: 3,
            members: vec![ConsumerMemberRecord {
                member_id: "n".into(),
                instance_id: None,
                rack_id: Some("r".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                member_epoch: 3,
                previous_member_epoch: 2,
                state: ConsumerMemberStateRecord::UnrevokedPartitions,
                subscribed_topic_names: vec!["orders".into()],
                subscribed_topic_regex: Some("^(?:ord.*)$".into()),
                server_assignor: Some("uniform".into()),
                rebalance_timeout_ms: 30_000,
                assigned: member_partitions.clone(),
                pending_revocation: Vec::new(),
                target: member_partitions,
            }],
            subscribed_topics: vec![SubscribedTopicRecord {
                name: "orders".into(),
                topic_id: "00000000-0000-0000-0000-000000000007".into(),
                partitions: 3,
            }],
        }),
        ..group.clone()
    };
    let mut configs = DynamicBrokerConfigsRecord::default();
    configs.this_broker.insert("log.retention.ms".into(), "1000".into());
    let offset = CommittedOffset { offset: 42, leader_epoch: 3, metadata: Some("here".into()), commit_timestamp: 9 };
    vec![
        ("log-key".into(), keys::log_key(3, 1000)),
        ("offset-key".into(), keys::offset_key("g", "orders", 4)),
        ("group-key".into(), keys::group_key("g")),
        (
            "partition-state".into(),
            PartitionState { log_start_offset: 0, next_offset: 9, leader_epoch: 2, high_watermark: 7 }.encode(),
        ),
        ("producer-state".into(), producer.encode()),
        ("aborted-txn".into(), AbortedTxn { producer_id: 7, first_offset: 3 }.encode()),
        ("committed-offset".into(), offset.encode()),
        ("txn-record".into(), txn.encode().expect("encode")),
        ("topic-record".into(), topic.encode().expect("encode")),
        ("group-record".into(), group.encode().expect("encode")),
        ("group-record-with-members".into(), group_with_members.encode().expect("encode")),
        ("dynamic-broker-configs".into(), configs.encode().expect("encode")),
    ]
}

/// Named seeds, as files of a corpus folder.
type Seeds = Vec<(String, Vec<u8>)>;

/// A fuzz target: its name (and corpus folder), its seeds and its check.
struct Target {
    name: &'static str,
    seeds: fn() -> Seeds,
    check: fn(&[u8]),
}

const TARGETS: [Target; 3] = [
    Target { name: "request_decode", seeds: request_decode_seeds, check: request_decode::check },
    Target { name: "record_batch", seeds: record_batch_seeds, check: record_batch::check },
    Target { name: "storage_codec", seeds: storage_codec_seeds, check: storage_codec::check },
];

#[test]
#[ignore = "writes fuzz/corpus/; run by hand when the seeds should change"]
fn write_seed_corpus() {
    for target in TARGETS {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target.name);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, bytes) in (target.seeds)() {
            std::fs::write(dir.join(name), bytes).expect("write a seed");
        }
    }
}

#[test]
fn seeds_pass_their_checks() {
    for target in TARGETS {
        for (_, bytes) in (target.seeds)() {
            (target.check)(&bytes);
        }
    }
}

/// Whether a body decodes as the request type at a version.
struct Decodes(Bytes, i16);

impl RequestTypeVisitor for Decodes {
    type Output = bool;

    fn visit<R: Request + Default>(mut self) -> Self::Output {
        R::decode(&mut self.0, self.1).is_ok()
    }
}

#[test]
fn request_seeds_cover_every_served_version_and_decode() {
    let seeds = request_decode_seeds();
    for (name, bytes) in &seeds {
        let frame = skein_protocol::decode_request_frame(Bytes::copy_from_slice(bytes)).expect("decode the header");
        let key = ApiKey::try_from(frame.api_key).expect("a known key");
        // Produce v2 is decoded as v3 (see request_decode::check_produce); the rest at their version.
        if key != ApiKey::Produce || frame.api_version > 2 {
            let decodes = visit_request_type(key, Decodes(frame.body, frame.api_version));
            assert_eq!(decodes, Some(true), "{name}");
        }
    }
    for &(key, min, max) in SERVED_APIS {
        for version in min..=max {
            let prefix = format!("{key:?}-v{version}");
            let served = seeds.iter().any(|(name, _)| name == &prefix || name.starts_with(&format!("{prefix}-")));
            // Produce v0 and v1 are refused unread, so nothing decodes them.
            assert!(served || (key == ApiKey::Produce && version < 2), "no seed for {prefix}");
        }
    }
}

#[test]
fn record_batch_seeds_are_valid_client_batches_with_readable_records() {
    for (name, bytes) in record_batch_seeds() {
        let header = skein_protocol::validate_client_batch(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        skein_protocol::walk_records(&bytes, &header, record_batch::MAX_UNCOMPRESSED_BYTES, |_| Ok(()))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let records = skein_protocol::decode_batch_records(&bytes, record_batch::MAX_UNCOMPRESSED_BYTES)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(i64::try_from(records.len()), Ok(i64::from(header.records_count)), "{name}");
    }
}
