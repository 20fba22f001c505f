//! One call, from the admitted stream to its records: who the call is for (its agent,
//! direction and lead, read from the event store), the conversation, then the
//! transcript, the recording and the call's events.
//!
//! Records are written whatever way the call ended: a socket that died mid-call still
//! leaves its transcript, recording and `MediaStreamEnded` up to that point.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::WebSocket;
use bytes::Bytes;
use parley_shared::aggregate::{self, Context};
use parley_shared::backend::Ports;
use parley_shared::blob::BlobStore;
use parley_shared::domain::agent::{Agent, AgentSettings};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, Direction};
use parley_shared::domain::ids::{AgentId, CallId, LeadId, TenantId};
use parley_shared::domain::lead::Lead;
use parley_shared::domain::tenant::Tenant;
use parley_shared::flow::Guard;
use parley_shared::streamtoken::StreamClaims;
use serde::Serialize;

use crate::brain::{Brain, LlmBrain, Tools};
use crate::choice::{ChoiceError, Deployment};
use crate::conversation::{self, Note, Turn};
use crate::guard::GuardedBrain;
use crate::guided::{self, GuidedBrain, GuidedFlow};
use crate::llm::LanguageModel;
use crate::metrics::Metrics;
use crate::recording::Recorder;
use crate::script::ScriptBrain;
use crate::session::{self, End, Link, Outcome, Parts};
use crate::stt::SpeechToText;
use crate::stt::pocketsphinx::{ExpectedPhrases, PocketSphinxStt};
use crate::tools::{CallScope, CallTools};
use crate::tts::TextToSpeech;
use crate::wrapup::CallLog;

/// The vendors a call can use, and how turns are judged.
#[derive(Clone)]
pub struct Vendors {
    /// The recogniser of calls whose agent chooses none.
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// PocketSphinx, when the offline recogniser is the default: it then takes the
    /// place of `stt`, each call answered by a flow listening with a copy of its own
    /// that expects what the flow's node expects (see [`ScriptBrain::listen`]).
    pub offline_stt: Option<PocketSphinxStt>,
    pub llm: Option<Arc<dyn LanguageModel>>,
    /// The tools a language model is offered; `None` offers Parley's own
    /// ([`CallTools`]), acting for the call.
    pub tools: Option<Arc<dyn Tools>>,
    /// The voice for an agent's settings.
    pub voices: Arc<dyn Voices>,
    /// Speaks the apology when an agent's own voice has failed (flite, offline).
    pub fallback_voice: Option<Arc<dyn TextToSpeech>>,
    /// Where agents that choose their own vendors find them; without it, every agent
    /// uses the vendors above and an agent's own choice is refused.
    pub deployment: Option<Arc<Deployment>>,
    pub min_speech_ms: u32,
    pub silence_ms: u32,
}

/// Picks the voice an agent's settings ask for.
#[async_trait::async_trait]
pub trait Voices: Send + Sync {
    async fn voice(&self, settings: &AgentSettings) -> Option<Arc<dyn TextToSpeech>>;
}

/// One voice for every agent (tests, and a deployment with a single voice).
pub struct OneVoice(pub Arc<dyn TextToSpeech>);

#[async_trait::async_trait]
impl Voices for OneVoice {
    async fn voice(&self, _: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        Some(self.0.clone())
    }
}

impl Vendors {
    /// Deepgram, an OpenAI-compatible model and the voices whose keys are in the
    /// environment (`DEEPGRAM_API_KEY`, `OPENAI_API_KEY`, `ELEVENLABS_API_KEY`, ...);
    /// without Deepgram's key, PocketSphinx when it is installed (see
    /// [`default_recogniser`]).
    pub async fn from_env() -> Vendors {
        let voices = crate::voices::EnvVoices::from_env().await;
        let fallback_voice = voices.offline();
        let (stt, offline_stt) = default_recogniser(
            crate::stt::deepgram::DeepgramStt::from_env(),
            PocketSphinxStt::from_env(),
        );
        Vendors {
            stt,
            offline_stt,
            llm: crate::llm::openai::OpenAiChat::from_env()
                .map(|l| Arc::new(l) as Arc<dyn LanguageModel>),
            tools: None,
            voices: Arc::new(voices),
            fallback_voice,
            deployment: Some(Arc::new(Deployment::from_env())),
            min_speech_ms: 200,
            silence_ms: 500,
        }
    }

