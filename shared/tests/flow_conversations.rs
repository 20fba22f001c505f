//! Whole conversations with each shipped flow and no language model: the caller's lines
//! in, the agent's lines (checked by their key words) and the fired actions out.

use chrono::{NaiveDate, NaiveDateTime};
use parley_shared::domain::agent::{Span, Week};
use parley_shared::flow::{Context, FiredAction, Flow, FlowRun, Heard, Industry, SlotValue, Step};

/// Saturday 21 November 2026, 10:00 in the tenant's zone: "next tuesday" is the 24th.
fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

/// One turn: what the caller says (`#digits` for keys) and what must come back: each
/// agent line as words it must contain, and the fired actions in short form.
struct Turn {
    caller: &'static str,
    lines: &'static [&'static [&'static str]],
    actions: &'static [&'static str],
}

const fn t(
    caller: &'static str,
    lines: &'static [&'static [&'static str]],
    actions: &'static [&'static str],
) -> Turn {
    Turn {
        caller,
        lines,
        actions,
    }
}

struct Conversation<'a> {
    name: &'static str,
    industry: Industry,
    direction: &'static str,
    opening: &'static [&'static [&'static str]],
    turns: &'a [Turn],
    /// Whether the flow is over after the last turn.
    ended: bool,
}

/// An action in a line: what a test can compare.
fn short(a: &FiredAction) -> String {
    match a {
        FiredAction::Qualify { slots } => {
            let values: Vec<String> = slots
                .iter()
                .map(|(name, v)| format!("{name}={}", slot(v)))
                .collect();
            format!("qualify {}", values.join(" "))
        }
        FiredAction::Book {
            title,
            at,
            duration_minutes,
            kind,
            ..
        } => format!(
            "book {} {duration_minutes}min {} {title}",
            at.format("%Y-%m-%d %H:%M"),
            serde_json::to_value(kind).unwrap().as_str().unwrap()
        ),
        FiredAction::Transfer { mode, reason } => format!(
            "transfer {} {reason}",
            serde_json::to_value(mode).unwrap().as_str().unwrap()
        ),
        FiredAction::End { outcome } => format!("end {}", outcome.as_deref().unwrap_or("-")),
        FiredAction::SendConfirmation { channel, at, .. } => format!(
            "send_confirmation {} {}",
            serde_json::to_value(channel).unwrap().as_str().unwrap(),
            at.map(|a| a.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into())
        ),
        FiredAction::Callback { at } => format!(
            "callback {}",
            at.map(|a| a.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "asap".into())
        ),
    }
}

/// A collected value with its kind, whole: `money:500000 USD`, `timeline:92 urgent`.
fn slot(v: &SlotValue) -> String {
    let at = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M").to_string();
    match v {
        SlotValue::YesNo { value } => format!("yes_no:{}", if *value { "yes" } else { "no" }),
        SlotValue::Number { value } => format!("number:{value}"),
        SlotValue::Money {
            amount,
            up_to,
            currency,
            per,
        } => {
            let mut s = format!("money:{amount}");
            if let Some(up) = up_to {
                s.push_str(&format!("-{up}"));
            }
            s.push_str(&format!(" {}", currency.as_deref().unwrap_or("-")));
            if let Some(per) = per {
                s.push_str(&format!(" per {per}"));
            }
            s
        }
        SlotValue::Date { date } => format!("date:{date}"),
        SlotValue::Time { time } => format!("time:{}", time.format("%H:%M")),
        SlotValue::Datetime { at: t } => format!("datetime:{}", at(t)),
        SlotValue::Timeline {
            within_days,
            urgent,
        } => format!(
            "timeline:{} {}",
            within_days.map_or("-".to_string(), |d| d.to_string()),
            if *urgent { "urgent" } else { "not_urgent" }
        ),
        SlotValue::Text { value } => format!("text:{value:?}"),
        SlotValue::Choice { value } => format!("choice:{value}"),
    }
}

