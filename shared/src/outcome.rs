//! What a call came to, once the conversation is over: its [`CallOutcome`], a short
//! summary for the people reading the call's history, the details learnt (by slot
//! name, as short text) and the status the lead moves to. Pure: the facts the media
//! task gathered during the call in ([`CallFacts`]), the classification out
//! ([`classify`], [`next_status`]). No language model, no I/O, no clock.
//!
//! # Precedence
//!
//! The first rule that holds decides the outcome:
//!
//! 1. A machine answered (answering-machine detection) → [`CallOutcome::Voicemail`]. The
//!    carrier's verdict beats anything the brain did: a greeting can be misheard as
//!    answers.
//! 2. A booking that went through → [`CallOutcome::AppointmentSet`]. A booking that
//!    failed counts for nothing here (the summary still says it was tried), and neither
//!    does a booking word at the end without a booking behind it.
//! 3. A transfer asked for (whatever its reason: the caller asked for a person, an
//!    emergency, escalation, the turn limit, not understood...), or an escalation word
//!    at the end → [`CallOutcome::Escalated`].
//! 4. A callback asked for, or a callback word at the end → [`CallOutcome::CallbackRequested`].
//! 5. The end word alone: a voicemail word → [`CallOutcome::Voicemail`] (a model that
//!    heard a machine detection missed), a wrong-number word →
//!    [`CallOutcome::WrongNumber`], a not-interested or do-not-call word (the built-in
//!    `do_not_call` intent ends with `do_not_call`) → [`CallOutcome::NotInterested`].
//! 6. The lead was qualified, or a qualified word at the end → [`CallOutcome::Qualified`].
//! 7. A feedback word at the end → [`CallOutcome::FeedbackGiven`].
//! 8. Anything else → [`CallOutcome::Incomplete`], the end reason only shaping the summary
//!    (`caller_hung_up`, `agent_ended`, `max_turns`, `max_duration`, `vendor_failed`,
//!    `silence`, `stream_lost`; any other is a plain end).
//!
//! The end word is the last `end` with an outcome (a flow's `end: { outcome: … }` or a
//! model's `end_call` argument); when several acts of a kind happened, the last counts.
//!
//! # End words
//!
//! Matched whatever their case and separators: `Not Interested`, `not-interested`,
//! `notInterested` and `not_interested` are one word.
//!
//! | words | mean |
//! | --- | --- |
//! | `booked`, `appointment_booked`, `appointment_set`, `appointment_scheduled`, `meeting_booked`, `meeting_set`, `meeting_scheduled`, `viewing_booked`, `viewing_set`, `viewing_scheduled`, `visit_booked`, `demo_booked`, `call_booked`, `scheduled` | a booking: counts only with a booking that went through; names it (a viewing, a meeting...) in the summary |
//! | `escalated`, `escalation`, `escalate`, `transfer`, `transferred`, `transfer_to_human`, `transferred_to_human`, `human`, `asked_for_person`, `emergency`, `handoff`, `hand_off`, `handed_off` | escalated |
//! | `callback`, `call_back`, `callback_requested`, `call_back_requested`, `requested_callback`, `callback_scheduled`, `call_later`, `call_back_later`, `busy`, `manager_callback`, `manager_call_back` | callback requested |
//! | `voicemail`, `voice_mail`, `answering_machine`, `machine`, `machine_answered`, `left_voicemail`, `left_message` | voicemail |
//! | `wrong_number`, `wrong_person`, `wrong_contact`, `invalid_number` | wrong number |
//! | `not_interested`, `no_interest`, `uninterested`, `declined`, `refused`; `do_not_call`, `dnc`, `stop_calling`, `opt_out`, `opted_out`, `unsubscribe`, `unsubscribed` | not interested (the second group: asked not to be called again) |
//! | `qualified`, `lead_qualified`, `nurture`, `nurtured`, `nurturing` | qualified |
//! | `positive_feedback`, `negative_feedback`, `feedback`, `feedback_given`, `feedback_received` | feedback given (after a qualification, which counts first) |
//! | `flow_error`, `error`, `failed`, `technical_error` | incomplete, summarised as a problem on Parley's side |
//!
//! Feedback is a finished conversation of its own kind ([`CallOutcome::FeedbackGiven`]:
//! a guest-relations call is not a sale, so neither "qualified" nor "incomplete" says
//! what it came to). Any other word is ignored, except that an incomplete call's
//! summary repeats it when it is plain words (letters only, no digits).
//!
//! # Summary
//!
//! Plain sentences, in this order: the qualification ("Qualified warm (score 0.62)."),
//! the main answers (the slots `buy_or_rent`, `need`, `reason`, `area`, `budget`,
//! `timeline`, `decision_maker`, `rating`, `liked`, `issue`, the caller's own words in
//! quotes), what was done (booked, transferred, a callback, not interested...), and for
//! an incomplete call how it ended. A voicemail or a wrong number is said alone: what
//! was heard did not come from the lead. At most [`MAX_SUMMARY_CHARS`] characters, cut
//! at a word (the answers are cut first, so what the call came to always stays). Runs
//! of seven digits or more in anything the caller or a model said (digits or digit
//! words, with spaces, dashes, dots or brackets between) read `[number]`: a summary
//! holds no phone number.
//!
//! # Details
//!
//! Every slot collected, by its name, as short text ([`detail_text`]): money with its
//! range, currency and period (`400,000 to 500,000 USD per month`; rupees grouped in
//! lakhs, `50,00,000 INR`), dates `2026-11-24`, times `14:00`, datetimes
//! `2026-11-24 14:00`, `yes`/`no`, numbers without a trailing `.0` (two decimals at
//! most), timelines (`within 3 months (urgent)`, `right away`, `no set timeline`),
//! text trimmed and at most [`MAX_DETAIL_CHARS`] characters, choices with spaces for
//! underscores. A value that says nothing (empty text, a number that is not finite)
//! is left out, and a voicemail or a wrong number captures no details.
//!
//! # Lead status
//!
//! [`next_status`] moves a lead forward along NEW → CONTACTED → QUALIFIED →
//! MEETING_SCHEDULED and never back; not interested and wrong number close it as lost;
//! a closed lead (won or lost) and a voicemail move nothing.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::domain::call::CallOutcome;
use crate::domain::lead::{LeadStatus, Temperature};
use crate::flow::{Channel, MeetingKind, SlotValue, TransferMode};

