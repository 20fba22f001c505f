//! The REST API as a CRM or a console uses it, driven through the router as Lambda
//! would: keys, tenants kept apart, validation that names fields, write-only carrier
//! credentials.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use parley_api::{AdminKey, AppState, router};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "admin-key-for-tests-0123456789";

struct Api {
    app: Router,
    ports: Ports,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Embedded::open(
            dir.path(),
            Arc::new(SystemClock),
            "http://127.0.0.1:1".into(),
            5,
        )
        .unwrap();
        let ports = Ports::embedded(embedded);
        let app = router(AppState {
            ports: ports.clone(),
            admin_key: AdminKey::new(Some(ADMIN)),
        });
        Api {
            app,
            ports,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    /// A new tenant and its API key.
    async fn tenant(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                Some(json!({"name": name, "time_zone": "Europe/London"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    async fn agent(&self, key: &str, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/agents",
                Some(key),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn no_key_or_an_unknown_key_is_401() {
    let api = Api::new();
    for key in [None, Some("pk_not-a-key"), Some("")] {
        let (status, body) = api.call(Method::GET, "/v1/agents", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, _) = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK, "health needs no key");
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let api = Api::new();
    let (a, key_a) = api.tenant("Acme").await;
    let (b, key_b) = api.tenant("Bolt").await;
    let agent_a = api.agent(&key_a, "Riley").await;

    let (status, body) = api
        .call(Method::GET, &format!("/v1/tenants/{a}"), Some(&key_a), None)
        .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Acme"))
    );
    for (method, path, body) in [
        (Method::GET, format!("/v1/tenants/{a}"), None),
        (Method::GET, format!("/v1/agents/{agent_a}"), None),
        (
            Method::PATCH,
            format!("/v1/agents/{agent_a}"),
            Some(json!({"name": "Stolen"})),
        ),
        (Method::DELETE, format!("/v1/agents/{agent_a}"), None),
        (
            Method::POST,
            format!("/v1/tenants/{a}/api-keys"),
            Some(json!({})),
        ),
        (
            Method::PUT,
            format!("/v1/tenants/{a}/carriers/twilio"),
            Some(json!({"account_sid": "AC1", "auth_token": "x"})),
        ),
    ] {
        let (status, reply) = api.call(method.clone(), &path, Some(&key_b), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
    }
    let (_, list_b) = api
        .call(Method::GET, "/v1/agents", Some(&key_b), None)
        .await;
    assert_eq!(list_b["items"], json!([]));
    let (_, list_a) = api
        .call(Method::GET, "/v1/agents", Some(&key_a), None)
        .await;
    assert_eq!(list_a["items"][0]["id"], agent_a.as_str());

    // The admin reads across tenants but does not act for one.
    let agent_b = api.agent(&key_b, "Sam").await;
    let (_, all) = api.call(Method::GET, "/v1/agents", Some(ADMIN), None).await;
    let ids: Vec<_> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&agent_a) && ids.contains(&agent_b), "{all}");
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(ADMIN),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/tenants",
            Some(&key_a),
            Some(json!({"name": "x", "time_zone": "UTC"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tenant cannot create tenants"
    );
    let (_, tenants) = api
        .call(Method::GET, "/v1/tenants", Some(ADMIN), None)
        .await;
    assert_eq!(tenants["items"].as_array().unwrap().len(), 2);
    let _ = b;
}

#[tokio::test]
async fn bad_bodies_name_their_field() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({}), "name"),
        (
            json!({"name": "Riley", "voice": {"speed": 9.0}}),
            "voice.speed",
        ),
        (
            json!({"name": "Riley", "voice": {"speed": "fast"}}),
            "voice.speed",
        ),
        (json!({"name": "Riley", "max_turns": 0}), "max_turns"),
        (
            json!({"name": "Riley", "language": "klingon please"}),
            "language",
        ),
        (
            json!({"name": "Riley", "escalation_numbers": ["555-0100"]}),
            "escalation_numbers[0]",
        ),
        (
            json!({"name": "Riley", "business_hours": {"time_zone": "Mars/Base"}}),
            "business_hours.time_zone",
        ),
        (
            json!({"name": "Riley", "business_hours": {"time_zone": "UTC", "week": {"monday": [{"open": "09:00", "close": "26:00"}]}}}),
            "business_hours.week.monday[0].close",
        ),
        (
            json!({"name": "Riley", "business_hours": {"time_zone": "UTC", "week": {"funday": []}}}),
            "business_hours.week.funday",
        ),
        (json!({"name": "Riley", "colour": "red"}), "colour"),
        (json!(["not", "an", "object"]), "body"),
    ];
    for (body, expected) in cases {
        let (status, reply) = api
            .call(Method::POST, "/v1/agents", Some(&key), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {reply}");
        assert_eq!(field(&reply), expected, "{body}: {reply}");
    }
    let garbage = Request::post("/v1/agents")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from("{\"name\": \"Riley\", \u{0}"))
        .unwrap();
    let response = api.app.clone().oneshot(garbage).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/tenants",
            Some(ADMIN),
            Some(json!({"name": "X", "time_zone": "Nowhere/City"})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "time_zone")
    );
    let (_, all) = api.call(Method::GET, "/v1/agents", Some(&key), None).await;
    assert_eq!(all["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn agents_are_patched_field_by_field() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let id = api.agent(&key, "Riley").await;
    let (status, agent) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&key),
            Some(json!({"status": "active", "voice": {"speed": 1.2}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["voice"]["speed"], 1.2);
    assert_eq!(agent["name"], "Riley", "untouched fields stay");
    let (status, reply) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&key),
            Some(json!({"max_call_seconds": 1})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "max_call_seconds")
    );
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/agents/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(Method::GET, &format!("/v1/agents/{id}"), Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = api.call(Method::GET, "/v1/agents", Some(&key), None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_number_routes_to_one_tenant_at_a_time() {
    let api = Api::new();
    let (_, key_a) = api.tenant("Acme").await;
    let (_, key_b) = api.tenant("Bolt").await;
    let agent_a = api.agent(&key_a, "Riley").await;
    let agent_b = api.agent(&key_b, "Sam").await;

    let (status, number) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key_a),
            Some(json!({"number": "+14155550100", "agent_id": agent_a, "carrier": "twilio"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{number}");
    assert_eq!(number["agent_id"], agent_a.as_str());

    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key_b),
            Some(json!({"number": "+14155550100", "agent_id": agent_b, "carrier": "twilio"})),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("in_use")),
        "{reply}"
    );
    let (status, _) = api
        .call(
            Method::GET,
            "/v1/phone-numbers/+14155550100",
            Some(&key_b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // B cannot point A's number at B's agent, nor at A's agent from B's key.
    let (status, _) = api
        .call(
            Method::PATCH,
            "/v1/phone-numbers/+14155550100",
            Some(&key_b),
            Some(json!({"agent_id": agent_b})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A cannot route its number to B's agent.
    let (status, reply) = api
        .call(
            Method::PATCH,
            "/v1/phone-numbers/+14155550100",
            Some(&key_a),
            Some(json!({"agent_id": agent_b})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "agent_id")
    );

    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key_a),
            Some(json!({"number": "(415) 555-0100", "agent_id": agent_a, "carrier": "twilio"})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "number")
    );

    let (status, _) = api
        .call(
            Method::DELETE,
            "/v1/phone-numbers/+14155550100",
            Some(&key_a),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/phone-numbers",
            Some(&key_b),
            Some(json!({"number": "+14155550100", "agent_id": agent_b, "carrier": "twilio"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "released numbers can be taken");
    let (_, list_a) = api
        .call(Method::GET, "/v1/phone-numbers", Some(&key_a), None)
        .await;
    assert_eq!(list_a["items"], json!([]));
    let (_, list_b) = api
        .call(Method::GET, "/v1/phone-numbers", Some(&key_b), None)
        .await;
    assert_eq!(list_b["items"][0]["number"], "+14155550100");
}

#[tokio::test]
async fn carrier_credentials_are_write_only() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let token = "twilio-auth-token-0f9e8d7c6b5a";
    let (status, reply) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}/carriers/twilio"),
            Some(&key),
            Some(json!({"account_sid": "ACabc123", "auth_token": token})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["carriers"]["twilio"], true);
    assert!(!tenant.to_string().contains(token) && !tenant.to_string().contains("ACabc123"));
    let (_, listed) = api
        .call(Method::GET, "/v1/tenants", Some(ADMIN), None)
        .await;
    assert!(!listed.to_string().contains(token));

    // The event log never holds it; the secret store does.
    let events = api.ports.events.read_all(None, 1000).await.unwrap();
    assert!(!events.is_empty());
    for event in &events {
        assert!(
            !event.data.to_string().contains(token),
            "{}",
            event.event_type
        );
    }
    let stored = api
        .ports
        .secrets
        .get(&format!("tenant/{id}/twilio-auth-token"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose(), token);

    let (status, reply) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{id}/carriers/twilio"),
            Some(&key),
            Some(json!({"account_sid": "nope", "auth_token": token})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "account_sid")
    );
}

#[tokio::test]
async fn keys_can_be_issued_and_a_tenant_suspended() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let (status, reply) = api
        .call(
            Method::POST,
            &format!("/v1/tenants/{id}/api-keys"),
            Some(&key),
            Some(json!({"label": "crm"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let second = reply["api_key"].as_str().unwrap().to_owned();
    assert_ne!(second, key);
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/tenants/{id}"),
            Some(&second),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(&key),
            Some(json!({"suspended": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the admin suspends");
    let (status, tenant) = api
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{id}"),
            Some(ADMIN),
            Some(json!({"suspended": true, "name": "Acme Ltd"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (tenant["suspended"].as_bool(), tenant["name"].as_str()),
        (Some(true), Some("Acme Ltd"))
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(&key),
            Some(json!({"name": "Riley"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a suspended tenant cannot create agents"
    );
}
