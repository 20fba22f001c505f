//! Turn-taking, given what happened, then what the session is asked to do.

use parley_media::conversation::{
    Action, Conversation, EndReason, Input, Note, Settings, Speaker, speakable_prefix,
};
use parley_media::llm::{Message, ToolCall};

fn settings() -> Settings {
    Settings {
        system_prompt: Some("You are a receptionist.".into()),
        max_turns: 5,
        max_call_ms: 60_000,
        ..Settings::new("Hello, how can I help?")
    }
}

fn says(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { mark, text } => Some((mark.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

fn think(actions: &[Action]) -> Option<Vec<Message>> {
    actions.iter().find_map(|a| match a {
        Action::Think(context) => Some(context.clone()),
        _ => None,
    })
}

fn user(text: &str) -> Message {
    Message::User {
        content: text.into(),
    }
}

fn agent(text: &str) -> Message {
    Message::Assistant {
        content: text.into(),
        tool_calls: vec![],
    }
}

fn words(text: &str, end: bool) -> Input {
    Input::Transcript {
        text: text.into(),
        end_of_speech: end,
    }
}

fn played(mark: &str) -> Input {
    Input::Played { mark: mark.into() }
}

/// A conversation whose greeting has played.
fn greeted() -> Conversation {
    let mut c = Conversation::new(settings());
    let out = c.handle(0, Input::Started);
    assert_eq!(
        says(&out),
        vec![("m1".into(), "Hello, how can I help?".into())]
    );
    assert!(c.handle(1_500, played("m1")).is_empty());
    c
}

/// The caller says `text` from `at` for a second; the turn ends on the detector's
/// silence after the recogniser's words.
fn caller_says(c: &mut Conversation, at: u64, text: &str) -> Vec<Action> {
    let mut out = c.handle(at, Input::SpeechStarted);
    out.extend(c.handle(at + 900, words(text, false)));
    out.extend(c.handle(at + 1_500, Input::SpeechEnded));
    out
}

#[test]
fn the_greeting_is_spoken_at_once_and_enters_the_context_when_it_has_played() {
    let c = greeted();
    assert_eq!(
        c.context(),
        [
            Message::System {
                content: "You are a receptionist.".into()
            },
            agent("Hello, how can I help?")
        ]
    );
    assert_eq!(c.transcript()[0].speaker, Speaker::Agent);
    assert_eq!(c.transcript()[0].end_ms, 1_500);
}

#[test]
fn the_callers_turn_ends_on_silence_after_settled_words_and_the_brain_is_asked() {
    let mut c = greeted();
    let out = caller_says(&mut c, 2_000, "I need a plumber");
    let context = think(&out).expect("the brain is asked");
    assert_eq!(context.last(), Some(&user("I need a plumber")));
    let turn = &c.transcript()[1];
    assert_eq!(
        (turn.speaker, turn.start_ms, turn.end_ms),
        (Speaker::Caller, 2_000, 3_500)
    );
}

#[test]
fn silence_without_words_ends_no_turn_but_the_recognisers_end_does_when_the_detector_missed_it() {
    let mut c = greeted();
    c.handle(2_000, Input::SpeechStarted);
    assert!(think(&c.handle(2_600, Input::SpeechEnded)).is_none());
    // Quiet speech the detector did not catch: the recogniser's end of speech ends it.
    let out = c.handle(4_000, words("yes please", true));
    assert_eq!(think(&out).unwrap().last(), Some(&user("yes please")));
}

#[test]
fn the_answer_is_spoken_sentence_by_sentence_as_it_streams_and_kept_once_played() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "When are you open?");
    assert!(says(&c.handle(3_600, Input::ReplyText("We are open ".into()))).is_empty());
    let out = c.handle(3_610, Input::ReplyText("nine to five. On Satur".into()));
    assert_eq!(
        says(&out),
        vec![("m2".into(), "We are open nine to five.".into())]
    );
    let out = c.handle(3_620, Input::ReplyText("days we close at noon".into()));
    assert!(says(&out).is_empty());
    let out = c.handle(3_630, Input::ReplyDone);
    assert_eq!(
        says(&out),
        vec![("m3".into(), "On Saturdays we close at noon".into())]
    );
    c.handle(5_000, played("m2"));
    assert_eq!(c.context().last(), Some(&user("When are you open?")));
    c.handle(7_000, played("m3"));
    assert_eq!(
        c.context().last(),
        Some(&agent(
            "We are open nine to five. On Saturdays we close at noon"
        ))
    );
    // Listening again: the next turn asks the brain again.
    assert!(think(&caller_says(&mut c, 8_000, "Thanks")).is_some());
}

#[test]
fn a_barge_in_clears_the_carrier_cancels_the_answer_and_keeps_only_what_was_heard() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Tell me about pricing");
    c.handle(
        3_600,
        Input::ReplyText("Our basic plan is ten dollars. ".into()),
    );
    c.handle(
        3_700,
        Input::ReplyText("The premium plan is twenty. ".into()),
    );
    c.handle(5_000, played("m2"));
    let out = c.handle(5_500, Input::SpeechStarted);
    assert_eq!(
        out,
        vec![
            Action::Clear,
            Action::CancelReply,
            Action::Note(Note::BargeIn { at_ms: 5_500 })
        ]
    );
    assert_eq!(
        c.context().last(),
        Some(&agent("Our basic plan is ten dollars."))
    );
    let turn = c.transcript().last().unwrap();
    assert!(turn.interrupted);
    assert_eq!(turn.text, "Our basic plan is ten dollars.");
    // The cleared mark echoes back later: it was never heard and changes nothing.
    c.handle(5_510, played("m3"));
    assert_eq!(
        c.context().last(),
        Some(&agent("Our basic plan is ten dollars."))
    );
    // Late text of the cancelled answer is dropped.
    assert!(
        c.handle(5_520, Input::ReplyText("And more. ".into()))
            .is_empty()
    );
    let out = caller_says(&mut c, 5_500, "What about the premium one");
    assert_eq!(
        think(&out).unwrap().last(),
        Some(&user("What about the premium one"))
    );
}

