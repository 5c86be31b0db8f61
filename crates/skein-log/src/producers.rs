//! Idempotent producers: per partition and producer, the epoch and the last five batches' sequence ranges, so a
//! retried batch is answered with its original offset instead of being appended twice, and a gap is refused.

use std::collections::HashMap;

use skein_core::BrokerError;
use skein_protocol::RecordBatchHeader;
use skein_storage::records::PRODUCER_BATCHES_KEPT;
use skein_storage::{ProducerBatch, ProducerState};

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not idempotent (no producer id): append without producer state.
    Plain,
    /// In sequence: append it and record it.
    Append,
    /// Already appended: answer with the original batch's offset, append nothing.
    Duplicate(ProducerBatch),
}

/// The last sequence number of a batch; sequences wrap from `i32::MAX` to 0.
pub(crate) fn last_sequence(header: &RecordBatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// Checks a batch against its producer's current state, by Kafka's rules.
pub(crate) fn check_sequence(
    state: Option<&ProducerState>,
    header: &RecordBatchHeader,
) -> Result<SequenceCheck, BrokerError> {
    if header.producer_id < 0 {
        return Ok(SequenceCheck::Plain);
    }
    if header.base_sequence < 0 || header.producer_epoch < 0 {
        return Err(BrokerError::InvalidRecord(format!(
            "idempotent batch of producer {} has sequence {} and epoch {}",
            header.producer_id, header.base_sequence, header.producer_epoch
        )));
    }
    // A producer the partition does not know (new, or its state expired or was removed with the log): accepted
    // with any sequence, as Kafka does since KIP-360.
    let Some(state) = state else {
        return Ok(SequenceCheck::Append);
    };
    if header.producer_epoch < state.producer_epoch {
        return Err(BrokerError::InvalidProducerEpoch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            current: state.producer_epoch,
        });
    }
    if header.producer_epoch > state.producer_epoch {
        // A bumped epoch starts its sequences again from 0.
        return if header.base_sequence == 0 {
            Ok(SequenceCheck::Append)
        } else {
            Err(BrokerError::OutOfOrderSequence(format!(
                "producer {} epoch {} must start at sequence 0, got {}",
                header.producer_id, header.producer_epoch, header.base_sequence
            )))
        };
    }
    let last = last_sequence(header);
    if let Some(batch) =
        state.batches.iter().find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last)
    {
        return Ok(SequenceCheck::Duplicate(*batch));
    }
    match state.batches.last() {
        Some(previous) if !in_sequence(previous.last_sequence, header.base_sequence) => {
            Err(BrokerError::OutOfOrderSequence(format!(
                "producer {} epoch {}: expected sequence {} but got {}",
                header.producer_id,
                header.producer_epoch,
                previous.last_sequence.wrapping_add(1),
                header.base_sequence
            )))
        }
        _ => Ok(SequenceCheck::Append),
    }
}

/// Records an appended batch in the producer's state (starting afresh on a new epoch).
pub(crate) fn record_append(
    state: Option<ProducerState>,
    header: &RecordBatchHeader,
    base_offset: i64,
    now_ms: i64,
) -> ProducerState {
    let mut state = match state {
        Some(state) if state.producer_epoch == header.producer_epoch => state,
        // A new epoch starts its sequences afresh; a transaction open under the old epoch stays open until its
        // marker (the coordinator writes it with the new epoch).
        previous => ProducerState {
            producer_epoch: header.producer_epoch,
            last_timestamp: now_ms,
            batches: Vec::new(),
            txn_first_offset: previous.map_or(-1, |p| p.txn_first_offset),
            last_batch_timestamp: -1,
        },
    };
    state.last_batch_timestamp = header.max_timestamp;
    if header.is_transactional() && state.txn_first_offset < 0 {
        state.txn_first_offset = base_offset;
    }
    state.last_timestamp = now_ms;
    state.batches.push(ProducerBatch {
        first_sequence: header.base_sequence,
        last_sequence: last_sequence(header),
        base_offset,
    });
    if state.batches.len() > PRODUCER_BATCHES_KEPT {
        let excess = state.batches.len() - PRODUCER_BATCHES_KEPT;
        state.batches.drain(..excess);
    }
    state
}

