//! A WebSocket man in the middle for the hostile suites: a real participant's signalling
//! passes through it and its media events can be rewritten on the way (e.g. a forged DTLS
//! fingerprint in its offers). Include with `#[path = "support/tamper.rs"] mod tamper;` next
//! to `support` and `hostile`.
#![allow(dead_code)]

use std::net::SocketAddr;

use lamina_client::ClientEvent;
use lamina_protocol::phoenix_frame::{self, Frame};

use crate::hostile::FINGERPRINT;

/// A WebSocket man-in-the-middle between one participant and the server: forwards every
/// frame, passing the participant's media events through `rewrite` first.
pub struct TamperProxy {
    /// URL to give the participant (`ws://<proxy>/socket/websocket`).
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TamperProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a [`TamperProxy`] in front of `server` (one connection at a time is enough).
pub async fn tamper_proxy(
    server: SocketAddr,
    rewrite: impl Fn(ClientEvent) -> ClientEvent + Send + Sync + 'static,
) -> TamperProxy {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/socket/websocket", listener.local_addr().unwrap());
    let rewrite = std::sync::Arc::new(rewrite);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let rewrite = rewrite.clone();
            tokio::spawn(async move {
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let upstream = crate::support::socket_url(server);
                let Ok((upstream, _)) = tokio_tungstenite::connect_async(upstream).await else {
                    return;
                };
                let (mut c_tx, mut c_rx) = client.split();
                let (mut u_tx, mut u_rx) = upstream.split();
                let down = async move {
                    while let Some(Ok(m)) = u_rx.next().await {
                        if c_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                let up = async move {
                    while let Some(Ok(m)) = c_rx.next().await {
                        let m = match m {
                            Message::Text(t) => Message::Text(tamper_frame(&t, &*rewrite)),
                            other => other,
                        };
                        if u_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::join!(down, up);
            });
        }
    });
    TamperProxy { url, task }
}

/// Rewrites the media event inside a `"mediaEvent"` frame; other frames (and events that do
/// not decode) pass unchanged.
fn tamper_frame(text: &str, rewrite: &dyn Fn(ClientEvent) -> ClientEvent) -> String {
    let Ok(mut frame) = phoenix_frame::decode(text, usize::MAX) else {
        return text.to_owned();
    };
    let Some(Ok(event)) = frame.media_event_data().map(ClientEvent::decode) else {
        return text.to_owned();
    };
    frame.payload = Frame::media_event_payload(rewrite(event).encode());
    frame.encode()
}

/// `rewrite` for [`tamper_proxy`]: replaces the DTLS fingerprint of every `sdpOffer` with
/// [`FINGERPRINT`] (which belongs to no certificate).
pub fn forge_fingerprint(mut event: ClientEvent) -> ClientEvent {
    if let ClientEvent::SdpOffer { sdp, .. } = &mut event {
        let forged: Vec<String> = sdp
            .split("\r\n")
            .map(|l| {
                if l.starts_with("a=fingerprint:") {
                    format!("a=fingerprint:sha-256 {FINGERPRINT}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        *sdp = forged.join("\r\n");
    }
    event
}
