//! One call's session: the reactor that owns everything about the call and drives the
//! conversation.
//!
//! One task a call, one `tokio::select!` loop over the carrier's socket, the
//! recogniser's results, the brain's answer, the voice's audio and a pacing timer; no
//! locks. The caller's audio is decoded once, then goes to the recording, the voice
//! detector and the recogniser. The agent's audio is converted to the carrier's format
//! and sent in real time (a few frames ahead, so `clear` takes effect at once and the
//! recording stays aligned), each utterance followed by a mark. Turn-taking itself is
//! [`crate::conversation`], pure. A stream that asks for it ([`LIVE_TRANSCRIPT`], only
//! Parley's own phones do) also gets each turn of the transcript once it is final.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::audio::{AudioFormat, Encoding};
use crate::brain::{Brain, BrainEvent};
use crate::conversation::{Action, Conversation, EndReason, Input, Note, Turn};
use crate::exotel_stream::{self, SampleRate};
use crate::g711;
use crate::metrics::Metrics;
use crate::recording::Recorder;
use crate::resample::Resampler;
use crate::stt::{SpeechToText, SttConfig, SttEvent, SttStream};
use crate::tts::TextToSpeech;
use crate::twilio_stream;
use crate::vad::{TurnEvent, Turns, VoiceDetector};
use crate::vendor::VendorError;

/// How far ahead of real time the agent's audio is sent: enough to ride out jitter,
/// little enough that a `clear` silences the agent at once.
const LEAD_MS: u64 = 80;
/// How many times a call's recogniser is reopened after failing mid-call: a vendor
/// that keeps dropping is down, and the caller is told so.
const MAX_STT_REOPENS: u8 = 3;
/// How often the conversation's clock ticks when no audio is going out.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// The carrier's side of the stream: its framing and its audio format.
#[derive(Clone, Debug)]
pub enum Link {
    /// μ-law 8 kHz in 20 ms frames.
    Twilio { stream_sid: String },
    /// 16-bit PCM at the stream's rate, sent in chunks of 100 ms or more.
    Exotel {
        stream_sid: String,
        rate: SampleRate,
    },
}

impl Link {
    pub fn sample_rate(&self) -> u32 {
        match self {
            Link::Twilio { .. } => 8_000,
            Link::Exotel { rate, .. } => rate.hz(),
        }
    }

    pub fn stream_sid(&self) -> &str {
        match self {
            Link::Twilio { stream_sid } | Link::Exotel { stream_sid, .. } => stream_sid,
        }
    }

    fn mark(&self, name: &str) -> String {
        match self {
            Link::Twilio { stream_sid } => twilio_stream::mark(stream_sid, name),
            Link::Exotel { stream_sid, .. } => exotel_stream::mark(stream_sid, name),
        }
    }

    fn clear(&self) -> String {
        match self {
            Link::Twilio { stream_sid } => twilio_stream::clear(stream_sid),
            Link::Exotel { stream_sid, .. } => exotel_stream::clear(stream_sid),
        }
    }

    /// A turn of the live transcript, with the stream's id under the carrier's name
    /// for it: `{"event":"transcript","streamSid":…,"speaker":…,"text":…}`.
    fn transcript(&self, turn: &Turn) -> String {
        let sid_key = match self {
            Link::Twilio { .. } => "streamSid",
            Link::Exotel { .. } => "stream_sid",
        };
        serde_json::json!({
            "event": "transcript",
            sid_key: self.stream_sid(),
            "speaker": turn.speaker,
            "text": turn.text,
        })
        .to_string()
    }
}

/// The stream parameter (name, value) by which a phone of Parley's own (the simulated
/// carrier's softphone or browser page) asks for the live transcript on its stream.
/// Carriers never set it, so they never get frames they do not know.
pub const LIVE_TRANSCRIPT: (&str, &str) = ("parley_transcript", "live");

/// Whether a stream's custom parameters ask for the live transcript.
pub fn wants_live_transcript(params: &std::collections::BTreeMap<String, String>) -> bool {
    params.get(LIVE_TRANSCRIPT.0).map(String::as_str) == Some(LIVE_TRANSCRIPT.1)
}

