//! The peers' crypto: str0m's OpenSSL provider, with HMAC-SHA1 from RustCrypto's `hmac` and
//! `sha1` instead.
//!
//! str0m-openssl computes each HMAC-SHA1 through OpenSSL 3's `EVP_PKEY` API, which builds a key
//! object (algorithm fetch, locks, name lookups) per call. Under `SRTP_AES128_CM_SHA1_80`, the
//! only profile GStreamer 1.22's DTLS negotiates, that is once per packet sent and received, and
//! the load generator spent about twice the CPU against Lamina (40–45 % of a core in the room of
//! 8) as against Janus, which negotiates AES-GCM with str0m (21–25 %). Both servers share this
//! machine's two cores with it, so the load generator should cost the same whichever it drives.

use std::sync::{Arc, OnceLock};

use hmac::{Hmac, Mac};
use str0m::crypto::{CryptoProvider, Sha1HmacProvider};

/// HMAC-SHA1 computed in-process by RustCrypto (SHA-NI or assembly where the CPU has it).
#[derive(Debug)]
struct RustSha1Hmac;

impl Sha1HmacProvider for RustSha1Hmac {
    fn sha1_hmac(&self, key: &[u8], payloads: &[&[u8]]) -> [u8; 20] {
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
        for p in payloads {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The provider every peer's `Rtc` uses.
pub fn provider() -> Arc<CryptoProvider> {
    static HMAC: RustSha1Hmac = RustSha1Hmac;
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                sha1_hmac_provider: &HMAC,
                ..str0m::crypto::from_feature_flags()
            })
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202_and_openssls() {
        // RFC 2202, test cases 1 and 6 (a key longer than the block).
        let one = RustSha1Hmac.sha1_hmac(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(hex(&one), "b617318655057264e28bc0b6fb378c8ef146be00");
        let six = RustSha1Hmac.sha1_hmac(
            &[0xaa; 80],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(hex(&six), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
        // Split payloads hash as their concatenation, as str0m's OpenSSL provider does.
        let openssl = str0m::crypto::from_feature_flags().sha1_hmac_provider;
        let key = b"0123456789abcdef0123";
        let whole = RustSha1Hmac.sha1_hmac(key, &[b"rtp header and payload", &[0, 0, 0, 7]]);
        assert_eq!(
            whole,
            RustSha1Hmac.sha1_hmac(key, &[b"rtp header and payload\0\0\0\x07"])
        );
        assert_eq!(
            whole,
            openssl.sha1_hmac(key, &[b"rtp header and payload", &[0, 0, 0, 7]])
        );
    }
}
