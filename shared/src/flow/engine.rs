//! Running a flow with no language model: one caller turn in, the agent's lines and the
//! actions to carry out back. Pure: the caller's "now" comes in with each turn, and
//! nothing here does I/O.
//!
//! Each turn is read in this order, the first that decides winning:
//! 1. past `max_turns` caller turns, a transfer to a person (unless the turn ends the
//!    call by itself: an emergency, a request for a person, do-not-call);
//! 2. the flow's global intents, with the built-in ones around them (emergency first;
//!    see `builtin_intents` in the matcher);
//! 3. the node's intents;
//! 4. the node's slot, read by [`crate::slots`] (keypad digits count for numbers and
//!    choices, and 1/2 for yes/no where the node says so);
//! 5. the node's branches, in order.
//!
//! A turn nothing decides is a miss: an apology and the node's question again. After
//! `max_misunderstandings` misses in a row the flow goes to its `fallback` node, or
//! without one says a colleague will help and transfers the call.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use super::definition::{
    Action, Branch, Channel, Collect, Flow, Intent, MeetingKind, Node, Scalar, SlotKind, ToolName,
    TransferMode,
};
use super::matcher::{self, Matcher, Phrase, Words};
use super::speech;
use super::template::render;
use crate::domain::agent::Week;
use crate::slots::{self, When};

/// Apologies before the question is asked again: the first miss, then later ones.
const SORRY_FIRST: &str = "Sorry, I didn't catch that.";
const SORRY_AGAIN: &str = "Sorry, I still didn't get that.";
/// The graceful exit when a flow has no `fallback` node.
pub(crate) const GIVE_UP: &str =
    "I'm sorry, I'm having trouble understanding. Let me connect you with someone from the team.";
pub(crate) const MAX_TURNS_LINE: &str =
    "Let me bring in a colleague to help you with the rest. Please hold on.";
const PAST: &str = "That time has already passed.";
const CLOSED: &str = "We're closed at that time.";
const NOT_AVAILABLE: &str = "I'm sorry, that time is not available.";
const DECLINED: &str = "All right.";
const BROKEN: &str =
    "I'm sorry, something went wrong on our side. Someone from the team will follow up. Goodbye.";
/// Longest text slot kept: a caller's answer, not a monologue.
const MAX_TEXT_SLOT: usize = 1000;

/// What the engine knows about the call when it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Context {
    /// Template fields: `tenant_name`, `agent_name`, `direction` (`inbound` or
    /// `outbound`), `lead_name`, `lead_phone`, `lead.<field>`...
    pub fields: BTreeMap<String, String>,
    /// The tenant's local time.
    pub now: NaiveDateTime,
    /// When appointments may be made, in the same local time; an empty week takes
    /// any time.
    pub hours: Week,
}

impl Context {
    pub fn new(now: NaiveDateTime) -> Context {
        Context {
            fields: BTreeMap::new(),
            now,
            hours: Week::default(),
        }
    }

    /// The context with opening hours for appointments.
    pub fn with_hours(mut self, hours: Week) -> Context {
        self.hours = hours;
        self
    }

    /// The context with one more field.
    pub fn with(mut self, field: &str, value: &str) -> Context {
        self.fields.insert(field.to_owned(), value.to_owned());
        self
    }
}

/// One caller turn: what the recogniser heard, and any keypad digits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    pub text: String,
    pub digits: String,
}

impl Heard {
    pub fn said(text: &str) -> Heard {
        Heard {
            text: text.to_owned(),
            digits: String::new(),
        }
    }

    pub fn keys(digits: &str) -> Heard {
        Heard {
            text: String::new(),
            digits: digits.to_owned(),
        }
    }
}

/// What the agent does after a turn.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Step {
    /// Lines to speak, in order, already rendered.
    pub say: Vec<String>,
    /// Actions for the host to carry out, in the order they fired.
    pub actions: Vec<FiredAction>,
    /// The flow is over (ended or transferred): nothing more will be heard.
    pub ended: bool,
    /// The turn was understood (false for a miss and after the flow ended).
    pub understood: bool,
}

