//! Controller-to-controller RPCs over TCP (TLS when the controller listener is SSL, see [`crate::transport`]) in a
//! private frame: openraft's append-entries, vote and snapshot, plus `Hello` (bootstrap probe) and `Propose` (a
//! controller operation forwarded to the leader).
//!
//! Raft's own requests (append-entries, vote, snapshot) are accepted from configured voters only; `Hello` and
//! `Propose` from any node, so observers (learners, not in the voter list) can forward operations and ask to
//! join. Observers are reached at the address stored in the Raft membership (`BasicNode.addr`).
//!
//! # Frame
//! `length: u32 BE | kind: u8 | body`, where `length` counts `kind` and `body` and is checked against
//! `max_frame_bytes` before anything is read; the body buffer then grows only as bytes arrive. A request's
//! body is JSON [`Envelope`] (sender node id, sender's cluster id, payload); the reply uses the same kind
//! with the high bit set and a JSON `Result<payload, WireError>` body. One request at a time per
//! connection; a connection is dropped on any error (so a late reply can never answer the next request).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use openraft::{BasicNode, OptionalSend, RaftNetwork, RaftNetworkFactory, Snapshot};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::controller::{Controller, ControllerRequest, ControllerResponse};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::records::NodeId;
use crate::storage::MetadataDb;
use crate::transport::{QuorumStream, QuorumTls};
use crate::types::{Raft, RaftNodeId, SnapshotMeta, TypeConfig, Vote, kafka_id};

pub(crate) const KIND_HELLO: u8 = 1;
pub(crate) const KIND_APPEND_ENTRIES: u8 = 2;
pub(crate) const KIND_VOTE: u8 = 3;
pub(crate) const KIND_SNAPSHOT: u8 = 4;
pub(crate) const KIND_PROPOSE: u8 = 5;
const REPLY_BIT: u8 = 0x80;

/// An idle inbound connection is closed after this long (peers send at least a heartbeat per interval).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What every request carries besides its payload.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) from: NodeId,
    pub(crate) cluster_id: Option<String>,
    pub(crate) body: T,
}

/// Why the receiving node refused a request before looking at its payload.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum WireError {
    #[error("inconsistent cluster id: receiver has {receiver}, sender {sender}")]
    InconsistentClusterId { receiver: String, sender: String },
    /// AppendEntries, Vote and Snapshot are accepted from configured voters only.
    #[error("node {0} is not a voter of this quorum")]
    UnknownSender(NodeId),
    #[error("receiver unavailable: {0}")]
    Unavailable(String),
}

/// Reply to `Hello`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HelloReply {
    pub(crate) node_id: NodeId,
    pub(crate) cluster_id: Option<String>,
    pub(crate) initialized: bool,
}

/// Payload of a snapshot request: the whole image in one frame.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotRequest {
    pub(crate) vote: Vote,
    pub(crate) meta: SnapshotMeta,
    pub(crate) image: MetadataImage,
}

type AppendReply = Result<AppendEntriesResponse<RaftNodeId>, RaftError<RaftNodeId>>;
type VoteReply = Result<VoteResponse<RaftNodeId>, RaftError<RaftNodeId>>;
type SnapshotReply = Result<SnapshotResponse<RaftNodeId>, Fatal<RaftNodeId>>;
type ProposeReply = Result<ControllerResponse, ControllerError>;

/// Failure of one call, before any reply payload was decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("no address known for node {0}")]
    NoAddress(NodeId),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("bad reply: {0}")]
    Decode(String),
    #[error("refused: {0}")]
    Refused(WireError),
}

impl CallError {
    /// Whether the request certainly never reached the peer (safe to send elsewhere).
    pub(crate) fn not_sent(&self) -> bool {
        matches!(self, CallError::Connect { .. } | CallError::NoAddress(_))
    }
}

// ---- frames ----

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, kind: u8, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len() + 1)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&[kind]).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: u32) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len == 0 || len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame length {len} outside 1..={max}"),
        ));
    }
    let mut kind = [0u8; 1];
    r.read_exact(&mut kind).await?;
    let body_len = u64::from(len - 1);
    // Grow with the bytes actually received, never by the length on the wire.
    let mut body = Vec::new();
    let read = r.take(body_len).read_to_end(&mut body).await?;
    if u64::try_from(read).unwrap_or(u64::MAX) != body_len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "frame truncated"));
    }
    Ok(Some((kind[0], body)))
}

