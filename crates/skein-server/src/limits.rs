//! Connection admission (`max.connections`, `max.connections.per.ip`) and a rate limit for log lines that a
//! misbehaving client could otherwise make the broker write without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The broker holds `max.connections` already.
    TooManyConnections(u32),
    /// The peer's address holds `max.connections.per.ip` already.
    TooManyFromAddress(u32),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooManyConnections(max) => write!(f, "the broker has max.connections={max} connections"),
            Refusal::TooManyFromAddress(max) => {
                write!(f, "the address has max.connections.per.ip={max} connections")
            }
        }
    }
}

/// Counts open connections, overall and per peer address.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_connections: u32,
    max_per_ip: u32,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

impl ConnectionLimits {
    pub fn new(max_connections: u32, max_per_ip: u32) -> Arc<Self> {
        Arc::new(ConnectionLimits { max_connections, max_per_ip, open: Mutex::new(OpenConnections::default()) })
    }

    /// Admits a connection from `address`, or says why not. The returned guard frees its place when dropped.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_connections {
            return Err(Refusal::TooManyConnections(self.max_connections));
        }
        let from_address = open.by_address.entry(address).or_insert(0);
        if *from_address >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress(self.max_per_ip));
        }
        *from_address += 1;
        open.total += 1;
        Ok(ConnectionSlot { limits: Arc::clone(self), address })
    }
}

/// One admitted connection's place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// Lets at most `per_interval` events through per interval and counts the rest, so a flood of bad frames costs
/// a few log lines, not one per frame.
#[derive(Debug)]
pub struct LogRateLimit {
    per_interval: u64,
    interval: Duration,
    started: Instant,
    /// The interval number (since `started`) the counts below belong to, and the counts, packed: interval in the
    /// high 32 bits, events in the low 32.
    window: AtomicU64,
    suppressed: AtomicU64,
}

impl LogRateLimit {
    pub fn new(per_interval: u64, interval: Duration) -> Self {
        LogRateLimit {
            per_interval,
            interval,
            started: Instant::now(),
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed since the last allowed event)` if this event may be logged, `None` if it is suppressed.
    pub fn allow(&self) -> Option<u64> {
        let interval_ms = self.interval.as_millis().max(1);
        let current = u64::try_from(self.started.elapsed().as_millis() / interval_ms).unwrap_or(u64::MAX) & 0xffff_ffff;
        let mut window = self.window.load(Ordering::Relaxed);
        loop {
            let (interval, events) = (window >> 32, window & 0xffff_ffff);
            let next =
                if interval == current { (current << 32) | (events + 1).min(0xffff_ffff) } else { current << 32 | 1 };
            match self.window.compare_exchange_weak(window, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    return if (next & 0xffff_ffff) <= self.per_interval {
                        Some(self.suppressed.swap(0, Ordering::Relaxed))
                    } else {
                        self.suppressed.fetch_add(1, Ordering::Relaxed);
                        None
                    };
                }
                Err(actual) => window = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn admits_up_to_the_limits_and_frees_places_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let first = limits.admit(a).expect("first");
        let _second = limits.admit(a).expect("second");
        assert_eq!(limits.admit(a).err(), Some(Refusal::TooManyFromAddress(2)));
        let _third = limits.admit(b).expect("another address");
        assert_eq!(limits.admit(b).err(), Some(Refusal::TooManyConnections(3)));
        drop(first);
        assert!(limits.admit(a).is_ok());
    }

    #[test]
    fn log_rate_limit_counts_what_it_suppresses() {
        let limit = LogRateLimit::new(2, Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        let limit = LogRateLimit::new(1, Duration::from_millis(1));
        assert_eq!(limit.allow(), Some(0));
        std::thread::sleep(Duration::from_millis(5));
        assert!(limit.allow().is_some());
    }
}