    pub fn new(
        stt: Arc<dyn SpeechToText>,
        llm: Arc<dyn LanguageModel>,
        voices: Arc<dyn Voices>,
    ) -> Vendors {
        Vendors {
            stt: Some(stt),
            offline_stt: None,
            llm: Some(llm),
            tools: None,
            voices,
            fallback_voice: None,
            deployment: None,
            min_speech_ms: 200,
            silence_ms: 500,
        }
    }
}

/// The default recogniser, for `Vendors::stt` and `Vendors::offline_stt`: Deepgram
/// when its key is set, else PocketSphinx when its library and model are installed,
/// else none (a call whose agent chooses none then fails). Says which, and why, once.
pub fn default_recogniser(
    deepgram: Option<crate::stt::deepgram::DeepgramStt>,
    offline: Result<PocketSphinxStt, crate::vendor::VendorError>,
) -> (Option<Arc<dyn SpeechToText>>, Option<PocketSphinxStt>) {
    if let Some(deepgram) = deepgram {
        tracing::info!(
            recogniser = "deepgram",
            "speech recogniser: Deepgram, as its key is set"
        );
        return (Some(Arc::new(deepgram)), None);
    }
    match offline.and_then(|p| p.models().check().map(|()| p)) {
        Ok(offline) => {
            tracing::info!(
                recogniser = "pocketsphinx",
                "speech recogniser: PocketSphinx, offline, as no Deepgram key is set"
            );
            (Some(Arc::new(offline.clone())), Some(offline))
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "no speech recogniser: no Deepgram key is set and PocketSphinx cannot be used"
            );
            (None, None)
        }
    }
}

/// What holding calls takes: the stores and the vendors.
#[derive(Clone)]
pub struct Calls {
    pub ports: Ports,
    pub vendors: Vendors,
}

