//! What a caller is expected to say at a flow's node, as whole phrases a speech
//! recogniser can listen for (the offline recogniser compiles them into a grammar for
//! the next utterance, and keeps its general model for anything else).
//!
//! A node expects the answers its slot takes (yes and no, numbers, amounts, days and
//! times, a timeline, its choice's options), its own intents' keywords and the ones
//! every node hears (the flow's intents and the built-in ones: a person, a manager,
//! do-not-call, repeat, an emergency). Every phrase is one the node understands: the
//! flow reads each as an answer or an intent (the tests check this for every node of
//! the shipped flows). A node that takes free speech (a text slot) expects nothing a
//! list could hold, and a node that does not listen expects nothing: both give none.
//!
//! Phrases are lower case, in words a pronouncing dictionary has: numbers in words
//! ("two thirty pm"), contractions with their apostrophe ("don't know", as the
//! dictionary spells them; the flow reads them either way), a keyword's `*` said as
//! an article, "the" or "your". A keyword with digits or letters outside a–z is left
//! out, since the recogniser could not say it.

use std::collections::HashSet;

use super::definition::{Collect, Flow, Intent, SlotKind};
use super::matcher;

/// Keywords with more stars than this are left out: each star triples the phrases.
const MAX_STARS: usize = 2;

/// Widest `min`..`max` of a number slot whose every whole number is listed.
const MAX_RANGE: u32 = 200;

/// Yes and no as callers say them (each read by [`crate::slots::yes_no`]).
const YES_NO: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yes please",
    "yeah sure",
    "sure",
    "okay",
    "correct",
    "that's right",
    "that's correct",
    "that's fine",
    "yes that's right",
    "yes that's fine",
    "sounds good",
    "that works",
    "go ahead",
    "absolutely",
    "of course",
    "definitely",
    "no",
    "nope",
    "no thanks",
    "no thank you",
    "not really",
    "not at all",
    "i don't think so",
    "that's wrong",
    "not interested",
];

/// Timelines as callers say them (each read by [`crate::slots::timeline`]); "in N
/// weeks" and "in N months" are added.
const TIMELINES: &[&str] = &[
    "as soon as possible",
    "right away",
    "immediately",
    "this week",
    "next week",
    "this month",
    "next month",
    "within a week",
    "within a month",
    "within a year",
    "next year",
    "this year",
    "in a week",
    "in a month",
    "in a year",
    "no rush",
];

/// What the built-in intents' patterns take, which keywords do not list: the phrases
/// for each built-in intent by name.
const BUILTIN_PATTERNS: &[(&str, &[&str])] = &[
    (matcher::EMERGENCY, &["nine one one", "call nine one one"]),
    (
        matcher::HUMAN,
        &["agent", "an agent", "a person", "a human", "person please"],
    ),
    (
        matcher::REPEAT,
        &["sorry", "pardon", "pardon me", "excuse me", "what"],
    ),
];

/// Contractions as keywords are written (the flow reads words without apostrophes)
/// and as the dictionary spells them. Only words that are not words of their own
/// without the apostrophe ("its", "were", "ill" are).
const CONTRACTIONS: &[(&str, &str)] = &[
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldnt", "couldn't"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("heres", "here's"),
    ("im", "i'm"),
    ("isnt", "isn't"),
    ("ive", "i've"),
    ("shouldnt", "shouldn't"),
    ("someones", "someone's"),
    ("thats", "that's"),
    ("theres", "there's"),
    ("theyre", "they're"),
    ("wasnt", "wasn't"),
    ("werent", "weren't"),
    ("weve", "we've"),
    ("whats", "what's"),
    ("wheres", "where's"),
    ("whos", "who's"),
    ("wont", "won't"),
    ("wouldnt", "wouldn't"),
    ("youre", "you're"),
    ("youve", "you've"),
];

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

