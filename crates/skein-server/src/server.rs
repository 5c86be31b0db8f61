//! Start-up, the accept loop and graceful shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::net::SocketAddr;

use skein_broker::broker_configs::DynamicLevel;
use skein_broker::sasl::{SaslMechanism, SaslSession};
use skein_broker::{Broker, ClusterMember, Metrics};
use skein_cluster::{MetadataQuorum, QuorumConfig};
use skein_core::principal::PrincipalMapper;
use skein_core::security::{SecurityProtocol, SslSettings};
use skein_core::{BrokerConfig, ClusterLayout};
use skein_storage::rocks::RocksSettings;
use skein_storage::{Engine, RocksEngine};
use skein_txn::{BlockSource, ProducerIdAllocator};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{self, Client, Closed, ConnectionSettings};
use crate::http;
use crate::limits::{ConnectionLimits, LogRateLimit};
use crate::tls;

/// How long in-flight requests may take to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a starting node waits for a metadata quorum to register with (the other voters may start later).
const REGISTRATION_PATIENCE: Duration = Duration::from_secs(300);

/// How this broker connects to the other brokers' inter-broker listener (`inter.broker.listener.name`): TLS with
/// the listener's key and trust stores on SSL and SASL_SSL, a SASL login on SASL_PLAINTEXT and SASL_SSL. Checked
/// here, before the node joins the cluster, so a broken key store or login stops it with a message.
fn peer_security(config: &BrokerConfig, layout: &ClusterLayout) -> anyhow::Result<skein_broker::peer::PeerSecurity> {
    let mut security = skein_broker::peer::PeerSecurity::default();
    if config.controller_quorum_voters.is_none() {
        return Ok(security);
    }
    let listener = config.inter_broker_listener_name.to_ascii_uppercase();
    let protocol = layout.security_protocol(&listener);
    if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        security.tls = Some(Arc::new(node_tls_connector(config, &listener)?));
    }
    if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        let login = config.inter_broker_login(&listener).map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
        security.login = Some(login);
    }
    Ok(security)
}

