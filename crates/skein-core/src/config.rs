//! Broker settings under Kafka's names and defaults, and the topic-level configs derived from them.
//!
//! Settings Kafka has keep Kafka's exact names and defaults, so `server.properties` knowledge carries over; Skein's
//! own settings (`listen`, `data.dir`, `metrics.listen`, `metrics.partition.level`, `log.flush`) use the same dotted
//! lowercase style.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// When appended records reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFlush {
    /// Every acknowledged write is in RocksDB's write-ahead log (OS page cache): survives a process crash
    /// (`kill -9`), not a power loss. Fast.
    Os,
    /// Every acknowledged write is fsynced before the response: survives power loss too. Slower.
    Always,
}

/// The server-side assignors of KIP-848 consumer groups, by the names clients use in `group.remote.assignor`.
pub const CONSUMER_ASSIGNORS: &[&str] = &["uniform", "range"];

/// Every broker setting Skein reads. Unknown keys in the YAML file are an error naming the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    #[serde(rename = "node.id")]
    pub node_id: i32,
    /// Address the Kafka listener binds.
    pub listen: String,
    /// Address given to clients in Metadata; defaults to `listen`.
    #[serde(rename = "advertised.listener")]
    pub advertised_listener: Option<String>,
    #[serde(rename = "data.dir")]
    pub data_dir: String,
    #[serde(rename = "metrics.listen")]
    pub metrics_listen: String,
    /// Whether `/metrics` has series per partition and per group partition (high watermark, log start offset,
    /// committed offset, lag); turned off, series stay per topic or broker-wide however many partitions there are.
    #[serde(rename = "metrics.partition.level")]
    pub metrics_partition_level: bool,
    /// RocksDB's block cache (recently read table blocks), shared by all data.
    #[serde(rename = "storage.block.cache.bytes")]
    pub storage_block_cache_bytes: i64,
    /// The records' memtable; a full one is flushed while a second takes writes.
    #[serde(rename = "storage.log.write.buffer.bytes")]
    pub storage_log_write_buffer_bytes: i64,
    /// All memtables together; past it the largest is flushed.
    #[serde(rename = "storage.total.write.buffer.bytes")]
    pub storage_total_write_buffer_bytes: i64,
    /// Table files RocksDB keeps open (with their indexes in memory); -1: all.
    #[serde(rename = "storage.max.open.files")]
    pub storage_max_open_files: i32,
    #[serde(rename = "log.flush")]
    pub log_flush: LogFlush,
    #[serde(rename = "num.partitions")]
    pub num_partitions: i32,
    #[serde(rename = "default.replication.factor")]
    pub default_replication_factor: i16,
    #[serde(rename = "auto.create.topics.enable")]
    pub auto_create_topics_enable: bool,
    #[serde(rename = "message.max.bytes")]
    pub message_max_bytes: i32,
    #[serde(rename = "socket.request.max.bytes")]
    pub socket_request_max_bytes: i32,
    #[serde(rename = "fetch.max.bytes")]
    pub fetch_max_bytes: i32,
    #[serde(rename = "max.connections")]
    pub max_connections: u32,
    /// Concurrent connections from one IP address; more are closed at once.
    #[serde(rename = "max.connections.per.ip")]
    pub max_connections_per_ip: i32,
    /// A connection that sends nothing for this long is closed.
    #[serde(rename = "connections.max.idle.ms")]
    pub connections_max_idle_ms: i64,
    #[serde(rename = "log.retention.ms")]
    pub log_retention_ms: i64,
    #[serde(rename = "log.retention.bytes")]
    pub log_retention_bytes: i64,
    /// Whether compacted topics (`cleanup.policy=compact`) are compacted.
    #[serde(rename = "log.cleaner.enable")]
    pub log_cleaner_enable: bool,
    /// The pause between compaction passes over the compacted topics.
    #[serde(rename = "log.cleaner.backoff.ms")]
    pub log_cleaner_backoff_ms: i64,
    /// The cleaner's I/O budget: bytes per second compaction may read and rewrite (unlimited by default).
    #[serde(rename = "log.cleaner.io.max.bytes.per.second")]
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// KIP-612: the most connections per second the broker accepts over all its listeners but the inter-broker
    /// one; a connection over the rate waits (and the listener with it) until the rate allows it.
    #[serde(rename = "max.connection.creation.rate")]
    pub max_connection_creation_rate: i32,
    /// The most memory a compaction pass's key map (key → latest offset) may take; a larger dirty part is
    /// compacted over several passes.
    #[serde(rename = "log.cleaner.dedupe.buffer.size")]
    pub log_cleaner_dedupe_buffer_size: i64,
    /// How often retention (`retention.ms`, `retention.bytes`) is applied.
    #[serde(rename = "log.retention.check.interval.ms")]
    pub log_retention_check_interval_ms: i64,
    #[serde(rename = "log.cleanup.policy")]
    pub log_cleanup_policy: String,
    #[serde(rename = "log.message.timestamp.type")]
    pub log_message_timestamp_type: String,
    /// With CreateTime, how far in the past a record's timestamp may be (Kafka's default: no limit).
    #[serde(rename = "log.message.timestamp.before.max.ms")]
    pub log_message_timestamp_before_max_ms: i64,
    /// With CreateTime, how far in the future a record's timestamp may be (Kafka 4's default: one hour).
    #[serde(rename = "log.message.timestamp.after.max.ms")]
    pub log_message_timestamp_after_max_ms: i64,
    #[serde(rename = "min.insync.replicas")]
    pub min_insync_replicas: i32,
    #[serde(rename = "compression.type")]
    pub compression_type: String,
    #[serde(rename = "producer.id.expiration.ms")]
    pub producer_id_expiration_ms: i64,
    #[serde(rename = "producer.id.expiration.check.interval.ms")]
    pub producer_id_expiration_check_interval_ms: i64,
    #[serde(rename = "group.initial.rebalance.delay.ms")]
    pub group_initial_rebalance_delay_ms: i64,
    #[serde(rename = "group.min.session.timeout.ms")]
    pub group_min_session_timeout_ms: i64,
    #[serde(rename = "group.max.session.timeout.ms")]
    pub group_max_session_timeout_ms: i64,
    /// KIP-848 consumer groups (`group.protocol=consumer`): the session timeout and heartbeat interval the broker
    /// gives members, the bounds they must respect, and the server-side assignors (the first is the default).
    #[serde(rename = "group.consumer.session.timeout.ms")]
    pub group_consumer_session_timeout_ms: i64,
    #[serde(rename = "group.consumer.min.session.timeout.ms")]
    pub group_consumer_min_session_timeout_ms: i64,
    #[serde(rename = "group.consumer.max.session.timeout.ms")]
    pub group_consumer_max_session_timeout_ms: i64,
    #[serde(rename = "group.consumer.heartbeat.interval.ms")]
    pub group_consumer_heartbeat_interval_ms: i64,
    #[serde(rename = "group.consumer.min.heartbeat.interval.ms")]
    pub group_consumer_min_heartbeat_interval_ms: i64,
    #[serde(rename = "group.consumer.max.heartbeat.interval.ms")]
    pub group_consumer_max_heartbeat_interval_ms: i64,
    /// Comma-separated, as in Kafka: `uniform,range`.
    #[serde(rename = "group.consumer.assignors")]
    pub group_consumer_assignors: String,
    /// The longest `transaction.timeout.ms` a transactional producer may use.
    #[serde(rename = "transaction.max.timeout.ms")]
    pub transaction_max_timeout_ms: i32,
    /// How often transactions open longer than their timeout are looked for (and aborted).
    #[serde(rename = "transaction.abort.timed.out.transaction.cleanup.interval.ms")]
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// A transactional id without a transaction for this long is forgotten (its state removed).
    #[serde(rename = "transactional.id.expiration.ms")]
    pub transactional_id_expiration_ms: i64,
    /// How often expired transactional ids are looked for.
    #[serde(rename = "transaction.remove.expired.transaction.cleanup.interval.ms")]
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i64,
    /// Committed offsets of a group without members expire this long after their commit.
    #[serde(rename = "offsets.retention.minutes")]
    pub offsets_retention_minutes: i64,
    #[serde(rename = "offsets.retention.check.interval.ms")]
    pub offsets_retention_check_interval_ms: i64,
    /// KRaft's roles of this process: `broker`, `controller`, or both (the default: combined mode).
    #[serde(rename = "process.roles")]
    pub process_roles: String,
    /// `id@host:port,...`: the metadata quorum's voters. Unset: a one-node cluster of this node alone.
    #[serde(rename = "controller.quorum.voters")]
    pub controller_quorum_voters: Option<String>,
    /// `NAME://host:port,...`. Unset: one `PLAINTEXT` listener on `listen`.
    pub listeners: Option<String>,
    /// `NAME://host:port,...` given to clients per listener. Unset: `advertised.listener`, else the listener itself.
    #[serde(rename = "advertised.listeners")]
    pub advertised_listeners: Option<String>,
    /// Listener names that carry the metadata quorum's traffic.
    #[serde(rename = "controller.listener.names")]
    pub controller_listener_names: String,
    /// Listener name → security protocol.
    #[serde(rename = "listener.security.protocol.map")]
    pub listener_security_protocol_map: String,
    /// The listener brokers use to talk to each other (replication).
    #[serde(rename = "inter.broker.listener.name")]
    pub inter_broker_listener_name: String,
    /// The cluster this node belongs to. Unset: the one stored in `data.dir`, else learned from the voters, else
    /// (the lowest-id voter of a new cluster) generated.
    #[serde(rename = "cluster.id")]
    pub cluster_id: Option<String>,
    /// The rack (failure domain) of this broker, for rack-aware replica placement.
    #[serde(rename = "broker.rack")]
    pub broker_rack: Option<String>,
    /// A broker not heard from for this long is fenced: it leaves Metadata and every ISR.
    #[serde(rename = "broker.session.timeout.ms")]
    pub broker_session_timeout_ms: i64,
    /// How often a broker heartbeats to the controller.
    #[serde(rename = "broker.heartbeat.interval.ms")]
    pub broker_heartbeat_interval_ms: i64,
    /// A voter that hears no leader for this long (randomized up to twice this) starts an election.
    #[serde(rename = "controller.quorum.election.timeout.ms")]
    pub controller_quorum_election_timeout_ms: i64,
    /// A follower that has not caught up for this long leaves the ISR.
    #[serde(rename = "replica.lag.time.max.ms")]
    pub replica_lag_time_max_ms: i64,
    /// Replicas of each `__consumer_offsets` partition (at most the number of controller voters, so one node
    /// works with the default).
    #[serde(rename = "offsets.topic.replication.factor")]
    pub offsets_topic_replication_factor: i16,
    /// Partitions of `__consumer_offsets`: a group's coordinator is the leader of the one its id hashes to.
    /// Fixed once the topic exists.
    #[serde(rename = "offsets.topic.num.partitions")]
    pub offsets_topic_num_partitions: i32,
    /// How long an offset commit (or any group state change) waits for the in-sync replicas.
    #[serde(rename = "offsets.commit.timeout.ms")]
    pub offsets_commit_timeout_ms: i64,
    /// Replicas of each `__transaction_state` partition (at most the number of controller voters).
    #[serde(rename = "transaction.state.log.replication.factor")]
    pub transaction_state_log_replication_factor: i16,
    /// Partitions of `__transaction_state`: a transactional id's coordinator is the leader of the one its id
    /// hashes to. Fixed once the topic exists.
    #[serde(rename = "transaction.state.log.num.partitions")]
    pub transaction_state_log_num_partitions: i32,
    #[serde(rename = "transaction.state.log.min.isr")]
    pub transaction_state_log_min_isr: i32,
    /// Whether a replica outside the ISR may become leader when no ISR member is alive (loses records).
    #[serde(rename = "unclean.leader.election.enable")]
    pub unclean_leader_election_enable: bool,
    /// The quorum leader periodically moves leadership back to preferred replicas (first in the replica list).
    #[serde(rename = "auto.leader.rebalance.enable")]
    pub auto_leader_rebalance_enable: bool,
    /// How often the quorum leader checks the leader balance.
    #[serde(rename = "leader.imbalance.check.interval.seconds")]
    pub leader_imbalance_check_interval_seconds: i64,
    /// A broker's share (in percent) of its preferred partitions led by others above which the check moves them
    /// back.
    #[serde(rename = "leader.imbalance.per.broker.percentage")]
    pub leader_imbalance_per_broker_percentage: i32,
    /// TLS of SSL listeners (the `security` module says what is read); `listener.name.<name>.ssl.*` overrides
    /// them per listener.
    #[serde(rename = "ssl.keystore.type")]
    pub ssl_keystore_type: String,
    #[serde(rename = "ssl.keystore.location")]
    pub ssl_keystore_location: Option<String>,
    #[serde(rename = "ssl.keystore.certificate.chain")]
    pub ssl_keystore_certificate_chain: Option<String>,
    #[serde(rename = "ssl.keystore.key")]
    pub ssl_keystore_key: Option<String>,
    #[serde(rename = "ssl.key.password")]
    pub ssl_key_password: Option<String>,
    #[serde(rename = "ssl.truststore.type")]
    pub ssl_truststore_type: String,
    #[serde(rename = "ssl.truststore.location")]
    pub ssl_truststore_location: Option<String>,
    #[serde(rename = "ssl.truststore.certificates")]
    pub ssl_truststore_certificates: Option<String>,
    /// `none`, `requested` or `required`: whether clients present certificates (mutual TLS).
    #[serde(rename = "ssl.client.auth")]
    pub ssl_client_auth: String,
    #[serde(rename = "ssl.enabled.protocols")]
    pub ssl_enabled_protocols: String,
    /// How a client certificate's subject becomes the connection's principal (`crate::principal`).
    #[serde(rename = "ssl.principal.mapping.rules")]
    pub ssl_principal_mapping_rules: String,
    /// KIP-368: an authenticated SASL session lasts this long; the client re-authenticates on its connection
    /// before then, or the connection is closed at its next request. 0: sessions never expire.
    #[serde(rename = "connections.max.reauth.ms")]
    pub connections_max_reauth_ms: i64,
    /// The largest frame an unauthenticated SASL connection may send; a larger one closes it.
    #[serde(rename = "sasl.server.max.receive.size")]
    pub sasl_server_max_receive_size: i32,
    /// The SASL mechanisms SASL listeners offer.
    #[serde(rename = "sasl.enabled.mechanisms")]
    pub sasl_enabled_mechanisms: String,
    /// The SASL mechanism this broker logs in with on another broker's SASL inter-broker listener (PLAIN,
    /// SCRAM-SHA-256 or SCRAM-SHA-512; Kafka's default, GSSAPI, is not served).
    #[serde(rename = "sasl.mechanism.inter.broker.protocol")]
    pub sasl_mechanism_inter_broker_protocol: String,
    /// The JAAS text whose `username` and `password` options are this broker's credentials on a SASL
    /// inter-broker listener (a `listener.name.<listener>.<mechanism>.sasl.jaas.config` takes precedence).
    #[serde(rename = "sasl.jaas.config")]
    pub sasl_jaas_config: Option<String>,
    /// `https`: a broker connecting to another over TLS checks that the other's certificate names the host it
    /// connects to; empty: it checks the certificate's chain only.
    #[serde(rename = "ssl.endpoint.identification.algorithm")]
    pub ssl_endpoint_identification_algorithm: String,
    /// Client quotas are measured over this many samples (Kafka's `quota.window.num`)...
    #[serde(rename = "quota.window.num")]
    pub quota_window_num: i32,
    /// ...of this many seconds each (`quota.window.size.seconds`).
    #[serde(rename = "quota.window.size.seconds")]
    pub quota_window_size_seconds: i32,
    /// The controller mutation quota's token bucket holds `controller_mutation_rate` × this many windows...
    #[serde(rename = "controller.quota.window.num")]
    pub controller_quota_window_num: i32,
    /// ...of this many seconds each (Kafka's `controller.quota.window.size.seconds`).
    #[serde(rename = "controller.quota.window.size.seconds")]
    pub controller_quota_window_size_seconds: i32,
    /// The authorizer: empty (none; every request is allowed and the ACL APIs answer SECURITY_DISABLED) or
    /// Kafka's `org.apache.kafka.metadata.authorizer.StandardAuthorizer`, whose semantics Skein implements.
    #[serde(rename = "authorizer.class.name")]
    pub authorizer_class_name: String,
    /// Principals allowed everything, `;`-separated (`User:admin;User:ANONYMOUS`).
    #[serde(rename = "super.users")]
    pub super_users: String,
    /// Whether a resource no ACL applies to is open to everyone (Kafka's default: no).
    #[serde(rename = "allow.everyone.if.no.acl.found")]
    pub allow_everyone_if_no_acl_found: bool,
    /// `listener.name.<name>.<key>` settings, keyed `<NAME>.<key>` (the listener name upper-cased).
    #[serde(skip)]
    pub listener_overrides: BTreeMap<String, String>,
    /// Keys the operator set (YAML or command line): DescribeConfigs reports them as `STATIC_BROKER_CONFIG`.
    #[serde(skip)]
    pub explicitly_set: BTreeSet<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            listen: "127.0.0.1:9092".into(),
            advertised_listener: None,
            data_dir: "./data".into(),
            metrics_listen: "127.0.0.1:9644".into(),
            metrics_partition_level: true,
            storage_block_cache_bytes: 64 << 20,
            storage_log_write_buffer_bytes: 64 << 20,
            storage_total_write_buffer_bytes: 128 << 20,
            storage_max_open_files: -1,
            log_flush: LogFlush::Os,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            fetch_max_bytes: 57_671_680,
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX,
            connections_max_idle_ms: 600_000,
            log_retention_ms: 604_800_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_enable: true,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_io_max_bytes_per_second: f64::MAX,
            max_connection_creation_rate: i32::MAX,
            log_cleaner_dedupe_buffer_size: 134_217_728,
            log_cleanup_policy: "delete".into(),
            log_message_timestamp_type: "CreateTime".into(),
            log_message_timestamp_before_max_ms: i64::MAX,
            log_message_timestamp_after_max_ms: 3_600_000,
            min_insync_replicas: 1,
            compression_type: "producer".into(),
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_min_session_timeout_ms: 45_000,
            group_consumer_max_session_timeout_ms: 60_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_min_heartbeat_interval_ms: 5_000,
            group_consumer_max_heartbeat_interval_ms: 15_000,
            group_consumer_assignors: "uniform,range".into(),
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            process_roles: "broker,controller".into(),
            controller_quorum_voters: None,
            listeners: None,
            advertised_listeners: None,
            controller_listener_names: "CONTROLLER".into(),
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
            inter_broker_listener_name: "PLAINTEXT".into(),
            cluster_id: None,
            broker_rack: None,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            controller_quorum_election_timeout_ms: 1_000,
            replica_lag_time_max_ms: 30_000,
            offsets_topic_replication_factor: 3,
            offsets_topic_num_partitions: 50,
            offsets_commit_timeout_ms: 5_000,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_min_isr: 2,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            ssl_keystore_type: "PEM".into(),
            ssl_keystore_location: None,
            ssl_keystore_certificate_chain: None,
            ssl_keystore_key: None,
            ssl_key_password: None,
            ssl_truststore_type: "PEM".into(),
            ssl_truststore_location: None,
            ssl_truststore_certificates: None,
            ssl_client_auth: "none".into(),
            ssl_enabled_protocols: "TLSv1.2,TLSv1.3".into(),
            sasl_enabled_mechanisms: "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into(),
            sasl_mechanism_inter_broker_protocol: "GSSAPI".into(),
            sasl_jaas_config: None,
            ssl_endpoint_identification_algorithm: "https".into(),
            connections_max_reauth_ms: 0,
            ssl_principal_mapping_rules: "DEFAULT".into(),
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            controller_quota_window_num: 11,
            controller_quota_window_size_seconds: 1,
            authorizer_class_name: String::new(),
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            sasl_server_max_receive_size: 524_288,
            listener_overrides: BTreeMap::new(),
            explicitly_set: BTreeSet::new(),
        }
    }
}

