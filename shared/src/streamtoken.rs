//! The token the voice webhook mints for the media task's WebSocket, so only the call
//! Twilio was told to stream can open a media session, for its own tenant, and only for a
//! short while. The webhook puts it in the TwiML (`<Stream>`'s `<Parameter>`); the media
//! task checks it before touching any audio.
//!
//! Format: `base64url(claims) "." base64url(mac)`, both without padding, where `claims` is
//! the JSON object `{"tenant_id":..,"call_id":..,"expires_at":<unix seconds>}` and `mac` is
//! HMAC-SHA256, keyed with the server secret, over `parley-stream-v1.` followed by the
//! first (encoded) part. The prefix keeps these MACs from ever being mistaken for another
//! use of the same secret. The MAC is checked, in constant time, before the claims are
//! parsed.
//!
//! Secrets shorter than 16 bytes are refused ([`TokenError::WeakSecret`]); tokens longer
//! than [`MAX_TOKEN_LEN`] are refused before any decoding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are malformed (real ones are a few hundred bytes).
pub const MAX_TOKEN_LEN: usize = 2048;
/// The shortest secret [`mint`] and [`verify`] accept.
pub const MIN_SECRET_LEN: usize = 16;
const DOMAIN: &[u8] = b"parley-stream-v1.";

/// What a token grants: one call's media stream, for one tenant, until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamClaims {
    pub tenant_id: String,
    pub call_id: String,
    /// Unix seconds; the token is refused from this second on.
    pub expires_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The server secret is shorter than [`MIN_SECRET_LEN`]: a configuration error.
    #[error("stream token secret is shorter than {MIN_SECRET_LEN} bytes")]
    WeakSecret,
    /// Not a token: wrong shape, too long, bad base64, or claims that do not decode.
    #[error("stream token is malformed")]
    Malformed,
    /// Well formed, but not signed with our secret (or altered).
    #[error("stream token signature does not match")]
    BadSignature,
    #[error("stream token has expired")]
    Expired,
    /// Genuine and current, but for another call.
    #[error("stream token is for another call")]
    WrongCall,
}

