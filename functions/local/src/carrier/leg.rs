//! One simulated call, from ringing to its last status callback: what Twilio does for
//! a call placed through its REST API, on Parley's own webhooks.
//!
//! It posts the progress callbacks Parley asked for (initiated, ringing, answered,
//! completed), each a form signed with the account's auth token as Twilio signs; on an
//! answer it fetches the call's TwiML and follows it. A `<Connect><Stream>` opens the
//! media WebSocket and speaks Twilio's Media Streams protocol: `connected`, `start`
//! with the stream's parameters, the callee's audio as a 20 ms μ-law `media` frame
//! every 20 ms, `mark` echoed once the agent's audio before it has played, `clear`
//! emptying what is still to play, and `stop` when the callee hangs up. When Parley
//! ends the stream, the `<Connect>`'s action says what comes next; a `<Dial>` rings
//! numbers nobody answers on this network, so its action hears `no-answer`. Answering
//! machine detection, when asked for, reports the verdict asynchronously.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use parley_media::g711;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::signature;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::callee::{Answer, Callee};
use super::speech::{self, Voice};
use super::twiml::{self, Verb};

/// 20 ms of 8 kHz μ-law.
const FRAME: usize = 160;
const SILENCE: u8 = 0xFF;
/// Longest a simulated call lasts, whatever happens in it.
const MAX_CALL: Duration = Duration::from_secs(300);
/// How many TwiML documents one call may follow (Redirects and actions included).
const MAX_DOCUMENTS: usize = 16;
/// A person answers once the agent has spoken this long and then been quiet this long.
const HEARD_ENOUGH_MS: u32 = 400;
const TURN_GAP_MS: u32 = 900;
/// With nothing heard for this long after their line, a person speaks again (or, with
/// nothing left to say, hangs up).
const PATIENCE_MS: u32 = 12_000;
/// After the person's last line and the agent's answer to it, this much quiet ends the
/// call from their side.
const LAST_QUIET_MS: u32 = 2_500;

/// What Parley asked for when it placed the call (the create-call form).
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub url: String,
    pub status_callback: Option<String>,
    /// `StatusCallbackEvent`s; Twilio sends only `completed` when none are given.
    pub events: Vec<String>,
    /// Where to send the asynchronous machine-detection verdict, if asked for.
    pub amd_callback: Option<String>,
    pub timeout_secs: u32,
}

/// A call's state as `GET …/Calls/{sid}.json` reports it.
#[derive(Clone, Debug)]
pub struct Status {
    pub status: &'static str,
    pub duration: Option<u32>,
}

/// A change asked of a live call through the REST API.
#[derive(Debug)]
pub enum Update {
    Twiml(String),
    Url(String),
    HangUp,
}

/// One simulated call.
pub struct Leg {
    pub sid: String,
    pub account_sid: String,
    token: SecretString,
    pub to: String,
    pub from: String,
    request: Request,
    /// A call to one of Parley's numbers (from a softphone or the browser page),
    /// rather than one Parley placed.
    inbound: bool,
    status: Mutex<Status>,
    updates: mpsc::Sender<Update>,
    sequence: std::sync::atomic::AtomicU32,
}

impl Leg {
    pub fn new(
        account_sid: String,
        token: SecretString,
        to: String,
        from: String,
        request: Request,
    ) -> (Leg, mpsc::Receiver<Update>) {
        let (updates, receiver) = mpsc::channel(4);
        let leg = Leg {
            sid: format!("CA{}", uuid::Uuid::new_v4().simple()),
            account_sid,
            token,
            to,
            from,
            request,
            inbound: false,
            status: Mutex::new(Status {
                status: "queued",
                duration: None,
            }),
            updates,
            sequence: Default::default(),
        };
        (leg, receiver)
    }

    /// The same call, coming in to one of Parley's numbers.
    pub fn inbound(mut self) -> Leg {
        self.inbound = true;
        self
    }

    /// Whether `token` is the one this call was placed with.
    pub fn placed_with(&self, account_sid: &str, token: &SecretString) -> bool {
        // `SecretString` compares in constant time.
        self.account_sid == account_sid && self.token == *token
    }

