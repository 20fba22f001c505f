//! The Deepgram client against the local Deepgram server, over real loopback
//! WebSockets: caller audio synthesised here (bursts of tone and noise between
//! silences), transcripts from the server's script.

use std::time::Duration;

use bytes::Bytes;
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::stt::{SpeechToText, SttConfig, SttEvent, SttStream};
use parley_media::vendor::{Endpoint, VendorError};
use parley_shared::secrets::SecretString;
use parley_vendors::deepgram::{self, Behaviour};

const SCRIPT: [&str; 3] = [
    "Hello there.",
    "I'd like to see the flat on Monday.",
    "Thank you.",
];

#[derive(Clone, Copy)]
enum Sound {
    Silence,
    Tone,
    Noise,
}

/// 16-bit little-endian PCM: each `(sound, ms)` in turn.
fn audio(rate: u32, pattern: &[(Sound, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seed: u32 = 0x2545_f491;
    for &(sound, ms) in pattern {
        for i in 0..rate * ms / 1000 {
            let sample = match sound {
                Sound::Silence => 0.0,
                Sound::Tone => {
                    6000.0
                        * (2.0 * std::f64::consts::PI * 300.0 * f64::from(i) / f64::from(rate))
                            .sin()
                }
                Sound::Noise => {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    f64::from((seed >> 16) as u16 as i16) / 4.0
                }
            };
            out.extend_from_slice(&(sample as i16).to_le_bytes());
        }
    }
    out
}

/// Three utterances: the first two followed by enough silence to end them, the last
/// still going when the audio stops.
fn three_utterances(rate: u32) -> Vec<u8> {
    audio(
        rate,
        &[
            (Sound::Silence, 200),
            (Sound::Tone, 300),
            (Sound::Silence, 500),
            (Sound::Noise, 300),
            (Sound::Silence, 500),
            (Sound::Tone, 300),
            (Sound::Silence, 60),
        ],
    )
}

fn config(rate: u32) -> SttConfig {
    SttConfig {
        sample_rate: rate,
        language: "en-US".into(),
        endpointing_ms: 300,
    }
}

fn client(base: &str, key: &str) -> DeepgramStt {
    DeepgramStt::new(Endpoint::new(base, SecretString::new(key.to_owned())))
}

/// Sends `pcm` in 20 ms chunks, as a session does.
async fn send(stream: &SttStream, rate: u32, pcm: &[u8]) {
    let chunk = (rate as usize / 50) * 2;
    for piece in pcm.chunks(chunk) {
        stream
            .audio
            .send(Bytes::copy_from_slice(piece))
            .await
            .expect("the stream is open");
    }
}

/// Every event until the channel ends.
async fn all_events(events: &mut tokio::sync::mpsc::Receiver<SttEvent>) -> Vec<SttEvent> {
    let mut out = Vec::new();
    let gather = async {
        while let Some(event) = events.recv().await {
            out.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gather)
        .await
        .expect("the events channel ends");
    out
}

fn finals(events: &[SttEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SttEvent::Final {
                text,
                end_of_speech,
            } => Some((text.clone(), *end_of_speech)),
            _ => None,
        })
        .collect()
}

fn count(events: &[SttEvent], what: fn(&SttEvent) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

async fn transcribe_three_utterances(rate: u32, base: impl Fn(&str) -> String) {
    let server = deepgram::start(SCRIPT.iter().map(|s| s.to_string()).collect())
        .await
        .unwrap();
    let stt = client(&base(&server.url()), server.key());
    let mut stream = stt.open(&config(rate)).await.unwrap();
    let pcm = three_utterances(rate);
    send(&stream, rate, &pcm).await;
    // The caller hangs up while still speaking: the last words must still come.
    drop(stream.audio);
    let events = all_events(&mut stream.events).await;

    assert_eq!(
        finals(&events),
        [
            (SCRIPT[0].to_owned(), true),
            (SCRIPT[1].to_owned(), true),
            (SCRIPT[2].to_owned(), false),
        ],
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, SttEvent::Failed(_))),
        "{events:?}"
    );
    assert_eq!(events.first(), Some(&SttEvent::SpeechStarted));
    assert_eq!(count(&events, |e| matches!(e, SttEvent::SpeechStarted)), 3);
    assert_eq!(count(&events, |e| matches!(e, SttEvent::UtteranceEnd)), 2);
    // Interims come before their final and are a prefix of what it settles on.
    let first_final = events
        .iter()
        .position(|e| matches!(e, SttEvent::Final { .. }))
        .unwrap();
    match &events[1..first_final] {
        [SttEvent::Interim { text }, ..] => assert!(SCRIPT[0].starts_with(text.as_str())),
        other => panic!("expected an interim first, got {other:?}"),
    }

    let connections = server.connections();
    assert_eq!(connections.len(), 1);
    let seen = &connections[0];
    assert_eq!(
        seen.authorization.as_deref(),
        Some(format!("Token {}", server.key()).as_str())
    );
    let query: Vec<(&str, &str)> = seen
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rate_text = rate.to_string();
    let mut expected = vec![
        ("channels", "1"),
        ("encoding", "linear16"),
        ("endpointing", "300"),
        ("interim_results", "true"),
        ("language", "en-US"),
        ("model", "nova-3"),
        ("sample_rate", rate_text.as_str()),
        ("smart_format", "true"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
    ];
    expected.sort();
    assert_eq!(query, expected);
    assert_eq!(seen.audio_bytes, pcm.len());
    assert!(seen.close_stream);
    assert_eq!(seen.finals, SCRIPT);
    assert!(server.wait_ended(0, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn finals_come_in_order_at_8_khz_and_closing_delivers_the_last() {
    transcribe_three_utterances(8_000, str::to_owned).await;
}

#[tokio::test]
async fn finals_come_in_order_at_16_khz_through_an_http_base_url() {
    transcribe_three_utterances(16_000, |ws| ws.replacen("ws://", "http://", 1)).await;
}

#[tokio::test]
async fn a_chosen_model_is_asked_for() {
    let server = deepgram::start(vec!["Yes.".into()]).await.unwrap();
    let stt = client(&server.url(), server.key()).with_model("nova-2-phonecall");
    let mut stream = stt.open(&config(8_000)).await.unwrap();
    send(
        &stream,
        8_000,
        &audio(8_000, &[(Sound::Tone, 200), (Sound::Silence, 400)]),
    )
    .await;
    drop(stream.audio);
    let events = all_events(&mut stream.events).await;
    assert_eq!(finals(&events), [("Yes.".to_owned(), true)]);
    assert_eq!(
        server.connections()[0]
            .query
            .get("model")
            .map(String::as_str),
        Some("nova-2-phonecall")
    );
}

/// Long silences (the agent talking, the caller listening) must not let Deepgram hang
/// up: the client keeps the stream alive. Without keep-alives the same silence ends it.
#[tokio::test]
async fn keep_alives_hold_a_silent_stream_open() {
    let behaviour = Behaviour {
        idle_timeout: Duration::from_millis(300),
        ..Behaviour::default()
    };
    let utterance = audio(8_000, &[(Sound::Tone, 200), (Sound::Silence, 400)]);

    let server = deepgram::start_with(vec!["One.".into(), "Two.".into()], behaviour.clone())
        .await
        .unwrap();
    let stt = client(&server.url(), server.key()).with_keep_alive_after(Duration::from_millis(100));
    let mut stream = stt.open(&config(8_000)).await.unwrap();
    send(&stream, 8_000, &utterance).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    send(&stream, 8_000, &utterance).await;
    drop(stream.audio);
    let events = all_events(&mut stream.events).await;
    assert_eq!(
        finals(&events),
        [("One.".to_owned(), true), ("Two.".to_owned(), true)],
        "{events:?}"
    );
    let seen = &server.connections()[0];
    assert!(seen.keep_alives >= 1, "{seen:?}");
    assert!(!seen.idle_closed);

    // The control: keep-alives too rare for this server, so it hangs up mid-call.
    let server = deepgram::start_with(vec!["One.".into()], behaviour)
        .await
        .unwrap();
    let stt = client(&server.url(), server.key()).with_keep_alive_after(Duration::from_secs(30));
    let mut stream = stt.open(&config(8_000)).await.unwrap();
    send(&stream, 8_000, &utterance).await;
    let events = all_events(&mut stream.events).await;
    assert!(server.connections()[0].idle_closed);
    assert_eq!(finals(&events), [("One.".to_owned(), true)]);
    assert!(
        matches!(
            events.last(),
            Some(SttEvent::Failed(VendorError::Closed { .. }))
        ),
        "{events:?}"
    );
    // The stream is gone: audio is refused rather than queued for nobody.
    assert!(
        stream
            .audio
            .send(Bytes::from_static(&[0, 0]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401() {
    let server = deepgram::start(vec![]).await.unwrap();
    let wrong = "dg-wrong-key-5555";
    let error = client(&server.url(), wrong)
        .open(&config(8_000))
        .await
        .err()
        .expect("refused");
    match &error {
        VendorError::Status { status, detail, .. } => {
            assert_eq!(*status, 401);
            assert!(!detail.contains(wrong));
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains(wrong));
    assert_eq!(
        server.connections()[0].authorization.as_deref(),
        Some("Token dg-wrong-key-5555")
    );
}

#[tokio::test]
async fn refusals_keep_their_status() {
    for status in [429, 500, 503] {
        let behaviour = Behaviour {
            refuse_with: Some(status),
            ..Behaviour::default()
        };
        let server = deepgram::start_with(vec![], behaviour).await.unwrap();
        let error = client(&server.url(), server.key())
            .open(&config(16_000))
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&error, VendorError::Status { status: s, .. } if *s == status),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn nobody_listening_is_a_connect_failure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = client(&format!("ws://{addr}"), "k")
        .open(&config(8_000))
        .await
        .err()
        .expect("no server");
    assert!(matches!(error, VendorError::Connect { .. }), "{error:?}");
}

#[tokio::test]
async fn a_dropped_socket_fails_the_stream_after_what_came_before() {
    let behaviour = Behaviour {
        drop_after_finals: Some(1),
        ..Behaviour::default()
    };
    let server = deepgram::start_with(SCRIPT.iter().map(|s| s.to_string()).collect(), behaviour)
        .await
        .unwrap();
    let mut stream = client(&server.url(), server.key())
        .open(&config(8_000))
        .await
        .unwrap();
    let pcm = three_utterances(8_000);
    // The audio sender stays open: the failure alone must end the events.
    let sending = async {
        for piece in pcm.chunks(320) {
            if stream
                .audio
                .send(Bytes::copy_from_slice(piece))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let (_, events) = tokio::join!(sending, all_events(&mut stream.events));
    assert_eq!(
        finals(&events),
        [(SCRIPT[0].to_owned(), true)],
        "{events:?}"
    );
    assert!(
        matches!(
            events.last(),
            Some(SttEvent::Failed(VendorError::Closed { .. }))
        ),
        "{events:?}"
    );
    assert_eq!(count(&events, |e| matches!(e, SttEvent::Failed(_))), 1);
}

#[tokio::test]
async fn garbage_from_the_vendor_is_a_protocol_failure() {
    let behaviour = Behaviour {
        garbage_instead_of_final: true,
        ..Behaviour::default()
    };
    let server = deepgram::start_with(SCRIPT.iter().map(|s| s.to_string()).collect(), behaviour)
        .await
        .unwrap();
    let mut stream = client(&server.url(), server.key())
        .open(&config(16_000))
        .await
        .unwrap();
    send(&stream, 16_000, &three_utterances(16_000)).await;
    let events = all_events(&mut stream.events).await;
    assert!(finals(&events).is_empty(), "{events:?}");
    assert!(
        matches!(
            events.last(),
            Some(SttEvent::Failed(VendorError::Protocol { .. }))
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn dropping_the_events_hangs_up() {
    let server = deepgram::start(vec![]).await.unwrap();
    let stream = client(&server.url(), server.key())
        .open(&config(8_000))
        .await
        .unwrap();
    send(&stream, 8_000, &audio(8_000, &[(Sound::Silence, 100)])).await;
    drop(stream.events);
    assert!(server.wait_ended(0, Duration::from_secs(5)).await);
    // Audio is not sent to a stream nobody reads.
    let _keep = stream.audio;
}