/// An action with the values it needs, for the host to carry out.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FiredAction {
    /// Qualify the lead; the slots collected so far.
    Qualify {
        slots: BTreeMap<String, SlotValue>,
    },
    /// Book at the collected time (the tenant's local time), collected in `slot`.
    Book {
        slot: String,
        title: String,
        at: NaiveDateTime,
        duration_minutes: u32,
        kind: MeetingKind,
    },
    Transfer {
        mode: TransferMode,
        reason: String,
    },
    End {
        outcome: Option<String>,
    },
    SendConfirmation {
        channel: Channel,
        message: String,
        at: Option<NaiveDateTime>,
    },
    /// Call the caller back at `at`, or as soon as possible when `None`.
    Callback {
        at: Option<NaiveDateTime>,
    },
}

impl FiredAction {
    /// Whether the action ends the AI's part of the call: an end or a transfer. Once
    /// one fires the flow hears nothing more.
    pub fn ends(&self) -> bool {
        matches!(self, FiredAction::End { .. } | FiredAction::Transfer { .. })
    }
}

/// A collected value: the call's extracted fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SlotValue {
    YesNo {
        value: bool,
    },
    Number {
        value: f64,
    },
    Money {
        amount: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to: Option<f64>,
        /// ISO 4217, when the caller named a currency.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
        /// `hour`, `day`, `week`, `month` or `year` for a recurring amount.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        per: Option<String>,
    },
    Date {
        date: NaiveDate,
    },
    Time {
        time: NaiveTime,
    },
    Datetime {
        at: NaiveDateTime,
    },
    Timeline {
        within_days: Option<u32>,
        urgent: bool,
    },
    Text {
        value: String,
    },
    Choice {
        value: String,
    },
}

impl SlotValue {
    /// The value as the agent says it back ("tomorrow at 10 am", "500 thousand dollars").
    pub fn speak(&self, today: NaiveDate) -> String {
        match self {
            SlotValue::YesNo { value } => (if *value { "yes" } else { "no" }).into(),
            SlotValue::Number { value } => speech::number(*value),
            SlotValue::Money {
                amount,
                up_to,
                currency,
                per,
            } => speech::money(*amount, *up_to, currency.as_deref(), per.as_deref()),
            SlotValue::Date { date } => speech::date(*date, today),
            SlotValue::Time { time } => speech::time(*time),
            SlotValue::Datetime { at } => speech::datetime(*at, today),
            SlotValue::Timeline { within_days, .. } => speech::timeline(*within_days),
            SlotValue::Text { value } => value.clone(),
            SlotValue::Choice { value } => value.replace('_', " "),
        }
    }

    fn datetime(&self) -> Option<NaiveDateTime> {
        match self {
            SlotValue::Datetime { at } => Some(*at),
            _ => None,
        }
    }
}

/// What a language model may do at the current node, when one is configured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scope {
    pub node: String,
    /// The node's line, rendered: what to say or ask here.
    pub say: String,
    /// The flow's and the node's instructions, rendered, one after the other.
    pub prompt: String,
    pub tools: Vec<ToolName>,
}

/// What collection made of a turn.
enum Extracted {
    Value(SlotValue),
    /// Half an answer (a day without a time): the line asking for the rest.
    Partial(String),
    /// A moment already gone.
    Past,
    /// A time outside the opening hours, and the nearest open one to offer.
    Closed(Option<NaiveDateTime>),
    /// The caller turned down the time offered.
    Declined,
    Nothing,
}

/// What a call's run of a flow never changes: the flow, its intents ready to match and
/// the call's fields. Shared by every copy of the run, so copying a run (to take a turn
/// back) copies only what turns change.
#[derive(Debug)]
struct Compiled {
    flow: Arc<Flow>,
    /// Global intents in the order they are tried, built-ins included.
    global: Vec<Global>,
    /// The matchers of the flow's own intents, in the flow's order.
    own: Vec<Matcher>,
    /// Each node's intents' matchers, in the node's order.
    local: BTreeMap<String, Vec<Matcher>>,
    /// Template fields of the call.
    fields: BTreeMap<String, String>,
    /// When appointments may be made (local time).
    hours: Week,
}

