//! The vendors an agent chooses for itself (`AgentSettings::vendors`): its own
//! endpoint, model and one of its tenant's vendor keys, in place of the deployment's.
//!
//! Keys are looked up under the call's tenant only (`tenant/<id>/vendor-key/<name>`),
//! so an agent can never speak with another tenant's key. An endpoint on a private,
//! loopback or link-local address is refused unless the deployment allows it (the
//! local stack does): a tenant's URL must not reach into the network the media task
//! runs in (the task's metadata and credentials endpoints among it).

use std::net::IpAddr;
use std::sync::Arc;

use parley_shared::domain::agent::{AgentSettings, VendorChoice, VoiceProvider};
use parley_shared::secrets::{SecretStore, vendor_key_name};

use crate::call::Voices;
use crate::llm::LanguageModel;
use crate::llm::openai::OpenAiChat;
use crate::stt::SpeechToText;
use crate::stt::deepgram::DeepgramStt;
use crate::tts::TextToSpeech;
use crate::tts::cartesia::{self, Cartesia, CartesiaVoice};
use crate::tts::elevenlabs::{self, ElevenLabs, ElevenLabsVoice};
use crate::tts::openai::{self as openai_tts, OpenAiSpeech, OpenAiVoice};
use crate::vendor::{Account, Endpoint};
use crate::voices::EnvVoices;

/// The deployment's vendor accounts, and whether agents may point at private addresses.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub deepgram: Account,
    pub openai: Account,
    pub elevenlabs: Account,
    pub cartesia: Account,
    pub allow_private_urls: bool,
    /// Shared by every chosen language model, so their calls reuse connections.
    http: reqwest::Client,
}