/// The longest summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 500;
/// The longest text detail, in characters.
pub const MAX_DETAIL_CHARS: usize = 200;
/// The caller's words quoted in a summary: enough to recognise, not a transcript.
const MAX_QUOTE_CHARS: usize = 60;
/// A transfer reason or an end word repeated in a summary.
const MAX_REASON_CHARS: usize = 80;
/// Digits in a run that reads as a phone number: the shortest local numbers have seven.
const PHONE_DIGITS: usize = 7;
/// Characters of an end word or end reason looked at: every known one is far shorter.
const MAX_WORD_CHARS: usize = 100;
/// A detail sentence with less room than this is left out rather than cut to nothing.
const MIN_ANSWERS_ROOM: usize = 20;

/// What the media task saw of a call, gathered while it ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallFacts {
    /// Answering-machine detection said a machine (or a fax) answered.
    pub machine: bool,
    /// The caller's turns.
    pub turns: u32,
    /// Why the stream ended, as the media task names it (`caller_hung_up`,
    /// `agent_ended`, `max_turns`, `max_duration`, `vendor_failed`, `silence`...).
    pub end_reason: String,
    /// What the brain did, in order.
    pub acts: Vec<BrainAct>,
    /// The slots collected by a flow, or a model's extraction, by name.
    pub slots: BTreeMap<String, SlotValue>,
}

/// One thing the brain (a flow or a model) did during the call.
#[derive(Clone, Debug, PartialEq)]
pub enum BrainAct {
    /// The lead was qualified.
    Qualified {
        temperature: Temperature,
        score: f64,
    },
    /// A booking at `at` (the tenant's local time); `ok` is whether it went through.
    Booked {
        at: NaiveDateTime,
        kind: MeetingKind,
        ok: bool,
    },
    /// A hand-over to a person was asked for.
    TransferAsked { mode: TransferMode, reason: String },
    /// A call back at `at`, or as soon as possible when `None`.
    CallbackAsked { at: Option<NaiveDateTime> },
    /// A confirmation was queued for the lead.
    ConfirmationQueued { channel: Channel },
    /// The brain ended the call, with its outcome word when it gave one.
    Ended { outcome: Option<String> },
}

impl CallFacts {
    /// Whether the lead was qualified during the call (for [`next_status`]).
    pub fn qualified(&self) -> bool {
        self.qualification().is_some()
    }

    fn qualification(&self) -> Option<(Temperature, f64)> {
        self.acts.iter().rev().find_map(|a| match a {
            BrainAct::Qualified { temperature, score } => Some((*temperature, *score)),
            _ => None,
        })
    }

