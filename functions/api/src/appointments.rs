//! Appointments the agents booked during calls: listed by start time (the tenant's,
//! one agent's, one lead's), read one at a time as their events tell them, and
//! cancelled, which frees the agent's time for the next caller.
//!
//! A tenant reads and cancels its own; the admin reads any tenant's (naming it to
//! list) and cancels none. Another tenant's appointment is 404.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use parley_shared::aggregate::Context;
use parley_shared::appointmentviews::{
    appointment_json, load_appointment, run_appointment, starting_query,
};
use parley_shared::domain::appointment::{AppointmentCommand, AppointmentError};
use parley_shared::domain::{AgentId, AppointmentId, LeadId, TenantId};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::body::parse;
use crate::error::{ApiError, RuleError};
use crate::tenants::active;
use crate::{AppState, Page, PageParams, fill_page};

/// The reason recorded when a cancellation gives none.
const DEFAULT_REASON: &str = "cancelled through the API";

impl RuleError for AppointmentError {
    fn to_api(&self) -> ApiError {
        match self {
            AppointmentError::NotFound => ApiError::not_found("appointment"),
            AppointmentError::Invalid(e) => e.clone().into(),
            other => ApiError::conflict(other.to_string()),
        }
    }
}

/// `?from=&to=&agent_id=&lead_id=&cursor=&limit=` on the list.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    /// Appointments starting at or after this time (RFC 3339); now by default.
    from: Option<DateTime<Utc>>,
    /// Appointments starting at or before this time (RFC 3339).
    to: Option<DateTime<Utc>>,
    agent_id: Option<String>,
    lead_id: Option<String>,
    /// The admin names the tenant whose appointments to list.
    tenant_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// An id from a query parameter, if given; a malformed one is a 422 naming `field`.
fn id_param<T>(
    field: &'static str,
    raw: &Option<String>,
    parse: fn(&str) -> Result<T, parley_shared::domain::IdError>,
) -> Result<Option<T>, ApiError> {
    raw.as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| parse(r).map_err(|e| ApiError::invalid(field, e.to_string())))
        .transpose()
}

/// `GET /v1/appointments`: earliest start first, from `from` (now by default) to `to`.
/// `agent_id` reads that agent's own index; `lead_id` is applied while reading, and a
/// page is filled up to `limit` from further store pages (at most
/// [`MAX_FILL_PAGES`]), so a short page with a `next_cursor` means the scan stopped
/// early, not that nothing is left. Pass the same `from` and `to` with a `cursor`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let tenant = match (&caller, &params.tenant_id) {
        (Caller::Tenant(own), _) => own.clone(),
        (Caller::Admin, Some(t)) => {
            TenantId::parse(t).map_err(|e| ApiError::invalid("tenant_id", e.to_string()))?
        }
        (Caller::Admin, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "the admin names the tenant whose appointments to list",
            ));
        }
    };
    let agent = id_param("agent_id", &params.agent_id, AgentId::parse)?;
    let lead = id_param("lead_id", &params.lead_id, LeadId::parse)?;
    let from = params.from.unwrap_or_else(|| state.ports.clock.now());
    if let Some(to) = params.to
        && to < from
    {
        return Err(ApiError::invalid("to", "must not be before from"));
    }
    let page_params = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let query = page_params.query(starting_query(&tenant, agent.as_ref(), from, params.to))?;
    let page = match lead {
        Some(lead) => {
            let wanted = Value::String(lead.to_string());
            fill_page(&state, query, |view| view.body["lead_id"] == wanted).await?
        }
        None => state.ports.views.query(&query).await?,
    };
    Ok(Json(Page::from(page)))
}

/// The appointment as its events tell it, if the caller may read it.
async fn visible(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(AppointmentId, Value), ApiError> {
    let id = AppointmentId::parse(raw).map_err(|_| ApiError::not_found("appointment"))?;
    let loaded = load_appointment(&*state.ports.events, &id)
        .await?
        .filter(|loaded| caller.can_read(&loaded.tenant_id))
        .ok_or_else(|| ApiError::not_found("appointment"))?;
    let body = appointment_json(&id, &loaded).ok_or_else(|| ApiError::not_found("appointment"))?;
    Ok((id, body))
}

/// `GET /v1/appointments/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(visible(&state, &caller, &raw).await?.1))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    reason: Option<String>,
}

/// `POST /v1/appointments/{id}/cancel`: the appointment, cancelled; cancelling it again
/// changes nothing (the first reason stays).
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let id = AppointmentId::parse(&raw).map_err(|_| ApiError::not_found("appointment"))?;
    // The body is optional: an empty one cancels with the default reason.
    let request: CancelRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        parse(&body)?
    };
    let reason = request.reason.unwrap_or_else(|| DEFAULT_REASON.into());
    let ctx = Context {
        tenant_id: tenant.to_string(),
        correlation_id: id.stream().to_string(),
        idempotency_key: None,
    };
    let done = run_appointment(
        &state.ports,
        &ctx,
        &id,
        AppointmentCommand::Cancel { reason },
    )
    .await?;
    tracing::info!(tenant_id = %tenant, appointment_id = %id, "appointment cancelled");
    let body = appointment_json(&id, &done).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    Ok(Json(body))
}
