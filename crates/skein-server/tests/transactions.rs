//! Transactions at the wire level: InitProducerId with a transactional id, AddPartitionsToTxn, transactional
//! produce (refused for partitions not added), the last stable offset, read_committed fetch with the aborted
//! transactions listed, EndTxn, zombie fencing, the timeout abort, describe/list, and state across kill -9.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, BrokerId, DescribeTransactionsRequest, EndTxnRequest,
    FindCoordinatorRequest, GroupId, InitProducerIdRequest, ListOffsetsRequest, ListTransactionsRequest,
    OffsetFetchRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::records::producer_batch;
use skein_test_support::requests::{create_topic, fetch_request, produce, produce_request, topic_name};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;

const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const INVALID_RECORD: i16 = 87;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn transactional_batch(count: usize, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    producer_batch(count, producer_id, epoch, base_sequence, true).expect("batch")
}

/// Produces a transactional batch of `transactional_id` to partition 0; returns (error code, base offset).
fn produce_in_txn(client: &mut RawClient, transactional_id: &str, topic: &str, batch: Bytes) -> (i16, i64) {
    let request =
        produce_request(topic, 0, batch, -1).with_transactional_id(Some(TransactionalId(str(transactional_id))));
    let response = client.request(9, &request).expect("Produce");
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// InitProducerId after FindCoordinator, as clients do: the first lookup creates `__transaction_state` and the
/// broker then loads it (NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS meanwhile, retried like a client).
fn init(client: &mut RawClient, transactional_id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    const RETRIABLE: [i16; 3] = [14, 15, 16];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lookup = FindCoordinatorRequest::default().with_key(str(transactional_id)).with_key_type(1);
        let found: kafka_protocol::messages::FindCoordinatorResponse =
            client.request(3, &lookup).expect("FindCoordinator");
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(str(transactional_id))))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let response = client.request(4, &request).expect("InitProducerId");
        let retriable = RETRIABLE.contains(&found.error_code) || RETRIABLE.contains(&response.error_code);
        if !retriable || Instant::now() > deadline {
            return (response.error_code, response.producer_id.0, response.producer_epoch);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn add_partitions(client: &mut RawClient, transactional_id: &str, producer_id: i64, epoch: i16, topic: &str) -> i16 {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(str(transactional_id)))
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default().with_name(topic_name(topic)).with_partitions(vec![0]),
        ]);
    let response = client.request(3, &request).expect("AddPartitionsToTxn");
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end_txn(client: &mut RawClient, transactional_id: &str, producer_id: i64, epoch: i16, commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(str(transactional_id)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    client.request(3, &request).expect("EndTxn").error_code
}

/// Fetches partition 0 from offset 0 with the isolation level (0 = read_uncommitted, 1 = read_committed).
fn fetch_from_start(client: &mut RawClient, topic: &str, isolation_level: i8) -> PartitionData {
    let request = fetch_request(topic, 0, 0, 0, 0).with_isolation_level(isolation_level);
    let response = client.request(12, &request).expect("Fetch");
    response.responses[0].partitions[0].clone()
}

fn latest_offset(client: &mut RawClient, topic: &str, isolation_level: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
        ]);
    client.request(7, &request).expect("ListOffsets").topics[0].partitions[0].offset
}