impl BrokerConfig {
    /// Checks every value and reports all problems at once, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, msg: String| {
            if !ok {
                problems.push(msg);
            }
        };
        check(self.node_id >= 0, format!("node.id must be >= 0, got {}", self.node_id));
        check(self.num_partitions >= 1, format!("num.partitions must be >= 1, got {}", self.num_partitions));
        check(
            self.default_replication_factor >= 1,
            format!("default.replication.factor must be >= 1, got {}", self.default_replication_factor),
        );
        for (key, value) in [
            ("broker.session.timeout.ms", self.broker_session_timeout_ms),
            ("broker.heartbeat.interval.ms", self.broker_heartbeat_interval_ms),
            ("controller.quorum.election.timeout.ms", self.controller_quorum_election_timeout_ms),
            ("replica.lag.time.max.ms", self.replica_lag_time_max_ms),
            ("leader.imbalance.check.interval.seconds", self.leader_imbalance_check_interval_seconds),
            ("offsets.commit.timeout.ms", self.offsets_commit_timeout_ms),
            ("offsets.topic.num.partitions", i64::from(self.offsets_topic_num_partitions)),
            ("transaction.state.log.num.partitions", i64::from(self.transaction_state_log_num_partitions)),
        ] {
            check(value >= 1, format!("{key} must be >= 1, got {value}"));
        }
        check(
            self.broker_heartbeat_interval_ms < self.broker_session_timeout_ms,
            format!(
                "broker.heartbeat.interval.ms ({}) must be below broker.session.timeout.ms ({})",
                self.broker_heartbeat_interval_ms, self.broker_session_timeout_ms
            ),
        );
        check(
            self.offsets_topic_replication_factor >= 1 && self.transaction_state_log_replication_factor >= 1,
            "offsets.topic.replication.factor and transaction.state.log.replication.factor must be >= 1".to_string(),
        );
        check(
            self.transaction_state_log_min_isr >= 1,
            format!("transaction.state.log.min.isr must be >= 1, got {}", self.transaction_state_log_min_isr),
        );
        check(
            self.leader_imbalance_per_broker_percentage >= 0,
            format!(
                "leader.imbalance.per.broker.percentage must be >= 0, got {}",
                self.leader_imbalance_per_broker_percentage
            ),
        );
        check(
            self.min_insync_replicas >= 1,
            format!("min.insync.replicas must be >= 1, got {}", self.min_insync_replicas),
        );
        if let Err(cluster_problems) = self.cluster_layout() {
            problems.extend(cluster_problems);
        }
        let mut check = |ok: bool, msg: String| {
            if !ok {
                problems.push(msg);
            }
        };
        check(self.message_max_bytes >= 0, format!("message.max.bytes must be >= 0, got {}", self.message_max_bytes));
        check(
            self.socket_request_max_bytes >= 1,
            format!("socket.request.max.bytes must be >= 1, got {}", self.socket_request_max_bytes),
        );
        check(self.fetch_max_bytes >= 0, format!("fetch.max.bytes must be >= 0, got {}", self.fetch_max_bytes));
        check(self.max_connections >= 1, format!("max.connections must be >= 1, got {}", self.max_connections));
        check(
            self.max_connections_per_ip >= 1,
            format!("max.connections.per.ip must be >= 1, got {}", self.max_connections_per_ip),
        );
        check(
            self.connections_max_reauth_ms >= 0,
            format!("connections.max.reauth.ms must be >= 0, got {}", self.connections_max_reauth_ms),
        );
        if let Err(problem) = crate::principal::PrincipalMapper::parse(&self.ssl_principal_mapping_rules) {
            problems.push(format!("ssl.principal.mapping.rules: {problem}"));
        }
        let mut check = |ok: bool, msg: String| {
            if !ok {
                problems.push(msg);
            }
        };
        check(
            self.storage_block_cache_bytes >= 0,
            format!("storage.block.cache.bytes must be >= 0, got {}", self.storage_block_cache_bytes),
        );
        check(
            self.storage_log_write_buffer_bytes >= 1 << 20,
            format!("storage.log.write.buffer.bytes must be >= 1048576, got {}", self.storage_log_write_buffer_bytes),
        );
        check(
            self.storage_total_write_buffer_bytes >= self.storage_log_write_buffer_bytes,
            format!(
                "storage.total.write.buffer.bytes must be >= storage.log.write.buffer.bytes, got {}",
                self.storage_total_write_buffer_bytes
            ),
        );
        check(
            self.storage_max_open_files == -1 || self.storage_max_open_files >= 16,
            format!("storage.max.open.files must be -1 or >= 16, got {}", self.storage_max_open_files),
        );
        check(self.quota_window_num >= 1, format!("quota.window.num must be >= 1, got {}", self.quota_window_num));
        check(
            self.quota_window_size_seconds >= 1,
            format!("quota.window.size.seconds must be >= 1, got {}", self.quota_window_size_seconds),
        );
        check(
            self.controller_quota_window_num >= 1,
            format!("controller.quota.window.num must be >= 1, got {}", self.controller_quota_window_num),
        );
        check(
            self.controller_quota_window_size_seconds >= 1,
            format!(
                "controller.quota.window.size.seconds must be >= 1, got {}",
                self.controller_quota_window_size_seconds
            ),
        );
        check(
            self.authorizer_class_name.is_empty() || self.authorizer_class_name == crate::security::STANDARD_AUTHORIZER,
            format!(
                "authorizer.class.name: {} is not supported (Skein implements {})",
                self.authorizer_class_name,
                crate::security::STANDARD_AUTHORIZER
            ),
        );
        for principal in self.super_user_principals() {
            check(
                principal.split_once(':').is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty()),
                format!("super.users: {principal} is not a principal (Type:name, e.g. User:admin)"),
            );
        }
        check(
            self.sasl_server_max_receive_size >= 1,
            format!("sasl.server.max.receive.size must be >= 1, got {}", self.sasl_server_max_receive_size),
        );
        check(
            self.connections_max_idle_ms >= 1,
            format!("connections.max.idle.ms must be >= 1, got {}", self.connections_max_idle_ms),
        );
        check(self.log_retention_ms >= -1, format!("log.retention.ms must be >= -1, got {}", self.log_retention_ms));
        check(
            self.log_retention_bytes >= -1,
            format!("log.retention.bytes must be >= -1, got {}", self.log_retention_bytes),
        );
        check(
            self.log_cleaner_backoff_ms >= 1,
            format!("log.cleaner.backoff.ms must be >= 1, got {}", self.log_cleaner_backoff_ms),
        );
        check(
            self.max_connection_creation_rate >= 0,
            format!("max.connection.creation.rate must be >= 0, got {}", self.max_connection_creation_rate),
        );
        for (key, value) in &self.listener_overrides {
            if let Some(listener) = key.strip_suffix(".max.connection.creation.rate") {
                check(
                    validate_dynamic_broker_config(MAX_CONNECTION_CREATION_RATE, value).is_ok(),
                    format!(
                        "listener.name.{}.max.connection.creation.rate must be >= 0, got {value}",
                        listener.to_ascii_lowercase()
                    ),
                );
            }
        }
        check(
            self.log_cleaner_io_max_bytes_per_second > 0.0,
            format!(
                "log.cleaner.io.max.bytes.per.second must be > 0, got {}",
                self.log_cleaner_io_max_bytes_per_second
            ),
        );
        check(
            self.log_cleaner_dedupe_buffer_size >= 1_048_576,
            format!("log.cleaner.dedupe.buffer.size must be >= 1048576, got {}", self.log_cleaner_dedupe_buffer_size),
        );
        check(
            self.log_retention_check_interval_ms >= 1,
            format!("log.retention.check.interval.ms must be >= 1, got {}", self.log_retention_check_interval_ms),
        );
        check(
            self.producer_id_expiration_ms >= 1,
            format!("producer.id.expiration.ms must be >= 1, got {}", self.producer_id_expiration_ms),
        );
        check(
            self.producer_id_expiration_check_interval_ms >= 1,
            format!(
                "producer.id.expiration.check.interval.ms must be >= 1, got {}",
                self.producer_id_expiration_check_interval_ms
            ),
        );
        check(
            self.group_initial_rebalance_delay_ms >= 0,
            format!("group.initial.rebalance.delay.ms must be >= 0, got {}", self.group_initial_rebalance_delay_ms),
        );
        check(
            self.group_min_session_timeout_ms >= 0,
            format!("group.min.session.timeout.ms must be >= 0, got {}", self.group_min_session_timeout_ms),
        );
        check(
            self.group_max_session_timeout_ms >= self.group_min_session_timeout_ms,
            format!(
                "group.max.session.timeout.ms ({}) must be >= group.min.session.timeout.ms ({})",
                self.group_max_session_timeout_ms, self.group_min_session_timeout_ms
            ),
        );
        let within = |value: i64, min: i64, max: i64| min <= value && value <= max;
        check(
            within(
                self.group_consumer_session_timeout_ms,
                self.group_consumer_min_session_timeout_ms,
                self.group_consumer_max_session_timeout_ms,
            ),
            format!(
                "group.consumer.session.timeout.ms ({}) must be within group.consumer.min.session.timeout.ms ({}) and \
                 group.consumer.max.session.timeout.ms ({})",
                self.group_consumer_session_timeout_ms,
                self.group_consumer_min_session_timeout_ms,
                self.group_consumer_max_session_timeout_ms
            ),
        );
        check(
            within(
                self.group_consumer_heartbeat_interval_ms,
                self.group_consumer_min_heartbeat_interval_ms,
                self.group_consumer_max_heartbeat_interval_ms,
            ),
            format!(
                "group.consumer.heartbeat.interval.ms ({}) must be within group.consumer.min.heartbeat.interval.ms ({}) \
                 and group.consumer.max.heartbeat.interval.ms ({})",
                self.group_consumer_heartbeat_interval_ms,
                self.group_consumer_min_heartbeat_interval_ms,
                self.group_consumer_max_heartbeat_interval_ms
            ),
        );
        check(
            self.group_consumer_min_heartbeat_interval_ms >= 1
                && self.group_consumer_heartbeat_interval_ms < self.group_consumer_session_timeout_ms,
            format!(
                "group.consumer.heartbeat.interval.ms ({}) must be >= 1 and below group.consumer.session.timeout.ms ({})",
                self.group_consumer_heartbeat_interval_ms, self.group_consumer_session_timeout_ms
            ),
        );
        let assignors = self.consumer_assignors();
        check(
            !assignors.is_empty() && assignors.iter().all(|name| CONSUMER_ASSIGNORS.contains(name)),
            format!(
                "group.consumer.assignors must list one or more of {}, got '{}'",
                CONSUMER_ASSIGNORS.join(", "),
                self.group_consumer_assignors
            ),
        );
        check(
            self.offsets_retention_minutes >= 1,
            format!("offsets.retention.minutes must be >= 1, got {}", self.offsets_retention_minutes),
        );
        check(
            self.transaction_max_timeout_ms >= 1,
            format!("transaction.max.timeout.ms must be >= 1, got {}", self.transaction_max_timeout_ms),
        );
        check(
            self.transaction_abort_timed_out_transaction_cleanup_interval_ms >= 1,
            format!(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms must be >= 1, got {}",
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms
            ),
        );
        check(
            self.transactional_id_expiration_ms >= 1,
            format!("transactional.id.expiration.ms must be >= 1, got {}", self.transactional_id_expiration_ms),
        );
        check(
            self.transaction_remove_expired_transaction_cleanup_interval_ms >= 1,
            format!(
                "transaction.remove.expired.transaction.cleanup.interval.ms must be >= 1, got {}",
                self.transaction_remove_expired_transaction_cleanup_interval_ms
            ),
        );
        check(
            self.offsets_retention_check_interval_ms >= 1,
            format!(
                "offsets.retention.check.interval.ms must be >= 1, got {}",
                self.offsets_retention_check_interval_ms
            ),
        );
        for (key, value) in [
            ("log.cleanup.policy", &self.log_cleanup_policy),
            ("log.message.timestamp.type", &self.log_message_timestamp_type),
            ("log.message.timestamp.before.max.ms", &self.log_message_timestamp_before_max_ms.to_string()),
            ("log.message.timestamp.after.max.ms", &self.log_message_timestamp_after_max_ms.to_string()),
            ("compression.type", &self.compression_type),
        ] {
            let topic_key = TOPIC_CONFIGS.iter().find(|def| def.broker_key == Some(key));
            if let Some(def) = topic_key
                && let Err(msg) = (def.validate)(value)
            {
                check(false, format!("{key}: {msg}"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// The server-side assignors of `group.consumer.assignors`, in order (the first is the default).
    pub fn consumer_assignors(&self) -> Vec<&str> {
        self.group_consumer_assignors.split(',').map(str::trim).filter(|name| !name.is_empty()).collect()
    }

    /// The data directory as an absolute path, as DescribeLogDirs and AlterReplicaLogDirs name it.
    pub fn log_dir_path(&self) -> String {
        std::fs::canonicalize(&self.data_dir)
            .or_else(|_| std::path::absolute(&self.data_dir))
            .map(|path| path.display().to_string())
            .unwrap_or_else(|_| self.data_dir.clone())
    }

    /// The address clients are told to connect to.
    pub fn advertised(&self) -> &str {
        self.advertised_listener.as_deref().unwrap_or(&self.listen)
    }

    /// The broker-level settings DescribeConfigs reports for the broker resource: (name, value, explicitly set).
    pub fn describe(&self) -> Vec<(&'static str, String, bool)> {
        let entries: Vec<(&'static str, String)> = vec![
            ("node.id", self.node_id.to_string()),
            ("broker.id", self.node_id.to_string()),
            ("metrics.partition.level", self.metrics_partition_level.to_string()),
            ("storage.block.cache.bytes", self.storage_block_cache_bytes.to_string()),
            ("storage.log.write.buffer.bytes", self.storage_log_write_buffer_bytes.to_string()),
            ("storage.total.write.buffer.bytes", self.storage_total_write_buffer_bytes.to_string()),
            ("storage.max.open.files", self.storage_max_open_files.to_string()),
            ("num.partitions", self.num_partitions.to_string()),
            ("default.replication.factor", self.default_replication_factor.to_string()),
            ("auto.create.topics.enable", self.auto_create_topics_enable.to_string()),
            ("message.max.bytes", self.message_max_bytes.to_string()),
            ("socket.request.max.bytes", self.socket_request_max_bytes.to_string()),
            ("fetch.max.bytes", self.fetch_max_bytes.to_string()),
            ("max.connections", self.max_connections.to_string()),
            ("max.connections.per.ip", self.max_connections_per_ip.to_string()),
            ("connections.max.idle.ms", self.connections_max_idle_ms.to_string()),
            ("log.retention.ms", self.log_retention_ms.to_string()),
            ("log.retention.bytes", self.log_retention_bytes.to_string()),
            ("log.retention.check.interval.ms", self.log_retention_check_interval_ms.to_string()),
            ("log.cleaner.enable", self.log_cleaner_enable.to_string()),
            ("log.cleaner.backoff.ms", self.log_cleaner_backoff_ms.to_string()),
            ("log.cleaner.io.max.bytes.per.second", format_double(self.log_cleaner_io_max_bytes_per_second)),
            ("max.connection.creation.rate", self.max_connection_creation_rate.to_string()),
            ("log.cleaner.dedupe.buffer.size", self.log_cleaner_dedupe_buffer_size.to_string()),
            ("log.cleanup.policy", self.log_cleanup_policy.clone()),
            ("log.message.timestamp.type", self.log_message_timestamp_type.clone()),
            ("log.message.timestamp.before.max.ms", self.log_message_timestamp_before_max_ms.to_string()),
            ("log.message.timestamp.after.max.ms", self.log_message_timestamp_after_max_ms.to_string()),
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            ("compression.type", self.compression_type.clone()),
            ("producer.id.expiration.ms", self.producer_id_expiration_ms.to_string()),
            ("producer.id.expiration.check.interval.ms", self.producer_id_expiration_check_interval_ms.to_string()),
            ("group.initial.rebalance.delay.ms", self.group_initial_rebalance_delay_ms.to_string()),
            ("group.min.session.timeout.ms", self.group_min_session_timeout_ms.to_string()),
            ("group.max.session.timeout.ms", self.group_max_session_timeout_ms.to_string()),
            ("group.consumer.session.timeout.ms", self.group_consumer_session_timeout_ms.to_string()),
            ("group.consumer.min.session.timeout.ms", self.group_consumer_min_session_timeout_ms.to_string()),
            ("group.consumer.max.session.timeout.ms", self.group_consumer_max_session_timeout_ms.to_string()),
            ("group.consumer.heartbeat.interval.ms", self.group_consumer_heartbeat_interval_ms.to_string()),
            ("group.consumer.min.heartbeat.interval.ms", self.group_consumer_min_heartbeat_interval_ms.to_string()),
            ("group.consumer.max.heartbeat.interval.ms", self.group_consumer_max_heartbeat_interval_ms.to_string()),
            ("group.consumer.assignors", self.group_consumer_assignors.clone()),
            ("transaction.max.timeout.ms", self.transaction_max_timeout_ms.to_string()),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms.to_string(),
            ),
            ("transactional.id.expiration.ms", self.transactional_id_expiration_ms.to_string()),
            (
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                self.transaction_remove_expired_transaction_cleanup_interval_ms.to_string(),
            ),
            ("offsets.retention.minutes", self.offsets_retention_minutes.to_string()),
            ("offsets.retention.check.interval.ms", self.offsets_retention_check_interval_ms.to_string()),
            ("process.roles", self.process_roles.clone()),
            ("controller.quorum.voters", self.controller_quorum_voters.clone().unwrap_or_default()),
            ("listeners", self.listeners.clone().unwrap_or_else(|| format!("PLAINTEXT://{}", self.listen))),
            (
                "advertised.listeners",
                self.advertised_listeners
                    .clone()
                    .or_else(|| self.advertised_listener.as_ref().map(|address| format!("PLAINTEXT://{address}")))
                    .unwrap_or_default(),
            ),
            ("controller.listener.names", self.controller_listener_names.clone()),
            ("listener.security.protocol.map", self.listener_security_protocol_map.clone()),
            ("inter.broker.listener.name", self.inter_broker_listener_name.clone()),
            ("broker.rack", self.broker_rack.clone().unwrap_or_default()),
            ("broker.session.timeout.ms", self.broker_session_timeout_ms.to_string()),
            ("broker.heartbeat.interval.ms", self.broker_heartbeat_interval_ms.to_string()),
            ("controller.quorum.election.timeout.ms", self.controller_quorum_election_timeout_ms.to_string()),
            ("replica.lag.time.max.ms", self.replica_lag_time_max_ms.to_string()),
            ("offsets.topic.replication.factor", self.offsets_topic_replication_factor.to_string()),
            ("offsets.topic.num.partitions", self.offsets_topic_num_partitions.to_string()),
            ("offsets.commit.timeout.ms", self.offsets_commit_timeout_ms.to_string()),
            ("transaction.state.log.replication.factor", self.transaction_state_log_replication_factor.to_string()),
            ("transaction.state.log.min.isr", self.transaction_state_log_min_isr.to_string()),
            ("transaction.state.log.num.partitions", self.transaction_state_log_num_partitions.to_string()),
            ("unclean.leader.election.enable", self.unclean_leader_election_enable.to_string()),
            ("auto.leader.rebalance.enable", self.auto_leader_rebalance_enable.to_string()),
            ("leader.imbalance.check.interval.seconds", self.leader_imbalance_check_interval_seconds.to_string()),
            ("leader.imbalance.per.broker.percentage", self.leader_imbalance_per_broker_percentage.to_string()),
            ("quota.window.num", self.quota_window_num.to_string()),
            ("controller.quota.window.num", self.controller_quota_window_num.to_string()),
            ("controller.quota.window.size.seconds", self.controller_quota_window_size_seconds.to_string()),
            ("quota.window.size.seconds", self.quota_window_size_seconds.to_string()),
            // Kafka's names for the data directory: Skein has one, `data.dir`.
            ("log.dirs", self.log_dir_path()),
            ("log.dir", self.log_dir_path()),
        ];
        entries
            .into_iter()
            .map(|(name, value)| {
                let set = self.explicitly_set.contains(name)
                    || (name == "broker.id" && self.explicitly_set.contains("node.id"))
                    || (name.starts_with("log.dir") && self.explicitly_set.contains("data.dir"))
                    || (name == "listeners" && self.explicitly_set.contains("listen"))
                    || (name == "advertised.listeners" && self.explicitly_set.contains("advertised.listener"));
                (name, value, set)
            })
            .collect()
    }

    /// The value a topic inherits for `def` when it has no override.
    pub fn topic_default(&self, def: &TopicConfigDef) -> String {
        match def.broker_key {
            Some("log.retention.ms") => self.log_retention_ms.to_string(),
            Some("log.retention.bytes") => self.log_retention_bytes.to_string(),
            Some("message.max.bytes") => self.message_max_bytes.to_string(),
            Some("log.cleanup.policy") => self.log_cleanup_policy.clone(),
            Some("log.message.timestamp.type") => self.log_message_timestamp_type.clone(),
            Some("log.message.timestamp.before.max.ms") => self.log_message_timestamp_before_max_ms.to_string(),
            Some("log.message.timestamp.after.max.ms") => self.log_message_timestamp_after_max_ms.to_string(),
            Some("min.insync.replicas") => self.min_insync_replicas.to_string(),
            Some("compression.type") => self.compression_type.clone(),
            _ => def.default.to_string(),
        }
    }
}

/// A topic-level config Kafka knows, with the broker setting it inherits from (its synonym) and a validator.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// The broker-level setting whose value is the topic's default, if any.
    pub broker_key: Option<&'static str>,
    /// Kafka's default when no broker setting applies.
    pub default: &'static str,
    /// DescribeConfigs `config_type`: 1 boolean, 2 string, 3 int, 5 long, 6 double, 7 list.
    pub config_type: i8,
    pub validate: fn(&str) -> Result<(), String>,
}

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |value: &str| match value.trim().parse::<i64>() {
        Ok(v) if v >= min => Ok(()),
        Ok(v) => Err(format!("value {v} must be at least {min}")),
        Err(_) => Err(format!("value '{value}' is not a whole number")),
    }
}

