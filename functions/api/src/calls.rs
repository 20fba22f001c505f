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
use parley_shared::aggregate::load_any;
use parley_shared::domain::agent::{Agent, AgentStatus};
use parley_shared::domain::call::{Call, CallCommand, CallError, CallStatus, Carrier, Direction};
use parley_shared::domain::number::{self, Number};
use parley_shared::domain::{AgentId, CallId, CampaignId, LeadId, PhoneNumber, TenantId};
use parley_shared::readmodel::{Index, Query as ViewQuery};
use parley_shared::twilio::rest::{
    ALL_STATUS_CALLBACK_EVENTS, CreateCall, Credentials, TwilioError,
};
use parley_shared::views::{self, call_json, load_call, refresh_call};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::{ApiError, RuleError};
use crate::tenants::{active, secret_name};
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

/// The number a call goes out from: the one asked for, if the tenant owns it, else the
/// first of the tenant's numbers routed to the agent.
async fn caller_id(
    state: &AppState,
    tenant: &TenantId,
    agent: &AgentId,
    from: Option<&str>,
) -> Result<(PhoneNumber, Carrier), ApiError> {
    if let Some(raw) = from {
        let number =
            PhoneNumber::normalise(raw, None).map_err(|e| ApiError::invalid("from", e.reason))?;
        let owned = load_any::<Number>(&*state.ports.events, &number::stream(&number))
            .await?
            .state;
        return match (owned.owner.as_ref(), owned.carrier) {
            (Some(owner), Some(carrier)) if owner == tenant => Ok((number, carrier)),
            _ => Err(ApiError::invalid(
                "from",
                "is not one of your phone numbers",
            )),
        };
    }
    let mut query = ViewQuery::new(Index::First, format!("phone_numbers#{tenant}"));
    query.limit = 200;
    let page = state.ports.views.query(&query).await?;
    page.views
        .iter()
        .find(|v| v.body["agent_id"].as_str() == Some(&agent.to_string()))
        .and_then(|v| {
            let number = PhoneNumber::parse(v.body["number"].as_str()?).ok()?;
            let carrier: Carrier = serde_json::from_value(v.body["carrier"].clone()).ok()?;
            Some((number, carrier))
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "from",
                "the agent has no phone number: assign one or give from",
            )
        })
}

async fn twilio_credentials(state: &AppState, tenant: &TenantId) -> Result<Credentials, ApiError> {
    let secrets = &state.ports.secrets;
    let sid = secrets
        .get(&secret_name(tenant, "twilio-account-sid"))
        .await?;
    let token = secrets
        .get(&secret_name(tenant, "twilio-auth-token"))
        .await?;
    match (sid, token) {
        (Some(sid), Some(auth_token)) => Ok(Credentials {
            account_sid: sid.expose().to_owned(),
            auth_token,
        }),
        _ => Err(ApiError::invalid(
            "from",
            "no Twilio credentials stored for this tenant",
        )),
    }
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
    let (from, carrier) = caller_id(&state, &tenant, &agent_id, body.from.as_deref()).await?;
    if carrier != Carrier::Twilio {
        return Err(ApiError::invalid(
            "from",
            "placing calls is supported through Twilio numbers",
        ));
    }
    let creds = twilio_credentials(&state, &tenant).await?;

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

    let base = &state.public_url;
    let place = CreateCall {
        to: to.as_str().to_owned(),
        from: from.as_str().to_owned(),
        url: format!("{base}/webhooks/twilio/voice?call_id={call_id}"),
        status_callback: Some(format!("{base}/webhooks/twilio/status?call_id={call_id}")),
        status_callback_events: ALL_STATUS_CALLBACK_EVENTS
            .iter()
            .map(|e| e.to_string())
            .collect(),
        machine_detection: Some("DetectMessageEnd".into()),
        async_amd: true,
        async_amd_status_callback: Some(format!("{base}/webhooks/twilio/amd?call_id={call_id}")),
        record: settings.recording,
        recording_status_callback: settings
            .recording
            .then(|| format!("{base}/webhooks/twilio/recording?call_id={call_id}")),
        timeout_secs: Some(30),
    };
    let placed = state.twilio.create_call(&creds, &place).await;
    let result = match placed {
        Ok(resource) => {
            run::<Call>(
                &state,
                &call_id.stream(),
                &tenant,
                CallCommand::AssignCarrierCallId {
                    carrier_call_id: resource.sid,
                },
            )
            .await?;
            if resource.status == "queued" {
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
        Err(e) => Err(carrier_failure(&state, &tenant, &call_id, e).await?),
    };
    refresh_call(&*state.ports.events, &*state.ports.views, &call_id).await?;
    result?;
    Ok((StatusCode::CREATED, Json(show(&state, &call_id).await?)))
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
    error: TwilioError,
) -> Result<ApiError, ApiError> {
    tracing::warn!(tenant_id = %tenant, call_id = %call_id, error = %error, "carrier did not place the call");
    let (status, code, field) = match &error {
        TwilioError::Api { .. }
            if error.is_invalid_number() || error.is_unreachable() || error.is_geo_blocked() =>
        {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "carrier_rejected",
                Some("to"),
            )
        }
        TwilioError::Api { status: 401, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "carrier_rejected",
            Some("from"),
        ),
        TwilioError::Api { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "carrier_rejected", None),
        // The call may have been placed: its status callbacks will tell.
        TwilioError::Timeout { .. } | TwilioError::Transport { .. } => {
            let mut pending = ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "carrier_timeout",
                format!("the carrier did not answer; the call {call_id} may still go through"),
            );
            pending.field = None;
            return Ok(pending);
        }
        TwilioError::Unavailable { .. }
        | TwilioError::BadResponse { .. }
        | TwilioError::Invalid { .. } => (StatusCode::BAD_GATEWAY, "carrier_unavailable", None),
    };
    let reject = CallCommand::RecordCarrierRejection {
        code: error.code(),
        message: error.to_string(),
    };
    run::<Call>(state, &call_id.stream(), tenant, reject).await?;
    let mut api = ApiError::new(status, code, format!("call {call_id}: {error}"));
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
    Ok(Json(call_json(
        &id,
        &loaded.tenant_id,
        &loaded.call,
        loaded.created,
        loaded.updated,
    )))
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