#[test]
fn commit_and_abort_with_the_last_stable_offset_and_aborted_transactions() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "tx", 1, &[]).expect("create").error_code, NONE);
    let coordinator = client
        .request(3, &FindCoordinatorRequest::default().with_key(str("t")).with_key_type(1))
        .expect("FindCoordinator");
    assert_eq!(coordinator.error_code, NONE);

    assert_eq!(init(&mut client, "t", 0).0, INVALID_TRANSACTION_TIMEOUT);
    let (code, producer_id, epoch) = init(&mut client, "t", 60_000);
    assert_eq!((code, epoch), (NONE, 0));

    // Not added to the transaction yet: the transactional produce is refused.
    let refused = produce_in_txn(&mut client, "t", "tx", transactional_batch(3, producer_id, epoch, 0));
    assert_eq!(refused.0, INVALID_TXN_STATE);
    // A transactional batch without a transactional id is refused too.
    let anonymous = produce(&mut client, "tx", 0, transactional_batch(3, producer_id, epoch, 0), -1).expect("produce");
    assert_eq!(anonymous.error_code, INVALID_RECORD);

    // Transaction 1 (aborted): 3 records at 0..2, marker at 3.
    assert_eq!(add_partitions(&mut client, "t", producer_id, epoch, "tx"), NONE);
    assert_eq!(produce_in_txn(&mut client, "t", "tx", transactional_batch(3, producer_id, epoch, 0)), (NONE, 0));
    // While it is open, read_committed sees nothing and the last stable offset is its first offset.
    let open = fetch_from_start(&mut client, "tx", 1);
    assert_eq!((open.high_watermark, open.last_stable_offset), (3, 0));
    assert!(open.records.as_ref().is_some_and(Bytes::is_empty));
    assert_eq!((latest_offset(&mut client, "tx", 1), latest_offset(&mut client, "tx", 0)), (0, 3));
    assert_eq!(end_txn(&mut client, "t", producer_id, epoch, false), NONE);
    // A retried abort succeeds; a commit of the aborted transaction is refused.
    assert_eq!(end_txn(&mut client, "t", producer_id, epoch, false), NONE);
    assert_eq!(end_txn(&mut client, "t", producer_id, epoch, true), INVALID_TXN_STATE);

    // Transaction 2 (committed): 2 records at 4..5, marker at 6.
    assert_eq!(add_partitions(&mut client, "t", producer_id, epoch, "tx"), NONE);
    assert_eq!(produce_in_txn(&mut client, "t", "tx", transactional_batch(2, producer_id, epoch, 3)), (NONE, 4));
    assert_eq!(end_txn(&mut client, "t", producer_id, epoch, true), NONE);

    let committed = fetch_from_start(&mut client, "tx", 1);
    assert_eq!((committed.high_watermark, committed.last_stable_offset), (7, 7));
    let aborted = committed.aborted_transactions.expect("read_committed lists aborted transactions");
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (producer_id, 0));
    assert!(committed.records.as_ref().is_some_and(|r| !r.is_empty()));
    let uncommitted = fetch_from_start(&mut client, "tx", 0);
    assert!(uncommitted.aborted_transactions.is_none());

    // DescribeTransactions and ListTransactions.
    let described = client
        .request(
            0,
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(str("t")), TransactionalId(str("nope"))]),
        )
        .expect("DescribeTransactions");
    let state = &described.transaction_states[0];
    assert_eq!((state.error_code, state.transaction_state.as_str()), (NONE, "CompleteCommit"));
    assert_eq!((state.producer_id.0, state.transaction_timeout_ms), (producer_id, 60_000));
    assert_eq!(described.transaction_states[1].error_code, TRANSACTIONAL_ID_NOT_FOUND);
    let listed = client.request(1, &ListTransactionsRequest::default().with_duration_filter(-1)).expect("list");
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transactional_id.0.as_str(), "t");
}