fn check_lines(context: &str, step: &Step, expected: &[&[&str]]) {
    assert_eq!(
        step.say.len(),
        expected.len(),
        "{context}: the agent said {:?}",
        step.say
    );
    for (line, words) in step.say.iter().zip(expected) {
        let lower = line.to_lowercase();
        for w in *words {
            assert!(
                lower.contains(&w.to_lowercase()),
                "{context}: {line:?} should contain {w:?}"
            );
        }
        // Written for speech: no braces, markup or leftover placeholders.
        assert!(
            !line.contains(['{', '}', '*', '#', '<', '>', '_']),
            "{context}: {line:?} is not speakable"
        );
    }
}

fn run(c: &Conversation<'_>) -> FlowRun {
    run_in(c, Week::default())
}

/// `c` with appointments only within `hours`.
fn run_in(c: &Conversation<'_>, hours: Week) -> FlowRun {
    let context = Context::new(now())
        .with_hours(hours)
        .with("tenant_name", "Harbour Homes")
        .with("agent_name", "Riley")
        .with("lead_name", "Sam")
        .with("direction", c.direction);
    let (mut run, opening) = FlowRun::start(Flow::default_for(c.industry), context);
    check_lines(&format!("{}: opening", c.name), &opening, c.opening);
    assert!(
        opening.actions.is_empty(),
        "{}: {:?}",
        c.name,
        opening.actions
    );
    for (i, turn) in c.turns.iter().enumerate() {
        let heard = match turn.caller.strip_prefix('#') {
            Some(keys) => Heard::keys(keys),
            None => Heard::said(turn.caller),
        };
        let context = format!("{}: turn {} ({:?})", c.name, i + 1, turn.caller);
        assert!(!run.ended(), "{context}: the flow ended too early");
        let step = run.hear(&heard, now());
        check_lines(&context, &step, turn.lines);
        let actions: Vec<String> = step.actions.iter().map(short).collect();
        assert_eq!(actions, turn.actions, "{context}");
    }
    assert_eq!(run.ended(), c.ended, "{}: ended", c.name);
    run
}

const SORRY: &[&str] = &["sorry", "didn't catch"];
const SORRY_AGAIN: &[&str] = &["sorry", "still"];