/// A global intent: a built-in one or one of the flow's own, by its index.
#[derive(Clone, Copy, Debug)]
enum Global {
    Builtin(usize),
    Own(usize),
}

impl Compiled {
    fn new(flow: Arc<Flow>, fields: BTreeMap<String, String>, hours: Week) -> Compiled {
        let builtins = matcher::builtins();
        let own = |name: &str| flow.intents.iter().any(|i| i.name == name);
        let builtin = |first: bool| {
            builtins
                .iter()
                .enumerate()
                .filter(move |(_, (b, _))| (b.name == matcher::EMERGENCY) == first)
                .filter(|(_, (b, _))| !own(&b.name))
                .map(|(i, _)| Global::Builtin(i))
        };
        // Emergency first, then the flow's own, then the other built-ins.
        let global = builtin(true)
            .chain((0..flow.intents.len()).map(Global::Own))
            .chain(builtin(false))
            .collect();
        let local = flow
            .nodes
            .iter()
            .map(|(name, node)| {
                (
                    name.clone(),
                    node.intents.iter().map(Matcher::new).collect(),
                )
            })
            .collect();
        Compiled {
            global,
            own: flow.intents.iter().map(Matcher::new).collect(),
            local,
            fields,
            hours,
            flow,
        }
    }

    /// A global intent and its matcher.
    fn global(&self, g: Global) -> Option<(&Intent, &Matcher)> {
        match g {
            Global::Builtin(i) => matcher::builtins().get(i).map(|(b, m)| (b, m)),
            Global::Own(i) => self.flow.intents.get(i).zip(self.own.get(i)),
        }
    }
}

/// One call's way through a flow. Cheap to clone: the flow and its compiled intents are
/// shared, and only the conversation's state is copied.
#[derive(Clone, Debug)]
pub struct FlowRun {
    compiled: Arc<Compiled>,
    slots: BTreeMap<String, SlotValue>,
    node: String,
    now: NaiveDateTime,
    turns: u32,
    misunderstood: u32,
    ended: bool,
    /// Half of a datetime answer, waiting for the other half.
    pending: Option<When>,
    /// An open time offered for a closed one, waiting for the caller's yes.
    offered: Option<NaiveDateTime>,
}

impl FlowRun {
    /// Starts the flow at its start node: the opening lines and any actions of the nodes
    /// entered. A flow should be validated first; one that is not never panics, but may
    /// end the call early.
    pub fn start(flow: impl Into<Arc<Flow>>, context: Context) -> (FlowRun, Step) {
        let flow: Arc<Flow> = flow.into();
        let start = flow.start.clone();
        let mut run = FlowRun {
            compiled: Arc::new(Compiled::new(flow, context.fields, context.hours)),
            slots: BTreeMap::new(),
            node: start.clone(),
            now: context.now,
            turns: 0,
            misunderstood: 0,
            ended: false,
            pending: None,
            offered: None,
        };
        let mut step = Step {
            understood: true,
            ..Step::default()
        };
        run.enter(&start, &mut step);
        step.ended = run.ended;
        (run, step)
    }

    /// Takes one caller turn at `now` (the tenant's local time).
    pub fn hear(&mut self, heard: &Heard, now: NaiveDateTime) -> Step {
        let mut step = Step::default();
        if !self.ended {
            self.now = now;
            self.turns = self.turns.saturating_add(1);
            self.turn(heard, &mut step);
        }
        step.ended = self.ended;
        step
    }