fn validate_ms(value: &str) -> Result<(), String> {
    long_at_least(0)(value)
}
fn validate_retention(value: &str) -> Result<(), String> {
    long_at_least(-1)(value)
}
fn validate_positive_int(value: &str) -> Result<(), String> {
    long_at_least(0)(value)?;
    value.trim().parse::<i32>().map(|_| ()).map_err(|_| format!("value '{value}' is out of range for an int"))
}
fn validate_min_isr(value: &str) -> Result<(), String> {
    long_at_least(1)(value)
}
fn validate_cleanup_policy(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    if !parts.is_empty() && parts.iter().all(|p| matches!(*p, "delete" | "compact")) {
        Ok(())
    } else {
        Err(format!("'{value}' is not a list of 'delete' and 'compact'"))
    }
}
fn validate_timestamp_type(value: &str) -> Result<(), String> {
    match value {
        "CreateTime" | "LogAppendTime" => Ok(()),
        _ => Err(format!("'{value}' must be CreateTime or LogAppendTime")),
    }
}
fn validate_compression_type(value: &str) -> Result<(), String> {
    match value {
        "uncompressed" | "zstd" | "lz4" | "snappy" | "gzip" | "producer" => Ok(()),
        _ => Err(format!("'{value}' must be one of uncompressed, zstd, lz4, snappy, gzip, producer")),
    }
}
fn validate_ratio(value: &str) -> Result<(), String> {
    match value.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
        _ => Err(format!("'{value}' must be a number between 0 and 1")),
    }
}
/// Kafka's throttled replica list: empty, `*`, or `partition:broker` pairs separated by commas.
fn validate_throttled_replicas(value: &str) -> Result<(), String> {
    let value = value.trim();
    let pair = |entry: &str| {
        entry.trim().split_once(':').is_some_and(|(partition, broker)| {
            partition.trim().parse::<u32>().is_ok() && broker.trim().parse::<u32>().is_ok()
        })
    };
    if value.is_empty() || value == "*" || value.split(',').all(pair) {
        Ok(())
    } else {
        Err(format!("'{value}' must be '*' or a list of partition:broker pairs"))
    }
}
fn int_in_range(value: &str, min: i32, max: i32) -> Result<(), String> {
    match value.trim().parse::<i32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(()),
        _ => Err(format!("value '{value}' must be a whole number in [{min},...,{max}]")),
    }
}
/// Kafka's gzip levels: -1 (the codec's default) or 1 to 9.
fn validate_gzip_level(value: &str) -> Result<(), String> {
    if value.trim() == "-1" { Ok(()) } else { int_in_range(value, 1, 9) }
}
fn validate_lz4_level(value: &str) -> Result<(), String> {
    int_in_range(value, 1, 17)
}
fn validate_zstd_level(value: &str) -> Result<(), String> {
    int_in_range(value, -131_072, 22)
}
fn validate_segment_index_bytes(value: &str) -> Result<(), String> {
    int_in_range(value, 4, i32::MAX)
}
/// -2: the same as `retention.*`, -1: unlimited (tiered storage only).
fn validate_local_retention(value: &str) -> Result<(), String> {
    long_at_least(-2)(value)
}
/// Kafka's broker refuses remote storage for a topic when tiered storage is off, as it is in Skein.
fn validate_remote_storage_enable(value: &str) -> Result<(), String> {
    match value {
        "false" => Ok(()),
        "true" => Err("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with \
                       remote log storage."
            .to_string()),
        _ => Err(format!("'{value}' must be true or false")),
    }
}
fn validate_bool(value: &str) -> Result<(), String> {
    match value {
        "true" | "false" => Ok(()),
        _ => Err(format!("'{value}' must be true or false")),
    }
}

