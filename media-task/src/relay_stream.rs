//! Twilio ConversationRelay: the JSON text messages Twilio sends over a relay call's
//! WebSocket, read strictly, and the ones Parley sends back. Pure: no I/O.
//!
//! With `<Connect><ConversationRelay>`, Twilio does the speech recognition and the
//! synthesis itself and the socket carries text. Twilio sends `setup` first (the
//! session's and call's ids, the numbers, the direction and the custom parameters
//! Parley put in the TwiML), then `prompt` (what the caller said; `last: false` marks
//! a partial transcript), `dtmf` (a key press), `interrupt` (the caller talked over the
//! agent; what had been spoken until then) and `error` (something went wrong on
//! Twilio's side, often a message of Parley's it could not take). Parley sends `text`
//! tokens ([`text`], [`Text`]), `end` ([`end`]) and `sendDigits` ([`send_digits`]).
//! Twilio closes the socket when the call ends.
//!
//! [`parse`] reads one message into an [`Inbound`]. Anything that is not a message
//! Twilio documents is a [`RelayError`] naming what is wrong, never a panic: a message
//! over [`MAX_FRAME_BYTES`], text that is not a JSON object, a `type` Twilio does not
//! document (`unknown type "…"`), and a field that is missing or of the wrong type
//! (`field <name>: …`, in Twilio's own camelCase names). Fields Twilio may add later are
//! ignored. Numbers Twilio sometimes sends as strings (`durationUntilInterruptMs`) are
//! read from either; `last` is a boolean (or the string `"true"`/`"false"`).
//!
//! The field reader, its error type and the size limit are [`crate::twilio_stream`]'s.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::twilio_stream::{Fields, into_number, into_string, read_frame, shown, wrong_type};
pub use crate::twilio_stream::{MAX_FRAME_BYTES, Problem, StreamError};

/// Why a message from ConversationRelay could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The message's `type`, cut to 64 characters.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// Too large, not JSON, or a field missing or of the wrong type.
    #[error(transparent)]
    Message(#[from] StreamError),
}

/// One message from ConversationRelay, by its `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// The first message: who is calling whom, and the TwiML's parameters. Boxed: it
    /// comes once and is much larger than the rest.
    Setup(Box<Setup>),
    /// What the caller said.
    Prompt(Prompt),
    /// A key the caller pressed (when the TwiML turns DTMF detection on).
    Dtmf { digit: char },
    /// The caller talked over the agent's speech, which stopped.
    Interrupt(Interrupt),
    /// Something went wrong on Twilio's side; the session goes on unless Twilio closes it.
    Error { description: String },
    /// Twilio's debugging notes (the TwiML's `debug` attribute): nothing to act on.
    Info,
}

/// What `setup` says about the session and the call.
#[derive(Clone, PartialEq, Eq)]
pub struct Setup {
    pub session_id: String,
    pub call_sid: String,
    pub account_sid: Option<String>,
    pub parent_call_sid: Option<String>,
    pub from: String,
    pub to: String,
    pub forwarded_from: Option<String>,
    pub caller_name: Option<String>,
    /// `inbound`, `outbound-api`, ...
    pub direction: String,
    /// `PSTN`, `SIP`, ...
    pub call_type: Option<String>,
    pub call_status: Option<String>,
    /// The `<Parameter>`s of the TwiML `<ConversationRelay>`, by name.
    pub custom_parameters: BTreeMap<String, String>,
}

/// Parameters whose values are credentials: never shown in Debug output.
const SECRET_PARAMETERS: [&str; 1] = ["token"];

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parameters: BTreeMap<&str, &str> = self
            .custom_parameters
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_PARAMETERS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("Setup")
            .field("session_id", &self.session_id)
            .field("call_sid", &self.call_sid)
            .field("account_sid", &self.account_sid)
            .field("parent_call_sid", &self.parent_call_sid)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("forwarded_from", &self.forwarded_from)
            .field("caller_name", &self.caller_name)
            .field("direction", &self.direction)
            .field("call_type", &self.call_type)
            .field("call_status", &self.call_status)
            .field("custom_parameters", &parameters)
            .finish()
    }
}

