//! Lead qualification (BANT): how ready a lead is to buy, as a score from 0 to 1 and a
//! temperature (hot, warm, cold), with the caller's words that support each signal.
//!
//! Five signals, each with a strength from 0 to 1 (partial credit allowed):
//! [`Signal::Budget`] (a budget mentioned), [`Signal::Authority`] (a decision maker),
//! [`Signal::Need`] (a clear need), [`Signal::Timeline`] (an urgent timeline) and
//! [`Signal::Engagement`]. The score is the weighted sum of the strengths; the weights
//! and the temperature thresholds are a tenant's [`QualificationSettings`] (by default
//! 0.25 / 0.20 / 0.25 / 0.20 / 0.10, hot at 0.75, warm at 0.45).
//!
//! Three ways in, each giving an [`Assessment`] for [`score`]:
//! - [`assess_words`]: from the caller's lines, with no LLM (phrases and the
//!   [`slots`](crate::slots) parsers).
//! - [`assess_slots`]: from a scripted flow's collected slots, read from their typed
//!   values.
//! - [`assess_answers`]: from a model's `qualify_lead` tool arguments ([`QualifyArgs`],
//!   schema from [`qualify_lead_tool_schema`]).
//!
//! The [`Qualification`] becomes the lead's `Qualify` command
//! ([`Qualification::command`]). Pure domain logic: no I/O, no clock reads.

mod answers;
mod collected;
mod text;
mod words;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use answers::{QUALIFY_LEAD_TOOL, QualifyArgs, assess_answers, qualify_lead_tool_schema};
pub use collected::assess_slots;
pub use text::MAX_QUOTE_CHARS;
pub use words::assess_words;

use crate::domain::ValueError;
use crate::domain::lead::{LeadCommand, Temperature};

/// One of the BANT signals (plus engagement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A budget was mentioned.
    Budget,
    /// The caller makes the decision. Models often call this `decision_maker`.
    #[serde(alias = "decision_maker")]
    Authority,
    /// The caller stated a clear need or problem.
    Need,
    /// The caller means to act soon.
    Timeline,
    /// The caller took part in the conversation.
    Engagement,
}

impl Signal {
    pub const ALL: [Signal; 5] = [
        Signal::Budget,
        Signal::Authority,
        Signal::Need,
        Signal::Timeline,
        Signal::Engagement,
    ];
}

/// How much each signal counts. Valid weights are finite, not negative and sum to 1, so
/// that a score stays between 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    pub budget: f64,
    pub authority: f64,
    pub need: f64,
    pub timeline: f64,
    pub engagement: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            budget: 0.25,
            authority: 0.20,
            need: 0.25,
            timeline: 0.20,
            engagement: 0.10,
        }
    }
}

impl Weights {
    pub(crate) fn of(&self, signal: Signal) -> f64 {
        match signal {
            Signal::Budget => self.budget,
            Signal::Authority => self.authority,
            Signal::Need => self.need,
            Signal::Timeline => self.timeline,
            Signal::Engagement => self.engagement,
        }
    }
}

/// How far the weights' sum may be from 1, for weights typed as decimals by a person.
const WEIGHT_SUM_TOLERANCE: f64 = 0.001;

/// A tenant's qualification rules. Every field has a default, so a tenant stores only
/// what it changes; unknown fields are ignored so that settings stored by a newer
/// version still load. Check with [`QualificationSettings::validate`] before storing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QualificationSettings {
    pub weights: Weights,
    /// The lowest score of a hot lead.
    pub hot_at: f64,
    /// The lowest score of a warm lead; below it a lead is cold.
    pub warm_at: f64,
}

impl Default for QualificationSettings {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            hot_at: 0.75,
            warm_at: 0.45,
        }
    }
}

