//! The OpenSSL build of libsrtp2 (`scripts/srtp.sh`, run by `scripts/setup.sh`) replaces the
//! system's in a process that chooses it before GStreamer loads the `srtp` plugin, and SRTP
//! through it round-trips: RTP encrypted by `srtpenc` and decrypted by `srtpdec` comes back
//! byte for byte.
//! Its own test binary: no other test may load a libsrtp2 first.

use std::path::Path;

use gst::prelude::*;
use lamina_pipelines::srtp_library::{
    mapped_paths, use_library, SrtpLibrary, SrtpLibraryError, DEFAULT_PATH,
};

/// RTP packets sent through `srtpenc ! srtpdec`.
const PACKETS: u16 = 50;

/// An RTP packet (PT 96, SSRC 1) with a 1 000-byte payload that differs per packet.
fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend((0..1000u32).map(|i| (i as u8) ^ (seq as u8)));
    p
}

/// Packets as bytes, in order.
type Packets = Vec<Vec<u8>>;

/// Sends [`PACKETS`] packets through `appsrc ! srtpenc ! srtpdec ! appsink`: what was sent,
/// what srtpdec received (encrypted) and what came out of it.
fn srtp_round_trip() -> (Packets, Packets, Packets) {
    let key = "01".repeat(30);
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=in format=time caps=application/x-rtp,media=video,clock-rate=90000,\
         encoding-name=VP8,payload=96,ssrc=(uint)1 \
         ! srtpenc key={key} ! srtpdec name=dec ! appsink name=out sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let by_name = |name: &str| pipeline.by_name(name).unwrap();
    let input = by_name("in").downcast::<gst_app::AppSrc>().unwrap();
    let out = by_name("out").downcast::<gst_app::AppSink>().unwrap();
    let encrypted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = encrypted.clone();
    by_name("dec").static_pad("rtp_sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            if let Some(buffer) = info.buffer() {
                seen.lock()
                    .unwrap()
                    .push(buffer.map_readable().unwrap().to_vec());
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let sent: Vec<Vec<u8>> = (0..PACKETS).map(rtp_packet).collect();
    for (i, packet) in sent.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(packet.clone());
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        input.push_buffer(buffer).unwrap();
    }
    input.end_of_stream().unwrap();
    let mut decrypted = Vec::new();
    while let Ok(sample) = out.pull_sample() {
        decrypted.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    assert!(out.is_eos(), "the pipeline stopped before EOS");
    pipeline.set_state(gst::State::Null).unwrap();
    let encrypted = encrypted.lock().unwrap().clone();
    (sent, encrypted, decrypted)
}

#[test]
fn openssl_build_replaces_the_system_libsrtp2_and_round_trips() {
    let path = Path::new(DEFAULT_PATH);
    assert!(
        path.exists(),
        "{DEFAULT_PATH} is missing: scripts/setup.sh builds it (scripts/srtp.sh)"
    );
    assert!(mapped_paths().is_empty(), "no libsrtp2 before the choice");
    assert_eq!(use_library(None), Ok(SrtpLibrary::System));
    assert_eq!(
        use_library(Some(Path::new("/nonexistent/libsrtp2.so.1"))),
        Ok(SrtpLibrary::System)
    );
    let junk = std::env::temp_dir().join(format!("lamina-not-a-library-{}", std::process::id()));
    std::fs::write(&junk, b"not an ELF file").unwrap();
    let refused = use_library(Some(&junk));
    std::fs::remove_file(&junk).unwrap();
    match refused {
        Err(SrtpLibraryError::Load { path: p, reason }) => {
            assert_eq!(p, junk);
            assert!(!reason.is_empty());
        }
        other => panic!("a file that is not a library must be refused, got {other:?}"),
    }
    assert!(
        mapped_paths().is_empty(),
        "nothing loaded by the failed attempts"
    );
    assert_eq!(
        use_library(Some(path)),
        Ok(SrtpLibrary::Loaded(path.into()))
    );
    // Once loaded, a later call (another server in the same process) gets the same answer.
    assert_eq!(
        use_library(Some(Path::new("/nonexistent"))),
        Ok(SrtpLibrary::Loaded(path.into()))
    );
    assert_eq!(mapped_paths(), vec![path.to_path_buf()]);

    gst::init().unwrap();
    let (sent, encrypted, decrypted) = srtp_round_trip();
    assert_eq!(decrypted, sent, "srtpdec gives back what srtpenc was given");
    for (plain, secret) in sent.iter().zip(&encrypted) {
        assert_eq!(secret.len(), plain.len() + 10, "HMAC-SHA1-80 tag appended");
        assert_eq!(
            secret[..12],
            plain[..12],
            "the RTP header stays in the clear"
        );
        assert_ne!(
            secret[12..plain.len()],
            plain[12..],
            "the payload is encrypted"
        );
    }
    // The srtp plugin bound to the build loaded above: the system's copy was never mapped.
    assert_eq!(mapped_paths(), vec![path.to_path_buf()]);
}
