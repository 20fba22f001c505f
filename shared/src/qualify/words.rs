//! Signals from what the caller said, with no LLM: phrases for authority and need, the
//! [`slots`](crate::slots) parsers for budget and timeline, and the answers' number and
//! length for engagement.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{Months, NaiveDate};

use super::text::{Clause, clauses, quote, word_count};
use super::{Assessment, Evidence, Signal};
use crate::slots::{self, Money, Per, Timeline};

/// Answers that earn full engagement (with long enough answers).
const ANSWERS_FOR_FULL_ENGAGEMENT: usize = 4;
/// Average words per answer that earn full engagement (with enough answers).
const WORDS_FOR_FULL_ENGAGEMENT: f64 = 4.0;
/// A timeline within this many calendar months, but not urgent, earns half credit.
const PARTIAL_TIMELINE_MONTHS: u32 = 6;

/// What one line says about one signal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) strength: f64,
    /// Where in the line (bytes) the deciding words are, to centre a long quote on.
    pub(crate) focus: Option<Range<usize>>,
    pub(crate) value: Option<String>,
}

impl Found {
    fn new(strength: f64, focus: Option<Range<usize>>, value: Option<String>) -> Self {
        Self {
            strength,
            focus,
            value,
        }
    }
}

/// The signals in the caller's lines (`turns`, one per answer, in order), with `today` in
/// the tenant's time zone for relative timelines ("by march").
///
/// Rules, per line:
/// - **Budget**: an amount of money ([`slots::money`]) = 1; a bare number with no
///   currency counts only from 1,000 up or with a money word in the line ("budget",
///   "afford", "spend"...), since "I'm 45" and "a team of 50" are not budgets. A budget
///   with no amount ("we're pre-approved", "we have a budget") = 0.5; "no budget",
///   "can't afford it" = 0.
/// - **Authority**: "I'm the owner", "I make the decisions", "it's my decision", "I
///   decide", "it's up to me", "I own...", "I'm the CEO" = 1; a shared decision ("me and
///   my wife decide", "we decide together") = 0.5; someone else decides ("I need to ask
///   my boss", "let me check with my husband", "not my decision") = 0. Checked in that
///   order from the most cautious, so "I'm the owner but I need to check with my partner"
///   is 0.
/// - **Need**: a stated need or problem ("we need", "looking for", "I want", "we're
///   struggling with", "our lease ends", "interested in") = 1; a hedged or exploratory one
///   ("we might need", "thinking about", "considering") = 0.5; a negated one ("we don't
///   need", "not looking for") = 0. "I need to ask / check / think..." is no need.
/// - **Timeline** ([`slots::timeline`]): urgent (within three months) = 1; within six
///   calendar months = 0.5; later, or no horizon ("just looking", "no rush") = 0.
/// - **Engagement**: (answers ÷ 4, at most 1) × (average words per answer ÷ 4, at most
///   1): four answers of four words or more on average = 1. A refusal anywhere ("not interested", "stop calling",
///   "take me off your list", "wrong number") makes it 0.
///
/// Across lines: budget and need keep their strongest line (a need once stated stays
/// stated); authority and timeline take the last line that speaks of them, because
/// callers correct themselves forward ("let me ask my wife... actually, it's my call").
/// The evidence quotes the deciding line for every signal above 0.
pub fn assess_words(turns: &[&str], today: NaiveDate) -> Assessment {
    let mut best: BTreeMap<Signal, (Found, &str)> = BTreeMap::new();
    for &line in turns {
        let cl = clauses(line);
        let findings = [
            (Signal::Budget, budget(line, &cl), false),
            (Signal::Authority, authority(&cl), true),
            (Signal::Need, need(&cl), false),
            (Signal::Timeline, timeline(line, &cl, today), true),
        ];
        for (signal, found, last_wins) in findings {
            let Some(found) = found else { continue };
            let replace = match best.get(&signal) {
                None => true,
                Some((old, _)) => last_wins || found.strength > old.strength,
            };
            if replace {
                best.insert(signal, (found, line));
            }
        }
    }
    if let Some(found) = engagement(turns) {
        best.insert(Signal::Engagement, found);
    }

    let mut assessment = Assessment::default();
    for (signal, (found, line)) in best {
        assessment.signals.insert(signal, found.strength);
        if found.strength > 0.0 {
            assessment.evidence.push(Evidence {
                signal,
                words: quote(line, found.focus.as_ref()),
                value: found.value,
            });
        }
    }
    assessment
}

