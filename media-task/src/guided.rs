//! The guided brain: a language model led through the agent's flow. The flow decides
//! where the conversation is; the model does the talking, within the current node's
//! scope (its instructions, its line and its tools).
//!
//! Each caller turn goes to the flow engine first ([`FlowRun::hear`]). A turn it
//! understands moves the flow on: its actions are carried out by Parley's tools and
//! reported as tool uses before any words, and its lines become what the model is to
//! get across. A turn it misses leaves the flow exactly as it was: the model answers
//! asides and asks again, so the engine's misses never count toward its give-up (the
//! guard around the model hands over after turns with nothing in them). Then the model
//! answers with the agent's prompt and the node's scope, offered only the node's tools,
//! plus `save_slot` where the node collects: the model passes the caller's answer in
//! plain words when the engine missed it, and the engine hears those words as the
//! caller's. A step that ends the call (an end or a transfer) is spoken as the flow
//! wrote it, without asking the model.
//!
//! The flow's answers are the call's details ([`crate::wrapup::CallLog::answers`]).
//! A model is guided by the agent's own flow when that flow is written to ([`guides`]);
//! the shipped industry flows leave a model free (see `Calls::callee`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use parley_shared::flow::{Collect, FiredAction, Flow, FlowRun, Heard, Scope, SlotKind, ToolName};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::brain::{Brain, BrainEvent, LlmBrain, ToolOutput, Tools};
use crate::llm::{LanguageModel, Message, ToolCall, ToolSpec};
use crate::script::{Refuse, heard, perform};
use crate::tools::{CallScope, CallTools, tool_id};

/// Longest value `save_slot` takes: a caller's answer, not a monologue.
const MAX_VALUE_CHARS: usize = 1000;

/// Whether `flow` is written to guide a language model: a node of it has its own
/// instructions (`prompt`) or tools. A flow with neither is written for speaking alone.
pub fn guides(flow: &Flow) -> bool {
    flow.nodes
        .values()
        .any(|node| node.prompt.is_some() || !node.tools.is_empty())
}

/// A flow started for a call, waiting for the model it will guide: made with the call,
/// since its opening lines are the greeting.
#[derive(Clone)]
pub struct GuidedFlow {
    flow: Arc<Flow>,
    run: FlowRun,
    /// The opening's actions, carried out with the first answer.
    pending: Vec<FiredAction>,
    scope: CallScope,
}

impl GuidedFlow {
    /// Starts `flow` for the call with its template `fields`; the started flow, and its
    /// opening lines (the call's greeting; empty when the start node says nothing).
    pub fn start(
        flow: Flow,
        fields: BTreeMap<String, String>,
        scope: CallScope,
    ) -> (GuidedFlow, String) {
        let flow = Arc::new(flow);
        let (run, opening) = FlowRun::start(flow.clone(), scope.context(fields));
        let greeting = opening.say.join(" ");
        let started = GuidedFlow {
            flow,
            run,
            pending: opening.actions,
            scope,
        };
        (started, greeting)
    }
}

/// A language model answering one call's caller, guided by the agent's flow.
pub struct GuidedBrain {
    shared: Arc<Shared>,
    llm: Arc<dyn LanguageModel>,
    /// Rounds of tool calls one answer may take before it must speak.
    pub max_tool_rounds: usize,
}

/// What the brain and the tools of its answers share.
struct Shared {
    flow: Arc<Flow>,
    state: Mutex<State>,
    scope: Arc<CallScope>,
    /// Numbers the tool calls the flow's actions are reported as.
    next_tool: AtomicU64,
}

struct State {
    run: FlowRun,
    pending: Vec<FiredAction>,
    /// The flow as it was before the last turn, while that turn can still be taken
    /// back (see [`crate::script::ScriptBrain`]): the caller went on talking before any
    /// of the answer played, and the same turn comes again with more words. A turn
    /// whose actions ran stands.
    undo: Option<Undo>,
    /// Counts answers: the tools of an answer since replaced act no more.
    answer: u64,
}

