//! Scripted flows: parsing (YAML and JSON alike), validation errors that name the node
//! and field, templates, and the engine's rules (misses, the graceful exit, keypad
//! answers, intents, limits) on small flows written for each rule.

use chrono::{NaiveDate, NaiveDateTime};
use parley_shared::flow::{
    Action, Branch, ChoiceOption, Context, End, FiredAction, Flow, FlowRun, Heard, Industry,
    Intent, Node, Scalar, SlotValue, ToolName, TransferMode, render,
};

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

// ---------------------------------------------------------------------------------
// Parsing

/// Every form the format allows, once in YAML and once in JSON.
const EVERY_FORM_YAML: &str = r#"
name: Every form
start: greet
max_misunderstandings: 2
max_turns: 12
fallback: human
prompt: Be brief.
intents:
  - name: hours
    keywords: ["opening hours", "when * open"]
    patterns: ['\bclose\b']
    digits: ["9"]
    say: We open at nine.
nodes:
  greet:
    say: Hi {lead_name}. Buy or rent?
    reprompt: Buy or rent?
    prompt: Ask buy or rent.
    tools: [save_slot, check_availability]
    collect:
      slot: plan
      kind: choice
      options:
        - buy
        - value: rent
          keywords: [renting, lease]
    intents:
      - name: browsing
        keywords: [just looking]
        actions:
          - set: { slot: plan, value: buy }
    next:
      - { intent: browsing, goto: when }
      - { slot: plan, is: rent, goto: when }
      - { field: direction, is: outbound, goto: when }
      - goto: when
  when:
    say: When?
    collect: { slot: appointment_time, kind: datetime, required: false }
    next:
      - { slot: appointment_time, present: true, goto: booked }
      - goto: human
  booked:
    say: Booked for {appointment_time}.
    on_enter:
      - qualify
      - book: { title: Viewing, duration_minutes: 45, kind: video }
      - send_confirmation: { channel: whatsapp, message: "See you {appointment_time}." }
      - callback: { slot: appointment_time }
      - end: { outcome: booked }
  human:
    say: One moment.
    on_enter:
      - transfer: { mode: cold, reason: stuck }
"#;

const EVERY_FORM_JSON: &str = r#"{
  "name": "Every form",
  "start": "greet",
  "max_misunderstandings": 2,
  "max_turns": 12,
  "fallback": "human",
  "prompt": "Be brief.",
  "intents": [
    {"name": "hours", "keywords": ["opening hours", "when * open"], "patterns": ["\\bclose\\b"],
     "digits": ["9"], "say": "We open at nine."}
  ],
  "nodes": {
    "greet": {
      "say": "Hi {lead_name}. Buy or rent?",
      "reprompt": "Buy or rent?",
      "prompt": "Ask buy or rent.",
      "tools": ["save_slot", "check_availability"],
      "collect": {"slot": "plan", "kind": "choice",
                  "options": ["buy", {"value": "rent", "keywords": ["renting", "lease"]}]},
      "intents": [{"name": "browsing", "keywords": ["just looking"],
                   "actions": [{"set": {"slot": "plan", "value": "buy"}}]}],
      "next": [
        {"intent": "browsing", "goto": "when"},
        {"slot": "plan", "is": "rent", "goto": "when"},
        {"field": "direction", "is": "outbound", "goto": "when"},
        {"goto": "when"}
      ]
    },
    "when": {
      "say": "When?",
      "collect": {"slot": "appointment_time", "kind": "datetime", "required": false},
      "next": [{"slot": "appointment_time", "present": true, "goto": "booked"}, {"goto": "human"}]
    },
    "booked": {
      "say": "Booked for {appointment_time}.",
      "on_enter": [
        "qualify",
        {"book": {"title": "Viewing", "duration_minutes": 45, "kind": "video"}},
        {"send_confirmation": {"channel": "whatsapp", "message": "See you {appointment_time}."}},
        {"callback": {"slot": "appointment_time"}},
        {"end": {"outcome": "booked"}}
      ]
    },
    "human": {
      "say": "One moment.",
      "on_enter": [{"transfer": {"mode": "cold", "reason": "stuck"}}]
    }
  }
}"#;

#[test]
fn yaml_and_json_give_the_same_flow() {
    let yaml = Flow::parse_yaml(EVERY_FORM_YAML).unwrap();
    let json = Flow::parse_json(EVERY_FORM_JSON).unwrap();
    assert_eq!(yaml, json);
    // The forms were read, not defaulted.
    assert_eq!(yaml.max_misunderstandings, 2);
    let greet = &yaml.nodes["greet"];
    let options = &greet.collect.as_ref().unwrap().options;
    assert_eq!(options[0], ChoiceOption::new("buy"));
    assert_eq!(options[1].keywords, ["renting", "lease"]);
    assert_eq!(
        greet.tools,
        [ToolName::SaveSlot, ToolName::CheckAvailability]
    );
    let booked = &yaml.nodes["booked"].on_enter;
    assert_eq!(booked.len(), 5);
    assert_eq!(booked[0], Action::Qualify);
    assert_eq!(
        booked[4],
        Action::End(End {
            outcome: Some("booked".into())
        })
    );
    assert!(!yaml.nodes["when"].collect.as_ref().unwrap().required);
    // What the API would return as JSON reads back as the same flow.
    let written = serde_json::to_string(&yaml).unwrap();
    assert_eq!(Flow::parse_json(&written).unwrap(), yaml);
}

