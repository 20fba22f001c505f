//! What a call came to: each outcome and the precedence between them, end words as
//! written (every shipped flow's among them), whole conversations with the shipped flows
//! classified from what they fired, summaries (content, no phone number, the bound),
//! details of every kind of slot, and every lead status move.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use parley_shared::domain::call::CallOutcome;
use parley_shared::domain::lead::{LeadStatus, Temperature};
use parley_shared::flow::{
    Action, Channel, Context, FiredAction, Flow, FlowRun, Heard, Industry, MeetingKind, SlotValue,
    TransferMode,
};
use parley_shared::outcome::{
    BrainAct, CallFacts, MAX_DETAIL_CHARS, MAX_SUMMARY_CHARS, classify, detail_text, next_status,
};
use parley_shared::qualify::{QualificationSettings, assess_slots, score};

use CallOutcome::{
    AppointmentSet, CallbackRequested, Escalated, FeedbackGiven, Incomplete, NotInterested,
    Qualified, Voicemail, WrongNumber,
};

// ------------------------------------------------------------------------- helpers

/// 2026-11-`day` at `h`:`m`, the tenant's local time.
fn nov(day: u32, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, day)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
}

/// A call a person answered and took three turns in, the agent ending it.
fn facts(acts: Vec<BrainAct>) -> CallFacts {
    CallFacts {
        machine: false,
        turns: 3,
        end_reason: "agent_ended".into(),
        acts,
        slots: BTreeMap::new(),
    }
}

fn ended(word: &str) -> BrainAct {
    BrainAct::Ended {
        outcome: Some(word.into()),
    }
}

fn booked(ok: bool) -> BrainAct {
    BrainAct::Booked {
        at: nov(24, 14, 0),
        kind: MeetingKind::InPerson,
        ok,
    }
}

fn transfer(mode: TransferMode, reason: &str) -> BrainAct {
    BrainAct::TransferAsked {
        mode,
        reason: reason.into(),
    }
}

fn callback(at: Option<NaiveDateTime>) -> BrainAct {
    BrainAct::CallbackAsked { at }
}

fn qualified(temperature: Temperature, score: f64) -> BrainAct {
    BrainAct::Qualified { temperature, score }
}

fn text(value: &str) -> SlotValue {
    SlotValue::Text {
        value: value.into(),
    }
}

fn money(amount: f64, up_to: Option<f64>, currency: Option<&str>, per: Option<&str>) -> SlotValue {
    SlotValue::Money {
        amount,
        up_to,
        currency: currency.map(Into::into),
        per: per.map(Into::into),
    }
}

/// The longest run of digits joined by phone-number punctuation: what a phone number
/// in a summary would show as.
fn longest_digit_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c.is_ascii_digit() {
            run += 1;
            best = best.max(run);
        } else if !" -.()/+".contains(c) {
            run = 0;
        }
    }
    best
}

// ------------------------------------------------------------------------ outcomes

#[test]
fn each_outcome_comes_from_its_facts() {
    let cases: Vec<(&str, CallFacts, CallOutcome)> = vec![
        (
            "a machine answered",
            CallFacts {
                machine: true,
                ..facts(vec![])
            },
            Voicemail,
        ),
        (
            "a model heard voicemail",
            facts(vec![ended("voicemail")]),
            Voicemail,
        ),
        (
            "a booking went through",
            facts(vec![booked(true)]),
            AppointmentSet,
        ),
        (
            "a transfer was asked for",
            facts(vec![transfer(TransferMode::Warm, "asked_for_person")]),
            Escalated,
        ),
        (
            "a transfer with no reason",
            facts(vec![transfer(TransferMode::Cold, "")]),
            Escalated,
        ),
        (
            "an escalation word alone",
            facts(vec![ended("escalated")]),
            Escalated,
        ),
        (
            "a callback was asked for",
            facts(vec![callback(Some(nov(25, 9, 0)))]),
            CallbackRequested,
        ),
        (
            "a callback as soon as possible",
            facts(vec![callback(None)]),
            CallbackRequested,
        ),
        (
            "a callback word alone",
            facts(vec![ended("callback_requested")]),
            CallbackRequested,
        ),
        (
            "a wrong number",
            facts(vec![ended("wrong_number")]),
            WrongNumber,
        ),
        (
            "not interested",
            facts(vec![ended("not_interested")]),
            NotInterested,
        ),
        (
            "the built-in do-not-call intent's word",
            facts(vec![ended("do_not_call")]),
            NotInterested,
        ),
        (
            "qualified and nothing more",
            facts(vec![qualified(Temperature::Cold, 0.2)]),
            Qualified,
        ),
        (
            "a qualified word alone",
            facts(vec![ended("qualified")]),
            Qualified,
        ),
        ("nothing happened", facts(vec![]), Incomplete),
        (
            "an end with no word",
            facts(vec![BrainAct::Ended { outcome: None }]),
            Incomplete,
        ),
        (
            "an unknown word",
            facts(vec![ended("survey_done")]),
            Incomplete,
        ),
        (
            "a booking that failed",
            facts(vec![booked(false)]),
            Incomplete,
        ),
        (
            "a booking word with no booking behind it",
            facts(vec![ended("booked")]),
            Incomplete,
        ),
        (
            "a booking word after a booking that failed",
            facts(vec![booked(false), ended("viewing_booked")]),
            Incomplete,
        ),
        (
            "a confirmation alone",
            facts(vec![BrainAct::ConfirmationQueued {
                channel: Channel::Sms,
            }]),
            Incomplete,
        ),
        (
            "feedback",
            facts(vec![ended("positive_feedback")]),
            FeedbackGiven,
        ),
        (
            "the flow failed",
            facts(vec![ended("flow_error")]),
            Incomplete,
        ),
    ];
    for (name, f, expected) in cases {
        assert_eq!(classify(&f).outcome, expected, "{name}");
    }
}

