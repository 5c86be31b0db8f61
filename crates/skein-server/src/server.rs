//! Start-up, the accept loop and graceful shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use skein_broker::{Broker, Metrics};
use skein_core::BrokerConfig;
use skein_group::CoordinatorTask;
use skein_storage::{Engine, RocksEngine};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{self, Closed, ConnectionSettings};
use crate::http;
use crate::limits::{ConnectionLimits, LogRateLimit};

/// How long in-flight requests may take to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the broker until `shutdown_signal` completes, then stops accepting, lets in-flight requests finish,
/// flushes storage and returns.
pub async fn run(config: BrokerConfig, shutdown_signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    let data_dir = PathBuf::from(&config.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data.dir {}", data_dir.display()))?;
    let db_path = data_dir.join("rocksdb");
    let metrics = Arc::new(Metrics::new(config.metrics_partition_level).context("cannot set up the metrics")?);
    let (broker, group_task) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Broker, CoordinatorTask)> {
        let engine: Arc<dyn Engine> =
            Arc::new(RocksEngine::open(&db_path).with_context(|| format!("cannot open {}", db_path.display()))?);
        Ok(Broker::open(config, engine, metrics)?)
    })
    .await??;
    let broker = Arc::new(broker);
    // Transactions decided before a crash but not completed are completed before any client is served.
    let recovered = broker.transactions.recover(&broker.topics).await.context("cannot recover transactions")?;
    if recovered > 0 {
        tracing::info!(recovered, "completed transactions left prepared");
    }
    tracing::info!(
        node_id = broker.config.node_id,
        cluster_id = %broker.cluster_id,
        topics = broker.topics.all().len(),
        "storage recovered"
    );

    let listener = TcpListener::bind(&broker.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", broker.config.listen))?;
    let metrics_listener = TcpListener::bind(&broker.config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on metrics.listen {}", broker.config.metrics_listen))?;
    tracing::info!(
        listen = %broker.config.listen,
        advertised = %broker.config.advertised(),
        metrics = %broker.config.metrics_listen,
        "skein is serving"
    );

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(http::serve(metrics_listener, Arc::clone(&broker), tracker.clone(), shutdown.child_token()));
    // Background work: producer-id expiry, transaction timeouts, retention and compaction.
    let b = Arc::clone(&broker);
    let period = millis(broker.config.producer_id_expiration_check_interval_ms, 600_000);
    tracker.spawn(every(period, shutdown.child_token(), move || {
        let broker = Arc::clone(&b);
        async move {
            let expired = broker.expire_producers(wall_clock_ms()).await;
            if expired > 0 {
                tracing::info!(expired, "expired idle producer ids");
            }
        }
    }));
    tracker.spawn(group_task.run(shutdown.child_token()));
    let b = Arc::clone(&broker);
    tracker.spawn(every(broker.transactions.settings().abort_check_interval, shutdown.child_token(), move || {
        let broker = Arc::clone(&b);
        async move {
            let aborted = broker.transactions.abort_timed_out(&broker.topics, wall_clock_ms()).await;
            if aborted > 0 {
                tracing::info!(aborted, "aborted timed-out transactions");
            }
        }
    }));
    let b = Arc::clone(&broker);
    let period = millis(broker.config.log_retention_check_interval_ms, 300_000);
    tracker.spawn(every(period, shutdown.child_token(), move || {
        let broker = Arc::clone(&b);
        async move {
            broker.enforce_retention(wall_clock_ms()).await;
        }
    }));
    if broker.config.log_cleaner_enable {
        let b = Arc::clone(&broker);
        let pause = millis(broker.config.log_cleaner_backoff_ms, 15_000);
        tracker.spawn(every(pause, shutdown.child_token(), move || {
            let broker = Arc::clone(&b);
            async move {
                broker.compact_topics(wall_clock_ms()).await;
            }
        }));
    }

    let connection_settings = ConnectionSettings {
        max_frame_bytes: usize::try_from(broker.config.socket_request_max_bytes).unwrap_or(usize::MAX),
        max_idle: Duration::from_millis(u64::try_from(broker.config.connections_max_idle_ms).unwrap_or(600_000)),
    };
    let limits = ConnectionLimits::new(
        broker.config.max_connections,
        u32::try_from(broker.config.max_connections_per_ip).unwrap_or(u32::MAX),
    );
    // A flood of refused connections or broken frames costs a few log lines a second, not one per event.
    let refusal_log = Arc::new(LogRateLimit::new(10, Duration::from_secs(1)));
    let protocol_error_log = Arc::new(LogRateLimit::new(10, Duration::from_secs(1)));
    tokio::pin!(shutdown_signal);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown_signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                // Closed at once, as Kafka closes a connection over its quota: waiting would hold the socket.
                broker.metrics.connection_refused();
                if let Some(suppressed) = refusal_log.allow() {
                    tracing::warn!(%peer, reason = %refusal, suppressed, "refusing a connection");
                }
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        broker.metrics.connection_opened();
        let broker = Arc::clone(&broker);
        let token = shutdown.child_token();
        let protocol_error_log = Arc::clone(&protocol_error_log);
        tracker.spawn(async move {
            let metrics = Arc::clone(&broker.metrics);
            let closed = connection::serve(broker, stream, peer, connection_settings, token).await;
            metrics.connection_closed(matches!(closed, Closed::ProtocolError(_)));
            match closed {
                Closed::Normally => tracing::debug!(%peer, "connection closed"),
                Closed::Idle => tracing::debug!(%peer, "closing an idle connection"),
                Closed::ProtocolError(reason) => match protocol_error_log.allow() {
                    // Escaped: the reason may quote bytes of the request.
                    Some(suppressed) => {
                        tracing::warn!(%peer, reason = %reason.escape_debug(), suppressed, "closing connection: protocol error")
                    }
                    None => tracing::debug!(%peer, reason = %reason.escape_debug(), "closing connection: protocol error"),
                },
                Closed::Io(err) => tracing::debug!(%peer, error = %err, "connection I/O error"),
            }
            drop(slot);
        });
    }

    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    drop(listener);
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
    }
    let engine = Arc::clone(&broker.engine);
    tokio::task::spawn_blocking(move || engine.flush()).await??;
    tracing::info!("storage flushed; bye");
    Ok(())
}

/// Runs `work` every `period` (the first time one period after start) until shutdown. A run that takes longer than
/// the period delays the next one instead of piling up.
async fn every<F, Fut>(period: Duration, shutdown: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        work().await;
    }
}

fn millis(ms: i64, default: u64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(default))
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
