//! Exotel's voicebot stream (the Voicebot applet's bidirectional WebSocket): the JSON
//! text frames Exotel sends, read strictly, and the ones Parley sends back. Pure: no
//! I/O.
//!
//! The events are Twilio's ([`crate::twilio_stream`]) with snake_case names:
//! `connected` (no fields), `start` (ids, the caller's and the called numbers, the
//! custom parameters of the stream URL, the audio format), `media`, `dtmf`, `mark` and
//! `stop` (with why the stream stopped, when Exotel says). Parley sends `media`, `mark`
//! and `clear` ([`media`], [`mark`], [`clear`]).
//!
//! Audio both ways is raw 16-bit little-endian mono PCM (`slin`) at the rate the applet
//! was set up with: 8, 16 or 24 kHz ([`SampleRate`]; any other rate in `start` is an
//! error, as is a payload that is not whole samples). Inbound frames are about 100 ms.
//! Outbound media must come in chunks of a multiple of 320 bytes and at least 100 ms,
//! or Exotel's playback stutters; [`outbound_chunks`] and [`Chunker`] cut audio that
//! way.
//!
//! [`parse`] reads a frame as strictly as [`crate::twilio_stream::parse`], with the same
//! limits and the same [`StreamError`], its paths in Exotel's names
//! (`field start.media_format.sample_rate: …`). Numbers Exotel sends as strings
//! (`sequence_number`, `chunk`, `timestamp`, `sample_rate`, `bit_rate`, `duration`) are
//! read from a string of ASCII digits or a JSON integer.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::twilio_stream::{
    Fields, as_string, decode_payload, encode_payload, into_number, into_string, outbound,
    read_frame, shown,
};
pub use crate::twilio_stream::{MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES, Problem, StreamError};

/// The byte count every outbound media chunk must be a multiple of: 20 ms at 8 kHz.
pub const CHUNK_MULTIPLE_BYTES: usize = 320;

/// The smallest outbound media chunk Exotel states, in bytes, whatever the rate.
pub const MIN_CHUNK_BYTES: usize = 3200;

/// One frame from Exotel, tagged by its `event`.
///
/// Serializing writes the frame as Exotel sends it (numbers as strings), so a
/// serialized frame parses back to the same value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    /// The first frame: the socket is open.
    Connected,
    /// Sent once, after `connected`: what is being streamed.
    Start {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        start: Start,
    },
    /// About 100 ms of the caller's audio.
    Media {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        media: Media,
    },
    /// The caller pressed a key.
    Dtmf {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        dtmf: Dtmf,
    },
    /// Audio sent before a [`mark`] has played (or was dropped by a [`clear`]).
    Mark {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        mark: Mark,
    },
    /// The last frame: the stream ended.
    Stop {
        #[serde(serialize_with = "as_string")]
        sequence_number: u64,
        stream_sid: String,
        stop: Stop,
    },
}

/// What `start` says about the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Start {
    pub stream_sid: String,
    pub call_sid: String,
    pub account_sid: String,
    /// The caller's number, when Exotel sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The number called, when Exotel sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The query parameters of the stream URL, by name.
    pub custom_parameters: BTreeMap<String, String>,
    pub media_format: MediaFormat,
}

/// The audio format of `media` payloads, as Exotel states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MediaFormat {
    /// `audio/x-raw`.
    pub encoding: String,
    pub sample_rate: SampleRate,
    /// Bits a sample: 16.
    #[serde(serialize_with = "as_string")]
    pub bit_rate: u32,
}

/// The sample rates a voicebot stream runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleRate {
    /// Telephone quality, Exotel's default.
    Hz8000,
    Hz16000,
    Hz24000,
}

impl SampleRate {
    /// Samples a second.
    pub const fn hz(self) -> u32 {
        match self {
            Self::Hz8000 => 8000,
            Self::Hz16000 => 16000,
            Self::Hz24000 => 24000,
        }
    }

    /// The rate for `hz`, if a stream can run at it.
    pub const fn from_hz(hz: u32) -> Option<Self> {
        match hz {
            8000 => Some(Self::Hz8000),
            16000 => Some(Self::Hz16000),
            24000 => Some(Self::Hz24000),
            _ => None,
        }
    }

    /// Bytes of 16-bit mono PCM a second.
    pub const fn bytes_per_second(self) -> usize {
        self.hz() as usize * 2
    }

    /// The size of each outbound chunk [`Chunker`] makes: 100 ms of audio, but never
    /// under [`MIN_CHUNK_BYTES`] (so 200 ms at 8 kHz), a multiple of
    /// [`CHUNK_MULTIPLE_BYTES`]: 3,200 bytes at 8 and 16 kHz, 4,800 at 24 kHz.
    pub const fn chunk_bytes(self) -> usize {
        let tenth = self.bytes_per_second() / 10;
        let bytes = if tenth > MIN_CHUNK_BYTES {
            tenth
        } else {
            MIN_CHUNK_BYTES
        };
        bytes.div_ceil(CHUNK_MULTIPLE_BYTES) * CHUNK_MULTIPLE_BYTES
    }
}

