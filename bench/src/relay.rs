//! The browser-shaped path: a peer that reaches the server only through a TURN relay, as the
//! Membrane browser client does (`iceTransportPolicy: "relay"`). [`Relay::allocate`] takes the
//! credentials of the server's `offerData` (`integratedTurnServers`), allocates a relay on
//! Lamina's embedded TURN server with the `turn` crate's client over a UDP socket of the
//! peer's own, and gives the peer a reader and a writer task: str0m then sees one relayed
//! candidate, and every datagram it sends or receives crosses the TURN server (a Send
//! indication until the client's channel binding completes, ChannelData after).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lamina_client::ServerEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// The TURN entry of `offerData` (the fields the bench uses).
#[derive(Debug, Clone)]
pub struct TurnInfo {
    /// `serverAddr:serverPort`.
    pub addr: String,
    /// TURN REST username.
    pub username: String,
    /// TURN REST password.
    pub password: String,
}

impl TurnInfo {
    /// The first UDP TURN server of an `offerData` event, if it is one and lists any.
    pub fn from_offer_data(ev: &ServerEvent) -> Option<Self> {
        let ServerEvent::OfferData { turn_servers, .. } = ev else {
            return None;
        };
        turn_servers
            .iter()
            .find(|t| t.transport == "udp")
            .map(|t| TurnInfo {
                addr: format!("{}:{}", t.addr, t.port),
                username: t.username.clone(),
                password: t.password.clone(),
            })
    }
}

/// How long an allocation may take.
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams queued towards the relay before the peer drops more (as a full socket would).
const WRITE_QUEUE: usize = 4096;

/// A relayed candidate and the tasks moving the peer's datagrams through it.
pub struct Relay {
    /// The relayed transport address (the candidate str0m announces).
    pub addr: SocketAddr,
    /// The local socket the TURN client talks from.
    pub local: SocketAddr,
    /// Datagrams to send: (payload, peer).
    pub tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    /// Datagrams received from peers: (payload, peer).
    pub rx: mpsc::Receiver<(Vec<u8>, SocketAddr)>,
    conn: Arc<dyn Conn + Send + Sync>,
    client: Client,
    tasks: [JoinHandle<()>; 2],
}

impl Relay {
    /// Allocates a relay on `server` from a socket bound to `ip`.
    pub async fn allocate(ip: IpAddr, server: &TurnInfo) -> Result<Self, String> {
        tokio::time::timeout(ALLOCATE_TIMEOUT, Self::allocate_now(ip, server))
            .await
            .map_err(|_| format!("TURN allocation on {} timed out", server.addr))?
    }

    async fn allocate_now(ip: IpAddr, server: &TurnInfo) -> Result<Self, String> {
        let socket = crate::peer::bind(ip).map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let client = Client::new(ClientConfig {
            stun_serv_addr: String::new(),
            turn_serv_addr: server.addr.clone(),
            username: server.username.clone(),
            password: server.password.clone(),
            // Learnt from the server's 401, as a browser does.
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            conn: Arc::new(socket),
            vnet: None,
        })
        .await
        .map_err(|e| format!("TURN client: {e}"))?;
        client
            .listen()
            .await
            .map_err(|e| format!("TURN listen: {e}"))?;
        let conn: Arc<dyn Conn + Send + Sync> = Arc::new(
            client
                .allocate()
                .await
                .map_err(|e| format!("TURN allocate on {}: {e}", server.addr))?,
        );
        let addr = conn.local_addr().map_err(|e| e.to_string())?;
        let (tx, mut to_send) = mpsc::channel::<(Vec<u8>, SocketAddr)>(WRITE_QUEUE);
        let (received, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn({
            let conn = conn.clone();
            async move {
                while let Some((data, to)) = to_send.recv().await {
                    if let Err(e) = conn.send_to(&data, to).await {
                        tracing::debug!(%to, "relay send: {e}");
                    }
                }
            }
        });
        let reader = tokio::spawn({
            let conn = conn.clone();
            async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = conn.recv_from(&mut buf).await {
                    if received.send((buf[..n].to_vec(), from)).await.is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self {
            addr,
            local,
            tx,
            rx,
            conn,
            client,
            tasks: [writer, reader],
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Release the allocation (a Refresh with lifetime 0) and the client's socket.
        let (conn, client) = (self.conn.clone(), self.client.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
                let _ = client.close().await;
            });
        }
    }
}
