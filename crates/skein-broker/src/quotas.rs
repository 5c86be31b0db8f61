//! Client byte-rate quotas enforced as Kafka enforces them (KIP-13, KIP-219): each produce and fetch is measured
//! against the `producer_byte_rate` / `consumer_byte_rate` of the most specific quota entity that applies to the
//! client (`skein_cluster::quota::resolve`); a client over its quota is answered with `throttle_time_ms` and its
//! connection is muted for that long (nothing is dropped: a produce is appended, a throttled fetch is answered
//! empty and the records are fetched again later).
//!
//! The request quota (`request_percentage`, KIP-124) is enforced the same way on the time a request's handler spends
//! running, not waiting (Kafka's request-handler thread time), in percent of one thread: `request_percentage=200`
//! lets a client keep two threads busy. Replication and broker-to-broker requests are exempt, as in Kafka.
//!
//! The controller mutation quota (`controller_mutation_rate`, KIP-599) limits the partitions a client creates and
//! deletes (CreateTopics, CreatePartitions, DeleteTopics) with Kafka's token bucket: a burst of `quota × windows ×
//! window` partitions, refilled at the quota; a request is refused only once the bucket is below zero (so one
//! request may take it there), with THROTTLING_QUOTA_EXCEEDED from the versions that know the error (strict) and
//! by throttling alone before them (permissive).
//!
//! The rate is Kafka's: `quota.window.num` samples of `quota.window.size.seconds` each, the rate over them (as if
//! at least all but one of the windows had passed, so a new client gets no free burst beyond the window), and a
//! throttle of `(rate - quota) / quota * window` — the time after which the rate is back at the quota.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use skein_cluster::MetadataImage;
use skein_cluster::quota::{self, QuotaEntity};

/// The longest a connection is muted for one response.
const MAX_THROTTLE_SECONDS: f64 = 3600.0;

/// Which byte rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
    Request,
    ConnectionCreation,
    /// The broker-wide `max.connection.creation.rate` (a broker setting, not a client quota).
    BrokerConnectionCreation,
    ControllerMutation,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
            QuotaKind::ConnectionCreation => quota::CONNECTION_CREATION_RATE,
            QuotaKind::BrokerConnectionCreation => "max.connection.creation.rate",
            QuotaKind::ControllerMutation => "controller_mutation_rate",
        }
    }
}

/// A response that tells the client how long it is throttled (`throttle_time_ms`, KIP-219).
pub(crate) trait ThrottleTime {
    /// Raises the response's throttle time to `ms` (the longest of several throttles counts).
    fn raise_throttle_time_ms(&mut self, ms: i32);
}

macro_rules! throttle_time_field {
    ($($response:ident),* $(,)?) => {
        $(
            impl ThrottleTime for kafka_protocol::messages::$response {
                fn raise_throttle_time_ms(&mut self, ms: i32) {
                    self.throttle_time_ms = self.throttle_time_ms.max(ms);
                }
            }
        )*
    };
}

throttle_time_field!(
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterReplicaLogDirsResponse,
    AlterUserScramCredentialsResponse,
    ApiVersionsResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    CreateAclsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeTopicPartitionsResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    EndTxnResponse,
    FetchResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
    CreateDelegationTokenResponse,
    RenewDelegationTokenResponse,
    ExpireDelegationTokenResponse,
    DescribeDelegationTokenResponse,
    ListConfigResourcesResponse,
    AddRaftVoterResponse,
    RemoveRaftVoterResponse,
    UnregisterBrokerResponse,
    UpdateFeaturesResponse,
    ShareGroupHeartbeatResponse,
    ShareGroupDescribeResponse,
    ShareFetchResponse,
    ShareAcknowledgeResponse,
    DescribeShareGroupOffsetsResponse,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
    StreamsGroupHeartbeatResponse,
    StreamsGroupDescribeResponse,
);

/// Responses without the field: the connection is muted all the same.
macro_rules! no_throttle_time_field {
    ($($response:ident),* $(,)?) => {
        $(
            impl ThrottleTime for kafka_protocol::messages::$response {
                fn raise_throttle_time_ms(&mut self, _ms: i32) {}
            }
        )*
    };
}

no_throttle_time_field!(
    DescribeQuorumResponse,
    InitializeShareGroupStateResponse,
    ReadShareGroupStateResponse,
    WriteShareGroupStateResponse,
    DeleteShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse,
    SaslAuthenticateResponse,
    SaslHandshakeResponse,
    WriteTxnMarkersResponse
);