// ---------------------------------------------------------------------------- budget

/// Words that make a bare number in the same line a sum of money.
const MONEY_WORDS: &[&str] = &[
    "budget",
    "afford",
    "spend",
    "spending",
    "pay",
    "paying",
    "price",
    "cost",
    "costs",
    "invest",
    "investment",
    "loan",
    "mortgage",
    "deposit",
    "down",
    "cash",
    "financing",
    "funds",
    "funding",
    "money",
    "rent",
    "thousand",
    "million",
    "grand",
];

const BUDGET_SOME: &[&[&str]] = &[
    &["pre", "approved"],
    &["preapproved"],
    &["have", "a", "budget"],
    &["got", "a", "budget"],
    &["our", "budget", "is", "approved"],
    &["budget", "is", "approved"],
    &["budget", "approved"],
    &["budget", "set", "aside"],
    &["have", "the", "funds"],
    &["have", "the", "money"],
    &["financing", "in", "place"],
    &["financing", "is", "in", "place"],
    &["funding", "approved"],
    &["cash", "buyer"],
    &["paying", "cash"],
    &["pay", "cash"],
];

const BUDGET_NONE: &[&[&str]] = &[
    &["no", "budget"],
    &["cant", "afford"],
    &["cannot", "afford"],
    &["no", "money"],
    &["too", "expensive"],
];

/// The budget said in `line`: see [`assess_words`].
pub(crate) fn budget(line: &str, cl: &[Clause]) -> Option<Found> {
    if let Some(m) = slots::money(line) {
        let money_talk = cl
            .iter()
            .any(|c| c.words.iter().any(|w| MONEY_WORDS.contains(&w.as_str())));
        if money_is_budget(&m, money_talk) {
            let focus = cl
                .iter()
                .find(|c| line.get(c.span.clone()).and_then(slots::money).is_some());
            let focus = focus.map(|c| c.span.clone());
            return Some(Found::new(1.0, focus, Some(money_value(&m))));
        }
    }
    budget_words(cl)
}

/// A budget in words with no amount: [`BUDGET_SOME`] = 0.5 unless negated, [`BUDGET_NONE`]
/// (or a negated [`BUDGET_SOME`]: "we don't have a budget") = 0.
pub(crate) fn budget_words(cl: &[Clause]) -> Option<Found> {
    let mut none = None;
    for c in cl {
        for p in BUDGET_SOME {
            for i in c.find_all(p) {
                if c.negated(i) {
                    none = none.or(Some(c.from(i)));
                } else {
                    let value = Some("budget, no amount".into());
                    return Some(Found::new(0.5, Some(c.from(i)), value));
                }
            }
        }
        if let Some(i) = BUDGET_NONE.iter().find_map(|p| c.find(p)) {
            none = none.or(Some(c.from(i)));
        }
    }
    none.map(|focus| Found::new(0.0, Some(focus), None))
}

pub(crate) fn money_is_budget(m: &Money, money_talk: bool) -> bool {
    is_budget_amount(m.amount) && (m.currency.is_some() || m.amount >= 1000.0 || money_talk)
}

/// An amount that can be a budget: a finite number above 0.
pub(crate) fn is_budget_amount(amount: f64) -> bool {
    amount.is_finite() && amount > 0.0
}

