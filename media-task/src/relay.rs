//! One Twilio ConversationRelay call: Twilio hears and speaks, Parley exchanges text.
//!
//! The same brain answers as on an audio call, so a tenant can run Parley with no
//! speech vendor at all. One task a call, one `tokio::select!` over the socket, the
//! brain's answer and the next deadline; no locks. What to do is decided by
//! `Dialogue`, pure (every input carries the call's time in ms), so every path is
//! tested without sockets; the reactor only carries it out.
//!
//! - `setup` admits the call (see [`crate::server`]); the greeting goes out at once as
//!   one token (the TwiML sets no `welcomeGreeting`, so the lead's fields are filled).
//! - A `prompt` with `last: true` ends the caller's turn (partial prompts before it are
//!   joined); the brain's text streams out as tokens as it comes (`last: false`), then
//!   an empty `last: true` token ends the talk cycle.
//! - `interrupt` cancels the answer in flight; the context and transcript keep only
//!   `utteranceUntilInterrupt`, what the caller heard.
//! - Keys reach the brain as on audio calls: after a pause of `dtmf_gap_ms`, or at `#`.
//! - Limits and brain failures end with a closing line (goodbye, apology), then `end`.
//!   Twilio acts on `end` at once, cutting off speech still playing, and says nothing
//!   when playback finishes, so `end` waits for the closing line's estimated playout
//!   ([`CHARS_PER_SECOND`] after what is queued before it, capped by the closing grace);
//!   a caller talking over it (`interrupt`) ends the wait.
//! - Twilio closes the socket when the call ends: the records are kept (the transcript,
//!   the call's notes and `MediaStreamEnded`) however the call ended. `error` messages
//!   are logged and counted; Twilio closes the session itself when one is fatal.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use parley_shared::domain::call::CallEvent;
use parley_shared::streamtoken::StreamClaims;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::brain::{Brain, BrainEvent};
use crate::call::{Callee, Calls, admitted, conversation_settings};
use crate::conversation::{CallerInput, EndReason, Note, Settings, Speaker, ToolUse, Turn};
use crate::llm::{Message, ToolCall};
use crate::metrics::Metrics;
use crate::relay_stream::{self, Inbound, Setup};
use crate::session::{End, Outcome, recv_opt};

/// How fast ConversationRelay's voices speak, in characters a second (about 160 words
/// a minute), for the closing line's playout estimate. On the slow side: waiting a
/// little long keeps a silent line a moment; too short cuts the goodbye.
pub const CHARS_PER_SECOND: u64 = 15;
/// How long Twilio takes to start speaking a token once the line is quiet.
pub const SYNTHESIS_MS: u64 = 500;

/// How long `text` takes to speak, in ms.
pub fn speaking_ms(text: &str) -> u64 {
    text.trim().chars().count() as u64 * 1000 / CHARS_PER_SECOND
}

impl Calls {
    /// Holds the admitted relay call on `socket` until it ends, then writes its records.
    /// `setup` is the session's first message, whose stream token has been checked.
    pub async fn hold_relay(
        &self,
        socket: &mut WebSocket,
        claims: &StreamClaims,
        setup: &Setup,
        metrics: &Metrics,
    ) -> End {
        let Some((ctx, id)) = admitted(claims) else {
            return End::Conversation(EndReason::VendorFailed);
        };
        let (tenant_id, call_id) = (claims.tenant_id.as_str(), claims.call_id.as_str());
        let Callee { settings, greeting } = match self.callee(&ctx, &id).await {
            Ok(callee) => callee,
            Err(e) => {
                tracing::warn!(tenant_id, call_id, error = %e, "cannot hold the call");
                return End::Conversation(EndReason::VendorFailed);
            }
        };
        // Twilio hears and speaks: only the brain is needed. Without one the caller
        // hears the apology rather than silence.
        let (brain, after) = match self.brain(tenant_id, &settings).await {
            Ok((brain, after)) => (Some(brain), after),
            Err(e) => {
                tracing::error!(tenant_id, call_id, error = %e, "no brain for the relay call");
                (None, settings.after_call())
            }
        };
        self.note(
            &ctx,
            &id,
            CallEvent::MediaStreamStarted {
                stream_id: setup.session_id.clone(),
            },
        )
        .await;
        let dialogue = Dialogue::new(conversation_settings(&settings, greeting));
        let mut call = RelayCall {
            socket,
            brain,
            metrics,
            started: Instant::now(),
            dialogue,
            answer: None,
            notes: Vec::new(),
            turn_ended: None,
        };
        let end = call.converse().await;
        let outcome = call.finish(end);
        self.keep(&ctx, &id, outcome, after).await
    }
}

/// The reactor: everything one relay call owns.
struct RelayCall<'a> {
    socket: &'a mut WebSocket,
    brain: Option<Arc<dyn Brain>>,
    metrics: &'a Metrics,
    started: Instant,
    dialogue: Dialogue,
    /// The brain's answer in flight; dropping it cancels the answer.
    answer: Option<mpsc::Receiver<BrainEvent>>,
    notes: Vec<Note>,
    /// When the caller's last turn ended, until the answer's first token is sent.
    turn_ended: Option<Instant>,
}

