//! The test a new user trusts: the local stack, started as `parley dev` starts it, runs
//! a three-lead campaign over the simulated carrier on the offline engines alone
//! (flite speaking for agent and callees, PocketSphinx listening, the shipped lead
//! qualification flow deciding), and everything is checked from the API: every lead
//! resolved, a recording as long as its call and a transcript for each answered call,
//! the agent's recorded words what the transcript says it said, temperatures set, and
//! the campaign's analytics.
//!
//! It needs Debian's flite, libpocketsphinx3 and pocketsphinx-en-us, which the test
//! command installs; without them it fails, it does not skip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_media::stt::pocketsphinx::PocketSphinxStt;
use parley_media::stt::{SpeechToText, SttConfig, SttEvent};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const ADMIN: &str = "e2e-simulated-admin-key-0123456789";

struct Local {
    base: String,
    key: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn send(&self, path: &str, key: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The one call made to `lead`.
    async fn only_call(&self, lead: &Value) -> Value {
        let attempts = lead["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{lead}");
        let call_id = attempts[0]["call_id"].as_str().unwrap();
        self.get(&format!("/v1/calls/{call_id}")).await
    }

    async fn fetch(&self, url: &str) -> bytes::Bytes {
        let response = self.http.get(url).send().await.unwrap();
        assert!(response.status().is_success(), "{url}");
        response.bytes().await.unwrap()
    }
}

/// The stack as `parley dev` runs it, with the scheduler ticking every second and the
/// simulated phones ringing briefly, so the campaign runs in test time.
async fn start() -> (Local, String) {
    let dir = tempfile::tempdir().unwrap();
    let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = parley_shared::config::Config::from_lookup(|name| match name {
        "PARLEY_PUBLIC_URL" => Some(base.clone()),
        "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
        _ => None,
    })
    .unwrap();
    let ports = Ports::embedded(
        Embedded::open(dir.path(), Arc::new(SystemClock), base.clone(), 5).unwrap(),
    );
    let mut stack = parley::Stack::new(ports.clone(), &config).await.unwrap();
    stack.tick_every = Duration::from_secs(1);
    stack.simulator = parley::carrier::Simulator::new(
        ports,
        &base,
        parley::carrier::Settings {
            seed: 1,
            ring: Duration::from_millis(500),
        },
    )
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        parley::serve(listener, stack, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    let mut local = Local {
        base,
        key: String::new(),
        http: reqwest::Client::new(),
        _stop: stop,
        _dir: dir,
    };
    let tenant = local
        .send(
            "/v1/tenants",
            ADMIN,
            json!({"name": "Acme Solar", "time_zone": "America/New_York"}),
        )
        .await;
    local.key = tenant["api_key"].as_str().unwrap().to_owned();
    let key = local.key.clone();
    let agent = local
        .send(
            "/v1/agents",
            &key,
            json!({"name": "Riley", "status": "active", "industry": "lead_qualification"}),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    local
        .send(
            "/v1/phone-numbers",
            &key,
            json!({"number": "+12025550123", "agent_id": agent_id, "carrier": "simulated"}),
        )
        .await;
    (local, agent_id)
}

/// The leads: a keen buyer, a lukewarm one, and a voicemail box. Their fields tell the
/// simulated carrier how each picks up and what they say.
const LEADS: &str = "phone,name,simulated_answer,simulated_lines\n\
+12025550101,Dana,human,Yes sure. | We need solar panels for our office. | About twenty thousand dollars. | Yes I decide. | This month. | No thank you.\n\
+12025550102,Sam,human,Yes. | We want to lower our power bill. | We have no budget yet. | My boss decides. | Maybe next year.\n\
+12025550103,Alex,machine,\n";

/// Words of `text`, lower case, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// What PocketSphinx hears on the agent's side (the right channel) of a recording,
/// listening for the lines the transcript says the agent spoke.
async fn agent_heard(wav: &[u8], lines: &[String]) -> Vec<String> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.channels, 2, "the recording is stereo");
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let agent: Vec<i16> = samples.chunks(2).map(|f| f[1]).collect();
    let stt = PocketSphinxStt::from_env()
        .expect("PocketSphinx (libpocketsphinx3, pocketsphinx-en-us) must be installed")
        .expecting(lines);
    let mut stream = stt
        .open(&SttConfig {
            sample_rate: spec.sample_rate,
            language: "en-US".into(),
            endpointing_ms: 500,
        })
        .await
        .unwrap();
    let feeder = {
        let audio = stream.audio.clone();
        tokio::spawn(async move {
            for chunk in agent.chunks(1600) {
                let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                if audio.send(bytes.into()).await.is_err() {
                    break;
                }
            }
        })
    };
    // The recogniser's results are read while the audio goes in: both queues are
    // bounded, and a reader that waited would stall it.
    drop(stream.audio);
    let mut heard = Vec::new();
    while let Some(event) = stream.events.recv().await {
        if let SttEvent::Final { text, .. } = event {
            heard.extend(words(&text));
        }
    }
    feeder.await.unwrap();
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_lead_campaign_runs_end_to_end_on_the_simulated_carrier_and_offline_engines() {
    let (local, agent_id) = start().await;
    let campaign = local
        .send(
            "/v1/campaigns",
            &local.key.clone(),
            json!({
                "name": "Solar follow-ups",
                "agent_id": agent_id,
                "time_zone": "America/New_York",
                // Any hour of any day, so the test runs whenever CI does.
                "calling_window": {"start": "00:00", "end": "23:59", "days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
                "max_concurrent_calls": 3,
                "retry": {"max_attempts": 1, "retry_voicemail": false},
                "voicemail": {"action": "leave_message", "message": "Hi, this is Riley from Acme Solar about your enquiry. Please call us back."},
            }),
        )
        .await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let imported = local
        .http
        .post(format!("{}/v1/campaigns/{id}/leads", local.base))
        .bearer_auth(&local.key)
        .header("content-type", "text/csv")
        .body(LEADS)
        .send()
        .await
        .unwrap();
    assert!(
        imported.status().is_success(),
        "{}",
        imported.text().await.unwrap()
    );
    local
        .send(
            &format!("/v1/campaigns/{id}/start"),
            &local.key.clone(),
            Value::Null,
        )
        .await;

    // The campaign runs on its own: the scheduler, the dialer, the simulated carrier
    // and the media task, in real time.
    let began = Instant::now();
    loop {
        let campaign = local.get(&format!("/v1/campaigns/{id}")).await;
        if campaign["status"] == "COMPLETED" {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(420),
            "campaign not completed: {campaign}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    eprintln!("campaign completed after {:?}", began.elapsed());
    let leads = local.get(&format!("/v1/campaigns/{id}/leads")).await;
    let leads = leads["items"].as_array().unwrap();
    assert_eq!(leads.len(), 3, "{leads:?}");
    let lead = |phone: &str| {
        leads
            .iter()
            .find(|l| l["phone"] == phone)
            .unwrap_or_else(|| panic!("no lead {phone}: {leads:?}"))
            .clone()
    };
    let (dana, sam, alex) = (
        lead("+12025550101"),
        lead("+12025550102"),
        lead("+12025550103"),
    );

    // Answered calls: a recording as long as the call and a transcript each, and in the
    // recording the agent said what the transcript says it said.
    for person in [&dana, &sam] {
        let call = local.only_call(person).await;
        assert_eq!(call["status"], "completed", "{call}");
        assert_eq!(call["answered_by"], "human", "{call}");
        let duration = call["duration_secs"].as_f64().unwrap();
        assert!(duration >= 10.0, "{call}");
        let wav = local.fetch(call["recording_url"].as_str().unwrap()).await;
        let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
        let seconds = reader.duration() as f64 / f64::from(reader.spec().sample_rate);
        assert!(
            (seconds - duration).abs() <= 3.0,
            "recording {seconds} s, call {duration} s"
        );
        let transcript: Value =
            serde_json::from_slice(&local.fetch(call["transcript_url"].as_str().unwrap()).await)
                .unwrap();
        let turns = transcript["turns"].as_array().unwrap();
        let agent_lines: Vec<String> = turns
            .iter()
            .filter(|t| t["speaker"] == "agent")
            .map(|t| t["text"].as_str().unwrap().to_owned())
            .collect();
        assert!(agent_lines.len() >= 4, "{turns:?}");
        assert!(turns.iter().any(|t| t["speaker"] == "caller"), "{turns:?}");
        let said: Vec<String> = agent_lines.iter().flat_map(|l| words(l)).collect();
        let heard = agent_heard(&wav, &agent_lines).await;
        let found = said.iter().filter(|w| heard.contains(w)).count();
        assert!(
            found as f64 >= 0.7 * said.len() as f64,
            "the recording's agent side holds {found} of the transcript's {} words\nsaid: {said:?}\nheard: {heard:?}",
            said.len()
        );
    }

    // The keen buyer is hot; the lukewarm one was qualified, and cooler.
    assert_eq!(dana["temperature"], "hot", "{dana}");
    assert!(
        matches!(sam["temperature"].as_str(), Some("warm" | "cold")),
        "{sam}"
    );
    // The machine got the campaign's message and ended the lead's calls.
    let machine = local.only_call(&alex).await;
    assert_eq!(machine["answered_by"], "machine_end_beep", "{machine}");
    assert_eq!(machine["outcome"], "voicemail", "{machine}");

    let analytics = local.get(&format!("/v1/campaigns/{id}/analytics")).await;
    assert_eq!(analytics["leads"]["total"], 3, "{analytics}");
    assert_eq!(analytics["leads"]["called"], 3, "{analytics}");
    assert_eq!(analytics["leads"]["resolved"], 3, "{analytics}");
    assert_eq!(analytics["calls"]["total"], 3, "{analytics}");
    assert_eq!(analytics["calls"]["answered"], 2, "{analytics}");
    assert_eq!(analytics["calls"]["voicemail"], 1, "{analytics}");
    assert_eq!(analytics["temperature"]["hot"], 1, "{analytics}");
}
