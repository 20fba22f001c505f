//! The API's errors, as JSON: `{"error": {"code", "message", "field"?, "problems"?}}`.
//! Bad input always names the field (and, where a document has several problems, each
//! with its own `field`); internal failures say nothing about internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_shared::StoreError;
use parley_shared::aggregate::CommandError;
use parley_shared::domain::ValueError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Every problem of a document, each `{"field", "message"}`; `field` is the first.
    pub problems: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    /// 422: a field of the request is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<ValueError> for ApiError {
    fn from(e: ValueError) -> Self {
        ApiError::invalid(e.field, e.reason)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, reason } => ApiError::invalid(field, reason),
            StoreError::Conflict { .. } => {
                ApiError::conflict("changed by another request; try again")
            }
            e if e.is_retryable() => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "try again shortly",
                )
            }
            e => {
                tracing::error!(error = %e, "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// How a stream's own rule violations look on the wire.
pub trait RuleError: std::error::Error {
    fn to_api(&self) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "rejected", self.to_string())
    }
}

impl<E: RuleError + 'static> From<CommandError<E>> for ApiError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rejected(rule) => rule.to_api(),
            CommandError::NotFound { stream } => ApiError::not_found(stream.category()),
            CommandError::Contended { .. } => {
                ApiError::conflict("too many concurrent changes; try again")
            }
            CommandError::Store(store) => store.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            error["field"] = json!(field);
        }
        if !self.problems.is_empty() {
            let problems: Vec<_> = self
                .problems
                .iter()
                .map(|(field, message)| json!({ "field": field, "message": message }))
                .collect();
            error["problems"] = json!(problems);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
