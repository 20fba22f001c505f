//! A lead's buying timeline ("asap", "within three months", "next year", "just
//! looking"), for lead qualification (BANT's T: an urgent timeline makes a hot lead).

use chrono::{Datelike, Months, NaiveDate};

use super::date::{self, Unit};
use super::number;
use super::tokens::{self, Tokens};

/// Calendar months within which a timeline counts as urgent: a quarter, so "within three
/// months" is urgent whatever the months' lengths.
const URGENT_MONTHS: u32 = 3;

/// When a lead means to act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeline {
    /// The latest day, counted from today, that the caller's words allow: 0 for "asap",
    /// the days to month end for "this month", 180-ish for "six months". `None`
    /// when the caller named no horizon ("just looking", "no rush", "not this year").
    pub within_days: Option<u32>,
    /// The horizon is at most three calendar months away (a quarter).
    pub urgent: bool,
}

/// The buying timeline said in `text`, counted from `today`.
///
/// Rules:
/// - The horizon is the end of what was said: "this month" runs to the month's last day,
///   "next year" to next 31 December, "by march" to the end of the next March, "3 to 6
///   months" and "a month or two" to the longer, "a few months" is three months.
/// - A horizon with a negation just before it ("not this year", "not right away") and
///   the relaxed phrases ("just looking", "no rush", "not in a hurry", "eventually")
///   give a timeline with no horizon that is not urgent. "not until next year" keeps
///   its horizon: it still says when.
/// - Durations in the past are not timelines: "for 6 months", "6 months ago", "the last
///   year", "5 years old".
/// - Nothing about time ("I have two kids", "not sure") gives `None`, and so do vague
///   words with no horizon ("soon", "in the spring"), "today" and "right now" (more
///   often scene-setting, "right now we're renting", than a timeline).
///
/// ```
/// use chrono::NaiveDate;
/// use parley_shared::slots::{timeline, Timeline};
/// let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
/// assert_eq!(timeline("asap", today), Some(Timeline { within_days: Some(0), urgent: true }));
/// assert_eq!(timeline("just looking", today), Some(Timeline { within_days: None, urgent: false }));
/// ```
pub fn timeline(text: &str, today: NaiveDate) -> Option<Timeline> {
    let t = Tokens::new(text);
    let relaxed = Timeline {
        within_days: None,
        urgent: false,
    };
    // A horizon said anywhere beats a relaxed phrase: "no rush, maybe in six months".
    let mut saw_negated = false;
    let mut i = 0;
    while i < t.len() {
        match horizon_at(&t, i, today) {
            Some((_, end)) if negated(&t, i) => {
                saw_negated = true;
                i = end.max(i + 1);
            }
            Some((days, _)) => {
                let limit = today
                    .checked_add_months(Months::new(URGENT_MONTHS))
                    .and_then(|d| days_between(today, d))
                    .unwrap_or(90);
                return Some(Timeline {
                    within_days: Some(days),
                    urgent: days <= limit,
                });
            }
            None => i += 1,
        }
    }
    let any_relaxed = (0..t.len()).any(|i| RELAXED.iter().any(|p| t.phrase(i, p)));
    (saw_negated || any_relaxed).then_some(relaxed)
}

const RELAXED: &[&[&str]] = &[
    &["just", "looking"],
    &["just", "browsing"],
    &["just", "curious"],
    &["just", "checking"],
    &["no", "rush"],
    &["no", "hurry"],
    &["not", "in", "a", "hurry"],
    &["not", "in", "any", "hurry"],
    &["in", "no", "hurry"],
    &["not", "urgent"],
    &["nothing", "urgent"],
    &["no", "timeline"],
    &["no", "time", "frame"],
    &["no", "timeframe"],
    &["no", "set", "time"],
    &["no", "plans", "yet"],
    &["someday"],
    &["some", "day"],
    &["eventually"],
    &["down", "the", "road"],
    &["down", "the", "line"],
    &["long", "term"],
    &["not", "anytime", "soon"],
    &["not", "any", "time", "soon"],
    &["not", "for", "a", "while"],
    &["not", "right", "now"],
    &["whenever"],
];

/// A negation right before `i` ("not this month"), unless it says "not until", which
/// still names the horizon.
fn negated(t: &Tokens, i: usize) -> bool {
    const NEG: &[&str] = &["not", "dont", "wont", "never", "isnt", "arent", "cant"];
    let prev = t.prev_word(i);
    if prev.is_some_and(|w| NEG.contains(&w)) {
        return true;
    }
    prev.is_some_and(|w| !matches!(w, "until" | "till" | "before"))
        && t.is_any(i.wrapping_sub(2), NEG)
}

fn days_between(today: NaiveDate, end: NaiveDate) -> Option<u32> {
    u32::try_from((end - today).num_days()).ok()
}

fn month_end(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, 1)?
        .checked_add_months(Months::new(1))?
        .pred_opt()
}

fn add_units(today: NaiveDate, n: u32, unit: Unit) -> Option<u32> {
    let end = match unit {
        Unit::Day => return Some(n),
        Unit::Week => return n.checked_mul(7),
        Unit::Month => today.checked_add_months(Months::new(n))?,
        Unit::Year => today.checked_add_months(Months::new(n.checked_mul(12)?))?,
    };
    days_between(today, end)
}

