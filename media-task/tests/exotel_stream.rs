//! Exotel voicebot stream frames: every documented event read and written back,
//! numbers sent as strings, 16-bit PCM payloads, the outbound frames, cutting audio into
//! chunks Exotel plays smoothly, and garbage refused with an error naming the problem,
//! never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parley_media::exotel_stream::{
    self, CHUNK_MULTIPLE_BYTES, Chunker, Inbound, MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES,
    MIN_CHUNK_BYTES, Media, Problem, SampleRate, StreamError, outbound_chunks, parse,
};
use serde_json::{Value, json};

const STREAM: &str = "c81b0e4f2a7d4e19b6c3a5d8e2f1b7c9";
const CALL: &str = "7f3e9a1c5b2d8e4f6a0c3b9d1e5f7a2c";
const ACCOUNT: &str = "parleydemo1";
const RATES: [SampleRate; 3] = [SampleRate::Hz8000, SampleRate::Hz16000, SampleRate::Hz24000];

fn connected() -> Value {
    json!({"event": "connected"})
}

fn start() -> Value {
    json!({
        "event": "start",
        "sequence_number": "1",
        "stream_sid": STREAM,
        "start": {
            "stream_sid": STREAM,
            "call_sid": CALL,
            "account_sid": ACCOUNT,
            "from": "09845012345",
            "to": "08047112233",
            "custom_parameters": {"tenant": "t_41", "key": "s3cr3t"},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "16000", "bit_rate": "16"}
        }
    })
}

/// 100 ms at 8 kHz: a ramp of 16-bit samples, little-endian.
fn pcm() -> Vec<u8> {
    (0..800i16)
        .flat_map(|i| (i * 37 - 14_000).to_le_bytes())
        .collect()
}

fn media() -> Value {
    json!({
        "event": "media",
        "sequence_number": "4",
        "stream_sid": STREAM,
        "media": {"chunk": "3", "timestamp": "300", "payload": STANDARD.encode(pcm())}
    })
}

fn dtmf() -> Value {
    json!({
        "event": "dtmf",
        "sequence_number": "12",
        "stream_sid": STREAM,
        "dtmf": {"digit": "9", "duration": "120"}
    })
}

fn mark() -> Value {
    json!({
        "event": "mark",
        "sequence_number": "20",
        "stream_sid": STREAM,
        "mark": {"name": "greeting"}
    })
}

fn stop() -> Value {
    json!({
        "event": "stop",
        "sequence_number": "31",
        "stream_sid": STREAM,
        "stop": {"call_sid": CALL, "account_sid": ACCOUNT, "reason": "callended"}
    })
}

fn all_frames() -> Vec<Value> {
    vec![connected(), start(), media(), dtmf(), mark(), stop()]
}

/// Fields Exotel may leave out.
const OPTIONAL: [&str; 5] = [
    "start.from",
    "start.to",
    "start.custom_parameters",
    "dtmf.duration",
    "stop.reason",
];

fn parse_value(frame: &Value) -> Result<Inbound, StreamError> {
    parse(&frame.to_string())
}

#[test]
fn every_event_is_read() {
    assert_eq!(parse_value(&connected()).unwrap(), Inbound::Connected);

    let Inbound::Start {
        sequence_number,
        stream_sid,
        start,
    } = parse_value(&start()).unwrap()
    else {
        panic!("not a start");
    };
    assert_eq!((sequence_number, stream_sid.as_str()), (1, STREAM));
    assert_eq!(start.stream_sid, STREAM);
    assert_eq!(start.call_sid, CALL);
    assert_eq!(start.account_sid, ACCOUNT);
    assert_eq!(start.from.as_deref(), Some("09845012345"));
    assert_eq!(start.to.as_deref(), Some("08047112233"));
    assert_eq!(start.custom_parameters["tenant"], "t_41");
    assert_eq!(start.media_format.encoding, "audio/x-raw");
    assert_eq!(start.media_format.sample_rate, SampleRate::Hz16000);
    assert_eq!(start.media_format.bit_rate, 16);

    let frame = parse_value(&media()).unwrap();
    assert_eq!(frame.stream_sid(), Some(STREAM));
    assert_eq!(frame.sequence_number(), Some(4));
    let Inbound::Media { media, .. } = frame else {
        panic!("not media");
    };
    assert_eq!((media.chunk, media.timestamp), (3, 300));
    assert_eq!(media.payload_bytes().unwrap(), pcm());
    let mut buffer = vec![7; 3];
    media.decode_payload_into(&mut buffer).unwrap();
    assert_eq!(buffer, pcm());

    let Inbound::Dtmf { dtmf, .. } = parse_value(&dtmf()).unwrap() else {
        panic!("not dtmf");
    };
    assert_eq!((dtmf.digit.as_str(), dtmf.duration), ("9", Some(120)));

    let Inbound::Mark { mark, .. } = parse_value(&mark()).unwrap() else {
        panic!("not a mark");
    };
    assert_eq!(mark.name, "greeting");

    let Inbound::Stop { stop, .. } = parse_value(&stop()).unwrap() else {
        panic!("not a stop");
    };
    assert_eq!(stop.call_sid, CALL);
    assert_eq!(stop.account_sid, ACCOUNT);
    assert_eq!(stop.reason.as_deref(), Some("callended"));
    assert_eq!(Inbound::Connected.stream_sid(), None);
}