/// The topic-level configs Skein accepts (every one Kafka 4.3.1 has), in the order DescribeConfigs lists them.
/// `compression.{gzip,lz4,zstd}.level`, `file.delete.delay.ms`, `flush.*`, `index.interval.bytes`,
/// `local.retention.*`, `preallocate`, `remote.*`, `segment.index.bytes` and `segment.jitter.ms` are checked, stored
/// and reported as Kafka does, with no effect: Skein keeps logs in RocksDB, not in segment files, has no tiered
/// storage, and keeps batches in the producer's codec (compaction rewrites them at the codec's default level).
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        config_type: 7,
        broker_key: Some("log.cleanup.policy"),
        default: "delete",
        validate: validate_cleanup_policy,
    },
    TopicConfigDef {
        name: "compression.gzip.level",
        config_type: 3,
        broker_key: Some("compression.gzip.level"),
        default: "-1",
        validate: validate_gzip_level,
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        config_type: 3,
        broker_key: Some("compression.lz4.level"),
        default: "9",
        validate: validate_lz4_level,
    },
    TopicConfigDef {
        name: "compression.type",
        config_type: 2,
        broker_key: Some("compression.type"),
        default: "producer",
        validate: validate_compression_type,
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        config_type: 3,
        broker_key: Some("compression.zstd.level"),
        default: "3",
        validate: validate_zstd_level,
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        config_type: 5,
        broker_key: None,
        default: "86400000",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        config_type: 5,
        broker_key: Some("log.segment.delete.delay.ms"),
        default: "60000",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "flush.messages",
        config_type: 5,
        broker_key: Some("log.flush.interval.messages"),
        default: "9223372036854775807",
        validate: validate_min_isr,
    },
    TopicConfigDef {
        name: "flush.ms",
        config_type: 5,
        broker_key: Some("log.flush.interval.ms"),
        default: "9223372036854775807",
        validate: validate_ms,
    },
    // Accepted as Kafka accepts them (kafka-reassign-partitions sets and clears them); Skein does not throttle
    // replication.
    TopicConfigDef {
        name: "follower.replication.throttled.replicas",
        config_type: 7,
        broker_key: None,
        default: "",
        validate: validate_throttled_replicas,
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        config_type: 3,
        broker_key: Some("log.index.interval.bytes"),
        default: "4096",
        validate: validate_positive_int,
    },
    TopicConfigDef {
        name: "leader.replication.throttled.replicas",
        config_type: 7,
        broker_key: None,
        default: "",
        validate: validate_throttled_replicas,
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        config_type: 5,
        broker_key: Some("log.local.retention.bytes"),
        default: "-2",
        validate: validate_local_retention,
    },
    TopicConfigDef {
        name: "local.retention.ms",
        config_type: 5,
        broker_key: Some("log.local.retention.ms"),
        default: "-2",
        validate: validate_local_retention,
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        config_type: 5,
        broker_key: None,
        default: "9223372036854775807",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "max.message.bytes",
        config_type: 3,
        broker_key: Some("message.max.bytes"),
        default: "1048588",
        validate: validate_positive_int,
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        config_type: 5,
        broker_key: Some("log.message.timestamp.after.max.ms"),
        default: "3600000",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        config_type: 5,
        broker_key: Some("log.message.timestamp.before.max.ms"),
        default: "9223372036854775807",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        config_type: 2,
        broker_key: Some("log.message.timestamp.type"),
        default: "CreateTime",
        validate: validate_timestamp_type,
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: 6,
        broker_key: None,
        default: "0.5",
        validate: validate_ratio,
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        config_type: 5,
        broker_key: None,
        default: "0",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        config_type: 3,
        broker_key: Some("min.insync.replicas"),
        default: "1",
        validate: validate_min_isr,
    },
    TopicConfigDef {
        name: "preallocate",
        config_type: 1,
        broker_key: Some("log.preallocate"),
        default: "false",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "remote.log.copy.disable",
        config_type: 1,
        broker_key: None,
        default: "false",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "remote.log.delete.on.disable",
        config_type: 1,
        broker_key: None,
        default: "false",
        validate: validate_bool,
    },
    TopicConfigDef {
        name: "remote.storage.enable",
        config_type: 1,
        broker_key: None,
        default: "false",
        validate: validate_remote_storage_enable,
    },
    TopicConfigDef {
        name: "retention.bytes",
        config_type: 5,
        broker_key: Some("log.retention.bytes"),
        default: "-1",
        validate: validate_retention,
    },
    TopicConfigDef {
        name: "retention.ms",
        config_type: 5,
        broker_key: Some("log.retention.ms"),
        default: "604800000",
        validate: validate_retention,
    },
    TopicConfigDef {
        name: "segment.bytes",
        config_type: 3,
        broker_key: None,
        default: "1073741824",
        validate: validate_positive_int,
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        config_type: 3,
        broker_key: Some("log.index.size.max.bytes"),
        default: "10485760",
        validate: validate_segment_index_bytes,
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        config_type: 5,
        broker_key: Some("log.roll.jitter.ms"),
        default: "0",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "segment.ms",
        config_type: 5,
        broker_key: None,
        default: "604800000",
        validate: validate_ms,
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        config_type: 1,
        broker_key: None,
        default: "false",
        validate: validate_bool,
    },
];

