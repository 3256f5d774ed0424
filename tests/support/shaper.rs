//! A rate-limited UDP relay for the downlink tests (`tests/media_downlink.rs`): like
//! `relay.rs` it stands between the server's candidate and one participant's candidate (each
//! side only learns the relay's address as the other's candidate), but instead of dropping a
//! random share it shapes what goes to the participant like a slow access link: a token bucket
//! at a set rate in front of a drop-tail queue holding at most [`MAX_QUEUE_DELAY`] of data at
//! that rate (so too much traffic is first delayed, then dropped). The participant → server
//! direction is never limited. Loopback only, bounded memory. Include with
//! `#[path = "support/shaper.rs"] mod shaper;`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lamina_client::{relay_filter, CandidateFilter};

/// Longest a datagram may wait in the queue at the set rate; what would wait longer is dropped.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_millis(200);
/// Bytes the bucket may hold on top of the rate (a burst of a few datagrams).
const BURST_BYTES: f64 = 4.0 * 1500.0;
/// How often the relay wakes up at most without a datagram arriving (pacing granularity).
const TICK: Duration = Duration::from_millis(1);

/// Datagram counters of one direction.
#[derive(Default)]
pub struct Flow {
    passed: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
}

impl Flow {
    /// (datagrams passed, datagrams dropped, bytes passed) so far.
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.passed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A UDP relay whose server → participant direction can be limited to a rate.
pub struct ShapingRelay {
    addr: SocketAddr,
    server: Arc<Mutex<Option<SocketAddr>>>,
    client: Arc<Mutex<Option<SocketAddr>>>,
    /// Server → participant rate, bit/s; 0: unlimited (the start).
    limit_bps: Arc<AtomicU64>,
    /// Server → participant.
    pub to_client: Arc<Flow>,
    /// Participant → server.
    pub to_server: Arc<Flow>,
    stop: Arc<AtomicBool>,
}

impl ShapingRelay {
    /// Binds the relay on loopback and starts forwarding (no limit yet).
    pub fn start() -> ShapingRelay {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(TICK)).unwrap();
        let relay = ShapingRelay {
            addr: sock.local_addr().unwrap(),
            server: Arc::default(),
            client: Arc::default(),
            limit_bps: Arc::default(),
            to_client: Arc::default(),
            to_server: Arc::default(),
            stop: Arc::default(),
        };
        let (server, client, limit, to_client, to_server, stop) = (
            relay.server.clone(),
            relay.client.clone(),
            relay.limit_bps.clone(),
            relay.to_client.clone(),
            relay.to_server.clone(),
            relay.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            // Datagrams waiting for the participant, and their bytes.
            let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
            let mut queued = 0usize;
            let mut tokens = BURST_BYTES;
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let client_addr = *client.lock().unwrap();
                let server_addr = *server.lock().unwrap();
                // Refill the bucket and send what it covers.
                let now = Instant::now();
                let bps = limit.load(Ordering::Relaxed);
                let rate = bps as f64 / 8.0; // bytes per second
                if bps == 0 {
                    tokens = BURST_BYTES;
                } else {
                    tokens = (tokens + rate * (now - last).as_secs_f64()).min(BURST_BYTES);
                }
                last = now;
                while let (Some(front), Some(c)) = (queue.front(), client_addr) {
                    if bps != 0 && (front.len() as f64) > tokens {
                        break;
                    }
                    let d = queue.pop_front().unwrap();
                    queued -= d.len();
                    if bps != 0 {
                        tokens -= d.len() as f64;
                    }
                    to_client.passed.fetch_add(1, Ordering::Relaxed);
                    to_client.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                    let _ = sock.send_to(&d, c);
                }
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                // Nothing is relayed before both sides' candidates are known.
                let (Some(s), Some(_)) = (server_addr, client_addr) else {
                    continue;
                };
                if from == s {
                    // Drop-tail: the queue holds at most MAX_QUEUE_DELAY at the rate (and at
                    // least one datagram).
                    let cap = (rate * MAX_QUEUE_DELAY.as_secs_f64()) as usize;
                    if bps != 0 && queued + n > cap.max(1500) {
                        to_client.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    queued += n;
                    queue.push_back(buf[..n].to_vec());
                } else {
                    to_server.passed.fetch_add(1, Ordering::Relaxed);
                    to_server.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let _ = sock.send_to(&buf[..n], s);
                }
            }
        });
        relay
    }

    /// Limits the server → participant direction to `bps` bit/s from now on (0: no limit; what
    /// is queued then leaves at once).
    pub fn set_limit_bps(&self, bps: u64) {
        self.limit_bps.store(bps, Ordering::Relaxed);
    }

    /// Routes the first UDP candidate of each side through the relay and drops the others.
    pub fn filter(&self) -> CandidateFilter {
        relay_filter(self.addr, self.server.clone(), self.client.clone())
    }
}

impl Drop for ShapingRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