const ORDINALS: [&str; 20] = [
    "",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// What the caller is expected to say at `node` of `flow`, each phrase once, the
/// node's own answers first. Empty when the node takes free speech, does not listen,
/// or is not in the flow: then nothing narrower than general speech is expected.
pub fn phrases_at(flow: &Flow, node: &str) -> Vec<String> {
    let Some(node) = flow.nodes.get(node) else {
        return Vec::new();
    };
    if !node.listens()
        || node
            .collect
            .as_ref()
            .is_some_and(|c| c.kind == SlotKind::Text)
    {
        return Vec::new();
    }
    let mut phrases = Phrases::default();
    if let Some(collect) = &node.collect {
        slot_phrases(collect, &mut phrases);
    }
    for intent in node.intents.iter().chain(global_intents(flow)) {
        phrases.intent(intent);
    }
    phrases.0
}

/// The intents every node hears: the flow's own and the built-in ones it does not
/// replace.
fn global_intents(flow: &Flow) -> impl Iterator<Item = &Intent> {
    let own = |name: &str| flow.intents.iter().any(|i| i.name == name);
    flow.intents.iter().chain(
        matcher::builtins()
            .iter()
            .map(|(intent, _)| intent)
            .filter(move |intent| !own(&intent.name)),
    )
}

/// Phrases in order of first appearance, each once.
#[derive(Default)]
struct Phrases(Vec<String>, HashSet<String>);

impl Phrases {
    fn push(&mut self, phrase: String) {
        if !phrase.is_empty() && self.1.insert(phrase.clone()) {
            self.0.push(phrase);
        }
    }

    fn keyword(&mut self, keyword: &str) {
        for phrase in spoken(keyword) {
            self.push(phrase);
        }
    }

    fn intent(&mut self, intent: &Intent) {
        for keyword in &intent.keywords {
            self.keyword(keyword);
        }
        // Only a built-in intent's patterns are known here; an author's are not listed.
        let builtin = matcher::builtins().iter().any(|(b, _)| b == intent);
        if builtin && let Some((_, said)) = BUILTIN_PATTERNS.iter().find(|(n, _)| *n == intent.name)
        {
            for phrase in *said {
                self.push((*phrase).to_owned());
            }
        }
    }
}

/// A keyword as it can be said: lower-case dictionary words, each `*` said as an
/// article, "the" or "your". Nothing for a keyword with digits or other letters.
fn spoken(keyword: &str) -> Vec<String> {
    enum Part {
        Word(String),
        Star,
    }
    let mut parts = Vec::new();
    for piece in keyword.split_whitespace() {
        if piece == "*" {
            parts.push(Part::Star);
            continue;
        }
        let lower = piece.to_lowercase().replace(['’', '‘'], "'");
        for word in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'')) {
            let word = word.trim_matches('\'');
            if word.is_empty() {
                continue;
            }
            if !word.chars().all(|c| c.is_ascii_lowercase() || c == '\'') {
                return Vec::new();
            }
            let word = CONTRACTIONS
                .iter()
                .find(|(bare, _)| *bare == word)
                .map_or(word, |(_, full)| full);
            parts.push(Part::Word(word.to_owned()));
        }
    }
    // A star at either end adds nothing to what is matched (and says nothing).
    while matches!(parts.first(), Some(Part::Star)) {
        parts.remove(0);
    }
    while matches!(parts.last(), Some(Part::Star)) {
        parts.pop();
    }
    let stars = parts.iter().filter(|p| matches!(p, Part::Star)).count();
    if parts.is_empty() || stars > MAX_STARS {
        return Vec::new();
    }
    let mut phrases = vec![String::new()];
    for (i, part) in parts.iter().enumerate() {
        let words: Vec<&str> = match part {
            Part::Word(w) => vec![w.as_str()],
            Part::Star => {
                let next = parts.get(i + 1).and_then(|p| match p {
                    Part::Word(w) => w.chars().next(),
                    Part::Star => None,
                });
                let article = match next {
                    Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
                    _ => "a",
                };
                vec![article, "the", "your"]
            }
        };
        phrases = phrases
            .iter()
            .flat_map(|head| {
                words.iter().map(move |w| match head.is_empty() {
                    true => (*w).to_owned(),
                    false => format!("{head} {w}"),
                })
            })
            .collect();
    }
    phrases
}

