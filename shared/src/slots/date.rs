//! Calendar dates said by a caller ("tomorrow", "next tuesday", "the 21st", "december
//! fifth", "in two weeks"), found in a longer utterance and resolved against the
//! tenant's today.

use chrono::{Datelike, Days, Months, NaiveDate, TimeDelta, Weekday};

use super::number::{self, NumSpan};
use super::tokens::{self, Tok, Tokens};

/// The first calendar date said in `text`, relative to `today` (the tenant's local date).
///
/// Rules for the ambiguous cases:
/// - A bare weekday ("tuesday", "on tuesday", "this coming tuesday") is the next one
///   after today, 1 to 7 days ahead. "this tuesday" is the same but is today when today
///   is a Tuesday.
/// - "next tuesday" is the Tuesday of next calendar week (weeks start on Monday), so on a
///   Monday it is 8 days ahead and on a Saturday 3 days ahead; "tuesday next week" and
///   "next week on tuesday" mean the same. "tuesday after next" adds a week to that.
/// - A day of the month ("the fifth", "on the 21st") is the next such day on or after
///   today, skipping months that lack it; "the fifth of next month" pins the month.
/// - A month and day without a year ("december fifth", "5th of dec", "dec 5") is the next
///   one on or after today; a four-digit year ("december 5 2027") pins it.
/// - "in two weeks", "a week from today", "two weeks from tomorrow", "in a month": added
///   to today (months by the calendar, clamped to the month's last day).
/// - Spans that are not one day ("next week", "this weekend", "in may", "within a
///   month") give `None`: a flow should ask for a day. So do ordinals without "the" or
///   "on" ("I came fifth") and months without a day ("may I ask").
///
/// ```
/// use chrono::NaiveDate;
/// use parley_shared::slots::date;
/// let saturday = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
/// assert_eq!(date("uh next tuesday if that works", saturday), NaiveDate::from_ymd_opt(2026, 11, 24));
/// assert_eq!(date("no idea", saturday), None);
/// ```
pub fn date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let t = Tokens::new(text);
    let found = find(&t)?;
    resolve(&found.expr, today)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// "tuesday", "on tuesday", "this coming tuesday": 1..=7 days ahead.
    Coming,
    /// "this tuesday": 0..=6 days ahead.
    This,
    /// "next tuesday": in next calendar week.
    Next,
    /// "tuesday after next".
    AfterNext,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Unit {
    Day,
    Week,
    Month,
    Year,
}

