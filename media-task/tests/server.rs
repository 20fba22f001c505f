//! The media server over real WebSockets on loopback: a stream is admitted only with a
//! valid token for its call, a broken stream ends alone, and a stopped one closes
//! normally.

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
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &str = "media-test-stream-secret-0123456789";

async fn start_server() -> (String, MediaState) {
    let state = MediaState::new(Arc::new(SystemClock), SecretString::new(SECRET.into()));
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
    let health = url
        .replace("ws://", "http://")
        .replace("/media/twilio", "/health");
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 200);
    state.accepting.store(false, Ordering::Relaxed);
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 503);
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
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