#[test]
fn a_new_incarnation_fences_the_old_one_and_aborts_its_transaction() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "tx", 1, &[]).expect("create").error_code, NONE);
    let (_, producer_id, epoch) = init(&mut client, "z", 60_000);
    assert_eq!(add_partitions(&mut client, "z", producer_id, epoch, "tx"), NONE);
    assert_eq!(produce_in_txn(&mut client, "z", "tx", transactional_batch(2, producer_id, epoch, 0)), (NONE, 0));

    // The new incarnation gets a newer epoch; the open transaction is aborted.
    let (code, same_id, new_epoch) = init(&mut client, "z", 60_000);
    assert_eq!((code, same_id), (NONE, producer_id));
    assert!(new_epoch > epoch);
    let after = fetch_from_start(&mut client, "tx", 1);
    assert_eq!((after.high_watermark, after.last_stable_offset), (3, 3));
    assert_eq!(after.aborted_transactions.expect("aborted").len(), 1);

    // The zombie is refused everywhere.
    let late = produce_in_txn(&mut client, "z", "tx", transactional_batch(1, producer_id, epoch, 2));
    assert_eq!(late.0, INVALID_PRODUCER_EPOCH);
    assert_eq!(add_partitions(&mut client, "z", producer_id, epoch, "tx"), PRODUCER_FENCED);
    assert_eq!(end_txn(&mut client, "z", producer_id, epoch, true), PRODUCER_FENCED);
    assert_eq!(end_txn(&mut client, "z", producer_id + 1000, new_epoch, true), INVALID_PRODUCER_ID_MAPPING);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_an_open_one_survives_kill_9() {
    let yaml = "transaction.abort.timed.out.transaction.cleanup.interval.ms: 200\n";
    let mut broker = TestBroker::start_with_yaml(yaml).expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "tx", 1, &[]).expect("create").error_code, NONE);
    let (_, producer_id, epoch) = init(&mut client, "slow", 5_000);
    assert_eq!(add_partitions(&mut client, "slow", producer_id, epoch, "tx"), NONE);
    assert_eq!(produce_in_txn(&mut client, "slow", "tx", transactional_batch(2, producer_id, epoch, 0)), (NONE, 0));
    drop(client);

    // The open transaction is durable: after kill -9 the last stable offset still holds at its first record.
    broker.kill9().expect("kill -9");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    let restarted = fetch_from_start(&mut client, "tx", 1);
    assert_eq!((restarted.high_watermark, restarted.last_stable_offset), (2, 0));

    // Past its timeout the coordinator aborts it and fences the producer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = fetch_from_start(&mut client, "tx", 1);
        if now.last_stable_offset == 3 {
            assert_eq!(now.aborted_transactions.expect("aborted").len(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "the timed-out transaction was not aborted: {now:?}");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(end_txn(&mut client, "slow", producer_id, epoch, true), PRODUCER_FENCED);
}

#[test]
fn transactions_v2_add_partitions_on_produce_and_bump_the_epoch_on_every_end() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "tx", 1, &[]).expect("create").error_code, NONE);
    let versions = client.request(3, &kafka_protocol::messages::ApiVersionsRequest::default()).expect("ApiVersions");
    let feature = versions.finalized_features.iter().find(|f| f.name.as_str() == "transaction.version");
    assert_eq!(feature.map(|f| f.max_version_level), Some(2));

    let (_, producer_id, epoch) = init(&mut client, "v2", 60_000);
    // Produce v12 adds the partition to the transaction: no AddPartitionsToTxn.
    let request = produce_request("tx", 0, transactional_batch(2, producer_id, epoch, 0), -1)
        .with_transactional_id(Some(TransactionalId(str("v2"))));
    let response = client.request(12, &request).expect("Produce v12");
    assert_eq!(response.responses[0].partition_responses[0].error_code, NONE);

    let end = |client: &mut RawClient, epoch: i16, commit: bool| {
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(str("v2")))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_committed(commit);
        let response = client.request(5, &request).expect("EndTxn v5");
        (response.error_code, response.producer_id.0, response.producer_epoch)
    };
    // The commit bumps the epoch and answers it; a retry with the old epoch gets the same answer.
    assert_eq!(end(&mut client, epoch, true), (NONE, producer_id, epoch + 1));
    assert_eq!(end(&mut client, epoch, true), (NONE, producer_id, epoch + 1));
    let committed = fetch_from_start(&mut client, "tx", 1);
    assert_eq!((committed.high_watermark, committed.last_stable_offset), (3, 3));

    // The marker carries the new epoch: a late batch of the old one is fenced.
    let late = produce_request("tx", 0, transactional_batch(1, producer_id, epoch, 2), -1)
        .with_transactional_id(Some(TransactionalId(str("v2"))));
    let response = client.request(12, &late).expect("Produce v12");
    assert_eq!(response.responses[0].partition_responses[0].error_code, INVALID_PRODUCER_EPOCH);

    // The next transaction runs under the new epoch, sequences from 0; aborting it bumps again.
    let next = produce_request("tx", 0, transactional_batch(1, producer_id, epoch + 1, 0), -1)
        .with_transactional_id(Some(TransactionalId(str("v2"))));
    assert_eq!(client.request(12, &next).expect("Produce v12").responses[0].partition_responses[0].error_code, NONE);
    assert_eq!(end(&mut client, epoch + 1, false), (NONE, producer_id, epoch + 2));
    let aborted = fetch_from_start(&mut client, "tx", 1);
    assert_eq!(aborted.aborted_transactions.expect("aborted").len(), 1);
    // Committing an aborted transaction is refused.
    assert_eq!(end(&mut client, epoch + 1, true).0, INVALID_TXN_STATE);
}

