//! TLS on the metadata quorum's connections, when the controller listener is SSL. The quorum only wraps its TCP
//! streams: the TLS itself (rustls, the listener's key and trust stores, certificate reload) is the server's, the
//! same as for its other SSL listeners.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connection of the quorum: a TCP stream, or TLS over one.
pub trait QuorumStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> QuorumStream for T {}

/// A connection being secured.
pub type SecuredStream = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn QuorumStream>>> + Send>>;

/// Secures the quorum's connections (the controller listener's TLS).
pub trait QuorumTls: Send + Sync + Debug {
    /// The client side, towards the node listening at `host` (the name its certificate is checked against).
    fn connect(&self, stream: TcpStream, host: String) -> SecuredStream;
    /// The server side of an accepted connection.
    fn accept(&self, stream: TcpStream) -> SecuredStream;
}