/// Records a control batch (a transaction marker written under `header.producer_epoch`) in its producer's state:
/// the transaction ends, and a newer epoch replaces the old one, as when the leader wrote it.
pub(crate) fn record_marker(state: Option<ProducerState>, header: &RecordBatchHeader, now_ms: i64) -> ProducerState {
    let mut state = state.unwrap_or(ProducerState {
        producer_epoch: header.producer_epoch,
        last_timestamp: now_ms,
        batches: Vec::new(),
        txn_first_offset: -1,
        last_batch_timestamp: -1,
    });
    if header.producer_epoch > state.producer_epoch {
        state.producer_epoch = header.producer_epoch;
        state.batches.clear();
    }
    state.txn_first_offset = -1;
    state.last_timestamp = now_ms;
    state
}

/// The producer states of one partition, by producer id.
pub(crate) type ProducerTable = HashMap<i64, ProducerState>;

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> RecordBatchHeader {
        RecordBatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: records,
        }
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        assert_eq!(check_sequence(None, &header(-1, -1, -1, 3)), Ok(SequenceCheck::Plain));
        assert_eq!(check_sequence(None, &header(7, 0, 0, 3)), Ok(SequenceCheck::Append));
        let state = record_append(None, &header(7, 0, 0, 3), 100, 1);
        let state = record_append(Some(state), &header(7, 0, 3, 2), 103, 2);
        // Next in sequence.
        assert_eq!(check_sequence(Some(&state), &header(7, 0, 5, 1)), Ok(SequenceCheck::Append));
        // Retries of either remembered batch are duplicates with their original offsets.
        assert_eq!(
            check_sequence(Some(&state), &header(7, 0, 0, 3)),
            Ok(SequenceCheck::Duplicate(ProducerBatch { first_sequence: 0, last_sequence: 2, base_offset: 100 }))
        );
        assert!(
            matches!(check_sequence(Some(&state), &header(7, 0, 3, 2)), Ok(SequenceCheck::Duplicate(b)) if b.base_offset == 103)
        );
        // A gap, and an overlapping batch that is not an exact retry.
        assert!(matches!(check_sequence(Some(&state), &header(7, 0, 7, 1)), Err(BrokerError::OutOfOrderSequence(_))));
        assert!(matches!(check_sequence(Some(&state), &header(7, 0, 1, 1)), Err(BrokerError::OutOfOrderSequence(_))));
        // Stale epoch; a new epoch must start at 0.
        let bumped = record_append(Some(state.clone()), &header(7, 1, 0, 1), 105, 3);
        assert!(matches!(
            check_sequence(Some(&bumped), &header(7, 0, 5, 1)),
            Err(BrokerError::InvalidProducerEpoch { .. })
        ));
        assert!(matches!(check_sequence(Some(&state), &header(7, 1, 4, 1)), Err(BrokerError::OutOfOrderSequence(_))));
        assert_eq!(bumped.batches.len(), 1);
    }

    #[test]
    fn keeps_five_batches_and_wraps_sequences() {
        let mut state = None;
        for i in 0..8 {
            state = Some(record_append(state, &header(1, 0, i, 1), i64::from(i), 0));
        }
        let state = state.expect("state");
        assert_eq!(state.batches.len(), 5);
        assert_eq!(state.batches[0].first_sequence, 3);
        assert_eq!(last_sequence(&header(1, 0, i32::MAX, 2)), 0);
        let wrapped = record_append(None, &header(1, 0, i32::MAX - 1, 2), 0, 0);
        assert_eq!(check_sequence(Some(&wrapped), &header(1, 0, 0, 1)), Ok(SequenceCheck::Append));
    }
}
