//! The secrets port: per-tenant carrier credentials (a Twilio auth token, an Exotel API
//! token) and vendor keys, by name.
//!
//! A secret is named like a path, `tenant/<uuid>/twilio-auth-token`, and holds one
//! [`SecretString`]. `put` overwrites (credentials rotate), `get` of a name never put
//! is `None`, and `delete` of one is not an error.
//!
//! A [`SecretString`] never shows its value by accident: its `Debug` and `Display` print
//! `***`, and it cannot be serialised, so it cannot end up in an event, a view or a
//! response body. It can be deserialised, so a request body can carry one in. Errors
//! name the secret, never its value.
//!
//! Adapters: [`crate::embedded::SqliteSecretStore`] and [`crate::aws::SsmSecretStore`]
//! (SecureString parameters). The limits are SSM's, enforced by both so that local runs
//! meet the same walls as AWS.
//!
//! ```compile_fail,E0277
//! // A secret cannot be serialised.
//! fn serialisable<T: serde::Serialize>() {}
//! serialisable::<parley_shared::secrets::SecretString>();
//! ```

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::{StoreError, StoreResult};

/// The longest secret name, in characters (all ASCII).
pub const MAX_NAME_CHARS: usize = 200;
/// The most `/`-separated segments a name may have. SSM allows 15 levels of hierarchy,
/// some of which the adapter's prefix takes.
pub const MAX_NAME_SEGMENTS: usize = 10;
/// The largest secret value, in bytes (an SSM standard parameter's limit).
pub const MAX_VALUE_BYTES: usize = 4096;

/// A secret value. `Debug` and `Display` print `***`; [`SecretString::expose`] is the
/// one way to the value. Deserialisable from a JSON string, never serialisable.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        SecretString(value)
    }

    /// The value. Hand it only to what needs it (a carrier's API client), never to a
    /// log, an event or a response.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Compared in constant time, so a comparison with a presented key leaks nothing.
impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a tenant's vendor key `name` is kept (`tenant/<id>/vendor-key/<name>`).
pub fn vendor_key_name(tenant_id: &str, name: &str) -> String {
    format!("tenant/{tenant_id}/vendor-key/{name}")
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores `value` under `name`, replacing any value it had.
    async fn put(&self, name: &str, value: &SecretString) -> StoreResult<()>;

    /// The value stored under `name`, or `None` if there is none.
    async fn get(&self, name: &str) -> StoreResult<Option<SecretString>>;

    /// Removes `name` and its value. Removing a name that holds nothing succeeds.
    async fn delete(&self, name: &str) -> StoreResult<()>;
}

/// Checks a secret's name the same way in every adapter: 1 to [`MAX_NAME_CHARS`]
/// characters of `A-Z a-z 0-9 _ . - /`, in at most [`MAX_NAME_SEGMENTS`] `/`-separated
/// segments, none empty (so no leading, trailing or doubled `/`) and none `.` or `..`.
pub fn validate_name(name: &str) -> StoreResult<()> {
    let invalid = |reason: String| Err(StoreError::invalid("name", reason));
    if name.is_empty() {
        return invalid("must not be empty".into());
    }
    if name.len() > MAX_NAME_CHARS {
        return invalid(format!(
            "{} characters, over the limit of {MAX_NAME_CHARS}",
            name.len()
        ));
    }
    // The name is shown only once it is known to be short and plain.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return invalid(format!("{c:?} is not allowed (only A-Z a-z 0-9 _ . - /)"));
    }
    if name.contains("..") {
        return invalid(format!("{name:?} contains \"..\""));
    }
    let segments = name.split('/').collect::<Vec<_>>();
    if segments.iter().any(|s| s.is_empty() || *s == ".") {
        return invalid(format!(
            "{name:?} has an empty or \".\" segment (a leading, trailing or doubled /)"
        ));
    }
    if segments.len() > MAX_NAME_SEGMENTS {
        return invalid(format!(
            "{name:?} has {} segments, over the limit of {MAX_NAME_SEGMENTS}",
            segments.len()
        ));
    }
    Ok(())
}

/// Checks a value's size the same way in every adapter: 1 to [`MAX_VALUE_BYTES`] bytes.
/// The error names the secret (`name`) and the size, never the value.
pub fn validate_value(name: &str, value: &SecretString) -> StoreResult<()> {
    let len = value.expose().len();
    if len == 0 {
        return Err(StoreError::invalid(
            "value",
            format!("the value of secret {name} must not be empty"),
        ));
    }
    if len > MAX_VALUE_BYTES {
        return Err(StoreError::invalid(
            "value",
            format!(
                "the value of secret {name} is {len} bytes, over the limit of {MAX_VALUE_BYTES}"
            ),
        ));
    }
    Ok(())
}

/// Checks a put's arguments: [`validate_name`], then [`validate_value`].
pub fn validate_put(name: &str, value: &SecretString) -> StoreResult<()> {
    validate_name(name)?;
    validate_value(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: StoreResult<()>) -> String {
        match result {
            Err(StoreError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_follow_the_rules() {
        let id = uuid::Uuid::new_v4();
        for good in [
            format!("tenant/{id}/twilio-auth-token"),
            format!("tenant/{id}/exotel_api.token"),
            "vendor/deepgram-key".into(),
            "a".into(),
            "a".repeat(MAX_NAME_CHARS),
            ["s"; MAX_NAME_SEGMENTS].join("/"),
            ".hidden/x.y".into(),
        ] {
            validate_name(&good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            String::new(),
            "a".repeat(MAX_NAME_CHARS + 1),
            "/tenant/x".into(),
            "tenant/x/".into(),
            "tenant//x".into(),
            "tenant/../x".into(),
            "..".into(),
            "a..b".into(),
            "tenant/./x".into(),
            ".".into(),
            "tenant x".into(),
            "tenant:x".into(),
            "tenant/\u{e9}".into(),
            "tenant/x\n".into(),
            ["s"; MAX_NAME_SEGMENTS + 1].join("/"),
        ] {
            assert_eq!(field(validate_name(&bad)), "name", "{bad:?}");
        }
    }

    #[test]
    fn values_are_sized() {
        let ok = |v: &str| validate_value("n", &SecretString::new(v.into()));
        ok("x").unwrap();
        ok(&"x".repeat(MAX_VALUE_BYTES)).unwrap();
        // Bytes, not characters.
        ok(&"\u{e9}".repeat(MAX_VALUE_BYTES / 2)).unwrap();
        assert_eq!(field(ok("")), "value");
        assert_eq!(field(ok(&"x".repeat(MAX_VALUE_BYTES + 1))), "value");
        assert_eq!(
            field(ok(&"\u{e9}".repeat(MAX_VALUE_BYTES / 2 + 1))),
            "value"
        );
    }

    #[test]
    fn errors_name_the_secret_not_the_value() {
        let value = SecretString::new("hunter2".repeat(600));
        let err = validate_put("tenant/t1/twilio-auth-token", &value).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(shown.contains("tenant/t1/twilio-auth-token"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = SecretString::new("AC-s3cr3t-token".into());
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(format!("{secret:#?}"), "***");
        assert_eq!(secret.expose(), "AC-s3cr3t-token");
    }

    #[test]
    fn a_request_body_can_carry_a_secret() {
        #[derive(Debug, Deserialize)]
        struct Body {
            auth_token: SecretString,
        }
        let body: Body = serde_json::from_str(r#"{"auth_token":"tok-123"}"#).unwrap();
        assert_eq!(body.auth_token.expose(), "tok-123");
        assert!(!format!("{body:?}").contains("tok-123"));
    }
}
