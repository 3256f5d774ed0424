//! Client-initiated ICE restart (every Membrane renegotiation): after the server-side
//! workaround (`nice_agent_restart_stream` on a changed remote ufrag), the server sends media
//! to the client's NEW candidate pair.
//!
//! To make old and new pairs distinguishable on loopback, B's traffic goes through small UDP
//! relays standing in for TURN allocations: round 1 via relay 1, the restart round via relay
//! 2 (each side only learns the relay's address as the other's candidate). Relay 1 is then
//! cut: B keeps decoding only if the server moved its sending to relay 2.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Direction, Harness, Watchdog};

const T: Duration = Duration::from_secs(10);

/// A UDP relay between one server address and one client address.
struct Relay {
    addr: SocketAddr,
    server: Arc<Mutex<Option<SocketAddr>>>,
    client: Arc<Mutex<Option<SocketAddr>>>,
    /// Bytes relayed server → client.
    to_client: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn new() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let r = Relay {
            addr: sock.local_addr().unwrap(),
            server: Arc::default(),
            client: Arc::default(),
            to_client: Arc::default(),
            cut: Arc::default(),
            stop: Arc::default(),
        };
        let (server, client, to_client, cut, stop) = (
            r.server.clone(),
            r.client.clone(),
            r.to_client.clone(),
            r.cut.clone(),
            r.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if cut.load(Ordering::Relaxed) {
                    continue;
                }
                let (s, c) = (*server.lock().unwrap(), *client.lock().unwrap());
                match (s, c) {
                    (Some(s), Some(c)) if from == s => {
                        to_client.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = sock.send_to(&buf[..n], c);
                    }
                    (Some(s), Some(_)) => {
                        let _ = sock.send_to(&buf[..n], s);
                    }
                    _ => {}
                }
            }
        });
        r
    }

    fn bytes_to_client(&self) -> u64 {
        self.to_client.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `candidate:<f> <comp> UDP <prio> <addr> <port> typ ...` → its address, if UDP.
fn cand_addr(c: &str) -> Option<SocketAddr> {
    let t: Vec<&str> = c.split_whitespace().collect();
    if t.len() < 6 || !t[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    format!("{}:{}", t[4], t[5]).parse().ok()
}

fn rewrite(c: &str, to: SocketAddr) -> String {
    let mut t: Vec<String> = c.split_whitespace().map(str::to_owned).collect();
    t[4] = to.ip().to_string();
    t[5] = to.port().to_string();
    t.join(" ")
}

/// Routes B's candidates through `relay`; UDP only (like a relay-only browser).
fn hook_for(relay: &Relay) -> support::CandidateHook {
    let (addr, server, client) = (relay.addr, relay.server.clone(), relay.client.clone());
    Box::new(move |dir, name, c| {
        if name != "b" {
            return Some(c.to_owned());
        }
        let real = cand_addr(c)?;
        match dir {
            Direction::ToClient => *server.lock().unwrap() = Some(real),
            Direction::ToServer => *client.lock().unwrap() = Some(real),
        }
        Some(rewrite(c, addr))
    })
}

#[test]
fn server_follows_the_clients_new_candidate_pair_after_ice_restart() {
    let _s = support::serial();
    let _w = Watchdog::new(
        "server_follows_the_clients_new_candidate_pair_after_ice_restart",
        90,
    );
    let mut h = Harness::new("ice-restart");
    h.join_mesh("a");
    let a_tracks = h.tracks_of("a");
    let a_video = a_tracks.iter().find(|t| h.is_video(t)).unwrap().clone();

    let relay1 = Relay::new();
    h.hook = Some(hook_for(&relay1));
    h.join("b", false);
    h.round("b", &a_tracks, None, false);
    assert!(
        h.wait_media("b", &a_video, 10, T),
        "b got no video via relay 1"
    );
    assert!(relay1.bytes_to_client() > 0);

    // Round 2: B restarts ICE; its new "allocation" is relay 2.
    let relay2 = Relay::new();
    h.hook = Some(hook_for(&relay2));
    h.members["b"].client.reset_gaps();
    h.round("b", &a_tracks, None, true);
    assert!(
        h.wait(T, |_| relay2.bytes_to_client() > 20_000),
        "server never sent through the new pair (relay 2: {} bytes, relay 1: {} bytes)",
        relay2.bytes_to_client(),
        relay1.bytes_to_client()
    );
    // The old path dies: media must keep coming through the new one only.
    relay1.cut.store(true, Ordering::Relaxed);
    let before = relay2.bytes_to_client();
    assert!(
        h.wait_media("b", &a_video, 20, T),
        "b lost video after the old path died"
    );
    assert!(relay2.bytes_to_client() > before);
    let ml = h.mline_of("b", &a_video).unwrap();
    println!(
        "largest video gap across the restart: {:?}; relay1 {} B, relay2 {} B",
        h.members["b"].client.stats(ml).max_gap,
        relay1.bytes_to_client(),
        relay2.bytes_to_client()
    );
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}
