//! The `api_key/<sha256>` stream: a tenant's API key, found by the hash of the key a
//! request presents. Only the hash is ever stored; the key itself is shown once, when it
//! is issued.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ids::TenantId;
use super::values::{ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::{DomainEvent, StreamId};

/// Mints a new API key: `pk_` and 32 random bytes, base64url.
pub fn new_key() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!(
        "pk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stream that holds the key `key`, named by its SHA-256.
pub fn stream(key: &str) -> StreamId {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    StreamId::new("api_key", &digest).unwrap_or_else(|_| unreachable!("hex is a valid stream id"))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiKeyEvent {
    ApiKeyIssued {
        tenant_id: TenantId,
        label: String,
    },
    ApiKeyRevoked,
    #[serde(other)]
    Unknown,
}

impl DomainEvent for ApiKeyEvent {
    const CATEGORY: &'static str = "api_key";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, ApiKeyEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ApiKeyCommand {
    Issue { tenant_id: TenantId, label: String },
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("the key already exists")]
    AlreadyExists,
    #[error("the key does not exist")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiKey {
    pub tenant_id: Option<TenantId>,
    pub label: String,
    pub revoked: bool,
}

impl ApiKey {
    /// The tenant this key acts for, if it is live.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant_id.as_ref().filter(|_| !self.revoked)
    }
}

impl Aggregate for ApiKey {
    type Event = ApiKeyEvent;
    type Command = ApiKeyCommand;
    type Error = ApiKeyError;

    fn handle(
        &self,
        command: ApiKeyCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        match command {
            ApiKeyCommand::Issue { .. } if self.tenant_id.is_some() => {
                Err(ApiKeyError::AlreadyExists)
            }
            ApiKeyCommand::Issue { tenant_id, label } => Ok(vec![ApiKeyEvent::ApiKeyIssued {
                tenant_id,
                label: name("label", &label, 100)?,
            }]),
            ApiKeyCommand::Revoke if self.tenant_id.is_none() => Err(ApiKeyError::NotFound),
            ApiKeyCommand::Revoke if self.revoked => Ok(vec![]),
            ApiKeyCommand::Revoke => Ok(vec![ApiKeyEvent::ApiKeyRevoked]),
        }
    }

    fn apply(&mut self, event: &ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyIssued { tenant_id, label } => {
                self.tenant_id = Some(tenant_id.clone());
                self.label = label.clone();
            }
            ApiKeyEvent::ApiKeyRevoked => self.revoked = true,
            ApiKeyEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    #[test]
    fn keys_are_random_and_only_their_hash_names_the_stream() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        assert!(a.starts_with("pk_") && a.len() > 40);
        let s = stream(&a);
        assert!(!s.as_str().contains(&a[3..]));
        assert_eq!(s, stream(&a));
        assert_ne!(s, stream(&b));
    }

    #[test]
    fn a_revoked_key_acts_for_nobody() {
        let tenant = TenantId::new();
        let issued = ApiKeyEvent::ApiKeyIssued {
            tenant_id: tenant.clone(),
            label: "crm".into(),
        };
        assert_eq!(
            given::<ApiKey>(std::slice::from_ref(&issued)).tenant(),
            Some(&tenant)
        );
        let revoked = given::<ApiKey>(&[issued, ApiKeyEvent::ApiKeyRevoked]);
        assert_eq!(revoked.tenant(), None);
        assert_eq!(when(&revoked, ApiKeyCommand::Revoke).unwrap(), vec![]);
    }
}