/// Runs the node until `shutdown_signal` completes, then stops accepting, lets in-flight requests finish,
/// leaves the cluster (controlled shutdown), flushes storage and returns.
pub async fn run(config: BrokerConfig, shutdown_signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    let layout = config.cluster_layout().map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    let peer_security = peer_security(&config, &layout)?;
    let data_dir = PathBuf::from(&config.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data.dir {}", data_dir.display()))?;
    let db_path = data_dir.join("rocksdb");
    let metrics = Arc::new(Metrics::new(config.metrics_partition_level).context("cannot set up the metrics")?);
    let bytes = |value: i64| usize::try_from(value).unwrap_or(usize::MAX);
    let rocks_settings = RocksSettings {
        block_cache_bytes: bytes(config.storage_block_cache_bytes),
        log_write_buffer_bytes: bytes(config.storage_log_write_buffer_bytes),
        total_write_buffer_bytes: bytes(config.storage_total_write_buffer_bytes),
        max_open_files: config.storage_max_open_files,
    };
    let engine = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<dyn Engine>> {
        Ok(Arc::new(
            RocksEngine::open_with(&db_path, rocks_settings)
                .with_context(|| format!("cannot open {}", db_path.display()))?,
        ))
    })
    .await??;
    let upgrade = SingleNodeData::inspect(Arc::clone(&engine), &data_dir).await?;

    let quorum_config = quorum_config(&config, &layout, upgrade.as_ref()).await?;
    let quorum = MetadataQuorum::start(quorum_config).await.context("cannot start the metadata quorum")?;
    tracing::info!(
        node_id = config.node_id,
        roles = %config.process_roles,
        controller = %quorum.local_addr(),
        voters = layout.voters.len(),
        "metadata quorum member running"
    );
    if !layout.is_broker {
        shutdown_signal.await;
        quorum.shutdown().await.context("metadata quorum shutdown")?;
        return Ok(());
    }

    let cluster = Arc::new(ClusterMember::new(quorum, config.node_id, layout.clone(), config.broker_rack.clone()));
    let broker_epoch = match cluster.register(REGISTRATION_PATIENCE).await {
        Ok(epoch) => epoch,
        Err(err) => {
            let _ = shutdown_quorum(&cluster).await;
            return Err(anyhow::anyhow!("cannot join the cluster: {err}"));
        }
    };
    let producer_ids =
        Arc::new(ProducerIdAllocator::from_source(producer_id_blocks(Arc::clone(&cluster)), Arc::clone(&engine)));
    let opened = {
        let cluster = Arc::clone(&cluster);
        let engine = Arc::clone(&engine);
        tokio::task::spawn_blocking(move || Broker::open(config, engine, metrics, cluster, producer_ids, peer_security))
            .await?
    };
    let (broker, group_task) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            let _ = shutdown_quorum(&cluster).await;
            return Err(anyhow::anyhow!("cannot open the broker's storage: {err}"));
        }
    };
    let broker = Arc::new(broker);
    if let Some(upgrade) = upgrade {
        upgrade.import(&broker).await.context("cannot bring the single-node topics into the metadata log")?;
    }
    broker
        .topics
        .apply_image(&broker.image(), broker.config.node_id)
        .await
        .context("cannot apply the metadata to local storage")?;
    tracing::info!(
        node_id = broker.config.node_id,
        cluster_id = %broker.cluster_id,
        broker_epoch,
        topics = broker.topics.all().len(),
        "storage recovered"
    );

    let mut listeners = Vec::new();
    for listener in &layout.client_listeners {
        let protocol = layout.security_protocol(&listener.name);
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                let settings = broker
                    .config
                    .ssl_settings(&listener.name)
                    .map_err(|problems| anyhow::anyhow!("listener {}: {}", listener.name, problems.join("; ")))?;
                Some((
                    Arc::new(tls::ListenerTls::new(&listener.name, &settings)?),
                    Arc::new(settings.principal_mapper.clone()),
                ))
            }
            SecurityProtocol::Plaintext | SecurityProtocol::SaslPlaintext => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                let names = broker
                    .config
                    .sasl_mechanisms(&listener.name)
                    .map_err(|problems| anyhow::anyhow!("listener {}: {}", listener.name, problems.join("; ")))?;
                Some(Arc::new(names.iter().filter_map(|name| SaslMechanism::parse(name)).collect::<Vec<_>>()))
            }
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl => None,
        };
        let address = listener.address();
        let bound = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {} {address}", listener.name))?;
        // Kafka's protected listener: the inter-broker one, when there are others, is exempt from the broker-wide
        // connection rate, so replication keeps going whatever clients do.
        let protected = layout.client_listeners.len() > 1
            && listener.name.eq_ignore_ascii_case(&broker.config.inter_broker_listener_name);
        let settings = ListenerSettings { security: ListenerSecurity { tls, sasl }, protected };
        listeners.push((Arc::<str>::from(listener.name.as_str()), bound, settings));
    }
    let metrics_listener = TcpListener::bind(&broker.config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on metrics.listen {}", broker.config.metrics_listen))?;
    tracing::info!(
        listeners = %layout.client_listeners.iter().map(|l| format!("{}://{}", l.name, l.address())).collect::<Vec<_>>().join(","),
        advertised = %layout.advertised_listeners.iter().map(|l| format!("{}://{}", l.name, l.address())).collect::<Vec<_>>().join(","),
        metrics = %broker.config.metrics_listen,
        "skein is serving"
    );

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(apply_metadata_changes(Arc::clone(&broker), shutdown.child_token()));
    tracker.spawn(skein_broker::replication::run(Arc::clone(&broker), shutdown.child_token()));
    let heartbeat = Duration::from_millis(u64::try_from(broker.config.broker_heartbeat_interval_ms).unwrap_or(2_000));
    tracker.spawn(Arc::clone(&broker.cluster).heartbeat_loop(heartbeat, shutdown.child_token()));
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
    tracker.spawn(skein_broker::group_log::run(
        Arc::clone(&broker),
        Arc::clone(&broker.group_log),
        shutdown.child_token(),
    ));
    // Transactions decided before a crash but not completed are completed when their partition is loaded.
    tracker.spawn(skein_broker::txn_log::run(Arc::clone(&broker), Arc::clone(&broker.txn_log), shutdown.child_token()));
    let b = Arc::clone(&broker);
    tracker.spawn(every(broker.transactions.settings().abort_check_interval, shutdown.child_token(), move || {
        let broker = Arc::clone(&b);
        async move {
            let aborted = broker.transactions.abort_timed_out(broker.as_ref(), wall_clock_ms()).await;
            if aborted > 0 {
                tracing::info!(aborted, "aborted timed-out transactions");
            }
        }
    }));
    let b = Arc::clone(&broker);
    tracker.spawn(every(broker.transactions.settings().expiration_check_interval, shutdown.child_token(), move || {
        let broker = Arc::clone(&b);
        async move {
            let expired = broker.transactions.expire_ids(wall_clock_ms()).await;
            if expired > 0 {
                tracing::info!(expired, "forgot transactional ids idle past transactional.id.expiration.ms");
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
        max_sasl_frame_bytes: usize::try_from(broker.config.sasl_server_max_receive_size).unwrap_or(usize::MAX),
        max_idle: Duration::from_millis(u64::try_from(broker.config.connections_max_idle_ms).unwrap_or(600_000)),
    };
    let limits = ConnectionLimits::new(
        broker.config.max_connections,
        u32::try_from(broker.config.max_connections_per_ip).unwrap_or(u32::MAX),
    );
    // A flood of refused connections or broken frames costs a few log lines a second, not one per event.
    let refusal_log = Arc::new(LogRateLimit::new(10, Duration::from_secs(1)));
    let protocol_error_log = Arc::new(LogRateLimit::new(10, Duration::from_secs(1)));
    // KIP-368: with connections.max.reauth.ms, SASL sessions expire unless re-authenticated.
    let session_lifetime =
        u64::try_from(broker.config.connections_max_reauth_ms).ok().filter(|ms| *ms > 0).map(Duration::from_millis);
    let accept = Accept {
        settings: connection_settings,
        session_lifetime,
        limits,
        refusal_log,
        protocol_error_log,
        tracker: tracker.clone(),
    };
    let stop_accepting = CancellationToken::new();
    for (name, listener, settings) in listeners {
        tracker.spawn(accept.clone().run(
            Arc::clone(&broker),
            name,
            listener,
            settings,
            stop_accepting.clone(),
            shutdown.clone(),
        ));
    }
    shutdown_signal.await;
    stop_accepting.cancel();
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    broker.cluster.fence_self().await;
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
    }
    let engine = Arc::clone(&broker.engine);
    tokio::task::spawn_blocking(move || engine.flush()).await??;
    tracing::info!("storage flushed");
    shutdown_quorum(&broker.cluster).await?;
    tracing::info!("bye");
    Ok(())
}

/// A listener's security: TLS (SSL, SASL_SSL) and SASL mechanisms (SASL_PLAINTEXT, SASL_SSL).
/// What a listener's accept loop needs to know about it.
struct ListenerSettings {
    security: ListenerSecurity,
    /// Exempt from the broker-wide `max.connection.creation.rate`.
    protected: bool,
}

struct ListenerSecurity {
    /// An SSL listener's acceptor, and how its client certificates become principals.
    tls: Option<(Arc<tls::ListenerTls>, Arc<PrincipalMapper>)>,
    sasl: Option<Arc<Vec<SaslMechanism>>>,
}

/// What accepting connections needs, shared by every client listener.
#[derive(Clone)]
struct Accept {
    settings: ConnectionSettings,
    session_lifetime: Option<Duration>,
    limits: Arc<ConnectionLimits>,
    refusal_log: Arc<LogRateLimit>,
    protocol_error_log: Arc<LogRateLimit>,
    tracker: TaskTracker,
}

impl Accept {
    /// Accepts on one listener until `stop`; each connection runs until `shutdown`. With TLS (SSL and SASL_SSL
    /// listeners) a connection first completes its TLS handshake, within `connections.max.idle.ms`; with SASL it
    /// then authenticates before anything else is served.
    async fn run(
        self,
        broker: Arc<Broker>,
        name: Arc<str>,
        listener: TcpListener,
        listener_settings: ListenerSettings,
        stop: CancellationToken,
        shutdown: CancellationToken,
    ) {
        let ListenerSettings { security, protected } = listener_settings;
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => return,
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
            // Over the listener's or the broker's max.connection.creation.rate (KIP-612), Kafka's acceptor waits
            // the longer of the two throttles before it takes the connection on, and accepts nothing else
            // meanwhile; the inter-broker listener is exempt from the broker's rate when there are others.
            let current = broker.current_config();
            let listener_throttle =
                broker.quotas.record_listener_connection(&name, current.listener_connection_creation_rate(&name));
            let broker_throttle = if protected {
                Duration::ZERO
            } else {
                broker.quotas.record_broker_connection(current.max_connection_creation_rate())
            };
            if !listener_throttle.is_zero() {
                broker.metrics.quota_throttled("listener_connection_creation");
            }
            if !broker_throttle.is_zero() {
                broker.metrics.quota_throttled("broker_connection_creation");
            }
            let wait = listener_throttle.max(broker_throttle);
            if !wait.is_zero() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let throttle = broker.quotas.record_connection(&broker.image(), &peer.ip().to_string());
            if !throttle.is_zero() {
                if !protected {
                    broker.quotas.unrecord_broker_connection();
                }
                broker.quotas.unrecord_listener_connection(&name);
                // Over its IP's connection_creation_rate (KIP-612): Kafka accepts the connection, reads nothing from
                // it and closes it once the throttle time has passed, so the client backs off.
                broker.metrics.quota_throttled("connection_creation");
                let token = shutdown.child_token();
                self.tracker.spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(throttle) => {}
                        () = token.cancelled() => {}
                    }
                    drop(stream);
                });
                continue;
            }
            let slot = match self.limits.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(refusal) => {
                    // Closed at once, as Kafka closes a connection over its quota: waiting would hold the socket.
                    broker.metrics.connection_refused();
                    if let Some(suppressed) = self.refusal_log.allow() {
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
            let protocol_error_log = Arc::clone(&self.protocol_error_log);
            let settings = self.settings;
            let name = Arc::clone(&name);
            let tls = security.tls.clone();
            let sasl = security
                .sasl
                .as_ref()
                .map(|mechanisms| SaslSession::new(mechanisms.as_ref().clone(), self.session_lifetime));
            self.tracker.spawn(async move {
                let metrics = Arc::clone(&broker.metrics);
                let closed = match tls {
                    None => {
                        let client = Client { address: peer, tls_principal: None };
                        connection::serve(broker, stream, client, name, settings, sasl, token).await
                    }
                    Some((tls, mapper)) => match tokio::time::timeout(settings.max_idle, tls.acceptor().accept(stream)).await {
                        Ok(Ok(stream)) => match tls::client_principal(stream.get_ref().1.peer_certificates(), &mapper) {
                            Ok(tls_principal) => {
                                let client = Client { address: peer, tls_principal };
                                connection::serve(broker, stream, client, name, settings, sasl, token).await
                            }
                            Err(reason) => Closed::AuthenticationFailed(reason),
                        },
                        Ok(Err(err)) => {
                            metrics.tls_handshake_failed();
                            Closed::TlsHandshake(err.to_string())
                        }
                        Err(_) => Closed::Idle,
                    },
                };
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
                    Closed::AuthenticationFailed(reason) => tracing::debug!(%peer, %reason, "authentication failed"),
                    Closed::TlsHandshake(reason) => match protocol_error_log.allow() {
                        Some(suppressed) => tracing::info!(%peer, %reason, suppressed, "TLS handshake failed"),
                        None => tracing::debug!(%peer, %reason, "TLS handshake failed"),
                    },
                }
                drop(slot);
            });
        }
    }
}

