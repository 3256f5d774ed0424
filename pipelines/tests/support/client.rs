//! A webrtcbin test client that behaves like the Membrane browser client: max-bundle, sendonly
//! transceivers for its own camera/microphone, recvonly transceivers added round by round, it
//! always offers, and it can restart ICE (new ufrag) on later rounds.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_webrtc::prelude::*;
use gst_webrtc::WebRTCRTPTransceiverDirection as Dir;

pub const TWCC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

#[link(name = "nice")]
unsafe extern "C" {
    fn nice_agent_restart_stream(
        agent: *mut glib::gobject_ffi::GObject,
        stream_id: u32,
    ) -> glib::ffi::gboolean;
}

/// What arrived on one receiving m-line.
#[derive(Debug, Default, Clone)]
pub struct MlineStats {
    pub video: bool,
    pub buffers: u64,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
    pub max_gap: Duration,
}

type Stats = Arc<Mutex<BTreeMap<u32, MlineStats>>>;

/// One m-line of the client's last offer.
#[derive(Debug, Clone)]
pub struct OfferedMline {
    pub mline: u32,
    pub mid: String,
    pub video: bool,
    pub sendonly: bool,
    pub recvonly: bool,
}

pub struct Client {
    pub name: String,
    pub pipeline: gst::Pipeline,
    pub webrtc: gst::Element,
    cand_rx: Receiver<(u32, String)>,
    /// Our own candidates seen so far (re-trickled after an ICE restart, as a new generation).
    pub own_candidates: Vec<(u32, String)>,
    pub stats: Stats,
    pub nice: glib::Object,
    restarts: u32,
    screen: Option<(gst::Element, gst::Pad)>,
}

fn wait_promise(webrtc: &gst::Element, signal: &str, arg: &glib::Value) -> Option<gst::Structure> {
    let promise = gst::Promise::new();
    webrtc.emit_by_name::<()>(signal, &[arg, &promise]);
    assert_eq!(promise.wait(), gst::PromiseResult::Replied, "{signal}");
    promise.get_reply().map(|s| s.to_owned())
}

impl Client {
    /// A client; `publish` adds a live 320x240@15 VP8 camera and an Opus microphone.
    pub fn new(name: &str, publish: bool) -> Self {
        let pipeline = gst::Pipeline::with_name(&format!("client-{name}"));
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", 50u32)
            .build()
            .unwrap();
        pipeline.add(&webrtc).unwrap();
        let ice = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
        ice.emit_add_local_ip_address("127.0.0.1");
        let nice = ice.property::<glib::Object>("agent");

        let mut sinks = Vec::new();
        if publish {
            let video = gst::parse::bin_from_description(
                "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! \
                 vp8enc deadline=1 keyframe-max-dist=2000 target-bitrate=200000 ! rtpvp8pay pt=96 mtu=1200",
                true,
            )
            .unwrap();
            let audio = gst::parse::bin_from_description(
                "audiotestsrc is-live=true wave=ticks ! opusenc ! rtpopuspay pt=111",
                true,
            )
            .unwrap();
            let vcaps = gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "VP8")
                .field("clock-rate", 90000i32)
                .field("payload", 96i32)
                .field("rtcp-fb-nack-pli", true)
                .field("rtcp-fb-ccm-fir", true)
                .build();
            let acaps = gst::Caps::builder("application/x-rtp")
                .field("media", "audio")
                .field("encoding-name", "OPUS")
                .field("clock-rate", 48000i32)
                .field("encoding-params", "2")
                .field("payload", 111i32)
                .field("extmap-4", TWCC)
                .build();
            for (i, (bin, caps)) in [(audio, acaps), (video, vcaps)].into_iter().enumerate() {
                pipeline.add(&bin).unwrap();
                let sink = webrtc.request_pad_simple(&format!("sink_{i}")).unwrap();
                let tr = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
                tr.set_direction(Dir::Sendonly);
                tr.set_codec_preferences(Some(&caps));
                bin.static_pad("src").unwrap().link(&sink).unwrap();
                sinks.push(sink);
            }
        }

