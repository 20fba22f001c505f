//! After the call: what it came to. The brain's acts and the answers it collected are
//! logged as the call runs ([`CallLog`]); when the conversation is over they are
//! classified ([`parley_shared::outcome`]), the outcome and a short summary written to
//! the call, and the details learnt and the lead's new status written to the lead.
//!
//! With a language model the summary and the details are the model's (asked once,
//! after the call, with the transcript); without one, or when it fails, the flow's
//! collected answers are the details and the summary is written from the facts.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::NaiveDateTime;
use parley_shared::aggregate::{self, Context};
use parley_shared::domain::call::{Call, CallEvent};
use parley_shared::domain::ids::{AppointmentId, CallId, TenantId};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::flow::SlotValue;
use parley_shared::outcome::{self, BrainAct, CallFacts, Classified};
use serde_json::Value;

use crate::call::{AfterCall, Calls};
use crate::conversation::{Speaker, Turn};
use crate::llm::{ChatRequest, LanguageModel, LlmEvent, Message};

/// How long the model may take over the call's notes before the facts' own summary
/// stands.
const SUMMARY_WITHIN: Duration = Duration::from_secs(20);
/// Most details kept from a model's extraction.
const MAX_DETAILS: usize = 20;
/// Longest detail name kept.
const MAX_DETAIL_NAME: usize = 40;
/// Longest transcript a model is given to summarise (characters, the latest kept).
const MAX_TRANSCRIPT_CHARS: usize = 24_000;

const NOTES_PROMPT: &str = "You write the notes a business keeps on a phone call between \
its AI agent and a caller. Reply with one JSON object and nothing else: \
{\"summary\": \"one or two plain sentences on what the caller wanted and what was agreed\", \
\"details\": {\"name\": \"value\"}}. In details put what the caller told about themselves \
(for example budget, timeline, need, decision_maker, preferred_time, area), with short \
snake_case names and short values. Never include phone numbers, email addresses or card \
numbers.";

/// What the brain did during one call, and the answers it collected.
#[derive(Default)]
pub struct CallLog {
    acts: Mutex<Vec<BrainAct>>,
    slots: Mutex<BTreeMap<String, SlotValue>>,
    /// The appointment last booked, and its local time: what a confirmation confirms.
    booking: Mutex<Option<(AppointmentId, NaiveDateTime)>>,
}

impl CallLog {
    /// Something the brain did (qualified, booked, handed over...).
    pub fn act(&self, act: BrainAct) {
        lock(&self.acts).push(act);
    }

    pub(crate) fn booked(&self, id: AppointmentId, at: NaiveDateTime) {
        *lock(&self.booking) = Some((id, at));
    }

    pub(crate) fn last_booking(&self) -> Option<(AppointmentId, NaiveDateTime)> {
        lock(&self.booking).clone()
    }

    /// The flow's answers so far (each turn's replaces the last).
    pub fn answers(&self, slots: &BTreeMap<String, SlotValue>) {
        *lock(&self.slots) = slots.clone();
    }

    fn facts(&self, end_reason: &str, turns: u32, machine: bool) -> CallFacts {
        CallFacts {
            machine,
            turns,
            end_reason: end_reason.to_owned(),
            acts: lock(&self.acts).clone(),
            slots: lock(&self.slots).clone(),
        }
    }
}

/// A log entry is a plain push: a panic elsewhere leaves nothing half-written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Calls {
    /// Classifies the call and writes its outcome and summary, then the details and
    /// status on its lead. Each write on its own: one failing loses none of the others.
    pub(crate) async fn wrap_up(
        &self,
        ctx: &Context,
        id: &CallId,
        end_reason: &str,
        turns: u32,
        transcript: &[Turn],
        after: &AfterCall,
    ) {
        let (log, model) = (&after.log, after.model.as_deref());
        let tenant = ctx.tenant_id.as_str();
        let events = &*self.ports.events;
        let call = match aggregate::load::<Call>(events, &id.stream(), tenant).await {
            Ok(call) => call.state,
            Err(e) => {
                tracing::error!(tenant_id = tenant, call_id = %id, error = %e, "call not classified");
                return;
            }
        };
        let machine = call.answered_by.is_some_and(|a| a.is_machine());
        let facts = log.facts(end_reason, turns, machine);
        let mut classified = outcome::classify(&facts);
        // A model's notes only for a conversation that had one, and not from a vendor
        // that just failed the call.
        let talked = turns > 0 && !machine && end_reason != "vendor_failed";
        if let Some(model) = model.filter(|_| talked) {
            match notes(model, transcript).await {
                Ok((summary, details)) => {
                    if !summary.is_empty() {
                        classified.summary = summary;
                    }
                    classified.details.extend(details);
                }
                Err(e) => {
                    tracing::warn!(tenant_id = tenant, call_id = %id, error = %e, "the model wrote no notes; the facts' summary stands")
                }
            }
        }
        let Classified {
            outcome,
            summary,
            details,
        } = classified;
        self.note(ctx, id, CallEvent::OutcomeClassified { outcome, summary })
            .await;
        let Some(lead_id) = &call.lead_id else {
            return;
        };
        let Ok(tenant_id) = TenantId::parse(tenant) else {
            tracing::warn!(tenant_id = tenant, call_id = %id, "not a tenant id: the lead is left as it was");
            return;
        };
        let lead = aggregate::load::<Lead>(events, &lead_id.stream(), tenant).await;
        let status = match lead {
            Ok(lead) => outcome::next_status(lead.state.status, outcome, facts.qualified()),
            Err(e) => {
                tracing::error!(tenant_id = tenant, call_id = %id, error = %e, "lead not read");
                None
            }
        };
        let mut commands = vec![LeadCommand::CaptureDetails {
            call_id: id.clone(),
            details,
        }];
        commands.extend(status.map(|status| LeadCommand::ChangeStatus { status }));
        for command in commands {
            let run =
                parley_shared::leadviews::run_lead(&self.ports, &tenant_id, lead_id, command, None);
            if let Err(e) = run.await {
                tracing::error!(tenant_id = tenant, call_id = %id, error = %e, "lead not updated after the call");
            }
        }
    }
}

