//! Who is calling: the admin (one key from configuration) or a tenant (keys issued by
//! the API, stored only as hashes). Anything else is 401 before a handler runs.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use parley_shared::aggregate::load_any;
use parley_shared::domain::TenantId;
use parley_shared::domain::access::{self, ApiKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Reads across tenants and manages them; never sees recordings or transcripts.
    Admin,
    Tenant(TenantId),
}

impl Caller {
    /// The tenant whose data a tenant-scoped route acts on: the caller's own. The admin
    /// names one (for reads across tenants) or is refused.
    pub fn tenant(&self) -> Result<&TenantId, ApiError> {
        match self {
            Caller::Tenant(id) => Ok(id),
            Caller::Admin => Err(ApiError::forbidden(
                "this route acts for a tenant: use a tenant's API key",
            )),
        }
    }

    /// Whether the caller may read `tenant`'s data (other tenants' ids look absent).
    pub fn can_read(&self, tenant: &TenantId) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(own) => own == tenant,
        }
    }
}

/// The admin key as configured, kept as its SHA-256 so that comparing it takes the same
/// time whatever is presented.
#[derive(Clone)]
pub struct AdminKey(Option<[u8; 32]>);

impl AdminKey {
    pub fn new(key: Option<&str>) -> Self {
        AdminKey(key.map(|k| Sha256::digest(k.as_bytes()).into()))
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.is_some_and(|key| bool::from(key.ct_eq(&digest)))
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AdminKey(set)"
        } else {
            "AdminKey(unset)"
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or_else(ApiError::unauthorized)?;
        if state.admin_key.matches(presented) {
            return Ok(Caller::Admin);
        }
        let key = load_any::<ApiKey>(&*state.ports.events, &access::stream(presented)).await?;
        match key.state.tenant() {
            Some(tenant) => Ok(Caller::Tenant(tenant.clone())),
            None => Err(ApiError::unauthorized()),
        }
    }
}
