//! Relayed sockets: allocation through the crate's generators, wrapped in a peer filter.
//!
//! Every relayed socket the `turn` crate gets is a [`FilteredConn`]:
//! - `send_to` a peer outside [`AllowedPeers`] is dropped (and reported as sent, so the crate
//!   does not log an error per packet); this catches Send indications to a disallowed port on
//!   an allowed IP, which the crate's IP-only permissions would let through;
//! - datagrams arriving from a peer outside [`AllowedPeers`] are discarded before the crate
//!   sees them.
//!
//! The wrapper also keeps the allocation count: +1 when a relayed socket is created, -1 when
//! the crate closes it (allocation deleted or expired) or drops it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use turn::relay::relay_range::RelayAddressGeneratorRanges;
use turn::relay::relay_static::RelayAddressGeneratorStatic;
use turn::relay::RelayAddressGenerator;
use webrtc_util::vnet::net::Net;
use webrtc_util::Conn;

use super::filter::AllowedPeers;
use super::Stats;

/// A relayed socket that only talks to allowed peers.
pub(crate) struct FilteredConn {
    inner: Arc<dyn Conn + Send + Sync>,
    allowed: Arc<AllowedPeers>,
    stats: Arc<Stats>,
    released: AtomicBool,
}

impl FilteredConn {
    fn new(
        inner: Arc<dyn Conn + Send + Sync>,
        allowed: Arc<AllowedPeers>,
        stats: Arc<Stats>,
    ) -> Self {
        stats.allocations.fetch_add(1, Ordering::Relaxed);
        FilteredConn {
            inner,
            allowed,
            stats,
            released: AtomicBool::new(false),
        }
    }

    /// Decrements the allocation count once, on close or drop, whichever comes first.
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.stats.allocations.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn deny(&self, dir: &'static str, peer: SocketAddr) {
        self.stats.peer_denials.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(%peer, dir, "TURN relay: datagram for a disallowed peer dropped");
    }
}

impl Drop for FilteredConn {
    fn drop(&mut self) {
        self.release();
    }
}

#[async_trait]
impl Conn for FilteredConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        if !self.allowed.allows(addr) {
            self.deny("connect", addr);
            return Err(webrtc_util::Error::Other("TURN peer not allowed".into()));
        }
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        // Only meaningful after `connect`, which is filtered.
        self.inner.recv(buf).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if self.allowed.allows(from) {
                return Ok((n, from));
            }
            self.deny("in", from);
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.allowed.allows(target) {
            self.deny("out", target);
            return Ok(buf.len());
        }
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.release();
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Wraps the crate's static or port-range generator so every relayed socket is a [`FilteredConn`].
pub(crate) struct FilteredRelayGenerator {
    inner: Box<dyn RelayAddressGenerator + Send + Sync>,
    allowed: Arc<AllowedPeers>,
    stats: Arc<Stats>,
}

impl FilteredRelayGenerator {
    /// Binds relayed sockets on `relay_ip`, on any free port when `ports` is `(0, 0)`, otherwise
    /// on a random free port of the inclusive range (the crate's `RelayAddressGeneratorRanges`).
    pub(crate) fn new(
        relay_ip: IpAddr,
        ports: (u16, u16),
        allowed: Arc<AllowedPeers>,
        stats: Arc<Stats>,
    ) -> Self {
        let address = match relay_ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let net = Arc::new(Net::new(None));
        let inner: Box<dyn RelayAddressGenerator + Send + Sync> = match ports {
            (0, 0) => Box::new(RelayAddressGeneratorStatic {
                relay_address: relay_ip,
                address,
                net,
            }),
            (min_port, max_port) => Box::new(RelayAddressGeneratorRanges {
                relay_address: relay_ip,
                min_port,
                max_port,
                // A few more tries than the crate's default of 10 for crowded ranges.
                max_retries: 32,
                address,
                net,
            }),
        };
        FilteredRelayGenerator {
            inner,
            allowed,
            stats,
        }
    }
}

#[async_trait]
impl RelayAddressGenerator for FilteredRelayGenerator {
    fn validate(&self) -> Result<(), turn::Error> {
        self.inner.validate()
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let (conn, relay_addr) = self.inner.allocate_conn(use_ipv4, requested_port).await?;
        let conn = FilteredConn::new(conn, Arc::clone(&self.allowed), Arc::clone(&self.stats));
        Ok((Arc::new(conn), relay_addr))
    }
}
