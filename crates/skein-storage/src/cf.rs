//! The key spaces. Each is a RocksDB column family; the in-memory engine keeps one sorted map per space.

/// A key space and what it holds (key layouts in [`crate::keys`], values in [`crate::records`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnFamily {
    /// Record batches as stored: `partition id | base offset` → batch bytes.
    Log,
    /// Per-partition state: `partition id` → log start offset, next offset, leader epoch.
    Partition,
    /// Cluster and topic metadata: cluster id, topics, the partition id counter, the format version.
    Meta,
}

impl ColumnFamily {
    pub const ALL: [ColumnFamily; 3] = [ColumnFamily::Log, ColumnFamily::Partition, ColumnFamily::Meta];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            ColumnFamily::Log => "log",
            ColumnFamily::Partition => "partition",
            ColumnFamily::Meta => "meta",
        }
    }
}
