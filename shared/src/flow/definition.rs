//! The flow document: what an author writes in YAML or JSON, as Rust types. Parsing
//! refuses unknown fields; [`super::validate`] checks what types cannot (targets exist,
//! slots agree, limits).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use crate::domain::appointment::MeetingKind;

/// A scripted conversation: nodes that say something, collect a slot and go on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Shown to people who pick a flow; never spoken.
    pub name: String,
    /// The node the conversation begins at.
    pub start: String,
    /// Instructions for a language model across the whole call (persona, tone), when one
    /// is configured; each node may add its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Turns in a row not understood before the graceful exit.
    #[serde(default = "default_max_misunderstandings")]
    pub max_misunderstandings: u32,
    /// Caller turns the AI takes before it hands the call to a person.
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Where the graceful exit goes (typically a transfer or a callback); without one the
    /// caller is told a colleague will help and the call is transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Checked at every node before the node's own intents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intents: Vec<Intent>,
    /// By name; a name written twice is refused rather than one node silently lost.
    #[serde(deserialize_with = "unique_nodes")]
    pub nodes: BTreeMap<String, Node>,
}

fn unique_nodes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Node>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, Node>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of node names to nodes")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut nodes = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if nodes.contains_key(&name) {
                    return Err(de::Error::custom(format!("two nodes are named \"{name}\"")));
                }
                let node = map.next_value()?;
                nodes.insert(name, node);
            }
            Ok(nodes)
        }
    }
    d.deserialize_map(V)
}

pub(crate) fn default_max_misunderstandings() -> u32 {
    3
}

pub(crate) fn default_max_turns() -> u32 {
    30
}

impl Flow {
    /// The kind a slot is collected as, by the first node (in name order) collecting it.
    pub(crate) fn slot_kind(&self, slot: &str) -> Option<SlotKind> {
        self.nodes
            .values()
            .filter_map(|n| n.collect.as_ref())
            .find(|c| c.slot == slot)
            .map(|c| c.kind)
    }
}

/// One step of the conversation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// What the agent says on entering the node (a template); empty for a node that only
    /// routes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub say: String,
    /// The node's question alone, asked again after a miss (behind an apology) or after
    /// an aside; `say` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprompt: Option<String>,
    /// Extra instructions for a language model at this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The tools a language model may call at this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect: Option<Collect>,
    /// Checked after the flow's intents, before collection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intents: Vec<Intent>,
    /// Tried in order after collection; the first that holds is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<Branch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_enter: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_leave: Vec<Action>,
}

impl Node {
    /// Whether entering the node ends the AI's part of the call.
    pub(crate) fn ends(&self) -> bool {
        self.on_enter.iter().any(Action::ends)
    }

    /// Whether the node waits for the caller (it collects or listens for intents); a
    /// node that does not routes on at once.
    pub(crate) fn listens(&self) -> bool {
        self.collect.is_some() || !self.intents.is_empty()
    }
}

/// What a node collects from the caller's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    /// Where the value is kept; other nodes' branches and templates name it.
    pub slot: String,
    pub kind: SlotKind,
    /// A required slot not heard is a miss; an optional one goes on to the branches.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    /// For `choice`: the answers, tried in order (put the more specific first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ChoiceOption>,
    /// For `number` and `money`: the range an answer must fall in ("one to five").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For `yes_no`: keypad 1 is yes and 2 is no (say so in the question). Numbers and
    /// choices always take keys.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keypad: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How a slot's value is read from the caller's words (see [`crate::slots`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    YesNo,
    Number,
    Money,
    Date,
    Time,
    /// A day and a time together (an appointment); asked for piece by piece when the
    /// caller gives only one.
    Datetime,
    Timeline,
    /// The caller's words as said.
    Text,
    Choice,
}

