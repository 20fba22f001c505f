//! The text-to-speech clients against local servers that speak each vendor's wire
//! protocol over real loopback HTTP, and the offline flite voice.
//!
//! The servers answer with a tone lasting 60 ms per character (see
//! `parley_vendors::speech`), so the audio a client hands on can be compared byte for
//! byte with what the server made for the text.

use std::time::Duration;

use bytes::Bytes;
use parley_media::audio::{AudioFormat, Encoding as AudioEncoding};
use parley_media::g711;
use parley_media::tts::cartesia::{self, Cartesia, CartesiaVoice};
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::tts::flite::Flite;
use parley_media::tts::openai::{OpenAiSpeech, OpenAiVoice};
use parley_media::tts::{Speech, TextToSpeech};
use parley_media::vendor::{Endpoint, VendorError};
use parley_shared::secrets::SecretString;
use parley_vendors::speech::{self, Encoding, SpeechServer, StreamEnd};
use serde_json::{Value, json};

const TEXT: &str = "Thanks for calling Parley, how can I help you today?";

/// Long enough that a stream is still going when a test walks away from it.
fn long_text() -> String {
    "This sentence is long so that its audio streams for a while. ".repeat(4)
}

#[derive(Clone, Copy, Debug)]
enum Vendor {
    ElevenLabs,
    Cartesia,
    OpenAi,
}

/// The speed each vendor's voice is set to, so the servers' durations show it was sent.
fn speed(vendor: Vendor) -> f32 {
    match vendor {
        Vendor::ElevenLabs => 1.1,
        Vendor::Cartesia => 1.25,
        Vendor::OpenAi => 1.5,
    }
}

async fn server(vendor: Vendor) -> SpeechServer {
    match vendor {
        Vendor::ElevenLabs => parley_vendors::elevenlabs::start().await.unwrap(),
        Vendor::Cartesia => parley_vendors::cartesia::start().await.unwrap(),
        Vendor::OpenAi => parley_vendors::openai_speech::start().await.unwrap(),
    }
}

fn client(vendor: Vendor, server: &SpeechServer, key: &str) -> Box<dyn TextToSpeech> {
    let endpoint = Endpoint::new(&server.url(), SecretString::new(key.to_owned()));
    match vendor {
        Vendor::ElevenLabs => {
            let mut voice = ElevenLabsVoice::new("voice-123");
            voice.speed = Some(speed(vendor));
            Box::new(ElevenLabs::new(endpoint, voice))
        }
        Vendor::Cartesia => {
            let mut voice = CartesiaVoice::new("a0e99841-438c-4a64-b679-ae501e7d6091");
            voice.speed = Some(speed(vendor));
            Box::new(Cartesia::new(endpoint, voice))
        }
        Vendor::OpenAi => Box::new(OpenAiSpeech::new(
            endpoint,
            OpenAiVoice {
                voice: "coral".to_owned(),
                speed: Some(speed(vendor)),
                ..OpenAiVoice::default()
            },
        )),
    }
}

async fn setup(vendor: Vendor) -> (SpeechServer, Box<dyn TextToSpeech>) {
    let server = server(vendor).await;
    let tts = client(vendor, &server, server.key());
    (server, tts)
}

/// The bytes the vendor's server makes for `text`.
fn expected(vendor: Vendor, text: &str) -> Vec<u8> {
    let speed = f64::from(speed(vendor));
    match vendor {
        Vendor::ElevenLabs | Vendor::Cartesia => speech::audio(text, Encoding::Mulaw, 8_000, speed),
        Vendor::OpenAi => speech::audio(text, Encoding::Linear16, 24_000, speed),
    }
}

/// Every chunk until the end, and the error that ended it, if one did.
async fn drain(mut speech: Speech) -> (Vec<Bytes>, Option<VendorError>) {
    let mut chunks = Vec::new();
    while let Some(item) = speech.recv().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => {
                assert!(speech.recv().await.is_none(), "nothing may follow an error");
                return (chunks, Some(error));
            }
        }
    }
    (chunks, None)
}

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

