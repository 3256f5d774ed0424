//! [`NodeRecord`]: what a node publishes about itself in Redis, and the sampling of its load.

use serde::{Deserialize, Serialize};

/// One node's registration (JSON at `lamina:node:<id>`, refreshed every
/// [`super::REFRESH_INTERVAL`], expiring after [`super::NODE_TTL`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node id (`--node-id`).
    pub id: String,
    /// Where clients and other nodes reach its WebSocket (`--public-url`).
    pub url: String,
    /// A random id of the process: tells a restarted node, or a clashing one, from the owner.
    pub instance: String,
    /// True while the node drains: it takes no new rooms.
    pub draining: bool,
    /// The rooms it runs.
    pub rooms: Vec<String>,
    /// Peers in those rooms.
    pub peers: u64,
    /// RTP packets forwarded per second over the last refresh.
    pub forwarded_pps: u64,
    /// CPU used by the process over the last refresh, in percent of one core.
    pub cpu_percent: f64,
}

impl NodeRecord {
    /// The placement load: peers first (media cost follows them), rooms second.
    pub fn load(&self) -> u64 {
        self.peers * 4 + self.rooms.len() as u64
    }

    /// The node's HTTP(S) base URL (`ws://h:p` → `http://h:p`), for operator redirects.
    pub fn http_url(&self) -> String {
        if let Some(rest) = self.url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if let Some(rest) = self.url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else {
            self.url.clone()
        }
    }
}

/// CPU time of this process (user + system), from `/proc/self/stat`.
pub fn process_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc counts in USER_HZ ticks, 100 per second on every Linux architecture we build for.
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_url_from_the_socket_url() {
        let mut r = NodeRecord {
            id: "n".into(),
            url: "ws://127.0.0.2:4000".into(),
            instance: "i".into(),
            draining: false,
            rooms: vec![],
            peers: 0,
            forwarded_pps: 0,
            cpu_percent: 0.0,
        };
        assert_eq!(r.http_url(), "http://127.0.0.2:4000");
        r.url = "wss://n1.example.org".into();
        assert_eq!(r.http_url(), "https://n1.example.org");
    }

    #[test]
    fn cpu_time_is_read() {
        let a = process_cpu().expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(process_cpu().unwrap() >= a);
    }
}
