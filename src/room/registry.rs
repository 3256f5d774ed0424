//! [`Rooms`]: the registry of running rooms, with race-free get-or-create.
//!
//! The map is behind a std mutex held only for lookup, insert and remove, never across an
//! `.await`. A room actor removes its own entry when its last peer has left; a join that races
//! with that removal sees [`JoinError::Closing`] and retries on a fresh room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{JoinError, PeerSender, RoomHandle, RoomId};
use crate::PeerId;

/// Starts a room actor for an id; given the registry so the actor can deregister itself.
pub type RoomSpawner = dyn Fn(RoomId, Rooms) -> RoomHandle + Send + Sync;

/// Registry of running rooms. Cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

struct Inner {
    rooms: Mutex<HashMap<RoomId, RoomHandle>>,
    spawn: Box<RoomSpawner>,
    max_rooms: usize,
}

impl Rooms {
    /// A registry that starts rooms with `spawn`, at most `max_rooms` at once.
    pub fn new(max_rooms: usize, spawn: Box<RoomSpawner>) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                spawn,
                max_rooms,
            }),
        }
    }

    /// The running room with this id, if any.
    pub fn get(&self, id: &RoomId) -> Option<RoomHandle> {
        self.lock().get(id).filter(|h| !h.is_closed()).cloned()
    }

    /// Ids of all running rooms, sorted.
    pub fn ids(&self) -> Vec<RoomId> {
        let mut ids: Vec<RoomId> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Number of running rooms.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no room runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The room with this id, started if it does not run yet (one critical section).
    pub fn get_or_create(&self, id: &RoomId) -> Result<RoomHandle, JoinError> {
        let mut rooms = self.lock();
        if let Some(h) = rooms.get(id) {
            if !h.is_closed() {
                return Ok(h.clone());
            }
            rooms.remove(id);
        }
        if rooms.len() >= self.inner.max_rooms {
            return Err(JoinError::TooManyRooms);
        }
        let handle = (self.inner.spawn)(id.clone(), self.clone());
        rooms.insert(id.clone(), handle.clone());
        Ok(handle)
    }

    /// Joins `peer` to room `id`, starting the room if needed.
    pub async fn join(
        &self,
        id: &RoomId,
        peer: PeerId,
        outbound: PeerSender,
    ) -> Result<RoomHandle, JoinError> {
        self.join_as(id, peer, outbound, None).await
    }

    /// Like [`Rooms::join`], with a display name the room enforces (from an access token).
    pub async fn join_as(
        &self,
        id: &RoomId,
        peer: PeerId,
        outbound: PeerSender,
        display_name: Option<String>,
    ) -> Result<RoomHandle, JoinError> {
        // A room that is closing refuses joins; its entry is then replaced by a fresh room.
        for _ in 0..3 {
            let handle = self.get_or_create(id)?;
            let joined = handle
                .join_as(peer.clone(), outbound.clone(), display_name.clone())
                .await;
            match joined {
                Ok(()) => return Ok(handle),
                Err(JoinError::Closing) => self.remove(&handle),
                Err(e) => return Err(e),
            }
        }
        Err(JoinError::Closing)
    }

    /// Removes this room's entry if it still belongs to `handle` (called by the actor on exit).
    pub fn remove(&self, handle: &RoomHandle) {
        let mut rooms = self.lock();
        if let Some(current) = rooms.get(handle.id()) {
            if current.same_room(handle) {
                rooms.remove(handle.id());
            }
        }
    }

    /// Handles of every running room (for shutdown and metrics).
    pub fn handles(&self) -> Vec<RoomHandle> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomHandle>> {
        // A poisoned map is still a consistent map: every critical section is a single
        // insert/remove/lookup.
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}