/// Why an agent's choice of vendor cannot be used; names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("{field}.base_url: {reason}")]
    Url { field: &'static str, reason: String },
    #[error("{field}.key: the tenant has no vendor key named {name:?}")]
    NoKey { field: &'static str, name: String },
    #[error("{field}: the deployment has no key for this vendor; choose one of the tenant's")]
    NoDefaultKey { field: &'static str },
    #[error(transparent)]
    Store(#[from] parley_shared::error::StoreError),
}

impl Deployment {
    pub fn new(
        deepgram: Account,
        openai: Account,
        elevenlabs: Account,
        cartesia: Account,
    ) -> Deployment {
        Deployment {
            deepgram,
            openai,
            elevenlabs,
            cartesia,
            allow_private_urls: false,
            http: reqwest::Client::new(),
        }
    }

    /// From the same variables as the default vendors; `PARLEY_VENDOR_PRIVATE_URLS=allow`
    /// lets agents choose private and loopback endpoints (a local model server).
    pub fn from_env() -> Deployment {
        let mut deployment = Deployment::new(
            Account::from_env("DEEPGRAM", DeepgramStt::DEFAULT_BASE_URL),
            Account::from_env("OPENAI", OpenAiChat::DEFAULT_BASE_URL),
            Account::from_env("ELEVENLABS", elevenlabs::DEFAULT_BASE_URL),
            Account::from_env("CARTESIA", cartesia::DEFAULT_BASE_URL),
        );
        deployment.allow_private_urls =
            std::env::var("PARLEY_VENDOR_PRIVATE_URLS").is_ok_and(|v| v == "allow");
        deployment
    }

    pub fn allowing_private_urls(mut self, allow: bool) -> Deployment {
        self.allow_private_urls = allow;
        self
    }

    /// The recogniser the agent chooses, if it chooses one.
    pub async fn stt(
        &self,
        secrets: &dyn SecretStore,
        tenant_id: &str,
        settings: &AgentSettings,
    ) -> Result<Option<Arc<dyn SpeechToText>>, ChoiceError> {
        let Some(choice) = &settings.vendors.speech_to_text else {
            return Ok(None);
        };
        let field = "vendors.speech_to_text";
        let endpoint = self
            .endpoint(&self.deepgram, choice, field, secrets, tenant_id)
            .await?;
        let stt = DeepgramStt::new(endpoint);
        let stt = match choice.model.as_ref().or(self.deepgram.model.as_ref()) {
            Some(model) => stt.with_model(model.as_str()),
            None => stt,
        };
        Ok(Some(Arc::new(stt)))
    }

    /// The language model the agent chooses, if it chooses one.
    pub async fn llm(
        &self,
        secrets: &dyn SecretStore,
        tenant_id: &str,
        settings: &AgentSettings,
    ) -> Result<Option<Arc<dyn LanguageModel>>, ChoiceError> {
        let Some(choice) = &settings.vendors.language_model else {
            return Ok(None);
        };
        let field = "vendors.language_model";
        let endpoint = self
            .endpoint(&self.openai, choice, field, secrets, tenant_id)
            .await?;
        let model = choice
            .model
            .clone()
            .or_else(|| self.openai.model.clone())
            .unwrap_or_else(|| OpenAiChat::DEFAULT_MODEL.to_owned());
        Ok(Some(Arc::new(OpenAiChat::with_http_client(
            self.http.clone(),
            endpoint,
            model,
        ))))
    }

    /// The voice of the agent's `voice.provider` at the endpoint it chooses, if it
    /// chooses one.
    pub async fn voice(
        &self,
        secrets: &dyn SecretStore,
        tenant_id: &str,
        settings: &AgentSettings,
    ) -> Result<Option<Arc<dyn TextToSpeech>>, ChoiceError> {
        let Some(choice) = &settings.vendors.voice else {
            return Ok(None);
        };
        let field = "vendors.voice";
        let model = choice.model.clone();
        // The agent's voice id, speed and the rest apply as for the deployment's voices.
        let voices = match settings.voice.provider {
            VoiceProvider::ElevenLabs => {
                let endpoint = self
                    .endpoint(&self.elevenlabs, choice, field, secrets, tenant_id)
                    .await?;
                let mut voice = ElevenLabsVoice::new(elevenlabs::DEFAULT_VOICE_ID);
                voice.model_id = model
                    .or_else(|| self.elevenlabs.model.clone())
                    .unwrap_or(voice.model_id);
                EnvVoices::one_of(Some(ElevenLabs::new(endpoint, voice)), None, None)
            }
            VoiceProvider::Cartesia => {
                let endpoint = self
                    .endpoint(&self.cartesia, choice, field, secrets, tenant_id)
                    .await?;
                let mut voice = CartesiaVoice::new(cartesia::DEFAULT_VOICE_ID);
                voice.model_id = model
                    .or_else(|| self.cartesia.model.clone())
                    .unwrap_or(voice.model_id);
                EnvVoices::one_of(None, Some(Cartesia::new(endpoint, voice)), None)
            }
            VoiceProvider::Openai => {
                let endpoint = self
                    .endpoint(&self.openai, choice, field, secrets, tenant_id)
                    .await?;
                let voice = OpenAiVoice {
                    model: model.unwrap_or_else(|| openai_tts::DEFAULT_MODEL.to_owned()),
                    ..OpenAiVoice::default()
                };
                EnvVoices::one_of(None, None, Some(OpenAiSpeech::new(endpoint, voice)))
            }
            // Settings refuse an endpoint for these; nothing to choose.
            VoiceProvider::Flite | VoiceProvider::Twilio => return Ok(None),
        };
        Ok(voices.voice(settings).await)
    }

    async fn endpoint(
        &self,
        account: &Account,
        choice: &VendorChoice,
        field: &'static str,
        secrets: &dyn SecretStore,
        tenant_id: &str,
    ) -> Result<Endpoint, ChoiceError> {
        let base = choice.base_url.as_deref().unwrap_or(&account.base_url);
        if choice.base_url.is_some() {
            reachable(base, self.allow_private_urls)
                .map_err(|reason| ChoiceError::Url { field, reason })?;
        }
        let key = match &choice.key {
            Some(name) => secrets
                .get(&vendor_key_name(tenant_id, name))
                .await?
                .ok_or_else(|| ChoiceError::NoKey {
                    field,
                    name: name.clone(),
                })?,
            None => account
                .api_key
                .clone()
                .ok_or(ChoiceError::NoDefaultKey { field })?,
        };
        Ok(Endpoint::new(base, key))
    }
}

/// Whether a tenant's endpoint may be called from here: a public host, or any host
/// when private ones are allowed. Names that resolve to private addresses are not
/// caught here; the network's egress rules are the wall for those.
pub fn reachable(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if allow_private {
        return Ok(());
    }
    let private = match parsed.host_str() {
        Some(host) => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match host.parse::<IpAddr>() {
                Ok(ip) => private_ip(ip),
                Err(_) => {
                    let name = host.trim_end_matches('.').to_ascii_lowercase();
                    name == "localhost"
                        || name.ends_with(".localhost")
                        || name.ends_with(".internal")
                }
            }
        }
        None => true,
    };
    if private {
        Err("a private, loopback or link-local address is not allowed here".into())
    } else {
        Ok(())
    }
}

fn private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // Carrier-grade NAT, 100.64.0.0/10.
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_ip(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    // Unique local fc00::/7 and link-local fe80::/10.
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use parley_shared::clock::SystemClock;
    use parley_shared::domain::agent::VendorChoice;
    use parley_shared::embedded::Embedded;
    use parley_shared::secrets::SecretString;
    use parley_vendors::{deepgram, elevenlabs, openai_chat};

    use super::*;
    use crate::llm::{ChatRequest, LlmEvent, Message};
    use crate::stt::SttConfig;

    const TENANT: &str = "tenant-a";

    fn store() -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Embedded::open(
            dir.path(),
            Arc::new(SystemClock),
            "http://127.0.0.1:1".into(),
            5,
        )
        .unwrap();
        (dir, embedded)
    }

    /// The deployment's own accounts hold keys the local servers refuse, so a request
    /// that reaches them with the right key can only have used the tenant's.
    fn deployment() -> Deployment {
        let wrong = || Account {
            base_url: "https://vendor.invalid".into(),
            api_key: Some(SecretString::new("deployment-key".into())),
            model: None,
        };
        Deployment::new(wrong(), wrong(), wrong(), wrong()).allowing_private_urls(true)
    }

    fn choosing(base_url: &str, key: &str, model: Option<&str>) -> VendorChoice {
        VendorChoice {
            base_url: Some(base_url.into()),
            key: Some(key.into()),
            model: model.map(str::to_owned),
        }
    }

    #[test]
    fn tenants_endpoints_on_private_networks_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://10.0.0.5/v1",
            "http://169.254.170.2/v2/credentials",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:11434/v1",
            "http://[fd00::1]/v1",
            "http://[::ffff:192.168.1.1]/v1",
            "http://100.64.0.1/v1",
            "http://localhost:11434/v1",
            "http://db.internal/v1",
            "http://0.0.0.0/",
        ] {
            assert!(reachable(url, false).is_err(), "{url}");
            assert!(reachable(url, true).is_ok(), "{url}");
        }
        for url in [
            "https://api.groq.com/openai/v1",
            "wss://api.eu.deepgram.com",
            "https://8.8.8.8/v1",
            "https://[2606:4700::1111]/v1",
        ] {
            assert!(reachable(url, false).is_ok(), "{url}");
        }
        assert!(reachable("not a url", true).is_err());
    }

    #[tokio::test]
    async fn an_agents_own_model_server_key_and_model_are_used() {
        let (_dir, embedded) = store();
        let secrets = &embedded.secrets;
        let chat = openai_chat::start().await.unwrap();
        chat.push(openai_chat::Reply::text("Hello from Groq."));
        secrets
            .put(
                &vendor_key_name(TENANT, "groq"),
                &SecretString::new(chat.key().into()),
            )
            .await
            .unwrap();
        let mut settings = AgentSettings::named("Riley");
        settings.vendors.language_model = Some(choosing(&chat.url(), "groq", Some("llama-x")));

        let llm = deployment()
            .llm(secrets, TENANT, &settings)
            .await
            .unwrap()
            .expect("the agent chooses a model");
        let mut events = llm
            .stream(ChatRequest {
                messages: vec![Message::User {
                    content: "hi".into(),
                }],
                tools: vec![],
            })
            .await
            .unwrap();
        let mut text = String::new();
        while let Some(event) = events.recv().await {
            if let LlmEvent::Text(t) = event {
                text.push_str(&t);
            }
        }
        assert_eq!(text, "Hello from Groq.");
        let request = &chat.requests()[0];
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {}", chat.key()).as_str())
        );
        assert_eq!(request.body["model"], "llama-x");

        // Another tenant has no such key: the choice names its field.
        let err = deployment()
            .llm(secrets, "tenant-b", &settings)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&err, ChoiceError::NoKey { field: "vendors.language_model", name } if name == "groq"),
            "{err}"
        );
        // Without the local stack's allowance, a loopback endpoint is refused.
        let err = deployment()
            .allowing_private_urls(false)
            .llm(secrets, TENANT, &settings)
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("vendors.language_model.base_url"),
            "{err}"
        );
        // A choice without a model takes the deployment's.
        settings.vendors.language_model = Some(choosing(&chat.url(), "groq", None));
        let mut named = deployment();
        named.openai.model = Some("deployment-model".into());
        let llm = named
            .llm(secrets, TENANT, &settings)
            .await
            .unwrap()
            .unwrap();
        chat.push(openai_chat::Reply::text("Hi."));
        let mut events = llm
            .stream(ChatRequest {
                messages: vec![Message::User {
                    content: "hi".into(),
                }],
                tools: vec![],
            })
            .await
            .unwrap();
        while events.recv().await.is_some() {}
        assert_eq!(chat.requests()[1].body["model"], "deployment-model");
        // An agent that chooses nothing uses the deployment's.
        let plain = AgentSettings::named("Sam");
        assert!(
            deployment()
                .llm(secrets, TENANT, &plain)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn an_agents_own_recogniser_and_voice_endpoints_are_used() {
        let (_dir, embedded) = store();
        let secrets = &embedded.secrets;
        let listen = deepgram::start(vec!["hello".into()]).await.unwrap();
        let speech = elevenlabs::start().await.unwrap();
        for (name, key) in [("dg", listen.key()), ("el", speech.key())] {
            secrets
                .put(
                    &vendor_key_name(TENANT, name),
                    &SecretString::new(key.into()),
                )
                .await
                .unwrap();
        }
        let mut settings = AgentSettings::named("Riley");
        settings.voice.provider = VoiceProvider::ElevenLabs;
        settings.voice.voice_id = "agent-voice".into();
        settings.vendors.speech_to_text = Some(choosing(&listen.url(), "dg", Some("nova-2")));
        settings.vendors.voice = Some(choosing(&speech.url(), "el", Some("eleven_turbo")));
        let deployment = deployment();

        let stt = deployment
            .stt(secrets, TENANT, &settings)
            .await
            .unwrap()
            .unwrap();
        let stream = stt
            .open(&SttConfig {
                sample_rate: 8_000,
                language: "en-US".into(),
                endpointing_ms: 500,
            })
            .await
            .unwrap();
        drop(stream);
        let connection = &listen.connections()[0];
        assert_eq!(connection.status, 101);
        assert_eq!(
            connection.query.get("model").map(String::as_str),
            Some("nova-2")
        );
        assert_eq!(
            connection.authorization.as_deref(),
            Some(format!("Token {}", listen.key()).as_str())
        );

        let voice = deployment
            .voice(secrets, TENANT, &settings)
            .await
            .unwrap()
            .unwrap();
        let mut audio = voice.speak("Hello.").await.unwrap();
        let mut bytes = 0;
        while let Some(chunk) = audio.recv().await {
            bytes += chunk.unwrap().len();
        }
        assert!(bytes > 0);
        let request = &speech.requests()[0];
        assert!(request.path.contains("/agent-voice/"), "{}", request.path);
        assert_eq!(request.body["model_id"], "eleven_turbo");
        assert_eq!(request.header("xi-api-key"), Some(speech.key()));
    }
}
