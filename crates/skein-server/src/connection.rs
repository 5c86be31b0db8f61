//! One client connection: Kafka serves a connection's requests one at a time and answers in order.

use std::net::SocketAddr;
use std::sync::Arc;

use skein_broker::{Broker, Outcome, handle_request};
use skein_protocol::{check_frame_length, decode_request_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

/// Why a connection ended, for the log.
#[derive(Debug)]
pub enum Closed {
    /// The client closed it, or shutdown began between requests.
    Normally,
    /// The client broke the protocol (bad length, malformed header or body, unknown api): only this connection closes.
    ProtocolError(String),
    Io(std::io::Error),
}

/// Serves requests from `stream` until the client goes away, breaks the protocol, or shutdown is requested.
/// A request already read is always answered before the connection closes for shutdown.
pub async fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    max_frame_bytes: usize,
    shutdown: CancellationToken,
) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Kafka's form of the client's host, as DescribeGroups reports it.
    let client_host = format!("/{}", peer.ip());
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::new(writer);
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Closed::Normally,
            read = reader.read_exact(&mut prefix) => match read {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Closed::Normally,
                Err(err) => return Closed::Io(err),
            },
        }
        let length = match check_frame_length(prefix, max_frame_bytes) {
            Ok(length) => length,
            Err(err) => return Closed::ProtocolError(err.to_string()),
        };
        // Grow the buffer as bytes arrive rather than trusting the length up front.
        let mut body = Vec::with_capacity(length.min(64 * 1024));
        match (&mut reader).take(length as u64).read_to_end(&mut body).await {
            Ok(read) if read == length => {}
            Ok(read) => return Closed::ProtocolError(format!("frame truncated: {read} of {length} bytes")),
            Err(err) => return Closed::Io(err),
        }
        let frame = match decode_request_frame(body.into()) {
            Ok(frame) => frame,
            Err(err) => return Closed::ProtocolError(err.to_string()),
        };
        let api_key = frame.api_key;
        let correlation_id = frame.correlation_id;
        match handle_request(&broker, frame, &client_host).await {
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
    }
}