/// Looks up a topic config by name.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// A double as Kafka prints it (Java's `Double.toString`), for the values Skein reports: the unlimited
/// default is `1.7976931348623157E308`.
pub fn format_double(value: f64) -> String {
    if value == f64::MAX {
        "1.7976931348623157E308".to_string()
    } else if value.fract() == 0.0 && value.abs() < 1e7 {
        format!("{value:.1}")
    } else {
        value.to_string()
    }
}

/// Where a config's value comes from, with Kafka's `ConfigSource` codes (DescribeConfigs). Higher in this list
/// wins: a topic override, then this broker's dynamic setting, the cluster-wide dynamic default, the static
/// setting (YAML or command line), and Kafka's default. A client metrics subscription's settings and a group's
/// overrides have sources of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    ClientMetrics = 7,
    DynamicGroup = 8,
}

impl ConfigSource {
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// The broker settings AlterConfigs may change while Skein runs (Kafka's dynamic broker configs that Skein reads
/// at each use): the defaults topics inherit and the cleaner's I/O budget. Every other setting Skein has is read
/// once at start-up.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "log.retention.ms",
    "log.retention.bytes",
    "log.cleanup.policy",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "message.max.bytes",
    "min.insync.replicas",
    "compression.type",
    "log.cleaner.io.max.bytes.per.second",
    "max.connection.creation.rate",
];

