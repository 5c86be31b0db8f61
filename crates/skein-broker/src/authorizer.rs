//! Who sent a request ([`RequestContext`]) and whether the ACLs let them do it.
//!
//! With `authorizer.class.name` unset every action is allowed, as in Kafka without an authorizer. With Kafka's
//! StandardAuthorizer named, the ACLs of the metadata image decide ([`skein_cluster::acl`]); principals in
//! `super.users` may do everything, and a resource no ACL applies to is open only with
//! `allow.everyone.if.no.acl.found`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use skein_cluster::MetadataImage;
use skein_cluster::acl::{self, AclDecision, AclOperation, ResourceType};

use crate::broker::Broker;

/// Who sent a request, and where from and to.
#[derive(Debug)]
pub struct RequestContext {
    /// `User:<name>` after SASL authentication, else `User:ANONYMOUS`.
    pub principal: String,
    /// The client's IP address, as ACL hosts name it (`127.0.0.1`).
    pub client_ip: String,
    /// The listener the request came in on.
    pub listener: Arc<str>,
    /// The request header's client id ("" when null).
    pub client_id: String,
    /// How long the connection is muted after this response (a client over its quota), in milliseconds.
    pub throttle_ms: AtomicU64,
    /// Set by a handler serving replication (a follower's fetch): exempt from the request quota, as in Kafka.
    pub request_quota_exempt: AtomicBool,
}

impl RequestContext {
    /// The user name quotas are set for: the principal's name (`ANONYMOUS` without authentication).
    pub fn quota_user(&self) -> &str {
        self.principal.split_once(':').map_or(self.principal.as_str(), |(_, name)| name)
    }

    /// Mutes the connection for `throttle` after this response (the longest of several throttles counts).
    pub fn throttle(&self, throttle: std::time::Duration) {
        let ms = u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX);
        self.throttle_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Marks this request as replication, which no request quota applies to.
    pub fn exempt_from_request_quota(&self) {
        self.request_quota_exempt.store(true, Ordering::Relaxed);
    }

    /// The client's host as Kafka reports it in DescribeGroups (`/127.0.0.1`).
    pub fn client_host(&self) -> String {
        format!("/{}", self.client_ip)
    }
}

/// One authorizer check's answer, read from one image.
pub(crate) struct Authorization<'a> {
    broker: &'a Broker,
    ctx: &'a RequestContext,
    image: Arc<MetadataImage>,
    /// Whether everything is allowed: no authorizer, or a super user.
    unrestricted: bool,
}

impl Broker {
    /// The authorizer's view for one request from `ctx`.
    pub(crate) fn authorization<'a>(&'a self, ctx: &'a RequestContext) -> Authorization<'a> {
        let unrestricted =
            !self.config.authorizer_enabled() || self.config.super_user_principals().contains(&ctx.principal);
        Authorization { broker: self, ctx, image: self.cluster.image(), unrestricted }
    }

    /// Whether `ctx` may do `operation` on resource `name`; a refusal is counted and logged.
    pub(crate) fn authorized(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorization(ctx).allows(operation, resource_type, name)
    }

    /// Whether `ctx` may do `operation` on the cluster; a refusal is counted and logged.
    pub(crate) fn authorized_on_cluster(&self, ctx: &RequestContext, operation: AclOperation) -> bool {
        self.authorized(ctx, operation, ResourceType::Cluster, acl::CLUSTER_NAME)
    }
}

impl Authorization<'_> {
    /// Whether the action is allowed; a refusal is counted and logged.
    pub(crate) fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let allowed = self.permits(operation, resource_type, name);
        if !allowed {
            self.broker.metrics.authorization_denied(resource_type.name(), operation.name());
            tracing::info!(
                principal = %self.ctx.principal,
                host = %self.ctx.client_ip,
                operation = operation.name(),
                resource_type = resource_type.name(),
                resource = name,
                "authorization denied"
            );
        }
        allowed
    }

    /// Whether the action is allowed, without counting a refusal: for what a listing leaves out (Metadata's
    /// topics, ListGroups' groups), which Kafka does not log either.
    pub(crate) fn permits(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        if self.unrestricted {
            return true;
        }
        let decision =
            acl::decide(self.image.acls(), &self.ctx.principal, &self.ctx.client_ip, operation, resource_type, name);
        match decision {
            AclDecision::Allowed => true,
            AclDecision::Denied => false,
            AclDecision::NoAcls => self.broker.config.allow_everyone_if_no_acl_found,
        }
    }

    /// Kafka's authorized-operations bit field (bit `code` for each operation allowed) for a resource: what
    /// Metadata, DescribeGroups and DescribeCluster answer when asked for it.
    pub(crate) fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|operation| self.permits(**operation, resource_type, name))
            .fold(0i32, |field, operation| field | (1i32 << operation.code()))
    }

    /// Whether the cluster allows `operation` (counted and logged when refused).
    pub(crate) fn allows_on_cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, acl::CLUSTER_NAME)
    }

    /// Whether an idempotent producer may write (KIP-679): IDEMPOTENT_WRITE on the cluster, or WRITE on some
    /// topic.
    pub(crate) fn allows_idempotent_write(&self) -> bool {
        if self.permits(AclOperation::IdempotentWrite, ResourceType::Cluster, acl::CLUSTER_NAME) {
            return true;
        }
        let some_topic = acl::allows_some(
            self.image.acls(),
            &self.ctx.principal,
            &self.ctx.client_ip,
            AclOperation::Write,
            ResourceType::Topic,
        );
        // With no ACLs at all for topics, allow.everyone.if.no.acl.found opens writing to them.
        let open = self.broker.config.allow_everyone_if_no_acl_found
            && !self.image.acls().iter().any(|b| b.resource_type == ResourceType::Topic);
        if !(some_topic || open) {
            self.broker
                .metrics
                .authorization_denied(ResourceType::Cluster.name(), AclOperation::IdempotentWrite.name());
        }
        some_topic || open
    }
}