/// Why a call could not be held.
#[derive(Debug, thiserror::Error)]
pub enum CallSetupError {
    #[error("the call is not known for this tenant")]
    UnknownCall,
    #[error("the call's agent is missing or deleted")]
    NoAgent,
    #[error("no {0} is configured")]
    NoVendor(&'static str),
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error(transparent)]
    Store(#[from] parley_shared::error::StoreError),
}

/// The context a call's events are written in, and its id. The token was minted for
/// this id, so it parses; one that does not is no call of ours.
pub(crate) fn admitted(claims: &StreamClaims) -> Option<(Context, CallId)> {
    let Ok(id) = CallId::parse(&claims.call_id) else {
        tracing::warn!(tenant_id = %claims.tenant_id, call_id = %claims.call_id, "not a call id");
        return None;
    };
    let ctx = Context {
        tenant_id: claims.tenant_id.clone(),
        correlation_id: claims.call_id.clone(),
        idempotency_key: None,
    };
    Some((ctx, id))
}

/// Who a call is for.
pub(crate) struct Callee {
    /// The call's agent, as this call sees it.
    pub settings: CallAgent,
    /// The greeting: the flow's opening lines when a flow answers, else the agent's
    /// greeting for the call's direction, filled in.
    pub greeting: String,
}

/// The call's agent: its settings, its prompt filled in for the call, and the flow
/// answering when no language model does, or guiding the model when written to (made
/// with the call: its opening lines are the greeting).
pub(crate) struct CallAgent {
    pub settings: AgentSettings,
    pub prompt: Option<String>,
    script: Option<Arc<ScriptBrain>>,
    guided: Option<GuidedFlow>,
    /// What the agent's tools act for.
    scope: CallScope,
}

impl CallAgent {
    /// The wrap-up of a call no model answered.
    pub(crate) fn after_call(&self) -> AfterCall {
        AfterCall {
            log: self.scope.log.clone(),
            model: None,
        }
    }
}

/// What the call's wrap-up needs: what the brain did, and the model that answered
/// (it writes the call's notes).
pub(crate) struct AfterCall {
    pub log: Arc<CallLog>,
    pub model: Option<Arc<dyn LanguageModel>>,
}

/// The conversation's settings from the agent's.
pub(crate) fn conversation_settings(agent: &CallAgent, greeting: String) -> conversation::Settings {
    let mut conversation = conversation::Settings::new(greeting);
    // A flow reads no prompt: only a language model is given one.
    if agent.script.is_none() {
        conversation.system_prompt = agent.prompt.clone();
    }
    conversation.max_turns = agent.settings.max_turns;
    conversation.max_call_ms = u64::from(agent.settings.max_call_seconds) * 1000;
    conversation
}

/// The offline recogniser for one call: a copy of its own, listening for what the
/// flow's node expects when a flow answers, so no call hears another's phrases.
fn listening(offline: &PocketSphinxStt, agent: &CallAgent) -> Arc<dyn SpeechToText> {
    match &agent.script {
        Some(script) => {
            let expected = ExpectedPhrases::new();
            script.listen(expected.clone());
            Arc::new(offline.clone().with_expected(expected))
        }
        None => Arc::new(offline.clone()),
    }
}

/// When a model's call goes to a person: the limits of the agent's flow (its own or
/// its industry's), else the defaults; always before the agent's hard turn limit ends
/// the call (it is checked before the brain is asked, so two turns earlier).
fn guard(settings: &AgentSettings) -> Guard {
    let mut guard = match settings.script_ref() {
        Some(flow) => Guard {
            max_turns: flow.max_turns,
            max_misunderstandings: flow.max_misunderstandings,
        },
        None => Guard::default(),
    };
    guard.max_turns = guard
        .max_turns
        .min(settings.max_turns.saturating_sub(2))
        .max(1);
    guard
}

/// A call's template fields (`tenant_name`, `agent_name`, `direction`, `lead_name`,
/// `lead_phone`, `lead.<field>`), one resolver for its greetings, its prompt and its
/// flow. A missing field renders as nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFields(BTreeMap<String, String>);

impl CallFields {
    pub fn new(
        tenant_name: Option<&str>,
        agent_name: &str,
        direction: Direction,
        lead: Option<&Lead>,
    ) -> CallFields {
        let mut fields = BTreeMap::new();
        let mut put = |name: String, value: &str| {
            if !value.trim().is_empty() {
                fields.insert(name, value.to_owned());
            }
        };
        put("tenant_name".into(), tenant_name.unwrap_or_default());
        put("agent_name".into(), agent_name);
        let direction = match direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        put("direction".into(), direction);
        if let Some(lead) = lead {
            put("lead_name".into(), lead.name.as_deref().unwrap_or_default());
            put(
                "lead_phone".into(),
                lead.phone.as_ref().map(|p| p.as_str()).unwrap_or_default(),
            );
            for (name, value) in &lead.fields {
                put(format!("lead.{name}"), value);
            }
        }
        CallFields(fields)
    }

    /// A field's value; a bare name that is no field of the call is the lead's field
    /// of that name (greetings written `{company}`).
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .or_else(|| {
                (!name.contains('.'))
                    .then(|| self.0.get(&format!("lead.{name}")))
                    .flatten()
            })
            .cloned()
    }

    /// `template` with the call's fields filled in.
    pub fn render(&self, template: &str) -> String {
        parley_shared::flow::render(template, &|name| self.get(name))
    }

    /// The fields by name, as a flow takes them.
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// The transcript as stored at `transcripts/<tenant>/<call>.json`.
#[derive(Serialize)]
struct TranscriptDoc<'a> {
    call_id: &'a str,
    tenant_id: &'a str,
    ended: &'a str,
    duration_ms: u64,
    turns: &'a [Turn],
}