/// Decodes μ-law and checks it is the servers' tone, within μ-law's rounding.
fn assert_mulaw_tone(bytes: &[u8], text: &str, speed: f64) {
    let mut pcm = Vec::new();
    g711::decode_ulaw_into(bytes, &mut pcm);
    let tone = speech::tone(text, 8_000, speed);
    assert_eq!(pcm.len(), tone.len());
    for (got, want) in pcm.iter().zip(&tone) {
        assert!(
            (i32::from(*got) - i32::from(*want)).abs() <= 256,
            "{got} is not {want}"
        );
    }
    assert!(
        pcm.iter().any(|s| s.unsigned_abs() > 7_000),
        "the tone is audible"
    );
}

async fn speaks_the_whole_text(vendor: Vendor) -> (SpeechServer, Vec<Bytes>) {
    let (server, tts) = setup(vendor).await;
    let (chunks, error) = drain(tts.speak(TEXT).await.unwrap()).await;
    assert_eq!(error, None);
    assert!(
        chunks.len() > 1,
        "the audio came in {} chunk(s)",
        chunks.len()
    );
    let audio = concat(&chunks);
    let want = expected(vendor, TEXT);
    assert_eq!(audio.len(), want.len());
    assert!(audio == want, "the audio differs from what the server made");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].end, Some(StreamEnd::Completed));
    (server, chunks)
}

#[tokio::test]
async fn elevenlabs_streams_the_text_as_mulaw_8k() {
    let vendor = Vendor::ElevenLabs;
    let (_, tts) = setup(vendor).await;
    assert_eq!(tts.format(), AudioFormat::MULAW_8K);
    let (server, chunks) = speaks_the_whole_text(vendor).await;
    assert_mulaw_tone(&concat(&chunks), TEXT, f64::from(speed(vendor)));

    let request = &server.requests()[0];
    assert_eq!(request.path, "/v1/text-to-speech/voice-123/stream");
    assert_eq!(request.query.as_deref(), Some("output_format=ulaw_8000"));
    assert_eq!(request.header("xi-api-key"), Some(server.key()));
    assert_eq!(request.body["text"], TEXT);
    assert_eq!(request.body["model_id"], "eleven_flash_v2_5");
    let sent_speed = request.body["voice_settings"]["speed"].as_f64().unwrap();
    assert!((sent_speed - 1.1).abs() < 1e-6);
}

#[tokio::test]
async fn cartesia_streams_the_text_as_mulaw_8k() {
    let vendor = Vendor::Cartesia;
    let (_, tts) = setup(vendor).await;
    assert_eq!(tts.format(), AudioFormat::MULAW_8K);
    let (server, chunks) = speaks_the_whole_text(vendor).await;
    assert_mulaw_tone(&concat(&chunks), TEXT, f64::from(speed(vendor)));

    let request = &server.requests()[0];
    assert_eq!(request.path, "/tts/bytes");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", server.key()).as_str())
    );
    assert_eq!(
        request.header("cartesia-version"),
        Some(cartesia::API_VERSION)
    );
    assert!(parley_vendors::cartesia::VERSIONS.contains(&cartesia::API_VERSION));
    assert_eq!(request.body["transcript"], TEXT);
    assert_eq!(request.body["model_id"], "sonic-2");
    assert_eq!(
        request.body["voice"],
        json!({ "mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091" })
    );
    assert_eq!(
        request.body["output_format"],
        json!({ "container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000 })
    );
    assert_eq!(request.body["language"], "en");
    assert_eq!(request.body["generation_config"]["speed"], 1.25);
}

#[tokio::test]
async fn openai_streams_whole_24k_samples_across_odd_chunk_boundaries() {
    let vendor = Vendor::OpenAi;
    let (server, tts) = setup(vendor).await;
    assert_eq!(tts.format(), AudioFormat::linear16(24_000));
    assert_eq!(tts.format().encoding, AudioEncoding::Linear16);
    // Odd chunks, sent apart, so the client sees boundaries inside samples.
    server.set_chunk_bytes(999);
    server.set_chunk_delay(Duration::from_millis(3));
    let (chunks, error) = drain(tts.speak(TEXT).await.unwrap()).await;
    assert_eq!(error, None);
    assert!(chunks.len() > 1);
    for chunk in &chunks {
        assert_eq!(
            chunk.len() % 2,
            0,
            "a chunk of {} bytes splits a sample",
            chunk.len()
        );
    }
    let audio = concat(&chunks);
    assert!(
        audio == expected(vendor, TEXT),
        "the samples differ from what the server made"
    );
    let mut samples = Vec::new();
    parley_media::audio::pcm_from_le(&audio, &mut samples);
    assert_eq!(
        samples,
        speech::tone(TEXT, 24_000, f64::from(speed(vendor)))
    );

    let request = &server.requests()[0];
    assert_eq!(request.path, "/v1/audio/speech");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", server.key()).as_str())
    );
    assert_eq!(
        request.body,
        json!({
            "model": "gpt-4o-mini-tts",
            "input": TEXT,
            "voice": "coral",
            "response_format": "pcm",
            "speed": 1.5,
        })
    );
    assert_eq!(request.end, Some(StreamEnd::Completed));
}