/// "500000 USD", "400000-500000 INR", "2500 USD per month".
pub(crate) fn money_value(m: &Money) -> String {
    money_text(m.amount, m.up_to, m.currency, m.per.map(Per::as_str))
}

/// An amount as [`money_value`] writes it, from its parts: digits in full (no rounding),
/// a range's upper end after `-`, the currency code and the period's name (`month`).
pub(crate) fn money_text(
    lower: f64,
    up_to: Option<f64>,
    currency: Option<&str>,
    per: Option<&str>,
) -> String {
    let mut out = amount(lower);
    if let Some(up) = up_to {
        out.push('-');
        out.push_str(&amount(up));
    }
    if let Some(c) = currency {
        out.push(' ');
        out.push_str(c);
    }
    if let Some(per) = per {
        out.push_str(" per ");
        out.push_str(per);
    }
    out
}

fn amount(a: f64) -> String {
    if a.fract() == 0.0 && a.abs() < 1e15 {
        format!("{a:.0}")
    } else {
        format!("{a}")
    }
}

// ------------------------------------------------------------------------- authority

/// People whose say a caller defers to.
const OTHERS: &[&str] = &[
    "boss",
    "husband",
    "wife",
    "partner",
    "spouse",
    "manager",
    "father",
    "mother",
    "dad",
    "mom",
    "mum",
    "parents",
    "family",
    "cofounder",
    "team",
    "accountant",
    "board",
    "son",
    "daughter",
    "director",
    "supervisor",
    "landlord",
    "fiance",
    "fiancee",
    "girlfriend",
    "boyfriend",
];

/// Roles that make the decision: "I'm the owner", "I am the CEO".
const ROLES: &[&str] = &[
    "owner",
    "ceo",
    "founder",
    "cofounder",
    "president",
    "director",
    "principal",
    "proprietor",
    "homeowner",
    "landlord",
    "boss",
    "decision",
    "decisionmaker",
    "md",
    "head",
    "chairman",
];

const DECIDE: &[&str] = &[
    "decide",
    "decides",
    "decision",
    "decisions",
    "deciding",
    "decider",
    "approve",
    "approves",
];

/// The caller speaking of themself, which makes a decision shared rather than another's.
const FIRST_PERSON: &[&str] = &["i", "me", "we", "us", "im", "ive", "ill", "id", "myself"];

const AUTHORITY_NONE: &[&[&str]] = &[
    &["check", "with"],
    &["run", "it", "by"],
    &["run", "this", "by"],
    &["consult", "with"],
    &["not", "my", "decision"],
    &["not", "my", "call"],
    &["not", "up", "to", "me"],
    &["not", "the", "one", "who"],
    &["dont", "make", "the", "decision"],
    &["dont", "make", "the", "decisions"],
    &["dont", "decide"],
    &["need", "approval"],
    &["needs", "approval"],
    &["get", "approval"],
    &["get", "it", "approved"],
    &["someone", "else", "decides"],
    &["somebody", "else", "decides"],
    &["not", "in", "charge"],
    &["above", "my", "pay", "grade"],
];

const AUTHORITY_SHARED: &[&[&str]] = &[
    &["we", "decide"],
    &["we", "both", "decide"],
    &["we", "make", "the", "decision"],
    &["we", "make", "decisions"],
    &["we", "make", "the", "decisions"],
    &["decide", "together"],
    &["joint", "decision"],
    &["jointly"],
    &["one", "of", "the", "decision", "makers"],
    &["part", "of", "the", "decision"],
];