#[test]
fn the_precedence_between_outcomes_is_as_documented() {
    use Temperature::Warm;
    let cases: Vec<(&str, Vec<BrainAct>, bool, CallOutcome)> = vec![
        // 1. The machine verdict beats everything the brain did.
        (
            "machine over a booking",
            vec![booked(true), ended("booked")],
            true,
            Voicemail,
        ),
        (
            "machine over a transfer",
            vec![transfer(TransferMode::Warm, "asked_for_person")],
            true,
            Voicemail,
        ),
        // 2. A booking that went through.
        (
            "booking over a later transfer",
            vec![
                booked(true),
                transfer(TransferMode::Warm, "asked_for_person"),
            ],
            false,
            AppointmentSet,
        ),
        (
            "booking over a callback",
            vec![callback(None), booked(true)],
            false,
            AppointmentSet,
        ),
        (
            "booking over a not-interested word",
            vec![booked(true), ended("not_interested")],
            false,
            AppointmentSet,
        ),
        (
            "booking over qualification",
            vec![qualified(Warm, 0.6), booked(true)],
            false,
            AppointmentSet,
        ),
        (
            "one booking went through, a later one failed",
            vec![booked(true), booked(false)],
            false,
            AppointmentSet,
        ),
        (
            "a failed booking does not beat a transfer",
            vec![
                booked(false),
                transfer(TransferMode::Warm, "not_understood"),
            ],
            false,
            Escalated,
        ),
        (
            "a failed booking does not beat qualification",
            vec![qualified(Warm, 0.6), booked(false)],
            false,
            Qualified,
        ),
        // 3. A transfer.
        (
            "transfer over a callback",
            vec![callback(None), transfer(TransferMode::Cold, "emergency")],
            false,
            Escalated,
        ),
        (
            "transfer over a wrong-number word",
            vec![transfer(TransferMode::Warm, "x"), ended("wrong_number")],
            false,
            Escalated,
        ),
        (
            "escalation word over a callback",
            vec![callback(None), ended("escalated")],
            false,
            Escalated,
        ),
        // 4. A callback.
        (
            "callback over a not-interested word",
            vec![callback(None), ended("not_interested")],
            false,
            CallbackRequested,
        ),
        (
            "callback over a voicemail word",
            vec![callback(None), ended("voicemail")],
            false,
            CallbackRequested,
        ),
        (
            "callback word over qualification",
            vec![qualified(Warm, 0.6), ended("call_back")],
            false,
            CallbackRequested,
        ),
        // 5. The end word.
        (
            "wrong number over qualification",
            vec![qualified(Warm, 0.6), ended("wrong_number")],
            false,
            WrongNumber,
        ),
        (
            "not interested over qualification",
            vec![qualified(Warm, 0.6), ended("not_interested")],
            false,
            NotInterested,
        ),
        (
            "voicemail word over qualification",
            vec![qualified(Warm, 0.6), ended("voicemail")],
            false,
            Voicemail,
        ),
        (
            "the last end word counts",
            vec![ended("not_interested"), ended("wrong_number")],
            false,
            WrongNumber,
        ),
        (
            "a blank end word is no word",
            vec![ended("not_interested"), ended("  ")],
            false,
            NotInterested,
        ),
        (
            "an end with no word keeps the earlier word",
            vec![ended("not_interested"), BrainAct::Ended { outcome: None }],
            false,
            NotInterested,
        ),
        // 6. Qualified, over an incomplete end.
        (
            "qualified, then the caller hung up",
            vec![qualified(Warm, 0.6)],
            false,
            Qualified,
        ),
        (
            "qualified, then an unknown word",
            vec![qualified(Warm, 0.6), ended("all_done")],
            false,
            Qualified,
        ),
    ];
    for (name, acts, machine, expected) in cases {
        let f = CallFacts {
            machine,
            ..facts(acts)
        };
        assert_eq!(classify(&f).outcome, expected, "{name}");
    }
}

