//! A simulated Twilio ConversationRelay: Twilio's side of a relay call's WebSocket,
//! written from Twilio's documentation independently of the media task's own parser.
//!
//! It sends `setup` (the session's and call's ids, the numbers and the custom
//! parameters), then what the script says: `prompt`s (whole, or partial with
//! `last: false`), `dtmf`, `interrupt` (with what had been spoken of the talk cycle
//! being played), `error`, or any raw text. It collects what the server sends: `text`
//! tokens (joined into talk cycles at each `last: true`), `end` (after which, as Twilio
//! does, it closes the session) and `sendDigits`. Hanging up closes the socket, which is
//! how Twilio ends a session when the caller hangs up.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::twilio_caller::CallerError;

/// Characters a second the simulated voice speaks, for `durationUntilInterruptMs`.
const CHARS_PER_SECOND: u64 = 15;

/// What the caller (and Twilio) does, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// The caller said this: a `prompt` with `last: true`.
    Say(String),
    /// A partial transcript of what the caller is saying: `last: false`.
    SayPartly(String),
    /// The caller pressed a key.
    Dtmf(char),
    /// The caller talked over the agent after hearing the first `heard_chars`
    /// characters of the talk cycle being played (the open one, else the last one).
    Interrupt { heard_chars: usize },
    /// Twilio reports an error.
    Error(String),
    /// Send exactly this text (a malformed message).
    Raw(String),
    /// Wait this long, reading what the server sends.
    Pause(Duration),
    /// Wait until a talk cycle completes (a token with `last: true`) after this step
    /// starts, or `within` passes.
    AwaitAnswer { within: Duration },
    /// Wait until `count` more non-empty tokens have arrived, or `within` passes.
    AwaitTokens { count: usize, within: Duration },
    /// Hang up: close the session.
    HangUp,
}

/// Who is calling and where.
#[derive(Clone, Debug)]
pub struct Dial {
    /// `ws://host:port/media/twilio-relay`.
    pub url: String,
    pub session_id: String,
    pub call_sid: String,
    pub from: String,
    pub to: String,
    /// `inbound` or `outbound-api`.
    pub direction: String,
    /// The `<Parameter>`s of the TwiML `<ConversationRelay>` (token, call_id, ...).
    pub parameters: Vec<(String, String)>,
}

/// A `text` message as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub token: String,
    pub last: bool,
    pub lang: Option<String>,
    pub interruptible: Option<bool>,
    pub preemptible: Option<bool>,
    /// Ms since the session opened.
    pub at_ms: u64,
}

/// What the caller's side saw.
#[derive(Debug, Default)]
pub struct Heard {
    /// Every token, in order.
    pub tokens: Vec<Token>,
    /// Complete talk cycles: the tokens up to each `last: true`, joined as sent.
    pub answers: Vec<String>,
    /// Each `end`'s `handoffData` (`None` when it had none), with when it came (ms).
    pub ends: Vec<(Option<String>, u64)>,
    /// Each `sendDigits`'s digits.
    pub digits: Vec<String>,
    /// What was sent as each `interrupt`'s `utteranceUntilInterrupt`.
    pub interrupted: Vec<String>,
    /// Messages that are none of the above (a server bug), as received.
    pub unknown: Vec<String>,
    /// The close frame's code and reason, if the server closed first.
    pub close: Option<(u16, String)>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One session in progress.
struct Line {
    tx: SplitSink<Socket, Message>,
    rx: SplitStream<Socket>,
    started: Instant,
    heard: Heard,
    /// The talk cycle being received.
    cycle: String,
    /// The socket is closed (by either side).
    closed: bool,
    /// Sending failed: the server is going away; what it still sends is read.
    stopped: bool,
}

impl Line {
    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn send(&mut self, message: String) {
        if self.tx.send(Message::text(message)).await.is_err() {
            self.stopped = true;
        }
    }

