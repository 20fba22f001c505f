//! Exotel's webhooks: status callbacks, and the endpoint a Voicebot applet asks for the
//! WebSocket URL of each call.
//!
//! Exotel signs nothing, so each tenant's webhook URLs carry a secret of its own in the
//! path (`/webhooks/exotel/{tenant_id}/{secret}/…`, see
//! [`parley_shared::exotel`]). The secret is checked, in constant time, before the
//! request's body is read; a wrong or missing one is 403 and changes nothing.
//!
//! Calls Parley placed carry `call_id=<uuid>` in Exotel's `CustomField`, which Exotel
//! hands back to status callbacks and applets; calls Parley answers are found by the
//! number dialled, and their call id is derived from Exotel's `CallSid`, so a
//! redelivered webhook lands on the same call.
//!
//! Exotel posts status callbacks as `multipart/form-data` by default, or as JSON when
//! the call was placed with `StatusCallbackContentType=application/json`; applets send
//! their parameters in the query string (a `GET`). All of these, and plain form posts,
//! are read alike.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use parley_shared::aggregate::load_any;
use parley_shared::domain::agent::{Agent, AgentStatus};
use parley_shared::domain::call::{Call, CallCommand, Carrier, Direction};
use parley_shared::domain::number::{self, Number};
use parley_shared::domain::{AgentId, CallId, LeadId, TenantId};
use parley_shared::exotel;
use parley_shared::streamtoken::{self, StreamClaims};
use serde_json::{Value, json};

use crate::WebhookState;
use crate::common::{Reject, caller_lead, close_lead_attempt, error, internal, missing, run_call};

/// How long a minted stream token is good for: Exotel opens the WebSocket as soon as it
/// has the URL.
const STREAM_TOKEN_TTL: Duration = Duration::minutes(10);

/// Exotel's callbacks are a few hundred bytes; anything far larger is not Exotel.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most fields a multipart body may have.
const MAX_PARTS: usize = 100;
/// The longest `CallSid` we accept (Exotel's are 32 hex digits).
const MAX_CALL_SID_CHARS: usize = 64;
/// The longest recording URL we keep.
const MAX_URL_CHARS: usize = 2048;

type Params = Vec<(String, String)>;

/// The first non-empty value of any of `names`, in that order.
fn param<'a>(params: &'a Params, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        params
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    })
}

fn invalid(field: &str, message: &str) -> Reject {
    error(StatusCode::BAD_REQUEST, "invalid", Some(field), message)
}

fn forbidden() -> Reject {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
        "invalid or missing webhook secret",
    )
}

fn not_found(message: &str) -> Reject {
    error(StatusCode::NOT_FOUND, "not_found", None, message)
}

/// The tenant of the path, if `secret` is the one stored for it. Anything else (an id
/// that is not one, a tenant with no secret, a wrong secret) is the same 403.
async fn verified(state: &WebhookState, tenant: &str, secret: &str) -> Result<TenantId, Reject> {
    let Ok(tenant) = TenantId::parse(tenant) else {
        return Err(forbidden());
    };
    let stored = state
        .ports
        .secrets
        .get(&exotel::webhook_secret_name(&tenant))
        .await
        .map_err(internal)?;
    match stored {
        Some(stored) if exotel::webhook_secret_matches(&stored, secret) => Ok(tenant),
        Some(_) => {
            // The path holds the presented secret: it is never logged.
            tracing::warn!(tenant_id = %tenant, "Exotel webhook with a wrong secret");
            Err(forbidden())
        }
        None => {
            tracing::warn!(tenant_id = %tenant, "Exotel webhook for a tenant with no webhook secret");
            Err(forbidden())
        }
    }
}