// ---- shared identity ----

/// This node's identity as the network sees it; the cluster id may be learned from a peer once.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) node_id: NodeId,
    cluster_id: RwLock<Option<String>>,
    /// Taken away at shutdown so the database can close while peers' handles linger.
    db: Mutex<Option<Arc<MetadataDb>>>,
    /// The last cluster id mismatch with a voter, either way round.
    conflict: Mutex<Option<String>>,
}

impl Identity {
    pub(crate) fn new(node_id: NodeId, cluster_id: Option<String>, db: Arc<MetadataDb>) -> Self {
        Self { node_id, cluster_id: RwLock::new(cluster_id), db: Mutex::new(Some(db)), conflict: Mutex::new(None) }
    }

    pub(crate) fn release_db(&self) {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }

    pub(crate) fn cluster_id(&self) -> Option<String> {
        self.cluster_id.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stores a cluster id if none is known yet (synced to disk first). Returns the id in force.
    pub(crate) async fn adopt(&self, id: &str) -> Result<String, String> {
        if let Some(current) = self.cluster_id() {
            return Ok(current);
        }
        let db = self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let db = db.ok_or_else(|| "metadata quorum is shutting down".to_owned())?;
        let owned = id.to_owned();
        tokio::task::spawn_blocking(move || db.set_cluster_id(&owned))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut slot = self.cluster_id.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = slot.get_or_insert_with(|| id.to_owned()).clone();
        tracing::info!(cluster_id = %current, "cluster id stored");
        Ok(current)
    }

    /// Remembers that a voter and this node disagree on the cluster id.
    pub(crate) fn record_conflict(&self, description: String) {
        let mut slot = self.conflict.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            tracing::error!(%description, "inconsistent cluster id");
        }
        *slot = Some(description);
    }

    /// The last cluster id mismatch seen with a voter.
    pub(crate) fn conflict(&self) -> Option<String> {
        self.conflict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Checks a peer's cluster id against ours, adopting it when we have none and the peer is a voter (an
    /// observer's cluster id is checked but never adopted: only voters define the cluster).
    async fn check(&self, sender: Option<&str>, from_voter: bool) -> Result<(), WireError> {
        match (self.cluster_id(), sender) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                if from_voter {
                    self.record_conflict(format!("a voter of cluster {theirs} contacted this node of cluster {ours}"));
                } else {
                    // An observer of another cluster is its problem, not ours (it records the refusal).
                    tracing::warn!(%ours, %theirs, "request from a non-voter of another cluster refused");
                }
                Err(WireError::InconsistentClusterId { receiver: ours, sender: theirs.to_owned() })
            }
            (None, Some(theirs)) if from_voter => self.adopt(theirs).await.map(|_| ()).map_err(WireError::Unavailable),
            _ => Ok(()),
        }
    }
}

// ---- client ----

/// Settings of outgoing connections.
#[derive(Clone, Debug)]
pub(crate) struct ClientSettings {
    pub(crate) bind: Option<IpAddr>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_frame_bytes: u32,
    pub(crate) tls: Option<Arc<dyn QuorumTls>>,
    /// The host names voters are reached by (for their certificates).
    pub(crate) hosts: Arc<BTreeMap<NodeId, String>>,
}

type Conn = (BufReader<ReadHalf<Box<dyn QuorumStream>>>, BufWriter<WriteHalf<Box<dyn QuorumStream>>>);

