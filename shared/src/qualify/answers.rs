//! Signals from the arguments a model passed to the `qualify_lead` tool. A model may
//! send anything, so arguments are read field by field and an error names the field
//! that is wrong. The per-signal rules for a text answer are shared with
//! [`assess_slots`](super::assess_slots), which reads a flow's typed slots.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use super::text::{clauses, quote};
use super::words::{self, Found};
use super::{Assessment, Evidence, Signal};
use crate::domain::ValueError;
use crate::slots;

/// The tool's name in a model's tool list.
pub const QUALIFY_LEAD_TOOL: &str = "qualify_lead";

/// The `qualify_lead` tool's arguments; every field is optional (a model fills in what
/// the caller said). Read a model's JSON with [`QualifyArgs::parse`] or
/// [`QualifyArgs::from_value`], which name the field that is wrong. Serializes as the
/// JSON those read back.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QualifyArgs {
    /// The budget in the caller's words ("about 500k", "50 lakh"); a number a model
    /// sent is kept as its digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Whether the caller makes the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_maker: Option<bool>,
    /// What the caller needs, in their words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need: Option<String>,
    /// When the caller means to act, in their words ("asap", "within 3 months").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<String>,
    /// How engaged the caller was, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement: Option<f64>,
    /// The caller's words that support each signal, quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<BTreeMap<Signal, String>>,
}

impl QualifyArgs {
    /// The arguments from the JSON text a model sent (chat-completions APIs pass tool
    /// arguments as a string).
    pub fn parse(arguments: &str) -> Result<Self, ValueError> {
        let value: Value = serde_json::from_str(arguments).map_err(|e| ValueError {
            field: "arguments",
            reason: format!("not JSON: {e}"),
        })?;
        Self::from_value(&value)
    }

    /// The arguments from a JSON object. Each field is checked on its own so that the
    /// error names it; `null` is the same as leaving a field out, and unknown fields are
    /// ignored (models add their own). A decision maker said as "yes" or "true" is
    /// accepted, since models often quote booleans.
    pub fn from_value(value: &Value) -> Result<Self, ValueError> {
        let Value::Object(map) = value else {
            return Err(ValueError {
                field: "arguments",
                reason: format!("expected a JSON object, got {}", kind(value)),
            });
        };
        let get = |k: &str| map.get(k).filter(|v| !v.is_null());
        let bad = |field: &'static str, expected: &str, got: &Value| ValueError {
            field,
            reason: format!("expected {expected}, got {}", kind(got)),
        };
        let text = |field: &'static str| -> Result<Option<String>, ValueError> {
            match get(field) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(bad(field, "a string", v)),
            }
        };
        let budget = match get("budget") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(v) => return Err(bad("budget", "a string or a number", v)),
        };
        let decision_maker = match get("decision_maker") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                other => Some(slots::yes_no(other).ok_or_else(|| ValueError {
                    field: "decision_maker",
                    reason: format!("expected true or false, got {:?}", clip(s)),
                })?),
            },
            Some(v) => return Err(bad("decision_maker", "true or false", v)),
        };
        let engagement = match get("engagement") {
            None => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(v) => return Err(bad("engagement", "a number from 0 to 1", v)),
        };
        let evidence = match get("evidence") {
            None => None,
            Some(Value::Object(quotes)) => {
                let mut out = BTreeMap::new();
                for (key, quote) in quotes {
                    let signal: Signal = serde_json::from_value(Value::String(key.clone()))
                        .map_err(|_| ValueError {
                            field: "evidence",
                            reason: format!(
                                "{:?} is not a signal (budget, authority, need, timeline, engagement)",
                                clip(key)
                            ),
                        })?;
                    match quote {
                        Value::Null => {}
                        Value::String(q) => {
                            out.insert(signal, q.clone());
                        }
                        v => return Err(bad("evidence", "quotes as strings", v)),
                    }
                }
                Some(out)
            }
            Some(v) => return Err(bad("evidence", "an object of quotes by signal", v)),
        };
        let args = Self {
            budget,
            decision_maker,
            need: text("need")?,
            timeline: text("timeline")?,
            engagement,
            evidence,
        };
        check_engagement(args.engagement)?;
        Ok(args)
    }
}

