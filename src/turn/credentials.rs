//! TURN REST ("time-limited") credentials.
//!
//! Username `"<expiry unix secs>:<peer id>"`, password `base64(HMAC-SHA1(secret, username))`,
//! the scheme of draft-uberti-behave-turn-rest and coturn's `use-auth-secret`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::prelude::BASE64_STANDARD;
use base64::Engine;
use ring::hmac;

/// A username/password pair for the browser's `integratedTurnServers` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `"<expiry unix secs>:<peer id>"`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TURN REST credentials: username `"<expiry unix secs>:<peer id>"`, password
/// `base64(HMAC-SHA1(secret, username))`. The expiry is `now + ttl` in whole seconds.
pub fn rest_credentials(
    secret: &str,
    peer: &str,
    ttl: Duration,
    now: SystemTime,
) -> TurnCredentials {
    let expiry = (now + ttl)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let username = format!("{expiry}:{peer}");
    let password = rest_password(secret, &username);
    TurnCredentials { username, password }
}

/// The REST password of `username`: `base64(HMAC-SHA1(secret, username))`.
pub(crate) fn rest_password(secret: &str, username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    BASE64_STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// Why a username is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsernameError {
    /// Not `"<digits>:<anything>"`.
    Malformed,
    /// The expiry lies in the past.
    Expired,
}

/// Checks the `"<expiry>:<anything>"` form and that the expiry is not before `now`.
pub(crate) fn check_username(username: &str, now: SystemTime) -> Result<u64, UsernameError> {
    let (expiry, _peer) = username.split_once(':').ok_or(UsernameError::Malformed)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UsernameError::Malformed);
    }
    let expiry: u64 = expiry.parse().map_err(|_| UsernameError::Malformed)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if expiry < now {
        return Err(UsernameError::Expired);
    }
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(check_username("1000:p", now), Ok(1000));
        assert_eq!(check_username("2000:", now), Ok(2000));
        assert_eq!(check_username("2000:a:b", now), Ok(2000));
        assert_eq!(check_username("999:p", now), Err(UsernameError::Expired));
        assert_eq!(check_username("2000", now), Err(UsernameError::Malformed));
        assert_eq!(check_username(":p", now), Err(UsernameError::Malformed));
        assert_eq!(
            check_username("+2000:p", now),
            Err(UsernameError::Malformed)
        );
        assert_eq!(
            check_username("99999999999999999999999:p", now),
            Err(UsernameError::Malformed)
        );
    }
}