#[test]
fn fieldless_actions_take_every_spelling() {
    let doc = |actions: &str| {
        format!("name: x\nstart: a\nnodes:\n  a:\n    say: Bye.\n    on_enter: {actions}\n")
    };
    for actions in [
        "[qualify, end]",
        "[qualify: null, end: null]",
        "[{qualify: {}}, {end: {}}]",
    ] {
        let flow = Flow::parse_yaml(&doc(actions)).unwrap();
        assert_eq!(
            flow.nodes["a"].on_enter,
            [Action::Qualify, Action::End(End::default())],
            "{actions}"
        );
    }
}

#[test]
fn parse_errors_name_the_field_path() {
    let node = |body: &str| format!("name: x\nstart: a\nnodes:\n  a:\n    say: hi\n{body}");
    let cases: Vec<(String, &str, &str)> = vec![
        (
            node("    colect: {slot: s, kind: text}\n"),
            "nodes.a.colect",
            "unknown field `colect`",
        ),
        (
            node("    collect: {slot: s, kind: yesno}\n"),
            "nodes.a.collect.kind",
            "unknown variant `yesno`",
        ),
        (
            node("    on_enter: [bok]\n"),
            "nodes.a.on_enter[0]",
            "unknown variant `bok`",
        ),
        (
            node("    on_enter: [book]\n"),
            "nodes.a.on_enter[0]",
            "`book` needs its fields",
        ),
        (
            node(
                "    on_enter:\n      - book: {title: t, duration_minutes: thirty, kind: phone}\n",
            ),
            "nodes.a.on_enter[0].book.duration_minutes",
            "invalid type",
        ),
        (
            node("    on_enter:\n      - {end: {}, qualify: null}\n"),
            "nodes.a.on_enter[0]",
            "one key",
        ),
        (
            node("    collect: {slot: s, kind: choice, options: [a, {value: b, keywordz: [x]}]}\n"),
            "nodes.a.collect.options[1].keywordz",
            "unknown field `keywordz`",
        ),
        (
            node("    next:\n      - {slot: s, is: yes}\n"),
            "nodes.a.next[0]",
            "missing field `goto`",
        ),
        (
            node("    tools: [book_appointment, fly]\n"),
            "nodes.a.tools[1]",
            "unknown variant `fly`",
        ),
        (
            node("  a:\n    say: again\n"),
            "nodes",
            "two nodes are named \"a\"",
        ),
        (
            "name: x\nstart: a\nnodez: {}\n".into(),
            "nodez",
            "unknown field `nodez`",
        ),
    ];
    for (doc, path, fragment) in cases {
        let errors = Flow::parse_yaml(&doc).unwrap_err().errors;
        assert_eq!(errors.len(), 1, "{doc}: {errors:?}");
        assert_eq!(errors[0].path, path, "{doc}: {errors:?}");
        assert!(errors[0].message.contains(fragment), "{doc}: {errors:?}");
        // The path is said once, in `path`, not again at the start of the message.
        assert!(!errors[0].message.starts_with("nodes"), "{errors:?}");
    }
    let errors = Flow::parse_json(
        r#"{"name":"x","start":"a","nodes":{"a":{"say":"hi","next":[{"slot":"s"}]}}}"#,
    )
    .unwrap_err()
    .errors;
    assert_eq!(errors[0].path, "nodes.a.next[0]");
    assert!(errors[0].message.contains("missing field `goto`"));
    let huge = format!(
        "name: x\nstart: a\nnodes:\n  a:\n    say: \"{}\"\n",
        "a".repeat(600 * 1024)
    );
    let errors = Flow::parse_yaml(&huge).unwrap_err().errors;
    assert_eq!(errors[0].path, "");
    assert!(errors[0].message.contains("at most"));
}

// ---------------------------------------------------------------------------------
// Validation

const BASE: &str = r#"
name: Base
start: greet
nodes:
  greet:
    say: Hi {lead_name}. Buy or rent?
    collect:
      slot: plan
      kind: choice
      options: [buy, rent]
    next:
      - goto: budget
  budget:
    say: What budget?
    collect: { slot: budget, kind: money }
    next:
      - { slot: budget, at_least: 100000, goto: when }
      - goto: bye
  when:
    say: When?
    collect: { slot: appointment_time, kind: datetime }
    next:
      - goto: booked
  booked:
    say: Booked for {appointment_time}.
    on_enter:
      - book: { title: Viewing, duration_minutes: 30, kind: in_person }
      - end: { outcome: booked }
  bye:
    say: Bye.
    on_enter: [end]