#[test]
fn the_caller_talking_over_the_greeting_clears_it_and_nothing_unheard_is_kept() {
    let mut c = Conversation::new(settings());
    c.handle(0, Input::Started);
    let out = c.handle(400, Input::SpeechStarted);
    assert_eq!(out[..2], [Action::Clear, Action::CancelReply]);
    assert_eq!(c.context().len(), 1, "only the system prompt");
    assert!(c.transcript().is_empty());
}

#[test]
fn speech_before_any_of_the_answer_played_takes_the_answer_back_and_joins_the_turn() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "I want to book");
    c.handle(3_550, Input::ReplyText("Sure".into()));
    let out = c.handle(3_600, Input::SpeechStarted);
    assert_eq!(
        out,
        vec![Action::CancelReply],
        "nothing was sent: no clear, no barge-in"
    );
    c.handle(4_200, words("a table for two", false));
    let out = c.handle(4_800, Input::SpeechEnded);
    let context = think(&out).unwrap();
    assert_eq!(
        context.last(),
        Some(&user("I want to book a table for two"))
    );
    assert_eq!(context.len(), 3, "system, greeting, one caller turn");
    assert_eq!(c.turns(), 1);
}

#[test]
fn a_late_final_after_the_turn_ended_joins_it_and_asks_again() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "I'd like to book");
    let out = c.handle(3_700, words("an appointment", true));
    assert_eq!(out[0], Action::CancelReply);
    assert_eq!(
        think(&out).unwrap().last(),
        Some(&user("I'd like to book an appointment"))
    );
}

#[test]
fn keys_reach_the_brain_after_a_gap_or_at_hash() {
    let mut c = greeted();
    c.handle(2_000, Input::Dtmf('4'));
    c.handle(2_300, Input::Dtmf('2'));
    assert!(think(&c.handle(3_000, Input::Tick)).is_none());
    let out = c.handle(3_900, Input::Tick);
    assert_eq!(
        think(&out).unwrap().last(),
        Some(&user("(the caller pressed the keys 42)"))
    );
    assert_eq!(c.transcript().last().unwrap().dtmf, "42");

    let mut c = greeted();
    c.handle(2_000, Input::Dtmf('1'));
    let out = c.handle(2_100, Input::Dtmf('#'));
    assert_eq!(
        think(&out).unwrap().last(),
        Some(&user("(the caller pressed the keys 1#)"))
    );
}

