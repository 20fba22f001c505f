//! Collected values as the agent says them back: "tomorrow at 10 am", "Tuesday,
//! November 24th at 2:30 pm", "500 thousand dollars", "50 lakh rupees". Written for
//! text-to-speech: words and plain digits, no symbols or markup.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

pub(crate) fn date(d: NaiveDate, today: NaiveDate) -> String {
    if d == today {
        return "today".into();
    }
    if today.succ_opt() == Some(d) {
        return "tomorrow".into();
    }
    let day = d.day();
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    let mut s = format!("{}, {} {day}{suffix}", d.format("%A"), d.format("%B"));
    if d.year() != today.year() {
        s.push_str(&format!(", {}", d.year()));
    }
    s
}

pub(crate) fn time(t: NaiveTime) -> String {
    match (t.hour(), t.minute()) {
        (12, 0) => "noon".into(),
        (0, 0) => "midnight".into(),
        (h, m) => {
            let (h12, half) = match h {
                0 => (12, "am"),
                1..=11 => (h, "am"),
                12 => (12, "pm"),
                _ => (h - 12, "pm"),
            };
            if m == 0 {
                format!("{h12} {half}")
            } else {
                format!("{h12}:{m:02} {half}")
            }
        }
    }
}

pub(crate) fn datetime(at: NaiveDateTime, today: NaiveDate) -> String {
    format!("{} at {}", date(at.date(), today), time(at.time()))
}

/// A plain number: whole numbers without a decimal point, others to two places.
pub(crate) fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn scaled(n: f64, scale: f64, word: &str) -> String {
    format!("{} {word}", number((n / scale * 100.0).round() / 100.0))
}

/// An amount in the words a caller uses: lakh and crore for rupees, thousand and
/// million otherwise.
pub(crate) fn amount(n: f64, currency: Option<&str>) -> String {
    let indian = currency == Some("INR");
    if indian && n >= 10_000_000.0 {
        scaled(n, 10_000_000.0, "crore")
    } else if indian && n >= 100_000.0 {
        scaled(n, 100_000.0, "lakh")
    } else if n >= 1_000_000_000.0 {
        scaled(n, 1_000_000_000.0, "billion")
    } else if n >= 1_000_000.0 {
        scaled(n, 1_000_000.0, "million")
    } else if n >= 10_000.0 && (n % 1000.0) == 0.0 {
        scaled(n, 1000.0, "thousand")
    } else {
        number(n)
    }
}

pub(crate) fn currency_word(code: &str) -> &str {
    match code {
        "USD" => "dollars",
        "GBP" => "pounds",
        "EUR" => "euros",
        "INR" => "rupees",
        other => other,
    }
}

pub(crate) fn money(
    amount_: f64,
    up_to: Option<f64>,
    currency: Option<&str>,
    per: Option<&str>,
) -> String {
    let mut s = amount(amount_, currency);
    if let Some(top) = up_to {
        s = format!("{s} to {}", amount(top, currency));
    }
    if let Some(c) = currency {
        s = format!("{s} {}", currency_word(c));
    }
    if let Some(p) = per {
        s = format!("{s} a {p}");
    }
    s
}

pub(crate) fn timeline(within_days: Option<u32>) -> String {
    match within_days {
        None => "with no fixed timeline".into(),
        Some(0) => "as soon as possible".into(),
        Some(1..=7) => "within a week".into(),
        Some(8..=31) => "within a month".into(),
        Some(d @ 32..=400) => format!("within about {} months", (f64::from(d) / 30.4).round()),
        Some(d) => format!("within about {} years", (f64::from(d) / 365.0).round()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_naturally() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let tue = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(date(tue, today), "Tuesday, November 24th");
        assert_eq!(date(today.succ_opt().unwrap(), today), "tomorrow");
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2027, 1, 2).unwrap(), today),
            "Saturday, January 2nd, 2027"
        );
        assert_eq!(time(NaiveTime::from_hms_opt(14, 30, 0).unwrap()), "2:30 pm");
        assert_eq!(time(NaiveTime::from_hms_opt(9, 0, 0).unwrap()), "9 am");
        assert_eq!(time(NaiveTime::from_hms_opt(12, 0, 0).unwrap()), "noon");
    }

    #[test]
    fn amounts_use_the_callers_scale_words() {
        assert_eq!(
            money(500_000.0, None, Some("USD"), None),
            "500 thousand dollars"
        );
        assert_eq!(
            money(5_000_000.0, None, Some("INR"), None),
            "50 lakh rupees"
        );
        assert_eq!(money(1_500_000.0, None, None, None), "1.5 million");
        assert_eq!(
            money(400_000.0, Some(500_000.0), None, None),
            "400 thousand to 500 thousand"
        );
        assert_eq!(
            money(2_300.0, None, Some("GBP"), Some("month")),
            "2300 pounds a month"
        );
    }
}
