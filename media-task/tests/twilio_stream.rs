//! Twilio Media Streams frames: every documented event read and written back, numbers
//! sent as strings, payload decoding, the outbound frames, and garbage of every kind
//! refused with an error naming the problem, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parley_media::twilio_stream::{
    self, Inbound, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES, Media, Problem, StreamError, Track, parse,
};
use serde_json::{Value, json};

const STREAM: &str = "MZ0f3c9a7e5b1d4c2a8e6f0b9d7c5a3e1f";
const ACCOUNT: &str = "AC5e2b8d1f4a7c0e3b6d9f2a5c8e1b4d7a";
const CALL: &str = "CA9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b";

fn connected() -> Value {
    json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
}

fn start() -> Value {
    json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": STREAM,
            "callSid": CALL,
            "tracks": ["inbound", "outbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"call_id": "0190f3a2-7c41-7e55-9d1b-3f6a2c8e4b10", "token": "v1.abc.def"}
        },
        "streamSid": STREAM
    })
}

/// 20 ms of μ-law: silence (0xFF) with a little noise.
fn mulaw_frame() -> Vec<u8> {
    (0..160u8)
        .map(|i| if i % 7 == 0 { 0x7E } else { 0xFF })
        .collect()
}

fn media() -> Value {
    json!({
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "2",
            "timestamp": "40",
            "payload": STANDARD.encode(mulaw_frame())
        },
        "streamSid": STREAM
    })
}

fn mark() -> Value {
    json!({
        "event": "mark",
        "sequenceNumber": "57",
        "streamSid": STREAM,
        "mark": {"name": "turn-3"}
    })
}

fn dtmf() -> Value {
    json!({
        "event": "dtmf",
        "streamSid": STREAM,
        "sequenceNumber": "88",
        "dtmf": {"track": "inbound_track", "digit": "#"}
    })
}

fn stop() -> Value {
    json!({
        "event": "stop",
        "sequenceNumber": "412",
        "streamSid": STREAM,
        "stop": {"accountSid": ACCOUNT, "callSid": CALL}
    })
}

fn all_frames() -> Vec<Value> {
    vec![connected(), start(), media(), mark(), dtmf(), stop()]
}

fn parse_value(frame: &Value) -> Result<Inbound, StreamError> {
    parse(&frame.to_string())
}

fn field_error(frame: &Value) -> (String, Problem) {
    match parse_value(frame) {
        Err(StreamError::Field { path, problem }) => (path, problem),
        other => panic!("expected a field error for {frame}, got {other:?}"),
    }
}

#[test]
fn connected_reads_protocol_and_version() {
    assert_eq!(
        parse_value(&connected()).unwrap(),
        Inbound::Connected {
            protocol: "Call".into(),
            version: "1.0.0".into()
        }
    );
}

#[test]
fn start_reads_the_stream_the_call_and_the_format() {
    let Inbound::Start {
        sequence_number,
        start,
        stream_sid,
    } = parse_value(&start()).unwrap()
    else {
        panic!("not a start");
    };
    assert_eq!(sequence_number, 1);
    assert_eq!(stream_sid, STREAM);
    assert_eq!(start.stream_sid, STREAM);
    assert_eq!(start.account_sid, ACCOUNT);
    assert_eq!(start.call_sid, CALL);
    assert_eq!(start.tracks, [Track::Inbound, Track::Outbound]);
    assert_eq!(start.custom_parameters["token"], "v1.abc.def");
    assert_eq!(start.custom_parameters.len(), 2);
    assert_eq!(start.media_format.encoding, "audio/x-mulaw");
    assert_eq!(start.media_format.sample_rate, 8000);
    assert_eq!(start.media_format.channels, 1);
}

#[test]
fn media_reads_the_track_position_and_audio() {
    let frame = parse_value(&media()).unwrap();
    assert_eq!(frame.stream_sid(), Some(STREAM));
    assert_eq!(frame.sequence_number(), Some(3));
    let Inbound::Media { media, .. } = frame else {
        panic!("not media");
    };
    assert_eq!(media.track, Track::Inbound);
    assert_eq!(media.chunk, 2);
    assert_eq!(media.timestamp, 40);
    assert_eq!(media.payload_bytes().unwrap(), mulaw_frame());

    // One buffer for the whole call: cleared, then filled, each time.
    let mut buffer = vec![1, 2, 3];
    media.decode_payload_into(&mut buffer).unwrap();
    assert_eq!(buffer, mulaw_frame());
    media.decode_payload_into(&mut buffer).unwrap();
    assert_eq!(buffer, mulaw_frame());
}