"#;

fn base() -> Flow {
    Flow::parse_yaml(BASE).unwrap()
}

fn node<'f>(flow: &'f mut Flow, name: &str) -> &'f mut Node {
    flow.nodes.get_mut(name).unwrap()
}

fn ends() -> Node {
    Node {
        say: "Bye.".into(),
        on_enter: vec![Action::End(End::default())],
        ..Node::default()
    }
}

fn routes_to(target: &str) -> Node {
    Node {
        next: vec![Branch {
            goto: target.into(),
            ..Branch::default()
        }],
        ..Node::default()
    }
}

fn slot_branch(slot: &str, goto: &str) -> Branch {
    Branch {
        slot: Some(slot.into()),
        goto: goto.into(),
        ..Branch::default()
    }
}

type Break = fn(&mut Flow);

/// Nodes a conversation can reach: from the start, the fallback and the flow's intents,
/// through branches and intents' gotos.
fn reachable(flow: &Flow) -> std::collections::BTreeSet<&str> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<&str> = vec![flow.start.as_str()];
    todo.extend(flow.fallback.as_deref());
    todo.extend(flow.intents.iter().filter_map(|i| i.goto.as_deref()));
    while let Some(name) = todo.pop() {
        let Some(node) = flow.nodes.get(name) else {
            continue;
        };
        if seen.insert(name) {
            todo.extend(node.next.iter().map(|b| b.goto.as_str()));
            todo.extend(node.intents.iter().filter_map(|i| i.goto.as_deref()));
        }
    }
    seen
}

#[test]
fn the_base_flow_and_every_shipped_flow_validate() {
    assert_eq!(base().validate(), Ok(()));
    for (industry, name, start, nodes) in [
        (Industry::RealEstate, "Real estate assistant", "start", 17),
        (
            Industry::GuestRelations,
            "Guest relations and feedback",
            "start",
            12,
        ),
        (Industry::Appointments, "Appointment reception", "greet", 6),
        (
            Industry::LeadQualification,
            "Lead qualification",
            "start",
            19,
        ),
    ] {
        let flow =
            Flow::parse_yaml(industry.source()).unwrap_or_else(|e| panic!("{industry:?}: {e}"));
        // The shipped flow is the one written for the industry, whole.
        let shipped = Flow::default_for(industry);
        assert_eq!(
            (
                shipped.name.as_str(),
                shipped.start.as_str(),
                shipped.nodes.len()
            ),
            (name, start, nodes),
            "{industry:?}"
        );
        assert!(shipped.nodes.contains_key(&shipped.start), "{industry:?}");
        let reached = reachable(&shipped);
        let all: std::collections::BTreeSet<&str> =
            shipped.nodes.keys().map(String::as_str).collect();
        assert_eq!(reached, all, "{industry:?}: nodes never reached");
        assert_eq!(shipped.validate(), Ok(()), "{industry:?}");
        // Written for speech: no markup in anything the agent says, fields filled.
        let filled = |_: &str| Some("Sam".to_string());
        for (name, node) in &flow.nodes {
            for text in [Some(&node.say), node.reprompt.as_ref()]
                .into_iter()
                .flatten()
            {
                let line = render(text, &filled);
                assert!(
                    !line.contains(['{', '}', '*', '#', '<', '>', '[', ']', '_', '\n']),
                    "{industry:?} {name}: {line:?}"
                );
            }
        }
    }
}