#[test]
fn real_estate_inbound_books_a_viewing_for_next_tuesday_at_two_pm() {
    let c = Conversation {
        name: "real estate inbound",
        industry: Industry::RealEstate,
        direction: "inbound",
        opening: &[&["Harbour Homes", "Riley", "buy or to rent"]],
        turns: &[
            t("hi, yeah, I'd like to rent a place", &[&["area"]], &[]),
            t("somewhere near the harbour", &[&["budget"]], &[]),
            t("about five hundred thousand", &[&["move"]], &[]),
            t("within three months", &[&["decision", "someone else"]], &[]),
            t(
                "me and my wife",
                &[&["viewing"]],
                &[concat!(
                    "qualify area=text:\"somewhere near the harbour\" budget=money:500000 - ",
                    "buy_or_rent=choice:rent decision_maker=choice:shared ",
                    "timeline=timeline:92 urgent"
                )],
            ),
            t("yes please", &[&["day and time"]], &[]),
            t(
                "next tuesday at two pm",
                &[&["Tuesday, November 24th at 2 pm", "book"]],
                &[],
            ),
            t(
                "yes that's right",
                &[&["booked", "Tuesday, November 24th at 2 pm", "text", "Sam"]],
                &[
                    "book 2026-11-24 14:00 30min in_person Property viewing for Sam",
                    "send_confirmation sms 2026-11-24 14:00",
                    "end viewing_booked",
                ],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    let slots = r.slots();
    assert_eq!(
        slots["buy_or_rent"],
        SlotValue::Choice {
            value: "rent".into()
        }
    );
    assert_eq!(
        slots["decision_maker"],
        SlotValue::Choice {
            value: "shared".into()
        }
    );
    // "about five hundred thousand": no currency named, for the tenant's default.
    assert_eq!(
        slots["budget"],
        SlotValue::Money {
            amount: 500_000.0,
            up_to: None,
            currency: None,
            per: None
        }
    );
    // "within three months" from 21 November: to 21 February, 92 days.
    assert_eq!(
        slots["timeline"],
        SlotValue::Timeline {
            within_days: Some(92),
            urgent: true
        }
    );
}

#[test]
fn real_estate_outbound_answers_an_aside_reprompts_and_hands_over_when_asked() {
    let c = Conversation {
        name: "real estate outbound",
        industry: Industry::RealEstate,
        direction: "outbound",
        opening: &[&["Hi Sam", "Riley", "Harbour Homes", "couple of minutes"]],
        turns: &[
            // An aside: answered, then the question again; not a miss.
            t(
                "sorry, who's calling?",
                &[&["This is Riley", "Harbour Homes"], &["good time"]],
                &[],
            ),
            t("yeah sure go ahead", &[&["buy or to rent"]], &[]),
            t("I don't want to rent, I want to buy", &[&["area"]], &[]),
            t("uh", &[SORRY, &["which area"]], &[]),
            t("the east side", &[&["budget"]], &[]),
            // No figure yet is an answer, not a miss.
            t("honestly I'm not sure yet", &[&["move"]], &[]),
            // A season names no horizon, but it is an answer.
            t("probably in the spring", &[&["decision"]], &[]),
            t(
                "hmm can I just speak to a real person please",
                &[&["connect you"]],
                &["transfer warm asked_for_person"],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(
        r.slots()["buy_or_rent"],
        SlotValue::Choice {
            value: "buy".into()
        }
    );
    assert!(!r.slots().contains_key("budget"));
    assert!(!r.slots().contains_key("timeline"));
}

#[test]
fn real_estate_gives_up_gracefully_after_three_misunderstandings() {
    let c = Conversation {
        name: "real estate misunderstood",
        industry: Industry::RealEstate,
        direction: "inbound",
        opening: &[&["buy or to rent"]],
        turns: &[
            t("buy", &[&["area"]], &[]),
            t("downtown", &[&["budget"]], &[]),
            t(
                "banana",
                &[SORRY, &["price range", "five hundred thousand"]],
                &[],
            ),
            t("purple", &[SORRY_AGAIN, &["price range"]], &[]),
            t(
                "elephant",
                &[&["trouble understanding", "colleague"]],
                &["transfer warm not_understood"],
            ),
        ],
        ended: true,
    };
    run(&c);
}

#[test]
fn real_estate_transfers_an_emergency_at_once() {
    let c = Conversation {
        name: "real estate emergency",
        industry: Industry::RealEstate,
        direction: "inbound",
        opening: &[&["buy or to rent"]],
        turns: &[
            t("rent", &[&["area"]], &[]),
            t(
                "oh my god there's a fire in the kitchen",
                &[&["emergency number", "connecting you"]],
                &["transfer cold emergency"],
            ),
        ],
        ended: true,
    };
    run(&c);
}

#[test]
fn real_estate_outbound_not_now_schedules_a_callback() {
    let c = Conversation {
        name: "real estate callback",
        industry: Industry::RealEstate,
        direction: "outbound",
        opening: &[&["couple of minutes"]],
        turns: &[
            t("I'm driving right now", &[&["better time"]], &[]),
            t(
                "tomorrow at 10 am",
                &[&["call you tomorrow at 10 am"]],
                &["callback 2026-11-22 10:00", "end callback_requested"],
            ),
        ],
        ended: true,
    };
    run(&c);
}

#[test]
fn real_estate_not_interested_ends_politely() {
    let c = Conversation {
        name: "real estate not interested",
        industry: Industry::RealEstate,
        direction: "outbound",
        opening: &[&["couple of minutes"]],
        turns: &[t(
            "sorry, we already found a place",
            &[&["understand", "great day"]],
            &["end not_interested"],
        )],
        ended: true,
    };
    run(&c);
}

#[test]
fn guest_relations_keypad_five_hears_what_went_well() {
    let c = Conversation {
        name: "guest relations high score",
        industry: Industry::GuestRelations,
        direction: "outbound",
        opening: &[
            &["Hi Sam", "Riley", "Harbour Homes"],
            &["one to five", "press a key"],
        ],
        turns: &[
            t("#5", &[&["wonderful", "enjoy"]], &[]),
            t(
                "the breakfast and the view from the room",
                &[&["lovely", "goodbye"]],
                &["end positive_feedback"],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(r.slots()["rating"], SlotValue::Number { value: 5.0 });
    assert_eq!(
        r.slots()["liked"],
        SlotValue::Text {
            value: "the breakfast and the view from the room".into()
        }
    );
}

#[test]
fn guest_relations_low_score_offers_the_managers_callback() {
    let c = Conversation {
        name: "guest relations low score",
        industry: Industry::GuestRelations,
        direction: "inbound",
        opening: &[&["Harbour Homes", "feedback"], &["one to five"]],
        turns: &[
            // Out of range: asked again, with the range.
            t("ten", &[SORRY, &["one to five"]], &[]),
            t("I'd say a two", &[&["sorry", "done better"]], &[]),
            // A complaint is feedback here: the flow's own escalation intent replaces the
            // built-in one, so this is the answer, not a transfer.
            t(
                "I want to make a complaint, the room was cold",
                &[&["manager", "press 1"]],
                &[],
            ),
            t("#1", &[&["when", "manager"]], &[]),
            t(
                "monday at 3 pm",
                &[&["manager will call you", "Monday, November 23rd at 3 pm"]],
                &["callback 2026-11-23 15:00", "end manager_callback"],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(r.slots()["rating"], SlotValue::Number { value: 2.0 });
    assert_eq!(
        r.slots()["wants_callback"],
        SlotValue::YesNo { value: true }
    );
}

#[test]
fn guest_relations_words_for_a_score_and_keypad_no() {
    let c = Conversation {
        name: "guest relations words",
        industry: Industry::GuestRelations,
        direction: "outbound",
        opening: &[&["Sam"], &["one to five"]],
        turns: &[
            t("honestly it was awful", &[&["done better"]], &[]),
            t("nobody cleaned the room", &[&["manager"]], &[]),
            t(
                "#2",
                &[&["passed your comments"]],
                &["end negative_feedback"],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(r.slots()["rating"], SlotValue::Number { value: 1.0 });
}

#[test]
fn guest_relations_legal_threat_goes_to_a_manager() {
    let c = Conversation {
        name: "guest relations escalation",
        industry: Industry::GuestRelations,
        direction: "outbound",
        opening: &[&["Sam"], &["one to five"]],
        turns: &[
            t("1", &[&["done better"]], &[]),
            t(
                "I'm talking to my lawyer about this",
                &[&["manager on the line"]],
                &["transfer warm escalation"],
            ),
        ],
        ended: true,
    };
    run(&c);
}

#[test]
fn appointments_asks_for_the_time_when_only_a_day_is_given_and_books() {
    let c = Conversation {
        name: "appointments piecewise",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["Harbour Homes", "Riley", "what is it for"]],
        turns: &[
            t("a dental cleaning", &[&["day and time"]], &[]),
            t(
                "next tuesday",
                &[&["what time", "Tuesday, November 24th"]],
                &[],
            ),
            t(
                "at two pm",
                &[&["Tuesday, November 24th at 2 pm", "book", "press 1"]],
                &[],
            ),
            t(
                "#1",
                &[&["all set", "Tuesday, November 24th at 2 pm", "text"]],
                &[
                    "book 2026-11-24 14:00 30min in_person Appointment: a dental cleaning",
                    "send_confirmation sms 2026-11-24 14:00",
                    "end booked",
                ],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(r.slots()["confirmed"], SlotValue::YesNo { value: true });
}

#[test]
fn appointments_asks_for_the_day_when_only_a_time_is_given_and_books() {
    let c = Conversation {
        name: "appointments time first",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[
            t("a dental cleaning", &[&["day and time"]], &[]),
            // Half an answer: asked for the other half, not a miss.
            t("two pm", &[&["which day"]], &[]),
            t(
                "next tuesday",
                &[&["Tuesday, November 24th at 2 pm", "book", "press 1"]],
                &[],
            ),
            t(
                "#1",
                &[&["all set", "Tuesday, November 24th at 2 pm", "text"]],
                &[
                    "book 2026-11-24 14:00 30min in_person Appointment: a dental cleaning",
                    "send_confirmation sms 2026-11-24 14:00",
                    "end booked",
                ],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(
        r.slots()["appointment_time"],
        SlotValue::Datetime {
            at: NaiveDate::from_ymd_opt(2026, 11, 24)
                .unwrap()
                .and_hms_opt(14, 0, 0)
                .unwrap()
        }
    );
    assert_eq!(r.misunderstood_in_a_row(), 0);
}

#[test]
fn appointments_another_time_after_a_no_and_a_past_time_refused() {
    let c = Conversation {
        name: "appointments rebook",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[
            t("sorry, what?", &[&["of course"], &["appointment for"]], &[]),
            t("my annual checkup", &[&["day and time"]], &[]),
            t(
                "today at 9 am",
                &[&["already passed"], &["which day and time"]],
                &[],
            ),
            t("tomorrow at noon", &[&["tomorrow at noon", "book"]], &[]),
            t(
                "no, actually that doesn't work",
                &[&["no problem", "work better"]],
                &[],
            ),
            t(
                "friday at 10 am",
                &[&["Friday, November 27th at 10 am"]],
                &[],
            ),
            t(
                "yes",
                &[&["all set", "Friday, November 27th at 10 am"]],
                &[
                    "book 2026-11-27 10:00 30min in_person Appointment: my annual checkup",
                    "send_confirmation sms 2026-11-27 10:00",
                    "end booked",
                ],
            ),
        ],
        ended: true,
    };
    run(&c);
}

/// Monday to Friday, 9 to 5.
fn office_hours() -> Week {
    let day = vec![Span {
        open: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        close: chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
    }];
    Week {
        monday: day.clone(),
        tuesday: day.clone(),
        wednesday: day.clone(),
        thursday: day.clone(),
        friday: day,
        ..Week::default()
    }
}

#[test]
fn appointments_a_closed_time_is_refused_with_the_nearest_open_one_offered() {
    let c = Conversation {
        name: "appointments within hours",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[
            t("a dental cleaning", &[&["day and time"]], &[]),
            // Sunday: closed all day; Monday's opening is offered.
            t(
                "tomorrow at 10 am",
                &[&["closed"], &["nearest", "Monday, November 23rd at 9 am"]],
                &[],
            ),
            // Turned down: the question again.
            t("no", &[&["all right"], &["day and time"]], &[]),
            // After closing on Tuesday: Wednesday morning is offered, and taken.
            t(
                "next tuesday at 8 pm",
                &[&["closed"], &["Wednesday, November 25th at 9 am"]],
                &[],
            ),
            t(
                "yes please",
                &[&["Wednesday, November 25th at 9 am", "book"]],
                &[],
            ),
            t(
                "#1",
                &[&["all set", "Wednesday, November 25th at 9 am"]],
                &[
                    "book 2026-11-25 09:00 30min in_person Appointment: a dental cleaning",
                    "send_confirmation sms 2026-11-25 09:00",
                    "end booked",
                ],
            ),
        ],
        ended: true,
    };
    run_in(&c, office_hours());
    // An open time is taken as said, with no offer.
    let open = Conversation {
        name: "appointments open time",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[
            t("a checkup", &[&["day and time"]], &[]),
            t(
                "monday at 4 pm",
                &[&["Monday, November 23rd at 4 pm", "book"]],
                &[],
            ),
        ],
        ended: false,
    };
    run_in(&open, office_hours());
}

#[test]
fn appointments_changes_go_to_the_front_desk_and_people_are_reached() {
    let reschedule = Conversation {
        name: "appointments reschedule",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[t(
            "I need to reschedule my cleaning",
            &[&["front desk"]],
            &["transfer cold change_booking"],
        )],
        ended: true,
    };
    run(&reschedule);
    let person = Conversation {
        name: "appointments operator key",
        industry: Industry::Appointments,
        direction: "inbound",
        opening: &[&["what is it for"]],
        turns: &[
            t("a haircut", &[&["day and time"]], &[]),
            t(
                "#0",
                &[&["connect you"]],
                &["transfer warm asked_for_person"],
            ),
        ],
        ended: true,
    };
    run(&person);
}

#[test]
fn lead_qualification_outbound_hot_lead_books_a_meeting() {
    let c = Conversation {
        name: "lead qualification hot",
        industry: Industry::LeadQualification,
        direction: "outbound",
        opening: &[&["Hi Sam", "Riley", "Harbour Homes", "quick questions"]],
        turns: &[
            t("sure, go ahead", &[&["what problem"]], &[]),
            t("our support team is drowning in calls", &[&["budget"]], &[]),
            t("around fifty thousand dollars", &[&["signs off"]], &[]),
            t("yes I do", &[&["get started"]], &[]),
            t(
                "as soon as possible",
                &[&["specialists"]],
                &[concat!(
                    "qualify budget=money:50000 USD decision_maker=yes_no:yes ",
                    "good_time=yes_no:yes need=text:\"our support team is drowning in calls\" ",
                    "timeline=timeline:0 urgent"
                )],
            ),
            t("yes that would be great", &[&["day and time"]], &[]),
            t(
                "tomorrow morning at 9",
                &[&["tomorrow at 9 am", "book"]],
                &[],
            ),
            t(
                "yep",
                &[&["booked", "tomorrow at 9 am"]],
                &[
                    "book 2026-11-22 09:00 30min phone Call with Sam",
                    "send_confirmation sms 2026-11-22 09:00",
                    "end meeting_booked",
                ],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    let slots = r.slots();
    assert_eq!(
        slots["budget"],
        SlotValue::Money {
            amount: 50_000.0,
            up_to: None,
            currency: Some("USD".into()),
            per: None
        }
    );
    assert_eq!(slots["decision_maker"], SlotValue::YesNo { value: true });
    assert_eq!(
        slots["timeline"],
        SlotValue::Timeline {
            within_days: Some(0),
            urgent: true
        }
    );
}

#[test]
fn lead_qualification_inbound_without_budget_or_authority_is_nurtured() {
    let c = Conversation {
        name: "lead qualification nurture",
        industry: Industry::LeadQualification,
        direction: "inbound",
        opening: &[&["Harbour Homes", "help with"]],
        turns: &[
            t("we want a new website", &[&["budget"]], &[]),
            t("not sure yet", &[&["signs off"]], &[]),
            // The intent answers the slot: "yeah" does not make the caller the one.
            t(
                "yeah, it's really my boss who decides",
                &[&["get started"]],
                &[],
            ),
            t(
                "probably next year",
                &[&["email", "goodbye"]],
                &[
                    concat!(
                        "qualify decision_maker=yes_no:no need=text:\"we want a new website\" ",
                        "timeline=timeline:405 not_urgent"
                    ),
                    "end nurture",
                ],
            ),
        ],
        ended: true,
    };
    let r = run(&c);
    assert_eq!(
        r.slots()["decision_maker"],
        SlotValue::YesNo { value: false }
    );
    assert!(!r.slots().contains_key("budget"));
}

#[test]
fn lead_qualification_stop_calling_ends_the_call() {
    let c = Conversation {
        name: "lead qualification do not call",
        industry: Industry::LeadQualification,
        direction: "outbound",
        opening: &[&["quick questions"]],
        turns: &[t(
            "please stop calling me",
            &[&["won't call you again"]],
            &["end do_not_call"],
        )],
        ended: true,
    };
    run(&c);
}