async fn retries_once_before_the_first_byte(vendor: Vendor, status: u16) {
    let (server, tts) = setup(vendor).await;
    server.fail_next(status, 1);
    let (chunks, error) = drain(tts.speak(TEXT).await.unwrap()).await;
    assert_eq!(error, None);
    assert!(concat(&chunks) == expected(vendor, TEXT));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [status, 200]);
}

async fn gives_up_after_one_retry(vendor: Vendor) {
    let (server, tts) = setup(vendor).await;
    server.fail_next(500, 2);
    let error = tts.speak(TEXT).await.unwrap_err();
    assert!(
        matches!(error, VendorError::Status { status: 500, .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 2, "one try and one retry, no more");
}

async fn a_refused_key_is_not_retried(vendor: Vendor) {
    let server = server(vendor).await;
    let wrong = "sk-wrong-key-0123456789";
    let tts = client(vendor, &server, wrong);
    let error = tts.speak(TEXT).await.unwrap_err();
    let VendorError::Status { status, detail, .. } = &error else {
        panic!("expected a status error, got {error:?}");
    };
    assert_eq!(*status, 401);
    assert!(!detail.is_empty(), "the vendor's reason is kept");
    assert!(
        !error.to_string().contains(wrong),
        "the key leaked: {error}"
    );
    assert!(
        !format!("{error:?}").contains(wrong),
        "the key leaked: {error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

async fn a_cut_body_yields_what_came_then_an_error(vendor: Vendor, sample_bytes: usize) {
    let (server, tts) = setup(vendor).await;
    if sample_bytes == 2 {
        // The server cuts after about half, on a chunk boundary: an odd number of odd
        // chunks puts the cut inside a sample.
        let half = expected(vendor, &long_text()).len() / 2;
        let chunk = (1001..).step_by(2).find(|c| (half / c) % 2 == 1).unwrap();
        server.set_chunk_bytes(chunk);
    }
    server.cut_next(1);
    let (chunks, error) = drain(tts.speak(&long_text()).await.unwrap()).await;
    assert!(
        matches!(error, Some(VendorError::Closed { .. })),
        "{error:?}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "audio had started: no retry");
    assert_eq!(requests[0].end, Some(StreamEnd::Cut));
    let sent = requests[0].bytes_sent;
    assert!(sent > 0 && sent < requests[0].audio_len);
    if sample_bytes == 2 {
        assert_eq!(sent % 2, 1, "the cut should fall inside a sample");
    }
    let got = concat(&chunks);
    // Everything the server sent, less a partial sample at the cut.
    assert_eq!(got.len(), sent - sent % sample_bytes);
    assert!(got[..] == expected(vendor, &long_text())[..got.len()]);
}

async fn dropping_the_speech_stops_the_stream(vendor: Vendor) {
    let (server, tts) = setup(vendor).await;
    server.set_chunk_delay(Duration::from_millis(20));
    let mut speech = tts.speak(&long_text()).await.unwrap();
    assert!(matches!(speech.recv().await, Some(Ok(_))));
    drop(speech);
    let end = server.wait_for_end(0, Duration::from_secs(5)).await;
    assert_eq!(end, Some(StreamEnd::Abandoned));
    let request = &server.requests()[0];
    assert!(
        request.bytes_sent < request.audio_len,
        "{} of {} bytes were sent",
        request.bytes_sent,
        request.audio_len
    );
}

async fn blank_text_is_silence_without_a_request(vendor: Vendor) {
    let (server, tts) = setup(vendor).await;
    for text in ["", "  \n\t "] {
        let (chunks, error) = drain(tts.speak(text).await.unwrap()).await;
        assert!(chunks.is_empty());
        assert_eq!(error, None);
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn elevenlabs_retries_a_500_once() {
    retries_once_before_the_first_byte(Vendor::ElevenLabs, 500).await;
}

#[tokio::test]
async fn cartesia_retries_a_429_once() {
    retries_once_before_the_first_byte(Vendor::Cartesia, 429).await;
}

#[tokio::test]
async fn openai_retries_a_500_once() {
    retries_once_before_the_first_byte(Vendor::OpenAi, 500).await;
}

#[tokio::test]
async fn elevenlabs_gives_up_after_one_retry() {
    gives_up_after_one_retry(Vendor::ElevenLabs).await;
}

#[tokio::test]
async fn cartesia_gives_up_after_one_retry() {
    gives_up_after_one_retry(Vendor::Cartesia).await;
}

#[tokio::test]
async fn openai_gives_up_after_one_retry() {
    gives_up_after_one_retry(Vendor::OpenAi).await;
}

#[tokio::test]
async fn elevenlabs_refused_key_is_a_401_without_retry() {
    a_refused_key_is_not_retried(Vendor::ElevenLabs).await;
}

#[tokio::test]
async fn cartesia_refused_key_is_a_401_without_retry() {
    a_refused_key_is_not_retried(Vendor::Cartesia).await;
}

#[tokio::test]
async fn openai_refused_key_is_a_401_without_retry() {
    a_refused_key_is_not_retried(Vendor::OpenAi).await;
}

#[tokio::test]
async fn elevenlabs_cut_body_ends_in_an_error() {
    a_cut_body_yields_what_came_then_an_error(Vendor::ElevenLabs, 1).await;
}

#[tokio::test]
async fn cartesia_cut_body_ends_in_an_error() {
    a_cut_body_yields_what_came_then_an_error(Vendor::Cartesia, 1).await;
}

#[tokio::test]
async fn openai_cut_body_ends_in_an_error_on_a_whole_sample() {
    a_cut_body_yields_what_came_then_an_error(Vendor::OpenAi, 2).await;
}

#[tokio::test]
async fn elevenlabs_dropping_the_speech_stops_the_stream() {
    dropping_the_speech_stops_the_stream(Vendor::ElevenLabs).await;
}

#[tokio::test]
async fn cartesia_dropping_the_speech_stops_the_stream() {
    dropping_the_speech_stops_the_stream(Vendor::Cartesia).await;
}

#[tokio::test]
async fn openai_dropping_the_speech_stops_the_stream() {
    dropping_the_speech_stops_the_stream(Vendor::OpenAi).await;
}

#[tokio::test]
async fn blank_text_calls_no_vendor() {
    for vendor in [Vendor::ElevenLabs, Vendor::Cartesia, Vendor::OpenAi] {
        blank_text_is_silence_without_a_request(vendor).await;
    }
}

#[tokio::test]
async fn an_unreachable_vendor_is_a_connect_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = Endpoint::new(
        &format!("http://127.0.0.1:{port}"),
        SecretString::new("sk-unused".to_owned()),
    );
    let tts = ElevenLabs::new(endpoint, ElevenLabsVoice::new("v"));
    let error = tts.speak(TEXT).await.unwrap_err();
    assert!(
        matches!(
            error,
            VendorError::Connect {
                vendor: "elevenlabs",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_voice_id_stays_one_path_segment() {
    let server = server(Vendor::ElevenLabs).await;
    let endpoint = Endpoint::new(&server.url(), SecretString::new(server.key().to_owned()));
    let tts = ElevenLabs::new(endpoint.clone(), ElevenLabsVoice::new("a/../b?c"));
    let (chunks, _) = drain(tts.speak("hi").await.unwrap()).await;
    assert!(!chunks.is_empty());
    assert_eq!(
        server.requests()[0].path,
        "/v1/text-to-speech/a%2F..%2Fb%3Fc/stream"
    );
    let dots = ElevenLabs::new(endpoint, ElevenLabsVoice::new(".."));
    assert!(matches!(
        dots.speak("hi").await,
        Err(VendorError::Protocol { .. })
    ));
    assert_eq!(server.requests().len(), 1);
}

/// The local servers refuse what the vendors refuse, in the vendors' shapes.
#[tokio::test]
async fn servers_refuse_missing_fields_like_the_vendors() {
    let http = reqwest::Client::new();

    let eleven = server(Vendor::ElevenLabs).await;
    let answer = http
        .post(format!(
            "{}/v1/text-to-speech/v/stream?output_format=ulaw_8000",
            eleven.url()
        ))
        .header("xi-api-key", eleven.key())
        .json(&json!({ "model_id": "eleven_flash_v2_5" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "text"]));

    let cartesia = server(Vendor::Cartesia).await;
    let good = json!({
        "model_id": "sonic-2",
        "transcript": "hi",
        "voice": { "mode": "id", "id": "v" },
        "output_format": { "container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000 },
    });
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("output_format");
    let post = |body: &Value, version: Option<&str>| {
        let mut request = http
            .post(format!("{}/tts/bytes", cartesia.url()))
            .bearer_auth(cartesia.key())
            .json(body);
        if let Some(version) = version {
            request = request.header("Cartesia-Version", version);
        }
        request.send()
    };
    let answer = post(&missing, Some(cartesia::API_VERSION)).await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("output_format"));
    assert!(body["title"].is_string() && body["request_id"].is_string());
    let answer = post(&good, None).await.unwrap();
    assert_eq!(answer.status(), 400, "the version header is required");
    let answer = post(&good, Some(cartesia::API_VERSION)).await.unwrap();
    assert_eq!(answer.status(), 200);

    let openai = server(Vendor::OpenAi).await;
    let answer = http
        .post(format!("{}/audio/speech", openai.url()))
        .bearer_auth(openai.key())
        .json(&json!({ "model": "gpt-4o-mini-tts", "voice": "alloy", "response_format": "pcm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("input"));
}

// --- flite ---

fn chunks_to_samples(chunks: &[Bytes]) -> Vec<i16> {
    let mut samples = Vec::new();
    for chunk in chunks {
        assert_eq!(chunk.len() % 2, 0, "16-bit chunks hold whole samples");
        parley_media::audio::pcm_from_le(chunk, &mut samples);
    }
    samples
}

#[tokio::test]
async fn flite_speaks_a_sentence_at_the_voices_rate() {
    let slt = Flite::new("slt").await.unwrap();
    assert_eq!(slt.format(), AudioFormat::linear16(16_000));
    let kal = Flite::new("kal").await.unwrap();
    assert_eq!(
        kal.format(),
        AudioFormat::linear16(8_000),
        "each voice's own rate"
    );

    let (chunks, error) = drain(slt.speak(TEXT).await.unwrap()).await;
    assert_eq!(error, None);
    let samples = chunks_to_samples(&chunks);
    let rate = slt.format().sample_rate as usize;
    assert!(samples.len() > rate / 2, "only {} samples", samples.len());
    // About 100 ms a chunk.
    let (last, whole) = chunks.split_last().unwrap();
    assert!(whole.iter().all(|c| c.len() == rate / 10 * 2));
    assert!(last.len() <= rate / 10 * 2);
    let loud = samples.iter().filter(|s| s.unsigned_abs() > 1_000).count();
    assert!(
        loud > rate / 10,
        "the speech is audible: {loud} loud samples"
    );
}

#[tokio::test]
async fn flite_says_nothing_for_blank_text() {
    let flite = Flite::new("slt").await.unwrap();
    for text in ["", "   "] {
        let (chunks, error) = drain(flite.speak(text).await.unwrap()).await;
        assert!(chunks.is_empty());
        assert_eq!(error, None);
    }
}

#[tokio::test]
async fn flite_speaks_text_that_looks_like_an_option() {
    let flite = Flite::new("slt").await.unwrap();
    for text in ["--version", "-o /tmp/parley-not-a-file.wav"] {
        let (chunks, error) = drain(flite.speak(text).await.unwrap()).await;
        assert_eq!(error, None);
        let samples = chunks_to_samples(&chunks);
        assert!(
            samples.len() > flite.format().sample_rate as usize / 4,
            "{text:?} was not spoken"
        );
        assert!(samples.iter().any(|s| s.unsigned_abs() > 1_000));
    }
    assert!(!std::path::Path::new("/tmp/parley-not-a-file.wav").exists());
}

#[tokio::test]
async fn flite_refuses_to_open_without_flite_or_the_voice() {
    let error = Flite::with_program("/nonexistent/flite", "slt")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            VendorError::Connect {
                vendor: "flite",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("not installed"), "{error}");

    let error = Flite::new("no-such-voice").await.unwrap_err();
    assert_eq!(error.vendor(), "flite");
    assert!(error.to_string().contains("no-such-voice"), "{error}");
}
