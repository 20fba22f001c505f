//! The scripted brain: the agent's flow answering on its own, with no language model
//! (the embedded default's offline brain). Each caller turn goes through the flow
//! engine ([`FlowRun`]); its lines are spoken and its actions carried out by Parley's
//! tools ([`crate::tools`]): a lead qualified, an appointment booked, a hand-over to a
//! person asked for, the call ended. Every action is also reported as the tool it stands for
//! (`book_appointment`, `transfer_to_human`, ...) so it lands in the transcript and
//! the call's history like a model's tool call.
//!
//! With the offline recogniser, the brain also tells it what the caller is expected to
//! say next ([`ScriptBrain::listen`]): the phrases of the node the flow is at, each
//! time the flow moves, and none once the node takes free speech or the flow is over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDateTime;
use parley_shared::flow::{FiredAction, Flow, FlowRun, Heard, Step, expect};
use tokio::sync::mpsc;

use crate::brain::{Brain, BrainEvent};
use crate::llm::Message;
use crate::stt::pocketsphinx::ExpectedPhrases;
use crate::tools::CallScope;

/// How the conversation writes a caller's keys into their turn (see
/// `conversation::CallerInput::take_turn`).
const KEYS_OPEN: &str = "(the caller pressed the keys ";

/// A flow answering one call's caller.
pub struct ScriptBrain {
    state: Arc<Mutex<State>>,
    /// The flow the run follows, for what each node expects the caller to say.
    flow: Arc<Flow>,
    scope: Arc<CallScope>,
    /// Numbers the tool calls the actions are reported as.
    next_tool: AtomicU64,
}

struct State {
    run: FlowRun,
    /// The opening's actions, carried out with the first answer.
    pending: Vec<FiredAction>,
    /// The flow as it was before the last turn, while that turn can still be taken
    /// back: the caller went on talking before any of the answer played, and the same
    /// turn comes again with more words. A turn whose actions ran stands.
    undo: Option<Undo>,
    /// Where the phrases the caller is expected to say go, when the recogniser listens
    /// for them, and the node they were last set for (`None`: cleared).
    expected: Option<(ExpectedPhrases, Option<String>)>,
}

impl State {
    /// Sets the phrases the flow's node expects, when the node has changed since they
    /// were last set (the recogniser compiles them anew each time).
    fn expect_next(&mut self, flow: &Flow) {
        let Some((expected, set_for)) = &mut self.expected else {
            return;
        };
        let node = (!self.run.ended()).then(|| self.run.node());
        if set_for.as_deref() == node {
            return;
        }
        // A node expecting free speech lists nothing, and an ended flow expects
        // nothing: the general model alone.
        let phrases = node
            .map(|n| expect::phrases_at(flow, n))
            .unwrap_or_default();
        expected.set(&phrases);
        *set_for = node.map(str::to_owned);
    }
}

struct Undo {
    /// Caller messages in the context the turn was heard in.
    turns: usize,
    before: FlowRun,
}

impl ScriptBrain {
    /// Starts `flow` for the call with its template `fields`; the brain and the flow's
    /// opening lines, which are the call's greeting.
    pub fn start(
        flow: Flow,
        fields: BTreeMap<String, String>,
        scope: CallScope,
    ) -> (ScriptBrain, String) {
        let flow = Arc::new(flow);
        let (run, opening) = FlowRun::start(flow.clone(), scope.context(fields));
        let greeting = opening.say.join(" ");
        let brain = ScriptBrain {
            state: Arc::new(Mutex::new(State {
                run,
                pending: opening.actions,
                undo: None,
                expected: None,
            })),
            flow,
            scope: Arc::new(scope),
            next_tool: AtomicU64::new(1),
        };
        (brain, greeting)
    }

