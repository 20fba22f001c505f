//! Signals from a scripted flow's collected slots, read from their typed values: an
//! amount is scored and quoted as the number collected, never spoken out and parsed
//! back ("1234567 USD", not "1.23 million dollars").

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::answers::{assessment, budget_in, decides, given, need_in, timeline_in};
use super::words::{self, Found};
use super::{Assessment, Signal};
use crate::flow::SlotValue;
use crate::slots::Timeline;

/// The signals in a flow's collected slots, under the slot names the shipped flows use,
/// with `today` in the tenant's time zone for relative timelines.
///
/// Rules (a slot that is missing, of another kind, or a text saying nothing ("not sure")
/// leaves its signal out, which scores 0):
/// - **Budget** (`budget`): money or a number above 0 = 1, its value the amount as
///   collected ("1234567 USD", "400000-500000 INR", "2500 per month"); text as a model's
///   budget is read (an amount = 1, a budget with no amount = 0.5, "no budget" = 0).
/// - **Authority** (`decision_maker`): yes/no = 1 or 0; the choice `self`, `yes` or `me`
///   = 1, `shared` = 0.5 (a shared decision, as in words), `someone_else` or `no` = 0.
/// - **Need** (`need`, text or a choice): hedged = 0.5, negated = 0, anything else = 1.
///   Without a `need` slot, `buy_or_rent` and `area` (text or choices) make one ("to buy
///   in Brooklyn").
/// - **Timeline** (`timeline`): a timeline slot as collected: urgent = 1, within six
///   months = 0.5, later or no horizon = 0; text read as words are.
///
/// No engagement: a flow's slots say nothing of it. The evidence for each signal above
/// 0 quotes the slot's value (the amount, "yes", the choice, the caller's text, the
/// timeline as "within 30 days"), with the value read from it.
pub fn assess_slots(slots: &BTreeMap<String, SlotValue>, today: NaiveDate) -> Assessment {
    let mut found: BTreeMap<Signal, (Found, String)> = BTreeMap::new();
    let slot = |name: &str| slots.get(name);
    let findings = [
        (Signal::Budget, slot("budget").and_then(budget)),
        (
            Signal::Authority,
            slot("decision_maker").and_then(authority),
        ),
        (Signal::Need, need(slots)),
        (
            Signal::Timeline,
            slot("timeline").and_then(|v| timeline(v, today)),
        ),
    ];
    for (signal, f) in findings {
        if let Some(f) = f {
            found.insert(signal, f);
        }
    }
    assessment(found, None)
}

/// The budget, and the words quoted for it.
fn budget(value: &SlotValue) -> Option<(Found, String)> {
    let amount = |amount: f64, up_to: Option<f64>, currency: Option<&str>, per: Option<&str>| {
        words::is_budget_amount(amount).then(|| {
            let text = words::money_text(amount, up_to, currency, per);
            let f = Found {
                strength: 1.0,
                focus: None,
                value: Some(text.clone()),
            };
            (f, text)
        })
    };
    match value {
        SlotValue::Money {
            amount: a,
            up_to,
            currency,
            per,
        } => amount(*a, *up_to, currency.as_deref(), per.as_deref()),
        SlotValue::Number { value } => amount(*value, None, None, None),
        SlotValue::Text { value } => {
            let text = given(value)?;
            budget_in(text).map(|f| (f, text.to_owned()))
        }
        _ => None,
    }
}

/// Whether the caller decides, and the words quoted for it.
fn authority(value: &SlotValue) -> Option<(Found, String)> {
    match value {
        SlotValue::YesNo { value } => {
            Some((decides(*value), if *value { "yes" } else { "no" }.into()))
        }
        SlotValue::Choice { value } => {
            let f = match value.as_str() {
                "self" | "yes" | "me" => decides(true),
                "shared" => Found {
                    strength: 0.5,
                    focus: None,
                    value: Some("shared".into()),
                },
                "someone_else" | "no" => decides(false),
                _ => return None,
            };
            Some((f, value.clone()))
        }
        _ => None,
    }
}

/// The need, and the words quoted for it: the `need` slot, else what `buy_or_rent` and
/// `area` say.
fn need(slots: &BTreeMap<String, SlotValue>) -> Option<(Found, String)> {
    let text = |name: &str| match slots.get(name) {
        Some(SlotValue::Text { value }) if !value.trim().is_empty() => Some(value.clone()),
        Some(SlotValue::Choice { value }) => Some(value.replace('_', " ")),
        _ => None,
    };
    let said = text("need").or_else(|| match (text("buy_or_rent"), text("area")) {
        (Some(what), Some(area)) => Some(format!("to {what} in {area}")),
        (Some(what), None) => Some(format!("to {what}")),
        (None, Some(area)) => Some(format!("a home in {area}")),
        (None, None) => None,
    })?;
    let said = given(&said)?;
    Some((need_in(said), said.to_owned()))
}

/// The timeline, and the words quoted for it.
fn timeline(value: &SlotValue, today: NaiveDate) -> Option<(Found, String)> {
    match value {
        SlotValue::Timeline {
            within_days,
            urgent,
        } => {
            let t = Timeline {
                within_days: *within_days,
                urgent: *urgent,
            };
            let f = words::timeline_found(&t, today, None);
            let said = f.value.clone().unwrap_or_default();
            Some((f, said))
        }
        SlotValue::Text { value } => {
            let text = given(value)?;
            timeline_in(text, today).map(|f| (f, text.to_owned()))
        }
        _ => None,
    }
}
