//! Twilio Media Streams: the JSON text frames Twilio sends over a call's WebSocket, read
//! strictly, and the ones Parley sends back. Pure: no I/O.
//!
//! Twilio sends, in order, `connected` (the protocol and its version), `start` (the
//! stream's and call's ids, the tracks, the custom parameters Parley put in the TwiML
//! and the audio format), then `media` frames (base64 μ-law at 8 kHz, 20 ms each),
//! `dtmf` on a key press, `mark` when audio Parley queued before a mark has played (or a
//! `clear` dropped it), and finally `stop`. Parley sends `media`, `mark` and `clear`
//! ([`media`], [`mark`], [`clear`]).
//!
//! [`parse`] reads one frame into an [`Inbound`]. Anything that is not a frame Twilio
//! documents is a [`StreamError`] naming what is wrong, never a panic:
//!
//! - a frame over [`MAX_FRAME_BYTES`] is refused before it is parsed;
//! - text that is not a JSON object (including nesting deeper than `serde_json`'s
//!   recursion limit) is `not JSON`;
//! - an `event` Twilio does not document is `unknown event "…"`;
//! - a field that is missing or of the wrong type is `field <path>: …`, the path in
//!   Twilio's own (camelCase) names, such as `field start.mediaFormat.sampleRate`.
//!
//! Numbers Twilio sends as strings (`sequenceNumber`, `media.chunk`, `media.timestamp`)
//! are read from a string of ASCII digits or from a JSON integer, and so are those it
//! sends as numbers (`mediaFormat.sampleRate`, `mediaFormat.channels`); a sign, a
//! fraction, spaces or an empty string are errors. Fields Twilio may add later are
//! ignored. `customParameters` may be absent (no parameters) but its values must be
//! strings.
//!
//! The media payload stays base64 until it is needed: [`Media::decode_payload_into`]
//! decodes it into a buffer the caller reuses, refusing bad base64 and anything over
//! [`MAX_PAYLOAD_BYTES`].
//!
//! The same machinery (the error type, the limits, the field reader and the base64
//! decoder) serves [`crate::exotel_stream`], whose frames differ only in names and
//! audio format.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The largest text frame [`parse`] reads, in bytes. Twilio's frames are a few hundred
/// bytes; `start` with many custom parameters stays well under this.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The largest media payload, decoded, in bytes. Twilio sends 160 bytes (20 ms of
/// μ-law); an Exotel frame is about 100 ms of 16-bit PCM, 4,800 bytes at 24 kHz.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// One frame from Twilio, tagged by its `event`.
///
/// Serializing writes the frame as Twilio sends it (the numbers Twilio sends as
/// strings as strings), so a serialized frame parses back to the same value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Inbound {
    /// The first frame: which protocol the socket speaks (`Call`) and its version.
    Connected { protocol: String, version: String },
    /// Sent once, after `connected`: what is being streamed.
    Start {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        start: Start,
        stream_sid: String,
    },
    /// A piece of one track's audio.
    Media {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        media: Media,
    },
    /// Audio sent before a [`mark`] has played, or was dropped by a [`clear`].
    Mark {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        mark: Mark,
    },
    /// The caller pressed a key (bidirectional streams only).
    Dtmf {
        stream_sid: String,
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        dtmf: Dtmf,
    },
    /// The last frame: the stream ended (the call hung up, or the stream was stopped).
    Stop {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        stop: Stop,
    },
}

/// What `start` says about the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub stream_sid: String,
    pub account_sid: String,
    pub call_sid: String,
    /// The tracks that `media` frames will carry.
    pub tracks: Vec<Track>,
    /// The `<Parameter>`s of the TwiML `<Stream>`, by name.
    pub custom_parameters: BTreeMap<String, String>,
    pub media_format: MediaFormat,
}

/// The audio format of `media` payloads, as Twilio states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw` on every Twilio stream.
    pub encoding: String,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u16,
}

/// Which side of the call a `media` frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Track {
    /// What the far end of the call says (the caller).
    Inbound,
    /// What Twilio plays into the call (Parley's own voice, on a stream that asked for
    /// both tracks).
    Outbound,
}

/// A `media` frame's audio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Media {
    pub track: Track,
    /// Counts the track's frames from 1.
    #[serde(serialize_with = "as_string")]
    pub chunk: u64,
    /// Milliseconds from the start of the stream.
    #[serde(serialize_with = "as_string")]
    pub timestamp: u64,
    /// Base64 μ-law, 8 kHz, mono, no header; see [`Media::decode_payload_into`].
    pub payload: String,
}

