//! Hostile RTCP feedback: a participant (Mallory) whose webrtcbin adds crafted generic NACKs
//! (RFC 4585 RTPFB, FMT 1) to the RTCP it sends the server, inside its real DTLS-SRTP session.
//! Each case ends with the fixture's health check (A and B keep decoding each other, a fresh
//! client can join, nothing panicked); `/metrics` shows what the server made of the NACKs, and
//! the publishers' own `rtprtxsend` shows that none of it was passed on to them.
//!
//! How: a buffer probe on the `send_rtcp_src_0` pad of the `rtpbin` inside Mallory's webrtcbin
//! appends the crafted packets to each compound RTCP packet before it is encrypted (for the
//! flood, a thread also sends copies of the last compound to that pad's peer). The sequence
//! numbers come from a probe on `recv_rtp_sink_0`, which sees the decrypted RTP the server
//! sends Mallory.
//!
//! - `nacks_for_an_unknown_ssrc`: NACKs naming a media SSRC the server never sent are ignored:
//!   no retransmission request comes out of them.
//! - `nack_with_a_huge_fci_list`: 297 FCI entries (what fits in 1200 bytes), each with all 16
//!   BLP bits set, i.e. 5049 packets asked for by one RTCP packet.
//! - `nack_flood`: every packet of the last second asked for again in every RTCP packet Mallory
//!   sends, plus 500 extra RTCP packets a second, for 10 s: the per-subscriber budget drops what
//!   is over it (`lamina_downlink_nack_requests_dropped_total`) and A and B keep their frame
//!   rate (within 10 % of the baseline).

#[path = "support/hostile.rs"]
mod hostile;
mod ops_common;
#[path = "support/repair_metrics.rs"]
mod repair_metrics;
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use hostile::{wait_decoding, HostileRoom, ROOM};
use lamina_client::Participant;
use repair_metrics::Repair;

/// Payload type the client offers for VP8 (`lamina_client`'s `VP8_PT`).
const VP8_PT: u8 = 96;
/// RTCP packet type of transport-layer feedback (RTPFB).
const RTPFB: u8 = 205;
/// FMT of a generic NACK.
const GENERIC_NACK: u8 = 1;
/// Bits set in every BLP: the 16 packets after the PID are asked for too.
const ALL_FOLLOWING: u16 = 0xffff;
/// Packets one FCI entry with [`ALL_FOLLOWING`] asks for.
const PER_FCI: u64 = 17;
/// A media SSRC no stream of the room uses (each case checks it is not among those the server
/// sends Mallory).
const UNKNOWN_SSRC: u32 = 0x0bad_f00d;
/// FCI entries of the huge NACK: (1200 bytes − 12 bytes of header) / 4.
const HUGE_FCI: usize = (1200 - 12) / 4;
/// How long the lighter attacks last.
const ATTACK: Duration = Duration::from_secs(4);
/// How long the flood lasts (and the baseline before it).
const FLOOD: Duration = Duration::from_secs(10);
const FLOOD_BASELINE: Duration = Duration::from_secs(5);
/// Interval of the flood thread's extra RTCP packets.
const FLOOD_EXTRA_EVERY: Duration = Duration::from_millis(2);
/// Mallory's regular RTCP interval (`rtcp-min-interval`; 5 s by default, and the client sends
/// early RTCP only when it has feedback): every one of them carries the crafted packets.
const MALLORY_RTCP_INTERVAL: Duration = Duration::from_millis(20);
/// Bound of A's and B's frame-rate change under the flood.
const FLOOD_FPS_CHANGE: f64 = 0.10;

/// An RTCP generic NACK (RFC 4585 §6.2.1): `sender` asks `media` for the packets of `fci`
/// (packet id, bitmask of the 16 packets after it).
fn generic_nack(sender: u32, media: u32, fci: &[(u16, u16)]) -> Vec<u8> {
    let words = 2 + fci.len(); // length field: 32-bit words after the first one
    let mut p = Vec::with_capacity(4 * (words + 1));
    p.push(0x80 | GENERIC_NACK); // V=2, no padding
    p.push(RTPFB);
    p.extend_from_slice(&u16::try_from(words).expect("NACK too long").to_be_bytes());
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    for (pid, blp) in fci {
        p.extend_from_slice(&pid.to_be_bytes());
        p.extend_from_slice(&blp.to_be_bytes());
    }
    p
}

