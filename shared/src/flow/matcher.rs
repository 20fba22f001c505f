//! Hearing intents and choices: the caller's words normalised once, keyword phrases
//! (with `*`) and patterns matched against them, and the intents every flow gets.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

use super::definition::{Action, End, Intent, Transfer, TransferMode};

/// Words looked at in one utterance; a caller's turn is rarely a tenth of this, and the
/// bound keeps matching cheap whatever arrives.
const MAX_TOKENS: usize = 400;
/// How many words a `*` in a keyword phrase stands for at most.
const STAR_WORDS: usize = 4;
/// Words before a phrase searched for a negation ("don't want to buy").
const NEGATION_REACH: usize = 3;
/// Compiled size allowed for one author's pattern: ample for phrases, refuses blow-ups.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    /// A clause break (, . ; : ! ?): phrases do not span one.
    Break,
}

/// An utterance as lower-case words (apostrophes dropped, so "don't" and "dont" read the
/// same) with clause breaks, and the same words joined by spaces for patterns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Words {
    toks: Vec<Tok>,
    joined: String,
}

impl Words {
    pub(crate) fn new(text: &str) -> Words {
        let mut toks = Vec::new();
        let mut word = String::new();
        for c in text.chars() {
            if toks.len() >= MAX_TOKENS {
                break;
            }
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if matches!(c, '\'' | '’' | '‘') {
                // Inside a word: "don't" → "dont"; elsewhere nothing.
            } else {
                if !word.is_empty() {
                    toks.push(Tok::Word(std::mem::take(&mut word)));
                }
                if matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '…')
                    && toks.last() != Some(&Tok::Break)
                {
                    toks.push(Tok::Break);
                }
            }
        }
        if !word.is_empty() && toks.len() < MAX_TOKENS {
            toks.push(Tok::Word(word));
        }
        let joined = toks
            .iter()
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w.as_str()),
                Tok::Break => None,
            })
            .collect::<Vec<_>>()
            .join(" ");
        Words { toks, joined }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.joined.is_empty()
    }

    /// Whether every word is a hesitation ("uh", "hmm"): no answer for a text slot.
    pub(crate) fn only_filler(&self) -> bool {
        const FILLERS: &[&str] = &[
            "uh", "uhh", "um", "umm", "hm", "hmm", "hmmm", "er", "erm", "ah", "eh", "mm", "mmm",
            "oh",
        ];
        self.toks.iter().all(|t| match t {
            Tok::Word(w) => FILLERS.contains(&w.as_str()),
            Tok::Break => true,
        })
    }

    fn word(&self, i: usize) -> Option<&str> {
        match self.toks.get(i) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    /// Whether a negation stands shortly before token `i` in the same clause. "no"
    /// counts only right before ("no fire"), since it often answers the question before
    /// the real words ("no I want a person").
    fn negated(&self, i: usize) -> bool {
        const NEGATORS: &[&str] = &[
            "not", "dont", "never", "cant", "cannot", "wont", "doesnt", "didnt", "isnt", "arent",
            "wasnt", "werent", "without", "nor", "neither", "hardly",
        ];
        for back in 1..=NEGATION_REACH {
            let Some(j) = i.checked_sub(back) else {
                return false;
            };
            match self.word(j) {
                None => return false,
                Some(w) if NEGATORS.contains(&w) => return true,
                Some("no") if back == 1 => return true,
                Some(_) => {}
            }
        }
        false
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Word(String),
    Star,
}

/// A keyword phrase, normalised like the caller's words.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Phrase(Vec<Part>);

impl Phrase {
    pub(crate) fn new(keyword: &str) -> Phrase {
        let mut parts = Vec::new();
        for piece in keyword.split_whitespace() {
            if piece == "*" {
                // Two stars in a row are one; a leading star adds nothing.
                if !parts.is_empty() && parts.last() != Some(&Part::Star) {
                    parts.push(Part::Star);
                }
                continue;
            }
            for t in Words::new(piece).toks {
                if let Tok::Word(w) = t {
                    parts.push(Part::Word(w));
                }
            }
        }
        while parts.last() == Some(&Part::Star) {
            parts.pop();
        }
        Phrase(parts)
    }

    /// Whether the phrase has a word to match (a keyword of only punctuation or stars
    /// has none).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Where the first match not behind a negation starts, in tokens.
    pub(crate) fn find(&self, words: &Words) -> Option<usize> {
        if self.0.is_empty() {
            return None;
        }
        (0..words.toks.len()).find(|&start| self.matches_at(words, start) && !words.negated(start))
    }

    fn matches_at(&self, words: &Words, start: usize) -> bool {
        // The positions reachable after each part; a `*` fans out to at most
        // STAR_WORDS + 1 of them, so this stays linear in the phrase's length.
        let mut at = vec![start];
        for part in &self.0 {
            let mut next = Vec::new();
            for &p in &at {
                match part {
                    Part::Word(w) => {
                        if words.word(p) == Some(w.as_str()) {
                            next.push(p + 1);
                        }
                    }
                    Part::Star => {
                        for k in 0..=STAR_WORDS {
                            if k > 0 && words.word(p + k - 1).is_none() {
                                break;
                            }
                            next.push(p + k);
                        }
                    }
                }
            }
            next.sort_unstable();
            next.dedup();
            if next.is_empty() {
                return false;
            }
            at = next;
        }
        true
    }
}

/// Compiles an author's pattern the way the engine runs it.
pub(crate) fn compile_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// An intent ready to match: phrases parsed and patterns compiled once per call.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    phrases: Vec<Phrase>,
    patterns: Vec<Regex>,
    digits: Vec<String>,
}