/// What the carrier said, reduced to what the session acts on.
enum Heard {
    /// Caller audio (decoded into the session's buffer), `at_ms` into the stream.
    Audio {
        at_ms: u64,
    },
    Mark(String),
    Dtmf(char),
    Stop,
    Nothing,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The conversation ended it (goodbye, limits, a vendor that failed for good).
    Conversation(EndReason),
    /// The carrier sent `stop` (the caller hung up).
    Stopped,
    /// The socket went away without `stop`.
    Gone,
    /// A frame that does not parse.
    Malformed(String),
}

impl End {
    /// As the call's history names it.
    pub fn reason(&self) -> &'static str {
        match self {
            End::Conversation(EndReason::CallerHungUp) | End::Stopped => "caller_hung_up",
            End::Conversation(EndReason::AgentEnded) => "agent_ended",
            End::Conversation(EndReason::MaxDuration) => "max_duration",
            End::Conversation(EndReason::MaxTurns) => "max_turns",
            End::Conversation(EndReason::VendorFailed) => "vendor_failed",
            End::Gone => "stream_lost",
            End::Malformed(_) => "malformed_frame",
        }
    }
}

/// What a session needs to hold a conversation.
pub struct Parts {
    pub stt: Arc<dyn SpeechToText>,
    pub brain: Arc<dyn Brain>,
    pub voice: Arc<dyn TextToSpeech>,
    /// Speaks instead once `voice` has failed for good, so the caller hears the
    /// apology rather than silence.
    pub fallback_voice: Option<Arc<dyn TextToSpeech>>,
    pub conversation: crate::conversation::Settings,
    pub language: String,
    /// Caller speech shorter than this does not interrupt the agent.
    pub min_speech_ms: u32,
    /// Silence this long ends the caller's turn.
    pub silence_ms: u32,
    pub record: bool,
}

/// What a session leaves behind, for the call's records.
pub struct Outcome {
    pub end: End,
    pub duration_ms: u64,
    pub turns: u32,
    pub transcript: Vec<Turn>,
    pub recorder: Option<Recorder>,
    /// Facts for the call's history, in the order they happened.
    pub notes: Vec<Note>,
}

/// A piece of speech being synthesised, played in order.
struct Utterance {
    mark: String,
    audio: mpsc::Receiver<Result<Bytes, VendorError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Utterance {
    fn drop(&mut self) {
        // Cancels the vendor request when the speech is cleared.
        self.task.abort();
    }
}

/// Agent audio ready to go, in the carrier's encoding (the recording decodes what
/// was sent, which is what the caller hears).
enum Out {
    Frame(Vec<u8>),
    Mark(String),
}

/// Converts the voice's audio to the call's, and cuts it into the carrier's frames.
struct Voicing {
    format: AudioFormat,
    resampler: Option<Resampler>,
    /// Leftover odd byte of 16-bit audio between chunks.
    odd: Option<u8>,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    /// Call-rate samples waiting to fill a frame.
    pending: Vec<i16>,
    frame_samples: usize,
}

impl Voicing {
    fn new(voice: AudioFormat, link: &Link) -> Result<Voicing, crate::resample::ResampleError> {
        let rate = link.sample_rate();
        let resampler = if voice.sample_rate == rate {
            None
        } else {
            Some(Resampler::new(voice.sample_rate, rate)?)
        };
        // Twilio takes 20 ms frames; Exotel chunks of at least 100 ms.
        let frame_samples = match link {
            Link::Twilio { .. } => 160,
            Link::Exotel { rate, .. } => rate.chunk_bytes() / 2,
        };
        Ok(Voicing {
            format: voice,
            resampler,
            odd: None,
            pcm: Vec::new(),
            resampled: Vec::new(),
            pending: Vec::new(),
            frame_samples,
        })
    }

    /// Adds the voice's bytes; whole frames go to `out`.
    fn push(&mut self, bytes: &[u8], link: &Link, out: &mut VecDeque<Out>) {
        self.pcm.clear();
        match self.format.encoding {
            Encoding::Mulaw => g711::decode_ulaw_into(bytes, &mut self.pcm),
            Encoding::Alaw => g711::decode_alaw_into(bytes, &mut self.pcm),
            Encoding::Linear16 => {
                let mut rest = bytes;
                if let (Some(lo), Some((&hi, tail))) = (self.odd, rest.split_first()) {
                    self.pcm.push(i16::from_le_bytes([lo, hi]));
                    self.odd = None;
                    rest = tail;
                }
                crate::audio::pcm_from_le(rest, &mut self.pcm);
                if rest.len() % 2 == 1 {
                    self.odd = rest.last().copied();
                }
            }
        }
        match &mut self.resampler {
            Some(r) => {
                self.resampled.clear();
                r.process(&self.pcm, &mut self.resampled);
                self.pending.extend_from_slice(&self.resampled);
            }
            None => self.pending.extend_from_slice(&self.pcm),
        }
        self.frames(link, out, false);
    }

