//! DTLS peer authentication: the certificate a peer presents in the DTLS handshake must match
//! the `a=fingerprint` of its offer (RFC 8842 section 5, RFC 8122).
//!
//! webrtcbin 1.22 does not check this itself (its `dtlsdec` accepts any certificate), so a
//! peer whose offer carries someone else's fingerprint would get media flowing. The media
//! thread checks on every transition to `connected`, before any link to the peer opens, and
//! removes the peer (`PeerFailed`) on a mismatch.

use gst::prelude::*;

/// A fingerprint from an offer: hash function and digest bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// `sha-1`, `sha-256`, `sha-384` or `sha-512` (lower case).
    pub hash: String,
    /// The digest.
    pub digest: Vec<u8>,
}

fn checksum_type(hash: &str) -> Option<glib::ChecksumType> {
    match hash {
        "sha-1" => Some(glib::ChecksumType::Sha1),
        "sha-256" => Some(glib::ChecksumType::Sha256),
        "sha-384" => Some(glib::ChecksumType::Sha384),
        "sha-512" => Some(glib::ChecksumType::Sha512),
        _ => None,
    }
}

/// Parses an `a=fingerprint` value (`sha-256 AB:CD:…`); `None` for unknown hash functions or
/// a digest of the wrong length.
pub(crate) fn parse(value: &str) -> Option<Fingerprint> {
    let (hash, hex) = value.trim().split_once(' ')?;
    let hash = hash.to_ascii_lowercase();
    let len = match checksum_type(&hash)? {
        glib::ChecksumType::Sha1 => 20,
        glib::ChecksumType::Sha256 => 32,
        glib::ChecksumType::Sha384 => 48,
        _ => 64,
    };
    let digest: Vec<u8> = hex
        .trim()
        .split(':')
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    (digest.len() == len).then_some(Fingerprint { hash, digest })
}

/// The fingerprint of an offer, from its summary: session level, else the first m-line's
/// (BUNDLE: one transport). `Err` when it is missing or unusable.
pub(crate) fn of_offer(summary: &crate::OfferSummary) -> Result<Fingerprint, String> {
    let value = summary
        .fingerprint
        .as_deref()
        .ok_or("offer has no DTLS fingerprint")?;
    parse(value).ok_or_else(|| {
        "offer's DTLS fingerprint is malformed or uses an unsupported hash \
         (sha-1/256/384/512)"
            .to_owned()
    })
}

/// The digest of a PEM certificate's DER bytes with `hash`.
fn digest_of_pem(pem: &str, hash: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = glib::base64_decode(&body);
    if der.is_empty() {
        return None;
    }
    let mut sum = glib::Checksum::new(checksum_type(hash)?)?;
    sum.update(&der);
    Some(sum.digest())
}

/// Checks the certificates the peer presented on its DTLS transports (one with BUNDLE),
/// reached through its `transceivers`, against `expected`: at least one, and all matching.
pub(crate) fn verify_peer<'a>(
    transceivers: impl IntoIterator<Item = &'a gst_webrtc::WebRTCRTPTransceiver>,
    expected: &Fingerprint,
) -> Result<(), String> {
    let pems: Vec<String> = transceivers
        .into_iter()
        .filter_map(|t| t.property::<Option<gst_webrtc::WebRTCRTPReceiver>>("receiver"))
        .filter_map(|r| r.property::<Option<gst_webrtc::WebRTCDTLSTransport>>("transport"))
        .filter_map(|t| t.property::<Option<String>>("remote-certificate"))
        .collect();
    if pems.is_empty() {
        return Err("DTLS peer certificate unavailable".into());
    }
    for pem in &pems {
        match digest_of_pem(pem, &expected.hash) {
            Some(d) if d == expected.digest => {}
            Some(_) => return Err("DTLS certificate does not match the offer's fingerprint".into()),
            None => return Err("DTLS peer certificate unreadable".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PEM armour around base64 bytes (not a valid certificate: only the armour matters here).
    const PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBfTCCASOgAwIBAgIUYz5i4yOJ3Yt8uVfJm6Kq5n1b0mUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbGFtaW5hLXRzMB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAw
MDAwMFowFDESMBAGA1UEAwwJbGFtaW5hLXRzMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAE7Xg3bq2q0bPzQf0lWJ5b1m9yq8kJQ8nY3l3c5Yw0Yd9Yl0m1cX8m0Tn8
qYy9l5JZ8b0yJ8bQy3w0kqk6u0k2g6NTMFEwHQYDVR0OBBYEFL2d1kq3Gm2f6Q0z
-----END CERTIFICATE-----
";

    #[test]
    fn parses_fingerprints() {
        let f = parse("sha-256 4F:1A:77:0C:9B:3E:D2:65:A8:11:F0:5C:2D:84:E9:36:7B:C3:58:0A:DE:92:41:6F:B5:27:8C:E0:13:9D:64:AF").unwrap();
        assert_eq!(f.hash, "sha-256");
        assert_eq!(f.digest.len(), 32);
        assert_eq!(f.digest[0], 0x4f);
        assert!(
            parse("SHA-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33").is_some()
        );
        for bad in [
            "md5 00:11",
            "sha-256 not-a-fingerprint",
            "sha-256 4F:1A",
            "sha-256",
            "",
            "sha-256 4F:1A:77:0C:9B:3E:D2:65:A8:11:F0:5C:2D:84:E9:36:7B:C3:58:0A:DE:92:41:6F:B5:27:8C:E0:13:9D:64:AFF",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_the_der_bytes_of_a_pem() {
        gst::init().unwrap();
        let der = glib::base64_decode(
            &PEM.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        );
        let mut sum = glib::Checksum::new(glib::ChecksumType::Sha256).unwrap();
        sum.update(&der);
        assert_eq!(digest_of_pem(PEM, "sha-256"), Some(sum.digest()));
        assert_eq!(digest_of_pem("no certificate", "sha-256"), None);
        assert_eq!(digest_of_pem(PEM, "md5"), None);
    }

    #[test]
    fn offer_fingerprint_session_or_first_media() {
        gst::init().unwrap();
        let fp = "sha-256 4F:1A:77:0C:9B:3E:D2:65:A8:11:F0:5C:2D:84:E9:36:7B:C3:58:0A:DE:92:41:6F:B5:27:8C:E0:13:9D:64:AF";
        let media = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
             a=fingerprint:{fp}\r\na=mid:0\r\na=inactive\r\n"
        );
        let summary = lamina_protocol::sdp::summarize(&media).unwrap();
        assert_eq!(of_offer(&summary).unwrap().digest[1], 0x1a);
        let none = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP 111\r\na=mid:0\r\na=inactive\r\n";
        let summary = lamina_protocol::sdp::summarize(none).unwrap();
        assert!(of_offer(&summary).is_err());
    }
}
