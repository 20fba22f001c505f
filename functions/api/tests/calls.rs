//! Placing calls through a local server that plays Twilio's REST API (its paths, form
//! parameters and error bodies), then reading them back as their events tell them.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Api, field};
use parley_shared::aggregate::{self, Context};
use parley_shared::domain::call::{Call, CallCommand, CallEvent};
use parley_shared::domain::ids::CallId;
use serde_json::json;

type Requests = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// Twilio's Calls API: 21211 for +14155550111, else a queued call.
async fn calls_json(
    State(seen): State<Requests>,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    let to = params
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    seen.lock().unwrap().push((account.clone(), params));
    if to == "+14155550111" {
        let error = json!({"code": 21211, "message": "The 'To' number +14155550111 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let n = seen.lock().unwrap().len();
    let call = json!({"sid": format!("CA{n:032}"), "account_sid": account, "status": "queued", "to": to, "direction": "outbound-api"});
    (StatusCode::CREATED, axum::Json(call)).into_response()
}

async fn twilio() -> (String, Requests) {
    let seen: Requests = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(calls_json),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// A tenant with an active agent, a number and Twilio credentials: its key and agent.
async fn ready(api: &Api) -> (String, String) {
    let (id, key) = api.tenant("Acme").await;
    let agent = api.agent(&key, "Riley").await;
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{agent}"),
            Some(&key),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key),
            Some(json!({"number": "+14155550100", "agent_id": agent, "carrier": "twilio"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}/carriers/twilio"),
            Some(&key),
            Some(json!({"account_sid": "AC0042", "auth_token": "tok-123456"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    (key, agent)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn a_call_is_placed_with_every_callback_and_read_back() {
    let (url, seen) = twilio().await;
    let api = Api::with_twilio(&url);
    let (key, agent) = ready(&api).await;
    let (status, call) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+1 (415) 555-0132", "agent_id": agent})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    let id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(call["status"], "queued");
    assert_eq!(call["to"], "+14155550132", "normalised");
    assert_eq!(call["from"], "+14155550100", "the agent's number");
    assert!(call["carrier_call_id"].as_str().unwrap().starts_with("CA"));

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (account, params) = &requests[0];
    assert_eq!(account, "AC0042");
    let base = "https://parley.example.com";
    assert_eq!(
        param(params, "Url"),
        vec![format!("{base}/webhooks/twilio/voice?call_id={id}").as_str()]
    );
    assert_eq!(
        param(params, "StatusCallback"),
        vec![format!("{base}/webhooks/twilio/status?call_id={id}").as_str()]
    );
    assert_eq!(
        param(params, "StatusCallbackEvent"),
        vec!["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(param(params, "AsyncAmd"), vec!["true"]);
    assert_eq!(
        param(params, "AsyncAmdStatusCallback"),
        vec![format!("{base}/webhooks/twilio/amd?call_id={id}").as_str()]
    );
    assert_eq!(
        param(params, "Record"),
        vec!["true"],
        "the agent records calls"
    );

    let (status, read) = api
        .call(Method::GET, &format!("/v1/calls/{id}"), Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["carrier_call_id"], call["carrier_call_id"]);
    assert!(read.get("recording_url").is_none(), "nothing recorded yet");

    // Once the media task has stored the call's records, the tenant gets links to them.
    let tenant = call["tenant_id"].as_str().unwrap().to_owned();
    let ctx = Context {
        tenant_id: tenant.clone(),
        correlation_id: "media".into(),
        idempotency_key: None,
    };
    let call_id = CallId::parse(&id).unwrap();
    for fact in [
        CallEvent::TranscriptStored {
            key: format!("transcripts/{tenant}/{id}.json"),
            turns: 3,
        },
        CallEvent::CallRecordingStored {
            key: format!("recordings/{tenant}/{id}.wav"),
            duration_ms: 61_000,
            bytes: 1_952_044,
        },
    ] {
        aggregate::execute::<Call>(
            &*api.ports.events,
            &*api.ports.clock,
            &call_id.stream(),
            &ctx,
            CallCommand::RecordMedia(fact),
        )
        .await
        .unwrap();
    }
    let (_, read) = api
        .call(Method::GET, &format!("/v1/calls/{id}"), Some(&key), None)
        .await;
    for (link, key) in [
        ("recording_url", format!("recordings/{tenant}/{id}.wav")),
        ("transcript_url", format!("transcripts/{tenant}/{id}.json")),
    ] {
        let url = read[link].as_str().unwrap_or_default();
        assert!(
            url.contains(&format!("/blobs/{key}?expires=")) && url.contains("&signature="),
            "{link}: {read}"
        );
    }
    let (_, admin) = api
        .call(
            Method::GET,
            &format!("/v1/calls/{id}"),
            Some(common::ADMIN),
            None,
        )
        .await;
    assert_eq!(admin["recording_key"], read["recording_key"]);
    assert!(admin.get("recording_url").is_none() && admin.get("transcript_url").is_none());
    let (_, list) = api.call(Method::GET, "/v1/calls", Some(&key), None).await;
    assert_eq!(list["items"][0]["id"], id.as_str());
    let (_, queued) = api
        .call(
            Method::GET,
            "/v1/calls?status=queued&direction=outbound",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(queued["items"].as_array().unwrap().len(), 1);
    let (_, inbound) = api
        .call(Method::GET, "/v1/calls?direction=inbound", Some(&key), None)
        .await;
    assert_eq!(inbound["items"], json!([]));
    let (_, future) = api
        .call(
            Method::GET,
            "/v1/calls?since=2999-01-01T00:00:00Z",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(future["items"], json!([]));
    let (_, past) = api
        .call(
            Method::GET,
            "/v1/calls?since=2020-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(past["items"].as_array().unwrap().len(), 1);

    // Another tenant sees nothing of it.
    let (_, other) = api.tenant("Bolt").await;
    let (status, _) = api
        .call(Method::GET, &format!("/v1/calls/{id}"), Some(&other), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = api.call(Method::GET, "/v1/calls", Some(&other), None).await;
    assert_eq!(theirs["items"], json!([]));
}

#[tokio::test]
async fn a_number_twilio_refuses_is_a_clear_error_and_a_failed_call() {
    let (url, _seen) = twilio().await;
    let api = Api::with_twilio(&url);
    let (key, agent) = ready(&api).await;
    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+14155550111", "agent_id": agent})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["code"], "carrier_rejected");
    assert_eq!(field(&reply), "to");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("21211")
    );
    let (_, failed) = api
        .call(Method::GET, "/v1/calls?status=failed", Some(&key), None)
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed["items"][0]["status"], "failed");
}

#[tokio::test]
async fn bad_requests_place_nothing() {
    let (url, seen) = twilio().await;
    let api = Api::with_twilio(&url);
    let (key, agent) = ready(&api).await;
    let cases = [
        (json!({"to": "not a number", "agent_id": agent}), "to"),
        (json!({"to": "+14155550132"}), "agent_id"),
        (
            json!({"to": "+14155550132", "agent_id": "00000000-0000-7000-8000-000000000000"}),
            "agent_id",
        ),
        (
            json!({"to": "+14155550132", "agent_id": agent, "from": "+14155550177"}),
            "from",
        ),
        (
            json!({"to": "+14155550132", "agent_id": agent, "lead_id": "x"}),
            "lead_id",
        ),
        (
            json!({"to": "+14155550132", "agent_id": agent, "attempt": 0}),
            "attempt",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = api
            .call(Method::POST, "/v1/calls", Some(&key), Some(body.clone()))
            .await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}: {reply}"
        );
    }
    // An agent with no number of its own.
    let lonely = api.agent(&key, "Sam").await;
    api.call(
        Method::PATCH,
        &format!("/v1/agents/{lonely}"),
        Some(&key),
        Some(json!({"status": "active"})),
    )
    .await;
    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+14155550132", "agent_id": lonely})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "from")
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the carrier"
    );
    let (_, list) = api.call(Method::GET, "/v1/calls", Some(&key), None).await;
    assert_eq!(list["items"], json!([]));
    let (status, reply) = api
        .call(Method::GET, "/v1/calls", Some(common::ADMIN), None)
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "tenant_id")
    );
}

/// Exotel's Calls/connect API: a 400 RestException for +919000000000, else a call.
async fn connect_json(
    State(seen): State<Requests>,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    let from = params
        .iter()
        .find(|(k, _)| k == "From")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    seen.lock().unwrap().push((account, params));
    if from == "+919000000000" {
        let error = json!({"RestException": {"Status": 400, "Message": "Invalid parameter: From", "Code": 22001}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let call = json!({"Call": {"Sid": "b6cfa6e0exotel", "Status": "in-progress", "From": from, "Direction": "outbound-api"}});
    (StatusCode::OK, axum::Json(call)).into_response()
}

#[tokio::test]
async fn an_exotel_number_places_the_call_through_exotels_flow() {
    let seen: Requests = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/Accounts/{account}/Calls/connect.json",
            post(connect_json),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exotel = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let api = Api::with_carriers("http://127.0.0.1:9", Some(&exotel));
    let (id, key) = api.tenant("Acme India").await;
    let agent = api.agent(&key, "Asha").await;
    api.call(
        Method::PATCH,
        &format!("/v1/agents/{agent}"),
        Some(&key),
        Some(json!({"status": "active"})),
    )
    .await;
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key),
            Some(json!({"number": "+918047112233", "agent_id": agent, "carrier": "exotel"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Without a flow to run, nothing can be placed.
    let creds = json!({"account_sid": "acme1", "api_key": "key-1", "api_token": "token-1", "subdomain": "api.in.exotel.com"});
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}/carriers/exotel"),
            Some(&key),
            Some(creds),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+919876543210", "agent_id": agent})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "from")
    );
    assert!(seen.lock().unwrap().is_empty());

    let creds = json!({"account_sid": "acme1", "api_key": "key-1", "api_token": "token-1", "subdomain": "api.in.exotel.com", "flow_app_id": "123456"});
    let (status, urls) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}/carriers/exotel"),
            Some(&key),
            Some(creds),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, call) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+91 98765 43210", "agent_id": agent})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{call}");
    assert_eq!(call["carrier_call_id"], "b6cfa6e0exotel");
    assert_eq!(call["carrier"], "exotel");
    let call_id = call["id"].as_str().unwrap();

    let requests = seen.lock().unwrap().clone();
    let (account, params) = &requests[0];
    assert_eq!(account, "acme1");
    assert_eq!(
        param(params, "From"),
        vec!["+919876543210"],
        "Exotel rings the callee first"
    );
    assert_eq!(param(params, "CallerId"), vec!["+918047112233"]);
    assert_eq!(
        param(params, "Url"),
        vec!["http://my.exotel.com/acme1/exoml/start_voice/123456"]
    );
    assert_eq!(
        param(params, "CustomField"),
        vec![format!("call_id={call_id}").as_str()]
    );
    assert_eq!(
        param(params, "StatusCallback"),
        vec![urls["status_callback_url"].as_str().unwrap()]
    );

    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/calls",
            Some(&key),
            Some(json!({"to": "+919000000000", "agent_id": agent})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["code"], "carrier_rejected");
    let (_, failed) = api
        .call(Method::GET, "/v1/calls?status=failed", Some(&key), None)
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
}