    fn turn(&mut self, heard: &Heard, step: &mut Step) {
        let words = Words::new(&heard.text);
        let digits: String = heard
            .digits
            .chars()
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#'))
            .collect();
        if words.is_empty() && digits.is_empty() {
            return self.miss(step);
        }
        let compiled = Arc::clone(&self.compiled);
        let global = compiled
            .global
            .iter()
            .filter_map(|&g| compiled.global(g))
            .find(|(_, m)| m.matches(&words, &digits))
            .map(|(intent, _)| intent);
        // Past the turn limit the call goes to a person, unless this very turn ends it
        // its own way (an emergency keeps its advice and reason).
        let ends_itself = global.is_some_and(|i| i.actions.iter().any(Action::ends));
        if self.turns > compiled.flow.max_turns && !ends_itself {
            step.understood = true;
            step.say.push(MAX_TURNS_LINE.into());
            return self.fire_one(
                FiredAction::Transfer {
                    mode: TransferMode::Warm,
                    reason: matcher::REASON_MAX_TURNS.into(),
                },
                step,
            );
        }
        if let Some(intent) = global {
            return self.understood_by(intent, step);
        }
        let Some(node) = compiled.flow.nodes.get(&self.node) else {
            return self.broken(step);
        };
        // Node intents: one that decides the turn does; one that does not marks it for
        // the branches.
        let mut marked = None;
        let hit = compiled
            .local
            .get(&self.node)
            .and_then(|ms| ms.iter().position(|m| m.matches(&words, &digits)));
        if let Some(intent) = hit.and_then(|i| node.intents.get(i)) {
            if intent.handles_turn() {
                return self.understood_by(intent, step);
            }
            self.fire(&intent.actions, step);
            marked = Some(intent.name.as_str());
        }
        let mut collected = false;
        // An intent that sets the node's own slot has answered it ("it's my boss"):
        // the words are not read again, where "yes, it's my boss" would say otherwise.
        let answered = hit.and_then(|i| node.intents.get(i)).is_some_and(|intent| {
            intent.actions.iter().any(
                |a| matches!((a, &node.collect), (Action::Set(s), Some(c)) if s.slot == c.slot),
            )
        });
        if let Some(collect) = node.collect.as_ref().filter(|_| !answered) {
            match self.extract(collect, &words, &heard.text, &digits) {
                Extracted::Value(v) => {
                    self.slots.insert(collect.slot.clone(), v);
                    self.pending = None;
                    collected = true;
                }
                Extracted::Partial(line) => {
                    self.misunderstood = 0;
                    step.understood = true;
                    step.say.push(line);
                    return;
                }
                Extracted::Past => {
                    self.misunderstood = 0;
                    step.understood = true;
                    step.say.push(PAST.into());
                    return self.reask(node, step);
                }
                Extracted::Closed(offer) => {
                    self.misunderstood = 0;
                    step.understood = true;
                    step.say.push(CLOSED.into());
                    let Some(offer) = offer else {
                        return self.reask(node, step);
                    };
                    self.offered = Some(offer);
                    step.say.push(format!(
                        "The nearest time I can offer is {}. Does that suit you?",
                        speech::datetime(offer, self.now.date())
                    ));
                    return;
                }
                Extracted::Declined => {
                    self.misunderstood = 0;
                    step.understood = true;
                    step.say.push(DECLINED.into());
                    return self.reask(node, step);
                }
                Extracted::Nothing => {}
            }
            if collect.required && !collected && marked.is_none() {
                return self.miss(step);
            }
        }
        match self.branch(node, marked) {
            Some(target) => {
                self.misunderstood = 0;
                step.understood = true;
                let target = target.to_owned();
                self.leave_for(&target, step);
            }
            None => self.miss(step),
        }
    }

    /// A turn decided by an intent: its actions, its line, then its node or the
    /// current node's question again.
    fn understood_by(&mut self, intent: &Intent, step: &mut Step) {
        self.misunderstood = 0;
        step.understood = true;
        self.fire(&intent.actions, step);
        if let Some(say) = &intent.say {
            self.say(say, step);
        }
        if self.ended {
            return;
        }
        match &intent.goto {
            Some(target) => self.leave_for(target, step),
            None => {
                let flow = Arc::clone(&self.compiled.flow);
                match flow.nodes.get(&self.node) {
                    Some(node) => self.reask(node, step),
                    None => self.broken(step),
                }
            }
        }
    }