/// The request's parameters: its body's (a form, a multipart form or a JSON object),
/// then its query string's. A body that is none of these is 400.
async fn read_params(uri: &Uri, headers: &HeaderMap, body: Body) -> Result<Params, Reject> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| invalid("body", "unreadable, or over 64 KiB"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut params = if bytes.iter().all(u8::is_ascii_whitespace) {
        Params::new()
    } else if media_type == "multipart/form-data" {
        multipart(&content_type, bytes.clone())
            .await
            .ok_or_else(|| invalid("body", "not a well-formed multipart/form-data body"))?
    } else if media_type == "application/json"
        || media_type.ends_with("+json")
        || (media_type.is_empty() && bytes.trim_ascii_start().starts_with(b"{"))
    {
        json_object(&bytes).ok_or_else(|| invalid("body", "not a JSON object"))?
    } else if media_type == "application/x-www-form-urlencoded" || media_type.is_empty() {
        serde_urlencoded::from_bytes::<Params>(&bytes)
            .map_err(|_| invalid("body", "not an application/x-www-form-urlencoded body"))?
    } else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported",
            Some("content-type"),
            "send a form, a multipart form or JSON",
        ));
    };
    let query: Params = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    params.extend(query);
    Ok(params)
}

/// A JSON object's members as parameters: text as is, numbers and booleans as written.
/// Nulls and nested values (Exotel's `Legs`) are left out.
fn json_object(bytes: &[u8]) -> Option<Params> {
    let Value::Object(members) = serde_json::from_slice::<Value>(bytes).ok()? else {
        return None;
    };
    Some(
        members
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::String(s) => Some((name, s)),
                Value::Number(n) => Some((name, n.to_string())),
                Value::Bool(b) => Some((name, b.to_string())),
                _ => None,
            })
            .collect(),
    )
}

/// The fields of a `multipart/form-data` body (RFC 7578), as text, read by `multer`.
/// `None` for anything malformed: no boundary, a part without a name, text that is not
/// UTF-8, too many parts.
async fn multipart(content_type: &str, body: Bytes) -> Option<Params> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut params = Params::new();
    while let Some(field) = form.next_field().await.ok()? {
        let name = field.name()?.to_owned();
        // Strict UTF-8: `text()` would quietly replace what does not decode.
        let value = String::from_utf8(field.bytes().await.ok()?.to_vec()).ok()?;
        params.push((name, value));
        if params.len() > MAX_PARTS {
            return None;
        }
    }
    Some(params)
}

/// Exotel's `CallSid`: required, and plain enough to go into ids and keys.
fn call_sid(params: &Params) -> Result<&str, Reject> {
    let sid = param(params, &["CallSid"])
        .ok_or_else(|| missing("CallSid"))?
        .trim();
    if sid.len() > MAX_CALL_SID_CHARS
        || !sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "CallSid",
            "must be 1 to 64 letters, digits, - or _",
        ));
    }
    Ok(sid)
}

/// The call a webhook is about, which must be `tenant`'s: the one in `CustomField` when
/// Parley placed it, else the one derived from `CallSid`. 404 for any other.
async fn find_call(
    state: &WebhookState,
    tenant: &TenantId,
    params: &Params,
    call_sid: &str,
) -> Result<(CallId, Call), Reject> {
    let id = param(params, &["CustomField"])
        .and_then(exotel::call_id_from_custom_field)
        .unwrap_or_else(|| CallId::for_carrier_call(exotel::CARRIER, call_sid));
    load_call(state, tenant, id).await
}

async fn load_call(
    state: &WebhookState,
    tenant: &TenantId,
    id: CallId,
) -> Result<(CallId, Call), Reject> {
    let loaded = load_any::<Call>(&*state.ports.events, &id.stream())
        .await
        .map_err(internal)?;
    match loaded.tenant_id {
        Some(owner) if loaded.state.exists && owner == tenant.to_string() => Ok((id, loaded.state)),
        _ => Err(not_found("no such call")),
    }
}