/// One entity's byte rate: (window start, bytes) samples, oldest first.
#[derive(Debug, Default)]
struct Rate {
    samples: VecDeque<(Instant, f64)>,
}

/// The byte rates of every entity with a quota, kept by the broker.
#[derive(Debug)]
pub struct ClientQuotaManager {
    window: Duration,
    windows: u32,
    rates: Mutex<HashMap<(QuotaKind, QuotaEntity), Rate>>,
    /// New connections per listener (`listener.name.<listener>.max.connection.creation.rate`).
    listener_rates: Mutex<HashMap<String, Rate>>,
    /// A controller mutation bucket holds the quota times this.
    bucket_span: Duration,
    /// The controller mutation token buckets: (tokens, when last refilled).
    buckets: Mutex<HashMap<QuotaEntity, (f64, Instant)>>,
}

/// A quota's measurement windows: how many, and how long each.
#[derive(Debug, Clone, Copy)]
pub struct QuotaWindows {
    pub windows: u32,
    pub window: Duration,
}

/// A request's view of its client's controller mutation quota (see the module's documentation).
#[derive(Debug)]
pub struct MutationQuota<'a> {
    manager: &'a ClientQuotaManager,
    /// The entity and its quota (partitions per second); `None`: no quota applies.
    quota: Option<(QuotaEntity, f64)>,
    /// Refuses once over (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+), or only throttles.
    strict: bool,
    /// When a violation was seen, and the throttle it called for then.
    throttled: Option<(Instant, Duration)>,
}

impl MutationQuota<'_> {
    /// Counts `partitions` created or deleted. Strict: THROTTLING_QUOTA_EXCEEDED, nothing counted, when the
    /// bucket is already below zero. Permissive: counted whatever the bucket, the throttle noted.
    pub fn record(&mut self, partitions: i64) -> Result<(), skein_core::BrokerError> {
        let Some((entity, quota)) = &self.quota else { return Ok(()) };
        let now = Instant::now();
        let Ok(mut buckets) = self.manager.buckets.lock() else { return Ok(()) };
        let burst = quota * self.manager.bucket_span.as_secs_f64();
        let (tokens, refilled) = buckets.entry(entity.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * quota).min(burst);
        *refilled = now;
        if self.strict && *tokens < 0.0 {
            self.throttled = Some((now, Duration::from_secs_f64((-*tokens / quota).min(MAX_THROTTLE_SECONDS))));
            return Err(skein_core::BrokerError::ThrottlingQuotaExceeded);
        }
        *tokens -= partitions as f64;
        if !self.strict && *tokens < 0.0 {
            self.throttled = Some((now, Duration::from_secs_f64((-*tokens / quota).min(MAX_THROTTLE_SECONDS))));
        }
        Ok(())
    }

    /// How long the client is throttled: the last violation's throttle, less the time since.
    pub fn throttle(&self) -> Duration {
        self.throttled.map_or(Duration::ZERO, |(at, throttle)| throttle.saturating_sub(at.elapsed()))
    }

    /// Ends the request: the connection is muted for the throttle, which the response's `throttle_time_ms`
    /// carries (returned, in ms).
    pub(crate) fn finish(&self, broker: &crate::broker::Broker, ctx: &crate::authorizer::RequestContext) -> i32 {
        let throttle = self.throttle();
        if throttle.is_zero() {
            return 0;
        }
        broker.metrics.quota_throttled("controller_mutation");
        ctx.throttle(throttle);
        i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
    }
}

/// The error message of a topic's result in CreateTopics, CreatePartitions and DeleteTopics: null for
/// THROTTLING_QUOTA_EXCEEDED, as Kafka's controller answers it, the error's text otherwise.
pub(crate) fn mutation_error_message(err: &skein_core::BrokerError) -> Option<kafka_protocol::protocol::StrBytes> {
    match err {
        skein_core::BrokerError::ThrottlingQuotaExceeded => None,
        other => crate::handlers::message(other.to_string()),
    }
}

/// The first versions that answer THROTTLING_QUOTA_EXCEEDED (a strict quota); older ones are only throttled.
pub const STRICT_CREATE_TOPICS_VERSION: i16 = 6;
pub const STRICT_CREATE_PARTITIONS_VERSION: i16 = 3;
pub const STRICT_DELETE_TOPICS_VERSION: i16 = 5;

