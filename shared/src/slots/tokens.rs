//! The one tokenizer every slot parser reads: a transcript becomes lower-case words,
//! numbers written in digits, clock times, currency symbols and clause breaks, so each
//! parser matches words instead of re-scanning characters.

/// One token of an utterance.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Letters only, lower case, apostrophes dropped ("don't" → "dont", "o'clock" →
    /// "oclock") so that STT output with and without apostrophes reads the same.
    Word(String),
    /// Digits as written: "1,200", "2.5", "15" (of "15k"), "21st" (ordinal).
    Num {
        value: f64,
        /// How many digits before any decimal point ("05" has 2): minutes are two digits.
        int_len: usize,
        fraction: bool,
        ordinal: bool,
    },
    /// "2:30", "14:05"; `padded` when the hour was written with a leading zero ("09:30"),
    /// which is a 24-hour clock and never gets the am/pm guess.
    Clock {
        hour: u32,
        minute: u32,
        padded: bool,
    },
    /// An ISO 4217 code read from a symbol ("$", "£", "€", "₹").
    Currency(&'static str),
    /// A clause break: , . ; : ! ? and the like. Phrases never span one.
    Break,
}

/// An utterance as tokens, with the look-ups every parser needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tokens {
    toks: Vec<Tok>,
}

impl Tokens {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            toks: tokenize(text),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.toks.len()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Tok> {
        self.toks.get(i)
    }

    /// The word at `i`, if that token is a word.
    pub(crate) fn word(&self, i: usize) -> Option<&str> {
        match self.toks.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    pub(crate) fn is(&self, i: usize, w: &str) -> bool {
        self.word(i) == Some(w)
    }

    pub(crate) fn is_any(&self, i: usize, ws: &[&str]) -> bool {
        self.word(i).is_some_and(|x| ws.contains(&x))
    }

    /// Whether the words from `i` on are exactly `phrase`.
    pub(crate) fn phrase(&self, i: usize, phrase: &[&str]) -> bool {
        phrase
            .iter()
            .enumerate()
            .all(|(k, w)| i.checked_add(k).is_some_and(|j| self.is(j, w)))
    }

    /// The word before `i` (None at the start, or when a break or a non-word precedes).
    pub(crate) fn prev_word(&self, i: usize) -> Option<&str> {
        i.checked_sub(1).and_then(|j| self.word(j))
    }

    /// Whether `i` is past the end or a clause break.
    pub(crate) fn is_end(&self, i: usize) -> bool {
        matches!(self.toks.get(i), None | Some(Tok::Break))
    }
}

/// Words that carry no slot value: hesitations, hedges and politeness. A number said
/// with only these around it ("uh maybe two") is taken as the answer to the question.
#[rustfmt::skip]
pub(crate) const FILLERS: &[&str] = &[
    "uh", "um", "umm", "uhm", "er", "erm", "ah", "hmm", "mm", "oh", "well", "so", "like",
    "maybe", "perhaps", "probably", "say", "lets", "let", "us", "how", "about", "around",
    "approximately", "roughly", "i", "id", "im", "think", "guess", "would", "be", "could",
    "can", "do", "does", "works", "work", "is", "fine", "good", "great", "ok", "okay",
    "please", "then", "yeah", "yes", "sure", "that", "thats", "it", "its", "for", "me",
    "at", "by", "ish", "or", "just", "go", "with", "prefer", "want", "was", "thinking",
    "thank", "thanks", "you", "if", "possible", "best", "better", "kind", "of", "sort",
    "right", "alright", "actually", "honestly", "somewhere", "a", "the", "on", "and", "we",
    "should", "make", "book", "schedule", "put", "down", "available", "free", "sounds",
    "perfect", "yep", "yup", "hi", "hello", "hey", "exactly", "precisely", "sharp", "time",
    "either", "any", "some", "anytime",
];

pub(crate) fn weekday(w: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match w {
        "monday" | "mondays" => Mon,
        "tuesday" | "tuesdays" | "tues" => Tue,
        "wednesday" | "wednesdays" | "weds" => Wed,
        "thursday" | "thursdays" | "thurs" => Thu,
        "friday" | "fridays" => Fri,
        "saturday" | "saturdays" => Sat,
        "sunday" | "sundays" => Sun,
        _ => return None,
    })
}

