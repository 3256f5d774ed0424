//! `GstLaminaVad` implementation. See the module docs in `mod.rs` for the contract.
//!
//! One mutex holds the settings and the detector; it is taken once per packet (the packet is
//! read, nothing is written) and released before a message is posted or a property notified.

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::detector::{Detector, Settings};
use super::{AUDIO_LEVEL_URI, MESSAGE};

/// Debug category `laminavad`.
static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "laminavad",
        gst::DebugColorFlags::empty(),
        Some("Lamina voice activity from RTP audio levels"),
    )
});

const DEFAULT_CLOCK_RATE: u32 = 48_000;

/// Per-stream state.
struct State {
    settings: Settings,
    /// `ext-id` as set (0: from caps).
    ext_id_prop: u8,
    /// The id in use.
    ext_id: u8,
    clock_rate: u32,
    detector: Detector,
    /// Last RTP timestamp and the stream time it maps to, in ms.
    last_ts: Option<u32>,
    at_ms: u64,
    last_level: u8,
}

impl Default for State {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            ext_id_prop: 0,
            ext_id: 0,
            clock_rate: DEFAULT_CLOCK_RATE,
            detector: Detector::new(Settings::default()),
            last_ts: None,
            at_ms: 0,
            last_level: 127,
        }
    }
}

impl State {
    /// Advances the stream time to RTP timestamp `ts` (reordered packets do not go back).
    fn advance(&mut self, ts: u32) -> u64 {
        if let Some(last) = self.last_ts {
            let delta = ts.wrapping_sub(last) as i32;
            if delta > 0 {
                self.at_ms += delta as u64 * 1000 / u64::from(self.clock_rate.max(1));
                self.last_ts = Some(ts);
            }
        } else {
            self.last_ts = Some(ts);
        }
        self.at_ms
    }
}

/// The `laminavad` element.
#[derive(Default)]
pub struct LaminaVad {
    state: Mutex<State>,
}

impl LaminaVad {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads one packet's level and feeds the detector.
    fn inspect(&self, buf: &gst::BufferRef) {
        let change = {
            let mut st = self.lock();
            if st.ext_id == 0 {
                return;
            }
            let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) else {
                return;
            };
            let level = rtp
                .extension_onebyte_header(st.ext_id, 0)
                .or_else(|| rtp.extension_twobytes_header(st.ext_id, 0).map(|(_, d)| d))
                .and_then(|d| d.first().copied());
            let Some(byte) = level else {
                return;
            };
            let level = byte & 0x7f;
            let at = st.advance(rtp.timestamp());
            st.last_level = level;
            st.detector.update(at, level).map(|s| (s, level))
        };
        if let Some((speech, level)) = change {
            self.changed(speech, level);
        }
    }

    fn changed(&self, speech: bool, level: u8) {
        gst::debug!(
            CAT,
            imp = self,
            "{}",
            if speech { "speech" } else { "silence" }
        );
        let s = gst::Structure::builder(MESSAGE)
            .field("speech", speech)
            .field("level", u32::from(level))
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        self.obj().notify("speaking");
    }
}

/// The audio-level id named by an `extmap-<id>` field of `caps`.
fn ext_id_from_caps(caps: &gst::CapsRef) -> u8 {
    let Some(s) = caps.structure(0) else {
        return 0;
    };
    s.iter()
        .find_map(|(name, value)| {
            let id = name.strip_prefix("extmap-")?.parse::<u8>().ok()?;
            // `uri`, or `<direction, uri, attributes>`.
            let matches = value.get::<&str>().is_ok_and(|u| u == AUDIO_LEVEL_URI)
                || value.get::<gst::Array>().is_ok_and(|a| {
                    a.as_slice()
                        .get(1)
                        .is_some_and(|v| v.get::<&str>().is_ok_and(|u| u == AUDIO_LEVEL_URI))
                });
            matches.then_some(id)
        })
        .unwrap_or(0)
}

#[glib::object_subclass]
impl ObjectSubclass for LaminaVad {
    const NAME: &'static str = "GstLaminaVad";
    type Type = super::LaminaVad;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for LaminaVad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecUInt::builder("ext-id")
                    .nick("Extension id")
                    .blurb("One-byte header extension id of the audio level (0: from the caps' extmap-<id>)")
                    .maximum(255)
                    .build(),
                glib::ParamSpecUInt::builder("threshold")
                    .nick("Threshold")
                    .blurb("Level (-dBov) at or under which a packet is voice")
                    .maximum(127)
                    .default_value(u32::from(d.threshold))
                    .build(),
                glib::ParamSpecUInt::builder("speech-ms")
                    .nick("Speech after")
                    .blurb("Voice must last this long (ms) to be speech")
                    .maximum(10_000)
                    .default_value(d.speech_ms as u32)
                    .build(),
                glib::ParamSpecUInt::builder("silence-ms")
                    .nick("Silence after")
                    .blurb("Speech ends after this long (ms) without voice")
                    .maximum(60_000)
                    .default_value(d.silence_ms as u32)
                    .build(),
                glib::ParamSpecBoolean::builder("speaking")
                    .nick("Speaking")
                    .blurb("Whether the stream is in speech")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Packets are only read.
        self.obj().set_passthrough(true);
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut st = self.lock();
        let v = value.get::<u32>().unwrap_or(0);
        match pspec.name() {
            "ext-id" => {
                st.ext_id_prop = v.min(255) as u8;
                if v != 0 {
                    st.ext_id = st.ext_id_prop;
                }
            }
            "threshold" => st.settings.threshold = v.min(127) as u8,
            "speech-ms" => st.settings.speech_ms = u64::from(v),
            "silence-ms" => st.settings.silence_ms = u64::from(v),
            _ => return,
        }
        let settings = st.settings;
        st.detector.set_settings(settings);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let st = self.lock();
        match pspec.name() {
            "ext-id" => u32::from(st.ext_id_prop).to_value(),
            "threshold" => u32::from(st.settings.threshold).to_value(),
            "speech-ms" => (st.settings.speech_ms as u32).to_value(),
            "silence-ms" => (st.settings.silence_ms as u32).to_value(),
            "speaking" => st.detector.speaking().to_value(),
            _ => unreachable!("no other property"),
        }
    }
}

impl GstObjectImpl for LaminaVad {}

impl ElementImpl for LaminaVad {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Lamina voice activity",
                "Filter/Network/RTP",
                "Posts speech/silence changes of an RTP audio stream from its RFC 6464 audio levels, without decoding",
                "Lamina",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("application/x-rtp").build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for LaminaVad {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let mut st = self.lock();
        if st.ext_id_prop == 0 {
            st.ext_id = ext_id_from_caps(incaps);
        }
        st.clock_rate = incaps
            .structure(0)
            .and_then(|s| s.get::<i32>("clock-rate").ok())
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(DEFAULT_CLOCK_RATE);
        gst::debug!(
            CAT,
            imp = self,
            "audio level extension id {}, clock rate {}",
            st.ext_id,
            st.clock_rate
        );
        Ok(())
    }

    fn transform_ip_passthrough(
        &self,
        buf: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.inspect(buf);
        Ok(gst::FlowSuccess::Ok)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.inspect(buf);
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if matches!(
            event.view(),
            gst::EventView::Eos(_) | gst::EventView::FlushStop(_)
        ) {
            let change = {
                let mut st = self.lock();
                st.last_ts = None;
                let level = st.last_level;
                st.detector.reset().map(|s| (s, level))
            };
            if let Some((speech, level)) = change {
                self.changed(speech, level);
            }
        }
        self.parent_sink_event(event)
    }
}