/// Every word of the module's table, as written and in other spellings, alone at the
/// end of a call: the outcome, and a phrase the summary must hold (or, for booking
/// words that count only with a booking, must not hold: an unknown word is repeated).
#[test]
fn end_words_map_as_documented_whatever_their_spelling() {
    const ESC: &str = "Escalated to a person.";
    const CB: &str = "Asked to be called back.";
    const MGR: &str = "Asked for a manager to call back.";
    const VM: &str = "Reached voicemail";
    const WN: &str = "Wrong number";
    const NI: &str = "Not interested.";
    const DNC: &str = "Asked not to be called again.";
    const NURTURE: &str = "to be nurtured";
    const OURS: &str = "a problem on our side";
    const FEEDBACK: &str = "Gave feedback.";
    let cases: &[(&str, CallOutcome, &str)] = &[
        ("escalated", Escalated, ESC),
        ("escalation", Escalated, ESC),
        ("escalate", Escalated, ESC),
        ("transfer", Escalated, ESC),
        ("transferred", Escalated, ESC),
        ("transfer_to_human", Escalated, ESC),
        ("Transferred to human", Escalated, ESC),
        ("human", Escalated, ESC),
        ("asked_for_person", Escalated, ESC),
        ("emergency", Escalated, ESC),
        ("handoff", Escalated, ESC),
        ("hand-off", Escalated, ESC),
        ("handed_off", Escalated, ESC),
        ("callback", CallbackRequested, CB),
        ("call back", CallbackRequested, CB),
        ("callback_requested", CallbackRequested, CB),
        ("Call-Back Requested", CallbackRequested, CB),
        ("requested_callback", CallbackRequested, CB),
        ("callbackScheduled", CallbackRequested, CB),
        ("call_later", CallbackRequested, CB),
        ("call_back_later", CallbackRequested, CB),
        ("busy", CallbackRequested, CB),
        ("manager_callback", CallbackRequested, MGR),
        ("Manager Call Back", CallbackRequested, MGR),
        ("voicemail", Voicemail, VM),
        ("Voice Mail", Voicemail, VM),
        ("answering_machine", Voicemail, VM),
        ("machine", Voicemail, VM),
        ("machine_answered", Voicemail, VM),
        ("left_voicemail", Voicemail, VM),
        ("left message", Voicemail, VM),
        ("wrong_number", WrongNumber, WN),
        ("Wrong Number", WrongNumber, WN),
        ("wrong-number", WrongNumber, WN),
        ("wrong_person", WrongNumber, WN),
        ("wrong_contact", WrongNumber, WN),
        ("invalid_number", WrongNumber, WN),
        ("not_interested", NotInterested, NI),
        ("Not Interested", NotInterested, NI),
        ("not-interested", NotInterested, NI),
        ("  NOT_INTERESTED  ", NotInterested, NI),
        ("notInterested", NotInterested, NI),
        ("not__interested.", NotInterested, NI),
        ("no_interest", NotInterested, NI),
        ("uninterested", NotInterested, NI),
        ("declined", NotInterested, NI),
        ("refused", NotInterested, NI),
        ("do_not_call", NotInterested, DNC),
        ("Do Not Call", NotInterested, DNC),
        ("DNC", NotInterested, DNC),
        ("stop_calling", NotInterested, DNC),
        ("opt-out", NotInterested, DNC),
        ("opted_out", NotInterested, DNC),
        ("unsubscribe", NotInterested, DNC),
        ("unsubscribed", NotInterested, DNC),
        ("qualified", Qualified, "Qualified."),
        ("Lead Qualified", Qualified, "Qualified."),
        ("nurture", Qualified, NURTURE),
        ("nurtured", Qualified, NURTURE),
        ("nurturing", Qualified, NURTURE),
        (
            "positive_feedback",
            FeedbackGiven,
            "Gave positive feedback.",
        ),
        (
            "Positive Feedback",
            FeedbackGiven,
            "Gave positive feedback.",
        ),
        (
            "negative_feedback",
            FeedbackGiven,
            "Gave negative feedback.",
        ),
        ("feedback", FeedbackGiven, FEEDBACK),
        ("feedback_given", FeedbackGiven, FEEDBACK),
        ("feedback_received", FeedbackGiven, FEEDBACK),
        ("flow_error", Incomplete, OURS),
        ("error", Incomplete, OURS),
        ("failed", Incomplete, OURS),
        ("technical_error", Incomplete, OURS),
        // Unknown words: plain ones repeated, ones with digits not.
        (
            "survey_complete",
            Incomplete,
            "ended it as \"survey complete\"",
        ),
    ];
    for (word, outcome, phrase) in cases {
        let c = classify(&facts(vec![ended(word)]));
        assert_eq!(c.outcome, *outcome, "{word:?}");
        assert!(
            c.summary.contains(phrase),
            "{word:?}: {:?} lacks {phrase:?}",
            c.summary
        );
    }
    let numbered = classify(&facts(vec![ended("call 4155550123")]));
    assert_eq!(numbered.outcome, Incomplete);
    assert!(
        !numbered.summary.contains("ended it as"),
        "{}",
        numbered.summary
    );
}

#[test]
fn booking_words_count_only_with_a_booking_and_name_it() {
    let words: &[(&str, &str)] = &[
        ("booked", "an appointment"),
        ("appointment_booked", "an appointment"),
        ("appointment_set", "an appointment"),
        ("Appointment Scheduled", "an appointment"),
        ("scheduled", "an appointment"),
        ("meeting_booked", "a meeting"),
        ("meeting_set", "a meeting"),
        ("meeting-scheduled", "a meeting"),
        ("viewing_booked", "a viewing"),
        ("ViewingSet", "a viewing"),
        ("viewing_scheduled", "a viewing"),
        ("visit_booked", "a visit"),
        ("demo_booked", "a demo"),
        ("call_booked", "a call"),
    ];
    for (word, noun) in words {
        // Alone: no appointment, and not repeated as an unknown word.
        let alone = classify(&facts(vec![ended(word)]));
        assert_eq!(alone.outcome, Incomplete, "{word}");
        assert!(
            !alone.summary.contains("ended it as"),
            "{word}: {}",
            alone.summary
        );
        // With a booking that went through: the appointment, named.
        let with = classify(&facts(vec![booked(true), ended(word)]));
        assert_eq!(with.outcome, AppointmentSet, "{word}");
        assert!(
            with.summary.contains(&format!(
                "Booked {noun} for Tue 24 Nov at 14:00, in person."
            )),
            "{word}: {}",
            with.summary
        );
        // With one that failed: tried, named.
        let failed = classify(&facts(vec![booked(false), ended(word)]));
        assert!(
            failed
                .summary
                .contains(&format!("Tried to book {noun} for Tue 24 Nov at 14:00")),
            "{word}: {}",
            failed.summary
        );
    }
}

// -------------------------------------------------------------------- shipped flows

/// Every `end` outcome word a flow can fire, wherever it is written.
fn end_words(flow: &Flow) -> BTreeSet<String> {
    let from = |actions: &[Action]| -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::End(e) => e.outcome.clone(),
                _ => None,
            })
            .collect()
    };
    let mut words = BTreeSet::new();
    for intent in &flow.intents {
        words.extend(from(&intent.actions));
    }
    for node in flow.nodes.values() {
        words.extend(from(&node.on_enter));
        words.extend(from(&node.on_leave));
        for intent in &node.intents {
            words.extend(from(&intent.actions));
        }
    }
    words
}

