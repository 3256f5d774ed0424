//! The room actor: a tokio task that owns a room's peers, tracks and pipeline.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::registry::RoomSpawner;
use super::{RoomCommand, RoomHandle, RoomId, Rooms};
use crate::config::Config;

/// A spawner for [`Rooms`] that starts room actors with this configuration.
pub fn spawner(config: Arc<Config>) -> Box<RoomSpawner> {
    Box::new(move |id: RoomId, rooms: Rooms| spawn(id, config.clone(), rooms))
}

/// Starts the actor of room `id`.
pub fn spawn(id: RoomId, _config: Arc<Config>, rooms: Rooms) -> RoomHandle {
    let (tx, mut rx) = mpsc::channel::<RoomCommand>(256);
    let handle = RoomHandle::new(id, tx);
    let me = handle.clone();
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            if let RoomCommand::Join { reply, .. } = cmd {
                let _ = reply.send(Ok(()));
            }
        }
        rooms.remove(&me);
    });
    handle
}
