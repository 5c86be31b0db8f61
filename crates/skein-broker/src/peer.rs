//! Requests from this broker to another, on the other's inter-broker listener: a follower's fetches, a
//! transaction coordinator's markers and verifications.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use skein_core::BrokerError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::broker::Broker;
use crate::cluster::endpoint;

/// How long connecting to another broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to another broker's inter-broker listener.
pub(crate) struct PeerConnection {
    stream: TcpStream,
    correlation_id: i32,
    client_id: StrBytes,
    /// The largest response frame accepted.
    max_response_bytes: usize,
}

fn codec(err: impl std::fmt::Display) -> BrokerError {
    BrokerError::Storage(format!("inter-broker codec: {err}"))
}

impl PeerConnection {
    /// Connects to broker `node_id`'s inter-broker listener, from this broker's own inter-broker address (so a
    /// network rule between two brokers' addresses applies to every connection between them). `client_id` names
    /// the purpose in the other broker's logs.
    pub(crate) async fn open(
        broker: &Broker,
        node_id: i32,
        client_id: String,
        max_response_bytes: usize,
    ) -> Result<Self, BrokerError> {
        let image = broker.image();
        let listener = &broker.config.inter_broker_listener_name;
        let registration = image.broker(node_id).ok_or(BrokerError::LeaderNotAvailable)?;
        let target = endpoint(registration, listener).ok_or(BrokerError::LeaderNotAvailable)?;
        let address = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|err| BrokerError::Storage(format!("cannot resolve {}: {err}", target.host)))?
            .next()
            .ok_or(BrokerError::LeaderNotAvailable)?;
        let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
            .map_err(|err| BrokerError::Storage(format!("cannot open a socket: {err}")))?;
        let own = image.broker(broker.config.node_id).and_then(|b| endpoint(b, listener)).map(|e| e.host.clone());
        if let Some(own) = own.and_then(|host| host.parse::<std::net::IpAddr>().ok())
            && own.is_ipv4() == address.is_ipv4()
            && !own.is_unspecified()
        {
            socket
                .bind(SocketAddr::new(own, 0))
                .map_err(|err| BrokerError::Storage(format!("cannot bind to {own}: {err}")))?;
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(address))
            .await
            .map_err(|_| BrokerError::RequestTimedOut(format!("connecting to broker {node_id} at {address}")))?
            .map_err(|err| BrokerError::Storage(format!("cannot connect to broker {node_id} at {address}: {err}")))?;
        stream.set_nodelay(true).ok();
        Ok(PeerConnection {
            stream,
            correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
            max_response_bytes,
        })
    }

    /// Sends one request and reads its answer, within `wait` and `max_response_bytes`.
    pub(crate) async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        wait: Duration,
    ) -> Result<R::Response, BrokerError> {
        let io = |err: std::io::Error| BrokerError::Storage(format!("inter-broker connection: {err}"));
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).map_err(codec)?;
        request.encode(&mut body, version).map_err(codec)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
        frame.extend_from_slice(&body);
        let limit = self.max_response_bytes;
        let exchange = async {
            self.stream.write_all(&frame).await.map_err(io)?;
            let length = self.stream.read_u32().await.map_err(io)?;
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if length > limit {
                return Err(BrokerError::CorruptMessage(format!("a {length}-byte response frame from a broker")));
            }
            let mut buf = vec![0u8; length];
            self.stream.read_exact(&mut buf).await.map_err(io)?;
            Ok(Bytes::from(buf))
        };
        let mut buf = tokio::time::timeout(wait, exchange)
            .await
            .map_err(|_| BrokerError::RequestTimedOut(format!("no answer from a broker to api key {}", R::KEY)))??;
        let header =
            ResponseHeader::decode(&mut buf, <R::Response as HeaderVersion>::header_version(version)).map_err(codec)?;
        if header.correlation_id != self.correlation_id {
            return Err(BrokerError::CorruptMessage(format!(
                "response for correlation id {}, expected {}",
                header.correlation_id, self.correlation_id
            )));
        }
        let response = R::Response::decode(&mut buf, version).map_err(codec)?;
        if buf.has_remaining() {
            tracing::debug!(left = buf.remaining(), api_key = R::KEY, "bytes after a broker's response");
        }
        Ok(response)
    }
}
