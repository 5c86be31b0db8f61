//! One client connection: Kafka serves a connection's requests one at a time and answers in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use skein_broker::sasl::SaslSession;
use skein_broker::{Broker, Outcome, RequestContext, handle_request};
use skein_protocol::{check_frame_length, decode_request_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

/// How long a failed SASL authentication waits before its answer (Kafka's connection.failed.authentication.delay.ms).
const FAILED_AUTHENTICATION_DELAY: Duration = Duration::from_millis(100);

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// `socket.request.max.bytes`: a larger frame closes the connection before anything is allocated.
    pub max_frame_bytes: usize,
    /// `sasl.server.max.receive.size`: the largest frame a SASL connection may send before it is authenticated.
    pub max_sasl_frame_bytes: usize,
    /// `connections.max.idle.ms`: a connection that sends nothing for this long is closed.
    pub max_idle: Duration,
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone)]
pub struct Client {
    pub address: SocketAddr,
    /// On an SSL listener, the principal of the client's certificate (`User:<mapped subject>`), if it gave one.
    pub tls_principal: Option<String>,
}

/// Why a connection ended, for the log.
#[derive(Debug)]
pub enum Closed {
    /// The client closed it, or shutdown began between requests.
    Normally,
    /// The client sent nothing for `connections.max.idle.ms`.
    Idle,
    /// The client broke the protocol (bad length, malformed header or body, unknown api): only this connection closes.
    ProtocolError(String),
    Io(std::io::Error),
    /// SASL authentication failed (answered SASL_AUTHENTICATION_FAILED first).
    AuthenticationFailed(String),
    /// An SSL listener's TLS handshake failed (no shared version, an untrusted or missing client certificate).
    TlsHandshake(String),
}

/// Serves requests from `stream` until the client goes away, breaks the protocol, or shutdown is requested.
/// A request already read is always answered before the connection closes for shutdown.
pub async fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    client: Client,
    listener: Arc<str>,
    settings: ConnectionSettings,
    mut sasl: Option<SaslSession>,
    shutdown: CancellationToken,
) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Client { address: peer, tls_principal } = client;
    // Kafka's form of the client's host, as DescribeGroups reports it.
    let client_host = format!("/{}", peer.ip());
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::new(writer);
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Closed::Normally,
            read = tokio::time::timeout(settings.max_idle, reader.read_exact(&mut prefix)) => match read {
                Ok(Ok(_)) => {}
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Closed::Normally,
                Ok(Err(err)) => return Closed::Io(err),
                Err(_) => return Closed::Idle,
            },
        }
        // Before authentication a SASL connection is held to sasl.server.max.receive.size, as in Kafka.
        let max_frame_bytes = match &sasl {
            Some(session) if !session.is_authenticated() => settings.max_frame_bytes.min(settings.max_sasl_frame_bytes),
            _ => settings.max_frame_bytes,
        };
        let length = match check_frame_length(prefix, max_frame_bytes) {
            Ok(length) => length,
            Err(err) => return Closed::ProtocolError(err.to_string()),
        };
        // Grow the buffer as bytes arrive rather than trusting the length up front.
        let mut body = Vec::with_capacity(length.min(64 * 1024));
        // A body that stops arriving is as idle as a silent connection.
        let mut frame_reader = (&mut reader).take(length as u64);
        match tokio::time::timeout(settings.max_idle, frame_reader.read_to_end(&mut body)).await {
            Ok(Ok(read)) if read == length => {}
            Ok(Ok(read)) => return Closed::ProtocolError(format!("frame truncated: {read} of {length} bytes")),
            Ok(Err(err)) => return Closed::Io(err),
            Err(_) => return Closed::Idle,
        }
        let frame = match decode_request_frame(body.into()) {
            Ok(frame) => frame,
            Err(err) => return Closed::ProtocolError(err.to_string()),
        };
        let api_key = frame.api_key;
        let correlation_id = frame.correlation_id;
        if sasl.as_ref().is_some_and(|session| session.expired(api_key, std::time::Instant::now())) {
            // KIP-368: the session ran out and the client did not re-authenticate.
            return Closed::AuthenticationFailed("the SASL session expired (connections.max.reauth.ms)".into());
        }
        let mut throttle = Duration::ZERO;
        let (outcome, close_after) = match sasl.as_mut().filter(|session| session.serves(api_key)) {
            Some(session) => {
                let step = session.serve(&broker, frame, &client_host, &listener).await;
                (step.outcome, step.close_after)
            }
            None => {
                // SASL's user on a SASL listener, else the TLS client certificate's, else anonymous.
                let principal = match (sasl.as_ref().and_then(SaslSession::user), &tls_principal) {
                    (Some(user), _) => format!("User:{user}"),
                    (None, Some(principal)) => principal.clone(),
                    (None, None) => skein_core::security::ANONYMOUS.to_owned(),
                };
                let ctx = RequestContext {
                    principal,
                    client_ip: peer.ip().to_string(),
                    listener: listener.clone(),
                    client_id: frame.client_id.clone().unwrap_or_default(),
                    throttle_ms: AtomicU64::new(0),
                    request_quota_exempt: AtomicBool::new(false),
                };
                let outcome = handle_request(&broker, frame, &ctx).await;
                throttle = Duration::from_millis(ctx.throttle_ms.load(Ordering::Relaxed));
                (outcome, None)
            }
        };
        if let Some(reason) = close_after {
            if let Outcome::Respond { frame, .. } = outcome {
                // Kafka answers a failed authentication after connection.failed.authentication.delay.ms (100 ms),
                // which slows down password guessing, then closes.
                tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                let _ = writer.write_all(&frame).await;
                let _ = writer.flush().await;
            }
            return Closed::AuthenticationFailed(reason);
        }
        match outcome {
            Outcome::Respond { frame, .. } => {
                if let Err(err) = writer.write_all(&frame).await {
                    return Closed::Io(err);
                }
                if let Err(err) = writer.flush().await {
                    return Closed::Io(err);
                }
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                return Closed::ProtocolError(format!("{reason} (api key {api_key}, correlation id {correlation_id})"));
            }
        }
        // A client over its quota: its connection is muted (nothing read) until the throttle time has passed
        // (KIP-219; the response told it how long).
        if !throttle.is_zero() {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Closed::Normally,
                () = tokio::time::sleep(throttle) => {}
            }
        }
    }
}