/// A horizon starting at `i`: (days from today, end).
fn horizon_at(t: &Tokens, i: usize, today: NaiveDate) -> Option<(u32, usize)> {
    const NOW: &[&[&str]] = &[
        &["as", "soon", "as", "possible"],
        &["as", "soon", "as", "i", "can"],
        &["as", "soon", "as", "we", "can"],
        &["a", "s", "a", "p"],
        &["asap"],
        &["right", "away"],
        &["straight", "away"],
        &["immediately"],
        &["urgent"],
        &["urgently"],
    ];
    // Not "today" or "right now": "right now we're renting" sets the scene, it is no
    // timeline.
    if let Some(p) = NOW.iter().find(|p| t.phrase(i, p)) {
        return Some((0, i + p.len()));
    }
    let week_end = 6 - today.weekday().num_days_from_monday();
    let year_end = |y: i32| NaiveDate::from_ymd_opt(y, 12, 31).and_then(|e| days_between(today, e));
    let this_month = || month_end(today.year(), today.month()).and_then(|e| days_between(today, e));
    let quarter_end = |ahead: u32| {
        let q_last = (today.month() - 1) / 3 * 3 + 3;
        let first = NaiveDate::from_ymd_opt(today.year(), q_last, 1)?;
        let end = first
            .checked_add_months(Months::new(1 + 3 * ahead))?
            .pred_opt()?;
        days_between(today, end)
    };
    let this = t.is(i, "this");
    let k = if t.phrase(i, &["end", "of", "the"]) || t.phrase(i, &["end", "of", "this"]) {
        i + 3
    } else if t.phrase(i, &["end", "of"]) {
        i + 2
    } else {
        i
    };
    let at_end = k > i;
    if at_end || this {
        let j = if at_end { k } else { i + 1 };
        let found = match t.word(j) {
            Some("week") => Some(week_end),
            Some("weekend") => Some(week_end),
            Some("month") => this_month(),
            Some("quarter") => quarter_end(0),
            Some("year") => year_end(today.year()),
            _ => None,
        };
        if let Some(d) = found {
            return Some((d, j + 1));
        }
    }
    if t.is(i, "next") {
        let found = match t.word(i + 1) {
            Some("week" | "weekend") => Some(week_end + 7),
            Some("month") => today
                .checked_add_months(Months::new(1))
                .and_then(|d| month_end(d.year(), d.month()))
                .and_then(|e| days_between(today, e)),
            Some("quarter") => quarter_end(1),
            Some("year") => year_end(today.year() + 1),
            _ => None,
        };
        if let Some(d) = found {
            return Some((d, i + 2));
        }
    }
    if t.phrase(i, &["year", "end"]) || t.phrase(i, &["month", "end"]) {
        let d = if t.is(i, "year") {
            year_end(today.year())
        } else {
            this_month()
        };
        return d.map(|d| (d, i + 2));
    }

    // "by march", "in june", "end of december": to the end of the next such month.
    if t.is_any(
        i.wrapping_sub(1),
        &[
            "by", "in", "before", "until", "till", "around", "of", "early", "late", "mid",
        ],
    ) && let Some(m) = t.word(i).and_then(tokens::month)
    {
        let year = if m >= today.month() {
            today.year()
        } else {
            today.year() + 1
        };
        return month_end(year, m)
            .and_then(|e| days_between(today, e))
            .map(|d| (d, i + 1));
    }

    // "six months", "3 to 6 months", "a month or two", "six months to a year".
    if t.is_any(i.wrapping_sub(1), &["for", "past", "last", "since", "been"]) {
        return None;
    }
    let (mut days, mut end) = match date::quantity_at(t, i) {
        Some((n, unit, end)) => (add_units(today, n, unit)?, end),
        None => {
            // "3 to 6 months": the first number has no unit of its own.
            let a = number::parse_at(t, i)?;
            if a.ordinal || !t.is_any(a.end, &["to", "or"]) {
                return None;
            }
            let (n, unit, end) = date::quantity_at(t, a.end + 1)?;
            (add_units(today, n, unit)?, end)
        }
    };
    if t.is_any(end, &["to", "or"]) {
        if let Some((n, unit, e)) = date::quantity_at(t, end + 1) {
            if let Some(d) = add_units(today, n, unit) {
                days = days.max(d);
                end = e;
            }
        } else if let Some(b) = number::parse_at(t, end + 1)
            && !b.ordinal
            && b.value.fract() == 0.0
            && (0.0..=10_000.0).contains(&b.value)
        {
            // "a month or two": the unit is the first one's.
            let unit = (i..end).find_map(|k| {
                t.word(k).and_then(|w| match w {
                    "day" | "days" => Some(Unit::Day),
                    "week" | "weeks" => Some(Unit::Week),
                    "month" | "months" => Some(Unit::Month),
                    "year" | "years" => Some(Unit::Year),
                    _ => None,
                })
            });
            if let Some(d) = unit.and_then(|u| add_units(today, b.value as u32, u)) {
                days = days.max(d);
                end = b.end;
            }
        }
    }
    if t.is_any(end, &["ago", "old"]) {
        return None;
    }
    Some((days, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn quarter_ends() {
        let today = d(2026, 11, 21);
        assert_eq!(
            timeline("this quarter", today).unwrap().within_days,
            Some(40)
        );
        assert_eq!(
            timeline("next quarter", today).unwrap().within_days,
            Some(130)
        );
    }

    #[test]
    fn month_already_past_this_year_is_next_year() {
        let today = d(2026, 11, 21);
        // End of March 2027.
        assert_eq!(timeline("by march", today).unwrap().within_days, Some(130));
        assert_eq!(timeline("by november", today).unwrap().within_days, Some(9));
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        let today = d(2026, 11, 21);
        assert_eq!(timeline("in 99999999999 years", today), None);
        let t = timeline("in 9999 days", today).unwrap();
        assert_eq!((t.within_days, t.urgent), (Some(9999), false));
    }
}
