//! TwiML: the XML documents our voice webhooks answer Twilio with.
//!
//! Built on quick-xml's writer so every text and attribute is escaped: a lead named
//! `Tom & "Jerry" <x>` or a greeting containing `]]>` comes out as that text, never as
//! markup. Attribute values also keep their newlines and tabs (written as character
//! references, which XML attribute normalisation would otherwise turn into spaces), and the
//! few characters XML 1.0 cannot carry at all (most C0 controls, U+FFFE, U+FFFF) are
//! dropped so no input can make the document unparseable. Attribute names are Twilio's
//! (camelCase); optional attributes are written only when set.

use std::borrow::Cow;
use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{ElementWriter, Writer};

/// A `<Response>`: the verbs Twilio runs in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub verbs: Vec<Verb>,
}

/// One TwiML verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `<Say voice language>text</Say>`: text-to-speech.
    Say {
        text: String,
        voice: Option<String>,
        language: Option<String>,
    },
    /// `<Play>url</Play>`: an audio file.
    Play { url: String },
    /// `<Pause length/>`, in seconds.
    Pause { length: u32 },
    /// `<Hangup/>`.
    Hangup,
    /// `<Redirect>url</Redirect>`: fetch the next TwiML from `url`.
    Redirect { url: String },
    /// `<Record .../>`.
    Record(Record),
    /// `<Dial ...><Number ...>..</Number></Dial>`.
    Dial(Dial),
    /// `<Connect action>` with a `<Stream>` or a `<ConversationRelay>`.
    Connect(Connect),
}

/// `<Record>`'s attributes; `None` (and `transcribe: false`) are not written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub action: Option<String>,
    pub recording_status_callback: Option<String>,
    /// Seconds.
    pub max_length: Option<u32>,
    pub play_beep: Option<bool>,
    /// Seconds of silence that end the recording.
    pub timeout: Option<u32>,
    pub transcribe: bool,
}

/// `<Dial>` to one phone number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dial {
    /// The `<Number>` child.
    pub number: Number,
    pub caller_id: Option<String>,
    /// Seconds to ring.
    pub timeout: Option<u32>,
    /// Requested when the dialled call ends (or nobody answers), with `DialCallStatus`;
    /// its TwiML runs next.
    pub action: Option<String>,
    pub record: Option<DialRecord>,
}

/// `<Number url>e164</Number>`: whom `<Dial>` calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Number {
    /// E.164.
    pub number: String,
    /// TwiML played to the person who answers, before the caller is connected (a
    /// whisper).
    pub url: Option<String>,
}

impl Number {
    /// The number with no whisper.
    pub fn new(number: impl Into<String>) -> Number {
        Number {
            number: number.into(),
            url: None,
        }
    }
}

/// `<Dial record="...">`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialRecord {
    DoNotRecord,
    RecordFromAnswer,
    RecordFromRinging,
    RecordFromAnswerDual,
    RecordFromRingingDual,
}

impl DialRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            DialRecord::DoNotRecord => "do-not-record",
            DialRecord::RecordFromAnswer => "record-from-answer",
            DialRecord::RecordFromRinging => "record-from-ringing",
            DialRecord::RecordFromAnswerDual => "record-from-answer-dual",
            DialRecord::RecordFromRingingDual => "record-from-ringing-dual",
        }
    }
}

/// `<Connect action>`: hands the call to a stream or a ConversationRelay session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Requested when the stream or session ends (ConversationRelay adds its
    /// `HandoffData`); the TwiML it returns runs next. Without it Twilio goes on with the
    /// verbs after `<Connect>`.
    pub action: Option<String>,
    pub to: ConnectTo,
}

/// What `<Connect>` hands the call to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectTo {
    /// A bidirectional media stream to our own WebSocket (the media task).
    Stream(Stream),
    /// Twilio's ConversationRelay (their STT/TTS, text over our WebSocket).
    ConversationRelay(ConversationRelay),
}

impl Connect {
    /// `<Connect>` to `to`, with no action.
    pub fn new(to: impl Into<ConnectTo>) -> Connect {
        Connect {
            action: None,
            to: to.into(),
        }
    }

    /// Sets the URL requested when the stream or session ends.
    pub fn action(mut self, url: impl Into<String>) -> Connect {
        self.action = Some(url.into());
        self
    }
}

