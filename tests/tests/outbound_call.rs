//! An outbound call end to end on one machine: the API places it through a local server
//! that plays Twilio (its REST API, then its signed status callbacks to our webhooks,
//! late, twice and out of order), and the call read back from the API ends completed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;
use parley_shared::twilio::signature;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const TOKEN: &str = "e2e-twilio-auth-token-0987";
const ADMIN: &str = "e2e-admin-key-0123456789";

/// Plays Twilio: answers the Calls API, then calls back the way Twilio does.
async fn calls_json(
    State(http): State<reqwest::Client>,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let callback = get("StatusCallback");
    let sid = "CA00000000000000000000000000000e2e".to_owned();
    let callbacks: Vec<(&str, &str, &str)> = vec![
        ("initiated", "0", "0"),
        ("ringing", "1", "0"),
        ("completed", "3", "37"),
        ("ringing", "1", "0"),
        ("in-progress", "2", "0"),
        ("completed", "3", "37"),
    ];
    let (sid2, account2) = (sid.clone(), account.clone());
    tokio::spawn(async move {
        for (status, seq, duration) in callbacks {
            let form: Vec<(String, String)> = [
                ("AccountSid", account2.as_str()),
                ("CallSid", sid2.as_str()),
                ("CallStatus", status),
                ("SequenceNumber", seq),
                ("CallDuration", duration),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let signed = signature::expected_signature(TOKEN, &callback, &form);
            let sent = http
                .post(&callback)
                .header("x-twilio-signature", signed)
                .form(&form)
                .send()
                .await;
            assert!(
                sent.is_ok_and(|r| r.status().is_success()),
                "callback {status} refused"
            );
        }
    });
    let call = json!({"sid": sid, "account_sid": account, "status": "queued", "to": get("To")});
    (StatusCode::CREATED, axum::Json(call)).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_ends_completed_whatever_order_twilio_reports_in() {
    let http = reqwest::Client::new();
    let carrier = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(calls_json),
        )
        .with_state(http.clone());
    let carrier_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let carrier_url = format!("http://{}", carrier_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(carrier_listener, carrier).await });

    let dir = tempfile::tempdir().unwrap();
    let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = parley_shared::config::Config::from_lookup(|name| match name {
        "PARLEY_PUBLIC_URL" => Some(base.clone()),
        "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
        "PARLEY_TWILIO_API_URL" => Some(carrier_url.clone()),
        _ => None,
    })
    .unwrap();
    let ports = Ports::embedded(
        Embedded::open(dir.path(), Arc::new(SystemClock), base.clone(), 5).unwrap(),
    );
    let stack = parley::Stack::new(ports, &config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        parley::serve(listener, stack, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    let send = |method: reqwest::Method, path: &str, key: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(key.to_owned())
            .json(&body)
            .send()
    };
    let tenant: Value = send(
        reqwest::Method::POST,
        "/v1/tenants",
        ADMIN,
        json!({"name": "Acme", "time_zone": "UTC"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_owned();
    let agent: Value = send(
        reqwest::Method::POST,
        "/v1/agents",
        &key,
        json!({"name": "Riley", "status": "active"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    send(
        reqwest::Method::POST,
        "/v1/phone-numbers",
        &key,
        json!({"number": "+14155550100", "agent_id": agent["id"], "carrier": "twilio"}),
    )
    .await
    .unwrap();
    let creds = send(
        reqwest::Method::PUT,
        &format!(
            "/v1/tenants/{}/carriers/twilio",
            tenant["id"].as_str().unwrap()
        ),
        &key,
        json!({"account_sid": "AC0e2e", "auth_token": TOKEN}),
    )
    .await
    .unwrap();
    assert_eq!(creds.status(), 204);

    let placed = send(
        reqwest::Method::POST,
        "/v1/calls",
        &key,
        json!({"to": "+14155550132", "agent_id": agent["id"]}),
    )
    .await
    .unwrap();
    assert_eq!(placed.status(), 201);
    let call: Value = placed.json().await.unwrap();
    let id = call["id"].as_str().unwrap().to_owned();

    // The callbacks arrive on their own schedule: wait for the call to settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    let call = loop {
        let read: Value = http
            .get(format!("{base}/v1/calls/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if read["status"] == "completed" || Instant::now() > deadline {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["duration_secs"], 37);
    // Let the last duplicate land, then check nothing moved it back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listed: Value = http
        .get(format!("{base}/v1/calls?status=completed"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(listed["items"][0]["status"], "completed");

    stop.send(()).unwrap();
    server.await.unwrap();
}