impl Media {
    /// Decodes the payload into `out` (cleared first, so one buffer serves a whole call
    /// without allocating per frame).
    ///
    /// # Errors
    ///
    /// `field media.payload: …` when the payload is not base64 or decodes to more than
    /// [`MAX_PAYLOAD_BYTES`]; `out` is then empty.
    pub fn decode_payload_into(&self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        decode_payload(&self.payload, "media.payload", out)
    }

    /// The decoded payload, in a new buffer; see [`Media::decode_payload_into`].
    ///
    /// # Errors
    ///
    /// As [`Media::decode_payload_into`].
    pub fn payload_bytes(&self) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        self.decode_payload_into(&mut out)?;
        Ok(out)
    }
}

/// The mark that played (or was cleared).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// The name Parley gave it in [`mark`].
    pub name: String,
}

/// A key press.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dtmf {
    /// `inbound_track`.
    pub track: String,
    /// The key: `0`–`9`, `*` or `#`.
    pub digit: String,
}

/// Whose stream stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stop {
    pub account_sid: String,
    pub call_sid: String,
}

impl Inbound {
    /// The stream's id, on every frame but `connected`.
    pub fn stream_sid(&self) -> Option<&str> {
        match self {
            Self::Connected { .. } => None,
            Self::Start { stream_sid, .. }
            | Self::Media { stream_sid, .. }
            | Self::Mark { stream_sid, .. }
            | Self::Dtmf { stream_sid, .. }
            | Self::Stop { stream_sid, .. } => Some(stream_sid),
        }
    }

    /// The frame's place in the stream (from 1), on every frame but `connected`.
    pub fn sequence_number(&self) -> Option<u64> {
        match self {
            Self::Connected { .. } => None,
            Self::Start {
                sequence_number, ..
            }
            | Self::Media {
                sequence_number, ..
            }
            | Self::Mark {
                sequence_number, ..
            }
            | Self::Dtmf {
                sequence_number, ..
            }
            | Self::Stop {
                sequence_number, ..
            } => Some(*sequence_number),
        }
    }
}

/// Reads one text frame from Twilio.
///
/// ```
/// use parley_media::twilio_stream::{Inbound, parse};
///
/// let frame = r#"{"event":"mark","sequenceNumber":"9","streamSid":"MZ1","mark":{"name":"greeting"}}"#;
/// match parse(frame).unwrap() {
///     Inbound::Mark { mark, .. } => assert_eq!(mark.name, "greeting"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(
///     parse(r#"{"event":"hangup"}"#).unwrap_err().to_string(),
///     r#"unknown event "hangup""#
/// );
/// ```
///
/// # Errors
///
/// A [`StreamError`] naming what is wrong; see the [module documentation](self).
pub fn parse(text: &str) -> Result<Inbound, StreamError> {
    from_value(read_frame(text)?)
}

fn from_value(value: Value) -> Result<Inbound, StreamError> {
    let (event, mut frame) = Fields::frame(value)?;
    let inbound = match event.as_str() {
        "connected" => Inbound::Connected {
            protocol: frame.string("protocol")?,
            version: frame.string("version")?,
        },
        "start" => {
            let sequence_number = frame.number("sequenceNumber")?;
            let stream_sid = frame.id("streamSid")?;
            let mut start = frame.object("start")?;
            let stream_sid_of_start = start.id("streamSid")?;
            let account_sid = start.id("accountSid")?;
            let call_sid = start.id("callSid")?;
            let tracks = start.list("tracks", track)?;
            let custom_parameters = start.string_map("customParameters")?;
            let mut format = start.object("mediaFormat")?;
            Inbound::Start {
                sequence_number,
                stream_sid,
                start: Start {
                    stream_sid: stream_sid_of_start,
                    account_sid,
                    call_sid,
                    tracks,
                    custom_parameters,
                    media_format: MediaFormat {
                        encoding: format.string("encoding")?,
                        sample_rate: format.number_as("sampleRate")?,
                        channels: format.number_as("channels")?,
                    },
                },
            }
        }
        "media" => {
            let sequence_number = frame.number("sequenceNumber")?;
            let stream_sid = frame.id("streamSid")?;
            let mut media = frame.object("media")?;
            Inbound::Media {
                sequence_number,
                stream_sid,
                media: Media {
                    track: media.with("track", track)?,
                    chunk: media.number("chunk")?,
                    timestamp: media.number("timestamp")?,
                    payload: media.string("payload")?,
                },
            }
        }
        "mark" => {
            let sequence_number = frame.number("sequenceNumber")?;
            let stream_sid = frame.id("streamSid")?;
            let mut mark = frame.object("mark")?;
            Inbound::Mark {
                sequence_number,
                stream_sid,
                mark: Mark {
                    name: mark.string("name")?,
                },
            }
        }
        "dtmf" => {
            let sequence_number = frame.number("sequenceNumber")?;
            let stream_sid = frame.id("streamSid")?;
            let mut dtmf = frame.object("dtmf")?;
            Inbound::Dtmf {
                stream_sid,
                sequence_number,
                dtmf: Dtmf {
                    track: dtmf.string("track")?,
                    digit: dtmf.string("digit")?,
                },
            }
        }
        "stop" => {
            let sequence_number = frame.number("sequenceNumber")?;
            let stream_sid = frame.id("streamSid")?;
            let mut stop = frame.object("stop")?;
            Inbound::Stop {
                sequence_number,
                stream_sid,
                stop: Stop {
                    account_sid: stop.id("accountSid")?,
                    call_sid: stop.id("callSid")?,
                },
            }
        }
        other => return Err(StreamError::UnknownEvent(shown(other))),
    };
    Ok(inbound)
}

