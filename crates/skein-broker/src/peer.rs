//! Requests from this broker to another, on the other's inter-broker listener: a follower's fetches, a
//! transaction coordinator's markers and verifications. Over TLS when that listener is SSL or SASL_SSL, after a
//! SASL login when it is SASL_PLAINTEXT or SASL_SSL, as Kafka's brokers connect to each other.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use ring::rand::SecureRandom;
use skein_core::BrokerError;
use skein_core::security::InterBrokerLogin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::broker::Broker;
use crate::cluster::endpoint;
use crate::scram::{ScramClient, ScramMechanism, keys_equal};

/// How long connecting to another broker may take (TCP, and then the TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one SASL step with another broker may take.
const SASL_WAIT: Duration = Duration::from_secs(10);

/// A byte stream to another broker: TCP, or TLS over TCP.
pub trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}

pub type PeerTlsFuture = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn PeerStream>>> + Send>>;

/// The client side of TLS on an SSL or SASL_SSL inter-broker listener (the server, which owns TLS, builds it).
pub trait PeerTls: Send + Sync {
    /// Starts TLS on `stream`, a connection to `host`.
    fn connect(&self, stream: TcpStream, host: String) -> PeerTlsFuture;
}

/// How this broker reaches the others' inter-broker listener: plain TCP, TLS, and with or without a SASL login.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    pub tls: Option<Arc<dyn PeerTls>>,
    pub login: Option<InterBrokerLogin>,
}

impl std::fmt::Debug for PeerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSecurity").field("tls", &self.tls.is_some()).field("login", &self.login).finish()
    }
}

/// A connection to another broker's inter-broker listener.
pub(crate) struct PeerConnection {
    stream: Box<dyn PeerStream>,
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
        let security = &broker.peer_security;
        let stream: Box<dyn PeerStream> = match &security.tls {
            Some(tls) => tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(stream, target.host.clone()))
                .await
                .map_err(|_| BrokerError::RequestTimedOut(format!("TLS handshake with broker {node_id}")))?
                .map_err(|err| BrokerError::Storage(format!("TLS with broker {node_id} at {address}: {err}")))?,
            None => Box::new(stream),
        };
        let mut connection = PeerConnection {
            stream,
            correlation_id: 0,
            client_id: StrBytes::from_string(client_id),
            max_response_bytes,
        };
        if let Some(login) = &security.login {
            connection.log_in(login).await.map_err(|err| {
                BrokerError::SaslAuthenticationFailed(format!("logging in to broker {node_id} at {address}: {err}"))
            })?;
        }
        Ok(connection)
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds: PLAIN's one, or SCRAM's two (RFC 5802), checking the
    /// other broker's signature.
    async fn log_in(&mut self, login: &InterBrokerLogin) -> Result<(), BrokerError> {
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(login.mechanism.clone()));
        let answer = self.send(&handshake, 1, SASL_WAIT).await?;
        if answer.error_code != 0 {
            return Err(BrokerError::UnsupportedSaslMechanism(format!(
                "{} refused (error {}; the other broker offers {:?})",
                login.mechanism,
                answer.error_code,
                answer.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>()
            )));
        }
        let Some(scram) = ScramMechanism::from_name(&login.mechanism) else {
            let token = format!("\0{}\0{}", login.username, login.password);
            self.authenticate(token.into_bytes()).await?;
            return Ok(());
        };
        let mut nonce = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| BrokerError::SaslAuthenticationFailed("no randomness for a SCRAM nonce".into()))?;
        let client = ScramClient::new(scram, &login.username, &login.password, &BASE64.encode(nonce));
        let server_first = self.authenticate(client.first().into_bytes()).await?;
        let (client_final, server_signature) = client
            .finish(&String::from_utf8_lossy(&server_first))
            .map_err(|err| BrokerError::SaslAuthenticationFailed(err.to_owned()))?;
        let server_final = self.authenticate(client_final.into_bytes()).await?;
        let server_final = String::from_utf8_lossy(&server_final);
        let verified = server_final
            .strip_prefix("v=")
            .and_then(|signature| BASE64.decode(signature).ok())
            .is_some_and(|signature| keys_equal(&signature, &server_signature));
        if !verified {
            return Err(BrokerError::SaslAuthenticationFailed(
                "the other broker did not prove it knows the credential".into(),
            ));
        }
        Ok(())
    }

    async fn authenticate(&mut self, token: Vec<u8>) -> Result<Bytes, BrokerError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let answer = self.send(&request, 1, SASL_WAIT).await?;
        if answer.error_code != 0 {
            return Err(BrokerError::SaslAuthenticationFailed(format!(
                "error {}: {}",
                answer.error_code,
                answer.error_message.as_ref().map_or("", |m| m.as_str())
            )));
        }
        Ok(answer.auth_bytes)
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
