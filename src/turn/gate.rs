//! The listening socket's gate: counts authentication failures and refuses requests for
//! disallowed peers before the `turn` crate handles them.
//!
//! The crate reads client datagrams through this [`Conn`]. For each STUN *request* carrying
//! USERNAME and MESSAGE-INTEGRITY the gate runs the same check as the crate (key from
//! [`RestAuth`], then the integrity) and counts a failure when it does not pass; the request is
//! still handed to the crate, which sends the refusal (400). The crate has no hook between
//! authentication and granting, so an authenticated CreatePermission or ChannelBind naming a
//! peer outside [`AllowedPeers`] (IP and port, every XOR-PEER-ADDRESS) is answered here with
//! 403 (Forbidden, RFC 8656 §9.1 / §11.2) and never reaches the crate. ChannelData and
//! indications pass untouched (the relayed socket filters their data).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS};
use stun::error_code::{ErrorCodeAttribute, CODE_FORBIDDEN};
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Method, Setter, CLASS_ERROR_RESPONSE, CLASS_REQUEST,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
};
use stun::textattrs::TextAttribute;
use turn::proto::peeraddr::PeerAddress;
use webrtc_util::Conn;

use super::auth::RestAuth;
use super::filter::AllowedPeers;
use super::Stats;

/// What to do with one datagram from a client.
enum Verdict {
    /// Hand it to the crate.
    Pass,
    /// Answer with this (already encoded) response and drop the request.
    Answer(Vec<u8>),
}

/// Wraps the TURN listening socket; see the module docs.
pub(crate) struct GateConn {
    inner: Arc<dyn Conn + Send + Sync>,
    /// `inner`'s bound address: the crate asks for it on every datagram from a client (to key
    /// the allocation), which on a socket is a `getsockname` call each time.
    local_addr: SocketAddr,
    auth: Arc<RestAuth>,
    allowed: Arc<AllowedPeers>,
    stats: Arc<Stats>,
}

impl GateConn {
    pub(crate) fn new(
        inner: Arc<dyn Conn + Send + Sync>,
        local_addr: SocketAddr,
        auth: Arc<RestAuth>,
        allowed: Arc<AllowedPeers>,
        stats: Arc<Stats>,
    ) -> Self {
        GateConn {
            inner,
            local_addr,
            auth,
            allowed,
            stats,
        }
    }

    fn inspect(&self, buf: &[u8], from: SocketAddr) -> Verdict {
        // Cheap pre-check on the raw header: only STUN requests are of interest.
        if !stun::message::is_message(buf) {
            return Verdict::Pass;
        }
        let mut typ = MessageType::default();
        typ.read_value(u16::from_be_bytes([buf[0], buf[1]]));
        if typ.class != CLASS_REQUEST {
            return Verdict::Pass;
        }
        let mut msg = Message {
            raw: buf.to_vec(),
            ..Default::default()
        };
        if msg.decode().is_err() || !msg.contains(ATTR_MESSAGE_INTEGRITY) {
            // The crate answers these (400 / 401 challenge).
            return Verdict::Pass;
        }
        let (Ok(username), Ok(realm)) = (
            TextAttribute::get_from_as(&msg, ATTR_USERNAME),
            TextAttribute::get_from_as(&msg, ATTR_REALM),
        ) else {
            return Verdict::Pass;
        };
        let key = match self.auth.key(&username.text, &realm.text) {
            Ok(key) => key,
            Err(refusal) => {
                self.auth_failed(from, &username.text, &refusal.to_string());
                return Verdict::Pass;
            }
        };
        let integrity = MessageIntegrity(key);
        if integrity.check(&mut msg).is_err() {
            self.auth_failed(from, &username.text, "bad message integrity");
            return Verdict::Pass;
        }

        let method = msg.typ.method;
        if method != METHOD_CREATE_PERMISSION && method != METHOD_CHANNEL_BIND {
            return Verdict::Pass;
        }
        match first_disallowed_peer(&msg, &self.allowed) {
            Some(peer) => {
                self.stats.peer_denials.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, %peer, ?method, "TURN: request for a disallowed peer refused (403)");
                match forbidden(&msg, method, integrity) {
                    Some(raw) => Verdict::Answer(raw),
                    None => Verdict::Pass,
                }
            }
            None => Verdict::Pass,
        }
    }

    fn auth_failed(&self, from: SocketAddr, username: &str, why: &str) {
        self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%from, username, why, "TURN authentication failed");
    }
}

/// The first XOR-PEER-ADDRESS (of possibly several) that is not allowed, if any.
/// Undecodable attributes are left to the crate, which answers 400.
fn first_disallowed_peer(msg: &Message, allowed: &AllowedPeers) -> Option<SocketAddr> {
    msg.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| {
            // Decode each attribute on its own (the getter only reads the first one).
            let mut one = Message {
                transaction_id: msg.transaction_id,
                ..Default::default()
            };
            one.add(ATTR_XOR_PEER_ADDRESS, &a.value);
            let mut peer = PeerAddress::default();
            peer.get_from(&one).ok()?;
            Some(SocketAddr::new(peer.ip, peer.port))
        })
        .find(|peer| !allowed.allows(*peer))
}

/// A 403 error response to `req`, signed with the request's key.
fn forbidden(req: &Message, method: Method, integrity: MessageIntegrity) -> Option<Vec<u8>> {
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(req.transaction_id),
        Box::new(MessageType::new(method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code: CODE_FORBIDDEN,
            reason: b"Forbidden peer".to_vec(),
        }),
        Box::new(integrity),
    ];
    let mut resp = Message::new();
    resp.build(&setters).ok()?;
    Some(resp.raw)
}

#[async_trait]
impl Conn for GateConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            match self.inspect(&buf[..n], from) {
                Verdict::Pass => return Ok((n, from)),
                Verdict::Answer(raw) => {
                    if let Err(e) = self.inner.send_to(&raw, from).await {
                        tracing::debug!(%from, error = %e, "TURN: sending 403 failed");
                    }
                }
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
