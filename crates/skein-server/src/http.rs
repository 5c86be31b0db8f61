//! The metrics listener: `/metrics` (Prometheus text format), `/health` (the process is up) and `/ready` (storage
//! is open and recovered — true once the listener runs, since it starts after recovery).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Counters the server keeps until the full metrics registry lands.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    pub protocol_errors: AtomicU64,
}

impl ServerStats {
    fn render(&self) -> String {
        format!(
            "# HELP skein_connections_accepted_total Client connections accepted.\n\
             # TYPE skein_connections_accepted_total counter\n\
             skein_connections_accepted_total {}\n\
             # HELP skein_connections_active Client connections open now.\n\
             # TYPE skein_connections_active gauge\n\
             skein_connections_active {}\n\
             # HELP skein_protocol_errors_total Connections closed for breaking the protocol.\n\
             # TYPE skein_protocol_errors_total counter\n\
             skein_protocol_errors_total {}\n",
            self.connections_accepted.load(Ordering::Relaxed),
            self.connections_active.load(Ordering::Relaxed),
            self.protocol_errors.load(Ordering::Relaxed),
        )
    }
}

/// Serves HTTP/1.x GETs, one request per connection, until shutdown.
pub async fn serve(listener: TcpListener, stats: Arc<ServerStats>, shutdown: CancellationToken) {
    loop {
        let (mut stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut request)).await;
            let Ok(Ok(n)) = read else { return };
            let line = String::from_utf8_lossy(&request[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, content_type, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", stats.render()),
                "/health" | "/ready" => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
