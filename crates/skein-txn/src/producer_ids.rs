//! Producer id allocation: ids are handed out from blocks that are reserved before any id of the block is
//! used, so an id is never given twice, even across crashes (a crash only skips the rest of a block). In a
//! cluster the blocks come from the metadata quorum (KIP-730), so two brokers never hand out the same id; the
//! local source (persisted block end) serves storage-level tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use skein_core::BrokerError;
use skein_storage::{ColumnFamily, Durability, Engine, StorageError, StoreBatch, keys, run_blocking};

/// Ids reserved per storage write.
const BLOCK_SIZE: i64 = 1000;

/// Reserves the next block of producer ids: answers (first id, size).
pub type BlockSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(i64, i64), BrokerError>> + Send>> + Send + Sync>;

/// Where blocks come from.
enum Blocks {
    /// A block end persisted in this node's storage.
    Local(Arc<dyn Engine>),
    /// Reserved elsewhere (the metadata quorum); each block's end is also recorded in this node's storage, so
    /// the partition data always knows how far its ids went (an upgrade or a rebuilt quorum starts above it).
    Source(BlockSource, Arc<dyn Engine>),
}

/// Hands out producer ids that are never reused.
pub struct ProducerIdAllocator {
    blocks: Blocks,
    /// (next id to hand out, end of the reserved block)
    range: tokio::sync::Mutex<(i64, i64)>,
}

impl std::fmt::Debug for ProducerIdAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerIdAllocator").finish_non_exhaustive()
    }
}

impl ProducerIdAllocator {
    /// Loads the persisted block end (blocking); allocation resumes after it.
    pub fn load(engine: Arc<dyn Engine>) -> Result<Self, StorageError> {
        let block_end = match engine.get(ColumnFamily::Meta, keys::META_PRODUCER_ID_BLOCK_END)? {
            Some(value) => {
                let bytes: [u8; 8] = value.as_slice().try_into().map_err(|_| StorageError::CorruptValue {
                    key: "producer_id_block_end".into(),
                    reason: "not 8 bytes".into(),
                })?;
                i64::from_be_bytes(bytes)
            }
            None => 0,
        };
        Ok(ProducerIdAllocator {
            blocks: Blocks::Local(engine),
            range: tokio::sync::Mutex::new((block_end, block_end)),
        })
    }

    /// Ids from blocks that `source` reserves (the first block on first use), recorded in `engine` too.
    pub fn from_source(source: BlockSource, engine: Arc<dyn Engine>) -> Self {
        ProducerIdAllocator { blocks: Blocks::Source(source, engine), range: tokio::sync::Mutex::new((0, 0)) }
    }

    /// The end of the block a local allocator persisted: ids below it may have been handed out (blocking).
    pub fn local_block_end(engine: &dyn Engine) -> Result<i64, StorageError> {
        match engine.get(ColumnFamily::Meta, keys::META_PRODUCER_ID_BLOCK_END)? {
            Some(value) => {
                let bytes: [u8; 8] = value.as_slice().try_into().map_err(|_| StorageError::CorruptValue {
                    key: "producer_id_block_end".into(),
                    reason: "not 8 bytes".into(),
                })?;
                Ok(i64::from_be_bytes(bytes))
            }
            None => Ok(0),
        }
    }

    /// A fresh producer id.
    pub async fn allocate(&self) -> Result<i64, BrokerError> {
        let mut range = self.range.lock().await;
        if range.0 >= range.1 {
            match &self.blocks {
                Blocks::Local(engine) => {
                    let new_end = range
                        .1
                        .checked_add(BLOCK_SIZE)
                        .ok_or_else(|| BrokerError::Storage("producer ids exhausted".into()))?;
                    let mut batch = StoreBatch::default();
                    batch.put(
                        ColumnFamily::Meta,
                        keys::META_PRODUCER_ID_BLOCK_END.to_vec(),
                        new_end.to_be_bytes().to_vec(),
                    );
                    let engine = Arc::clone(engine);
                    run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
                    range.1 = new_end;
                }
                Blocks::Source(source, engine) => {
                    let (first, size) = source().await?;
                    let end = first.checked_add(size).filter(|_| size > 0).ok_or_else(|| {
                        BrokerError::Storage(format!("producer id block {first}+{size} is not usable"))
                    })?;
                    let recorded = Self::local_block_end(engine.as_ref())?;
                    if end > recorded {
                        let mut batch = StoreBatch::default();
                        batch.put(
                            ColumnFamily::Meta,
                            keys::META_PRODUCER_ID_BLOCK_END.to_vec(),
                            end.to_be_bytes().to_vec(),
                        );
                        let engine = Arc::clone(engine);
                        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
                    }
                    *range = (first, end);
                }
            }
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_storage::MemoryEngine;

    #[tokio::test]
    async fn ids_are_unique_across_reloads() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let first = ProducerIdAllocator::load(Arc::clone(&engine)).expect("load");
        let a = first.allocate().await.expect("id");
        let b = first.allocate().await.expect("id");
        assert_eq!((a, b), (0, 1));
        // A restart (reload) never hands out an id of the previous block again.
        let second = ProducerIdAllocator::load(Arc::clone(&engine)).expect("load");
        assert_eq!(second.allocate().await.expect("id"), BLOCK_SIZE);
    }
}
