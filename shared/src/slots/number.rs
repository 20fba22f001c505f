//! Numbers said by a caller, in digits or words: "2.5", "1,200", "15k", "twenty five",
//! "a hundred", "one point five", "two and a half million", "fifty lakh". Money, dates,
//! times and timelines all read their quantities through [`parse_at`].

use super::tokens::{Tok, Tokens};

/// The first cardinal number in `text`, ignoring the words around it.
///
/// Digits ("2.5", "1,200", "50,00,000"), words ("five hundred thousand", "a hundred",
/// "one point five", "twelve hundred"), suffixes ("15k", "2.5m") and the Indian scale
/// words lakh (100,000) and crore (10,000,000). "a couple" is 2 and "a dozen" 12; vague
/// amounts ("a few", "some") are not numbers. Ordinals ("the fifth", "21st") are not
/// quantities and are skipped: [`super::date`] reads them.
///
/// ```
/// use parley_shared::slots::number;
/// assert_eq!(number("uh about five hundred thousand I guess"), Some(500_000.0));
/// assert_eq!(number("no idea"), None);
/// ```
pub fn number(text: &str) -> Option<f64> {
    let t = Tokens::new(text);
    spans(&t).into_iter().find(|s| !s.ordinal).map(|s| s.value)
}

/// A number found in the tokens, `start..end`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NumSpan {
    pub value: f64,
    pub start: usize,
    pub end: usize,
    pub ordinal: bool,
    /// The last scale word applied ("thousand" in "five hundred thousand"), so that the
    /// lower end of "between 400 and 500 thousand" can borrow it.
    pub scale: Option<f64>,
    /// Said with lakh or crore: an Indian amount.
    pub indian: bool,
}

const UNITS: &[(&str, f64)] = &[
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
];
const TEENS: &[(&str, f64)] = &[
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
];
const TENS: &[(&str, f64)] = &[
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fourty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
];
const UNIT_ORDINALS: &[(&str, f64)] = &[
    ("first", 1.0),
    ("second", 2.0),
    ("third", 3.0),
    ("fourth", 4.0),
    ("fifth", 5.0),
    ("sixth", 6.0),
    ("seventh", 7.0),
    ("eighth", 8.0),
    ("ninth", 9.0),
];
const TEEN_ORDINALS: &[(&str, f64)] = &[
    ("tenth", 10.0),
    ("eleventh", 11.0),
    ("twelfth", 12.0),
    ("thirteenth", 13.0),
    ("fourteenth", 14.0),
    ("fifteenth", 15.0),
    ("sixteenth", 16.0),
    ("seventeenth", 17.0),
    ("eighteenth", 18.0),
    ("nineteenth", 19.0),
    ("twentieth", 20.0),
    ("thirtieth", 30.0),
    ("fortieth", 40.0),
    ("fiftieth", 50.0),
    ("sixtieth", 60.0),
    ("seventieth", 70.0),
    ("eightieth", 80.0),
    ("ninetieth", 90.0),
];

