//! Amounts of money said by a caller ("$500k", "fifty lakh rupees", "between 400 and 500
//! thousand", "£300 a month"), for budget and price slots.

use super::number::{self, NumSpan};
use super::tokens::{Tok, Tokens};
use super::{date, time};

/// An amount, or a range of amounts, as the caller said it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Money {
    /// The amount, or the lower end of a range.
    pub amount: f64,
    /// The upper end of a range ("between 400 and 500 thousand"), above `amount`.
    pub up_to: Option<f64>,
    /// ISO 4217: "USD", "GBP", "EUR" or "INR"; `None` when the caller named none.
    pub currency: Option<&'static str>,
    /// "a month", "per year", "weekly": a recurring amount (rent, salary, EMI).
    pub per: Option<Per>,
}

/// The period of a recurring amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Per {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Per {
    /// The period's name: `hour`, `day`, `week`, `month` or `year`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Per::Hour => "hour",
            Per::Day => "day",
            Per::Week => "week",
            Per::Month => "month",
            Per::Year => "year",
        }
    }
}

/// The amount of money said in `text`.
///
/// Rules:
/// - Currency: from a symbol ($ £ € ₹), a word (dollars, bucks, pounds, quid, euros,
///   rupees, rs) or a code (USD, INR...). Dollars are USD. Lakh and crore with no
///   currency named are INR, since only Indian callers count in them; otherwise the
///   currency stays `None` for the tenant's default to fill.
/// - Which number is the amount: one with a currency first, then one with a scale
///   (thousand, k, million, lakh, crore, grand), then a bare number, earliest first.
///   A number without a currency is not money when a noun follows it ("two kids", "3
///   bedrooms", "6 months"), when it is a time or date ("at 5", "on the 5th", "in
///   2027"), or when another number follows it directly (a phone number).
/// - Ranges: "between X and Y", "X to Y", "X or Y", "X-Y" with Y above X give `amount`
///   X and `up_to` Y. A bare lower end borrows the upper end's scale when that keeps it
///   below: "between 400 and 500 thousand" is 400,000 to 500,000.
/// - Hedges ("about", "under", "at least", "max") are not kept: the amount is the
///   number said.
///
/// ```
/// use parley_shared::slots::{money, Money};
/// assert_eq!(
///     money("fifty lakh rupees"),
///     Some(Money { amount: 5_000_000.0, up_to: None, currency: Some("INR"), per: None })
/// );
/// assert_eq!(money("my budget, not sure"), None);
/// ```
pub fn money(text: &str) -> Option<Money> {
    let t = Tokens::new(text);
    let nums: Vec<NumSpan> = number::spans(&t)
        .into_iter()
        .filter(|s| !s.ordinal)
        .collect();
    let mut skip = date::spans(&t);
    skip.extend(time::marked_spans(&t));

    let mut best: Option<(u8, Money)> = None;
    let mut k = 0;
    while let Some(a) = nums.get(k) {
        k += 1;
        let Some((rank, m, used)) = candidate(&t, &nums, k - 1, a, &skip) else {
            continue;
        };
        k += used;
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, m));
        }
    }
    best.map(|(_, m)| m)
}

/// The candidate amount starting with number `a` (index `idx`), its rank (2 currency, 1
/// scale, 0 bare) and how many further numbers it used (a range's upper end).
fn candidate(
    t: &Tokens,
    nums: &[NumSpan],
    idx: usize,
    a: &NumSpan,
    skip: &[(usize, usize)],
) -> Option<(u8, Money, usize)> {
    let before = currency_before(t, a.start);
    let (after, mut end) = currency_after(t, a.end);
    let mut amount = a.value;
    let mut up_to = None;
    let mut used = 0;
    let mut indian = a.indian;
    let mut scaled = a.scale.is_some();
    let mut currency = before.or(after);

    // A range: "between 400 and 500 thousand", "$400k to $500k", "4-5 lakh".
    if t.is_any(end, &["to", "and", "or"])
        && (!t.is(end, "and") || t.prev_word(a.start) == Some("between"))
        && let Some(b) = nums.get(idx + 1)
    {
        let mut bstart = end + 1;
        let b_before = currency_before(t, b.start);
        if b_before.is_some() || t.word(bstart).and_then(currency_word).is_some() {
            bstart += 1;
        }
        if b.start == bstart {
            let mut low = a.value;
            if a.scale.is_none()
                && let Some(bs) = b.scale
            {
                if low * bs <= b.value {
                    low *= bs;
                } else if low * 1e3 <= b.value {
                    low *= 1e3;
                }
            }
            if b.value > low {
                let (b_after, b_end) = currency_after(t, b.end);
                amount = low;
                up_to = Some(b.value);
                end = b_end;
                used = 1;
                indian |= b.indian;
                scaled |= b.scale.is_some();
                currency = currency.or(b_before).or(b_after);
            }
        }
    }

    let marked = currency.is_some();
    if !marked {
        let first = a.start;
        if skip.iter().any(|(s, e)| *s <= first && a.end <= *e) {
            return None;
        }
        // Digits after digits: a phone or account number read out in groups. Words
        // after words: "three fifty" is 350 or 3.50, so better none than 50.
        let prev = first.checked_sub(1);
        let after_number = match prev.and_then(|p| t.get(p)) {
            Some(Tok::Num { .. }) => true,
            Some(Tok::Word(w)) => {
                number::unit_word(w).is_some()
                    || number::teen_word(w).is_some()
                    || number::tens_word(w).is_some()
            }
            _ => false,
        };
        if after_number {
            return None;
        }
        let bare = !scaled && up_to.is_none();
        if bare
            && t.is_any(
                first.wrapping_sub(1),
                &[
                    "at",
                    "on",
                    "the",
                    "by",
                    "until",
                    "till",
                    "before",
                    "after",
                    "since",
                    "in",
                    "number",
                    "no",
                    "room",
                    "unit",
                    "apartment",
                    "flat",
                    "floor",
                    "plot",
                    "page",
                    "step",
                    "option",
                    "press",
                    "extension",
                    "ext",
                    "aged",
                    "age",
                ],
            )
        {
            return None;
        }
    }
    let (per, end) = per_at(t, end);
    if !marked && !follows_ok(t, end) {
        return None;
    }
    let rank = if marked {
        2
    } else if scaled {
        1
    } else {
        0
    };
    let currency = currency.or(indian.then_some("INR"));
    Some((
        rank,
        Money {
            amount,
            up_to,
            currency,
            per,
        },
        used,
    ))
}