/// The answers a slot takes.
fn slot_phrases(collect: &Collect, out: &mut Phrases) {
    let in_range =
        |n: f64| collect.min.is_none_or(|m| n >= m) && collect.max.is_none_or(|m| n <= m);
    match collect.kind {
        SlotKind::YesNo => yes_no(out),
        SlotKind::Number => {
            for (phrase, _) in numbers(collect).into_iter().filter(|(_, n)| in_range(*n)) {
                out.push(phrase);
            }
        }
        SlotKind::Money => {
            for (phrase, _) in amounts().into_iter().filter(|(_, n)| in_range(*n)) {
                out.push(phrase);
            }
        }
        SlotKind::Date => {
            for day in days() {
                out.push(day);
            }
            for date in dates_of_the_month() {
                out.push(date);
            }
        }
        SlotKind::Time => {
            for time in times() {
                out.push(time);
            }
        }
        SlotKind::Datetime => datetimes(out),
        SlotKind::Timeline => {
            for phrase in TIMELINES {
                out.push((*phrase).to_owned());
            }
            for n in 1..=12 {
                out.push(format!("in {} weeks", number_words(n)));
                out.push(format!("in {} months", number_words(n)));
            }
        }
        SlotKind::Choice => {
            for option in &collect.options {
                out.keyword(&option.value.replace('_', " "));
                for keyword in &option.keywords {
                    out.keyword(keyword);
                }
            }
        }
        SlotKind::Text => {}
    }
}

fn yes_no(out: &mut Phrases) {
    for phrase in YES_NO {
        out.push((*phrase).to_owned());
    }
}

/// A day and a time ("next tuesday at two pm", "tomorrow at ten am"), either alone
/// (the flow asks for the other), and yes or no (to an open time the flow offered for
/// a closed one). On the hour only, day first: every form crossed with every day makes
/// a list so long that other speech is taken for one of it (measured: "the weather is
/// lovely today" heard as "eleven am monday" among 1,565 phrases, not among 753), and
/// the recogniser's general model still hears the rest.
fn datetimes(out: &mut Phrases) {
    let days = days();
    let hours = hours();
    for day in &days {
        out.push(day.clone());
    }
    for hour in &hours {
        out.push(hour.clone());
    }
    for day in &days {
        for hour in &hours {
            out.push(format!("{day} at {hour}"));
        }
    }
    yes_no(out);
}

/// Days said on their own: "today", "tomorrow", "tuesday", "next tuesday".
fn days() -> Vec<String> {
    let mut days = vec!["today".to_owned(), "tomorrow".to_owned()];
    for prefix in ["", "next "] {
        for day in WEEKDAYS {
            days.push(format!("{prefix}{day}"));
        }
    }
    days
}

/// Hours: "two", "two pm", "noon".
fn hours() -> Vec<String> {
    let mut hours = vec!["noon".to_owned()];
    for hour in 1..=12 {
        let h = number_words(hour);
        hours.push(format!("{h} am"));
        hours.push(format!("{h} pm"));
        hours.push(h);
    }
    hours
}

/// "the fifth", "december fifth".
fn dates_of_the_month() -> Vec<String> {
    let mut dates = Vec::new();
    for day in 1..=31 {
        dates.push(format!("the {}", ordinal_words(day)));
    }
    for month in MONTHS {
        for day in 1..=31 {
            dates.push(format!("{month} {}", ordinal_words(day)));
        }
    }
    dates
}

/// Times of day: the hours, and each with o'clock, its half and quarters, and in the
/// morning, afternoon or evening.
fn times() -> Vec<String> {
    let mut times = hours();
    times.push("midday".to_owned());
    for hour in 1..=12 {
        let h = number_words(hour);
        for form in [
            format!("{h} o'clock"),
            format!("{h} thirty"),
            format!("{h} thirty am"),
            format!("{h} thirty pm"),
            format!("{h} fifteen"),
            format!("{h} forty five"),
            format!("half past {h}"),
            format!("quarter past {h}"),
            format!("quarter to {h}"),
            format!("{h} in the morning"),
            format!("{h} in the afternoon"),
            format!("{h} in the evening"),
        ] {
            times.push(form);
        }
    }
    times
}

