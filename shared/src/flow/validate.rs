//! Checks a parsed flow for what its types cannot say: every target exists, slots agree
//! on their kind, branches test what is collected, every node is reached and goes
//! somewhere, templates name known fields, and sizes stay within limits. Every problem
//! is reported, each at the path of the field at fault (`nodes.budget.next[1].goto`).

use std::collections::{BTreeMap, BTreeSet};

use super::FieldError;
use super::definition::{
    Action, Branch, ChoiceOption, Collect, Flow, Intent, Node, Scalar, SlotKind,
};
use super::engine::yes_no_scalar;
use super::matcher::{Phrase, compile_pattern};
use super::template;
use crate::domain::appointment::DURATION_MINUTES;

/// Nodes a flow may have.
pub(crate) const MAX_NODES: usize = 200;
/// Bytes in any one text (a line, a prompt, a keyword, a pattern).
pub(crate) const MAX_TEXT: usize = 4096;
/// Characters in a name (node, slot, intent, option), and in a template's field name.
pub(crate) const MAX_NAME: usize = 64;
/// Items in any one list (intents, keywords, options, branches, actions).
pub(crate) const MAX_ITEMS: usize = 100;
/// `*` wildcards in one keyword phrase.
const MAX_STARS: usize = 3;

/// The context fields every call has; `lead.`, `tenant.` and `agent.` fields are open.
pub(crate) const CONTEXT_FIELDS: &[&str] = &[
    "tenant_name",
    "agent_name",
    "direction",
    "lead_name",
    "lead_phone",
];
const OPEN_PREFIXES: &[&str] = &["lead.", "tenant.", "agent."];

struct SlotInfo {
    kind: SlotKind,
    node: String,
    options: Vec<String>,
}

struct Checker<'f> {
    flow: &'f Flow,
    errors: Vec<FieldError>,
    /// Slots a node collects, with the first node (in name order) collecting each.
    slots: BTreeMap<String, SlotInfo>,
    /// Slots only `set` actions write (read as text).
    set_only: BTreeSet<String>,
}

