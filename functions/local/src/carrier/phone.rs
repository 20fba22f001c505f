//! A phone of one's own on the simulated network: the browser call page and
//! `parley call` dial one of Parley's simulated numbers through a WebSocket at
//! [`PHONE_PATH`](super::PHONE_PATH)`?to=<number>&from=<number>`.
//!
//! The simulator makes it an incoming call as Twilio would (a signed voice webhook,
//! the media stream Parley's TwiML asks for, a completed status callback) and relays
//! the audio. The phone speaks a small variant of Twilio's stream protocol, in JSON
//! text frames:
//!
//! - phone to network: `{"event":"media","media":{"payload":"<base64 8 kHz μ-law>"}}`
//!   in any length, and `{"event":"stop"}` to hang up (closing the socket does too);
//! - network to phone: `{"event":"start","callSid":…}` once Parley answers, the agent's
//!   audio as `media` frames, `clear` when the caller talked over it, whatever else the
//!   media task sends on the stream (its live transcript), and `{"event":"stop"}` when
//!   the call is over.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use parley_shared::aggregate::load_any;
use parley_shared::domain::PhoneNumber;
use parley_shared::domain::call::Carrier;
use parley_shared::domain::number::{self, Number};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::leg::{self, Leg, PhoneEvent, PhoneInput, PhoneLink, Request};
use super::{Simulator, error};

/// Who calls whom.
#[derive(Debug, Deserialize)]
pub struct Dial {
    to: Option<String>,
    from: Option<String>,
}

/// The caller id of a phone that gives none: a number reserved for fiction.
pub const DEFAULT_FROM: &str = "+12025550199";

/// The largest frame a phone may send: a second of audio, base64-encoded, with room.
const MAX_FRAME: usize = 64 * 1024;

/// `GET /simulated/phone?to=&from=`: dials one of Parley's simulated numbers.
pub async fn connect(
    State(sim): State<Simulator>,
    Query(dial): Query<Dial>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let invalid = |field: &str, message: &str| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": {"code": "invalid", "field": field, "message": message}})),
        )
            .into_response()
    };
    let Some(to) = dial
        .to
        .as_deref()
        .and_then(|t| PhoneNumber::normalise(t, None).ok())
    else {
        return invalid("to", "must be a phone number");
    };
    let from = match dial.from.as_deref() {
        None | Some("") => DEFAULT_FROM.to_owned(),
        Some(raw) => match PhoneNumber::normalise(raw, None) {
            Ok(from) => from.as_str().to_owned(),
            Err(_) => return invalid("from", "must be a phone number"),
        },
    };
    let inner = &sim.inner;
    let owned = match load_any::<Number>(&*inner.ports.events, &number::stream(&to)).await {
        Ok(loaded) => loaded.state,
        Err(e) => {
            tracing::error!(error = %e, "simulated phone: number not read");
            return error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal error")
                .into_response();
        }
    };
    let (Some(owner), Some(Carrier::Simulated)) = (owned.owner.as_ref(), owned.carrier) else {
        return invalid("to", "is not a number on the simulated carrier");
    };
    // The call is signed as Twilio signs it, with the owner's (simulated) account.
    let creds =
        match parley_shared::outbound::simulated_credentials(&*inner.ports.secrets, owner).await {
            Ok(creds) => creds,
            Err(e) => {
                tracing::error!(error = %e, "simulated phone: account not read");
                return error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal error")
                    .into_response();
            }
        };
    let request = Request {
        url: format!("{}/webhooks/twilio/voice", inner.parley_url),
        status_callback: Some(format!("{}/webhooks/twilio/status", inner.parley_url)),
        events: Vec::new(),
        amd_callback: None,
        timeout_secs: 60,
    };
    let (leg, updates) = Leg::new(
        creds.account_sid,
        creds.auth_token,
        to.as_str().to_owned(),
        from,
        request,
    );
    let leg = Arc::new(leg.inbound());
    sim.keep(leg.clone());
    let net = inner.network();
    upgrade
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| relay(socket, net, leg, updates))
}

/// Carries the call between the phone's socket and the simulated network.
async fn relay(
    socket: WebSocket,
    net: leg::Network,
    leg: Arc<Leg>,
    updates: mpsc::Receiver<leg::Update>,
) {
    let (to_phone, mut for_phone) = mpsc::channel(256);
    let (from_phone, heard) = mpsc::channel(256);
    let sid = leg.sid.clone();
    let call = tokio::spawn(leg::run_inbound(
        net,
        leg,
        PhoneLink {
            to_phone,
            from_phone: heard,
        },
        updates,
    ));
    let (mut tx, mut rx) = socket.split();
    let started = json!({"event": "start", "callSid": sid});
    if tx.send(Message::text(started.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = for_phone.recv() => {
                let frame = match event {
                    Some(PhoneEvent::Audio(audio)) => {
                        json!({"event": "media", "media": {"payload": STANDARD.encode(audio)}})
                    }
                    Some(PhoneEvent::Clear) => json!({"event": "clear"}),
                    Some(PhoneEvent::Stream(frame)) => frame,
                    Some(PhoneEvent::Ended) | None => {
                        let _ = tx.send(Message::text(json!({"event": "stop"}).to_string())).await;
                        let _ = tx.close().await;
                        break;
                    }
                };
                if tx.send(Message::text(frame.to_string())).await.is_err() {
                    let _ = from_phone.send(PhoneInput::HangUp).await;
                    break;
                }
            }
            message = rx.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(input) = said(&text) {
                        let hang_up = matches!(input, PhoneInput::HangUp);
                        if from_phone.send(input).await.is_err() || hang_up {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let _ = from_phone.send(PhoneInput::HangUp).await;
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    // The call winds down (status callback and all) whether or not the phone waits.
    drop(from_phone);
    let _ = call.await;
}

/// What a phone's frame asks for; `None` for anything else, which is ignored.
fn said(text: &str) -> Option<PhoneInput> {
    let frame: Value = serde_json::from_str(text).ok()?;
    match frame["event"].as_str()? {
        "media" => STANDARD
            .decode(frame["media"]["payload"].as_str()?)
            .ok()
            .map(PhoneInput::Audio),
        "stop" => Some(PhoneInput::HangUp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_sends_audio_and_hangs_up_and_garbage_is_ignored() {
        assert!(matches!(
            said(r#"{"event":"media","media":{"payload":"AAEC"}}"#),
            Some(PhoneInput::Audio(a)) if a == vec![0, 1, 2]
        ));
        assert!(matches!(
            said(r#"{"event":"stop"}"#),
            Some(PhoneInput::HangUp)
        ));
        for garbage in [
            "",
            "{",
            "[]",
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"payload":"%%%"}}"#,
            r#"{"event":42}"#,
        ] {
            assert!(said(garbage).is_none(), "{garbage}");
        }
    }
}