    pub fn status(&self) -> Status {
        match self.status.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_status(&self, status: &'static str, duration: Option<u32>) {
        let mut s = match self.status.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.status = status;
        if duration.is_some() {
            s.duration = duration;
        }
    }

    /// Hands a live call new instructions; false once it has ended.
    pub async fn update(&self, update: Update) -> bool {
        let live = !matches!(
            self.status().status,
            "completed" | "busy" | "no-answer" | "failed" | "canceled"
        );
        live && self.updates.send(update).await.is_ok()
    }

    /// The parameters Twilio sends with every request about a call.
    fn params(&self, status: &str) -> Vec<(String, String)> {
        vec![
            ("AccountSid".into(), self.account_sid.clone()),
            ("ApiVersion".into(), "2010-04-01".into()),
            ("CallSid".into(), self.sid.clone()),
            ("CallStatus".into(), status.into()),
            ("Called".into(), self.to.clone()),
            ("Caller".into(), self.from.clone()),
            (
                "Direction".into(),
                if self.inbound {
                    "inbound"
                } else {
                    "outbound-api"
                }
                .into(),
            ),
            ("From".into(), self.from.clone()),
            ("To".into(), self.to.clone()),
        ]
    }
}

/// What a leg needs from the simulator.
#[derive(Clone)]
pub struct Network {
    pub http: reqwest::Client,
    pub ring: Duration,
}

/// Posts `params` to `url`, signed with the call's token; the answer's body.
async fn post(net: &Network, leg: &Leg, url: &str, params: &[(String, String)]) -> Option<String> {
    let signed = signature::expected_signature(leg.token.expose(), url, params);
    let sent = net
        .http
        .post(url)
        .header("X-Twilio-Signature", signed)
        .form(params)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => response.text().await.ok(),
        Ok(response) => {
            tracing::warn!(call_sid = %leg.sid, status = %response.status(), "simulated carrier: webhook refused");
            None
        }
        Err(e) => {
            tracing::warn!(call_sid = %leg.sid, error = %e, "simulated carrier: webhook not reached");
            None
        }
    }
}

/// Posts a progress callback, if Parley asked for this event.
async fn progress(net: &Network, leg: &Leg, event: &str, status: &str, duration: Option<u32>) {
    let Some(url) = leg.request.status_callback.as_deref() else {
        return;
    };
    let wanted = if leg.request.events.is_empty() {
        event == "completed"
    } else {
        leg.request.events.iter().any(|e| e == event)
    };
    if !wanted {
        return;
    }
    let sequence = leg
        .sequence
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut params = leg.params(status);
    params.push(("CallbackSource".into(), "call-progress-events".into()));
    params.push(("SequenceNumber".into(), sequence.to_string()));
    params.push(("Timestamp".into(), chrono::Utc::now().to_rfc2822()));
    if let Some(secs) = duration {
        params.push(("CallDuration".into(), secs.to_string()));
        params.push(("Duration".into(), secs.div_ceil(60).to_string()));
    }
    post(net, leg, url, &params).await;
}

/// Plays the call out: rings, answers as `callee` does, follows Parley's TwiML, and
/// reports the end.
pub async fn run(
    net: Network,
    leg: std::sync::Arc<Leg>,
    callee: Callee,
    mut updates: mpsc::Receiver<Update>,
) {
    leg.set_status("initiated", None);
    progress(&net, &leg, "initiated", "initiated", None).await;
    leg.set_status("ringing", None);
    progress(&net, &leg, "ringing", "ringing", None).await;
    tokio::time::sleep(net.ring).await;
    let final_status = match callee.answer {
        Answer::Busy => "busy",
        Answer::NoAnswer => {
            // Rings out: the caller's timeout, shortened as the ring is.
            tokio::time::sleep(net.ring).await;
            "no-answer"
        }
        Answer::Human | Answer::Machine => "completed",
    };
    if final_status != "completed" {
        leg.set_status(final_status, Some(0));
        progress(&net, &leg, "completed", final_status, Some(0)).await;
        return;
    }
    leg.set_status("in-progress", None);
    progress(&net, &leg, "answered", "in-progress", None).await;
    let answered = Instant::now();
    let script = Script::prepare(&callee).await;
    if let Some(url) = leg.request.amd_callback.clone() {
        let verdict = match callee.answer {
            Answer::Machine => ("machine_end_beep", script.greeting_ms()),
            _ => ("human", 1_500),
        };
        let (net2, leg2) = (net.clone(), leg.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(verdict.1))).await;
            let params = vec![
                ("AccountSid".into(), leg2.account_sid.clone()),
                ("CallSid".into(), leg2.sid.clone()),
                ("AnsweredBy".into(), verdict.0.to_owned()),
                ("MachineDetectionDuration".into(), verdict.1.to_string()),
            ];
            post(&net2, &leg2, &url, &params).await;
        });
    }
    converse(&net, &leg, Far::Script(script), &mut updates, answered).await;
}

