//! The media server over real WebSockets on loopback: a stream is admitted only with a
//! valid token for its call, a broken stream ends alone, and a stopped one closes
//! normally. Beyond its cap of live calls (or while draining) a task refuses new
//! streams with a 503 before any upgrade, and counts each refusal; a full task stays
//! healthy.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};
use futures_util::{SinkExt, StreamExt};
use parley_media::server::{MediaState, service};
use parley_shared::clock::SystemClock;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken::{self, StreamClaims};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "media-test-stream-secret-0123456789";

fn new_state() -> MediaState {
    MediaState::new(Arc::new(SystemClock), SecretString::new(SECRET.into()))
}

async fn start_server() -> (String, MediaState) {
    serve(new_state()).await
}

async fn serve(state: MediaState) -> (String, MediaState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/media/twilio", listener.local_addr().unwrap());
    let app = service(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

fn token(call_id: &str, expires_in: Duration) -> String {
    let claims = StreamClaims {
        tenant_id: "tenant-1".into(),
        call_id: call_id.into(),
        expires_at: (Utc::now() + expires_in).timestamp(),
    };
    streamtoken::mint(SECRET.as_bytes(), &claims).unwrap()
}

fn start(call_id: &str, token: &str) -> String {
    json!({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
        "start": {
            "streamSid": "MZ1", "accountSid": "AC1", "callSid": "CA1",
            "tracks": ["inbound"],
            "customParameters": {"call_id": call_id, "tenant_id": "tenant-1", "token": token},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    })
    .to_string()
}

fn media(n: u64) -> String {
    json!({
        "event": "media", "sequenceNumber": (n + 2).to_string(), "streamSid": "MZ1",
        "media": {"track": "inbound", "chunk": (n + 1).to_string(),
                  "timestamp": (n * 20).to_string(), "payload": STANDARD.encode([0xFFu8; 160])}
    })
    .to_string()
}

const CONNECTED: &str = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
const STOP: &str = r#"{"event":"stop","sequenceNumber":"99","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}"#;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send_all(socket: &mut Socket, frames: &[String]) {
    for frame in frames {
        // The server may close first (a refused stream): later sends may fail.
        let _ = socket.send(Message::text(frame.clone())).await;
    }
}

/// The server's `/health` or `/metrics` (`path`), beside the stream URL: status and body.
async fn get(url: &str, path: &str) -> (u16, String) {
    let url = url
        .replace("ws://", "http://")
        .replace("/media/twilio", path);
    let response = reqwest::get(&url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// A stream that has said `connected` and `start` for its own call.
async fn open(url: &str, call_id: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send_all(
        &mut socket,
        &[
            CONNECTED.to_owned(),
            start(call_id, &token(call_id, Duration::minutes(5))),
            media(0),
        ],
    )
    .await;
    socket
}

/// The HTTP response a stream is refused with, before any upgrade.
async fn refused(url: &str) -> tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>> {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => *response,
        Err(other) => panic!("refused without an HTTP response: {other}"),
        Ok(_) => panic!("the stream was admitted"),
    }
}

/// The body of a stream's refusal, asked as a WebSocket upgrade over plain HTTP (the
/// WebSocket client keeps only what it happened to read of it).
async fn refusal_body(url: &str) -> (u16, String) {
    let url = url.replace("ws://", "http://");
    let response = reqwest::Client::new()
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits (briefly) for the server's count of live calls to reach `n`.
async fn live_reaches(state: &MediaState, n: i64) {
    for _ in 0..500 {
        if state.live_calls() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("live calls stayed at {}, not {n}", state.live_calls());
}

/// The close code the server ends the session with.
async fn closed_with(socket: &mut Socket) -> CloseCode {
    while let Some(message) = socket.next().await {
        if let Ok(Message::Close(Some(frame))) = message {
            return frame.code;
        }
    }
    panic!("the server never closed the stream");
}

#[tokio::test]
async fn an_admitted_stream_takes_audio_and_closes_normally_on_stop() {
    let (url, state) = start_server().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut frames = vec![
        CONNECTED.to_owned(),
        start("call-1", &token("call-1", Duration::minutes(5))),
    ];
    frames.extend((0..50).map(media));
    frames.push(STOP.to_owned());
    send_all(&mut socket, &frames).await;
    assert_eq!(closed_with(&mut socket).await, CloseCode::Normal);
    assert_eq!(state.metrics.frames_in.get(), 50);
}

#[tokio::test]
async fn no_audio_is_taken_without_a_valid_token_for_the_call() {
    let (url, state) = start_server().await;
    for bad in [
        token("another-call", Duration::minutes(5)),
        token("call-1", Duration::minutes(-1)),
        "not-a-token".to_owned(),
        streamtoken::mint(
            b"some-other-secret-entirely",
            &StreamClaims {
                tenant_id: "tenant-1".into(),
                call_id: "call-1".into(),
                expires_at: (Utc::now() + Duration::minutes(5)).timestamp(),
            },
        )
        .unwrap(),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let mut frames = vec![CONNECTED.to_owned(), start("call-1", &bad)];
        frames.extend((0..5).map(media));
        send_all(&mut socket, &frames).await;
        assert_eq!(closed_with(&mut socket).await, CloseCode::Policy);
    }
    // Audio before start is refused the same way.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send_all(&mut socket, &[CONNECTED.to_owned(), media(0)]).await;
    assert_eq!(closed_with(&mut socket).await, CloseCode::Policy);
    assert_eq!(state.metrics.frames_in.get(), 0);
}

#[tokio::test]
async fn a_broken_stream_ends_alone() {
    let (url, state) = start_server().await;
    let (mut healthy, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send_all(
        &mut healthy,
        &[
            CONNECTED.to_owned(),
            start("call-1", &token("call-1", Duration::minutes(5))),
            media(0),
        ],
    )
    .await;
    for garbage in [
        "{not json".to_owned(),
        r#"{"event":"hangup"}"#.to_owned(),
        media(1).replace("/////", "!!!!!"),
    ] {
        let (mut broken, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        send_all(
            &mut broken,
            &[
                CONNECTED.to_owned(),
                start("call-2", &token("call-2", Duration::minutes(5))),
                garbage,
            ],
        )
        .await;
        assert_eq!(closed_with(&mut broken).await, CloseCode::Invalid);
    }
    // The healthy call goes on and ends normally.
    send_all(&mut healthy, &[media(1), media(2), STOP.to_owned()]).await;
    assert_eq!(closed_with(&mut healthy).await, CloseCode::Normal);
    assert_eq!(state.metrics.frames_in.get(), 3);
    // Every session is over: none is left counted as live.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(state.live_calls(), 0);
}

#[tokio::test]
async fn a_draining_task_is_not_ready_and_takes_no_new_stream() {
    let (url, state) = start_server().await;
    assert_eq!(get(&url, "/health").await, (200, "ready".into()));
    state.accepting.store(false, Ordering::Relaxed);
    assert_eq!(get(&url, "/health").await, (503, "draining".into()));
    let refusal = refused(&url).await;
    assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refusal_body(&url).await, (503, "draining".into()));
    // Both refusals are counted as draining, none as full.
    let (_, metrics) = get(&url, "/metrics").await;
    assert!(
        metrics.contains(r#"parley_media_streams_refused_total{reason="draining"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"parley_media_streams_refused_total{reason="full"} 0"#),
        "{metrics}"
    );
    assert_eq!(state.live_calls(), 0);
}

#[tokio::test]
async fn a_full_task_refuses_new_streams_until_a_call_ends() {
    let (url, state) = serve(new_state().with_max_calls(2)).await;
    let mut first = open(&url, "call-1").await;
    let mut second = open(&url, "call-2").await;
    // The slot is taken before the upgrade: both are live once their upgrades answer.
    assert_eq!(state.live_calls(), 2);

    let refusal = refused(&url).await;
    assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refusal
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    assert_eq!(refusal_body(&url).await, (503, "full".into()));
    // Refusals take no slot.
    assert_eq!(state.live_calls(), 2);
    // Full, but healthy: a failing check would have ECS replace the task, cutting its
    // calls.
    assert_eq!(get(&url, "/health").await, (200, "full".into()));
    let (_, metrics) = get(&url, "/metrics").await;
    assert!(
        metrics.contains(r#"parley_media_streams_refused_total{reason="full"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("parley_media_live_calls 2"), "{metrics}");

    // One call ends: its slot is free again, and a new stream is admitted.
    send_all(&mut first, &[STOP.to_owned()]).await;
    assert_eq!(closed_with(&mut first).await, CloseCode::Normal);
    live_reaches(&state, 1).await;
    let mut third = open(&url, "call-3").await;
    assert_eq!(state.live_calls(), 2);
    assert_eq!(
        refused(&url).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // With every call over the task is ready again.
    for socket in [&mut second, &mut third] {
        send_all(socket, &[STOP.to_owned()]).await;
        assert_eq!(closed_with(socket).await, CloseCode::Normal);
    }
    live_reaches(&state, 0).await;
    assert_eq!(get(&url, "/health").await, (200, "ready".into()));
    // All three calls' audio was taken.
    assert_eq!(state.metrics.frames_in.get(), 3);
}

#[test]
fn the_default_cap_counts_the_cores_this_process_may_use() {
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(
        new_state().max_calls,
        parley_media::server::DEFAULT_CALLS_PER_CORE * cores
    );
}

#[tokio::test]
async fn concurrent_streams_never_take_more_than_the_cap() {
    let (url, state) = serve(new_state().with_max_calls(5)).await;
    let attempts = (0..40).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { tokio_tungstenite::connect_async(&url).await })
    });
    let mut admitted = Vec::new();
    let mut refused = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok((socket, _)) => admitted.push(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((admitted.len(), refused), (5, 35));
    assert_eq!(state.live_calls(), 5);
    let (_, metrics) = get(&url, "/metrics").await;
    assert!(
        metrics.contains(r#"parley_media_streams_refused_total{reason="full"} 35"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_abandoned_in_its_handshake_frees_its_slot() {
    use tokio::io::AsyncWriteExt;
    let (url, state) = serve(new_state().with_max_calls(1)).await;
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/media/twilio");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /media/twilio HTTP/1.1\r\nhost: {addr}\r\nconnection: upgrade\r\n\
         upgrade: websocket\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Its slot is taken as soon as the request is accepted...
    live_reaches(&state, 1).await;
    // ...and freed when the client goes without ever reading the answer.
    drop(tcp);
    live_reaches(&state, 0).await;
    let mut socket = open(&url, "call-1").await;
    send_all(&mut socket, &[STOP.to_owned()]).await;
    assert_eq!(closed_with(&mut socket).await, CloseCode::Normal);
}

#[tokio::test]
async fn draining_waits_for_live_calls_and_no_longer() {
    let (url, state) = start_server().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send_all(
        &mut socket,
        &[
            CONNECTED.to_owned(),
            start("call-1", &token("call-1", Duration::minutes(5))),
            media(0),
        ],
    )
    .await;
    while state.metrics.frames_in.get() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The call is live: a short grace runs out with it still going.
    assert_eq!(state.drain(std::time::Duration::from_millis(200)).await, 1);
    // It finishes, and draining is over.
    send_all(&mut socket, &[STOP.to_owned()]).await;
    assert_eq!(closed_with(&mut socket).await, CloseCode::Normal);
    assert_eq!(state.drain(std::time::Duration::from_secs(5)).await, 0);
}