/// A token for `claims`. Fails only for a weak secret, or for claims so long the token
/// would exceed [`MAX_TOKEN_LEN`] ([`TokenError::Malformed`]).
pub fn mint(secret: &[u8], claims: &StreamClaims) -> Result<String, TokenError> {
    let mac = keyed(secret)?;
    let json = serde_json::to_vec(claims).map_err(|_| TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(sign(mac, &payload).finalize().into_bytes());
    let token = format!("{payload}.{tag}");
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

/// The claims of `token` if it is ours, for `call_id`, and unexpired at `now`. Checks in
/// that order: shape, signature, claims, call, expiry.
pub fn verify(
    secret: &[u8],
    token: &str,
    call_id: &str,
    now: DateTime<Utc>,
) -> Result<StreamClaims, TokenError> {
    let mac = keyed(secret)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if payload.is_empty() || tag.contains('.') {
        return Err(TokenError::Malformed);
    }
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Malformed)?;
    sign(mac, payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: StreamClaims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.call_id != call_id {
        return Err(TokenError::WrongCall);
    }
    if now.timestamp() >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn keyed(secret: &[u8]) -> Result<HmacSha256, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| TokenError::WeakSecret)
}

fn sign(mut mac: HmacSha256, payload: &str) -> HmacSha256 {
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    mac
}

/// Where the key that signs stream tokens is kept: the webhooks mint with it and the
/// media task verifies with it, each reading it from the secret store.
pub const SECRET_NAME: &str = "system/stream-token-secret";

/// The stream token key. The local stack makes one on first start
/// (`create_if_missing`); on AWS it is provisioned, and its absence stops start-up.
pub async fn load_secret(
    secrets: &dyn crate::secrets::SecretStore,
    create_if_missing: bool,
) -> Result<crate::secrets::SecretString, crate::StoreError> {
    if let Some(secret) = secrets.get(SECRET_NAME).await? {
        return Ok(secret);
    }
    if !create_if_missing {
        return Err(crate::StoreError::Missing {
            what: format!("secret {SECRET_NAME}"),
        });
    }
    let bytes: [u8; 32] = rand::random();
    let secret =
        crate::secrets::SecretString::new(bytes.iter().map(|b| format!("{b:02x}")).collect());
    secrets.put(SECRET_NAME, &secret).await?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    const SECRET: &[u8] = b"0123456789abcdef-server-secret";

    fn claims() -> StreamClaims {
        StreamClaims {
            tenant_id: "tenant-1".into(),
            call_id: "call-1".into(),
            expires_at: 1_700_000_300,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn token() -> String {
        mint(SECRET, &claims()).unwrap()
    }

    /// A token with any payload bytes, correctly signed.
    fn signed(json: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = sign(keyed(SECRET).unwrap(), &payload)
            .finalize()
            .into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn round_trip() {
        let token = token();
        assert_eq!(token.matches('.').count(), 1);
        assert!(!token.contains(['=', '+', '/']));
        assert_eq!(
            verify(SECRET, &token, "call-1", at(1_700_000_000)),
            Ok(claims())
        );
        assert_eq!(
            verify(SECRET, &token, "call-1", at(1_700_000_299)),
            Ok(claims())
        );
    }

    #[test]
    fn format_is_documented_json_and_hmac() {
        let token = token();
        let (payload, tag) = token.split_once('.').unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"tenant_id": "tenant-1", "call_id": "call-1", "expires_at": 1_700_000_300})
        );
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        mac.update(format!("parley-stream-v1.{payload}").as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(tag).unwrap(),
            mac.finalize().into_bytes().as_slice()
        );
    }

    #[test]
    fn expired() {
        let token = token();
        assert_eq!(
            verify(SECRET, &token, "call-1", at(1_700_000_300)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(SECRET, &token, "call-1", at(i64::from(i32::MAX))),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn wrong_call() {
        let token = token();
        for other in ["call-2", "", "call-1 ", "CALL-1"] {
            assert_eq!(
                verify(SECRET, &token, other, at(0)),
                Err(TokenError::WrongCall)
            );
        }
    }

    #[test]
    fn bad_signature() {
        let token = token();
        assert_eq!(
            verify(b"another-secret-of-16+", &token, "call-1", at(0)),
            Err(TokenError::BadSignature)
        );
        // Claims altered, signature kept.
        let (_, tag) = token.split_once('.').unwrap();
        let forged_claims = StreamClaims {
            call_id: "call-2".into(),
            ..claims()
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        assert_eq!(
            verify(SECRET, &format!("{forged_payload}.{tag}"), "call-2", at(0)),
            Err(TokenError::BadSignature)
        );
        // Signature altered, truncated, emptied or extended.
        let (payload, tag) = token.split_once('.').unwrap();
        let mut mac = URL_SAFE_NO_PAD.decode(tag).unwrap();
        mac[0] ^= 1;
        let flipped = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&mac));
        let short = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&mac[..31]));
        let long = format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode([&mac[..], &[0]].concat())
        );
        for bad in [flipped, short, long, format!("{payload}.")] {
            assert_eq!(
                verify(SECRET, &bad, "call-1", at(0)),
                Err(TokenError::BadSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_inputs_are_rejected_without_panicking() {
        let token = token();
        let (payload, tag) = token.split_once('.').unwrap();
        let huge = "a".repeat(10 << 20);
        let over_limit = format!("{payload}.{tag}{}", "A".repeat(MAX_TOKEN_LEN));
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            "no-dot-at-all".into(),
            format!(".{tag}"),
            format!("{payload}.{tag}."),
            format!("{payload}..{tag}"),
            format!("{payload}.{tag}.{tag}"),
            format!("{payload}.{tag}="),
            format!("{payload}.{}", tag.replace(|_| true, "*")),
            format!("{payload}.{tag}\u{0}"),
            "ü€😀.😀".into(),
            "a.b.c.d.e.f".into(),
            huge,
            over_limit,
        ] {
            assert_eq!(
                verify(SECRET, &bad, "call-1", at(0)),
                Err(TokenError::Malformed),
                "{bad:.60}"
            );
        }
    }

    #[test]
    fn signed_garbage_claims_are_malformed() {
        for json in [
            &b"not json"[..],
            b"",
            b"\xff\xfe",
            b"[]",
            b"{}",
            b"null",
            br#"{"tenant_id":"t","call_id":"call-1"}"#,
            br#"{"tenant_id":"t","call_id":"call-1","expires_at":"soon"}"#,
            br#"{"tenant_id":"t","call_id":"call-1","expires_at":1e99}"#,
            br#"{"tenant_id":"t","call_id":"call-1","expires_at":9,"admin":true}"#,
        ] {
            assert_eq!(
                verify(SECRET, &signed(json), "call-1", at(0)),
                Err(TokenError::Malformed),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        // A signed payload that is not base64 at all.
        let mac = sign(keyed(SECRET).unwrap(), "!!!").finalize().into_bytes();
        let not_b64 = format!("!!!.{}", URL_SAFE_NO_PAD.encode(mac));
        assert_eq!(
            verify(SECRET, &not_b64, "call-1", at(0)),
            Err(TokenError::Malformed)
        );
        // The same shape, well formed, passes.
        let ok = signed(br#"{"tenant_id":"t","call_id":"call-1","expires_at":9}"#);
        assert!(verify(SECRET, &ok, "call-1", at(0)).is_ok());
    }

    #[test]
    fn weak_secrets_are_refused() {
        let short = &SECRET[..MIN_SECRET_LEN - 1];
        assert_eq!(mint(short, &claims()), Err(TokenError::WeakSecret));
        assert_eq!(mint(b"", &claims()), Err(TokenError::WeakSecret));
        assert_eq!(
            verify(short, &token(), "call-1", at(0)),
            Err(TokenError::WeakSecret)
        );
        assert!(mint(&SECRET[..MIN_SECRET_LEN], &claims()).is_ok());
    }

    #[test]
    fn oversized_claims_are_not_minted() {
        let big = StreamClaims {
            tenant_id: "t".repeat(MAX_TOKEN_LEN),
            ..claims()
        };
        assert_eq!(mint(SECRET, &big), Err(TokenError::Malformed));
    }

    #[test]
    fn hostile_claim_strings_round_trip() {
        let odd = StreamClaims {
            tenant_id: "\"}.{\u{0}ü😀".into(),
            call_id: "a.b/c+d=".into(),
            expires_at: i64::MAX,
        };
        let token = mint(SECRET, &odd).unwrap();
        assert_eq!(
            verify(SECRET, &token, "a.b/c+d=", at(1_700_000_000)),
            Ok(odd)
        );
    }
}
