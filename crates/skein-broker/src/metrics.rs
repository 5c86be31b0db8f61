//! The broker's Prometheus metrics. Every metric name is spelled in this module and nowhere else.
//!
//! Counters and histograms are kept as requests are served ([`Metrics`]); gauges of the broker's state
//! (partitions, groups, committed offsets, transactions, storage) are read when `/metrics` is scraped ([`render`]),
//! so they are never stale and a deleted partition or group leaves no series behind.
//!
//! Labels come from bounded sets: `api` and `version` from the supported-API table, `error` from Kafka's error
//! codes, `topic` from the existing topics (a deleted topic's series are removed). Per-partition and per-group
//! series (`partition`, `group` labels) are left out when `metrics.partition.level` is `false`.

mod error_codes;

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use skein_protocol::RecordBatchHeader;
use skein_storage::{EngineStats, run_blocking};

use crate::broker::Broker;
use crate::router::{Outcome, supported_versions};

pub(crate) use error_codes::ErrorCodes;

/// Request latency buckets in seconds: from sub-millisecond answers to long-polling fetches and rebalances.
const DURATION_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The `version` label of a request outside the supported range (such requests close the connection, except
/// ApiVersions), so a client cannot create a series per version number.
const UNSUPPORTED_VERSION: &str = "unsupported";
/// The `api` label of an api key Kafka does not define.
const UNKNOWN_API: &str = "unknown";

/// The counters, gauges and histograms kept while the broker serves; shared by the connections and handlers.
pub struct Metrics {
    registry: Registry,
    partition_level: bool,
    requests: IntCounterVec,
    request_errors: IntCounterVec,
    request_duration: HistogramVec,
    topic_bytes_in: IntCounterVec,
    topic_bytes_out: IntCounterVec,
    topic_messages_in: IntCounterVec,
    connections_accepted: IntCounter,
    connections_refused: IntCounter,
    tls_handshake_failures: IntCounter,
    sasl_authentication_failures: IntCounter,
    authorization_denials: IntCounterVec,
    quota_throttles: IntCounterVec,
    connections_active: IntGauge,
    protocol_errors: IntCounter,
    compacted_records: IntCounter,
    compacted_bytes: IntCounter,
    cleaner_runs: IntCounter,
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("partition_level", &self.partition_level).finish()
    }
}

