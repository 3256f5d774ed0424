//! Late joiners: join → the first complete keyframe of every remote video stream, and where that
//! time goes (the joiner's connection, the publishers' keyframe requests and answers, the
//! joiner's first packets).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::{lock, quantile, PeerStats};
use crate::result::RunResult;

/// How long a late joiner may take to decode every publisher's video.
pub const LATE_JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits until the joiner whose peer connections are `st` decoded `n` video streams, or
/// `timeout` passed.
pub async fn wait_decodable(st: &[Arc<Mutex<PeerStats>>], n: usize, timeout: Duration) {
    let until = Instant::now() + timeout;
    let decodable = || {
        st.iter()
            .map(|s| {
                lock(s)
                    .rx
                    .values()
                    .filter(|r| r.first_decodable.is_some())
                    .count()
            })
            .sum::<usize>()
    };
    while decodable() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The late joiners' samples of one run, in milliseconds.
#[derive(Debug, Default)]
pub struct FirstFrames {
    /// Join → first complete keyframe, per stream.
    first: Vec<f64>,
    /// Streams that showed no frame.
    missing: usize,
    /// Join → the receiving connection up, per joiner.
    connects: Vec<f64>,
    /// Connected → a publisher's first keyframe request since the join, per publisher.
    requests: Vec<f64>,
    /// Connected → the keyframe that publisher sent in answer.
    sent: Vec<f64>,
    /// Connected → the joiner's first video packet, per stream.
    packets: Vec<f64>,
}

impl FirstFrames {
    /// Adds one joiner (peer connections `st`, join started at `began`) of a room whose
    /// publishers' stats are `publishers` (`expected` video streams).
    pub fn add(
        &mut self,
        st: &[Arc<Mutex<PeerStats>>],
        began: Instant,
        publishers: &[Arc<Mutex<PeerStats>>],
        expected: usize,
    ) {
        let connected = st
            .iter()
            .filter_map(|s| {
                let s = lock(s);
                s.connected.filter(|_| !s.rx.is_empty())
            })
            .max();
        if let Some(c) = connected {
            self.connects.push(signed_ms(c, began));
            for tx in publishers {
                let tx = lock(tx);
                if let Some(at) = tx.first_keyframe_request_since(began) {
                    self.requests.push(signed_ms(at, c));
                    if let Some(k) = tx.first_keyframe_sent_since(at) {
                        self.sent.push(signed_ms(k, c));
                    }
                }
            }
            for s in st {
                let s = lock(s);
                self.packets.extend(
                    s.rx.values()
                        .filter(|r| r.video)
                        .filter_map(|r| r.first_packet)
                        .map(|at| signed_ms(at, c)),
                );
            }
        }
        let got: Vec<f64> = st
            .iter()
            .flat_map(|s| {
                lock(s)
                    .rx
                    .values()
                    .filter_map(|r| r.first_decodable)
                    .collect::<Vec<_>>()
            })
            .map(|t| signed_ms(t, began))
            .collect();
        self.missing += expected.saturating_sub(got.len());
        self.first.extend(got);
    }

    /// Writes the medians (and the first frame's p95) into `res`.
    pub fn write(mut self, res: &mut RunResult) {
        res.first_frame_missing += self.missing;
        res.first_frame_samples = self.first.len();
        res.first_frame_p50_ms = quantile(&mut self.first, 0.5);
        res.first_frame_p95_ms = quantile(&mut self.first, 0.95);
        res.first_frame_connect_p50_ms = quantile(&mut self.connects, 0.5);
        res.first_frame_request_p50_ms = quantile(&mut self.requests, 0.5);
        res.first_frame_key_sent_p50_ms = quantile(&mut self.sent, 0.5);
        res.first_frame_packet_p50_ms = quantile(&mut self.packets, 0.5);
    }
}

/// `a - b` in milliseconds, negative when `a` came first.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(b - a).as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_differences_in_ms() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(25);
        assert_eq!(signed_ms(t1, t0), 25.0);
        assert_eq!(signed_ms(t0, t1), -25.0);
    }
}