/// Each shipped flow's end words with the acts the flow fires beside them, and what the
/// call comes to; the built-in `do_not_call` and the engine's `flow_error` too.
#[test]
fn every_shipped_flows_end_word_classifies() {
    use Temperature::Warm;
    let rows: Vec<(&str, Vec<BrainAct>, CallOutcome, &str)> = vec![
        (
            "booked",
            vec![booked(true), ended("booked")],
            AppointmentSet,
            "Booked an appointment",
        ),
        (
            "viewing_booked",
            vec![qualified(Warm, 0.6), booked(true), ended("viewing_booked")],
            AppointmentSet,
            "Booked a viewing",
        ),
        (
            "meeting_booked",
            vec![qualified(Warm, 0.6), booked(true), ended("meeting_booked")],
            AppointmentSet,
            "Booked a meeting",
        ),
        (
            "qualified",
            vec![qualified(Warm, 0.6), ended("qualified")],
            Qualified,
            "Qualified warm (score 0.60).",
        ),
        (
            "nurture",
            vec![qualified(Temperature::Cold, 0.3), ended("nurture")],
            Qualified,
            "to be nurtured",
        ),
        (
            "callback_requested",
            vec![callback(Some(nov(22, 10, 0))), ended("callback_requested")],
            CallbackRequested,
            "Asked to be called back on Sun 22 Nov at 10:00.",
        ),
        (
            "manager_callback",
            vec![callback(Some(nov(23, 15, 0))), ended("manager_callback")],
            CallbackRequested,
            "Asked for a manager to call back on Mon 23 Nov at 15:00.",
        ),
        (
            "not_interested",
            vec![ended("not_interested")],
            NotInterested,
            "Not interested.",
        ),
        (
            "positive_feedback",
            vec![ended("positive_feedback")],
            FeedbackGiven,
            "Gave positive feedback.",
        ),
        (
            "negative_feedback",
            vec![ended("negative_feedback")],
            FeedbackGiven,
            "Gave negative feedback.",
        ),
        (
            "do_not_call",
            vec![ended("do_not_call")],
            NotInterested,
            "Asked not to be called again.",
        ),
        (
            "flow_error",
            vec![ended("flow_error")],
            Incomplete,
            "a problem on our side",
        ),
    ];
    let shipped: BTreeSet<String> = Industry::ALL
        .iter()
        .flat_map(|i| end_words(&Flow::default_for(*i)))
        .collect();
    let covered: BTreeSet<String> = rows.iter().map(|(w, ..)| (*w).to_owned()).collect();
    let missing: Vec<&String> = shipped.difference(&covered).collect();
    assert!(missing.is_empty(), "end words with no row: {missing:?}");
    for (word, acts, outcome, phrase) in rows {
        let c = classify(&facts(acts));
        assert_eq!(c.outcome, outcome, "{word}");
        assert!(c.summary.contains(phrase), "{word}: {:?}", c.summary);
    }
}

/// Saturday 21 November 2026, 10:00: "next tuesday" is the 24th.
fn now() -> NaiveDateTime {
    nov(21, 10, 0)
}

/// A shipped flow run over the caller's lines (`#` for keys), with every fired action
/// turned into a fact as the media task does: bookings go through, qualification is
/// scored from the slots under default settings.
fn converse(industry: Industry, direction: &str, lines: &[&str]) -> CallFacts {
    let context = Context::new(now())
        .with("tenant_name", "Harbour Homes")
        .with("agent_name", "Riley")
        .with("lead_name", "Sam")
        .with("lead_phone", "+14155550123")
        .with("direction", direction);
    let (mut run, opening) = FlowRun::start(Flow::default_for(industry), context);
    let mut fired = opening.actions;
    for line in lines {
        assert!(!run.ended(), "{industry:?}: ended before {line:?}");
        let heard = match line.strip_prefix('#') {
            Some(keys) => Heard::keys(keys),
            None => Heard::said(line),
        };
        fired.extend(run.hear(&heard, now()).actions);
    }
    assert!(run.ended(), "{industry:?}: the flow did not end");
    let acts = fired
        .into_iter()
        .map(|a| match a {
            FiredAction::Qualify { slots } => {
                let q = score(
                    assess_slots(&slots, now().date()),
                    &QualificationSettings::default(),
                );
                qualified(q.temperature, q.score)
            }
            FiredAction::Book { at, kind, .. } => BrainAct::Booked { at, kind, ok: true },
            FiredAction::Transfer { mode, reason } => BrainAct::TransferAsked { mode, reason },
            FiredAction::End { outcome } => BrainAct::Ended { outcome },
            FiredAction::SendConfirmation { channel, .. } => {
                BrainAct::ConfirmationQueued { channel }
            }
            FiredAction::Callback { at } => BrainAct::CallbackAsked { at },
        })
        .collect();
    CallFacts {
        machine: false,
        turns: u32::try_from(lines.len()).unwrap(),
        end_reason: "agent_ended".into(),
        acts,
        slots: run.slots().clone(),
    }
}

