//! ElevenLabs' streaming text-to-speech, asked for μ-law at 8 kHz so the audio goes to
//! a Twilio call without conversion.
//!
//! `POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=ulaw_8000` with the
//! key in `xi-api-key` and `{"text", "model_id", "voice_settings": {"speed"}}`; the
//! response body is the raw μ-law bytes, streamed as they are made.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{Speech, TextToSpeech, http};
use crate::audio::AudioFormat;
use crate::vendor::{Endpoint, VendorError};

const VENDOR: &str = "elevenlabs";

/// Where ElevenLabs is unless `ELEVENLABS_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.elevenlabs.io";

/// The low-latency model, made for real-time conversation.
pub const DEFAULT_MODEL_ID: &str = "eleven_flash_v2_5";

/// The voice used when `ELEVENLABS_VOICE_ID` is not set (the one ElevenLabs' own
/// examples use).
pub const DEFAULT_VOICE_ID: &str = "JBFqnCBsd6RMkjVDRZzb";

/// One ElevenLabs voice as an agent uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct ElevenLabsVoice {
    pub voice_id: String,
    pub model_id: String,
    /// ElevenLabs takes 0.7 to 1.2; `None` leaves the voice's own.
    pub speed: Option<f32>,
}

impl ElevenLabsVoice {
    pub fn new(voice_id: &str) -> ElevenLabsVoice {
        ElevenLabsVoice {
            voice_id: voice_id.to_owned(),
            model_id: DEFAULT_MODEL_ID.to_owned(),
            speed: None,
        }
    }
}

/// An ElevenLabs voice to speak with.
#[derive(Clone, Debug)]
pub struct ElevenLabs {
    http: reqwest::Client,
    endpoint: Endpoint,
    voice: ElevenLabsVoice,
    /// `{base}/v1/text-to-speech/{voice}/stream?output_format=ulaw_8000`, built once;
    /// an error when the voice id cannot be a path segment.
    url: Result<String, VendorError>,
}

#[derive(Serialize)]
struct Request<'a> {
    text: &'a str,
    model_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice_settings: Option<VoiceSettings>,
}

#[derive(Serialize)]
struct VoiceSettings {
    speed: f32,
}

impl ElevenLabs {
    pub fn new(endpoint: Endpoint, voice: ElevenLabsVoice) -> ElevenLabs {
        ElevenLabs::with_client(http::client(), endpoint, voice)
    }

    fn with_client(
        http: reqwest::Client,
        endpoint: Endpoint,
        voice: ElevenLabsVoice,
    ) -> ElevenLabs {
        let url = path_segment(&voice.voice_id)
            .map(|id| {
                format!(
                    "{}/v1/text-to-speech/{id}/stream?output_format=ulaw_8000",
                    endpoint.base_url
                )
            })
            .ok_or_else(|| VendorError::Protocol {
                vendor: VENDOR,
                detail: "the voice id is empty or only dots".to_owned(),
            });
        ElevenLabs {
            http,
            endpoint,
            voice,
            url,
        }
    }

    /// From `ELEVENLABS_API_KEY`, `ELEVENLABS_BASE_URL`, `ELEVENLABS_VOICE_ID` and
    /// `ELEVENLABS_MODEL_ID`; `None` without a key.
    pub fn from_env() -> Option<ElevenLabs> {
        let endpoint = Endpoint::from_env("ELEVENLABS", DEFAULT_BASE_URL)?;
        let mut voice =
            ElevenLabsVoice::new(&http::env_or("ELEVENLABS_VOICE_ID", DEFAULT_VOICE_ID));
        voice.model_id = http::env_or("ELEVENLABS_MODEL_ID", DEFAULT_MODEL_ID);
        Some(ElevenLabs::new(endpoint, voice))
    }

    /// The same account with another voice, sharing its connections.
    pub fn with_voice(&self, voice: ElevenLabsVoice) -> ElevenLabs {
        ElevenLabs::with_client(self.http.clone(), self.endpoint.clone(), voice)
    }

    pub fn voice(&self) -> &ElevenLabsVoice {
        &self.voice
    }
}

#[async_trait]
impl TextToSpeech for ElevenLabs {
    fn format(&self) -> AudioFormat {
        AudioFormat::MULAW_8K
    }

    async fn speak(&self, text: &str) -> Result<Speech, VendorError> {
        if http::is_blank(text) {
            return Ok(http::silence());
        }
        let body = serde_json::to_vec(&Request {
            text,
            model_id: &self.voice.model_id,
            voice_settings: self.voice.speed.map(|speed| VoiceSettings { speed }),
        })
        .map_err(|e| VendorError::Protocol {
            vendor: VENDOR,
            detail: e.to_string(),
        })?;
        let body = Bytes::from(body);
        let url = self.url.as_ref().map_err(Clone::clone)?;
        let key = http::key_header(VENDOR, self.endpoint.api_key.expose())?;
        http::speak(VENDOR, &self.endpoint.api_key, 1, || {
            self.http
                .post(url)
                .header("xi-api-key", key.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

/// A voice id as one URL path segment: anything outside the unreserved characters is
/// percent-encoded, so an id can never reach another path. `None` for an id that is
/// empty or only dots, which URL parsing would read as "this" or "the parent" folder.
fn path_segment(id: &str) -> Option<String> {
    if id.bytes().all(|b| b == b'.') {
        return None;
    }
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Some(out)
}
