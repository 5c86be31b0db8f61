//! ACLs with the semantics of Kafka's StandardAuthorizer: the bindings the metadata log holds, the filters
//! DescribeAcls and DeleteAcls select them with, and the decision for one action.
//!
//! The decision, for a principal on a host doing an operation on a resource:
//! - the ACLs that apply to the resource are its LITERAL ones with the same name, the LITERAL `*` of its type and
//!   the PREFIXED ones whose name starts the resource's name;
//! - of those, an ACL counts when its principal is the principal or `User:*`, its host is the host or `*`, and
//!   its operation is the operation or ALL — an ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and
//!   an ALLOW of ALTER_CONFIGS allows DESCRIBE_CONFIGS (a DENY implies nothing);
//! - a DENY that counts wins; else an ALLOW that counts allows; else, when no ACL applies to the resource at all,
//!   the answer is [`AclDecision::NoAcls`] (the broker's `allow.everyone.if.no.acl.found` decides); else denied.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The wildcard resource name and host.
pub const WILDCARD: &str = "*";
/// The wildcard principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The one name of the CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Kafka's `ResourceType`, by its wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Unknown,
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

/// Kafka's `PatternType`: bindings are LITERAL or PREFIXED; filters may also say ANY or MATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Unknown,
    Any,
    Match,
    Literal,
    Prefixed,
}

/// Kafka's `AclOperation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    Unknown,
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
    TwoPhaseCommit,
}

/// Kafka's `AclPermissionType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    Unknown,
    Any,
    Deny,
    Allow,
}

macro_rules! wire_codes {
    ($ty:ident { $($variant:ident = $code:literal),* $(,)? }) => {
        impl $ty {
            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($ty::$variant => $code),* }
            }
            /// The value of a wire code; codes Kafka does not define are `Unknown`.
            pub fn from_code(code: i8) -> Self {
                match code { $($code => $ty::$variant,)* _ => $ty::Unknown }
            }
        }
    };
}

wire_codes!(ResourceType {
    Unknown = 0, Any = 1, Topic = 2, Group = 3, Cluster = 4, TransactionalId = 5, DelegationToken = 6, User = 7,
});
wire_codes!(PatternType { Unknown = 0, Any = 1, Match = 2, Literal = 3, Prefixed = 4 });
wire_codes!(AclOperation {
    Unknown = 0, Any = 1, All = 2, Read = 3, Write = 4, Create = 5, Delete = 6, Alter = 7, Describe = 8,
    ClusterAction = 9, DescribeConfigs = 10, AlterConfigs = 11, IdempotentWrite = 12, CreateTokens = 13,
    DescribeTokens = 14, TwoPhaseCommit = 15,
});
wire_codes!(AclPermission { Unknown = 0, Any = 1, Deny = 2, Allow = 3 });

/// One ACL: who may (or may not) do what to which resources. Ordered by resource type first, so one type's
/// bindings form a range.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:<name>`, or `User:*` for everyone.
    pub principal: String,
    /// A client address, or `*`.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBinding {
    /// Kafka's checks of a new binding (its controller's): a concrete resource type, pattern type, operation and
    /// permission, and a resource name. The error is Kafka's message, answered INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, ResourceType::Unknown | ResourceType::Any) {
            return Err(format!("Invalid resourceType {}", self.resource_type.name()));
        }
        if !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err(format!("Invalid patternType {}", self.pattern_type.name()));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return Err(format!("Invalid operation {}", self.operation.name()));
        }
        if !matches!(self.permission, AclPermission::Deny | AclPermission::Allow) {
            return Err(format!("Invalid permissionType {}", self.permission.name()));
        }
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".to_owned());
        }
        Ok(())
    }

    /// Whether this binding applies to resource `name` of its type.
    fn applies_to(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
            _ => false,
        }
    }

    /// Whether this binding counts for `operation` by `principal` from `host` (its resource already applies).
    fn counts_for(&self, principal: &str, host: &str, operation: AclOperation) -> bool {
        if self.principal != principal && self.principal != WILDCARD_PRINCIPAL {
            return false;
        }
        if self.host != WILDCARD && self.host != host {
            return false;
        }
        if self.operation == AclOperation::All || self.operation == operation {
            return true;
        }
        // Only an ALLOW implies other operations.
        self.permission == AclPermission::Allow
            && match operation {
                AclOperation::Describe => matches!(
                    self.operation,
                    AclOperation::Read | AclOperation::Write | AclOperation::Delete | AclOperation::Alter
                ),
                AclOperation::DescribeConfigs => self.operation == AclOperation::AlterConfigs,
                _ => false,
            }
    }
}