#[test]
fn every_event_round_trips_as_exotel_writes_it() {
    for frame in all_frames() {
        let parsed = parse_value(&frame).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), frame);
        let text = serde_json::to_string(&parsed).unwrap();
        assert_eq!(parse(&text).unwrap(), parsed);
        assert_eq!(serde_json::from_str::<Inbound>(&text).unwrap(), parsed);
    }
}

#[test]
fn optional_fields_may_be_left_out() {
    for path in OPTIONAL {
        let (parent, key) = path.split_once('.').unwrap();
        for frame in all_frames() {
            if frame.get(parent).is_none() {
                continue;
            }
            let mut without = frame.clone();
            without[parent].as_object_mut().unwrap().remove(key);
            let parsed = parse_value(&without).unwrap();
            // And written back, it is still left out (no parameters are `{}`).
            let written = serde_json::to_value(&parsed).unwrap();
            if key == "custom_parameters" {
                assert_eq!(written[parent][key], json!({}));
            } else {
                assert_eq!(written, without, "{path}");
            }
            let mut null = frame.clone();
            null[parent][key] = Value::Null;
            assert_eq!(parse_value(&null).unwrap(), parsed);
        }
    }
}

#[test]
fn numbers_are_read_from_strings_or_integers() {
    let mut frame = start();
    frame["sequence_number"] = json!(1);
    frame["start"]["media_format"]["sample_rate"] = json!(16000);
    frame["start"]["media_format"]["bit_rate"] = json!(16);
    assert_eq!(parse_value(&frame).unwrap(), parse_value(&start()).unwrap());

    for (value, message) in [
        (json!("300ms"), r#""300ms" is not a whole number"#),
        (json!(""), r#""" is not a whole number"#),
        (json!(-1), r#""-1" is not a whole number"#),
        (
            json!(false),
            "expected a whole number or a string of digits, found a boolean",
        ),
    ] {
        let mut frame = media();
        frame["media"]["timestamp"] = value;
        assert_eq!(
            parse_value(&frame).unwrap_err().to_string(),
            format!("field media.timestamp: {message}")
        );
    }
}

#[test]
fn only_the_documented_sample_rates_are_read() {
    for (given, rate) in [
        ("8000", SampleRate::Hz8000),
        ("16000", SampleRate::Hz16000),
        ("24000", SampleRate::Hz24000),
    ] {
        let mut frame = start();
        frame["start"]["media_format"]["sample_rate"] = json!(given);
        let Inbound::Start { start, .. } = parse_value(&frame).unwrap() else {
            panic!("not a start");
        };
        assert_eq!(start.media_format.sample_rate, rate);
        assert_eq!(rate.hz().to_string(), given);
        assert_eq!(SampleRate::from_hz(rate.hz()), Some(rate));
    }
    for given in [json!("44100"), json!(0), json!("99999999999")] {
        let mut frame = start();
        frame["start"]["media_format"]["sample_rate"] = given.clone();
        let error = parse_value(&frame).unwrap_err().to_string();
        assert!(
            error.starts_with("field start.media_format.sample_rate: unsupported sample rate"),
            "{given}: {error}"
        );
    }
}

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
        if key != "custom_parameters" {
            field_paths(child, &path, paths);
        }
    }
}

fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

#[test]
fn every_missing_or_mistyped_field_is_named() {
    for frame in all_frames() {
        let mut paths = Vec::new();
        field_paths(&frame, "", &mut paths);
        for path in paths {
            let optional = OPTIONAL.contains(&path.as_str());
            if !optional {
                let mut broken = frame.clone();
                let (parent, key) = path.rsplit_once('.').unwrap_or(("", &path));
                let parent = if parent.is_empty() {
                    &mut broken
                } else {
                    broken.pointer_mut(&pointer(parent)).unwrap()
                };
                parent.as_object_mut().unwrap().remove(key);
                assert_eq!(
                    parse_value(&broken).unwrap_err().to_string(),
                    format!("field {path}: missing")
                );
            }
            let original = frame.pointer(&pointer(&path)).unwrap();
            let other_kind = if original.is_object() {
                json!("text")
            } else {
                json!({"x": 1})
            };
            for wrong in [json!(true), json!([]), other_kind] {
                let mut broken = frame.clone();
                *broken.pointer_mut(&pointer(&path)).unwrap() = wrong.clone();
                match parse_value(&broken) {
                    Err(StreamError::Field {
                        path: named,
                        problem: Problem::WrongType { .. },
                    }) => assert_eq!(named, path),
                    other => panic!("{wrong} at {path}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn garbage_is_refused_and_named() {
    assert_eq!(parse("").unwrap_err().to_string(), "empty frame");
    assert!(
        parse("not json")
            .unwrap_err()
            .to_string()
            .starts_with("not JSON: ")
    );
    assert!(matches!(
        parse(r#"{"event":"media","stream_sid":"#).unwrap_err(),
        StreamError::NotJson(_)
    ));
    assert_eq!(
        parse("[1,2]").unwrap_err().to_string(),
        "not a JSON object: found an array"
    );
    assert_eq!(
        parse(r#"{"event":"transfer","sequence_number":"3"}"#)
            .unwrap_err()
            .to_string(),
        r#"unknown event "transfer""#
    );
    // Twilio's names are not Exotel's.
    let twilio = r#"{"event":"mark","sequenceNumber":"20","streamSid":"s","mark":{"name":"a"}}"#;
    assert_eq!(
        parse(twilio).unwrap_err().to_string(),
        "field sequence_number: missing"
    );
    let deep = format!(
        r#"{{"event":"stop","stop":{}{}}}"#,
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    );
    assert!(
        parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("recursion limit")
    );
    let huge = format!(
        r#"{{"event":"connected","pad":"{}"}}"#,
        " ".repeat(MAX_FRAME_BYTES)
    );
    assert!(matches!(
        parse(&huge).unwrap_err(),
        StreamError::TooLarge {
            limit: MAX_FRAME_BYTES,
            ..
        }
    ));
    for frame in all_frames() {
        let text = frame.to_string();
        for end in 0..text.len() {
            assert!(parse(&text[..end]).is_err(), "{}", &text[..end]);
        }
    }
}

fn media_with_payload(payload: &str) -> Media {
    Media {
        chunk: 1,
        timestamp: 100,
        payload: payload.to_owned(),
    }
}

#[test]
fn payloads_must_be_base64_whole_samples_under_the_limit() {
    let error = media_with_payload("%%%%").payload_bytes().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("field media.payload: not base64: "),
        "{error}"
    );

    let mut buffer = vec![1; 4];
    let error = media_with_payload(&STANDARD.encode([1, 2, 3]))
        .decode_payload_into(&mut buffer)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "field media.payload: 3 bytes is not a whole number of 16-bit samples"
    );
    assert!(buffer.is_empty());

    let at_limit = STANDARD.encode(vec![0; MAX_PAYLOAD_BYTES]);
    assert_eq!(
        media_with_payload(&at_limit).payload_bytes().unwrap().len(),
        MAX_PAYLOAD_BYTES
    );
    let over = STANDARD.encode(vec![0; MAX_PAYLOAD_BYTES + 2]);
    assert_eq!(
        media_with_payload(&over)
            .payload_bytes()
            .unwrap_err()
            .to_string(),
        "field media.payload: decodes to more than 16384 bytes"
    );
}

#[test]
fn outbound_frames_are_exotels() {
    let chunk = vec![0x10; 3200];
    let sent: Value = serde_json::from_str(&exotel_stream::media(STREAM, &chunk)).unwrap();
    assert_eq!(
        sent,
        json!({"event": "media", "stream_sid": STREAM, "media": {"payload": STANDARD.encode(&chunk)}})
    );
    let sent: Value = serde_json::from_str(&exotel_stream::mark(STREAM, "greeting")).unwrap();
    assert_eq!(
        sent,
        json!({"event": "mark", "stream_sid": STREAM, "mark": {"name": "greeting"}})
    );
    let sent: Value = serde_json::from_str(&exotel_stream::clear(STREAM)).unwrap();
    assert_eq!(sent, json!({"event": "clear", "stream_sid": STREAM}));
}

#[test]
fn chunk_sizes_per_rate() {
    assert_eq!(SampleRate::Hz8000.chunk_bytes(), 3200);
    assert_eq!(SampleRate::Hz16000.chunk_bytes(), 3200);
    assert_eq!(SampleRate::Hz24000.chunk_bytes(), 4800);
    for rate in RATES {
        let bytes = rate.chunk_bytes();
        assert_eq!(bytes % CHUNK_MULTIPLE_BYTES, 0);
        assert!(bytes >= MIN_CHUNK_BYTES);
        // At least 100 ms of 16-bit mono audio.
        assert!(bytes * 10 >= rate.bytes_per_second(), "{rate:?}");
    }
}

fn check_chunks(pcm: &[u8], rate: SampleRate, chunks: &[Vec<u8>]) {
    let size = rate.chunk_bytes();
    assert_eq!(
        chunks.len(),
        pcm.len().div_ceil(size),
        "{rate:?} {}",
        pcm.len()
    );
    for chunk in chunks {
        assert_eq!(chunk.len(), size);
        assert_eq!(chunk.len() % CHUNK_MULTIPLE_BYTES, 0);
        // 100 ms: rate samples a second, 2 bytes each.
        assert!(chunk.len() as u64 * 1000 >= u64::from(rate.hz()) * 2 * 100);
    }
    let joined: Vec<u8> = chunks.concat();
    // Every byte of audio, in order, then only zeros.
    assert_eq!(&joined[..pcm.len()], pcm);
    assert!(joined[pcm.len()..].iter().all(|&b| b == 0));
    assert!(joined.len() - pcm.len() < size);
}

#[test]
fn chunks_are_whole_padded_with_silence_and_lose_nothing() {
    for rate in RATES {
        let size = rate.chunk_bytes();
        for len in [
            0,
            1,
            2,
            319,
            320,
            321,
            size - 1,
            size,
            size + 1,
            2 * size,
            10 * size + 640,
            48_001,
        ] {
            let pcm: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            check_chunks(&pcm, rate, &outbound_chunks(&pcm, rate));
        }
    }
    assert!(outbound_chunks(&[], SampleRate::Hz8000).is_empty());
}

#[test]
fn a_chunker_fed_in_pieces_cuts_the_same_chunks() {
    let mut noise = 0x1234_5678_9ABC_DEF1_u64;
    let mut next = move |n: usize| {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        (noise % n as u64) as usize
    };
    for rate in RATES {
        for _ in 0..50 {
            let len = next(40_000);
            let pcm: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let mut chunker = Chunker::new(rate);
            let mut chunks = Vec::new();
            let mut rest = &pcm[..];
            while !rest.is_empty() {
                let take = (1 + next(5000)).min(rest.len());
                chunker.push(&rest[..take], &mut chunks);
                rest = &rest[take..];
                assert!(chunker.pending_bytes() < rate.chunk_bytes());
            }
            chunks.extend(chunker.finish());
            assert_eq!(chunker.pending_bytes(), 0);
            assert_eq!(chunker.finish(), None);
            assert_eq!(chunks, outbound_chunks(&pcm, rate));
            check_chunks(&pcm, rate, &chunks);
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut state = 0xC0FF_EE00_D15E_A5E5_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let frames: Vec<Vec<u8>> = all_frames()
        .iter()
        .map(|frame| frame.to_string().into_bytes())
        .collect();
    let alphabet = br#"{}[]":,\ 0123456789-.=_abcdefghijklmnopqrstuvwxyz"#;
    for round in 0..30_000 {
        let bytes: Vec<u8> = if round % 3 == 0 {
            (0..next() % 160).map(|_| next() as u8).collect()
        } else {
            let mut bytes = frames[(next() % frames.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 4 {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() % bytes.len() as u64) as usize;
                if next() % 2 == 0 {
                    bytes[at] = alphabet[(next() % alphabet.len() as u64) as usize];
                } else {
                    let end = (at + 1 + (next() % 6) as usize).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
            bytes
        };
        if let Ok(Inbound::Media { media, .. }) = parse(&String::from_utf8_lossy(&bytes)) {
            let _ = media.payload_bytes();
        }
    }
}
