//! The loss-repair counters of `GET /metrics` (`lamina_uplink_*`, `lamina_downlink_*`), for the
//! repair tests (`tests/repair_loss.rs`, `tests/hostile_nack.rs`). Include with
//! `#[path = "support/repair_metrics.rs"] mod repair_metrics;` next to `support` and
//! `ops_common`. The counters are process-wide: compare two scrapes ([`Repair::since`]).
#![allow(dead_code)]

use lamina::server::Server;

/// The loss-repair counters of one scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Repair {
    /// `lamina_uplink_nacks_total`.
    pub uplink_nacks: u64,
    /// `lamina_uplink_repaired_packets_total`.
    pub uplink_repaired: u64,
    /// `lamina_uplink_lost_packets_total`.
    pub uplink_lost: u64,
    /// `lamina_downlink_nack_requests_total`.
    pub downlink_requests: u64,
    /// `lamina_downlink_nack_requests_dropped_total`.
    pub downlink_dropped: u64,
    /// `lamina_downlink_nack_requests_not_cached_total`, if the server exports it.
    pub downlink_not_cached: Option<u64>,
    /// `lamina_downlink_retransmitted_packets_total`.
    pub downlink_retransmitted: u64,
}

impl Repair {
    /// Scrapes `server`'s `/metrics`.
    pub async fn scrape(server: &Server) -> Repair {
        let (status, body) = crate::support::http_get(server.addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        let get = |name: &str| {
            crate::ops_common::sample(&body, name).unwrap_or_else(|| panic!("no {name} in\n{body}"))
                as u64
        };
        Repair {
            uplink_nacks: get("lamina_uplink_nacks_total"),
            uplink_repaired: get("lamina_uplink_repaired_packets_total"),
            uplink_lost: get("lamina_uplink_lost_packets_total"),
            downlink_requests: get("lamina_downlink_nack_requests_total"),
            downlink_dropped: get("lamina_downlink_nack_requests_dropped_total"),
            downlink_not_cached: crate::ops_common::sample(
                &body,
                "lamina_downlink_nack_requests_not_cached_total",
            )
            .map(|v| v as u64),
            downlink_retransmitted: get("lamina_downlink_retransmitted_packets_total"),
        }
    }

    /// What grew since `before` (counters never decrease).
    pub fn since(&self, before: &Repair) -> Repair {
        Repair {
            uplink_nacks: self.uplink_nacks - before.uplink_nacks,
            uplink_repaired: self.uplink_repaired - before.uplink_repaired,
            uplink_lost: self.uplink_lost - before.uplink_lost,
            downlink_requests: self.downlink_requests - before.downlink_requests,
            downlink_dropped: self.downlink_dropped - before.downlink_dropped,
            downlink_not_cached: self
                .downlink_not_cached
                .zip(before.downlink_not_cached)
                .map(|(a, b)| a - b),
            downlink_retransmitted: self.downlink_retransmitted - before.downlink_retransmitted,
        }
    }
}