fn lookup(table: &[(&str, f64)], w: &str) -> Option<f64> {
    table.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

pub(crate) fn unit_word(w: &str) -> Option<f64> {
    lookup(UNITS, w)
}
pub(crate) fn teen_word(w: &str) -> Option<f64> {
    lookup(TEENS, w)
}
pub(crate) fn tens_word(w: &str) -> Option<f64> {
    lookup(TENS, w)
}

/// Scale words and whether they may only follow digits ("15k", "2.5m", "3 cr"), where a
/// lone letter after a word would be noise.
fn scale_word(w: &str) -> Option<(f64, bool)> {
    Some(match w {
        "thousand" | "thousands" => (1e3, false),
        "grand" => (1e3, false),
        "k" => (1e3, true),
        "lakh" | "lakhs" | "lac" | "lacs" => (1e5, false),
        "million" | "millions" | "mil" | "mill" => (1e6, false),
        "m" | "mn" => (1e6, true),
        "crore" | "crores" => (1e7, false),
        "cr" => (1e7, true),
        "billion" | "billions" => (1e9, false),
        "bn" | "b" => (1e9, true),
        _ => return None,
    })
}

/// Whether `w` begins a plain number word (for the look-ahead after "and").
fn is_small_word(w: &str) -> bool {
    unit_word(w).is_some() || teen_word(w).is_some() || tens_word(w).is_some()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Last {
    Start,
    A,
    Unit,
    Teen,
    Tens,
    TensUnit,
    Hundred,
    Scale,
    And,
    Digits { whole: bool },
    Fraction,
    HalfBeforeScale,
}

impl Last {
    fn takes_small(self) -> bool {
        matches!(self, Last::Start | Last::Hundred | Last::Scale | Last::And)
    }
}

/// Every number in the tokens, left to right, not overlapping.
pub(crate) fn spans(t: &Tokens) -> Vec<NumSpan> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match parse_at(t, i) {
            Some(s) => {
                i = s.end.max(i + 1);
                out.push(s);
            }
            None => i += 1,
        }
    }
    out
}