    /// The last booking that went through, or else (`false`) the last that failed.
    fn booking(&self) -> Option<(NaiveDateTime, MeetingKind, bool)> {
        let last = |want: bool| {
            self.acts.iter().rev().find_map(|a| match a {
                BrainAct::Booked { at, kind, ok } if *ok == want => Some((*at, *kind, *ok)),
                _ => None,
            })
        };
        last(true).or_else(|| last(false))
    }

    fn transfer(&self) -> Option<(TransferMode, &str)> {
        self.acts.iter().rev().find_map(|a| match a {
            BrainAct::TransferAsked { mode, reason } => Some((*mode, reason.as_str())),
            _ => None,
        })
    }

    fn callback(&self) -> Option<Option<NaiveDateTime>> {
        self.acts.iter().rev().find_map(|a| match a {
            BrainAct::CallbackAsked { at } => Some(*at),
            _ => None,
        })
    }

    fn confirmation(&self) -> Option<Channel> {
        self.acts.iter().rev().find_map(|a| match a {
            BrainAct::ConfirmationQueued { channel } => Some(*channel),
            _ => None,
        })
    }

    /// The last end word given (blank ones are no word).
    fn end_word(&self) -> Option<&str> {
        self.acts.iter().rev().find_map(|a| match a {
            BrainAct::Ended { outcome: Some(w) } if !w.trim().is_empty() => Some(w.as_str()),
            _ => None,
        })
    }
}

/// What a call came to.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    pub outcome: CallOutcome,
    /// One to a few plain sentences, at most [`MAX_SUMMARY_CHARS`] characters, with no
    /// phone number.
    pub summary: String,
    /// The details learnt, by slot name, as short text.
    pub details: BTreeMap<String, String>,
}

/// The outcome, summary and details of a call (see the module's docs for the rules).
pub fn classify(facts: &CallFacts) -> Classified {
    let word = facts.end_word().map(Word::read);
    let outcome = outcome_of(facts, word.as_ref());
    let details = match outcome {
        // Whatever was heard did not come from the lead.
        CallOutcome::Voicemail | CallOutcome::WrongNumber => BTreeMap::new(),
        _ => facts
            .slots
            .iter()
            .filter_map(|(name, v)| detail_text(v).map(|text| (name.clone(), text)))
            .collect(),
    };
    let summary = summary(facts, outcome, word.as_ref());
    Classified {
        outcome,
        summary,
        details,
    }
}

fn outcome_of(facts: &CallFacts, word: Option<&Word>) -> CallOutcome {
    if facts.machine {
        return CallOutcome::Voicemail;
    }
    if facts.booking().is_some_and(|(_, _, ok)| ok) {
        return CallOutcome::AppointmentSet;
    }
    if facts.transfer().is_some() || matches!(word, Some(Word::Escalated)) {
        return CallOutcome::Escalated;
    }
    if facts.callback().is_some() || matches!(word, Some(Word::Callback { .. })) {
        return CallOutcome::CallbackRequested;
    }
    match word {
        Some(Word::Voicemail) => return CallOutcome::Voicemail,
        Some(Word::WrongNumber) => return CallOutcome::WrongNumber,
        Some(Word::NotInterested { .. }) => return CallOutcome::NotInterested,
        _ => {}
    }
    if facts.qualified() || matches!(word, Some(Word::Qualified { .. })) {
        return CallOutcome::Qualified;
    }
    if matches!(word, Some(Word::Feedback(_))) {
        return CallOutcome::FeedbackGiven;
    }
    CallOutcome::Incomplete
}

/// The status a lead moves to after a call that came to `outcome` (`qualified`: the
/// lead was qualified during it, see [`CallFacts::qualified`]); `None` when it stays.
///
/// Forward only along NEW → CONTACTED → QUALIFIED → MEETING_SCHEDULED: an appointment
/// → MEETING_SCHEDULED; qualified → QUALIFIED; a callback, an escalation or an
/// incomplete call → CONTACTED, or QUALIFIED when the lead was qualified on the way.
/// Not interested and wrong number → CLOSED_LOST from any open status. A voicemail
/// moves nothing, and nothing moves a closed lead (CLOSED_WON, CLOSED_LOST).
pub fn next_status(
    current: LeadStatus,
    outcome: CallOutcome,
    qualified: bool,
) -> Option<LeadStatus> {
    let here = stage(current)?;
    let target = match outcome {
        CallOutcome::Voicemail => return None,
        CallOutcome::NotInterested | CallOutcome::WrongNumber => {
            return Some(LeadStatus::ClosedLost);
        }
        CallOutcome::AppointmentSet => LeadStatus::MeetingScheduled,
        CallOutcome::Qualified => LeadStatus::Qualified,
        CallOutcome::CallbackRequested
        | CallOutcome::Escalated
        | CallOutcome::FeedbackGiven
        | CallOutcome::Incomplete => {
            if qualified {
                LeadStatus::Qualified
            } else {
                LeadStatus::Contacted
            }
        }
    };
    let there = stage(target)?;
    (there > here).then_some(target)
}