/// KIP-612's connection creation rate, broker-wide (the listeners but the inter-broker one) and per listener.
pub const MAX_CONNECTION_CREATION_RATE: &str = "max.connection.creation.rate";

/// The listener of a dynamic `listener.name.<listener>.max.connection.creation.rate` key (lower case, as Kafka
/// spells listener names in config keys).
pub fn listener_connection_creation_rate_key(name: &str) -> Option<&str> {
    name.strip_prefix("listener.name.")?
        .strip_suffix(".max.connection.creation.rate")
        .filter(|listener| !listener.is_empty() && !listener.contains('.'))
}

/// Checks a value for a dynamic broker setting; settings topics inherit use their topic config's rules.
pub fn validate_dynamic_broker_config(name: &str, value: &str) -> Result<(), String> {
    if name == "log.cleaner.io.max.bytes.per.second" {
        return match value.trim().parse::<f64>() {
            Ok(v) if v > 0.0 => Ok(()),
            _ => Err(format!("'{value}' must be a number above 0")),
        };
    }
    if name == MAX_CONNECTION_CREATION_RATE || listener_connection_creation_rate_key(name).is_some() {
        return match value.trim().parse::<i32>() {
            Ok(v) if v >= 0 => Ok(()),
            _ => Err(format!("Invalid value {value} for configuration {name}: Value must be at least 0")),
        };
    }
    match TOPIC_CONFIGS.iter().find(|def| def.broker_key == Some(name)) {
        Some(def) => (def.validate)(value),
        None => Ok(()),
    }
}