#[test]
fn the_longest_call_ends_with_a_goodbye_and_a_hangup_once_it_has_played() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Tell me everything");
    c.handle(
        3_600,
        Input::ReplyText("Well, it started long ago. ".into()),
    );
    let out = c.handle(60_000, Input::Tick);
    assert_eq!(out[..2], [Action::Clear, Action::CancelReply]);
    assert_eq!(
        says(&out),
        vec![("m3".into(), "Thank you for your time. Goodbye.".into())]
    );
    // Caller speech no longer interrupts the goodbye.
    assert!(c.handle(60_500, Input::SpeechStarted).is_empty());
    let out = c.handle(62_000, played("m3"));
    assert_eq!(out, vec![Action::Hangup(EndReason::MaxDuration)]);
    assert!(c.is_ended());
    assert!(c.handle(62_100, Input::Tick).is_empty());
}

#[test]
fn a_goodbye_that_never_plays_still_ends_the_call() {
    let mut c = greeted();
    c.handle(60_000, Input::Tick);
    assert!(c.handle(70_000, Input::Tick).is_empty());
    assert_eq!(
        c.handle(75_000, Input::Tick),
        vec![Action::Hangup(EndReason::MaxDuration)]
    );
}

#[test]
fn the_last_turn_allowed_is_answered_with_goodbye_instead_of_the_brain() {
    let mut c = greeted();
    for turn in 0..4 {
        let at = 2_000 + turn * 10_000;
        assert!(think(&caller_says(&mut c, at, "and another thing")).is_some());
        c.handle(at + 1_600, Input::ReplyText("Noted.".into()));
        c.handle(at + 1_700, Input::ReplyDone);
        c.handle(at + 2_500, played(&format!("m{}", turn + 2)));
    }
    let out = caller_says(&mut c, 50_000, "one more");
    assert!(think(&out).is_none());
    let (mark, text) = says(&out).pop().unwrap();
    assert_eq!(text, "Thank you for your time. Goodbye.");
    assert_eq!(
        c.handle(52_000, played(&mark)),
        vec![Action::Hangup(EndReason::MaxTurns)]
    );
    assert_eq!(c.turns(), 5);
}

#[test]
fn a_brain_that_fails_is_followed_by_a_spoken_apology_and_a_clean_end() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Hello?");
    let out = c.handle(3_000, Input::ReplyFailed);
    let (mark, text) = says(&out).pop().unwrap();
    assert!(text.starts_with("I'm sorry"));
    assert_eq!(
        c.handle(5_000, played(&mark)),
        vec![Action::Hangup(EndReason::VendorFailed)]
    );
}

#[test]
fn a_voice_that_cannot_speak_the_apology_ends_the_call_at_once() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Hello?");
    let out = c.handle(3_000, Input::ReplyText("Hi there. ".into()));
    let out = c.handle(
        3_100,
        Input::VoiceFailed {
            mark: says(&out)[0].0.clone(),
        },
    );
    let (mark, _) = says(&out).pop().unwrap();
    assert_eq!(
        c.handle(3_200, Input::VoiceFailed { mark }),
        vec![Action::Hangup(EndReason::VendorFailed)]
    );
}