/// How far along the open statuses a lead is; `None` for a closed lead.
fn stage(status: LeadStatus) -> Option<u8> {
    match status {
        LeadStatus::New => Some(0),
        LeadStatus::Contacted => Some(1),
        LeadStatus::Qualified => Some(2),
        LeadStatus::MeetingScheduled => Some(3),
        LeadStatus::ClosedWon | LeadStatus::ClosedLost => None,
    }
}

// ------------------------------------------------------------------------ end words

/// What an end word says.
#[derive(Clone, Debug, PartialEq)]
enum Word {
    /// A booking, and what it is called ("viewing").
    Booked(&'static str),
    Escalated,
    Callback {
        manager: bool,
    },
    Voicemail,
    WrongNumber,
    NotInterested {
        do_not_call: bool,
    },
    Qualified {
        nurture: bool,
    },
    /// Positive (`Some(true)`), negative or unsaid.
    Feedback(Option<bool>),
    Failed,
    /// A word not known, normalised.
    Other(String),
}

const BOOKED: &[(&str, &str)] = &[
    ("booked", "appointment"),
    ("appointment_booked", "appointment"),
    ("appointment_set", "appointment"),
    ("appointment_scheduled", "appointment"),
    ("scheduled", "appointment"),
    ("meeting_booked", "meeting"),
    ("meeting_set", "meeting"),
    ("meeting_scheduled", "meeting"),
    ("viewing_booked", "viewing"),
    ("viewing_set", "viewing"),
    ("viewing_scheduled", "viewing"),
    ("visit_booked", "visit"),
    ("demo_booked", "demo"),
    ("call_booked", "call"),
];
const ESCALATED: &[&str] = &[
    "escalated",
    "escalation",
    "escalate",
    "transfer",
    "transferred",
    "transfer_to_human",
    "transferred_to_human",
    "human",
    "asked_for_person",
    "emergency",
    "handoff",
    "hand_off",
    "handed_off",
];
const CALLBACK: &[&str] = &[
    "callback",
    "call_back",
    "callback_requested",
    "call_back_requested",
    "requested_callback",
    "callback_scheduled",
    "call_later",
    "call_back_later",
    "busy",
];
const MANAGER_CALLBACK: &[&str] = &["manager_callback", "manager_call_back"];
const VOICEMAIL: &[&str] = &[
    "voicemail",
    "voice_mail",
    "answering_machine",
    "machine",
    "machine_answered",
    "left_voicemail",
    "left_message",
];
const WRONG_NUMBER: &[&str] = &[
    "wrong_number",
    "wrong_person",
    "wrong_contact",
    "invalid_number",
];
const NOT_INTERESTED: &[&str] = &[
    "not_interested",
    "no_interest",
    "uninterested",
    "declined",
    "refused",
];
const DO_NOT_CALL: &[&str] = &[
    "do_not_call",
    "dnc",
    "stop_calling",
    "opt_out",
    "opted_out",
    "unsubscribe",
    "unsubscribed",
];
const QUALIFIED: &[&str] = &["qualified", "lead_qualified"];
const NURTURE: &[&str] = &["nurture", "nurtured", "nurturing"];
const FEEDBACK: &[&str] = &["feedback", "feedback_given", "feedback_received"];
const FAILED: &[&str] = &["flow_error", "error", "failed", "technical_error"];

impl Word {
    fn read(raw: &str) -> Word {
        let w = normalise(raw);
        let is = |list: &[&str]| list.contains(&w.as_str());
        if let Some((_, noun)) = BOOKED.iter().find(|(b, _)| *b == w) {
            Word::Booked(noun)
        } else if is(ESCALATED) {
            Word::Escalated
        } else if is(CALLBACK) {
            Word::Callback { manager: false }
        } else if is(MANAGER_CALLBACK) {
            Word::Callback { manager: true }
        } else if is(VOICEMAIL) {
            Word::Voicemail
        } else if is(WRONG_NUMBER) {
            Word::WrongNumber
        } else if is(NOT_INTERESTED) {
            Word::NotInterested { do_not_call: false }
        } else if is(DO_NOT_CALL) {
            Word::NotInterested { do_not_call: true }
        } else if is(QUALIFIED) {
            Word::Qualified { nurture: false }
        } else if is(NURTURE) {
            Word::Qualified { nurture: true }
        } else if w == "positive_feedback" {
            Word::Feedback(Some(true))
        } else if w == "negative_feedback" {
            Word::Feedback(Some(false))
        } else if is(FEEDBACK) {
            Word::Feedback(None)
        } else if is(FAILED) {
            Word::Failed
        } else {
            Word::Other(w)
        }
    }
}

/// A word in lower snake case: separators (spaces, hyphens, dots...) become one `_`,
/// apostrophes go, and a capital after a small letter starts a new word (`notInterested`).
fn normalise(raw: &str) -> String {
    let mut out = String::new();
    let mut after_lower = false;
    for c in raw.trim().chars().take(MAX_WORD_CHARS) {
        if matches!(c, '\'' | '’') {
            continue;
        }
        if c.is_alphanumeric() {
            if c.is_uppercase() && after_lower {
                out.push('_');
            }
            after_lower = c.is_lowercase() || c.is_numeric();
            out.extend(c.to_lowercase());
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            after_lower = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

// -------------------------------------------------------------------------- summary

fn summary(facts: &CallFacts, outcome: CallOutcome, word: Option<&Word>) -> String {
    match outcome {
        CallOutcome::Voicemail => return "Reached voicemail or an answering machine.".into(),
        CallOutcome::WrongNumber => {
            return "Wrong number: the person who answered is not the lead.".into();
        }
        _ => {}
    }
    let head = facts.qualification().map(|(t, score)| {
        if score.is_finite() {
            format!(
                "Qualified {} (score {:.2}).",
                temperature(t),
                score.clamp(0.0, 1.0)
            )
        } else {
            format!("Qualified {}.", temperature(t))
        }
    });
    let tail = done(facts, outcome, word);
    let fixed: usize = head
        .iter()
        .chain(tail.iter())
        .map(|s| s.chars().count() + 1)
        .sum();
    let room = MAX_SUMMARY_CHARS.saturating_sub(fixed);
    let middle = answers(&facts.slots)
        .filter(|_| room >= MIN_ANSWERS_ROOM)
        .map(|a| clip(&a, room));
    let parts: Vec<String> = head.into_iter().chain(middle).chain(tail).collect();
    clip(&parts.join(" "), MAX_SUMMARY_CHARS)
}

/// The sentences saying what was done, and for an incomplete call how it ended.
fn done(facts: &CallFacts, outcome: CallOutcome, word: Option<&Word>) -> Vec<String> {
    let mut out = Vec::new();
    let noun = match word {
        Some(Word::Booked(noun)) => noun,
        _ => "appointment",
    };
    match facts.booking() {
        Some((at, kind, true)) => {
            let mut s = format!(
                "Booked {} {noun} for {}, {}.",
                article(noun),
                when(at),
                meeting(kind)
            );
            if let Some(channel) = facts.confirmation() {
                s.push_str(&format!(
                    " Confirmation queued by {}.",
                    channel_name(channel)
                ));
            }
            out.push(s);
        }
        Some((at, kind, false)) => out.push(format!(
            "Tried to book {} {noun} for {}, {}, but the booking did not go through.",
            article(noun),
            when(at),
            meeting(kind)
        )),
        None => {}
    }
    match facts.transfer() {
        Some((mode, reason)) => {
            let mode = mode.as_str();
            match transfer_reason(reason) {
                Some(why) => out.push(format!("Transferred to a person ({mode}): {why}.")),
                None => out.push(format!("Transferred to a person ({mode}).")),
            }
        }
        None if matches!(word, Some(Word::Escalated)) => out.push("Escalated to a person.".into()),
        None => {}
    }
    let manager = matches!(word, Some(Word::Callback { manager: true }));
    let who = if manager {
        "Asked for a manager to call back"
    } else {
        "Asked to be called back"
    };
    match facts.callback() {
        Some(Some(at)) => out.push(format!("{who} on {}.", when(at))),
        Some(None) => out.push(format!("{who} as soon as possible.")),
        None if matches!(word, Some(Word::Callback { .. })) => out.push(format!("{who}.")),
        None => {}
    }
    // The end word's own sentence, where it is not said above.
    match word {
        Some(Word::NotInterested { do_not_call: true }) => {
            out.push("Asked not to be called again.".into())
        }
        Some(Word::NotInterested { do_not_call: false }) => out.push("Not interested.".into()),
        Some(Word::Qualified { nurture: true }) => {
            out.push("Not ready for a meeting yet: to be nurtured.".into())
        }
        Some(Word::Qualified { nurture: false }) if !facts.qualified() => {
            out.push("Qualified.".into())
        }
        Some(Word::Feedback(Some(true))) => out.push("Gave positive feedback.".into()),
        Some(Word::Feedback(Some(false))) => out.push("Gave negative feedback.".into()),
        Some(Word::Feedback(None)) => out.push("Gave feedback.".into()),
        Some(Word::Failed) => {
            out.push("The conversation stopped because of a problem on our side.".into())
        }
        Some(Word::Other(w)) if outcome == CallOutcome::Incomplete => {
            if let Some(w) = plain_words(w) {
                out.push(format!("The agent ended it as \"{w}\"."));
            }
        }
        _ => {}
    }
    if outcome == CallOutcome::Incomplete {
        out.push(ending(&facts.end_reason, facts.turns));
    }
    out
}

/// How an incomplete call ended: "The caller hung up after 2 caller turns."
fn ending(reason: &str, turns: u32) -> String {
    // Whether the sentence's subject is the caller, who cannot then be named again.
    let (how, caller) = match normalise(reason).as_str() {
        "caller_hung_up" => ("The caller hung up", true),
        "silence" => ("The caller went silent", true),
        "agent_ended" => ("The agent ended the call", false),
        "max_turns" => ("The call reached its turn limit", false),
        "max_duration" => ("The call reached its time limit", false),
        "vendor_failed" => ("A speech or language service failed", false),
        "stream_lost" | "malformed_frame" => ("The call's audio connection was lost", false),
        _ => ("The call ended", false),
    };
    match turns {
        0 if caller => format!("{how} before saying anything."),
        0 => format!("{how} before the caller said anything."),
        1 => format!("{how} after 1 caller turn."),
        n => format!("{how} after {n} caller turns."),
    }
}

/// A transfer reason as a reader understands it; the engine's own reasons in words.
fn transfer_reason(reason: &str) -> Option<String> {
    let known = match normalise(reason).as_str() {
        "" => return None,
        "asked_for_person" | "human" => "the caller asked for a person",
        "escalation" => "the caller asked for someone senior",
        "emergency" => "the caller reported an emergency",
        "max_turns" => "the conversation reached its turn limit",
        "not_understood" => "the agent could not understand the caller",
        "change_booking" => "to change an existing booking",
        _ => {
            let words = reason.replace('_', " ");
            let said = clip(&redact_numbers(&words), MAX_REASON_CHARS);
            return (!said.is_empty()).then_some(said);
        }
    };
    Some(known.into())
}

/// An unknown end word fit to repeat: letters and separators only (no digits, so no
/// number of any kind), as words.
fn plain_words(normalised: &str) -> Option<String> {
    let plain = !normalised.is_empty()
        && normalised.chars().count() <= MAX_REASON_CHARS
        && normalised.chars().all(|c| c.is_alphabetic() || c == '_');
    plain.then(|| normalised.replace('_', " "))
}

/// The sentence of the main answers: "Budget 500,000 USD, timeline within 3 months."
fn answers(slots: &BTreeMap<String, SlotValue>) -> Option<String> {
    const SHOWN: &[(&str, &str)] = &[
        ("buy_or_rent", "looking to"),
        ("need", "need"),
        ("reason", "reason"),
        ("area", "area"),
        ("budget", "budget"),
        ("timeline", "timeline"),
        ("decision_maker", "decision maker"),
        ("rating", "rating"),
        ("liked", "liked"),
        ("issue", "issue"),
    ];
    let parts: Vec<String> = SHOWN
        .iter()
        .filter_map(|(name, label)| {
            let value = slots.get(*name)?;
            answer(name, label, value)
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let sentence = parts.join(", ");
    let mut chars = sentence.chars();
    let first = chars.next()?;
    Some(format!("{}{}.", first.to_uppercase(), chars.as_str()))
}

/// One answer in the summary, its label first; what the caller said in quotes.
fn answer(name: &str, label: &str, value: &SlotValue) -> Option<String> {
    if name == "decision_maker" {
        let decides = match value {
            SlotValue::YesNo { value } => Some(*value),
            SlotValue::Choice { value } => match value.as_str() {
                "self" | "yes" | "me" => Some(true),
                "someone_else" | "no" => Some(false),
                "shared" => return Some("a shared decision".into()),
                _ => None,
            },
            _ => None,
        };
        match decides {
            Some(true) => return Some("the decision maker".into()),
            Some(false) => return Some("not the decision maker".into()),
            None => {}
        }
    }
    let text = match value {
        // A budget given as a bare number still reads as an amount.
        SlotValue::Number { value } if name == "budget" => amount(*value, None)?,
        SlotValue::Text { value } => {
            let said = clip(&redact_numbers(value), MAX_QUOTE_CHARS);
            if said.is_empty() {
                return None;
            }
            format!("\"{said}\"")
        }
        // What a caller or a model chose may hold any number; dates, times, amounts and
        // timelines are written here, grouped or punctuated so they never read as one.
        SlotValue::Number { .. } | SlotValue::Choice { .. } => redact_numbers(&detail_text(value)?),
        other => detail_text(other)?,
    };
    Some(format!("{label} {text}"))
}

fn temperature(t: Temperature) -> &'static str {
    match t {
        Temperature::Hot => "hot",
        Temperature::Warm => "warm",
        Temperature::Cold => "cold",
    }
}

fn meeting(kind: MeetingKind) -> &'static str {
    match kind {
        MeetingKind::InPerson => "in person",
        MeetingKind::Phone => "by phone",
        MeetingKind::Video => "by video",
    }
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "SMS",
        Channel::Whatsapp => "WhatsApp",
    }
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A moment as people read it: "Tue 24 Nov at 14:00".
fn when(at: NaiveDateTime) -> String {
    at.format("%a %-d %b at %H:%M").to_string()
}

// -------------------------------------------------------------------------- details

/// A collected value as short readable text, or `None` when it says nothing (empty
/// text, a number that is not finite). See the module's docs for each kind.
pub fn detail_text(value: &SlotValue) -> Option<String> {
    match value {
        SlotValue::YesNo { value } => Some((if *value { "yes" } else { "no" }).into()),
        SlotValue::Number { value } => plain_number(*value),
        SlotValue::Money {
            amount: lower,
            up_to,
            currency,
            per,
        } => {
            let currency = currency.as_deref().map(str::trim).filter(|c| !c.is_empty());
            let mut s = amount(*lower, currency)?;
            if let Some(top) = up_to.and_then(|u| amount(u, currency)) {
                s.push_str(" to ");
                s.push_str(&top);
            }
            if let Some(c) = currency {
                s.push(' ');
                s.push_str(&clip(c, 10));
            }
            if let Some(p) = per.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                s.push_str(" per ");
                s.push_str(&clip(p, 20));
            }
            Some(s)
        }
        SlotValue::Date { date } => Some(date.format("%Y-%m-%d").to_string()),
        SlotValue::Time { time } => Some(time.format("%H:%M").to_string()),
        SlotValue::Datetime { at } => Some(at.format("%Y-%m-%d %H:%M").to_string()),
        SlotValue::Timeline {
            within_days,
            urgent,
        } => Some(match (within_days, urgent) {
            (Some(d), true) => format!("{} (urgent)", horizon(*d)),
            (Some(d), false) => horizon(*d),
            (None, true) => "urgent".into(),
            (None, false) => "no set timeline".into(),
        }),
        SlotValue::Text { value } => {
            let text = clip(value, MAX_DETAIL_CHARS);
            (!text.is_empty()).then_some(text)
        }
        SlotValue::Choice { value } => {
            let text = clip(&value.replace('_', " "), MAX_DETAIL_CHARS);
            (!text.is_empty()).then_some(text)
        }
    }
}

/// A timeline's horizon in the unit people use for it.
fn horizon(days: u32) -> String {
    let d = f64::from(days);
    let (n, unit) = match days {
        0 => return "right away".into(),
        1..=13 => (days, "day"),
        14..=27 => (rounded(d / 7.0), "week"),
        28..=334 => (rounded(d / 30.44), "month"),
        _ => (rounded(d / 365.25), "year"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("within {n} {unit}{s}")
}

/// A whole count from a positive quotient (at most a few million here).
fn rounded(x: f64) -> u32 {
    // `as` saturates, and the quotients are small and positive.
    x.round().max(1.0) as u32
}

/// A number with no trailing `.0`, at most two decimals; `None` when not finite.
fn plain_number(n: f64) -> Option<String> {
    if !n.is_finite() {
        return None;
    }
    let s = format!("{n:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    // "-0" from a tiny negative number reads as nothing but 0.
    Some(if s == "-0" { "0".into() } else { s.to_owned() })
}

/// An amount grouped for reading: `1,234,567.5`; rupees in lakhs and crores
/// (`50,00,000`).
fn amount(n: f64, currency: Option<&str>) -> Option<String> {
    let plain = plain_number(n)?;
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let indian = currency.is_some_and(|c| c.eq_ignore_ascii_case("INR"));
    let mut out = String::from(sign);
    out.push_str(&group(whole, indian));
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// Digits with commas: in threes, or Indian style (the last three, then twos).
fn group(whole: &str, indian: bool) -> String {
    let digits: Vec<char> = whole.chars().collect();
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 2);
    for (i, c) in digits.iter().enumerate() {
        let left = len - i;
        let comma = if indian {
            left >= 3 && (left - 3).is_multiple_of(2)
        } else {
            left.is_multiple_of(3)
        };
        if i > 0 && comma {
            out.push(',');
        }
        out.push(*c);
    }
    out
}

// --------------------------------------------------------------------------- text

/// A summary written elsewhere (a language model's) made fit for the call's history:
/// phone numbers replaced by `[number]`, on one line, at most [`MAX_SUMMARY_CHARS`].
pub fn safe_summary(text: &str) -> String {
    clip(&redact_numbers(text), MAX_SUMMARY_CHARS)
}

/// A detail from elsewhere (a model's extraction): trimmed, on one line, at most
/// [`MAX_DETAIL_CHARS`]; `None` when empty.
pub fn safe_detail(text: &str) -> Option<String> {
    let text = clip(text, MAX_DETAIL_CHARS);
    (!text.is_empty()).then_some(text)
}

/// Text on one line, without control characters, at most `max` characters: cut at a
/// word, with an ellipsis, when longer.
fn clip(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    if max == 0 {
        return String::new();
    }
    // Room for the ellipsis; the character after the cut says whether it falls
    // between words.
    let keep = max - 1;
    let head: String = one_line.chars().take(keep).collect();
    let at_break = one_line.chars().nth(keep) == Some(' ');
    let head = if at_break {
        head.as_str()
    } else {
        match head.rfind(' ') {
            Some(i) => head.get(..i).unwrap_or(&head),
            // One word longer than the room: cut inside it.
            None => head.as_str(),
        }
    };
    let head = head.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':'));
    format!("{head}…")
}

/// Text with every run of [`PHONE_DIGITS`] digits or more (digits or digit words, with
/// spaces, dashes, dots, slashes or brackets between) replaced by `[number]`.
fn redact_numbers(text: &str) -> String {
    // Alternating runs: alphanumeric "words" and the gaps between them.
    let mut runs: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut kind: Option<bool> = None;
    for (i, c) in text.char_indices() {
        let word = c.is_alphanumeric();
        match kind {
            Some(k) if k != word => {
                runs.push((k, text.get(start..i).unwrap_or_default()));
                start = i;
                kind = Some(word);
            }
            Some(_) => {}
            None => kind = Some(word),
        }
    }
    if let Some(k) = kind {
        runs.push((k, text.get(start..).unwrap_or_default()));
    }
    let digits = |run: Option<&(bool, &str)>| match run {
        Some((true, w)) => digit_count(w),
        _ => 0,
    };
    let joins = |run: Option<&(bool, &str)>| match run {
        Some((false, gap)) => {
            gap.chars().count() <= 3 && gap.chars().all(|c| " -.()/+".contains(c))
        }
        _ => false,
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(run) = runs.get(i) {
        let first = digits(Some(run));
        if first == 0 {
            out.push_str(run.1);
            i += 1;
            continue;
        }
        // The longest chain digit-run (gap digit-run)* from here.
        let mut count = first;
        let mut last = i;
        while joins(runs.get(last + 1)) && digits(runs.get(last + 2)) > 0 {
            count += digits(runs.get(last + 2));
            last += 2;
        }
        if count >= PHONE_DIGITS {
            // A leading "+" or "(" belongs to the number.
            while out.ends_with(['+', '(']) {
                out.pop();
            }
            out.push_str("[number]");
        } else {
            for r in runs.iter().take(last + 1).skip(i) {
                out.push_str(r.1);
            }
        }
        i = last + 1;
    }
    out
}

/// Digits in a word: its length when all digits, 1 for a digit said as a word, else 0.
fn digit_count(word: &str) -> usize {
    const SAID: &[&str] = &[
        "zero", "oh", "o", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    if word.chars().all(|c| c.is_ascii_digit()) {
        word.len()
    } else if SAID.iter().any(|s| word.eq_ignore_ascii_case(s)) {
        1
    } else {
        0
    }
}
