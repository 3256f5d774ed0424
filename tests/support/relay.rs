//! A lossy UDP relay for the chaos and repair tests (`tests/chaos_loss.rs`,
//! `tests/repair_loss.rs`): it stands between the server's candidate and one participant's
//! candidate (each side only learns the relay's address as the other's candidate, the way a
//! TURN allocation stands in the path) and drops a share of the datagrams in each direction
//! (seeded, reproducible). Include with `#[path = "support/relay.rs"] mod relay;`.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lamina_client::{relay_filter, CandidateFilter};

/// Datagram counters of one relay direction.
#[derive(Default)]
pub struct Flow {
    passed: AtomicU64,
    dropped: AtomicU64,
}

impl Flow {
    /// (passed, dropped) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.passed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

/// Dropped share of `(passed, dropped)` (0 when nothing went through).
pub fn loss_rate((passed, dropped): (u64, u64)) -> f64 {
    dropped as f64 / (passed + dropped).max(1) as f64
}

/// A UDP relay between the server's candidate and a participant's candidate that drops a share
/// of the datagrams (seeded, reproducible).
pub struct LossyRelay {
    addr: SocketAddr,
    server: Arc<Mutex<Option<SocketAddr>>>,
    client: Arc<Mutex<Option<SocketAddr>>>,
    /// Datagrams dropped in each direction, per mille (0 at the start).
    pub loss_per_mille: Arc<AtomicU32>,
    /// Server → participant.
    pub to_client: Arc<Flow>,
    /// Participant → server.
    pub to_server: Arc<Flow>,
    stop: Arc<AtomicBool>,
}

impl LossyRelay {
    /// Binds the relay on loopback and starts forwarding (no loss yet).
    pub fn start(seed: u64) -> LossyRelay {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let relay = LossyRelay {
            addr: sock.local_addr().unwrap(),
            server: Arc::default(),
            client: Arc::default(),
            loss_per_mille: Arc::default(),
            to_client: Arc::default(),
            to_server: Arc::default(),
            stop: Arc::default(),
        };
        let (server, client, loss, to_client, to_server, stop) = (
            relay.server.clone(),
            relay.client.clone(),
            relay.loss_per_mille.clone(),
            relay.to_client.clone(),
            relay.to_server.clone(),
            relay.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut rng = seed;
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let (Some(s), Some(c)) = (*server.lock().unwrap(), *client.lock().unwrap()) else {
                    continue;
                };
                let (to, flow) = if from == s {
                    (c, &to_client)
                } else {
                    (s, &to_server)
                };
                if splitmix(&mut rng) % 1000 < u64::from(loss.load(Ordering::Relaxed)) {
                    flow.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                flow.passed.fetch_add(1, Ordering::Relaxed);
                let _ = sock.send_to(&buf[..n], to);
            }
        });
        relay
    }

    /// Sets the loss of both directions from now on.
    pub fn set_loss_per_mille(&self, per_mille: u32) {
        self.loss_per_mille.store(per_mille, Ordering::Relaxed);
    }

    /// Routes the first UDP candidate of each side through the relay and drops the others.
    pub fn filter(&self) -> CandidateFilter {
        relay_filter(self.addr, self.server.clone(), self.client.clone())
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
