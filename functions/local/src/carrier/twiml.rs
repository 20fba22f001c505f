//! Reading the TwiML that Parley's webhooks answer with, as far as the simulated
//! carrier follows it: `<Say>`, `<Pause>`, `<Hangup>`, `<Redirect>`, `<Connect>` with a
//! `<Stream>` and its `<Parameter>`s, and `<Dial>` with its `<Number>`s. Any other verb
//! is kept by name and skipped, as Twilio would reject it and the simulator should
//! not stop on it. A document that is not TwiML is an error, never a panic.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

/// One instruction of a TwiML `<Response>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Say(String),
    /// Silence for this many seconds.
    Pause(u32),
    Hangup,
    /// Fetch TwiML from this URL and follow it instead.
    Redirect(String),
    /// Stream the call's audio; when the stream ends, ask `action` what next.
    Connect {
        action: Option<String>,
        stream: Option<Stream>,
    },
    /// Ring these numbers; when the dial ends, tell `action`.
    Dial {
        action: Option<String>,
        numbers: Vec<String>,
        timeout_secs: u32,
    },
    /// A verb the simulator does not act on.
    Other(String),
}

/// A `<Stream>`: where to open the media WebSocket and what to send in `start`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub url: String,
    pub parameters: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
#[error("not TwiML: {0}")]
pub struct TwimlError(String);

/// Twilio's default ring time for `<Dial>`.
const DIAL_TIMEOUT_SECS: u32 = 30;
/// A bound on what one document may ask for, so a hostile answer costs little.
const MAX_VERBS: usize = 64;

fn attr(start: &BytesStart<'_>, name: &str) -> Option<String> {
    start
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Explicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// The verbs of a `<Response>` document, in order.
pub fn parse(xml: &str) -> Result<Vec<Verb>, TwimlError> {
    let root = |e: &BytesStart<'_>| {
        if e.name().as_ref() == "Response" {
            Ok(())
        } else {
            Err(TwimlError("the root element is not <Response>".into()))
        }
    };
    let mut reader = Reader::from_str(xml);
    let mut verbs = Vec::new();
    let mut rooted = false;
    let mut depth = 0usize;
    let mut open: Option<Verb> = None;
    let mut child: Option<String> = None;
    let mut text = String::new();
    loop {
        let event = reader.read_event().map_err(|e| TwimlError(e.to_string()))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                match depth {
                    1 => {
                        root(&e)?;
                        rooted = true;
                    }
                    2 => {
                        text.clear();
                        open = Some(start_verb(&e));
                    }
                    _ => {
                        text.clear();
                        child = Some(e.name().as_ref().to_owned());
                        if let Some(verb) = open.as_mut() {
                            child_start(verb, &e);
                        }
                    }
                }
            }
            Event::Empty(e) => match depth {
                // `<Response/>`: a document with no verbs.
                0 => return root(&e).map(|()| verbs),
                1 => push(&mut verbs, start_verb(&e))?,
                _ => {
                    if let Some(verb) = open.as_mut() {
                        child_start(verb, &e);
                    }
                }
            },
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                Ok(None) => match resolve_predefined_entity(&r.xml10_content()) {
                    Some(entity) => text.push_str(entity),
                    None => return Err(TwimlError("an unknown entity".into())),
                },
                Err(e) => return Err(TwimlError(e.to_string())),
            },
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::End(_) => {
                match depth {
                    0 | 1 => {}
                    2 => {
                        if let Some(verb) = open.take() {
                            push(&mut verbs, end_verb(verb, &text))?;
                        }
                        text.clear();
                    }
                    _ => {
                        if let (Some(verb), Some(name)) = (open.as_mut(), child.take()) {
                            child_end(verb, &name, &text);
                        }
                        text.clear();
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof if rooted => return Ok(verbs),
            Event::Eof => return Err(TwimlError("no <Response>".into())),
            _ => {}
        }
    }
}

fn push(verbs: &mut Vec<Verb>, verb: Verb) -> Result<(), TwimlError> {
    if verbs.len() >= MAX_VERBS {
        return Err(TwimlError(format!("more than {MAX_VERBS} verbs")));
    }
    verbs.push(verb);
    Ok(())
}