fn check_engagement(engagement: Option<f64>) -> Result<(), ValueError> {
    match engagement {
        Some(e) if !(0.0..=1.0).contains(&e) => Err(ValueError {
            field: "engagement",
            reason: format!("{e} is not between 0 and 1"),
        }),
        _ => Ok(()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A model's garbage, short enough to put in an error message.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Texts a model uses for "the caller did not say".
const UNKNOWN: &[&str] = &[
    "",
    "none",
    "unknown",
    "n/a",
    "na",
    "not sure",
    "unsure",
    "unclear",
    "not mentioned",
    "not stated",
    "not given",
    "no",
    "null",
    "nil",
    "-",
];

/// The signals in a model's `qualify_lead` arguments, with `today` in the tenant's time
/// zone for relative timelines ("by march").
///
/// Rules (the words-based ones of [`assess_words`](super::assess_words) where words are
/// given):
/// - **Budget**: an amount in the text (any amount above 0: the field says it is a
///   budget) = 1; a budget with no amount ("pre-approved") = 0.5; "no budget" = 0; a text
///   saying nothing ("unknown") leaves the signal out.
/// - **Authority**: `decision_maker` true = 1, false = 0.
/// - **Need**: a hedged need ("might need a bigger office") = 0.5, a negated one ("doesn't
///   need anything") or "none" = 0, any other text = 1 (the model states the need).
/// - **Timeline**: as for words: urgent = 1, within six months = 0.5, else 0; a text with
///   no timeline in it leaves the signal out.
/// - **Engagement**: the number given.
///
/// Evidence for each signal above 0 quotes `evidence[signal]` when the model gave it,
/// else the argument's own text (empty for `decision_maker` and `engagement`).
///
/// An engagement outside 0..=1 (or NaN) is an error naming `engagement`; other fields
/// are already typed.
pub fn assess_answers(answers: &QualifyArgs, today: NaiveDate) -> Result<Assessment, ValueError> {
    // NaN fails the range check too.
    check_engagement(answers.engagement)?;
    let mut found: BTreeMap<Signal, (Found, String)> = BTreeMap::new();

    if let Some(text) = answers.budget.as_deref().and_then(given)
        && let Some(f) = budget_in(text)
    {
        found.insert(Signal::Budget, (f, text.to_string()));
    }
    if let Some(yes) = answers.decision_maker {
        found.insert(Signal::Authority, (decides(yes), String::new()));
    }
    if let Some(text) = answers.need.as_deref().and_then(given) {
        found.insert(Signal::Need, (need_in(text), text.to_string()));
    }
    if let Some(text) = answers.timeline.as_deref().and_then(given)
        && let Some(f) = timeline_in(text, today)
    {
        found.insert(Signal::Timeline, (f, text.to_string()));
    }
    if let Some(e) = answers.engagement {
        let f = Found {
            strength: e,
            focus: None,
            value: Some(format!("{e}")),
        };
        found.insert(Signal::Engagement, (f, String::new()));
    }
    Ok(assessment(found, answers.evidence.as_ref()))
}

/// The assessment of signals found, each with the words it came from; `quotes` (a
/// model's evidence by signal) replace those words where given. Evidence is kept for
/// each signal above 0, quoted to at most [`MAX_QUOTE_CHARS`](super::MAX_QUOTE_CHARS).
pub(crate) fn assessment(
    found: BTreeMap<Signal, (Found, String)>,
    quotes: Option<&BTreeMap<Signal, String>>,
) -> Assessment {
    let mut assessment = Assessment::default();
    for (signal, (f, own_words)) in found {
        assessment.signals.insert(signal, f.strength);
        if f.strength > 0.0 {
            let said = quotes
                .and_then(|e| e.get(&signal))
                .map_or(own_words.as_str(), String::as_str);
            assessment.evidence.push(Evidence {
                signal,
                words: quote(said, None),
                value: f.value,
            });
        }
    }
    assessment
}

/// A budget answer in words: an amount (any above 0) = 1, else the words-based budget
/// (0.5 with no amount, 0 for none); `None` when the text says nothing of a budget.
pub(crate) fn budget_in(text: &str) -> Option<Found> {
    match slots::money(text) {
        Some(m) if words::money_is_budget(&m, true) => Some(Found {
            strength: 1.0,
            focus: None,
            value: Some(words::money_value(&m)),
        }),
        _ => words::budget_words(&clauses(text)),
    }
}

/// Whether the caller decides: yes = 1, no = 0.
pub(crate) fn decides(yes: bool) -> Found {
    Found {
        strength: if yes { 1.0 } else { 0.0 },
        focus: None,
        value: Some(if yes { "yes" } else { "no" }.to_string()),
    }
}

/// A need stated as an answer: hedged = 0.5, negated = 0, anything else = 1.
pub(crate) fn need_in(text: &str) -> Found {
    words::need(&clauses(text))
        .filter(|f| f.strength < 1.0)
        .unwrap_or(Found {
            strength: 1.0,
            focus: None,
            value: None,
        })
}

/// A timeline answer in words, scored as words are; `None` when it names no timeline.
pub(crate) fn timeline_in(text: &str, today: NaiveDate) -> Option<Found> {
    slots::timeline(text, today).map(|t| words::timeline_found(&t, today, None))
}

/// The text of an answer, trimmed, unless it is empty or says "unknown".
pub(crate) fn given(text: &str) -> Option<&str> {
    let text = text.trim();
    (!UNKNOWN.contains(&text.to_lowercase().as_str())).then_some(text)
}

/// The JSON Schema of [`QualifyArgs`], for a model's tool list (the `parameters` of an
/// OpenAI-style function).
pub fn qualify_lead_tool_schema() -> Value {
    let quote = json!({ "type": "string", "description": "The caller's own words, quoted." });
    json!({
        "type": "object",
        "properties": {
            "budget": {
                "type": ["string", "number"],
                "description": "The budget the caller said, in their words (\"about 500k\", \"50 lakh\", \"$2,000 a month\") or as a number. Leave out if they did not say."
            },
            "decision_maker": {
                "type": "boolean",
                "description": "True if the caller makes the buying decision themselves, false if someone else does (\"I need to ask my boss\")."
            },
            "need": {
                "type": "string",
                "description": "The need or problem the caller stated, in their words (\"we need a bigger office\", \"our lease ends in March\")."
            },
            "timeline": {
                "type": "string",
                "description": "When the caller means to act, in their words (\"asap\", \"within 3 months\", \"next year\", \"just looking\")."
            },
            "engagement": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "How engaged the caller was in the conversation, from 0 (refused or one-word answers) to 1 (answered fully)."
            },
            "evidence": {
                "type": "object",
                "description": "For each signal you filled in, the caller's words that support it.",
                "properties": {
                    "budget": quote,
                    "authority": quote,
                    "need": quote,
                    "timeline": quote,
                    "engagement": quote
                },
                "additionalProperties": false
            }
        },
        "additionalProperties": false
    })
}
