//! The `skein` server: configuration, listeners, the connection loop, the HTTP endpoints and graceful shutdown.
//!
//! # Layout
//! - [`config`]: YAML file + command line → [`BrokerConfig`](skein_core::BrokerConfig); the one place YAML is parsed.
//! - [`connection`]: one client connection: length-checked frames in, responses out in request order.
//! - [`http`]: `/metrics`, `/health`, `/ready` on the metrics listener.
//! - [`limits`]: connection admission (`max.connections`, `max.connections.per.ip`) and log rate limits.
//! - [`server`]: opens storage, binds listeners, accepts under the connection limits, shuts down gracefully.
//! - [`tls`]: the rustls server configuration of an SSL listener, from its `ssl.*` settings.

// The connection future nests every handler's future (the router, the request-quota timer around each handler); its
// type is deeper than the compiler's default limit of 128.
#![recursion_limit = "256"]

pub mod config;
pub mod connection;
pub mod http;
pub mod limits;
pub mod server;
pub mod tls;