impl From<Stream> for ConnectTo {
    fn from(stream: Stream) -> ConnectTo {
        ConnectTo::Stream(stream)
    }
}

impl From<ConversationRelay> for ConnectTo {
    fn from(relay: ConversationRelay) -> ConnectTo {
        ConnectTo::ConversationRelay(relay)
    }
}

/// `<Stream url name statusCallback>` with `<Parameter name value/>` children, which
/// Twilio passes on in the stream's `start` message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub url: String,
    pub name: Option<String>,
    pub status_callback: Option<String>,
    pub parameters: Vec<(String, String)>,
}

/// `<ConversationRelay url welcomeGreeting language voice dtmfDetection interruptible>`
/// with `<Parameter name value/>` children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationRelay {
    pub url: String,
    pub welcome_greeting: Option<String>,
    pub language: Option<String>,
    pub voice: Option<String>,
    pub dtmf_detection: Option<bool>,
    pub interruptible: Option<Interruptible>,
    pub parameters: Vec<(String, String)>,
}

/// What may interrupt ConversationRelay's speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interruptible {
    /// `none`.
    Never,
    Dtmf,
    Speech,
    Any,
}

impl Interruptible {
    pub fn as_str(self) -> &'static str {
        match self {
            Interruptible::Never => "none",
            Interruptible::Dtmf => "dtmf",
            Interruptible::Speech => "speech",
            Interruptible::Any => "any",
        }
    }
}

impl Verb {
    /// `<Say>` in Twilio's default voice and language.
    pub fn say(text: impl Into<String>) -> Verb {
        Verb::Say {
            text: text.into(),
            voice: None,
            language: None,
        }
    }
}

type Out = Writer<Vec<u8>>;

impl Response {
    pub fn new() -> Response {
        Response::default()
    }

    /// Appends a verb.
    pub fn verb(mut self, verb: Verb) -> Response {
        self.verbs.push(verb);
        self
    }

    /// The document, starting with `<?xml version="1.0" encoding="UTF-8"?>`.
    pub fn to_xml(&self) -> String {
        let mut out = Writer::new(Vec::new());
        // Writing into a Vec cannot fail; the empty string is only a formality.
        match self.write(&mut out) {
            Ok(()) => String::from_utf8_lossy(&out.into_inner()).into_owned(),
            Err(_) => String::new(),
        }
    }

    fn write(&self, out: &mut Out) -> io::Result<()> {
        out.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        out.create_element("Response")
            .write_inner_content(|out| self.verbs.iter().try_for_each(|verb| verb.write(out)))?;
        Ok(())
    }
}

impl Verb {
    fn write(&self, out: &mut Out) -> io::Result<()> {
        match self {
            Verb::Say {
                text,
                voice,
                language,
            } => {
                let attrs = Attrs::default()
                    .opt("voice", voice.as_ref())
                    .opt("language", language.as_ref());
                text_element(out, "Say", &attrs, text)
            }
            Verb::Play { url } => text_element(out, "Play", &Attrs::default(), url),
            Verb::Pause { length } => {
                let attrs = Attrs::default().set("length", length);
                element(out, "Pause", &attrs).write_empty().map(drop)
            }
            Verb::Hangup => out.create_element("Hangup").write_empty().map(drop),
            Verb::Redirect { url } => text_element(out, "Redirect", &Attrs::default(), url),
            Verb::Record(record) => {
                let attrs = Attrs::default()
                    .opt("action", record.action.as_ref())
                    .opt(
                        "recordingStatusCallback",
                        record.recording_status_callback.as_ref(),
                    )
                    .opt("maxLength", record.max_length)
                    .opt("playBeep", record.play_beep)
                    .opt("timeout", record.timeout)
                    .opt("transcribe", record.transcribe.then_some(true));
                element(out, "Record", &attrs).write_empty().map(drop)
            }
            Verb::Dial(dial) => {
                let attrs = Attrs::default()
                    .opt("callerId", dial.caller_id.as_ref())
                    .opt("timeout", dial.timeout)
                    .opt("action", dial.action.as_ref())
                    .opt("record", dial.record.map(DialRecord::as_str));
                element(out, "Dial", &attrs)
                    .write_inner_content(|out| {
                        let number = Attrs::default().opt("url", dial.number.url.as_ref());
                        text_element(out, "Number", &number, &dial.number.number)
                    })
                    .map(drop)
            }
            Verb::Connect(connect) => {
                let attrs = Attrs::default().opt("action", connect.action.as_ref());
                element(out, "Connect", &attrs)
                    .write_inner_content(|out| connect.to.write(out))
                    .map(drop)
            }
        }
    }
}