    fn miss(&mut self, step: &mut Step) {
        step.understood = false;
        self.misunderstood = self.misunderstood.saturating_add(1);
        let flow = Arc::clone(&self.compiled.flow);
        if self.misunderstood >= flow.max_misunderstandings.max(1) {
            self.misunderstood = 0;
            match &flow.fallback {
                Some(fallback) if flow.nodes.contains_key(fallback) => {
                    self.leave_for(fallback, step)
                }
                _ => {
                    step.say.push(GIVE_UP.into());
                    self.fire_one(
                        FiredAction::Transfer {
                            mode: TransferMode::Warm,
                            reason: matcher::REASON_NOT_UNDERSTOOD.into(),
                        },
                        step,
                    );
                }
            }
            return;
        }
        step.say.push(
            if self.misunderstood == 1 {
                SORRY_FIRST
            } else {
                SORRY_AGAIN
            }
            .into(),
        );
        match flow.nodes.get(&self.node) {
            Some(node) => self.reask(node, step),
            None => self.broken(step),
        }
    }

    fn reask(&self, node: &Node, step: &mut Step) {
        let line = node.reprompt.as_deref().unwrap_or(&node.say);
        self.say(line, step);
    }

    /// Leaves the current node (its `on_leave`) for `target`.
    fn leave_for(&mut self, target: &str, step: &mut Step) {
        let flow = Arc::clone(&self.compiled.flow);
        if let Some(node) = flow.nodes.get(&self.node) {
            self.fire(&node.on_leave, step);
        }
        if self.ended {
            return;
        }
        self.enter(target, step);
    }

    /// Enters `target`: its `on_enter`, its line, and on through nodes that only route.
    fn enter(&mut self, target: &str, step: &mut Step) {
        let flow = Arc::clone(&self.compiled.flow);
        let mut target = target.to_owned();
        // Each node at most once per turn: a routing loop (which validation refuses)
        // ends here instead of spinning.
        for _ in 0..=flow.nodes.len() {
            let Some(node) = flow.nodes.get(&target) else {
                return self.broken(step);
            };
            self.node = target;
            self.pending = None;
            self.offered = None;
            self.fire(&node.on_enter, step);
            self.say(&node.say, step);
            if self.ended || node.ends() || node.listens() {
                if node.ends() {
                    self.ended = true;
                }
                return;
            }
            match self.branch(node, None) {
                Some(next) => {
                    let next = next.to_owned();
                    self.fire(&node.on_leave, step);
                    if self.ended {
                        return;
                    }
                    target = next;
                }
                // A routing node whose branches all fail (validation requires a last
                // branch without a condition): the caller's next turn is a miss here.
                None => return,
            }
        }
        self.broken(step)
    }

    /// Ends the call politely when the flow itself is at fault.
    fn broken(&mut self, step: &mut Step) {
        step.say.push(BROKEN.into());
        self.fire_one(
            FiredAction::End {
                outcome: Some("flow_error".into()),
            },
            step,
        );
    }

    fn say(&self, template: &str, step: &mut Step) {
        let line = render(template, &|name| self.field(name));
        if !line.is_empty() {
            step.say.push(line);
        }
    }

    /// A template field: a slot collected so far, else a field of the call.
    fn field(&self, name: &str) -> Option<String> {
        match self.slots.get(name) {
            Some(v) => Some(v.speak(self.now.date())),
            None => self.compiled.fields.get(name).cloned(),
        }
    }

    fn fire_one(&mut self, action: FiredAction, step: &mut Step) {
        if action.ends() {
            self.ended = true;
        }
        step.actions.push(action);
    }