#[test]
fn whole_conversations_with_the_shipped_flows_classify_from_what_they_fired() {
    type Case = (
        &'static str,
        Industry,
        &'static str,
        &'static [&'static str],
        CallOutcome,
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        (
            "real estate: a viewing",
            Industry::RealEstate,
            "inbound",
            &[
                "hi, yeah, I'd like to rent a place",
                "somewhere near the harbour",
                "about five hundred thousand",
                "within three months",
                "me and my wife",
                "yes please",
                "next tuesday at two pm",
                "yes that's right",
            ],
            AppointmentSet,
            &[
                "Qualified ",
                "Looking to rent, area \"somewhere near the harbour\", budget 500,000, \
                 timeline within 3 months (urgent), a shared decision.",
                "Booked a viewing for Tue 24 Nov at 14:00, in person. Confirmation queued by SMS.",
            ],
        ),
        (
            "real estate: a callback",
            Industry::RealEstate,
            "outbound",
            &["I'm driving right now", "tomorrow at 10 am"],
            CallbackRequested,
            &["Asked to be called back on Sun 22 Nov at 10:00."],
        ),
        (
            "real estate: not interested",
            Industry::RealEstate,
            "outbound",
            &["sorry, we already found a place"],
            NotInterested,
            &["Not interested."],
        ),
        (
            "real estate: an emergency",
            Industry::RealEstate,
            "inbound",
            &["rent", "oh my god there's a fire in the kitchen"],
            Escalated,
            &["Transferred to a person (cold): the caller reported an emergency."],
        ),
        (
            "real estate: a person asked for",
            Industry::RealEstate,
            "inbound",
            &["buy", "can I speak to a real person"],
            Escalated,
            &["Transferred to a person (warm): the caller asked for a person."],
        ),
        (
            "real estate: not understood",
            Industry::RealEstate,
            "inbound",
            &["buy", "downtown", "banana", "purple", "elephant"],
            Escalated,
            &[
                "Looking to buy, area \"downtown\".",
                "Transferred to a person (warm): the agent could not understand the caller.",
            ],
        ),
        (
            "guest relations: a high score",
            Industry::GuestRelations,
            "outbound",
            &["#5", "the breakfast and the view from the room"],
            FeedbackGiven,
            &[
                "Rating 5, liked \"the breakfast and the view from the room\".",
                "Gave positive feedback.",
            ],
        ),
        (
            "guest relations: the manager's callback",
            Industry::GuestRelations,
            "inbound",
            &["I'd say a two", "the room was cold", "#1", "monday at 3 pm"],
            CallbackRequested,
            &[
                "Rating 2, issue \"the room was cold\".",
                "Asked for a manager to call back on Mon 23 Nov at 15:00.",
            ],
        ),
        (
            "guest relations: a low score, no callback",
            Industry::GuestRelations,
            "outbound",
            &["honestly it was awful", "nobody cleaned the room", "#2"],
            FeedbackGiven,
            &["Gave negative feedback."],
        ),
        (
            "appointments: booked",
            Industry::Appointments,
            "inbound",
            &["a dental cleaning", "next tuesday", "at two pm", "#1"],
            AppointmentSet,
            &[
                "Reason \"a dental cleaning\".",
                "Booked an appointment for Tue 24 Nov at 14:00, in person.",
            ],
        ),
        (
            "appointments: a change goes to the front desk",
            Industry::Appointments,
            "inbound",
            &["I need to reschedule"],
            Escalated,
            &["Transferred to a person (cold): to change an existing booking."],
        ),
        (
            "lead qualification: a hot lead books a meeting",
            Industry::LeadQualification,
            "outbound",
            &[
                "sure, go ahead",
                "our support team is drowning in calls",
                "around fifty thousand dollars",
                "yes I do",
                "as soon as possible",
                "yes that would be great",
                "tomorrow morning at 9",
                "yep",
            ],
            AppointmentSet,
            &[
                "Qualified hot (score 0.90).",
                "budget 50,000 USD, timeline right away (urgent), the decision maker.",
                "Booked a meeting for Sun 22 Nov at 09:00, by phone.",
            ],
        ),
        (
            "lead qualification: nurtured",
            Industry::LeadQualification,
            "inbound",
            &[
                "we want a new website",
                "not sure yet",
                "yeah, it's really my boss who decides",
                "probably next year",
            ],
            Qualified,
            &[
                "Qualified cold",
                "not the decision maker",
                "Not ready for a meeting yet: to be nurtured.",
            ],
        ),
        (
            "lead qualification: stop calling",
            Industry::LeadQualification,
            "outbound",
            &["please stop calling me"],
            NotInterested,
            &["Asked not to be called again."],
        ),
    ];
    for (name, industry, direction, lines, outcome, phrases) in cases {
        let f = converse(*industry, direction, lines);
        let c = classify(&f);
        assert_eq!(c.outcome, *outcome, "{name}: {:?}", f.acts);
        for phrase in *phrases {
            assert!(
                c.summary.contains(phrase),
                "{name}: {:?} lacks {phrase:?}",
                c.summary
            );
        }
        assert!(!c.summary.contains("555"), "{name}: {}", c.summary);
        assert_eq!(
            c.details.keys().collect::<Vec<_>>(),
            f.slots.keys().collect::<Vec<_>>(),
            "{name}: every slot is a detail"
        );
    }
}

