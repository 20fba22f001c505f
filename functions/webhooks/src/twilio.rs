//! Twilio's webhooks: the voice URL (what to do with a call), status callbacks, recording
//! callbacks and asynchronous answering-machine detection.
//!
//! Calls Parley placed carry `?call_id=` in every URL Parley gave Twilio; calls Parley
//! answers are found by the number dialled, and their call id is derived from Twilio's
//! `CallSid`, so a redelivered webhook lands on the same call.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use parley_shared::aggregate::load_any;
use parley_shared::domain::agent::{
    AfterHours, Agent, AgentSettings, AgentStatus, ConversationMode, VoiceProvider,
};
use parley_shared::domain::call::{
    AnsweredBy, Call, CallCommand, CallEvent, CallOutcome, CallStatus, Carrier, Direction,
};
use parley_shared::domain::campaign::{Campaign, Voicemail};
use parley_shared::domain::number::{self, Number};
use parley_shared::domain::{CallId, PhoneNumber, TenantId};
use parley_shared::outbound::twilio_credentials;
use parley_shared::streamtoken::{self, StreamClaims};
use parley_shared::twilio::signature;
use parley_shared::twilio::twiml::{
    Connect, ConnectTo, ConversationRelay, Dial, Number as DialNumber, Record, Response as Twiml,
    Stream, Verb,
};

use crate::WebhookState;
use crate::common::{Reject, caller_lead, close_lead_attempt, error, internal, missing, run_call};
use parley_shared::twilio::call_status;

/// How long a minted stream token is good for: Twilio opens the stream within seconds
/// of reading the TwiML.
const STREAM_TOKEN_TTL: Duration = Duration::minutes(10);

pub(crate) type Params = Vec<(String, String)>;

pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn forbidden() -> Reject {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
        "invalid or missing X-Twilio-Signature",
    )
}

pub(crate) fn twiml(response: Twiml) -> Response {
    ([(header::CONTENT_TYPE, "text/xml")], response.to_xml()).into_response()
}

/// The form parameters, or 400 if the body is not a form.
pub(crate) fn form(body: &Bytes) -> Result<Params, Reject> {
    serde_urlencoded::from_bytes::<Params>(body).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("body"),
            "not an application/x-www-form-urlencoded body",
        )
    })
}

pub(crate) fn query_call_id(uri: &Uri) -> Result<Option<CallId>, Reject> {
    let pairs: Params = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    match param(&pairs, "call_id") {
        None => Ok(None),
        Some(raw) => CallId::parse(raw).map(Some).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                Some("call_id"),
                "not a call id",
            )
        }),
    }
}

/// Checks the request's signature with `tenant`'s Twilio auth token. A tenant with no
/// token stored cannot be verified and is refused.
pub(crate) async fn verified(
    state: &WebhookState,
    tenant: &str,
    uri: &Uri,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), Reject> {
    let Some(presented) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(forbidden());
    };
    let token = state
        .ports
        .secrets
        .get(&format!("tenant/{tenant}/twilio-auth-token"))
        .await
        .map_err(internal)?;
    let Some(token) = token else {
        tracing::warn!(tenant_id = %tenant, "Twilio webhook for a tenant with no auth token stored");
        return Err(forbidden());
    };
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = signature::public_url(&state.public_url, path_and_query);
    if signature::is_valid(token.expose(), &url, params, presented) {
        Ok(())
    } else {
        tracing::warn!(tenant_id = %tenant, %url, "Twilio signature mismatch");
        Err(forbidden())
    }
}

/// The call a callback is about: `?call_id=` when Parley placed it, else the one derived
/// from `CallSid`. 404 for a call that does not exist (naming `call_id` when the URL
/// named it).
pub(crate) async fn find_call(
    state: &WebhookState,
    uri: &Uri,
    params: &Params,
) -> Result<(CallId, Call, String), Reject> {
    let (id, field) = match query_call_id(uri)? {
        Some(id) => (id, Some("call_id")),
        None => (
            CallId::for_carrier_call(
                "twilio",
                param(params, "CallSid").ok_or_else(|| missing("CallSid"))?,
            ),
            None,
        ),
    };
    let loaded = load_any::<Call>(&*state.ports.events, &id.stream())
        .await
        .map_err(internal)?;
    match loaded.tenant_id {
        Some(tenant) if loaded.state.exists => Ok((id, loaded.state, tenant)),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            field,
            "no such call",
        )),
    }
}