    fn fire(&mut self, actions: &[Action], step: &mut Step) {
        for action in actions {
            let fired = match action {
                Action::Qualify => FiredAction::Qualify {
                    slots: self.slots.clone(),
                },
                Action::Book(b) => {
                    // Without the time there is nothing to book: validation makes sure
                    // the slot exists, the flow's path that it was collected.
                    let Some(at) = self.slots.get(&b.slot).and_then(SlotValue::datetime) else {
                        continue;
                    };
                    FiredAction::Book {
                        slot: b.slot.clone(),
                        title: render(&b.title, &|name| self.field(name)),
                        at,
                        duration_minutes: b.duration_minutes,
                        kind: b.kind,
                    }
                }
                Action::Transfer(t) => FiredAction::Transfer {
                    mode: t.mode,
                    reason: t.reason.clone(),
                },
                Action::End(e) => FiredAction::End {
                    outcome: e.outcome.clone(),
                },
                Action::SendConfirmation(c) => {
                    let default = format!(
                        "Your appointment with {{tenant_name}} is confirmed for {{{}}}.",
                        c.slot
                    );
                    let template = c.message.as_deref().unwrap_or(&default);
                    FiredAction::SendConfirmation {
                        channel: c.channel,
                        message: render(template, &|name| self.field(name)),
                        at: self.slots.get(&c.slot).and_then(SlotValue::datetime),
                    }
                }
                Action::Callback(c) => FiredAction::Callback {
                    at: self.slots.get(&c.slot).and_then(SlotValue::datetime),
                },
                Action::Set(s) => {
                    if let Some(v) = set_value(self.compiled.flow.slot_kind(&s.slot), &s.value) {
                        self.slots.insert(s.slot.clone(), v);
                    }
                    continue;
                }
            };
            self.fire_one(fired, step);
        }
    }