fn track(value: Value) -> Result<Track, Problem> {
    match into_string(value)?.as_str() {
        "inbound" => Ok(Track::Inbound),
        "outbound" => Ok(Track::Outbound),
        other => Err(Problem::Invalid(format!(
            "unknown track {:?} (expected inbound or outbound)",
            shown(other)
        ))),
    }
}

/// Reads a frame through serde (as [`parse`] does, without the size limit, which only
/// applies to text).
impl<'de> Deserialize<'de> for Inbound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The `media` frame that plays `mulaw` (μ-law, 8 kHz, mono, no header) into the call:
/// `{"event":"media","streamSid":…,"media":{"payload":…}}`.
pub fn media(stream_sid: &str, mulaw: &[u8]) -> String {
    outbound(
        "media",
        "streamSid",
        stream_sid,
        Some(("media", "payload", encode_payload(mulaw))),
    )
}

/// The `mark` frame Twilio echoes back once the media sent before it has played:
/// `{"event":"mark","streamSid":…,"mark":{"name":…}}`.
pub fn mark(stream_sid: &str, name: &str) -> String {
    outbound(
        "mark",
        "streamSid",
        stream_sid,
        Some(("mark", "name", name.to_owned())),
    )
}

/// The `clear` frame that drops the media Twilio has not played yet (the caller
/// interrupted); pending marks come back as `mark` frames.
pub fn clear(stream_sid: &str) -> String {
    outbound("clear", "streamSid", stream_sid, None)
}

// What follows is shared with `exotel_stream`.

/// Why a frame from a carrier could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {len} bytes is over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object: found {0}")]
    NotAnObject(&'static str),
    /// The event's name, cut to 64 characters.
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    /// `path` in the carrier's own names, dotted (`start.mediaFormat.sampleRate`).
    #[error("field {path}: {problem}")]
    Field { path: String, problem: Problem },
}

/// What is wrong with one field of a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing")]
    Missing,
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A string that is not a whole number (cut to 64 characters).
    #[error("{0:?} is not a whole number")]
    NotANumber(String),
    #[error("{0} is out of range")]
    OutOfRange(u64),
    #[error("empty")]
    Empty,
    #[error("not base64: {0}")]
    NotBase64(String),
    #[error("decodes to more than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Well-formed but not a value the carrier documents.
    #[error("{0}")]
    Invalid(String),
}

/// Checks a text frame's size and reads it as JSON.
pub(crate) fn read_frame(text: &str) -> Result<Value, StreamError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(StreamError::TooLarge {
            len: text.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(StreamError::Empty);
    }
    serde_json::from_str(text).map_err(|e| StreamError::NotJson(e.to_string()))
}

/// A JSON object being taken apart field by field, each error naming the field's path.
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// Dotted, empty at the top of the frame.
    path: String,
}

impl Fields {
    /// The top of a frame: its `event` and the rest of its fields.
    pub(crate) fn frame(value: Value) -> Result<(String, Self), StreamError> {
        let Value::Object(map) = value else {
            return Err(StreamError::NotAnObject(kind(&value)));
        };
        let mut fields = Self {
            map,
            path: String::new(),
        };
        let event = fields.string("event")?;
        Ok((event, fields))
    }

    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn error(&self, name: &str, problem: Problem) -> StreamError {
        StreamError::Field {
            path: self.path_of(name),
            problem,
        }
    }

