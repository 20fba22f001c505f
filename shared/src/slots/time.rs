//! Times of day said by a caller ("two pm", "half past three", "14:30", "at 10"), found
//! in a longer utterance without mistaking other numbers ("two kids") for hours.

use chrono::{NaiveTime, TimeDelta};

use super::date;
use super::number::{self, tens_word, unit_word};
use super::tokens::{self, Tok, Tokens};

/// The first time of day said in `text`.
///
/// Recognised: "2pm", "2 p.m.", "two pm", "14:30", "2:30", "two thirty", "ten oh five",
/// "half past three", "half three" (British), "quarter to five", "ten past six",
/// "noon", "midday", "midnight", "three o'clock", "three in the afternoon",
/// "9 in the morning", "at 10".
///
/// Rules for the ambiguous cases:
/// - An hour said without am/pm takes a period word said anywhere in the utterance
///   ("tomorrow morning at 9", "this evening at 7"); "night" makes 12 midnight, 1–4 am
///   and 5–11 pm. Without one, a booking hour 1–6 is pm, 7–11 is am and 12 is noon.
///   Hours 0 and 13–23, and zero-padded clock times ("09:30"), are 24-hour and taken
///   as said.
/// - A number with a marker (am/pm, o'clock, a colon, "half past", "in the morning")
///   is a time wherever it stands. A bare number ("two", "two thirty") is a time only
///   after "at", "around", "about", "by", "after", "before", "until" or "from" and not
///   followed by a noun ("at 7" but not "at 7 people"), or when the utterance holds
///   nothing else but filler, period and date words ("uh maybe two thirty"). So "I have
///   two kids" is no time.
/// - "N to H" is read as minutes to the hour only with N in words ("ten to five"),
///   since "2 to 3" is more often a range. A range gives its start, with the end's am/pm:
///   "2 to 3 pm" is 14:00, "between 2 and 3" 14:00, "9 or 10 am" 09:00.
///
/// ```
/// use chrono::NaiveTime;
/// use parley_shared::slots::time;
/// assert_eq!(time("uh I think 2:30 works"), NaiveTime::from_hms_opt(14, 30, 0));
/// assert_eq!(time("I have two kids"), None);
/// ```
pub fn time(text: &str) -> Option<NaiveTime> {
    let t = Tokens::new(text);
    let dates = date::spans(&t);
    find(&t, &dates).map(|f| f.time)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Meridiem {
    Am,
    Pm,
    Night,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TimeFound {
    pub time: NaiveTime,
    /// am or pm came from the booking-hours rule, not from the caller's words.
    pub guessed: bool,
}

/// A time as said, before am/pm is settled.
#[derive(Clone, Debug, PartialEq)]
struct Raw {
    hour: u32,
    minute: u32,
    /// Minutes added after resolving: -15 for "quarter to".
    offset: i64,
    meridiem: Option<Meridiem>,
    /// 24-hour: taken as said.
    literal: bool,
    strong: bool,
    end: usize,
}

const WEAK_PREFIXES: &[&str] = &[
    "at", "around", "about", "by", "after", "before", "until", "till", "til", "from",
];

/// Words that may follow a bare hour ("at 7 works", "at 2 on friday") when it is a time.
#[rustfmt::skip]
const TIME_FOLLOWERS: &[&str] = &[
    "works", "work", "would", "is", "if", "or", "and", "then", "please", "ok", "okay", "on",
    "tomorrow", "today", "tonight", "next", "this", "maybe", "instead", "ish", "that",
    "for", "fine", "good", "great", "perfect", "thanks", "thank", "in", "sounds", "suits",
    "should", "could", "will", "i", "we", "but", "latest", "earliest", "sharp", "at", "the",
    "yes", "yeah", "so", "too", "because", "cause", "either",
];

/// Words that set the part of the day; a bare time said with them is still an answer.
const PERIOD_WORDS: &[&str] = &[
    "in",
    "the",
    "morning",
    "afternoon",
    "evening",
    "night",
    "tonight",
    "this",
];

/// The earliest time in the tokens outside the `exclude` spans (dates).
pub(crate) fn find(t: &Tokens, exclude: &[(usize, usize)]) -> Option<TimeFound> {
    let inside = |k: usize| exclude.iter().any(|(s, e)| (*s..*e).contains(&k));
    for i in 0..t.len() {
        if inside(i) {
            continue;
        }
        let Some(raw) = raw_at(t, i) else { continue };
        if (i..raw.end).any(inside) {
            continue;
        }
        // "2 to 3 pm", "between 2 and 3", "9 or 10": a bare hour that opens a range of
        // times is a time, and takes the other end's am/pm.
        let other_end = (!raw.strong && t.is_any(raw.end, &["to", "or", "and"]))
            .then(|| raw_at(t, raw.end + 1))
            .flatten()
            .filter(|r| {
                let opened = t
                    .prev_word(i)
                    .is_some_and(|w| w == "between" || WEAK_PREFIXES.contains(&w));
                r.strong
                    || weak_ok(t, i, r.end, &inside)
                    || (opened && (t.is_end(r.end) || t.is_any(r.end, TIME_FOLLOWERS)))
            });
        if !raw.strong && other_end.is_none() && !weak_ok(t, i, raw.end, &inside) {
            continue;
        }
        let period = raw
            .meridiem
            .or(other_end.and_then(|r| r.meridiem))
            .or_else(|| nearest_period(t, i, raw.end));
        if let Some((time, guessed)) = resolve(&raw, period) {
            return Some(TimeFound { time, guessed });
        }
    }
    None
}

/// Spans of marked times ("at 5", "3pm", "half past two"), for money to skip. "about 5"
/// is left alone: "about" hedges amounts as often as hours.
pub(crate) fn marked_spans(t: &Tokens) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match raw_at(t, i) {
            Some(raw) if raw.strong || t.prev_word(i) == Some("at") => {
                out.push((i, raw.end));
                i = raw.end.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

fn weak_ok(t: &Tokens, start: usize, end: usize, inside: &dyn Fn(usize) -> bool) -> bool {
    let prefixed = t
        .prev_word(start)
        .is_some_and(|w| WEAK_PREFIXES.contains(&w));
    let follows_ok = t.is_end(end)
        || t.is_any(end, TIME_FOLLOWERS)
        || t.word(end)
            .is_some_and(|w| tokens::weekday(w).is_some() || PERIOD_WORDS.contains(&w))
        || inside(end);
    if prefixed && follows_ok {
        return true;
    }
    // The whole answer is the time: "two thirty", "uh maybe 2".
    (0..t.len()).filter(|k| !(start..end).contains(k)).all(|k| {
        inside(k)
            || match t.get(k) {
                Some(Tok::Break) => true,
                Some(Tok::Word(w)) => {
                    tokens::FILLERS.contains(&w.as_str()) || PERIOD_WORDS.contains(&w.as_str())
                }
                _ => false,
            }
    })
}

/// The period word ("morning", "tonight") nearest to the time, if any was said.
fn nearest_period(t: &Tokens, start: usize, end: usize) -> Option<Meridiem> {
    (0..t.len())
        .filter_map(|k| {
            let m = match t.word(k)? {
                "morning" | "mornings" => Meridiem::Am,
                "afternoon" | "afternoons" | "evening" | "evenings" | "tonight" => Meridiem::Pm,
                "night" => Meridiem::Night,
                _ => return None,
            };
            // "good morning" is a greeting, not the caller's period.
            if t.prev_word(k) == Some("good") {
                return None;
            }
            let dist = if k < start {
                start - k
            } else {
                k.saturating_sub(end)
            };
            Some((dist, m))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, m)| m)
}

fn resolve(raw: &Raw, period: Option<Meridiem>) -> Option<(NaiveTime, bool)> {
    let h = raw.hour;
    let mut guessed = false;
    let hour = if raw.literal {
        if h > 23 || (period == Some(Meridiem::Am) && h > 12) {
            return None;
        }
        h
    } else {
        match period {
            Some(Meridiem::Am) => h % 12,
            Some(Meridiem::Pm) => h % 12 + 12,
            Some(Meridiem::Night) => match h {
                12 => 0,
                1..=4 => h,
                _ => h + 12,
            },
            None => {
                guessed = true;
                match h {
                    1..=6 => h + 12,
                    _ => h,
                }
            }
        }
    };
    let t = NaiveTime::from_hms_opt(hour, raw.minute, 0)?;
    let (t, _) = t.overflowing_add_signed(TimeDelta::try_minutes(raw.offset)?);
    Some((t, guessed))
}

/// An hour at `i`: a word one..twelve or digits 0..=23 (not "500", not "5th").
fn hour_at(t: &Tokens, i: usize) -> Option<(u32, bool, usize)> {
    match t.get(i)? {
        Tok::Word(w) => {
            let h = unit_word(w).or(match w.as_str() {
                "ten" => Some(10.0),
                "eleven" => Some(11.0),
                "twelve" => Some(12.0),
                _ => None,
            })?;
            Some((h as u32, false, i + 1))
        }
        Tok::Num {
            value,
            int_len,
            fraction: false,
            ordinal: false,
        } if *int_len <= 2 && *value <= 23.0 => {
            let h = *value as u32;
            let literal = h == 0 || h >= 13 || (*int_len == 2 && h < 10);
            Some((h, literal, i + 1))
        }
        _ => None,
    }
}

/// Minutes after an hour: "30" (two digits), "thirty", "forty five", "fifteen", "oh five".
fn minutes_at(t: &Tokens, i: usize) -> Option<(u32, usize)> {
    match t.get(i)? {
        Tok::Num {
            value,
            int_len: 2,
            fraction: false,
            ordinal: false,
        } if *value < 60.0 => Some((*value as u32, i + 1)),
        Tok::Word(w) => {
            if let Some(tens) = tens_word(w).filter(|v| *v <= 50.0) {
                return match t.word(i + 1).and_then(unit_word) {
                    Some(u) => Some(((tens + u) as u32, i + 2)),
                    None => Some((tens as u32, i + 1)),
                };
            }
            if let Some(teen) = number::teen_word(w) {
                return Some((teen as u32, i + 1));
            }
            if matches!(w.as_str(), "oh" | "o") {
                let u = t.word(i + 1).and_then(unit_word)?;
                return Some((u as u32, i + 2));
            }
            None
        }
        _ => None,
    }
}

/// Markers after a time: am/pm, o'clock, "in the morning", "at night", "noon", "sharp".
/// "tonight" is not one: it is a date, and its evening reaches the time as a period word.
fn markers_at(t: &Tokens, mut i: usize) -> (Option<Meridiem>, bool, usize) {
    let mut meridiem = None;
    let mut strong = false;
    loop {
        if t.is_any(i, &["am"]) {
            meridiem = Some(Meridiem::Am);
            i += 1;
        } else if t.is_any(i, &["pm", "noon"]) {
            meridiem = Some(Meridiem::Pm);
            i += 1;
        } else if t.is(i, "oclock") || t.phrase(i, &["o", "clock"]) {
            i += if t.is(i, "o") { 2 } else { 1 };
        } else if t.is(i, "sharp") {
            i += 1;
        } else if t.phrase(i, &["in", "the", "morning"]) {
            meridiem = Some(Meridiem::Am);
            i += 3;
        } else if t.phrase(i, &["in", "the", "afternoon"]) || t.phrase(i, &["in", "the", "evening"])
        {
            meridiem = Some(Meridiem::Pm);
            i += 3;
        } else if t.phrase(i, &["at", "night"]) {
            meridiem = Some(Meridiem::Night);
            i += 2;
        } else {
            break;
        }
        strong = true;
    }
    (meridiem, strong, i)
}

fn raw_at(t: &Tokens, i: usize) -> Option<Raw> {
    let simple = |hour, minute, offset, literal, end| {
        let (meridiem, _, end) = markers_at(t, end);
        Some(Raw {
            hour,
            minute,
            offset,
            meridiem,
            literal,
            strong: true,
            end,
        })
    };
    if t.is_any(i, &["noon", "midday"]) {
        return simple(12, 0, 0, true, i + 1);
    }
    if t.is(i, "midnight") {
        return simple(0, 0, 0, true, i + 1);
    }

    // "half past three", "half three", "a quarter to five", "ten past six".
    let q = if t.phrase(i, &["a", "quarter"]) {
        i + 1
    } else {
        i
    };
    let relative = if t.is(q, "quarter") {
        Some((15, q + 1, true))
    } else if t.is(i, "half") {
        Some((30, i + 1, true))
    } else if let Some(s) = number::parse_at(t, i).filter(|s| {
        !s.ordinal && s.scale.is_none() && s.value.fract() == 0.0 && (1.0..60.0).contains(&s.value)
    }) {
        let end = if t.is_any(s.end, &["minutes", "minute", "mins", "min"]) {
            s.end + 1
        } else {
            s.end
        };
        // "ten to five" but not "2 to 3": a range in digits.
        let worded = end > s.end || matches!(t.get(i), Some(Tok::Word(_)));
        Some((s.value as u32, end, worded))
    } else {
        None
    };
    if let Some((minutes, k, to_ok)) = relative {
        let half = t.is(i, "half");
        let (offset, hk) = if t.is_any(k, &["past", "after"]) {
            (i64::from(minutes), k + 1)
        } else if t.is_any(k, &["to", "til", "till", "of"]) && to_ok && !half {
            (-i64::from(minutes), k + 1)
        } else if half && q == i {
            // British "half three" is 3:30.
            (30, k)
        } else {
            (0, usize::MAX)
        };
        if hk != usize::MAX
            && let Some((hour, literal, end)) = hour_at(t, hk)
            && (1..=12).contains(&hour)
            && !literal
        {
            return simple(hour, 0, offset, false, end);
        }
    }

    if let Some(Tok::Clock {
        hour,
        minute,
        padded,
    }) = t.get(i)
    {
        if *minute > 59 {
            return None;
        }
        let literal = *padded || *hour >= 13 || *hour == 0;
        return simple(*hour, *minute, 0, literal, i + 1);
    }

    let (hour, literal, k) = hour_at(t, i)?;
    let (minute, k) = minutes_at(t, k).unwrap_or((0, k));
    let (meridiem, strong, end) = markers_at(t, k);
    Some(Raw {
        hour,
        minute,
        offset: 0,
        meridiem,
        literal,
        strong,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(h: u32, m: u32) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(h, m, 0)
    }

    #[test]
    fn night_and_padded() {
        assert_eq!(time("12 at night"), hm(0, 0));
        assert_eq!(time("2 at night"), hm(2, 0));
        assert_eq!(time("09:30"), hm(9, 30));
        assert_eq!(time("9:30"), hm(9, 30));
        assert_eq!(time("3:30"), hm(15, 30));
        assert_eq!(time("03:30"), hm(3, 30));
    }

    #[test]
    fn impossible_times() {
        assert_eq!(time("25:00"), None);
        assert_eq!(time("14 am"), None);
        assert_eq!(time("10:75"), None);
    }

    #[test]
    fn relative_minutes() {
        assert_eq!(time("ten to five"), hm(16, 50));
        assert_eq!(time("twenty five past six"), hm(18, 25));
        assert_eq!(
            time("quarter to seven"),
            hm(6, 45),
            "seven is a morning hour"
        );
        assert_eq!(time("10 after 3"), hm(15, 10));
    }

    #[test]
    fn greeting_is_not_a_period() {
        assert_eq!(time("good morning, at 3 please"), hm(15, 0));
    }
}