impl Calls {
    /// Holds the admitted call on `socket` until it ends, then writes its records;
    /// with `live_transcript`, each turn is also sent on the stream once final.
    pub async fn hold(
        &self,
        socket: &mut WebSocket,
        claims: &StreamClaims,
        link: Link,
        live_transcript: bool,
        metrics: &Metrics,
    ) -> End {
        let Some((ctx, id)) = admitted(claims) else {
            return End::Conversation(conversation::EndReason::VendorFailed);
        };
        let call_id = claims.call_id.as_str();
        let (parts, after) = match self.parts(&ctx, &id).await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(tenant_id = %claims.tenant_id, call_id, error = %e, "cannot hold the call");
                return End::Conversation(conversation::EndReason::VendorFailed);
            }
        };
        self.note(
            &ctx,
            &id,
            CallEvent::MediaStreamStarted {
                stream_id: link.stream_sid().into(),
            },
        )
        .await;
        let recorder = if parts.record {
            match Recorder::new(link.sample_rate()) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(call_id, error = %e, "cannot start the recording");
                    None
                }
            }
        } else {
            None
        };
        let outcome = session::run(socket, link, &parts, metrics, recorder, live_transcript).await;
        self.keep(&ctx, &id, outcome, after).await
    }

    /// The call's agent, direction and lead, turned into what the session needs.
    async fn parts(
        &self,
        ctx: &Context,
        call_id: &CallId,
    ) -> Result<(Parts, AfterCall), CallSetupError> {
        let tenant_id = ctx.tenant_id.as_str();
        let Callee {
            settings: agent,
            greeting,
        } = self.callee(ctx, call_id).await?;
        let settings = &agent.settings;
        let vendors = &self.vendors;
        let secrets = &*self.ports.secrets;
        let chosen = self.deployment(settings)?;
        let stt = match chosen {
            Some(d) => d.stt(secrets, tenant_id, settings).await?,
            None => None,
        };
        let stt = match (stt, &vendors.offline_stt) {
            (Some(stt), _) => stt,
            (None, Some(offline)) => listening(offline, &agent),
            (None, None) => vendors
                .stt
                .clone()
                .ok_or(CallSetupError::NoVendor("speech recogniser"))?,
        };
        let (brain, after) = self.brain(tenant_id, &agent).await?;
        let voice = match chosen {
            Some(d) => d.voice(secrets, tenant_id, settings).await?,
            None => None,
        };
        let voice = match voice {
            Some(v) => v,
            None => vendors
                .voices
                .voice(settings)
                .await
                .ok_or(CallSetupError::NoVendor("voice"))?,
        };
        let parts = Parts {
            stt,
            brain,
            voice,
            fallback_voice: vendors.fallback_voice.clone(),
            conversation: conversation_settings(&agent, greeting),
            language: settings.language.clone(),
            min_speech_ms: vendors.min_speech_ms,
            silence_ms: vendors.silence_ms,
            record: settings.recording,
        };
        Ok((parts, after))
    }

    /// The brain that answers the call: the language model the agent chooses, else the
    /// deployment's, guided by the agent's own flow when that flow scopes it (see
    /// [`guided`]); with neither model, the agent's flow; with no flow either, none.
    pub(crate) async fn brain(
        &self,
        tenant_id: &str,
        agent: &CallAgent,
    ) -> Result<(Arc<dyn Brain>, AfterCall), CallSetupError> {
        let mut after = agent.after_call();
        if let Some(script) = &agent.script {
            return Ok((script.clone(), after));
        }
        let settings = &agent.settings;
        let chosen = match self.deployment(settings)? {
            Some(d) => d.llm(&*self.ports.secrets, tenant_id, settings).await?,
            None => None,
        };
        let llm = chosen
            .or_else(|| self.vendors.llm.clone())
            .ok_or(CallSetupError::NoVendor("language model"))?;
        after.model = Some(llm.clone());
        // A guided model is offered Parley's own tools, as each node of the flow allows.
        let model: Arc<dyn Brain> = match &agent.guided {
            Some(flow) => Arc::new(GuidedBrain::new(flow.clone(), llm)),
            None => {
                let tools = match &self.vendors.tools {
                    Some(tools) => tools.clone(),
                    None => Arc::new(CallTools::new(agent.scope.clone())),
                };
                Arc::new(LlmBrain::new(llm, tools))
            }
        };
        let guard = guard(&agent.settings);
        let brain = GuardedBrain::new(model, guard, agent.scope.clone());
        Ok((Arc::new(brain), after))
    }

    /// Whether a language model answers for the agent: its own choice, else the
    /// deployment's (the choice's keys are checked when the brain is made).
    fn has_language_model(&self, settings: &AgentSettings) -> bool {
        settings.vendors.language_model.is_some() || self.vendors.llm.is_some()
    }

    /// Where the agent's own vendor choices are resolved; `None` when it makes none.
    fn deployment(&self, settings: &AgentSettings) -> Result<Option<&Deployment>, CallSetupError> {
        if settings.vendors.is_empty() {
            return Ok(None);
        }
        self.vendors
            .deployment
            .as_deref()
            .map(Some)
            .ok_or(CallSetupError::NoVendor(
                "deployment for the agent's own vendors",
            ))
    }

    /// Who the call is for: its agent, its template fields (tenant, agent, direction
    /// and lead), and the greeting; with no language model, or with one its own flow
    /// guides, the agent's flow is started and its opening lines are the greeting.
    pub(crate) async fn callee(
        &self,
        ctx: &Context,
        call_id: &CallId,
    ) -> Result<Callee, CallSetupError> {
        let tenant_id = ctx.tenant_id.as_str();
        let events = &*self.ports.events;
        let call = aggregate::load::<Call>(events, &call_id.stream(), tenant_id)
            .await
            .map_err(|_| CallSetupError::UnknownCall)?
            .state;
        let agent_id: AgentId = call.agent_id.clone().ok_or(CallSetupError::UnknownCall)?;
        let agent = aggregate::load::<Agent>(events, &agent_id.stream(), tenant_id)
            .await
            .map_err(|_| CallSetupError::NoAgent)?
            .state;
        let settings = match agent.settings {
            Some(s) if agent.exists && !agent.deleted => s,
            _ => return Err(CallSetupError::NoAgent),
        };
        let lead = match &call.lead_id {
            Some(id) => self.lead(id, tenant_id).await,
            None => None,
        };
        let tenant = self.tenant(tenant_id).await;
        let direction = call.direction.unwrap_or(Direction::Inbound);
        let fields = CallFields::new(
            tenant.as_ref().map(|t| t.name.as_str()),
            &settings.name,
            direction,
            lead.as_ref(),
        );
        let prompt = settings.prompt().map(|p| fields.render(p));
        // A language model answers when there is one; the flow only without. The
        // agent's own flow guides a model when written to (a node's prompt or tools);
        // the shipped industry flows are written for speaking alone and leave it be.
        let model = self.has_language_model(&settings);
        let flow = if model { None } else { settings.script() };
        let guide = settings
            .flow
            .clone()
            .filter(|flow| model && guided::guides(flow));
        let tenant = tenant.unwrap_or_default();
        let hours = &settings.business_hours;
        // Hours are kept in their own zone; an agent without them speaks the tenant's.
        let time_zone = match hours.week.is_empty() {
            true => tenant.time_zone,
            false => Some(hours.time_zone.clone()),
        };
        let scope = CallScope {
            ports: self.ports.clone(),
            ctx: ctx.clone(),
            call_id: call_id.clone(),
            lead_id: call.lead_id.clone(),
            agent_id: Some(agent_id),
            time_zone,
            hours: hours.week.clone(),
            qualification: tenant.qualification,
            log: Arc::default(),
        };
        let script =
            flow.map(|flow| ScriptBrain::start(flow, fields.clone().into_map(), scope.clone()));
        let guided =
            guide.map(|flow| GuidedFlow::start(flow, fields.clone().into_map(), scope.clone()));
        let template = match direction {
            Direction::Outbound => &settings.outbound_greeting,
            Direction::Inbound => &settings.inbound_greeting,
        };
        let (script, guided, greeting) = match (script, guided) {
            (Some((brain, opening)), _) => (Some(Arc::new(brain)), None, opening),
            // A guided flow that opens with nothing to say leaves the agent's greeting.
            (None, Some((flow, opening))) if !opening.trim().is_empty() => {
                (None, Some(flow), opening)
            }
            (None, guided) => (None, guided.map(|(flow, _)| flow), fields.render(template)),
        };
        Ok(Callee {
            settings: CallAgent {
                settings,
                prompt,
                script,
                guided,
                scope,
            },
            greeting,
        })
    }

    /// The call's tenant, when its id names one that exists (its name, time zone and
    /// qualification rules); `None` reads as defaults.
    async fn tenant(&self, tenant_id: &str) -> Option<Tenant> {
        let id = TenantId::parse(tenant_id).ok()?;
        aggregate::load::<Tenant>(&*self.ports.events, &id.stream(), tenant_id)
            .await
            .ok()
            .map(|t| t.state)
            .filter(|t| t.exists)
    }

    async fn lead(&self, id: &LeadId, tenant_id: &str) -> Option<Lead> {
        aggregate::load::<Lead>(&*self.ports.events, &id.stream(), tenant_id)
            .await
            .ok()
            .map(|l| l.state)
    }

    /// Stores the transcript and recording and writes the call's events; each record
    /// on its own, so one failing loses none of the others.
    pub(crate) async fn keep(
        &self,
        ctx: &Context,
        id: &CallId,
        outcome: Outcome,
        after: AfterCall,
    ) -> End {
        let call_id = id.to_string();
        let call_id = call_id.as_str();
        let Outcome {
            end,
            duration_ms,
            turns,
            transcript,
            recorder,
            notes,
        } = outcome;
        for note in notes {
            let event = match note {
                Note::BargeIn { at_ms } => CallEvent::CallerBargedIn { at_ms },
                Note::ToolCalled { name, ok } => CallEvent::ToolCalled { name, ok },
            };
            self.note(ctx, id, event).await;
        }
        self.note(
            ctx,
            id,
            CallEvent::MediaStreamEnded {
                reason: end.reason().into(),
                duration_ms,
                turns,
            },
        )
        .await;
        // Before the transcript is stored: a call whose transcript is in has its outcome.
        self.wrap_up(ctx, id, end.reason(), turns, &transcript, &after)
            .await;
        let tenant = ctx.tenant_id.as_str();
        let key = format!("transcripts/{tenant}/{call_id}.json");
        let doc = TranscriptDoc {
            call_id,
            tenant_id: tenant,
            ended: end.reason(),
            duration_ms,
            turns: &transcript,
        };
        match serde_json::to_vec_pretty(&doc) {
            Ok(body) => match self
                .ports
                .blobs
                .put(&key, Bytes::from(body), "application/json")
                .await
            {
                Ok(()) => {
                    let turns = transcript.len() as u32;
                    self.note(ctx, id, CallEvent::TranscriptStored { key, turns })
                        .await;
                }
                Err(e) => {
                    tracing::error!(tenant_id = tenant, call_id, error = %e, "transcript not stored")
                }
            },
            Err(e) => tracing::error!(call_id, error = %e, "transcript not serialisable"),
        }
        if let Some(recorder) = recorder {
            let key = format!("recordings/{tenant}/{call_id}.wav");
            match recorder
                .finish(&*self.ports.blobs as &dyn BlobStore, &key)
                .await
            {
                Ok(stored) => {
                    self.note(
                        ctx,
                        id,
                        CallEvent::CallRecordingStored {
                            key,
                            duration_ms: stored.duration_ms,
                            bytes: stored.bytes,
                        },
                    )
                    .await;
                }
                Err(e) => {
                    tracing::error!(tenant_id = tenant, call_id, error = %e, "recording not stored")
                }
            }
        }
        // The call's view follows its stream, as after every other writer's events.
        let (events, views) = (&*self.ports.events, &*self.ports.views);
        if let Err(e) = parley_shared::views::refresh_call(events, views, id).await {
            tracing::error!(tenant_id = tenant, call_id, error = %e, "call view not refreshed");
        }
        end
    }

    /// Appends a media fact to the call's history; a failure is logged, not fatal.
    pub(crate) async fn note(&self, ctx: &Context, id: &CallId, event: CallEvent) {
        if let Err(e) = record(&self.ports, ctx, id, event).await {
            tracing::error!(tenant_id = %ctx.tenant_id, call_id = %id, error = %e, "call event not written");
        }
    }
}

