//! Calls: placing one (`POST /v1/calls`), reading one as its events tell it, and
//! listing a tenant's calls with filters.
//!
//! A call is written before the carrier is asked to place it, so every attempt has a
//! history; a carrier's refusal becomes a clear API error and a failed call, never a 500.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use parley_shared::domain::agent::{Agent, AgentStatus};
use parley_shared::domain::call::{Call, CallCommand, CallError, CallStatus, Direction};
use parley_shared::domain::{CallId, CampaignId, LeadId, PhoneNumber, TenantId};
use parley_shared::outbound::{OutboundError, Placement, Refusal, RefusalKind, caller_id};
use parley_shared::readmodel::{Index, Query as ViewQuery};
use parley_shared::views::{self, call_json, load_call, refresh_call};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, RuleError};
use crate::tenants::active;
use crate::{AppState, Page, run};

impl RuleError for CallError {
    fn to_api(&self) -> ApiError {
        match self {
            CallError::NotFound => ApiError::not_found("call"),
            other => ApiError::conflict(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCall {
    /// Any common format; normalised to E.164.
    to: String,
    agent_id: String,
    /// One of the tenant's numbers; by default the first routed to the agent.
    from: Option<String>,
    lead_id: Option<String>,
    campaign_id: Option<String>,
    /// The dial attempt this call is for a lead (1 for the first).
    #[serde(default = "one")]
    attempt: u32,
    /// Fields for the agent's greeting and prompt (`{lead_name}` ...). Not stored in
    /// events: they may hold personal data that belongs on the lead.
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

fn id<T>(
    field: &'static str,
    raw: &Option<String>,
    parse: fn(&str) -> Result<T, parley_shared::domain::IdError>,
) -> Result<Option<T>, ApiError> {
    raw.as_deref()
        .map(|r| parse(r).map_err(|e| ApiError::invalid(field, e.to_string())))
        .transpose()
}

async fn show(state: &AppState, id: &CallId) -> Result<Value, ApiError> {
    let loaded = load_call(&*state.ports.events, id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok(call_json(
        id,
        &loaded.tenant_id,
        &loaded.call,
        loaded.created,
        loaded.updated,
    ))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewCall>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let to =
        PhoneNumber::normalise(&body.to, None).map_err(|e| ApiError::invalid("to", e.reason))?;
    let (agent_id, _, agent) = crate::agents::visible(&state, &caller, &body.agent_id)
        .await
        .map_err(|_| ApiError::invalid("agent_id", "no such agent"))?;
    let settings = agent_settings(&agent)?;
    let lead_id = id("lead_id", &body.lead_id, LeadId::parse)?;
    let campaign_id = id("campaign_id", &body.campaign_id, CampaignId::parse)?;
    if body.attempt == 0 || body.attempt > 100 {
        return Err(ApiError::invalid("attempt", "must be 1 to 100"));
    }
    if body.variables.len() > 50
        || body
            .variables
            .iter()
            .any(|(k, v)| k.len() > 64 || v.len() > 1000)
    {
        return Err(ApiError::invalid(
            "variables",
            "at most 50, names up to 64 and values up to 1000 characters",
        ));
    }
    let (from, carrier) = caller_id(&state.ports, &tenant, &agent_id, body.from.as_deref())
        .await
        .map_err(outbound_error)?;
    // Everything the carrier needs is checked before the call is written.
    let account = state
        .dialing
        .account(&*state.ports.secrets, &tenant, carrier)
        .await
        .map_err(outbound_error)?;

    // Someone called with no lead named becomes one, as a caller does.
    let lead_id = match (lead_id, &campaign_id) {
        (None, None) => {
            Some(parley_shared::leadviews::person_lead(&state.ports, &tenant, &to).await?)
        }
        (lead_id, _) => lead_id,
    };
    let call_id = CallId::new();
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier,
        from: from.clone(),
        to: to.clone(),
        agent_id: agent_id.clone(),
        lead_id,
        campaign_id,
        attempt: body.attempt,
    };
    run::<Call>(&state, &call_id.stream(), &tenant, request).await?;

    let placement = Placement {
        call_id: &call_id,
        from: &from,
        to: &to,
        record: settings.recording,
        max_call_seconds: settings.max_call_seconds,
    };
    let placed = state.dialing.place(&account, &placement).await;
    let result = match placed {
        Ok((sid, status)) => {
            run::<Call>(
                &state,
                &call_id.stream(),
                &tenant,
                CallCommand::AssignCarrierCallId {
                    carrier_call_id: sid,
                },
            )
            .await?;
            if status == "queued" {
                let queued = CallCommand::RecordStatus {
                    status: CallStatus::Queued,
                    duration_secs: None,
                    carrier_time: None,
                };
                run::<Call>(&state, &call_id.stream(), &tenant, queued).await?;
            }
            tracing::info!(tenant_id = %tenant, call_id = %call_id, "call placed");
            Ok(())
        }
        Err(refusal) => Err(carrier_failure(&state, &tenant, &call_id, refusal).await?),
    };
    refresh_call(&*state.ports.events, &*state.ports.views, &call_id).await?;
    result?;
    Ok((StatusCode::CREATED, Json(show(&state, &call_id).await?)))
}

/// A reason the call cannot be placed, as the API says it.
fn outbound_error(e: OutboundError) -> ApiError {
    match e {
        OutboundError::Invalid { field, reason } => ApiError::invalid(field, reason),
        OutboundError::Store(e) => e.into(),
    }
}

fn agent_settings(agent: &Agent) -> Result<&parley_shared::domain::agent::AgentSettings, ApiError> {
    let settings = agent
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::invalid("agent_id", "no such agent"))?;
    if settings.status != AgentStatus::Active {
        return Err(ApiError::invalid("agent_id", "the agent is not active"));
    }
    Ok(settings)
}

/// Records why the carrier did not place the call and says so to the API's caller.
async fn carrier_failure(
    state: &AppState,
    tenant: &TenantId,
    call_id: &CallId,
    refusal: Refusal,
) -> Result<ApiError, ApiError> {
    tracing::warn!(tenant_id = %tenant, call_id = %call_id, error = %refusal.message, "carrier did not place the call");
    let (status, code, field) = match refusal.kind {
        RefusalKind::Rejected { field } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "carrier_rejected", field)
        }
        // The call may have been placed: its status callbacks will tell.
        RefusalKind::Timeout => {
            return Ok(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "carrier_timeout",
                format!("the carrier did not answer; the call {call_id} may still go through"),
            ));
        }
        RefusalKind::Unavailable => (StatusCode::BAD_GATEWAY, "carrier_unavailable", None),
    };
    let reject = CallCommand::RecordCarrierRejection {
        code: refusal.code.as_deref().and_then(|c| c.parse().ok()),
        message: refusal.message.clone(),
    };
    run::<Call>(state, &call_id.stream(), tenant, reject).await?;
    let mut api = ApiError::new(status, code, format!("call {call_id}: {}", refusal.message));
    api.field = field.map(str::to_owned);
    Ok(api)
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = CallId::parse(&raw).map_err(|_| ApiError::not_found("call"))?;
    let loaded = load_call(&*state.ports.events, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    let tenant = TenantId::parse(&loaded.tenant_id).map_err(|_| ApiError::not_found("call"))?;
    if !caller.can_read(&tenant) {
        return Err(ApiError::not_found("call"));
    }
    let mut body = call_json(
        &id,
        &loaded.tenant_id,
        &loaded.call,
        loaded.created,
        loaded.updated,
    );
    // Recordings and transcripts are the tenant's callers' words: the admin reads the
    // call's facts, never them.
    if !matches!(caller, Caller::Admin) {
        for (key, link) in [
            ("recording_key", "recording_url"),
            ("transcript_key", "transcript_url"),
        ] {
            if let Some(url) = signed(&state, &tenant, &body[key]).await? {
                body[link] = Value::String(url);
            }
        }
    }
    Ok(Json(body))
}

/// How long a link to a recording or transcript works.
const LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// A link to the blob at `key` (a JSON string from a call view), if it is one of the
/// tenant's own recordings or transcripts.
pub(crate) async fn signed(
    state: &AppState,
    tenant: &TenantId,
    key: &Value,
) -> Result<Option<String>, ApiError> {
    let Some(key) = key.as_str() else {
        return Ok(None);
    };
    let own = ["recordings", "transcripts"]
        .iter()
        .any(|kind| key.starts_with(&format!("{kind}/{tenant}/")));
    if !own {
        tracing::warn!(tenant_id = %tenant, "a call's blob key is outside its tenant's prefix");
        return Ok(None);
    }
    Ok(Some(state.ports.blobs.url(key, LINK_LIFETIME).await?))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    direction: Option<Direction>,
    /// Calls created at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Calls created at or before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// The admin names the tenant whose calls to list.
    tenant_id: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Newest first. `direction` is applied within each page, so a page may hold fewer
/// than `limit` calls while `next_cursor` still leads on.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let tenant = match (&caller, &params.tenant_id) {
        (Caller::Tenant(own), _) => own.to_string(),
        (Caller::Admin, Some(t)) => TenantId::parse(t)
            .map_err(|e| ApiError::invalid("tenant_id", e.to_string()))?
            .to_string(),
        (Caller::Admin, None) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "the admin names the tenant whose calls to list",
            ));
        }
    };
    let mut query = match &params.status {
        Some(status) => {
            let parsed: CallStatus = serde_json::from_value(Value::String(status.clone()))
                .map_err(|_| {
                    ApiError::invalid("status", "not a call status such as completed or no_answer")
                })?;
            ViewQuery::new(
                Index::Second,
                views::call_status_partition(&tenant, &views::status_name(parsed)),
            )
        }
        None => ViewQuery::new(Index::First, views::call_partition(&tenant)),
    };
    query.descending = true;
    if params.since.is_some() || params.until.is_some() {
        let since = params
            .since
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default();
        // Sort values are "<created>#<id>": '~' sorts after every id character.
        let until = params.until.map_or_else(
            || "~".to_owned(),
            |t| format!("{}#~", t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        );
        query.sort_between = Some((since, until));
    }
    query.limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&query.limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 200"));
    }
    query.cursor = params.cursor;
    let mut page = Page::from(state.ports.views.query(&query).await?);
    if let Some(direction) = params.direction {
        let wanted = serde_json::to_value(direction).unwrap_or_default();
        page.items.retain(|call| call["direction"] == wanted);
    }
    Ok(Json(page))
}