const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// AddOffsetsToTxn then TxnOffsetCommit v3 of `offset` for partition 0 of `topic`; (AddOffsets error, commit error).
fn commit_in_txn(
    client: &mut RawClient,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    group_id: &str,
    topic: &str,
    offset: i64,
) -> (i16, i16) {
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(str(transactional_id)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(str(group_id)));
    let added = client.request(3, &add).expect("AddOffsetsToTxn").error_code;
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(str(transactional_id)))
        .with_group_id(GroupId(str(group_id)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(vec![
            TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
        ])]);
    let response = client.request(3, &commit).expect("TxnOffsetCommit");
    (added, response.topics[0].partitions[0].error_code)
}

/// OffsetFetch v7 of partition 0 of `topic`: (partition error, committed offset).
fn fetch_offset(client: &mut RawClient, group_id: &str, topic: &str, require_stable: bool) -> (i16, i64) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(str(group_id)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(topic_name(topic)).with_partition_indexes(vec![0]),
        ]));
    let response = client.request(7, &request).expect("OffsetFetch");
    assert_eq!(response.error_code, NONE, "{response:?}");
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.committed_offset)
}

#[test]
fn offsets_of_an_open_transaction_are_unstable_until_its_marker() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let topic = "consumed";
    assert_eq!(create_topic(&mut client, topic, 1, &[]).expect("create").error_code, NONE);
    let (code, producer_id, epoch) = init(&mut client, "pipeline", 60_000);
    assert_eq!(code, NONE);

    // Committed by one transaction: invisible until its COMMIT, and UNSTABLE_OFFSET_COMMIT (KIP-447) meanwhile for
    // a consumer that asks for stable offsets only.
    assert_eq!(commit_in_txn(&mut client, "pipeline", producer_id, epoch, "readers", topic, 7), (NONE, NONE));
    assert_eq!(fetch_offset(&mut client, "readers", topic, false), (NONE, -1));
    assert_eq!(fetch_offset(&mut client, "readers", topic, true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(end_txn(&mut client, "pipeline", producer_id, epoch, true), NONE);
    assert_eq!(fetch_offset(&mut client, "readers", topic, true), (NONE, 7));

    // Aborted: dropped, the committed offset stays.
    assert_eq!(commit_in_txn(&mut client, "pipeline", producer_id, epoch, "readers", topic, 11), (NONE, NONE));
    assert_eq!(fetch_offset(&mut client, "readers", topic, true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(end_txn(&mut client, "pipeline", producer_id, epoch, false), NONE);
    assert_eq!(fetch_offset(&mut client, "readers", topic, true), (NONE, 7));

    // Pending offsets survive a kill -9 of the coordinator, and still commit with their transaction.
    assert_eq!(commit_in_txn(&mut client, "pipeline", producer_id, epoch, "readers", topic, 15), (NONE, NONE));
    let mut broker = broker;
    broker.kill9().expect("kill");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    let stable = skein_test_support::wait_for("the group to be loaded", Duration::from_secs(30), || {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str("readers")))
            .with_require_stable(true)
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default().with_name(topic_name(topic)).with_partition_indexes(vec![0]),
            ]));
        let response: kafka_protocol::messages::OffsetFetchResponse = client.request(7, &request)?;
        Ok((response.error_code == NONE).then(|| response.topics[0].partitions[0].error_code))
    })
    .expect("loaded");
    assert_eq!(stable, UNSTABLE_OFFSET_COMMIT);
    let ended = skein_test_support::wait_for("the transaction to end", Duration::from_secs(30), || {
        Ok(Some(end_txn(&mut client, "pipeline", producer_id, epoch, true)).filter(|&code| code == NONE))
    });
    assert!(ended.is_ok(), "{ended:?}");
    assert_eq!(fetch_offset(&mut client, "readers", topic, true), (NONE, 15));
}