/// One peer's connection, reopened on demand.
pub(crate) struct PeerConnection {
    target: NodeId,
    addr: Option<SocketAddr>,
    settings: ClientSettings,
    identity: Arc<Identity>,
    conn: Option<Conn>,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("target", &self.target)
            .field("addr", &self.addr)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl PeerConnection {
    pub(crate) fn new(
        target: NodeId,
        addr: Option<SocketAddr>,
        settings: ClientSettings,
        identity: Arc<Identity>,
    ) -> Self {
        Self { target, addr, settings, identity, conn: None }
    }

    async fn connect(&self) -> Result<Conn, CallError> {
        let addr = self.addr.ok_or(CallError::NoAddress(self.target))?;
        let connect = async {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            if let Some(ip) = self.settings.bind
                && ip.is_ipv4() == addr.is_ipv4()
            {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let stream: TcpStream = socket.connect(addr).await?;
            // Connecting to a local port nobody listens on can pick that very port as the source and connect
            // to itself (TCP simultaneous open), holding the port the peer is about to listen on.
            if stream.local_addr()? == addr {
                return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connected to itself"));
            }
            stream.set_nodelay(true)?;
            match &self.settings.tls {
                Some(tls) => {
                    let host = self.settings.hosts.get(&self.target).cloned().unwrap_or_else(|| addr.ip().to_string());
                    tls.connect(stream, host).await
                }
                None => Ok(Box::new(stream) as Box<dyn QuorumStream>),
            }
        };
        let stream = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(CallError::Connect { addr, source }),
            Err(_) => {
                let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
                return Err(CallError::Connect { addr, source });
            }
        };
        let (r, w) = tokio::io::split(stream);
        Ok((BufReader::new(r), BufWriter::new(w)))
    }

    /// Sends one request and waits for its reply, within `timeout` overall.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: u8,
        body: Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let envelope = Envelope { from: self.identity.node_id, cluster_id: self.identity.cluster_id(), body };
        let payload = serde_json::to_vec(&envelope).map_err(|e| CallError::Decode(e.to_string()))?;
        let result = match tokio::time::timeout(timeout, self.exchange(kind, &payload)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(timeout)),
        };
        if result.is_err() {
            self.conn = None;
        }
        let reply = result?;
        let decoded: Result<Resp, WireError> =
            serde_json::from_slice(&reply).map_err(|e| CallError::Decode(e.to_string()))?;
        if let Err(WireError::InconsistentClusterId { receiver, sender }) = &decoded {
            self.identity.record_conflict(format!(
                "node {} belongs to cluster {receiver}, this node's data directory to cluster {sender}",
                self.target
            ));
        }
        decoded.map_err(CallError::Refused)
    }

    async fn exchange(&mut self, kind: u8, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some((reader, writer)) = self.conn.as_mut() else {
            return Err(CallError::NoAddress(self.target));
        };
        write_frame(writer, kind, payload).await?;
        match read_frame(reader, self.settings.max_frame_bytes).await? {
            Some((reply_kind, body)) if reply_kind == kind | REPLY_BIT => Ok(body),
            Some((other, _)) => Err(CallError::Decode(format!("reply kind {other} to request kind {kind}"))),
            None => Err(CallError::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "peer closed"))),
        }
    }
}

// ---- peer stats (DescribeQuorum) ----

/// What the leader knows of each follower's replication.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PeerStat {
    pub(crate) matched_index: Option<u64>,
    pub(crate) last_fetch_ms: Option<i64>,
    pub(crate) last_caught_up_ms: Option<i64>,
}

