//! The sink pad of `laminaforwarder`: the chain function that fans each packet out to the src
//! pads (rewritten, errors swallowed), sticky events and caps, and the sink pad's queries. The
//! push loop ([`LaminaForwarder::push_plans`]) and the queries serve the layer sinks too
//! (`layer_sink.rs`).

use std::sync::atomic::Ordering;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use smallvec::SmallVec;

use super::imp::{lock, LaminaForwarder, CAT};
use super::pad::Plan;
use super::rewrite::Input;
use super::twcc;

/// Header fields the forwarder needs from an input packet, or `None` if it is not valid RTP.
fn rtp_header(buffer: &gst::BufferRef) -> Option<(u32, u16, u32)> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buffer).ok()?;
    Some((rtp.ssrc(), rtp.seq(), rtp.timestamp()))
}

/// Writes the planned header fields into `buffer` (copy-on-write of the header memory), and
/// the TWCC extension element when the plan asks for one (`twcc_in_id`: the input's TWCC id,
/// 0 = unknown), else removes the input's. The outcome is `None` when the plan asks for none.
fn rewrite_buffer(
    mut buffer: gst::Buffer,
    plan: &Plan,
    twcc_in_id: u8,
) -> Result<(gst::Buffer, Option<twcc::Outcome>), glib::BoolError> {
    let outcome = {
        let buf = buffer.make_mut();
        // Ours alone: a DISCONT from the publisher's path says nothing of the output mapping.
        if plan.discont {
            buf.set_flags(gst::BufferFlags::DISCONT);
        } else {
            buf.unset_flags(gst::BufferFlags::DISCONT);
        }
        let ext_at = {
            let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(buf)?;
            if let Some(pt) = plan.pt {
                rtp.set_payload_type(pt);
            }
            rtp.set_ssrc(plan.ssrc);
            rtp.set_seq(plan.seq);
            rtp.set_timestamp(plan.ts);
            rtp.is_extension()
                .then(|| 12 + 4 * usize::from(rtp.csrc_count()))
        };
        if plan.twcc_ext_id != 0 {
            Some(twcc::apply(buf, ext_at, twcc_in_id, plan.twcc_ext_id))
        } else {
            twcc::remove(buf, ext_at, twcc_in_id);
            None
        }
    };
    Ok((buffer, outcome))
}

/// Subscribers a packet goes to, each with its rewrite plan: on the stack up to 16 (no
/// allocation per packet in rooms of up to 17).
pub(super) type Plans = SmallVec<[(super::LaminaForwarderPad, Plan); 16]>;

impl LaminaForwarder {
    /// `Ok` unless the sink pad itself is flushing (the element is stopping or seeking).
    pub(super) fn upstream_result(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.sinkpad.pad_flags().contains(gst::PadFlags::FLUSHING) {
            Err(gst::FlowError::Flushing)
        } else {
            Ok(gst::FlowSuccess::Ok)
        }
    }

    pub(super) fn sink_chain(
        &self,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some((ssrc, seq, ts)) = rtp_header(&buffer) else {
            self.drop_invalid(&buffer);
            return self.upstream_result();
        };

        let (input_caps, clock_rate, running_time, twcc_in_id, pads) = {
            let state = lock(&self.state);
            let running_time = buffer
                .pts()
                .and_then(|pts| state.segment.to_running_time(pts));
            (
                state.sink_caps.clone(),
                state.clock_rate,
                running_time,
                state.twcc_in_id,
                state.src_pads.clone(),
            )
        };
        let input = Input {
            ssrc,
            seq,
            ts,
            running_time_ns: running_time.map(gst::ClockTime::nseconds),
            clock_rate,
        };

        let plans: Plans = pads
            .iter()
            .filter_map(|pad| {
                let plan = pad.imp().plan(&input, input_caps.as_ref())?;
                Some((pad.clone(), plan))
            })
            .collect();

        // No lock is held from here on.
        self.push_plans(buffer, plans, twcc_in_id);
        self.upstream_result()
    }

    /// Logs an invalid RTP packet (at warning level the first time).
    pub(super) fn drop_invalid(&self, buffer: &gst::Buffer) {
        let first = !std::mem::replace(&mut lock(&self.state).invalid_rtp_logged, true);
        if first {
            gst::warning!(CAT, imp = self, "dropping invalid RTP packet {buffer:?}");
        } else {
            gst::log!(CAT, imp = self, "dropping invalid RTP packet {buffer:?}");
        }
    }

    /// Pushes `buffer`, rewritten per plan, on each planned pad; flow errors are swallowed.
    /// `twcc_in_id` is the TWCC header extension id of the input caps (0 = none). Called without
    /// any lock held.
    pub(super) fn push_plans(&self, buffer: gst::Buffer, plans: Plans, twcc_in_id: u8) {
        let count = plans.len();
        let mut buffer = Some(buffer);
        for (i, (pad, plan)) in plans.into_iter().enumerate() {
            // The last pad gets the input buffer itself, the others a copy.
            let out = if i + 1 == count {
                buffer.take()
            } else {
                buffer.as_ref().map(|b| b.copy())
            };
            let Some(out) = out else { break };
            if let Some(caps) = &plan.caps {
                if pad.current_caps().as_ref() != Some(caps) {
                    // A failure here shows up again as the push result below.
                    pad.push_event(gst::event::Caps::new(caps));
                }
            }
            let out = match rewrite_buffer(out, &plan, twcc_in_id) {
                Ok((out, twcc)) => {
                    if twcc == Some(twcc::Outcome::Unrewritable) {
                        self.stats
                            .twcc_ext_unrewritable
                            .fetch_add(1, Ordering::Relaxed);
                        gst::log!(CAT, obj = pad, "TWCC extension not rewritable: {out:?}");
                    }
                    out
                }
                Err(err) => {
                    gst::warning!(CAT, obj = pad, "cannot rewrite packet: {err}");
                    continue;
                }
            };
            let size = out.size() as u64;
            match pad.push(out) {
                Ok(_) => {
                    self.stats.forwarded_packets.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .forwarded_bytes
                        .fetch_add(size, Ordering::Relaxed);
                }
                Err(err) => self.swallow_flow_error(&pad, err),
            }
        }
    }