#[test]
fn validation_errors_name_the_node_and_field_for_each_rule() {
    let cases: Vec<(&str, Break, &str, &str)> = vec![
        (
            "unknown goto",
            |f| node(f, "budget").next[1].goto = "timelin".into(),
            "nodes.budget.next[1].goto",
            "no node named \"timelin\"",
        ),
        (
            "missing start",
            |f| f.start = "welcome".into(),
            "start",
            "no node named \"welcome\"",
        ),
        (
            "missing fallback",
            |f| f.fallback = Some("nowhere".into()),
            "fallback",
            "no node named \"nowhere\"",
        ),
        (
            "a slot with two kinds",
            |f| node(f, "when").collect.as_mut().unwrap().slot = "budget".into(),
            "nodes.when.collect.kind",
            "slot \"budget\" is collected as money at node \"budget\"",
        ),
        (
            "a branch on a slot never collected",
            |f| node(f, "budget").next[0].slot = Some("budgt".into()),
            "nodes.budget.next[0].slot",
            "no node collects \"budgt\"",
        ),
        (
            "a choice with no options",
            |f| node(f, "greet").collect.as_mut().unwrap().options.clear(),
            "nodes.greet.collect.options",
            "at least two options",
        ),
        (
            "an option twice",
            |f| node(f, "greet").collect.as_mut().unwrap().options[1] = ChoiceOption::new("Buy"),
            "nodes.greet.collect.options[1].value",
            "listed twice",
        ),
        (
            "a dead end",
            |f| node(f, "when").next.clear(),
            "nodes.when.next",
            "dead end",
        ),
        (
            "an unreachable node",
            |f| {
                f.nodes.insert("orphan".into(), ends());
            },
            "nodes.orphan",
            "never reached from the start node \"greet\"",
        ),
        (
            "a collecting node that asks nothing",
            |f| node(f, "budget").say = " ".into(),
            "nodes.budget.say",
            "collects \"budget\" but asks nothing",
        ),
        (
            "too many nodes",
            |f| {
                for i in 0..200 {
                    f.nodes.insert(format!("n{i}"), ends());
                }
            },
            "nodes",
            "at most 200 nodes (found 205)",
        ),
        (
            "a text over 4 KiB",
            |f| node(f, "greet").say = "a".repeat(5000),
            "nodes.greet.say",
            "at most 4096 bytes",
        ),
        (
            "a node name with capitals",
            |f| {
                let bye = f.nodes.remove("bye").unwrap();
                f.nodes.insert("Bye".into(), bye);
                node(f, "budget").next[1].goto = "Bye".into();
            },
            "nodes.Bye",
            "\"Bye\" is not a name",
        ),
        (
            "an unknown template field",
            |f| node(f, "greet").say = "Hi {lead_nam}".into(),
            "nodes.greet.say",
            "unknown field {lead_nam}",
        ),
        (
            "an unclosed brace",
            |f| node(f, "greet").say = "Hi {lead_name".into(),
            "nodes.greet.say",
            "never closed",
        ),
        (
            "a pattern that is not a regular expression",
            |f| {
                f.intents.push(Intent {
                    name: "x".into(),
                    patterns: vec!["(unclosed".into()],
                    say: Some("Ok.".into()),
                    ..Intent::default()
                })
            },
            "intents[0].patterns[0]",
            "not a regular expression",
        ),
        (
            "a pattern that matches silence",
            |f| {
                f.intents.push(Intent {
                    name: "x".into(),
                    patterns: vec![".*".into()],
                    say: Some("Ok.".into()),
                    ..Intent::default()
                })
            },
            "intents[0].patterns[0]",
            "matches anything",
        ),
        (
            "an intent with nothing to hear",
            |f| {
                f.intents.push(Intent {
                    name: "x".into(),
                    say: Some("Ok.".into()),
                    ..Intent::default()
                })
            },
            "intents[0]",
            "needs keywords, patterns or digits",
        ),
        (
            "a keyword of punctuation",
            |f| {
                f.intents.push(Intent {
                    name: "x".into(),
                    keywords: vec!["?!".into()],
                    say: Some("Ok.".into()),
                    ..Intent::default()
                })
            },
            "intents[0].keywords[0]",
            "no words to match",
        ),
        (
            "a booking of a money slot",
            |f| {
                if let Action::Book(b) = &mut node(f, "booked").on_enter[0] {
                    b.slot = "budget".into();
                }
            },
            "nodes.booked.on_enter[0].book.slot",
            "\"budget\" is a money slot, not a datetime",
        ),
        (
            "a booking too long",
            |f| {
                if let Action::Book(b) = &mut node(f, "booked").on_enter[0] {
                    b.duration_minutes = 600;
                }
            },
            "nodes.booked.on_enter[0].book.duration_minutes",
            "between 5 and 480",
        ),
        (
            "an is that is no option",
            |f| {
                node(f, "greet").next.insert(
                    0,
                    Branch {
                        is: Some(Scalar::Text("lease".into())),
                        ..slot_branch("plan", "budget")
                    },
                )
            },
            "nodes.greet.next[0].is",
            "\"lease\" is not an option of \"plan\" (buy, rent)",
        ),
        (
            "at_least on a choice",
            |f| {
                node(f, "greet").next.insert(
                    0,
                    Branch {
                        at_least: Some(3.0),
                        ..slot_branch("plan", "budget")
                    },
                )
            },
            "nodes.greet.next[0].at_least",
            "at_least and below test number, money and timeline",
        ),
        (
            "a branch on an intent the node lacks",
            |f| node(f, "greet").next[0].intent = Some("yes".into()),
            "nodes.greet.next[0].intent",
            "no intent \"yes\" at this node",
        ),
        (
            "a branch testing two things",
            |f| {
                node(f, "greet").next.insert(
                    0,
                    Branch {
                        field: Some("direction".into()),
                        ..slot_branch("plan", "budget")
                    },
                )
            },
            "nodes.greet.next[0]",
            "one of intent, slot or field",
        ),
        (
            "a routing loop",
            |f| {
                f.nodes.insert("r1".into(), routes_to("r2"));
                f.nodes.insert("r2".into(), routes_to("r1"));
                node(f, "greet").next[0].goto = "r1".into();
            },
            "nodes.r1.next",
            "route in a loop: r1 → r2 → r1",
        ),
        (
            "a routing node whose last branch has a condition",
            |f| {
                f.nodes.insert(
                    "route".into(),
                    Node {
                        next: vec![slot_branch("budget", "bye")],
                        ..Node::default()
                    },
                );
                node(f, "budget").next[1].goto = "route".into();
            },
            "nodes.route.next[0]",
            "last branch must have no condition",
        ),
        (
            "an end on leaving",
            |f| node(f, "greet").on_leave.push(Action::End(End::default())),
            "nodes.greet.on_leave[0]",
            "end belongs in on_enter",
        ),
        (
            "branches after the end",
            |f| {
                node(f, "booked")
                    .next
                    .push(routes_to("bye").next[0].clone())
            },
            "nodes.booked.next",
            "never used: entering this node ends the call",
        ),
        (
            "keypad on money",
            |f| node(f, "budget").collect.as_mut().unwrap().keypad = true,
            "nodes.budget.collect.keypad",
            "keypad is for yes_no",
        ),
        (
            "a set outside a choice's options",
            |f| {
                node(f, "greet").intents.push(Intent {
                    name: "lease".into(),
                    keywords: vec!["lease".into()],
                    goto: Some("budget".into()),
                    actions: vec![Action::Set(parley_shared::flow::Set {
                        slot: "plan".into(),
                        value: Scalar::Text("lease".into()),
                    })],
                    ..Intent::default()
                })
            },
            "nodes.greet.intents[0].actions[0].set.value",
            "one of buy, rent",
        ),
        (
            "no misunderstanding allowed",
            |f| f.max_misunderstandings = 0,
            "max_misunderstandings",
            "between 1 and 10",
        ),
    ];
    for (what, break_it, path, fragment) in cases {
        let mut flow = base();
        break_it(&mut flow);
        let errors = flow.validate().unwrap_err().errors;
        assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(fragment)),
            "{what}: expected {path}: {fragment}, got {errors:#?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once_and_serialises_for_the_api() {
    let mut flow = base();
    node(&mut flow, "budget").next[1].goto = "timelin".into();
    node(&mut flow, "greet").say = "Hi {lead_nam}".into();
    flow.nodes.insert("orphan".into(), ends());
    let err = flow.validate().unwrap_err();
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    // The goto no longer reaching "bye" leaves it unreachable too.
    assert_eq!(
        paths,
        [
            "nodes.budget.next[1].goto",
            "nodes.greet.say",
            "nodes.bye",
            "nodes.orphan"
        ]
    );
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["errors"][0]["path"], "nodes.budget.next[1].goto");
    assert_eq!(json["errors"][0]["message"], "no node named \"timelin\"");
    assert!(err.to_string().contains("nodes.orphan: never reached"));
    // And through the parser: a document with the same problems is refused with them.
    let doc = BASE
        .replace("goto: bye", "goto: byee")
        .replace("{lead_name}", "{lead_nam}");
    let paths: Vec<String> = Flow::parse_yaml(&doc)
        .unwrap_err()
        .errors
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(
        paths.contains(&"nodes.budget.next[1].goto".to_string()),
        "{paths:?}"
    );
    assert!(paths.contains(&"nodes.greet.say".to_string()), "{paths:?}");
    assert!(paths.contains(&"nodes.bye".to_string()), "{paths:?}");
}

