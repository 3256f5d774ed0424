//! The sending side of a bench peer: its tracks ([`TxTrack`], one per simulcast layer),
//! bound to their m-lines after negotiation, and the pre-encoded loop played on them (a
//! keyframe request makes a video track jump to the next keyframe).

use std::sync::Arc;
use std::time::Instant;

use str0m::media::{Mid, Rid};
use str0m::rtp::{RtpWrite, SeqNo};

use super::Driver;
use crate::media::{self, Frame};
use crate::metrics::lock;
use crate::rtp;

/// A sending track (or one simulcast layer of one): where it is in the loop and its RTP state.
pub(super) struct TxTrack {
    pub(super) mid: Mid,
    /// The simulcast layer's RID (none for a single stream).
    pub(super) rid: Option<Rid>,
    /// Index of the layer in [`media::RIDS`] (`h` for a single stream).
    pub(super) layer: u8,
    /// The loop it plays (video: the layer's).
    pub(super) frames: Arc<Vec<Frame>>,
    /// Sends on every `every`-th video tick.
    pub(super) every: u32,
    pub(super) seq: u64,
    pub(super) pos: usize,
    pub(super) picture_id: u16,
    pub(super) want_key: bool,
    pub(super) t0: Instant,
    pub(super) ts0: u32,
}

impl Driver {
    /// Spreads the loop position and picture ids of this publisher.
    pub(super) fn bind_tracks(&mut self) {
        let Some(p) = &self.publish else { return };
        for v in self.video.iter_mut().filter(|v| v.picture_id == 0) {
            // Layers below the top one get picture-id ranges of their own.
            let layer = if v.rid.is_some() {
                u32::from(2 - v.layer)
            } else {
                0
            };
            v.picture_id = ((p.index * 509 + layer * 10_000) % 32768) as u16 | 1;
        }
        if let Some(a) = self.audio.as_mut().filter(|a| a.pos == 0) {
            a.pos = (p.index as usize * 37) % p.media.audio.len().max(1);
        }
    }

    pub(super) fn pt(&self, mid: Mid) -> Option<str0m::media::Pt> {
        self.rtc
            .media(mid)
            .and_then(|m| m.remote_pts().first().copied())
    }

    pub(super) fn send_video(&mut self) {
        if self.publish.is_none() {
            return;
        }
        let tick = self.video_ticks;
        self.video_ticks += 1;
        let mut tracks = std::mem::take(&mut self.video);
        for v in tracks
            .iter_mut()
            .filter(|v| tick.is_multiple_of(u64::from(v.every.max(1))))
        {
            self.send_video_frame(v);
        }
        self.video = tracks;
        if self.sent_keys.len() > 4096 {
            self.sent_keys.clear();
        }
    }

    /// Sends the next frame of one video track (or simulcast layer).
    pub(super) fn send_video_frame(&mut self, v: &mut TxTrack) {
        let Some(pt) = self.pt(v.mid) else {
            return;
        };
        let now = Instant::now();
        if v.want_key {
            v.pos = media::next_keyframe(&v.frames, v.pos);
            v.want_key = false;
            lock(&self.stats).keyframe_sent(now);
        }
        let ts = v
            .ts0
            .wrapping_add(((now - v.t0).as_micros() * 9 / 100) as u32);
        let frame = &v.frames[v.pos];
        // Simulcast layers tag their packets with the publisher (see `rtp::payload_key`).
        let tag = v.rid.and(self.publish.as_ref()).map(|p| p.index as u8);
        let payloads = rtp::vp8_packets(&frame.data, v.picture_id, tag);
        let last = payloads.len() - 1;
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(v.mid, v.rid) {
            let ssrc = *tx.ssrc();
            let mut st = lock(&self.stats);
            for (i, payload) in payloads.into_iter().enumerate() {
                v.seq += 1;
                self.sent_keys
                    .insert((ssrc, v.seq as u16), (rtp::payload_key(&payload), v.layer));
                let seq: SeqNo = v.seq.into();
                tx.write_rtp(
                    RtpWrite::new(pt, seq, ts, now, payload)
                        .marker(i == last)
                        .nackable(true),
                );
                st.tx_packets += 1;
                if v.rid.is_some() {
                    st.tx_layers[usize::from(v.layer)] += 1;
                }
            }
        }
        v.pos = (v.pos + 1) % v.frames.len();
        v.picture_id = (v.picture_id + 1) & 0x7fff;
    }

    pub(super) fn send_audio(&mut self) {
        let Some(p) = self.publish.clone() else {
            return;
        };
        let Some(mut a) = self.audio.take() else {
            return;
        };
        if let Some(pt) = self.pt(a.mid) {
            let now = Instant::now();
            let ts = a
                .ts0
                .wrapping_add(((now - a.t0).as_micros() * 48 / 1000) as u32);
            let payload = p.media.audio[a.pos].data.to_vec();
            let mut api = self.rtc.direct_api();
            if let Some(tx) = api.stream_tx_by_mid(a.mid, None) {
                a.seq += 1;
                let seq: SeqNo = a.seq.into();
                tx.write_rtp(RtpWrite::new(pt, seq, ts, now, payload).marker(false));
                let mut st = lock(&self.stats);
                st.tx_packets += 1;
                st.tx_audio += 1;
            }
            a.pos = (a.pos + 1) % p.media.audio.len();
        }
        self.audio = Some(a);
    }
}
