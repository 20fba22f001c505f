//! Streaming text-to-speech: a sentence or clause goes in, audio comes out as the
//! vendor produces it, so the caller hears the first words before the last are made.
//!
//! - [`elevenlabs`]: ElevenLabs' streaming endpoint, asked for μ-law 8 kHz.
//! - [`cartesia`]: Cartesia's bytes endpoint, asked for μ-law 8 kHz.
//! - [`openai`]: OpenAI's speech endpoint (raw 24 kHz PCM).
//! - [`flite`]: the offline voice, no key and no network.

pub mod cartesia;
pub mod elevenlabs;
pub mod flite;
mod http;
pub mod openai;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::audio::AudioFormat;
use crate::vendor::VendorError;

/// The audio of one piece of text, chunk by chunk in the voice's [`TextToSpeech::format`].
/// The receiver ends after the last chunk; a failure mid-way arrives as an `Err` and
/// ends it. Dropping the receiver cancels the synthesis (barge-in).
pub type Speech = mpsc::Receiver<Result<Bytes, VendorError>>;

#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// The format of the audio [`TextToSpeech::speak`] yields.
    fn format(&self) -> AudioFormat;

    /// Starts synthesising `text`. Fails when the vendor cannot be reached or refuses
    /// before any audio.
    async fn speak(&self, text: &str) -> Result<Speech, VendorError>;
}