// ---------------------------------------------------------------------------------
// Templates

#[test]
fn templates_fill_fields_and_tidy_around_missing_ones() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "Hi {lead_name}, this is {agent_name}.",
            &[("agent_name", "Riley")],
            "Hi, this is Riley.",
        ),
        (
            "Hi {lead_name}, this is {agent_name}.",
            &[("lead_name", "Sam"), ("agent_name", "Riley")],
            "Hi Sam, this is Riley.",
        ),
        ("Hello, {lead_name}.", &[], "Hello."),
        (
            "{lead_name}, welcome to {tenant_name}!",
            &[("tenant_name", "Acme")],
            "Welcome to Acme!",
        ),
        ("Thanks {lead_name}!", &[], "Thanks!"),
        ("Dear {lead_name} {lead.surname}, hi", &[], "Dear, hi"),
        ("Call {x} now", &[], "Call now"),
        ("Thanks, {lead_name}", &[], "Thanks"),
        ("Bye {lead_name}", &[("lead_name", "  ")], "Bye"),
        ("{a}{b}", &[], ""),
        (
            "From {lead.city} with love",
            &[("lead.city", "Pune")],
            "From Pune with love",
        ),
        (
            "{{literal}} and {lead_name}",
            &[("lead_name", "Sam")],
            "{literal} and Sam",
        ),
        // A value is inserted as it is, never rendered again.
        (
            "Hi {lead_name}",
            &[("lead_name", "{agent_name}")],
            "Hi {agent_name}",
        ),
        // Not placeholders: kept as written.
        ("Hi {Bad Name} {unclosed", &[], "Hi {Bad Name} {unclosed"),
    ];
    for (template, fields, want) in cases {
        let lookup = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        };
        assert_eq!(render(template, &lookup), *want, "{template}");
    }
}