pub(crate) fn month(w: &str) -> Option<u32> {
    Some(match w {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

/// Words that end an amount, after which a hyphen starts the other end of a range.
const SCALE_SUFFIXES: &[&str] = &[
    "k", "m", "mn", "bn", "cr", "lakh", "lakhs", "lac", "crore", "crores", "thousand", "million",
    "billion", "grand",
];

fn currency_symbol(c: char) -> Option<&'static str> {
    match c {
        '$' => Some("USD"),
        '£' => Some("GBP"),
        '€' => Some("EUR"),
        '₹' => Some("INR"),
        _ => None,
    }
}

fn tokenize(text: &str) -> Vec<Tok> {
    // "a.m." and "p.m." would otherwise split into letters and breaks.
    let lower = text
        .to_lowercase()
        .replace("a.m.", " am ")
        .replace("p.m.", " pm ")
        .replace("a.m", " am ")
        .replace("p.m", " pm ");
    let chars: Vec<char> = lower.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_ascii_digit() {
            i = digits(&chars, i, &mut toks);
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&c) = chars.get(i) {
                if c.is_alphabetic() {
                    w.push(c);
                } else if !is_apostrophe(c) {
                    break;
                }
                i += 1;
            }
            // "rs. 500": the abbreviation's dot is not a clause break.
            if w == "rs" && chars.get(i) == Some(&'.') {
                i += 1;
            }
            toks.push(Tok::Word(w));
        } else {
            if let Some(code) = currency_symbol(c) {
                toks.push(Tok::Currency(code));
            } else if matches!(c, '-' | '–' | '—') {
                // "400-500", "$400k-$500k" are ranges; between words a hyphen only joins
                // ("twenty-five").
                let after_num = match toks.last() {
                    Some(Tok::Num { .. }) => true,
                    Some(Tok::Word(w)) => SCALE_SUFFIXES.contains(&w.as_str()),
                    _ => false,
                };
                let next = chars.get(i + 1).copied().unwrap_or(' ');
                if after_num && (next.is_ascii_digit() || currency_symbol(next).is_some()) {
                    toks.push(Tok::Word("to".into()));
                }
            } else if c == '%' {
                toks.push(Tok::Word("percent".into()));
            } else if c == '&' {
                toks.push(Tok::Word("and".into()));
            } else if matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '…' | '(' | ')' | '"')
                && toks.last() != Some(&Tok::Break)
            {
                toks.push(Tok::Break);
            }
            i += 1;
        }
    }
    toks
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ')
}

fn take_digits(chars: &[char], mut i: usize, out: &mut String) -> usize {
    while let Some(&c) = chars.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        out.push(c);
        i += 1;
    }
    i
}

fn digit_at(chars: &[char], i: usize) -> bool {
    chars.get(i).is_some_and(|c| c.is_ascii_digit())
}

