//! Cartesia's bytes endpoint, asked for raw μ-law at 8 kHz so the audio goes to a
//! Twilio call without conversion.
//!
//! `POST {base}/tts/bytes` with `Authorization: Bearer <key>`, the dated
//! `Cartesia-Version` this client was written against, and `{"model_id", "transcript",
//! "voice": {"mode": "id", "id"}, "output_format": {"container": "raw", "encoding":
//! "pcm_mulaw", "sample_rate": 8000}, "language", "generation_config": {"speed"}}`;
//! the response body is the raw μ-law bytes, streamed as they are made.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{Speech, TextToSpeech, http};
use crate::audio::AudioFormat;
use crate::vendor::{Endpoint, VendorError};

const VENDOR: &str = "cartesia";

/// Where Cartesia is unless `CARTESIA_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.cartesia.ai";

/// The API version this client speaks (Cartesia asks every request to name one).
pub const API_VERSION: &str = "2026-03-01";

pub const DEFAULT_MODEL_ID: &str = "sonic-2";

/// The voice used when `CARTESIA_VOICE_ID` is not set (the one Cartesia's own
/// quick-start uses).
pub const DEFAULT_VOICE_ID: &str = "694f9389-aac1-45b6-b726-9d9369183238";

/// One Cartesia voice as an agent uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct CartesiaVoice {
    pub voice_id: String,
    pub model_id: String,
    /// ISO 639-1 (`en`), as Cartesia takes it.
    pub language: String,
    /// Cartesia takes 0.6 to 1.5 (Sonic 3 and later); `None` leaves the voice's own.
    pub speed: Option<f32>,
}

impl CartesiaVoice {
    pub fn new(voice_id: &str) -> CartesiaVoice {
        CartesiaVoice {
            voice_id: voice_id.to_owned(),
            model_id: DEFAULT_MODEL_ID.to_owned(),
            language: "en".to_owned(),
            speed: None,
        }
    }
}

/// A Cartesia voice to speak with.
#[derive(Clone, Debug)]
pub struct Cartesia {
    http: reqwest::Client,
    endpoint: Endpoint,
    voice: CartesiaVoice,
    url: String,
}

#[derive(Serialize)]
struct Request<'a> {
    model_id: &'a str,
    transcript: &'a str,
    voice: Voice<'a>,
    output_format: OutputFormat,
    language: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Serialize)]
struct Voice<'a> {
    mode: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct OutputFormat {
    container: &'static str,
    encoding: &'static str,
    sample_rate: u32,
}

#[derive(Serialize)]
struct GenerationConfig {
    speed: f32,
}

impl Cartesia {
    pub fn new(endpoint: Endpoint, voice: CartesiaVoice) -> Cartesia {
        Cartesia::with_client(http::client(), endpoint, voice)
    }

    fn with_client(http: reqwest::Client, endpoint: Endpoint, voice: CartesiaVoice) -> Cartesia {
        let url = format!("{}/tts/bytes", endpoint.base_url);
        Cartesia {
            http,
            endpoint,
            voice,
            url,
        }
    }

    /// From `CARTESIA_API_KEY`, `CARTESIA_BASE_URL`, `CARTESIA_VOICE_ID` and
    /// `CARTESIA_MODEL_ID`; `None` without a key.
    pub fn from_env() -> Option<Cartesia> {
        let endpoint = Endpoint::from_env("CARTESIA", DEFAULT_BASE_URL)?;
        let mut voice = CartesiaVoice::new(&http::env_or("CARTESIA_VOICE_ID", DEFAULT_VOICE_ID));
        voice.model_id = http::env_or("CARTESIA_MODEL_ID", DEFAULT_MODEL_ID);
        Some(Cartesia::new(endpoint, voice))
    }

    /// The same account with another voice, sharing its connections.
    pub fn with_voice(&self, voice: CartesiaVoice) -> Cartesia {
        Cartesia::with_client(self.http.clone(), self.endpoint.clone(), voice)
    }

    pub fn voice(&self) -> &CartesiaVoice {
        &self.voice
    }
}

#[async_trait]
impl TextToSpeech for Cartesia {
    fn format(&self) -> AudioFormat {
        AudioFormat::MULAW_8K
    }

    async fn speak(&self, text: &str) -> Result<Speech, VendorError> {
        if http::is_blank(text) {
            return Ok(http::silence());
        }
        let body = serde_json::to_vec(&Request {
            model_id: &self.voice.model_id,
            transcript: text,
            voice: Voice {
                mode: "id",
                id: &self.voice.voice_id,
            },
            output_format: OutputFormat {
                container: "raw",
                encoding: "pcm_mulaw",
                sample_rate: 8_000,
            },
            language: &self.voice.language,
            generation_config: self.voice.speed.map(|speed| GenerationConfig { speed }),
        })
        .map_err(|e| VendorError::Protocol {
            vendor: VENDOR,
            detail: e.to_string(),
        })?;
        let body = Bytes::from(body);
        let auth = http::key_header(
            VENDOR,
            &format!("Bearer {}", self.endpoint.api_key.expose()),
        )?;
        http::speak(VENDOR, &self.endpoint.api_key, 1, || {
            self.http
                .post(&self.url)
                .header(reqwest::header::AUTHORIZATION, auth.clone())
                .header("Cartesia-Version", API_VERSION)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}