#[test]
fn garbage_templates_never_panic() {
    let some = |name: &str| name.len().is_multiple_of(2).then(|| "x".to_string());
    for t in [
        "",
        "{",
        "}",
        "{{{",
        "}}}",
        "{}",
        "{é}",
        "ü{lead_name}ü",
        "{\u{1F600}",
        "{a}}{{b}",
        "{{{a}}}",
        &format!("{{{}}}", "a".repeat(100)),
        &"{".repeat(1000),
        &"{a}".repeat(1000),
    ] {
        let out = render(t, &some);
        assert!(out.len() <= t.len() * 2 + 8, "{t}");
    }
}

// ---------------------------------------------------------------------------------
// The engine's rules, on a small flow

const MECHANICS: &str = r#"
name: Mechanics
start: ask
max_misunderstandings: 2
max_turns: 6
prompt: You are {agent_name}.
intents:
  - name: hours
    patterns: ['\bopen(ing)? hours\b', '\bwhat time do you (open|close)\b']
    say: We're open nine to five.
  # Replaces the built-in `human` (and so its phrases).
  - name: human
    keywords: [front desk]
    say: Putting you through to the desk.
    actions:
      - transfer: { mode: cold, reason: desk }
nodes:
  ask:
    say: Pick a number from one to ten.
    reprompt: A number from one to ten, please.
    prompt: Ask for a number.
    tools: [save_slot]
    collect: { slot: n, kind: number, min: 1, max: 10 }
    next:
      - { slot: n, at_least: 5, goto: big }
      - goto: small
  big:
    say: Big {n}. Yes or no? Press 1 or 2.
    collect: { slot: ok, kind: yes_no, keypad: true }
    next:
      - { slot: ok, is: yes, goto: done }
      - goto: small
  small:
    say: Small. Say yes or no.
    collect: { slot: ok, kind: yes_no }
    next:
      - goto: done
  done:
    say: Done.
    on_enter: [end]
"#;

fn mechanics() -> (FlowRun, Vec<String>) {
    let flow = Flow::parse_yaml(MECHANICS).unwrap();
    let (run, step) = FlowRun::start(flow, Context::new(now()).with("agent_name", "Riley"));
    (run, step.say)
}

fn say(run: &mut FlowRun, text: &str) -> parley_shared::flow::Step {
    run.hear(&Heard::said(text), now())
}

fn keys(run: &mut FlowRun, digits: &str) -> parley_shared::flow::Step {
    run.hear(&Heard::keys(digits), now())
}

#[test]
fn a_miss_reprompts_and_repeated_misses_end_in_a_transfer() {
    let (mut run, opening) = mechanics();
    assert_eq!(opening, ["Pick a number from one to ten."]);
    let step = say(&mut run, "blah blah");
    assert_eq!(
        step.say,
        [
            "Sorry, I didn't catch that.",
            "A number from one to ten, please."
        ]
    );
    assert!(!step.understood && !step.ended && step.actions.is_empty());
    assert_eq!(run.misunderstood_in_a_row(), 1);
    // Out of the node's range is a miss too.
    let step = say(&mut run, "eleven");
    assert!(!step.understood);
    assert!(
        step.say[0].contains("trouble understanding"),
        "{:?}",
        step.say
    );
    assert_eq!(
        step.actions,
        [FiredAction::Transfer {
            mode: TransferMode::Warm,
            reason: "not_understood".into()
        }]
    );
    assert!(step.ended && run.ended());
    // Nothing more is heard.
    let after = say(&mut run, "seven");
    assert!(after.say.is_empty() && after.actions.is_empty() && after.ended && !after.understood);
}