fn start_verb(e: &BytesStart<'_>) -> Verb {
    match e.name().as_ref() {
        "Say" => Verb::Say(String::new()),
        "Pause" => Verb::Pause(attr(e, "length").and_then(|l| l.parse().ok()).unwrap_or(1)),
        "Hangup" => Verb::Hangup,
        "Redirect" => Verb::Redirect(String::new()),
        "Connect" => Verb::Connect {
            action: attr(e, "action"),
            stream: None,
        },
        "Dial" => Verb::Dial {
            action: attr(e, "action"),
            numbers: Vec::new(),
            timeout_secs: attr(e, "timeout")
                .and_then(|l| l.parse().ok())
                .unwrap_or(DIAL_TIMEOUT_SECS),
        },
        other => Verb::Other(other.to_owned()),
    }
}

fn end_verb(verb: Verb, text: &str) -> Verb {
    match verb {
        Verb::Say(_) => Verb::Say(text.trim().to_owned()),
        Verb::Redirect(_) => Verb::Redirect(text.trim().to_owned()),
        // `<Dial>+123</Dial>`: a number as the verb's own text.
        Verb::Dial {
            action,
            mut numbers,
            timeout_secs,
        } => {
            if !text.trim().is_empty() {
                numbers.push(text.trim().to_owned());
            }
            Verb::Dial {
                action,
                numbers,
                timeout_secs,
            }
        }
        other => other,
    }
}

fn child_start(verb: &mut Verb, e: &BytesStart<'_>) {
    match (verb, e.name().as_ref()) {
        (Verb::Connect { stream, .. }, "Stream") => {
            *stream = Some(Stream {
                url: attr(e, "url").unwrap_or_default(),
                parameters: Vec::new(),
            });
        }
        (
            Verb::Connect {
                stream: Some(stream),
                ..
            },
            "Parameter",
        ) => {
            if let (Some(name), Some(value)) = (attr(e, "name"), attr(e, "value"))
                && stream.parameters.len() < MAX_VERBS
            {
                stream.parameters.push((name, value));
            }
        }
        _ => {}
    }
}

fn child_end(verb: &mut Verb, name: &str, text: &str) {
    if let (Verb::Dial { numbers, .. }, "Number") = (verb, name)
        && !text.trim().is_empty()
        && numbers.len() < MAX_VERBS
    {
        numbers.push(text.trim().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_connect_with_its_stream_and_parameters() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://p.example/webhooks/twilio/connected?call_id=1&amp;x=2"><Stream url="wss://p.example/media/twilio"><Parameter name="token" value="t.k"/><Parameter name="call_id" value="abc"/></Stream></Connect></Response>"#;
        let verbs = parse(xml).unwrap();
        assert_eq!(
            verbs,
            vec![Verb::Connect {
                action: Some("https://p.example/webhooks/twilio/connected?call_id=1&x=2".into()),
                stream: Some(Stream {
                    url: "wss://p.example/media/twilio".into(),
                    parameters: vec![
                        ("token".into(), "t.k".into()),
                        ("call_id".into(), "abc".into())
                    ],
                }),
            }]
        );
    }

    #[test]
    fn reads_say_pause_dial_and_hangup_in_order() {
        let xml = r#"<Response><Say voice="Polly.Joanna">It&apos;s 5 &lt; 6.</Say><Pause length="2"/><Dial action="/t" timeout="20" callerId="+1"><Number url="/w">+12025550100</Number><Number>+12025550101</Number></Dial><Hangup/></Response>"#;
        assert_eq!(
            parse(xml).unwrap(),
            vec![
                Verb::Say("It's 5 < 6.".into()),
                Verb::Pause(2),
                Verb::Dial {
                    action: Some("/t".into()),
                    numbers: vec!["+12025550100".into(), "+12025550101".into()],
                    timeout_secs: 20,
                },
                Verb::Hangup,
            ]
        );
    }

    #[test]
    fn an_empty_response_has_no_verbs_and_unknown_verbs_are_kept_by_name() {
        assert_eq!(parse("<Response/>").unwrap(), vec![]);
        assert_eq!(
            parse("<Response><Gather><Say>x</Say></Gather></Response>").unwrap(),
            vec![Verb::Other("Gather".into())]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "not xml at all",
            "<html><body>502</body></html>",
            "<Response><Say>unclosed",
            "<Response><Say>a</Pause></Response>",
            "\u{0}\u{1}<<<>>>",
        ] {
            // Either an error, or (for a truncated document) whatever was complete.
            if let Ok(verbs) = parse(bad) {
                assert!(verbs.len() <= 1, "{bad:?} gave {verbs:?}");
            }
        }
        assert!(parse("<html><body>502</body></html>").is_err());
        assert!(parse("not xml at all").is_err());
    }
}