/// The caller's words, as Twilio's recogniser heard them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub voice_prompt: String,
    /// The language recognised, such as `en-US`.
    pub lang: Option<String>,
    /// False on a partial transcript; the caller's turn ends with `last: true`.
    pub last: bool,
}

/// What the caller heard of the agent before talking over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// The agent's text spoken until the interruption.
    pub utterance_until_interrupt: String,
    pub duration_until_interrupt_ms: Option<u64>,
}

/// Reads one text message from ConversationRelay.
///
/// ```
/// use parley_media::relay_stream::{Inbound, parse};
///
/// let message = r#"{"type":"prompt","voicePrompt":"Hi there","lang":"en-US","last":true}"#;
/// match parse(message).unwrap() {
///     Inbound::Prompt(prompt) => assert_eq!(prompt.voice_prompt, "Hi there"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(
///     parse(r#"{"type":"hangup"}"#).unwrap_err().to_string(),
///     r#"unknown type "hangup""#
/// );
/// ```
///
/// # Errors
///
/// A [`RelayError`] naming what is wrong; see the [module documentation](self).
pub fn parse(text: &str) -> Result<Inbound, RelayError> {
    let (kind, mut message) = typed(read_frame(text)?)?;
    let inbound = match kind.as_str() {
        "setup" => Inbound::Setup(Box::new(Setup {
            session_id: message.id("sessionId")?,
            call_sid: message.id("callSid")?,
            account_sid: message.optional("accountSid", into_string)?,
            parent_call_sid: message.optional("parentCallSid", into_string)?,
            from: message.string("from")?,
            to: message.string("to")?,
            forwarded_from: message.optional("forwardedFrom", into_string)?,
            caller_name: message.optional("callerName", into_string)?,
            direction: message.string("direction")?,
            call_type: message.optional("callType", into_string)?,
            call_status: message.optional("callStatus", into_string)?,
            custom_parameters: message.string_map("customParameters")?,
        })),
        "prompt" => Inbound::Prompt(Prompt {
            voice_prompt: message.string("voicePrompt")?,
            lang: message.optional("lang", into_string)?,
            last: message.with("last", into_bool)?,
        }),
        "dtmf" => Inbound::Dtmf {
            digit: message.with("digit", key)?,
        },
        "interrupt" => Inbound::Interrupt(Interrupt {
            utterance_until_interrupt: message.string("utteranceUntilInterrupt")?,
            duration_until_interrupt_ms: message
                .optional("durationUntilInterruptMs", into_number)?,
        }),
        "error" => Inbound::Error {
            description: message.string("description")?,
        },
        "info" => Inbound::Info,
        other => return Err(RelayError::UnknownType(shown(other))),
    };
    Ok(inbound)
}

/// The message's `type` and the rest of its fields.
fn typed(value: Value) -> Result<(String, Fields), StreamError> {
    // The shared reader takes a message's tag from `event`; ConversationRelay calls it
    // `type`, so it is moved there (and a stray `event` dropped) before reading.
    let value = match value {
        Value::Object(mut map) => {
            map.remove("event");
            if let Some(kind) = map.remove("type") {
                map.insert("event".to_owned(), kind);
            }
            Value::Object(map)
        }
        other => other,
    };
    Fields::frame(value).map_err(|e| match e {
        StreamError::Field { path, problem } if path == "event" => StreamError::Field {
            path: "type".to_owned(),
            problem,
        },
        other => other,
    })
}

fn into_bool(value: Value) -> Result<bool, Problem> {
    match value {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        Value::String(s) => Err(Problem::Invalid(format!(
            "{:?} is not a boolean",
            shown(&s)
        ))),
        other => Err(wrong_type("a boolean", &other)),
    }
}

/// A telephone keypad key: `0`–`9`, `*`, `#` or `A`–`D`.
fn key(value: Value) -> Result<char, Problem> {
    let digit = into_string(value)?;
    let mut chars = digit.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Ok(c),
        _ => Err(Problem::Invalid(format!(
            "{:?} is not a key (expected 0-9, *, # or A-D)",
            shown(&digit)
        ))),
    }
}