/// A DescribeAcls or DeleteAcls filter: `None` and the ANY values match everything; pattern type MATCH selects
/// the bindings that apply to the named resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclFilter {
    /// Kafka's check of a filter: one with an unknown value matches nothing and is refused.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown {
            return Err("Unknown patternFilter.".to_owned());
        }
        if self.operation == AclOperation::Unknown || self.permission == AclPermission::Unknown {
            return Err("Unknown entryFilter.".to_owned());
        }
        Ok(())
    }

    /// Whether `binding` matches this filter.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding)
            && self.principal.as_ref().is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermission::Any || self.permission == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else { return true };
        if self.pattern_type == PatternType::Match { binding.applies_to(name) } else { *name == binding.resource_name }
    }
}

impl ResourceType {
    /// The operations an ACL on this resource type can grant (Kafka's `AclEntry.supportedOperations`).
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[Read, Write, Create, Describe, Delete, Alter, DescribeConfigs, AlterConfigs],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => {
                &[Create, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, Alter, Describe]
            }
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Unknown | ResourceType::Any => &[],
        }
    }
}

/// What the ACLs say about one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclDecision {
    Allowed,
    Denied,
    /// No ACL applies to the resource at all.
    NoAcls,
}

/// The ACLs' decision for `principal` (`User:<name>`) from `host` doing `operation` on resource `name` of
/// `resource_type`.
pub fn decide(
    acls: &BTreeSet<AclBinding>,
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> AclDecision {
    let mut any_applies = false;
    let mut allowed = false;
    for binding in of_type(acls, resource_type).filter(|b| b.applies_to(name)) {
        any_applies = true;
        if binding.counts_for(principal, host, operation) {
            match binding.permission {
                AclPermission::Deny => return AclDecision::Denied,
                AclPermission::Allow => allowed = true,
                _ => {}
            }
        }
    }
    match (allowed, any_applies) {
        (true, _) => AclDecision::Allowed,
        (false, true) => AclDecision::Denied,
        (false, false) => AclDecision::NoAcls,
    }
}

/// Whether some resource of `resource_type` allows `operation` to `principal` from `host`, not taken back by a
/// DENY covering that resource (Kafka's `authorizeByResourceType`, which lets a producer with WRITE on any topic
/// be idempotent without IDEMPOTENT_WRITE on the cluster, KIP-679).
pub fn allows_some(
    acls: &BTreeSet<AclBinding>,
    principal: &str,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    let counting = |permission| {
        of_type(acls, resource_type)
            .filter(move |b| b.permission == permission && b.counts_for(principal, host, operation))
    };
    let denies: Vec<&AclBinding> = counting(AclPermission::Deny).collect();
    let denied = |allow: &AclBinding| {
        denies.iter().any(|deny| match deny.pattern_type {
            PatternType::Literal => {
                deny.resource_name == WILDCARD
                    || (allow.pattern_type == PatternType::Literal && deny.resource_name == allow.resource_name)
            }
            PatternType::Prefixed => allow.resource_name.starts_with(deny.resource_name.as_str()),
            _ => false,
        })
    };
    counting(AclPermission::Allow).any(|allow| !denied(allow))
}

fn of_type(acls: &BTreeSet<AclBinding>, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
    acls.iter().filter(move |b| b.resource_type == resource_type)
}

impl ResourceType {
    /// Kafka's enum constant name, as its messages print it.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Unknown => "UNKNOWN",
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

impl PatternType {
    /// Kafka's enum constant name.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Unknown => "UNKNOWN",
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

impl AclOperation {
    /// Kafka's enum constant name.
    pub fn name(self) -> &'static str {
        match self {
            AclOperation::Unknown => "UNKNOWN",
            AclOperation::Any => "ANY",
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
            AclOperation::CreateTokens => "CREATE_TOKENS",
            AclOperation::DescribeTokens => "DESCRIBE_TOKENS",
            AclOperation::TwoPhaseCommit => "TWO_PHASE_COMMIT",
        }
    }
}

impl AclPermission {
    /// Kafka's enum constant name.
    pub fn name(self) -> &'static str {
        match self {
            AclPermission::Unknown => "UNKNOWN",
            AclPermission::Any => "ANY",
            AclPermission::Deny => "DENY",
            AclPermission::Allow => "ALLOW",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    fn topic_acl(name: &str, pattern: PatternType, op: AclOperation, permission: AclPermission) -> AclBinding {
        acl(ResourceType::Topic, name, pattern, "User:alice", op, permission)
    }

    fn decide_topic(acls: &BTreeSet<AclBinding>, op: AclOperation, name: &str) -> AclDecision {
        decide(acls, "User:alice", "127.0.0.1", op, ResourceType::Topic, name)
    }

    #[test]
    fn literal_prefixed_and_wildcard_bindings_apply_to_their_resources() {
        use AclOperation::*;
        use PatternType::*;
        let acls: BTreeSet<_> = [
            topic_acl("orders", Literal, Write, AclPermission::Allow),
            topic_acl("pay-", Prefixed, Read, AclPermission::Allow),
            acl(ResourceType::Topic, "*", Literal, "User:*", Describe, AclPermission::Allow),
        ]
        .into();
        assert_eq!(decide_topic(&acls, Write, "orders"), AclDecision::Allowed);
        assert_eq!(decide_topic(&acls, Write, "orders2"), AclDecision::Denied, "the wildcard applies to every topic");
        assert_eq!(decide_topic(&acls, Read, "pay-in"), AclDecision::Allowed);
        assert_eq!(decide_topic(&acls, Read, "pay"), AclDecision::Denied);
        assert_eq!(decide_topic(&acls, Describe, "anything"), AclDecision::Allowed);
        let no_wildcard: BTreeSet<_> = [topic_acl("orders", Literal, Write, AclPermission::Allow)].into();
        assert_eq!(decide_topic(&no_wildcard, Write, "other"), AclDecision::NoAcls);
        assert_eq!(decide_topic(&no_wildcard, Read, "orders"), AclDecision::Denied);
        let other_type = decide(&no_wildcard, "User:alice", "h", Write, ResourceType::Group, "orders");
        assert_eq!(other_type, AclDecision::NoAcls);
    }

    #[test]
    fn deny_wins_and_implies_nothing() {
        use AclOperation::*;
        use PatternType::*;
        let acls: BTreeSet<_> = [
            topic_acl("orders", Literal, All, AclPermission::Allow),
            topic_acl("ord", Prefixed, Write, AclPermission::Deny),
        ]
        .into();
        assert_eq!(decide_topic(&acls, Write, "orders"), AclDecision::Denied);
        assert_eq!(decide_topic(&acls, Read, "orders"), AclDecision::Allowed);
        assert_eq!(decide_topic(&acls, Describe, "orders"), AclDecision::Allowed, "a DENY of WRITE keeps DESCRIBE");
    }

    #[test]
    fn allows_imply_describe_and_describe_configs() {
        use AclOperation::*;
        use PatternType::*;
        for op in [Read, Write, Delete, Alter] {
            let acls: BTreeSet<_> = [topic_acl("t", Literal, op, AclPermission::Allow)].into();
            assert_eq!(decide_topic(&acls, Describe, "t"), AclDecision::Allowed, "{op:?}");
            assert_eq!(decide_topic(&acls, DescribeConfigs, "t"), AclDecision::Denied, "{op:?}");
        }
        let acls: BTreeSet<_> = [topic_acl("t", Literal, AlterConfigs, AclPermission::Allow)].into();
        assert_eq!(decide_topic(&acls, DescribeConfigs, "t"), AclDecision::Allowed);
        assert_eq!(decide_topic(&acls, Describe, "t"), AclDecision::Denied);
        assert_eq!(decide_topic(&acls, Create, "t"), AclDecision::Denied);
    }

    #[test]
    fn principal_and_host_must_match() {
        use AclOperation::*;
        use PatternType::*;
        let mut only_from = topic_acl("t", Literal, Read, AclPermission::Allow);
        only_from.host = "10.0.0.1".into();
        let acls: BTreeSet<_> = [only_from].into();
        assert_eq!(decide(&acls, "User:alice", "10.0.0.1", Read, ResourceType::Topic, "t"), AclDecision::Allowed);
        assert_eq!(decide(&acls, "User:alice", "10.0.0.2", Read, ResourceType::Topic, "t"), AclDecision::Denied);
        assert_eq!(decide(&acls, "User:bob", "10.0.0.1", Read, ResourceType::Topic, "t"), AclDecision::Denied);
        let everyone: BTreeSet<_> =
            [acl(ResourceType::Topic, "t", Literal, "User:*", Read, AclPermission::Allow)].into();
        assert_eq!(decide(&everyone, "User:bob", "h", Read, ResourceType::Topic, "t"), AclDecision::Allowed);
    }

    #[test]
    fn filters_select_as_kafka_does() {
        use AclOperation::*;
        use PatternType::*;
        let literal = topic_acl("orders", Literal, Write, AclPermission::Allow);
        let wildcard = topic_acl("*", Literal, Read, AclPermission::Allow);
        let prefixed = topic_acl("ord", Prefixed, Read, AclPermission::Deny);
        let filter = |pattern_type, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: name.map(str::to_owned),
            pattern_type,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        };
        let selected = |f: &AclFilter| {
            [&literal, &wildcard, &prefixed].into_iter().filter(|b| f.matches(b)).cloned().collect::<Vec<_>>()
        };
        assert_eq!(selected(&filter(Match, Some("orders"))).len(), 3);
        assert_eq!(selected(&filter(PatternType::Any, Some("orders"))), vec![literal.clone()]);
        assert_eq!(selected(&filter(Prefixed, None)), vec![prefixed.clone()]);
        assert_eq!(selected(&filter(Literal, None)), vec![literal.clone(), wildcard.clone()]);
        assert_eq!(selected(&filter(Match, Some("pay"))), vec![wildcard.clone()]);
        let mut by_operation = filter(PatternType::Any, None);
        by_operation.operation = Write;
        assert_eq!(selected(&by_operation), vec![literal.clone()]);
        let mut by_principal = filter(PatternType::Any, None);
        by_principal.principal = Some("User:bob".into());
        assert!(selected(&by_principal).is_empty());
    }

    #[test]
    fn some_topic_allowing_write_is_enough_unless_denied() {
        use AclOperation::*;
        use PatternType::*;
        let some = |acls: &BTreeSet<AclBinding>| allows_some(acls, "User:alice", "h", Write, ResourceType::Topic);
        assert!(!some(&BTreeSet::new()));
        let mut acls: BTreeSet<_> = [topic_acl("orders", Literal, Write, AclPermission::Allow)].into();
        assert!(some(&acls));
        acls.insert(topic_acl("ord", Prefixed, Write, AclPermission::Deny));
        assert!(!some(&acls));
        acls.insert(topic_acl("pay", Prefixed, All, AclPermission::Allow));
        assert!(some(&acls));
        acls.insert(topic_acl("*", Literal, Write, AclPermission::Deny));
        assert!(!some(&acls));
    }

    #[test]
    fn new_bindings_are_checked_as_kafka_checks_them() {
        let good = topic_acl("t", PatternType::Literal, AclOperation::Read, AclPermission::Allow);
        assert_eq!(good.validate(), Ok(()));
        let bad = AclBinding { pattern_type: PatternType::Match, ..good.clone() };
        assert_eq!(bad.validate(), Err("Invalid patternType MATCH".into()));
        let bad = AclBinding { operation: AclOperation::Any, ..good.clone() };
        assert_eq!(bad.validate(), Err("Invalid operation ANY".into()));
        let bad = AclBinding { resource_name: String::new(), ..good };
        assert_eq!(bad.validate(), Err("Resource name should not be empty".into()));
        for code in -1..20 {
            let op = AclOperation::from_code(code);
            assert!(op == AclOperation::Unknown || op.code() == code);
        }
    }
}