#[test]
fn a_copy_of_a_run_takes_a_turn_back() {
    let (mut run, _) = mechanics();
    say(&mut run, "seven");
    let before = run.clone();
    let step = say(&mut run, "hmm");
    assert!(!step.understood);
    assert_eq!((run.misunderstood_in_a_row(), run.turns()), (1, 2));
    // The copy kept the state from before the turn; the same turn again plays the same.
    assert_eq!(
        (
            before.node(),
            before.misunderstood_in_a_row(),
            before.turns()
        ),
        ("big", 0, 1)
    );
    let mut again = before.clone();
    assert_eq!(say(&mut again, "hmm"), step);
    // The copy and the run go their own ways.
    let mut other = before;
    let yes = keys(&mut other, "1");
    assert!(yes.ended && other.ended() && !run.ended());
    assert_eq!(other.slots()["ok"], SlotValue::YesNo { value: true });
    assert!(!run.slots().contains_key("ok"));
    // The flow's own intents and the built-ins still answer in every copy.
    let hours = say(&mut again, "what are your opening hours");
    assert_eq!(hours.say[0], "We're open nine to five.");
    let emergency = say(&mut run, "there's a fire");
    assert_eq!(
        emergency.actions,
        [FiredAction::Transfer {
            mode: TransferMode::Cold,
            reason: "emergency".into()
        }]
    );
    // What a host checks to know the call is over.
    assert!(yes.actions.iter().any(FiredAction::ends));
    assert!(emergency.actions.iter().all(FiredAction::ends));
    let qualify = FiredAction::Qualify {
        slots: Default::default(),
    };
    assert!(!qualify.ends());
}

#[test]
fn the_fallback_node_takes_the_graceful_exit_when_there_is_one() {
    let doc = MECHANICS.replace("max_turns: 6\n", "max_turns: 6\nfallback: callback\n")
        + "  callback:\n    say: Someone will call you back.\n    on_enter:\n      - end: { outcome: callback_requested }\n";
    let flow = Flow::parse_yaml(&doc).unwrap();
    let (mut run, _) = FlowRun::start(flow, Context::new(now()));
    say(&mut run, "purple");
    let step = say(&mut run, "no idea");
    assert_eq!(step.say, ["Someone will call you back."]);
    assert_eq!(
        step.actions,
        [FiredAction::End {
            outcome: Some("callback_requested".into())
        }]
    );
    assert_eq!(run.node(), "callback");
}

#[test]
fn an_understood_turn_resets_the_misses() {
    let (mut run, _) = mechanics();
    say(&mut run, "purple");
    assert_eq!(run.misunderstood_in_a_row(), 1);
    let step = say(&mut run, "seven");
    assert!(step.understood);
    assert_eq!(step.say, ["Big 7. Yes or no? Press 1 or 2."]);
    assert_eq!(run.misunderstood_in_a_row(), 0);
    let step = say(&mut run, "maybe");
    assert_eq!(
        step.say[0], "Sorry, I didn't catch that.",
        "a first miss again, not a second"
    );
    assert!(!step.ended);
    assert_eq!(run.slots()["n"], SlotValue::Number { value: 7.0 });
}

#[test]
fn keys_answer_numbers_always_and_yes_no_only_where_the_node_says_so() {
    let (mut run, _) = mechanics();
    let step = keys(&mut run, "3");
    assert_eq!(step.say, ["Small. Say yes or no."]);
    // This node takes no keys for yes/no: 1 is a miss here.
    let step = keys(&mut run, "1");
    assert!(!step.understood);
    assert_eq!(run.node(), "small");

    let (mut run, _) = mechanics();
    keys(&mut run, "8");
    assert_eq!(run.node(), "big");
    let step = keys(&mut run, "1");
    assert_eq!(step.say, ["Done."]);
    assert_eq!(step.actions, [FiredAction::End { outcome: None }]);
    assert_eq!(run.slots()["ok"], SlotValue::YesNo { value: true });
}

#[test]
fn a_pattern_intent_answers_an_aside_and_asks_again() {
    let (mut run, _) = mechanics();
    let step = say(&mut run, "Sorry, what are your opening hours?");
    assert_eq!(
        step.say,
        [
            "We're open nine to five.",
            "A number from one to ten, please."
        ]
    );
    assert!(step.understood);
    assert_eq!(run.node(), "ask");
    assert_eq!(run.misunderstood_in_a_row(), 0);
}

#[test]
fn a_flow_intent_replaces_the_builtin_of_the_same_name() {
    let (mut run, _) = mechanics();
    // The built-in phrases for a person are gone with it...
    let step = say(&mut run, "can I speak to a real person");
    assert!(!step.understood && step.actions.is_empty());
    // ...and the flow's own are heard.
    let step = say(&mut run, "the front desk please");
    assert_eq!(step.say, ["Putting you through to the desk."]);
    assert_eq!(
        step.actions,
        [FiredAction::Transfer {
            mode: TransferMode::Cold,
            reason: "desk".into()
        }]
    );
    assert!(step.ended);
}

