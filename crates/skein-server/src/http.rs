//! The metrics listener: `/metrics` (Prometheus text format), `/health` (the process is up) and `/ready` (this
//! broker is registered and unfenced, and coordinates the groups it should: their partitions are loaded).

use std::sync::Arc;
use std::time::Duration;

use skein_broker::{Broker, metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The content type of Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";
/// The most of a request read; only the request line matters.
const MAX_REQUEST_HEAD_BYTES: usize = 4096;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long answering one request may take, request and response together.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; more connections are closed on arrival (a scraper retries on its next interval).
const MAX_CONCURRENT_REQUESTS: usize = 8;

/// Serves HTTP/1.x GETs, one request per connection, until shutdown. Each exchange is a task of `tracker`, bounded
/// in number, size and time.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, tracker: TaskTracker, shutdown: CancellationToken) {
    let in_flight = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS));
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let broker = Arc::clone(&broker);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(stream, &broker)) => {}
            }
            drop(permit);
        });
    }
}

/// Reads one request and writes its response.
async fn exchange(mut stream: TcpStream, broker: &Broker) {
    let Ok(Some(head)) = tokio::time::timeout(REQUEST_TIMEOUT, read_request_head(&mut stream)).await else {
        return;
    };
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = match path {
        "/metrics" => match metrics::render(broker).await {
            Ok(text) => ("200 OK", METRICS_CONTENT_TYPE, text),
            Err(err) => {
                tracing::error!(error = %err, "cannot render the metrics");
                ("500 Internal Server Error", "text/plain", "cannot render the metrics\n".to_string())
            }
        },
        "/health" => ("200 OK", "text/plain", "ok\n".to_string()),
        // Ready once this broker is registered and unfenced: it then leads partitions and is in Metadata.
        "/ready" if !broker.image().is_live(broker.config.node_id) => {
            ("503 Service Unavailable", "text/plain", "not registered and unfenced yet\n".to_string())
        }
        "/ready" if !broker.group_log.is_caught_up(broker) => {
            ("503 Service Unavailable", "text/plain", "loading the groups this broker coordinates\n".to_string())
        }
        "/ready" if !broker.txn_log.is_caught_up(broker) => (
            "503 Service Unavailable",
            "text/plain",
            "loading the transactional ids this broker coordinates\n".to_string(),
        ),
        "/ready" => ("200 OK", "text/plain", "ok\n".to_string()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads the request up to the blank line ending its headers (a client may send it in several writes), the end of
/// the stream, or [`MAX_REQUEST_HEAD_BYTES`]; `None` on a read error.
async fn read_request_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD_BYTES {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}
