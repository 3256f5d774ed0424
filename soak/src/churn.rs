//! Room churn: `rooms × slots` participants, each slot joining, staying, maybe sharing a screen
//! for a while, and leaving (gracefully or by being dropped) at seeded random times, until a
//! deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lamina_client::{Participant, ParticipantConfig};
use serde_json::json;

/// What the churn does.
#[derive(Debug, Clone)]
pub struct ChurnPlan {
    /// Room WebSocket URL.
    pub url: String,
    /// Room ids are `<prefix>-<n>`.
    pub room_prefix: String,
    /// Rooms.
    pub rooms: usize,
    /// Participant slots per room.
    pub slots: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Shortest and longest stay in a room.
    pub stay: (Duration, Duration),
    /// Longest pause between a leave and the slot's next join.
    pub max_pause: Duration,
    /// Probability that a participant shares a screen during a stay.
    pub share_probability: f64,
    /// Probability that a participant is dropped instead of leaving.
    pub abrupt_probability: f64,
}

/// Counters of what the churn did (shared with the sampler).
#[derive(Debug, Default)]
pub struct ChurnStats {
    /// Participants currently in a room.
    pub live: AtomicU64,
    /// Successful joins.
    pub joins: AtomicU64,
    /// Join attempts the server refused or that failed.
    pub join_failures: AtomicU64,
    /// Graceful leaves.
    pub leaves: AtomicU64,
    /// Participants dropped without leaving.
    pub drops: AtomicU64,
    /// Screen shares added / removed.
    pub shares_added: AtomicU64,
    /// Screen shares removed before leaving.
    pub shares_removed: AtomicU64,
    /// Stays in which the participant decoded remote video.
    pub stays_with_media: AtomicU64,
    /// Stays in which a remote video track was present for 8 s or more but no remote video
    /// was decoded.
    pub stays_without_media: AtomicU64,
    /// Quarter-second steps of participants in rooms (progress of the client side).
    pub ticks: AtomicU64,
    /// Remote video frames and audio buffers decoded by all participants.
    pub frames: AtomicU64,
}

/// A small seeded generator (SplitMix64): reproducible choices without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform duration in [lo, hi].
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        lo + (hi.saturating_sub(lo)).mul_f64(self.unit())
    }
}

/// Runs every slot until `until`; returns when all participants have left.
pub async fn run(plan: ChurnPlan, until: Instant, stats: Arc<ChurnStats>) {
    let mut tasks = Vec::new();
    for room in 0..plan.rooms {
        for slot in 0..plan.slots {
            let seed = plan.seed ^ ((room as u64) << 32 | slot as u64).wrapping_mul(0x2545_F491);
            let (plan, stats) = (plan.clone(), stats.clone());
            tasks.push(tokio::spawn(async move {
                run_slot(&plan, room, slot, Rng::new(seed), until, &stats).await
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn run_slot(
    plan: &ChurnPlan,
    room: usize,
    slot: usize,
    mut rng: Rng,
    until: Instant,
    stats: &ChurnStats,
) {
    // Stagger the first joins over the first pause.
    tokio::time::sleep(rng.between(Duration::ZERO, plan.max_pause)).await;
    let mut round = 0;
    while Instant::now() + Duration::from_secs(2) < until {
        round += 1;
        let config = ParticipantConfig {
            url: plan.url.clone(),
            room: format!("{}-{room}", plan.room_prefix),
            name: format!("r{room}s{slot}n{round}"),
            audio: true,
            video: true,
            receive: true,
        };
        let p = match Participant::join(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("soak: r{room}s{slot} join failed: {e}");
                stats.join_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        stats.joins.fetch_add(1, Ordering::Relaxed);
        stats.live.fetch_add(1, Ordering::Relaxed);
        let stay = rng.between(plan.stay.0, plan.stay.1);
        let leave_at = (Instant::now() + stay).min(until);
        stay_in_room(&p, plan, &mut rng, leave_at, stats).await;
        if rng.unit() < plan.abrupt_probability {
            drop(p);
            stats.drops.fetch_add(1, Ordering::Relaxed);
        } else {
            p.leave().await;
            stats.leaves.fetch_add(1, Ordering::Relaxed);
        }
        stats.live.fetch_sub(1, Ordering::Relaxed);
        let pause = rng.between(Duration::from_millis(500), plan.max_pause);
        tokio::time::sleep(pause.min(until.saturating_duration_since(Instant::now()))).await;
    }
}

/// Stays until `leave_at`, sharing a screen for part of the stay when the dice say so, and
/// records whether remote video was decoded while others were there.
async fn stay_in_room(
    p: &Participant,
    plan: &ChurnPlan,
    rng: &mut Rng,
    leave_at: Instant,
    stats: &ChurnStats,
) {
    let now = Instant::now();
    let stay = leave_at.saturating_duration_since(now);
    let share = (rng.unit() < plan.share_probability).then(|| {
        let start = now + stay.mul_f64(rng.unit() * 0.5);
        // Some shares are still on when the participant leaves.
        let stop = (rng.unit() < 0.7).then(|| start + stay.mul_f64(0.1 + rng.unit() * 0.4));
        (start, stop)
    });
    let mut share_id: Option<String> = None;
    let mut shared = false;
    // Remote video tracks and when they were first seen; whether any decoded a frame.
    let mut seen: std::collections::BTreeMap<String, Instant> = Default::default();
    let (mut expected_video, mut decoded_video) = (false, false);
    let mut frames: std::collections::BTreeMap<String, u64> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while Instant::now() < leave_at && p.is_connected() {
        tick.tick().await;
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        if let Some((start, stop)) = share {
            if !shared && t >= start {
                shared = true;
                share_id =
                    Some(p.add_video_track(json!({"type": "screensharing", "active": true})));
                stats.shares_added.fetch_add(1, Ordering::Relaxed);
            }
            if let (Some(id), Some(stop)) = (&share_id, stop) {
                if t >= stop {
                    p.remove_track(id);
                    stats.shares_removed.fetch_add(1, Ordering::Relaxed);
                    share_id = None;
                }
            }
        }
        let s = p.snapshot();
        let video = s
            .tracks
            .iter()
            .filter(|(_, t)| t.metadata["type"] != "audio");
        seen.retain(|id, _| s.tracks.contains_key(id));
        for (id, track) in &s.tracks {
            frames.insert(id.clone(), track.frames);
        }
        for (id, track) in video {
            let since = *seen.entry(id.clone()).or_insert(t);
            expected_video |= t - since >= MEDIA_EXPECTED_WITHIN;
            decoded_video |= track.frames > 0;
        }
    }
    stats
        .frames
        .fetch_add(frames.values().sum(), Ordering::Relaxed);
    if decoded_video {
        stats.stays_with_media.fetch_add(1, Ordering::Relaxed);
    } else if expected_video {
        stats.stays_without_media.fetch_add(1, Ordering::Relaxed);
        let s = p.snapshot();
        eprintln!(
            "soak: {} decoded no video from tracks present ≥ {MEDIA_EXPECTED_WITHIN:?}: rounds {}, answers {}, errors {:?}, tracks {:?}",
            p.id,
            s.rounds,
            s.answers,
            s.errors,
            s.tracks.iter().map(|(id, t)| (id, t.metadata["type"].clone(), t.mid.clone(), t.frames)).collect::<Vec<_>>()
        );
    }
}

/// A remote video track present this long should have decoded frames.
const MEDIA_EXPECTED_WITHIN: Duration = Duration::from_secs(8);
