//! The carrier side of a hand-over to a person (`transfer_to_human`) on Twilio.
//!
//! The media task tells the caller, records `TransferRequested` on the call and closes
//! the stream. Every `<Connect>` Parley writes carries an `action`, so Twilio then asks
//! `/webhooks/twilio/connected` what comes next: with a hand-over asked and escalation
//! numbers set, a `<Dial>` to the first of them (for a warm hand-over with a whisper,
//! `/webhooks/twilio/whisper`, that tells the person who answers why the caller comes);
//! with none asked, the end of the call. Each `<Dial>`'s action,
//! `/webhooks/twilio/transfer`, records whether that number answered (`TransferDialled`,
//! once per index) and dials the next one if it did not. When nobody answers, the caller
//! hears that they will be called back, and the call's lead is due for a call in 15
//! minutes.
//!
//! The call's events decide every step, never the request alone (nor ConversationRelay's
//! `HandoffData`): a redelivered callback finds its dial already recorded, gets the same
//! TwiML again and writes nothing twice.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use parley_shared::aggregate::{CommandError, load_any};
use parley_shared::domain::agent::{Agent, AgentSettings};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, Direction};
use parley_shared::domain::lead::LeadCommand;
use parley_shared::domain::{CallId, PhoneNumber, TenantId};
use parley_shared::twilio::twiml::{Dial, Number, Response as Twiml, Verb};

use crate::WebhookState;
use crate::common::{Reject, error, internal, missing, run_call};
use crate::twilio::{Params, find_call, form, param, query_call_id, twiml, verified};

/// How long each person's phone rings before the next one is tried.
const RING_SECS: u32 = 20;
/// When a lead nobody could take is called back.
const CALLBACK_AFTER: Duration = Duration::minutes(15);
/// An agent has at most 10 escalation numbers (its settings refuse more), so a dial's
/// index is below 10.
const MAX_INDEX: u32 = 10;
/// The longest reason the whisper speaks, in characters.
const MAX_REASON_CHARS: usize = 200;

const NOBODY_FREE: &str = "I'm sorry, nobody is free to take your call right now. \
                           We will call you back shortly. Goodbye.";

/// The `<Connect action>` of `call_id`'s stream or ConversationRelay session.
pub(crate) fn connected_url(public_url: &str, call_id: &CallId) -> String {
    format!("{public_url}/webhooks/twilio/connected?call_id={call_id}")
}

fn transfer_url(public_url: &str, call_id: &CallId, index: u32) -> String {
    format!("{public_url}/webhooks/twilio/transfer?call_id={call_id}&index={index}")
}

fn whisper_url(public_url: &str, call_id: &CallId) -> String {
    format!("{public_url}/webhooks/twilio/whisper?call_id={call_id}")
}

/// What the call does next, from what its events say of the hand-over.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    /// Dial escalation number `index`.
    Dial(u32, &'a PhoneNumber),
    /// Nobody left to try: tell the caller, and call the lead back.
    NobodyFree,
    /// No hand-over asked, or a person took it: the call is over.
    HangUp,
}

fn next_step<'a>(call: &Call, numbers: &'a [PhoneNumber]) -> Step<'a> {
    if call.transfer.is_none() || call.transfer_dials.iter().any(|(_, answered)| *answered) {
        return Step::HangUp;
    }
    // After the last number dialled, whatever order the callbacks came in.
    let next = call
        .transfer_dials
        .iter()
        .map(|(index, _)| index.saturating_add(1))
        .max()
        .unwrap_or(0);
    match usize::try_from(next).ok().and_then(|i| numbers.get(i)) {
        Some(number) => Step::Dial(next, number),
        None => Step::NobodyFree,
    }
}

/// The call a hand-over callback is about, and the callback's parameters, once its
/// signature checks out. The hand-over's URLs always name the call (`call_id`).
async fn signed_call(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, CallId, Call, String), Reject> {
    let params = form(body)?;
    if query_call_id(uri)?.is_none() {
        return Err(missing("call_id"));
    }
    let (call_id, call, tenant) = find_call(state, uri, &params).await?;
    verified(state, &tenant, uri, headers, &params).await?;
    Ok((params, call_id, call, tenant))
}

