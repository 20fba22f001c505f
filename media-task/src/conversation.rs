//! Turn-taking: one call's conversation as a pure state machine.
//!
//! The session feeds it what happened (the stream started, the caller started or
//! stopped speaking, the recogniser settled on words, the brain streamed text or used a
//! tool, the carrier played a mark, a key was pressed, time passed) and carries out
//! what it asks (think, say this, clear the carrier's buffer, cancel the reply in
//! flight, hang up). It does no I/O and reads no clock: every input comes with the
//! call's time in milliseconds since the stream started, so every path is tested
//! without sockets.
//!
//! What the caller heard is what counts: the agent's words enter the context only once
//! the carrier echoes the mark sent after them. When the caller talks over the agent
//! for long enough to count (the turn detector's minimum), the rest is cleared and the
//! context keeps what was played, marked as interrupted.

use serde::Serialize;

use crate::llm::{Message, ToolCall};

/// What shapes one call's conversation, from the agent's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The agent's instructions, first in the context.
    pub system_prompt: Option<String>,
    /// Spoken as soon as the stream starts (inbound or outbound greeting, filled in).
    pub greeting: String,
    /// After this many caller turns the agent says goodbye and hangs up.
    pub max_turns: u32,
    /// After this long the agent says goodbye and hangs up.
    pub max_call_ms: u64,
    pub goodbye: String,
    /// Spoken when a vendor fails for good, before a clean end.
    pub apology: String,
    /// Keys pressed are handed to the brain after this long without another (or at `#`).
    pub dtmf_gap_ms: u64,
    /// How long a closing line may take to play before the call is ended anyway.
    pub closing_grace_ms: u64,
}

impl Settings {
    pub fn new(greeting: impl Into<String>) -> Settings {
        Settings {
            system_prompt: None,
            greeting: greeting.into(),
            max_turns: 60,
            max_call_ms: 15 * 60 * 1000,
            goodbye: "Thank you for your time. Goodbye.".into(),
            apology: "I'm sorry, I'm having trouble on my side. Please call back later. Goodbye."
                .into(),
            dtmf_gap_ms: 1_500,
            closing_grace_ms: 15_000,
        }
    }
}

/// What happened, as the session saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The stream was admitted: greet.
    Started,
    /// The turn detector heard the caller start talking (past its minimum length).
    SpeechStarted,
    /// The turn detector heard the caller stop (its silence length).
    SpeechEnded,
    /// The recogniser settled on words. `end_of_speech` is its own end-of-turn call.
    Transcript { text: String, end_of_speech: bool },
    /// The recogniser saw a gap after the last words.
    UtteranceEnd,
    /// A key pressed on the caller's phone.
    Dtmf(char),
    /// More of the brain's answer.
    ReplyText(String),
    /// The brain called a tool and got this result.
    ToolUsed { call: ToolCall, result: String },
    /// The brain's answer is complete.
    ReplyDone,
    /// The brain ended the call (its `end_call` tool): the answer plays out, or the
    /// goodbye if it said nothing, then the agent hangs up.
    EndCall,
    /// The brain failed for good (after its retries).
    ReplyFailed,
    /// A piece of the agent's speech could not be synthesised (after retries).
    VoiceFailed { mark: String },
    /// The recogniser failed for good.
    HearingFailed,
    /// The carrier echoed a mark: everything sent before it has played (or was
    /// cleared; cleared marks are already written off).
    Played { mark: String },
    /// Time passed (the session ticks a few times a second).
    Tick,
    /// The caller hung up or the stream ended.
    Hangup,
}

/// What the session is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Ask the brain for an answer to this context.
    Think(Vec<Message>),
    /// Synthesise `text` and send its audio, then the mark `mark`.
    Say { mark: String, text: String },
    /// Tell the carrier to drop the audio it has not played.
    Clear,
    /// Stop the answer in flight: the brain's request and any synthesis not yet sent.
    CancelReply,
    /// End the call.
    Hangup(EndReason),
    /// Something the call's history should hold.
    Note(Note),
}

/// Why the conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    CallerHungUp,
    /// The brain decided the conversation was over.
    AgentEnded,
    MaxDuration,
    MaxTurns,
    VendorFailed,
}

/// Facts for the call's events, as they happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// The caller talked over the agent, `at_ms` into the stream.
    BargeIn {
        at_ms: u64,
    },
    ToolCalled {
        name: String,
        ok: bool,
    },
}

/// Who spoke a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Agent,
}

/// A tool call as the transcript keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolUse {
    pub name: String,
    pub arguments: String,
    pub result: String,
}

