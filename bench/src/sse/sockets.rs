//! Where undelivered bytes wait during a storm: in the kernel, per side of the streams.
//!
//! Each line of `/proc/net/tcp` is one socket with its send and receive queues. For the
//! notifier's port, the server side's `tx_queue` is what the notifier wrote that the
//! client's receive window has not taken yet, and the client side's `rx_queue` is what
//! arrived but the bench has not read. Both near zero while messages arrive late means
//! the delay is inside the notifier (its queues, its flush tick, its scheduling), not in
//! the network or the bench's reading.

use serde::{Deserialize, Serialize};

/// One look at the streams' sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub server_sockets: u64,
    pub server_tx_bytes: u64,
    pub client_sockets: u64,
    pub client_rx_bytes: u64,
    /// Client sockets with unread bytes.
    pub client_rx_streams: u64,
}

/// Established IPv4 sockets of loopback port `port`, from `/proc/net/tcp` text.
pub fn sample(proc_net_tcp: &str, port: u16) -> Sample {
    let mut s = Sample::default();
    for line in proc_net_tcp.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_), Some(local), Some(remote), Some(state), Some(queues)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if state != "01" {
            continue; // not ESTABLISHED
        }
        let port_of = |addr: &str| {
            addr.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        let Some((tx, rx)) = queues.split_once(':') else {
            continue;
        };
        let (tx, rx) = (
            u64::from_str_radix(tx, 16).unwrap_or(0),
            u64::from_str_radix(rx, 16).unwrap_or(0),
        );
        if port_of(local) == Some(port) {
            s.server_sockets += 1;
            s.server_tx_bytes += tx;
        } else if port_of(remote) == Some(port) {
            s.client_sockets += 1;
            s.client_rx_bytes += rx;
            s.client_rx_streams += u64::from(rx > 0);
        }
    }
    s
}

/// Samples taken during a storm, summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Queues {
    pub samples: u64,
    /// Server side: bytes the notifier wrote that the clients' windows had not taken.
    pub server_tx_kb_mean: f64,
    pub server_tx_kb_max: f64,
    /// Client side: bytes arrived that the bench had not read yet.
    pub client_rx_kb_mean: f64,
    pub client_rx_kb_max: f64,
    /// Most streams with unread bytes in one sample.
    pub client_rx_streams_max: u64,
}

impl Queues {
    pub fn of(samples: &[Sample]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let n = samples.len() as f64;
        let kb = |b: u64| crate::results::round(b as f64 / 1024.0, 1);
        let mean = |f: fn(&Sample) -> u64| {
            crate::results::round(samples.iter().map(f).sum::<u64>() as f64 / n / 1024.0, 1)
        };
        Self {
            samples: samples.len() as u64,
            server_tx_kb_mean: mean(|s| s.server_tx_bytes),
            server_tx_kb_max: kb(samples.iter().map(|s| s.server_tx_bytes).max().unwrap_or(0)),
            client_rx_kb_mean: mean(|s| s.client_rx_bytes),
            client_rx_kb_max: kb(samples.iter().map(|s| s.client_rx_bytes).max().unwrap_or(0)),
            client_rx_streams_max: samples
                .iter()
                .map(|s| s.client_rx_streams)
                .max()
                .unwrap_or(0),
        }
    }
}

/// Read `/proc/net/tcp` now (the kernel writes one line per socket of the machine).
pub fn read(port: u16) -> Option<Sample> {
    Some(sample(
        &std::fs::read_to_string("/proc/net/tcp").ok()?,
        port,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_read_per_side_of_the_port() {
        // Port 0x8F1D = 36637: one server socket with 0x100 unsent, two clients with
        // 0x20 and 0 unread, a listening socket and a stranger.
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:8F1D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:8F1D 0100007F:A000 01 00000100:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:A000 0100007F:8F1D 01 00000000:00000020 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A001 0100007F:8F1D 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1234 0100007F:5678 01 00000FFF:00000FFF 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(
            sample(text, 0x8F1D),
            Sample {
                server_sockets: 1,
                server_tx_bytes: 0x100,
                client_sockets: 2,
                client_rx_bytes: 0x20,
                client_rx_streams: 1,
            }
        );
        let q = Queues::of(&[sample(text, 0x8F1D), Sample::default()]);
        assert_eq!(q.samples, 2);
        assert_eq!(q.server_tx_kb_max, 0.3);
        assert_eq!(q.client_rx_streams_max, 1);
        assert_eq!(Queues::of(&[]), Queues::default());
    }
}
