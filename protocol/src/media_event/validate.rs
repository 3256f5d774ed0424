//! The checks applied to what a client sends, after its shape was deserialized: SDP, ICE
//! candidate and metadata sizes, candidate syntax, m-line index range, track ids and simulcast
//! layer names of `setTargetTrackVariant`.

use serde_json::Value;

use super::{bad, ClientEvent, DecodeError};
use super::{MAX_CANDIDATE_BYTES, MAX_METADATA_BYTES, MAX_SDP_BYTES, MAX_TRACK_ID_BYTES};
use crate::sdp::valid_rid;

/// Largest accepted `sdpMLineIndex` + 1.
const MAX_MLINE_INDEX: u32 = 1024;

impl ClientEvent {
    /// Checks the limits of the protocol: metadata of at most [`MAX_METADATA_BYTES`], SDP of
    /// at most [`MAX_SDP_BYTES`], a well-formed candidate line with an IP address and a small
    /// m-line index, and a `setTargetTrackVariant` naming a track id of at most
    /// [`MAX_TRACK_ID_BYTES`] and a variant that is a valid RID ([`valid_rid`]).
    /// [`super::decode`] applies it; a client may call it before sending.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            ClientEvent::Connect { metadata } => check_metadata("connect", metadata),
            ClientEvent::UpdateEndpointMetadata { metadata } => {
                check_metadata("updateEndpointMetadata", metadata)
            }
            ClientEvent::UpdateTrackMetadata { metadata, .. } => {
                check_metadata("updateTrackMetadata", metadata)
            }
            ClientEvent::SdpOffer {
                sdp,
                track_metadata,
                ..
            } => {
                if sdp.len() > MAX_SDP_BYTES {
                    return Err(bad("sdpOffer", "sdp is too large"));
                }
                track_metadata
                    .values()
                    .try_for_each(|m| check_metadata("sdpOffer", m))
            }
            ClientEvent::Candidate {
                candidate,
                sdp_mline_index,
            } => {
                check_candidate(candidate).map_err(|problem| bad("candidate", problem))?;
                if *sdp_mline_index >= MAX_MLINE_INDEX {
                    return Err(bad(
                        "candidate",
                        "sdpMLineIndex must be a small unsigned integer",
                    ));
                }
                Ok(())
            }
            ClientEvent::SetTargetTrackVariant { track_id, variant } => {
                const EVENT: &str = "setTargetTrackVariant";
                if track_id.len() > MAX_TRACK_ID_BYTES {
                    return Err(bad(
                        EVENT,
                        format!("trackId is too long (limit {MAX_TRACK_ID_BYTES} bytes)"),
                    ));
                }
                if !valid_rid(variant) {
                    return Err(bad(
                        EVENT,
                        "variant must be 1 to 16 characters of A-Z, a-z, 0-9, - and _",
                    ));
                }
                Ok(())
            }
            ClientEvent::Disconnect
            | ClientEvent::RenegotiateTracks
            | ClientEvent::TrackEncoding { .. }
            | ClientEvent::Ignored { .. } => Ok(()),
        }
    }
}

/// Checks an ICE candidate line (RFC 8839 section 5.1) so that only well-formed candidates
/// with an IP address reach the ICE agent: no host names (the server never resolves a name a
/// client gives it), no control characters, at most [`MAX_CANDIDATE_BYTES`]. The empty string
/// (end of candidates) passes.
pub(super) fn check_candidate(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Ok(());
    }
    if c.len() > MAX_CANDIDATE_BYTES {
        return Err("candidate is too long");
    }
    if c.chars().any(char::is_control) {
        return Err("candidate contains control characters");
    }
    let body = c
        .strip_prefix("candidate:")
        .ok_or("candidate must start with \"candidate:\"")?;
    let f: Vec<&str> = body.split(' ').filter(|s| !s.is_empty()).collect();
    let [_foundation, component, transport, priority, address, port, typ, kind, ..] = f[..] else {
        return Err(
            "candidate must have foundation, component, transport, priority, address, port and typ",
        );
    };
    let ok = component
        .parse::<u16>()
        .is_ok_and(|c| (1..=256).contains(&c))
        && (transport.eq_ignore_ascii_case("udp") || transport.eq_ignore_ascii_case("tcp"))
        && priority.parse::<u32>().is_ok()
        && port.parse::<u16>().is_ok()
        && typ == "typ"
        && ["host", "srflx", "prflx", "relay"].contains(&kind);
    if !ok {
        return Err("malformed candidate");
    }
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err("candidate address must be an IP address");
    }
    Ok(())
}

/// Metadata of `event` must be at most [`MAX_METADATA_BYTES`] long as JSON.
fn check_metadata(event: &'static str, value: &Value) -> Result<(), DecodeError> {
    if too_large(value) {
        return Err(bad(
            event,
            format!("metadata is too large (limit {MAX_METADATA_BYTES} bytes)"),
        ));
    }
    Ok(())
}

/// True when `value` as JSON text exceeds [`MAX_METADATA_BYTES`] (stops writing at the limit).
fn too_large(value: &Value) -> bool {
    struct Budget(usize);
    impl std::io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or(std::io::ErrorKind::WriteZero)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Budget(MAX_METADATA_BYTES), value).is_err()
}