#[test]
fn builtin_triggers_reach_every_flow_and_respect_negation() {
    // A negated emergency word is no emergency.
    let (mut run, _) = mechanics();
    let step = say(&mut run, "no no, I don't need an ambulance");
    assert!(step.actions.is_empty(), "{:?}", step.actions);
    for (said, reason, mode) in [
        ("please call 911", "emergency", TransferMode::Cold),
        ("nine one one", "emergency", TransferMode::Cold),
        ("someone is hurt", "emergency", TransferMode::Cold),
        (
            "I want to speak to your manager",
            "escalation",
            TransferMode::Warm,
        ),
    ] {
        let (mut run, _) = mechanics();
        let step = say(&mut run, said);
        assert_eq!(
            step.actions,
            [FiredAction::Transfer {
                mode,
                reason: reason.into()
            }],
            "{said}"
        );
        assert!(step.ended, "{said}");
    }
    // "100" is a number here, not India's police line: only "call 100" would be.
    let (mut run, _) = mechanics();
    let step = say(&mut run, "100");
    assert!(step.actions.is_empty() && !step.understood, "{step:?}");
    let (mut run, _) = mechanics();
    let step = say(&mut run, "stop calling me");
    assert_eq!(
        step.actions,
        [FiredAction::End {
            outcome: Some("do_not_call".into())
        }]
    );
}

#[test]
fn past_max_turns_the_call_goes_to_a_person() {
    let (mut run, _) = mechanics();
    for i in 0..6 {
        let step = say(&mut run, "what time do you close");
        assert!(step.understood && !step.ended, "turn {i}");
    }
    let step = say(&mut run, "what time do you close");
    assert_eq!(
        step.actions,
        [FiredAction::Transfer {
            mode: TransferMode::Warm,
            reason: "max_turns".into()
        }]
    );
    assert!(step.ended);
    assert_eq!(run.turns(), 7);
}

#[test]
fn the_scope_gives_a_language_model_the_nodes_words_and_tools() {
    let (run, _) = mechanics();
    let scope = run.scope();
    assert_eq!(scope.node, "ask");
    assert_eq!(scope.say, "Pick a number from one to ten.");
    assert_eq!(scope.prompt, "You are Riley.\n\nAsk for a number.");
    assert_eq!(scope.tools, [ToolName::SaveSlot]);
}

#[test]
fn slots_serialise_as_the_calls_extracted_fields() {
    let (mut run, _) = mechanics();
    say(&mut run, "uh seven I guess");
    say(&mut run, "yeah");
    let json = serde_json::to_value(run.slots()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"n": {"kind": "number", "value": 7.0}, "ok": {"kind": "yes_no", "value": true}})
    );
}

#[test]
fn any_input_is_heard_without_panicking() {
    let long = "la ".repeat(40_000);
    for text in [
        "",
        "   ",
        "🙂🙂",
        "\u{0}\u{7}",
        "{lead_name}",
        "***###",
        "'''",
        &long,
        "ünïcödé wörds 9-1-1?",
    ] {
        let (mut run, _) = mechanics();
        let step = run.hear(
            &Heard {
                text: text.into(),
                digits: "*#x9".into(),
            },
            now(),
        );
        assert!(!step.say.is_empty() || step.ended, "{text:?}");
    }
}

#[test]
fn an_unvalidated_flow_never_panics() {
    // Built by hand, skipping validation: a start that does not exist, a branch to
    // nowhere, and a routing loop.
    let mut flow = base();
    flow.start = "nowhere".into();
    let (run, step) = FlowRun::start(flow, Context::new(now()));
    assert!(step.ended && run.ended());
    let mut flow = base();
    flow.nodes.insert("r1".into(), routes_to("r2"));
    flow.nodes.insert("r2".into(), routes_to("r1"));
    flow.start = "r1".into();
    let (_, step) = FlowRun::start(flow, Context::new(now()));
    assert!(step.ended);
}

#[test]
fn default_prompts_fill_every_field_and_name_only_tools_that_exist() {
    let tools = [
        "save_slot",
        "qualify_lead",
        "check_availability",
        "book_appointment",
        "send_confirmation",
        "schedule_callback",
        "transfer_to_human",
        "end_call",
    ];
    for industry in Industry::ALL {
        let prompt = industry.prompt();
        let filled = render(prompt, &|field: &str| match field {
            "tenant_name" => Some("Acme Homes".into()),
            "agent_name" => Some("Ava".into()),
            "direction" => Some("outbound".into()),
            "lead_name" => Some("Ana".into()),
            _ => None,
        });
        assert!(!filled.contains('{'), "{industry:?}: {filled}");
        assert!(
            filled.contains("Acme Homes") && filled.contains("Ava"),
            "{industry:?}"
        );
        // Written for speech: no markup a voice would read out.
        assert!(!filled.contains(['*', '#', '`']), "{industry:?}");
        // Every tool it names is one of Parley's, and it can always hand over and end.
        for word in filled.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.contains('_') {
                assert!(tools.contains(&word), "{industry:?} names {word}");
            }
        }
        assert!(filled.contains("transfer_to_human") && filled.contains("end_call"));
        // A missing lead name leaves no gap or placeholder behind.
        let anonymous = render(prompt, &|field: &str| {
            (field != "lead_name").then(|| "x".to_owned())
        });
        assert!(!anonymous.contains("{lead_name}") && !anonymous.contains("  "));
    }
}
