//! Many Lamina nodes behind one Redis: node registry, room placement and drains.
//!
//! Without `--redis-url` none of this runs: the server is a single node. With it:
//! - every node registers a [`NodeRecord`] (id, public URL, load) that expires unless the node
//!   refreshes it every [`REFRESH_INTERVAL`];
//! - the first join of a room, on any node, claims it atomically for one node ([`placement`]);
//!   every later join finds the claim, and a node that does not own the room relays the channel
//!   to the owner ([`relay`]); media always goes straight to the owner;
//! - the owner keeps its rooms' claims alive; when it dies they expire with its registration
//!   and the next join places the room again on a live node;
//! - a draining node takes no new room and stops once its rooms are gone;
//! - without Redis a node keeps serving its rooms, refuses new ones, and registers again as soon
//!   as Redis is back. Redis is never on the media path.
//!
//! What is kept in Redis is listed in [`directory`].

pub mod directory;
pub mod placement;
pub mod record;
pub mod relay;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use directory::Directory;
pub use record::NodeRecord;

use crate::metrics::Scraper;
use crate::room::{RoomId, Rooms};

/// How often a node refreshes its registration, its claims and its view of the other nodes.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Longest node id accepted (`--node-id`).
pub const MAX_NODE_ID_BYTES: usize = 64;

/// Why the cluster could not do something; the `Display` text is what clients and operators see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// A cluster option is wrong.
    #[error("{0}")]
    Config(String),
    /// Redis did not answer (in time) or refused the connection.
    #[error("cluster directory (Redis) unavailable: {0}")]
    Unavailable(String),
    /// Redis answered something this node cannot read.
    #[error("cluster directory (Redis) answered garbage: {0}")]
    Garbage(String),
    /// Another live process is registered under this node id.
    #[error("node id {0:?} is in use by another live node")]
    NodeIdClash(String),
    /// Every node drains: no node takes new rooms.
    #[error("no node takes new rooms (all draining)")]
    NoNode,
    /// A relayed join reached a node that does not own the room (the claim moved meanwhile,
    /// or the relay mark was forged): nodes relay one hop only.
    #[error("room is owned by node {0:?}, not by this node")]
    NotOwner(String),
    /// A relayed join for a room no node claimed for this one (a forged relay mark): a relayed
    /// join never creates a room.
    #[error("room is not placed on this node")]
    NotPlacedHere,
    /// The owner node's WebSocket could not be reached.
    #[error("the room's node {node:?} is unreachable: {error}")]
    OwnerUnreachable {
        /// The owner node.
        node: String,
        /// What failed.
        error: String,
    },
}

/// Where a join goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// The room runs (or will run) on this node.
    Local,
    /// Another node owns the room.
    Remote(NodeRecord),
}

/// What a node says about itself, set at start.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// `--node-id` (or a random one).
    pub id: String,
    /// `--public-url` (or the bound listen address).
    pub url: String,
}

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeIdentity,
    instance: String,
    dir: Directory,
    rooms: Rooms,
    draining: AtomicBool,
    /// Whether the last refresh reached Redis.
    redis_up: AtomicBool,
    /// The live nodes as of the last refresh (this one included when registered).
    live: Mutex<Vec<NodeRecord>>,
    /// Cancelled when a draining node has no room left.
    drained: CancellationToken,
    /// Stops the refresh loop.
    stop: CancellationToken,
}