    /// A subscriber's flow error never reaches the publisher: log it once per pad and kind.
    pub(super) fn swallow_flow_error(&self, pad: &super::LaminaForwarderPad, err: gst::FlowError) {
        if pad.imp().first_flow_error(err) {
            match err {
                gst::FlowError::Flushing | gst::FlowError::NotLinked => {
                    gst::info!(CAT, obj = pad, "push returned {err:?}, ignored")
                }
                _ => gst::warning!(
                    CAT,
                    obj = pad,
                    "push returned {err:?}; ignored, the publisher and other pads continue"
                ),
            }
        } else {
            gst::log!(CAT, obj = pad, "push returned {err:?}, ignored");
        }
    }

    pub(super) fn sink_event(&self, event: gst::Event) -> bool {
        gst::log!(CAT, imp = self, "sink event {event:?}");
        match event.view() {
            gst::EventView::Caps(ev) => {
                let caps = ev.caps_owned();
                self.set_sink_caps(&caps);
                for pad in self.src_pads().iter() {
                    let event = pad.imp().input_caps_changed(&caps);
                    pad.push_event(event);
                }
                // Subscribers never refuse the publisher's caps.
                return true;
            }
            gst::EventView::Segment(ev) => {
                if let Some(segment) = ev.segment().downcast_ref::<gst::ClockTime>() {
                    lock(&self.state).segment = segment.clone();
                    if is_plain(segment) {
                        // One shared event for every plain segment (see `PLAIN_SEGMENT`).
                        let shared = PLAIN_SEGMENT.clone();
                        for pad in self.src_pads().iter() {
                            pad.push_event(shared.clone());
                        }
                        return true;
                    }
                } else {
                    gst::warning!(CAT, imp = self, "non-TIME segment, running time unknown");
                    lock(&self.state).segment = gst::FormattedSegment::new();
                }
            }
            gst::EventView::FlushStop(_) => {
                lock(&self.state).segment = gst::FormattedSegment::new();
            }
            _ => (),
        }
        for pad in self.src_pads().iter() {
            pad.push_event(event.clone());
        }
        true
    }

    pub(super) fn set_sink_caps(&self, caps: &gst::Caps) {
        let s = caps.structure(0);
        let clock_rate = s
            .and_then(|s| s.get::<i32>("clock-rate").ok())
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0);
        let is_audio = s.and_then(|s| s.get::<&str>("media").ok()) == Some("audio");
        let twcc_in_id = twcc::id_from_caps(caps);
        gst::debug!(CAT, imp = self, "input caps {caps}");
        let mut state = lock(&self.state);
        state.sink_caps = Some(caps.clone());
        state.clock_rate = clock_rate;
        state.is_audio = is_audio;
        state.twcc_in_id = twcc_in_id;
    }

    pub(super) fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            // Answer from the template: a subscriber's PT/SSRC never constrains the publisher.
            gst::QueryViewMut::Caps(q) => {
                let templ = pad.pad_template_caps();
                let caps = match q.filter() {
                    Some(filter) => {
                        filter.intersect_with_mode(&templ, gst::CapsIntersectMode::First)
                    }
                    None => templ,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().is_subset(&pad.pad_template_caps());
                q.set_result(ok);
                true
            }
            gst::QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

/// The plain TIME segment (start 0, base 0, rate 1, no offset) as one event object shared by
/// every forwarder in the process. A subscriber's `rtpfunnel` (inside webrtcbin) pushes the
/// segment of a stream downstream again whenever it takes a packet from another stream than the
/// last one, which in a bundle is nearly every packet; GStreamer stores a sticky event only when
/// it is another object than the one already stored, and pushes on only what it stored. With
/// every forwarded stream carrying this same object, those re-pushes stop at the funnel
/// (17 % of the server's instructions in a room of 4, docs/performance.md §3). Running times
/// are unchanged: the segment is equal to the publisher's.
pub(super) static PLAIN_SEGMENT: std::sync::LazyLock<gst::Event> = std::sync::LazyLock::new(|| {
    gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())
});

/// Whether `segment` maps times as the plain TIME segment does.
pub(super) fn is_plain(segment: &gst::FormattedSegment<gst::ClockTime>) -> bool {
    let plain = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.rate() == 1.0
        && segment.applied_rate() == 1.0
        && segment.start() == plain.start()
        && segment.base() == plain.base()
        && segment.offset() == plain.offset()
        && segment.time() == plain.time()
        && segment.stop() == plain.stop()
        && segment.flags() == plain.flags()
}