impl RelayCall<'_> {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn converse(&mut self) -> End {
        let first = if self.brain.is_some() {
            Event::Started
        } else {
            Event::ReplyFailed
        };
        if let Some(end) = self.act(first, None).await {
            return end;
        }
        loop {
            let wake = self
                .dialogue
                .wake_at()
                .map(|ms| self.started + Duration::from_millis(ms));
            tokio::select! {
                biased;
                frame = self.socket.recv() => {
                    let arrived = Instant::now();
                    let event = match frame {
                        Some(Ok(WsMessage::Text(text))) => match self.read(text.as_str()) {
                            Ok(Some(event)) => event,
                            Ok(None) => continue,
                            Err(end) => return end,
                        },
                        Some(Ok(WsMessage::Binary(_))) => {
                            return End::Malformed("a binary frame on a text protocol".into());
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                        // Twilio closes the session when the call ends.
                        Some(Ok(WsMessage::Close(_))) | None => return End::Stopped,
                        Some(Err(_)) => return End::Gone,
                    };
                    if let Some(end) = self.act(event, Some(arrived)).await { return end; }
                }
                event = recv_opt(&mut self.answer) => {
                    let event = match event {
                        Some(BrainEvent::Text(text)) => Event::ReplyText(text),
                        Some(BrainEvent::ToolUsed { call, result }) => Event::ToolUsed { call, result },
                        Some(BrainEvent::EndCall) => Event::EndCall,
                        Some(BrainEvent::Done) => { self.answer = None; Event::ReplyDone }
                        Some(BrainEvent::Failed(e)) => {
                            self.metrics.vendor_error(e.vendor());
                            tracing::warn!(vendor = e.vendor(), error = %e, "the brain failed");
                            self.answer = None;
                            Event::ReplyFailed
                        }
                        None => { self.answer = None; Event::ReplyFailed }
                    };
                    if let Some(end) = self.act(event, None).await { return end; }
                }
                () = sleep_until_opt(wake) => {
                    if let Some(end) = self.act(Event::Tick, None).await { return end; }
                }
            }
        }
    }

    /// What a message from Twilio means for the dialogue; `Err` ends the call.
    fn read(&self, text: &str) -> Result<Option<Event>, End> {
        let message = relay_stream::parse(text).map_err(|e| End::Malformed(e.to_string()))?;
        Ok(Some(match message {
            Inbound::Setup(_) => return Err(End::Malformed("a second setup".into())),
            Inbound::Prompt(prompt) => Event::Prompt {
                text: prompt.voice_prompt,
                last: prompt.last,
            },
            Inbound::Dtmf { digit } => Event::Dtmf(digit),
            Inbound::Interrupt(interrupt) => Event::Interrupt {
                heard: interrupt.utterance_until_interrupt,
            },
            Inbound::Error { description } => {
                self.metrics.vendor_error("conversation_relay");
                // Twilio's text may quote a whole message back: enough to tell which.
                let description: String = description.chars().take(300).collect();
                tracing::warn!(%description, "ConversationRelay reported an error");
                return Ok(None);
            }
            Inbound::Info => return Ok(None),
        }))
    }

    /// Carries out what the dialogue decides; `Some` when the call is over.
    async fn act(&mut self, event: Event, arrived: Option<Instant>) -> Option<End> {
        let at = self.now_ms();
        for step in self.dialogue.handle(at, event) {
            match step {
                Step::Think(context) => {
                    let Some(brain) = &self.brain else { continue };
                    let ended = arrived.unwrap_or_else(Instant::now);
                    self.metrics.turns.inc();
                    self.answer = Some(brain.answer(context));
                    self.metrics
                        .turn_to_brain
                        .observe(ended.elapsed().as_secs_f64());
                    self.turn_ended = Some(ended);
                }
                Step::Say { token, last } => {
                    if !token.is_empty()
                        && let Some(ended) = self.turn_ended.take()
                    {
                        self.metrics.response.observe(ended.elapsed().as_secs_f64());
                    }
                    if self.send(relay_stream::text(&token, last)).await.is_err() {
                        return Some(End::Gone);
                    }
                }
                Step::CancelReply => {
                    self.answer = None;
                    self.turn_ended = None;
                }
                Step::End(reason) => {
                    let end = End::Conversation(reason);
                    let handoff = serde_json::json!({ "reason": end.reason() }).to_string();
                    // Over either way: Twilio may already be gone.
                    let _ = self.send(relay_stream::end(Some(&handoff))).await;
                    return Some(end);
                }
                Step::Note(note) => {
                    if matches!(note, Note::BargeIn { .. }) {
                        self.metrics.barge_ins.inc();
                    }
                    self.notes.push(note);
                }
            }
        }
        None
    }

    async fn send(&mut self, text: String) -> Result<(), axum::Error> {
        self.socket.send(WsMessage::Text(text.into())).await
    }

    fn finish(mut self, end: End) -> Outcome {
        let at = self.now_ms();
        if !self.dialogue.is_ended() {
            self.dialogue.handle(at, Event::Hangup);
        }
        Outcome {
            end,
            duration_ms: at,
            turns: self.dialogue.turns,
            transcript: std::mem::take(&mut self.dialogue.transcript),
            recorder: None,
            notes: std::mem::take(&mut self.notes),
        }
    }
}