/// Replication progress per follower, fed by successful append-entries calls.
#[derive(Debug, Default)]
pub(crate) struct PeerStats {
    peers: Mutex<HashMap<NodeId, PeerStat>>,
    /// The leader's last log index, kept current by the quorum's metrics task.
    pub(crate) leader_last_index: AtomicU64,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl PeerStats {
    fn record(&self, target: NodeId, matched: Option<u64>) {
        let now = now_ms();
        let leader_last = self.leader_last_index.load(Ordering::Relaxed);
        let mut peers = self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stat = peers.entry(target).or_default();
        stat.last_fetch_ms = Some(now);
        if matched.is_some() {
            stat.matched_index = stat.matched_index.max(matched);
        }
        if stat.matched_index.is_some_and(|m| m >= leader_last) {
            stat.last_caught_up_ms = Some(now);
        }
    }

    pub(crate) fn get(&self, target: NodeId) -> PeerStat {
        self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&target).copied().unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

// ---- openraft network ----

/// Creates a [`RaftPeer`] per replication target.
#[derive(Clone, Debug)]
pub(crate) struct NetworkFactory {
    pub(crate) voters: BTreeMap<RaftNodeId, SocketAddr>,
    pub(crate) settings: ClientSettings,
    pub(crate) identity: Arc<Identity>,
    pub(crate) stats: Arc<PeerStats>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = RaftPeer;

    async fn new_client(&mut self, target: RaftNodeId, node: &BasicNode) -> RaftPeer {
        // The configured voter address wins over the one stored in the membership (config can move a node).
        let addr = self.voters.get(&target).copied().or_else(|| node.addr.parse().ok());
        RaftPeer {
            target,
            conn: PeerConnection::new(kafka_id(target), addr, self.settings.clone(), Arc::clone(&self.identity)),
            stats: Arc::clone(&self.stats),
            request_timeout: self.settings.request_timeout,
        }
    }
}

/// openraft's view of one peer.
#[derive(Debug)]
pub(crate) struct RaftPeer {
    target: RaftNodeId,
    conn: PeerConnection,
    stats: Arc<PeerStats>,
    request_timeout: Duration,
}

fn rpc_error<E: std::error::Error>(err: CallError) -> RPCError<RaftNodeId, BasicNode, E> {
    match err {
        // Backoff for peers that are down or refuse us; retry at once after a broken connection.
        CallError::Io(e) => RPCError::Network(NetworkError::new(&e)),
        other => RPCError::Unreachable(Unreachable::new(&other)),
    }
}

impl RaftNetwork<TypeConfig> for RaftPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<RaftNodeId>, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId>>> {
        let matched = rpc.entries.last().map(|e| e.log_id.index).or(rpc.prev_log_id.map(|l| l.index));
        let timeout = option.hard_ttl().min(self.request_timeout);
        let reply: AppendReply = self.conn.call(KIND_APPEND_ENTRIES, rpc, timeout).await.map_err(rpc_error)?;
        match reply {
            Ok(response) => {
                let matched = match &response {
                    AppendEntriesResponse::Success => matched,
                    AppendEntriesResponse::PartialSuccess(log_id) => log_id.map(|l| l.index),
                    _ => None,
                };
                self.stats.record(kafka_id(self.target), matched);
                Ok(response)
            }
            Err(e) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<RaftNodeId>, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId>>> {
        let timeout = option.hard_ttl().min(self.request_timeout);
        let reply: VoteReply = self.conn.call(KIND_VOTE, rpc, timeout).await.map_err(rpc_error)?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<RaftNodeId>, StreamingError<TypeConfig, Fatal<RaftNodeId>>> {
        let request = SnapshotRequest { vote, meta: snapshot.meta, image: *snapshot.snapshot };
        let call = self.conn.call::<_, SnapshotReply>(KIND_SNAPSHOT, request, option.hard_ttl());
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = call => reply,
        };
        match reply {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(fatal)) => Err(StreamingError::RemoteError(RemoteError::new(self.target, fatal))),
            Err(CallError::Io(e)) => Err(StreamingError::Network(NetworkError::new(&e))),
            Err(other) => Err(StreamingError::Unreachable(Unreachable::new(&other))),
        }
    }
}

// ---- server ----

/// What inbound requests are served with.
pub(crate) struct ServerContext {
    pub(crate) node_id: NodeId,
    pub(crate) stats: Arc<PeerStats>,
    pub(crate) raft: Raft,
    pub(crate) controller: Arc<Controller>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) voters: BTreeMap<RaftNodeId, SocketAddr>,
    pub(crate) max_frame_bytes: u32,
    pub(crate) tls: Option<Arc<dyn QuorumTls>>,
}

/// Accepts controller connections until cancelled; each connection is a tracked, cancellable task.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    max_connections: usize,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => return,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let ctx = Arc::clone(&ctx);
                let cancel = cancel.child_token();
                tracker.spawn(async move {
                    if let Err(err) = serve_connection(stream, &ctx, &cancel).await {
                        tracing::debug!(%peer, %err, "controller connection closed");
                    }
                    drop(permit);
                });
            }
            Err(err) => {
                tracing::warn!(%err, "controller listener accept failed");
                // EMFILE and friends: back off instead of spinning.
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, ctx: &ServerContext, cancel: &CancellationToken) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let stream: Box<dyn QuorumStream> = match &ctx.tls {
        // The handshake is bounded like an idle connection: a peer that opens and says nothing is dropped.
        Some(tls) => match tokio::time::timeout(IDLE_TIMEOUT, tls.accept(stream)).await {
            Ok(secured) => secured?,
            Err(_) => return Ok(()),
        },
        None => Box::new(stream),
    };
    let (r, w) = tokio::io::split(stream);
    let mut reader = BufReader::new(r);
    let mut writer = BufWriter::new(w);
    loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            frame = tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut reader, ctx.max_frame_bytes)) => match frame {
                Ok(frame) => frame?,
                Err(_) => return Ok(()),
            },
        };
        let Some((kind, body)) = frame else { return Ok(()) };
        let reply = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            reply = handle(ctx, kind, &body) => reply?,
        };
        write_frame(&mut writer, kind | REPLY_BIT, &reply).await?;
    }
}