/// Plays out a call someone makes to one of Parley's numbers from a phone of their
/// own (`phone`): Parley's voice webhook is asked at once, and the call's end is
/// reported to the status callback.
pub async fn run_inbound(
    net: Network,
    leg: std::sync::Arc<Leg>,
    phone: PhoneLink,
    mut updates: mpsc::Receiver<Update>,
) {
    leg.set_status("ringing", None);
    converse(&net, &leg, Far::Phone(phone), &mut updates, Instant::now()).await;
}

/// Follows Parley's TwiML with `far` on the line until the call ends, then reports
/// its end and length (from `answered`).
async fn converse(
    net: &Network,
    leg: &Leg,
    far: Far,
    updates: &mut mpsc::Receiver<Update>,
    answered: Instant,
) {
    let mut far = Some(far);
    let _ = tokio::time::timeout(MAX_CALL, follow(net, leg, &mut far, updates)).await;
    // A phone hears the call is over, whoever ended it.
    if let Some(Far::Phone(phone)) = far {
        let _ = phone.to_phone.send(PhoneEvent::Ended).await;
    }
    let secs = answered.elapsed().as_secs_f64().round() as u32;
    leg.set_status("completed", Some(secs));
    progress(net, leg, "completed", "completed", Some(secs)).await;
}

/// Fetches and follows TwiML from the call's URL until the call ends.
async fn follow(
    net: &Network,
    leg: &Leg,
    far: &mut Option<Far>,
    updates: &mut mpsc::Receiver<Update>,
) {
    // An incoming call's first request is made while it rings.
    let first = if leg.inbound {
        "ringing"
    } else {
        "in-progress"
    };
    let mut document = post(net, leg, &leg.request.url, &leg.params(first)).await;
    let mut followed = 0;
    while let Some(xml) = document.take() {
        followed += 1;
        if followed > MAX_DOCUMENTS {
            return;
        }
        tracing::debug!(call_sid = %leg.sid, twiml = %xml, "simulated carrier: following");
        let verbs = match twiml::parse(&xml) {
            Ok(verbs) => verbs,
            Err(e) => {
                // Twilio says "an application error has occurred" and hangs up.
                tracing::warn!(call_sid = %leg.sid, error = %e, "simulated carrier: not TwiML");
                return;
            }
        };
        for verb in verbs {
            let next = match verb {
                Verb::Say(text) => wait(speaking_time(&text), updates).await,
                Verb::Pause(secs) => {
                    wait(Duration::from_secs(u64::from(secs.min(60))), updates).await
                }
                Verb::Hangup => return,
                Verb::Redirect(url) => Step::Fetch(url),
                Verb::Other(_) => Step::Next,
                Verb::Connect { action, stream } => {
                    let Some(stream) = stream else { continue };
                    let Some(party) = far.as_mut() else {
                        return;
                    };
                    let end = media(leg, &stream, party, updates).await;
                    tracing::debug!(call_sid = %leg.sid, end = ?end, "simulated carrier: stream ended");
                    // A scripted callee says their lines once; a phone stays on the line.
                    if matches!(far, Some(Far::Script(_))) {
                        *far = None;
                    }
                    match end {
                        StreamEnd::CalleeHungUp => return,
                        StreamEnd::Updated(update) => Step::Updated(update),
                        StreamEnd::Closed => match action {
                            Some(url) => Step::Fetch(url),
                            None => Step::Next,
                        },
                    }
                }
                Verb::Dial {
                    action,
                    numbers,
                    timeout_secs,
                } => {
                    // Nobody on this network answers a dialled number.
                    let ring = net.ring.min(Duration::from_secs(u64::from(timeout_secs)));
                    match wait(ring, updates).await {
                        Step::Next => match action {
                            Some(url) => {
                                let mut params = leg.params("in-progress");
                                params.push(("DialCallStatus".into(), "no-answer".into()));
                                params.push(("DialCallDuration".into(), "0".into()));
                                if let Some(first) = numbers.first() {
                                    params.push(("DialCallTo".into(), first.clone()));
                                }
                                document =
                                    post(net, leg, &absolute(&url, &leg.request.url), &params)
                                        .await;
                                break;
                            }
                            None => Step::Next,
                        },
                        other => other,
                    }
                }
            };
            match next {
                Step::Next => {}
                Step::Fetch(url) => {
                    document = post(
                        net,
                        leg,
                        &absolute(&url, &leg.request.url),
                        &leg.params("in-progress"),
                    )
                    .await;
                    break;
                }
                Step::Updated(Update::HangUp) => return,
                Step::Updated(Update::Twiml(xml)) => {
                    document = Some(xml);
                    break;
                }
                Step::Updated(Update::Url(url)) => {
                    document = post(net, leg, &url, &leg.params("in-progress")).await;
                    break;
                }
            }
        }
    }
}

