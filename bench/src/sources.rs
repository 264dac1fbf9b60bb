//! Many people from many addresses.
//!
//! The gateway limits requests per client IP as well as per user, as an on-sale must: a
//! bench that sent every request from 127.0.0.1 would measure the rate limiter, not the
//! pipeline. Users are spread over loopback source addresses (`127.1.x.y`: Linux routes
//! all of 127.0.0.0/8 to `lo`, and a socket may bind any of them), one connection pool
//! per address; a user always comes from the same address.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::error::BenchError;

/// The most source addresses (127.1.0.1 ..= 127.1.239.250).
pub const MAX_SOURCE_IPS: usize = 60_000;

/// Addresses the pipeline, lifecycle and SSE storms come from: at their rates (a few
/// thousand requests a second at most) each stays far under the gateway's per-IP limits.
pub const DEFAULT_SOURCE_IPS: usize = 1024;

/// The `i`-th source address.
pub fn source_ip(i: usize) -> Ipv4Addr {
    let i = i % MAX_SOURCE_IPS;
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// Longest wait honoured from a `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// How long a `429` (or `503`) asks the client to wait: its `Retry-After` in seconds,
/// 1 s without one, at most 10 s.
pub fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(Duration::from_secs(1), |s| {
            Duration::from_secs_f64(s.max(0.05)).min(MAX_RETRY_AFTER)
        })
}

/// One HTTP client (connection pool) per source address.
pub struct Sources {
    clients: Vec<reqwest::Client>,
}

impl Sources {
    /// Users spread over `source_ips` addresses (0: the default address only).
    pub fn new(source_ips: usize, timeout: Duration) -> Result<Self, BenchError> {
        let client = |local: Option<IpAddr>| {
            reqwest::Client::builder()
                .tcp_nodelay(true)
                .timeout(timeout)
                .pool_max_idle_per_host(usize::MAX)
                .local_address(local)
                .build()
        };
        let clients = if source_ips == 0 {
            vec![client(None)?]
        } else {
            (0..source_ips.min(MAX_SOURCE_IPS))
                .map(|i| client(Some(IpAddr::V4(source_ip(i)))))
                .collect::<Result<_, _>>()?
        };
        Ok(Self { clients })
    }

    pub fn source_ips(&self) -> usize {
        self.clients.len()
    }

    /// The client `user` sends from.
    pub fn of(&self, user: u32) -> &reqwest::Client {
        &self.clients[user as usize % self.clients.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_are_distinct_loopback_addresses() {
        let all: std::collections::HashSet<Ipv4Addr> = (0..MAX_SOURCE_IPS).map(source_ip).collect();
        assert_eq!(all.len(), MAX_SOURCE_IPS);
        assert!(all.iter().all(|ip| ip.is_loopback() && ip.octets()[3] != 0));
        assert_eq!(source_ip(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_ip(250), Ipv4Addr::new(127, 1, 1, 1));
    }
}
