//! A language model under guard: before the model is asked, the hand-over triggers a
//! flow hears for itself ([`Guard`]: a person asked for, escalation or emergency words,
//! do-not-call, too many turns, turns in a row with nothing understood) are checked,
//! and one that fires answers in the model's place, handing the caller over or ending
//! the call the same way a flow would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parley_shared::flow::{Guard, Heard};
use tokio::sync::mpsc;

use crate::brain::{Brain, BrainEvent};
use crate::llm::Message;
use crate::script::{heard, perform};
use crate::tools::CallScope;

/// A brain (a language model) with the hand-over triggers checked first.
pub struct GuardedBrain {
    inner: Arc<dyn Brain>,
    guard: Guard,
    scope: Arc<CallScope>,
    next_tool: AtomicU64,
}

impl GuardedBrain {
    pub fn new(inner: Arc<dyn Brain>, guard: Guard, scope: CallScope) -> GuardedBrain {
        GuardedBrain {
            inner,
            guard,
            scope: Arc::new(scope),
            next_tool: AtomicU64::new(1),
        }
    }
}

impl Brain for GuardedBrain {
    fn answer(&self, context: Vec<Message>) -> mpsc::Receiver<BrainEvent> {
        let turns: Vec<Heard> = context
            .iter()
            .filter_map(|m| match m {
                Message::User { content } => Some(heard(content)),
                _ => None,
            })
            .collect();
        let Some(step) = self.guard.check(&turns) else {
            return self.inner.answer(context);
        };
        tracing::info!(
            tenant_id = %self.scope.ctx.tenant_id,
            call_id = %self.scope.call_id,
            turn = turns.len(),
            "a hand-over trigger answered in the model's place"
        );
        let first = self
            .next_tool
            .fetch_add(step.actions.len() as u64, Ordering::Relaxed);
        perform(
            self.scope.clone(),
            first,
            step.actions,
            step.say,
            step.ended,
            None,
        )
    }
}
