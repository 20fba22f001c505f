//! Scripted flows: declarative conversations (YAML or JSON) that run with or without a
//! language model. A flow is nodes that say something, collect a slot (budget, a day
//! and time, yes/no...), listen for intents and branch on what was heard; actions on
//! entering or leaving a node qualify, book, transfer or end.
//!
//! - [`Flow`]: the document ([`Flow::parse_yaml`], [`Flow::parse_json`]), validated on
//!   parse with every problem named by its path ([`FieldError`]).
//! - [`FlowRun`]: the engine, pure: a caller turn in ([`Heard`]), the agent's lines and
//!   actions out ([`Step`]). With a language model, [`FlowRun::scope`] gives the node's
//!   instructions and tools instead.
//! - [`render`]: templates (`{lead_name}`); a missing field renders as nothing.
//! - [`Flow::default_for`]: the shipped flows for each [`Industry`].
//! - Built-in intents: what every flow hears (emergency, a person, escalation,
//!   do-not-call, repeat); a flow intent of the same name replaces one.
//!
//! ```yaml
//! name: Viewings
//! start: when
//! fallback: human                  # after 3 misses in a row (max_misunderstandings)
//! intents:                         # heard at every node, before the node's own
//!   - name: hours
//!     keywords: ["opening hours", "when * open"]
//!     say: We are open nine to six, Monday to Saturday.   # then the question again
//! nodes:
//!   when:
//!     say: Hi {lead_name}, this is {agent_name}. What day and time suit you for a viewing?
//!     reprompt: Which day and time would suit you? For example, next Tuesday at two pm.
//!     collect: { slot: appointment_time, kind: datetime }
//!     next:
//!       - goto: confirm
//!   confirm:
//!     say: That's {appointment_time}. Shall I book it? You can press 1 for yes or 2 for no.
//!     collect: { slot: confirmed, kind: yes_no, keypad: true }
//!     next:
//!       - { slot: confirmed, is: yes, goto: booked }
//!       - { slot: confirmed, is: no, goto: when }
//!   booked:
//!     on_enter:
//!       - book: { title: Viewing, duration_minutes: 30, kind: in_person }
//!       - send_confirmation: { channel: sms }
//!       - end: { outcome: booked }
//!     say: You're booked for {appointment_time}. Goodbye!
//!   human:
//!     say: Let me pass you to a colleague.
//!     on_enter:
//!       - transfer: { mode: warm, reason: not_understood }
//! ```

mod defaults;
mod definition;
mod engine;
pub mod expect;
mod guard;
mod matcher;
mod speech;
mod template;
mod validate;

use serde::{Deserialize, Serialize};

pub use defaults::Industry;
pub use definition::{
    Action, Book, Branch, Callback, Channel, ChoiceOption, Collect, End, Flow, Intent, MeetingKind,
    Node, Scalar, SendConfirmation, Set, SlotKind, ToolName, Transfer, TransferMode,
};
pub use engine::{Context, FiredAction, FlowRun, Heard, Scope, SlotValue, Step};
pub use guard::Guard;
pub use template::render;

/// The largest flow document read, in bytes: 200 full nodes fit well within it.
const MAX_DOCUMENT: usize = 512 * 1024;

/// One problem with a flow, at the path of the field at fault (`nodes.budget.next[1].goto`;
/// empty for the document as a whole).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a flow was refused: every problem found (a document that does not parse gives
/// the first, since parsing stops there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("the flow is invalid: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct FlowError {
    pub errors: Vec<FieldError>,
}

impl FlowError {
    fn one(path: String, message: String) -> FlowError {
        FlowError {
            errors: vec![FieldError { path, message }],
        }
    }
}

/// A serde error at a path: the path as the author wrote it ("nodes.greet.collect.kind").
fn at_path<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> FlowError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let message = e.into_inner().to_string();
    FlowError::one(path, without_path(&message).to_owned())
}

/// The YAML parser starts its messages with its own path ("nodes.a: unknown field"),
/// which the error's `path` already says (more exactly): the message goes without it.
fn without_path(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest))
            if !head.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')) =>
        {
            rest
        }
        _ => message,
    }
}

fn check_size(text: &str) -> Result<(), FlowError> {
    if text.len() > MAX_DOCUMENT {
        return Err(FlowError::one(
            String::new(),
            format!(
                "the document is {} bytes; at most {MAX_DOCUMENT}",
                text.len()
            ),
        ));
    }
    Ok(())
}

impl Flow {
    /// Parses and validates a flow written in YAML.
    pub fn parse_yaml(text: &str) -> Result<Flow, FlowError> {
        check_size(text)?;
        let de = serde_norway::Deserializer::from_str(text);
        let flow: Flow = serde_path_to_error::deserialize(de).map_err(at_path)?;
        flow.validate()?;
        Ok(flow)
    }

    /// Parses and validates a flow written in JSON.
    pub fn parse_json(text: &str) -> Result<Flow, FlowError> {
        check_size(text)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let flow: Flow = serde_path_to_error::deserialize(&mut de).map_err(at_path)?;
        de.end()
            .map_err(|e| FlowError::one(String::new(), e.to_string()))?;
        flow.validate()?;
        Ok(flow)
    }

    /// Every problem with the flow, or `Ok` when it is sound.
    pub fn validate(&self) -> Result<(), FlowError> {
        let errors = validate::validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(FlowError { errors })
        }
    }
}
