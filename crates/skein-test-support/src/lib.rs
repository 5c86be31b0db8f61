//! Test support: start the real `skein` binary on a free port with a temporary data directory, and a raw
//! Kafka-protocol client for byte-level tests.
//!
//! # Layout
//! - [`broker`]: [`TestBroker`], one `skein` process with its own ports, data directory and log file, and
//!   [`PausedBroker`], the guard of one stopped with SIGSTOP.
//! - [`client`]: [`RawClient`], a blocking client that speaks Kafka frames over a `TcpStream`, plus frame builders for
//!   requests no well-behaved client would send.
//! - [`cluster`]: helpers for multi-node tests: a partition's [`Placement`](cluster::Placement) as one broker's
//!   Metadata shows it, waiting until every node agrees, creating a topic in sync everywhere, producing to a new
//!   leader.
//! - [`records`]: record batches built with `kafka-protocol`'s encoder, and the form the broker stores them in.
//! - [`requests`]: the typed requests tests repeat (create a topic, produce, fetch, ...), each at one version.

pub mod broker;
pub mod client;
pub mod cluster;
pub mod records;
pub mod requests;

pub use broker::{PausedBroker, TestBroker};
pub use client::{RawClient, decode_response_frame, encode_request_frame, raw_request_frame};
pub use records::{TestRecord, as_stored, record_batch, record_batch_compressed, simple_batch};

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; an error names `what` was awaited.
pub fn wait_for<T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check()? {
            return Ok(found);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
