//! The receiving side of a bench peer: str0m's events (connection state, keyframe requests,
//! received RTP counted per stream), datagrams in (through the simulated loss and latency), and
//! the repair the server negotiated.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::media::MediaKind;
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Event, IceConnectionState, Input};

use super::Driver;
use crate::loss::{self, Repair};
use crate::metrics::{lock, RxStream};
use crate::rtp;

impl Driver {
    pub(super) fn event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                lock(&self.stats).connected.get_or_insert(Instant::now());
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                tracing::debug!("peer ICE disconnected");
            }
            Event::KeyframeRequest(r) => {
                lock(&self.stats).keyframe_requested(Instant::now());
                // A simulcast layer's request names its RID; one without asks every layer.
                for v in self
                    .video
                    .iter_mut()
                    .filter(|v| v.mid == r.mid && (r.rid.is_none() || v.rid == r.rid))
                {
                    v.want_key = true;
                }
            }
            Event::MediaIngressStats(s) => {
                self.nacks.insert(s.mid, s.nacks);
                lock(&self.stats).nacks_sent = self.nacks.values().sum();
            }
            Event::RtpPacket(p) => {
                let ssrc = *p.header.ssrc;
                let (video, negotiated) = match self.rx_video.get(&ssrc) {
                    Some(&video) => (video, None),
                    None => self.first_packet(p.header.ssrc),
                };
                if p.payload.is_empty() {
                    return;
                }
                let key_start = video && rtp::vp8_keyframe_start(&p.payload);
                let mut st = lock(&self.stats);
                let s = st.rx.entry(ssrc).or_insert_with(|| RxStream {
                    video,
                    negotiated: negotiated.unwrap_or_default(),
                    ..Default::default()
                });
                if self.dropper.is_some() {
                    let via_rtx = self.datagram_ssrc.is_some_and(|d| d != ssrc);
                    s.repair.on_arrival(*p.seq_no as u16, p.timestamp, via_rtx);
                }
                let fresh = s.on_packet(
                    *p.seq_no,
                    p.payload.len(),
                    p.header.marker,
                    key_start,
                    p.timestamp,
                );
                if fresh && video && self.shared.is_measuring() {
                    if let Some((sent, layer)) = self.shared.sends.get(rtp::payload_key(&p.payload))
                    {
                        st.add_delay(p.timestamp.saturating_duration_since(sent));
                        st.rx_layers[usize::from(layer)] += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Settles a newly seen receive stream: whether it is video and, for video, str0m's NACKs
    /// switched on exactly when its m-line negotiated generic NACK or RTX (str0m alone keys
    /// them on RTX only).
    pub(super) fn first_packet(&mut self, ssrc: Ssrc) -> (bool, Option<Repair>) {
        let Some(mid) = self.rtc.direct_api().stream_rx(&ssrc).map(|s| s.mid()) else {
            return (false, None);
        };
        let video = self
            .rtc
            .media(mid)
            .is_some_and(|m| m.kind() == MediaKind::Video);
        self.rx_video.insert(*ssrc, video);
        let negotiated = self
            .negotiated
            .get(&mid.to_string())
            .copied()
            .unwrap_or_default();
        if video {
            let mut api = self.rtc.direct_api();
            if let Some(s) = api.stream_rx(&ssrc) {
                s.suppress_nack(!(negotiated.nack || negotiated.rtx));
                let (rtx, rid) = (s.rtx(), s.rid());
                // Declaring the stream again makes str0m re-check whether any stream NACKs.
                api.expect_stream_rx(ssrc, rtx, mid, rid);
            }
        }
        (video, Some(negotiated))
    }

    /// Hands a received datagram to str0m, unless the simulated loss drops it.
    pub(super) fn receive(&mut self, data: &[u8], source: SocketAddr, now: Instant) {
        if rtp::is_rtcp(data) {
            lock(&self.stats).rtcp_rx += 1;
        }
        let ids = rtp::srtp_ids(data);
        self.datagram_ssrc = ids.map(|(ssrc, _)| ssrc);
        if ids.is_some_and(|(ssrc, seq)| self.lose(ssrc, seq, now)) {
            return;
        }
        if let Ok(contents) = data.try_into() {
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            if self.rtc.accepts(&input) {
                let _ = self.rtc.handle_input(input);
            }
        }
    }

    /// Whether to drop a received datagram: the simulated downlink loss of video RTP (RTX
    /// answers, audio, RTCP and the first packet of a stream are never dropped).
    pub(super) fn lose(&mut self, ssrc: u32, seq: u16, now: Instant) -> bool {
        let Some(d) = self.dropper.as_mut() else {
            return false;
        };
        let mut st = lock(&self.stats);
        let Some(s) = st.rx.get_mut(&ssrc).filter(|s| s.video) else {
            return false;
        };
        if !d.drop_next() {
            return false;
        }
        s.repair.on_drop(seq, now, self.shared.is_measuring());
        true
    }

    /// Remembers what the server's SDP negotiated for repair on each m-line.
    pub(super) fn note_repair(&mut self, sdp: &str) {
        self.negotiated.extend(loss::negotiated_repair(sdp));
    }
}
