//! Shared by the media task's whole-call tests and its load generator: an embedded
//! store with an agent and the calls requested for it, as the webhooks leave them
//! before a stream opens, and the stream tokens that admit those calls.

#![allow(dead_code)] // each user takes part of it

use std::path::Path;
use std::sync::Arc;

use parley_media::call::{Calls, Vendors};
use parley_media::server::{MediaState, service};
use parley_shared::aggregate::{self, Context};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentSettings};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, Carrier, Direction};
use parley_shared::domain::ids::{AgentId, CallId, LeadId};
use parley_shared::domain::values::PhoneNumber;
use parley_shared::embedded::Embedded;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken::{self, StreamClaims};
use parley_vendors::twilio_caller::{self, Dial, Dialect, Heard, Step};

/// One tenant's agent in an embedded store.
pub struct Scene {
    pub ports: Ports,
    pub tenant: String,
    pub agent_id: AgentId,
    _dir: Option<tempfile::TempDir>,
}

impl Scene {
    /// In a temporary folder of its own.
    pub async fn new(tenant: &str, settings: AgentSettings) -> Scene {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut scene = Scene::in_dir(dir.path(), tenant, settings).await;
        scene._dir = Some(dir);
        scene
    }

    /// In `dir`, which the caller keeps.
    pub async fn in_dir(dir: &Path, tenant: &str, settings: AgentSettings) -> Scene {
        let embedded = Embedded::open(dir, Arc::new(SystemClock), "http://127.0.0.1:1".into(), 5)
            .expect("the embedded store opens");
        let ports = Ports::embedded(embedded);
        let agent_id = AgentId::new();
        let scene = Scene {
            ports,
            tenant: tenant.into(),
            agent_id: agent_id.clone(),
            _dir: None,
        };
        aggregate::execute::<Agent>(
            &*scene.ports.events,
            &*scene.ports.clock,
            &agent_id.stream(),
            &scene.ctx(),
            AgentCommand::Create { settings },
        )
        .await
        .expect("the agent is created");
        scene
    }

    pub fn ctx(&self) -> Context {
        Context {
            tenant_id: self.tenant.clone(),
            correlation_id: "test".into(),
            idempotency_key: None,
        }
    }

    /// A call to the agent (outbound when it is to a lead), as the voice webhook
    /// requests it before the stream opens.
    pub async fn call(&self, carrier: Carrier, lead_id: Option<LeadId>) -> CallId {
        let call_id = CallId::new();
        let direction = match lead_id {
            Some(_) => Direction::Outbound,
            None => Direction::Inbound,
        };
        aggregate::execute::<Call>(
            &*self.ports.events,
            &*self.ports.clock,
            &call_id.stream(),
            &self.ctx(),
            CallCommand::Request {
                direction,
                carrier,
                from: PhoneNumber::parse("+14155550123").expect("a number"),
                to: PhoneNumber::parse("+14155550100").expect("a number"),
                agent_id: self.agent_id.clone(),
                lead_id,
                campaign_id: None,
                attempt: 0,
            },
        )
        .await
        .expect("the call is requested");
        call_id
    }

    /// The call's events as they stand.
    pub async fn call_events(&self, call_id: &CallId) -> Vec<CallEvent> {
        let events = self
            .ports
            .events
            .read_stream(&call_id.stream(), 1)
            .await
            .expect("the call's events read");
        events
            .iter()
            .filter_map(|e| parley_shared::event::decode::<CallEvent>(e).ok().flatten())
            .collect()
    }