    /// The first branch of `node` that holds.
    fn branch<'n>(&self, node: &'n Node, marked: Option<&str>) -> Option<&'n str> {
        node.next
            .iter()
            .find(|b| self.holds(b, marked))
            .map(|b| b.goto.as_str())
    }

    fn holds(&self, b: &Branch, marked: Option<&str>) -> bool {
        if let Some(intent) = &b.intent {
            return marked == Some(intent.as_str());
        }
        if let Some(field) = &b.field {
            let value = self
                .compiled
                .fields
                .get(field)
                .filter(|v| !v.trim().is_empty());
            return b.present.is_none_or(|p| p == value.is_some())
                && b.is
                    .as_ref()
                    .is_none_or(|is| value.is_some_and(|v| text_is(v, is)))
                && (b.present.is_some() || b.is.is_some() || value.is_some());
        }
        let Some(slot) = &b.slot else {
            return true;
        };
        let value = self.slots.get(slot);
        let tested =
            b.present.is_some() || b.is.is_some() || b.at_least.is_some() || b.below.is_some();
        b.present.is_none_or(|p| p == value.is_some())
            && b.is
                .as_ref()
                .is_none_or(|is| value.is_some_and(|v| slot_is(v, is)))
            && b.at_least
                .is_none_or(|n| value.is_some_and(|v| top(v).is_some_and(|x| x >= n)))
            && b.below
                .is_none_or(|n| value.is_some_and(|v| bottom(v).is_some_and(|x| x < n)))
            && (tested || value.is_some())
    }

    fn extract(&mut self, c: &Collect, words: &Words, text: &str, digits: &str) -> Extracted {
        let today = self.now.date();
        let keyed: Option<f64> = (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten();
        let in_range = |n: f64| c.min.is_none_or(|m| n >= m) && c.max.is_none_or(|m| n <= m);
        let value = match c.kind {
            SlotKind::YesNo => {
                let key = match (c.keypad, digits) {
                    (true, "1") => Some(true),
                    (true, "2") => Some(false),
                    _ => None,
                };
                key.or_else(|| slots::yes_no(text))
                    .map(|value| SlotValue::YesNo { value })
            }
            SlotKind::Number => keyed
                .or_else(|| slots::number(text))
                .filter(|n| in_range(*n))
                .map(|value| SlotValue::Number { value }),
            SlotKind::Money => {
                let m = match keyed {
                    Some(amount) => Some(SlotValue::Money {
                        amount,
                        up_to: None,
                        currency: None,
                        per: None,
                    }),
                    None => slots::money(text).map(|m| SlotValue::Money {
                        amount: m.amount,
                        up_to: m.up_to,
                        currency: m.currency.map(str::to_owned),
                        per: m.per.map(|p| p.as_str().to_owned()),
                    }),
                };
                m.filter(|m| matches!(m, SlotValue::Money { amount, .. } if in_range(*amount)))
            }
            SlotKind::Date => slots::date(text, today).map(|date| SlotValue::Date { date }),
            SlotKind::Time => slots::time(text).map(|time| SlotValue::Time { time }),
            SlotKind::Timeline => slots::timeline(text, today).map(|t| SlotValue::Timeline {
                within_days: t.within_days,
                urgent: t.urgent,
            }),
            SlotKind::Text if !words.is_empty() && words.only_filler() => None,
            SlotKind::Text => {
                let said = text.trim();
                let said = if said.is_empty() { digits } else { said };
                (!said.is_empty()).then(|| SlotValue::Text {
                    value: said.chars().take(MAX_TEXT_SLOT).collect(),
                })
            }
            SlotKind::Choice => choose(c, words, digits).map(|value| SlotValue::Choice { value }),
            SlotKind::Datetime => return self.datetime(text),
        };
        value.map_or(Extracted::Nothing, Extracted::Value)
    }

    /// A day and a time, from this turn and any half said before; a yes or no to an
    /// open time offered for a closed one.
    fn datetime(&mut self, text: &str) -> Extracted {
        let offered = self.offered.take();
        let heard = slots::when(text, self.now);
        let Some(heard) = heard else {
            return match (offered, slots::yes_no(text)) {
                (Some(at), Some(true)) if at >= self.now => {
                    Extracted::Value(SlotValue::Datetime { at })
                }
                (Some(_), Some(false)) => Extracted::Declined,
                // Neither: the offer stands for another try.
                (Some(at), None) => {
                    self.offered = Some(at);
                    Extracted::Nothing
                }
                _ => Extracted::Nothing,
            };
        };
        let pending = self.pending.unwrap_or(When {
            date: None,
            time: None,
        });
        let date = heard.date.or(pending.date);
        let time = heard.time.or(pending.time);
        match (date, time) {
            (Some(d), Some(t)) => {
                let at = d.and_time(t);
                self.pending = None;
                let hours = &self.compiled.hours;
                if at < self.now {
                    Extracted::Past
                } else if !hours.is_open_at(at) {
                    Extracted::Closed(hours.next_open(at))
                } else {
                    Extracted::Value(SlotValue::Datetime { at })
                }
            }
            (Some(d), None) => {
                self.pending = Some(When {
                    date: Some(d),
                    time: None,
                });
                Extracted::Partial(format!(
                    "And what time on {}?",
                    speech::date(d, self.now.date())
                ))
            }
            (None, Some(t)) => {
                self.pending = Some(When {
                    date: None,
                    time: Some(t),
                });
                Extracted::Partial("And which day would that be?".into())
            }
            (None, None) => Extracted::Nothing,
        }
    }

    /// A booking the host could not make (the time was taken, or the meeting would run
    /// past closing): the flow goes back to the node that asked for `slot`, forgets the
    /// time, and offers `offer` (a yes takes it) or asks again. The rest of the turn's
    /// actions are the host's to drop: the flow has not got past the booking.
    pub fn refused(&mut self, slot: &str, offer: Option<NaiveDateTime>) -> Step {
        let mut step = Step {
            understood: true,
            ..Step::default()
        };
        self.ended = false;
        self.slots.remove(slot);
        let flow = self.compiled.flow.clone();
        let asked = flow
            .nodes
            .iter()
            .find(|(_, n)| n.collect.as_ref().is_some_and(|c| c.slot == slot));
        let Some((name, node)) = asked else {
            self.broken(&mut step);
            step.ended = self.ended;
            return step;
        };
        self.node = name.clone();
        self.pending = None;
        self.offered = None;
        step.say.push(NOT_AVAILABLE.into());
        match offer.filter(|at| *at >= self.now) {
            Some(at) => {
                self.offered = Some(at);
                step.say.push(format!(
                    "The nearest time I can offer is {}. Does that suit you?",
                    speech::datetime(at, self.now.date())
                ));
            }
            None => self.reask(node, &mut step),
        }
        step.ended = self.ended;
        step
    }

    /// The node the conversation is at.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The values collected so far, by slot.
    pub fn slots(&self) -> &BTreeMap<String, SlotValue> {
        &self.slots
    }

    pub fn misunderstood_in_a_row(&self) -> u32 {
        self.misunderstood
    }

    /// Caller turns heard so far.
    pub fn turns(&self) -> u32 {
        self.turns
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The current node's line, instructions and tools, for a language model.
    pub fn scope(&self) -> Scope {
        let flow = &self.compiled.flow;
        let node = flow.nodes.get(&self.node);
        let field = |name: &str| self.field(name);
        let prompt = [
            flow.prompt.as_deref(),
            node.and_then(|n| n.prompt.as_deref()),
        ]
        .into_iter()
        .flatten()
        .map(|p| render(p, &field))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
        Scope {
            node: self.node.clone(),
            say: node.map(|n| render(&n.say, &field)).unwrap_or_default(),
            prompt,
            tools: node.map(|n| n.tools.clone()).unwrap_or_default(),
        }
    }
}

/// The option the caller chose: a key by position (1 is the first), else the first
/// option, in the author's order, one of whose phrases was said and not negated.
fn choose(c: &Collect, words: &Words, digits: &str) -> Option<String> {
    if let Some(option) = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| c.options.get(i))
    {
        return Some(option.value.clone());
    }
    c.options
        .iter()
        .find(|o| {
            std::iter::once(o.value.replace('_', " "))
                .chain(o.keywords.iter().cloned())
                .any(|k| Phrase::new(&k).find(words).is_some())
        })
        .map(|o| o.value.clone())
}