/// One turn of the transcript.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The caller talked over this turn; `text` is what played before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolUse>,
    /// Keys the caller pressed (a caller turn made of keys).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dtmf: String,
}

/// A piece of the agent's speech: sent for synthesis, played when its mark comes back.
#[derive(Clone, Debug)]
struct Segment {
    mark: String,
    text: String,
    played: bool,
}

/// Where the agent is in its turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the caller.
    Listening,
    /// The brain is answering (text may still be coming).
    Replying,
    /// A closing line (goodbye, apology) is playing; then hang up.
    Closing(EndReason),
    Ended,
}

/// The agent's current reply: what was said and which tools were used, in order.
#[derive(Debug, Default)]
struct Reply {
    segments: Vec<Segment>,
    /// Text streamed from the brain not yet cut into a segment.
    pending: String,
    /// Messages the brain's tool use added, in order (kept whole: they happened).
    tool_messages: Vec<Message>,
    tools: Vec<ToolUse>,
    /// Segments before this one are in `tool_messages` already.
    tools_at: usize,
    done: bool,
    start_ms: u64,
    /// A greeting or closing line, not the brain's.
    scripted: bool,
}

impl Reply {
    /// All that played, for the transcript.
    fn heard(&self) -> String {
        join(self.segments.iter().filter(|s| s.played).map(|s| &s.text))
    }
    /// What played since the last tool call, for the context's last message.
    fn heard_since_tools(&self) -> String {
        let since = self.segments.get(self.tools_at..).unwrap_or_default();
        join(since.iter().filter(|s| s.played).map(|s| &s.text))
    }
    fn all_played(&self) -> bool {
        self.pending.is_empty() && self.segments.iter().all(|s| s.played)
    }
}

fn join<'a>(parts: impl Iterator<Item = &'a String>) -> String {
    let mut out = String::new();
    for p in parts {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p.trim());
    }
    out
}

/// One call's conversation.
#[derive(Debug)]
pub struct Conversation {
    settings: Settings,
    phase: Phase,
    context: Vec<Message>,
    transcript: Vec<Turn>,
    reply: Option<Reply>,
    /// The caller is talking (per the turn detector).
    caller_speaking: bool,
    /// The caller stopped talking since words last arrived.
    silence_after_words: bool,
    /// Settled words and keys of the caller's turn in progress.
    caller: CallerInput,
    /// The recogniser called the end of the caller's turn.
    recogniser_done: bool,
    last_digit_ms: u64,
    turns: u32,
    next_mark: u64,
    closing_since: u64,
}

impl Conversation {
    pub fn new(settings: Settings) -> Conversation {
        let context = settings
            .system_prompt
            .iter()
            .map(|p| Message::System { content: p.clone() })
            .collect();
        Conversation {
            settings,
            phase: Phase::Listening,
            context,
            transcript: Vec::new(),
            reply: None,
            caller_speaking: false,
            silence_after_words: false,
            caller: CallerInput::default(),
            recogniser_done: false,
            last_digit_ms: 0,
            turns: 0,
            next_mark: 0,
            closing_since: 0,
        }
    }

    /// The conversation as the brain sees it: only what the caller heard of the agent.
    pub fn context(&self) -> &[Message] {
        &self.context
    }

    pub fn transcript(&self) -> &[Turn] {
        &self.transcript
    }