/// DescribeTransactions of one id: (error code, state).
fn describe(client: &mut RawClient, transactional_id: &str) -> (i16, String) {
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(str(transactional_id))]);
    let described = client.request(0, &request).expect("DescribeTransactions");
    let state = &described.transaction_states[0];
    (state.error_code, state.transaction_state.to_string())
}

#[test]
fn idle_transactional_ids_expire_and_an_open_transaction_keeps_its_id() {
    let yaml =
        "transactional.id.expiration.ms: 1500\ntransaction.remove.expired.transaction.cleanup.interval.ms: 200\n";
    let broker = TestBroker::start_with_yaml(yaml).expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "tx", 1, &[]).expect("create").error_code, NONE);
    let (_, idle_id, idle_epoch) = init(&mut client, "idle", 60_000);
    let (_, busy_id, busy_epoch) = init(&mut client, "busy", 60_000);
    assert_eq!(add_partitions(&mut client, "busy", busy_id, busy_epoch, "tx"), NONE);
    assert_eq!(describe(&mut client, "idle"), (NONE, "Empty".to_string()));

    // Past the expiration, the idle id is forgotten; the one with an open transaction is not.
    let forgotten = skein_test_support::wait_for("the idle id to expire", Duration::from_secs(20), || {
        Ok((describe(&mut client, "idle").0 == TRANSACTIONAL_ID_NOT_FOUND).then_some(()))
    });
    assert!(forgotten.is_ok(), "{forgotten:?}");
    assert_eq!(describe(&mut client, "busy"), (NONE, "Ongoing".to_string()));
    let listed = client.request(1, &ListTransactionsRequest::default().with_duration_filter(-1)).expect("list");
    let ids: Vec<&str> = listed.transaction_states.iter().map(|s| s.transactional_id.0.as_str()).collect();
    assert_eq!(ids, vec!["busy"]);
    // The forgotten producer is fenced as an unknown mapping; a new InitProducerId starts the id afresh.
    assert_eq!(end_txn(&mut client, "idle", idle_id, idle_epoch, false), INVALID_PRODUCER_ID_MAPPING);
    let (code, fresh_id, fresh_epoch) = init(&mut client, "idle", 60_000);
    assert_eq!(code, NONE);
    assert_ne!(fresh_id, idle_id);
    assert_eq!(fresh_epoch, 0);

    // After a restart (replayed from __transaction_state) the removal holds: only the fresh state of "idle" and the
    // open transaction of "busy" are back.
    let mut broker = broker;
    broker.kill9().expect("kill");
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    let replayed = skein_test_support::wait_for("the ids to be loaded", Duration::from_secs(20), || {
        Ok(Some(describe(&mut client, "busy")).filter(|(code, _)| ![14, 15, 16].contains(code)))
    });
    assert_eq!(replayed.expect("loaded"), (NONE, "Ongoing".to_string()));
    let (code, producer_id) = {
        let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(str("idle"))]);
        let described = client.request(0, &request).expect("DescribeTransactions");
        (described.transaction_states[0].error_code, described.transaction_states[0].producer_id.0)
    };
    // Unless it expired again meanwhile (a slow restart): then it is simply not found.
    assert!(
        matches!((code, producer_id), (NONE, id) if id == fresh_id) || code == TRANSACTIONAL_ID_NOT_FOUND,
        "{code} {producer_id}"
    );
}
