//! Yes or no from a caller's answer ("yeah sure", "nope", "I don't think so", "I'm not
//! sure"), for confirmation and opt-in nodes of scripted flows.

use super::tokens::Tokens;

/// The caller's yes (`Some(true)`), no (`Some(false)`) or neither (`None`).
///
/// The rule: the utterance is read as a list of answers and **the last answer wins**,
/// because callers correct themselves forward ("no wait, yes"; "yeah, no"; "no, sure is
/// not right" is no). Answers are:
/// - yes-words and phrases: yes, yeah, yep, sure, absolutely, correct, right, ok, "sounds
///   good", "that works", "go ahead", "I think so", "no problem", "I don't mind"...
/// - no-words and phrases: no, nope, nah, never, "not really", "not interested", "no
///   thanks", "not at all", "wrong number", "stop calling"...
/// - uncertainty, which counts as neither: "I'm not sure", "maybe", "I don't know", "no
///   idea", "let me think", and "I'm good"/"I'm fine" (a polite decline as often as an
///   acceptance).
///
/// A negation directly before a yes-word, in the same clause and at most one word away,
/// makes it a no ("that's not right", "I don't think so", "not exactly"); a negation
/// ending a clause is a no ("absolutely not", "I hope not", "I'm not", "please don't", "I
/// can't"); "I do", "I am", "I will" ending a clause are a yes. Set phrases are read whole
/// first, so "no problem" is a yes and "not sure" is neither.
///
/// ```
/// use parley_shared::slots::yes_no;
/// assert_eq!(yes_no("yeah sure"), Some(true));
/// assert_eq!(yes_no("I don't think so"), Some(false));
/// assert_eq!(yes_no("I'm not sure"), None);
/// ```
pub fn yes_no(text: &str) -> Option<bool> {
    let t = Tokens::new(text);
    let mut answer = None;
    let mut i = 0;
    while i < t.len() {
        let Some(w) = t.word(i) else {
            i += 1;
            continue;
        };
        if let Some((sig, end)) = phrase_at(&t, i) {
            let sig = match sig {
                Sig::Yes if negated(&t, i) => Sig::No,
                s => s,
            };
            match sig {
                Sig::Yes => answer = Some(Some(true)),
                Sig::No => answer = Some(Some(false)),
                Sig::Unsure => answer = Some(None),
                Sig::Neutral => {}
            }
            i = end;
            continue;
        }
        // "absolutely not", "I hope not", "I'm not"; "I don't", "please don't".
        if t.is_end(i + 1) && NEGATORS.contains(&w) {
            answer = Some(Some(false));
        }
        i += 1;
    }
    answer.flatten()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sig {
    Yes,
    No,
    Unsure,
    /// Read whole so that its words are not answers: "no rush", "right away".
    Neutral,
}

const NEGATORS: &[&str] = &[
    "not", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "aint", "cant", "cannot", "wont",
    "wouldnt", "shouldnt", "never", "havent", "hardly",
];

/// A negator one or two words before `i`, with no clause break between.
fn negated(t: &Tokens, i: usize) -> bool {
    let near = |k: Option<usize>| {
        k.and_then(|k| t.word(k))
            .is_some_and(|w| NEGATORS.contains(&w))
    };
    near(i.checked_sub(1)) || (t.word(i.wrapping_sub(1)).is_some() && near(i.checked_sub(2)))
}

/// Phrases, longest first where one begins another. `true` marks phrases that are an
/// answer only when they end a clause ("I do." but not "I do have a question").
const PHRASES: &[(&[&str], Sig, bool)] = &[
    // Uncertainty.
    (&["im", "not", "sure"], Sig::Unsure, false),
    (&["not", "so", "sure"], Sig::Unsure, false),
    (&["not", "too", "sure"], Sig::Unsure, false),
    (&["not", "sure"], Sig::Unsure, false),
    (&["not", "certain"], Sig::Unsure, false),
    (&["dont", "know"], Sig::Unsure, false),
    (&["do", "not", "know"], Sig::Unsure, false),
    (&["no", "idea"], Sig::Unsure, false),
    (&["no", "clue"], Sig::Unsure, false),
    (&["let", "me", "think"], Sig::Unsure, false),
    (&["let", "me", "check"], Sig::Unsure, false),
    (&["lemme", "think"], Sig::Unsure, false),
    (&["think", "about", "it"], Sig::Unsure, false),
    (&["hard", "to", "say"], Sig::Unsure, false),
    (&["who", "knows"], Sig::Unsure, false),
    (&["we", "will", "see"], Sig::Unsure, false),
    (&["well", "see"], Sig::Unsure, false),
    (&["it", "depends"], Sig::Unsure, false),
    (&["depends"], Sig::Unsure, false),
    (&["not", "decided"], Sig::Unsure, false),
    (&["undecided"], Sig::Unsure, false),
    (&["unsure"], Sig::Unsure, false),
    (&["dunno"], Sig::Unsure, false),
    (&["maybe"], Sig::Unsure, false),
    (&["perhaps"], Sig::Unsure, false),
    (&["possibly"], Sig::Unsure, false),
    (&["probably"], Sig::Unsure, false),
    (&["might"], Sig::Unsure, false),
    (&["kind", "of"], Sig::Unsure, false),
    (&["sort", "of"], Sig::Unsure, false),
    (&["im", "good"], Sig::Unsure, true),
    (&["im", "fine"], Sig::Unsure, true),
    (&["im", "ok"], Sig::Unsure, true),
    (&["im", "okay"], Sig::Unsure, true),
    // Words that look like answers but are not here.
    (&["no", "rush"], Sig::Neutral, false),
    (&["no", "hurry"], Sig::Neutral, false),
    (&["no", "matter"], Sig::Neutral, false),
    (&["no", "one"], Sig::Neutral, false),
    (&["never", "mind"], Sig::Neutral, false),
    (&["right", "away"], Sig::Neutral, false),
    (&["right", "now"], Sig::Neutral, false),
    (&["right", "there"], Sig::Neutral, false),
    (&["right", "here"], Sig::Neutral, false),
    (&["the", "right"], Sig::Neutral, false),
    (&["good", "morning"], Sig::Neutral, false),
    (&["good", "afternoon"], Sig::Neutral, false),
    (&["good", "evening"], Sig::Neutral, false),
    (&["good", "night"], Sig::Neutral, false),
    (&["good", "bye"], Sig::Neutral, false),
    (&["you", "know"], Sig::Neutral, false),
    (&["i", "know"], Sig::Neutral, false),
    // Yes.
    (&["no", "problem"], Sig::Yes, false),
    (&["not", "a", "problem"], Sig::Yes, false),
    (&["no", "worries"], Sig::Yes, false),
    (&["no", "doubt"], Sig::Yes, false),
    (&["not", "bad"], Sig::Yes, false),
    (&["dont", "mind"], Sig::Yes, false),
    (&["do", "not", "mind"], Sig::Yes, false),
    (&["wouldnt", "mind"], Sig::Yes, false),
    (&["would", "not", "mind"], Sig::Yes, false),
    (&["why", "not"], Sig::Yes, false),
    (&["of", "course"], Sig::Yes, false),
    (&["for", "sure"], Sig::Yes, false),
    (&["by", "all", "means"], Sig::Yes, false),
    (&["sounds", "like", "a", "plan"], Sig::Yes, false),
    (&["sounds", "good"], Sig::Yes, false),
    (&["sounds", "great"], Sig::Yes, false),
    (&["sounds", "fine"], Sig::Yes, false),
    (&["sounds", "perfect"], Sig::Yes, false),
    (&["that", "works"], Sig::Yes, false),
    (&["thatll", "work"], Sig::Yes, false),
    (&["that", "would", "work"], Sig::Yes, false),
    (&["works", "for", "me"], Sig::Yes, false),
    (&["go", "ahead"], Sig::Yes, false),
    (&["go", "for", "it"], Sig::Yes, false),
    (&["please", "do"], Sig::Yes, false),
    (&["lets", "do", "it"], Sig::Yes, false),
    (&["do", "it"], Sig::Yes, false),
    (&["lets", "go"], Sig::Yes, false),
    (&["you", "bet"], Sig::Yes, false),
    (&["you", "got", "it"], Sig::Yes, false),
    (&["count", "me", "in"], Sig::Yes, false),
    (&["sign", "me", "up"], Sig::Yes, false),
    (&["uh", "huh"], Sig::Yes, false),
    (&["love", "to"], Sig::Yes, false),
    (&["would", "love"], Sig::Yes, false),
    (&["happy", "to"], Sig::Yes, false),
    (&["mm", "hmm"], Sig::Yes, false),
    (&["all", "right"], Sig::Yes, false),
    (&["think", "so"], Sig::Yes, false),
    (&["guess", "so"], Sig::Yes, false),
    (&["suppose", "so"], Sig::Yes, false),
    (&["hope", "so"], Sig::Yes, false),
    (&["believe", "so"], Sig::Yes, false),
    (&["i", "do"], Sig::Yes, true),
    (&["i", "am"], Sig::Yes, true),
    (&["i", "will"], Sig::Yes, true),
    (&["i", "would"], Sig::Yes, true),
    (&["i", "can"], Sig::Yes, true),
    (&["i", "did"], Sig::Yes, true),
    (&["we", "do"], Sig::Yes, true),
    (&["we", "are"], Sig::Yes, true),
    (&["it", "is"], Sig::Yes, true),
    (&["it", "does"], Sig::Yes, true),
    (&["that", "is"], Sig::Yes, true),
    // No.
    (&["no", "thanks"], Sig::No, false),
    (&["no", "thank", "you"], Sig::No, false),
    (&["no", "way"], Sig::No, false),
    (&["no", "need"], Sig::No, false),
    (&["not", "really"], Sig::No, false),
    (&["not", "interested"], Sig::No, false),
    (&["not", "at", "all"], Sig::No, false),
    (&["not", "now"], Sig::No, false),
    (&["not", "today"], Sig::No, false),
    (&["not", "yet"], Sig::No, false),
    (&["not", "right", "now"], Sig::No, false),
    (&["not", "at", "the", "moment"], Sig::No, false),
    (&["not", "this", "time"], Sig::No, false),
    (&["not", "for", "me"], Sig::No, false),
    (&["rather", "not"], Sig::No, false),
    (&["stop", "calling"], Sig::No, false),
    (&["do", "not", "call"], Sig::No, false),
    (&["dont", "call"], Sig::No, false),
    (&["take", "me", "off"], Sig::No, false),
    (&["remove", "me"], Sig::No, false),
    (&["wrong", "number"], Sig::No, false),
    (&["ill", "pass"], Sig::No, false),
    (&["i", "will", "pass"], Sig::No, false),
    (&["nuh", "uh"], Sig::No, false),
];

#[rustfmt::skip]
const YES_WORDS: &[&str] = &[
    "yes", "yeah", "yea", "ya", "yah", "yep", "yup", "yess", "yas", "aye", "sure", "surely",
    "absolutely", "definitely", "certainly", "correct", "exactly", "indeed", "totally",
    "ok", "okay", "alright", "fine", "good", "great", "perfect", "awesome", "cool",
    "excellent", "wonderful", "lovely", "agreed", "affirmative", "interested", "right",
    "mhm", "mmhmm", "yesh", "sounds", "gladly", "confirmed", "confirm",
];

#[rustfmt::skip]
const NO_WORDS: &[&str] = &[
    "no", "nope", "nah", "naw", "nay", "never", "negative", "incorrect", "wrong", "nothing",
    "unsubscribe",
];

fn phrase_at(t: &Tokens, i: usize) -> Option<(Sig, usize)> {
    let mut best: Option<(Sig, usize)> = None;
    for (words, sig, at_end) in PHRASES {
        let end = i + words.len();
        if t.phrase(i, words)
            && (!at_end || t.is_end(end) || t.is_any(end, &["yes", "no", "thanks", "thank"]))
            && best.is_none_or(|(_, e)| end > e)
        {
            best = Some((*sig, end));
        }
    }
    if best.is_some() {
        return best;
    }
    let w = t.word(i)?;
    if YES_WORDS.contains(&w) {
        // "sounds" alone ("sounds like a plan" is above) is a yes only as "sounds good"
        // shortened by STT; elsewhere it is a verb.
        if w == "sounds" && !t.is_end(i + 1) {
            return None;
        }
        return Some((Sig::Yes, i + 1));
    }
    if NO_WORDS.contains(&w) {
        return Some((Sig::No, i + 1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_answer_wins() {
        assert_eq!(yes_no("no wait, yes"), Some(true));
        assert_eq!(yes_no("yeah, no"), Some(false));
        assert_eq!(yes_no("no, sure is not right"), Some(false));
        assert_eq!(yes_no("maybe, yeah"), Some(true));
        assert_eq!(yes_no("yes, maybe"), None);
    }

    #[test]
    fn negation_reaches_one_word_and_stops_at_breaks() {
        assert_eq!(yes_no("I don't really think so"), Some(false));
        assert_eq!(yes_no("not, yes"), Some(true));
        assert_eq!(yes_no("I do"), Some(true));
        assert_eq!(yes_no("I do have a question"), None);
        assert_eq!(yes_no("I don't"), Some(false));
    }
}