impl SlotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::YesNo => "yes_no",
            SlotKind::Number => "number",
            SlotKind::Money => "money",
            SlotKind::Date => "date",
            SlotKind::Time => "time",
            SlotKind::Datetime => "datetime",
            SlotKind::Timeline => "timeline",
            SlotKind::Text => "text",
            SlotKind::Choice => "choice",
        }
    }
}

impl fmt::Display for SlotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One answer of a `choice`: its value, and the phrases that say it (the value itself
/// always counts). Written as a plain string (`rent`) or a map (`{value: rent, keywords:
/// [renting, lease]}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChoiceOption {
    pub value: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

impl ChoiceOption {
    pub fn new(value: &str) -> ChoiceOption {
        ChoiceOption {
            value: value.to_owned(),
            keywords: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceOptionMap {
    value: String,
    #[serde(default)]
    keywords: Vec<String>,
}

impl<'de> Deserialize<'de> for ChoiceOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChoiceOption;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an option's value, or a map with value and keywords")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ChoiceOption, E> {
                Ok(ChoiceOption::new(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ChoiceOption, A::Error> {
                let m = ChoiceOptionMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ChoiceOption {
                    value: m.value,
                    keywords: m.keywords,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Something the caller may say at any point of a node (or of the flow): phrases,
/// patterns or keys, and what to do when heard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub name: String,
    /// Phrases matched on whole words, case-insensitive, ignoring punctuation; `*` stands
    /// for up to four words ("speak to * manager"). A phrase right after a negation
    /// ("not", "don't", "never"...) does not count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Regular expressions matched against the caller's words in lower case, with
    /// punctuation and apostrophes removed ("whos calling").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// Keypad entries that mean this intent, matched whole ("0").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digits: Vec<String>,
    /// Said when the intent is heard (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Where to go; without it (and with a `say`) the node's question is asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

impl Intent {
    /// Whether hearing the intent decides the turn by itself. One that does not (no
    /// `say`, `goto` or ending action) fires its actions and marks the turn: the node's
    /// branches can test it, and a required slot not heard is then no miss ("not sure"
    /// to a budget question).
    pub(crate) fn handles_turn(&self) -> bool {
        self.say.is_some() || self.goto.is_some() || self.actions.iter().any(Action::ends)
    }
}

/// Where to go next, and when. With no condition the branch is always taken. At most one
/// of `intent`, `slot` and `field`; `is`, `present`, `at_least` and `below` test the slot
/// or field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// A node intent heard this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// A slot collected so far (at any node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// A field of the call's context (`direction`, `lead.<field>`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Equals: yes/no (or true/false) for yes_no, an option for a choice, the words for
    /// text (case-insensitive), a number, `urgent` for a timeline, a field's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is: Option<Scalar>,
    /// Collected (true) or not yet (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// Number and money (a range's upper end), or a timeline's days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// Number and money (a range's lower end), or a timeline's days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    pub goto: String,
}

impl Branch {
    /// Whether the branch holds whatever was said.
    pub(crate) fn is_unconditional(&self) -> bool {
        self.intent.is_none() && self.slot.is_none() && self.field.is_none()
    }
}

/// A plain value in a condition: YAML's `yes` and `true` both work for yes_no.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(t) => f.write_str(t),
        }
    }
}

/// Something the flow makes happen, on entering or leaving a node or on an intent. The
/// host carries it out; [`super::FiredAction`] is what it receives, with the values.
///
/// Written `qualify`, `end`, or a one-key map: `book: {title: Viewing, duration_minutes:
/// 30, kind: in_person}`, `transfer: {mode: warm, reason: asked}`, `end: {outcome: booked}`,
/// `send_confirmation: {channel: sms}`, `callback: {slot: callback_time}`, `set: {slot:
/// budget_status, value: none}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Qualify the lead with what was collected.
    Qualify,
    /// Book the appointment time collected in `slot`.
    Book(Book),
    /// Hand the call to a person; ends the flow.
    Transfer(Transfer),
    /// End the call after the node's words.
    End(End),
    SendConfirmation(SendConfirmation),
    /// Schedule a call back at the time collected in `slot` (or as soon as possible when
    /// it was not).
    Callback(Callback),
    /// Write a slot (the value is read as the slot's kind: `yes`, an option, words).
    Set(Set),
}

impl Action {
    /// End and transfer finish the AI's part of the call.
    pub(crate) fn ends(&self) -> bool {
        matches!(self, Action::End(_) | Action::Transfer(_))
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Action::Qualify => "qualify",
            Action::Book(_) => "book",
            Action::Transfer(_) => "transfer",
            Action::End(_) => "end",
            Action::SendConfirmation(_) => "send_confirmation",
            Action::Callback(_) => "callback",
            Action::Set(_) => "set",
        }
    }
}

const ACTIONS: &[&str] = &[
    "qualify",
    "book",
    "transfer",
    "end",
    "send_confirmation",
    "callback",
    "set",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Book {
    /// What the meeting is called in the calendar (a template).
    pub title: String,
    pub duration_minutes: u32,
    pub kind: MeetingKind,
    /// A datetime slot.
    #[serde(default = "appointment_time")]
    pub slot: String,
}

fn appointment_time() -> String {
    "appointment_time".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    #[serde(default)]
    pub mode: TransferMode,
    /// Why, for the person taking the call and the call's record.
    pub reason: String,
}

/// Warm: the person is told who is calling and why before the caller is joined; cold:
/// the caller is put straight through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    #[default]
    Warm,
    Cold,
}

impl TransferMode {
    /// The mode's name, as flows and events write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Warm => "warm",
            TransferMode::Cold => "cold",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// How the call went, for its record ("booked", "not_interested").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendConfirmation {
    pub channel: Channel,
    /// The message (a template); a line naming the tenant and the booked time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The datetime slot it confirms.
    #[serde(default = "appointment_time")]
    pub slot: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Whatsapp,
}

impl Channel {
    /// The channel's name, as flows and events write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// A datetime slot.
    pub slot: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    pub slot: String,
    pub value: Scalar,
}

/// `qualify: {}`: refuses fields, so a typo is not silently dropped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Action;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an action: `qualify`, `end`, or a one-key map such as `book: {...}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Action, E> {
                match v {
                    "qualify" => Ok(Action::Qualify),
                    "end" => Ok(Action::End(End::default())),
                    "book" | "transfer" | "send_confirmation" | "callback" | "set" => Err(
                        E::custom(format!("`{v}` needs its fields: write `{v}: {{...}}`")),
                    ),
                    _ => Err(E::unknown_variant(v, ACTIONS)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("an action map needs one key"));
                };
                let action = match key.as_str() {
                    // Fieldless actions may also be written `qualify:` (null) or `{}`.
                    "qualify" => {
                        map.next_value::<Option<NoFields>>()?;
                        Action::Qualify
                    }
                    "end" => Action::End(map.next_value::<Option<End>>()?.unwrap_or_default()),
                    "book" => Action::Book(map.next_value()?),
                    "transfer" => Action::Transfer(map.next_value()?),
                    "send_confirmation" => Action::SendConfirmation(map.next_value()?),
                    "callback" => Action::Callback(map.next_value()?),
                    "set" => Action::Set(map.next_value()?),
                    other => return Err(de::Error::unknown_variant(other, ACTIONS)),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom(
                        "an action map has one key: write each action as its own list item",
                    ));
                }
                Ok(action)
            }
        }
        d.deserialize_any(V)
    }
}

/// The tools a language model may call at a node, when one is configured: Parley's
/// own, by the names the model sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    /// Keep a slot's value the model heard.
    SaveSlot,
    QualifyLead,
    CheckAvailability,
    BookAppointment,
    SendConfirmation,
    ScheduleCallback,
    TransferToHuman,
    EndCall,
}
