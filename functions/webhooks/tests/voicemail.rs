//! A campaign's voicemail when a machine answers a call placed through Twilio: the
//! answering-machine callback takes the live call over through a local server that
//! plays Twilio's REST API, and the voice URL answers a synchronous verdict directly.

mod common;

use common::ctx;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parley_shared::aggregate::{execute, load_any};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::domain::agent::AgentStatus;
use parley_shared::domain::call::{
    AnsweredBy, Call, CallCommand, CallEvent, CallOutcome, CallStatus, Carrier, Direction,
};
use parley_shared::domain::campaign::{Campaign, CampaignCommand, CampaignSettings};
use parley_shared::domain::{AgentId, CallId, CampaignId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::rest::RetryPolicy;
use parley_shared::twilio::signature;
use parley_webhooks::{WebhookState, router};
use serde_json::json;
use tower::ServiceExt;

const PUBLIC: &str = "https://parley.example.com";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tenant-auth-token-1234567890abcdef";
const NUMBER: &str = "+14155550100";
const LEAD: &str = "+14155550199";
/// An `&` to show the message is escaped into the TwiML, not pasted.
const MESSAGE: &str = "Hi, this is Riley from Acme & Co. Please call us back.";

/// One request as the local Twilio saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    params: Vec<(String, String)>,
}

impl Seen {
    fn values(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// What every request is answered with.
    status: StatusCode,
}

/// Twilio's Calls API, for any path: records the request, then answers with the Call
/// resource (or with `status`'s error body).
async fn fake_twilio(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    fake.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        params,
    });
    if !fake.status.is_success() {
        let error = json!({"code": 20500, "message": "Internal Server Error", "status": fake.status.as_u16()});
        return (fake.status, axum::Json(error)).into_response();
    }
    let call = json!({"sid": "CA700", "account_sid": ACCOUNT_SID, "status": "in-progress"});
    (StatusCode::OK, axum::Json(call)).into_response()
}

/// Starts the local Twilio: its base URL and what it saw.
async fn twilio(status: StatusCode) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let fake = Fake {
        seen: Arc::default(),
        status,
    };
    let seen = fake.seen.clone();
    let app = Router::new().fallback(fake_twilio).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Standard base64, for the basic auth header Twilio expects.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct World {
    app: Router,
    ports: Ports,
    tenant: TenantId,
    agent: AgentId,
    seen: Arc<Mutex<Vec<Seen>>>,
    _dir: tempfile::TempDir,
}