const AUTHORITY_FULL: &[&[&str]] = &[
    &["i", "make", "the", "decision"],
    &["i", "make", "the", "decisions"],
    &["i", "make", "all", "the", "decisions"],
    &["i", "make", "decisions"],
    &["i", "make", "the", "call"],
    &["my", "decision"],
    &["its", "my", "call"],
    &["my", "call", "to", "make"],
    &["i", "decide"],
    &["i", "have", "the", "final", "say"],
    &["i", "have", "final", "say"],
    &["final", "say", "is", "mine"],
    &["the", "decision", "is", "mine"],
    &["up", "to", "me"],
    &["i", "sign", "off"],
    &["i", "sign", "the", "checks"],
    &["im", "in", "charge"],
    &["i", "am", "in", "charge"],
    &["i", "call", "the", "shots"],
    &["i", "own"],
    &["i", "run", "the"],
    &["i", "run", "this"],
];

/// Whether the decision is the caller's: see [`assess_words`].
pub(crate) fn authority(cl: &[Clause]) -> Option<Found> {
    let value = |v: &str| Some(v.to_string());
    // Someone else decides: "ask my boss", "my husband decides", "not the owner".
    for c in cl {
        let defers = AUTHORITY_NONE
            .iter()
            .find_map(|p| c.find(p))
            .or_else(|| {
                (0..c.words.len()).find(|&i| {
                    (c.is_any(i, &["ask", "consult", "asking"])
                        && c.is_any(i + 1, &["my", "our", "the"])
                        && c.is_any(i + 2, OTHERS))
                        || (c.is_any(i, &["talk", "speak", "discuss", "check"])
                            && c.is_any(i + 1, &["to", "with"])
                            && c.is_any(i + 2, &["my", "our", "the"])
                            && c.is_any(i + 3, OTHERS))
                        || (c.is_any(i, &["my", "our", "the"])
                            && c.is_any(i + 1, OTHERS)
                            && c.is_any(i + 2, &["decides", "makes", "has", "handles", "approves"]))
                        || (c.is_any(i, &["not", "never"])
                            && c.is_any(i + 1, &["the", "a"])
                            && c.is_any(i + 2, ROLES))
                })
            })
            // "my husband makes the decisions": another person deciding, no "I" or "we".
            .or_else(|| {
                (mentions_other(c)
                    && c.words.iter().any(|w| DECIDE.contains(&w.as_str()))
                    && !c.words.iter().any(|w| FIRST_PERSON.contains(&w.as_str())))
                .then_some(0)
            });
        if let Some(i) = defers {
            return Some(Found::new(0.0, Some(c.from(i)), value("no")));
        }
    }
    // Shared: "me and my wife decide", "my husband and I decide", "we decide together".
    for c in cl {
        let decides = c.words.iter().any(|w| DECIDE.contains(&w.as_str()));
        let shared = AUTHORITY_SHARED.iter().find_map(|p| c.find(p)).or_else(|| {
            (decides && (mentions_other(c) || c.has(&["we", "both"]) || c.has(&["together"])))
                .then_some(0)
        });
        if let Some(i) = shared {
            return Some(Found::new(0.5, Some(c.from(i)), value("shared")));
        }
    }
    // The caller's own: "I'm the owner", "it's my decision", "I decide".
    for c in cl {
        let full = AUTHORITY_FULL
            .iter()
            .find_map(|p| c.find_all(p).find(|&i| !c.negated(i)))
            .or_else(|| {
                (0..c.words.len()).find(|&i| {
                    let i_am = c.is(i, "im")
                        || (c.is(i, "am") && i.checked_sub(1).is_some_and(|k| c.is(k, "i")));
                    i_am && c.is_any(i + 1, &["the", "a", "an"]) && c.is_any(i + 2, ROLES)
                })
            });
        if let Some(i) = full {
            return Some(Found::new(1.0, Some(c.from(i)), value("yes")));
        }
    }
    None
}

/// "my wife", "our accountant", "the board", "my business partner".
fn mentions_other(c: &Clause) -> bool {
    (0..c.words.len()).any(|i| {
        c.is_any(i, &["my", "our", "the"])
            && (c.is_any(i + 1, OTHERS)
                || (c.is(i + 1, "business") && c.is_any(i + 2, &["partner", "partners"])))
    })
}