/// `n` FCI entries with [`ALL_FOLLOWING`] that ask for the `n * 17` packets up to `latest`.
fn fci_up_to(latest: u16, n: usize) -> Vec<(u16, u16)> {
    let first = latest.wrapping_sub((n as u64 * PER_FCI - 1) as u16);
    (0..n)
        .map(|i| {
            (
                first.wrapping_add((i as u64 * PER_FCI) as u16),
                ALL_FOLLOWING,
            )
        })
        .collect()
}

/// `(sequence number, SSRC, payload type)` of an RTP packet, if `b` starts like one.
fn rtp_header(b: &[u8]) -> Option<(u16, u32, u8)> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    Some((seq, ssrc, b[1] & 0x7f))
}

/// The pad of `element` whose name starts with `prefix`.
fn pad_named(element: &gst::Element, prefix: &str) -> gst::Pad {
    let pads = element.pads();
    pads.iter()
        .find(|p| p.name().starts_with(prefix))
        .cloned()
        .unwrap_or_else(|| {
            let names: Vec<String> = pads.iter().map(|p| p.name().to_string()).collect();
            panic!("no {prefix}* pad on {}: {names:?}", element.name())
        })
}

/// The `rtpbin` inside `p`'s webrtcbin.
fn rtpbin(p: &Participant) -> gst::Element {
    p.webrtcbin()
        .downcast::<gst::Bin>()
        .expect("webrtcbin is a bin")
        .by_name("rtpbin")
        .expect("webrtcbin has an rtpbin")
}

/// Retransmission requests the `rtprtxsend` elements of `p`'s webrtcbin received (NACKs the
/// server sent `p` as a publisher).
fn rtx_requests_to(p: &Participant) -> u64 {
    let webrtc = p.webrtcbin();
    let Some(bin) = webrtc.downcast_ref::<gst::Bin>() else {
        return 0;
    };
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.type_().name() == "GstRtpRtxSend")
        .map(|e| u64::from(e.property::<u32>("num-rtx-requests")))
        .sum()
}

/// Builds the crafted bytes to add to one outgoing compound RTCP packet, from Mallory's own
/// SSRC (the compound's sender) and the latest sequence number seen per video SSRC.
type Craft = dyn Fn(u32, &BTreeMap<u32, u16>) -> Option<Vec<u8>> + Send + Sync;

/// The misbehaving participant: a real client whose RTCP is tampered with.
struct Mallory {
    p: Participant,
    rtcp_src: gst::Pad,
    /// Video SSRC the server sends Mallory → latest sequence number.
    seen: Arc<Mutex<BTreeMap<u32, u16>>>,
    /// Compound RTCP packets that left with crafted packets in them.
    tampered: Arc<AtomicU64>,
    /// The last tampered compound (what the flood thread repeats).
    last: Arc<Mutex<Option<gst::Buffer>>>,
}