fn invalid(field: &str, message: &str) -> Reject {
    error(StatusCode::BAD_REQUEST, "invalid", Some(field), message)
}

/// `?index=`: which escalation number the dial was.
fn query_index(uri: &Uri) -> Result<u32, Reject> {
    let pairs: Params = serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let raw = param(&pairs, "index").ok_or_else(|| missing("index"))?;
    raw.parse::<u32>()
        .ok()
        .filter(|i| *i < MAX_INDEX)
        .ok_or_else(|| {
            invalid(
                "index",
                "not an escalation number's index (a whole number from 0 to 9)",
            )
        })
}

/// Whether the person dialled took the call, from `<Dial>`'s `DialCallStatus`.
fn dial_answered(params: &Params) -> Result<bool, Reject> {
    match param(params, "DialCallStatus").ok_or_else(|| missing("DialCallStatus"))? {
        "completed" | "answered" => Ok(true),
        "busy" | "no-answer" | "failed" | "canceled" => Ok(false),
        _ => Err(invalid("DialCallStatus", "not a Twilio DialCallStatus")),
    }
}

/// The call's agent's settings; `None` for an agent since deleted (it has nobody to hand
/// over to).
async fn agent_settings(
    state: &WebhookState,
    call: &Call,
) -> Result<Option<AgentSettings>, Reject> {
    let Some(agent_id) = &call.agent_id else {
        return Ok(None);
    };
    let agent = load_any::<Agent>(&*state.ports.events, &agent_id.stream())
        .await
        .map_err(internal)?
        .state;
    Ok(agent.settings.filter(|_| agent.exists && !agent.deleted))
}

/// Answers Twilio with the call's next step, writing the lead's callback if nobody is
/// left to try.
async fn respond(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    call: &Call,
    settings: Option<&AgentSettings>,
) -> Result<Response, Reject> {
    let numbers = settings.map_or(&[][..], |s| s.escalation_numbers.as_slice());
    match next_step(call, numbers) {
        Step::HangUp => Ok(twiml(Twiml::new().verb(Verb::Hangup))),
        Step::Dial(index, number) => {
            tracing::info!(tenant_id = %tenant, call_id = %call_id, index, "hand-over: dialling an escalation number");
            Ok(twiml(Twiml::new().verb(Verb::Dial(dial(
                state, call_id, call, number, index,
            )))))
        }
        Step::NobodyFree => {
            request_callback(state, tenant, call_id, call).await?;
            Ok(twiml(
                Twiml::new().verb(Verb::say(NOBODY_FREE)).verb(Verb::Hangup),
            ))
        }
    }
}

fn dial(
    state: &WebhookState,
    call_id: &CallId,
    call: &Call,
    number: &PhoneNumber,
    index: u32,
) -> Dial {
    // Parley's own number on the call: the person sees the business calling.
    let ours = match call.direction {
        Some(Direction::Inbound) => call.to.as_ref(),
        Some(Direction::Outbound) => call.from.as_ref(),
        None => None,
    };
    // Only an explicit cold hand-over goes without the whisper: a person who knows why
    // the caller comes is never worse off.
    let warm = call
        .transfer
        .as_ref()
        .is_some_and(|t| !t.mode.trim().eq_ignore_ascii_case("cold"));
    Dial {
        number: Number {
            number: number.as_str().to_owned(),
            url: warm.then(|| whisper_url(&state.public_url, call_id)),
        },
        caller_id: ours.map(|n| n.as_str().to_owned()),
        timeout: Some(RING_SECS),
        action: Some(transfer_url(&state.public_url, call_id, index)),
        record: None,
    }
}