    /// From now on, sets in `expected` what the caller is expected to say at the node
    /// the flow is at (the opening's node first), for a recogniser listening for it.
    /// Each call's brain has a handle of its own.
    pub fn listen(&self, expected: ExpectedPhrases) {
        let mut state = self.state();
        expected.clear();
        state.expected = Some((expected, None));
        state.expect_next(&self.flow);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere never leaves the run half-changed: `hear` is pure.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Brain for ScriptBrain {
    fn answer(&self, context: Vec<Message>) -> mpsc::Receiver<BrainEvent> {
        let turns = context
            .iter()
            .filter(|m| matches!(m, Message::User { .. }))
            .count();
        let heard = context
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User { content } => Some(heard(content)),
                _ => None,
            })
            .unwrap_or_default();
        let now = self.scope.local_now();
        let (step, mut actions) = {
            let mut state = self.state();
            if let Some(undo) = state.undo.take()
                && undo.turns == turns
            {
                state.run = undo.before;
            }
            let before = state.run.clone();
            let step = state.run.hear(&heard, now);
            state.expect_next(&self.flow);
            // The answers so far are the call's details, whatever comes of it.
            self.scope.log.answers(state.run.slots());
            if step.actions.is_empty() {
                state.undo = Some(Undo { turns, before });
            }
            (step, std::mem::take(&mut state.pending))
        };
        // `hear` says so too once the opening's actions ended the call.
        let ended = step.ended;
        actions.extend(step.actions);
        let first_tool = self
            .next_tool
            .fetch_add(actions.len() as u64, Ordering::Relaxed);
        let refuse: Refuse = {
            let (state, log) = (self.state.clone(), self.scope.log.clone());
            let flow = self.flow.clone();
            Box::new(move |slot, offer| {
                let mut state = lock(&state);
                let step = state.run.refused(slot, offer);
                state.expect_next(&flow);
                log.answers(state.run.slots());
                step
            })
        };
        let (scope, say) = (self.scope.clone(), step.say);
        perform(scope, first_tool, actions, say, ended, Some(refuse))
    }
}

/// What a flow makes of a booking the host could not make: the slot that held its time
/// and the nearest free time in, the flow's new step out (see [`FlowRun::refused`]).
pub(crate) type Refuse = Box<dyn FnOnce(&str, Option<NaiveDateTime>) -> Step + Send>;

/// Carries out `actions` and then says `say`, as a brain's answer; the call ends after
/// it when `ended`. Tool calls are numbered from `first_tool`. When a booking among the
/// actions is refused and `refuse` is given, the actions after it are dropped (they
/// followed a booking that did not happen) and the flow's answer to the refusal is
/// said instead.
pub(crate) fn perform(
    scope: Arc<CallScope>,
    first_tool: u64,
    actions: Vec<FiredAction>,
    mut say: Vec<String>,
    mut ended: bool,
    mut refuse: Option<Refuse>,
) -> mpsc::Receiver<BrainEvent> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        // The actions first, as a model's tools come before its words: a turn whose
        // tools ran stands even if the caller talks on before any line plays. Once the
        // caller stops listening the lines go nowhere, but the actions still run: the
        // conversation has moved on past them.
        let mut listening = true;
        let mut queue: std::collections::VecDeque<FiredAction> = actions.into();
        let mut n = first_tool;
        while let Some(action) = queue.pop_front() {
            let slot = match &action {
                FiredAction::Book { slot, .. } => Some(slot.clone()),
                _ => None,
            };
            let (used, refused) = scope.carry_out_refusable(n, action).await;
            n += 1;
            if listening && tx.send(used).await.is_err() {
                listening = false;
            }
            if let (Some(offer), Some(slot)) = (refused, slot)
                && let Some(refuse) = refuse.take()
            {
                let step = refuse(&slot, offer);
                queue = step.actions.into();
                say = step.say;
                ended = step.ended;
            }
        }
        for (i, mut line) in say.into_iter().enumerate() {
            if !listening {
                break;
            }
            // A space between lines lets the conversation cut them into sentences.
            if i > 0 {
                line.insert(0, ' ');
            }
            if tx.send(BrainEvent::Text(line)).await.is_err() {
                listening = false;
            }
        }
        if listening && ended {
            let _ = tx.send(BrainEvent::EndCall).await;
        }
        let _ = tx.send(BrainEvent::Done).await;
    });
    rx
}

