//! `media-task --health` (the container's health check) against a real media server on
//! loopback: healthy while it takes calls, unhealthy while it drains, and an error
//! naming the address when nothing listens.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parley_media::probe::{ProbeError, check, loopback};
use parley_media::server::{MediaState, service};
use parley_shared::clock::SystemClock;
use parley_shared::secrets::SecretString;

async fn serve() -> (std::net::SocketAddr, MediaState) {
    let state = MediaState::new(
        Arc::new(SystemClock),
        SecretString::new("probe-test-stream-secret-0123456789".into()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = service(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

#[tokio::test]
async fn a_task_taking_calls_is_healthy_and_a_draining_one_is_not() {
    let (addr, state) = serve().await;
    check(addr, Duration::from_secs(5)).await.unwrap();
    // The wildcard address the container listens on is probed on loopback.
    let wildcard = std::net::SocketAddr::from(([0, 0, 0, 0], addr.port()));
    check(wildcard, Duration::from_secs(5)).await.unwrap();

    state.accepting.store(false, Ordering::Relaxed);
    match check(addr, Duration::from_secs(5)).await {
        Err(ProbeError::Unhealthy { status, url }) => {
            assert_eq!(status, 503);
            assert_eq!(url, format!("http://{addr}/health"));
        }
        other => panic!("a draining task passed its health check: {other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_is_an_error_naming_the_address() {
    // A port that was just free: bind, note it, and let it go.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = check(addr, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, ProbeError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn only_a_wildcard_address_is_replaced() {
    let wildcard = "0.0.0.0:8080".parse().unwrap();
    assert_eq!(loopback(wildcard), "127.0.0.1:8080".parse().unwrap());
    let own = "10.1.2.3:9000".parse().unwrap();
    assert_eq!(loopback(own), own);
}