/// Checks a node id: 1 to [`MAX_NODE_ID_BYTES`] bytes of letters, digits, `-`, `_`, `.`.
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A random node id, `node-` and 8 hex digits.
pub fn random_node_id() -> String {
    format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

impl Cluster {
    /// Connects to Redis, registers this node (failing if its id is held by a live node) and
    /// starts refreshing. `scraper` supplies the load figures.
    pub async fn join(
        redis_url: &str,
        me: NodeIdentity,
        rooms: Rooms,
        scraper: Arc<Scraper>,
    ) -> Result<Self, ClusterError> {
        if !valid_node_id(&me.id) {
            return Err(ClusterError::Config(format!(
                "invalid --node-id {:?}: 1-{MAX_NODE_ID_BYTES} letters, digits, '-', '_' or '.'",
                me.id
            )));
        }
        if !(me.url.starts_with("ws://") || me.url.starts_with("wss://")) {
            return Err(ClusterError::Config(format!(
                "invalid --public-url {:?}: it must start with ws:// or wss://",
                me.url
            )));
        }
        let dir = Directory::connect(redis_url).await?;
        let inner = Arc::new(Inner {
            instance: uuid::Uuid::new_v4().simple().to_string(),
            me,
            dir: dir.clone(),
            rooms,
            draining: AtomicBool::new(false),
            redis_up: AtomicBool::new(true),
            live: Mutex::new(Vec::new()),
            drained: CancellationToken::new(),
            stop: CancellationToken::new(),
        });
        let record = inner.record(Load::default());
        dir.register(&record).await?;
        // A drain request left from an earlier process under this id (only once registered:
        // a clashing start must not clear a live node's request).
        dir.clear_drain(&inner.me.id).await?;
        if let Ok(nodes) = dir.nodes().await {
            *inner.live.lock().unwrap_or_else(|e| e.into_inner()) = nodes;
        }
        tracing::info!(node = %inner.me.id, url = %inner.me.url, "cluster node registered");
        tokio::spawn(refresh_loop(inner.clone(), scraper));
        Ok(Self { inner })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.me.id
    }

    /// True once this node drains.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Starts draining: no new rooms here; [`Cluster::drained`] fires when the rooms are gone.
    pub fn drain(&self) {
        if !self.inner.draining.swap(true, Ordering::Relaxed) {
            tracing::info!(node = %self.inner.me.id, rooms = self.inner.rooms.len(), "draining");
        }
    }

    /// Resolves once a draining node has no room left.
    pub async fn drained(&self) {
        self.inner.drained.cancelled().await;
    }

    /// Where a join of `room` goes. A room running here stays here (even while draining or
    /// without Redis). A relayed join (from another node) must find the room claimed for this
    /// node by the relaying node; it never claims. Otherwise the room's claim is read, or made
    /// for the node [`placement::choose`] picks.
    pub async fn place(&self, room: &RoomId, relayed: bool) -> Result<Placement, ClusterError> {
        if self.inner.rooms.get(room).is_some() {
            return Ok(Placement::Local);
        }
        let me = &self.inner.me.id;
        let dir = &self.inner.dir;
        if relayed {
            return match dir.owner(&room.0).await? {
                Some(owner) if &owner == me => Ok(Placement::Local),
                Some(owner) => Err(ClusterError::NotOwner(owner)),
                None => Err(ClusterError::NotPlacedHere),
            };
        }
        for _ in 0..2 {
            let candidate = {
                let live = self.inner.live.lock().unwrap_or_else(|e| e.into_inner());
                let mut view: Vec<NodeRecord> = live.clone();
                // The local entry as of now: draining may have started since the last refresh.
                for n in view.iter_mut().filter(|n| &n.id == me) {
                    n.draining = self.is_draining();
                }
                placement::choose(me, &view).map(|n| n.id.clone())
            };
            let owner = match candidate {
                Some(candidate) => dir.claim(&room.0, &candidate).await?,
                // Every node drains: a live claim may still exist.
                None => dir.owner(&room.0).await?.ok_or(ClusterError::NoNode)?,
            };
            if &owner != me {
                return match dir.node(&owner).await? {
                    Some(record) => Ok(Placement::Remote(record)),
                    None => Err(ClusterError::OwnerUnreachable {
                        node: owner,
                        error: "its registration expired".into(),
                    }),
                };
            }
            if !self.is_draining() {
                return Ok(Placement::Local);
            }
            // A claim for this draining node made before it drained (no room runs here): drop
            // it and place the room again, elsewhere.
            dir.release(me, std::slice::from_ref(&room.0)).await?;
        }
        Err(ClusterError::NoNode)
    }

    /// The node that owns `room`, when it is not this one (for operator redirects).
    pub async fn remote_owner(&self, room: &RoomId) -> Result<Option<NodeRecord>, ClusterError> {
        if self.inner.rooms.get(room).is_some() {
            return Ok(None);
        }
        let dir = self.inner.dir.clone();
        match dir.owner(&room.0).await? {
            Some(owner) if owner != self.inner.me.id => dir.node(&owner).await,
            _ => Ok(None),
        }
    }

    /// The live nodes, read from Redis now.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        self.inner.dir.clone().nodes().await
    }

    /// Whether the last refresh reached Redis.
    pub fn redis_up(&self) -> bool {
        self.inner.redis_up.load(Ordering::Relaxed)
    }

    /// Stops refreshing and removes this node's registration (best effort): its rooms' claims
    /// expire within [`directory::ROOM_TTL`].
    pub async fn leave(&self) {
        self.inner.stop.cancel();
        let record = self.inner.record(Load::default());
        let dir = self.inner.dir.clone();
        let rooms: Vec<String> = self.inner.rooms.ids().into_iter().map(|r| r.0).collect();
        let _ = dir.release(&self.inner.me.id, &rooms).await;
        if let Err(e) = dir.deregister(&record).await {
            tracing::debug!(error = %e, "could not deregister");
        }
    }
}