impl Mallory {
    /// Joins the fixture's room (publishing and receiving) and waits until Mallory decodes A
    /// and B and has seen video from the server.
    async fn join(room: &HostileRoom) -> Mallory {
        let p = hostile::participant(&room.server, ROOM, "Mallory").await;
        tokio::join!(
            wait_decoding(&p, &room.a.id, 5),
            wait_decoding(&p, &room.b.id, 5)
        );
        let rtpbin = rtpbin(&p);
        let sessions = rtpbin
            .downcast_ref::<gst::Bin>()
            .expect("rtpbin is a bin")
            .iterate_elements()
            .into_iter()
            .flatten()
            .filter(|e| e.type_().name() == "GstRtpSession");
        for session in sessions {
            let ns = MALLORY_RTCP_INTERVAL.as_nanos() as u64;
            session.set_property("rtcp-min-interval", ns);
        }
        let seen: Arc<Mutex<BTreeMap<u32, u16>>> = Arc::default();
        let s = seen.clone();
        pad_named(&rtpbin, "recv_rtp_sink_").add_probe(
            gst::PadProbeType::BUFFER,
            move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let mut head = [0u8; 12];
                    if b.copy_to_slice(0, &mut head).is_ok() {
                        if let Some((seq, ssrc, pt)) = rtp_header(&head) {
                            if pt == VP8_PT {
                                s.lock().unwrap().insert(ssrc, seq);
                            }
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
        let mallory = Mallory {
            rtcp_src: pad_named(&rtpbin, "send_rtcp_src_"),
            p,
            seen,
            tampered: Arc::default(),
            last: Arc::default(),
        };
        let deadline = Instant::now() + hostile::MEDIA_TIMEOUT;
        while mallory.seen.lock().unwrap().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "Mallory never saw A's and B's video"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        mallory
    }

    /// The video SSRCs the server sends Mallory.
    fn video_ssrcs(&self) -> Vec<u32> {
        self.seen.lock().unwrap().keys().copied().collect()
    }

    /// Adds `craft`'s bytes to every compound RTCP packet Mallory sends, until the returned
    /// probe is removed.
    fn tamper(&self, craft: Box<Craft>) -> gst::PadProbeId {
        let (seen, tampered, last) = (self.seen.clone(), self.tampered.clone(), self.last.clone());
        self.rtcp_src
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data else {
                    return gst::PadProbeReturn::Ok;
                };
                let mut head = [0u8; 8];
                if buffer.copy_to_slice(0, &mut head).is_err() {
                    return gst::PadProbeReturn::Ok;
                }
                let sender = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                let crafted = craft(sender, &seen.lock().unwrap());
                if let Some(bytes) = crafted {
                    buffer
                        .make_mut()
                        .append_memory(gst::Memory::from_mut_slice(bytes));
                    tampered.fetch_add(1, Ordering::Relaxed);
                    *last.lock().unwrap() = Some(buffer.clone());
                }
                gst::PadProbeReturn::Ok
            })
            .expect("probe on send_rtcp_src")
    }

    /// Stops adding crafted packets.
    fn stop_tampering(&self, id: gst::PadProbeId) {
        self.rtcp_src.remove_probe(id);
    }

    /// Sends a copy of the last tampered compound every [`FLOOD_EXTRA_EVERY`] straight to the
    /// RTCP pad's peer (past the probe, into encryption and the network) until `stop`; returns
    /// the thread, which yields how many it sent.
    fn extra_rtcp(&self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
        let peer = self.rtcp_src.peer().expect("send_rtcp_src is linked");
        let last = self.last.clone();
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let copy = last.lock().unwrap().clone();
                if let Some(b) = copy {
                    if peer.chain(b).is_ok() {
                        sent += 1;
                    }
                }
                std::thread::sleep(FLOOD_EXTRA_EVERY);
            }
            sent
        })
    }

    async fn leave(self) {
        self.p.leave().await;
    }
}

/// Decoded video frames of `from` as `p` sees them.
fn video_frames(p: &Participant, from: &str) -> u64 {
    p.snapshot()
        .tracks
        .values()
        .filter(|t| t.endpoint == from && t.metadata["type"] == "camera")
        .map(|t| t.frames)
        .sum()
}

/// A's and B's video frame rates of each other over `d`: (A←B, B←A).
async fn healthy_fps(room: &HostileRoom, d: Duration) -> (f64, f64) {
    let (a0, b0, t0) = (
        video_frames(&room.a, &room.b.id),
        video_frames(&room.b, &room.a.id),
        Instant::now(),
    );
    tokio::time::sleep(d).await;
    let secs = t0.elapsed().as_secs_f64();
    (
        (video_frames(&room.a, &room.b.id) - a0) as f64 / secs,
        (video_frames(&room.b, &room.a.id) - b0) as f64 / secs,
    )
}

fn print_repair(case: &str, r: &Repair) {
    println!(
        "[metric] {case}: downlink nack requests +{}, dropped +{}, not cached {}, retransmitted +{}; uplink nacks +{}",
        r.downlink_requests,
        r.downlink_dropped,
        r.downlink_not_cached
            .map_or_else(|| "n/a".to_owned(), |n| format!("+{n}")),
        r.downlink_retransmitted,
        r.uplink_nacks
    );
}