/// `POST /webhooks/twilio/voice`: what to do with a call that was just answered.
pub async fn voice(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match voice_inner(&state, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(reject) => reject.into_response(),
    }
}

async fn voice_inner(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Reject> {
    let params = form(body)?;
    let call_sid = param(&params, "CallSid")
        .ok_or_else(|| missing("CallSid"))?
        .to_owned();
    if query_call_id(uri)?.is_some() {
        return outbound(state, uri, headers, &params).await;
    }
    let to = param(&params, "To").ok_or_else(|| missing("To"))?;
    let routed = match PhoneNumber::parse(to) {
        Ok(to) => {
            load_any::<Number>(&*state.ports.events, &number::stream(&to))
                .await
                .map_err(internal)?
                .state
        }
        Err(_) => Number::default(),
    };
    let (Some(tenant), Some(agent_id), Some(to)) = (
        routed.owner.clone(),
        routed.agent_id.clone(),
        routed.number.clone(),
    ) else {
        // Nobody to verify against and nothing to write: just a polite end.
        tracing::info!("call to a number Parley does not route");
        return Ok(twiml(
            Twiml::new()
                .verb(Verb::say(
                    "Sorry, the number you have called is not in service. Goodbye.",
                ))
                .verb(Verb::Hangup),
        ));
    };
    let tenant_str = tenant.to_string();
    verified(state, &tenant_str, uri, headers, &params).await?;

    let from = param(&params, "From").and_then(|f| PhoneNumber::parse(f).ok());
    let call_id = CallId::for_carrier_call("twilio", &call_sid);
    let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
        .await
        .map_err(internal)?
        .state;
    let lead_id = caller_lead(state, &tenant, from.as_ref()).await?;
    let request = CallCommand::Request {
        direction: Direction::Inbound,
        // The simulated carrier speaks Twilio's protocol; its calls keep its name.
        carrier: match routed.carrier {
            Some(Carrier::Simulated) => Carrier::Simulated,
            _ => Carrier::Twilio,
        },
        // Withheld caller ids arrive as words ("anonymous"): the call is still recorded.
        from: from.unwrap_or_else(|| to.clone()),
        to: to.clone(),
        agent_id: agent_id.clone(),
        lead_id: lead_id.clone(),
        campaign_id: None,
        attempt: 0,
    };
    run_call(
        state,
        &tenant_str,
        &call_id,
        Some(format!("twilio-voice:{call_sid}")),
        request,
    )
    .await?;
    run_call(
        state,
        &tenant_str,
        &call_id,
        None,
        CallCommand::AssignCarrierCallId {
            carrier_call_id: call_sid.clone(),
        },
    )
    .await?;
    tracing::info!(tenant_id = %tenant, call_id = %call_id, agent_id = %agent_id, "inbound call");

    let settings = match agent
        .settings
        .as_ref()
        .filter(|_| agent.exists && !agent.deleted)
    {
        Some(settings) => settings,
        None => {
            return Ok(twiml(
                Twiml::new()
                    .verb(Verb::say("Sorry, this line is not available. Goodbye."))
                    .verb(Verb::Hangup),
            ));
        }
    };
    let now = state.ports.clock.now();
    if settings.status != AgentStatus::Active || !settings.business_hours.is_open(now) {
        return Ok(twiml(after_hours(state, settings, &call_id)));
    }
    Ok(twiml(connect(
        state,
        &tenant,
        &call_id,
        &agent_id.to_string(),
        settings,
        Direction::Inbound,
        lead_id.map(|l| l.to_string()),
        now,
    )?))
}

/// The call Parley placed has been answered.
async fn outbound(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, Reject> {
    let (call_id, call, tenant) = find_call(state, uri, params).await?;
    verified(state, &tenant, uri, headers, params).await?;
    let tenant_id = TenantId::parse(&tenant).map_err(internal)?;
    if let Some(answered_by) = param(params, "AnsweredBy").and_then(answered_by) {
        run_call(
            state,
            &tenant,
            &call_id,
            None,
            CallCommand::RecordAnsweredBy { answered_by },
        )
        .await?;
        if answered_by.is_machine() {
            // The agent never talks to a machine: the campaign's voicemail does.
            let voicemail = campaign_voicemail(state, &call).await.map_err(internal)?;
            machine_outcome(state, &tenant, &call_id, &voicemail, answered_by).await;
            return Ok(twiml(voicemail_twiml(&voicemail, answered_by)));
        }
    }
    let Some(agent_id) = call.agent_id.clone() else {
        return Err(internal("outbound call without an agent"));
    };
    let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
        .await
        .map_err(internal)?
        .state;
    let Some(settings) = agent.settings.as_ref().filter(|_| !agent.deleted) else {
        return Ok(twiml(Twiml::new().verb(Verb::Hangup)));
    };
    let lead = call.lead_id.as_ref().map(ToString::to_string);
    let now = state.ports.clock.now();
    Ok(twiml(connect(
        state,
        &tenant_id,
        &call_id,
        &agent_id.to_string(),
        settings,
        Direction::Outbound,
        lead,
        now,
    )?))
}

/// Hands the call to the media task (or to ConversationRelay), with a token that opens
/// that call's stream only.
#[allow(clippy::too_many_arguments)]
fn connect(
    state: &WebhookState,
    tenant: &TenantId,
    call_id: &CallId,
    agent_id: &str,
    settings: &AgentSettings,
    direction: Direction,
    lead_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<Twiml, Reject> {
    let claims = StreamClaims {
        tenant_id: tenant.to_string(),
        call_id: call_id.to_string(),
        expires_at: (now + STREAM_TOKEN_TTL).timestamp(),
    };
    let token =
        streamtoken::mint(state.stream_secret.expose().as_bytes(), &claims).map_err(internal)?;
    let mut parameters = vec![
        ("tenant_id".to_owned(), tenant.to_string()),
        ("agent_id".to_owned(), agent_id.to_owned()),
        ("call_id".to_owned(), call_id.to_string()),
        (
            "direction".to_owned(),
            match direction {
                Direction::Inbound => "inbound".to_owned(),
                Direction::Outbound => "outbound".to_owned(),
            },
        ),
        ("token".to_owned(), token),
    ];
    if let Some(lead) = lead_id {
        parameters.push(("lead_id".to_owned(), lead));
    }
    let to = match settings.mode {
        ConversationMode::MediaStream => ConnectTo::Stream(Stream {
            url: format!("{}/media/twilio", state.media_url),
            parameters,
            ..Stream::default()
        }),
        ConversationMode::ConversationRelay => ConnectTo::ConversationRelay(ConversationRelay {
            url: format!("{}/media/twilio-relay", state.media_url),
            language: Some(settings.language.clone()),
            // Twilio's voice by name, when the agent speaks with one of Twilio's.
            voice: (settings.voice.provider == VoiceProvider::Twilio)
                .then(|| settings.voice.voice_id.trim().to_owned())
                .filter(|v| !v.is_empty()),
            // Off by default at Twilio; the agent hears keys as in a media stream.
            dtmf_detection: Some(true),
            parameters,
            ..ConversationRelay::default()
        }),
    };
    // When the stream or session ends, Twilio asks what next: a hand-over to a person
    // if the conversation asked for one, else the end of the call.
    let connected = crate::handover::connected_url(&state.public_url, call_id);
    Ok(Twiml::new().verb(Verb::Connect(Connect::new(to).action(connected))))
}

/// What an inactive agent or a closed line does.
fn after_hours(state: &WebhookState, settings: &AgentSettings, call_id: &CallId) -> Twiml {
    match &settings.business_hours.after_hours {
        AfterHours::Voicemail { message } => Twiml::new()
            .verb(Verb::say(message.clone()))
            .verb(Verb::Record(Record {
                recording_status_callback: Some(format!(
                    "{}/webhooks/twilio/recording?call_id={call_id}",
                    state.public_url
                )),
                max_length: Some(120),
                play_beep: Some(true),
                timeout: Some(5),
                ..Record::default()
            }))
            .verb(Verb::Hangup),
        AfterHours::Forward { number } => Twiml::new().verb(Verb::Dial(Dial {
            number: DialNumber::new(number.as_str()),
            ..Dial::default()
        })),
        AfterHours::MessageAndHangUp { message } => Twiml::new()
            .verb(Verb::say(message.clone()))
            .verb(Verb::Hangup),
    }
}

/// What a machine that answered a campaign call hears: the campaign's message, if it
/// leaves one, then a hang-up. A fax machine cannot listen, so it only gets the hang-up.
fn voicemail_twiml(voicemail: &Voicemail, answered_by: AnsweredBy) -> Twiml {
    match voicemail {
        Voicemail::LeaveMessage { message } if answered_by != AnsweredBy::Fax => Twiml::new()
            .verb(Verb::say(message.clone()))
            .verb(Verb::Hangup),
        _ => Twiml::new().verb(Verb::Hangup),
    }
}

/// The voicemail setting of `call`'s campaign. A call outside any campaign, or whose
/// campaign has no settings, hangs up on a machine.
async fn campaign_voicemail(
    state: &WebhookState,
    call: &Call,
) -> Result<Voicemail, parley_shared::StoreError> {
    let Some(campaign_id) = &call.campaign_id else {
        return Ok(Voicemail::HangUp);
    };
    let campaign = load_any::<Campaign>(&*state.ports.events, &campaign_id.stream())
        .await?
        .state;
    Ok(campaign.settings.map(|s| s.voicemail).unwrap_or_default())
}

/// Takes a live campaign call that a machine answered away from the agent's stream and
/// gives it the campaign's voicemail, through Twilio's REST API. Failures are only
/// logged: the verdict is already recorded, and the callback must not be retried.
async fn leave_voicemail(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    call: &Call,
    answered_by: AnsweredBy,
    callback_sid: Option<&str>,
) {
    // Only a live campaign call: an API call stays with its agent, and an ended call
    // has nothing left to take over.
    if call.campaign_id.is_none() || call.status.is_some_and(CallStatus::is_final) {
        return;
    }
    // The SID Parley was given when it placed the call, else the one Twilio just signed.
    let Some(call_sid) = call.carrier_call_id.as_deref().or(callback_sid) else {
        tracing::warn!(call_id = %call_id, tenant_id = %tenant, "machine answered a call with no CallSid");
        return;
    };
    let result = async {
        let voicemail = campaign_voicemail(state, call).await?;
        let tenant_id = TenantId::parse(tenant)?;
        let creds = twilio_credentials(&*state.ports.secrets, &tenant_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no Twilio credentials stored for the tenant"))?;
        let twiml = voicemail_twiml(&voicemail, answered_by).to_xml();
        let client = match call.carrier {
            Some(Carrier::Simulated) => state
                .simulated
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("no simulated carrier in this stack"))?,
            _ => &state.twilio,
        };
        client.update_call(&creds, call_sid, &twiml).await?;
        Ok::<_, anyhow::Error>(voicemail)
    }
    .await;
    match result {
        Ok(voicemail) => {
            let left_message = matches!(voicemail, Voicemail::LeaveMessage { .. });
            tracing::info!(call_id = %call_id, tenant_id = %tenant, left_message, "machine answered: call taken over");
            machine_outcome(state, tenant, call_id, &voicemail, answered_by).await;
        }
        Err(e) => {
            tracing::warn!(call_id = %call_id, tenant_id = %tenant, error = %e, "could not take over the call a machine answered");
        }
    }
}

/// Records what a call a machine answered came to: voicemail, and whether a message
/// was left. The first outcome stands, so a media task that saw the call too changes
/// nothing; a failure is logged, the call goes on.
async fn machine_outcome(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    voicemail: &Voicemail,
    answered_by: AnsweredBy,
) {
    let summary = match voicemail {
        Voicemail::LeaveMessage { .. } if answered_by != AnsweredBy::Fax => {
            "A machine answered; the campaign's message was left."
        }
        _ if answered_by == AnsweredBy::Fax => "A fax machine answered; the call was ended.",
        _ => "A machine answered; no message was left.",
    };
    let fact = CallEvent::OutcomeClassified {
        outcome: CallOutcome::Voicemail,
        summary: summary.to_owned(),
    };
    let recorded = run_call(state, tenant, call_id, None, CallCommand::RecordMedia(fact)).await;
    if recorded.is_err() {
        tracing::warn!(call_id = %call_id, tenant_id = %tenant, "voicemail outcome not recorded");
    }
}

fn answered_by(raw: &str) -> Option<AnsweredBy> {
    Some(match raw {
        "human" => AnsweredBy::Human,
        "machine_start" => AnsweredBy::MachineStart,
        "machine_end_beep" => AnsweredBy::MachineEndBeep,
        "machine_end_silence" => AnsweredBy::MachineEndSilence,
        "machine_end_other" => AnsweredBy::MachineEndOther,
        "fax" => AnsweredBy::Fax,
        "unknown" => AnsweredBy::Unknown,
        _ => return None,
    })
}

/// `POST /webhooks/twilio/status`: a call's progress, in whatever order it arrives.
pub async fn status(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match status_inner(&state, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(reject) => reject.into_response(),
    }
}

async fn status_inner(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Reject> {
    let params = form(body)?;
    let (call_id, _, tenant) = find_call(state, uri, &params).await?;
    verified(state, &tenant, uri, headers, &params).await?;
    let call_sid = param(&params, "CallSid").ok_or_else(|| missing("CallSid"))?;
    let raw_status = param(&params, "CallStatus").ok_or_else(|| missing("CallStatus"))?;
    let status = call_status(raw_status).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("CallStatus"),
            "not a Twilio call status",
        )
    })?;
    let duration_secs = param(&params, "CallDuration").and_then(|d| d.parse().ok());
    let carrier_time = param(&params, "Timestamp")
        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let sequence = param(&params, "SequenceNumber").unwrap_or("-");
    let key = format!("twilio-status:{call_sid}:{raw_status}:{sequence}");
    run_call(
        state,
        &tenant,
        &call_id,
        None,
        CallCommand::AssignCarrierCallId {
            carrier_call_id: call_sid.to_owned(),
        },
    )
    .await?;
    let call = run_call(
        state,
        &tenant,
        &call_id,
        Some(key),
        CallCommand::RecordStatus {
            status,
            duration_secs,
            carrier_time,
        },
    )
    .await?;
    tracing::info!(tenant_id = %tenant, call_id = %call_id, status = raw_status, "call status");

    close_lead_attempt(state, &tenant, &call_id, &call).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /webhooks/twilio/recording`: a recording (of a call or a voicemail) is ready.
pub async fn recording(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form(&body)?;
        let (call_id, _, tenant) = find_call(&state, &uri, &params).await?;
        verified(&state, &tenant, &uri, &headers, &params).await?;
        if param(&params, "RecordingStatus").is_some_and(|s| s != "completed") {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let recording_id = param(&params, "RecordingSid")
            .ok_or_else(|| missing("RecordingSid"))?
            .to_owned();
        let url = param(&params, "RecordingUrl")
            .ok_or_else(|| missing("RecordingUrl"))?
            .to_owned();
        let duration_secs = param(&params, "RecordingDuration").and_then(|d| d.parse().ok());
        let command = CallCommand::RecordRecording {
            recording_id,
            url,
            duration_secs,
        };
        run_call(&state, &tenant, &call_id, None, command).await?;
        Ok::<_, Reject>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /webhooks/twilio/amd`: asynchronous answering-machine detection's verdict.
pub async fn amd(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form(&body)?;
        let (call_id, before, tenant) = find_call(&state, &uri, &params).await?;
        verified(&state, &tenant, &uri, &headers, &params).await?;
        let raw = param(&params, "AnsweredBy").ok_or_else(|| missing("AnsweredBy"))?;
        let answered_by = answered_by(raw).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                Some("AnsweredBy"),
                "not a Twilio AnsweredBy value",
            )
        })?;
        let call = run_call(
            &state,
            &tenant,
            &call_id,
            None,
            CallCommand::RecordAnsweredBy { answered_by },
        )
        .await?;
        // The verdict may come after the call ended: the lead's attempt learns it too.
        close_lead_attempt(&state, &tenant, &call_id, &call).await?;
        // Only the delivery that recorded the verdict acts on it (the call keeps the
        // first): a redelivery must not start the message over.
        if before.answered_by.is_none() && answered_by.is_machine() {
            let callback_sid = param(&params, "CallSid");
            leave_voicemail(&state, &tenant, &call_id, &call, answered_by, callback_sid).await;
        }
        Ok::<_, Reject>(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