impl Matcher {
    /// A pattern that does not compile is left out: validation reports it, and a flow
    /// built by hand without validation must not stop the call.
    pub(crate) fn new(intent: &Intent) -> Matcher {
        Matcher {
            phrases: intent.keywords.iter().map(|k| Phrase::new(k)).collect(),
            patterns: intent
                .patterns
                .iter()
                .filter_map(|p| compile_pattern(p).ok())
                .collect(),
            digits: intent.digits.iter().map(|d| d.trim().to_owned()).collect(),
        }
    }

    pub(crate) fn matches(&self, words: &Words, digits: &str) -> bool {
        let digits = digits.trim();
        (!digits.is_empty() && self.digits.iter().any(|d| d == digits))
            || (!words.is_empty()
                && (self.phrases.iter().any(|p| p.find(words).is_some())
                    || self.patterns.iter().any(|r| r.is_match(&words.joined))))
    }
}

/// Built-in intent names: a flow intent with one of these names replaces the built-in.
pub(crate) const EMERGENCY: &str = "emergency";
pub(crate) const HUMAN: &str = "human";
pub(crate) const ESCALATION: &str = "escalation";
pub(crate) const DO_NOT_CALL: &str = "do_not_call";
pub(crate) const REPEAT: &str = "repeat";

/// Transfer reasons the engine gives on its own.
pub(crate) const REASON_EMERGENCY: &str = "emergency";
pub(crate) const REASON_HUMAN: &str = "asked_for_person";
pub(crate) const REASON_ESCALATION: &str = "escalation";
pub(crate) const REASON_MAX_TURNS: &str = "max_turns";
pub(crate) const REASON_NOT_UNDERSTOOD: &str = "not_understood";

/// Emergency numbers after "call"/"dial" ("call 911", "dial one one two"). Only 911 may
/// stand alone: 100, 108, 112 and 999 are ordinary answers to "how many" or "how much".
const EMERGENCY_NUMBERS: &str = r"911|112|999|100|108|9 1 1|1 1 2|9 9 9|1 0 8|1 0 0|nine one one|one one two|nine nine nine|one oh eight|one zero eight|one zero zero";

/// The built-in intents (see [`builtin_intents`]) with their matchers, compiled once for
/// every call.
pub(crate) fn builtins() -> &'static [(Intent, Matcher)] {
    static BUILTINS: LazyLock<Vec<(Intent, Matcher)>> = LazyLock::new(|| {
        builtin_intents()
            .into_iter()
            .map(|intent| {
                let m = Matcher::new(&intent);
                (intent, m)
            })
            .collect()
    });
    &BUILTINS
}