/// Records Exotel's `CallSid` on the call; a call that already has another is 409.
async fn assign_sid(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    call: &Call,
    call_sid: &str,
) -> Result<(), Reject> {
    if call
        .carrier_call_id
        .as_deref()
        .is_some_and(|known| known != call_sid)
    {
        return Err(error(
            StatusCode::CONFLICT,
            "conflict",
            Some("CallSid"),
            "the call already has another CallSid",
        ));
    }
    let assign = CallCommand::AssignCarrierCallId {
        carrier_call_id: call_sid.to_owned(),
    };
    run_call(state, tenant, call_id, None, assign).await?;
    Ok(())
}

/// A whole number of seconds, written as Exotel writes them (`32`, `"32"`, `32.0`).
fn seconds(raw: &str) -> Option<u32> {
    let raw = raw.trim();
    raw.parse::<u32>().ok().or_else(|| {
        raw.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= f64::from(u32::MAX))
            .map(|s| s as u32)
    })
}

/// The recording's URL, if the callback has one that is a URL (Exotel sends an empty
/// value, or `null`, when nothing was recorded).
fn recording_url(params: &Params) -> Option<String> {
    let url = param(params, &["RecordingUrl"])?.trim();
    let is_url = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL_CHARS
        && !url.chars().any(char::is_control);
    is_url.then(|| url.to_owned())
}