#[test]
fn mark_dtmf_and_stop_read_their_fields() {
    match parse_value(&mark()).unwrap() {
        Inbound::Mark {
            sequence_number,
            stream_sid,
            mark,
        } => {
            assert_eq!((sequence_number, stream_sid.as_str()), (57, STREAM));
            assert_eq!(mark.name, "turn-3");
        }
        other => panic!("{other:?}"),
    }
    match parse_value(&dtmf()).unwrap() {
        Inbound::Dtmf {
            sequence_number,
            dtmf,
            ..
        } => {
            assert_eq!(sequence_number, 88);
            assert_eq!(
                (dtmf.track.as_str(), dtmf.digit.as_str()),
                ("inbound_track", "#")
            );
        }
        other => panic!("{other:?}"),
    }
    match parse_value(&stop()).unwrap() {
        Inbound::Stop {
            sequence_number,
            stop,
            ..
        } => {
            assert_eq!(sequence_number, 412);
            assert_eq!(
                (stop.account_sid.as_str(), stop.call_sid.as_str()),
                (ACCOUNT, CALL)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(parse_value(&connected()).unwrap().stream_sid(), None);
}

#[test]
fn every_event_round_trips_as_twilio_writes_it() {
    for frame in all_frames() {
        let parsed = parse_value(&frame).unwrap();
        // Written back, it is the very frame Twilio sent (same names, strings stay strings).
        assert_eq!(serde_json::to_value(&parsed).unwrap(), frame);
        let text = serde_json::to_string(&parsed).unwrap();
        assert_eq!(parse(&text).unwrap(), parsed);
        // serde reads it the same way parse does.
        assert_eq!(serde_json::from_str::<Inbound>(&text).unwrap(), parsed);
    }
}

#[test]
fn serde_reports_the_same_errors() {
    let error = serde_json::from_str::<Inbound>(r#"{"event":"stop","sequenceNumber":"1"}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("field streamSid: missing"), "{error}");
}

#[test]
fn numbers_are_read_from_strings_or_integers() {
    let mut frame = media();
    frame["sequenceNumber"] = json!(3);
    frame["media"]["chunk"] = json!(2);
    frame["media"]["timestamp"] = json!("40");
    assert_eq!(parse_value(&frame).unwrap(), parse_value(&media()).unwrap());

    let mut frame = start();
    frame["start"]["mediaFormat"]["sampleRate"] = json!("8000");
    frame["start"]["mediaFormat"]["channels"] = json!("1");
    assert_eq!(parse_value(&frame).unwrap(), parse_value(&start()).unwrap());

    let mut frame = media();
    frame["sequenceNumber"] = json!("18446744073709551615");
    assert_eq!(
        parse_value(&frame).unwrap().sequence_number(),
        Some(u64::MAX)
    );
}

#[test]
fn numbers_that_are_not_whole_are_refused() {
    let bad = [
        (json!(""), r#""" is not a whole number"#),
        (json!(" 3"), r#"" 3" is not a whole number"#),
        (json!("+3"), r#""+3" is not a whole number"#),
        (json!("-3"), r#""-3" is not a whole number"#),
        (json!("3.0"), r#""3.0" is not a whole number"#),
        (json!("1e3"), r#""1e3" is not a whole number"#),
        (json!("three"), r#""three" is not a whole number"#),
        (
            json!("18446744073709551616"),
            r#""18446744073709551616" is not a whole number"#,
        ),
        (json!(-3), r#""-3" is not a whole number"#),
        (json!(2.5), r#""2.5" is not a whole number"#),
        (
            json!(true),
            "expected a whole number or a string of digits, found a boolean",
        ),
        (
            json!(null),
            "expected a whole number or a string of digits, found null",
        ),
        (
            json!(["3"]),
            "expected a whole number or a string of digits, found an array",
        ),
    ];
    for (value, message) in bad {
        let mut frame = media();
        frame["media"]["timestamp"] = value;
        assert_eq!(
            parse_value(&frame).unwrap_err().to_string(),
            format!("field media.timestamp: {message}")
        );
    }

    let mut frame = start();
    frame["start"]["mediaFormat"]["channels"] = json!(70000);
    assert_eq!(
        parse_value(&frame).unwrap_err().to_string(),
        "field start.mediaFormat.channels: 70000 is out of range"
    );
}

/// Every field path of a frame, objects included, `event` and the free-form custom
/// parameters left out.
fn field_paths(value: &Value, prefix: &str, paths: &mut Vec<String>) {
    let Value::Object(map) = value else { return };
    for (key, child) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if path == "event" {
            continue;
        }
        paths.push(path.clone());
        if key != "customParameters" {
            field_paths(child, &path, paths);
        }
    }
}

fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

#[test]
fn every_missing_field_is_named() {
    for frame in all_frames() {
        let mut paths = Vec::new();
        field_paths(&frame, "", &mut paths);
        assert!(!paths.is_empty());
        for path in paths {
            let mut broken = frame.clone();
            let (parent, key) = path.rsplit_once('.').unwrap_or(("", &path));
            let parent = if parent.is_empty() {
                &mut broken
            } else {
                broken.pointer_mut(&pointer(parent)).unwrap()
            };
            parent.as_object_mut().unwrap().remove(key);
            if path == "start.customParameters" {
                // No parameters: Twilio may leave the object out.
                let Inbound::Start { start, .. } = parse_value(&broken).unwrap() else {
                    panic!("not a start");
                };
                assert!(start.custom_parameters.is_empty());
                continue;
            }
            assert_eq!(
                field_error(&broken),
                (path.clone(), Problem::Missing),
                "{path}"
            );
            assert_eq!(
                parse_value(&broken).unwrap_err().to_string(),
                format!("field {path}: missing")
            );
        }
    }
}

#[test]
fn every_field_of_the_wrong_type_is_named() {
    for frame in all_frames() {
        let mut paths = Vec::new();
        field_paths(&frame, "", &mut paths);
        for path in paths {
            let original = frame.pointer(&pointer(&path)).unwrap();
            let other_kind = if original.is_object() {
                json!("text")
            } else {
                json!({"x": 1})
            };
            for wrong in [json!(true), json!(null), other_kind] {
                let mut broken = frame.clone();
                *broken.pointer_mut(&pointer(&path)).unwrap() = wrong.clone();
                if path == "start.customParameters" && wrong.is_null() {
                    // null is no parameters, as absent is.
                    assert!(parse_value(&broken).is_ok());
                    continue;
                }
                let (named, problem) = field_error(&broken);
                assert_eq!(named, path, "{wrong} at {path}");
                assert!(
                    matches!(problem, Problem::WrongType { .. }),
                    "{wrong} at {path}: {problem:?}"
                );
            }
        }
    }
}

#[test]
fn values_twilio_does_not_document_are_refused() {
    let mut frame = media();
    frame["media"]["track"] = json!("sideways");
    assert_eq!(
        parse_value(&frame).unwrap_err().to_string(),
        r#"field media.track: unknown track "sideways" (expected inbound or outbound)"#
    );

    let mut frame = start();
    frame["start"]["tracks"] = json!(["inbound", 7]);
    assert_eq!(
        parse_value(&frame).unwrap_err().to_string(),
        "field start.tracks[1]: expected a string, found a number"
    );

    let mut frame = start();
    frame["start"]["customParameters"]["attempt"] = json!(2);
    assert_eq!(
        parse_value(&frame).unwrap_err().to_string(),
        "field start.customParameters.attempt: expected a string, found a number"
    );

    let mut frame = stop();
    frame["streamSid"] = json!("");
    assert_eq!(
        parse_value(&frame).unwrap_err().to_string(),
        "field streamSid: empty"
    );
}

#[test]
fn fields_twilio_adds_later_are_ignored() {
    let mut frame = media();
    frame["media"]["extension"] = json!({"anything": [1, 2]});
    frame["newTopLevel"] = json!("x");
    assert_eq!(parse_value(&frame).unwrap(), parse_value(&media()).unwrap());
}

#[test]
fn unknown_events_are_named() {
    assert_eq!(
        parse(r#"{"event":"hangup","streamSid":"MZ1"}"#)
            .unwrap_err()
            .to_string(),
        r#"unknown event "hangup""#
    );
    // Outbound events are not inbound ones.
    assert_eq!(
        parse(&twilio_stream::clear(STREAM)).unwrap_err(),
        StreamError::UnknownEvent("clear".into())
    );
    // A long name is cut short in the error.
    let long = "x".repeat(10_000);
    let error = parse(&json!({ "event": long }).to_string()).unwrap_err();
    assert!(error.to_string().len() < 100, "{error}");
    assert_eq!(
        parse(r#"{"event":7}"#).unwrap_err().to_string(),
        "field event: expected a string, found a number"
    );
    assert_eq!(
        parse(r#"{"streamSid":"MZ1"}"#).unwrap_err().to_string(),
        "field event: missing"
    );
}

#[test]
fn text_that_is_not_a_json_object_is_refused() {
    assert_eq!(parse("").unwrap_err(), StreamError::Empty);
    assert_eq!(parse(" \n\t").unwrap_err().to_string(), "empty frame");
    for text in [
        "hello",
        "{",
        r#"{"event":"media""#,
        "{'event':'media'}",
        "\u{0}",
        "{}}",
    ] {
        let error = parse(text).unwrap_err();
        assert!(
            matches!(error, StreamError::NotJson(_)),
            "{text:?}: {error:?}"
        );
        assert!(error.to_string().starts_with("not JSON: "), "{error}");
    }
    for (text, kind) in [
        ("[]", "an array"),
        ("42", "a number"),
        (r#""media""#, "a string"),
        ("null", "null"),
        ("true", "a boolean"),
    ] {
        assert_eq!(
            parse(text).unwrap_err().to_string(),
            format!("not a JSON object: found {kind}")
        );
    }
}

#[test]
fn every_truncation_of_every_frame_is_refused() {
    for frame in all_frames() {
        let text = frame.to_string();
        for end in 0..text.len() {
            if text.is_char_boundary(end) {
                assert!(parse(&text[..end]).is_err(), "{}", &text[..end]);
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 20_000;
    let text = format!(
        r#"{{"event":"media","media":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let error = parse(&text).unwrap_err();
    assert!(matches!(error, StreamError::NotJson(_)), "{error:?}");
    assert!(error.to_string().contains("recursion limit"), "{error}");

    // Nesting within the limit is read, and refused for what it is.
    let text = format!(
        r#"{{"event":"media","sequenceNumber":"1","streamSid":"MZ1","media":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "field media: expected an object, found an array"
    );
}

#[test]
fn frames_over_the_limit_are_refused_before_parsing() {
    // Not even JSON: the size alone refuses it.
    let text = "x".repeat(MAX_FRAME_BYTES + 1);
    assert_eq!(
        parse(&text).unwrap_err(),
        StreamError::TooLarge {
            len: MAX_FRAME_BYTES + 1,
            limit: MAX_FRAME_BYTES
        }
    );
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        format!(
            "frame of {} bytes is over the 65536-byte limit",
            MAX_FRAME_BYTES + 1
        )
    );

    // A frame of exactly the limit is read.
    let mut frame = mark();
    let padding = MAX_FRAME_BYTES - frame.to_string().len();
    frame["mark"]["name"] = json!(format!("turn-3{}", " ".repeat(padding)));
    assert_eq!(frame.to_string().len(), MAX_FRAME_BYTES);
    assert!(parse_value(&frame).is_ok());
}

fn media_with_payload(payload: &str) -> Media {
    Media {
        track: Track::Inbound,
        chunk: 1,
        timestamp: 0,
        payload: payload.to_owned(),
    }
}

#[test]
fn bad_base64_is_refused_and_named() {
    for payload in ["!!!!", "////A", "QUJD\u{e9}", "Q=UJ", "QUJDRA=x", "QR=="] {
        let media = media_with_payload(payload);
        let error = media.payload_bytes().unwrap_err();
        assert!(
            matches!(
                &error,
                StreamError::Field { path, problem: Problem::NotBase64(_) } if path == "media.payload"
            ),
            "{payload:?}: {error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("field media.payload: not base64: "),
            "{error}"
        );
        // The caller's buffer is left empty, not half-written.
        let mut buffer = vec![9; 10];
        assert!(media.decode_payload_into(&mut buffer).is_err());
        assert!(buffer.is_empty());
    }
    // Padded or not, standard base64 is read.
    assert_eq!(media_with_payload("QUI=").payload_bytes().unwrap(), b"AB");
    assert_eq!(media_with_payload("QUI").payload_bytes().unwrap(), b"AB");
    assert_eq!(media_with_payload("").payload_bytes().unwrap(), b"");
}

#[test]
fn payloads_over_the_limit_are_refused() {
    let at_limit = STANDARD.encode(vec![0xFF; MAX_PAYLOAD_BYTES]);
    assert_eq!(
        media_with_payload(&at_limit).payload_bytes().unwrap().len(),
        MAX_PAYLOAD_BYTES
    );
    for len in [
        MAX_PAYLOAD_BYTES + 1,
        MAX_PAYLOAD_BYTES + 2,
        MAX_PAYLOAD_BYTES * 3,
    ] {
        for payload in [
            STANDARD.encode(vec![0xFF; len]),
            STANDARD
                .encode(vec![0xFF; len])
                .trim_end_matches('=')
                .to_owned(),
        ] {
            let mut buffer = Vec::new();
            let error = media_with_payload(&payload)
                .decode_payload_into(&mut buffer)
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                "field media.payload: decodes to more than 16384 bytes"
            );
            assert!(buffer.is_empty());
        }
    }
    // One that arrives in a frame under the frame limit.
    let mut frame = media();
    frame["media"]["payload"] = json!(STANDARD.encode(vec![0x7F; 20_000]));
    let Inbound::Media { media, .. } = parse_value(&frame).unwrap() else {
        panic!("not media");
    };
    assert!(matches!(
        media.payload_bytes().unwrap_err(),
        StreamError::Field {
            problem: Problem::PayloadTooLarge {
                limit: MAX_PAYLOAD_BYTES
            },
            ..
        }
    ));
}

#[test]
fn outbound_frames_are_twilios() {
    let audio = mulaw_frame();
    let sent: Value = serde_json::from_str(&twilio_stream::media(STREAM, &audio)).unwrap();
    assert_eq!(
        sent,
        json!({"event": "media", "streamSid": STREAM, "media": {"payload": STANDARD.encode(&audio)}})
    );
    assert_eq!(
        STANDARD
            .decode(sent["media"]["payload"].as_str().unwrap())
            .unwrap(),
        audio
    );

    let sent: Value = serde_json::from_str(&twilio_stream::mark(STREAM, "turn-3")).unwrap();
    assert_eq!(
        sent,
        json!({"event": "mark", "streamSid": STREAM, "mark": {"name": "turn-3"}})
    );

    let sent: Value = serde_json::from_str(&twilio_stream::clear(STREAM)).unwrap();
    assert_eq!(sent, json!({"event": "clear", "streamSid": STREAM}));

    // Names that need escaping stay one JSON string.
    let name = "say \"hi\"\n\\ \u{1F4DE}";
    let sent: Value = serde_json::from_str(&twilio_stream::mark(STREAM, name)).unwrap();
    assert_eq!(sent["mark"]["name"], name);
    let sent: Value = serde_json::from_str(&twilio_stream::media(STREAM, &[])).unwrap();
    assert_eq!(sent["media"]["payload"], "");
}

/// xorshift64*: reproducible noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whatever the text, parse answers, and a media frame it accepts decodes or is refused.
fn survive(text: &str) {
    if let Ok(Inbound::Media { media, .. }) = parse(text) {
        let _ = media.payload_bytes();
    }
}

#[test]
fn garbage_never_panics() {
    let mut noise = Noise(0x5EED_F00D_7A11_CAFE);
    let alphabet = br#"{}[]":,\ 0123456789-+.eEtruefalsnl/=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"#;

    // Random bytes, and random JSON-ish text.
    for round in 0..20_000 {
        let len = noise.below(200);
        let bytes: Vec<u8> = if round % 2 == 0 {
            (0..len).map(|_| noise.next() as u8).collect()
        } else {
            (0..len)
                .map(|_| alphabet[noise.below(alphabet.len())])
                .collect()
        };
        survive(&String::from_utf8_lossy(&bytes));
    }

    // Documented frames, garbled: bytes replaced, cut out, repeated.
    let frames: Vec<Vec<u8>> = all_frames()
        .iter()
        .map(|frame| frame.to_string().into_bytes())
        .collect();
    for _ in 0..20_000 {
        let mut bytes = frames[noise.below(frames.len())].clone();
        for _ in 0..1 + noise.below(4) {
            let at = noise.below(bytes.len());
            match noise.below(3) {
                0 => bytes[at] = alphabet[noise.below(alphabet.len())],
                1 => {
                    let end = (at + 1 + noise.below(8)).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => {
                    let end = (at + 1 + noise.below(8)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        survive(&String::from_utf8_lossy(&bytes));
    }
}
