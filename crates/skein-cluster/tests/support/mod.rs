//! Helpers shared by the in-process quorum tests (`quorum.rs`, `observers.rs`).

#![allow(clippy::unwrap_used, dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use skein_cluster::{Endpoint, NodeId, QuorumConfig};

/// Log output (RUST_LOG, default warn) through the test harness.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// A port nobody listens on now, on `ip`.
pub(crate) fn free_addr(ip: IpAddr) -> SocketAddr {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// Timeouts widened for a 2-core machine shared with builds.
pub(crate) fn tune(config: &mut QuorumConfig) {
    config.heartbeat_ms = 250;
    config.election_timeout_min_ms = 1000;
    config.election_timeout_max_ms = 2000;
    // Long enough that brokers registered by a test never expire unless the test wants them to.
    config.broker_session_timeout_ms = 60_000;
    config.operation_timeout_ms = 15_000;
}

/// `probe` until it answers, failing the test after `within`.
pub(crate) async fn wait_until<T>(within: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A broker's advertised listener in the tests.
pub(crate) fn endpoint(id: NodeId) -> Vec<Endpoint> {
    vec![Endpoint {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: 9092 + u16::try_from(id).unwrap(),
        security_protocol: 0,
    }]
}
