//! Lead qualification (BANT): scores and thresholds under default and tenant settings,
//! signals and evidence from callers' words and from tool arguments, and scores that
//! stay within 0..=1 whatever comes in.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use parley_shared::domain::lead::{LeadCommand, Temperature};
use parley_shared::flow::SlotValue;
use parley_shared::qualify::{
    Assessment, MAX_QUOTE_CHARS, QualificationSettings, QualifyArgs, Signal, Weights,
    assess_answers, assess_slots, assess_words, qualify_lead_tool_schema, score,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use Signal::{Authority, Budget, Engagement, Need, Timeline};
use Temperature::{Cold, Hot, Warm};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

fn assessment(signals: &[(Signal, f64)]) -> Assessment {
    Assessment {
        signals: signals.iter().copied().collect(),
        evidence: vec![],
    }
}

/// A named set of signal strengths, its score and temperature.
type ScoreCase = (&'static str, &'static [(Signal, f64)], f64, Temperature);

#[test]
fn default_weights_give_the_issues_scores_and_temperatures() {
    let cases: &[ScoreCase] = &[
        (
            "all five",
            &[
                (Budget, 1.0),
                (Authority, 1.0),
                (Need, 1.0),
                (Timeline, 1.0),
                (Engagement, 1.0),
            ],
            1.0,
            Hot,
        ),
        (
            "budget, need and timeline",
            &[(Budget, 1.0), (Need, 1.0), (Timeline, 1.0)],
            0.70,
            Warm,
        ),
        ("engagement only", &[(Engagement, 1.0)], 0.10, Cold),
        ("nothing", &[], 0.0, Cold),
        (
            "exactly at hot",
            &[
                (Budget, 1.0),
                (Authority, 1.0),
                (Need, 1.0),
                (Engagement, 0.5),
            ],
            0.75,
            Hot,
        ),
        (
            "just below hot",
            &[
                (Budget, 1.0),
                (Authority, 1.0),
                (Need, 1.0),
                (Engagement, 0.49),
            ],
            0.749,
            Warm,
        ),
        (
            "exactly at warm",
            &[(Budget, 1.0), (Authority, 1.0)],
            0.45,
            Warm,
        ),
        (
            "just below warm",
            &[(Budget, 1.0), (Authority, 0.995)],
            0.449,
            Cold,
        ),
        (
            "partial timeline and need",
            &[(Need, 0.5), (Timeline, 0.5), (Budget, 1.0)],
            0.475,
            Warm,
        ),
        (
            "spoken against scores nothing",
            &[(Budget, 0.0), (Authority, 0.0), (Need, 1.0)],
            0.25,
            Cold,
        ),
    ];
    let settings = QualificationSettings::default();
    for (name, signals, expected, temperature) in cases {
        let q = score(assessment(signals), &settings);
        assert_eq!(q.score, *expected, "{name}");
        assert_eq!(q.temperature, *temperature, "{name}");
    }
}

#[test]
fn defaults_are_the_issues_numbers() {
    let s = QualificationSettings::default();
    assert_eq!(
        s.weights,
        Weights {
            budget: 0.25,
            authority: 0.20,
            need: 0.25,
            timeline: 0.20,
            engagement: 0.10,
        }
    );
    assert_eq!((s.hot_at, s.warm_at), (0.75, 0.45));
    assert_eq!(s.validate(), Ok(()));
    // A tenant that stored nothing gets the defaults.
    let stored: QualificationSettings = serde_json::from_value(json!({})).unwrap();
    assert_eq!(stored, s);
}

#[test]
fn strengths_are_clamped_and_nan_counts_as_nothing() {
    let settings = QualificationSettings::default();
    let cases: &[(&[(Signal, f64)], f64)] = &[
        (&[(Budget, 2.0)], 0.25),
        (&[(Budget, -1.0), (Need, 1.0)], 0.25),
        (&[(Budget, f64::NAN), (Need, 1.0)], 0.25),
        (&[(Budget, f64::INFINITY)], 0.25),
        (&[(Budget, f64::NEG_INFINITY), (Authority, 1.0)], 0.20),
        (&[(Timeline, 0.5)], 0.10),
    ];
    for (signals, expected) in cases {
        assert_eq!(
            score(assessment(signals), &settings).score,
            *expected,
            "{signals:?}"
        );
    }
}

#[test]
fn tenant_settings_change_the_outcome() {
    let warm_by_default = || assessment(&[(Budget, 1.0), (Need, 1.0), (Timeline, 1.0)]);
    assert_eq!(
        score(warm_by_default(), &QualificationSettings::default()).temperature,
        Warm
    );

    // A tenant that cares mostly about budget and need.
    let weights: QualificationSettings = serde_json::from_value(json!({
        "weights": {"budget": 0.4, "authority": 0.1, "need": 0.3, "timeline": 0.2, "engagement": 0.0}
    }))
    .unwrap();
    assert_eq!(weights.validate(), Ok(()));
    let q = score(warm_by_default(), &weights);
    assert_eq!((q.score, q.temperature), (0.9, Hot));

    // A tenant with a lower bar for hot leads: only the thresholds are stored.
    let eager: QualificationSettings = serde_json::from_value(json!({"hot_at": 0.7})).unwrap();
    assert_eq!(eager.warm_at, 0.45);
    assert_eq!(eager.validate(), Ok(()));
    assert_eq!(score(warm_by_default(), &eager).temperature, Hot);

    // A strict tenant: the same lead is cold.
    let strict = QualificationSettings {
        hot_at: 0.95,
        warm_at: 0.8,
        ..Default::default()
    };
    assert_eq!(strict.validate(), Ok(()));
    assert_eq!(score(warm_by_default(), &strict).temperature, Cold);

    // Settings survive being stored and read back.
    let text = serde_json::to_string(&weights).unwrap();
    assert_eq!(
        serde_json::from_str::<QualificationSettings>(&text).unwrap(),
        weights
    );
}

#[test]
fn invalid_settings_are_refused_with_the_field_named() {
    let cases: &[(&str, Value, &[&str])] = &[
        (
            "negative weight",
            json!({"weights": {"budget": -0.25, "authority": 0.7, "need": 0.25, "timeline": 0.2, "engagement": 0.1}}),
            &["weights.budget"],
        ),
        (
            "weights over 1",
            json!({"weights": {"budget": 0.5}}),
            &["weights"],
        ),
        (
            "weights under 1",
            json!({"weights": {"budget": 0.0, "authority": 0.0, "need": 0.0, "timeline": 0.0, "engagement": 0.5}}),
            &["weights"],
        ),
        ("hot above 1", json!({"hot_at": 1.5}), &["hot_at"]),
        ("warm below 0", json!({"warm_at": -0.1}), &["warm_at"]),
        (
            "warm above hot",
            json!({"hot_at": 0.5, "warm_at": 0.6}),
            &["warm_at"],
        ),
        (
            "several at once",
            json!({"weights": {"engagement": -1.0, "need": -2.0}, "hot_at": 2.0, "warm_at": 1.2}),
            &["weights.need", "weights.engagement", "hot_at", "warm_at"],
        ),
    ];
    for (name, stored, fields) in cases {
        let settings: QualificationSettings = serde_json::from_value(stored.clone()).unwrap();
        let errors = settings.validate().expect_err(name);
        let named: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(named, *fields, "{name}: {errors:?}");
    }
    // Weights that are not numbers can only be made in code (JSON has no NaN).
    let mut nan = QualificationSettings::default();
    nan.weights.timeline = f64::NAN;
    nan.hot_at = f64::NAN;
    let named: Vec<&str> = nan
        .validate()
        .unwrap_err()
        .iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(named, ["weights.timeline", "hot_at"]);
    // Within the tolerance is fine: weights typed as thirds.
    let thirds = QualificationSettings {
        weights: Weights {
            budget: 0.333,
            authority: 0.0,
            need: 0.333,
            timeline: 0.333,
            engagement: 0.0,
        },
        ..Default::default()
    };
    assert_eq!(thirds.validate(), Ok(()));
}

/// One caller line, one signal: the strength read from it (`None`: nothing said about
/// it) and the value its evidence carries.
type WordCase = (&'static str, Signal, Option<f64>, Option<&'static str>);

#[test]
fn callers_words_give_signals_and_evidence() {
    let cases: &[WordCase] = &[
        // Budget.
        (
            "Our budget is around $500k",
            Budget,
            Some(1.0),
            Some("500000 USD"),
        ),
        (
            "we can spend fifty lakh rupees",
            Budget,
            Some(1.0),
            Some("5000000 INR"),
        ),
        (
            "somewhere between 400 and 500 thousand",
            Budget,
            Some(1.0),
            Some("400000-500000"),
        ),
        (
            "we pay about £2,000 a month now",
            Budget,
            Some(1.0),
            Some("2000 GBP per month"),
        ),
        (
            "we could afford 300 I guess",
            Budget,
            Some(1.0),
            Some("300"),
        ),
        (
            "we're pre-approved for a mortgage",
            Budget,
            Some(0.5),
            Some("budget, no amount"),
        ),
        ("we don't have a budget yet", Budget, Some(0.0), None),
        ("I'm 45 and we are a team of 50", Budget, None, None),
        // Authority.
        (
            "I'm the owner of the business",
            Authority,
            Some(1.0),
            Some("yes"),
        ),
        ("IM THE OWNER", Authority, Some(1.0), Some("yes")),
        (
            "I make the decisions here",
            Authority,
            Some(1.0),
            Some("yes"),
        ),
        ("well it's my decision", Authority, Some(1.0), Some("yes")),
        ("I decide", Authority, Some(1.0), Some("yes")),
        ("yeah it's up to me", Authority, Some(1.0), Some("yes")),
        ("I'm the CEO", Authority, Some(1.0), Some("yes")),
        (
            "me and my wife decide together",
            Authority,
            Some(0.5),
            Some("shared"),
        ),
        (
            "my husband and I will make the decision",
            Authority,
            Some(0.5),
            Some("shared"),
        ),
        ("I need to ask my boss first", Authority, Some(0.0), None),
        ("let me check with my husband", Authority, Some(0.0), None),
        ("my wife makes the decisions", Authority, Some(0.0), None),
        ("I'm not the decision maker", Authority, Some(0.0), None),
        ("it's not up to me", Authority, Some(0.0), None),
        (
            "I'm the owner but I'll need to run it by my partner",
            Authority,
            Some(0.0),
            None,
        ),
        ("I'll call you back", Authority, None, None),
        // Need.
        ("We need a bigger office", Need, Some(1.0), None),
        (
            "I'm looking for a three bedroom house",
            Need,
            Some(1.0),
            None,
        ),
        (
            "we're struggling with our current CRM",
            Need,
            Some(1.0),
            None,
        ),
        ("our lease ends in March", Need, Some(1.0), None),
        ("I want a place near the school", Need, Some(1.0), None),
        (
            "I'm not interested in renting, I want to buy",
            Need,
            Some(1.0),
            None,
        ),
        ("we might need a new roof", Need, Some(0.5), None),
        ("we're thinking about solar panels", Need, Some(0.5), None),
        ("we don't need anything, thanks", Need, Some(0.0), None),
        ("I'm not looking for anything", Need, Some(0.0), None),
        ("I need to ask my boss first", Need, None, None),
        ("I want to think about it", Need, None, None),
        ("I'm thinking about it", Need, None, None),
        // Timeline (today is 21 November 2026).
        (
            "we want to move asap",
            Timeline,
            Some(1.0),
            Some("right away"),
        ),
        (
            "within three months",
            Timeline,
            Some(1.0),
            Some("within 92 days"),
        ),
        (
            "our lease ends in March",
            Timeline,
            Some(0.5),
            Some("within 130 days"),
        ),
        (
            "in about six months",
            Timeline,
            Some(0.5),
            Some("within 181 days"),
        ),
        ("next year probably", Timeline, Some(0.0), None),
        ("just looking for now", Timeline, Some(0.0), None),
        ("I have two kids", Timeline, None, None),
    ];
    for (line, signal, strength, value) in cases {
        let a = assess_words(&[line], today());
        assert_eq!(
            a.signals.get(signal).copied(),
            *strength,
            "{line:?} {signal:?}"
        );
        let evidence = a.evidence.iter().find(|e| e.signal == *signal);
        match strength {
            Some(s) if *s > 0.0 => {
                let e = evidence.unwrap_or_else(|| panic!("{line:?}: no evidence"));
                assert_eq!(e.words, *line, "{line:?}");
                assert_eq!(e.value.as_deref(), *value, "{line:?}");
            }
            _ => assert!(evidence.is_none(), "{line:?}: {evidence:?}"),
        }
    }
}

#[test]
fn engagement_comes_from_the_number_and_length_of_answers() {
    let cases: &[(&[&str], Option<f64>)] = &[
        (
            &[
                "yes we are looking",
                "about five hundred thousand dollars",
                "I am the owner",
                "within the next three months",
            ],
            Some(1.0),
        ),
        // Two answers of eight words: half the answers, long enough.
        (
            &[
                "we are looking for a bigger place soon",
                "my wife and I would both really like it",
            ],
            Some(0.5),
        ),
        // Four answers of two words: enough answers, half as long.
        (
            &["yes please", "five hundred", "me alone", "next month"],
            Some(0.5),
        ),
        (&["yes"], Some(0.0625)),
        (&[], None),
        (&["", "  ", "..."], None),
        (
            &[
                "not interested",
                "I said I am not interested",
                "please listen to me",
                "goodbye now then",
            ],
            Some(0.0),
        ),
        (
            &[
                "who is this",
                "stop calling this number please",
                "I mean it",
                "really I do",
            ],
            Some(0.0),
        ),
        (&["sorry, wrong number"], Some(0.0)),
    ];
    for (turns, expected) in cases {
        let a = assess_words(turns, today());
        assert_eq!(a.signals.get(&Engagement).copied(), *expected, "{turns:?}");
        let evidence = a.evidence.iter().find(|e| e.signal == Engagement);
        assert_eq!(
            evidence.is_some(),
            expected.is_some_and(|e| e > 0.0),
            "{turns:?}"
        );
    }
    let a = assess_words(&["yes", "we need a bigger place with a garden"], today());
    let e = a.evidence.iter().find(|e| e.signal == Engagement).unwrap();
    assert_eq!(e.words, "we need a bigger place with a garden");
    assert_eq!(e.value.as_deref(), Some("2 answers, 4.5 words on average"));
}

#[test]
fn a_conversation_is_qualified_with_each_signal_quoting_its_line() {
    let turns = [
        "Hi, yes, this is Dana.",
        "We're looking for a three bedroom place, our lease ends in January.",
        "Honestly I need to check with my husband.",
        "Around $650,000, we're pre-approved.",
        "Actually no, it's my decision, he said I decide.",
        "Ideally within the next two months.",
    ];
    let a = assess_words(&turns, today());
    assert_eq!(a.signals.get(&Budget), Some(&1.0));
    // Corrected forward: the later "it's my decision" wins.
    assert_eq!(a.signals.get(&Authority), Some(&1.0));
    assert_eq!(a.signals.get(&Need), Some(&1.0));
    // The later, urgent timeline wins over January (also urgent, 71 days away).
    assert_eq!(a.signals.get(&Timeline), Some(&1.0));
    assert_eq!(a.signals.get(&Engagement), Some(&1.0));
    let quoted: BTreeMap<Signal, (&str, Option<&str>)> = a
        .evidence
        .iter()
        .map(|e| (e.signal, (e.words.as_str(), e.value.as_deref())))
        .collect();
    assert_eq!(
        quoted,
        BTreeMap::from([
            (
                Budget,
                ("Around $650,000, we're pre-approved.", Some("650000 USD"))
            ),
            (
                Authority,
                (
                    "Actually no, it's my decision, he said I decide.",
                    Some("yes")
                )
            ),
            (
                Need,
                (
                    "We're looking for a three bedroom place, our lease ends in January.",
                    None
                )
            ),
            (
                Timeline,
                (
                    "Ideally within the next two months.",
                    Some("within 61 days")
                )
            ),
            (
                Engagement,
                (
                    "We're looking for a three bedroom place, our lease ends in January.",
                    Some("6 answers, 7.5 words on average")
                )
            ),
        ])
    );
    let q = score(a, &QualificationSettings::default());
    assert_eq!((q.score, q.temperature), (1.0, Hot));
    assert_eq!(q.evidence.len(), 5);
    assert_eq!(
        q.command(),
        LeadCommand::Qualify {
            temperature: Hot,
            score: 1.0,
            evidence: q.evidence.clone(),
        }
    );
}

#[test]
fn the_strongest_budget_stays_and_the_last_authority_wins() {
    let a = assess_words(
        &[
            "we have a budget of 400 thousand",
            "we're also pre-approved",
        ],
        today(),
    );
    assert_eq!(a.signals.get(&Budget), Some(&1.0));
    let a = assess_words(&["it's my decision", "hmm, I should ask my wife"], today());
    assert_eq!(a.signals.get(&Authority), Some(&0.0));
    assert!(a.evidence.iter().all(|e| e.signal != Authority));
    // A timeline corrected to later loses its urgency.
    let a = assess_words(&["asap", "well, more like next year"], today());
    assert_eq!(a.signals.get(&Timeline), Some(&0.0));
}

#[test]
fn long_lines_are_quoted_around_the_words_that_counted() {
    let ramble = format!(
        "{} and anyway we need a bigger office for the new team {}",
        "so the thing is ".repeat(20),
        "you know how it goes ".repeat(20)
    );
    let a = assess_words(&[ramble.as_str()], today());
    let need = a.evidence.iter().find(|e| e.signal == Need).unwrap();
    assert!(need.words.chars().count() <= MAX_QUOTE_CHARS, "{need:?}");
    assert!(need.words.contains("we need a bigger office"), "{need:?}");
    let engagement = a.evidence.iter().find(|e| e.signal == Engagement).unwrap();
    assert!(engagement.words.chars().count() <= MAX_QUOTE_CHARS);
}

fn args(v: Value) -> QualifyArgs {
    QualifyArgs::from_value(&v).unwrap()
}

#[test]
fn tool_arguments_give_signals_and_evidence() {
    let a = assess_answers(
        &QualifyArgs::parse(
            r#"{"budget": "about 500k", "decision_maker": true, "need": "a bigger office",
                "timeline": "within 2 months", "engagement": 0.8,
                "evidence": {"budget": "we can do about 500k", "decision_maker": "I sign off on it"}}"#,
        )
        .unwrap(),
        today(),
    )
    .unwrap();
    assert_eq!(
        a.signals,
        BTreeMap::from([
            (Budget, 1.0),
            (Authority, 1.0),
            (Need, 1.0),
            (Timeline, 1.0),
            (Engagement, 0.8),
        ])
    );
    let quoted: Vec<(Signal, &str, Option<&str>)> = a
        .evidence
        .iter()
        .map(|e| (e.signal, e.words.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(
        quoted,
        [
            (Budget, "we can do about 500k", Some("500000")),
            (Authority, "I sign off on it", Some("yes")),
            (Need, "a bigger office", None),
            (Timeline, "within 2 months", Some("within 61 days")),
            (Engagement, "", Some("0.8")),
        ]
    );
    let q = score(a, &QualificationSettings::default());
    assert_eq!((q.score, q.temperature), (0.98, Hot));

    let cases: &[(Value, &[(Signal, f64)])] = &[
        (json!({}), &[]),
        (json!({"budget": 750000}), &[(Budget, 1.0)]),
        (json!({"budget": "pre-approved"}), &[(Budget, 0.5)]),
        (json!({"budget": "no budget"}), &[(Budget, 0.0)]),
        (json!({"budget": "unknown", "need": "n/a"}), &[]),
        (json!({"decision_maker": false}), &[(Authority, 0.0)]),
        // Models quote booleans.
        (json!({"decision_maker": "yes"}), &[(Authority, 1.0)]),
        (json!({"decision_maker": "false"}), &[(Authority, 0.0)]),
        (json!({"need": "might need a new roof"}), &[(Need, 0.5)]),
        (json!({"need": "doesn't need anything"}), &[(Need, 0.0)]),
        (json!({"timeline": "asap"}), &[(Timeline, 1.0)]),
        (json!({"timeline": "in 5 months"}), &[(Timeline, 0.5)]),
        (json!({"timeline": "just browsing"}), &[(Timeline, 0.0)]),
        (
            json!({"timeline": "whenever he gets a raise, who knows"}),
            &[(Timeline, 0.0)],
        ),
        (json!({"timeline": "soon-ish?"}), &[]),
        // Nulls are left out; fields a model invents are ignored.
        (
            json!({"budget": null, "engagement": 0.0, "mood": "happy"}),
            &[(Engagement, 0.0)],
        ),
    ];
    for (v, signals) in cases {
        let a = assess_answers(&args(v.clone()), today()).unwrap();
        let expected: BTreeMap<Signal, f64> = signals.iter().copied().collect();
        assert_eq!(a.signals, expected, "{v}");
        // Only signals with credit carry evidence.
        let with_evidence: Vec<Signal> = a.evidence.iter().map(|e| e.signal).collect();
        let positive: Vec<Signal> = signals
            .iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(with_evidence, positive, "{v}");
    }
}

#[test]
fn malformed_tool_arguments_name_the_field() {
    let cases: &[(&str, &str)] = &[
        ("not json at all", "arguments"),
        ("[1, 2]", "arguments"),
        ("\"budget\"", "arguments"),
        (r#"{"budget": true}"#, "budget"),
        (r#"{"budget": {"amount": 5}}"#, "budget"),
        (r#"{"decision_maker": "perhaps"}"#, "decision_maker"),
        (r#"{"decision_maker": 1}"#, "decision_maker"),
        (r#"{"need": 42}"#, "need"),
        (r#"{"timeline": ["asap"]}"#, "timeline"),
        (r#"{"engagement": "high"}"#, "engagement"),
        (r#"{"engagement": 1.5}"#, "engagement"),
        (r#"{"engagement": -0.1}"#, "engagement"),
        (r#"{"evidence": "they said yes"}"#, "evidence"),
        (r#"{"evidence": {"price": "500k"}}"#, "evidence"),
        (r#"{"evidence": {"budget": 500000}}"#, "evidence"),
    ];
    for (text, field) in cases {
        let err = QualifyArgs::parse(text).expect_err(text);
        assert_eq!(err.field, *field, "{text}: {err}");
        assert!(!err.reason.is_empty());
    }
    // Built in code (a flow's slots), an engagement out of range is still refused.
    for engagement in [f64::NAN, 2.0, -1.0] {
        let err = assess_answers(
            &QualifyArgs {
                engagement: Some(engagement),
                ..Default::default()
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(err.field, "engagement");
    }
}

#[test]
fn the_tool_schema_describes_what_the_parser_reads() {
    let schema = qualify_lead_tool_schema();
    assert_eq!(schema["type"], "object");
    let props = schema["properties"].as_object().unwrap();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "budget",
            "decision_maker",
            "engagement",
            "evidence",
            "need",
            "timeline"
        ]
    );
    assert_eq!(props["decision_maker"]["type"], "boolean");
    assert_eq!(props["engagement"]["minimum"], 0);
    assert_eq!(props["engagement"]["maximum"], 1);
    assert!(props.values().all(|p| p["description"].is_string()));
    // The evidence keys are exactly the signals' names.
    let keys: Vec<&str> = props["evidence"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let signals: Vec<String> = Signal::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = signals.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Arguments shaped as the schema says are accepted, and survive serde both ways.
    let full = json!({
        "budget": 5e5, "decision_maker": true, "need": "x", "timeline": "asap",
        "engagement": 1,
        "evidence": signals.iter().map(|s| (s.clone(), json!("quote"))).collect::<serde_json::Map<_, _>>()
    });
    let parsed = args(full);
    assert_eq!(
        parsed,
        QualifyArgs {
            // A number is kept as the digits the model sent.
            budget: Some("500000.0".into()),
            decision_maker: Some(true),
            need: Some("x".into()),
            timeline: Some("asap".into()),
            engagement: Some(1.0),
            evidence: Some(Signal::ALL.iter().map(|&s| (s, "quote".into())).collect()),
        }
    );
    assert_eq!(
        args(json!({"budget": 750000})).budget.as_deref(),
        Some("750000")
    );
    // What the arguments serialize as is read back the same.
    let again = args(serde_json::to_value(&parsed).unwrap());
    assert_eq!(again, parsed);
    assert_eq!(
        args(serde_json::to_value(QualifyArgs::default()).unwrap()),
        QualifyArgs::default()
    );
}

fn money(amount: f64, up_to: Option<f64>, currency: Option<&str>, per: Option<&str>) -> SlotValue {
    SlotValue::Money {
        amount,
        up_to,
        currency: currency.map(str::to_owned),
        per: per.map(str::to_owned),
    }
}

fn text(value: &str) -> SlotValue {
    SlotValue::Text {
        value: value.into(),
    }
}

fn choice(value: &str) -> SlotValue {
    SlotValue::Choice {
        value: value.into(),
    }
}

fn timeline(within_days: Option<u32>, urgent: bool) -> SlotValue {
    SlotValue::Timeline {
        within_days,
        urgent,
    }
}

/// One slot alone: the signal's strength (`None`: left out) and its evidence's words and
/// value (`None`: no evidence).
type SlotCase = (
    &'static str,
    SlotValue,
    Signal,
    Option<f64>,
    Option<(&'static str, Option<&'static str>)>,
);

#[test]
fn collected_slots_are_scored_from_their_typed_values() {
    let cases: Vec<SlotCase> = vec![
        // Budget: the amount exactly as collected, never spoken and read back.
        (
            "budget",
            money(1_234_567.0, None, Some("USD"), None),
            Budget,
            Some(1.0),
            Some(("1234567 USD", Some("1234567 USD"))),
        ),
        (
            "budget",
            money(2_500.5, Some(3_000.0), Some("INR"), Some("month")),
            Budget,
            Some(1.0),
            Some((
                "2500.5-3000 INR per month",
                Some("2500.5-3000 INR per month"),
            )),
        ),
        (
            "budget",
            money(300.0, None, None, None),
            Budget,
            Some(1.0),
            Some(("300", Some("300"))),
        ),
        (
            "budget",
            SlotValue::Number { value: 987_654.0 },
            Budget,
            Some(1.0),
            Some(("987654", Some("987654"))),
        ),
        (
            "budget",
            money(0.0, None, Some("USD"), None),
            Budget,
            None,
            None,
        ),
        (
            "budget",
            text("about 500k"),
            Budget,
            Some(1.0),
            Some(("about 500k", Some("500000"))),
        ),
        (
            "budget",
            text("we're pre-approved"),
            Budget,
            Some(0.5),
            Some(("we're pre-approved", Some("budget, no amount"))),
        ),
        ("budget", text("no budget"), Budget, Some(0.0), None),
        ("budget", text("not sure"), Budget, None, None),
        (
            "budget",
            SlotValue::YesNo { value: true },
            Budget,
            None,
            None,
        ),
        // Authority: yes/no, or the choices the shipped flows offer.
        (
            "decision_maker",
            SlotValue::YesNo { value: true },
            Authority,
            Some(1.0),
            Some(("yes", Some("yes"))),
        ),
        (
            "decision_maker",
            SlotValue::YesNo { value: false },
            Authority,
            Some(0.0),
            None,
        ),
        (
            "decision_maker",
            choice("self"),
            Authority,
            Some(1.0),
            Some(("self", Some("yes"))),
        ),
        (
            "decision_maker",
            choice("me"),
            Authority,
            Some(1.0),
            Some(("me", Some("yes"))),
        ),
        // A shared decision is half, as in words ("me and my wife decide").
        (
            "decision_maker",
            choice("shared"),
            Authority,
            Some(0.5),
            Some(("shared", Some("shared"))),
        ),
        (
            "decision_maker",
            choice("someone_else"),
            Authority,
            Some(0.0),
            None,
        ),
        ("decision_maker", choice("no"), Authority, Some(0.0), None),
        ("decision_maker", choice("maybe"), Authority, None, None),
        ("decision_maker", text("I decide"), Authority, None, None),
        // Need: the words, hedged or negated as a model's need is.
        (
            "need",
            text("a new website for my shop"),
            Need,
            Some(1.0),
            Some(("a new website for my shop", None)),
        ),
        (
            "need",
            text("we might need a new roof"),
            Need,
            Some(0.5),
            Some(("we might need a new roof", None)),
        ),
        (
            "need",
            text("we don't need anything"),
            Need,
            Some(0.0),
            None,
        ),
        ("need", text("  "), Need, None, None),
        ("need", text("unknown"), Need, None, None),
        (
            "need",
            choice("new_kitchen"),
            Need,
            Some(1.0),
            Some(("new kitchen", None)),
        ),
        (
            "buy_or_rent",
            choice("rent"),
            Need,
            Some(1.0),
            Some(("to rent", None)),
        ),
        (
            "area",
            text("Brooklyn"),
            Need,
            Some(1.0),
            Some(("a home in Brooklyn", None)),
        ),
        // Timeline (today is 21 November 2026): urgent = 1, within six months = 0.5.
        (
            "timeline",
            timeline(Some(0), true),
            Timeline,
            Some(1.0),
            Some(("right away", Some("right away"))),
        ),
        (
            "timeline",
            timeline(Some(30), true),
            Timeline,
            Some(1.0),
            Some(("within 30 days", Some("within 30 days"))),
        ),
        (
            "timeline",
            timeline(Some(120), false),
            Timeline,
            Some(0.5),
            Some(("within 120 days", Some("within 120 days"))),
        ),
        (
            "timeline",
            timeline(Some(181), false),
            Timeline,
            Some(0.5),
            Some(("within 181 days", Some("within 181 days"))),
        ),
        (
            "timeline",
            timeline(Some(400), false),
            Timeline,
            Some(0.0),
            None,
        ),
        ("timeline", timeline(None, false), Timeline, Some(0.0), None),
        (
            "timeline",
            text("in about six months"),
            Timeline,
            Some(0.5),
            Some(("in about six months", Some("within 181 days"))),
        ),
        (
            "timeline",
            text("asap"),
            Timeline,
            Some(1.0),
            Some(("asap", Some("right away"))),
        ),
        ("timeline", text("soon-ish?"), Timeline, None, None),
        (
            "timeline",
            money(5.0, None, None, None),
            Timeline,
            None,
            None,
        ),
    ];
    for (name, value, signal, strength, evidence) in cases {
        let slots = BTreeMap::from([(name.to_owned(), value.clone())]);
        let a = assess_slots(&slots, today());
        let context = format!("{name} = {value:?}");
        let expected: BTreeMap<Signal, f64> = strength.map(|s| (signal, s)).into_iter().collect();
        assert_eq!(a.signals, expected, "{context}");
        let quoted: Vec<(Signal, &str, Option<&str>)> = a
            .evidence
            .iter()
            .map(|e| (e.signal, e.words.as_str(), e.value.as_deref()))
            .collect();
        let want: Vec<(Signal, &str, Option<&str>)> = evidence
            .map(|(words, value)| (signal, words, value))
            .into_iter()
            .collect();
        assert_eq!(quoted, want, "{context}");
    }
}

#[test]
fn a_flows_slots_are_qualified_whole_and_missing_slots_score_nothing() {
    let slots: BTreeMap<String, SlotValue> = BTreeMap::from([
        ("buy_or_rent".to_owned(), choice("buy")),
        ("area".to_owned(), text("Brooklyn")),
        (
            "budget".to_owned(),
            money(1_234_567.0, None, Some("USD"), None),
        ),
        ("decision_maker".to_owned(), choice("shared")),
        ("timeline".to_owned(), timeline(Some(92), true)),
        // Slots no signal reads are ignored.
        ("wants_viewing".to_owned(), SlotValue::YesNo { value: true }),
    ]);
    let a = assess_slots(&slots, today());
    assert_eq!(
        a.signals,
        BTreeMap::from([
            (Budget, 1.0),
            (Authority, 0.5),
            (Need, 1.0),
            (Timeline, 1.0)
        ])
    );
    let quoted: Vec<(Signal, &str, Option<&str>)> = a
        .evidence
        .iter()
        .map(|e| (e.signal, e.words.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(
        quoted,
        [
            (Budget, "1234567 USD", Some("1234567 USD")),
            (Authority, "shared", Some("shared")),
            (Need, "to buy in Brooklyn", None),
            (Timeline, "within 92 days", Some("within 92 days")),
        ]
    );
    // 0.25 + 0.20 × 0.5 + 0.25 + 0.20, and no engagement from slots.
    let q = score(a, &QualificationSettings::default());
    assert_eq!((q.score, q.temperature), (0.8, Hot));

    // A need stated outright wins over buy_or_rent and area.
    let mut with_need = slots.clone();
    with_need.insert("need".into(), text("a bigger place"));
    let a = assess_slots(&with_need, today());
    let need = a.evidence.iter().find(|e| e.signal == Need).unwrap();
    assert_eq!(need.words, "a bigger place");

    // Nothing collected: every signal is left out and scores 0.
    let a = assess_slots(&BTreeMap::new(), today());
    assert_eq!(a, Assessment::default());
    for s in Signal::ALL {
        assert_eq!(a.strength(s), 0.0, "{s:?}");
    }
    assert_eq!(score(a, &QualificationSettings::default()).score, 0.0);

    // One slot missing: that signal alone is left out.
    for missing in ["budget", "decision_maker", "timeline"] {
        let mut fewer = slots.clone();
        fewer.remove(missing);
        let a = assess_slots(&fewer, today());
        let signal = match missing {
            "budget" => Budget,
            "decision_maker" => Authority,
            _ => Timeline,
        };
        assert!(!a.signals.contains_key(&signal), "{missing}: {a:?}");
        assert_eq!(a.strength(signal), 0.0);
        assert!(a.evidence.iter().all(|e| e.signal != signal), "{missing}");
        assert_eq!(a.signals.len(), 3, "{missing}: {a:?}");
    }
    let mut no_need = slots.clone();
    no_need.remove("buy_or_rent");
    no_need.remove("area");
    assert_eq!(assess_slots(&no_need, today()).strength(Need), 0.0);
    assert!(!assess_slots(&no_need, today()).signals.contains_key(&Need));
}

#[test]
fn long_text_slots_are_quoted_within_the_limit() {
    let long = format!("we need {}", "a much bigger office ".repeat(40));
    let slots = BTreeMap::from([("need".to_owned(), text(&long))]);
    let a = assess_slots(&slots, today());
    assert_eq!(a.signals, BTreeMap::from([(Need, 1.0)]));
    let e = &a.evidence[0];
    assert!(e.words.chars().count() <= MAX_QUOTE_CHARS, "{e:?}");
    assert!(e.words.starts_with("we need a much bigger office"), "{e:?}");
}

#[test]
fn scores_stay_within_zero_and_one_for_random_inputs() {
    let mut rng = StdRng::seed_from_u64(0x0BA7_2026);
    let odd = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        2.0,
        1e308,
        -0.0,
    ];
    let strength = |rng: &mut StdRng| {
        if rng.random_bool(0.2) {
            odd[rng.random_range(0..odd.len())]
        } else {
            rng.random_range(0.0..=1.0)
        }
    };
    for round in 0..5_000 {
        let mut signals = BTreeMap::new();
        for s in Signal::ALL {
            if rng.random_bool(0.8) {
                signals.insert(s, strength(&mut rng));
            }
        }
        // Valid tenant settings: random weights scaled to sum to 1, sorted thresholds.
        let raw: Vec<f64> = (0..5).map(|_| rng.random_range(0.0..1.0)).collect();
        let total: f64 = raw.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let (a, b) = (rng.random_range(0.0..=1.0), rng.random_range(0.0..=1.0));
        let valid = QualificationSettings {
            weights: Weights {
                budget: raw[0] / total,
                authority: raw[1] / total,
                need: raw[2] / total,
                timeline: raw[3] / total,
                engagement: raw[4] / total,
            },
            hot_at: f64::max(a, b),
            warm_at: f64::min(a, b),
        };
        // And settings nobody validated.
        let wild = QualificationSettings {
            weights: Weights {
                budget: strength(&mut rng) * 3.0,
                authority: -strength(&mut rng),
                need: strength(&mut rng),
                timeline: strength(&mut rng),
                engagement: strength(&mut rng),
            },
            hot_at: strength(&mut rng),
            warm_at: strength(&mut rng),
        };
        for settings in [valid, wild] {
            let a = Assessment {
                signals: signals.clone(),
                evidence: vec![],
            };
            let q = score(a, &settings);
            assert!((0.0..=1.0).contains(&q.score), "round {round}: {q:?}");
            assert_eq!(q.score, (q.score * 1000.0).round() / 1000.0);
            if settings == valid {
                assert_eq!(settings.validate(), Ok(()), "round {round}");
                let expected = if q.score >= settings.hot_at {
                    Hot
                } else if q.score >= settings.warm_at {
                    Warm
                } else {
                    Cold
                };
                assert_eq!(q.temperature, expected, "round {round}");
                // More of any signal never lowers the score.
                for s in Signal::ALL {
                    let mut more = signals.clone();
                    more.insert(s, 1.0);
                    let higher = score(
                        Assessment {
                            signals: more,
                            evidence: vec![],
                        },
                        &settings,
                    );
                    assert!(higher.score >= q.score, "round {round} {s:?}");
                }
            }
        }
    }
}

#[test]
fn random_words_and_arguments_never_panic_and_stay_in_range() {
    let mut rng = StdRng::seed_from_u64(7);
    let vocabulary = [
        "I'm",
        "the",
        "owner",
        "we",
        "need",
        "don't",
        "not",
        "interested",
        "ask",
        "my",
        "wife",
        "$",
        "500k",
        "lakh",
        "asap",
        "next",
        "year",
        "months",
        "3",
        "decide",
        "budget",
        ",",
        ".",
        "?",
        "é",
        "🙂",
        "\u{2019}",
        "-",
        "0",
        "99999999999999999999",
        "within",
        "looking",
        "for",
        "me",
        "and",
        "together",
        "stop",
        "calling",
        "\n",
        "",
    ];
    for round in 0..2_000 {
        let turns: Vec<String> = (0..rng.random_range(0..6))
            .map(|_| {
                let n = rng.random_range(0..80);
                let mut line: Vec<String> = (0..n)
                    .map(|_| vocabulary[rng.random_range(0..vocabulary.len())].to_string())
                    .collect();
                if rng.random_bool(0.1) {
                    // Arbitrary characters, including ones STT never sends.
                    line.push(
                        (0..rng.random_range(0..300))
                            .map(|_| char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('x'))
                            .collect(),
                    );
                }
                line.join(" ")
            })
            .collect();
        let refs: Vec<&str> = turns.iter().map(String::as_str).collect();
        let a = assess_words(&refs, today());
        assert!(
            a.signals.values().all(|s| (0.0..=1.0).contains(s)),
            "round {round}: {a:?}"
        );
        for e in &a.evidence {
            assert!(e.words.chars().count() <= MAX_QUOTE_CHARS, "round {round}");
            assert!(a.signals.get(&e.signal).is_some_and(|s| *s > 0.0));
        }
        let q = score(a, &QualificationSettings::default());
        assert!((0.0..=1.0).contains(&q.score));

        // Tool arguments: each field a random JSON value.
        let values = [
            json!(null),
            json!(true),
            json!(rng.random_range(-2.0..2.0)),
            json!(refs.first().copied().unwrap_or("")),
            json!([1]),
            json!({"budget": "x"}),
        ];
        let mut object = serde_json::Map::new();
        for field in [
            "budget",
            "decision_maker",
            "need",
            "timeline",
            "engagement",
            "evidence",
        ] {
            if rng.random_bool(0.5) {
                object.insert(
                    field.into(),
                    values[rng.random_range(0..values.len())].clone(),
                );
            }
        }
        match QualifyArgs::from_value(&Value::Object(object.clone())) {
            Ok(parsed) => {
                let a = assess_answers(&parsed, today()).unwrap();
                let q = score(a, &QualificationSettings::default());
                assert!((0.0..=1.0).contains(&q.score), "{object:?}");
            }
            Err(e) => assert!(object.contains_key(e.field), "{object:?}: {e}"),
        }
    }
}
