//! The hand-over triggers that stand guard over a language model: every trigger, and
//! the turns it must leave to the model.

use parley_shared::flow::{FiredAction, Guard, Heard, TransferMode};

fn turns(said: &[&str]) -> Vec<Heard> {
    said.iter()
        .map(|s| match s.strip_prefix('#') {
            Some(keys) => Heard::keys(keys),
            None => Heard::said(s),
        })
        .collect()
}

/// The action the guard fired for the conversation, in short form, or `-` for none.
fn verdict(guard: &Guard, said: &[&str]) -> String {
    match guard.check(&turns(said)) {
        None => "-".into(),
        Some(step) => {
            assert!(step.ended, "{said:?}: a hand-over ends the AI's part");
            assert_eq!(step.say.len(), 1, "{said:?}: {:?}", step.say);
            match step.actions.as_slice() {
                [FiredAction::Transfer { mode, reason }] => format!(
                    "{} {reason}",
                    if *mode == TransferMode::Warm {
                        "warm"
                    } else {
                        "cold"
                    }
                ),
                [FiredAction::End { outcome }] => {
                    format!("end {}", outcome.as_deref().unwrap_or("-"))
                }
                other => panic!("{said:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn each_trigger_hands_over_and_ordinary_turns_go_to_the_model() {
    let guard = Guard::default();
    let table: &[(&[&str], &str)] = &[
        // Ordinary answers, including ones that brush against the keywords.
        (&["hi, I'm looking for a two bedroom flat"], "-"),
        (&["my agent said to call you"], "-"),
        (&["we have about 100 thousand"], "-"),
        (&["I don't want to speak to a person, just book it"], "-"),
        // A person asked for, by words or the 0 key.
        (
            &["can I speak to a real person please"],
            "warm asked_for_person",
        ),
        (&["agent"], "warm asked_for_person"),
        (&["#0"], "warm asked_for_person"),
        // Escalation and emergency words.
        (&["I want to speak to your manager"], "warm escalation"),
        (&["I'm going to take legal action"], "warm escalation"),
        (&["there's an emergency, someone is hurt"], "cold emergency"),
        (&["call 911"], "cold emergency"),
        // Do-not-call ends the call.
        (&["stop calling me"], "end do_not_call"),
        // Only the last turn is read for words.
        (&["speak to a person", "actually no, go on"], "-"),
    ];
    for (said, expected) in table {
        assert_eq!(verdict(&guard, said), *expected, "{said:?}");
    }
}

#[test]
fn turns_not_understood_in_a_row_hand_over_on_the_third() {
    let guard = Guard::default();
    assert_eq!(verdict(&guard, &["hello", "", "uh"]), "-");
    assert_eq!(
        verdict(&guard, &["hello", "", "uh", "hmm"]),
        "warm not_understood"
    );
    // An understood turn (words or keys) in between starts the count again.
    assert_eq!(verdict(&guard, &["", "um", "yes", "", "er"]), "-");
    assert_eq!(verdict(&guard, &["", "um", "#5", "", "er"]), "-");
    let step = guard.check(&turns(&["", "", ""])).unwrap();
    assert!(!step.understood);
    assert!(step.say[0].contains("connect you"), "{:?}", step.say);
}

#[test]
fn past_the_turn_limit_a_person_takes_over() {
    let guard = Guard {
        max_turns: 3,
        max_misunderstandings: 3,
    };
    assert_eq!(verdict(&guard, &["a", "b", "c"]), "-");
    assert_eq!(verdict(&guard, &["a", "b", "c", "d"]), "warm max_turns");
    // An emergency on that turn keeps its own advice and reason.
    assert_eq!(
        verdict(&guard, &["a", "b", "c", "there's a fire"]),
        "cold emergency"
    );
    // No counting of misses when they are switched off.
    let lenient = Guard {
        max_turns: 30,
        max_misunderstandings: 0,
    };
    assert_eq!(verdict(&lenient, &["", "", "", ""]), "-");
    assert_eq!(verdict(&lenient, &[]), "-");
}