impl ClientQuotaManager {
    /// Rates over `client` (`quota.window.num` samples of `quota.window.size.seconds`); controller mutation
    /// buckets of `controller` (`controller.quota.window.*`).
    pub fn new(client: QuotaWindows, controller: QuotaWindows) -> Self {
        ClientQuotaManager {
            window: client.window,
            windows: client.windows.max(1),
            rates: Mutex::new(HashMap::new()),
            listener_rates: Mutex::new(HashMap::new()),
            bucket_span: controller.window * controller.windows.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The controller mutation quota of `user` with `client_id` for one request: strict or permissive by its version.
    pub fn mutation_quota(
        &self,
        image: &MetadataImage,
        user: &str,
        client_id: &str,
        strict: bool,
    ) -> MutationQuota<'_> {
        let quota = Self::quota(image, QuotaKind::ControllerMutation, user, client_id).filter(|(_, q)| *q > 0.0);
        MutationQuota { manager: self, quota, strict, throttled: None }
    }

    /// The most bytes one response may carry for a client with quota `bytes_per_second`: what the quota allows
    /// over the window (Kafka's cap, so that a single fetch cannot outgrow the quota for good).
    pub fn max_bytes_per_window(&self, bytes_per_second: f64) -> usize {
        let seconds = self.window.as_secs_f64() * f64::from(self.windows.saturating_sub(1).max(1));
        let bytes = (bytes_per_second * seconds).max(1.0);
        if bytes >= usize::MAX as f64 { usize::MAX } else { bytes as usize }
    }

    /// The quota (bytes per second) of `kind` for `user` with `client_id`, if one applies.
    pub fn quota(image: &MetadataImage, kind: QuotaKind, user: &str, client_id: &str) -> Option<(QuotaEntity, f64)> {
        let quotas = image.client_quotas();
        if quotas.is_empty() {
            return None;
        }
        quota::resolve(quotas, user, client_id, kind.key()).map(|(entity, value)| (entity.clone(), value))
    }

    /// Records `bytes` for the client and answers how long it is throttled (zero within its quota).
    pub fn record(
        &self,
        image: &MetadataImage,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        bytes: usize,
    ) -> Duration {
        self.record_value(image, kind, user, client_id, bytes as f64)
    }

    /// Records the time a request's handler spent running for the client's request quota, and answers how long
    /// the client is throttled. Kafka counts it in percent of a thread: a second of work is 100.
    pub fn record_request_time(&self, image: &MetadataImage, user: &str, client_id: &str, busy: Duration) -> Duration {
        self.record_value(image, QuotaKind::Request, user, client_id, busy.as_secs_f64() * 100.0)
    }

    /// Records a new connection from `ip` against its `connection_creation_rate` (KIP-612) and answers how long
    /// it is throttled: Kafka accepts such a connection and closes it, unread, after that long.
    pub fn record_connection(&self, image: &MetadataImage, ip: &str) -> Duration {
        let quotas = image.client_quotas();
        if quotas.is_empty() {
            return Duration::ZERO;
        }
        let Some((entity, quota)) = quota::resolve_ip(quotas, ip) else { return Duration::ZERO };
        self.record_entity(QuotaKind::ConnectionCreation, entity.clone(), quota, 1.0)
    }

    /// Records a new connection against the broker-wide `max.connection.creation.rate` (KIP-612) and answers how
    /// long the listener waits before it takes this connection on (zero within the rate; none is set at
    /// `i32::MAX`, Kafka's default).
    pub fn record_broker_connection(&self, max_per_second: i32) -> Duration {
        if max_per_second == i32::MAX {
            return Duration::ZERO;
        }
        let throttle = self.record_entity(
            QuotaKind::BrokerConnectionCreation,
            QuotaEntity::default(),
            f64::from(max_per_second),
            1.0,
        );
        // As Kafka bounds it: at most one quota window.
        throttle.min(self.window)
    }

    /// Records a new connection on `listener` against its `listener.name.<listener>.max.connection.creation.rate`
    /// (KIP-612) and answers how long the listener waits before it takes this connection on, as for the
    /// broker-wide rate.
    pub fn record_listener_connection(&self, listener: &str, max_per_second: i32) -> Duration {
        if max_per_second == i32::MAX {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let Ok(mut rates) = self.listener_rates.lock() else { return Duration::ZERO };
        let rate = rates.entry(listener.to_owned()).or_default();
        self.add(rate, 1.0, now);
        self.throttle(rate, f64::from(max_per_second), now).min(self.window)
    }

    /// Takes back a connection recorded on `listener` that was refused for its IP's rate.
    pub fn unrecord_listener_connection(&self, listener: &str) {
        let Ok(mut rates) = self.listener_rates.lock() else { return };
        if let Some(rate) = rates.get_mut(listener) {
            self.add(rate, -1.0, Instant::now());
        }
    }

    /// Takes back a connection recorded against the broker-wide rate that was refused for its IP's rate, as Kafka
    /// does, so that refused connections do not slow the others down.
    pub fn unrecord_broker_connection(&self) {
        let Ok(mut rates) = self.rates.lock() else { return };
        if let Some(rate) = rates.get_mut(&(QuotaKind::BrokerConnectionCreation, QuotaEntity::default())) {
            self.add(rate, -1.0, Instant::now());
        }
    }

    fn record_value(
        &self,
        image: &MetadataImage,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
    ) -> Duration {
        let Some((entity, quota)) = Self::quota(image, kind, user, client_id) else { return Duration::ZERO };
        self.record_entity(kind, entity, quota, value)
    }

    fn record_entity(&self, kind: QuotaKind, entity: QuotaEntity, quota: f64, value: f64) -> Duration {
        let now = Instant::now();
        let Ok(mut rates) = self.rates.lock() else { return Duration::ZERO };
        let rate = rates.entry((kind, entity)).or_default();
        self.add(rate, value, now);
        self.throttle(rate, quota, now)
    }

    /// How long a rate over `quota` waits to come back to it (zero within it).
    fn throttle(&self, rate: &Rate, quota: f64, now: Instant) -> Duration {
        let (observed, elapsed) = self.measure(rate, now);
        if observed <= quota || quota <= 0.0 {
            return Duration::ZERO;
        }
        // Kafka sets no bound; this one only keeps a pathological quota from muting a connection for days.
        let seconds = elapsed.as_secs_f64() * (observed - quota) / quota;
        if seconds.is_finite() && seconds > 0.0 {
            Duration::from_secs_f64(seconds.min(MAX_THROTTLE_SECONDS))
        } else {
            Duration::ZERO
        }
    }

    /// Takes back bytes recorded for a response that was not sent (a throttled fetch, answered empty).
    pub fn unrecord(&self, image: &MetadataImage, kind: QuotaKind, user: &str, client_id: &str, bytes: usize) {
        let Some((entity, _)) = Self::quota(image, kind, user, client_id) else { return };
        let Ok(mut rates) = self.rates.lock() else { return };
        if let Some(rate) = rates.get_mut(&(kind, entity)) {
            self.add(rate, -(bytes as f64), Instant::now());
        }
    }

    fn add(&self, rate: &mut Rate, value: f64, now: Instant) {
        match rate.samples.back_mut() {
            Some((start, total)) if now.duration_since(*start) < self.window => *total += value,
            _ => rate.samples.push_back((now, value)),
        }
        let span = self.window * self.windows;
        while rate.samples.len() > self.windows as usize
            || rate.samples.front().is_some_and(|(start, _)| now.duration_since(*start) >= span)
        {
            rate.samples.pop_front();
        }
    }

    /// (bytes per second, the time measured over).
    fn measure(&self, rate: &Rate, now: Instant) -> (f64, Duration) {
        let total: f64 = rate.samples.iter().map(|(_, bytes)| bytes).sum();
        let oldest = rate.samples.front().map_or(now, |(start, _)| *start);
        let mut elapsed = now.duration_since(oldest);
        // As Kafka: measured as if at least all windows but the current one had passed.
        let full_windows = (elapsed.as_secs_f64() / self.window.as_secs_f64()) as u32;
        let min_full = self.windows.saturating_sub(1);
        if full_windows < min_full {
            elapsed += self.window * (min_full - full_windows);
        }
        let seconds = elapsed.as_secs_f64().max(self.window.as_secs_f64() / 1000.0);
        (total / seconds, elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_over_the_quota_is_throttled_for_the_time_it_takes_to_fall_back() {
        let windows = QuotaWindows { windows: 11, window: Duration::from_secs(1) };
        let manager = ClientQuotaManager::new(windows, windows);
        let mut rate = Rate::default();
        let now = Instant::now();
        manager.add(&mut rate, 20_000.0, now);
        // Measured over 10 windows at first: 2,000 bytes per second.
        let (observed, elapsed) = manager.measure(&rate, now);
        assert!((observed - 2_000.0).abs() < 1.0, "{observed}");
        assert_eq!(elapsed, Duration::from_secs(10));
        assert_eq!(manager.max_bytes_per_window(1_000.0), 10_000);
    }
}