impl QualificationSettings {
    /// Every rule these settings break, each naming its field (`weights.budget`,
    /// `weights` for the sum, `hot_at`, `warm_at`).
    pub fn validate(&self) -> Result<(), Vec<ValueError>> {
        let mut errors = Vec::new();
        let w = &self.weights;
        let named = [
            ("weights.budget", w.budget),
            ("weights.authority", w.authority),
            ("weights.need", w.need),
            ("weights.timeline", w.timeline),
            ("weights.engagement", w.engagement),
        ];
        for (field, value) in named {
            if !value.is_finite() || value < 0.0 {
                errors.push(ValueError {
                    field,
                    reason: format!("{value} is not a number of 0 or more"),
                });
            }
        }
        // The sum only means something once each weight is a number.
        if errors.is_empty() {
            let sum: f64 = named.iter().map(|(_, v)| v).sum();
            if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
                errors.push(ValueError {
                    field: "weights",
                    reason: format!("the weights add up to {sum:.3}, not 1"),
                });
            }
        }
        for (field, value) in [("hot_at", self.hot_at), ("warm_at", self.warm_at)] {
            if !(0.0..=1.0).contains(&value) {
                errors.push(ValueError {
                    field,
                    reason: format!("{value} is not between 0 and 1"),
                });
            }
        }
        if self.warm_at > self.hot_at {
            errors.push(ValueError {
                field: "warm_at",
                reason: format!(
                    "{} is above hot_at ({}): a warm lead cannot need more than a hot one",
                    self.warm_at, self.hot_at
                ),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The temperature of a lead with this score.
    pub fn temperature(&self, score: f64) -> Temperature {
        if score >= self.hot_at {
            Temperature::Hot
        } else if score >= self.warm_at {
            Temperature::Warm
        } else {
            Temperature::Cold
        }
    }
}

/// What the caller said that supports a signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub signal: Signal,
    /// The caller's words (or the model's quote of them), trimmed to at most
    /// [`MAX_QUOTE_CHARS`] characters. Empty when a model gave a bare value with no quote.
    pub words: String,
    /// The value read from them, when there is one: "500000 USD", "within 30 days", "yes".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The signals found in a conversation, before weighting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Each signal's strength, 0 to 1. A signal the caller said nothing about is absent;
    /// one they spoke against ("I need to ask my husband") is present with 0. Both score
    /// nothing.
    #[serde(default)]
    pub signals: BTreeMap<Signal, f64>,
    /// The words behind each signal with a strength above 0, in signal order.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl Assessment {
    /// The signal's strength as scored: clamped to 0..=1, and 0 when absent or NaN.
    pub fn strength(&self, signal: Signal) -> f64 {
        self.signals
            .get(&signal)
            .map_or(0.0, |&s| if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) })
    }
}

/// A lead's qualification: its score, temperature and the evidence behind them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Qualification {
    /// 0 to 1, rounded to 3 decimal places.
    pub score: f64,
    pub temperature: Temperature,
    pub evidence: Vec<Evidence>,
}

impl Qualification {
    /// The lead stream's command that records this qualification, evidence and all.
    pub fn command(&self) -> LeadCommand {
        LeadCommand::Qualify {
            temperature: self.temperature,
            score: self.score,
            evidence: self.evidence.clone(),
        }
    }
}

/// The lead's score and temperature under a tenant's settings.
///
/// The score is Σ weight × strength over the five signals, each strength clamped to
/// 0..=1 (NaN is 0), then rounded to 3 decimal places *before* the thresholds are
/// applied, so that 0.25 + 0.20 + 0.25 + 0.05 is exactly the 0.75 of "hot at 0.75"
/// whatever the floating-point sum. Settings that fail
/// [`validate`](QualificationSettings::validate) still give a score within 0..=1.
pub fn score(assessment: Assessment, settings: &QualificationSettings) -> Qualification {
    let raw: f64 = Signal::ALL
        .iter()
        .map(|&s| settings.weights.of(s) * assessment.strength(s))
        .sum();
    let raw = if raw.is_finite() {
        raw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let score = (raw * 1000.0).round() / 1000.0;
    Qualification {
        score,
        temperature: settings.temperature(score),
        evidence: assessment.evidence,
    }
}