    /// The end of an utterance: what is left, padded to a whole frame.
    fn finish(&mut self, link: &Link, out: &mut VecDeque<Out>) {
        self.odd = None;
        if let Some(r) = &mut self.resampler {
            self.resampled.clear();
            r.flush(&mut self.resampled);
            self.pending.extend_from_slice(&self.resampled);
        }
        self.frames(link, out, true);
    }

    fn frames(&mut self, link: &Link, out: &mut VecDeque<Out>, all: bool) {
        let n = self.frame_samples;
        while self.pending.len() >= n || (all && !self.pending.is_empty()) {
            let take = n.min(self.pending.len());
            // The last frame of an utterance is padded with silence.
            let samples = self
                .pending
                .drain(..take)
                .chain(std::iter::repeat_n(0, n - take));
            let wire = match link {
                Link::Twilio { .. } => samples.map(g711::ulaw_encode).collect(),
                Link::Exotel { .. } => samples.flat_map(i16::to_le_bytes).collect(),
            };
            out.push_back(Out::Frame(wire));
        }
    }

    /// Drops audio not yet framed (a clear).
    fn reset(&mut self) {
        self.odd = None;
        self.pending.clear();
    }
}

/// The session: everything one call owns.
struct Session<'a> {
    socket: &'a mut WebSocket,
    link: Link,
    parts: &'a Parts,
    metrics: &'a Metrics,
    started: Instant,
    conversation: Conversation,
    /// The recogniser's audio input and its results; `None` once it is gone.
    stt_audio: Option<mpsc::Sender<Bytes>>,
    stt_events: Option<mpsc::Receiver<SttEvent>>,
    /// The recogniser being opened, and the caller's audio held for it meanwhile.
    stt_opening: Option<oneshot::Receiver<Result<SttStream, VendorError>>>,
    stt_held: Option<mpsc::Receiver<Bytes>>,
    stt_reopens: u8,
    brain: Option<mpsc::Receiver<BrainEvent>>,
    /// The voice speaking now: the agent's, or the fallback once that failed.
    voice: Arc<dyn TextToSpeech>,
    speaking: VecDeque<Utterance>,
    outbound: VecDeque<Out>,
    /// The agent's timeline: audio has been sent up to here (ms into the stream).
    sent_until_ms: u64,
    voicing: Voicing,
    detector: VoiceDetector,
    turns: Turns,
    recorder: Option<Recorder>,
    notes: Vec<Note>,
    /// When the caller's last turn ended, until the answer's first frame is sent.
    turn_ended: Option<Instant>,
    /// When a voice's first audio arrived with nothing ahead of it, until sent.
    voice_arrived: Option<Instant>,
    inbound: Vec<u8>,
    pcm: Vec<i16>,
    /// The agent's frame being sent, decoded for the recording.
    sent_pcm: Vec<i16>,
    le: Vec<u8>,
    /// Each turn is sent on the stream once final (see [`LIVE_TRANSCRIPT`]).
    live_transcript: bool,
    /// Turns of the transcript sent so far.
    transcript_sent: usize,
}