/// `POST /webhooks/exotel/{tenant_id}/{secret}/status`: a call's status, in whatever
/// order and however often it arrives.
pub async fn status(
    State(state): State<WebhookState>,
    Path((tenant, secret)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    status_inner(&state, &tenant, &secret, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn status_inner(
    state: &WebhookState,
    tenant: &str,
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    let tenant = verified(state, tenant, secret).await?;
    let params = read_params(uri, headers, body).await?;
    let call_sid = call_sid(&params)?;
    let raw_status = param(&params, &["Status"]).ok_or_else(|| missing("Status"))?;
    let status = exotel::call_status(raw_status)
        .ok_or_else(|| invalid("Status", "not an Exotel call status"))?;
    let (call_id, call) = find_call(state, &tenant, &params, call_sid).await?;
    let tenant = tenant.to_string();
    let duration_secs = param(&params, &["ConversationDuration", "Duration"]).and_then(seconds);
    let carrier_time = param(&params, &["DateUpdated"]).and_then(exotel::carrier_time);

    assign_sid(state, &tenant, &call_id, &call, call_sid).await?;
    let key = format!(
        "exotel-status:{call_sid}:{}",
        raw_status.trim().to_ascii_lowercase()
    );
    let command = CallCommand::RecordStatus {
        status,
        duration_secs,
        carrier_time,
    };
    let call = run_call(state, &tenant, &call_id, Some(key), command).await?;
    tracing::info!(tenant_id = %tenant, call_id = %call_id, status = %raw_status.trim(), "call status");

    if let Some(url) = recording_url(&params) {
        // Exotel keeps one recording per call, named by nothing but the call.
        let command = CallCommand::RecordRecording {
            recording_id: call_sid.to_owned(),
            url,
            duration_secs: None,
        };
        run_call(state, &tenant, &call_id, None, command).await?;
    }
    close_lead_attempt(state, &tenant, &call_id, &call).await?;
    // Exotel wants a 200; anything else it delivers again.
    Ok(StatusCode::OK.into_response())
}

/// `GET` or `POST /webhooks/exotel/{tenant_id}/{secret}/stream`: the Voicebot applet
/// asks where to stream a call; the answer is `{"url": "<wss URL>"}`, the media task's
/// with a token that opens this call's stream only.
pub async fn stream(
    State(state): State<WebhookState>,
    Path((tenant, secret)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    stream_inner(&state, &tenant, &secret, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn stream_inner(
    state: &WebhookState,
    tenant: &str,
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    let tenant = verified(state, tenant, secret).await?;
    let params = read_params(uri, headers, body).await?;
    let call_sid = call_sid(&params)?;
    if let Some(call_id) =
        param(&params, &["CustomField"]).and_then(exotel::call_id_from_custom_field)
    {
        return outbound(state, &tenant, call_id, call_sid).await;
    }
    let outbound_call = param(&params, &["Direction"])
        .is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("outbound"));
    if outbound_call {
        // Without Parley's CustomField, `To` is the person called, not a number we route.
        return Err(not_found("an outbound call Parley did not place"));
    }
    inbound(state, &tenant, &params, call_sid).await
}

/// A call to one of the tenant's numbers: recorded, then streamed to its agent.
async fn inbound(
    state: &WebhookState,
    tenant: &TenantId,
    params: &Params,
    call_sid: &str,
) -> Result<Response, Reject> {
    // Applets send `To`/`From`, newer ones `CallTo`/`CallFrom` as well.
    let dialled = param(params, &["To", "CallTo"]).ok_or_else(|| missing("To"))?;
    let routed = match exotel::phone_number(dialled) {
        Some(number) => {
            load_any::<Number>(&*state.ports.events, &number::stream(&number))
                .await
                .map_err(internal)?
                .state
        }
        None => Number::default(),
    };
    // Another tenant's number reads like no number at all.
    let (Some(agent_id), Some(to)) = (
        routed
            .agent_id
            .clone()
            .filter(|_| routed.owner.as_ref() == Some(tenant)),
        routed.number.clone(),
    ) else {
        tracing::info!(tenant_id = %tenant, "Exotel call to a number the tenant does not route");
        return Err(not_found("the number called is not routed to an agent"));
    };
    let tenant_str = tenant.to_string();
    let from = param(params, &["From", "CallFrom"]).and_then(exotel::phone_number);
    let call_id = CallId::for_carrier_call(exotel::CARRIER, call_sid);
    let lead_id = caller_lead(state, tenant, from.as_ref()).await?;
    let request = CallCommand::Request {
        direction: Direction::Inbound,
        carrier: Carrier::Exotel,
        // Withheld caller ids arrive as words: the call is still recorded.
        from: from.unwrap_or_else(|| to.clone()),
        to,
        agent_id: agent_id.clone(),
        lead_id: lead_id.clone(),
        campaign_id: None,
        attempt: 0,
    };
    let key = format!("exotel-stream:{call_sid}");
    let call = run_call(state, &tenant_str, &call_id, Some(key), request).await?;
    assign_sid(state, &tenant_str, &call_id, &call, call_sid).await?;
    tracing::info!(tenant_id = %tenant, call_id = %call_id, agent_id = %agent_id, "inbound Exotel call");

    let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
        .await
        .map_err(internal)?
        .state;
    let Some(settings) = agent
        .settings
        .as_ref()
        .filter(|_| agent.exists && !agent.deleted)
    else {
        return Err(not_found("the number's agent is not available"));
    };
    let now = state.ports.clock.now();
    if settings.status != AgentStatus::Active || !settings.business_hours.is_open(now) {
        // Exotel's flow decides what a closed line does (its applet's failure path);
        // there is no after-hours script to hand back here.
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            None,
            "the agent is not taking calls now",
        ));
    }
    stream_url(
        state,
        tenant,
        &call_id,
        &agent_id,
        Direction::Inbound,
        lead_id.as_ref(),
        now,
    )
}

/// A call Parley placed (named by its `CustomField`) has been answered.
async fn outbound(
    state: &WebhookState,
    tenant: &TenantId,
    call_id: CallId,
    call_sid: &str,
) -> Result<Response, Reject> {
    let (call_id, call) = load_call(state, tenant, call_id).await?;
    assign_sid(state, &tenant.to_string(), &call_id, &call, call_sid).await?;
    let Some(agent_id) = call.agent_id.clone() else {
        return Err(internal("outbound call without an agent"));
    };
    let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
        .await
        .map_err(internal)?
        .state;
    if !agent.exists || agent.deleted || agent.settings.is_none() {
        return Err(not_found("the call's agent is not available"));
    }
    let now = state.ports.clock.now();
    let lead = call.lead_id.as_ref();
    stream_url(
        state,
        tenant,
        &call_id,
        &agent_id,
        Direction::Outbound,
        lead,
        now,
    )
}

/// The answer Exotel documents for a dynamic stream endpoint: `{"url": "wss://…"}`,
/// here the media task's with a token for this call and the call's identifiers.
fn stream_url(
    state: &WebhookState,
    tenant: &TenantId,
    call_id: &CallId,
    agent_id: &AgentId,
    direction: Direction,
    lead_id: Option<&LeadId>,
    now: DateTime<Utc>,
) -> Result<Response, Reject> {
    let claims = StreamClaims {
        tenant_id: tenant.to_string(),
        call_id: call_id.to_string(),
        expires_at: (now + STREAM_TOKEN_TTL).timestamp(),
    };
    let token =
        streamtoken::mint(state.stream_secret.expose().as_bytes(), &claims).map_err(internal)?;
    let direction = match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    };
    let mut query = vec![
        ("token", token),
        ("call_id", call_id.to_string()),
        ("tenant_id", tenant.to_string()),
        ("agent_id", agent_id.to_string()),
        ("direction", direction.to_owned()),
    ];
    if let Some(lead) = lead_id {
        query.push(("lead_id", lead.to_string()));
    }
    let query = serde_urlencoded::to_string(&query).map_err(internal)?;
    let url = format!(
        "{}/media/exotel?{query}",
        state.media_url.trim_end_matches('/')
    );
    Ok(Json(json!({ "url": url })).into_response())
}

/// How long each escalation number rings, as on Twilio.
const TRANSFER_RING_SECS: u32 = 20;

/// `GET` or `POST /webhooks/exotel/{tenant_id}/{secret}/transfer`: the dynamic URL of
/// the Connect applet that follows the Voicebot applet in the tenant's flow. When the
/// media task closes the stream, Exotel goes on to that applet, which asks here whom to
/// dial. A call that asked for a hand-over gets its agent's escalation numbers in order
/// of preference (Exotel's Programmable Connect answer: `destination.numbers`, with the
/// call's ExoPhone as `outgoing_phone_number`); any other call gets none, so the flow
/// takes the applet's no-answer branch.
///
/// Nothing is written: Exotel asks before it dials, so whether a person answered
/// (`TransferDialled`'s `answered`) is not known here, and a guess would stand, each
/// dial being recorded once.
pub async fn transfer(
    State(state): State<WebhookState>,
    Path((tenant, secret)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    transfer_inner(&state, &tenant, &secret, &uri, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn transfer_inner(
    state: &WebhookState,
    tenant: &str,
    secret: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Reject> {
    let tenant = verified(state, tenant, secret).await?;
    let params = read_params(uri, headers, body).await?;
    let call_sid = call_sid(&params)?;
    let (call_id, call) = find_call(state, &tenant, &params, call_sid).await?;
    let numbers: Vec<String> = match (&call.transfer, &call.agent_id) {
        (Some(_), Some(agent_id)) => {
            let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
                .await
                .map_err(internal)?
                .state;
            agent
                .settings
                .filter(|_| agent.exists && !agent.deleted)
                .map(|s| {
                    s.escalation_numbers
                        .iter()
                        .map(|n| n.as_str().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    tracing::info!(
        tenant_id = %tenant,
        call_id = %call_id,
        transfer = call.transfer.is_some(),
        numbers = numbers.len(),
        "Exotel asks whom to hand the call to"
    );
    let mut answer = json!({
        "fetch_after_attempt": false,
        "destination": { "numbers": numbers },
        "max_ringing_duration": TRANSFER_RING_SECS,
    });
    // The person sees the business calling: the call's ExoPhone.
    let ours = match call.direction {
        Some(Direction::Inbound) => call.to.as_ref(),
        Some(Direction::Outbound) => call.from.as_ref(),
        None => None,
    };
    if let Some(ours) = ours {
        answer["outgoing_phone_number"] = json!(ours.as_str());
    }
    Ok(Json(answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(params: &Params) -> Vec<(&str, &str)> {
        params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn multipart_bodies_are_read() {
        let body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"CallSid\"\r\n\r\nabc123\r\n--XyZ\r\ncontent-disposition: form-data; name=\"RecordingUrl\"\r\nContent-Type: text/plain\r\n\r\nhttps://r.example/a--XyZb.mp3\r\n--XyZ\r\nContent-Disposition: form-data; name=\"Empty\"\r\n\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"Multi\"\r\n\r\nline one\r\nline two\r\n--XyZ--\r\nepilogue";
        let params = multipart("multipart/form-data; boundary=XyZ", Bytes::from(body))
            .await
            .unwrap();
        assert_eq!(
            names(&params),
            [
                ("CallSid", "abc123"),
                ("RecordingUrl", "https://r.example/a--XyZb.mp3"),
                ("Empty", ""),
                ("Multi", "line one\r\nline two"),
            ]
        );
        // A quoted boundary and other parameters, as some clients write them.
        let quoted =
            "--b\r\nContent-Disposition: form-data; name=\"Status\"\r\n\r\ncompleted\r\n--b--\r\n";
        let params = multipart(
            "multipart/form-data; charset=utf-8; boundary=\"b\"",
            Bytes::from(quoted),
        )
        .await
        .unwrap();
        assert_eq!(names(&params), [("Status", "completed")]);
    }

    #[tokio::test]
    async fn malformed_multipart_bodies_are_refused() {
        let ok = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--";
        for (content_type, body) in [
            ("multipart/form-data", ok.to_owned()),
            ("multipart/form-data; boundary=", ok.to_owned()),
            ("multipart/form-data; boundary=zzz", ok.to_owned()),
            ("multipart/form-data; boundary=b", String::new()),
            ("multipart/form-data; boundary=b", "--b".to_owned()),
            (
                "multipart/form-data; boundary=b",
                "--b\r\n\r\n1\r\n--b--".to_owned(),
            ),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--".to_owned(),
            ),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1".to_owned(),
            ),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n1\r\n--b--".to_owned(),
            ),
            (
                "multipart/form-data; boundary=b",
                "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                    .repeat(MAX_PARTS + 1)
                    + "--b--",
            ),
        ] {
            assert_eq!(
                multipart(content_type, Bytes::from(body.clone())).await,
                None,
                "{content_type}: {body:?}"
            );
        }
        let not_utf8 =
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\xfe\r\n--b--";
        assert_eq!(
            multipart(
                "multipart/form-data; boundary=b",
                Bytes::from_static(not_utf8)
            )
            .await,
            None
        );
    }

    #[test]
    fn json_bodies_keep_text_and_numbers() {
        let params = json_object(
            br#"{"CallSid": "c1", "ConversationDuration": 32, "RecordingUrl": null, "Legs": [{"Status": "completed"}], "Flag": true}"#,
        )
        .unwrap();
        assert_eq!(
            names(&params),
            [
                ("CallSid", "c1"),
                ("ConversationDuration", "32"),
                ("Flag", "true")
            ]
        );
        for bad in [&b"[]"[..], b"\"x\"", b"{", b""] {
            assert_eq!(json_object(bad), None);
        }
    }

    #[test]
    fn durations_and_recordings_are_read_leniently() {
        assert_eq!(seconds("32"), Some(32));
        assert_eq!(seconds(" 32.0 "), Some(32));
        for bad in ["", "-1", "NaN", "inf", "soon", "1e99"] {
            assert_eq!(seconds(bad), None, "{bad}");
        }
        let with = |url: &str| vec![("RecordingUrl".to_owned(), url.to_owned())];
        assert_eq!(
            recording_url(&with(" https://s3.example/r.mp3 ")).as_deref(),
            Some("https://s3.example/r.mp3")
        );
        for none in [
            "",
            "null",
            "ftp://x",
            "https://x/\ny",
            &format!("https://{}", "a".repeat(MAX_URL_CHARS)),
        ] {
            assert_eq!(recording_url(&with(none)), None, "{none:?}");
        }
    }
}