impl ConnectTo {
    fn write(&self, out: &mut Out) -> io::Result<()> {
        match self {
            ConnectTo::Stream(stream) => {
                let attrs = Attrs::default()
                    .set("url", &stream.url)
                    .opt("name", stream.name.as_ref())
                    .opt("statusCallback", stream.status_callback.as_ref());
                with_parameters(out, "Stream", &attrs, &stream.parameters)
            }
            ConnectTo::ConversationRelay(relay) => {
                let attrs = Attrs::default()
                    .set("url", &relay.url)
                    .opt("welcomeGreeting", relay.welcome_greeting.as_ref())
                    .opt("language", relay.language.as_ref())
                    .opt("voice", relay.voice.as_ref())
                    .opt("dtmfDetection", relay.dtmf_detection)
                    .opt(
                        "interruptible",
                        relay.interruptible.map(Interruptible::as_str),
                    );
                with_parameters(out, "ConversationRelay", &attrs, &relay.parameters)
            }
        }
    }
}

/// Attributes in document order, values already free of characters XML cannot carry.
#[derive(Default)]
struct Attrs(Vec<(&'static str, String)>);

impl Attrs {
    fn set(mut self, name: &'static str, value: impl ToString) -> Attrs {
        self.0
            .push((name, xml_chars(&value.to_string()).into_owned()));
        self
    }

    fn opt(self, name: &'static str, value: Option<impl ToString>) -> Attrs {
        match value {
            Some(value) => self.set(name, value),
            None => self,
        }
    }
}

/// Starts `<name attrs...>`; quick-xml escapes the values.
fn element<'a>(out: &'a mut Out, name: &'a str, attrs: &'a Attrs) -> ElementWriter<'a, Vec<u8>> {
    attrs
        .0
        .iter()
        .fold(out.create_element(name), |element, (key, value)| {
            element.with_attribute((*key, value.as_str()))
        })
}

fn text_element(out: &mut Out, name: &str, attrs: &Attrs, text: &str) -> io::Result<()> {
    element(out, name, attrs)
        .write_text_content(BytesText::new(&xml_chars(text)))
        .map(drop)
}

fn with_parameters(
    out: &mut Out,
    name: &str,
    attrs: &Attrs,
    parameters: &[(String, String)],
) -> io::Result<()> {
    let parent = element(out, name, attrs);
    if parameters.is_empty() {
        return parent.write_empty().map(drop);
    }
    parent
        .write_inner_content(|out| {
            parameters.iter().try_for_each(|(name, value)| {
                let attrs = Attrs::default().set("name", name).set("value", value);
                element(out, "Parameter", &attrs).write_empty().map(drop)
            })
        })
        .map(drop)
}