/// Sleeps until `at`; forever when there is nothing to wake for.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What happened on the call, as the reactor saw it.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// The call was admitted: greet.
    Started,
    /// The caller's words; `last` ends the turn.
    Prompt {
        text: String,
        last: bool,
    },
    Dtmf(char),
    /// The caller talked over the agent, having heard `heard`.
    Interrupt {
        heard: String,
    },
    ReplyText(String),
    ToolUsed {
        call: ToolCall,
        result: String,
    },
    ReplyDone,
    /// The brain ended the call: `end` once its answer has been spoken.
    EndCall,
    /// The brain failed for good (or there is none).
    ReplyFailed,
    /// A deadline the dialogue asked for ([`Dialogue::wake_at`]) passed.
    Tick,
    /// Twilio closed the session, or the call ended otherwise.
    Hangup,
}

/// What the reactor is asked to do.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Think(Vec<Message>),
    /// Send a `text` token.
    Say {
        token: String,
        last: bool,
    },
    /// Drop the brain's answer in flight.
    CancelReply,
    /// Send `end` and end the call.
    End(EndReason),
    Note(Note),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Listening,
    /// The brain is answering.
    Replying,
    /// A closing line is playing; `end` goes at `until_ms`.
    Closing {
        reason: EndReason,
        until_ms: u64,
    },
    Ended,
}

/// What the agent said in its current turn. It stays open after the brain is done,
/// until the caller's next turn, so an interrupt can still cut it to what was heard.
#[derive(Debug, Default)]
struct Reply {
    /// Every token sent, as sent.
    said: String,
    /// The tools used, each with where in `said` it came.
    tools: Vec<(usize, ToolCall, String)>,
    start_ms: u64,
    /// The talk cycle is complete (`last: true` sent).
    done: bool,
    /// A greeting or closing line, not the brain's.
    scripted: bool,
}

impl Reply {
    fn in_flight(&self) -> bool {
        !self.done && !self.scripted
    }
}

/// One relay call's conversation, pure: no I/O, no clock.
#[derive(Debug)]
struct Dialogue {
    settings: Settings,
    phase: Phase,
    context: Vec<Message>,
    transcript: Vec<Turn>,
    reply: Option<Reply>,
    /// The caller's words (partial prompts joined) and keys in the turn in progress.
    caller: CallerInput,
    last_digit_ms: u64,
    turns: u32,
    /// A talk cycle was started (`last: false` sent) and not ended.
    cycle_open: bool,
    /// When Twilio will have spoken everything sent, by estimate.
    speaking_until_ms: u64,
    /// The brain ended the call during its answer in flight.
    end_after_reply: bool,
}

impl Dialogue {
    fn new(settings: Settings) -> Dialogue {
        let context = settings
            .system_prompt
            .iter()
            .map(|p| Message::System { content: p.clone() })
            .collect();
        Dialogue {
            settings,
            phase: Phase::Listening,
            context,
            transcript: Vec::new(),
            reply: None,
            caller: CallerInput::default(),
            last_digit_ms: 0,
            turns: 0,
            cycle_open: false,
            speaking_until_ms: 0,
            end_after_reply: false,
        }
    }

    fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    fn closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. } | Phase::Ended)
    }

    /// When the dialogue next needs a [`Event::Tick`], in ms into the call.
    fn wake_at(&self) -> Option<u64> {
        match self.phase {
            Phase::Closing { until_ms, .. } => Some(until_ms),
            Phase::Ended => None,
            Phase::Listening | Phase::Replying => {
                let limit = self.settings.max_call_ms;
                if self.caller.digits.is_empty() {
                    Some(limit)
                } else {
                    Some(limit.min(self.last_digit_ms + self.settings.dtmf_gap_ms))
                }
            }
        }
    }

    /// Feeds what happened at `at` ms; the steps to carry out, in order.
    fn handle(&mut self, at: u64, event: Event) -> Vec<Step> {
        let mut out = Vec::new();
        if self.phase == Phase::Ended {
            return out;
        }
        match event {
            Event::Started => {
                let greeting = self.settings.greeting.clone();
                self.speak_scripted(at, &greeting, &mut out);
            }
            Event::Prompt { text, last } => {
                if self.closing() {
                    return out;
                }
                join_prompt(&mut self.caller.words, &text);
                if !self.caller.words.is_empty() {
                    self.caller.start_ms.get_or_insert(at);
                }
                if last {
                    self.end_caller_turn(at, &mut out);
                }
            }
            Event::Dtmf(digit) => {
                if self.closing() {
                    return out;
                }
                self.caller.digits.push(digit);
                self.last_digit_ms = at;
                self.caller.start_ms.get_or_insert(at);
                if digit == '#' {
                    self.end_caller_turn(at, &mut out);
                }
            }
            Event::Interrupt { heard } => self.interrupted(at, &heard, &mut out),
            Event::ReplyText(text) => {
                if text.is_empty() {
                    return out;
                }
                let Some(reply) = self.reply.as_mut().filter(|r| r.in_flight()) else {
                    return out;
                };
                reply.said.push_str(&text);
                self.say(at, text, false, &mut out);
            }
            Event::ToolUsed { call, result } => {
                if let Some(reply) = self.reply.as_mut().filter(|r| r.in_flight()) {
                    out.push(Step::Note(Note::ToolCalled {
                        name: call.name.clone(),
                        ok: !result.starts_with("error"),
                    }));
                    reply.tools.push((reply.said.len(), call, result));
                }
            }
            Event::ReplyDone => {
                if let Some(reply) = self.reply.as_mut().filter(|r| r.in_flight()) {
                    reply.done = true;
                    let silent = reply.said.trim().is_empty();
                    self.say(at, String::new(), true, &mut out);
                    self.phase = Phase::Listening;
                    if self.end_after_reply {
                        self.end_after_answer(at, silent, &mut out);
                    }
                }
            }
            Event::EndCall => {
                if self.reply.as_ref().is_some_and(Reply::in_flight) {
                    self.end_after_reply = true;
                } else {
                    self.close(at, EndReason::AgentEnded, &mut out);
                }
            }
            Event::ReplyFailed => self.close(at, EndReason::VendorFailed, &mut out),
            Event::Tick => self.tick(at, &mut out),
            Event::Hangup => {
                let in_flight = self.reply.as_ref().is_some_and(Reply::in_flight);
                self.commit_reply(at, None, in_flight);
                self.commit_caller_words(at);
                self.phase = Phase::Ended;
            }
        }
        out
    }

    fn tick(&mut self, at: u64, out: &mut Vec<Step>) {
        match self.phase {
            Phase::Closing { reason, until_ms } => {
                if at >= until_ms {
                    self.end(at, reason, out);
                }
            }
            Phase::Ended => {}
            Phase::Listening | Phase::Replying => {
                if at >= self.settings.max_call_ms {
                    self.close(at, EndReason::MaxDuration, out);
                } else if !self.caller.digits.is_empty()
                    && at.saturating_sub(self.last_digit_ms) >= self.settings.dtmf_gap_ms
                {
                    self.end_caller_turn(at, out);
                }
            }
        }
    }

    /// Sends a token; keeps the playout estimate and whether a talk cycle is open.
    fn say(&mut self, at: u64, token: String, last: bool, out: &mut Vec<Step>) {
        if !token.trim().is_empty() {
            let starts = self.speaking_until_ms.max(at + SYNTHESIS_MS);
            self.speaking_until_ms = starts + speaking_ms(&token);
        }
        self.cycle_open = !last;
        out.push(Step::Say { token, last });
    }

    /// Says a scripted line whole, as its own talk cycle (or the end of the open one).
    fn speak_scripted(&mut self, at: u64, line: &str, out: &mut Vec<Step>) -> bool {
        let line = line.trim();
        if line.is_empty() {
            return false;
        }
        // Tokens are joined as sent: keep the line apart from words already spoken.
        let token = if self.cycle_open {
            format!(" {line}")
        } else {
            line.to_owned()
        };
        self.reply = Some(Reply {
            said: token.clone(),
            start_ms: at,
            done: true,
            scripted: true,
            ..Reply::default()
        });
        self.say(at, token, true, out);
        true
    }

    /// The caller talked over the agent, having heard `heard` of it.
    fn interrupted(&mut self, at: u64, heard: &str, out: &mut Vec<Step>) {
        // Twilio stopped speaking, and drops the rest of the talk cycle.
        self.speaking_until_ms = at;
        self.cycle_open = false;
        let Some(reply) = &self.reply else { return };
        if reply.in_flight() {
            out.push(Step::CancelReply);
        }
        out.push(Step::Note(Note::BargeIn { at_ms: at }));
        self.commit_reply(at, Some(heard), true);
        match self.phase {
            // Nothing is left to wait for: the closing line was cut short.
            Phase::Closing { reason, .. } => self.end(at, reason, out),
            // The brain had ended the call: it ends, cut short.
            Phase::Replying if self.end_after_reply => self.end(at, EndReason::AgentEnded, out),
            Phase::Replying => self.phase = Phase::Listening,
            Phase::Listening | Phase::Ended => {}
        }
    }

    fn end_caller_turn(&mut self, at: u64, out: &mut Vec<Step>) {
        if self.closing() || (self.caller.words.is_empty() && self.caller.digits.is_empty()) {
            return;
        }
        match &self.reply {
            Some(reply) if reply.in_flight() => {
                out.push(Step::CancelReply);
                if reply.said.is_empty() && reply.tools.is_empty() {
                    // Nothing of the answer was sent: the caller was not done. Take the
                    // answer and the turn back; these words join that turn.
                    self.reply = None;
                    self.reopen_caller_turn();
                } else {
                    // The caller spoke on over an answer still coming: end its talk
                    // cycle; what was sent stays, cut short.
                    self.say(at, String::new(), true, out);
                    out.push(Step::Note(Note::BargeIn { at_ms: at }));
                    self.commit_reply(at, None, true);
                }
            }
            Some(_) => self.commit_reply(at, None, false),
            None => {}
        }
        // The caller's turn means the agent's earlier speech is over (or interrupted).
        self.speaking_until_ms = at;
        self.commit_caller_words(at);
        if self.end_after_reply {
            // The brain had ended the call; the caller's last words are kept.
            self.end(at, EndReason::AgentEnded, out);
            return;
        }
        if self.turns >= self.settings.max_turns {
            self.close(at, EndReason::MaxTurns, out);
            return;
        }
        self.phase = Phase::Replying;
        self.reply = Some(Reply {
            start_ms: at,
            ..Reply::default()
        });
        out.push(Step::Think(self.context.clone()));
    }

    /// Puts the last caller turn back in progress, its words first.
    fn reopen_caller_turn(&mut self) {
        if self
            .transcript
            .last()
            .is_none_or(|t| t.speaker != Speaker::Caller)
        {
            return;
        }
        let Some(turn) = self.transcript.pop() else {
            return;
        };
        if matches!(self.context.last(), Some(Message::User { .. })) {
            self.context.pop();
        }
        self.turns = self.turns.saturating_sub(1);
        self.caller.reopen(turn);
    }

    /// Records what the caller said (or keyed) as a turn, as audio calls do.
    fn commit_caller_words(&mut self, at: u64) -> bool {
        let Some((message, turn)) = self.caller.take_turn(at) else {
            return false;
        };
        self.context.push(message);
        self.transcript.push(turn);
        self.turns += 1;
        true
    }

    /// Moves the reply into the context and transcript: all that was sent, or (when
    /// Twilio says what was heard) only that. Tool calls are kept whole: they happened.
    fn commit_reply(&mut self, at: u64, heard: Option<&str>, interrupted: bool) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let said = reply.said.as_str();
        let cut = heard.map_or(said.len(), |h| heard_len(said, h));
        let mut from = 0;
        let mut uses = Vec::with_capacity(reply.tools.len());
        for (offset, call, result) in reply.tools {
            let before = clip(said, from, offset.min(cut)).trim().to_owned();
            from = offset;
            uses.push(ToolUse {
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                result: result.clone(),
            });
            let id = call.id.clone();
            self.context.push(Message::Assistant {
                content: before,
                tool_calls: vec![call],
            });
            self.context.push(Message::Tool {
                tool_call_id: id,
                content: result,
            });
        }
        let last = clip(said, from, cut).trim();
        if !last.is_empty() {
            self.context.push(Message::Assistant {
                content: last.to_owned(),
                tool_calls: Vec::new(),
            });
        }
        let text = clip(said, 0, cut).trim();
        if text.is_empty() && uses.is_empty() {
            return;
        }
        self.transcript.push(Turn {
            speaker: Speaker::Agent,
            text: text.to_owned(),
            start_ms: reply.start_ms,
            end_ms: at,
            interrupted,
            tool_calls: uses,
            dtmf: String::new(),
        });
    }

    /// The brain's answer ending the call is complete: `end` once it has been spoken,
    /// or after the goodbye if it said nothing.
    fn end_after_answer(&mut self, at: u64, silent: bool, out: &mut Vec<Step>) {
        if silent {
            self.close(at, EndReason::AgentEnded, out);
            return;
        }
        let until_ms = self
            .speaking_until_ms
            .min(at + self.settings.closing_grace_ms);
        self.phase = Phase::Closing {
            reason: EndReason::AgentEnded,
            until_ms,
        };
    }

    /// Says the closing line (goodbye or apology); `end` follows once it has played.
    fn close(&mut self, at: u64, reason: EndReason, out: &mut Vec<Step>) {
        if self.closing() {
            return;
        }
        if let Some(reply) = &self.reply {
            let in_flight = reply.in_flight();
            if in_flight {
                out.push(Step::CancelReply);
            }
            self.commit_reply(at, None, in_flight);
        }
        self.commit_caller_words(at);
        let line = match reason {
            EndReason::VendorFailed => self.settings.apology.clone(),
            _ => self.settings.goodbye.clone(),
        };
        if !self.speak_scripted(at, &line, out) {
            self.end(at, reason, out);
            return;
        }
        let until_ms = self
            .speaking_until_ms
            .min(at + self.settings.closing_grace_ms);
        self.phase = Phase::Closing { reason, until_ms };
    }

    fn end(&mut self, at: u64, reason: EndReason, out: &mut Vec<Step>) {
        self.commit_reply(at, None, false);
        self.phase = Phase::Ended;
        out.push(Step::End(reason));
    }
}

