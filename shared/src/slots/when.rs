//! A date and a time said together ("next tuesday at two pm", "tomorrow morning at 9",
//! "friday 3:30", "in an hour"), for appointment slots.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use super::tokens::Tokens;
use super::{date, number, time};

/// A moment as the caller said it: either part may be missing, never both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct When {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
}

/// The date and time said in `text`, relative to `now` (the tenant's local time).
///
/// Dates follow [`date`](super::date()) and times [`time`](super::time()); words of one
/// never feed the other ("december 5 at 3" is the 5th at 15:00, not 05:00). Two rules
/// use `now`:
/// - When the day is today and the hour's am/pm was only guessed, a guess already past
///   moves to the evening: "today at 9" said at 10:00 is 21:00.
/// - "in an hour", "in 20 minutes", "in half an hour" are `now` plus that, with both
///   parts set.
///
/// ```
/// use chrono::{NaiveDate, NaiveTime};
/// use parley_shared::slots::{when, When};
/// let now = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_opt(10, 0, 0).unwrap();
/// assert_eq!(
///     when("next tuesday at two pm", now),
///     Some(When {
///         date: NaiveDate::from_ymd_opt(2026, 11, 24),
///         time: NaiveTime::from_hms_opt(14, 0, 0),
///     })
/// );
/// ```
pub fn when(text: &str, now: NaiveDateTime) -> Option<When> {
    let t = Tokens::new(text);
    let today = now.date();
    let date = date::find(&t).and_then(|f| date::resolve(&f.expr, today));
    let found = time::find(&t, &date::spans(&t));
    let mut time = found.as_ref().map(|f| f.time);
    if let Some(f) = &found
        && date == Some(today)
        && f.guessed
        && f.time < now.time()
        && f.time.hour() < 12
    {
        let (evening, _) = f.time.overflowing_add_signed(TimeDelta::hours(12));
        if evening > now.time() {
            time = Some(evening);
        }
    }
    if date.is_none() && time.is_none() {
        let at = from_now(&t, now)?;
        return Some(When {
            date: Some(at.date()),
            time: Some(at.time()),
        });
    }
    Some(When { date, time })
}

/// "in an hour", "in 20 minutes", "in half an hour", "in 2 hours": `now` plus that.
fn from_now(t: &Tokens, now: NaiveDateTime) -> Option<NaiveDateTime> {
    (0..t.len()).find_map(|i| {
        if !t.is(i, "in") {
            return None;
        }
        let k = i + 1;
        let minutes = if t.phrase(k, &["half", "an", "hour"]) {
            30.0
        } else if t.phrase(k, &["an", "hour"]) || t.phrase(k, &["a", "minute"]) {
            if t.is(k + 1, "hour") { 60.0 } else { 1.0 }
        } else {
            let s = number::parse_at(t, k)?;
            if s.ordinal || !(0.0..=10_000.0).contains(&s.value) {
                return None;
            }
            let per = match t.word(s.end)? {
                "hour" | "hours" | "hrs" | "hr" => 60.0,
                "minute" | "minutes" | "mins" | "min" => 1.0,
                _ => return None,
            };
            s.value * per
        };
        now.checked_add_signed(TimeDelta::try_seconds((minutes * 60.0) as i64)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
    }

    #[test]
    fn past_guess_today_moves_to_evening() {
        let w = when("today at 9", now()).unwrap();
        assert_eq!(w.time, NaiveTime::from_hms_opt(21, 0, 0));
        // Said with am, it stays: the caller chose it.
        let w = when("today at 9 am", now()).unwrap();
        assert_eq!(w.time, NaiveTime::from_hms_opt(9, 0, 0));
        // Another day: the rule leaves it.
        let w = when("tomorrow at 9", now()).unwrap();
        assert_eq!(w.time, NaiveTime::from_hms_opt(9, 0, 0));
    }

    #[test]
    fn in_an_hour() {
        let w = when("can you call me back in half an hour", now()).unwrap();
        assert_eq!(w.time, NaiveTime::from_hms_opt(10, 30, 0));
        assert_eq!(w.date, Some(now().date()));
        let w = when("in 20 hours", now()).unwrap();
        assert_eq!(w.time, NaiveTime::from_hms_opt(6, 0, 0));
        assert_eq!(w.date, NaiveDate::from_ymd_opt(2026, 11, 22));
    }
}