impl Metrics {
    /// Registers every metric; `partition_level` is `metrics.partition.level`. Fails only if a definition here is
    /// invalid (a duplicate or malformed name).
    pub fn new(partition_level: bool) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let requests = counter_vec(
            "skein_requests_total",
            "Requests received, by API and version (`unsupported` outside the supported versions).",
            &["api", "version"],
        )?;
        let request_errors = counter_vec(
            "skein_request_errors_total",
            "Error codes in responses, by API and Kafka error name: one per top-level, topic, partition, group, \
             member or transaction error in a response.",
            &["api", "error"],
        )?;
        let topic_bytes_in = counter_vec(
            "skein_topic_bytes_in_total",
            "Bytes of record batches appended by Produce requests, by topic.",
            &["topic"],
        )?;
        let topic_bytes_out = counter_vec(
            "skein_topic_bytes_out_total",
            "Bytes of record batches returned by Fetch requests, by topic.",
            &["topic"],
        )?;
        let topic_messages_in = counter_vec(
            "skein_topic_messages_in_total",
            "Records appended by Produce requests (the record count of each batch header), by topic.",
            &["topic"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "skein_request_duration_seconds",
                "Time from a request read off the socket to its response being ready, by API (long-polling Fetch \
                 and JoinGroup include their wait).",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["api"],
        )?;
        registry.register(Box::new(request_duration.clone()))?;
        let connections_accepted = IntCounter::new("skein_connections_accepted_total", "Client connections accepted.")?;
        registry.register(Box::new(connections_accepted.clone()))?;
        let connections_refused = IntCounter::new(
            "skein_connections_refused_total",
            "Client connections closed on arrival: max.connections or max.connections.per.ip was reached.",
        )?;
        registry.register(Box::new(connections_refused.clone()))?;
        let tls_handshake_failures = IntCounter::new(
            "skein_tls_handshake_failures_total",
            "Connections to SSL listeners closed because their TLS handshake failed (an untrusted or missing \
             client certificate, no common protocol version or cipher suite, not TLS at all).",
        )?;
        registry.register(Box::new(tls_handshake_failures.clone()))?;
        let sasl_authentication_failures = IntCounter::new(
            "skein_sasl_authentication_failures_total",
            "SASL authentications that failed (wrong password, unknown user, a malformed exchange); each closed \
             its connection.",
        )?;
        registry.register(Box::new(sasl_authentication_failures.clone()))?;
        let authorization_denials = IntCounterVec::new(
            Opts::new(
                "skein_authorization_denials_total",
                "Actions the ACLs refused (authorizer.class.name set), by resource type and operation; topics and \
                 groups left out of a listing are not counted.",
            ),
            &["resource_type", "operation"],
        )?;
        registry.register(Box::new(authorization_denials.clone()))?;
        let quota_throttles = IntCounterVec::new(
            Opts::new(
                "skein_quota_throttles_total",
                "Responses throttled because the client was over its byte-rate quota, by quota (produce, fetch).",
            ),
            &["quota"],
        )?;
        registry.register(Box::new(quota_throttles.clone()))?;
        let connections_active = IntGauge::new("skein_connections_active", "Client connections open now.")?;
        registry.register(Box::new(connections_active.clone()))?;
        let protocol_errors = IntCounter::new(
            "skein_protocol_errors_total",
            "Connections the broker closed because a request broke the protocol or an acks=0 Produce failed.",
        )?;
        registry.register(Box::new(protocol_errors.clone()))?;
        let compacted_records = IntCounter::new(
            "skein_cleaner_records_removed_total",
            "Records log compaction removed (superseded values, expired tombstones, aborted transactions).",
        )?;
        registry.register(Box::new(compacted_records.clone()))?;
        let compacted_bytes =
            IntCounter::new("skein_cleaner_bytes_reclaimed_total", "Bytes of record batches log compaction removed.")?;
        registry.register(Box::new(compacted_bytes.clone()))?;
        let cleaner_runs = IntCounter::new(
            "skein_cleaner_runs_total",
            "Cleaning rounds over the compacted topics (one every log.cleaner.backoff.ms).",
        )?;
        registry.register(Box::new(cleaner_runs.clone()))?;
        let isr_shrinks = IntCounter::new(
            "skein_isr_shrinks_total",
            "ISR shrinks of partitions this broker leads: a follower fell behind (Kafka's IsrShrinksPerSec).",
        )?;
        registry.register(Box::new(isr_shrinks.clone()))?;
        let isr_expands = IntCounter::new(
            "skein_isr_expands_total",
            "ISR expansions of partitions this broker leads: a follower caught up (Kafka's IsrExpandsPerSec).",
        )?;
        registry.register(Box::new(isr_expands.clone()))?;
        Ok(Metrics {
            registry,
            partition_level,
            requests,
            request_errors,
            request_duration,
            topic_bytes_in,
            topic_bytes_out,
            topic_messages_in,
            connections_accepted,
            connections_refused,
            tls_handshake_failures,
            sasl_authentication_failures,
            authorization_denials,
            quota_throttles,
            connections_active,
            protocol_errors,
            compacted_records,
            compacted_bytes,
            cleaner_runs,
            isr_shrinks,
            isr_expands,
        })
    }

    /// Counts an ISR change the controller accepted, from `before` to `after` members.
    pub fn record_isr_change(&self, before: usize, after: usize) {
        if after < before {
            self.isr_shrinks.inc();
        } else if after > before {
            self.isr_expands.inc();
        }
    }