/// A relative action URL, resolved against the document's own.
fn absolute(url: &str, base: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        return url.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    format!("{}/{}", &base[..origin_end], url.trim_start_matches('/'))
}

enum Step {
    Next,
    Fetch(String),
    Updated(Update),
}

/// Waits `time`, or less if the call is updated meanwhile.
async fn wait(time: Duration, updates: &mut mpsc::Receiver<Update>) -> Step {
    tokio::select! {
        _ = tokio::time::sleep(time) => Step::Next,
        update = updates.recv() => update.map_or(Step::Next, Step::Updated),
    }
}

/// About how long a `<Say>` takes to speak.
fn speaking_time(text: &str) -> Duration {
    let words = text.split_whitespace().count() as u64;
    Duration::from_millis((words * 350).clamp(300, 30_000))
}

/// How a media stream ended.
#[derive(Debug)]
enum StreamEnd {
    CalleeHungUp,
    /// Parley closed the stream: the call goes on with the next TwiML.
    Closed,
    Updated(Update),
}

/// The far end of the call: a scripted callee, or a person on a phone of their own.
pub enum Far {
    Script(Script),
    Phone(PhoneLink),
}

/// What the phone at the far end is told.
#[derive(Debug)]
pub enum PhoneEvent {
    /// The agent's audio, 8 kHz μ-law, as it arrives.
    Audio(Vec<u8>),
    /// Drop the agent's audio not yet played: the caller spoke over it.
    Clear,
    /// Something the media task sent on the stream that the phone may show.
    Stream(Value),
    Ended,
}

/// What the phone at the far end sends.
#[derive(Debug)]
pub enum PhoneInput {
    /// The caller's audio, 8 kHz μ-law, any length.
    Audio(Vec<u8>),
    HangUp,
}

/// A phone connected to the simulated network.
pub struct PhoneLink {
    pub to_phone: mpsc::Sender<PhoneEvent>,
    pub from_phone: mpsc::Receiver<PhoneInput>,
}

/// The caller's audio held until its 20 ms comes: at most this much (a second).
const PHONE_BUFFER: usize = 8_000;

/// A scripted callee: a person with lines, or a voicemail machine.
#[derive(Default)]
pub struct Script {
    /// Each line as 8 kHz μ-law.
    lines: VecDeque<Vec<u8>>,
    machine: bool,
}

impl Script {
    async fn prepare(callee: &Callee) -> Script {
        let machine = callee.answer == Answer::Machine;
        let texts: Vec<String> = if machine {
            vec!["Hi, you have reached my voicemail. I can't take your call right now. Please leave a message after the tone.".to_owned()]
        } else {
            callee.lines.clone()
        };
        let mut lines = VecDeque::new();
        for text in &texts {
            match speech::speak(&callee.voice, text).await {
                Ok(audio) => lines.push_back(audio),
                Err(e) => {
                    tracing::warn!(error = %e, "simulated callee: line not spoken");
                    // A voice that cannot be had falls back to flite's own.
                    if callee.voice != Voice::Flite(super::callee::DEFAULT_VOICE.into())
                        && let Ok(audio) =
                            speech::speak(&Voice::Flite(super::callee::DEFAULT_VOICE.into()), text)
                                .await
                    {
                        lines.push_back(audio);
                    }
                }
            }
        }
        if machine && let Some(greeting) = lines.front_mut() {
            greeting.extend(std::iter::repeat_n(SILENCE, 8 * 300));
            greeting.extend(speech::beep(500));
        }
        Script { lines, machine }
    }