    /// Caller turns so far.
    pub fn turns(&self) -> u32 {
        self.turns
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Feeds what happened at `at_ms`; the actions to carry out, in order.
    pub fn handle(&mut self, at_ms: u64, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Ended {
            return out;
        }
        match input {
            Input::Started => {
                let greeting = self.settings.greeting.clone();
                self.speak_scripted(at_ms, greeting, &mut out);
            }
            Input::SpeechStarted => {
                self.caller_speaking = true;
                self.silence_after_words = false;
                self.caller.start_ms.get_or_insert(at_ms);
                self.barge_in(at_ms, &mut out);
            }
            Input::SpeechEnded => {
                self.caller_speaking = false;
                self.silence_after_words = true;
                self.maybe_end_caller_turn(at_ms, &mut out);
            }
            Input::Transcript {
                text,
                end_of_speech,
            } => {
                let text = text.trim();
                if !text.is_empty() {
                    if !self.caller.words.is_empty() {
                        self.caller.words.push(' ');
                    }
                    self.caller.words.push_str(text);
                    self.caller.start_ms.get_or_insert(at_ms);
                    // Words while the agent is still answering a previous turn: the
                    // caller is not done; take the answer back (as a barge-in would).
                    self.barge_in(at_ms, &mut out);
                }
                self.recogniser_done |= end_of_speech;
                self.maybe_end_caller_turn(at_ms, &mut out);
            }
            Input::UtteranceEnd => {
                self.recogniser_done = true;
                self.maybe_end_caller_turn(at_ms, &mut out);
            }
            Input::Dtmf(digit) => {
                self.caller.digits.push(digit);
                self.last_digit_ms = at_ms;
                self.caller.start_ms.get_or_insert(at_ms);
                self.barge_in(at_ms, &mut out);
                if digit == '#' {
                    self.end_caller_turn(at_ms, &mut out);
                }
            }
            Input::ReplyText(text) => self.reply_text(&text, &mut out),
            Input::ToolUsed { call, result } => {
                if let Some(reply) = self.reply.as_mut().filter(|r| !r.scripted) {
                    let ok = !result.starts_with("error");
                    out.push(Action::Note(Note::ToolCalled {
                        name: call.name.clone(),
                        ok,
                    }));
                    // Text said before the tool call belongs before it in the context.
                    let before = join(
                        reply.segments[reply.tools_at..]
                            .iter()
                            .filter(|s| s.played)
                            .map(|s| &s.text),
                    );
                    reply.tools_at = reply.segments.len();
                    reply.tools.push(ToolUse {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                        result: result.clone(),
                    });
                    reply.tool_messages.push(Message::Assistant {
                        content: before,
                        tool_calls: vec![call.clone()],
                    });
                    reply.tool_messages.push(Message::Tool {
                        tool_call_id: call.id,
                        content: result,
                    });
                }
            }
            Input::ReplyDone => {
                if let Some(reply) = self.reply.as_mut().filter(|r| !r.scripted) {
                    reply.done = true;
                    let rest = std::mem::take(&mut reply.pending);
                    self.say(rest, &mut out);
                    self.maybe_finish_reply(at_ms, &mut out);
                }
            }
            Input::EndCall => self.end_requested(at_ms, &mut out),
            Input::ReplyFailed | Input::HearingFailed => {
                self.close(at_ms, EndReason::VendorFailed, &mut out);
            }
            Input::VoiceFailed { mark } => {
                // The voice cannot speak: an apology through it would fail too, so end
                // now if it was the closing line, else try the apology once.
                if matches!(self.phase, Phase::Closing(_)) {
                    self.end(at_ms, EndReason::VendorFailed, &mut out);
                } else {
                    if let Some(s) = self.segment_mut(&mark) {
                        s.played = true;
                        s.text.clear();
                    }
                    self.close(at_ms, EndReason::VendorFailed, &mut out);
                }
            }
            Input::Played { mark } => {
                if let Some(s) = self.segment_mut(&mark) {
                    s.played = true;
                }
                self.maybe_finish_reply(at_ms, &mut out);
            }
            Input::Tick => self.tick(at_ms, &mut out),
            Input::Hangup => {
                self.commit_reply(at_ms, true);
                self.commit_caller_words(at_ms);
                self.phase = Phase::Ended;
                out.push(Action::Hangup(EndReason::CallerHungUp));
            }
        }
        out
    }

    fn tick(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        if let Phase::Closing(reason) = self.phase {
            if at_ms.saturating_sub(self.closing_since) >= self.settings.closing_grace_ms {
                self.end(at_ms, reason, out);
            }
            return;
        }
        if at_ms >= self.settings.max_call_ms {
            self.close(at_ms, EndReason::MaxDuration, out);
            return;
        }
        if !self.caller.digits.is_empty()
            && at_ms.saturating_sub(self.last_digit_ms) >= self.settings.dtmf_gap_ms
        {
            self.end_caller_turn(at_ms, out);
        }
    }

    fn segment_mut(&mut self, mark: &str) -> Option<&mut Segment> {
        self.reply
            .as_mut()
            .and_then(|r| r.segments.iter_mut().find(|s| s.mark == mark))
    }

    /// The caller spoke (or pressed a key) while the agent was answering.
    fn barge_in(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_) | Phase::Ended) {
            return;
        }
        let Some(reply) = &self.reply else { return };
        let anything_played = reply.segments.iter().any(|s| s.played);
        if !anything_played && !reply.scripted && reply.tool_messages.is_empty() {
            // Nothing of the answer reached the caller yet: the caller was not done.
            // Take the answer and the turn back; the words join the turn in progress.
            if !reply.segments.is_empty() {
                out.push(Action::Clear);
            }
            out.push(Action::CancelReply);
            self.reply = None;
            self.phase = Phase::Listening;
            self.reopen_caller_turn();
            return;
        }
        if reply.all_played() && (reply.done || reply.scripted) {
            return;
        }
        out.push(Action::Clear);
        out.push(Action::CancelReply);
        out.push(Action::Note(Note::BargeIn { at_ms }));
        self.commit_reply(at_ms, true);
        self.phase = Phase::Listening;
    }

    /// Puts the last caller turn back in progress, its words first.
    fn reopen_caller_turn(&mut self) {
        let Some(pos) = self
            .transcript
            .iter()
            .rposition(|t| t.speaker == Speaker::Caller)
        else {
            return;
        };
        if pos + 1 != self.transcript.len() {
            return;
        }
        let turn = self.transcript.remove(pos);
        if matches!(self.context.last(), Some(Message::User { .. })) {
            self.context.pop();
        }
        self.turns = self.turns.saturating_sub(1);
        self.caller.reopen(turn);
        // The caller had stopped once already: more words end the turn again at once.
        self.silence_after_words = !self.caller_speaking;
    }

    fn maybe_end_caller_turn(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        if self.caller.words.is_empty() || self.caller_speaking {
            return;
        }
        if self.silence_after_words || self.recogniser_done {
            self.end_caller_turn(at_ms, out);
        }
    }

    /// Records what the caller said (or keyed) as a turn.
    fn commit_caller_words(&mut self, at_ms: u64) -> bool {
        let Some((message, turn)) = self.caller.take_turn(at_ms) else {
            return false;
        };
        self.context.push(message);
        self.transcript.push(turn);
        self.recogniser_done = false;
        self.silence_after_words = false;
        self.turns += 1;
        true
    }

    fn end_caller_turn(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_) | Phase::Ended) {
            return;
        }
        if !self.commit_caller_words(at_ms) {
            return;
        }
        // A greeting still playing when the caller answers it: what played stays.
        if self.reply.is_some() {
            self.commit_reply(at_ms, true);
        }
        if self.turns >= self.settings.max_turns {
            self.close(at_ms, EndReason::MaxTurns, out);
            return;
        }
        self.phase = Phase::Replying;
        self.reply = Some(Reply {
            start_ms: at_ms,
            ..Reply::default()
        });
        out.push(Action::Think(self.context.clone()));
    }

    fn reply_text(&mut self, text: &str, out: &mut Vec<Action>) {
        let Some(reply) = self.reply.as_mut().filter(|r| !r.scripted) else {
            return;
        };
        reply.pending.push_str(text);
        let mut ready = Vec::new();
        while let Some(cut) = speakable_prefix(&reply.pending) {
            let rest = reply.pending.split_off(cut);
            ready.push(std::mem::replace(&mut reply.pending, rest));
        }
        for piece in ready {
            self.say(piece, out);
        }
    }

    /// Sends a piece of the current reply to be spoken.
    fn say(&mut self, text: String, out: &mut Vec<Action>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        self.next_mark += 1;
        let mark = format!("m{}", self.next_mark);
        if let Some(reply) = self.reply.as_mut() {
            reply.segments.push(Segment {
                mark: mark.clone(),
                text: text.to_owned(),
                played: false,
            });
        }
        out.push(Action::Say {
            mark,
            text: text.to_owned(),
        });
    }

    fn speak_scripted(&mut self, at_ms: u64, text: String, out: &mut Vec<Action>) {
        self.reply = Some(Reply {
            start_ms: at_ms,
            scripted: true,
            done: true,
            ..Reply::default()
        });
        self.say(text, out);
    }

    fn maybe_finish_reply(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        let Some(reply) = &self.reply else { return };
        if !(reply.done && reply.all_played()) {
            return;
        }
        if self.phase == Phase::Closing(EndReason::AgentEnded)
            && !reply.scripted
            && reply.segments.is_empty()
        {
            // The brain ended the call without a word: the goodbye, then hang up.
            self.commit_reply(at_ms, false);
            self.say_closing_line(at_ms, EndReason::AgentEnded, out);
            return;
        }
        self.commit_reply(at_ms, false);
        match self.phase {
            Phase::Closing(reason) => self.end(at_ms, reason, out),
            Phase::Replying => self.phase = Phase::Listening,
            Phase::Listening | Phase::Ended => {}
        }
    }

    /// Moves the reply into the context and transcript: all of it, or (interrupted)
    /// only what played.
    fn commit_reply(&mut self, at_ms: u64, interrupted: bool) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let heard = reply.heard();
        let last = reply.heard_since_tools();
        let interrupted = interrupted && !reply.all_played();
        self.context.extend(reply.tool_messages);
        if !last.is_empty() {
            self.context.push(Message::Assistant {
                content: last,
                tool_calls: Vec::new(),
            });
        }
        if heard.is_empty() && reply.tools.is_empty() {
            return;
        }
        self.transcript.push(Turn {
            speaker: Speaker::Agent,
            text: heard,
            start_ms: reply.start_ms,
            end_ms: at_ms,
            interrupted,
            tool_calls: reply.tools,
            dtmf: String::new(),
        });
    }

    /// The brain ended the call: its answer in flight becomes the closing line (the
    /// caller can no longer talk over it), or the goodbye is said when there is none.
    fn end_requested(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_) | Phase::Ended) {
            return;
        }
        if self.reply.as_ref().is_some_and(|r| !r.scripted) {
            self.phase = Phase::Closing(EndReason::AgentEnded);
            self.closing_since = at_ms;
            self.maybe_finish_reply(at_ms, out);
        } else {
            self.close(at_ms, EndReason::AgentEnded, out);
        }
    }

    /// Says a closing line (goodbye or apology), then hangs up once it has played.
    fn close(&mut self, at_ms: u64, reason: EndReason, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Closing(_) | Phase::Ended) {
            return;
        }
        if self.reply.is_some() {
            out.push(Action::Clear);
            out.push(Action::CancelReply);
            self.commit_reply(at_ms, true);
        }
        self.commit_caller_words(at_ms);
        self.phase = Phase::Closing(reason);
        self.closing_since = at_ms;
        self.say_closing_line(at_ms, reason, out);
    }

    /// Speaks the goodbye (or, when a vendor failed, the apology), then hangs up once
    /// it has played, or at once when it is empty.
    fn say_closing_line(&mut self, at_ms: u64, reason: EndReason, out: &mut Vec<Action>) {
        let line = match reason {
            EndReason::VendorFailed => self.settings.apology.clone(),
            _ => self.settings.goodbye.clone(),
        };
        self.speak_scripted(at_ms, line, out);
        if self.reply.as_ref().is_some_and(|r| r.segments.is_empty()) {
            self.end(at_ms, reason, out);
        }
    }

    fn end(&mut self, at_ms: u64, reason: EndReason, out: &mut Vec<Action>) {
        if self.phase == Phase::Ended {
            return;
        }
        self.commit_reply(at_ms, true);
        self.phase = Phase::Ended;
        out.push(Action::Hangup(reason));
    }
}