/// The intents every flow gets, in the order they are tried around the flow's own:
/// emergency first, then the flow's intents, then a person, escalation, do-not-call and
/// repeat.
/// - `emergency`: "emergency", "fire", "ambulance", "someone is hurt", "call 911" (or
///   112, 999, 100, 108 after call/dial; 911 alone) → a cold transfer, reason
///   `emergency`, after telling the caller to hang up and dial emergency services if
///   anyone is in danger.
/// - `human`: "speak to a person", "real person", "a human", "live agent", "speak to an
///   agent", "representative", "operator", or key 0 → a warm transfer, reason
///   `asked_for_person`. "agent" alone counts only as the whole answer: "my agent" is
///   not a request.
/// - `escalation`: "supervisor", "speak to your manager", "make a complaint", "lawyer",
///   "legal action" → a warm transfer, reason `escalation`.
/// - `do_not_call`: "stop calling", "take me off your list", "unsubscribe" → an apology
///   and the end, outcome `do_not_call`.
/// - `repeat`: "can you repeat that", "say that again", "sorry?", "pardon?" → the
///   node's question again, not counted as a miss.
fn builtin_intents() -> Vec<Intent> {
    let words = |ws: &[&str]| ws.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    vec![
        Intent {
            name: EMERGENCY.into(),
            keywords: words(&[
                "emergency",
                "fire",
                "on fire",
                "ambulance",
                "someone is hurt",
                "somebody is hurt",
                "someones hurt",
                "someone is injured",
                "heart attack",
                "cant breathe",
                "not breathing",
                "call the police",
            ]),
            patterns: vec![
                format!(r"\b(?:call|dial|ring|phone)(?: the)? (?:{EMERGENCY_NUMBERS})\b"),
                r"^(?:(?:uh|um|please) )*(?:911|9 1 1|nine one one)(?: please)?$".into(),
            ],
            say: Some(
                "If anyone is in danger, please hang up and call your local emergency number now. \
                 I'm connecting you with a person."
                    .into(),
            ),
            actions: vec![Action::Transfer(Transfer {
                mode: TransferMode::Cold,
                reason: REASON_EMERGENCY.into(),
            })],
            ..Intent::default()
        },
        Intent {
            name: HUMAN.into(),
            keywords: words(&[
                "speak to * person",
                "talk to * person",
                "speak with * person",
                "talk with * person",
                "real person",
                "live person",
                "actual person",
                "human being",
                "a human",
                "speak to * human",
                "talk to * human",
                "speak to * agent",
                "talk to * agent",
                "speak with * agent",
                "live agent",
                "human agent",
                "real agent",
                "agent please",
                "representative",
                "operator",
            ]),
            patterns: vec![r"^(?:(?:uh|um) )*(?:an? )?(?:agent|human|person)(?: please)?$".into()],
            digits: vec!["0".into()],
            say: Some("Sure. Let me connect you with someone from the team.".into()),
            actions: vec![Action::Transfer(Transfer {
                mode: TransferMode::Warm,
                reason: REASON_HUMAN.into(),
            })],
            ..Intent::default()
        },
        Intent {
            name: ESCALATION.into(),
            keywords: words(&[
                "supervisor",
                "speak to * manager",
                "talk to * manager",
                "speak with * manager",
                "your manager",
                "make a complaint",
                "file a complaint",
                "lawyer",
                "legal action",
            ]),
            say: Some("I'm sorry about this. Let me get someone senior to help you.".into()),
            actions: vec![Action::Transfer(Transfer {
                mode: TransferMode::Warm,
                reason: REASON_ESCALATION.into(),
            })],
            ..Intent::default()
        },
        Intent {
            name: DO_NOT_CALL.into(),
            keywords: words(&[
                "stop calling",
                "do not call me",
                "dont call me again",
                "never call me again",
                "remove me from your list",
                "take me off your list",
                "remove my number",
                "unsubscribe",
            ]),
            say: Some("I'm sorry for the trouble. We won't call you again. Goodbye.".into()),
            actions: vec![Action::End(End {
                outcome: Some(DO_NOT_CALL.into()),
            })],
            ..Intent::default()
        },
        Intent {
            name: REPEAT.into(),
            keywords: words(&[
                "repeat that",
                "repeat the question",
                "say that again",
                "come again",
                "what did you say",
                "didnt hear you",
                "didnt catch that",
            ]),
            patterns: vec![r"^(?:(?:sorry|what|pardon|huh|excuse me)(?: me)? ?)+$".into()],
            say: Some("Of course.".into()),
            ..Intent::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(keyword: &str, text: &str) -> bool {
        Phrase::new(keyword).find(&Words::new(text)).is_some()
    }

    #[test]
    fn phrases_match_whole_words_across_case_and_apostrophes() {
        assert!(finds("who's calling", "Uh, WHOS calling please?"));
        assert!(finds("rent", "I'd like to rent."));
        assert!(!finds("rent", "the current place"));
        assert!(!finds("fire", "we have a fireplace"));
    }

    #[test]
    fn a_star_stands_for_up_to_four_words_within_a_clause() {
        assert!(finds("speak to * person", "can I speak to a real person"));
        assert!(finds("speak to * person", "speak to person"));
        assert!(!finds(
            "speak to * person",
            "speak to one two three four five person"
        ));
        assert!(!finds("speak to * person", "speak to, uh, person"));
    }

    #[test]
    fn negation_before_a_phrase_cancels_it() {
        assert!(!finds("buy", "I don't want to buy"));
        assert!(finds("rent", "I don't want to buy, I want to rent"));
        assert!(!finds("emergency", "it's not an emergency"));
        assert!(!finds("fire", "no fire here"));
        assert!(finds("real person", "no I want a real person"));
    }

    #[test]
    fn builtin_patterns_compile() {
        for intent in builtin_intents() {
            for p in &intent.patterns {
                assert!(compile_pattern(p).is_ok(), "{p}");
            }
        }
    }
}
