//! Transactions: the transaction coordinator (transactional ids, their producer ids and epochs, and the state
//! machine Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort, durable in the
//! `transactions` key space) and producer id allocation.
//!
//! # Layout
//! - [`coordinator`]: [`TransactionCoordinator`]; it writes transaction markers through `skein-log` and the
//!   transaction's consumer offsets through `skein-group`'s offset store.
//! - [`producer_ids`]: [`ProducerIdAllocator`], ids never handed out twice (idempotent and transactional).

pub mod coordinator;
pub mod producer_ids;

pub use coordinator::{
    LocalTxnJournal, MarkerFuture, MarkerWriter, ProduceVerifier, TransactionCoordinator, TxnDescription, TxnJournal,
    TxnMarkers, TxnSettings, state_name,
};
pub use producer_ids::{BlockSource, ProducerIdAllocator};