/// The longest number starting exactly at token `i`.
pub(crate) fn parse_at(t: &Tokens, i: usize) -> Option<NumSpan> {
    let mut total = 0.0_f64;
    let mut cur = 0.0_f64;
    let mut last = Last::Start;
    let mut last_scale = f64::INFINITY;
    let mut hundred_in_group = false;
    let mut scale = None;
    let mut indian = false;
    let mut best: Option<NumSpan> = None;
    let mut j = i;

    let commit = |total: f64, cur: f64, end: usize, scale, indian, ordinal| {
        let value = total + cur;
        value.is_finite().then_some(NumSpan {
            value,
            start: i,
            end,
            ordinal,
            scale,
            indian,
        })
    };

    // Bounded by the grammar: scales strictly decrease and a fraction takes 9 digits at
    // most, so a span never runs longer than a few dozen tokens.
    while let Some(tok) = t.get(j) {
        match tok {
            Tok::Num {
                value,
                fraction,
                ordinal,
                ..
            } if last == Last::Start => {
                cur = *value;
                if *ordinal {
                    return commit(0.0, cur, j + 1, None, false, true);
                }
                last = Last::Digits { whole: !fraction };
                j += 1;
                best = commit(total, cur, j, None, false, false);
                continue;
            }
            Tok::Word(w) => {
                let w = w.as_str();
                if last == Last::Start && (w == "a" || w == "an") {
                    // "a hundred", "a million", "a couple", "a dozen": the article is one.
                    cur = 1.0;
                    last = Last::A;
                    j += 1;
                    continue;
                }
                if matches!(last, Last::Start | Last::A) && w == "couple" {
                    cur = 2.0;
                    last = Last::Unit;
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    // "a couple of hundred": "of" belongs to the number only before a scale.
                    if t.is(j, "of")
                        && t.word(j + 1)
                            .is_some_and(|n| n == "hundred" || scale_word(n).is_some())
                    {
                        j += 1;
                    }
                    continue;
                }
                if last == Last::Start
                    && w == "half"
                    && t.is_any(j + 1, &["a", "an"])
                    && let Some(n) = t.word(j + 2)
                {
                    // "half a million", "half a lakh", "half a dozen".
                    if let Some((mult, digits_only)) = scale_word(n)
                        && !digits_only
                    {
                        total = 0.5 * mult;
                        last = Last::Scale;
                        last_scale = mult;
                        scale = Some(mult);
                        indian = mult == 1e5 || mult == 1e7;
                        j += 3;
                        best = commit(total, cur, j, scale, indian, false);
                        continue;
                    }
                    let small = match n {
                        "dozen" => Some(6.0),
                        "hundred" => Some(50.0),
                        _ => None,
                    };
                    if let Some(v) = small {
                        return commit(0.0, v, j + 3, None, false, false);
                    }
                    break;
                }
                if w == "zero" && last == Last::Start {
                    return commit(0.0, 0.0, j + 1, None, false, false);
                }
                if let Some(u) = unit_word(w) {
                    if last == Last::Tens {
                        cur += u;
                        last = Last::TensUnit;
                    } else if last.takes_small() {
                        cur += u;
                        last = Last::Unit;
                    } else {
                        break;
                    }
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                if let Some(v) = teen_word(w) {
                    if !last.takes_small() {
                        break;
                    }
                    cur += v;
                    last = Last::Teen;
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                if let Some(v) = tens_word(w) {
                    if !last.takes_small() {
                        break;
                    }
                    cur += v;
                    last = Last::Tens;
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                if let Some(u) = lookup(UNIT_ORDINALS, w) {
                    if last == Last::Tens || last.takes_small() {
                        return commit(total, cur + u, j + 1, scale, indian, true);
                    }
                    break;
                }
                if let Some(v) = lookup(TEEN_ORDINALS, w) {
                    if last.takes_small() {
                        return commit(total, cur + v, j + 1, scale, indian, true);
                    }
                    break;
                }
                if w == "hundred" {
                    let ok = match last {
                        Last::A | Last::Unit | Last::Teen | Last::Tens | Last::TensUnit => true,
                        Last::Digits { whole } => whole && (1.0..100.0).contains(&cur),
                        _ => false,
                    };
                    if !ok || hundred_in_group {
                        break;
                    }
                    cur *= 100.0;
                    hundred_in_group = true;
                    last = Last::Hundred;
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                if w == "dozen" {
                    let ok = match last {
                        Last::A | Last::Unit | Last::Teen | Last::Tens | Last::TensUnit => true,
                        Last::Digits { whole } => whole,
                        _ => false,
                    };
                    if ok {
                        return commit(total, cur * 12.0, j + 1, scale, indian, false);
                    }
                    break;
                }
                if let Some((mult, digits_only)) = scale_word(w) {
                    let after_digits = matches!(t.get(i), Some(Tok::Num { .. }))
                        && matches!(last, Last::Digits { .. } | Last::Fraction);
                    let ok = !matches!(last, Last::Start | Last::Scale | Last::And);
                    if !ok || cur <= 0.0 || mult >= last_scale || (digits_only && !after_digits) {
                        break;
                    }
                    total += cur * mult;
                    cur = 0.0;
                    last_scale = mult;
                    scale = Some(mult);
                    indian |= mult == 1e5 || mult == 1e7;
                    hundred_in_group = false;
                    last = Last::Scale;
                    j += 1;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                if w == "and" {
                    // "and a half": "two and a half", "a million and a half".
                    if t.is(j + 1, "a") && t.is(j + 2, "half") {
                        match last {
                            Last::Scale => {
                                total += 0.5 * last_scale;
                                return commit(total, cur, j + 3, scale, indian, false);
                            }
                            Last::Unit
                            | Last::Teen
                            | Last::Tens
                            | Last::TensUnit
                            | Last::Hundred
                            | Last::Digits { whole: true } => {
                                cur += 0.5;
                                last = Last::HalfBeforeScale;
                                j += 3;
                                best = commit(total, cur, j, scale, indian, false);
                                continue;
                            }
                            _ => break,
                        }
                    }
                    // "one hundred and five" but not "four hundred and five hundred
                    // thousand", which is two numbers (a range).
                    if matches!(last, Last::Hundred | Last::Scale)
                        && t.word(j + 1).is_some_and(is_small_word)
                    {
                        let mut k = j + 1;
                        if t.word(k).and_then(tens_word).is_some()
                            && t.word(k + 1).and_then(unit_word).is_some()
                        {
                            k += 1;
                        }
                        let next = t.word(k + 1).unwrap_or("");
                        if next != "hundred" && scale_word(next).is_none() {
                            last = Last::And;
                            j += 1;
                            continue;
                        }
                    }
                    break;
                }
                if w == "point" {
                    let ok = match last {
                        Last::Start | Last::Unit | Last::Teen | Last::Tens | Last::TensUnit => true,
                        Last::Digits { whole } => whole,
                        _ => false,
                    };
                    if !ok {
                        break;
                    }
                    let mut digits = String::new();
                    let mut k = j + 1;
                    while digits.len() < 9 {
                        match t.get(k) {
                            Some(Tok::Word(d)) => {
                                let d = match d.as_str() {
                                    "zero" | "oh" | "o" => 0.0,
                                    d => match unit_word(d) {
                                        Some(u) => u,
                                        None => break,
                                    },
                                };
                                digits.push(char::from(b'0' + d as u8));
                            }
                            Some(Tok::Num {
                                value,
                                fraction: false,
                                ordinal: false,
                                int_len,
                            }) if digits.is_empty() && *int_len <= 9 => {
                                digits = format!("{:0width$}", *value as u64, width = *int_len);
                                k += 1;
                                break;
                            }
                            _ => break,
                        }
                        k += 1;
                    }
                    if digits.is_empty() {
                        break;
                    }
                    let Ok(frac) = format!("0.{digits}").parse::<f64>() else {
                        break;
                    };
                    cur += frac;
                    last = Last::Fraction;
                    j = k;
                    best = commit(total, cur, j, scale, indian, false);
                    continue;
                }
                break;
            }
            _ => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Option<(f64, usize, usize)> {
        let t = Tokens::new(text);
        parse_at(&t, 0).map(|s| (s.value, s.start, s.end))
    }

    #[test]
    fn word_grammar() {
        assert_eq!(first("one hundred and five"), Some((105.0, 0, 4)));
        assert_eq!(first("twenty five hundred"), Some((2500.0, 0, 3)));
        assert_eq!(
            first("two million three hundred thousand"),
            Some((2_300_000.0, 0, 5))
        );
        assert_eq!(first("two crore fifty lakh"), Some((25_000_000.0, 0, 4)));
        // A second hundred in one group ends the number.
        assert_eq!(first("five hundred two hundred"), Some((502.0, 0, 3)));
    }

    #[test]
    fn and_before_another_number_is_not_part_of_it() {
        let t = Tokens::new("four hundred and five hundred thousand");
        let s = spans(&t);
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            vec![400.0, 500_000.0]
        );
    }

    #[test]
    fn halves_and_points() {
        assert_eq!(
            first("one and a half million").map(|x| x.0),
            Some(1_500_000.0)
        );
        assert_eq!(
            first("a million and a half").map(|x| x.0),
            Some(1_500_000.0)
        );
        assert_eq!(first("half a million").map(|x| x.0), Some(500_000.0));
        assert_eq!(first("one point two five").map(|x| x.0), Some(1.25));
        assert_eq!(
            first("one point two million").map(|x| x.0),
            Some(1_200_000.0)
        );
        assert_eq!(first("2.5m").map(|x| x.0), Some(2_500_000.0));
    }

    #[test]
    fn not_numbers() {
        assert_eq!(first("a house"), None);
        assert_eq!(first("hundred"), None);
        assert_eq!(first("point"), None);
        assert_eq!(
            first("five k").map(|x| x.2),
            Some(1),
            "k only follows digits"
        );
    }

    #[test]
    fn ordinals_are_flagged() {
        let t = Tokens::new("twenty first");
        let s = parse_at(&t, 0).unwrap();
        assert!(s.ordinal);
        assert_eq!(s.value, 21.0);
    }

    #[test]
    fn long_fractions_stop() {
        let text = format!("one point {}", "one ".repeat(5000));
        let t = Tokens::new(&text);
        let s = parse_at(&t, 0).unwrap();
        assert_eq!(s.end, 11);
    }
}