/// `text` without the characters XML 1.0 cannot carry, even escaped.
fn xml_chars(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|&c| allowed(c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use quick_xml::XmlVersion;
    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::events::BytesStart;
    use quick_xml::reader::Reader;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    const HOSTILE: &str = "Tom & \"Jerry\" <x> 'o' ]]> a\nb\r\nc\rd\te ü€😀 &amp; &#x41; \
                           <!-- c --> <![CDATA[x]]> </Say><Hangup/>";

    /// An element parsed back: name, attributes in order, text, children.
    #[derive(Debug, PartialEq, Eq)]
    struct Node {
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
        children: Vec<Node>,
    }

    fn node(name: &str, attrs: &[(&str, &str)], text: &str, children: Vec<Node>) -> Node {
        Node {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            text: text.into(),
            children,
        }
    }

    fn open(e: &BytesStart) -> Node {
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.unwrap();
                let value = a.normalized_value(XmlVersion::Explicit1_0).unwrap();
                (a.key.as_ref().to_owned(), value.into_owned())
            })
            .collect();
        Node {
            name: e.name().as_ref().to_owned(),
            attrs,
            text: String::new(),
            children: Vec::new(),
        }
    }

    /// Parses a whole document with quick-xml's reader; returns the root element.
    fn parse(xml: &str) -> Node {
        assert!(xml.starts_with(DECL), "{xml}");
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Node> = vec![node("#document", &[], "", vec![])];
        loop {
            match reader.read_event().unwrap() {
                Event::Decl(_) => {}
                Event::Start(e) => stack.push(open(&e)),
                Event::Empty(e) => stack.last_mut().unwrap().children.push(open(&e)),
                Event::End(_) => {
                    let done = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(done);
                }
                Event::Text(t) => stack.last_mut().unwrap().text += &t.xml10_content(),
                Event::GeneralRef(r) => {
                    let text = &mut stack.last_mut().unwrap().text;
                    match r.resolve_char_ref().unwrap() {
                        Some(c) => text.push(c),
                        None => {
                            text.push_str(resolve_predefined_entity(&r.xml10_content()).unwrap())
                        }
                    }
                }
                Event::Eof => break,
                other => panic!("unexpected {other:?} in {xml}"),
            }
        }
        let mut document = stack.pop().unwrap();
        assert!(stack.is_empty());
        assert_eq!(document.children.len(), 1);
        document.children.pop().unwrap()
    }

    fn response(children: Vec<Node>) -> Node {
        node("Response", &[], "", children)
    }

    #[test]
    fn simple_document_is_exact() {
        let xml = Response::new()
            .verb(Verb::Say {
                text: "Hello".into(),
                voice: Some("Polly.Amy".into()),
                language: Some("en-GB".into()),
            })
            .verb(Verb::Pause { length: 1 })
            .verb(Verb::Play {
                url: "https://x.test/a.mp3".into(),
            })
            .verb(Verb::Redirect {
                url: "https://x.test/next".into(),
            })
            .verb(Verb::Hangup)
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Say voice=\"Polly.Amy\" language=\"en-GB\">Hello</Say>\
                 <Pause length=\"1\"/><Play>https://x.test/a.mp3</Play>\
                 <Redirect>https://x.test/next</Redirect><Hangup/></Response>"
            )
        );
    }

    #[test]
    fn empty_response() {
        assert_eq!(
            Response::new().to_xml(),
            format!("{DECL}<Response></Response>")
        );
        assert_eq!(parse(&Response::new().to_xml()), response(vec![]));
    }

    #[test]
    fn lead_name_is_escaped_and_round_trips() {
        let name = r#"Tom & "Jerry" <x>"#;
        let xml = Response::new()
            .verb(Verb::say(format!("Hello {name}")))
            .to_xml();
        assert!(!xml.contains(name));
        assert_eq!(
            parse(&xml),
            response(vec![node("Say", &[], &format!("Hello {name}"), vec![])])
        );
    }

    #[test]
    fn record_writes_only_given_attributes() {
        let xml = Response::new()
            .verb(Verb::Record(Record::default()))
            .to_xml();
        assert_eq!(xml, format!("{DECL}<Response><Record/></Response>"));

        let xml = Response::new()
            .verb(Verb::Record(Record {
                action: Some("https://x.test/done".into()),
                recording_status_callback: Some("https://x.test/rec".into()),
                max_length: Some(3600),
                play_beep: Some(false),
                timeout: Some(5),
                transcribe: true,
            }))
            .to_xml();
        assert_eq!(
            parse(&xml),
            response(vec![node(
                "Record",
                &[
                    ("action", "https://x.test/done"),
                    ("recordingStatusCallback", "https://x.test/rec"),
                    ("maxLength", "3600"),
                    ("playBeep", "false"),
                    ("timeout", "5"),
                    ("transcribe", "true"),
                ],
                "",
                vec![]
            )])
        );
    }

    #[test]
    fn dial_has_a_number_child() {
        let xml = Response::new()
            .verb(Verb::Dial(Dial {
                number: Number::new("+14155550100"),
                caller_id: Some("+14155550199".into()),
                timeout: Some(20),
                action: Some("https://x.test/dialed".into()),
                record: Some(DialRecord::RecordFromAnswerDual),
            }))
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Dial callerId=\"+14155550199\" timeout=\"20\" \
                 action=\"https://x.test/dialed\" record=\"record-from-answer-dual\">\
                 <Number>+14155550100</Number></Dial></Response>"
            )
        );
        let bare = Response::new()
            .verb(Verb::Dial(Dial {
                number: Number::new("+1"),
                ..Dial::default()
            }))
            .to_xml();
        assert_eq!(
            bare,
            format!("{DECL}<Response><Dial><Number>+1</Number></Dial></Response>")
        );
    }

    #[test]
    fn dial_number_carries_its_whisper_url() {
        let xml = Response::new()
            .verb(Verb::Dial(Dial {
                number: Number {
                    number: "+14155550100".into(),
                    url: Some("https://x.test/whisper?call_id=1&index=0".into()),
                },
                caller_id: Some("+14155550199".into()),
                action: Some("https://x.test/transfer?call_id=1&index=0".into()),
                ..Dial::default()
            }))
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Dial callerId=\"+14155550199\" \
                 action=\"https://x.test/transfer?call_id=1&amp;index=0\">\
                 <Number url=\"https://x.test/whisper?call_id=1&amp;index=0\">+14155550100</Number>\
                 </Dial></Response>"
            )
        );
        assert_eq!(
            parse(&xml),
            response(vec![node(
                "Dial",
                &[
                    ("callerId", "+14155550199"),
                    ("action", "https://x.test/transfer?call_id=1&index=0"),
                ],
                "",
                vec![node(
                    "Number",
                    &[("url", "https://x.test/whisper?call_id=1&index=0")],
                    "+14155550100",
                    vec![]
                )]
            )])
        );
    }

    #[test]
    fn connect_stream_with_parameters() {
        let xml = Response::new()
            .verb(Verb::Connect(Connect::new(Stream {
                url: "wss://media.x.test/stream".into(),
                name: Some("call-1".into()),
                status_callback: Some("https://x.test/stream-status".into()),
                parameters: vec![
                    ("token".into(), "abc.def".into()),
                    ("tenant".into(), "t1".into()),
                ],
            })))
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Connect><Stream url=\"wss://media.x.test/stream\" \
                 name=\"call-1\" statusCallback=\"https://x.test/stream-status\">\
                 <Parameter name=\"token\" value=\"abc.def\"/>\
                 <Parameter name=\"tenant\" value=\"t1\"/></Stream></Connect></Response>"
            )
        );
        let bare = Response::new()
            .verb(Verb::Connect(Connect::new(Stream {
                url: "wss://m/s".into(),
                ..Stream::default()
            })))
            .to_xml();
        assert_eq!(
            bare,
            format!("{DECL}<Response><Connect><Stream url=\"wss://m/s\"/></Connect></Response>")
        );
    }

    #[test]
    fn connect_with_an_action_writes_it_on_connect() {
        let stream = Stream {
            url: "wss://m/s".into(),
            ..Stream::default()
        };
        let xml = Response::new()
            .verb(Verb::Connect(
                Connect::new(stream).action("https://x.test/connected?call_id=1&x=2"),
            ))
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Connect action=\"https://x.test/connected?call_id=1&amp;x=2\">\
                 <Stream url=\"wss://m/s\"/></Connect></Response>"
            )
        );
        let relay = ConversationRelay {
            url: "wss://m/r".into(),
            ..ConversationRelay::default()
        };
        let xml = Response::new()
            .verb(Verb::Connect(
                Connect::new(relay).action("https://x.test/connected"),
            ))
            .to_xml();
        assert_eq!(
            parse(&xml),
            response(vec![node(
                "Connect",
                &[("action", "https://x.test/connected")],
                "",
                vec![node(
                    "ConversationRelay",
                    &[("url", "wss://m/r")],
                    "",
                    vec![]
                )]
            )])
        );
    }

    #[test]
    fn connect_conversation_relay() {
        let xml = Response::new()
            .verb(Verb::Connect(Connect::new(ConversationRelay {
                url: "wss://media.x.test/relay".into(),
                welcome_greeting: Some("Hi, this is Parley.".into()),
                language: Some("en-US".into()),
                voice: Some("en-US-Journey-O".into()),
                dtmf_detection: Some(true),
                interruptible: Some(Interruptible::Speech),
                parameters: vec![("token".into(), "t".into())],
            })))
            .to_xml();
        assert_eq!(
            parse(&xml),
            response(vec![node(
                "Connect",
                &[],
                "",
                vec![node(
                    "ConversationRelay",
                    &[
                        ("url", "wss://media.x.test/relay"),
                        ("welcomeGreeting", "Hi, this is Parley."),
                        ("language", "en-US"),
                        ("voice", "en-US-Journey-O"),
                        ("dtmfDetection", "true"),
                        ("interruptible", "speech"),
                    ],
                    "",
                    vec![node(
                        "Parameter",
                        &[("name", "token"), ("value", "t")],
                        "",
                        vec![]
                    )]
                )]
            )])
        );
        let never = Response::new()
            .verb(Verb::Connect(Connect::new(ConversationRelay {
                url: "wss://m/r".into(),
                interruptible: Some(Interruptible::Never),
                ..ConversationRelay::default()
            })))
            .to_xml();
        assert!(never.contains(r#"<ConversationRelay url="wss://m/r" interruptible="none"/>"#));
    }

    #[test]
    fn hostile_strings_round_trip_in_every_position() {
        let h = || HOSTILE.to_owned();
        let xml = Response::new()
            .verb(Verb::Say {
                text: h(),
                voice: Some(h()),
                language: Some(h()),
            })
            .verb(Verb::Play { url: h() })
            .verb(Verb::Redirect { url: h() })
            .verb(Verb::Record(Record {
                action: Some(h()),
                recording_status_callback: Some(h()),
                ..Record::default()
            }))
            .verb(Verb::Dial(Dial {
                number: Number {
                    number: h(),
                    url: Some(h()),
                },
                caller_id: Some(h()),
                action: Some(h()),
                ..Dial::default()
            }))
            .verb(Verb::Connect(
                Connect::new(Stream {
                    url: h(),
                    name: Some(h()),
                    status_callback: Some(h()),
                    parameters: vec![(h(), h())],
                })
                .action(h()),
            ))
            .verb(Verb::Connect(Connect::new(ConversationRelay {
                url: h(),
                welcome_greeting: Some(h()),
                language: Some(h()),
                voice: Some(h()),
                parameters: vec![(h(), h())],
                ..ConversationRelay::default()
            })))
            .to_xml();
        assert!(!xml.contains("]]>"), "{xml}");
        assert!(!xml.contains("<Hangup/>"), "{xml}");
        let param = || {
            node(
                "Parameter",
                &[("name", HOSTILE), ("value", HOSTILE)],
                "",
                vec![],
            )
        };
        let expected = response(vec![
            node(
                "Say",
                &[("voice", HOSTILE), ("language", HOSTILE)],
                HOSTILE,
                vec![],
            ),
            node("Play", &[], HOSTILE, vec![]),
            node("Redirect", &[], HOSTILE, vec![]),
            node(
                "Record",
                &[("action", HOSTILE), ("recordingStatusCallback", HOSTILE)],
                "",
                vec![],
            ),
            node(
                "Dial",
                &[("callerId", HOSTILE), ("action", HOSTILE)],
                "",
                vec![node("Number", &[("url", HOSTILE)], HOSTILE, vec![])],
            ),
            node(
                "Connect",
                &[("action", HOSTILE)],
                "",
                vec![node(
                    "Stream",
                    &[
                        ("url", HOSTILE),
                        ("name", HOSTILE),
                        ("statusCallback", HOSTILE),
                    ],
                    "",
                    vec![param()],
                )],
            ),
            node(
                "Connect",
                &[],
                "",
                vec![node(
                    "ConversationRelay",
                    &[
                        ("url", HOSTILE),
                        ("welcomeGreeting", HOSTILE),
                        ("language", HOSTILE),
                        ("voice", HOSTILE),
                    ],
                    "",
                    vec![param()],
                )],
            ),
        ]);
        assert_eq!(parse(&xml), expected);
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        let raw = "a\u{0}b\u{1}c\u{b}d\u{c}e\u{1f}f\u{fffe}g\u{ffff}h\u{7f}i\u{fffd}";
        let clean = "abcdefgh\u{7f}i\u{fffd}";
        let xml = Response::new()
            .verb(Verb::Say {
                text: raw.into(),
                voice: Some(raw.into()),
                language: None,
            })
            .to_xml();
        assert_eq!(
            parse(&xml),
            response(vec![node("Say", &[("voice", clean)], clean, vec![])])
        );
        assert_eq!(xml_chars("plain ü"), Cow::Borrowed("plain ü"));
    }
}