/// Stops the node's metadata quorum member (its Raft log closes cleanly).
async fn shutdown_quorum(cluster: &ClusterMember) -> anyhow::Result<()> {
    cluster.quorum().clone().shutdown().await.context("metadata quorum shutdown")
}

/// Applies every new metadata image to local storage (topics created, grown, deleted, reconfigured; leader
/// epochs taken) until shutdown.
async fn apply_metadata_changes(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut images = broker.cluster.quorum().subscribe();
    loop {
        // The current image first: one applied between start-up and this subscription counts as seen already.
        let image = Arc::clone(&images.borrow_and_update());
        broker.dynamic_configs.apply_image(&image, broker.config.node_id);
        let applied = broker.topics.apply_image(&image, broker.config.node_id).await;
        if let Err(err) = &applied {
            tracing::error!(error = %err, "cannot apply the metadata to local storage; trying again");
        }
        // A failed apply is tried again soon even when no new metadata comes: partitions wait for their roles.
        let retry = if applied.is_ok() { Duration::from_secs(86_400) } else { Duration::from_secs(1) };
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = images.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// Producer id blocks reserved by the metadata quorum for this broker (KIP-730).
fn producer_id_blocks(cluster: Arc<ClusterMember>) -> BlockSource {
    Arc::new(move || {
        let cluster = Arc::clone(&cluster);
        Box::pin(async move {
            let block = cluster
                .controller()
                .allocate_producer_ids(cluster.node_id(), cluster.broker_epoch())
                .await
                .map_err(skein_broker::controller_error)?;
            Ok((block.first_producer_id, i64::from(block.size)))
        })
    })
}

/// The quorum settings of this node: its voters (host names resolved), its controller listener, and the
/// timeouts from the configuration.
async fn quorum_config(
    config: &BrokerConfig,
    layout: &ClusterLayout,
    upgrade: Option<&SingleNodeData>,
) -> anyhow::Result<QuorumConfig> {
    let mut voters = Vec::with_capacity(layout.voters.len());
    for voter in &layout.voters {
        let address = format!("{}:{}", voter.host, voter.port);
        voters.push((voter.node_id, resolve(&address).await?));
    }
    let listen = resolve(&layout.controller_listener.address()).await?;
    let mut quorum = QuorumConfig::new(config.node_id, voters, listen, PathBuf::from(&config.data_dir));
    quorum.voter_hosts = layout.voters.iter().map(|voter| (voter.node_id, voter.host.clone())).collect();
    quorum.tls = quorum_tls(config, layout)?;
    // A broker without the controller role follows the metadata log without voting (KRaft's broker-only node).
    quorum.observer = !layout.is_controller;
    // An upgraded single node keeps its cluster id.
    quorum.cluster_id = config.cluster_id.clone().or_else(|| upgrade.map(|u| u.cluster_id.clone()));
    let election = u64::try_from(config.controller_quorum_election_timeout_ms).unwrap_or(1_000);
    quorum.election_timeout_min_ms = election;
    quorum.election_timeout_max_ms = election * 2;
    quorum.heartbeat_ms = (election / 4).max(10);
    quorum.broker_session_timeout_ms = u64::try_from(config.broker_session_timeout_ms).unwrap_or(9_000);
    quorum.unclean_leader_election_enable = config.unclean_leader_election_enable;
    quorum.auto_leader_rebalance_enable = config.auto_leader_rebalance_enable;
    let check_seconds = u64::try_from(config.leader_imbalance_check_interval_seconds).unwrap_or(300);
    quorum.leader_imbalance_check_interval_ms = check_seconds.saturating_mul(1000);
    quorum.leader_imbalance_per_broker_percentage =
        u32::try_from(config.leader_imbalance_per_broker_percentage).unwrap_or(10);
    Ok(quorum)
}

/// TLS on the metadata quorum when the controller listener is SSL: it serves with the listener's key store (and asks
/// for client certificates per its `ssl.client.auth`), and connects to the other nodes with the same key store,
/// checking their certificates against its trust store (and their host names, unless
/// `ssl.endpoint.identification.algorithm` is empty), as brokers do on an SSL inter-broker listener.
fn quorum_tls(
    config: &BrokerConfig,
    layout: &ClusterLayout,
) -> anyhow::Result<Option<Arc<dyn skein_cluster::transport::QuorumTls>>> {
    let listener = &layout.controller_listener.name;
    if layout.security_protocol(listener) != SecurityProtocol::Ssl {
        return Ok(None);
    }
    let settings = listener_ssl_settings(config, listener)?;
    let acceptor = Arc::new(tls::ListenerTls::new(listener, &settings)?);
    let connector = node_tls_connector(config, listener)?;
    Ok(Some(Arc::new(tls::QuorumListenerTls { acceptor, connector })))
}

fn listener_ssl_settings(config: &BrokerConfig, listener: &str) -> anyhow::Result<SslSettings> {
    config.ssl_settings(listener).map_err(|problems| anyhow::anyhow!("listener {listener}: {}", problems.join("; ")))
}

/// How this node connects over TLS to the other nodes' `listener` (inter-broker or controller): the listener's key
/// store as its client certificate, their certificates checked against its trust store, and their host names unless
/// `ssl.endpoint.identification.algorithm` is empty.
fn node_tls_connector(config: &BrokerConfig, listener: &str) -> anyhow::Result<tls::PeerTlsConnector> {
    let settings = listener_ssl_settings(config, listener)?;
    let verify_host = config.listener_setting(listener, "ssl.endpoint.identification.algorithm").is_some();
    tls::PeerTlsConnector::new(listener, settings, verify_host)
}

/// Resolves `host:port`, retrying for a while: in a container network a peer's name appears when it starts.
async fn resolve(address: &str) -> anyhow::Result<SocketAddr> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::net::lookup_host(address).await.map(|mut found| found.next()) {
            Ok(Some(resolved)) => return Ok(resolved),
            result => {
                if tokio::time::Instant::now() >= deadline {
                    let reason = result.err().map_or_else(|| "no address".to_string(), |e| e.to_string());
                    anyhow::bail!("cannot resolve {address}: {reason}");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// A data directory written by a single node before the metadata quorum existed: its topics and producer ids
/// join the metadata log once, with their ids, and the cluster keeps the node's cluster id.
struct SingleNodeData {
    cluster_id: String,
    producer_id_block_end: i64,
    dynamic_configs: skein_storage::DynamicBrokerConfigsRecord,
}

impl SingleNodeData {
    /// Partition data with a cluster id but no metadata directory beside it.
    async fn inspect(engine: Arc<dyn Engine>, data_dir: &std::path::Path) -> anyhow::Result<Option<Self>> {
        if data_dir.join("metadata").exists() {
            return Ok(None);
        }
        tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Self>> {
            let Some(cluster_id) = skein_broker::broker::stored_cluster_id(engine.as_ref())? else {
                return Ok(None);
            };
            let producer_id_block_end = ProducerIdAllocator::local_block_end(engine.as_ref())?;
            let dynamic_configs = skein_broker::broker_configs::DynamicConfigs::stored(engine.as_ref())?;
            Ok(Some(SingleNodeData { cluster_id, producer_id_block_end, dynamic_configs }))
        })
        .await?
    }

    async fn import(&self, broker: &Broker) -> anyhow::Result<()> {
        let controller = broker.cluster.controller();
        let image = broker.image();
        let mut imported = 0;
        for topic in broker.topics.all() {
            if image.topic(&topic.name).is_some() {
                continue;
            }
            let leader_epochs = topic.partitions.iter().map(|p| p.leader_epoch()).collect();
            controller
                .import_topic(broker.config.node_id, &topic.name, topic.id, leader_epochs, topic.configs.clone())
                .await?;
            imported += 1;
        }
        controller.reserve_producer_ids(self.producer_id_block_end).await?;
        for (level, settings) in [
            (DynamicLevel::ClusterDefault, &self.dynamic_configs.cluster_default),
            (DynamicLevel::ThisBroker, &self.dynamic_configs.this_broker),
        ] {
            if !settings.is_empty() && broker.dynamic_configs.level(level).is_empty() {
                broker
                    .replace_dynamic_configs(level, settings.clone(), false)
                    .await
                    .map_err(|err| anyhow::anyhow!("dynamic broker settings: {err}"))?;
            }
        }
        let ids: Vec<_> = broker.topics.all().iter().map(|t| t.id).collect();
        broker
            .sync_metadata(|image| ids.iter().all(|id| image.topic_by_id(*id).is_some()))
            .await
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        tracing::info!(topics = imported, cluster_id = %self.cluster_id, "single-node data directory upgraded");
        Ok(())
    }
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