#[test]
fn a_viewing_call_captures_its_details_as_text() {
    let f = converse(
        Industry::RealEstate,
        "inbound",
        &[
            "hi, yeah, I'd like to rent a place",
            "somewhere near the harbour",
            "about five hundred thousand",
            "within three months",
            "me and my wife",
            "yes please",
            "next tuesday at two pm",
            "yes that's right",
        ],
    );
    let details = classify(&f).details;
    let expected: BTreeMap<String, String> = [
        ("appointment_time", "2026-11-24 14:00"),
        ("area", "somewhere near the harbour"),
        ("budget", "500,000"),
        ("buy_or_rent", "rent"),
        ("confirmed", "yes"),
        ("decision_maker", "shared"),
        ("timeline", "within 3 months (urgent)"),
        ("wants_viewing", "yes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(details, expected);
}

// ------------------------------------------------------------------------ summaries

#[test]
fn the_summary_reads_as_the_issue_shows() {
    let mut f = facts(vec![
        qualified(Temperature::Warm, 0.62),
        booked(true),
        ended("viewing_booked"),
    ]);
    f.slots
        .insert("budget".into(), money(500_000.0, None, Some("USD"), None));
    f.slots.insert(
        "timeline".into(),
        SlotValue::Timeline {
            within_days: Some(92),
            urgent: false,
        },
    );
    assert_eq!(
        classify(&f).summary,
        "Qualified warm (score 0.62). Budget 500,000 USD, timeline within 3 months. \
         Booked a viewing for Tue 24 Nov at 14:00, in person."
    );
}

#[test]
fn each_outcome_has_its_own_summary() {
    use Temperature::Hot;
    let hung_up = |turns: u32, reason: &str, acts: Vec<BrainAct>| CallFacts {
        turns,
        end_reason: reason.into(),
        ..facts(acts)
    };
    let cases: Vec<(&str, CallFacts, &str)> = vec![
        (
            "voicemail",
            CallFacts {
                machine: true,
                ..facts(vec![qualified(Hot, 0.9)])
            },
            "Reached voicemail or an answering machine.",
        ),
        (
            "wrong number",
            facts(vec![qualified(Hot, 0.9), ended("wrong_number")]),
            "Wrong number: the person who answered is not the lead.",
        ),
        (
            "a booking with a confirmation",
            facts(vec![
                BrainAct::Booked {
                    at: nov(30, 9, 5),
                    kind: MeetingKind::Video,
                    ok: true,
                },
                BrainAct::ConfirmationQueued {
                    channel: Channel::Whatsapp,
                },
                ended("meeting_booked"),
            ]),
            "Booked a meeting for Mon 30 Nov at 09:05, by video. Confirmation queued by WhatsApp.",
        ),
        (
            "a failed booking, then a person",
            facts(vec![
                BrainAct::Booked {
                    at: nov(24, 14, 0),
                    kind: MeetingKind::Phone,
                    ok: false,
                },
                transfer(TransferMode::Warm, "asked_for_person"),
            ]),
            "Tried to book an appointment for Tue 24 Nov at 14:00, by phone, but the booking \
             did not go through. Transferred to a person (warm): the caller asked for a person.",
        ),
        (
            "escalation",
            facts(vec![transfer(TransferMode::Warm, "escalation")]),
            "Transferred to a person (warm): the caller asked for someone senior.",
        ),
        (
            "the turn limit",
            facts(vec![transfer(TransferMode::Warm, "max_turns")]),
            "Transferred to a person (warm): the conversation reached its turn limit.",
        ),
        (
            "an author's reason",
            facts(vec![transfer(TransferMode::Cold, "billing_question")]),
            "Transferred to a person (cold): billing question.",
        ),
        (
            "a transfer with no reason",
            facts(vec![transfer(TransferMode::Cold, " ")]),
            "Transferred to a person (cold).",
        ),
        (
            "a callback as soon as possible",
            facts(vec![callback(None), ended("callback_requested")]),
            "Asked to be called back as soon as possible.",
        ),
        (
            "qualified",
            facts(vec![qualified(Hot, 0.8)]),
            "Qualified hot (score 0.80).",
        ),
        (
            "a score out of range is shown in range",
            facts(vec![qualified(Hot, 1.7)]),
            "Qualified hot (score 1.00).",
        ),
        (
            "a score that is no number is not shown",
            facts(vec![qualified(Hot, f64::NAN)]),
            "Qualified hot.",
        ),
        (
            "hung up at once",
            hung_up(0, "caller_hung_up", vec![]),
            "The caller hung up before saying anything.",
        ),
        (
            "hung up after a turn",
            hung_up(1, "caller_hung_up", vec![]),
            "The caller hung up after 1 caller turn.",
        ),
        (
            "the turn limit reached",
            hung_up(30, "max_turns", vec![]),
            "The call reached its turn limit after 30 caller turns.",
        ),
        (
            "the time limit reached",
            hung_up(4, "max_duration", vec![]),
            "The call reached its time limit after 4 caller turns.",
        ),
        (
            "a vendor failed",
            hung_up(2, "vendor_failed", vec![]),
            "A speech or language service failed after 2 caller turns.",
        ),
        (
            "silence",
            hung_up(2, "Silence", vec![]),
            "The caller went silent after 2 caller turns.",
        ),
        (
            "the stream was lost",
            hung_up(2, "stream_lost", vec![]),
            "The call's audio connection was lost after 2 caller turns.",
        ),
        (
            "an unknown end reason is a plain end",
            hung_up(2, "gremlins_555_0123", vec![]),
            "The call ended after 2 caller turns.",
        ),
        (
            "the agent ended it",
            hung_up(5, "agent_ended", vec![]),
            "The agent ended the call after 5 caller turns.",
        ),
        (
            "the agent ended it before a word",
            hung_up(0, "agent_ended", vec![]),
            "The agent ended the call before the caller said anything.",
        ),
        (
            "silent from the start",
            hung_up(0, "silence", vec![]),
            "The caller went silent before saying anything.",
        ),
        (
            "a frame that does not parse",
            hung_up(3, "malformed_frame", vec![]),
            "The call's audio connection was lost after 3 caller turns.",
        ),
        (
            "an unknown word and a hang-up",
            hung_up(2, "caller_hung_up", vec![ended("survey_done")]),
            "The agent ended it as \"survey done\". The caller hung up after 2 caller turns.",
        ),
    ];
    for (name, f, expected) in cases {
        assert_eq!(classify(&f).summary, expected, "{name}");
    }
}

#[test]
fn a_summary_holds_no_phone_number() {
    let numbers = [
        "call me on +1 (415) 555-0123 after six",
        "my number is 07700 900123",
        "try 415.555.0123",
        "it's five five five one two three four",
        "+919876543210",
        "98765 43210 is my mobile",
    ];
    for said in numbers {
        let mut f = facts(vec![transfer(TransferMode::Warm, said)]);
        f.slots.insert("need".into(), text(said));
        f.slots.insert(
            "buy_or_rent".into(),
            SlotValue::Choice { value: said.into() },
        );
        f.slots.insert(
            "rating".into(),
            SlotValue::Number {
                value: 4155550123.0,
            },
        );
        let c = classify(&f);
        assert!(
            longest_digit_run(&c.summary) < 7,
            "{said:?}: {:?}",
            c.summary
        );
        assert!(c.summary.contains("[number]"), "{said:?}: {:?}", c.summary);
        assert!(
            !c.summary.contains("five five"),
            "{said:?}: {:?}",
            c.summary
        );
        // The details keep what the caller said: they are the lead's own record.
        assert_eq!(c.details["need"], said, "{said:?}");
    }
    // Short numbers, amounts and times are no phone number.
    let mut f = facts(vec![callback(Some(nov(24, 14, 0)))]);
    f.slots
        .insert("need".into(), text("3 bedrooms, 2 baths, 1200 sq ft"));
    f.slots.insert(
        "budget".into(),
        money(1_500_000.0, Some(2_000_000.0), Some("USD"), None),
    );
    let c = classify(&f);
    assert_eq!(
        c.summary,
        "Need \"3 bedrooms, 2 baths, 1200 sq ft\", budget 1,500,000 to 2,000,000 USD. \
         Asked to be called back on Tue 24 Nov at 14:00."
    );
}

#[test]
fn a_summary_is_bounded_and_cut_at_a_word_keeping_what_the_call_came_to() {
    let long = "word ".repeat(400);
    let mut f = facts(vec![
        qualified(Temperature::Warm, 0.5),
        booked(false),
        transfer(TransferMode::Warm, &"reason ".repeat(100)),
        callback(Some(nov(24, 14, 0))),
        ended("manager_callback"),
    ]);
    for name in ["need", "reason", "area", "liked", "issue", "buy_or_rent"] {
        f.slots.insert(name.into(), text(&long));
    }
    let c = classify(&f);
    assert!(
        c.summary.chars().count() <= MAX_SUMMARY_CHARS,
        "{}",
        c.summary
    );
    assert!(c.summary.starts_with("Qualified warm (score 0.50)."));
    assert!(c.summary.contains("Tried to book"), "{}", c.summary);
    assert!(c.summary.contains("Transferred to a person (warm): reason"));
    assert!(
        c.summary
            .ends_with("Asked for a manager to call back on Tue 24 Nov at 14:00."),
        "{}",
        c.summary
    );
    // Each quoted answer is cut at a word, with an ellipsis.
    assert!(c.summary.contains("\"word word"), "{}", c.summary);
    assert!(c.summary.contains("word…\""), "{}", c.summary);
    assert!(!c.summary.contains("wor…"), "{}", c.summary);

    // Words longer than any room (no space to cut at) are cut inside, and the
    // summary still holds what the call came to.
    let mut giant = facts(vec![transfer(TransferMode::Cold, &"x".repeat(2000))]);
    giant.slots.insert("need".into(), text(&"y".repeat(2000)));
    let c = classify(&giant);
    assert!(
        c.summary.chars().count() <= MAX_SUMMARY_CHARS,
        "{}",
        c.summary
    );
    assert!(c.summary.contains("yyy…\""), "{}", c.summary);
    assert!(
        c.summary.contains("Transferred to a person (cold): xxx"),
        "{}",
        c.summary
    );
    assert!(c.summary.ends_with("x…."), "{}", c.summary);
}

// ------------------------------------------------------------------------- details

#[test]
fn every_kind_of_slot_renders_as_short_text() {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    let long = format!("  {}  ", "a ".repeat(300));
    let cases: Vec<(&str, SlotValue, Option<&str>)> = vec![
        ("yes", SlotValue::YesNo { value: true }, Some("yes")),
        ("no", SlotValue::YesNo { value: false }, Some("no")),
        ("whole number", SlotValue::Number { value: 3.0 }, Some("3")),
        ("fraction", SlotValue::Number { value: 2.5 }, Some("2.5")),
        (
            "two decimals at most",
            SlotValue::Number { value: 1.0 / 3.0 },
            Some("0.33"),
        ),
        (
            "rounds up to whole",
            SlotValue::Number { value: 2.999 },
            Some("3"),
        ),
        ("negative", SlotValue::Number { value: -4.0 }, Some("-4")),
        (
            "tiny negative",
            SlotValue::Number { value: -0.001 },
            Some("0"),
        ),
        (
            "a year stays ungrouped",
            SlotValue::Number { value: 2026.0 },
            Some("2026"),
        ),
        ("not a number", SlotValue::Number { value: f64::NAN }, None),
        (
            "infinite",
            SlotValue::Number {
                value: f64::INFINITY,
            },
            None,
        ),
        (
            "amount",
            money(500_000.0, None, None, None),
            Some("500,000"),
        ),
        ("small amount", money(950.0, None, None, None), Some("950")),
        (
            "with currency",
            money(500_000.0, None, Some("USD"), None),
            Some("500,000 USD"),
        ),
        (
            "range",
            money(400_000.0, Some(500_000.0), Some("GBP"), None),
            Some("400,000 to 500,000 GBP"),
        ),
        (
            "per period",
            money(2_500.0, None, Some("EUR"), Some("month")),
            Some("2,500 EUR per month"),
        ),
        (
            "range and period",
            money(20.0, Some(25.5), Some("USD"), Some("hour")),
            Some("20 to 25.5 USD per hour"),
        ),
        (
            "lakh",
            money(5_000_000.0, None, Some("INR"), None),
            Some("50,00,000 INR"),
        ),
        (
            "crore",
            money(123_456_789.0, None, Some("INR"), None),
            Some("12,34,56,789 INR"),
        ),
        (
            "millions",
            money(1_234_567.89, None, None, None),
            Some("1,234,567.89"),
        ),
        (
            "amount not a number",
            money(f64::NAN, None, Some("USD"), None),
            None,
        ),
        (
            "a top that is no number is left out",
            money(100.0, Some(f64::NAN), None, None),
            Some("100"),
        ),
        (
            "date",
            SlotValue::Date {
                date: d(2026, 11, 24),
            },
            Some("2026-11-24"),
        ),
        (
            "time",
            SlotValue::Time {
                time: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
            },
            Some("14:00"),
        ),
        (
            "morning time",
            SlotValue::Time {
                time: NaiveTime::from_hms_opt(9, 5, 0).unwrap(),
            },
            Some("09:05"),
        ),
        (
            "datetime",
            SlotValue::Datetime { at: nov(24, 14, 0) },
            Some("2026-11-24 14:00"),
        ),
        (
            "right away",
            SlotValue::Timeline {
                within_days: Some(0),
                urgent: true,
            },
            Some("right away (urgent)"),
        ),
        (
            "a day",
            SlotValue::Timeline {
                within_days: Some(1),
                urgent: true,
            },
            Some("within 1 day (urgent)"),
        ),
        (
            "days",
            SlotValue::Timeline {
                within_days: Some(10),
                urgent: false,
            },
            Some("within 10 days"),
        ),
        (
            "weeks",
            SlotValue::Timeline {
                within_days: Some(14),
                urgent: false,
            },
            Some("within 2 weeks"),
        ),
        (
            "a month",
            SlotValue::Timeline {
                within_days: Some(30),
                urgent: false,
            },
            Some("within 1 month"),
        ),
        (
            "months",
            SlotValue::Timeline {
                within_days: Some(183),
                urgent: false,
            },
            Some("within 6 months"),
        ),
        (
            "a year",
            SlotValue::Timeline {
                within_days: Some(405),
                urgent: false,
            },
            Some("within 1 year"),
        ),
        (
            "years",
            SlotValue::Timeline {
                within_days: Some(730),
                urgent: false,
            },
            Some("within 2 years"),
        ),
        (
            "urgent, no horizon",
            SlotValue::Timeline {
                within_days: None,
                urgent: true,
            },
            Some("urgent"),
        ),
        (
            "no horizon",
            SlotValue::Timeline {
                within_days: None,
                urgent: false,
            },
            Some("no set timeline"),
        ),
        (
            "text trimmed",
            text("  near the\n harbour  "),
            Some("near the harbour"),
        ),
        ("empty text", text("   "), None),
        (
            "choice",
            SlotValue::Choice {
                value: "someone_else".into(),
            },
            Some("someone else"),
        ),
        (
            "plain choice",
            SlotValue::Choice {
                value: "rent".into(),
            },
            Some("rent"),
        ),
    ];
    for (name, value, expected) in &cases {
        assert_eq!(detail_text(value).as_deref(), *expected, "{name}");
    }
    // The same through a call's classification, by slot name; values that say nothing
    // are left out.
    let mut f = facts(vec![qualified(Temperature::Warm, 0.5)]);
    for (name, value, _) in &cases {
        f.slots.insert((*name).to_owned(), value.clone());
    }
    let details = classify(&f).details;
    for (name, _, expected) in &cases {
        assert_eq!(details.get(*name).map(String::as_str), *expected, "{name}");
    }
    // Long text is bounded, cut at a word.
    let bounded = detail_text(&text(&long)).unwrap();
    assert!(bounded.chars().count() <= MAX_DETAIL_CHARS, "{bounded}");
    assert!(bounded.ends_with("a…"), "{bounded}");
    assert!(bounded.starts_with("a a a"), "{bounded}");
}

#[test]
fn a_voicemail_or_a_wrong_number_captures_no_details() {
    for (name, mut f) in [
        (
            "machine",
            CallFacts {
                machine: true,
                ..facts(vec![])
            },
        ),
        ("wrong number", facts(vec![ended("wrong_number")])),
        ("voicemail word", facts(vec![ended("voicemail")])),
    ] {
        f.slots
            .insert("need".into(), text("leave a message after the tone"));
        assert!(classify(&f).details.is_empty(), "{name}");
    }
    let mut other = facts(vec![ended("not_interested")]);
    other.slots.insert("need".into(), text("a flat"));
    assert_eq!(classify(&other).details["need"], "a flat");
}

// ----------------------------------------------------------------------- lead status

#[test]
fn every_lead_status_move() {
    use LeadStatus::{ClosedLost, ClosedWon, Contacted, MeetingScheduled, New};
    let from = [
        New,
        Contacted,
        LeadStatus::Qualified,
        MeetingScheduled,
        ClosedWon,
        ClosedLost,
    ];
    let (lost, meet, qual, cont, no) = (
        Some(ClosedLost),
        Some(MeetingScheduled),
        Some(LeadStatus::Qualified),
        Some(Contacted),
        None,
    );
    // For each outcome and `qualified`, the move from each status above, in order.
    type Row = (CallOutcome, bool, [Option<LeadStatus>; 6]);
    let rows: &[Row] = &[
        (Voicemail, false, [no, no, no, no, no, no]),
        (Voicemail, true, [no, no, no, no, no, no]),
        (NotInterested, false, [lost, lost, lost, lost, no, no]),
        (NotInterested, true, [lost, lost, lost, lost, no, no]),
        (WrongNumber, false, [lost, lost, lost, lost, no, no]),
        (WrongNumber, true, [lost, lost, lost, lost, no, no]),
        (AppointmentSet, false, [meet, meet, meet, no, no, no]),
        (AppointmentSet, true, [meet, meet, meet, no, no, no]),
        (Qualified, false, [qual, qual, no, no, no, no]),
        (Qualified, true, [qual, qual, no, no, no, no]),
        (CallbackRequested, false, [cont, no, no, no, no, no]),
        (CallbackRequested, true, [qual, qual, no, no, no, no]),
        (Escalated, false, [cont, no, no, no, no, no]),
        (Escalated, true, [qual, qual, no, no, no, no]),
        (FeedbackGiven, false, [cont, no, no, no, no, no]),
        (FeedbackGiven, true, [qual, qual, no, no, no, no]),
        (Incomplete, false, [cont, no, no, no, no, no]),
        (Incomplete, true, [qual, qual, no, no, no, no]),
    ];
    let all = [
        Voicemail,
        NotInterested,
        WrongNumber,
        AppointmentSet,
        Qualified,
        CallbackRequested,
        Escalated,
        FeedbackGiven,
        Incomplete,
    ];
    for outcome in all {
        for flag in [false, true] {
            assert!(
                rows.iter().any(|(o, f, _)| *o == outcome && *f == flag),
                "no row for {outcome:?} {flag}"
            );
        }
    }
    for (outcome, flag, expected) in rows {
        for (current, want) in from.iter().zip(expected) {
            assert_eq!(
                next_status(*current, *outcome, *flag),
                *want,
                "{current:?} after {outcome:?} (qualified: {flag})"
            );
        }
    }
}

#[test]
fn the_facts_say_whether_the_lead_was_qualified() {
    assert!(facts(vec![qualified(Temperature::Cold, 0.1)]).qualified());
    assert!(!facts(vec![ended("qualified"), booked(true)]).qualified());
    // As a host uses it: a callback after qualification moves a new lead to qualified.
    let f = facts(vec![qualified(Temperature::Warm, 0.5), callback(None)]);
    let c = classify(&f);
    assert_eq!(
        next_status(LeadStatus::New, c.outcome, f.qualified()),
        Some(LeadStatus::Qualified)
    );
}

#[test]
fn a_models_summary_and_details_are_made_safe_for_the_history() {
    use parley_shared::outcome::{MAX_DETAIL_CHARS, MAX_SUMMARY_CHARS, safe_detail, safe_summary};
    assert_eq!(
        safe_summary("Ana wants a viewing.\nCall her on +1 415 555 0123 after 5."),
        "Ana wants a viewing. Call her on [number] after 5."
    );
    let long = "word ".repeat(300);
    assert!(safe_summary(&long).chars().count() <= MAX_SUMMARY_CHARS);
    assert!(safe_summary(&long).ends_with('…'));
    assert_eq!(safe_detail("  500k  "), Some("500k".into()));
    assert_eq!(safe_detail(" \n "), None);
    assert!(safe_detail(&long).unwrap().chars().count() <= MAX_DETAIL_CHARS);
}
