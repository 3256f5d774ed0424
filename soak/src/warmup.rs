//! The warm-up room before the baseline: two participants exchange audio and video, one
//! shares a screen that the other decodes, then one leaves and the other is dropped. Whatever
//! the first room allocates once (plugins, pools, caches) is then part of the baseline.

use std::time::Duration;

use lamina_client::{Participant, ParticipantConfig, SignallingError};
use serde_json::json;

/// The warm-up room did not work.
#[derive(Debug, thiserror::Error)]
pub enum WarmupError {
    /// A participant could not join.
    #[error("warm-up join: {0}")]
    Join(#[from] SignallingError),
    /// Media did not flow in time.
    #[error("warm-up: {0}")]
    Media(String),
}

const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);

async fn join(url: &str, name: &str) -> Result<Participant, WarmupError> {
    Ok(Participant::join(ParticipantConfig {
        url: url.to_owned(),
        room: "soak-warmup".into(),
        name: name.into(),
        audio: true,
        video: true,
        receive: true,
    })
    .await?)
}

/// Runs the warm-up room on the server at `url`.
pub async fn run(url: &str) -> Result<(), WarmupError> {
    let a = join(url, "warmup-a").await?;
    let b = join(url, "warmup-b").await?;
    for (p, other) in [(&a, &b.id), (&b, &a.id)] {
        p.wait_until("warm-up media", MEDIA_TIMEOUT, |s| {
            s.playing(other, 10) == 2
        })
        .await
        .map_err(|e| WarmupError::Media(first_line(&e)))?;
    }
    let share = a.add_video_track(json!({"type": "screensharing", "active": true}));
    b.wait_until("warm-up screen share", MEDIA_TIMEOUT, |s| {
        s.tracks.get(&share).is_some_and(|t| t.frames >= 10)
    })
    .await
    .map_err(|e| WarmupError::Media(first_line(&e)))?;
    a.remove_track(&share);
    b.wait_until("warm-up share removed", MEDIA_TIMEOUT, |s| {
        !s.tracks.contains_key(&share)
    })
    .await
    .map_err(|e| WarmupError::Media(first_line(&e)))?;
    a.leave().await;
    drop(b);
    Ok(())
}

fn first_line(e: &str) -> String {
    e.lines().next().unwrap_or_default().to_owned()
}
