//! `GET /socket/websocket`: the Phoenix socket over warp's WebSocket.
//!
//! With `--allowed-origin`, an upgrade whose `Origin` header is not one of the listed origins
//! (compared case-insensitively, without a trailing `/`), or has none, is refused with 403:
//! browsers always send `Origin`, so this stops other sites from opening sockets in their
//! visitors' name; non-browser clients must send one of the allowed origins.

use std::collections::HashMap;

use futures_util::{future, SinkExt, StreamExt};
use warp::ws::{Message, WebSocket};
use warp::{Filter, Rejection, Reply};

use super::AppState;
use crate::cluster::relay::RELAYED_BY_HEADER;
use crate::phoenix::socket::{self, SocketContext};
use crate::phoenix::transport::{WsIn, WsOut, WsReadError};

/// The only Phoenix serializer version served.
pub const VSN: &str = "2.0.0";

/// A WebSocket request refused before the upgrade.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    /// The client asked for a serializer version other than [`VSN`].
    #[error("unsupported vsn {0:?}: only 2.0.0 is served")]
    UnsupportedVsn(String),
}

impl warp::reject::Reject for BadRequest {}

/// A WebSocket upgrade from an origin that `--allowed-origin` does not list (403).
#[derive(Debug, thiserror::Error)]
#[error("origin not allowed")]
pub struct ForbiddenOrigin;

impl warp::reject::Reject for ForbiddenOrigin {}

/// An origin in the form origins are compared in: lower case, no trailing `/`.
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether an upgrade with this `Origin` header may proceed: always when `allowed` is empty.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = origin.map(normalize_origin) else {
        return false;
    };
    allowed.iter().any(|a| normalize_origin(a) == origin)
}

/// The largest message warp reads, given our own frame limit: twice the limit, so a moderately
/// oversized frame is read whole and refused with a clean 1009 close by the socket; beyond this
/// warp stops reading at the frame header (the socket still answers 1009, best effort).
pub fn transport_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(2).max(4096)
}

/// The `/socket/websocket` route.
pub fn route(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("socket" / "websocket")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|query: HashMap<String, String>| async move {
            match query.get("vsn") {
                None => Ok(()),
                Some(v) if v == VSN => Ok(()),
                Some(v) => Err(warp::reject::custom(BadRequest::UnsupportedVsn(v.clone()))),
            }
        })
        .untuple_one()
        .and(origin_filter(state.config.allowed_origins.clone()))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>(RELAYED_BY_HEADER))
        .and(warp::ws())
        .map(
            move |origin: Option<String>, relayed_by: Option<String>, upgrade: warp::ws::Ws| {
                let limit = transport_limit(state.config.max_frame_bytes);
                let ctx = SocketContext {
                    config: state.config.clone(),
                    rooms: state.rooms.clone(),
                    tokens: state.tokens.clone(),
                    shutdown: state.shutdown.clone(),
                    cluster: state.cluster.clone(),
                    origin,
                    relayed_by,
                };
                let sockets = state.sockets.clone();
                upgrade
                    .max_message_size(limit)
                    .max_frame_size(limit)
                    .on_upgrade(move |ws| sockets.track_future(serve(ws, ctx)))
            },
        )
}

/// Refuses upgrades from origins not in `allowed` (when it is not empty).
fn origin_filter(allowed: Vec<String>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let allowed = std::sync::Arc::new(allowed);
    warp::header::optional::<String>("origin")
        .and_then(move |origin: Option<String>| {
            let allowed = allowed.clone();
            async move {
                if origin_allowed(&allowed, origin.as_deref()) {
                    Ok(())
                } else {
                    tracing::info!(origin = ?origin, "websocket upgrade refused: origin not allowed");
                    Err(warp::reject::custom(ForbiddenOrigin))
                }
            }
        })
        .untuple_one()
}

/// Runs the Phoenix socket on an upgraded connection.
async fn serve(ws: WebSocket, ctx: SocketContext) {
    let (sink, stream) = ws.split();
    let stream = stream.map(|item| item.map(incoming).map_err(read_error));
    let sink = sink.with(|out: WsOut| future::ready(Ok::<_, warp::Error>(outgoing(out))));
    socket::run(stream, sink, ctx).await;
}

fn incoming(msg: Message) -> WsIn {
    if msg.is_text() {
        // warp has checked the UTF-8 already.
        WsIn::Text(String::from_utf8_lossy(msg.as_bytes()).into_owned())
    } else if msg.is_binary() {
        WsIn::Binary(msg.as_bytes().len())
    } else if msg.is_close() {
        WsIn::Close
    } else {
        WsIn::Control
    }
}

fn outgoing(out: WsOut) -> Message {
    match out {
        WsOut::Text(text) => Message::text(text),
        WsOut::Close(c) => Message::close_with(c.code, c.reason),
    }
}

/// warp hides the tungstenite error type; its message is the only way to tell a size error.
fn read_error(e: warp::Error) -> WsReadError {
    let text = e.to_string();
    if text.contains("Message too long") || text.contains("Space limit exceeded") {
        WsReadError::TooBig
    } else {
        WsReadError::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec!["https://Meet.Example.org/".to_owned()];
        assert!(origin_allowed(&[], None));
        assert!(origin_allowed(&[], Some("https://evil.example")));
        assert!(origin_allowed(&allowed, Some("https://meet.example.org")));
        assert!(!origin_allowed(&allowed, Some("http://meet.example.org")));
        assert!(!origin_allowed(
            &allowed,
            Some("https://meet.example.org:8443")
        ));
        assert!(!origin_allowed(&allowed, Some("null")));
        assert!(!origin_allowed(&allowed, None));
    }
}