/// Written as Exotel writes it: the rate's digits, as a string.
impl Serialize for SampleRate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.hz())
    }
}

/// A `media` frame's audio.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Media {
    /// Counts the stream's media frames.
    #[serde(serialize_with = "as_string")]
    pub chunk: u64,
    /// Milliseconds from the start of the stream.
    #[serde(serialize_with = "as_string")]
    pub timestamp: u64,
    /// Base64 16-bit little-endian PCM; see [`Media::decode_payload_into`].
    pub payload: String,
}

impl Media {
    /// Decodes the payload (16-bit little-endian PCM) into `out`, cleared first.
    ///
    /// # Errors
    ///
    /// `field media.payload: …` when the payload is not base64, decodes to more than
    /// [`MAX_PAYLOAD_BYTES`] or to an odd number of bytes; `out` is then empty.
    pub fn decode_payload_into(&self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        decode_payload(&self.payload, "media.payload", out)?;
        if !out.len().is_multiple_of(2) {
            let len = out.len();
            out.clear();
            return Err(StreamError::Field {
                path: "media.payload".to_owned(),
                problem: Problem::Invalid(format!(
                    "{len} bytes is not a whole number of 16-bit samples"
                )),
            });
        }
        Ok(())
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

/// A key press.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dtmf {
    /// The key: `0`–`9`, `*` or `#`.
    pub digit: String,
    /// How long it was held, in milliseconds, when Exotel says.
    #[serde(
        serialize_with = "optional_as_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<u64>,
}

/// The mark that played (or was cleared).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// The name Parley gave it in [`mark`].
    pub name: String,
}

/// Whose stream stopped, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub call_sid: String,
    pub account_sid: String,
    /// `callended` or `stopped`, when Exotel says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Inbound {
    /// The stream's id, on every frame but `connected`.
    pub fn stream_sid(&self) -> Option<&str> {
        match self {
            Self::Connected => None,
            Self::Start { stream_sid, .. }
            | Self::Media { stream_sid, .. }
            | Self::Dtmf { stream_sid, .. }
            | Self::Mark { stream_sid, .. }
            | Self::Stop { stream_sid, .. } => Some(stream_sid),
        }
    }

    /// The frame's place in the stream, on every frame but `connected`.
    pub fn sequence_number(&self) -> Option<u64> {
        match self {
            Self::Connected => None,
            Self::Start {
                sequence_number, ..
            }
            | Self::Media {
                sequence_number, ..
            }
            | Self::Dtmf {
                sequence_number, ..
            }
            | Self::Mark {
                sequence_number, ..
            }
            | Self::Stop {
                sequence_number, ..
            } => Some(*sequence_number),
        }
    }
}

/// Reads one text frame from Exotel.
///
/// ```
/// use parley_media::exotel_stream::{Inbound, parse};
///
/// let frame = r#"{"event":"dtmf","sequence_number":"7","stream_sid":"s1","dtmf":{"digit":"5"}}"#;
/// match parse(frame).unwrap() {
///     Inbound::Dtmf { dtmf, .. } => assert_eq!(dtmf.digit, "5"),
///     other => panic!("{other:?}"),
/// }
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
    if event == "connected" {
        return Ok(Inbound::Connected);
    }
    if !matches!(event.as_str(), "start" | "media" | "dtmf" | "mark" | "stop") {
        return Err(StreamError::UnknownEvent(shown(&event)));
    }
    let sequence_number = frame.number("sequence_number")?;
    let stream_sid = frame.id("stream_sid")?;
    let mut body = frame.object(&event)?;
    let inbound = match event.as_str() {
        "start" => {
            let stream_sid_of_start = body.id("stream_sid")?;
            let call_sid = body.id("call_sid")?;
            let account_sid = body.id("account_sid")?;
            let from = body.optional("from", into_string)?;
            let to = body.optional("to", into_string)?;
            let custom_parameters = body.string_map("custom_parameters")?;
            let mut format = body.object("media_format")?;
            Inbound::Start {
                sequence_number,
                stream_sid,
                start: Start {
                    stream_sid: stream_sid_of_start,
                    call_sid,
                    account_sid,
                    from,
                    to,
                    custom_parameters,
                    media_format: MediaFormat {
                        encoding: format.string("encoding")?,
                        sample_rate: format.with("sample_rate", sample_rate)?,
                        bit_rate: format.number_as("bit_rate")?,
                    },
                },
            }
        }
        "media" => Inbound::Media {
            sequence_number,
            stream_sid,
            media: Media {
                chunk: body.number("chunk")?,
                timestamp: body.number("timestamp")?,
                payload: body.string("payload")?,
            },
        },
        "dtmf" => Inbound::Dtmf {
            sequence_number,
            stream_sid,
            dtmf: Dtmf {
                digit: body.string("digit")?,
                duration: body.optional("duration", into_number)?,
            },
        },
        "mark" => Inbound::Mark {
            sequence_number,
            stream_sid,
            mark: Mark {
                name: body.string("name")?,
            },
        },
        // "stop": the only event left.
        _ => Inbound::Stop {
            sequence_number,
            stream_sid,
            stop: Stop {
                call_sid: body.id("call_sid")?,
                account_sid: body.id("account_sid")?,
                reason: body.optional("reason", into_string)?,
            },
        },
    };
    Ok(inbound)
}