    /// A required field, read by `read`.
    pub(crate) fn with<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(Value) -> Result<T, Problem>,
    ) -> Result<T, StreamError> {
        let value = self
            .map
            .remove(name)
            .ok_or_else(|| self.error(name, Problem::Missing))?;
        read(value).map_err(|problem| self.error(name, problem))
    }

    /// A field that may be absent or `null`, read by `read` when present.
    pub(crate) fn optional<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(Value) -> Result<T, Problem>,
    ) -> Result<Option<T>, StreamError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => read(value)
                .map(Some)
                .map_err(|problem| self.error(name, problem)),
        }
    }

    pub(crate) fn string(&mut self, name: &str) -> Result<String, StreamError> {
        self.with(name, into_string)
    }

    /// A non-empty string: an id such as a stream's or a call's.
    pub(crate) fn id(&mut self, name: &str) -> Result<String, StreamError> {
        self.with(name, |value| match into_string(value)? {
            id if id.is_empty() => Err(Problem::Empty),
            id => Ok(id),
        })
    }

    pub(crate) fn number(&mut self, name: &str) -> Result<u64, StreamError> {
        self.with(name, into_number)
    }

    /// A whole number that must fit `T`.
    pub(crate) fn number_as<T: TryFrom<u64>>(&mut self, name: &str) -> Result<T, StreamError> {
        self.with(name, |value| {
            let n = into_number(value)?;
            T::try_from(n).map_err(|_| Problem::OutOfRange(n))
        })
    }

    pub(crate) fn object(&mut self, name: &str) -> Result<Self, StreamError> {
        let path = self.path_of(name);
        self.with(name, |value| match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(wrong_type("an object", &other)),
        })
    }

    /// An array whose every element `read` accepts; an element's error names its index.
    pub(crate) fn list<T>(
        &mut self,
        name: &str,
        read: impl Fn(Value) -> Result<T, Problem>,
    ) -> Result<Vec<T>, StreamError> {
        let items = self.with(name, |value| match value {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type("an array", &other)),
        })?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                read(item).map_err(|problem| self.error(&format!("{name}[{i}]"), problem))
            })
            .collect()
    }

    /// An object of strings; absent or `null` is empty. A value's error names its key.
    pub(crate) fn string_map(
        &mut self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, StreamError> {
        let Some(map) = self.optional(name, |value| match value {
            Value::Object(map) => Ok(map),
            other => Err(wrong_type("an object", &other)),
        })?
        else {
            return Ok(BTreeMap::new());
        };
        map.into_iter()
            .map(|(key, value)| match into_string(value) {
                Ok(value) => Ok((key, value)),
                Err(problem) => Err(self.error(&format!("{name}.{}", shown(&key)), problem)),
            })
            .collect()
    }
}

pub(crate) fn into_string(value: Value) -> Result<String, Problem> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

/// A whole number, from a JSON integer or a string of ASCII digits.
pub(crate) fn into_number(value: Value) -> Result<u64, Problem> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| Problem::NotANumber(shown(&n.to_string()))),
        Value::String(s) => {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().map_err(|_| Problem::NotANumber(shown(&s)))
            } else {
                Err(Problem::NotANumber(shown(&s)))
            }
        }
        other => Err(wrong_type("a whole number or a string of digits", &other)),
    }
}

pub(crate) fn wrong_type(expected: &'static str, found: &Value) -> Problem {
    Problem::WrongType {
        expected,
        found: kind(found),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value from the frame, cut to 64 characters so an error stays short.
pub(crate) fn shown(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// Standard base64, padded or not.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes a base64 media payload into `out` (cleared first; left empty on error),
/// refusing more than [`MAX_PAYLOAD_BYTES`] before decoding anything.
pub(crate) fn decode_payload(
    payload: &str,
    path: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), StreamError> {
    out.clear();
    let error = |problem| StreamError::Field {
        path: path.to_owned(),
        problem,
    };
    let too_large = || {
        error(Problem::PayloadTooLarge {
            limit: MAX_PAYLOAD_BYTES,
        })
    };
    // Any valid base64 longer than the padded encoding of the limit decodes to more.
    if payload.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return Err(too_large());
    }
    if let Err(e) = BASE64.decode_vec(payload, out) {
        out.clear();
        return Err(error(Problem::NotBase64(e.to_string())));
    }
    if out.len() > MAX_PAYLOAD_BYTES {
        out.clear();
        return Err(too_large());
    }
    Ok(())
}

pub(crate) fn encode_payload(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An outbound frame: `{"event": event, sid_key: stream_sid}`, and `body` as
/// `{key: {inner: value}}`.
pub(crate) fn outbound(
    event: &str,
    sid_key: &str,
    stream_sid: &str,
    body: Option<(&str, &str, String)>,
) -> String {
    let mut frame = Map::new();
    frame.insert("event".to_owned(), Value::from(event));
    frame.insert(sid_key.to_owned(), Value::from(stream_sid));
    if let Some((key, inner, value)) = body {
        let mut object = Map::new();
        object.insert(inner.to_owned(), Value::String(value));
        frame.insert(key.to_owned(), Value::Object(object));
    }
    Value::Object(frame).to_string()
}

/// Serializes a number as the string of its digits, as the carriers send it.
pub(crate) fn as_string<T: fmt::Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}
