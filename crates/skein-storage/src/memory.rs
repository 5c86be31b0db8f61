//! An in-memory engine: the reference model the RocksDB engine is checked against, and a fast engine for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use crate::{ColumnFamily, Durability, Engine, EngineStats, KeyValue, StorageError, StoreBatch, WriteOp};

type Space = BTreeMap<Vec<u8>, Vec<u8>>;

/// Sorted maps per key space behind one lock, so a batch is applied atomically.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    spaces: Mutex<HashMap<ColumnFamily, Space>>,
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_space<T>(&self, cf: ColumnFamily, f: impl FnOnce(&Space) -> T) -> Result<T, StorageError> {
        let spaces = self.spaces.lock().map_err(|_| StorageError::Engine("memory engine lock poisoned".into()))?;
        let empty = Space::new();
        Ok(f(spaces.get(&cf).unwrap_or(&empty)))
    }
}

impl Engine for MemoryEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.with_space(cf, |space| space.get(key).cloned())
    }

    fn scan(
        &self,
        cf: ColumnFamily,
        from: &[u8],
        to: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        // Copy out first so `visit` never runs under the lock.
        let entries: Vec<(Vec<u8>, Vec<u8>)> = self.with_space(cf, |space| {
            space
                .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })?;
        for (key, value) in entries {
            if !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    fn floor(&self, cf: ColumnFamily, lower: &[u8], key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        self.with_space(cf, |space| {
            space
                .range::<[u8], _>((Bound::Included(lower), Bound::Included(key)))
                .next_back()
                .map(|(k, v)| (k.clone(), v.clone()))
        })
    }

    fn write(&self, batch: StoreBatch, _durability: Durability) -> Result<(), StorageError> {
        let mut spaces = self.spaces.lock().map_err(|_| StorageError::Engine("memory engine lock poisoned".into()))?;
        for op in batch.ops {
            match op {
                WriteOp::Put { cf, key, value } => {
                    spaces.entry(cf).or_default().insert(key, value);
                }
                WriteOp::Delete { cf, key } => {
                    spaces.entry(cf).or_default().remove(&key);
                }
                WriteOp::DeleteRange { cf, from, to } => {
                    let space = spaces.entry(cf).or_default();
                    let doomed: Vec<Vec<u8>> = space
                        .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Excluded(to.as_slice())))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for key in doomed {
                        space.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn compact_range(&self, _cf: ColumnFamily, _from: &[u8], _to: &[u8]) -> Result<(), StorageError> {
        // Deleted entries are gone from the maps already.
        Ok(())
    }

    fn disk_size(&self, _cf: ColumnFamily, _from: &[u8], _to: &[u8]) -> Result<u64, StorageError> {
        // Nothing of it is on disk.
        Ok(0)
    }

    fn stats(&self) -> Result<Option<EngineStats>, StorageError> {
        Ok(None)
    }
}