fn currency_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "dollar" | "dollars" | "buck" | "bucks" | "usd" => "USD",
        "pound" | "pounds" | "quid" | "gbp" | "sterling" => "GBP",
        "euro" | "euros" | "eur" => "EUR",
        "rupee" | "rupees" | "rs" | "inr" | "rupaye" | "rupiya" | "rupay" => "INR",
        _ => return None,
    })
}

/// "$500", "₹ 50,000", "rs 500", "INR 5 lakh".
fn currency_before(t: &Tokens, start: usize) -> Option<&'static str> {
    let i = start.checked_sub(1)?;
    match t.get(i)? {
        Tok::Currency(c) => Some(c),
        Tok::Word(w) if matches!(w.as_str(), "rs" | "inr" | "usd" | "gbp" | "eur") => {
            currency_word(w)
        }
        _ => None,
    }
}

/// "500 dollars", "5 lakh rupees", "500 us dollars": the currency and where it ends.
fn currency_after(t: &Tokens, end: usize) -> (Option<&'static str>, usize) {
    if let Some(c) = t.word(end).and_then(currency_word) {
        return (Some(c), end + 1);
    }
    if t.is_any(end, &["us", "american", "british", "uk", "indian"])
        && let Some(c) = t.word(end + 1).and_then(currency_word)
    {
        return (Some(c), end + 2);
    }
    (None, end)
}

/// "a month", "per year", "monthly", "every week".
fn per_at(t: &Tokens, i: usize) -> (Option<Per>, usize) {
    let unit = |w: &str| {
        Some(match w {
            "hour" | "hr" => Per::Hour,
            "day" | "night" => Per::Day,
            "week" => Per::Week,
            "month" | "mo" => Per::Month,
            "year" | "annum" | "yr" => Per::Year,
            _ => return None,
        })
    };
    if t.is_any(i, &["a", "an", "per", "each", "every"])
        && let Some(p) = t.word(i + 1).and_then(unit)
    {
        return (Some(p), i + 2);
    }
    let single = match t.word(i) {
        Some("hourly") => Per::Hour,
        Some("daily") => Per::Day,
        Some("weekly") => Per::Week,
        Some("monthly") => Per::Month,
        Some("yearly" | "annually" | "annual") => Per::Year,
        _ => return (None, i),
    };
    (Some(single), i + 1)
}

/// Words that may follow an amount with no currency ("500k max", "about 50 lakh or so").
#[rustfmt::skip]
const FOLLOWERS: &[&str] = &[
    "or", "to", "and", "but", "max", "maximum", "tops", "top", "total", "ish", "so",
    "upfront", "down", "cash", "only", "budget", "is", "was", "would", "will", "should",
    "could", "i", "im", "we", "my", "our", "if", "that", "thats", "for", "in", "at", "with",
    "give", "plus", "more", "less", "roughly", "about", "approximately", "maybe",
    "probably", "then", "though", "which", "on", "over", "under", "above", "below",
    "including", "all", "really", "mostly", "around", "range", "something", "like", "okay",
    "ok", "yeah", "please", "thanks", "thank", "be", "are", "as", "bracket", "minimum",
    "min", "not", "no", "because", "since", "excluding", "inclusive", "negotiable",
    "flexible", "firm", "hopefully", "ideally", "preferably", "approx", "odd", "whatever",
    "uh", "um", "well", "per", "a", "an",
];

fn follows_ok(t: &Tokens, end: usize) -> bool {
    match t.get(end) {
        None | Some(Tok::Break) | Some(Tok::Currency(_)) => true,
        Some(Tok::Word(w)) => FOLLOWERS.contains(&w.as_str()),
        Some(Tok::Num { .. }) | Some(Tok::Clock { .. }) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_lower_end_borrows_a_fitting_scale() {
        let m = money("between 900 and 1.2 million").unwrap();
        assert_eq!((m.amount, m.up_to), (900_000.0, Some(1_200_000.0)));
        let m = money("4-5 lakh").unwrap();
        assert_eq!(
            (m.amount, m.up_to, m.currency),
            (400_000.0, Some(500_000.0), Some("INR"))
        );
    }

    #[test]
    fn descending_pair_is_not_a_range() {
        let m = money("500k or 400").unwrap();
        assert_eq!((m.amount, m.up_to), (500_000.0, None));
    }

    #[test]
    fn currency_beats_scale_beats_bare() {
        let m = money("3 bedrooms, 2 million tops, and I can put $200k down").unwrap();
        assert_eq!((m.amount, m.currency), (200_000.0, Some("USD")));
        let m = money("3 bedrooms and about 2 million tops").unwrap();
        assert_eq!(m.amount, 2_000_000.0);
    }

    #[test]
    fn phone_numbers_are_not_money() {
        assert_eq!(money("987 654 3210"), None);
    }
}