/// The publishers A and B were asked for at most a handful of retransmissions (what loopback
/// may lose) while Mallory asked for `asked` packets.
fn publishers_untouched(case: &str, before: (u64, u64), room: &HostileRoom, asked: u64) {
    let after = (rtx_requests_to(&room.a), rtx_requests_to(&room.b));
    let passed_on = (after.0 - before.0) + (after.1 - before.1);
    println!("[metric] {case}: retransmission requests reaching A and B = {passed_on}");
    assert!(
        passed_on * 100 <= asked.max(100),
        "{passed_on} of Mallory's {asked} requests reached the publishers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_for_an_unknown_ssrc() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let room = HostileRoom::start(|_| {}).await;
        let m = Mallory::join(&room).await;
        assert!(!m.video_ssrcs().contains(&UNKNOWN_SSRC));
        let fci = fci_up_to(0, 16);
        let publishers = (rtx_requests_to(&room.a), rtx_requests_to(&room.b));
        let before = Repair::scrape(&room.server).await;
        let probe = m.tamper(Box::new(move |sender, _| {
            Some(generic_nack(sender, UNKNOWN_SSRC, &fci))
        }));
        tokio::time::sleep(ATTACK).await;
        let r = Repair::scrape(&room.server).await.since(&before);
        let tampered = m.tampered.load(Ordering::Relaxed);
        let asked = tampered * 16 * PER_FCI;
        println!(
            "[metric] unknown ssrc: {tampered} tampered RTCP packets asking for {asked} packets"
        );
        print_repair("unknown ssrc", &r);
        assert!(tampered >= 10, "the attack barely ran: {tampered} packets");
        // rtpsession ignores feedback for a media SSRC that is not one of its own senders.
        assert!(
            r.downlink_requests * 100 <= asked,
            "{} requests came out of {asked} asked for an unknown SSRC",
            r.downlink_requests
        );
        assert_eq!(r.downlink_dropped, 0, "{r:?}");
        publishers_untouched("unknown ssrc", publishers, &room, asked);
        room.assert_healthy().await;
        m.stop_tampering(probe);
        m.leave().await;
        room.finish().await;
    })
    .await
    .expect("the case finishes within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_a_huge_fci_list() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let room = HostileRoom::start(|_| {}).await;
        let m = Mallory::join(&room).await;
        let target = m.video_ssrcs()[0];
        let publishers = (rtx_requests_to(&room.a), rtx_requests_to(&room.b));
        let before = Repair::scrape(&room.server).await;
        // One huge NACK every 200 ms: each asks for 5049 packets, five times the budget of a
        // second.
        let next = Mutex::new(Instant::now());
        let probe = m.tamper(Box::new(move |sender, seen| {
            let mut next = next.lock().unwrap();
            let now = Instant::now();
            if now < *next {
                return None;
            }
            *next = now + Duration::from_millis(200);
            let latest = *seen.get(&target)?;
            Some(generic_nack(sender, target, &fci_up_to(latest, HUGE_FCI)))
        }));
        tokio::time::sleep(ATTACK).await;
        let r = Repair::scrape(&room.server).await.since(&before);
        let tampered = m.tampered.load(Ordering::Relaxed);
        let asked = tampered * HUGE_FCI as u64 * PER_FCI;
        println!(
            "[metric] huge fci: {tampered} NACKs of {HUGE_FCI} entries ({} bytes) asking for {asked} packets",
            12 + 4 * HUGE_FCI
        );
        print_repair("huge fci", &r);
        assert!(tampered >= 5, "the attack barely ran: {tampered} packets");
        // The server read the whole list (requests reached the budget) and the budget held.
        assert!(
            r.downlink_requests > 0,
            "no request came out of the huge NACKs: {r:?}"
        );
        assert!(r.downlink_dropped > 0, "the budget dropped nothing: {r:?}");
        let served = r.downlink_requests - r.downlink_dropped;
        let budget = 1000.0 * (ATTACK.as_secs_f64() + 2.0);
        assert!(
            (served as f64) <= budget,
            "{served} requests served in {:.0} s",
            ATTACK.as_secs_f64()
        );
        publishers_untouched("huge fci", publishers, &room, asked);
        room.assert_healthy().await;
        m.stop_tampering(probe);
        m.leave().await;
        room.finish().await;
    })
    .await
    .expect("the case finishes within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_flood() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let room = HostileRoom::start_alone(|_| {}).await;
        let m = Mallory::join(&room).await;
        let (base_a, base_b) = healthy_fps(&room, FLOOD_BASELINE).await;
        println!("[metric] flood baseline fps A<-B = {base_a:.1}, B<-A = {base_b:.1}");
        assert!(base_a > 10.0 && base_b > 10.0, "baseline {base_a:.1} / {base_b:.1} fps");
        let publishers = (rtx_requests_to(&room.a), rtx_requests_to(&room.b));
        let before = Repair::scrape(&room.server).await;
        // Every packet of the last second of both videos the server sends Mallory (~20 a second
        // each at 15 fps; 4 entries cover 68), in every RTCP packet.
        let probe = m.tamper(Box::new(|sender, seen| {
            let mut out = Vec::new();
            for (ssrc, latest) in seen {
                out.extend(generic_nack(sender, *ssrc, &fci_up_to(*latest, 4)));
            }
            Some(out)
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let extra = m.extra_rtcp(stop.clone());
        let (flood_a, flood_b) = healthy_fps(&room, FLOOD).await;
        stop.store(true, Ordering::Relaxed);
        let extra = extra.join().expect("flood thread");
        m.stop_tampering(probe);
        let r = Repair::scrape(&room.server).await.since(&before);
        let tampered = m.tampered.load(Ordering::Relaxed) + extra;
        let asked = tampered * 2 * 4 * PER_FCI;
        println!(
            "[metric] flood: {tampered} RTCP packets ({extra} extra) asking for {asked} packets in {} s ({:.0}/s)",
            FLOOD.as_secs(),
            asked as f64 / FLOOD.as_secs_f64()
        );
        print_repair("flood", &r);
        println!("[metric] flood fps A<-B = {flood_a:.1}, B<-A = {flood_b:.1}");
        assert!(extra > 100, "the flood thread sent only {extra} packets");
        // The budget works: most of it was dropped, and what was served stays under it.
        assert!(r.downlink_dropped > 0, "nothing dropped: {r:?}");
        assert!(
            r.downlink_dropped * 2 > r.downlink_requests,
            "the budget dropped too little: {r:?}"
        );
        let served = r.downlink_requests - r.downlink_dropped;
        let budget = 1000.0 * (FLOOD.as_secs_f64() + 2.0);
        assert!(
            (served as f64) <= budget,
            "{served} requests served in {} s",
            FLOOD.as_secs()
        );
        // The others do not notice.
        for (who, before, during) in [("A<-B", base_a, flood_a), ("B<-A", base_b, flood_b)] {
            let change = (during - before) / before;
            println!("[metric] flood {who} change = {:+.1} %", 100.0 * change);
            assert!(
                change.abs() <= FLOOD_FPS_CHANGE,
                "{who}: {before:.1} fps → {during:.1} fps under the flood"
            );
        }
        publishers_untouched("flood", publishers, &room, asked);
        room.assert_healthy().await;
        m.leave().await;
        room.finish().await;
    })
    .await
    .expect("the case finishes within 60 s");
}

/// The crafted packets are valid RTCP: alone (reduced-size) and after a receiver report.
#[test]
fn crafted_nacks_are_valid_rtcp() {
    let check = |bytes: &[u8], reduced: bool| {
        let mut data = bytes.to_vec();
        let len = data.len() as u32;
        // SAFETY: the functions only read `len` bytes of `data`.
        let ok = unsafe {
            if reduced {
                gst_rtp::ffi::gst_rtcp_buffer_validate_data_reduced(data.as_mut_ptr(), len)
            } else {
                gst_rtp::ffi::gst_rtcp_buffer_validate_data(data.as_mut_ptr(), len)
            }
        };
        ok != 0
    };
    let receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 7];
    for fci in [
        fci_up_to(5, 1),
        fci_up_to(65_530, 16),
        fci_up_to(0, HUGE_FCI),
    ] {
        let nack = generic_nack(7, 0x1234_5678, &fci);
        assert!(
            check(&nack, true),
            "reduced-size NACK of {} entries",
            fci.len()
        );
        let compound = [&receiver_report[..], &nack].concat();
        assert!(
            check(&compound, false),
            "compound with {} entries",
            fci.len()
        );
    }
    assert_eq!(generic_nack(7, 8, &fci_up_to(0, HUGE_FCI)).len(), 1200);
    // Consecutive entries tile the range without gaps: 17 packets each, ending at `latest`.
    let fci = fci_up_to(10, 3);
    assert_eq!(fci[0].0, 10u16.wrapping_sub(50));
    assert_eq!(fci[2].0.wrapping_add(16), 10);
}