/// Whether a broker setting is a list (comma separated), so IncrementalAlterConfigs may APPEND and SUBTRACT.
pub fn is_list_broker_config(name: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|def| def.broker_key == Some(name) && def.config_type == 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_connection_creation_rate_is_checked() {
        let mut config = BrokerConfig::default();
        config.listener_overrides.insert("PLAINTEXT.max.connection.creation.rate".into(), "-1".into());
        let problems = config.validate().expect_err("invalid").join("\n");
        assert!(problems.contains("listener.name.plaintext.max.connection.creation.rate must be >= 0, got -1"));
        config.listener_overrides.insert("PLAINTEXT.max.connection.creation.rate".into(), "50".into());
        assert!(config.validate().is_ok());
        assert_eq!(
            listener_connection_creation_rate_key("listener.name.internal.max.connection.creation.rate"),
            Some("internal")
        );
        assert_eq!(listener_connection_creation_rate_key("max.connection.creation.rate"), None);
    }

    #[test]
    fn storage_memory_settings_are_checked() {
        let config = BrokerConfig {
            storage_log_write_buffer_bytes: 1024,
            storage_total_write_buffer_bytes: 512,
            storage_max_open_files: 3,
            storage_block_cache_bytes: -1,
            ..BrokerConfig::default()
        };
        let problems = config.validate().expect_err("invalid").join("\n");
        for key in [
            "storage.log.write.buffer.bytes must be >= 1048576",
            "storage.total.write.buffer.bytes must be >= storage.log.write.buffer.bytes",
            "storage.max.open.files must be -1 or >= 16",
            "storage.block.cache.bytes must be >= 0",
        ] {
            assert!(problems.contains(key), "{problems}");
        }
    }

    #[test]
    fn defaults_are_kafkas_and_valid() {
        let config = BrokerConfig::default();
        assert_eq!(config.message_max_bytes, 1_048_588);
        assert_eq!(config.socket_request_max_bytes, 104_857_600);
        assert_eq!(config.listen, "127.0.0.1:9092");
        assert!(config.validate().is_ok());
        let def = topic_config_def("max.message.bytes").expect("known");
        assert_eq!(config.topic_default(def), "1048588");
    }

    #[test]
    fn validate_names_every_bad_key() {
        let config = BrokerConfig { num_partitions: 0, log_cleanup_policy: "forever".into(), ..Default::default() };
        let problems = config.validate().expect_err("invalid");
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("num.partitions"));
        assert!(problems[1].contains("log.cleanup.policy"));
    }

    #[test]
    fn topic_config_validators() {
        let check = |name: &str, value: &str| (topic_config_def(name).expect("known").validate)(value);
        assert!(check("retention.ms", "-1").is_ok());
        assert!(check("retention.ms", "abc").is_err());
        assert!(check("cleanup.policy", "compact,delete").is_ok());
        assert!(check("cleanup.policy", "keep").is_err());
        assert!(check("max.message.bytes", "99999999999").is_err());
        assert!(check("message.timestamp.type", "LogAppendTime").is_ok());
    }
}