/// Reads a run of digits starting at `start` and pushes its token; returns where it ended.
fn digits(chars: &[char], start: usize, toks: &mut Vec<Tok>) -> usize {
    let mut int = String::new();
    let mut i = take_digits(chars, start, &mut int);

    // Clock time "2:30": exactly two digits of minutes.
    if chars.get(i) == Some(&':')
        && digit_at(chars, i + 1)
        && digit_at(chars, i + 2)
        && !digit_at(chars, i + 3)
        && int.len() <= 2
    {
        let hour = int.parse().unwrap_or(99);
        let minute = chars
            .get(i + 1..i + 3)
            .map(|m| m.iter().collect::<String>())
            .and_then(|m| m.parse().ok())
            .unwrap_or(99);
        toks.push(Tok::Clock {
            hour,
            minute,
            padded: int.len() == 2 && int.starts_with('0'),
        });
        return i + 3;
    }

    // Thousands separators, Western ("1,200,000") or Indian ("50,00,000"): the last
    // group has three digits, the others two or three. Anything else is a comma.
    let mut groups = vec![int.clone()];
    let mut j = i;
    // Eight groups reach 10^21; the cap keeps "1,1,1,1,..." linear.
    while groups.len() < 8 && chars.get(j) == Some(&',') && digit_at(chars, j + 1) {
        let mut g = String::new();
        j = take_digits(chars, j + 1, &mut g);
        groups.push(g);
    }
    if groups.len() > 1 {
        let last_ok = groups.last().is_some_and(|g| g.len() == 3);
        let first_ok = int.len() <= 3;
        let middle_ok = groups
            .iter()
            .skip(1)
            .take(groups.len().saturating_sub(2))
            .all(|g| g.len() == 2 || g.len() == 3);
        if last_ok && first_ok && middle_ok {
            int = groups.concat();
            i = j;
        }
    }

    let mut text = int.clone();
    let mut fraction = false;
    if chars.get(i) == Some(&'.') && digit_at(chars, i + 1) {
        text.push('.');
        i = take_digits(chars, i + 1, &mut text);
        fraction = true;
    }

    // "1st", "22nd", "3rd", "5th": an ordinal only when the suffix ends the word.
    let mut ordinal = false;
    let suffix: String = chars
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take(3)
        .take_while(|c| c.is_alphabetic())
        .collect();
    if !fraction
        && matches!(suffix.as_str(), "st" | "nd" | "rd" | "th")
        && !chars.get(i + 2).is_some_and(|c| c.is_alphabetic())
    {
        ordinal = true;
        i += 2;
    }

    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => toks.push(Tok::Num {
            value,
            int_len: int.len(),
            fraction,
            ordinal,
        }),
        // Hundreds of digits: no slot can use it, and it must not join its neighbours.
        _ => toks.push(Tok::Break),
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(value: f64) -> Tok {
        Tok::Num {
            value,
            int_len: 0,
            fraction: false,
            ordinal: false,
        }
    }

    fn simplify(t: &str) -> Vec<Tok> {
        // int_len is checked in its own test; zero it so tables stay readable.
        tokenize(t)
            .into_iter()
            .map(|t| match t {
                Tok::Num {
                    value,
                    fraction,
                    ordinal,
                    ..
                } => Tok::Num {
                    value,
                    int_len: 0,
                    fraction,
                    ordinal,
                },
                t => t,
            })
            .collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn words_lose_apostrophes_and_case() {
        assert_eq!(simplify("Don't O’Clock"), vec![w("dont"), w("oclock")]);
    }

    #[test]
    fn separators_indian_and_western() {
        assert_eq!(
            simplify("₹50,00,000"),
            vec![Tok::Currency("INR"), num(5_000_000.0)]
        );
        assert_eq!(simplify("1,200"), vec![num(1200.0)]);
        // Not a thousands group: a comma between two numbers.
        assert_eq!(simplify("5,5"), vec![num(5.0), Tok::Break, num(5.0)]);
    }

    #[test]
    fn suffixes_split_or_mark_ordinals() {
        assert_eq!(
            simplify("$500k"),
            vec![Tok::Currency("USD"), num(500.0), w("k")]
        );
        assert_eq!(simplify("2pm"), vec![num(2.0), w("pm")]);
        assert_eq!(simplify("2 p.m."), vec![num(2.0), w("pm")]);
        assert_eq!(
            simplify("21st"),
            vec![Tok::Num {
                value: 21.0,
                int_len: 0,
                fraction: false,
                ordinal: true
            }]
        );
        assert_eq!(simplify("5thousand")[0], num(5.0));
    }

    #[test]
    fn clock_and_ranges() {
        assert_eq!(
            tokenize("09:30"),
            vec![Tok::Clock {
                hour: 9,
                minute: 30,
                padded: true
            }]
        );
        assert_eq!(simplify("400-500"), vec![num(400.0), w("to"), num(500.0)]);
        assert_eq!(
            simplify("$4k-$5k"),
            vec![
                Tok::Currency("USD"),
                num(4.0),
                w("k"),
                w("to"),
                Tok::Currency("USD"),
                num(5.0),
                w("k")
            ]
        );
        assert_eq!(simplify("twenty-five"), vec![w("twenty"), w("five")]);
        assert_eq!(
            tokenize("05"),
            vec![Tok::Num {
                value: 5.0,
                int_len: 2,
                fraction: false,
                ordinal: false
            }]
        );
    }

    #[test]
    fn endless_digits_are_a_break() {
        let t = tokenize(&"9".repeat(5000));
        assert_eq!(t, vec![Tok::Break]);
    }
}
