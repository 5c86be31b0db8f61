//! The idempotent producer at the wire level: InitProducerId, retried batches answered with their original
//! offsets, sequence gaps and stale epochs refused, and producer state surviving kill -9.

use bytes::Bytes;
use kafka_protocol::messages::InitProducerIdRequest;
use skein_test_support::records::producer_batch;
use skein_test_support::requests::{create_topic, produce};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;

fn idempotent_batch(count: usize, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    producer_batch(count, producer_id, epoch, base_sequence, false).expect("batch")
}

fn init_producer_id(client: &mut RawClient, version: i16) -> (i64, i16) {
    let response = client
        .request(version, &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000))
        .expect("InitProducerId");
    assert_eq!(response.error_code, NONE);
    (response.producer_id.0, response.producer_epoch)
}

/// (error code, base offset) of producing `batch` with acks=-1.
fn send(client: &mut RawClient, topic: &str, batch: Bytes) -> (i16, i64) {
    let answer = produce(client, topic, 0, batch, -1).expect("Produce");
    (answer.error_code, answer.base_offset)
}

fn log_end(client: &mut RawClient, topic: &str) -> i64 {
    skein_test_support::requests::list_offset(client, topic, 0, -1).expect("ListOffsets").offset
}

#[test]
fn init_producer_id_hands_out_distinct_ids_that_survive_restart() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let mut seen = Vec::new();
    for version in 0..=5 {
        let (id, epoch) = init_producer_id(&mut client, version);
        assert_eq!(epoch, 0, "v{version}");
        assert!(id >= 0 && !seen.contains(&id), "v{version}: id {id} repeated in {seen:?}");
        seen.push(id);
    }
    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    let (id, _) = init_producer_id(&mut client, 4);
    assert!(!seen.contains(&id), "id {id} handed out again after a crash");
}

#[test]
fn replayed_batch_gets_its_original_offset_and_gaps_and_old_epochs_are_refused() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    create_topic(&mut client, "idem", 1, &[]).expect("create topic");
    let (producer_id, epoch) = init_producer_id(&mut client, 4);

    assert_eq!(send(&mut client, "idem", idempotent_batch(3, producer_id, epoch, 0)), (NONE, 0));
    assert_eq!(send(&mut client, "idem", idempotent_batch(2, producer_id, epoch, 3)), (NONE, 3));
    // The same request again (a retry after a lost response): the original offset, nothing appended.
    assert_eq!(send(&mut client, "idem", idempotent_batch(3, producer_id, epoch, 0)), (NONE, 0));
    assert_eq!(send(&mut client, "idem", idempotent_batch(2, producer_id, epoch, 3)), (NONE, 3));
    assert_eq!(log_end(&mut client, "idem"), 5);
    // A gap in the sequence.
    assert_eq!(send(&mut client, "idem", idempotent_batch(1, producer_id, epoch, 7)).0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(log_end(&mut client, "idem"), 5);
    // A bumped epoch restarts at 0; afterwards the old epoch is fenced.
    assert_eq!(send(&mut client, "idem", idempotent_batch(1, producer_id, epoch + 1, 0)), (NONE, 5));
    assert_eq!(send(&mut client, "idem", idempotent_batch(1, producer_id, epoch, 5)).0, INVALID_PRODUCER_EPOCH);
    assert_eq!(log_end(&mut client, "idem"), 6);

    // Producer state is written with the records: after kill -9 the retry is still recognised.
    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    assert_eq!(send(&mut client, "idem", idempotent_batch(1, producer_id, epoch + 1, 0)), (NONE, 5));
    assert_eq!(send(&mut client, "idem", idempotent_batch(2, producer_id, epoch + 1, 1)), (NONE, 6));
    assert_eq!(log_end(&mut client, "idem"), 8);
}
