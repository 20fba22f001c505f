//! Campaigns through the API: settings with their defaults, the DRAFT → RUNNING ⇄
//! PAUSED life, and lead imports that keep the good rows and name the bad ones.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Api, field};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn upload(
    api: &Api,
    key: &str,
    campaign: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let request = Request::post(format!("/v1/campaigns/{campaign}/leads?default_region=GB"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(body.into())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn campaign(api: &Api, key: &str, agent: &str) -> Value {
    let (status, body) = api
        .call(Method::POST, "/v1/campaigns", Some(key), Some(json!({"name": "Spring open house", "agent_id": agent, "time_zone": "Europe/London"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

const CSV: &str = "phone,name,email,timezone,budget\n\
    020 7183 8750,Tom & \"Jerry\",tom@example.com,Europe/London,500k\n\
    not-a-phone,Nobody,,,\n\
    +44 20 7183 8750,Tom again,,,\n\
    07911 123456,\"Smith, Ann\",ann@example.com,,\n";

#[tokio::test]
async fn a_campaign_starts_only_with_leads_and_then_pauses_and_resumes() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let agent = api.agent(&key, "Riley").await;
    let created = campaign(&api, &key, &agent).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["calling_window"]["start"], "10:00:00");
    assert_eq!(
        created["calling_window"]["days"].as_array().unwrap().len(),
        6
    );
    assert_eq!(created["max_concurrent_calls"], 10);

    let (status, reply) = api
        .call(
            Method::POST,
            &format!("/v1/campaigns/{id}/start"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_leads"))
    );

    let (status, report) = upload(&api, &key, &id, "text/csv", CSV).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 2);
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["errors"][0]["row"], 2);
    assert_eq!(report["errors"][0]["column"], "phone");
    assert_eq!(report["duplicates"].as_array().unwrap().len(), 1);
    assert_eq!(report["duplicates"][0]["row"], 3);

    // The lead keeps its columns, email included, under its own stream.
    let campaign_id = parley_shared::domain::CampaignId::parse(&id).unwrap();
    let lead = parley_shared::domain::LeadId::for_campaign_phone(&campaign_id, "+442071838750");
    let lead = parley_shared::aggregate::load_any::<parley_shared::domain::lead::Lead>(
        &*api.ports.events,
        &lead.stream(),
    )
    .await
    .unwrap()
    .state;
    assert_eq!(lead.name.as_deref(), Some("Tom & \"Jerry\""));
    assert_eq!(
        lead.fields.get("email").map(String::as_str),
        Some("tom@example.com")
    );
    assert_eq!(lead.fields.get("budget").map(String::as_str), Some("500k"));

    // The same list again imports nobody twice.
    let (_, again) = upload(&api, &key, &id, "text/csv", CSV).await;
    assert_eq!(again["imported"], 0);
    assert_eq!(again["duplicates"].as_array().unwrap().len(), 3);

    let (_, json_report) = upload(
        &api,
        &key,
        &id,
        "application/json",
        json!({"leads": [{"phone": "+14155550132", "name": "Sam", "do_not_call": true}]})
            .to_string(),
    )
    .await;
    assert_eq!(json_report["imported"], 1, "{json_report}");

    for (action, status) in [
        ("start", "RUNNING"),
        ("pause", "PAUSED"),
        ("pause", "PAUSED"),
        ("resume", "RUNNING"),
    ] {
        let (code, body) = api
            .call(
                Method::POST,
                &format!("/v1/campaigns/{id}/{action}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (code, body["status"].as_str()),
            (StatusCode::OK, Some(status)),
            "{action}: {body}"
        );
    }
    let (_, read) = api
        .call(
            Method::GET,
            &format!("/v1/campaigns/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(read["lead_count"], 3);
    let (_, list) = api
        .call(Method::GET, "/v1/campaigns", Some(&key), None)
        .await;
    assert_eq!(list["items"][0]["status"], "RUNNING");
}

#[tokio::test]
async fn settings_are_validated_by_field_and_patched() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let agent = api.agent(&key, "Riley").await;
    let (_, other_key) = api.tenant("Bolt").await;
    let theirs = api.agent(&other_key, "Sam").await;
    let cases = [
        (
            json!({"name": "x", "agent_id": agent, "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (
            json!({"name": "x", "agent_id": theirs, "time_zone": "UTC"}),
            "agent_id",
        ),
        (
            json!({"name": "x", "agent_id": agent, "time_zone": "UTC", "calling_window": {"start": "18:00", "end": "09:00"}}),
            "calling_window.end",
        ),
        (
            json!({"name": "x", "agent_id": agent, "time_zone": "UTC", "calling_window": {"days": ["funday"]}}),
            "calling_window.days[0]",
        ),
        (
            json!({"name": "x", "agent_id": agent, "time_zone": "UTC", "retry": {"max_attempts": 0}}),
            "retry.max_attempts",
        ),
        (
            json!({"name": "x", "agent_id": agent, "time_zone": "UTC", "max_concurrent_calls": 0}),
            "max_concurrent_calls",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = api
            .call(
                Method::POST,
                "/v1/campaigns",
                Some(&key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}: {reply}"
        );
    }
    let id = campaign(&api, &key, &agent).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, patched) = api
        .call(Method::PATCH, &format!("/v1/campaigns/{id}"), Some(&key), Some(json!({"calling_window": {"start": "09:00:00"}, "retry": {"busy_after_minutes": 60}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["calling_window"]["start"], "09:00:00");
    assert_eq!(patched["calling_window"]["end"], "19:00:00");
    assert_eq!(patched["retry"]["busy_after_minutes"], 60);
    assert_eq!(patched["retry"]["no_answer_after_minutes"], 120);

    // Another tenant sees nothing and imports nothing.
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/campaigns/{id}"),
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = upload(&api, &other_key, &id, "text/csv", CSV).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_uploads_are_refused_whole_with_the_reason() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let agent = api.agent(&key, "Riley").await;
    let id = campaign(&api, &key, &agent).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, reply) = upload(
        &api,
        &key,
        &id,
        "text/csv",
        "name,email\nTom,tom@example.com\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("phone"),
        "{reply}"
    );
    let huge = format!("phone\n{}", "+14155550132\n".repeat(900_000));
    let (status, reply) = upload(&api, &key, &id, "text/csv", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("10485760")
            || reply["error"]["message"].as_str().unwrap().contains("MiB"),
        "{reply}"
    );
    let request = Request::post(format!("/v1/campaigns/{id}/leads?default_region=Narnia"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/csv")
        .body(Body::from(CSV))
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = upload(&api, &key, &id, "application/xml", "<leads/>").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, read) = api
        .call(
            Method::GET,
            &format!("/v1/campaigns/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(read["lead_count"], 0);
}
