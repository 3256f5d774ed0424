//! Room access tokens: HS256 JWTs checked on `phx_join` when `--jwt-secret` is set.
//!
//! A token grants one display name in one room until it expires:
//!
//! ```json
//! {"room": "<room id>", "name": "<display name>", "exp": <unix seconds>}
//! ```
//!
//! The client passes it in the join payload, `{"token": "<JWT>"}` (phoenix.js:
//! `socket.channel("room:abc", {token})`). A join without a valid token for that room is
//! refused with `{"reason": "unauthorized"}`. The room then enforces `name` as the endpoint's
//! `displayName` (see `RoomCore::enforce_display_name`). Tokens are never logged.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::room::RoomId;

/// Seconds of clock skew tolerated on `exp`.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of a room access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room id (the part after `room:` in the topic).
    pub room: String,
    /// The display name the peer gets in that room.
    pub name: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a token was refused. Every variant is answered with the same `unauthorized` reason on
/// the wire; the variant is for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The join payload has no string `token`.
    #[error("no token in the join payload")]
    Missing,
    /// Bad signature, wrong algorithm, malformed, expired or missing claims.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid token for another room.
    #[error("token is for another room")]
    WrongRoom,
}

/// Verifies room access tokens with the server's secret.
#[derive(Clone)]
pub struct RoomTokens {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for RoomTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTokens").finish_non_exhaustive()
    }
}

impl RoomTokens {
    /// A verifier for tokens signed with `secret` (HS256 only).
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Checks the `token` of a join payload for `room`; returns its claims.
    pub fn verify_join(
        &self,
        payload: &serde_json::Map<String, serde_json::Value>,
        room: &RoomId,
    ) -> Result<Claims, AuthError> {
        let token = payload
            .get("token")
            .and_then(|t| t.as_str())
            .ok_or(AuthError::Missing)?;
        self.verify(token, room)
    }

    /// Checks a token for `room`; returns its claims.
    pub fn verify(&self, token: &str, room: &RoomId) -> Result<Claims, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.kind_name()))?;
        if data.claims.room != room.0 {
            return Err(AuthError::WrongRoom);
        }
        Ok(data.claims)
    }
}

/// Signs `claims` with `secret` (HS256): for tests and for issuing tokens from tools.
pub fn issue(secret: &Secret, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
}

/// A short, secret-free name of a JWT error kind.
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> String {
        use jsonwebtoken::errors::ErrorKind;
        match self.kind() {
            ErrorKind::ExpiredSignature => "expired".into(),
            ErrorKind::InvalidSignature => "bad signature".into(),
            ErrorKind::InvalidAlgorithm => "wrong algorithm".into(),
            ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
            ErrorKind::Json(_) => "bad claims".into(),
            _ => "malformed".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    }

    fn claims(room: &str, exp: u64) -> Claims {
        Claims {
            room: room.into(),
            name: "Alice".into(),
            exp,
        }
    }

    #[test]
    fn valid_token_for_the_room_passes() {
        let secret = Secret::new("s3cret");
        let token = issue(&secret, &claims("r1", now() + 60)).unwrap();
        let got = RoomTokens::new(&secret)
            .verify(&token, &RoomId("r1".into()))
            .unwrap();
        assert_eq!(got.name, "Alice");
    }

    #[test]
    fn refusals() {
        let secret = Secret::new("s3cret");
        let tokens = RoomTokens::new(&secret);
        let room = RoomId("r1".into());
        let other = issue(&Secret::new("other"), &claims("r1", now() + 60)).unwrap();
        assert_eq!(
            tokens.verify(&other, &room),
            Err(AuthError::Invalid("bad signature".into()))
        );
        let expired = issue(&secret, &claims("r1", now() - 3600)).unwrap();
        assert_eq!(
            tokens.verify(&expired, &room),
            Err(AuthError::Invalid("expired".into()))
        );
        let wrong_room = issue(&secret, &claims("r2", now() + 60)).unwrap();
        assert_eq!(tokens.verify(&wrong_room, &room), Err(AuthError::WrongRoom));
        assert!(matches!(
            tokens.verify("not.a.jwt", &room),
            Err(AuthError::Invalid(_))
        ));
        assert_eq!(
            tokens.verify_join(&serde_json::Map::new(), &room),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let secret = Secret::new("s3cret");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims("r1", now() + 60),
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        assert_eq!(
            RoomTokens::new(&secret).verify(&token, &RoomId("r1".into())),
            Err(AuthError::Invalid("wrong algorithm".into()))
        );
    }

    #[test]
    fn exp_is_required() {
        #[derive(Serialize)]
        struct NoExp {
            room: &'static str,
            name: &'static str,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                room: "r1",
                name: "A",
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let got = RoomTokens::new(&Secret::new("s3cret")).verify(&token, &RoomId("r1".into()));
        assert!(matches!(got, Err(AuthError::Invalid(_))), "{got:?}");
    }
}
