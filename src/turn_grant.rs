//! [`RestTurnGrant`]: hands each peer the TURN server with its own time-limited credentials.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::media_event::TurnServerInfo;
use crate::room::core::TurnProvider;
use crate::turn::rest_credentials;
use crate::PeerId;

/// TURN REST credentials for one TURN server (embedded or external).
pub struct RestTurnGrant {
    /// Address browsers reach the TURN server at.
    pub addr: SocketAddr,
    /// Shared secret.
    pub secret: String,
    /// Lifetime of each credential.
    pub ttl: Duration,
}

impl TurnProvider for RestTurnGrant {
    fn servers_for(&self, peer: &PeerId) -> Vec<TurnServerInfo> {
        let c = rest_credentials(&self.secret, peer.as_str(), self.ttl, SystemTime::now());
        vec![TurnServerInfo {
            addr: self.addr.ip().to_string(),
            port: self.addr.port(),
            transport: "udp".into(),
            username: c.username,
            password: c.password,
        }]
    }
}