struct Undo {
    /// Caller messages in the context the turn was heard in.
    turns: usize,
    before: FlowRun,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the run half-changed: `hear` is pure.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Carries out `actions` in order; each as the tool use it is reported as.
    async fn carry_out(&self, actions: Vec<FiredAction>) -> Vec<BrainEvent> {
        let first = self
            .next_tool
            .fetch_add(actions.len() as u64, Ordering::Relaxed);
        let mut done = Vec::with_capacity(actions.len());
        for (n, action) in (first..).zip(actions) {
            done.push(self.scope.carry_out(n, action).await);
        }
        done
    }
}

impl GuidedBrain {
    pub fn new(flow: GuidedFlow, llm: Arc<dyn LanguageModel>) -> GuidedBrain {
        let GuidedFlow {
            flow,
            run,
            pending,
            scope,
        } = flow;
        GuidedBrain {
            shared: Arc::new(Shared {
                flow,
                state: Mutex::new(State {
                    run,
                    pending,
                    undo: None,
                    answer: 0,
                }),
                scope: Arc::new(scope),
                next_tool: AtomicU64::new(1),
            }),
            llm,
            max_tool_rounds: 4,
        }
    }
}

/// What the flow made of one caller turn, for the answer.
struct Turn {
    answer: u64,
    /// Actions to carry out before anything is said.
    actions: Vec<FiredAction>,
    /// The engine's lines, when it understood the turn (what the model gets across).
    lines: Vec<String>,
    ended: bool,
    scope: Scope,
    /// The slot the node collects.
    collect: Option<Collect>,
}