/// A slot's value from a `set` action, read as the slot's kind.
fn set_value(kind: Option<SlotKind>, value: &Scalar) -> Option<SlotValue> {
    match (kind.unwrap_or(SlotKind::Text), value) {
        (SlotKind::YesNo, v) => yes_no_scalar(v).map(|value| SlotValue::YesNo { value }),
        (SlotKind::Number, Scalar::Number(n)) => Some(SlotValue::Number { value: *n }),
        (SlotKind::Money, Scalar::Number(n)) => Some(SlotValue::Money {
            amount: *n,
            up_to: None,
            currency: None,
            per: None,
        }),
        (SlotKind::Choice, v) => Some(SlotValue::Choice {
            value: v.to_string(),
        }),
        (SlotKind::Text, v) => Some(SlotValue::Text {
            value: v.to_string(),
        }),
        _ => None,
    }
}

/// `true`/`false`, or yes/no in words.
pub(crate) fn yes_no_scalar(v: &Scalar) -> Option<bool> {
    match v {
        Scalar::Bool(b) => Some(*b),
        Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(true),
            "no" | "false" => Some(false),
            _ => None,
        },
        Scalar::Number(_) => None,
    }
}

fn text_is(v: &str, is: &Scalar) -> bool {
    v.trim().eq_ignore_ascii_case(is.to_string().trim())
}

fn slot_is(v: &SlotValue, is: &Scalar) -> bool {
    match (v, is) {
        (SlotValue::YesNo { value }, is) => yes_no_scalar(is) == Some(*value),
        (SlotValue::Number { value }, Scalar::Number(n)) => value == n,
        (SlotValue::Money { amount, .. }, Scalar::Number(n)) => amount == n,
        (SlotValue::Timeline { urgent, .. }, Scalar::Text(t)) => match t.as_str() {
            "urgent" => *urgent,
            "not_urgent" => !*urgent,
            _ => false,
        },
        (SlotValue::Text { value } | SlotValue::Choice { value }, is) => text_is(value, is),
        _ => false,
    }
}

/// The highest a value reaches, for `at_least`: a range's upper end.
fn top(v: &SlotValue) -> Option<f64> {
    match v {
        SlotValue::Number { value } => Some(*value),
        SlotValue::Money { amount, up_to, .. } => Some(up_to.unwrap_or(*amount)),
        SlotValue::Timeline { within_days, .. } => within_days.map(f64::from),
        _ => None,
    }
}

/// The lowest a value reaches, for `below`: a range's lower end.
fn bottom(v: &SlotValue) -> Option<f64> {
    match v {
        SlotValue::Number { value } => Some(*value),
        SlotValue::Money { amount, .. } => Some(*amount),
        SlotValue::Timeline { within_days, .. } => within_days.map(f64::from),
        _ => None,
    }
}