/// A date as said, before it is resolved against today.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DateExpr {
    Offset(i64),
    Weekday(Weekday, Mode),
    DayOfMonth {
        day: u32,
        months_ahead: Option<u32>,
    },
    MonthDay {
        month: u32,
        day: u32,
        year: Option<i32>,
    },
    Later {
        from: i64,
        n: u32,
        unit: Unit,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DateFound {
    pub expr: DateExpr,
    pub start: usize,
    pub end: usize,
}

/// The earliest date expression in the tokens.
pub(crate) fn find(t: &Tokens) -> Option<DateFound> {
    (0..t.len()).find_map(|i| match_at(t, i))
}

/// Every date expression in the tokens (for other parsers to skip their numbers).
pub(crate) fn spans(t: &Tokens) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match match_at(t, i) {
            Some(f) => {
                out.push((f.start, f.end));
                i = f.end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}

/// Words that may follow "the fifth" when it is a date ("the fifth at two works"),
/// as opposed to "the fifth floor".
#[rustfmt::skip]
const DAY_FOLLOWERS: &[&str] = &[
    "at", "in", "works", "work", "would", "is", "or", "and", "if", "then", "please",
    "maybe", "around", "for", "that", "sounds", "okay", "ok", "fine", "good", "great",
    "perfect", "instead", "too", "as", "between", "from", "by", "after", "before",
    "morning", "afternoon", "evening", "night", "suits", "should", "could", "will",
    "preferably", "ideally", "thanks", "thank", "yes", "yeah", "probably", "i", "we",
    "though", "any", "sometime", "anytime", "say", "either", "so", "because", "cause",
];

pub(crate) fn resolve(e: &DateExpr, today: NaiveDate) -> Option<NaiveDate> {
    match e {
        DateExpr::Offset(d) => today.checked_add_signed(TimeDelta::try_days(*d)?),
        DateExpr::Weekday(wd, mode) => {
            let cur = i64::from(today.weekday().num_days_from_monday());
            let target = i64::from(wd.num_days_from_monday());
            let ahead = match mode {
                Mode::Coming => match (target - cur).rem_euclid(7) {
                    0 => 7,
                    d => d,
                },
                Mode::This => (target - cur).rem_euclid(7),
                Mode::Next => 7 - cur + target,
                Mode::AfterNext => 14 - cur + target,
            };
            today.checked_add_signed(TimeDelta::try_days(ahead)?)
        }
        DateExpr::DayOfMonth { day, months_ahead } => {
            let first = today.with_day(1)?;
            match months_ahead {
                Some(m) => first.checked_add_months(Months::new(*m))?.with_day(*day),
                // Thirteen months reach every day that any month has.
                None => (0..13).find_map(|m| {
                    first
                        .checked_add_months(Months::new(m))?
                        .with_day(*day)
                        .filter(|d| *d >= today)
                }),
            }
        }
        DateExpr::MonthDay { month, day, year } => match year {
            Some(y) => NaiveDate::from_ymd_opt(*y, *month, *day),
            // Eight years reach the next 29 February.
            None => (0..9).find_map(|k| {
                NaiveDate::from_ymd_opt(today.year().checked_add(k)?, *month, *day)
                    .filter(|d| *d >= today)
            }),
        },
        DateExpr::Later { from, n, unit } => {
            let base = today.checked_add_signed(TimeDelta::try_days(*from)?)?;
            match unit {
                Unit::Day => base.checked_add_days(Days::new(u64::from(*n))),
                Unit::Week => base.checked_add_days(Days::new(u64::from(*n).checked_mul(7)?)),
                Unit::Month => base.checked_add_months(Months::new(*n)),
                Unit::Year => base.checked_add_months(Months::new(n.checked_mul(12)?)),
            }
        }
    }
}

/// A whole day number 1..=31 at `i`: "5", "5th", "fifth", "twenty first", "twenty one".
fn day_at(t: &Tokens, i: usize) -> Option<(u32, usize, bool)> {
    let s: NumSpan = number::parse_at(t, i)?;
    if let Some(Tok::Num {
        int_len, fraction, ..
    }) = t.get(i)
        && (*int_len > 2 || *fraction)
    {
        return None;
    }
    let whole = s.value.fract() == 0.0 && (1.0..=31.0).contains(&s.value);
    // "a couple", "half a dozen" and scaled numbers are not days.
    let plain = s.scale.is_none() && !t.is_any(i, &["a", "an", "half", "couple"]);
    (whole && plain).then_some((s.value as u32, s.end, s.ordinal))
}

/// A four-digit year after a date: "december 5 2027", "december 5th, 2027".
fn year_at(t: &Tokens, mut i: usize) -> (Option<i32>, usize) {
    let start = i;
    if t.get(i) == Some(&Tok::Break) {
        i += 1;
    }
    if let Some(Tok::Num {
        value,
        int_len: 4,
        fraction: false,
        ordinal: false,
    }) = t.get(i)
        && (1900.0..=2200.0).contains(value)
    {
        return (Some(*value as i32), i + 1);
    }
    (None, start)
}

fn unit_word(w: &str) -> Option<Unit> {
    Some(match w {
        "day" | "days" => Unit::Day,
        "week" | "weeks" => Unit::Week,
        "month" | "months" => Unit::Month,
        "year" | "years" => Unit::Year,
        _ => return None,
    })
}

/// "two weeks", "a week", "a couple of days", "a fortnight" at `i`: (n, unit, end).
pub(crate) fn quantity_at(t: &Tokens, i: usize) -> Option<(u32, Unit, usize)> {
    if t.is_any(i, &["a", "one"]) && t.is_any(i + 1, &["fortnight", "fortnights"]) {
        return Some((2, Unit::Week, i + 2));
    }
    if t.is_any(i, &["a", "an"])
        && let Some(u) = t.word(i + 1).and_then(unit_word)
    {
        return Some((1, u, i + 2));
    }
    if t.phrase(i, &["a", "few"]) || t.is(i, "few") {
        // "a few" is vague; three is how it is usually meant, and only timelines use it.
        let k = if t.is(i, "a") { i + 2 } else { i + 1 };
        return t.word(k).and_then(unit_word).map(|u| (3, u, k + 1));
    }
    let s = number::parse_at(t, i)?;
    if s.ordinal || s.value.fract() != 0.0 || !(0.0..=10_000.0).contains(&s.value) {
        return None;
    }
    let mut k = s.end;
    if t.is(k, "of") {
        k += 1;
    }
    let u = t.word(k).and_then(unit_word)?;
    Some((s.value as u32, u, k + 1))
}

fn month_at(t: &Tokens, i: usize) -> Option<u32> {
    t.word(i).and_then(tokens::month)
}

fn match_at(t: &Tokens, i: usize) -> Option<DateFound> {
    let found = |expr, end| {
        Some(DateFound {
            expr,
            start: i,
            end,
        })
    };

    if t.phrase(i, &["the", "day", "after", "tomorrow"]) {
        return found(DateExpr::Offset(2), i + 4);
    }
    if t.phrase(i, &["day", "after", "tomorrow"]) {
        return found(DateExpr::Offset(2), i + 3);
    }

    // "in two weeks", "in a couple of days"; "within" is a span, not a day.
    if t.is_any(i, &["in", "after"])
        && let Some((n, u, end)) = quantity_at(t, i + 1)
    {
        // "in two days time", "in 2 weeks' time".
        let end = if t.is(end, "time") { end + 1 } else { end };
        return found(
            DateExpr::Later {
                from: 0,
                n,
                unit: u,
            },
            end,
        );
    }
    // "a week from today", "two weeks from tomorrow", "a week today" (British).
    if let Some((n, u, end)) = quantity_at(t, i) {
        let base = |k: usize| -> Option<(i64, usize)> {
            if t.is_any(k, &["today", "now"]) {
                Some((0, k + 1))
            } else if t.is(k, "tomorrow") {
                Some((1, k + 1))
            } else {
                None
            }
        };
        let from = if t.is(end, "from") {
            base(end + 1)
        } else if t.is(end, "today") || t.is(end, "tomorrow") {
            base(end)
        } else {
            None
        };
        if let Some((from, end)) = from {
            return found(DateExpr::Later { from, n, unit: u }, end);
        }
    }

    if t.is_any(i, &["today", "tonight", "todays"]) {
        return found(DateExpr::Offset(0), i + 1);
    }
    if t.is(i, "this") && t.is_any(i + 1, &["morning", "afternoon", "evening"]) {
        return found(DateExpr::Offset(0), i + 2);
    }
    if t.is_any(i, &["tomorrow", "tomorrows", "tmrw", "tomorow"]) {
        return found(DateExpr::Offset(1), i + 1);
    }
    if t.is(i, "yesterday") {
        return found(DateExpr::Offset(-1), i + 1);
    }

    if let Some(f) = weekday_at(t, i) {
        // "tuesday the 5th", "friday december 5": the explicit date is more precise.
        let mut k = f.end;
        if t.get(k) == Some(&Tok::Break) {
            k += 1;
        }
        if let Some(d) = month_day_at(t, k).or_else(|| day_of_month_at(t, k)) {
            return found(d.expr, d.end);
        }
        return Some(f);
    }

    if let Some(f) = month_day_at(t, i) {
        return Some(f);
    }
    day_of_month_at(t, i)
}

fn weekday_at(t: &Tokens, i: usize) -> Option<DateFound> {
    let found = |expr, end| {
        Some(DateFound {
            expr,
            start: i,
            end,
        })
    };
    // "next week on tuesday", "next week tuesday".
    if t.phrase(i, &["next", "week"]) {
        let k = if t.is(i + 2, "on") { i + 3 } else { i + 2 };
        if let Some(wd) = t.word(k).and_then(tokens::weekday) {
            return found(DateExpr::Weekday(wd, Mode::Next), k + 1);
        }
        return None;
    }
    let (mode, k) = if t.phrase(i, &["this", "coming"]) {
        (Mode::Coming, i + 2)
    } else if t.is(i, "coming") {
        (Mode::Coming, i + 1)
    } else if t.is(i, "this") {
        (Mode::This, i + 1)
    } else if t.is(i, "next") {
        (Mode::Next, i + 1)
    } else if t.is(i, "on") {
        (Mode::Coming, i + 1)
    } else {
        (Mode::Coming, i)
    };
    let wd = t.word(k).and_then(tokens::weekday)?;
    // "last tuesday" is past and "every tuesday" is not one day.
    if t.is_any(i.wrapping_sub(1), &["last", "every", "past", "previous"]) {
        return None;
    }
    let mut end = k + 1;
    let mut mode = mode;
    if t.phrase(end, &["next", "week"]) || t.phrase(end, &["of", "next", "week"]) {
        end += if t.is(end, "of") { 3 } else { 2 };
        mode = Mode::Next;
    } else if t.phrase(end, &["this", "week"]) {
        end += 2;
        mode = Mode::This;
    } else if t.phrase(end, &["after", "next"]) {
        end += 2;
        mode = Mode::AfterNext;
    } else if t.phrase(end, &["week", "after", "next"]) {
        end += 3;
        mode = Mode::AfterNext;
    }
    found(DateExpr::Weekday(wd, mode), end)
}

/// "december fifth", "dec 5", "december the 5th, 2027", "5th of december", "the fifth
/// of december", "5 dec".
fn month_day_at(t: &Tokens, i: usize) -> Option<DateFound> {
    let found = |expr, end| {
        Some(DateFound {
            expr,
            start: i,
            end,
        })
    };
    if let Some(month) = month_at(t, i) {
        let k = if t.is(i + 1, "the") { i + 2 } else { i + 1 };
        let (day, end, _) = day_at(t, k)?;
        let (year, end) = year_at(t, end);
        return found(DateExpr::MonthDay { month, day, year }, end);
    }
    let k = if t.is(i, "the") { i + 1 } else { i };
    let (day, end, _) = day_at(t, k)?;
    let m = if t.is(end, "of") { end + 1 } else { end };
    let month = month_at(t, m)?;
    let (year, end) = year_at(t, m + 1);
    found(DateExpr::MonthDay { month, day, year }, end)
}

/// "the fifth", "on the 21st", "on 5th", "the fifth of next month".
fn day_of_month_at(t: &Tokens, i: usize) -> Option<DateFound> {
    let k = if t.phrase(i, &["on", "the"]) {
        i + 2
    } else if t.is_any(i, &["the", "on"]) {
        i + 1
    } else {
        return None;
    };
    let (day, end, ordinal) = day_at(t, k)?;
    if !ordinal {
        return None;
    }
    let found = |months_ahead, end| {
        Some(DateFound {
            expr: DateExpr::DayOfMonth { day, months_ahead },
            start: i,
            end,
        })
    };
    if t.phrase(end, &["of", "this", "month"]) {
        return found(Some(0), end + 3);
    }
    if t.phrase(end, &["of", "next", "month"]) || t.phrase(end, &["next", "month"]) {
        let e = if t.is(end, "of") { end + 3 } else { end + 2 };
        return found(Some(1), e);
    }
    let follows_ok = t.is_end(end)
        || t.is_any(end, DAY_FOLLOWERS)
        || matches!(t.get(end), Some(Tok::Num { .. } | Tok::Clock { .. }))
        || t.word(end).is_some_and(|w| tokens::weekday(w).is_some());
    follows_ok.then(|| found(None, end)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn next_weekday_follows_calendar_weeks() {
        let monday = d(2026, 11, 16);
        assert_eq!(date("next tuesday", monday), Some(d(2026, 11, 24)));
        assert_eq!(date("tuesday", monday), Some(d(2026, 11, 17)));
        assert_eq!(date("this tuesday", monday), Some(d(2026, 11, 17)));
        assert_eq!(date("monday", monday), Some(d(2026, 11, 23)));
        assert_eq!(date("this monday", monday), Some(monday));
        assert_eq!(date("tuesday after next", monday), Some(d(2026, 12, 1)));
    }

    #[test]
    fn day_of_month_skips_short_months() {
        let nov = d(2026, 11, 21);
        // November has no 31st; December does.
        assert_eq!(date("the 31st", nov), Some(d(2026, 12, 31)));
        assert_eq!(date("on the 30th", nov), Some(d(2026, 11, 30)));
        assert_eq!(date("the fifth of next month", nov), Some(d(2026, 12, 5)));
        assert_eq!(date("the fifth floor", nov), None);
    }

    #[test]
    fn leap_day_without_year_finds_the_next_leap_year() {
        assert_eq!(date("february 29th", d(2026, 3, 1)), Some(d(2028, 2, 29)));
    }

    #[test]
    fn huge_offsets_do_not_panic() {
        let today = d(2026, 11, 21);
        assert_eq!(date("in 9999 years", today), Some(d(12025, 11, 21)));
        assert!(date("in 10000 days", today).is_some());
        assert_eq!(date("in 99999999999 days", today), None);
    }
}