/// The model's summary and details of the call, made safe for the history.
async fn notes(
    model: &dyn LanguageModel,
    transcript: &[Turn],
) -> Result<(String, BTreeMap<String, String>), String> {
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: NOTES_PROMPT.to_owned(),
            },
            Message::User {
                content: written(transcript),
            },
        ],
        tools: vec![],
    };
    let text = tokio::time::timeout(SUMMARY_WITHIN, async {
        let mut stream = model.stream(request).await.map_err(|e| e.to_string())?;
        let mut text = String::new();
        while let Some(event) = stream.recv().await {
            match event {
                LlmEvent::Text(t) => text.push_str(&t),
                LlmEvent::Done => return Ok(text),
                LlmEvent::ToolCalls(_) => return Err("asked for tools".to_owned()),
                LlmEvent::Failed(e) => return Err(e.to_string()),
            }
        }
        Err("the answer stopped short".to_owned())
    })
    .await
    .map_err(|_| "timed out".to_owned())??;
    read_notes(&text)
}

/// The notes in a model's answer: a JSON object, perhaps fenced as code.
fn read_notes(text: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let start = text.find('{').ok_or("no JSON object")?;
    let end = text.rfind('}').ok_or("no JSON object")?;
    let json = text.get(start..=end).ok_or("no JSON object")?;
    let value: Value = serde_json::from_str(json).map_err(|_| "not JSON")?;
    let summary = value
        .get("summary")
        .and_then(Value::as_str)
        .map(outcome::safe_summary)
        .unwrap_or_default();
    let mut details = BTreeMap::new();
    if let Some(found) = value.get("details").and_then(Value::as_object) {
        for (name, value) in found.iter().take(MAX_DETAILS) {
            let name: String = name
                .trim()
                .to_lowercase()
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '_' })
                .take(MAX_DETAIL_NAME)
                .collect();
            let value = match value {
                Value::String(s) => outcome::safe_detail(s),
                Value::Number(n) => outcome::safe_detail(&n.to_string()),
                Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
                _ => None,
            };
            // The details go on the lead: a model's phone number is dropped whole.
            if let Some(value) = value.filter(|v| outcome::safe_summary(v) == *v)
                && !name.is_empty()
            {
                details.insert(name, value);
            }
        }
    }
    Ok((summary, details))
}

/// The transcript as lines for the model, the latest kept when it is long.
fn written(transcript: &[Turn]) -> String {
    let lines: Vec<String> = transcript
        .iter()
        .filter(|t| !t.text.trim().is_empty())
        .map(|t| {
            let who = match t.speaker {
                Speaker::Agent => "Agent",
                Speaker::Caller => "Caller",
            };
            format!("{who}: {}", t.text.trim())
        })
        .collect();
    let mut kept = Vec::new();
    let mut size = 0;
    for line in lines.iter().rev() {
        size += line.len() + 1;
        if size > MAX_TRANSCRIPT_CHARS {
            break;
        }
        kept.push(line.as_str());
    }
    kept.reverse();
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_models_notes_are_read_from_fenced_json_and_made_safe() {
        let (summary, details) = read_notes(
            "```json\n{\"summary\": \"Ana wants a 2-bed flat; call her on 415 555 0123.\", \
             \"details\": {\"Budget\": \"500k\", \"phone\": \"+1 415 555 0123\", \
             \"urgent\": true, \"rooms\": 2, \"notes\": [\"x\"], \"\": \"y\"}}\n```",
        )
        .unwrap();
        assert_eq!(summary, "Ana wants a 2-bed flat; call her on [number].");
        assert_eq!(
            details,
            BTreeMap::from([
                ("budget".to_owned(), "500k".to_owned()),
                ("rooms".to_owned(), "2".to_owned()),
                ("urgent".to_owned(), "yes".to_owned()),
            ])
        );
        assert!(read_notes("I cannot do that").is_err());
        assert!(read_notes("{not json}").is_err());
        assert_eq!(read_notes("{}").unwrap(), (String::new(), BTreeMap::new()));
    }
}