#[test]
fn tool_calls_enter_the_context_in_order_and_the_transcript_keeps_them() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Book me in for Monday");
    let out = c.handle(3_600, Input::ReplyText("Let me check. ".into()));
    c.handle(4_000, played(&says(&out)[0].0));
    let call = ToolCall {
        id: "call_1".into(),
        name: "check_calendar".into(),
        arguments: r#"{"day":"monday"}"#.into(),
    };
    let out = c.handle(
        4_100,
        Input::ToolUsed {
            call: call.clone(),
            result: r#"{"free":["10:00"]}"#.into(),
        },
    );
    assert_eq!(
        out,
        vec![Action::Note(Note::ToolCalled {
            name: "check_calendar".into(),
            ok: true
        })]
    );
    let out = c.handle(4_500, Input::ReplyText("Ten o'clock is free.".into()));
    let out = [out, c.handle(4_600, Input::ReplyDone)].concat();
    c.handle(6_000, played(&says(&out)[0].0));
    let n = c.context().len();
    assert_eq!(
        c.context()[n - 3..],
        [
            Message::Assistant {
                content: "Let me check.".into(),
                tool_calls: vec![call]
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                content: r#"{"free":["10:00"]}"#.into()
            },
            agent("Ten o'clock is free."),
        ]
    );
    let turn = c.transcript().last().unwrap();
    assert_eq!(turn.text, "Let me check. Ten o'clock is free.");
    assert_eq!(turn.tool_calls[0].name, "check_calendar");
}

#[test]
fn the_caller_hanging_up_keeps_what_was_said_and_heard() {
    let mut c = greeted();
    c.handle(2_000, Input::SpeechStarted);
    c.handle(2_800, words("Actually never mind", false));
    let out = c.handle(3_000, Input::Hangup);
    assert_eq!(out, vec![Action::Hangup(EndReason::CallerHungUp)]);
    assert_eq!(c.transcript().last().unwrap().text, "Actually never mind");
}

#[test]
fn text_is_cut_at_sentences_and_at_clauses_once_long_enough() {
    assert_eq!(speakable_prefix("Hi. There"), Some(4));
    assert_eq!(
        speakable_prefix("Hi."),
        None,
        "the sentence may go on (a decimal, say)"
    );
    assert_eq!(speakable_prefix("It costs 3.5 dollars"), None);
    assert_eq!(speakable_prefix("Yes, sure"), None, "a short clause waits");
    let long = "Thanks for calling about the kitchen renovation, we can help";
    assert_eq!(speakable_prefix(long), Some(long.find(" we").unwrap() + 1));
    assert_eq!(speakable_prefix("Really? Yes"), Some(8));
    assert_eq!(
        speakable_prefix("Héllo wörld! Ça va"),
        Some("Héllo wörld! ".len())
    );
}

#[test]
fn the_brain_ending_the_call_lets_its_goodbye_play_then_hangs_up() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "That's all, thanks");
    let out = c.handle(
        3_600,
        Input::ReplyText("Glad I could help. Goodbye!".into()),
    );
    assert_eq!(says(&out), vec![("m2".into(), "Glad I could help.".into())]);
    // The end_call tool ran: nothing is cut, nothing is asked again.
    assert!(c.handle(3_700, Input::EndCall).is_empty());
    let out = c.handle(3_800, Input::ReplyDone);
    assert_eq!(says(&out), vec![("m3".into(), "Goodbye!".into())]);
    // The caller can no longer talk over it.
    assert!(c.handle(4_000, Input::SpeechStarted).is_empty());
    assert!(c.handle(4_900, played("m2")).is_empty());
    assert_eq!(
        c.handle(5_500, played("m3")),
        vec![Action::Hangup(EndReason::AgentEnded)]
    );
    let last = c.transcript().last().unwrap();
    assert_eq!(last.speaker, Speaker::Agent);
    assert_eq!(last.text, "Glad I could help. Goodbye!");
    assert!(!last.interrupted);
}

#[test]
fn the_brain_ending_the_call_without_a_word_gets_the_goodbye_said() {
    let mut c = greeted();
    caller_says(&mut c, 2_000, "Bye");
    assert!(c.handle(3_600, Input::EndCall).is_empty());
    let out = c.handle(3_700, Input::ReplyDone);
    let (mark, text) = says(&out).pop().unwrap();
    assert_eq!(text, "Thank you for your time. Goodbye.");
    assert_eq!(
        c.handle(5_000, played(&mark)),
        vec![Action::Hangup(EndReason::AgentEnded)]
    );
}
