//! Kafka's feature flags (KIP-584) as Skein has them: the one table ApiVersions reports and UpdateFeatures checks.
//!
//! Skein's levels are fixed. `metadata.version` is finalized at Apache Kafka 4.3's level (30, `4.3-IV0`) with
//! Kafka 4.3's supported range (7-30): Skein keeps its own metadata log, and names the level so that tools
//! (`kafka-features describe`, `Admin.describeFeatures`) see what a Kafka 4.3 cluster reports. `group.version` 1 is
//! the KIP-848 consumer group protocol, `transaction.version` 2 Transactions V2 (KIP-890); `kraft.version` 0 is a
//! static metadata quorum. Share groups and streams groups are not built: no `share.version` or `streams.version`.
//!
//! UpdateFeatures runs Kafka's controller checks in Kafka's order, with its messages; an update that passes them
//! and would change a level is refused, as Skein cannot change its levels. Updates to the level a feature already
//! has (or to 0 for one Skein does not have) change nothing and succeed.

/// A feature: its supported range and finalized level (0: supported but not finalized, as Kafka lists it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Feature {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub finalized: i16,
}

pub(crate) const METADATA_VERSION: &str = "metadata.version";
const KRAFT_VERSION: &str = "kraft.version";

pub(crate) const FEATURES: &[Feature] = &[
    Feature { name: "group.version", min: 0, max: 1, finalized: 1 },
    Feature { name: KRAFT_VERSION, min: 0, max: 0, finalized: 0 },
    Feature { name: METADATA_VERSION, min: 7, max: 30, finalized: 30 },
    Feature { name: "transaction.version", min: 0, max: 2, finalized: 2 },
];

/// The finalized features' epoch: it never changes.
pub(crate) const FEATURES_EPOCH: i64 = 1;

/// The features Apache Kafka 4.3 knows besides `metadata.version`: an update of any other name is "not found".
const KAFKA_FEATURES: &[&str] = &[
    "eligible.leader.replicas.version",
    "group.version",
    KRAFT_VERSION,
    "share.version",
    "streams.version",
    "transaction.version",
];

/// UpdateFeatures' upgrade type (v1+; v0 requests are UPGRADE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    Unknown,
}

impl UpgradeType {
    fn from_code(code: i8) -> Self {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// Checks one update of `name` to `level` as Kafka's controller (`controller_id`) does; the error is the
/// feature's message (the caller prefixes the request-wide text).
pub(crate) fn check_update(controller_id: i32, name: &str, level: i16, upgrade_type: i8) -> Result<(), String> {
    let invalid = |reason: &str| Err(format!("Invalid update version {level} for feature {name}. {reason}"));
    let upgrade_type = UpgradeType::from_code(upgrade_type);
    if upgrade_type == UpgradeType::Unknown {
        return invalid("The controller does not support the given upgrade type.");
    }
    let feature = FEATURES.iter().find(|f| f.name == name);
    let current = feature.map_or(0, |f| f.finalized);
    if level < 0 {
        return invalid("A feature version cannot be less than 0.");
    }
    // A feature this node does not have is supported at level 0 only ("disabled").
    let (min, max) = feature.map_or((0, 0), |f| (f.min, f.max));
    if !(min..=max).contains(&level) {
        return if max == 0 {
            invalid(&format!("Local controller {controller_id} does not support this feature."))
        } else {
            invalid(&format!("Local controller {controller_id} only supports versions {min}-{max}"))
        };
    }
    if level < current && upgrade_type == UpgradeType::Upgrade {
        return invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe \
             downgrade.",
        );
    }
    if level > current && upgrade_type != UpgradeType::Upgrade {
        return invalid("Can't downgrade to a newer version.");
    }
    if name == METADATA_VERSION {
        // Every metadata.version below Kafka 4.3's changes metadata, so Kafka refuses each downgrade.
        if level < current {
            let why = if upgrade_type == UpgradeType::UnsafeDowngrade {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            return Err(format!("Unsupported metadata.version downgrade from {current} to {level}. {why}"));
        }
        return Ok(());
    }
    if name != KRAFT_VERSION && !KAFKA_FEATURES.contains(&name) {
        return invalid(&format!("Feature {name} not found."));
    }
    if level != current {
        return invalid(&format!("Skein's feature levels are fixed: {name} stays at level {current}."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_checked_in_kafkas_order_with_its_messages() {
        let check = |name, level, kind| check_update(1, name, level, kind);
        // The refusal's reason ("" when accepted).
        let reason = |name, level, kind| check(name, level, kind).err().unwrap_or_default();
        assert_eq!(check("metadata.version", 30, 1), Ok(()));
        assert_eq!(
            reason("metadata.version", 31, 1),
            "Invalid update version 31 for feature metadata.version. Local controller 1 only supports versions 7-30"
        );
        assert_eq!(
            reason("metadata.version", 29, 2),
            "Unsupported metadata.version downgrade from 30 to 29. Refusing to perform the requested downgrade \
             because it might delete metadata information."
        );
        assert!(reason("metadata.version", 29, 1).contains("without setting the upgrade type"));
        assert_eq!(
            reason("no.such.feature", 1, 1),
            "Invalid update version 1 for feature no.such.feature. Local controller 1 does not support this feature."
        );
        assert!(reason("no.such.feature", 0, 2).ends_with("Feature no.such.feature not found."));
        assert_eq!(check("share.version", 0, 2), Ok(()), "share groups stay off");
        assert!(reason("share.version", 1, 1).ends_with("does not support this feature."));
        assert!(reason("transaction.version", 2, 0).ends_with("the given upgrade type."));
        assert!(reason("transaction.version", -1, 2).ends_with("cannot be less than 0."));
        assert!(reason("transaction.version", 1, 2).ends_with("transaction.version stays at level 2."));
        assert_eq!(check("group.version", 1, 3), Ok(()), "the level it has: nothing to change");
        assert!(check("group.version", 1, 2).is_ok());
        assert!(check("metadata.version", 30, 2).is_ok());
        assert_eq!(check("kraft.version", 0, 1), Ok(()));
    }
}