/// Whole numbers a number slot takes, with their values: each one in a narrow
/// `min`..`max`, else zero to a hundred, the hundreds and some thousands.
fn numbers(collect: &Collect) -> Vec<(String, f64)> {
    let low = collect.min.map_or(0.0, |m| m.ceil().max(0.0));
    let high = collect.max.map(f64::floor);
    if let Some(high) = high
        && high >= low
        && high - low <= f64::from(MAX_RANGE)
    {
        // Both ends are whole, small and in order here.
        let (low, high) = (low as u32, high as u32);
        return (low..=high)
            .map(|n| (number_words(n), f64::from(n)))
            .collect();
    }
    let mut numbers: Vec<u32> = (0..=100).collect();
    numbers.extend((2..=9).map(|n| n * 100));
    numbers.extend([1_000, 2_000, 3_000, 4_000, 5_000, 10_000]);
    let mut out: Vec<(String, f64)> = numbers
        .into_iter()
        .map(|n| (number_words(n), f64::from(n)))
        .collect();
    out.push(("a hundred".into(), 100.0));
    out.push(("a thousand".into(), 1_000.0));
    out
}

/// Amounts with their values: a number with a scale and dollars ("five hundred
/// thousand dollars", "two million", "fifty dollars").
fn amounts() -> Vec<(String, f64)> {
    let mut bases: Vec<(String, f64)> = (1..=20)
        .chain([25, 30, 40, 50, 60, 70, 75, 80, 90])
        .map(|n| (number_words(n), f64::from(n)))
        .collect();
    bases.push(("a".into(), 1.0));
    let scales = [
        ("", 1.0),
        (" hundred", 100.0),
        (" thousand", 1_000.0),
        (" hundred thousand", 100_000.0),
        (" million", 1_000_000.0),
    ];
    let mut out = Vec::new();
    for (scale, times) in scales {
        for (base, n) in &bases {
            // "a" needs its scale ("a thousand"); "twenty hundred" is nobody's amount.
            let plain = scale.is_empty();
            if (plain && base == "a") || (scale.contains("hundred") && *n >= 20.0) {
                continue;
            }
            let value = n * times;
            out.push((format!("{base}{scale} dollars"), value));
            if !plain {
                out.push((format!("{base}{scale}"), value));
            }
        }
    }
    out
}

/// `n` in words as said in the US ("one hundred twenty five"), below a million.
fn number_words(n: u32) -> String {
    if n >= 1_000 {
        let head = format!("{} thousand", number_words(n / 1_000));
        return match n % 1_000 {
            0 => head,
            rest => format!("{head} {}", number_words(rest)),
        };
    }
    if n >= 100 {
        let head = format!("{} hundred", UNITS[(n / 100) as usize]);
        return match n % 100 {
            0 => head,
            rest => format!("{head} {}", number_words(rest)),
        };
    }
    if n >= 20 {
        let tens = TENS[(n / 10) as usize];
        return match n % 10 {
            0 => tens.to_owned(),
            unit => format!("{tens} {}", UNITS[unit as usize]),
        };
    }
    UNITS[n as usize].to_owned()
}

