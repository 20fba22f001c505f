//! What every carrier's webhooks share: refusing a request with a JSON error, running a
//! command on a call, and closing the lead's dial attempt when a call ends.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_shared::aggregate::{CommandError, Context, execute, load_any};
use parley_shared::domain::call::{Call, CallCommand, CallError};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{CallId, LeadId, PhoneNumber, TenantId};
use serde_json::json;

use crate::WebhookState;

/// A webhook refused: a status and a JSON error body naming the field, if any.
pub struct Reject {
    status: StatusCode,
    body: serde_json::Value,
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

pub(crate) fn error(status: StatusCode, code: &str, field: Option<&str>, message: &str) -> Reject {
    let mut error = json!({ "code": code, "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    Reject {
        status,
        body: json!({ "error": error }),
    }
}

pub(crate) fn missing(field: &str) -> Reject {
    error(
        StatusCode::BAD_REQUEST,
        "invalid",
        Some(field),
        &format!("{field} is required"),
    )
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Reject {
    tracing::error!(error = %e, "webhook failed");
    // 500 makes the carrier retry (status callbacks) or give up on the call (voice).
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        None,
        "internal error",
    )
}

pub(crate) fn ctx(tenant: &str, call: &CallId, key: Option<String>) -> Context {
    Context {
        tenant_id: tenant.to_owned(),
        correlation_id: call.to_string(),
        idempotency_key: key,
    }
}

/// Runs `command` on `call` for `tenant`; a call requested twice (a redelivered webhook)
/// is the call on record.
pub(crate) async fn run_call(
    state: &WebhookState,
    tenant: &str,
    call: &CallId,
    key: Option<String>,
    command: CallCommand,
) -> Result<Call, Reject> {
    match execute::<Call>(
        &*state.ports.events,
        &*state.ports.clock,
        &call.stream(),
        &ctx(tenant, call, key),
        command,
    )
    .await
    {
        Ok(done) => {
            // The call list follows the call. A failure here makes the carrier retry,
            // which changes nothing twice and refreshes the view again.
            parley_shared::views::refresh_call(&*state.ports.events, &*state.ports.views, call)
                .await
                .map_err(internal)?;
            Ok(done.state)
        }
        Err(CommandError::Rejected(CallError::AlreadyExists)) => {
            // A redelivered voice webhook: the call is already on record.
            Ok(load_any::<Call>(&*state.ports.events, &call.stream())
                .await
                .map_err(internal)?
                .state)
        }
        Err(e) => Err(internal(e)),
    }
}

/// The lead of a caller who rang in from `from`: found, or made (no campaign, the
/// number only), so that what the call learns and books has someone to belong to. A
/// withheld number has none.
pub(crate) async fn caller_lead(
    state: &WebhookState,
    tenant: &TenantId,
    from: Option<&PhoneNumber>,
) -> Result<Option<LeadId>, Reject> {
    let Some(phone) = from else {
        return Ok(None);
    };
    parley_shared::leadviews::person_lead(&state.ports, tenant, phone)
        .await
        .map(Some)
        .map_err(internal)
}

/// Once `call` has a final status, closes its lead's dial attempt with that status, its
/// talk time and whether a machine answered (once: the lead's rules and the idempotency
/// key ignore repeats), and refreshes the lead's views. A call with no lead, or not yet
/// over, changes nothing.
pub(crate) async fn close_lead_attempt(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    call: &Call,
) -> Result<(), Reject> {
    let (Some(final_status), Some(lead_id)) =
        (call.status.filter(|s| s.is_final()), call.lead_id.as_ref())
    else {
        return Ok(());
    };
    let machine = call.answered_by.is_some_and(|a| a.is_machine());
    let end = LeadCommand::EndAttempt {
        call_id: call_id.clone(),
        status: final_status,
        duration_secs: call.duration_secs,
        machine,
    };
    // A machine verdict heard after the end is a second, different fact.
    let key = format!("lead-attempt-end:{call_id}:{machine}");
    let lead_ctx = ctx(tenant, call_id, Some(key));
    let done = match execute::<Lead>(
        &*state.ports.events,
        &*state.ports.clock,
        &lead_id.stream(),
        &lead_ctx,
        end,
    )
    .await
    {
        Ok(done) => done,
        Err(CommandError::Rejected(e)) => {
            tracing::warn!(call_id = %call_id, error = %e, "lead not updated");
            return Ok(());
        }
        Err(e) => return Err(internal(e)),
    };
    let tenant_id = TenantId::parse(tenant).map_err(internal)?;
    // The campaign's lists and plan follow the lead; a failure makes the carrier retry.
    parley_shared::leadviews::project_current(
        &*state.ports.events,
        &*state.ports.views,
        lead_id,
        &tenant_id,
        &done.state,
        done.version,
        state.ports.clock.now(),
    )
    .await
    .map_err(internal)?;
    Ok(())
}