/// Nobody took the hand-over: the call's lead is due for a call in 15 minutes. Once per
/// call (a redelivered callback writes nothing); a call with no lead gets none.
async fn request_callback(
    state: &WebhookState,
    tenant: &str,
    call_id: &CallId,
    call: &Call,
) -> Result<(), Reject> {
    let Some(lead_id) = &call.lead_id else {
        tracing::info!(tenant_id = %tenant, call_id = %call_id, "nobody took the hand-over; the call has no lead, so no callback is scheduled");
        return Ok(());
    };
    let tenant_id = TenantId::parse(tenant).map_err(internal)?;
    let at = state.ports.clock.now() + CALLBACK_AFTER;
    let command = LeadCommand::RequestCallback {
        at,
        call_id: Some(call_id.clone()),
    };
    let key = format!("transfer-callback:{call_id}");
    match parley_shared::leadviews::run_lead(&state.ports, &tenant_id, lead_id, command, Some(key))
        .await
    {
        Ok(_) => {
            tracing::info!(tenant_id = %tenant, call_id = %call_id, lead_id = %lead_id, %at, "nobody took the hand-over: the lead will be called back");
            Ok(())
        }
        Err(CommandError::Rejected(e)) => {
            // A lead on the do-not-call list, say: the caller still hears the goodbye.
            tracing::warn!(tenant_id = %tenant, call_id = %call_id, lead_id = %lead_id, error = %e, "nobody took the hand-over; the lead cannot be called back");
            Ok(())
        }
        Err(e) => Err(internal(e)),
    }
}

