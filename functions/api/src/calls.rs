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
use parley_shared::exotel::{self, rest::ConnectCall, rest::ExotelError};
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
    let mut query = crate::owned_by("phone_numbers", tenant);
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
    // Everything the carrier needs is checked before the call is written.
    let account = match carrier {
        Carrier::Twilio => Account::Twilio(twilio_credentials(&state, &tenant).await?),
        Carrier::Exotel => exotel_account(&state, &tenant).await?,
        Carrier::Simulated => {
            return Err(ApiError::invalid(
                "from",
                "the simulated carrier places no calls through the API",
            ));
        }
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

    let placed = match &account {
        Account::Twilio(creds) => {
            place_twilio(&state, creds, &call_id, &from, &to, settings.recording).await
        }
        Account::Exotel {
            creds,
            flow_url,
            status_callback,
        } => {
            let connect = ConnectCall {
                from: to.as_str().to_owned(),
                caller_id: from.as_str().to_owned(),
                url: Some(flow_url.clone()),
                custom_field: Some(exotel::custom_field(&call_id)),
                status_callback: Some(status_callback.clone()),
                status_callback_events: exotel::rest::ALL_STATUS_CALLBACK_EVENTS
                    .iter()
                    .map(|e| e.to_string())
                    .collect(),
                status_callback_content_type: Some(exotel::rest::STATUS_CALLBACK_JSON.into()),
                record: settings.recording,
                time_limit_secs: Some(settings.max_call_seconds),
                timeout_secs: Some(30),
                ..ConnectCall::default()
            };
            state
                .exotel
                .connect_call(creds, &connect)
                .await
                .map(|c| (c.sid, c.status.unwrap_or_default()))
                .map_err(Refusal::from)
        }
    };
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

/// A tenant's account at the carrier a call goes out through.
enum Account {
    Twilio(Credentials),
    Exotel {
        creds: exotel::rest::Credentials,
        /// The flow whose Voicebot applet streams the call to Parley.
        flow_url: String,
        status_callback: String,
    },
}

async fn exotel_account(state: &AppState, tenant: &TenantId) -> Result<Account, ApiError> {
    let secrets = &state.ports.secrets;
    let get = |item: &'static str| async move { secrets.get(&secret_name(tenant, item)).await };
    let missing = || {
        ApiError::invalid(
            "from",
            "no Exotel credentials and flow stored for this tenant",
        )
    };
    let sid = get("exotel-account-sid").await?.ok_or_else(missing)?;
    let subdomain = get("exotel-subdomain").await?.ok_or_else(missing)?;
    let api_key = get("exotel-api-key").await?.ok_or_else(missing)?;
    let api_token = get("exotel-api-token").await?.ok_or_else(missing)?;
    let app = get("exotel-flow-app-id").await?.ok_or_else(missing)?;
    let webhook_secret = secrets
        .get(&exotel::webhook_secret_name(tenant))
        .await?
        .ok_or_else(missing)?;
    let account_sid = sid.expose().to_owned();
    Ok(Account::Exotel {
        flow_url: format!(
            "http://my.exotel.com/{account_sid}/exoml/start_voice/{}",
            app.expose()
        ),
        status_callback: exotel::status_callback_url(&state.public_url, tenant, &webhook_secret),
        creds: exotel::rest::Credentials {
            account_sid,
            api_key,
            api_token,
            subdomain: subdomain.expose().to_owned(),
        },
    })
}

async fn place_twilio(
    state: &AppState,
    creds: &Credentials,
    call_id: &CallId,
    from: &PhoneNumber,
    to: &PhoneNumber,
    record: bool,
) -> Result<(String, String), Refusal> {
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
        record,
        recording_status_callback: record
            .then(|| format!("{base}/webhooks/twilio/recording?call_id={call_id}")),
        timeout_secs: Some(30),
    };
    state
        .twilio
        .create_call(creds, &place)
        .await
        .map(|c| (c.sid, c.status))
        .map_err(Refusal::from)
}

/// Why a carrier did not place a call, whichever carrier it was.
struct Refusal {
    kind: RefusalKind,
    code: Option<String>,
    message: String,
}

enum RefusalKind {
    /// The carrier said no; `field` names the request field at fault, if known.
    Rejected { field: Option<&'static str> },
    /// No answer: the call may still have been placed.
    Timeout,
    /// The carrier could not be reached or answered nonsense.
    Unavailable,
}

impl From<TwilioError> for Refusal {
    fn from(e: TwilioError) -> Self {
        let kind = match &e {
            TwilioError::Api { .. }
                if e.is_invalid_number() || e.is_unreachable() || e.is_geo_blocked() =>
            {
                RefusalKind::Rejected { field: Some("to") }
            }
            TwilioError::Api { status: 401, .. } => RefusalKind::Rejected {
                field: Some("from"),
            },
            TwilioError::Api { .. } => RefusalKind::Rejected { field: None },
            TwilioError::Timeout { .. } | TwilioError::Transport { .. } => RefusalKind::Timeout,
            TwilioError::Unavailable { .. }
            | TwilioError::BadResponse { .. }
            | TwilioError::Invalid { .. } => RefusalKind::Unavailable,
        };
        Refusal {
            kind,
            code: e.code().map(|c| c.to_string()),
            message: e.to_string(),
        }
    }
}

impl From<ExotelError> for Refusal {
    fn from(e: ExotelError) -> Self {
        let kind = match &e {
            ExotelError::Api {
                status: 401 | 403, ..
            } => RefusalKind::Rejected {
                field: Some("from"),
            },
            ExotelError::Api { .. } => RefusalKind::Rejected { field: Some("to") },
            ExotelError::Timeout { .. } | ExotelError::Transport { .. } => RefusalKind::Timeout,
            ExotelError::Unavailable { .. }
            | ExotelError::BadResponse { .. }
            | ExotelError::Invalid { .. } => RefusalKind::Unavailable,
        };
        Refusal {
            kind,
            code: e.code().map(str::to_owned),
            message: e.to_string(),
        }
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