/// A caller turn as the conversation wrote it: words, then any keys as "(the caller
/// pressed the keys 42#)". Text without that suffix is all words.
pub fn heard(content: &str) -> Heard {
    let trimmed = content.trim_end();
    if let Some(open) = trimmed.rfind(KEYS_OPEN)
        && let Some(keys) = trimmed[open + KEYS_OPEN.len()..].strip_suffix(')')
        && !keys.is_empty()
        && keys
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#'))
    {
        return Heard {
            text: trimmed[..open].trim().to_owned(),
            digits: keys.to_owned(),
        };
    }
    Heard::said(content.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_shared::aggregate::Context;
    use parley_shared::backend::Ports;
    use parley_shared::domain::ids::CallId;

    #[test]
    fn keys_are_read_from_the_turns_suffix_and_anything_else_is_words() {
        assert_eq!(heard("next tuesday"), Heard::said("next tuesday"));
        assert_eq!(heard("(the caller pressed the keys 1)"), Heard::keys("1"));
        assert_eq!(
            heard("yes please (the caller pressed the keys 42#)"),
            Heard {
                text: "yes please".into(),
                digits: "42#".into()
            }
        );
        // Only the conversation's own suffix counts as keys.
        for words in [
            "(the caller pressed the keys 12",
            "I said (the caller pressed the keys two)",
            "(the caller pressed the keys )",
        ] {
            assert_eq!(heard(words), Heard::said(words), "{words}");
        }
    }

    const PATIENT: &str = r#"
name: Patient
start: when
max_misunderstandings: 2
fallback: human
nodes:
  when:
    say: When suits you?
    collect: { slot: appointment_time, kind: datetime }
    next:
      - goto: human
  human:
    say: Passing you on.
    on_enter:
      - transfer: { mode: warm, reason: not_understood }
"#;

    /// What the brain said, whether it ended the call, and the tools it reported,
    /// each with how much it had said by then.
    async fn said(brain: &ScriptBrain, context: &[&str]) -> (String, bool, Vec<(String, usize)>) {
        let messages = context
            .iter()
            .map(|c| Message::User {
                content: (*c).to_owned(),
            })
            .collect();
        let mut rx = brain.answer(messages);
        let (mut text, mut ended, mut tools) = (String::new(), false, Vec::new());
        while let Some(event) = rx.recv().await {
            match event {
                BrainEvent::Text(t) => text.push_str(&t),
                BrainEvent::EndCall => ended = true,
                BrainEvent::ToolUsed { call, .. } => tools.push((call.name, text.len())),
                _ => {}
            }
        }
        (text, ended, tools)
    }

    #[tokio::test]
    async fn a_turn_taken_back_and_heard_again_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(parley_shared::clock::SystemClock);
        let embedded = parley_shared::embedded::Embedded::open(
            dir.path(),
            clock,
            "http://127.0.0.1:1".into(),
            5,
        )
        .unwrap();
        let ctx = Context {
            tenant_id: "t".into(),
            correlation_id: "c".into(),
            idempotency_key: None,
        };
        let scope = CallScope::new(Ports::embedded(embedded), ctx, CallId::new());
        let flow = Flow::parse_yaml(PATIENT).unwrap();
        let (brain, greeting) = ScriptBrain::start(flow, BTreeMap::new(), scope);
        assert_eq!(greeting, "When suits you?");
        let (first, _, _) = said(&brain, &["hmm"]).await;
        assert!(first.contains("When suits you?"), "{first}");
        // The caller went on before the answer played: the same turn, with more words.
        let (again, ended, _) = said(&brain, &["hmm er"]).await;
        assert_eq!(again, first);
        assert!(!ended, "one miss, not two");
        // A new turn counts: the second miss in a row hands over.
        let (last, ended, tools) = said(&brain, &["hmm er", "uh"]).await;
        assert!(last.ends_with("Passing you on."), "{last}");
        assert!(ended);
        // The hand-over is reported before a word of it is said, so that the caller
        // talking on cannot take back a turn whose action already ran.
        assert_eq!(tools, [("transfer_to_human".to_owned(), 0)]);
    }
}