    /// How long a machine's greeting and beep last, in milliseconds.
    fn greeting_ms(&self) -> u32 {
        self.lines.front().map_or(0, |l| (l.len() / 8) as u32)
    }
}

/// The agent's audio as a phone plays it: a buffer drained in real time, and the marks
/// waiting on it.
#[derive(Default)]
struct Playback {
    received: u64,
    played: u64,
    loud: VecDeque<(u64, bool)>,
    marks: VecDeque<(u64, String)>,
}

impl Playback {
    fn push(&mut self, audio: &[u8]) {
        for frame in audio.chunks(FRAME) {
            let loud = frame
                .iter()
                .any(|b| g711::ulaw_decode(*b).unsigned_abs() > 1_000);
            self.received += frame.len() as u64;
            self.loud.push_back((self.received, loud));
        }
    }

    fn mark(&mut self, name: String) {
        self.marks.push_back((self.received, name));
    }

    /// Drops what has not played yet.
    fn clear(&mut self) {
        self.played = self.received;
        self.loud.clear();
    }

    /// Plays 20 ms; whether the agent was audible in it, and the marks now played.
    fn advance(&mut self) -> (bool, Vec<String>) {
        let mut audible = false;
        if self.played < self.received {
            self.played = (self.played + FRAME as u64).min(self.received);
        }
        while let Some((end, loud)) = self.loud.front().copied() {
            if end > self.played {
                break;
            }
            audible |= loud;
            self.loud.pop_front();
        }
        let mut done = Vec::new();
        while self.marks.front().is_some_and(|(at, _)| *at <= self.played) {
            if let Some((_, name)) = self.marks.pop_front() {
                done.push(name);
            }
        }
        (audible, done)
    }
}

/// Whose turn it is, as the far end sees it.
struct Talk {
    far: Script,
    speaking: Option<(Vec<u8>, usize)>,
    heard_ms: u32,
    quiet_ms: u32,
    waited_ms: u32,
    /// The last line has been said.
    finished: bool,
}

enum Act {
    Frame([u8; FRAME]),
    HangUp,
}

impl Talk {
    fn new(mut far: Script) -> Talk {
        // A machine's greeting starts at once; a person waits to hear who it is.
        let speaking = if far.machine {
            far.lines.pop_front().map(|l| (l, 0))
        } else {
            None
        };
        Talk {
            far,
            speaking,
            heard_ms: 0,
            quiet_ms: 0,
            waited_ms: 0,
            finished: false,
        }
    }

    /// The next 20 ms from the far end, given whether the agent was audible in the last.
    fn next(&mut self, agent_audible: bool) -> Act {
        if let Some((line, at)) = self.speaking.as_mut() {
            let mut frame = [SILENCE; FRAME];
            let end = (*at + FRAME).min(line.len());
            if let Some(chunk) = line.get(*at..end) {
                frame[..chunk.len()].copy_from_slice(chunk);
            }
            *at = end;
            if *at >= line.len() {
                self.speaking = None;
                self.heard_ms = 0;
                self.quiet_ms = 0;
                self.waited_ms = 0;
                self.finished = self.far.lines.is_empty();
            }
            return Act::Frame(frame);
        }
        if agent_audible {
            self.heard_ms += 20;
            self.quiet_ms = 0;
        } else {
            self.quiet_ms += 20;
        }
        self.waited_ms += 20;
        let answered = self.heard_ms >= HEARD_ENOUGH_MS;
        if self.far.machine {
            // A machine records until the message ends, then hangs up.
            if (answered && self.quiet_ms >= 3_000) || self.waited_ms >= 60_000 {
                return Act::HangUp;
            }
            return Act::Frame([SILENCE; FRAME]);
        }
        if self.finished {
            if (answered && self.quiet_ms >= LAST_QUIET_MS) || self.waited_ms >= PATIENCE_MS {
                return Act::HangUp;
            }
        } else if (answered && self.quiet_ms >= TURN_GAP_MS) || self.waited_ms >= PATIENCE_MS {
            match self.far.lines.pop_front() {
                Some(line) => self.speaking = Some((line, 0)),
                None => self.finished = true,
            }
        }
        Act::Frame([SILENCE; FRAME])
    }
}