        let (cand_tx, cand_rx) = mpsc::channel();
        let cand_tx = Mutex::new(cand_tx);
        webrtc.connect("on-ice-candidate", false, move |v| {
            let mline = v[1].get::<u32>().unwrap();
            let c = v[2].get::<String>().unwrap();
            let _ = cand_tx.lock().unwrap().send((mline, c));
            None
        });

        let stats: Stats = Arc::default();
        let st = stats.clone();
        webrtc.connect_pad_added(move |w, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let mline = pad
                .property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver")
                .mlineindex();
            let caps = pad.current_caps().unwrap();
            let video = caps.structure(0).unwrap().get::<&str>("media").unwrap() == "video";
            let pipeline = w.parent().unwrap().downcast::<gst::Bin>().unwrap();
            let desc = if video {
                "rtpvp8depay ! vp8dec ! appsink name=sink sync=false"
            } else {
                "appsink name=sink sync=false"
            };
            let bin = gst::parse::bin_from_description(desc, true).unwrap();
            let appsink = bin
                .by_name("sink")
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            st.lock().unwrap().entry(mline).or_default().video = video;
            let st2 = st.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let _ = s.pull_sample();
                        let now = Instant::now();
                        let mut map = st2.lock().unwrap();
                        let e = map.entry(mline).or_default();
                        e.buffers += 1;
                        e.first_at.get_or_insert(now);
                        if let Some(last) = e.last_at {
                            e.max_gap = e.max_gap.max(now - last);
                        }
                        e.last_at = Some(now);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            pipeline.add(&bin).unwrap();
            bin.sync_state_with_parent().unwrap();
            pad.link(&bin.static_pad("sink").unwrap()).unwrap();
        });

        pipeline.set_state(gst::State::Playing).unwrap();
        // Like a browser, offer only once the tracks are live, so that the offer announces
        // their SSRCs (a=ssrc), which the server uses to map streams to m-lines.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sinks.iter().any(|p| p.current_caps().is_none()) {
            assert!(
                Instant::now() < deadline,
                "client {name}: no caps on its sources"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            name: name.to_owned(),
            pipeline,
            webrtc,
            cand_rx,
            own_candidates: Vec::new(),
            stats,
            nice,
            restarts: 0,
            screen: None,
        }
    }

    /// Starts a screen share: one more sendonly VP8 m-line (on the next offer).
    pub fn add_screen(&mut self) {
        let bin = gst::parse::bin_from_description(
            "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=10/1 ! \
             vp8enc deadline=1 keyframe-max-dist=2000 ! rtpvp8pay pt=96 mtu=1200",
            true,
        )
        .unwrap();
        self.pipeline.add(&bin).unwrap();
        let sink = self.webrtc.request_pad_simple("sink_%u").unwrap();
        let tr = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        tr.set_direction(Dir::Sendonly);
        tr.set_codec_preferences(Some(
            &gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "VP8")
                .field("clock-rate", 90000i32)
                .field("payload", 96i32)
                .field("rtcp-fb-nack-pli", true)
                .build(),
        ));
        bin.static_pad("src").unwrap().link(&sink).unwrap();
        bin.sync_state_with_parent().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.current_caps().is_none() {
            assert!(Instant::now() < deadline, "screen source has no caps");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.screen = Some((bin.upcast(), sink));
    }

    /// Stops the screen share like `removeTrack`: the sender stops, the m-line goes inactive.
    pub fn remove_screen(&mut self) {
        let (bin, sink) = self.screen.take().unwrap();
        let tr = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        tr.set_direction(Dir::Inactive);
        let src = bin.static_pad("src").unwrap();
        let _ = src.unlink(&sink);
        bin.set_state(gst::State::Null).unwrap();
        self.pipeline.remove(&bin).unwrap();
    }

    /// Adds a recvonly transceiver (VP8 PT 100 / Opus PT 101: deliberately not the publishers'
    /// PTs, so the server must rewrite them).
    pub fn add_recv(&self, video: bool) {
        let caps = if video {
            gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "VP8")
                .field("clock-rate", 90000i32)
                .field("payload", 100i32)
                .field("rtcp-fb-nack-pli", true)
                .build()
        } else {
            gst::Caps::builder("application/x-rtp")
                .field("media", "audio")
                .field("encoding-name", "OPUS")
                .field("clock-rate", 48000i32)
                .field("encoding-params", "2")
                .field("payload", 101i32)
                .build()
        };
        self.webrtc
            .emit_by_name::<gst_webrtc::WebRTCRTPTransceiver>(
                "add-transceiver",
                &[&Dir::Recvonly, &caps],
            );
    }

    /// Creates the offer and sets it locally. With `restart`, does what a browser's
    /// `restartIce()` does: libnice restarts the stream (remote candidates dropped) and the
    /// offer carries fresh ice-ufrag/pwd, which set-local-description applies to libnice.
    pub fn create_offer(&mut self, restart: bool) -> String {
        let reply = wait_promise(
            &self.webrtc,
            "create-offer",
            &None::<gst::Structure>.to_value(),
        )
        .unwrap();
        let offer = reply
            .get::<gst_webrtc::WebRTCSessionDescription>("offer")
            .unwrap();
        let mut text = offer.sdp().as_text().unwrap();
        if restart {
            self.restarts += 1;
            let ptr: *mut glib::gobject_ffi::GObject = self.nice.as_ptr() as *mut _;
            // SAFETY: a live NiceAgent we hold a reference to.
            assert!(unsafe { nice_agent_restart_stream(ptr, 1) } != 0);
            let ufrag = format!("r{}{}", self.restarts, &self.name);
            let pwd = format!("restartpassword{:08}{}", self.restarts, self.name);
            text = text
                .lines()
                .map(|l| {
                    if l.starts_with("a=ice-ufrag:") {
                        format!("a=ice-ufrag:{ufrag}")
                    } else if l.starts_with("a=ice-pwd:") {
                        format!("a=ice-pwd:{pwd}")
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n")
                + "\r\n";
        }
        let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap();
        let desc = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
        wait_promise(&self.webrtc, "set-local-description", &desc.to_value());
        text
    }

    /// Applies the server's answer.
    pub fn set_answer(&mut self, sdp: &str) {
        let sdp = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).unwrap();
        let desc =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, sdp);
        wait_promise(&self.webrtc, "set-remote-description", &desc.to_value());
    }

    pub fn add_candidate(&mut self, mline: u32, cand: &str) {
        self.webrtc
            .emit_by_name::<()>("add-ice-candidate", &[&mline, &cand]);
    }

    /// New own candidates since the last call.
    pub fn take_candidates(&mut self) -> Vec<(u32, String)> {
        let new: Vec<_> = self.cand_rx.try_iter().collect();
        self.own_candidates.extend(new.iter().cloned());
        new
    }

    pub fn stats(&self, mline: u32) -> MlineStats {
        self.stats
            .lock()
            .unwrap()
            .get(&mline)
            .cloned()
            .unwrap_or_default()
    }

    pub fn reset_gaps(&self) {
        for s in self.stats.lock().unwrap().values_mut() {
            s.max_gap = Duration::ZERO;
        }
    }

    /// The last local description's m-lines.
    pub fn offered(offer: &str) -> Vec<OfferedMline> {
        let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes()).unwrap();
        sdp.medias()
            .enumerate()
            .map(|(i, m)| {
                let has = |k: &str| m.attributes().any(|a| a.key() == k);
                OfferedMline {
                    mline: i as u32,
                    mid: m.attribute_val("mid").unwrap_or_default().to_owned(),
                    video: m.media() == Some("video"),
                    sendonly: has("sendonly"),
                    recvonly: has("recvonly"),
                }
            })
            .collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
