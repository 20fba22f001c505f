//! How each stream's rule violations answer over HTTP.

use axum::http::StatusCode;
use parley_shared::domain::access::ApiKeyError;
use parley_shared::domain::agent::AgentError;
use parley_shared::domain::number::NumberError;
use parley_shared::domain::tenant::TenantError;

use crate::error::{ApiError, RuleError};

impl RuleError for TenantError {
    fn to_api(&self) -> ApiError {
        match self {
            TenantError::Invalid(e) => e.clone().into(),
            TenantError::NotFound => ApiError::not_found("tenant"),
            TenantError::AlreadyExists => ApiError::conflict(self.to_string()),
        }
    }
}

impl RuleError for AgentError {
    fn to_api(&self) -> ApiError {
        match self {
            AgentError::Invalid(e) => e.clone().into(),
            AgentError::NotFound => ApiError::not_found("agent"),
            AgentError::AlreadyExists => ApiError::conflict(self.to_string()),
        }
    }
}

impl RuleError for NumberError {
    fn to_api(&self) -> ApiError {
        match self {
            NumberError::NotFound => ApiError::not_found("phone number"),
            NumberError::InUse => ApiError::new(StatusCode::CONFLICT, "in_use", self.to_string()),
        }
    }
}

impl RuleError for ApiKeyError {
    fn to_api(&self) -> ApiError {
        match self {
            ApiKeyError::Invalid(e) => e.clone().into(),
            ApiKeyError::NotFound => ApiError::not_found("api key"),
            ApiKeyError::AlreadyExists => ApiError::conflict(self.to_string()),
        }
    }
}