// ------------------------------------------------------------------------------ need

const NEED_FULL: &[&[&str]] = &[
    &["we", "need"],
    &["i", "need"],
    &["need", "a"],
    &["need", "an"],
    &["need", "some"],
    &["need", "to"],
    &["need", "more"],
    &["need", "help"],
    &["looking", "for"],
    &["looking", "to"],
    &["i", "want"],
    &["we", "want"],
    &["want", "to"],
    &["want", "a"],
    &["id", "like"],
    &["wed", "like"],
    &["would", "like"],
    &["struggling", "with"],
    &["struggling", "to"],
    &["struggle", "with"],
    &["problem", "with"],
    &["problems", "with"],
    &["issue", "with"],
    &["issues", "with"],
    &["trouble", "with"],
    &["lease", "ends"],
    &["lease", "is", "ending"],
    &["lease", "expires"],
    &["lease", "is", "up"],
    &["lease", "runs", "out"],
    &["in", "the", "market", "for"],
    &["trying", "to", "find"],
    &["trying", "to", "get"],
    &["we", "have", "to"],
    &["outgrown"],
    &["outgrew"],
    &["running", "out", "of"],
    &["ran", "out", "of"],
    &["interested", "in"],
    &["hoping", "to"],
    &["planning", "to"],
    &["plan", "to"],
];

/// What "need to", "want to" and the like are about when they are no need: deferring,
/// thinking, leaving.
const NOT_A_NEED: &[&str] = &[
    "ask",
    "check",
    "talk",
    "speak",
    "discuss",
    "think",
    "consult",
    "run",
    "go",
    "leave",
    "hang",
    "call",
    "confirm",
    "know",
    "understand",
    "stop",
    "remove",
    "you",
];

/// Whether the words from `k` say what a need-like phrase is about when it is no need:
/// "(need to) ask my wife", "(want to) think about it", "(need to) get back to you",
/// "(I'd like) you to stop calling".
fn deferral_at(c: &Clause, k: usize) -> bool {
    c.is_any(k, NOT_A_NEED) || (c.is(k, "get") && c.is(k + 1, "back"))
}

/// Hedges that make a need exploratory.
const HEDGES: &[&str] = &["maybe", "might", "may", "possibly", "perhaps", "probably"];

const NEED_SOME: &[&[&str]] = &[
    &["thinking", "about"],
    &["thinking", "of"],
    &["considering"],
    &["exploring"],
    &["curious", "about"],
    &["weighing", "our", "options"],
];

const NEED_NONE: &[&[&str]] = &[
    &["no", "need"],
    &["dont", "need"],
    &["doesnt", "need"],
    &["didnt", "need"],
    &["not", "needed"],
    &["dont", "want"],
    &["not", "looking"],
    &["all", "set"],
    &["happy", "with", "what"],
    &["already", "have", "one"],
];

/// The caller's need: see [`assess_words`].
pub(crate) fn need(cl: &[Clause]) -> Option<Found> {
    let mut some: Option<Range<usize>> = None;
    let mut none: Option<Range<usize>> = None;
    for c in cl {
        for p in NEED_FULL {
            for i in c.find_all(p) {
                let end = i + p.len();
                // "I need to ask my wife", "want to think about it": no need.
                let deferral = if p.last() == Some(&"to") {
                    deferral_at(c, end)
                } else {
                    c.is(end, "you") || (c.is(end, "to") && deferral_at(c, end + 1))
                };
                if deferral {
                    continue;
                }
                if c.negated(i) {
                    none = none.or(Some(c.from(i)));
                } else if (i.saturating_sub(2)..i).any(|k| c.is_any(k, HEDGES)) {
                    some = some.or(Some(c.from(i)));
                } else {
                    return Some(Found::new(1.0, Some(c.from(i)), None));
                }
            }
        }
        for p in NEED_SOME {
            for i in c.find_all(p) {
                // "thinking about it" puts the call off; it names no need.
                if c.is_any(i + p.len(), &["it", "that", "this"]) {
                    continue;
                }
                if c.negated(i) {
                    none = none.or(Some(c.from(i)));
                } else {
                    some = some.or(Some(c.from(i)));
                }
            }
        }
        if let Some(i) = NEED_NONE.iter().find_map(|p| c.find(p)) {
            none = none.or(Some(c.from(i)));
        }
    }
    some.map(|f| Found::new(0.5, Some(f), None))
        .or_else(|| none.map(|f| Found::new(0.0, Some(f), None)))
}