/// `POST /webhooks/twilio/connected?call_id=`: the call's stream or ConversationRelay
/// session ended (the `<Connect action>`).
pub async fn connected(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    connected_inner(&state, &uri, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn connected_inner(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Reject> {
    let (params, call_id, call, tenant) = signed_call(state, uri, headers, body).await?;
    // ConversationRelay's `HandoffData` is the media task's own note; the call's events
    // say the same, and they are what counts. Its content may be personal: not logged.
    let handoff_data = param(&params, "HandoffData").is_some();
    tracing::info!(tenant_id = %tenant, call_id = %call_id, transfer = call.transfer.is_some(), handoff_data, "stream ended");
    let settings = agent_settings(state, &call).await?;
    respond(state, &tenant, &call_id, &call, settings.as_ref()).await
}

/// `POST /webhooks/twilio/transfer?call_id=&index=`: the hand-over's dial to escalation
/// number `index` ended (the `<Dial action>`).
pub async fn transfer(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    transfer_inner(&state, &uri, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn transfer_inner(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Reject> {
    let (params, call_id, call, tenant) = signed_call(state, uri, headers, body).await?;
    let index = query_index(uri)?;
    let answered = dial_answered(&params)?;
    if call.transfer.is_none() {
        // Parley dials only for a hand-over the call asked for.
        tracing::warn!(tenant_id = %tenant, call_id = %call_id, index, "hand-over dial for a call that asked for none");
        return Ok(twiml(Twiml::new().verb(Verb::Hangup)));
    }
    let fact = CallEvent::TransferDialled { index, answered };
    let key = format!("twilio-transfer:{call_id}:{index}");
    let call = run_call(
        state,
        &tenant,
        &call_id,
        Some(key),
        CallCommand::RecordMedia(fact),
    )
    .await?;
    tracing::info!(tenant_id = %tenant, call_id = %call_id, index, answered, "hand-over dial ended");
    let settings = agent_settings(state, &call).await?;
    respond(state, &tenant, &call_id, &call, settings.as_ref()).await
}

/// `POST /webhooks/twilio/whisper?call_id=`: what the person who answers a warm
/// hand-over hears before the caller is put through (the `<Number url>`).
pub async fn whisper(
    State(state): State<WebhookState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    whisper_inner(&state, &uri, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn whisper_inner(
    state: &WebhookState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Reject> {
    let (_, call_id, call, tenant) = signed_call(state, uri, headers, body).await?;
    let Some(transfer) = &call.transfer else {
        // Nothing to tell: an empty document puts the caller straight through.
        tracing::warn!(tenant_id = %tenant, call_id = %call_id, "whisper for a call that asked for no hand-over");
        return Ok(twiml(Twiml::new()));
    };
    let settings = agent_settings(state, &call).await?;
    let agent = settings.as_ref().map(|s| s.name.as_str());
    Ok(twiml(
        Twiml::new().verb(Verb::say(whisper_text(agent, &transfer.reason))),
    ))
}

/// The whisper: who hands the caller over and why. Never the caller's number.
fn whisper_text(agent: Option<&str>, reason: &str) -> String {
    let who = match agent.map(str::trim).filter(|a| !a.is_empty()) {
        Some(name) => format!("this is {name}, the automated assistant"),
        None => "this is the automated assistant".to_owned(),
    };
    let reason = spoken_reason(reason);
    let why = if reason.is_empty() {
        String::new()
    } else {
        format!(" The reason: {reason}.")
    };
    format!("Hello, {who}. I'm handing a caller over to you.{why} Connecting you now.")
}

/// A reason code (`asked_for_human`) or phrase as words to speak: at most 200 characters,
/// and any run of 5 or more digits (a phone number the conversation wrote into it) said as
/// "a number".
fn spoken_reason(reason: &str) -> String {
    let words: String = reason
        .chars()
        .map(|c| {
            if c == '_' || c == '-' || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = String::new();
    let mut run = String::new();
    for c in words.chars() {
        if c.is_numeric() || matches!(c, ' ' | '+' | '(' | ')' | '.' | '/') {
            run.push(c);
        } else {
            flush_run(&mut run, &mut out);
            out.push(c);
        }
    }
    flush_run(&mut run, &mut out);
    let spoken = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let spoken = spoken.trim_end_matches(['.', ' ']);
    spoken.chars().take(MAX_REASON_CHARS).collect()
}

fn flush_run(run: &mut String, out: &mut String) {
    if run.chars().filter(|c| c.is_numeric()).count() >= 5 {
        out.push_str(" a number ");
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_shared::domain::call::TransferRequest;

    fn numbers(n: usize) -> Vec<PhoneNumber> {
        (0..n)
            .map(|i| PhoneNumber::parse(&format!("+1415555020{i}")).unwrap())
            .collect()
    }

    fn asked(dials: &[(u32, bool)]) -> Call {
        Call {
            exists: true,
            transfer: Some(TransferRequest {
                mode: "warm".into(),
                reason: "asked_for_human".into(),
            }),
            transfer_dials: dials.to_vec(),
            ..Call::default()
        }
    }

    #[test]
    fn the_next_step_follows_the_recorded_dials() {
        let three = numbers(3);
        assert_eq!(next_step(&Call::default(), &three), Step::HangUp);
        assert_eq!(next_step(&asked(&[]), &three), Step::Dial(0, &three[0]));
        assert_eq!(
            next_step(&asked(&[(0, false)]), &three),
            Step::Dial(1, &three[1])
        );
        // Callbacks out of order: still after the last one dialled.
        assert_eq!(
            next_step(&asked(&[(1, false), (0, false)]), &three),
            Step::Dial(2, &three[2])
        );
        assert_eq!(next_step(&asked(&[(0, true)]), &three), Step::HangUp);
        assert_eq!(
            next_step(&asked(&[(0, false), (1, false), (2, false)]), &three),
            Step::NobodyFree
        );
        assert_eq!(next_step(&asked(&[]), &[]), Step::NobodyFree);
        assert_eq!(
            next_step(&asked(&[(u32::MAX, false)]), &three),
            Step::NobodyFree
        );
    }

    #[test]
    fn the_whisper_says_who_and_why_but_never_a_number() {
        assert_eq!(
            whisper_text(Some("Riley"), "asked_for_human"),
            "Hello, this is Riley, the automated assistant. I'm handing a caller over to you. \
             The reason: asked for human. Connecting you now."
        );
        assert_eq!(
            whisper_text(None, ""),
            "Hello, this is the automated assistant. I'm handing a caller over to you. \
             Connecting you now."
        );
        assert_eq!(
            spoken_reason("wants a callback on +1 (415) 555-0132."),
            "wants a callback on a number"
        );
        assert_eq!(
            spoken_reason("billing dispute on 2 invoices, ref 12345"),
            "billing dispute on 2 invoices, ref a number"
        );
        assert_eq!(spoken_reason("emergency\n\u{7}"), "emergency");
        assert_eq!(spoken_reason(&"x".repeat(500)).chars().count(), 200);
    }
}