/// Appends a media fact to the call's history.
pub(crate) async fn record(
    ports: &Ports,
    ctx: &Context,
    id: &CallId,
    event: CallEvent,
) -> Result<(), String> {
    aggregate::execute::<Call>(
        &*ports.events,
        &*ports.clock,
        &id.stream(),
        ctx,
        CallCommand::RecordMedia(event),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;
    use crate::stt::SttConfig;
    use crate::stt::pocketsphinx::Models;
    use parley_shared::domain::agent::AgentCommand;
    use parley_shared::domain::call::Carrier;
    use parley_shared::domain::values::PhoneNumber;
    use parley_shared::flow::{Flow, Industry};

    fn lead(name: Option<&str>) -> Lead {
        let mut lead = Lead {
            name: name.map(str::to_owned),
            phone: PhoneNumber::parse("+14155550123").ok(),
            ..Lead::default()
        };
        lead.fields.insert("company".into(), "Acme".into());
        lead
    }

    fn fill(template: &str, lead: Option<&Lead>) -> String {
        CallFields::new(Some("Acme Realty"), "Riley", Direction::Outbound, lead).render(template)
    }

    #[test]
    fn greetings_take_the_leads_name_and_fields_and_read_naturally_without_them() {
        let template = "Hi {lead_name}, this is {company} calling.";
        assert_eq!(
            fill(template, Some(&lead(Some("Ana")))),
            "Hi Ana, this is Acme calling."
        );
        assert_eq!(
            fill(template, Some(&lead(None))),
            "Hi, this is Acme calling."
        );
        assert_eq!(fill(template, None), "Hi, this is calling.");
        assert_eq!(fill("Hello {unclosed", None), "Hello {unclosed");
        assert_eq!(fill("{lead_name}", Some(&lead(Some("Zoë")))), "Zoë");
        assert_eq!(
            fill("{lead_name}, {lead.company} here.", Some(&lead(None))),
            "Acme here."
        );
    }

    #[test]
    fn prompts_take_the_tenant_agent_direction_and_lead() {
        let prompt = "You are {agent_name} from {tenant_name}, on an {direction} call with \
                      {lead_name} ({lead_phone}) of {lead.company}.";
        assert_eq!(
            fill(prompt, Some(&lead(Some("Ana")))),
            "You are Riley from Acme Realty, on an outbound call with Ana (+14155550123) of Acme."
        );
        let inbound = CallFields::new(None, "Riley", Direction::Inbound, None);
        assert_eq!(
            inbound.render("You are {agent_name} from {tenant_name}. This call is {direction}."),
            "You are Riley from. This call is inbound."
        );
        assert_eq!(inbound.get("company"), None);
        assert_eq!(inbound.get("lead.company"), None);
    }

    /// `text` as a caller's phone delivers it: flite's voice, at 8 kHz, through μ-law.
    fn phone_speech(text: &str) -> Vec<i16> {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("speech.wav");
        let status = std::process::Command::new("flite")
            .args(["-voice", "slt", "-t", text, "-o"])
            .arg(&wav)
            .status()
            .expect("flite is installed (Debian package flite)");
        assert!(status.success());
        let mut reader = hound::WavReader::open(&wav).unwrap();
        let rate = reader.spec().sample_rate;
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        let mut pcm = vec![0; 2_400];
        let mut resampler = crate::resample::Resampler::new(rate, 8_000).unwrap();
        resampler.process(&samples, &mut pcm);
        resampler.flush(&mut pcm);
        pcm.extend([0; 6_400]);
        let mut ulaw = Vec::new();
        crate::g711::encode_ulaw_into(&pcm, &mut ulaw);
        let mut line = Vec::new();
        crate::g711::decode_ulaw_into(&ulaw, &mut line);
        line
    }

    /// What `stt` makes of `audio`, sent as the session sends it.
    async fn finals(stt: &dyn SpeechToText, audio: &[i16]) -> Vec<String> {
        let config = SttConfig {
            sample_rate: 8_000,
            language: "en-US".into(),
            endpointing_ms: 500,
        };
        let mut stream = stt.open(&config).await.expect("the recogniser opens");
        for chunk in audio.chunks(160) {
            let mut le = Vec::new();
            crate::audio::pcm_to_le(chunk, &mut le);
            stream.audio.send(Bytes::from(le)).await.unwrap();
        }
        drop(stream.audio);
        let mut finals = Vec::new();
        while let Some(event) = stream.events.recv().await {
            if let crate::stt::SttEvent::Final { text, .. } = event {
                finals.push(text);
            }
        }
        finals
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_call_answered_by_a_flow_listens_for_its_own_nodes_phrases() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = parley_shared::embedded::Embedded::open(
            dir.path(),
            Arc::new(parley_shared::clock::SystemClock),
            "http://127.0.0.1:1".into(),
            5,
        )
        .unwrap();
        let ports = Ports::embedded(embedded);
        let ctx = Context {
            tenant_id: "t".into(),
            correlation_id: "c".into(),
            idempotency_key: None,
        };
        let mut settings = AgentSettings::named("Riley");
        settings.flow = Some(Flow::default_for(Industry::Appointments));
        let agent_id = AgentId::new();
        let (events, clock) = (&*ports.events, &*ports.clock);
        aggregate::execute::<Agent>(
            events,
            clock,
            &agent_id.stream(),
            &ctx,
            AgentCommand::Create { settings },
        )
        .await
        .unwrap();
        let mut calls = Vec::new();
        for _ in 0..2 {
            let id = CallId::new();
            let request = CallCommand::Request {
                direction: Direction::Inbound,
                carrier: Carrier::Twilio,
                from: PhoneNumber::parse("+14155550123").unwrap(),
                to: PhoneNumber::parse("+14155550100").unwrap(),
                agent_id: agent_id.clone(),
                lead_id: None,
                campaign_id: None,
                attempt: 0,
            };
            aggregate::execute::<Call>(events, clock, &id.stream(), &ctx, request)
                .await
                .unwrap();
            calls.push(id);
        }
        let offline = PocketSphinxStt::new(Models::debian_en_us()).expect(
            "PocketSphinx is installed (Debian packages libpocketsphinx3 and pocketsphinx-en-us)",
        );
        let voice = crate::tts::flite::Flite::from_env()
            .await
            .expect("flite is installed (Debian package flite)");
        let (stt, offline_stt) = default_recogniser(None, Ok(offline.clone()));
        let held = Calls {
            ports: ports.clone(),
            vendors: Vendors {
                stt,
                offline_stt,
                llm: None,
                tools: None,
                voices: Arc::new(OneVoice(Arc::new(voice))),
                fallback_voice: None,
                deployment: None,
                min_speech_ms: 200,
                silence_ms: 500,
            },
        };
        let (first, _) = held.parts(&ctx, &calls[0]).await.unwrap();
        let (second, _) = held.parts(&ctx, &calls[1]).await.unwrap();

        // The first caller says what the appointment is for: that call's flow asks for
        // a day and time. The second call is still at its greeting.
        let said = vec![Message::User {
            content: "a check up".into(),
        }];
        let mut answer = first.brain.answer(said);
        while answer.recv().await.is_some() {}

        let when = phone_speech("next tuesday at two pm");
        let general = finals(&offline, &when).await;
        assert_ne!(
            general,
            ["next tuesday at two pm"],
            "the general model alone"
        );
        assert_eq!(finals(&*first.stt, &when).await, ["next tuesday at two pm"]);
        // The second call's greeting takes free speech: it listens with the general
        // model alone, whatever the first call expects.
        assert_eq!(finals(&*second.stt, &when).await, general);
    }
}