// -------------------------------------------------------------------------- timeline

/// The timeline said in `line`: see [`assess_words`].
fn timeline(line: &str, cl: &[Clause], today: NaiveDate) -> Option<Found> {
    let t = slots::timeline(line, today)?;
    let focus = cl.iter().find(|c| {
        line.get(c.span.clone())
            .and_then(|part| slots::timeline(part, today))
            .is_some()
    });
    Some(timeline_found(&t, today, focus.map(|c| c.span.clone())))
}

pub(crate) fn timeline_found(t: &Timeline, today: NaiveDate, focus: Option<Range<usize>>) -> Found {
    let partial_days = today
        .checked_add_months(Months::new(PARTIAL_TIMELINE_MONTHS))
        .and_then(|d| u32::try_from((d - today).num_days()).ok())
        .unwrap_or(183);
    let strength = match t.within_days {
        _ if t.urgent => 1.0,
        Some(d) if d <= partial_days => 0.5,
        _ => 0.0,
    };
    let value = match t.within_days {
        Some(0) => "right away".to_string(),
        Some(1) => "within 1 day".to_string(),
        Some(d) => format!("within {d} days"),
        None => "no set timeline".to_string(),
    };
    Found::new(strength, focus, Some(value))
}

// ------------------------------------------------------------------------ engagement

const REFUSALS: &[&[&str]] = &[
    &["stop", "calling"],
    &["dont", "call"],
    &["do", "not", "call"],
    &["remove", "me"],
    &["take", "me", "off"],
    &["leave", "me", "alone"],
    &["wrong", "number"],
    &["unsubscribe"],
    &["not", "buying"],
    &["dont", "want", "to", "talk"],
];

/// Whether the caller refused the conversation in `cl`. "not interested" counts unless
/// it is about something ("not interested in renting, I want to buy").
pub(crate) fn refuses(cl: &[Clause]) -> bool {
    cl.iter().any(|c| {
        REFUSALS.iter().any(|p| c.has(p))
            || c.find_all(&["not", "interested"])
                .any(|i| !c.is(i + 2, "in"))
    })
}

/// Engagement over all the caller's lines, and the line to quote (the longest).
fn engagement<'a>(turns: &[&'a str]) -> Option<(Found, &'a str)> {
    let mut answers = 0usize;
    let mut words = 0usize;
    let mut longest: Option<(usize, &str)> = None;
    let mut refused = false;
    for &line in turns {
        let n = word_count(line);
        if n == 0 {
            continue;
        }
        answers += 1;
        words += n;
        if longest.is_none_or(|(m, _)| n > m) {
            longest = Some((n, line));
        }
        refused |= refuses(&clauses(line));
    }
    let (_, line) = longest?;
    let strength = if refused {
        0.0
    } else {
        let avg = words as f64 / answers as f64;
        let count = (answers as f64 / ANSWERS_FOR_FULL_ENGAGEMENT as f64).min(1.0);
        count * (avg / WORDS_FOR_FULL_ENGAGEMENT).min(1.0)
    };
    let value = if refused {
        "refused".to_string()
    } else {
        format!(
            "{answers} answer{}, {:.1} words on average",
            if answers == 1 { "" } else { "s" },
            words as f64 / answers as f64
        )
    };
    Some((Found::new(strength, None, Some(value)), line))
}