/// Runs one admitted call until it ends; with `live_transcript`, each turn of the
/// transcript is also sent on the stream as it becomes final.
pub async fn run(
    socket: &mut WebSocket,
    link: Link,
    parts: &Parts,
    metrics: &Metrics,
    recorder: Option<Recorder>,
    live_transcript: bool,
) -> Outcome {
    let started = Instant::now();
    let rate = link.sample_rate();
    // A call whose audio cannot be handled ends at once, as a vendor failure.
    let unusable = |recorder| Outcome {
        end: End::Conversation(EndReason::VendorFailed),
        duration_ms: 0,
        turns: 0,
        transcript: Vec::new(),
        recorder,
        notes: Vec::new(),
    };
    let voicing = match Voicing::new(parts.voice.format(), &link) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "the voice's audio cannot be converted for this call");
            return unusable(recorder);
        }
    };
    let detector = match VoiceDetector::new(rate) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "no voice detector for this rate");
            return unusable(recorder);
        }
    };
    let mut session = Session {
        socket,
        link,
        parts,
        metrics,
        started,
        conversation: Conversation::new(parts.conversation.clone()),
        stt_audio: None,
        stt_events: None,
        stt_opening: None,
        stt_held: None,
        stt_reopens: 0,
        brain: None,
        voice: parts.voice.clone(),
        speaking: VecDeque::new(),
        outbound: VecDeque::new(),
        sent_until_ms: 0,
        voicing,
        detector,
        turns: Turns::new(parts.min_speech_ms, parts.silence_ms),
        recorder,
        notes: Vec::new(),
        turn_ended: None,
        voice_arrived: None,
        inbound: Vec::with_capacity(640),
        pcm: Vec::with_capacity(480),
        sent_pcm: Vec::with_capacity(1_200),
        le: Vec::with_capacity(960),
        live_transcript,
        transcript_sent: 0,
    };
    let end = session.converse().await;
    session.finish(end)
}