/// A day of the month as an ordinal in words, 1 to 31 ("twenty first").
fn ordinal_words(day: u32) -> String {
    match day {
        1..=19 => ORDINALS[day as usize].to_owned(),
        20 => "twentieth".into(),
        30 => "thirtieth".into(),
        _ => format!(
            "{} {}",
            TENS[(day / 10) as usize],
            ORDINALS[(day % 10) as usize]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::matcher::{Matcher, Phrase, Words};
    use crate::flow::{Industry, Node};
    use crate::slots;
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

    /// A Saturday morning.
    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
    }

    /// The matchers of every intent heard at `node`.
    fn heard_at(flow: &Flow, node: &Node) -> Vec<Matcher> {
        node.intents
            .iter()
            .chain(global_intents(flow))
            .map(Matcher::new)
            .collect()
    }

    /// Whether the node reads `phrase` as an answer or as one of the intents it hears
    /// (`intents`, from [`heard_at`]).
    fn understood(node: &Node, intents: &[Matcher], phrase: &str) -> bool {
        let words = Words::new(phrase);
        let intent = intents.iter().any(|m| m.matches(&words, ""));
        let Some(c) = &node.collect else {
            return intent;
        };
        let in_range = |n: f64| c.min.is_none_or(|m| n >= m) && c.max.is_none_or(|m| n <= m);
        let today = now().date();
        let answer = match c.kind {
            SlotKind::YesNo => slots::yes_no(phrase).is_some(),
            SlotKind::Number => slots::number(phrase).is_some_and(in_range),
            SlotKind::Money => slots::money(phrase).is_some_and(|m| in_range(m.amount)),
            SlotKind::Date => slots::date(phrase, today).is_some(),
            SlotKind::Time => slots::time(phrase).is_some(),
            SlotKind::Datetime => {
                slots::when(phrase, now()).is_some() || slots::yes_no(phrase).is_some()
            }
            SlotKind::Timeline => slots::timeline(phrase, today).is_some(),
            SlotKind::Choice => c.options.iter().any(|o| {
                std::iter::once(o.value.replace('_', " "))
                    .chain(o.keywords.iter().cloned())
                    .any(|k| Phrase::new(&k).find(&words).is_some())
            }),
            SlotKind::Text => true,
        };
        answer || intent
    }

    fn flow(yaml: &str) -> Flow {
        Flow::parse_yaml(yaml).unwrap()
    }

    #[test]
    fn every_phrase_of_the_shipped_flows_is_understood_where_it_is_expected() {
        for industry in Industry::ALL {
            let flow = Flow::shipped(industry);
            for (name, node) in &flow.nodes {
                let phrases = phrases_at(flow, name);
                let intents = heard_at(flow, node);
                for phrase in &phrases {
                    assert!(
                        understood(node, &intents, phrase),
                        "{industry:?} {name}: {phrase:?} is not understood there"
                    );
                    assert!(
                        phrase.split(' ').all(|w| !w.is_empty()
                            && w.chars().all(|c| c.is_ascii_lowercase() || c == '\'')),
                        "{industry:?} {name}: {phrase:?} is not lower-case words"
                    );
                }
                let mut unique = phrases.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), phrases.len(), "{industry:?} {name}: repeats");
                // A node that listens for something listable expects phrases.
                let free = node
                    .collect
                    .as_ref()
                    .is_some_and(|c| c.kind == SlotKind::Text);
                assert_eq!(
                    phrases.is_empty(),
                    free || !node.listens(),
                    "{industry:?} {name}"
                );
            }
        }
    }

    #[test]
    fn a_day_and_time_node_expects_days_times_and_both_and_reads_them_as_said() {
        let appointments = Flow::shipped(Industry::Appointments);
        let phrases = phrases_at(appointments, "when");
        let at = |d: u32, h: u32| {
            let date = NaiveDate::from_ymd_opt(2026, 11, d);
            (date, NaiveTime::from_hms_opt(h, 0, 0))
        };
        for (said, (date, time)) in [
            ("next tuesday at two pm", at(24, 14)),
            ("tomorrow at ten am", at(22, 10)),
            ("friday at three", at(27, 15)),
            ("monday at nine am", at(23, 9)),
            ("today at noon", at(21, 12)),
        ] {
            assert!(phrases.iter().any(|p| p == said), "{said}");
            assert_eq!(
                slots::when(said, now()),
                Some(slots::When { date, time }),
                "{said}"
            );
        }
        // Half an answer is an answer (the flow asks for the rest), and a yes takes a
        // time the flow offered.
        for said in ["wednesday", "four pm", "yes", "no"] {
            assert!(phrases.iter().any(|p| p == said), "{said}");
        }
        // What any node hears, with the flow's own intent.
        for said in [
            "speak to a person",
            "speak to an agent",
            "speak to your manager",
            "stop calling",
            "repeat that",
            "reschedule",
            "cancel my appointment",
        ] {
            assert!(phrases.iter().any(|p| p == said), "{said}");
        }
        // Not a free-text answer: the reason for the appointment is anything at all.
        assert!(phrases_at(appointments, "greet").is_empty());
        // A node that only acts, and one that is not there.
        assert!(phrases_at(appointments, "booked").is_empty());
        assert!(phrases_at(appointments, "nowhere").is_empty());
    }

    #[test]
    fn a_yes_or_no_node_expects_yes_and_no_not_days() {
        let appointments = Flow::shipped(Industry::Appointments);
        let phrases = phrases_at(appointments, "confirm");
        assert_eq!(phrases.first().map(String::as_str), Some("yes"));
        for said in YES_NO {
            assert!(phrases.iter().any(|p| p == said), "{said}");
        }
        assert!(
            !phrases.iter().any(|p| p.contains("tuesday")),
            "{phrases:?}"
        );
        let (yes, no): (Vec<_>, Vec<_>) = YES_NO
            .iter()
            .map(|p| (p, slots::yes_no(p)))
            .partition(|(_, v)| *v == Some(true));
        assert!(no.iter().all(|(_, v)| *v == Some(false)), "{no:?}");
        assert!(yes.len() > 5 && no.len() > 5);
    }

    #[test]
    fn a_number_in_a_range_expects_just_those_numbers() {
        let rating = flow(
            r#"
name: Rating
start: rate
nodes:
  rate:
    say: From one to five?
    collect: { slot: rating, kind: number, min: 1, max: 5 }
    next:
      - goto: bye
  bye:
    say: Thanks.
    on_enter:
      - end
"#,
        );
        let phrases = phrases_at(&rating, "rate");
        assert_eq!(phrases[..5], ["one", "two", "three", "four", "five"]);
        assert!(!phrases.iter().any(|p| p == "six" || p == "zero"));
        for (i, phrase) in phrases[..5].iter().enumerate() {
            assert_eq!(slots::number(phrase), Some(i as f64 + 1.0));
        }
    }

    #[test]
    fn numbers_and_amounts_in_words_read_back_as_their_values() {
        for n in 0..=2_000 {
            assert_eq!(slots::number(&number_words(n)), Some(f64::from(n)), "{n}");
        }
        assert_eq!(number_words(125), "one hundred twenty five");
        assert_eq!(number_words(40_000), "forty thousand");
        for (phrase, value) in amounts() {
            let money = slots::money(&phrase);
            assert_eq!(money.map(|m| m.amount), Some(value), "{phrase}");
        }
        for day in 1..=31 {
            let said = format!("december {}", ordinal_words(day));
            let today = now().date();
            assert_eq!(
                slots::date(&said, today),
                NaiveDate::from_ymd_opt(2026, 12, day),
                "{said}"
            );
        }
    }

    #[test]
    fn keywords_are_said_in_dictionary_words() {
        assert_eq!(spoken("Don't know"), ["don't know"]);
        assert_eq!(spoken("dont know"), ["don't know"]);
        assert_eq!(spoken("whos calling?"), ["who's calling"]);
        assert_eq!(
            spoken("speak to * person"),
            [
                "speak to a person",
                "speak to the person",
                "speak to your person"
            ]
        );
        assert_eq!(spoken("speak to * agent")[0], "speak to an agent");
        assert_eq!(spoken("* open *"), ["open"]);
        // Words a recogniser cannot say are no phrase.
        assert!(spoken("call 911").is_empty());
        assert!(spoken("café").is_empty());
        assert!(spoken("a * b * c * d").is_empty());
        assert!(spoken("?!").is_empty());
        // The flow still reads them as the keyword.
        for (keyword, said) in [
            ("dont know", "don't know"),
            ("speak to * agent", "speak to an agent"),
        ] {
            assert!(
                Phrase::new(keyword).find(&Words::new(said)).is_some(),
                "{said}"
            );
        }
    }

    #[test]
    fn a_flows_own_intent_replaces_the_built_in_one_and_choices_list_their_options() {
        let own = flow(
            r#"
name: Own
start: pick
intents:
  - name: human
    keywords: [front desk]
    say: Putting you through.
    actions:
      - transfer: { mode: warm, reason: asked }
nodes:
  pick:
    say: Buying or renting?
    collect:
      slot: intent
      kind: choice
      options:
        - { value: to_buy, keywords: [buying, purchase] }
        - rent
    intents:
      - name: later
        keywords: ["not now"]
    next:
      - goto: bye
  bye:
    say: Thanks.
    on_enter:
      - end
"#,
        );
        let phrases = phrases_at(&own, "pick");
        assert_eq!(
            phrases[..6],
            [
                "to buy",
                "buying",
                "purchase",
                "rent",
                "not now",
                "front desk"
            ]
        );
        // The built-in "a person" is replaced by the flow's own; the others stay.
        assert!(!phrases.iter().any(|p| p == "a person" || p == "operator"));
        assert!(phrases.iter().any(|p| p == "stop calling"));
        assert!(phrases.iter().any(|p| p == "pardon"));
    }
}
