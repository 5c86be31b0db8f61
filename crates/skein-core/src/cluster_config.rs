//! The node's place in the cluster, derived from Kafka's KRaft settings (`process.roles`, `listeners`,
//! `advertised.listeners`, `controller.listener.names`, `listener.security.protocol.map`,
//! `controller.quorum.voters`) and Skein's shorthands (`listen`, `advertised.listener`).

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::security::SecurityProtocol;

/// One listener: its name (`PLAINTEXT`, `CONTROLLER`, ...) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Host name or IP address; empty means every interface.
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// `host:port` for binding or connecting (IPv6 in brackets; an empty host binds every interface).
    pub fn address(&self) -> String {
        let host = if self.host.is_empty() { "0.0.0.0" } else { self.host.as_str() };
        if host.contains(':') { format!("[{host}]:{}", self.port) } else { format!("{host}:{}", self.port) }
    }
}

/// A voter of the metadata quorum as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// What this node runs and where, resolved from the settings. Built by [`BrokerConfig::cluster_layout`].
#[derive(Debug, Clone)]
pub struct ClusterLayout {
    /// `process.roles` has `broker`: serves clients and holds partitions.
    pub is_broker: bool,
    /// `process.roles` has `controller`: a voter of the metadata quorum. A broker without it follows the
    /// metadata log as an observer (a non-voting member).
    pub is_controller: bool,
    /// Client listeners this node binds (brokers).
    pub client_listeners: Vec<Listener>,
    /// What clients are told per client listener, same order and names as `client_listeners`.
    pub advertised_listeners: Vec<Listener>,
    /// The listener the metadata quorum talks to this node on (a voter's votes and log, or an observer's log).
    /// In a one-node cluster without one configured: the client listener's host with port 0 (nobody else
    /// needs to reach it).
    pub controller_listener: Listener,
    /// `controller.quorum.voters`, or this node alone (with the controller listener's address).
    pub voters: Vec<Voter>,
    /// Whether `controller.quorum.voters` was configured (a cluster) or derived (one node).
    pub voters_configured: bool,
    /// Each listener's security protocol, by name.
    pub listener_protocols: BTreeMap<String, SecurityProtocol>,
}

impl ClusterLayout {
    /// The security protocol of listener `name` (PLAINTEXT for one not in the layout).
    pub fn security_protocol(&self, name: &str) -> SecurityProtocol {
        self.listener_protocols.get(name).copied().unwrap_or(SecurityProtocol::Plaintext)
    }
}

/// Parses `NAME://host:port` (host may be empty or a bracketed IPv6 address).
pub fn parse_listener(text: &str) -> Result<Listener, String> {
    let text = text.trim();
    let (name, address) =
        text.split_once("://").ok_or_else(|| format!("listener '{text}' is not of the form NAME://host:port"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("listener name '{name}' must be letters, digits, '_' or '-'"));
    }
    let (host, port) = parse_host_port(address).map_err(|err| format!("listener '{text}': {err}"))?;
    Ok(Listener { name: name.to_ascii_uppercase(), host, port })
}

/// Parses `host:port` (IPv6 hosts in brackets; the host may be empty).
pub fn parse_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("'{address}' has no port"))?;
    let port = port.parse::<u16>().map_err(|_| format!("'{port}' is not a port number"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok((host.to_string(), port))
}

fn parse_listener_list(key: &str, text: &str) -> Result<Vec<Listener>, String> {
    let mut listeners: Vec<Listener> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let listener = parse_listener(part).map_err(|err| format!("{key}: {err}"))?;
        if listeners.iter().any(|l| l.name == listener.name) {
            return Err(format!("{key}: listener name {} appears twice", listener.name));
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, String> {
    let mut voters: Vec<Voter> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, address) = part
            .split_once('@')
            .ok_or_else(|| format!("controller.quorum.voters: '{part}' is not of the form id@host:port"))?;
        let node_id = id
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("controller.quorum.voters: '{id}' is not a node id"))?;
        let (host, port) = parse_host_port(address).map_err(|err| format!("controller.quorum.voters: {err}"))?;
        if host.is_empty() {
            return Err(format!("controller.quorum.voters: voter {node_id} has no host"));
        }
        if voters.iter().any(|v| v.node_id == node_id) {
            return Err(format!("controller.quorum.voters: voter {node_id} appears twice"));
        }
        voters.push(Voter { node_id, host, port });
    }
    if voters.is_empty() {
        return Err("controller.quorum.voters is empty".to_string());
    }
    Ok(voters)
}

