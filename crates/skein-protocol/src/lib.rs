//! Sans-io Kafka wire handling: everything between raw socket bytes and typed messages.
//!
//! # Layout
//! - [`apis`]: the table of APIs and versions Skein serves (the router's dispatch, ApiVersions, the fuzz targets).
//! - [`frame`]: the 4-byte length prefix, checked against the configured maximum before anything is allocated.
//! - [`header`]: request header decode (api key, version, correlation id, client id) and response framing.
//! - [`batch`]: a view over a v2 record batch header: size/magic/CRC-32C validation and the in-place rewrites the
//!   broker does on append (base offset, leader epoch, LogAppendTime). Records themselves are never decoded here.
//! - [`records`]: record-level reads (produce validation, offsets by timestamp, compaction), bounded by the batch's
//!   bytes and, for compressed batches, by a decompressed-size limit.

pub mod apis;
pub mod batch;
pub mod control;
pub mod frame;
pub mod header;
pub mod records;

pub use batch::{
    BATCH_HEADER_SIZE, BatchError, RecordBatchHeader, rewrite_for_append, validate_client_batch, verify_stored_batch,
};
pub use control::{MarkerType, marker_batch, marker_type_of};
pub use frame::{FrameError, check_frame_length};
pub use header::{EncodeError, RequestFrame, decode_request_frame, encode_response};
pub use records::{RecordInfo, decode_batch_records, uncompressed_limit, walk_records};