impl Session<'_> {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn converse(&mut self) -> End {
        // Opened alongside the greeting, not before it.
        self.open_recogniser();
        if let Some(end) = self.act(Input::Started).await {
            return end;
        }
        let mut next_tick = Instant::now() + IDLE_TICK;
        loop {
            let pacing = !self.outbound.is_empty();
            let wake = if pacing {
                next_tick.min(Instant::now() + Duration::from_millis(20))
            } else {
                next_tick
            };
            let want_audio = !self.speaking.is_empty() && self.buffered_ms() < 2 * LEAD_MS;
            tokio::select! {
                biased;
                frame = self.socket.recv() => {
                    let heard = match frame {
                        Some(Ok(WsMessage::Text(text))) => self.read(text.as_str()),
                        Some(Ok(WsMessage::Binary(_))) => Err(End::Malformed("a binary frame on a text protocol".into())),
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Ok(Heard::Nothing),
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => Err(End::Gone),
                    };
                    match heard {
                        Ok(heard) => if let Some(end) = self.heard(heard).await { return end; },
                        Err(end) => return end,
                    }
                }
                event = recv_opt(&mut self.stt_events) => {
                    if let Some(end) = self.recognised(event).await { return end; }
                }
                opened = recv_once(&mut self.stt_opening) => {
                    if let Some(end) = self.opened(opened).await { return end; }
                }
                event = recv_opt(&mut self.brain) => {
                    let input = match event {
                        Some(BrainEvent::Text(text)) => Input::ReplyText(text),
                        Some(BrainEvent::ToolUsed { call, result }) => Input::ToolUsed { call, result },
                        Some(BrainEvent::EndCall) => Input::EndCall,
                        Some(BrainEvent::Done) => { self.brain = None; Input::ReplyDone }
                        Some(BrainEvent::Failed(e)) => {
                            self.vendor_failed(&e);
                            self.brain = None;
                            Input::ReplyFailed
                        }
                        None => { self.brain = None; Input::ReplyFailed }
                    };
                    if let Some(end) = self.act(input).await { return end; }
                }
                chunk = front_audio(&mut self.speaking), if want_audio => {
                    if let Some(end) = self.voiced(chunk).await { return end; }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if let Err(end) = self.pace().await { return end; }
                    if Instant::now() >= next_tick {
                        next_tick = Instant::now() + IDLE_TICK;
                        if let Some(end) = self.act(Input::Tick).await { return end; }
                    }
                }
            }
        }
    }

    /// Opens the recogniser without holding up the call: the caller's audio is held
    /// meanwhile (about a second of it) and handed over once it is open.
    fn open_recogniser(&mut self) {
        let config = SttConfig {
            sample_rate: self.link.sample_rate(),
            language: self.parts.language.clone(),
            endpointing_ms: self.parts.silence_ms,
        };
        let (hold, held) = mpsc::channel(STT_HELD_FRAMES);
        let (done, opening) = oneshot::channel();
        let stt = self.parts.stt.clone();
        tokio::spawn(async move {
            // Once more when trying again can help.
            let mut opened = stt.open(&config).await;
            if opened.as_ref().is_err_and(VendorError::is_retryable) {
                opened = stt.open(&config).await;
            }
            let _ = done.send(opened);
        });
        self.stt_audio = Some(hold);
        self.stt_held = Some(held);
        self.stt_events = None;
        self.stt_opening = Some(opening);
    }

    /// The recogniser is open (its held audio goes to it first), or cannot be.
    async fn opened(
        &mut self,
        opened: Result<Result<SttStream, VendorError>, oneshot::error::RecvError>,
    ) -> Option<End> {
        self.stt_opening = None;
        let mut held = self.stt_held.take();
        match opened {
            Ok(Ok(SttStream { audio, events })) => {
                if let Some(held) = &mut held {
                    while let Ok(chunk) = held.try_recv() {
                        if audio.try_send(chunk).is_err() {
                            self.metrics.vendor_error("stt_backlog");
                        }
                    }
                }
                self.stt_audio = Some(audio);
                self.stt_events = Some(events);
                None
            }
            Ok(Err(e)) => {
                self.vendor_failed(&e);
                self.stt_audio = None;
                self.act(Input::HearingFailed).await
            }
            Err(_) => {
                self.stt_audio = None;
                self.act(Input::HearingFailed).await
            }
        }
    }

    fn vendor_failed(&self, e: &VendorError) {
        self.metrics.vendor_error(e.vendor());
        tracing::warn!(vendor = e.vendor(), error = %e, "vendor failed");
    }

    fn read(&mut self, text: &str) -> Result<Heard, End> {
        self.inbound.clear();
        match &self.link {
            Link::Twilio { .. } => {
                let frame =
                    twilio_stream::parse(text).map_err(|e| End::Malformed(e.to_string()))?;
                Ok(match frame {
                    twilio_stream::Inbound::Media { media, .. } => {
                        if media.track != twilio_stream::Track::Inbound {
                            return Ok(Heard::Nothing);
                        }
                        media
                            .decode_payload_into(&mut self.inbound)
                            .map_err(|e| End::Malformed(e.to_string()))?;
                        self.pcm.clear();
                        g711::decode_ulaw_into(&self.inbound, &mut self.pcm);
                        Heard::Audio {
                            at_ms: media.timestamp,
                        }
                    }
                    twilio_stream::Inbound::Mark { mark, .. } => Heard::Mark(mark.name),
                    twilio_stream::Inbound::Dtmf { dtmf, .. } => {
                        digit(&dtmf.digit).map_or(Heard::Nothing, Heard::Dtmf)
                    }
                    twilio_stream::Inbound::Stop { .. } => Heard::Stop,
                    twilio_stream::Inbound::Start { .. }
                    | twilio_stream::Inbound::Connected { .. } => {
                        return Err(End::Malformed("a second start".into()));
                    }
                })
            }
            Link::Exotel { .. } => {
                let frame =
                    exotel_stream::parse(text).map_err(|e| End::Malformed(e.to_string()))?;
                Ok(match frame {
                    exotel_stream::Inbound::Media { media, .. } => {
                        media
                            .decode_payload_into(&mut self.inbound)
                            .map_err(|e| End::Malformed(e.to_string()))?;
                        self.pcm.clear();
                        crate::audio::pcm_from_le(&self.inbound, &mut self.pcm);
                        Heard::Audio {
                            at_ms: media.timestamp,
                        }
                    }
                    exotel_stream::Inbound::Mark { mark, .. } => Heard::Mark(mark.name),
                    exotel_stream::Inbound::Dtmf { dtmf, .. } => {
                        digit(&dtmf.digit).map_or(Heard::Nothing, Heard::Dtmf)
                    }
                    exotel_stream::Inbound::Stop { .. } => Heard::Stop,
                    exotel_stream::Inbound::Start { .. } | exotel_stream::Inbound::Connected => {
                        return Err(End::Malformed("a second start".into()));
                    }
                })
            }
        }
    }

    async fn heard(&mut self, heard: Heard) -> Option<End> {
        match heard {
            Heard::Audio { at_ms } => {
                self.metrics.frames_in.inc();
                if let Some(r) = &mut self.recorder {
                    r.caller(at_ms, &self.pcm);
                }
                if let Some(stt) = &self.stt_audio {
                    self.le.clear();
                    crate::audio::pcm_to_le(&self.pcm, &mut self.le);
                    // A recogniser that cannot keep up loses audio, not the call.
                    if stt.try_send(Bytes::copy_from_slice(&self.le)).is_err() {
                        self.metrics.vendor_error("stt_backlog");
                    }
                }
                let mut edges = Vec::new();
                let turns = &mut self.turns;
                self.detector.push(&self.pcm, |frame| {
                    edges.extend(turns.feed(&frame));
                });
                for edge in edges {
                    let input = match edge {
                        TurnEvent::SpeechStarted { .. } => Input::SpeechStarted,
                        TurnEvent::SpeechEnded { .. } => Input::SpeechEnded,
                    };
                    if let Some(end) = self.act(input).await {
                        return Some(end);
                    }
                }
                None
            }
            Heard::Mark(mark) => self.act(Input::Played { mark }).await,
            Heard::Dtmf(d) => self.act(Input::Dtmf(d)).await,
            Heard::Stop => {
                self.act(Input::Hangup).await;
                Some(End::Stopped)
            }
            Heard::Nothing => None,
        }
    }

    async fn recognised(&mut self, event: Option<SttEvent>) -> Option<End> {
        let input = match event {
            Some(SttEvent::Final {
                text,
                end_of_speech,
            }) => Input::Transcript {
                text,
                end_of_speech,
            },
            Some(SttEvent::UtteranceEnd) => Input::UtteranceEnd,
            Some(SttEvent::SpeechStarted | SttEvent::Interim { .. }) => return None,
            Some(SttEvent::Failed(e)) => {
                self.vendor_failed(&e);
                // A fresh stream, a few times a call; then give up politely.
                if self.stt_reopens < MAX_STT_REOPENS {
                    self.stt_reopens += 1;
                    self.open_recogniser();
                    return None;
                }
                self.stt_audio = None;
                self.stt_events = None;
                Input::HearingFailed
            }
            None => {
                self.stt_events = None;
                self.stt_audio = None;
                Input::HearingFailed
            }
        };
        self.act(input).await
    }

    /// Carries out what the conversation asks; `Some` when it ended the call.
    async fn act(&mut self, input: Input) -> Option<End> {
        let at = self.now_ms();
        let actions = self.conversation.handle(at, input);
        // Before the actions: a hang-up among them ends the session, and the turn it
        // closed (a goodbye) is still worth showing.
        if self.send_transcript().await.is_err() {
            return Some(End::Gone);
        }
        for action in actions {
            match action {
                Action::Think(context) => {
                    let ended = Instant::now();
                    self.metrics.turns.inc();
                    self.brain = Some(self.parts.brain.answer(context));
                    self.metrics
                        .turn_to_brain
                        .observe(ended.elapsed().as_secs_f64());
                    self.turn_ended = Some(ended);
                }
                Action::Say { mark, text } => self.say(mark, text),
                Action::Clear => {
                    let clear = self.link.clear();
                    self.outbound.clear();
                    self.speaking.clear();
                    self.voicing.reset();
                    self.sent_until_ms = at;
                    if let Some(r) = &mut self.recorder {
                        r.cut_agent(at);
                    }
                    if self.send(clear).await.is_err() {
                        return Some(End::Gone);
                    }
                }
                Action::CancelReply => {
                    self.turn_ended = None;
                    self.voice_arrived = None;
                    self.brain = None;
                    self.speaking.clear();
                    self.outbound.retain(|o| matches!(o, Out::Mark(_)));
                    self.voicing.reset();
                }
                Action::Hangup(reason) => return Some(End::Conversation(reason)),
                Action::Note(note) => {
                    if matches!(note, Note::BargeIn { .. }) {
                        self.metrics.barge_ins.inc();
                    }
                    self.notes.push(note);
                }
            }
        }
        None
    }

    /// Starts synthesising a piece of speech; it plays after those before it.
    fn say(&mut self, mark: String, text: String) {
        let (tx, rx) = mpsc::channel(16);
        let voice = self.voice.clone();
        let task = tokio::spawn(async move {
            match voice.speak(&text).await {
                Ok(mut speech) => {
                    while let Some(chunk) = speech.recv().await {
                        if tx.send(chunk).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        self.speaking.push_back(Utterance {
            mark,
            audio: rx,
            task,
        });
    }

    /// Audio (or the end of it) from the utterance playing now.
    async fn voiced(&mut self, chunk: Option<Result<Bytes, VendorError>>) -> Option<End> {
        match chunk {
            Some(Ok(bytes)) => {
                // Timed only when the line is idle: audio that arrives while earlier
                // speech is still due waits for its turn by design.
                if self.outbound.is_empty()
                    && self.voice_arrived.is_none()
                    && self.sent_until_ms <= self.now_ms()
                {
                    self.voice_arrived = Some(Instant::now());
                }
                self.voicing.push(&bytes, &self.link, &mut self.outbound);
                // Audio ready to go now, not at the next timer tick.
                if let Err(end) = self.pace().await {
                    return Some(end);
                }
                None
            }
            Some(Err(e)) => {
                self.vendor_failed(&e);
                let utterance = self.speaking.pop_front()?;
                self.voicing.reset();
                self.fall_back_voice();
                self.act(Input::VoiceFailed {
                    mark: utterance.mark.clone(),
                })
                .await
            }
            None => {
                let utterance = self.speaking.pop_front()?;
                self.voicing.finish(&self.link, &mut self.outbound);
                self.outbound.push_back(Out::Mark(utterance.mark.clone()));
                None
            }
        }
    }

    /// After the agent's voice failed for good, speaks with the fallback voice (once).
    fn fall_back_voice(&mut self) {
        let Some(fallback) = self.parts.fallback_voice.clone() else {
            return;
        };
        if Arc::ptr_eq(&fallback, &self.voice) {
            return;
        }
        match Voicing::new(fallback.format(), &self.link) {
            Ok(voicing) => {
                tracing::info!(
                    stream_sid = self.link.stream_sid(),
                    "speaking with the fallback voice"
                );
                self.voice = fallback;
                self.voicing = voicing;
            }
            Err(e) => {
                tracing::error!(error = %e, "the fallback voice cannot be converted for this call")
            }
        }
    }

    /// Agent audio queued beyond what has been sent, in ms.
    fn buffered_ms(&self) -> u64 {
        let frame_ms = self.frame_ms();
        self.outbound
            .iter()
            .filter(|o| matches!(o, Out::Frame(_)))
            .count() as u64
            * frame_ms
    }

    fn frame_ms(&self) -> u64 {
        (self.voicing.frame_samples as u64 * 1000) / u64::from(self.link.sample_rate())
    }

    /// Sends the agent's audio that is due, and marks as they come up.
    async fn pace(&mut self) -> Result<(), End> {
        let now = self.now_ms();
        if self.outbound.is_empty() {
            self.sent_until_ms = self.sent_until_ms.max(now);
            return Ok(());
        }
        self.sent_until_ms = self.sent_until_ms.max(now.saturating_sub(LEAD_MS));
        let frame_ms = self.frame_ms();
        while let Some(item) = self.outbound.front() {
            match item {
                Out::Mark(_) => {
                    if let Some(Out::Mark(name)) = self.outbound.pop_front() {
                        let text = self.link.mark(&name);
                        self.send(text).await.map_err(|_| End::Gone)?;
                    }
                }
                Out::Frame(_) => {
                    if self.sent_until_ms >= now + LEAD_MS {
                        break;
                    }
                    if let Some(Out::Frame(wire)) = self.outbound.pop_front() {
                        if let Some(r) = &mut self.recorder {
                            self.sent_pcm.clear();
                            match &self.link {
                                Link::Twilio { .. } => {
                                    g711::decode_ulaw_into(&wire, &mut self.sent_pcm)
                                }
                                Link::Exotel { .. } => {
                                    crate::audio::pcm_from_le(&wire, &mut self.sent_pcm)
                                }
                            }
                            r.agent(self.sent_until_ms, &self.sent_pcm);
                        }
                        let text = match &self.link {
                            Link::Twilio { stream_sid } => twilio_stream::media(stream_sid, &wire),
                            Link::Exotel { stream_sid, .. } => {
                                exotel_stream::media(stream_sid, &wire)
                            }
                        };
                        self.send(text).await.map_err(|_| End::Gone)?;
                        self.metrics.frames_out.inc();
                        if let Some(arrived) = self.voice_arrived.take() {
                            self.metrics
                                .voice_to_wire
                                .observe(arrived.elapsed().as_secs_f64());
                        }
                        if let Some(ended) = self.turn_ended.take() {
                            self.metrics.response.observe(ended.elapsed().as_secs_f64());
                        }
                        self.sent_until_ms += frame_ms;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends the transcript's turns that became final since the last call, when the
    /// stream asked for them. A caller's turn taken back (more words came before the
    /// answer played) is sent again, joined, once final.
    async fn send_transcript(&mut self) -> Result<(), axum::Error> {
        if !self.live_transcript {
            return Ok(());
        }
        let len = self.conversation.transcript().len();
        self.transcript_sent = self.transcript_sent.min(len);
        while self.transcript_sent < len {
            let frame = self
                .conversation
                .transcript()
                .get(self.transcript_sent)
                .filter(|turn| !turn.text.is_empty())
                .map(|turn| self.link.transcript(turn));
            self.transcript_sent += 1;
            if let Some(frame) = frame {
                self.send(frame).await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, text: String) -> Result<(), axum::Error> {
        self.socket.send(WsMessage::Text(text.into())).await
    }

    fn finish(mut self, end: End) -> Outcome {
        if !self.conversation.is_ended() {
            let at = self.now_ms();
            self.conversation.handle(at, Input::Hangup);
        }
        // Dropping the audio sender tells the recogniser no more is coming.
        self.stt_audio = None;
        self.speaking.clear();
        tracing::debug!(stream_sid = self.link.stream_sid(), "session finished");
        Outcome {
            end,
            duration_ms: self.now_ms(),
            turns: self.conversation.turns(),
            transcript: self.conversation.transcript().to_vec(),
            recorder: self.recorder.take(),
            notes: std::mem::take(&mut self.notes),
        }
    }
}

/// How much caller audio is held while the recogniser opens (20 ms frames).
const STT_HELD_FRAMES: usize = 64;

/// The next item of an optional channel; never ready when there is none.
pub(crate) async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The value of an optional one-shot; never ready when there is none.
async fn recv_once<T>(
    rx: &mut Option<oneshot::Receiver<T>>,
) -> Result<T, oneshot::error::RecvError> {
    match rx {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

/// The next chunk of the utterance at the front of the queue.
async fn front_audio(speaking: &mut VecDeque<Utterance>) -> Option<Result<Bytes, VendorError>> {
    match speaking.front_mut() {
        Some(u) => u.audio.recv().await,
        None => std::future::pending().await,
    }
}

fn digit(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::conversation::Speaker;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_a_stream_that_asks_for_it_gets_the_live_transcript() {
        assert!(wants_live_transcript(&params(&[
            ("token", "t"),
            ("parley_transcript", "live"),
        ])));
        for other in [
            params(&[]),
            params(&[("token", "t"), ("call_id", "c")]),
            params(&[("parley_transcript", "")]),
            params(&[("parley_transcript", "Live")]),
            params(&[("parley_transcript", "off")]),
            params(&[("transcript", "live")]),
        ] {
            assert!(!wants_live_transcript(&other), "{other:?}");
        }
    }

    #[test]
    fn a_transcript_frame_names_the_stream_the_speaker_and_the_words() {
        let turn = Turn {
            speaker: Speaker::Caller,
            text: "A check up \"please\"".into(),
            start_ms: 0,
            end_ms: 1,
            interrupted: false,
            tool_calls: Vec::new(),
            dtmf: String::new(),
        };
        let twilio = Link::Twilio {
            stream_sid: "MZ1".into(),
        };
        let frame: serde_json::Value = serde_json::from_str(&twilio.transcript(&turn)).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"event": "transcript", "streamSid": "MZ1", "speaker": "caller", "text": "A check up \"please\""})
        );
        let agent = Turn {
            speaker: Speaker::Agent,
            ..turn
        };
        let exotel = Link::Exotel {
            stream_sid: "s1".into(),
            rate: SampleRate::Hz8000,
        };
        let frame: serde_json::Value = serde_json::from_str(&exotel.transcript(&agent)).unwrap();
        assert_eq!(frame["stream_sid"], "s1");
        assert_eq!(frame["speaker"], "agent");
    }
}