    /// The call's events once `written` is among them: its records follow the
    /// session's end, so a test waits for them (five seconds at most).
    pub async fn call_events_once(
        &self,
        call_id: &CallId,
        written: impl Fn(&CallEvent) -> bool,
    ) -> Vec<CallEvent> {
        for _ in 0..100 {
            let events = self.call_events(call_id).await;
            if events.iter().any(&written) {
                return events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the call's records were never written");
    }

    /// The turns of the call's stored transcript.
    pub async fn transcript(&self, call_id: &CallId) -> Vec<serde_json::Value> {
        let key = format!("transcripts/{}/{call_id}.json", self.tenant);
        let body = self.ports.blobs.get(&key).await.expect("blob store reads");
        let doc: serde_json::Value =
            serde_json::from_slice(&body.expect("the transcript is stored")).expect("JSON");
        doc["turns"].as_array().cloned().unwrap_or_default()
    }

    /// How the simulated carrier reaches the media task at `base` (`http://host:port`)
    /// for one of the scene's calls, with its token signed by `secret`.
    pub fn dial(&self, base: &str, secret: &str, call_id: &CallId, dialect: Dialect) -> Dial {
        let route = match dialect {
            Dialect::Twilio => "twilio",
            Dialect::Exotel { .. } => "exotel",
        };
        Dial {
            url: format!("{base}/media/{route}"),
            stream_sid: format!("MZ{}", call_id.to_string().replace('-', "")),
            call_sid: "CAsimulated".into(),
            parameters: vec![
                ("token".into(), self.token(secret, call_id, 5)),
                ("call_id".into(), call_id.to_string()),
                ("tenant_id".into(), self.tenant.clone()),
            ],
        }
    }

    /// The media task serving on loopback over the scene's store with `vendors`,
    /// admitting streams whose tokens `secret` signed: its base URL (`ws://host:port`)
    /// and its state.
    pub async fn serve(&self, secret: &str, vendors: Vendors) -> (String, MediaState) {
        let state = MediaState::new(self.ports.clock.clone(), SecretString::new(secret.into()))
            .with_calls(Calls {
                ports: self.ports.clone(),
                vendors,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!("ws://{}", listener.local_addr().expect("bound"));
        let app = service(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, state)
    }

    /// A stream token for one of the scene's calls, valid for `minutes`.
    pub fn token(&self, secret: &str, call_id: &CallId, minutes: i64) -> String {
        token(&self.tenant, secret, &call_id.to_string(), minutes)
    }
}

/// A stream token for `tenant`'s `call_id`, signed with `secret`, valid for `minutes`
/// (gone by when negative).
pub fn token(tenant: &str, secret: &str, call_id: &str, minutes: i64) -> String {
    let claims = StreamClaims {
        tenant_id: tenant.into(),
        call_id: call_id.into(),
        expires_at: (chrono::Utc::now() + chrono::Duration::minutes(minutes)).timestamp(),
    };
    streamtoken::mint(secret.as_bytes(), &claims).expect("a token")
}

/// Speech as a caller's phone sends it: flite's voice, at 8 kHz, μ-law.
pub fn speech(text: &str) -> Vec<u8> {
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
    let mut pcm = Vec::new();
    let mut resampler = parley_media::resample::Resampler::new(rate, 8_000).unwrap();
    resampler.process(&samples, &mut pcm);
    resampler.flush(&mut pcm);
    pcm.iter()
        .map(|&s| parley_media::g711::ulaw_encode(s))
        .collect()
}

/// Places the call; a call the server never ends fails the test instead of hanging it.
pub async fn place(dial: &Dial, dialect: Dialect, steps: Vec<Step>) -> Heard {
    let heard = tokio::time::timeout(
        std::time::Duration::from_secs(40),
        twilio_caller::call_as(dial, dialect, steps),
    )
    .await
    .expect("the call ended in time")
    .expect("the call went through");
    // Shown when a test fails.
    eprintln!(
        "{} ({dialect:?}): played {:?}, said {:?}, marks {:?}, close {:?}, lost {:?}",
        dial.stream_sid, heard.played, heard.said, heard.marks, heard.close, heard.lost
    );
    heard
}

/// Waits until the agent has spoken and then been quiet for `ms`.
pub fn quiet(ms: u64) -> Step {
    Step::AwaitAgent {
        quiet: std::time::Duration::from_millis(ms),
        within: std::time::Duration::from_secs(20),
    }
}

/// Keeps the line open (in silence) long enough that only the server can end the call.
pub fn stay_on_the_line() -> Step {
    Step::Pause(std::time::Duration::from_secs(30))
}

/// Why the call's media stream ended, and after how many caller turns.
pub fn ended(events: &[CallEvent]) -> (String, u32) {
    events
        .iter()
        .find_map(|e| match e {
            CallEvent::MediaStreamEnded { reason, turns, .. } => Some((reason.clone(), *turns)),
            _ => None,
        })
        .expect("MediaStreamEnded written")
}

/// What the model was asked during the conversation: the call's notes, asked for
/// after it, left out.
pub fn asked(
    chat: &parley_vendors::openai_chat::OpenAiChatServer,
) -> Vec<parley_vendors::openai_chat::RecordedRequest> {
    chat.requests()
        .into_iter()
        .filter(|r| !is_notes(&r.body))
        .collect()
}

/// Whether a request to the model asks for the call's notes.
pub fn is_notes(request: &serde_json::Value) -> bool {
    request["messages"][0]["content"]
        .as_str()
        .is_some_and(|c| c.starts_with("You write the notes"))
}

/// A lead of the context's tenant on +14155550123, with `name` and import `fields`.
pub async fn lead(
    ports: &Ports,
    ctx: &Context,
    name: Option<&str>,
    fields: &[(&str, &str)],
) -> LeadId {
    let id = LeadId::new();
    let create = parley_shared::domain::lead::LeadCommand::Create {
        campaign_id: None,
        phone: PhoneNumber::parse("+14155550123").expect("a number"),
        name: name.map(str::to_owned),
        time_zone: None,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    aggregate::execute::<parley_shared::domain::lead::Lead>(
        &*ports.events,
        &*ports.clock,
        &id.stream(),
        ctx,
        create,
    )
    .await
    .expect("the lead is created");
    id
}