    /// Counts what one compaction pass removed.
    /// Counts one cleaning round over the compacted topics.
    pub fn record_cleaner_run(&self) {
        self.cleaner_runs.inc();
    }

    pub fn record_compaction(&self, records: u64, bytes: u64) {
        self.compacted_records.inc_by(records);
        self.compacted_bytes.inc_by(bytes);
    }

    /// Counts one request the router handled: its api and version, the error codes of its response and how long
    /// it took.
    pub(crate) fn record_request(&self, api_key: i16, api_version: i16, outcome: &Outcome, elapsed: Duration) {
        let (api, version) = match ApiKey::try_from(api_key) {
            Ok(key) => {
                let supported = supported_versions(key).is_some_and(|(min, max)| (min..=max).contains(&api_version));
                let version = if supported { api_version.to_string() } else { UNSUPPORTED_VERSION.to_string() };
                (format!("{key:?}"), version)
            }
            Err(_) => (UNKNOWN_API.to_string(), UNSUPPORTED_VERSION.to_string()),
        };
        self.requests.with_label_values(&[api.as_str(), version.as_str()]).inc();
        self.request_duration.with_label_values(&[api.as_str()]).observe(elapsed.as_secs_f64());
        if let Outcome::Respond { error_codes, .. } = outcome {
            for code in error_codes {
                self.request_errors.with_label_values(&[api.as_str(), error_name(*code).as_str()]).inc();
            }
        }
    }

    /// Counts the bytes and records of every batch a Produce request appended, by topic: partitions answered
    /// without error. A retried batch answered as a duplicate is counted again.
    pub fn record_produced(&self, request: &ProduceRequest, response: &ProduceResponse) {
        // The response lists topics and partitions in the request's order.
        for (topic_data, answer) in request.topic_data.iter().zip(&response.responses) {
            let (mut bytes, mut messages) = (0u64, 0u64);
            for (partition, partition_answer) in topic_data.partition_data.iter().zip(&answer.partition_responses) {
                let Some(records) = partition.records.as_ref().filter(|_| partition_answer.error_code == 0) else {
                    continue;
                };
                bytes += u64::try_from(records.len()).unwrap_or(u64::MAX);
                // The batch was validated before it was appended, so its header parses.
                let count = RecordBatchHeader::parse(records).map_or(0, |header| header.records_count);
                messages += u64::try_from(count).unwrap_or(0);
            }
            if bytes > 0 {
                let topic = topic_data.name.0.as_str();
                self.topic_bytes_in.with_label_values(&[topic]).inc_by(bytes);
                self.topic_messages_in.with_label_values(&[topic]).inc_by(messages);
            }
        }
    }

    /// Counts bytes of record batches a Fetch returned from `topic`.
    pub fn record_fetched(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.topic_bytes_out.with_label_values(&[topic]).inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
    }

    /// Drops the series of a deleted topic.
    pub fn forget_topic(&self, topic: &str) {
        for counter in [&self.topic_bytes_in, &self.topic_bytes_out, &self.topic_messages_in] {
            // Not found only means the topic never had traffic.
            let _ = counter.remove_label_values(&[topic]);
        }
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_accepted.inc();
        self.connections_active.inc();
    }

    /// A client connection was closed on arrival (a connection limit was reached).
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// A connection to an SSL listener failed its TLS handshake.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// A SASL authentication failed.
    pub fn sasl_authentication_failed(&self) {
        self.sasl_authentication_failures.inc();
    }

    /// A response was throttled for the client's `quota` (`produce` or `fetch`).
    pub fn quota_throttled(&self, quota: &str) {
        self.quota_throttles.with_label_values(&[quota]).inc();
    }

    /// The ACLs refused an action.
    pub fn authorization_denied(&self, resource_type: &str, operation: &str) {
        self.authorization_denials.with_label_values(&[resource_type, operation]).inc();
    }

