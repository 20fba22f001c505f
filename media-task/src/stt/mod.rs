//! Streaming speech-to-text: the caller's audio goes in as it arrives, transcripts
//! come out as the recogniser settles on them.
//!
//! - [`deepgram`]: Deepgram's live transcription WebSocket.
//! - [`pocketsphinx`]: CMU PocketSphinx, offline, with per-turn expected phrases.

pub mod deepgram;
pub mod pocketsphinx;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::vendor::VendorError;

/// What a recogniser is asked to listen to: 16-bit little-endian PCM, mono.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SttConfig {
    pub sample_rate: u32,
    /// BCP 47, as the agent's settings hold it (`en-US`).
    pub language: String,
    /// Silence, in milliseconds, after which the recogniser may call an utterance done.
    pub endpointing_ms: u32,
}

/// What a recogniser says.
#[derive(Clone, Debug, PartialEq)]
pub enum SttEvent {
    /// The caller began speaking (where the vendor says so).
    SpeechStarted,
    /// A guess that may still change.
    Interim { text: String },
    /// Settled text for a stretch of audio. `end_of_speech` is the recogniser's own
    /// judgement that the caller has stopped (Deepgram's `speech_final`).
    Final { text: String, end_of_speech: bool },
    /// The recogniser saw a gap after the last word (Deepgram's `UtteranceEnd`).
    UtteranceEnd,
    /// The stream failed; nothing more will come.
    Failed(VendorError),
}

/// One call's live recognition. Audio sent after the vendor has gone is dropped; the
/// failure comes out of `events`. Dropping `audio` finishes the stream politely (the
/// vendor is told no more audio is coming and its last results are still delivered
/// before `events` ends).
pub struct SttStream {
    /// 16-bit little-endian PCM chunks, in the configured rate.
    pub audio: mpsc::Sender<bytes::Bytes>,
    pub events: mpsc::Receiver<SttEvent>,
}

#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// Opens a stream for one call. Fails when the vendor cannot be reached or refuses.
    async fn open(&self, config: &SttConfig) -> Result<SttStream, VendorError>;
}