/// What the caller has said and keyed since their last turn: made into a turn, or a
/// turn taken back to be joined by more words. Shared with ConversationRelay's calls.
#[derive(Debug, Default)]
pub(crate) struct CallerInput {
    pub words: String,
    pub digits: String,
    pub start_ms: Option<u64>,
}

impl CallerInput {
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.digits.is_empty()
    }

    /// The caller's turn, for the brain and the transcript; `None` when nothing was
    /// said or keyed.
    pub fn take_turn(&mut self, at_ms: u64) -> Option<(Message, Turn)> {
        if self.is_empty() {
            return None;
        }
        let words = std::mem::take(&mut self.words);
        let digits = std::mem::take(&mut self.digits);
        let content = match (words.is_empty(), digits.is_empty()) {
            (false, true) => words.clone(),
            (true, false) => format!("(the caller pressed the keys {digits})"),
            _ => format!("{words} (the caller pressed the keys {digits})"),
        };
        let turn = Turn {
            speaker: Speaker::Caller,
            text: words,
            start_ms: self.start_ms.take().unwrap_or(at_ms),
            end_ms: at_ms,
            interrupted: false,
            tool_calls: Vec::new(),
            dtmf: digits,
        };
        Some((Message::User { content }, turn))
    }

    /// Puts a turn back in progress, before what came since: its words first, its
    /// keys still keys.
    pub fn reopen(&mut self, turn: Turn) {
        let mut words = turn.text;
        self.digits.insert_str(0, &turn.dtmf);
        if !self.words.is_empty() && !words.is_empty() {
            words.push(' ');
        }
        words.push_str(&self.words);
        self.words = words;
        self.start_ms = Some(turn.start_ms);
    }
}

/// Where the first speakable piece of streamed text ends, if one is complete: a
/// sentence, or (once long enough to be worth it) a clause. Streaming by sentence is
/// what keeps the first audio close to the first tokens.
pub fn speakable_prefix(text: &str) -> Option<usize> {
    const CLAUSE_AFTER: usize = 40;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let &(next_i, next) = chars.peek()?;
        if !next.is_whitespace() {
            continue;
        }
        let sentence = matches!(c, '.' | '!' | '?' | '…');
        let clause = matches!(c, ',' | ';' | ':' | '—') && i >= CLAUSE_AFTER;
        if (sentence && i >= 2) || clause {
            return Some(next_i + next.len_utf8());
        }
    }
    None
}
