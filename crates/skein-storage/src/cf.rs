//! The key spaces. Each is a RocksDB column family; the in-memory engine keeps one sorted map per space.

/// A key space and what it holds (key layouts in [`crate::keys`], values in [`crate::records`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ColumnFamily {
    /// Record batches as stored: `partition id | base offset` → batch bytes.
    Log,
    /// Per-partition state: `partition id` → log start offset, next offset, leader epoch, high watermark; and the
    /// leader epoch cache: `partition id | epoch` → the first offset of that epoch.
    Partition,
    /// Idempotent producer state per partition: `partition id | producer id` → epoch and the last batches' sequences.
    Producers,
    /// Cluster and topic metadata: cluster id, topics, the partition id counter, the format version.
    Meta,
    /// Committed consumer offsets: `group | topic | partition` → offset, leader epoch, metadata, commit time.
    Offsets,
    /// Consumer group metadata kept across restarts: `group` → protocol type, generation, protocol name.
    Groups,
    /// Aborted transactions per partition: `partition id | marker offset` → producer id, first offset.
    AbortedTxns,
    /// Transaction coordinator state: `transactional id` → producer id and epoch, state, partitions, offsets.
    Transactions,
    /// The group coordinator's offsets of open transactions (TxnOffsetCommit), committed or dropped by the
    /// transaction's marker: `group | producer id | topic | partition` → offset, leader epoch, metadata, time.
    PendingOffsets,
}

impl ColumnFamily {
    pub const ALL: [ColumnFamily; 9] = [
        ColumnFamily::Log,
        ColumnFamily::Partition,
        ColumnFamily::Producers,
        ColumnFamily::Meta,
        ColumnFamily::Offsets,
        ColumnFamily::Groups,
        ColumnFamily::AbortedTxns,
        ColumnFamily::Transactions,
        ColumnFamily::PendingOffsets,
    ];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            ColumnFamily::Log => "log",
            ColumnFamily::Partition => "partition",
            ColumnFamily::Producers => "producers",
            ColumnFamily::Meta => "meta",
            ColumnFamily::Offsets => "offsets",
            ColumnFamily::Groups => "groups",
            ColumnFamily::AbortedTxns => "aborted_txns",
            ColumnFamily::Transactions => "transactions",
            ColumnFamily::PendingOffsets => "pending_offsets",
        }
    }
}