/// Load figures of one refresh.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    peers: u64,
    forwarded_pps: u64,
    cpu_percent: f64,
}

impl Inner {
    fn record(&self, load: Load) -> NodeRecord {
        NodeRecord {
            id: self.me.id.clone(),
            url: self.me.url.clone(),
            instance: self.instance.clone(),
            draining: self.draining.load(Ordering::Relaxed),
            rooms: self.rooms.ids().into_iter().map(|r| r.0).collect(),
            peers: load.peers,
            forwarded_pps: load.forwarded_pps,
            cpu_percent: load.cpu_percent,
        }
    }
}

/// Longest one refresh may take: well under the registrations' lifetime, so a slow Redis or a
/// busy machine is noticed before this node's registration lapses.
const REFRESH_DEADLINE: Duration = Duration::from_millis(1500);

/// Every [`REFRESH_INTERVAL`]: refresh the registration and the claims (first: they expire),
/// heal split rooms, read a drain request, release the claims of rooms that ended, reread the
/// live nodes; then sample the load published at the next refresh.
async fn refresh_loop(inner: Arc<Inner>, scraper: Arc<Scraper>) {
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (Instant::now(), record::process_cpu(), 0u64);
    let mut claimed: HashSet<String> = HashSet::new();
    let mut load = Load::default();
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let up = match tokio::time::timeout(REFRESH_DEADLINE, refresh(&inner, load, &mut claimed))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(ClusterError::Unavailable(format!(
                "a refresh took over {} ms",
                REFRESH_DEADLINE.as_millis()
            ))),
        };
        let was_up = inner.redis_up.swap(up.is_ok(), Ordering::Relaxed);
        match (&up, was_up) {
            (Err(e), true) => {
                tracing::error!(error = %e, "lost the cluster directory: serving the rooms here, refusing new ones")
            }
            (Ok(()), false) => {
                tracing::info!(node = %inner.me.id, "cluster directory back: registered again")
            }
            _ => {}
        }
        if inner.draining.load(Ordering::Relaxed) && inner.rooms.is_empty() {
            inner.drained.cancel();
        }
        let snap = scraper.gather().await;
        let now = (
            Instant::now(),
            record::process_cpu(),
            snap.forwarded_packets,
        );
        let secs = now.0.duration_since(last.0).as_secs_f64().max(0.001);
        load = Load {
            peers: snap.peers,
            forwarded_pps: (now.2.saturating_sub(last.2) as f64 / secs) as u64,
            cpu_percent: match (last.1, now.1) {
                (Some(a), Some(b)) => (b.saturating_sub(a).as_secs_f64() / secs * 100.0).round(),
                _ => 0.0,
            },
        };
        last = now;
    }
}

async fn refresh(
    inner: &Inner,
    load: Load,
    claimed: &mut HashSet<String>,
) -> Result<(), ClusterError> {
    let dir = &inner.dir;
    let record = inner.record(load);
    match dir.register(&record).await {
        Err(ClusterError::NodeIdClash(id)) => {
            tracing::error!(node = %id, "another live node registered this node id; rooms here keep running");
        }
        other => other?,
    }
    let lost = dir.keep(&inner.me.id, &record.rooms).await?;
    for room in lost {
        // Two nodes run this room (a registration lapsed meanwhile): the claim wins, so the
        // clients here rejoin the other node's room.
        tracing::warn!(%room, "another node claims a room that runs here: closing it here");
        if let Some(handle) = inner.rooms.get(&RoomId(room)) {
            handle.send(crate::room::RoomCommand::Shutdown).await;
        }
    }
    if !inner.draining.load(Ordering::Relaxed) && dir.drain_requested(&inner.me.id).await? {
        inner.draining.store(true, Ordering::Relaxed);
        tracing::info!(node = %inner.me.id, rooms = inner.rooms.len(), "drain requested: taking no new rooms");
    }
    let now: HashSet<String> = record.rooms.iter().cloned().collect();
    // Rooms that ended since the last refresh, unless one started again under the same id.
    let ended: Vec<String> = claimed
        .difference(&now)
        .filter(|r| inner.rooms.get(&RoomId((*r).clone())).is_none())
        .cloned()
        .collect();
    dir.release(&inner.me.id, &ended).await?;
    *claimed = now;
    let nodes = dir.nodes().await?;
    *inner.live.lock().unwrap_or_else(|e| e.into_inner()) = nodes;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(valid_node_id("node-1"));
        assert!(valid_node_id("eu.west_2"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a b"));
        assert!(!valid_node_id("a:b"));
        assert!(!valid_node_id(&"x".repeat(65)));
        assert!(valid_node_id(&random_node_id()));
    }
}
