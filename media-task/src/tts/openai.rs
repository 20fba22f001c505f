//! OpenAI's speech endpoint (or any server that copies it), asked for raw PCM: 16-bit
//! little-endian mono at 24 kHz, the only rate OpenAI's `pcm` comes in.
//!
//! `POST {base}/audio/speech` with bearer auth and `{"model", "input", "voice",
//! "response_format": "pcm", "speed"}`; the response body is the raw samples, streamed
//! as they are made. The network may split the body inside a sample, so the samples
//! are reassembled (see `http`) before they are handed on.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{Speech, TextToSpeech, http};
use crate::audio::AudioFormat;
use crate::vendor::{Endpoint, VendorError};

const VENDOR: &str = "openai";

/// Where OpenAI is unless `OPENAI_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub const DEFAULT_MODEL: &str = "gpt-4o-mini-tts";

pub const DEFAULT_VOICE: &str = "alloy";

/// OpenAI's `pcm` rate.
pub const SAMPLE_RATE: u32 = 24_000;

/// One OpenAI voice as an agent uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiVoice {
    pub model: String,
    /// A built-in voice's name (`alloy`, `coral`, ...).
    pub voice: String,
    /// OpenAI takes 0.25 to 4.0; `None` leaves the voice's own.
    pub speed: Option<f32>,
}

impl Default for OpenAiVoice {
    fn default() -> OpenAiVoice {
        OpenAiVoice {
            model: DEFAULT_MODEL.to_owned(),
            voice: DEFAULT_VOICE.to_owned(),
            speed: None,
        }
    }
}

/// An OpenAI voice to speak with.
#[derive(Clone, Debug)]
pub struct OpenAiSpeech {
    http: reqwest::Client,
    endpoint: Endpoint,
    voice: OpenAiVoice,
    url: String,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a str,
    voice: &'a str,
    response_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f32>,
}

impl OpenAiSpeech {
    pub fn new(endpoint: Endpoint, voice: OpenAiVoice) -> OpenAiSpeech {
        OpenAiSpeech::with_client(http::client(), endpoint, voice)
    }

    fn with_client(http: reqwest::Client, endpoint: Endpoint, voice: OpenAiVoice) -> OpenAiSpeech {
        let url = format!("{}/audio/speech", endpoint.base_url);
        OpenAiSpeech {
            http,
            endpoint,
            voice,
            url,
        }
    }

    /// From `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_TTS_MODEL` and
    /// `OPENAI_TTS_VOICE`; `None` without a key.
    pub fn from_env() -> Option<OpenAiSpeech> {
        let endpoint = Endpoint::from_env("OPENAI", DEFAULT_BASE_URL)?;
        let voice = OpenAiVoice {
            model: http::env_or("OPENAI_TTS_MODEL", DEFAULT_MODEL),
            voice: http::env_or("OPENAI_TTS_VOICE", DEFAULT_VOICE),
            speed: None,
        };
        Some(OpenAiSpeech::new(endpoint, voice))
    }

    /// The same account with another voice, sharing its connections.
    pub fn with_voice(&self, voice: OpenAiVoice) -> OpenAiSpeech {
        OpenAiSpeech::with_client(self.http.clone(), self.endpoint.clone(), voice)
    }

    pub fn voice(&self) -> &OpenAiVoice {
        &self.voice
    }
}

#[async_trait]
impl TextToSpeech for OpenAiSpeech {
    fn format(&self) -> AudioFormat {
        AudioFormat::linear16(SAMPLE_RATE)
    }

    async fn speak(&self, text: &str) -> Result<Speech, VendorError> {
        if http::is_blank(text) {
            return Ok(http::silence());
        }
        let body = serde_json::to_vec(&Request {
            model: &self.voice.model,
            input: text,
            voice: &self.voice.voice,
            response_format: "pcm",
            speed: self.voice.speed,
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
        http::speak(VENDOR, &self.endpoint.api_key, 2, || {
            self.http
                .post(&self.url)
                .header(reqwest::header::AUTHORIZATION, auth.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}