/// A piece of the agent's answer for ConversationRelay to speak. Tokens are spoken as
/// they come, joined as sent (spaces included); `last: true` ends the talk cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text<'a> {
    pub token: &'a str,
    pub last: bool,
    /// Speak this piece in another language than the session's.
    pub lang: Option<&'a str>,
    /// Whether the caller may interrupt this piece (the TwiML's setting otherwise).
    pub interruptible: Option<bool>,
    /// Whether the next talk cycle's tokens may cut this one short.
    pub preemptible: Option<bool>,
}

impl<'a> Text<'a> {
    pub fn new(token: &'a str, last: bool) -> Text<'a> {
        Text {
            token,
            last,
            lang: None,
            interruptible: None,
            preemptible: None,
        }
    }

    /// `{"type":"text","token":…,"last":…}`, with the optional fields that are set.
    pub fn to_json(&self) -> String {
        let mut message = Map::new();
        message.insert("type".to_owned(), Value::from("text"));
        message.insert("token".to_owned(), Value::from(self.token));
        message.insert("last".to_owned(), Value::Bool(self.last));
        if let Some(lang) = self.lang {
            message.insert("lang".to_owned(), Value::from(lang));
        }
        if let Some(interruptible) = self.interruptible {
            message.insert("interruptible".to_owned(), Value::Bool(interruptible));
        }
        if let Some(preemptible) = self.preemptible {
            message.insert("preemptible".to_owned(), Value::Bool(preemptible));
        }
        Value::Object(message).to_string()
    }
}

/// The `text` message that speaks `token`: `{"type":"text","token":…,"last":…}`.
pub fn text(token: &str, last: bool) -> String {
    Text::new(token, last).to_json()
}

/// The `end` message that ends the session: `{"type":"end","handoffData":…}`. Twilio
/// hands `handoff_data` (a string, by convention JSON) to the `<Connect>`'s action URL.
/// Twilio acts on it at once: speech still playing is cut off.
pub fn end(handoff_data: Option<&str>) -> String {
    let mut message = Map::new();
    message.insert("type".to_owned(), Value::from("end"));
    if let Some(data) = handoff_data {
        message.insert("handoffData".to_owned(), Value::from(data));
    }
    Value::Object(message).to_string()
}

/// The `sendDigits` message that plays DTMF tones into the call (to navigate a phone
/// menu): `{"type":"sendDigits","digits":…}`; `digits` as Twilio takes them (`0`–`9`,
/// `*`, `#`, `w` for a pause).
pub fn send_digits(digits: &str) -> String {
    let mut message = Map::new();
    message.insert("type".to_owned(), Value::from("sendDigits"));
    message.insert("digits".to_owned(), Value::from(digits));
    Value::Object(message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup_message() -> Value {
        json!({
            "type": "setup",
            "sessionId": "VX0123",
            "accountSid": "AC0123",
            "parentCallSid": "",
            "callSid": "CA0123",
            "from": "+14155550123",
            "to": "+14155550100",
            "forwardedFrom": "+14155550199",
            "callType": "PSTN",
            "callerName": "",
            "direction": "inbound",
            "callStatus": "RINGING",
            "customParameters": {"call_id": "call-1", "tenant_id": "t-1", "token": "secret.tag"}
        })
    }

    fn error_of(message: &str) -> String {
        parse(message).unwrap_err().to_string()
    }

    #[test]
    fn setup_is_read_whole() {
        let Inbound::Setup(setup) = parse(&setup_message().to_string()).unwrap() else {
            panic!("not setup");
        };
        assert_eq!(setup.session_id, "VX0123");
        assert_eq!(setup.call_sid, "CA0123");
        assert_eq!(setup.account_sid.as_deref(), Some("AC0123"));
        assert_eq!(setup.parent_call_sid.as_deref(), Some(""));
        assert_eq!(
            (setup.from.as_str(), setup.to.as_str()),
            ("+14155550123", "+14155550100")
        );
        assert_eq!(setup.forwarded_from.as_deref(), Some("+14155550199"));
        assert_eq!(setup.direction, "inbound");
        assert_eq!(setup.call_type.as_deref(), Some("PSTN"));
        assert_eq!(setup.call_status.as_deref(), Some("RINGING"));
        assert_eq!(setup.custom_parameters["call_id"], "call-1");
        assert_eq!(setup.custom_parameters["token"], "secret.tag");
    }

    #[test]
    fn a_short_setup_with_no_parameters_is_read() {
        let message = json!({"type": "setup", "sessionId": "VX1", "callSid": "CA1",
                             "from": "+1", "to": "+2", "direction": "outbound-api"});
        let Inbound::Setup(setup) = parse(&message.to_string()).unwrap() else {
            panic!("not setup");
        };
        assert!(setup.custom_parameters.is_empty());
        assert_eq!(setup.account_sid, None);
    }

    #[test]
    fn the_stream_token_never_shows_in_debug_output() {
        let Inbound::Setup(setup) = parse(&setup_message().to_string()).unwrap() else {
            panic!("not setup");
        };
        let shown = format!("{setup:?}");
        assert!(!shown.contains("secret.tag"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("call-1"),
            "{shown}"
        );
        let shown = format!("{:?}", Inbound::Setup(setup));
        assert!(!shown.contains("secret.tag"), "{shown}");
    }

    #[test]
    fn prompts_dtmf_interrupts_and_errors_are_read() {
        assert_eq!(
            parse(
                r#"{"type":"prompt","voicePrompt":"Hi! Can you help?","lang":"en-US","last":true}"#
            )
            .unwrap(),
            Inbound::Prompt(Prompt {
                voice_prompt: "Hi! Can you help?".into(),
                lang: Some("en-US".into()),
                last: true,
            })
        );
        assert_eq!(
            parse(r#"{"type":"prompt","voicePrompt":"Hi","last":"false"}"#).unwrap(),
            Inbound::Prompt(Prompt {
                voice_prompt: "Hi".into(),
                lang: None,
                last: false,
            })
        );
        assert_eq!(
            parse(r##"{"type":"dtmf","digit":"#"}"##).unwrap(),
            Inbound::Dtmf { digit: '#' }
        );
        // Twilio's examples show the duration both as a number and as a string.
        for duration in ["460", "\"460\""] {
            let message = format!(
                r#"{{"type":"interrupt","utteranceUntilInterrupt":"Life is a complex set of","durationUntilInterruptMs":{duration}}}"#
            );
            assert_eq!(
                parse(&message).unwrap(),
                Inbound::Interrupt(Interrupt {
                    utterance_until_interrupt: "Life is a complex set of".into(),
                    duration_until_interrupt_ms: Some(460),
                })
            );
        }
        assert_eq!(
            parse(r#"{"type":"error","description":"Invalid message received"}"#).unwrap(),
            Inbound::Error {
                description: "Invalid message received".into()
            }
        );
    }

    #[test]
    fn garbage_and_unknown_types_are_errors_naming_what() {
        assert_eq!(error_of(""), "empty frame");
        assert!(error_of("{not json").starts_with("not JSON"));
        assert_eq!(error_of("[1,2]"), "not a JSON object: found an array");
        assert_eq!(error_of(r#"{"type":"hangup"}"#), r#"unknown type "hangup""#);
        // Debugging notes are known and carry nothing to act on.
        assert_eq!(
            parse(r#"{"type":"info","name":"roundTripDelayMs","value":"120"}"#),
            Ok(Inbound::Info)
        );
        assert_eq!(error_of(r#"{"voicePrompt":"hi"}"#), "field type: missing");
        assert_eq!(
            error_of(r#"{"type":7}"#),
            "field type: expected a string, found a number"
        );
        // Twilio's tag is `type`: a Media Streams `event` is not one.
        assert_eq!(error_of(r#"{"event":"prompt"}"#), "field type: missing");
        let long = "x".repeat(200);
        let shown = error_of(&format!(r#"{{"type":"{long}"}}"#));
        assert!(shown.len() < 100, "{shown}");
    }

    #[test]
    fn wrong_or_missing_fields_are_named() {
        assert_eq!(
            error_of(r#"{"type":"prompt","voicePrompt":42,"last":true}"#),
            "field voicePrompt: expected a string, found a number"
        );
        assert_eq!(
            error_of(r#"{"type":"prompt","voicePrompt":"hi"}"#),
            "field last: missing"
        );
        assert_eq!(
            error_of(r#"{"type":"prompt","voicePrompt":"hi","last":1}"#),
            "field last: expected a boolean, found a number"
        );
        assert_eq!(
            error_of(r#"{"type":"prompt","voicePrompt":"hi","last":"yes"}"#),
            r#"field last: "yes" is not a boolean"#
        );
        assert_eq!(
            error_of(r#"{"type":"prompt","voicePrompt":"hi","last":true,"lang":["en"]}"#),
            "field lang: expected a string, found an array"
        );
        assert_eq!(
            error_of(r#"{"type":"dtmf","digit":"12"}"#),
            r#"field digit: "12" is not a key (expected 0-9, *, # or A-D)"#
        );
        assert_eq!(
            error_of(r#"{"type":"dtmf","digit":1}"#),
            "field digit: expected a string, found a number"
        );
        assert_eq!(
            error_of(
                r#"{"type":"interrupt","utteranceUntilInterrupt":"so","durationUntilInterruptMs":"-4"}"#
            ),
            r#"field durationUntilInterruptMs: "-4" is not a whole number"#
        );
        assert_eq!(
            error_of(r#"{"type":"error"}"#),
            "field description: missing"
        );
        let mut setup = setup_message();
        setup["sessionId"] = json!("");
        assert_eq!(error_of(&setup.to_string()), "field sessionId: empty");
        let mut setup = setup_message();
        setup["customParameters"]["token"] = json!(12345);
        // The error names the parameter, never its value.
        assert_eq!(
            error_of(&setup.to_string()),
            "field customParameters.token: expected a string, found a number"
        );
        let mut setup = setup_message();
        setup["customParameters"] = json!("token=abc");
        assert_eq!(
            error_of(&setup.to_string()),
            "field customParameters: expected an object, found a string"
        );
        let mut setup = setup_message();
        setup.as_object_mut().unwrap().remove("callSid");
        assert_eq!(error_of(&setup.to_string()), "field callSid: missing");
    }

    #[test]
    fn oversized_and_deeply_nested_messages_are_refused() {
        let big = format!(
            r#"{{"type":"prompt","voicePrompt":"{}","last":true}}"#,
            "a".repeat(MAX_FRAME_BYTES)
        );
        assert_eq!(
            error_of(&big),
            format!(
                "frame of {} bytes is over the {MAX_FRAME_BYTES}-byte limit",
                big.len()
            )
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(error_of(&deep).starts_with("not JSON"));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let message = r#"{"type":"dtmf","digit":"5","futureField":{"a":1}}"#;
        assert_eq!(parse(message).unwrap(), Inbound::Dtmf { digit: '5' });
    }

    #[test]
    fn messages_are_written_as_twilio_reads_them() {
        let read = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        assert_eq!(
            read(text("Hello", false)),
            json!({"type": "text", "token": "Hello", "last": false})
        );
        let mut piece = Text::new("Hola", true);
        piece.lang = Some("es-ES");
        piece.interruptible = Some(false);
        piece.preemptible = Some(true);
        assert_eq!(
            read(piece.to_json()),
            json!({"type": "text", "token": "Hola", "last": true, "lang": "es-ES",
                   "interruptible": false, "preemptible": true})
        );
        // Quotes and newlines in a token stay one valid message.
        assert_eq!(
            read(text("Say \"hi\"\n", true))["token"],
            json!("Say \"hi\"\n")
        );
        assert_eq!(
            read(end(Some(r#"{"reason":"max_turns"}"#))),
            json!({"type": "end", "handoffData": "{\"reason\":\"max_turns\"}"})
        );
        assert_eq!(read(end(None)), json!({"type": "end"}));
        assert_eq!(
            read(send_digits("1234#")),
            json!({"type": "sendDigits", "digits": "1234#"})
        );
    }
}