impl BrokerConfig {
    /// Resolves roles, listeners and voters; reports every problem at once.
    pub fn cluster_layout(&self) -> Result<ClusterLayout, Vec<String>> {
        let mut problems = Vec::new();
        let mut is_broker = false;
        let mut is_controller = false;
        for role in self.process_roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match role {
                "broker" => is_broker = true,
                "controller" => is_controller = true,
                other => problems.push(format!("process.roles: unknown role '{other}' (broker, controller)")),
            }
        }
        if !is_broker && !is_controller {
            problems.push("process.roles must name broker, controller or both".to_string());
        }
        if is_broker && !is_controller && self.controller_quorum_voters.is_none() {
            problems.push("a broker without the controller role needs controller.quorum.voters".to_string());
        }
        let set = |key: &str| self.explicitly_set.contains(key);
        if self.listeners.is_some() && set("listen") {
            problems.push("set either listeners or its shorthand listen, not both".to_string());
        }
        if self.advertised_listeners.is_some() && set("advertised.listener") {
            problems.push("set either advertised.listeners or its shorthand advertised.listener, not both".to_string());
        }
        let listeners = match &self.listeners {
            Some(text) => parse_listener_list("listeners", text).unwrap_or_else(|err| {
                problems.push(err);
                Vec::new()
            }),
            None => match parse_host_port(&self.listen) {
                Ok((host, port)) => vec![Listener { name: "PLAINTEXT".into(), host, port }],
                Err(err) => {
                    problems.push(format!("listen: {err}"));
                    Vec::new()
                }
            },
        };
        let controller_names: Vec<String> = self
            .controller_listener_names
            .split(',')
            .map(|n| n.trim().to_ascii_uppercase())
            .filter(|n| !n.is_empty())
            .collect();
        if controller_names.is_empty() {
            problems.push("controller.listener.names is empty".to_string());
        }
        let protocols: BTreeMap<String, String> = self
            .listener_security_protocol_map
            .split(',')
            .filter_map(|entry| entry.split_once(':'))
            .map(|(name, protocol)| (name.trim().to_ascii_uppercase(), protocol.trim().to_ascii_uppercase()))
            .collect();
        let inter_broker_name = self.inter_broker_listener_name.to_ascii_uppercase();
        let mut listener_protocols = BTreeMap::new();
        for listener in &listeners {
            let protocol = match protocols.get(&listener.name).map(String::as_str) {
                Some(name) => match SecurityProtocol::parse(name) {
                    Some(protocol) => protocol,
                    None => {
                        problems.push(format!(
                            "listener {}: '{name}' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, \
                             SASL_SSL)",
                            listener.name
                        ));
                        continue;
                    }
                },
                None => {
                    problems.push(format!(
                        "listener {} has no entry in listener.security.protocol.map ({})",
                        listener.name, self.listener_security_protocol_map
                    ));
                    continue;
                }
            };
            let is_controller_listener = controller_names.contains(&listener.name);
            let between_brokers = listener.name == inter_broker_name && self.controller_quorum_voters.is_some();
            if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) && is_controller_listener
            {
                // The quorum's nodes authenticate each other with certificates (SSL with ssl.client.auth=required).
                problems.push(format!(
                    "listener {}: the metadata quorum's listener must be PLAINTEXT or SSL ({} between controllers is \
                     not supported yet)",
                    listener.name,
                    protocol.name()
                ));
            }
            if between_brokers {
                problems.extend(self.inter_broker_problems(&listener.name, protocol));
            }
            if is_controller_listener && protocol == SecurityProtocol::Ssl && self.controller_quorum_voters.is_some() {
                problems.extend(self.node_tls_problems(&listener.name, "controller.listener.names"));
            }
            if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
                && let Err(ssl_problems) = self.ssl_settings(&listener.name)
            {
                problems.extend(ssl_problems);
            }
            if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
                && let Err(sasl_problems) = self.sasl_mechanisms(&listener.name)
            {
                problems.extend(sasl_problems);
            }
            listener_protocols.insert(listener.name.clone(), protocol);
        }
        let (controller_listeners, client_listeners): (Vec<Listener>, Vec<Listener>) =
            listeners.into_iter().partition(|l| controller_names.contains(&l.name));
        if is_broker && client_listeners.is_empty() {
            problems.push("a broker needs a client listener in listeners (e.g. PLAINTEXT://127.0.0.1:9092)".into());
        }
        if is_broker
            && !client_listeners.is_empty()
            && !client_listeners.iter().any(|l| l.name == self.inter_broker_listener_name.to_ascii_uppercase())
        {
            problems.push(format!(
                "inter.broker.listener.name {} is not one of the listeners",
                self.inter_broker_listener_name
            ));
        }

        let mut advertised = client_listeners.clone();
        match (&self.advertised_listeners, &self.advertised_listener) {
            (Some(text), _) => match parse_listener_list("advertised.listeners", text) {
                Ok(list) => {
                    for given in list {
                        match advertised.iter_mut().find(|l| l.name == given.name) {
                            Some(slot) => *slot = given,
                            None => problems.push(format!(
                                "advertised.listeners names {}, which is not a client listener",
                                given.name
                            )),
                        }
                    }
                }
                Err(err) => problems.push(err),
            },
            (None, Some(address)) => match (parse_host_port(address), advertised.first_mut()) {
                (Ok((host, port)), Some(first)) => {
                    first.host = host;
                    first.port = port;
                }
                (Err(err), _) => problems.push(format!("advertised.listener: {err}")),
                (Ok(_), None) => {}
            },
            (None, None) => {}
        }
        for listener in &advertised {
            if listener.host.is_empty() || listener.host == "0.0.0.0" || listener.host == "::" {
                problems.push(format!(
                    "the advertised address of listener {} must be a host clients can reach, not '{}' \
                     (set advertised.listeners)",
                    listener.name,
                    listener.address()
                ));
            }
        }

        let configured_voters = match &self.controller_quorum_voters {
            Some(text) => match parse_voters(text) {
                Ok(voters) => Some(voters),
                Err(err) => {
                    problems.push(err);
                    None
                }
            },
            None => None,
        };
        let own_voter = configured_voters.as_ref().and_then(|v| v.iter().find(|v| v.node_id == self.node_id));
        if is_controller && configured_voters.is_some() && own_voter.is_none() {
            problems.push(format!(
                "node.id {} has the controller role but is not in controller.quorum.voters",
                self.node_id
            ));
        }
        if !is_controller && own_voter.is_some() {
            problems.push(format!(
                "node.id {} is in controller.quorum.voters but process.roles has no controller role",
                self.node_id
            ));
        }
        let controller_listener = match controller_listeners.into_iter().next() {
            Some(listener) => listener,
            // A broker-only node follows the metadata log as an observer: the quorum leader sends the log to its
            // controller listener, which must be an address the voters reach.
            None if !is_controller => {
                problems.push(format!(
                    "a broker without the controller role receives the metadata log on a controller listener: add \
                     one named {} to listeners",
                    controller_names.first().cloned().unwrap_or_default()
                ));
                Listener { name: String::new(), host: String::new(), port: 0 }
            }
            None => match own_voter {
                Some(voter) => Listener {
                    name: controller_names.first().cloned().unwrap_or_default(),
                    host: voter.host.clone(),
                    port: voter.port,
                },
                None => {
                    if configured_voters.is_some() && is_controller {
                        problems.push("a controller needs a controller listener".into());
                    }
                    let host = client_listeners.first().map(|l| l.host.clone()).unwrap_or_else(|| "127.0.0.1".into());
                    Listener { name: controller_names.first().cloned().unwrap_or_default(), host, port: 0 }
                }
            },
        };
        let voters_configured = configured_voters.is_some();
        let voters = configured_voters.unwrap_or_else(|| {
            vec![Voter {
                node_id: self.node_id,
                host: controller_listener.host.clone(),
                port: controller_listener.port,
            }]
        });
        if let Some(id) = &self.cluster_id
            && !((1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            problems.push(format!("cluster.id '{id}' must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_'"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ClusterLayout {
            is_broker,
            is_controller,
            client_listeners,
            advertised_listeners: advertised,
            controller_listener,
            voters,
            voters_configured,
            listener_protocols,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_one_combined_node() {
        let layout = BrokerConfig::default().cluster_layout().expect("valid");
        assert!(layout.is_broker && layout.is_controller && !layout.voters_configured);
        assert_eq!(
            layout.client_listeners,
            vec![Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 }]
        );
        assert_eq!(layout.advertised_listeners, layout.client_listeners);
        assert_eq!(layout.controller_listener.port, 0);
        assert_eq!(layout.voters, vec![Voter { node_id: 1, host: "127.0.0.1".into(), port: 0 }]);
    }

    #[test]
    fn kraft_settings_resolve() {
        let config = BrokerConfig {
            node_id: 2,
            listeners: Some("PLAINTEXT://0.0.0.0:19092,CONTROLLER://127.0.0.2:19093".into()),
            advertised_listeners: Some("PLAINTEXT://127.0.0.2:19092".into()),
            controller_quorum_voters: Some("1@127.0.0.1:9093,2@127.0.0.2:19093,3@[::1]:9093".into()),
            ..BrokerConfig::default()
        };
        let layout = config.cluster_layout().expect("valid");
        assert_eq!(layout.client_listeners[0].address(), "0.0.0.0:19092");
        assert_eq!(layout.advertised_listeners[0].address(), "127.0.0.2:19092");
        assert_eq!(layout.controller_listener.address(), "127.0.0.2:19093");
        assert_eq!(layout.voters.len(), 3);
        assert_eq!(layout.voters[2], Voter { node_id: 3, host: "::1".into(), port: 9093 });
    }

    #[test]
    fn listener_protocols_resolve_and_the_quorum_listener_must_be_plaintext() {
        let config = BrokerConfig {
            listeners: Some("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093".into()),
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT".into(),
            ssl_keystore_location: Some("/keys/server.pem".into()),
            ..BrokerConfig::default()
        };
        let layout = config.cluster_layout().expect("valid");
        assert_eq!(layout.security_protocol("SSL"), SecurityProtocol::Ssl);
        assert_eq!(layout.security_protocol("PLAINTEXT"), SecurityProtocol::Plaintext);

        let no_keys = BrokerConfig { ssl_keystore_location: None, ..config.clone() };
        let problems = no_keys.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("listener SSL: an SSL listener needs ssl.keystore.location"), "{problems}");

        let sasl = BrokerConfig {
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SASL_SSL,CONTROLLER:PLAINTEXT".into(),
            ..config.clone()
        };
        assert_eq!(sasl.cluster_layout().expect("valid").security_protocol("SSL"), SecurityProtocol::SaslSsl);
        let gssapi = BrokerConfig { sasl_enabled_mechanisms: "GSSAPI,PLAIN".into(), ..sasl.clone() };
        let problems = gssapi.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("sasl.enabled.mechanisms: GSSAPI is not supported"), "{problems}");

        let ssl_between_brokers = BrokerConfig {
            listeners: Some("PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094".into()),
            controller_quorum_voters: Some("1@127.0.0.1:9094".into()),
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL".into(),
            inter_broker_listener_name: "SSL".into(),
            ..config.clone()
        };
        let problems = ssl_between_brokers.cluster_layout().expect_err("invalid").join("\n");
        assert!(!problems.contains("must be PLAINTEXT"), "an SSL quorum listener is served: {problems}");
        assert!(problems.contains("listener CONTROLLER (controller.listener.names): brokers check each other's"));
        assert!(problems.contains("brokers check each other's certificates against a trust store"), "{problems}");
        let sasl_quorum = BrokerConfig {
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SASL_SSL".into(),
            ..ssl_between_brokers.clone()
        };
        let problems = sasl_quorum.cluster_layout().expect_err("invalid").join("\n");
        assert!(
            problems.contains("listener CONTROLLER: the metadata quorum's listener must be PLAINTEXT or SSL"),
            "{problems}"
        );
        let trusted = BrokerConfig {
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT".into(),
            ssl_truststore_location: Some("/keys/ca.pem".into()),
            ..ssl_between_brokers.clone()
        };
        assert_eq!(trusted.cluster_layout().expect("valid").security_protocol("SSL"), SecurityProtocol::Ssl);
        let sasl_between_brokers = BrokerConfig {
            listener_security_protocol_map: "PLAINTEXT:PLAINTEXT,SSL:SASL_SSL,CONTROLLER:PLAINTEXT".into(),
            sasl_mechanism_inter_broker_protocol: "PLAIN".into(),
            ..trusted.clone()
        };
        let problems = sasl_between_brokers.cluster_layout().expect_err("no credentials").join("\n");
        assert!(problems.contains("the broker's own credentials are missing"), "{problems}");
        let with_login = BrokerConfig {
            sasl_jaas_config: Some(
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="b" password="p";"#.into(),
            ),
            ..sasl_between_brokers
        };
        assert!(with_login.cluster_layout().is_ok());
    }

    #[test]
    fn problems_are_named() {
        let config = BrokerConfig {
            node_id: 4,
            process_roles: "broker,controller,chef".into(),
            listeners: Some("PLAINTEXT://127.0.0.1:1,SSL://127.0.0.1:2".into()),
            controller_quorum_voters: Some("1@h:1,1@h:2".into()),
            ..BrokerConfig::default()
        };
        let problems = config.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("unknown role 'chef'"), "{problems}");
        assert!(problems.contains("listener SSL has no entry"), "{problems}");
        assert!(problems.contains("voter 1 appears twice"), "{problems}");
        let unlisted =
            BrokerConfig { node_id: 4, controller_quorum_voters: Some("1@h:1".into()), ..BrokerConfig::default() };
        let problems = unlisted.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("node.id 4 has the controller role but is not in controller.quorum.voters"));
    }

    #[test]
    fn a_broker_without_the_controller_role_observes_on_its_controller_listener() {
        let observer = BrokerConfig {
            node_id: 4,
            process_roles: "broker".into(),
            listeners: Some("PLAINTEXT://127.0.0.4:9092,CONTROLLER://127.0.0.4:9093".into()),
            controller_quorum_voters: Some("1@127.0.0.1:9093".into()),
            ..BrokerConfig::default()
        };
        let layout = observer.cluster_layout().expect("valid");
        assert!(layout.is_broker && !layout.is_controller);
        assert_eq!(layout.controller_listener.address(), "127.0.0.4:9093");
        let no_listener = BrokerConfig { listeners: Some("PLAINTEXT://127.0.0.4:9092".into()), ..observer.clone() };
        let problems = no_listener.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("controller listener"), "{problems}");
        let no_voters = BrokerConfig { controller_quorum_voters: None, ..observer };
        let problems = no_voters.cluster_layout().expect_err("invalid").join("\n");
        assert!(problems.contains("needs controller.quorum.voters"), "{problems}");
    }
}
