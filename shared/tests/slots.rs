//! Slot extraction from callers' words: tables of phrasings as speech-to-text writes them
//! (lower case, no punctuation, fillers, digits and words), each with the exact value
//! expected, including phrasings that must give nothing.
//!
//! Relative dates are checked against a fixed today: Saturday 21 November 2026.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use parley_shared::slots::{
    Money, Per, Timeline, When, date, money, number, time, timeline, when, yes_no,
};

/// Saturday 21 November 2026.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

/// Saturday 21 November 2026, 10:00.
fn now() -> NaiveDateTime {
    today().and_hms_opt(10, 0, 0).unwrap()
}

fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
    Some(NaiveDate::from_ymd_opt(y, m, day).unwrap())
}

fn hm(h: u32, m: u32) -> Option<NaiveTime> {
    Some(NaiveTime::from_hms_opt(h, m, 0).unwrap())
}

/// Runs a table and reports every failing row at once.
fn check<T: PartialEq + std::fmt::Debug>(f: impl Fn(&str) -> T, rows: &[(&str, T)]) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(text, want)| {
            let got = f(text);
            (got != *want).then(|| format!("{text:?}: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn yes_no_phrasings() {
    check(
        yes_no,
        &[
            ("yes", Some(true)),
            ("Yes.", Some(true)),
            ("yeah sure", Some(true)),
            ("yep", Some(true)),
            ("yup that's me", Some(true)),
            ("absolutely", Some(true)),
            ("that's right", Some(true)),
            ("thats right", Some(true)),
            ("correct", Some(true)),
            ("sounds good", Some(true)),
            ("sure thing", Some(true)),
            ("of course", Some(true)),
            ("yes please", Some(true)),
            ("uh yeah i think so", Some(true)),
            ("go ahead", Some(true)),
            ("okay", Some(true)),
            ("yeah that works for me", Some(true)),
            ("no problem", Some(true)),
            ("sure no worries", Some(true)),
            ("mhm", Some(true)),
            ("uh-huh", Some(true)),
            ("i do", Some(true)),
            ("definitely", Some(true)),
            ("why not", Some(true)),
            ("no wait, yes", Some(true)),
            ("I don't mind", Some(true)),
            ("no", Some(false)),
            ("No.", Some(false)),
            ("nope", Some(false)),
            ("nah", Some(false)),
            ("not really", Some(false)),
            ("I don't think so", Some(false)),
            ("i dont think so", Some(false)),
            ("no thanks", Some(false)),
            ("no thank you", Some(false)),
            ("not interested", Some(false)),
            ("i'm not interested at all", Some(false)),
            ("absolutely not", Some(false)),
            ("that's not right", Some(false)),
            ("that is not correct", Some(false)),
            ("not exactly", Some(false)),
            ("please stop calling me", Some(false)),
            ("not at the moment", Some(false)),
            ("not right now", Some(false)),
            ("yeah no", Some(false)),
            ("no, sure is not right", Some(false)),
            ("i can't", Some(false)),
            ("please don't", Some(false)),
            ("ok no thanks", Some(false)),
            ("I would love to", Some(true)),
            ("I'm good thanks", None),
            ("I'm not sure", None),
            ("im not sure", None),
            ("maybe", None),
            ("i don't know", None),
            ("no idea", None),
            ("let me think about it", None),
            ("yes, maybe", None),
            ("what", None),
            ("who is this", None),
            ("can you repeat that", None),
            ("hmm", None),
            ("", None),
            ("no rush", None),
            ("right away", None),
        ],
    );
}

#[test]
fn number_phrasings() {
    check(
        number,
        &[
            ("2.5", Some(2.5)),
            ("1,200", Some(1200.0)),
            ("15k", Some(15_000.0)),
            ("twenty five", Some(25.0)),
            ("twenty-five", Some(25.0)),
            ("five hundred thousand", Some(500_000.0)),
            ("a hundred", Some(100.0)),
            ("one point five", Some(1.5)),
            ("a couple", Some(2.0)),
            ("a couple of hundred", Some(200.0)),
            ("a dozen", Some(12.0)),
            ("twelve hundred", Some(1200.0)),
            ("three million", Some(3_000_000.0)),
            ("one hundred and five", Some(105.0)),
            ("uh about twenty-five or so", Some(25.0)),
            ("zero", Some(0.0)),
            ("I have two kids", Some(2.0)),
            ("the fifth", None),
            ("no idea", None),
            ("a few", None),
            ("", None),
        ],
    );
}

#[test]
fn date_phrasings() {
    check(
        |t| date(t, today()),
        &[
            ("today", d(2026, 11, 21)),
            ("tomorrow", d(2026, 11, 22)),
            ("the day after tomorrow", d(2026, 11, 23)),
            ("day after tomorrow works", d(2026, 11, 23)),
            ("next tuesday", d(2026, 11, 24)),
            (
                "uh well I was thinking maybe next tuesday if that works",
                d(2026, 11, 24),
            ),
            ("tuesday next week", d(2026, 11, 24)),
            ("this friday", d(2026, 11, 27)),
            ("on monday", d(2026, 11, 23)),
            ("monday", d(2026, 11, 23)),
            ("sunday", d(2026, 11, 22)),
            // Calendar weeks start on Monday: tomorrow is still this week.
            ("next sunday", d(2026, 11, 29)),
            // A bare weekday is never today; "this" may be.
            ("saturday", d(2026, 11, 28)),
            ("this saturday", d(2026, 11, 21)),
            ("the fifth", d(2026, 12, 5)),
            ("on the 25th", d(2026, 11, 25)),
            // The day of the month that is today is today.
            ("the 21st", d(2026, 11, 21)),
            ("the 1st", d(2026, 12, 1)),
            ("the first of next month", d(2026, 12, 1)),
            ("december fifth", d(2026, 12, 5)),
            ("December 5th, 2027", d(2027, 12, 5)),
            ("5th of december", d(2026, 12, 5)),
            ("the fifth of december", d(2026, 12, 5)),
            ("dec 5", d(2026, 12, 5)),
            ("5 dec", d(2026, 12, 5)),
            ("january third", d(2027, 1, 3)),
            ("friday the 4th", d(2026, 12, 4)),
            ("in two weeks", d(2026, 12, 5)),
            ("in 3 days", d(2026, 11, 24)),
            ("in a couple of days", d(2026, 11, 23)),
            ("a week from today", d(2026, 11, 28)),
            ("a week today", d(2026, 11, 28)),
            ("two weeks from tomorrow", d(2026, 12, 6)),
            ("in a month", d(2026, 12, 21)),
            ("next week", None),
            ("this weekend", None),
            ("no idea", None),
            ("I have two kids", None),
            ("may I ask who's calling", None),
            ("i came in fifth", None),
            ("every tuesday", None),
            ("not sure what day", None),
        ],
    );
}

#[test]
fn time_phrasings() {
    check(
        time,
        &[
            ("two pm", hm(14, 0)),
            ("2 p.m.", hm(14, 0)),
            ("2pm", hm(14, 0)),
            ("14:30", hm(14, 30)),
            ("two thirty", hm(14, 30)),
            ("half past three", hm(15, 30)),
            ("half three", hm(15, 30)),
            ("quarter to five", hm(16, 45)),
            ("a quarter past ten", hm(10, 15)),
            ("noon", hm(12, 0)),
            ("12 noon", hm(12, 0)),
            ("midday", hm(12, 0)),
            ("midnight", hm(0, 0)),
            ("three in the afternoon", hm(15, 0)),
            ("9 in the morning", hm(9, 0)),
            ("at 10", hm(10, 0)),
            ("at 10 30", hm(10, 30)),
            ("uh I think 2:30 works", hm(14, 30)),
            ("ten oh five", hm(10, 5)),
            ("eleven fifteen", hm(11, 15)),
            ("11 am", hm(11, 0)),
            ("7:45 pm", hm(19, 45)),
            ("3 o'clock", hm(15, 0)),
            ("three oclock", hm(15, 0)),
            ("twelve thirty", hm(12, 30)),
            ("maybe ten", hm(10, 0)),
            ("around 4 if possible", hm(16, 0)),
            ("at eight tonight", hm(20, 0)),
            ("2 people at 7", hm(7, 0)),
            ("2 to 3 pm", hm(14, 0)),
            ("between 2 and 3", hm(14, 0)),
            ("9am or 10am", hm(9, 0)),
            ("any time after 4", hm(16, 0)),
            ("five past two", hm(14, 5)),
            ("I have 2 or 3 kids", None),
            // Digits either side of "to" are a range (its start), not "minutes to".
            ("10 to 5", hm(10, 0)),
            ("I have two kids", None),
            ("no idea", None),
            ("two people", None),
            ("about five hundred thousand", None),
            ("december 5", None),
            ("in two weeks", None),
            ("", None),
        ],
    );
}

#[test]
fn when_phrasings() {
    let w = |date, time| Some(When { date, time });
    check(
        |t| when(t, now()),
        &[
            ("next tuesday at two pm", w(d(2026, 11, 24), hm(14, 0))),
            ("tomorrow morning at 9", w(d(2026, 11, 22), hm(9, 0))),
            ("friday 3:30", w(d(2026, 11, 27), hm(15, 30))),
            ("december 5 at 3", w(d(2026, 12, 5), hm(15, 0))),
            ("this afternoon at 4", w(d(2026, 11, 21), hm(16, 0))),
            ("tonight at 8", w(d(2026, 11, 21), hm(20, 0))),
            ("the 5th at 10 am", w(d(2026, 12, 5), hm(10, 0))),
            (
                "uh how about monday around two thirty",
                w(d(2026, 11, 23), hm(14, 30)),
            ),
            ("monday", w(d(2026, 11, 23), None)),
            ("at 11", w(None, hm(11, 0))),
            ("in an hour", w(d(2026, 11, 21), hm(11, 0))),
            ("no idea", None),
            ("I have two kids", None),
        ],
    );
}

#[test]
fn money_phrasings() {
    let m = |amount, currency| {
        Some(Money {
            amount,
            up_to: None,
            currency,
            per: None,
        })
    };
    let range = |amount, up_to, currency| {
        Some(Money {
            amount,
            up_to: Some(up_to),
            currency,
            per: None,
        })
    };
    let per = |amount, currency, per| {
        Some(Money {
            amount,
            up_to: None,
            currency,
            per: Some(per),
        })
    };
    let usd = Some("USD");
    let inr = Some("INR");
    let gbp = Some("GBP");
    check(
        money,
        &[
            ("$500k", m(500_000.0, usd)),
            ("about five hundred thousand", m(500_000.0, None)),
            ("half a million dollars", m(500_000.0, usd)),
            ("1.2 million", m(1_200_000.0, None)),
            ("50 lakh", m(5_000_000.0, inr)),
            ("fifty lakh rupees", m(5_000_000.0, inr)),
            ("2 crore", m(20_000_000.0, inr)),
            ("around 2.5 crore", m(25_000_000.0, inr)),
            ("₹50,000", m(50_000.0, inr)),
            ("₹50,00,000", m(5_000_000.0, inr)),
            ("rs 5000", m(5000.0, inr)),
            ("Rs. 5000", m(5000.0, inr)),
            ("£300 a month", per(300.0, gbp, Per::Month)),
            ("5000 rupees per month", per(5000.0, inr, Per::Month)),
            ("€2,500 monthly", per(2500.0, Some("EUR"), Per::Month)),
            (
                "twelve hundred dollars a month",
                per(1200.0, usd, Per::Month),
            ),
            (
                "between 400 and 500 thousand",
                range(400_000.0, 500_000.0, None),
            ),
            (
                "four hundred to five hundred thousand dollars",
                range(400_000.0, 500_000.0, usd),
            ),
            ("$400k-$500k", range(400_000.0, 500_000.0, usd)),
            (
                "we're looking at 30 to 40 lakh",
                range(3_000_000.0, 4_000_000.0, inr),
            ),
            ("a million and a half", m(1_500_000.0, None)),
            ("one and a half million", m(1_500_000.0, None)),
            ("75 grand", m(75_000.0, None)),
            ("like 300 bucks", m(300.0, usd)),
            ("my budget is about 600k max", m(600_000.0, None)),
            (
                "uh i'd say somewhere around 350 thousand",
                m(350_000.0, None),
            ),
            ("£1.5m", m(1_500_000.0, gbp)),
            ("500 us dollars", m(500.0, usd)),
            ("three bedrooms, budget 2 million", m(2_000_000.0, None)),
            ("3 bedrooms", None),
            ("I have two kids", None),
            ("my budget, not sure", None),
            ("no idea", None),
            ("call me at 5", None),
            ("in 2 weeks", None),
            ("next tuesday at two pm", None),
            ("the 5th", None),
            ("I'm 35 years old", None),
            ("three fifty", None),
            ("987 654 3210", None),
            ("20 percent down", None),
            ("", None),
        ],
    );
}

#[test]
fn timeline_phrasings() {
    let tl = |within_days, urgent| {
        Some(Timeline {
            within_days,
            urgent,
        })
    };
    check(
        |t| timeline(t, today()),
        &[
            ("asap", tl(Some(0), true)),
            ("as soon as possible", tl(Some(0), true)),
            ("right away", tl(Some(0), true)),
            ("this month", tl(Some(9), true)),
            ("probably next month", tl(Some(40), true)),
            ("this week", tl(Some(1), true)),
            ("in 6 weeks", tl(Some(42), true)),
            // 21 Nov to 21 Feb is 92 days: three calendar months are urgent.
            ("within three months", tl(Some(92), true)),
            ("a month or two", tl(Some(61), true)),
            ("six months", tl(Some(181), false)),
            ("3 to 6 months", tl(Some(181), false)),
            ("six months to a year", tl(Some(365), false)),
            ("next year", tl(Some(405), false)),
            ("by march", tl(Some(130), false)),
            ("next year, no rush", tl(Some(405), false)),
            ("just looking", tl(None, false)),
            ("no rush", tl(None, false)),
            ("not in a hurry", tl(None, false)),
            ("not this year", tl(None, false)),
            ("not right away", tl(None, false)),
            ("we've been looking for 6 months", None),
            ("right now we're renting", None),
            ("in a year or two", tl(Some(731), false)),
            ("end of the year", tl(Some(40), true)),
            ("I have two kids", None),
            ("not sure", None),
            ("", None),
        ],
    );
}

/// A small deterministic generator, so a failure names the same input every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run_all(text: &str) -> bool {
    let _ = yes_no(text);
    let _ = number(text);
    let _ = money(text);
    let _ = date(text, today());
    let _ = time(text);
    let _ = when(text, now());
    let _ = timeline(text, today());
    // Also at the edges of chrono's range, where date arithmetic overflows.
    let _ = date(text, NaiveDate::MAX);
    let _ = when(text, NaiveDate::MAX.and_hms_opt(23, 59, 59).unwrap());
    let _ = timeline(text, NaiveDate::MIN);
    true
}

#[test]
fn garbage_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for len in [0, 1, 2, 7, 64, 1000, 10_000] {
        for _ in 0..4 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(run_all(&String::from_utf8_lossy(&bytes)));
        }
    }

    // Random words from the parsers' own vocabulary reach deeper than random bytes.
    let vocab = [
        "one",
        "two",
        "twelve",
        "thirty",
        "hundred",
        "thousand",
        "lakh",
        "crore",
        "k",
        "a",
        "an",
        "half",
        "and",
        "point",
        "oh",
        "to",
        "past",
        "quarter",
        "at",
        "the",
        "5th",
        "9",
        "2:30",
        "$",
        "₹",
        "next",
        "tuesday",
        "december",
        "in",
        "weeks",
        "not",
        "no",
        "yes",
        "sure",
        "pm",
        "am",
        "noon",
        ",",
        "-",
        "of",
        "couple",
        "dozen",
        "between",
        "or",
        "months",
        "from",
        "today",
        "ago",
        "for",
        "99999999999999999999",
    ];
    for _ in 0..500 {
        let n = (rng.next() % 12) as usize;
        let text: Vec<&str> = (0..n)
            .map(|_| vocab[(rng.next() % vocab.len() as u64) as usize])
            .collect();
        assert!(run_all(&text.join(" ")));
    }

    let long = [
        "😀".repeat(3000),
        "9".repeat(10_000),
        "1,".repeat(5000),
        "one ".repeat(2500),
        format!("one point {}", "five ".repeat(2500)),
        "next ".repeat(2000),
        "half past ".repeat(1000),
        "the ".repeat(2500),
        "$".repeat(10_000),
        "- ".repeat(5000),
        "in 99999999999999 years ".repeat(400),
        "a couple of ".repeat(800),
        "not ".repeat(2500),
        "\u{0}\u{FFFD}\u{202E}".repeat(2000),
    ];
    for text in &long {
        assert!(run_all(text));
    }
}

#[test]
fn emoji_and_punctuation_carry_no_values() {
    for text in [
        "😀🎉👍",
        "¿¡…!?",
        "—–-",
        "   ",
        "\u{FFFD}\u{FFFD}",
        "नमस्ते",
        "$",
        "₹ £ €",
    ] {
        assert_eq!(yes_no(text), None, "{text:?}");
        assert_eq!(number(text), None, "{text:?}");
        assert_eq!(money(text), None, "{text:?}");
        assert_eq!(date(text, today()), None, "{text:?}");
        assert_eq!(time(text), None, "{text:?}");
        assert_eq!(when(text, now()), None, "{text:?}");
        assert_eq!(timeline(text, today()), None, "{text:?}");
    }
}