/// Adds a prompt to the caller's words: a piece that repeats the words so far (a
/// running transcript) replaces them; any other piece continues them.
fn join_prompt(words: &mut String, piece: &str) {
    let piece = piece.trim();
    if piece.is_empty() {
        return;
    }
    if piece.starts_with(words.as_str()) {
        words.clear();
    }
    if !words.is_empty() {
        words.push(' ');
    }
    words.push_str(piece);
}

/// How much of `said` (in bytes) the caller heard, given Twilio's account of it.
fn heard_len(said: &str, heard: &str) -> usize {
    let heard = heard.trim();
    let spoken = said.trim_start();
    let lead = said.len() - spoken.len();
    if spoken.starts_with(heard) {
        return lead + heard.len();
    }
    // Twilio normalised the text it spoke: keep as many characters as it says it spoke.
    spoken
        .char_indices()
        .nth(heard.chars().count())
        .map_or(said.len(), |(i, _)| lead + i)
}

/// `s[from..to]`, empty when the range is empty or not on character boundaries.
fn clip(s: &str, from: usize, to: usize) -> &str {
    if from >= to {
        return "";
    }
    s.get(from..to).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETING: &str = "Hello, this is Parley.";

    fn settings() -> Settings {
        let mut settings = Settings::new(GREETING);
        settings.system_prompt = Some("Be brief.".into());
        settings
    }

    fn said(steps: &[Step]) -> Vec<(&str, bool)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Say { token, last } => Some((token.as_str(), *last)),
                _ => None,
            })
            .collect()
    }

    fn thought(steps: &[Step]) -> Option<&Vec<Message>> {
        steps.iter().find_map(|s| match s {
            Step::Think(context) => Some(context),
            _ => None,
        })
    }

    fn prompt(text: &str) -> Event {
        Event::Prompt {
            text: text.into(),
            last: true,
        }
    }

    fn user(content: &str) -> Message {
        Message::User {
            content: content.into(),
        }
    }

    fn assistant(content: &str) -> Message {
        Message::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// A dialogue that greeted and was asked `question`, at 1 s.
    fn asked(question: &str) -> Dialogue {
        let mut d = Dialogue::new(settings());
        d.handle(0, Event::Started);
        d.handle(1_000, prompt(question));
        d
    }

    #[test]
    fn the_greeting_goes_out_at_once_as_one_talk_cycle() {
        let mut d = Dialogue::new(settings());
        let steps = d.handle(0, Event::Started);
        assert_eq!(said(&steps), [(GREETING, true)]);
    }

    #[test]
    fn a_prompt_is_a_turn_and_the_answer_streams_as_tokens() {
        let mut d = Dialogue::new(settings());
        d.handle(0, Event::Started);
        let steps = d.handle(1_000, prompt(" Book a table "));
        let context = thought(&steps).unwrap();
        assert_eq!(
            context,
            &vec![
                Message::System {
                    content: "Be brief.".into()
                },
                assistant(GREETING),
                user("Book a table"),
            ]
        );
        assert_eq!(
            said(&d.handle(1_100, Event::ReplyText("Sure, ".into()))),
            [("Sure, ", false)]
        );
        assert_eq!(
            said(&d.handle(1_150, Event::ReplyText("for how many?".into()))),
            [("for how many?", false)]
        );
        assert_eq!(said(&d.handle(1_200, Event::ReplyDone)), [("", true)]);
        // The next turn carries the whole answer.
        let steps = d.handle(5_000, prompt("Four"));
        let context = thought(&steps).unwrap();
        assert_eq!(context[3], assistant("Sure, for how many?"));
        assert_eq!(context[4], user("Four"));
        d.handle(6_000, Event::Hangup);
        let speakers: Vec<Speaker> = d.transcript.iter().map(|t| t.speaker).collect();
        assert_eq!(
            speakers,
            [
                Speaker::Agent,
                Speaker::Caller,
                Speaker::Agent,
                Speaker::Caller
            ]
        );
        assert_eq!(d.transcript[2].text, "Sure, for how many?");
        assert!(!d.transcript[2].interrupted);
        assert_eq!(d.turns, 2);
    }

    #[test]
    fn partial_prompts_are_joined_whether_pieces_or_running_transcripts() {
        let mut d = Dialogue::new(settings());
        let partial = |t: &str| Event::Prompt {
            text: t.into(),
            last: false,
        };
        assert!(d.handle(0, partial("For four")).is_empty());
        let steps = d.handle(100, prompt("people at eight"));
        assert_eq!(
            thought(&steps).unwrap().last(),
            Some(&user("For four people at eight"))
        );
        let mut d = Dialogue::new(settings());
        d.handle(0, partial("For"));
        d.handle(50, partial("For four"));
        let steps = d.handle(100, prompt("For four people"));
        assert_eq!(
            thought(&steps).unwrap().last(),
            Some(&user("For four people"))
        );
    }

    #[test]
    fn an_interrupt_cancels_the_answer_and_keeps_only_what_was_heard() {
        let mut d = asked("Tell me about the menu");
        d.handle(1_100, Event::ReplyText("We serve pasta, ".into()));
        d.handle(
            1_200,
            Event::ReplyText("pizza and salads every day.".into()),
        );
        let steps = d.handle(
            2_000,
            Event::Interrupt {
                heard: "We serve pasta, pizza".into(),
            },
        );
        assert_eq!(
            steps,
            [
                Step::CancelReply,
                Step::Note(Note::BargeIn { at_ms: 2_000 })
            ]
        );
        // Whatever the cancelled brain still sends goes nowhere.
        assert!(d.handle(2_010, Event::ReplyText(" more".into())).is_empty());
        assert!(d.handle(2_020, Event::ReplyDone).is_empty());
        let steps = d.handle(3_000, prompt("Stop please"));
        let context = thought(&steps).unwrap();
        let n = context.len();
        assert_eq!(context[n - 2], assistant("We serve pasta, pizza"));
        assert_eq!(context[n - 1], user("Stop please"));
        let agent = &d.transcript[2];
        assert_eq!(
            (agent.text.as_str(), agent.interrupted),
            ("We serve pasta, pizza", true)
        );
    }

    #[test]
    fn an_interrupt_after_the_brain_is_done_still_cuts_the_answer() {
        let mut d = asked("Hours?");
        d.handle(
            1_100,
            Event::ReplyText("We open at noon and close late.".into()),
        );
        d.handle(1_200, Event::ReplyDone);
        let steps = d.handle(
            2_000,
            Event::Interrupt {
                heard: "We open at noon".into(),
            },
        );
        assert_eq!(steps, [Step::Note(Note::BargeIn { at_ms: 2_000 })]);
        let steps = d.handle(3_000, prompt("Thanks"));
        let context = thought(&steps).unwrap();
        assert_eq!(context[context.len() - 2], assistant("We open at noon"));
    }

    #[test]
    fn a_normalised_utterance_keeps_as_many_characters() {
        assert_eq!(heard_len(" Twelve dollars.", "12 dollars"), 11);
        assert_eq!(heard_len("Hi there", "Hi"), 2);
        assert_eq!(heard_len("Hi", "Hi there, longer"), 2);
        assert_eq!(heard_len("Café au lait", "Cafe"), "Café".len());
    }

    #[test]
    fn tools_stay_in_the_context_and_an_interrupt_cuts_the_text_around_them() {
        let mut d = asked("Is there a table?");
        d.handle(1_100, Event::ReplyText("Let me check. ".into()));
        let call = ToolCall {
            id: "call_1".into(),
            name: "availability".into(),
            arguments: "{}".into(),
        };
        let steps = d.handle(
            1_200,
            Event::ToolUsed {
                call: call.clone(),
                result: "free at eight".into(),
            },
        );
        assert_eq!(
            steps,
            [Step::Note(Note::ToolCalled {
                name: "availability".into(),
                ok: true
            })]
        );
        d.handle(1_300, Event::ReplyText("Yes, at eight.".into()));
        d.handle(1_400, Event::ReplyDone);
        d.handle(
            2_000,
            Event::Interrupt {
                heard: "Let me check. Yes".into(),
            },
        );
        let steps = d.handle(3_000, prompt("Great"));
        let context = thought(&steps).unwrap();
        let n = context.len();
        assert_eq!(
            context[n - 4],
            Message::Assistant {
                content: "Let me check.".into(),
                tool_calls: vec![call]
            }
        );
        assert_eq!(
            context[n - 3],
            Message::Tool {
                tool_call_id: "call_1".into(),
                content: "free at eight".into()
            }
        );
        assert_eq!(context[n - 2], assistant("Yes"));
        assert_eq!(d.transcript[2].tool_calls[0].name, "availability");
        assert_eq!(d.transcript[2].text, "Let me check. Yes");
    }

    #[test]
    fn more_words_before_any_answer_join_the_turn_and_it_is_asked_again() {
        let mut d = asked("I would like");
        let steps = d.handle(1_500, prompt("a table for two"));
        assert_eq!(steps[0], Step::CancelReply);
        let context = thought(&steps).unwrap();
        assert_eq!(context.last(), Some(&user("I would like a table for two")));
        assert_eq!(d.turns, 1);
        assert!(!steps.iter().any(|s| matches!(s, Step::Note(_))));
    }

    #[test]
    fn words_over_an_answer_still_coming_close_its_talk_cycle() {
        let mut d = asked("Hours?");
        d.handle(1_100, Event::ReplyText("We open".into()));
        let steps = d.handle(1_500, prompt("Actually, parking?"));
        assert_eq!(steps[0], Step::CancelReply);
        assert_eq!(said(&steps), [("", true)]);
        assert!(steps.contains(&Step::Note(Note::BargeIn { at_ms: 1_500 })));
        let context = thought(&steps).unwrap();
        let n = context.len();
        assert_eq!(context[n - 2], assistant("We open"));
        assert_eq!(context[n - 1], user("Actually, parking?"));
    }

    #[test]
    fn keys_reach_the_brain_at_hash_or_after_a_pause() {
        let mut d = Dialogue::new(settings());
        d.handle(0, Event::Started);
        assert!(d.handle(1_000, Event::Dtmf('4')).is_empty());
        assert_eq!(d.wake_at(), Some(2_500));
        assert!(d.handle(1_200, Event::Dtmf('2')).is_empty());
        let steps = d.handle(1_400, Event::Dtmf('#'));
        assert_eq!(
            thought(&steps).unwrap().last(),
            Some(&user("(the caller pressed the keys 42#)"))
        );
        d.handle(1_500, Event::ReplyDone);
        d.handle(2_000, Event::Dtmf('7'));
        assert!(d.handle(3_000, Event::Tick).is_empty(), "too soon");
        let steps = d.handle(3_500, Event::Tick);
        assert_eq!(
            thought(&steps).unwrap().last(),
            Some(&user("(the caller pressed the keys 7)"))
        );
        assert_eq!(d.transcript[1].dtmf, "42#");
        assert_eq!(d.transcript[1].text, "");
    }

    #[test]
    fn max_turns_says_goodbye_and_ends_once_it_has_played() {
        let mut s = settings();
        s.max_turns = 1;
        let mut d = Dialogue::new(s);
        d.handle(0, Event::Started);
        let steps = d.handle(1_000, prompt("Hi"));
        assert!(thought(&steps).is_none(), "no answer past the limit");
        let goodbye = "Thank you for your time. Goodbye.";
        assert_eq!(said(&steps), [(goodbye, true)]);
        let until = 1_000 + SYNTHESIS_MS + speaking_ms(goodbye);
        assert_eq!(d.wake_at(), Some(until));
        // Prompts while closing are not answered.
        assert!(d.handle(1_200, prompt("Wait")).is_empty());
        assert!(d.handle(until - 1, Event::Tick).is_empty());
        assert_eq!(
            d.handle(until, Event::Tick),
            [Step::End(EndReason::MaxTurns)]
        );
        assert!(d.is_ended());
        assert_eq!(d.transcript.last().unwrap().text, goodbye);
        assert!(d.handle(until + 5, Event::Tick).is_empty());
    }

    #[test]
    fn the_goodbye_waits_for_speech_queued_before_it_within_the_grace() {
        let mut s = settings();
        s.max_call_ms = 10_000;
        let mut d = Dialogue::new(s);
        d.handle(0, Event::Started);
        d.handle(1_000, prompt("Tell me everything"));
        let long = "word ".repeat(20);
        d.handle(9_000, Event::ReplyText(long.clone()));
        d.handle(9_100, Event::ReplyDone);
        assert_eq!(d.wake_at(), Some(10_000));
        let steps = d.handle(10_000, Event::Tick);
        assert_eq!(said(&steps), [("Thank you for your time. Goodbye.", true)]);
        let queued = 9_000 + SYNTHESIS_MS + speaking_ms(&long);
        let until = queued + speaking_ms("Thank you for your time. Goodbye.");
        assert_eq!(d.wake_at(), Some(until));
        assert_eq!(
            d.handle(until, Event::Tick),
            [Step::End(EndReason::MaxDuration)]
        );
        // An hour of queued speech is not waited for: the closing grace caps it.
        let mut d = Dialogue::new(settings());
        d.handle(0, Event::Started);
        d.handle(1_000, prompt("Go on"));
        d.handle(1_100, Event::ReplyText("blah ".repeat(20_000)));
        d.handle(1_200, Event::ReplyFailed);
        assert_eq!(d.wake_at(), Some(1_200 + d.settings.closing_grace_ms));
    }

    #[test]
    fn max_duration_cuts_an_answer_in_flight_and_says_goodbye_after_it() {
        let mut s = settings();
        s.max_call_ms = 5_000;
        let mut d = Dialogue::new(s);
        d.handle(0, Event::Started);
        d.handle(1_000, prompt("Tell me a story"));
        d.handle(4_900, Event::ReplyText("Once upon".into()));
        let steps = d.handle(5_000, Event::Tick);
        assert_eq!(steps[0], Step::CancelReply);
        // The goodbye closes the open talk cycle, apart from the words before it.
        assert_eq!(said(&steps), [(" Thank you for your time. Goodbye.", true)]);
        let agent = &d.transcript[2];
        assert_eq!(
            (agent.text.as_str(), agent.interrupted),
            ("Once upon", true)
        );
    }

    #[test]
    fn a_brain_failure_apologises_then_ends_and_an_interrupt_ends_it_at_once() {
        let mut d = asked("Hello?");
        let steps = d.handle(1_500, Event::ReplyFailed);
        let apology = d.settings.apology.clone();
        assert_eq!(said(&steps), [(apology.as_str(), true)]);
        let steps = d.handle(
            2_000,
            Event::Interrupt {
                heard: "I'm sorry".into(),
            },
        );
        assert_eq!(
            steps,
            [
                Step::Note(Note::BargeIn { at_ms: 2_000 }),
                Step::End(EndReason::VendorFailed)
            ]
        );
        let last = d.transcript.last().unwrap();
        assert_eq!((last.text.as_str(), last.interrupted), ("I'm sorry", true));
    }

    #[test]
    fn without_a_brain_the_call_apologises_and_ends() {
        let mut d = Dialogue::new(settings());
        let steps = d.handle(0, Event::ReplyFailed);
        assert_eq!(said(&steps).len(), 1);
        assert!(d.handle(1, prompt("Hello?")).is_empty());
        let until = d.wake_at().unwrap();
        assert_eq!(
            d.handle(until, Event::Tick),
            [Step::End(EndReason::VendorFailed)]
        );
    }

    #[test]
    fn a_hang_up_keeps_what_was_said_and_keyed() {
        let mut d = asked("Hours?");
        d.handle(1_100, Event::ReplyText("We open".into()));
        d.handle(1_200, Event::Dtmf('9'));
        assert!(d.handle(1_300, Event::Hangup).is_empty());
        assert!(d.is_ended());
        let n = d.transcript.len();
        assert_eq!(
            (
                d.transcript[n - 2].text.as_str(),
                d.transcript[n - 2].interrupted
            ),
            ("We open", true)
        );
        assert_eq!(d.transcript[n - 1].dtmf, "9");
        assert_eq!(d.wake_at(), None);
    }
}
