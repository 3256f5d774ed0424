//! `lamina publish`: joins a room as a normal participant and publishes media from gst-launch
//! style pipeline fragments (each ending in an RTP payloader) until told to stop.

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use crate::{CustomSourceError, Participant, ParticipantConfig, SignallingError};

/// What `lamina publish` publishes and where (its command-line options).
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The server's Phoenix socket URL (`ws://host:port/socket/websocket`).
    pub url: String,
    /// Room to join.
    pub room: String,
    /// Display name of the participant.
    pub name: String,
    /// Video pipeline fragment (gst-launch syntax) ending in a VP8 RTP payloader.
    pub video: Option<String>,
    /// Audio pipeline fragment ending in an Opus RTP payloader.
    pub audio: Option<String>,
}

/// How long the first negotiation may take before `publish` gives up.
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(20);

/// Why `lamina publish` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Neither `--video` nor `--audio` was given.
    #[error("nothing to publish: give --video and/or --audio")]
    NothingToPublish,
    /// GStreamer could not be initialised.
    #[error("GStreamer: {0}")]
    Gst(String),
    /// Joining the room failed.
    #[error("cannot join the room: {0}")]
    Join(#[from] SignallingError),
    /// A fragment cannot be published.
    #[error("{kind} fragment: {error}")]
    Source {
        /// `video` or `audio`.
        kind: &'static str,
        /// The cause.
        error: CustomSourceError,
    },
    /// The server did not answer the offer in time, or reported an error.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The server closed the connection while publishing.
    #[error("the server closed the connection")]
    Disconnected,
}

/// Publishes `args`' fragments into the room until `stop` resolves (then leaves cleanly) or the
/// connection is lost. Prints the endpoint and track ids to stdout.
pub async fn run(args: PublishOptions, stop: impl Future<Output = ()>) -> Result<(), PublishError> {
    if args.video.is_none() && args.audio.is_none() {
        return Err(PublishError::NothingToPublish);
    }
    gst::init().map_err(|e| PublishError::Gst(e.to_string()))?;
    // Fail on a bad fragment before joining the room.
    for (video, desc) in [(true, &args.video), (false, &args.audio)] {
        if let Some(desc) = desc {
            crate::media::custom_source(video, desc, 1).map_err(|error| PublishError::Source {
                kind: kind(video),
                error,
            })?;
        }
    }
    let participant = Participant::join(ParticipantConfig {
        url: args.url.clone(),
        room: args.room.clone(),
        name: args.name.clone(),
        audio: false,
        video: false,
        receive: false,
    })
    .await?;
    let result = publish(&participant, &args, stop).await;
    participant.leave().await;
    result
}

fn kind(video: bool) -> &'static str {
    if video {
        "video"
    } else {
        "audio"
    }
}

async fn publish(
    participant: &Participant,
    args: &PublishOptions,
    stop: impl Future<Output = ()>,
) -> Result<(), PublishError> {
    let mut tracks = Vec::new();
    for (video, desc) in [(false, &args.audio), (true, &args.video)] {
        let Some(desc) = desc else { continue };
        let metadata = json!({"type": if video { "camera" } else { "audio" }, "active": true});
        let id = participant
            .add_custom_track(desc, video, metadata)
            .map_err(|error| PublishError::Source {
                kind: kind(video),
                error,
            })?;
        tracks.push((kind(video), id));
    }
    participant
        .wait_until("the server's answer", NEGOTIATION_TIMEOUT, |s| {
            s.answers > 0 || !s.errors.is_empty()
        })
        .await
        .map_err(|_| PublishError::Negotiation("no answer from the server".into()))?;
    let errors = participant.snapshot().errors;
    if !errors.is_empty() {
        return Err(PublishError::Negotiation(errors.join("; ")));
    }
    println!("joined room {} as endpoint {}", args.room, participant.id);
    for (kind, id) in &tracks {
        println!("publishing {kind} track {id}");
    }
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut stop => {
                println!("leaving room {}", args.room);
                return Ok(());
            }
            _ = tick.tick() => {
                if !participant.is_connected() {
                    return Err(PublishError::Disconnected);
                }
            }
        }
    }
}