    /// A client connection ended; `protocol_error` if it was closed for breaking the protocol.
    pub fn connection_closed(&self, protocol_error: bool) {
        self.connections_active.dec();
        if protocol_error {
            self.protocol_errors.inc();
        }
    }
}

/// Kafka's name of an error code (`UNKNOWN_TOPIC_OR_PARTITION`), or the number for a code Kafka does not define.
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => code.to_string(),
        Some(error) => {
            // `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION` (the names have no acronyms or digits).
            let camel = error.to_string();
            let mut name = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// Renders every metric in the Prometheus text format: the counters kept while serving, then gauges read now
/// from the topic registry, the group coordinator, the offset store, the transaction coordinator and the storage
/// engine. A part of the state that cannot be read is left out (and logged) rather than failing the scrape.
pub async fn render(broker: &Broker) -> Result<String, prometheus::Error> {
    let mut families = broker.metrics.registry.gather();
    families.extend(state_gauges(broker).await?);
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut text = String::new();
    TextEncoder::new().encode_utf8(&families, &mut text)?;
    Ok(text)
}

/// The gauges of the broker's state, in a registry of their own built for this scrape.
async fn state_gauges(broker: &Broker) -> Result<Vec<MetricFamily>, prometheus::Error> {
    let registry = Registry::new();
    let gauge_vec = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
        let gauge = IntGaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    };
    let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
        let gauge = IntGauge::new(name, help)?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    };
    let partition_level = broker.metrics.partition_level;

    // Topics and partitions.
    let topic_count = gauge("skein_topics", "Topics.")?;
    let partition_count = gauge("skein_partitions", "Partitions of all topics.")?;
    let producer_states = gauge(
        "skein_producer_states",
        "Idempotent producer states kept, summed over partitions (a producer writing to three partitions counts \
         three).",
    )?;
    let high_watermark = gauge_vec(
        "skein_partition_high_watermark",
        "The partition's high watermark: the offset below which every record is on every in-sync replica.",
        &["topic", "partition"],
    )?;
    let log_start_offset =
        gauge_vec("skein_partition_log_start_offset", "The partition's first offset.", &["topic", "partition"])?;
    let disk_bytes = gauge_vec(
        "skein_partition_disk_bytes",
        "Approximate bytes the partition's record batches take on disk (flushed RocksDB files, after compression; \
         what is still only in memory is not counted).",
        &["topic", "partition"],
    )?;
    // Replication, over the partitions this broker leads (Kafka's ReplicaManager gauges).
    let leader_partitions = gauge("skein_leader_partitions", "Partitions this broker leads (Kafka's LeaderCount).")?;
    let under_replicated = gauge(
        "skein_under_replicated_partitions",
        "Partitions this broker leads whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions).",
    )?;
    let under_min_isr = gauge(
        "skein_under_min_isr_partitions",
        "Partitions this broker leads whose ISR is smaller than min.insync.replicas: acks=all produces fail \
         (Kafka's UnderMinIsrPartitionCount).",
    )?;
    let max_lag = gauge(
        "skein_replica_max_lag",
        "The largest number of records any follower of a partition this broker leads is behind it (Kafka's \
         replica fetcher MaxLag, seen from the leader).",
    )?;
    let follower_lag = gauge_vec(
        "skein_partition_follower_lag",
        "Records a follower is behind this leader, by follower; partition level.",
        &["topic", "partition", "replica"],
    )?;
    let topics = broker.topics.all();
    topic_count.set(count(topics.len()));
    let current = broker.current_config();
    for topic in &topics {
        let min_isr = topic.min_insync_replicas(&current);
        for log in &topic.partitions {
            let skein_log::Role::Leader(leader) = log.role() else { continue };
            leader_partitions.inc();
            if leader.isr.len() < leader.replicas.len() {
                under_replicated.inc();
            }
            if leader.isr.len() < min_isr {
                under_min_isr.inc();
            }
            let end = log.log_end_offset();
            for (replica, progress) in &leader.followers {
                let lag = if progress.log_end_offset < 0 { end } else { (end - progress.log_end_offset).max(0) };
                max_lag.set(max_lag.get().max(lag));
                if partition_level {
                    let (partition, replica) = (log.topic_partition.partition.to_string(), replica.to_string());
                    follower_lag.with_label_values(&[&*topic.name, partition.as_str(), replica.as_str()]).set(lag);
                }
            }
        }
    }
    // RocksDB's size estimates may read from disk: taken on the blocking pool, never on the async runtime.
    let disk_sizes = if partition_level {
        let logs: Vec<_> = topics.iter().flat_map(|topic| topic.partitions.iter().cloned()).collect();
        run_blocking(move || {
            Ok(logs.iter().map(|log| (log.partition_id, log.disk_bytes().ok())).collect::<HashMap<_, _>>())
        })
        .await
        .unwrap_or_default()
    } else {
        HashMap::new()
    };
    for topic in &topics {
        partition_count.add(count(topic.partitions.len()));
        for log in &topic.partitions {
            producer_states.add(count(log.producer_count()));
            if partition_level {
                let partition = log.topic_partition.partition.to_string();
                let labels = [&*topic.name, partition.as_str()];
                high_watermark.with_label_values(&labels).set(log.high_watermark());
                log_start_offset.with_label_values(&labels).set(log.log_start_offset());
                if let Some(Some(bytes)) = disk_sizes.get(&log.partition_id) {
                    disk_bytes.with_label_values(&labels).set(i64::try_from(*bytes).unwrap_or(i64::MAX));
                }
            }
        }
    }

    // Groups.
    let groups =
        gauge_vec("skein_groups", "Consumer groups, by type (classic, consumer) and state.", &["type", "state"])?;
    let group_members = gauge_vec("skein_group_members", "Members of consumer groups, by group type.", &["type"])?;
    match broker.groups.list().await {
        Ok(listings) => {
            for listing in listings {
                let group_type = listing.group_type.name();
                groups.with_label_values(&[group_type, listing.state]).inc();
                group_members.with_label_values(&[group_type]).add(count(listing.members));
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: cannot list the groups"),
    }
    if partition_level {
        let committed_offset = gauge_vec(
            "skein_group_committed_offset",
            "The offset a group committed for a partition.",
            &["group", "topic", "partition"],
        )?;
        let lag = gauge_vec(
            "skein_group_lag",
            "Records between a group's committed offset and the partition's high watermark.",
            &["group", "topic", "partition"],
        )?;
        match broker.offsets.fetch_every_group().await {
            Ok(offsets) => {
                for (group_id, (topic, partition, committed)) in offsets {
                    let partition_label = partition.to_string();
                    let labels = [group_id.as_str(), topic.as_str(), partition_label.as_str()];
                    committed_offset.with_label_values(&labels).set(committed.offset);
                    let log = broker.topics.get(&topic).and_then(|t| t.partition(partition).cloned());
                    if let Some(log) = log.filter(|_| committed.offset >= 0) {
                        lag.with_label_values(&labels).set((log.high_watermark() - committed.offset).max(0));
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot read the committed offsets"),
        }
    }

    // Transactions.
    gauge("skein_transactions_ongoing", "Transactions open now.")?
        .set(count(broker.transactions.ongoing_count().await));

    // Storage.
    let engine = std::sync::Arc::clone(&broker.engine);
    match run_blocking(move || engine.stats()).await {
        Ok(Some(stats)) => storage_gauges(&registry, &stats)?,
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the storage engine's figures"),
    }
    Ok(registry.gather())
}

fn storage_gauges(registry: &Registry, stats: &EngineStats) -> Result<(), prometheus::Error> {
    let figures = [
        (
            "skein_storage_live_sst_files_bytes",
            "Size of the SST files the current data uses (RocksDB live-sst-files-size, all column families).",
            stats.live_sst_files_bytes,
        ),
        (
            "skein_storage_sst_files_bytes",
            "Size of all SST files, including obsolete ones not yet deleted (RocksDB total-sst-files-size).",
            stats.total_sst_files_bytes,
        ),
        (
            "skein_storage_live_blob_files_bytes",
            "Size of the blob files (flushed record batches) the current data uses (RocksDB live-blob-file-size).",
            stats.live_blob_files_bytes,
        ),
        (
            "skein_storage_blob_files_bytes",
            "Size of all blob files, including obsolete ones not yet deleted (RocksDB total-blob-file-size).",
            stats.total_blob_files_bytes,
        ),
        (
            "skein_storage_memtable_bytes",
            "Size of the active and not yet flushed memtables (RocksDB cur-size-all-mem-tables).",
            stats.memtable_bytes,
        ),
        (
            "skein_storage_pending_compaction_bytes",
            "Bytes compaction estimates it must rewrite (RocksDB estimate-pending-compaction-bytes).",
            stats.pending_compaction_bytes,
        ),
        (
            "skein_storage_delayed_write_rate_bytes_per_second",
            "The rate RocksDB slows writes to while compaction catches up; 0 when writes are not delayed \
             (RocksDB actual-delayed-write-rate).",
            stats.delayed_write_rate_bytes_per_second,
        ),
        (
            "skein_storage_write_stopped",
            "1 while RocksDB has stopped writes until flushes or compaction catch up (RocksDB is-write-stopped).",
            u64::from(stats.write_stopped),
        ),
        (
            "skein_storage_block_cache_usage_bytes",
            "Bytes held in the block cache shared by all column families (RocksDB block-cache-usage).",
            stats.block_cache_usage_bytes,
        ),
    ];
    for (name, help, value) in figures {
        let gauge = IntGauge::new(name, help)?;
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(Box::new(gauge))?;
    }
    Ok(())
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_labels_are_kafkas_names() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(1), "OFFSET_OUT_OF_RANGE");
        assert_eq!(error_name(47), "INVALID_PRODUCER_EPOCH");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "9999");
    }

    #[test]
    fn requests_and_their_errors_render_as_prometheus_text() {
        let metrics = Metrics::new(true).expect("metrics");
        let answered = Outcome::Respond { frame: bytes::Bytes::new(), error_codes: vec![3, 3, 1] };
        metrics.record_request(0, 11, &answered, Duration::from_millis(2));
        metrics.record_request(0, 11, &Outcome::NoResponse, Duration::from_millis(1));
        metrics.record_request(0, 99, &Outcome::Close("unsupported".into()), Duration::ZERO);
        metrics.record_request(-7, 0, &Outcome::Close("unknown".into()), Duration::ZERO);
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed(true);

        let mut text = String::new();
        TextEncoder::new().encode_utf8(&metrics.registry.gather(), &mut text).expect("encode");
        for line in [
            "# TYPE skein_requests_total counter",
            r#"skein_requests_total{api="Produce",version="11"} 2"#,
            r#"skein_requests_total{api="Produce",version="unsupported"} 1"#,
            r#"skein_requests_total{api="unknown",version="unsupported"} 1"#,
            r#"skein_request_errors_total{api="Produce",error="UNKNOWN_TOPIC_OR_PARTITION"} 2"#,
            r#"skein_request_errors_total{api="Produce",error="OFFSET_OUT_OF_RANGE"} 1"#,
            "# TYPE skein_request_duration_seconds histogram",
            r#"skein_request_duration_seconds_bucket{api="Produce",le="0.001"} 2"#,
            r#"skein_request_duration_seconds_bucket{api="Produce",le="0.0025"} 3"#,
            r#"skein_request_duration_seconds_count{api="Produce"} 3"#,
            "skein_connections_accepted_total 2",
            "skein_connections_active 1",
            "skein_protocol_errors_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
