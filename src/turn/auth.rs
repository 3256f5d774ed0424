//! Long-term-credential keys for TURN REST usernames.
//!
//! [`RestAuth`] derives the MESSAGE-INTEGRITY key of a request from its USERNAME and REALM; the
//! `turn` crate then checks the integrity with that key. The crate does not report integrity
//! failures back to the handler, so failures are counted by the gate in `gate.rs`, which runs the
//! same check on every authenticated request before the crate sees it.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use turn::auth::{generate_auth_key, AuthHandler};

use super::credentials::{check_username, rest_password, UsernameError};

/// Why a request's credentials are refused (before the integrity check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Username not `"<expiry>:<anything>"`.
    Malformed,
    /// Username expired.
    Expired,
    /// REALM differs from ours.
    WrongRealm,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "malformed TURN REST username",
            Refusal::Expired => "expired TURN REST username",
            Refusal::WrongRealm => "wrong realm",
        })
    }
}

impl From<UsernameError> for Refusal {
    fn from(e: UsernameError) -> Self {
        match e {
            UsernameError::Malformed => Refusal::Malformed,
            UsernameError::Expired => Refusal::Expired,
        }
    }
}

/// Computes long-term keys for TURN REST usernames from the shared secret.
pub(crate) struct RestAuth {
    secret: String,
    realm: String,
}

impl fmt::Debug for RestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestAuth")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl RestAuth {
    pub(crate) fn new(secret: String, realm: String) -> Self {
        RestAuth { secret, realm }
    }

    /// The key `MD5(username:realm:password)` for this username, or why it is refused.
    pub(crate) fn key(&self, username: &str, realm: &str) -> Result<Vec<u8>, Refusal> {
        if realm != self.realm {
            return Err(Refusal::WrongRealm);
        }
        check_username(username, SystemTime::now())?;
        let password = rest_password(&self.secret, username);
        Ok(generate_auth_key(username, realm, &password))
    }
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.key(username, realm).map_err(|refusal| {
            tracing::debug!(%src_addr, username, %refusal, "TURN credentials refused");
            turn::Error::Other(refusal.to_string())
        })
    }
}