fn invalid(msg: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn encode<T: Serialize>(reply: &Result<T, WireError>) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(reply).map_err(invalid)
}

/// Which senders a request kind accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Senders {
    /// Raft's own traffic (AppendEntries, Vote, Snapshot): only configured voters (the leader is one).
    Voters,
    /// Hello and Propose: any node, so observers can probe and forward controller operations.
    Any,
}

/// Decodes the envelope and checks its sender; an undecodable body closes the connection.
async fn open<T: DeserializeOwned>(
    ctx: &ServerContext,
    body: &[u8],
    senders: Senders,
) -> std::io::Result<Result<T, WireError>> {
    let envelope: Envelope<T> = serde_json::from_slice(body).map_err(invalid)?;
    let Ok(from) = u64::try_from(envelope.from) else {
        return Ok(Err(WireError::UnknownSender(envelope.from)));
    };
    let from_voter = ctx.voters.contains_key(&from);
    if !from_voter && senders == Senders::Voters {
        return Ok(Err(WireError::UnknownSender(envelope.from)));
    }
    if let Err(e) = ctx.identity.check(envelope.cluster_id.as_deref(), from_voter).await {
        tracing::warn!(from = envelope.from, err = %e, "controller request refused");
        return Ok(Err(e));
    }
    Ok(Ok(envelope.body))
}

async fn handle(ctx: &ServerContext, kind: u8, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match kind {
        KIND_HELLO => {
            let reply = match open::<()>(ctx, body, Senders::Any).await? {
                Ok(()) => match ctx.raft.is_initialized().await {
                    Ok(initialized) => Ok(HelloReply {
                        node_id: ctx.identity.node_id,
                        cluster_id: ctx.identity.cluster_id(),
                        initialized,
                    }),
                    Err(e) => Err(WireError::Unavailable(e.to_string())),
                },
                Err(e) => Err(e),
            };
            encode(&reply)
        }
        KIND_APPEND_ENTRIES => {
            let reply: Result<AppendReply, WireError> =
                match open::<AppendEntriesRequest<TypeConfig>>(ctx, body, Senders::Voters).await? {
                    Ok(request) => Ok(ctx.raft.append_entries(request).await),
                    Err(e) => Err(e),
                };
            encode(&reply)
        }
        KIND_VOTE => {
            let reply: Result<VoteReply, WireError> =
                match open::<VoteRequest<RaftNodeId>>(ctx, body, Senders::Voters).await? {
                    Ok(request) => Ok(ctx.raft.vote(request).await),
                    Err(e) => Err(e),
                };
            encode(&reply)
        }
        KIND_SNAPSHOT => {
            let reply: Result<SnapshotReply, WireError> =
                match open::<SnapshotRequest>(ctx, body, Senders::Voters).await? {
                    Ok(request) => {
                        let snapshot = Snapshot { meta: request.meta, snapshot: Box::new(request.image) };
                        Ok(ctx.raft.install_full_snapshot(request.vote, snapshot).await)
                    }
                    Err(e) => Err(e),
                };
            encode(&reply)
        }
        KIND_PROPOSE => {
            let reply: Result<ProposeReply, WireError> =
                match open::<ControllerRequest>(ctx, body, Senders::Any).await? {
                    // Run here or answer NotController: a forwarded request is never forwarded again (no loops).
                    Ok(ControllerRequest::DescribeQuorum) => {
                        let voters: Vec<NodeId> = ctx.voters.keys().map(|id| kafka_id(*id)).collect();
                        let status = crate::quorum::quorum_status(&ctx.raft, &ctx.stats, ctx.node_id, &voters);
                        Ok(if status.leader_id == Some(ctx.node_id) {
                            Ok(ControllerResponse::Quorum(status))
                        } else {
                            Err(ControllerError::NotController { leader_id: status.leader_id })
                        })
                    }
                    Ok(request) => Ok(ctx.controller.execute(request).await),
                    Err(e) => Err(e),
                };
            encode(&reply)
        }
        other => Err(invalid(format!("unknown request kind {other}"))),
    }
}
