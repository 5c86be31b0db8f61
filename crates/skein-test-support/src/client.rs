//! A blocking Kafka client at the frame level: it encodes requests with `kafka-protocol`, checks correlation ids, and
//! can also send arbitrary bytes to test how the broker treats bad input. Every read and write has a timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The client id every request carries.
pub const CLIENT_ID: &str = "skein-test";
/// Read and write timeout of a new client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response frame the client accepts; anything bigger means the stream is out of sync.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// One TCP connection to a broker.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    /// Connects with [`DEFAULT_TIMEOUT`] for the connection, every read and every write.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream =
            TcpStream::connect_timeout(&addr, DEFAULT_TIMEOUT).with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(RawClient { stream, next_correlation_id: 1 })
    }

    /// Changes the read timeout (how long [`read_frame`](Self::read_frame) and [`is_closed`](Self::is_closed) wait).
    pub fn set_read_timeout(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        Ok(())
    }

    /// A fresh correlation id.
    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    /// Writes `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).context("write to the broker failed")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Closes the sending half: the broker reads EOF after what was sent.
    pub fn shutdown_write(&mut self) -> anyhow::Result<()> {
        self.stream.shutdown(Shutdown::Write).context("cannot shut down the write half")
    }

    /// Sends `request` at `version` with a fresh correlation id, which it returns; the answer is read separately with
    /// [`receive`](Self::receive) (or never, for a produce with acks=0).
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<i32> {
        let correlation_id = self.next_correlation_id();
        let frame = encode_request_frame(version, correlation_id, request)?;
        self.send_raw(&frame)?;
        Ok(correlation_id)
    }

    /// Reads the next frame and decodes it as the response to `R` at `version`, which must carry `correlation_id`.
    pub fn receive<R: Request>(&mut self, version: i16, correlation_id: i32) -> anyhow::Result<R::Response> {
        Ok(self.receive_with_body::<R>(version, correlation_id)?.0)
    }

    /// Like [`receive`](Self::receive), also returning the raw response body (after the response header).
    pub fn receive_with_body<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> anyhow::Result<(R::Response, Bytes)> {
        let frame = self.read_frame()?;
        let (answered_id, body) = split_response_header::<R>(frame, version)?;
        ensure!(
            answered_id == correlation_id,
            "response carries correlation id {answered_id}, expected {correlation_id}"
        );
        let mut buf = body.clone();
        let response = R::Response::decode(&mut buf, version)
            .with_context(|| format!("cannot decode the response to api key {} v{version}", R::KEY))?;
        ensure!(
            !buf.has_remaining(),
            "{} bytes left over after the response to api key {} v{version}",
            buf.remaining(),
            R::KEY
        );
        Ok((response, body))
    }

    /// Sends `request` at `version` and returns the decoded response.
    pub fn request<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        let correlation_id = self.send(version, request)?;
        self.receive::<R>(version, correlation_id)
    }

    /// Like [`request`](Self::request), also returning the raw response body (after the response header).
    pub fn request_with_body<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<(R::Response, Bytes)> {
        let correlation_id = self.send(version, request)?;
        self.receive_with_body::<R>(version, correlation_id)
    }

    /// Reads one response frame and returns it without its length prefix.
    pub fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).map_err(read_error)?;
        let length = i32::from_be_bytes(prefix);
        let length = usize::try_from(length).ok().filter(|n| *n <= MAX_RESPONSE_BYTES);
        let Some(length) = length else {
            bail!("response length prefix {prefix:?} is negative or over {MAX_RESPONSE_BYTES} bytes");
        };
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).map_err(read_error)?;
        Ok(Bytes::from(body))
    }

    /// Whether the broker closed the connection: true on EOF or a reset within the read timeout, false if bytes
    /// arrived or nothing happened before the timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(err) => {
                matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe)
            }
        }
    }
}

fn read_error(err: std::io::Error) -> anyhow::Error {
    match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => anyhow::anyhow!("timed out waiting for the broker: {err}"),
        ErrorKind::UnexpectedEof => anyhow::anyhow!("the broker closed the connection"),
        _ => anyhow::Error::new(err).context("read from the broker failed"),
    }
}

/// A complete request frame (length prefix, header at the version `R` prescribes, body) for `request` at `version`.
pub fn encode_request_frame<R: Request>(version: i16, correlation_id: i32, request: &R) -> anyhow::Result<Vec<u8>> {
    let mut body = BytesMut::new();
    request.encode(&mut body, version).with_context(|| format!("cannot encode api key {} v{version}", R::KEY))?;
    raw_request_frame(R::KEY, version, R::header_version(version), correlation_id, &body)
}

/// A request frame from parts: any api key and version, with the request header encoded at `header_version`
/// (1: non-flexible, 2: flexible) followed by `body` as given.
pub fn raw_request_frame(
    api_key: i16,
    api_version: i16,
    header_version: i16,
    correlation_id: i32,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(api_version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0u8; 4]);
    header.encode(&mut frame, header_version).context("cannot encode the request header")?;
    frame.extend_from_slice(body);
    let length = i32::try_from(frame.len() - 4).context("request over 2 GiB")?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame.to_vec())
}

/// Decodes a response frame (without its length prefix) to `R` at `version`: (correlation id, response).
pub fn decode_response_frame<R: Request>(frame: Bytes, version: i16) -> anyhow::Result<(i32, R::Response)> {
    let (correlation_id, mut body) = split_response_header::<R>(frame, version)?;
    let response = R::Response::decode(&mut body, version)
        .with_context(|| format!("cannot decode the response to api key {} v{version}", R::KEY))?;
    Ok((correlation_id, response))
}

fn split_response_header<R: Request>(mut frame: Bytes, version: i16) -> anyhow::Result<(i32, Bytes)> {
    let header_version = R::Response::header_version(version);
    let header = ResponseHeader::decode(&mut frame, header_version)
        .with_context(|| format!("cannot decode a v{header_version} response header"))?;
    Ok((header.correlation_id, frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn request_frames_carry_their_length_and_header_version() {
        let frame = encode_request_frame(12, 9, &MetadataRequest::default()).expect("encode");
        let length = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(usize::try_from(length).expect("positive") + 4, frame.len());
        // api key 3, version 12, correlation id 9, then the client id.
        assert_eq!(&frame[4..12], &[0, 3, 0, 12, 0, 0, 0, 9]);
        assert_eq!(&frame[12..14], &i16::try_from(CLIENT_ID.len()).expect("short").to_be_bytes());

        let mut buf = Bytes::copy_from_slice(&frame[4..]);
        let header = RequestHeader::decode(&mut buf, 2).expect("flexible header");
        assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
    }

    #[test]
    fn response_frames_decode_with_their_correlation_id() {
        let response = ApiVersionsResponse::default().with_error_code(35);
        let mut frame = BytesMut::new();
        ResponseHeader::default().with_correlation_id(77).encode(&mut frame, 0).expect("header");
        response.encode(&mut frame, 0).expect("body");
        let (correlation_id, decoded) = decode_response_frame::<ApiVersionsRequest>(frame.freeze(), 0).expect("decode");
        assert_eq!((correlation_id, decoded.error_code), (77, 35));
    }
}
