//! Room chat in [`RoomCore`]: who may send, at what rate, and to whom a message goes.

use serde_json::Value;

use crate::rate::{Decision, RateLimiter};
use crate::{ChatError, ChatMessage, Effect, PeerId, RoomCore, CHAT_MESSAGES_PER_SEC};

impl RoomCore {
    /// A chat message from a peer: refused (the error is the reply's reason) unless the peer
    /// has sent `connect`, is within [`CHAT_MESSAGES_PER_SEC`] and the text passes
    /// [`lamina_protocol::chat::validate_text`]; otherwise one [`Effect::Chat`] per connected
    /// peer, the sender included, in join order. Nothing is stored.
    pub fn chat(&mut self, from: &PeerId, text: String) -> Result<Vec<Effect>, ChatError> {
        let peer = self.peers.get(from).ok_or(ChatError::NotConnected)?;
        if !peer.connected {
            return Err(ChatError::NotConnected);
        }
        let now = self.now;
        let budget = self
            .chat_rate
            .entry(from.clone())
            .or_insert_with(|| RateLimiter::new(CHAT_MESSAGES_PER_SEC, now));
        // A flood (`Decision::Disconnect`) is refused like any excess: the socket's own limit
        // closes clients that keep flooding.
        if budget.check(now) != Decision::Allow {
            return Err(ChatError::RateLimited);
        }
        lamina_protocol::chat::validate_text(&text)?;
        let name = peer
            .metadata
            .get("displayName")
            .and_then(Value::as_str)
            .map(lamina_protocol::chat::clean_name)
            .unwrap_or_default();
        let message = ChatMessage {
            from: from.to_string(),
            name,
            text,
            at: self.unix_ms,
        };
        Ok(self
            .peers()
            .filter(|p| p.connected)
            .map(|p| Effect::Chat {
                peer: p.id.clone(),
                message: message.clone(),
            })
            .collect())
    }
}