impl World {
    /// A tenant with its Twilio account stored, and a local Twilio answering `status`.
    async fn new(status: StatusCode) -> Self {
        let (twilio_url, seen) = twilio(status).await;
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::embedded(
            Embedded::open(dir.path(), Arc::new(SystemClock), PUBLIC.into(), 5).unwrap(),
        );
        let config = Config::from_lookup(|name| match name {
            "PARLEY_PUBLIC_URL" => Some(PUBLIC.into()),
            "PARLEY_MEDIA_URL" => Some("wss://media.example.com".into()),
            "PARLEY_TWILIO_API_URL" => Some(twilio_url.clone()),
            _ => None,
        })
        .unwrap();
        let mut state = WebhookState::new(ports.clone(), &config, true)
            .await
            .unwrap();
        // Retries cost milliseconds, not the default's fractions of a second.
        state.twilio = state.twilio.clone().with_retry_policy(RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        });
        let (tenant, agent) = (TenantId::new(), AgentId::new());
        common::routed_tenant(
            &ports,
            &tenant,
            &agent,
            AgentStatus::Active,
            &[(NUMBER, Carrier::Twilio)],
        )
        .await;
        for (item, value) in [
            ("twilio-account-sid", ACCOUNT_SID),
            ("twilio-auth-token", TOKEN),
        ] {
            ports
                .secrets
                .put(
                    &format!("tenant/{tenant}/{item}"),
                    &SecretString::new(value.into()),
                )
                .await
                .unwrap();
        }
        World {
            app: router(state),
            ports,
            tenant,
            agent,
            seen,
            _dir: dir,
        }
    }

    /// A campaign whose voicemail is `voicemail` (JSON, as the API takes it).
    async fn campaign(&self, voicemail: serde_json::Value) -> CampaignId {
        let settings: CampaignSettings = serde_json::from_value(json!({
            "name": "Spring open house",
            "agent_id": self.agent,
            "time_zone": "Europe/London",
            "voicemail": voicemail,
        }))
        .unwrap();
        let id = CampaignId::new();
        execute::<Campaign>(
            &*self.ports.events,
            &*self.ports.clock,
            &id.stream(),
            &ctx(&self.tenant),
            CampaignCommand::Create { settings },
        )
        .await
        .unwrap();
        id
    }

    /// An outbound call placed through Twilio as `call_sid`, ringing through to an
    /// answer, for `campaign` if any.
    async fn placed_call(&self, campaign: Option<&CampaignId>, call_sid: &str) -> CallId {
        let call_id = CallId::new();
        let commands = [
            CallCommand::Request {
                direction: Direction::Outbound,
                carrier: Carrier::Twilio,
                from: PhoneNumber::parse(NUMBER).unwrap(),
                to: PhoneNumber::parse(LEAD).unwrap(),
                agent_id: self.agent.clone(),
                lead_id: None,
                campaign_id: campaign.cloned(),
                attempt: 1,
            },
            CallCommand::AssignCarrierCallId {
                carrier_call_id: call_sid.into(),
            },
            CallCommand::RecordStatus {
                status: CallStatus::InProgress,
                duration_secs: None,
                carrier_time: None,
            },
        ];
        for command in commands {
            execute::<Call>(
                &*self.ports.events,
                &*self.ports.clock,
                &call_id.stream(),
                &ctx(&self.tenant),
                command,
            )
            .await
            .unwrap();
        }
        call_id
    }

    /// Posts `params` to `path` as Twilio would, signed with the tenant's token.
    async fn post(&self, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let url = signature::public_url(PUBLIC, path);
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-twilio-signature",
                signature::expected_signature(TOKEN, &url, &params),
            )
            .body(Body::from(serde_urlencoded::to_string(&params).unwrap()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Twilio's asynchronous verdict on `call_id`, which is always answered 204.
    async fn amd(&self, call_id: &CallId, call_sid: &str, verdict: &str) {
        let path = format!("/webhooks/twilio/amd?call_id={call_id}");
        let (status, body) = self
            .post(&path, &[("CallSid", call_sid), ("AnsweredBy", verdict)])
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{verdict}: {body}");
    }

    /// The call's outcome, if classified, and its summary.
    async fn outcome(&self, id: &CallId) -> Option<(CallOutcome, String)> {
        let events = self
            .ports
            .events
            .read_stream(&id.stream(), 1)
            .await
            .unwrap();
        events.iter().find_map(|e| {
            match parley_shared::event::decode::<CallEvent>(e)
                .ok()
                .flatten()?
            {
                CallEvent::OutcomeClassified { outcome, summary } => Some((outcome, summary)),
                _ => None,
            }
        })
    }

    async fn answered_by(&self, id: &CallId) -> Option<AnsweredBy> {
        load_any::<Call>(&*self.ports.events, &id.stream())
            .await
            .unwrap()
            .state
            .answered_by
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The one `Twiml` parameter of an update-call request to `call_sid` in the tenant's
/// account, authenticated as that account.
fn update_twiml(seen: &Seen, call_sid: &str) -> String {
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json")
    );
    let basic = format!(
        "Basic {}",
        base64(format!("{ACCOUNT_SID}:{TOKEN}").as_bytes())
    );
    assert_eq!(seen.authorization.as_deref(), Some(basic.as_str()));
    let twiml = seen.values("Twiml");
    assert_eq!(twiml.len(), 1, "{seen:?}");
    twiml[0].to_owned()
}

#[test]
fn the_test_base64_is_standard() {
    assert_eq!(base64(b"AC1:tok"), "QUMxOnRvaw==");
    assert_eq!(base64(b"AC12:tok"), "QUMxMjp0b2s=");
    assert_eq!(base64(b"AC123:tok"), "QUMxMjM6dG9r");
}

#[tokio::test]
async fn a_machine_on_a_campaign_call_hears_the_message_then_a_hang_up() {
    let world = World::new(StatusCode::OK).await;
    let campaign = world
        .campaign(json!({"action": "leave_message", "message": MESSAGE}))
        .await;
    let call_id = world.placed_call(Some(&campaign), "CA700").await;

    world.amd(&call_id, "CA700", "machine_end_beep").await;
    let seen = world.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let twiml = update_twiml(&seen[0], "CA700");
    assert!(
        twiml.ends_with(
            "<Response><Say>Hi, this is Riley from Acme &amp; Co. Please call us back.</Say>\
             <Hangup/></Response>"
        ),
        "{twiml}"
    );
    assert_eq!(
        world.answered_by(&call_id).await,
        Some(AnsweredBy::MachineEndBeep)
    );

    assert_eq!(
        world.outcome(&call_id).await,
        Some((
            CallOutcome::Voicemail,
            "A machine answered; the campaign's message was left.".into()
        ))
    );

    // Twilio redelivers the verdict: the message is not started over.
    world.amd(&call_id, "CA700", "machine_end_beep").await;
    assert_eq!(world.seen().len(), 1, "a redelivery takes nothing over");
}

#[tokio::test]
async fn a_campaign_that_hangs_up_on_machines_just_hangs_up() {
    let world = World::new(StatusCode::OK).await;
    let campaign = world.campaign(json!({"action": "hang_up"})).await;
    let call_id = world.placed_call(Some(&campaign), "CA710").await;

    world.amd(&call_id, "CA710", "machine_end_silence").await;
    let seen = world.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let twiml = update_twiml(&seen[0], "CA710");
    assert!(twiml.ends_with("<Response><Hangup/></Response>"), "{twiml}");
}

#[tokio::test]
async fn humans_api_calls_and_ended_calls_are_left_alone() {
    let world = World::new(StatusCode::OK).await;
    let campaign = world
        .campaign(json!({"action": "leave_message", "message": MESSAGE}))
        .await;

    // A person answered: the agent keeps talking.
    let human = world.placed_call(Some(&campaign), "CA720").await;
    world.amd(&human, "CA720", "human").await;
    assert_eq!(world.answered_by(&human).await, Some(AnsweredBy::Human));

    // A call placed through the API belongs to no campaign and keeps its agent.
    let api_call = world.placed_call(None, "CA721").await;
    world.amd(&api_call, "CA721", "machine_end_beep").await;
    assert!(world.answered_by(&api_call).await.is_some());

    // The verdict arrives after the call ended: nothing is left to take over.
    let ended = world.placed_call(Some(&campaign), "CA722").await;
    execute::<Call>(
        &*world.ports.events,
        &*world.ports.clock,
        &ended.stream(),
        &ctx(&world.tenant),
        CallCommand::RecordStatus {
            status: CallStatus::Completed,
            duration_secs: Some(12),
            carrier_time: None,
        },
    )
    .await
    .unwrap();
    world.amd(&ended, "CA722", "machine_end_other").await;
    assert_eq!(
        world.answered_by(&ended).await,
        Some(AnsweredBy::MachineEndOther)
    );

    assert!(world.seen().is_empty(), "{:?}", world.seen());
}

#[tokio::test]
async fn a_failing_twilio_still_gets_204_and_the_verdict_is_kept() {
    let world = World::new(StatusCode::INTERNAL_SERVER_ERROR).await;
    let campaign = world
        .campaign(json!({"action": "leave_message", "message": MESSAGE}))
        .await;
    let call_id = world.placed_call(Some(&campaign), "CA730").await;

    world.amd(&call_id, "CA730", "machine_end_beep").await;
    let seen = world.seen();
    assert!(!seen.is_empty(), "the update was tried");
    assert!(update_twiml(&seen[0], "CA730").contains("<Say>"));
    assert_eq!(
        world.answered_by(&call_id).await,
        Some(AnsweredBy::MachineEndBeep)
    );
}

#[tokio::test]
async fn a_tenant_without_its_account_sid_still_gets_204() {
    let world = World::new(StatusCode::OK).await;
    world
        .ports
        .secrets
        .delete(&format!("tenant/{}/twilio-account-sid", world.tenant))
        .await
        .unwrap();
    let campaign = world
        .campaign(json!({"action": "leave_message", "message": MESSAGE}))
        .await;
    let call_id = world.placed_call(Some(&campaign), "CA740").await;

    world.amd(&call_id, "CA740", "machine_end_beep").await;
    assert!(world.seen().is_empty());
    assert_eq!(
        world.answered_by(&call_id).await,
        Some(AnsweredBy::MachineEndBeep)
    );
}

/// Without asynchronous detection the verdict comes with the voice URL, which answers
/// the campaign's voicemail itself: no REST request, no stream to the agent.
#[tokio::test]
async fn a_synchronous_machine_verdict_answers_the_voicemail_twiml() {
    let world = World::new(StatusCode::OK).await;
    let campaign = world
        .campaign(json!({"action": "leave_message", "message": MESSAGE}))
        .await;
    let voice = |call_id: &CallId| format!("/webhooks/twilio/voice?call_id={call_id}");

    let call_id = world.placed_call(Some(&campaign), "CA750").await;
    let params = [
        ("CallSid", "CA750"),
        ("To", LEAD),
        ("From", NUMBER),
        ("AnsweredBy", "machine_end_beep"),
    ];
    let (status, twiml) = world.post(&voice(&call_id), &params).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(
        twiml.ends_with(
            "<Response><Say>Hi, this is Riley from Acme &amp; Co. Please call us back.</Say>\
             <Hangup/></Response>"
        ),
        "{twiml}"
    );

    // A fax machine cannot listen: it only gets the hang-up.
    let fax = world.placed_call(Some(&campaign), "CA751").await;
    let params = [
        ("CallSid", "CA751"),
        ("To", LEAD),
        ("From", NUMBER),
        ("AnsweredBy", "fax"),
    ];
    let (status, twiml) = world.post(&voice(&fax), &params).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(twiml.ends_with("<Response><Hangup/></Response>"), "{twiml}");
    assert_eq!(
        world.outcome(&call_id).await.map(|o| o.0),
        Some(CallOutcome::Voicemail)
    );
    assert_eq!(
        world.outcome(&fax).await.map(|o| o.1),
        Some("A fax machine answered; the call was ended.".into())
    );

    // A person still reaches the agent.
    let human = world.placed_call(Some(&campaign), "CA752").await;
    let params = [
        ("CallSid", "CA752"),
        ("To", LEAD),
        ("From", NUMBER),
        ("AnsweredBy", "human"),
    ];
    let (status, twiml) = world.post(&voice(&human), &params).await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(
        twiml.contains(&format!(
            "<Connect action=\"{PUBLIC}/webhooks/twilio/connected?call_id={human}\"><Stream"
        )),
        "{twiml}"
    );

    assert!(world.seen().is_empty(), "{:?}", world.seen());
}