    /// Reads what the server sends until `done` holds, the socket closes or `deadline`.
    async fn pump(&mut self, deadline: Instant, done: impl Fn(&Heard) -> bool) {
        while !self.closed && !done(&self.heard) {
            let Ok(next) = tokio::time::timeout_at(deadline, self.rx.next()).await else {
                return;
            };
            match next {
                Some(Ok(Message::Text(text))) => self.received(text.as_str()).await,
                Some(Ok(Message::Close(frame))) => {
                    self.heard.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    self.closed = true;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => self.closed = true,
            }
        }
    }

    async fn received(&mut self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            self.heard.unknown.push(text.to_owned());
            return;
        };
        let at_ms = self.ms();
        match message["type"].as_str() {
            Some("text") => {
                let Some(token) = message["token"].as_str() else {
                    self.heard.unknown.push(text.to_owned());
                    return;
                };
                let last = message["last"].as_bool().unwrap_or(false);
                self.cycle.push_str(token);
                if last {
                    self.heard.answers.push(std::mem::take(&mut self.cycle));
                }
                self.heard.tokens.push(Token {
                    token: token.to_owned(),
                    last,
                    lang: message["lang"].as_str().map(str::to_owned),
                    interruptible: message["interruptible"].as_bool(),
                    preemptible: message["preemptible"].as_bool(),
                    at_ms,
                });
            }
            Some("end") => {
                let data = message["handoffData"].as_str().map(str::to_owned);
                self.heard.ends.push((data, at_ms));
                // Twilio ends the session: the socket closes.
                let _ = self
                    .tx
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "session ended".into(),
                    })))
                    .await;
                self.closed = true;
            }
            Some("sendDigits") => match message["digits"].as_str() {
                Some(digits) => self.heard.digits.push(digits.to_owned()),
                None => self.heard.unknown.push(text.to_owned()),
            },
            _ => self.heard.unknown.push(text.to_owned()),
        }
    }
}

/// Opens the session and plays `steps`; returns once the session is over (the server
/// ended or closed it, or the caller hung up), or 10 s after the last step.
pub async fn call(dial: &Dial, steps: Vec<Step>) -> Result<Heard, CallerError> {
    let (socket, _) = tokio_tungstenite::connect_async(&dial.url)
        .await
        .map_err(|e| CallerError::Connect(e.to_string()))?;
    let (tx, rx) = socket.split();
    let mut line = Line {
        tx,
        rx,
        started: Instant::now(),
        heard: Heard::default(),
        cycle: String::new(),
        closed: false,
        stopped: false,
    };
    let parameters: serde_json::Map<String, Value> = dial
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    line.tx
        .send(Message::text(
            json!({
                "type": "setup",
                "sessionId": dial.session_id,
                "accountSid": "ACsimulated",
                "parentCallSid": "",
                "callSid": dial.call_sid,
                "from": dial.from,
                "to": dial.to,
                "forwardedFrom": "",
                "callType": "PSTN",
                "callerName": "",
                "direction": dial.direction,
                "callStatus": "IN-PROGRESS",
                "customParameters": parameters,
            })
            .to_string(),
        ))
        .await
        .map_err(|e| CallerError::Socket(e.to_string()))?;

    for step in steps {
        if line.closed || line.stopped {
            break;
        }
        // What the server sent meanwhile is read before the next move.
        line.pump(Instant::now(), |_| false).await;
        match step {
            Step::Say(text) => {
                let m =
                    json!({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": true});
                line.send(m.to_string()).await;
            }
            Step::SayPartly(text) => {
                let m =
                    json!({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": false});
                line.send(m.to_string()).await;
            }
            Step::Dtmf(digit) => {
                let m = json!({"type": "dtmf", "digit": digit.to_string()});
                line.send(m.to_string()).await;
            }
            Step::Interrupt { heard_chars } => {
                let playing = if line.cycle.is_empty() {
                    line.heard.answers.last().cloned().unwrap_or_default()
                } else {
                    std::mem::take(&mut line.cycle)
                };
                let spoken: String = playing.chars().take(heard_chars).collect();
                let duration = spoken.chars().count() as u64 * 1000 / CHARS_PER_SECOND;
                line.heard.interrupted.push(spoken.clone());
                // Twilio writes the duration as a string in some of its examples.
                let m = json!({"type": "interrupt", "utteranceUntilInterrupt": spoken,
                               "durationUntilInterruptMs": duration.to_string()});
                line.send(m.to_string()).await;
            }
            Step::Error(description) => {
                let m = json!({"type": "error", "description": description});
                line.send(m.to_string()).await;
            }
            Step::Raw(text) => line.send(text).await,
            Step::Pause(d) => line.pump(Instant::now() + d, |_| false).await,
            Step::AwaitAnswer { within } => {
                let want = line.heard.answers.len() + 1;
                line.pump(Instant::now() + within, |h| h.answers.len() >= want)
                    .await;
            }
            Step::AwaitTokens { count, within } => {
                let spoken = |h: &Heard| h.tokens.iter().filter(|t| !t.token.is_empty()).count();
                let want = spoken(&line.heard) + count;
                line.pump(Instant::now() + within, move |h| spoken(h) >= want)
                    .await;
            }
            Step::HangUp => {
                let _ = line
                    .tx
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "caller hung up".into(),
                    })))
                    .await;
                // Read until the server lets go; its close answers ours.
                line.pump(Instant::now() + Duration::from_secs(10), |_| false)
                    .await;
                line.heard.close = None;
                return Ok(line.heard);
            }
        }
    }
    line.pump(Instant::now() + Duration::from_secs(10), |_| false)
        .await;
    Ok(line.heard)
}