impl Brain for GuidedBrain {
    fn answer(&self, context: Vec<Message>) -> mpsc::Receiver<BrainEvent> {
        let turn = self.hear(&context);
        let shared = self.shared.clone();
        if turn.ended {
            let first = shared
                .next_tool
                .fetch_add(turn.actions.len() as u64, Ordering::Relaxed);
            // A booking refused on the way to the end: the flow offers another time.
            let refuse: Refuse = {
                let shared = shared.clone();
                Box::new(move |slot, offer| {
                    let mut state = shared.state();
                    let step = state.run.refused(slot, offer);
                    shared.scope.log.answers(state.run.slots());
                    step
                })
            };
            let scope = shared.scope.clone();
            return perform(scope, first, turn.actions, turn.lines, true, Some(refuse));
        }
        let (tx, rx) = mpsc::channel(64);
        let (llm, rounds) = (self.llm.clone(), self.max_tool_rounds);
        tokio::spawn(async move {
            // The actions first, as a model's tools come before its words: a turn whose
            // actions ran stands even if the caller talks on before a word plays.
            let done = shared.carry_out(turn.actions).await;
            let mut messages = context;
            for used in done {
                if let BrainEvent::ToolUsed { call, result } = &used {
                    messages.push(Message::Assistant {
                        content: String::new(),
                        tool_calls: vec![call.clone()],
                    });
                    messages.push(Message::Tool {
                        tool_call_id: call.id.clone(),
                        content: result.clone(),
                    });
                }
                if tx.send(used).await.is_err() {
                    return;
                }
            }
            let messages = scoped(messages, &turn.scope, &turn.lines);
            let saved = Arc::new(Mutex::new(Vec::new()));
            let tools = NodeTools {
                parley: CallTools::new((*shared.scope).clone()).only(&turn.scope.tools),
                collect: turn.collect,
                node: turn.scope.node,
                answer: turn.answer,
                shared,
                saved: saved.clone(),
            };
            let model = LlmBrain {
                llm,
                tools: Arc::new(tools),
                max_tool_rounds: rounds,
            };
            let mut inner = model.answer(messages);
            loop {
                let event = tokio::select! {
                    event = inner.recv() => event,
                    // The caller talked on: dropping `inner` stops the model.
                    () = tx.closed() => return,
                };
                let Some(event) = event else { return };
                let after_save = matches!(
                    &event,
                    BrainEvent::ToolUsed { call, .. } if call.name == tool_id(ToolName::SaveSlot)
                );
                if tx.send(event).await.is_err() {
                    return;
                }
                if after_save {
                    // The flow's actions `save_slot` carried out, each as its own tool.
                    let done = std::mem::take(&mut *lock(&saved));
                    for used in done {
                        if tx.send(used).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

impl GuidedBrain {
    /// Hears the caller's last turn: the flow moves on when the engine understands it,
    /// and stays as it was when not.
    fn hear(&self, context: &[Message]) -> Turn {
        let turns = context
            .iter()
            .filter(|m| matches!(m, Message::User { .. }))
            .count();
        let words = context
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User { content } => Some(heard(content)),
                _ => None,
            })
            .unwrap_or_default();
        let now = self.shared.scope.local_now();
        let mut state = self.shared.state();
        state.answer += 1;
        if let Some(undo) = state.undo.take()
            && undo.turns == turns
        {
            state.run = undo.before;
        }
        let before = state.run.clone();
        let mut step = state.run.hear(&words, now);
        if !step.understood {
            // The model handles what the engine missed: the flow stays, and the miss
            // is not counted.
            state.run = before.clone();
            step.actions.clear();
            step.say.clear();
            step.ended = state.run.ended();
        }
        self.shared.scope.log.answers(state.run.slots());
        if step.actions.is_empty() {
            state.undo = Some(Undo { turns, before });
        }
        let mut actions = std::mem::take(&mut state.pending);
        actions.extend(step.actions);
        let scope = state.run.scope();
        let collect = self
            .shared
            .flow
            .nodes
            .get(&scope.node)
            .and_then(|node| node.collect.clone());
        Turn {
            answer: state.answer,
            actions,
            lines: step.say,
            ended: step.ended,
            scope,
            collect,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The context as the model is given it: the agent's prompt, then the node's scope
/// and what the flow's answer to the caller was, as one system message first.
fn scoped(context: Vec<Message>, scope: &Scope, lines: &[String]) -> Vec<Message> {
    let mut parts = Vec::new();
    let mut messages = Vec::with_capacity(context.len() + 1);
    for message in context {
        match message {
            Message::System { content } => parts.push(content),
            other => messages.push(other),
        }
    }
    if !scope.prompt.is_empty() {
        parts.push(scope.prompt.clone());
    }
    let mut step = Vec::new();
    if !scope.say.is_empty() {
        step.push(format!("At this step, say or ask: {}", scope.say));
    }
    let said = lines.join(" ");
    // The node's own line alone is said above already.
    if !said.is_empty() && said != scope.say {
        step.push(format!(
            "The flow's answer to the caller's last words, to get across in your own \
             words: {said}"
        ));
    }
    if !step.is_empty() {
        parts.push(step.join("\n"));
    }
    let system = parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if !system.is_empty() {
        messages.insert(0, Message::System { content: system });
    }
    messages
}

/// The tools of one answer: Parley's own that the node allows, and `save_slot` where
/// it collects.
struct NodeTools {
    shared: Arc<Shared>,
    parley: CallTools,
    collect: Option<Collect>,
    /// The node the answer was scoped to.
    node: String,
    answer: u64,
    /// The flow's actions `save_slot` carried out, for the answer to report after it.
    saved: Arc<Mutex<Vec<BrainEvent>>>,
}

#[async_trait]
impl Tools for NodeTools {
    fn specs(&self) -> Vec<ToolSpec> {
        let mut specs = self.parley.specs();
        specs.extend(self.collect.as_ref().map(save_slot_spec));
        specs
    }

    async fn call(&self, call: &ToolCall) -> ToolOutput {
        match &self.collect {
            Some(collect) if call.name == tool_id(ToolName::SaveSlot) => {
                match self.save(collect, &call.arguments).await {
                    Ok(output) => output,
                    Err(error) => {
                        tracing::debug!(
                            tenant_id = %self.shared.scope.ctx.tenant_id,
                            call_id = %self.shared.scope.call_id,
                            %error,
                            "save_slot refused"
                        );
                        format!("error: {error}").into()
                    }
                }
            }
            _ => self.parley.call(call).await,
        }
    }
}

impl NodeTools {
    /// Hears the model's words for the caller's answer, as the caller's; what the flow
    /// did with them.
    async fn save(&self, collect: &Collect, arguments: &str) -> Result<ToolOutput, String> {
        let value = value_of(arguments)?;
        let now = self.shared.scope.local_now();
        let (step, saved) = {
            let mut state = self.shared.state();
            if state.answer != self.answer {
                return Err("the caller has spoken since; this answer is no longer wanted".into());
            }
            if state.run.ended() || state.run.node() != self.node {
                return Err("the flow has moved on from this question".into());
            }
            let before = state.run.clone();
            let step = state.run.hear(&Heard::said(&value), now);
            if !step.understood {
                state.run = before;
                return Err(format!(
                    "value: \"{value}\" is not understood as {}; ask the caller again",
                    kind_words(collect)
                ));
            }
            let slot = &collect.slot;
            let saved = state
                .run
                .slots()
                .get(slot)
                .filter(|v| before.slots().get(slot) != Some(*v))
                .map(|v| format!("saved {slot}: {}", v.speak(now.date())));
            self.shared.scope.log.answers(state.run.slots());
            if !step.actions.is_empty() {
                // The turn's actions ran: it stands.
                state.undo = None;
            }
            (step, saved)
        };
        let done = self.shared.carry_out(step.actions).await;
        let mut content = vec![saved.unwrap_or_else(|| "understood".to_owned())];
        let results: Vec<String> = done
            .iter()
            .filter_map(|used| match used {
                BrainEvent::ToolUsed { call, result } => Some(format!("{}: {result}", call.name)),
                _ => None,
            })
            .collect();
        if !results.is_empty() {
            content.push(format!("the flow did: {}", results.join("; ")));
        }
        lock(&self.saved).extend(done);
        let lines = step.say.join(" ");
        if step.ended {
            content.push(format!(
                "the call ends here; say this and nothing more: {lines}"
            ));
        } else if !lines.is_empty() {
            content.push(format!("now say or ask: {lines}"));
        }
        Ok(ToolOutput {
            content: content.join("; "),
            end_call: step.ended,
        })
    }
}

/// The value the model passed, in plain words.
fn value_of(arguments: &str) -> Result<String, String> {
    let args: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|e| format!("arguments: not JSON ({e})"))?
    };
    let Some(args) = args.as_object() else {
        return Err("arguments: expected a JSON object".into());
    };
    let value = match args.get("value") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => (if *b { "yes" } else { "no" }).to_owned(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err("value: expected the caller's answer as text".into()),
    };
    if value.is_empty() {
        return Err("value: required".into());
    }
    Ok(value.chars().take(MAX_VALUE_CHARS).collect())
}

/// What the slot takes, in words, for the model.
fn kind_words(collect: &Collect) -> String {
    match collect.kind {
        SlotKind::YesNo => "a yes or a no".into(),
        SlotKind::Number => "a number".into(),
        SlotKind::Money => "an amount of money".into(),
        SlotKind::Date => "a day".into(),
        SlotKind::Time => "a time of day".into(),
        SlotKind::Datetime => "a day and a time".into(),
        SlotKind::Timeline => "when they mean to go ahead".into(),
        SlotKind::Text => "their words".into(),
        SlotKind::Choice => {
            let options: Vec<String> = collect
                .options
                .iter()
                .map(|o| o.value.replace('_', " "))
                .collect();
            format!("one of: {}", options.join(", "))
        }
    }
}

/// `save_slot` as the model is shown it, for the slot the node collects.
fn save_slot_spec(collect: &Collect) -> ToolSpec {
    let example = match collect.kind {
        SlotKind::YesNo => "yes",
        SlotKind::Number => "three",
        SlotKind::Money => "about half a million dollars",
        SlotKind::Date => "next Tuesday",
        SlotKind::Time => "two in the afternoon",
        SlotKind::Datetime => "the 24th at two pm",
        SlotKind::Timeline => "within three months",
        SlotKind::Text | SlotKind::Choice => "",
    };
    let example = match example {
        "" => String::new(),
        e => format!(", for example \"{e}\""),
    };
    ToolSpec {
        name: tool_id(ToolName::SaveSlot).to_owned(),
        description: format!(
            "Save the caller's answer to this step's question ({}, {}) when they have \
             given it in words the flow may not have caught. Pass it in plain words{example}. \
             The result says what to say next, or that the value was not understood.",
            collect.slot.replace('_', " "),
            kind_words(collect)
        ),
        parameters: json!({
            "type": "object",
            "properties": {
                "value": {"type": "string", "description": "The caller's answer in plain words."},
            },
            "required": ["value"],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use parley_shared::aggregate::Context;
    use parley_shared::backend::Ports;
    use parley_shared::domain::ids::CallId;
    use tokio::sync::Mutex as AsyncMutex;

    use crate::llm::{ChatRequest, LlmEvent};
    use crate::vendor::VendorError;

    const FLOW: &str = r#"
name: Guided
start: size
prompt: Be brief.
nodes:
  size:
    say: How many rooms do you need?
    prompt: Rooms only.
    tools: [check_availability]
    collect: { slot: rooms, kind: number, min: 1, max: 9 }
    next:
      - goto: moving
  moving:
    say: When would you move, {rooms} rooms?
    collect: { slot: move_date, kind: date }
    next:
      - goto: done
  done:
    say: Thanks, bye.
    on_enter:
      - end: { outcome: done }
"#;

    /// A model that answers from a script and keeps what it was asked.
    #[derive(Default)]
    struct Scripted {
        replies: AsyncMutex<Vec<LlmEvent>>,
        asked: Mutex<Vec<ChatRequest>>,
    }

    #[async_trait]
    impl LanguageModel for Scripted {
        async fn stream(
            &self,
            request: ChatRequest,
        ) -> Result<mpsc::Receiver<LlmEvent>, VendorError> {
            lock(&self.asked).push(request);
            let mut replies = self.replies.lock().await;
            let first = match replies.is_empty() {
                true => LlmEvent::Text("ok".into()),
                false => replies.remove(0),
            };
            let (tx, rx) = mpsc::channel(4);
            let _ = tx.send(first.clone()).await;
            if matches!(first, LlmEvent::Text(_)) {
                let _ = tx.send(LlmEvent::Done).await;
            }
            Ok(rx)
        }
    }

    fn scope(dir: &std::path::Path) -> CallScope {
        let clock = Arc::new(parley_shared::clock::SystemClock);
        let embedded =
            parley_shared::embedded::Embedded::open(dir, clock, "http://127.0.0.1:1".into(), 5)
                .unwrap();
        let ctx = Context {
            tenant_id: "t".into(),
            correlation_id: "c".into(),
            idempotency_key: None,
        };
        CallScope::new(Ports::embedded(embedded), ctx, CallId::new())
    }

    fn user(words: &[&str]) -> Vec<Message> {
        std::iter::once(Message::System {
            content: "You are Riley.".into(),
        })
        .chain(words.iter().map(|w| Message::User {
            content: (*w).to_owned(),
        }))
        .collect()
    }

    async fn events(brain: &GuidedBrain, context: Vec<Message>) -> Vec<BrainEvent> {
        let mut rx = brain.answer(context);
        let mut out = Vec::new();
        while let Some(event) = rx.recv().await {
            out.push(event);
        }
        out
    }

    fn system(request: &ChatRequest) -> &str {
        match request.messages.first() {
            Some(Message::System { content }) => content,
            other => panic!("no system message first: {other:?}"),
        }
    }

    fn offered(request: &ChatRequest) -> Vec<&str> {
        request.tools.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn only_flows_with_node_prompts_or_tools_guide_a_model() {
        assert!(guides(&Flow::parse_yaml(FLOW).unwrap()));
        let plain = FLOW
            .replace("    prompt: Rooms only.\n", "")
            .replace("    tools: [check_availability]\n", "");
        // A flow-wide prompt alone does not opt in.
        assert!(!guides(&Flow::parse_yaml(&plain).unwrap()));
    }

    #[tokio::test]
    async fn the_model_speaks_within_the_nodes_scope_and_save_slot_moves_the_flow() {
        let dir = tempfile::tempdir().unwrap();
        let llm = Arc::new(Scripted::default());
        let (flow, greeting) = GuidedFlow::start(
            Flow::parse_yaml(FLOW).unwrap(),
            BTreeMap::new(),
            scope(dir.path()),
        );
        assert_eq!(greeting, "How many rooms do you need?");
        let brain = GuidedBrain::new(flow, llm.clone());

        // An aside: the flow stays, the model answers within the first node's scope.
        events(&brain, user(&["is there parking"])).await;
        {
            let asked = lock(&llm.asked);
            let system = system(&asked[0]);
            assert!(system.starts_with("You are Riley.\n\nBe brief.\n\nRooms only."));
            assert!(system.ends_with("At this step, say or ask: How many rooms do you need?"));
            assert_eq!(offered(&asked[0]), ["check_availability", "save_slot"]);
        }

        // The model saves the caller's answer in words the engine reads; not before a
        // value it cannot read is refused.
        *llm.replies.lock().await = vec![
            LlmEvent::ToolCalls(vec![ToolCall {
                id: "a".into(),
                name: "save_slot".into(),
                arguments: r#"{"value": "lots"}"#.into(),
            }]),
            LlmEvent::ToolCalls(vec![ToolCall {
                id: "b".into(),
                name: "save_slot".into(),
                arguments: r#"{"value": "three"}"#.into(),
            }]),
        ];
        let said = events(&brain, user(&["is there parking", "me, my wife and kids"])).await;
        let results: Vec<&str> = said
            .iter()
            .filter_map(|e| match e {
                BrainEvent::ToolUsed { result, .. } => Some(result.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(results.len(), 2, "{said:?}");
        assert!(
            results[0].starts_with("error: value: \"lots\" is not understood as a number"),
            "{}",
            results[0]
        );
        assert_eq!(
            results[1],
            "saved rooms: 3; now say or ask: When would you move, 3 rooms?"
        );
        assert!(!said.contains(&BrainEvent::EndCall));
        assert_eq!(
            brain.shared.state().run.slots().keys().collect::<Vec<_>>(),
            ["rooms"]
        );

        // The next turn is scoped to the next node: its line, no tools but save_slot.
        events(
            &brain,
            user(&["is there parking", "me, my wife and kids", "hmm"]),
        )
        .await;
        let asked = lock(&llm.asked).clone();
        let last = asked.last().unwrap();
        assert!(
            system(last).ends_with("At this step, say or ask: When would you move, 3 rooms?"),
            "{}",
            system(last)
        );
        assert_eq!(offered(last), ["save_slot"]);
    }

    #[tokio::test]
    async fn the_flows_end_is_spoken_without_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let llm = Arc::new(Scripted::default());
        let (flow, _) = GuidedFlow::start(
            Flow::parse_yaml(FLOW).unwrap(),
            BTreeMap::new(),
            scope(dir.path()),
        );
        let brain = GuidedBrain::new(flow, llm.clone());
        events(&brain, user(&["two"])).await;
        let said = events(&brain, user(&["two", "tomorrow"])).await;
        assert_eq!(
            lock(&llm.asked).len(),
            1,
            "only the first turn asked the model"
        );
        let names: Vec<&str> = said
            .iter()
            .filter_map(|e| match e {
                BrainEvent::ToolUsed { call, .. } => Some(call.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["end_call"]);
        assert!(said.contains(&BrainEvent::Text("Thanks, bye.".into())));
        assert!(said.contains(&BrainEvent::EndCall));
    }

    #[tokio::test]
    async fn a_turn_taken_back_and_heard_again_counts_once_and_stale_tools_do_not_act() {
        let dir = tempfile::tempdir().unwrap();
        let llm = Arc::new(Scripted::default());
        let (flow, _) = GuidedFlow::start(
            Flow::parse_yaml(FLOW).unwrap(),
            BTreeMap::new(),
            scope(dir.path()),
        );
        let brain = GuidedBrain::new(flow, llm.clone());
        // "two" moves the flow on; the caller goes on before the answer plays, and the
        // same turn comes again: heard from where it started, it moves on once (heard
        // twice, the move date would end the call).
        events(&brain, user(&["two"])).await;
        events(&brain, user(&["two and we move tomorrow"])).await;
        let asked = lock(&llm.asked).clone();
        assert_eq!(asked.len(), 2);
        assert!(
            system(&asked[1]).ends_with("When would you move, 2 rooms?"),
            "{}",
            system(&asked[1])
        );
        // The tools of an answer the caller has spoken over refuse to act.
        let answer = brain.shared.state().answer;
        let tools = |answer: u64| NodeTools {
            shared: brain.shared.clone(),
            parley: CallTools::new((*brain.shared.scope).clone()).only(&[]),
            collect: Flow::parse_yaml(FLOW).unwrap().nodes["moving"]
                .collect
                .clone(),
            node: "moving".into(),
            answer,
            saved: Arc::default(),
        };
        let call = ToolCall {
            id: "x".into(),
            name: "save_slot".into(),
            arguments: r#"{"value": "tomorrow"}"#.into(),
        };
        let output = tools(answer - 1).call(&call).await;
        assert!(output.content.starts_with("error: the caller has spoken"));
        assert!(!output.end_call);
        assert_eq!(brain.shared.state().run.node(), "moving");
        // The current answer's do: the flow ends, its action is reported after the
        // tool, and the model is told to say the flow's last line.
        let current = tools(answer);
        let output = current.call(&call).await;
        assert!(output.end_call);
        assert!(
            output
                .content
                .ends_with("the call ends here; say this and nothing more: Thanks, bye."),
            "{}",
            output.content
        );
        assert!(
            output.content.contains("the flow did: end_call: "),
            "{}",
            output.content
        );
        let reported = lock(&current.saved).clone();
        assert!(
            matches!(&reported[..], [BrainEvent::ToolUsed { call, .. }] if call.name == "end_call"),
            "{reported:?}"
        );
        assert!(brain.shared.state().run.ended());
    }

    #[test]
    fn save_slot_reads_plain_values_and_names_what_is_wrong() {
        assert_eq!(
            value_of(r#"{"value": " next tuesday "}"#).unwrap(),
            "next tuesday"
        );
        assert_eq!(value_of(r#"{"value": 3}"#).unwrap(), "3");
        assert_eq!(value_of(r#"{"value": true}"#).unwrap(), "yes");
        assert_eq!(value_of("{}").unwrap_err(), "value: required");
        assert_eq!(value_of(r#"{"value": ""}"#).unwrap_err(), "value: required");
        assert!(value_of("[1]").unwrap_err().starts_with("arguments:"));
        assert!(
            value_of("nope")
                .unwrap_err()
                .starts_with("arguments: not JSON")
        );
        assert!(
            value_of(r#"{"value": [1]}"#)
                .unwrap_err()
                .starts_with("value:")
        );
    }
}