/// Streams the call to `stream` until someone ends it.
async fn media(
    leg: &Leg,
    stream: &twiml::Stream,
    far: &mut Far,
    updates: &mut mpsc::Receiver<Update>,
) -> StreamEnd {
    let socket = match tokio_tungstenite::connect_async(stream.url.as_str()).await {
        Ok((socket, _)) => socket,
        Err(e) => {
            tracing::warn!(call_sid = %leg.sid, error = %e, "simulated carrier: media stream not opened");
            return StreamEnd::Closed;
        }
    };
    let (mut tx, mut rx) = socket.split();
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let mut parameters: serde_json::Map<String, Value> = stream
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // A person on a phone of their own sees the conversation as it goes; Twilio never
    // asks for this, and scripted callees have no screen.
    if matches!(far, Far::Phone(_)) {
        let (name, value) = parley_media::session::LIVE_TRANSCRIPT;
        parameters.insert(name.to_owned(), Value::from(value));
    }
    let opening = [
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json!({
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": leg.account_sid,
                "streamSid": stream_sid,
                "callSid": leg.sid,
                "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": stream_sid,
        }),
    ];
    for frame in opening {
        if tx.send(Message::text(frame.to_string())).await.is_err() {
            return StreamEnd::Closed;
        }
    }
    let mut talk = match far {
        Far::Script(script) => Some(Talk::new(std::mem::take(script))),
        Far::Phone(_) => None,
    };
    let mut held: VecDeque<u8> = VecDeque::new();
    let mut playback = Playback::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sequence: u64 = 2;
    let mut chunk: u64 = 1;
    let stop = |sequence: u64| json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": stream_sid, "stop": {"accountSid": leg.account_sid, "callSid": leg.sid}});
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let (audible, marks) = playback.advance();
                for name in marks {
                    let echo = json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": stream_sid, "mark": {"name": name}});
                    sequence += 1;
                    if tx.send(Message::text(echo.to_string())).await.is_err() {
                        return StreamEnd::Closed;
                    }
                }
                let act = match (talk.as_mut(), &mut *far) {
                    (Some(talk), _) => talk.next(audible),
                    (None, Far::Phone(link)) => phone_frame(link, &mut held),
                    (None, Far::Script(_)) => Act::HangUp,
                };
                let frame = match act {
                    Act::Frame(frame) => frame,
                    Act::HangUp => {
                        let _ = tx.send(Message::text(stop(sequence).to_string())).await;
                        let _ = tx.close().await;
                        return StreamEnd::CalleeHungUp;
                    }
                };
                let media = json!({
                    "event": "media",
                    "sequenceNumber": sequence.to_string(),
                    "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": ((chunk - 1) * 20).to_string(), "payload": STANDARD.encode(frame)},
                    "streamSid": stream_sid,
                });
                sequence += 1;
                chunk += 1;
                if tx.send(Message::text(media.to_string())).await.is_err() {
                    return StreamEnd::Closed;
                }
            }
            message = rx.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let event = heard(&text, &stream_sid, &mut playback);
                    if let (Some(event), Far::Phone(link)) = (event, &mut *far) {
                        // A phone that cannot keep up loses audio, not the call.
                        let _ = link.to_phone.try_send(event);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return StreamEnd::Closed,
                Some(Ok(_)) => {}
            },
            update = updates.recv() => {
                let _ = tx.send(Message::text(stop(sequence).to_string())).await;
                let _ = tx.close().await;
                return StreamEnd::Updated(update.unwrap_or(Update::HangUp));
            }
        }
    }
}

/// The next 20 ms of a phone's caller: what it sent, or silence while it is quiet.
fn phone_frame(link: &mut PhoneLink, held: &mut VecDeque<u8>) -> Act {
    loop {
        match link.from_phone.try_recv() {
            Ok(PhoneInput::Audio(audio)) => {
                held.extend(audio);
                // A caller far ahead of real time is cut back to the latest second.
                let excess = held.len().saturating_sub(PHONE_BUFFER);
                held.drain(..excess);
            }
            Ok(PhoneInput::HangUp) | Err(mpsc::error::TryRecvError::Disconnected) => {
                return Act::HangUp;
            }
            Err(mpsc::error::TryRecvError::Empty) => break,
        }
    }
    let mut frame = [SILENCE; FRAME];
    for (slot, byte) in frame.iter_mut().zip(held.drain(..held.len().min(FRAME))) {
        *slot = byte;
    }
    Act::Frame(frame)
}