fn sample_rate(value: Value) -> Result<SampleRate, Problem> {
    let hz = into_number(value)?;
    u32::try_from(hz)
        .ok()
        .and_then(SampleRate::from_hz)
        .ok_or_else(|| {
            Problem::Invalid(format!(
                "unsupported sample rate {hz} (expected 8000, 16000 or 24000)"
            ))
        })
}

fn optional_as_string<S: Serializer>(
    value: &Option<u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(n) => serializer.collect_str(n),
        None => serializer.serialize_none(),
    }
}

/// Reads a frame through serde (as [`parse`] does, without the size limit, which only
/// applies to text).
impl<'de> Deserialize<'de> for Inbound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The `media` frame that plays `pcm_le` (16-bit little-endian PCM at the stream's
/// rate) to the caller: `{"event":"media","stream_sid":…,"media":{"payload":…}}`.
///
/// `pcm_le` should be one chunk from [`outbound_chunks`] or [`Chunker`]: Exotel wants a
/// multiple of 320 bytes and at least 100 ms.
pub fn media(stream_sid: &str, pcm_le: &[u8]) -> String {
    outbound(
        "media",
        "stream_sid",
        stream_sid,
        Some(("media", "payload", encode_payload(pcm_le))),
    )
}

/// The `mark` frame Exotel echoes back once the media sent before it has played:
/// `{"event":"mark","stream_sid":…,"mark":{"name":…}}`.
pub fn mark(stream_sid: &str, name: &str) -> String {
    outbound(
        "mark",
        "stream_sid",
        stream_sid,
        Some(("mark", "name", name.to_owned())),
    )
}

/// The `clear` frame that drops the media Exotel has not played yet (the caller
/// interrupted).
pub fn clear(stream_sid: &str) -> String {
    outbound("clear", "stream_sid", stream_sid, None)
}

/// Cuts `pcm_le` into chunks Exotel plays smoothly, each
/// [`SampleRate::chunk_bytes`] long, the last one padded with silence (zeros). No
/// audio is dropped; empty audio is no chunks.
///
/// ```
/// use parley_media::exotel_stream::{SampleRate, outbound_chunks};
///
/// let chunks = outbound_chunks(&[1; 5000], SampleRate::Hz16000);
/// assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [3200, 3200]);
/// assert!(chunks[1][1800..].iter().all(|&b| b == 0));
/// ```
pub fn outbound_chunks(pcm_le: &[u8], sample_rate: SampleRate) -> Vec<Vec<u8>> {
    let mut chunker = Chunker::new(sample_rate);
    let mut chunks = Vec::new();
    chunker.push(pcm_le, &mut chunks);
    chunks.extend(chunker.finish());
    chunks
}

/// Cuts audio that arrives in pieces (speech being synthesised) into outbound chunks,
/// keeping what does not fill a chunk until more comes, so only the end of an
/// utterance is padded.
#[derive(Clone, Debug)]
pub struct Chunker {
    chunk_bytes: usize,
    pending: Vec<u8>,
}

impl Chunker {
    pub fn new(sample_rate: SampleRate) -> Self {
        let chunk_bytes = sample_rate.chunk_bytes();
        Self {
            chunk_bytes,
            pending: Vec::with_capacity(chunk_bytes),
        }
    }

    /// Adds `pcm_le` and appends each chunk it completes to `chunks`.
    pub fn push(&mut self, mut pcm_le: &[u8], chunks: &mut Vec<Vec<u8>>) {
        while !pcm_le.is_empty() {
            let take = (self.chunk_bytes - self.pending.len()).min(pcm_le.len());
            self.pending.extend_from_slice(&pcm_le[..take]);
            pcm_le = &pcm_le[take..];
            if self.pending.len() == self.chunk_bytes {
                let next = Vec::with_capacity(self.chunk_bytes);
                chunks.push(std::mem::replace(&mut self.pending, next));
            }
        }
    }

    /// The audio kept back, padded with zeros to a whole chunk; `None` when there is
    /// none. The chunker is then empty, ready for the next utterance.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() {
            return None;
        }
        let mut last = std::mem::take(&mut self.pending);
        last.resize(self.chunk_bytes, 0);
        Some(last)
    }

    /// Bytes kept back, waiting for a whole chunk.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }
}
