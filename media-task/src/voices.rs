//! The voices a deployment offers, configured from the environment: each agent speaks
//! with the provider and voice its settings name.

use std::sync::Arc;

use async_trait::async_trait;
use parley_shared::domain::agent::{AgentSettings, VoiceProvider};

use crate::call::Voices;
use crate::tts::TextToSpeech;
use crate::tts::cartesia::Cartesia;
use crate::tts::elevenlabs::ElevenLabs;
use crate::tts::flite::Flite;
use crate::tts::openai::OpenAiSpeech;

/// The vendors whose keys are in the environment, and flite when it is installed.
pub struct EnvVoices {
    elevenlabs: Option<ElevenLabs>,
    cartesia: Option<Cartesia>,
    openai: Option<OpenAiSpeech>,
    flite: Option<Arc<Flite>>,
}

impl EnvVoices {
    pub async fn from_env() -> EnvVoices {
        let flite = match Flite::from_env().await {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                tracing::info!(error = %e, "the offline voice is not available");
                None
            }
        };
        EnvVoices {
            elevenlabs: ElevenLabs::from_env(),
            cartesia: Cartesia::from_env(),
            openai: OpenAiSpeech::from_env(),
            flite,
        }
    }
}

impl EnvVoices {
    /// Just these vendors' voices (an agent's own choice of endpoint).
    pub(crate) fn one_of(
        elevenlabs: Option<ElevenLabs>,
        cartesia: Option<Cartesia>,
        openai: Option<OpenAiSpeech>,
    ) -> EnvVoices {
        EnvVoices {
            elevenlabs,
            cartesia,
            openai,
            flite: None,
        }
    }

    /// The offline voice, if installed: it speaks when a vendor's voice is down.
    pub fn offline(&self) -> Option<Arc<dyn TextToSpeech>> {
        self.flite.clone().map(|f| f as Arc<dyn TextToSpeech>)
    }
}

#[async_trait]
impl Voices for EnvVoices {
    async fn voice(&self, settings: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        let voice = &settings.voice;
        let id = voice.voice_id.trim();
        let speed = (voice.speed != 1.0).then_some(voice.speed as f32);
        match voice.provider {
            VoiceProvider::ElevenLabs => self.elevenlabs.as_ref().map(|v| {
                let mut choice = v.voice().clone();
                if !id.is_empty() {
                    choice.voice_id = id.to_owned();
                }
                choice.speed = speed.or(choice.speed);
                Arc::new(v.with_voice(choice)) as Arc<dyn TextToSpeech>
            }),
            VoiceProvider::Cartesia => self.cartesia.as_ref().map(|v| {
                let mut choice = v.voice().clone();
                if !id.is_empty() {
                    choice.voice_id = id.to_owned();
                }
                choice.speed = speed.or(choice.speed);
                Arc::new(v.with_voice(choice)) as Arc<dyn TextToSpeech>
            }),
            VoiceProvider::Openai => self.openai.as_ref().map(|v| {
                let mut choice = v.voice().clone();
                if !id.is_empty() {
                    choice.voice = id.to_owned();
                }
                choice.speed = speed.or(choice.speed);
                Arc::new(v.with_voice(choice)) as Arc<dyn TextToSpeech>
            }),
            VoiceProvider::Flite => {
                let default = self.flite.clone()?;
                if id.is_empty() || id == default.voice() {
                    return Some(default as Arc<dyn TextToSpeech>);
                }
                match Flite::new(id).await {
                    Ok(f) => Some(Arc::new(f) as Arc<dyn TextToSpeech>),
                    Err(e) => {
                        tracing::warn!(error = %e, "the agent's flite voice is not installed; using the default");
                        Some(default as Arc<dyn TextToSpeech>)
                    }
                }
            }
            // Twilio speaks for itself only in ConversationRelay mode.
            VoiceProvider::Twilio => None,
        }
    }
}