/// What Parley sent on the stream: audio to play, a mark to echo, or a clear; and
/// what of it a phone at the far end should hear. Anything for another stream, or
/// not JSON, is ignored as Twilio would.
fn heard(text: &str, stream_sid: &str, playback: &mut Playback) -> Option<PhoneEvent> {
    let frame = serde_json::from_str::<Value>(text).ok()?;
    if frame["streamSid"].as_str() != Some(stream_sid) {
        return None;
    }
    match frame["event"].as_str() {
        Some("media") => {
            let audio = frame["media"]["payload"]
                .as_str()
                .and_then(|p| STANDARD.decode(p).ok())?;
            playback.push(&audio);
            Some(PhoneEvent::Audio(audio))
        }
        Some("mark") => {
            if let Some(name) = frame["mark"]["name"].as_str() {
                playback.mark(name.to_owned());
            }
            None
        }
        Some("clear") => {
            playback.clear();
            Some(PhoneEvent::Clear)
        }
        _ => Some(PhoneEvent::Stream(frame)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loud(ms: usize) -> Vec<u8> {
        (0..ms * 8)
            .map(|n| g711::ulaw_encode(if n % 16 < 8 { 8000 } else { -8000 }))
            .collect()
    }

    #[test]
    fn marks_are_echoed_once_the_audio_before_them_has_played_and_clear_flushes_them() {
        let mut p = Playback::default();
        p.push(&loud(40));
        p.mark("a".into());
        p.push(&loud(20));
        p.mark("b".into());
        assert_eq!(p.advance(), (true, vec![]));
        assert_eq!(p.advance(), (true, vec!["a".to_string()]));
        p.clear();
        assert_eq!(p.advance(), (false, vec!["b".to_string()]));
        assert_eq!(p.advance(), (false, vec![]));
    }

    #[test]
    fn a_person_answers_after_the_agent_speaks_and_pauses_then_hangs_up_after_the_last_line() {
        let far = Script {
            lines: VecDeque::from(vec![vec![0x10; 400], vec![0x20; 160]]),
            machine: false,
        };
        let mut talk = Talk::new(far);
        let mut said = Vec::new();
        let step = |talk: &mut Talk, audible: bool, said: &mut Vec<u8>| match talk.next(audible) {
            Act::Frame(f) => {
                said.extend(f.iter().filter(|b| **b != SILENCE));
                false
            }
            Act::HangUp => true,
        };
        // Quiet before the agent has said anything: nothing said.
        for _ in 0..20 {
            assert!(!step(&mut talk, false, &mut said));
        }
        assert!(said.is_empty());
        // The agent speaks 0.5 s, then 1 s of quiet: the first line comes.
        for _ in 0..25 {
            step(&mut talk, true, &mut said);
        }
        for _ in 0..(TURN_GAP_MS / 20 + 3) {
            step(&mut talk, false, &mut said);
        }
        assert_eq!(said.len(), 400);
        // Again for the last line, then the agent's answer and a long quiet: hang up.
        for round in 0..2 {
            for _ in 0..25 {
                step(&mut talk, true, &mut said);
            }
            let mut hung_up = false;
            for _ in 0..(LAST_QUIET_MS / 20 + 10) {
                hung_up |= step(&mut talk, false, &mut said);
                if hung_up {
                    break;
                }
            }
            assert_eq!(hung_up, round == 1, "round {round}");
        }
        assert_eq!(said.len(), 560);
    }

    #[test]
    fn relative_actions_resolve_against_the_document() {
        assert_eq!(
            absolute(
                "/webhooks/twilio/transfer?x=1",
                "http://127.0.0.1:8080/webhooks/twilio/voice?call_id=2"
            ),
            "http://127.0.0.1:8080/webhooks/twilio/transfer?x=1"
        );
        assert_eq!(
            absolute("https://a.example/b", "http://c/d"),
            "https://a.example/b"
        );
    }
}