/// Every problem with `flow`, in document order; empty when it is sound.
pub fn validate(flow: &Flow) -> Vec<FieldError> {
    let mut c = Checker {
        flow,
        errors: Vec::new(),
        slots: BTreeMap::new(),
        set_only: BTreeSet::new(),
    };
    c.flow_fields();
    c.collect_slots();
    if let Some(p) = &flow.prompt {
        c.template("prompt", p);
    }
    for (i, intent) in flow.intents.iter().enumerate() {
        c.intent(&format!("intents[{i}]"), intent);
    }
    c.duplicate_intents("intents", &flow.intents);
    for (name, node) in &flow.nodes {
        c.node(name, node);
    }
    c.reachability();
    c.routing_loops();
    c.errors
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn name(&mut self, path: &str, name: &str) {
        if !is_name(name) {
            self.err(
                path,
                format!("\"{name}\" is not a name: use 1 to {MAX_NAME} of a-z, 0-9 and _"),
            );
        }
    }

    fn items<T>(&mut self, path: &str, list: &[T]) {
        if list.len() > MAX_ITEMS {
            self.err(
                path,
                format!("at most {MAX_ITEMS} items (found {})", list.len()),
            );
        }
    }

    fn text(&mut self, path: &str, text: &str) {
        if text.len() > MAX_TEXT {
            self.err(
                path,
                format!("at most {MAX_TEXT} bytes (found {})", text.len()),
            );
        }
    }

    /// A template: its size, its syntax, and that each field it names exists.
    fn template(&mut self, path: &str, text: &str) {
        self.text(path, text);
        match template::fields(text) {
            Err(fault) => self.err(path, fault),
            Ok(fields) => {
                for f in fields {
                    if !self.known_field(f) && !self.slot_exists(f) {
                        self.err(
                            path,
                            format!(
                                "unknown field {{{f}}}: use {}, lead.<field>, or a slot this flow collects",
                                CONTEXT_FIELDS.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    fn known_field(&self, f: &str) -> bool {
        CONTEXT_FIELDS.contains(&f)
            || OPEN_PREFIXES
                .iter()
                .any(|p| f.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
    }

    fn slot_exists(&self, slot: &str) -> bool {
        self.slots.contains_key(slot) || self.set_only.contains(slot)
    }

    fn flow_fields(&mut self) {
        let flow = self.flow;
        if flow.name.trim().is_empty() {
            self.err("name", "a flow needs a name");
        } else if flow.name.len() > 200 {
            self.err("name", "at most 200 bytes");
        }
        if flow.nodes.is_empty() {
            self.err("nodes", "a flow needs at least one node");
        } else if flow.nodes.len() > MAX_NODES {
            self.err(
                "nodes",
                format!("at most {MAX_NODES} nodes (found {})", flow.nodes.len()),
            );
        }
        if !flow.nodes.contains_key(&flow.start) {
            self.err("start", format!("no node named \"{}\"", flow.start));
        }
        if let Some(fallback) = &flow.fallback
            && !flow.nodes.contains_key(fallback)
        {
            self.err("fallback", format!("no node named \"{fallback}\""));
        }
        if !(1..=10).contains(&flow.max_misunderstandings) {
            self.err("max_misunderstandings", "between 1 and 10");
        }
        if !(1..=500).contains(&flow.max_turns) {
            self.err("max_turns", "between 1 and 500");
        }
        self.items("intents", &flow.intents);
    }

    /// Registers every collected slot; a slot collected twice must agree on its kind.
    fn collect_slots(&mut self) {
        let flow = self.flow;
        for (name, node) in &flow.nodes {
            let Some(c) = &node.collect else { continue };
            let options: Vec<String> = c.options.iter().map(|o| o.value.to_lowercase()).collect();
            match self.slots.get(&c.slot) {
                None => {
                    self.slots.insert(
                        c.slot.clone(),
                        SlotInfo {
                            kind: c.kind,
                            node: name.clone(),
                            options,
                        },
                    );
                }
                Some(first) if first.kind != c.kind => {
                    let msg = format!(
                        "slot \"{}\" is collected as {} at node \"{}\"",
                        c.slot, first.kind, first.node
                    );
                    self.err(format!("nodes.{name}.collect.kind"), msg);
                }
                Some(first) if first.options != options => {
                    let msg = format!(
                        "slot \"{}\" has other options at node \"{}\"",
                        c.slot, first.node
                    );
                    self.err(format!("nodes.{name}.collect.options"), msg);
                }
                Some(_) => {}
            }
        }
        let sets: Vec<String> = flow
            .intents
            .iter()
            .chain(flow.nodes.values().flat_map(|n| n.intents.iter()))
            .flat_map(|i| i.actions.iter())
            .chain(
                flow.nodes
                    .values()
                    .flat_map(|n| n.on_enter.iter().chain(&n.on_leave)),
            )
            .filter_map(|a| match a {
                Action::Set(s) => Some(s.slot.clone()),
                _ => None,
            })
            .collect();
        for s in sets {
            if !self.slots.contains_key(&s) {
                self.set_only.insert(s);
            }
        }
    }

    fn duplicate_intents(&mut self, path: &str, intents: &[Intent]) {
        let mut seen = BTreeSet::new();
        for (i, intent) in intents.iter().enumerate() {
            if !seen.insert(intent.name.as_str()) {
                self.err(
                    format!("{path}[{i}].name"),
                    format!("another intent here is named \"{}\"", intent.name),
                );
            }
        }
    }

    fn node(&mut self, name: &str, node: &Node) {
        let p = format!("nodes.{name}");
        self.name(&p, name);
        self.template(&format!("{p}.say"), &node.say);
        if let Some(r) = &node.reprompt {
            self.template(&format!("{p}.reprompt"), r);
        }
        if let Some(pr) = &node.prompt {
            self.template(&format!("{p}.prompt"), pr);
        }
        self.items(&format!("{p}.intents"), &node.intents);
        self.items(&format!("{p}.next"), &node.next);
        self.items(&format!("{p}.on_enter"), &node.on_enter);
        self.items(&format!("{p}.on_leave"), &node.on_leave);
        if let Some(c) = &node.collect {
            self.collect(&format!("{p}.collect"), c);
        }
        let ends = node.ends();
        if ends {
            for (what, present) in [
                ("next", !node.next.is_empty()),
                ("collect", node.collect.is_some()),
                ("intents", !node.intents.is_empty()),
            ] {
                if present {
                    self.err(
                        format!("{p}.{what}"),
                        "never used: entering this node ends the call",
                    );
                }
            }
        } else if node.listens() && node.say.trim().is_empty() {
            let msg = match &node.collect {
                Some(c) => format!("the node collects \"{}\" but asks nothing", c.slot),
                None => "the node listens for intents but says nothing".into(),
            };
            self.err(format!("{p}.say"), msg);
        }
        let referenced: BTreeSet<&str> = node
            .next
            .iter()
            .filter_map(|b| b.intent.as_deref())
            .collect();
        for (i, intent) in node.intents.iter().enumerate() {
            let ip = format!("{p}.intents[{i}]");
            self.intent(&ip, intent);
            // A marking intent excuses a required slot, or feeds a branch, or sets a slot.
            if !intent.handles_turn()
                && intent.actions.is_empty()
                && node.collect.is_none()
                && !referenced.contains(intent.name.as_str())
            {
                self.err(
                    ip,
                    "does nothing: give it a say, a goto or actions, or branch on it",
                );
            }
        }
        self.duplicate_intents(&format!("{p}.intents"), &node.intents);
        for (i, b) in node.next.iter().enumerate() {
            self.branch(&format!("{p}.next[{i}]"), b, node);
        }
        for (i, a) in node.on_enter.iter().enumerate() {
            self.action(&format!("{p}.on_enter[{i}]"), a);
        }
        for (i, a) in node.on_leave.iter().enumerate() {
            let ap = format!("{p}.on_leave[{i}]");
            if a.ends() {
                self.err(
                    &ap,
                    format!(
                        "{} belongs in on_enter or an intent: leaving a node goes on",
                        a.name()
                    ),
                );
            }
            self.action(&ap, a);
        }
        if ends {
            return;
        }
        let intents_go = node
            .intents
            .iter()
            .any(|i| i.goto.is_some() || i.actions.iter().any(Action::ends));
        if node.next.is_empty() && (node.collect.is_some() || !intents_go) {
            self.err(
                format!("{p}.next"),
                "a dead end: add a branch, or an end or transfer action",
            );
        }
        if !node.listens()
            && let Some(last) = node.next.last()
            && !last.is_unconditional()
        {
            self.err(
                format!("{p}.next[{}]", node.next.len() - 1),
                "the node waits for nothing, so its last branch must have no condition",
            );
        }
    }

    fn collect(&mut self, p: &str, c: &Collect) {
        self.name(&format!("{p}.slot"), &c.slot);
        self.items(&format!("{p}.options"), &c.options);
        if c.kind == SlotKind::Choice {
            if c.options.len() < 2 {
                self.err(
                    format!("{p}.options"),
                    "a choice needs at least two options",
                );
            }
            let mut seen = BTreeSet::new();
            for (i, o) in c.options.iter().enumerate() {
                self.option(&format!("{p}.options[{i}]"), o);
                if !seen.insert(o.value.to_lowercase()) {
                    self.err(
                        format!("{p}.options[{i}].value"),
                        format!("\"{}\" is listed twice", o.value),
                    );
                }
            }
        } else if !c.options.is_empty() {
            self.err(
                format!("{p}.options"),
                format!("options are for a choice, not {}", c.kind),
            );
        }
        let numeric = matches!(c.kind, SlotKind::Number | SlotKind::Money);
        for (field, v) in [("min", c.min), ("max", c.max)] {
            if v.is_some() && !numeric {
                self.err(
                    format!("{p}.{field}"),
                    format!("min and max are for number and money, not {}", c.kind),
                );
            }
            if v.is_some_and(|v| !v.is_finite()) {
                self.err(format!("{p}.{field}"), "must be a finite number");
            }
        }
        if let (Some(lo), Some(hi)) = (c.min, c.max)
            && lo > hi
        {
            self.err(format!("{p}.max"), format!("below min ({lo})"));
        }
        if c.keypad && c.kind != SlotKind::YesNo {
            self.err(
                format!("{p}.keypad"),
                "keypad is for yes_no (1 yes, 2 no); numbers and choices always take keys",
            );
        }
    }

    fn option(&mut self, p: &str, o: &ChoiceOption) {
        if o.value.trim().is_empty() || o.value.len() > MAX_NAME {
            self.err(format!("{p}.value"), format!("1 to {MAX_NAME} characters"));
        }
        self.items(&format!("{p}.keywords"), &o.keywords);
        for (i, k) in o.keywords.iter().enumerate() {
            self.keyword(&format!("{p}.keywords[{i}]"), k);
        }
    }

    fn keyword(&mut self, p: &str, k: &str) {
        self.text(p, k);
        if Phrase::new(k).is_empty() {
            self.err(p, "no words to match");
        }
        if k.split_whitespace().filter(|w| *w == "*").count() > MAX_STARS {
            self.err(p, format!("at most {MAX_STARS} * in a phrase"));
        }
    }

    fn intent(&mut self, p: &str, intent: &Intent) {
        self.name(&format!("{p}.name"), &intent.name);
        if intent.keywords.is_empty() && intent.patterns.is_empty() && intent.digits.is_empty() {
            self.err(p, "an intent needs keywords, patterns or digits");
        }
        self.items(&format!("{p}.keywords"), &intent.keywords);
        self.items(&format!("{p}.patterns"), &intent.patterns);
        self.items(&format!("{p}.digits"), &intent.digits);
        self.items(&format!("{p}.actions"), &intent.actions);
        for (i, k) in intent.keywords.iter().enumerate() {
            self.keyword(&format!("{p}.keywords[{i}]"), k);
        }
        for (i, pat) in intent.patterns.iter().enumerate() {
            let pp = format!("{p}.patterns[{i}]");
            self.text(&pp, pat);
            match compile_pattern(pat) {
                Err(e) => {
                    let first = e
                        .to_string()
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                        .trim()
                        .to_owned();
                    self.err(pp, format!("not a regular expression: {first}"));
                }
                Ok(re) if re.is_match("") => {
                    self.err(pp, "matches anything, even silence");
                }
                Ok(_) => {}
            }
        }
        for (i, d) in intent.digits.iter().enumerate() {
            let d = d.trim();
            if d.is_empty()
                || d.len() > 20
                || !d
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                self.err(format!("{p}.digits[{i}]"), "keys are 0-9, * and #");
            }
        }
        if let Some(s) = &intent.say {
            self.template(&format!("{p}.say"), s);
        }
        if let Some(g) = &intent.goto {
            self.goto(&format!("{p}.goto"), g);
        }
        for (i, a) in intent.actions.iter().enumerate() {
            self.action(&format!("{p}.actions[{i}]"), a);
        }
    }

    fn goto(&mut self, p: &str, target: &str) {
        if !self.flow.nodes.contains_key(target) {
            self.err(p, format!("no node named \"{target}\""));
        }
    }

    fn branch(&mut self, p: &str, b: &Branch, node: &Node) {
        self.goto(&format!("{p}.goto"), &b.goto);
        let subjects = [b.intent.is_some(), b.slot.is_some(), b.field.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if subjects > 1 {
            self.err(p, "a branch tests one of intent, slot or field");
            return;
        }
        let tests =
            b.is.is_some() || b.present.is_some() || b.at_least.is_some() || b.below.is_some();
        for (field, v) in [("at_least", b.at_least), ("below", b.below)] {
            if v.is_some_and(|v| !v.is_finite()) {
                self.err(format!("{p}.{field}"), "must be a finite number");
            }
        }
        if let Some(intent) = &b.intent {
            if tests {
                self.err(
                    p,
                    "is, present, at_least and below test a slot or field, not an intent",
                );
            }
            if !node.intents.iter().any(|i| &i.name == intent) {
                self.err(
                    format!("{p}.intent"),
                    format!(
                        "no intent \"{intent}\" at this node (branches read the node's own intents)"
                    ),
                );
            }
        } else if let Some(field) = &b.field {
            if !self.known_field(field) {
                self.err(
                    format!("{p}.field"),
                    format!(
                        "unknown field \"{field}\": use {}, or lead.<field>",
                        CONTEXT_FIELDS.join(", ")
                    ),
                );
            }
            for (name, set) in [
                ("at_least", b.at_least.is_some()),
                ("below", b.below.is_some()),
            ] {
                if set {
                    self.err(
                        format!("{p}.{name}"),
                        "fields are tested with is or present",
                    );
                }
            }
        } else if let Some(slot) = &b.slot {
            self.slot_test(p, slot, b);
        } else if tests {
            self.err(p, "is, present, at_least and below need a slot or field");
        }
    }

    fn slot_test(&mut self, p: &str, slot: &str, b: &Branch) {
        let (kind, options) = match self.slots.get(slot) {
            Some(info) => (info.kind, info.options.clone()),
            None if self.set_only.contains(slot) => (SlotKind::Text, Vec::new()),
            None => {
                self.err(format!("{p}.slot"), format!("no node collects \"{slot}\""));
                return;
            }
        };
        if let Some(is) = &b.is {
            let problem = match kind {
                SlotKind::YesNo => yes_no_scalar(is)
                    .is_none()
                    .then(|| "a yes_no slot is yes or no".to_owned()),
                SlotKind::Choice => {
                    (!options.contains(&is.to_string().to_lowercase())).then(|| {
                        format!(
                            "\"{is}\" is not an option of \"{slot}\" ({})",
                            options.join(", ")
                        )
                    })
                }
                SlotKind::Text => None,
                SlotKind::Number | SlotKind::Money => {
                    (!matches!(is, Scalar::Number(_))).then(|| format!("a {kind} slot is a number"))
                }
                SlotKind::Timeline => {
                    (!matches!(is, Scalar::Text(t) if t == "urgent" || t == "not_urgent"))
                        .then(|| "a timeline is urgent or not_urgent".to_owned())
                }
                SlotKind::Date | SlotKind::Time | SlotKind::Datetime => {
                    Some(format!("a {kind} slot is tested with present only"))
                }
            };
            if let Some(msg) = problem {
                self.err(format!("{p}.is"), msg);
            }
        }
        let ordered = matches!(
            kind,
            SlotKind::Number | SlotKind::Money | SlotKind::Timeline
        );
        for (name, set) in [
            ("at_least", b.at_least.is_some()),
            ("below", b.below.is_some()),
        ] {
            if set && !ordered {
                self.err(
                    format!("{p}.{name}"),
                    format!("\"{slot}\" is a {kind} slot: at_least and below test number, money and timeline"),
                );
            }
        }
    }

    /// A slot an action reads must be collected as a datetime.
    fn datetime_slot(&mut self, p: &str, slot: &str) {
        match self.slots.get(slot) {
            Some(info) if info.kind == SlotKind::Datetime => {}
            Some(info) => {
                let msg = format!("\"{slot}\" is a {} slot, not a datetime", info.kind);
                self.err(p, msg);
            }
            None => self.err(p, format!("no node collects \"{slot}\"")),
        }
    }

    fn action(&mut self, p: &str, a: &Action) {
        let p = format!("{p}.{}", a.name());
        match a {
            Action::Qualify => {}
            Action::Book(b) => {
                if b.title.trim().is_empty() {
                    self.err(format!("{p}.title"), "a booking needs a title");
                }
                self.template(&format!("{p}.title"), &b.title);
                if !DURATION_MINUTES.contains(&b.duration_minutes) {
                    self.err(
                        format!("{p}.duration_minutes"),
                        format!(
                            "between {} and {}",
                            DURATION_MINUTES.start(),
                            DURATION_MINUTES.end()
                        ),
                    );
                }
                self.datetime_slot(&format!("{p}.slot"), &b.slot);
            }
            Action::Transfer(t) => {
                if t.reason.trim().is_empty() {
                    self.err(format!("{p}.reason"), "a transfer needs a reason");
                }
                self.text(&format!("{p}.reason"), &t.reason);
            }
            Action::End(e) => {
                if let Some(o) = &e.outcome {
                    self.name(&format!("{p}.outcome"), o);
                }
            }
            Action::SendConfirmation(s) => {
                if let Some(m) = &s.message {
                    self.template(&format!("{p}.message"), m);
                }
                self.datetime_slot(&format!("{p}.slot"), &s.slot);
            }
            Action::Callback(c) => self.datetime_slot(&format!("{p}.slot"), &c.slot),
            Action::Set(s) => {
                self.name(&format!("{p}.slot"), &s.slot);
                let problem = match self.slots.get(&s.slot) {
                    None => None,
                    Some(info) => match info.kind {
                        SlotKind::YesNo => yes_no_scalar(&s.value)
                            .is_none()
                            .then(|| "yes or no".to_owned()),
                        SlotKind::Choice => {
                            (!info.options.contains(&s.value.to_string().to_lowercase()))
                                .then(|| format!("one of {}", info.options.join(", ")))
                        }
                        SlotKind::Number | SlotKind::Money => {
                            (!matches!(s.value, Scalar::Number(_))).then(|| "a number".to_owned())
                        }
                        SlotKind::Text => None,
                        other => Some(format!("a {other} slot cannot be set")),
                    },
                };
                if let Some(msg) = problem {
                    self.err(format!("{p}.value"), msg);
                }
            }
        }
    }

    /// Every node must be reachable from the start (or from the flow's intents and
    /// fallback, which apply anywhere).
    fn reachability(&mut self) {
        let flow = self.flow;
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = vec![flow.start.as_str()];
        todo.extend(flow.fallback.as_deref());
        todo.extend(flow.intents.iter().filter_map(|i| i.goto.as_deref()));
        while let Some(n) = todo.pop() {
            let Some(node) = flow.nodes.get(n) else {
                continue;
            };
            if !seen.insert(n) {
                continue;
            }
            todo.extend(node.next.iter().map(|b| b.goto.as_str()));
            todo.extend(node.intents.iter().filter_map(|i| i.goto.as_deref()));
        }
        if !flow.nodes.contains_key(&flow.start) {
            return;
        }
        for name in flow.nodes.keys() {
            if !seen.contains(name.as_str()) {
                self.err(
                    format!("nodes.{name}"),
                    format!("never reached from the start node \"{}\"", flow.start),
                );
            }
        }
    }

    /// Nodes that wait for nothing route on at once; a loop of them would never stop.
    fn routing_loops(&mut self) {
        let flow = self.flow;
        let routes = |n: &Node| !n.listens() && !n.ends();
        let mut reported = BTreeSet::new();
        for (name, node) in &flow.nodes {
            if !routes(node) || reported.contains(name.as_str()) {
                continue;
            }
            // Depth-first from this node through routing nodes only.
            let mut stack: Vec<(&str, Vec<&str>)> = vec![(name.as_str(), vec![name.as_str()])];
            let mut visited = BTreeSet::new();
            while let Some((at, path)) = stack.pop() {
                if !visited.insert(at) {
                    continue;
                }
                let Some(n) = flow.nodes.get(at) else {
                    continue;
                };
                for b in &n.next {
                    let Some(t) = flow.nodes.get(&b.goto) else {
                        continue;
                    };
                    if !routes(t) {
                        continue;
                    }
                    if b.goto == *name {
                        let mut cycle = path.clone();
                        cycle.push(name);
                        reported.extend(path.iter().copied());
                        self.err(
                            format!("nodes.{name}.next"),
                            format!(
                                "nodes that wait for nothing route in a loop: {}",
                                cycle.join(" → ")
                            ),
                        );
                        stack.clear();
                        break;
                    }
                    let mut next_path = path.clone();
                    next_path.push(b.goto.as_str());
                    stack.push((b.goto.as_str(), next_path));
                }
            }
        }
    }
}
