//! The REST API as a CRM or a console uses it, driven through the router as Lambda
//! would: keys, tenants kept apart, validation that names fields, write-only carrier
//! credentials.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{ADMIN, Api, field};
use serde_json::{Value, json};
use tower::ServiceExt;

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

async fn put_flow(
    api: &Api,
    path: &str,
    key: &str,
    content_type: &str,
    body: impl Into<String>,
) -> (StatusCode, Value) {
    let body = Some((content_type, body.into()));
    api.send(Method::PUT, path, Some(key), body).await
}

#[tokio::test]
async fn an_agents_flow_is_uploaded_as_yaml_or_json_with_every_problem_named() {
    let api = Api::new();
    let (tenant_id, key) = api.tenant("Acme").await;
    let (_, other_key) = api.tenant("Bolt").await;
    let id = api.agent(&key, "Riley").await;
    let path = format!("/v1/agents/{id}/flow");
    let yaml = "name: Viewings\nstart: ask\nnodes:\n  ask:\n    say: Which day suits you?\n    collect: {slot: day, kind: date}\n    next: [{goto: bye}]\n  bye:\n    say: Thanks, goodbye.\n    on_enter: [end]\n";

    let (status, agent) = put_flow(&api, &path, &key, "application/yaml", yaml).await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    assert_eq!(agent["flow"]["start"], "ask");
    assert_eq!(agent["flow"]["nodes"]["ask"]["collect"]["kind"], "date");
    // The same flow as JSON, and the agent shows it.
    let (status, again) = put_flow(
        &api,
        &path,
        &key,
        "application/json",
        agent["flow"].to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["flow"], agent["flow"]);
    let (_, shown) = api
        .call(Method::GET, &format!("/v1/agents/{id}"), Some(&key), None)
        .await;
    assert_eq!(shown["flow"], agent["flow"]);

    // A broken flow: every problem is named by node and field, and nothing changes.
    let broken = yaml
        .replace("goto: bye", "goto: by")
        .replace("kind: date", "kind: dat");
    let (status, reply) = put_flow(&api, &path, &key, "application/yaml", broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(field(&reply).starts_with("flow.nodes.ask"), "{reply}");
    let broken = yaml
        .replace("goto: bye", "goto: by")
        .replace("start: ask", "start: as");
    let (_, reply) = put_flow(&api, &path, &key, "application/yaml", broken).await;
    let fields: Vec<&str> = reply["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"flow.start"), "{reply}");
    assert!(fields.contains(&"flow.nodes.ask.next[0].goto"), "{reply}");
    let (_, shown) = api
        .call(Method::GET, &format!("/v1/agents/{id}"), Some(&key), None)
        .await;
    assert_eq!(shown["flow"], agent["flow"], "unchanged");

    // Neither YAML nor JSON; garbage; another tenant's agent.
    let (status, _) = put_flow(&api, &path, &key, "text/plain", yaml).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, reply) = put_flow(&api, &path, &key, "application/yaml", "{[: ::").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    let (status, _) = put_flow(&api, &path, &other_key, "application/yaml", yaml).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An industry brings its prompt and flow; the default prompt needs one.
    let (status, reply) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&key),
            Some(json!({"use_default_prompt": true, "flow": null})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "use_default_prompt")
    );
    let (status, agent) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            Some(&key),
            Some(json!({"industry": "real_estate", "use_default_prompt": true, "flow": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{agent}");
    assert_eq!(agent["industry"], "real_estate");
    assert!(agent.get("flow").is_none(), "{agent}");

    // A suspended tenant changes no flow, as it changes no other setting.
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{tenant_id}"),
            Some(ADMIN),
            Some(json!({"suspended": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = put_flow(&api, &path, &key, "application/yaml", yaml).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
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
async fn vendor_keys_are_write_only_chosen_by_agents_and_kept_while_chosen() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let (_, other_key) = api.tenant("Bolt").await;
    let secret = "gsk_vendor-key-5e4d3c2b1a";
    let path = format!("/v1/tenants/{id}/vendor-keys/groq");
    let (status, reply) = api
        .call(
            Method::PUT,
            &path,
            Some(&key),
            Some(json!({"api_key": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["vendor_keys"], json!(["groq"]));
    assert!(!tenant.to_string().contains(secret));
    let stored = api
        .ports
        .secrets
        .get(&format!("tenant/{id}/vendor-key/groq"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose(), secret);

    // Bad names and bodies name their field; another tenant cannot reach it.
    for (path, body, field_name) in [
        (
            format!("/v1/tenants/{id}/vendor-keys/Not%20Ok"),
            json!({"api_key": "x"}),
            "name",
        ),
        (path.clone(), json!({"api_key": " "}), "api_key"),
    ] {
        let (status, reply) = api.call(Method::PUT, &path, Some(&key), Some(body)).await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, field_name),
            "{reply}"
        );
    }
    let (status, _) = api
        .call(Method::DELETE, &path, Some(&other_key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An agent chooses keys the tenant has, by name.
    let llm = json!({"language_model": {
        "base_url": "https://api.groq.com/openai/v1",
        "key": "groq",
        "model": "llama-3.3-70b-versatile"
    }});
    let (status, reply) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(&other_key),
            Some(json!({"name": "Sam", "vendors": llm})),
        )
        .await;
    assert_eq!(
        (status, field(&reply)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "vendors.language_model.key"
        ),
        "another tenant's key is not this one's: {reply}"
    );
    let (status, agent) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(&key),
            Some(json!({"name": "Riley", "vendors": llm})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{agent}");
    assert_eq!(agent["vendors"], llm);
    let agent_id = agent["id"].as_str().unwrap().to_owned();

    // Removing a chosen key is refused until the agent lets go of it.
    let (status, reply) = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, reply) = api
        .call(
            Method::PATCH,
            &format!("/v1/agents/{agent_id}"),
            Some(&key),
            Some(json!({"vendors": {"language_model": {"key": null}}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, _) = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        api.ports
            .secrets
            .get(&format!("tenant/{id}/vendor-key/groq"))
            .await
            .unwrap()
            .is_none()
    );
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["vendor_keys"], json!([]));

    let events = api.ports.events.read_all(None, 1000).await.unwrap();
    assert!(events.iter().all(|e| !e.data.to_string().contains(secret)));
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

#[tokio::test]
async fn exotel_credentials_are_write_only_and_answer_with_webhook_urls() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let (other, other_key) = api.tenant("Bolt").await;
    let (api_key, api_token) = ("exotel-key-1a2b3c4d5e6f", "exotel-token-6f7a8b9c0d1e");
    let body = json!({
        "account_sid": "acmerealty1m",
        "api_key": api_key,
        "api_token": api_token,
        "subdomain": "api.in.exotel.com",
    });
    let path = format!("/v1/tenants/{id}/carriers/exotel");
    let (status, reply) = api
        .call(Method::PUT, &path, Some(&key), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let secret = api
        .ports
        .secrets
        .get(&format!("tenant/{id}/exotel-webhook-secret"))
        .await
        .unwrap()
        .unwrap();
    let secret = secret.expose().to_owned();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
    assert_eq!(reply.as_object().unwrap().len(), 2, "{reply}");
    let status_url = reply["status_callback_url"].as_str().unwrap();
    let stream_url = reply["stream_url_endpoint"].as_str().unwrap();
    let suffix = format!("/webhooks/exotel/{id}/{secret}/status");
    assert!(status_url.ends_with(&suffix), "{status_url}");
    let public = &status_url[..status_url.len() - suffix.len()];
    assert!(public.starts_with("http"), "{status_url}");
    assert_eq!(
        stream_url,
        format!("{public}/webhooks/exotel/{id}/{secret}/stream")
    );

    // Credentials rotate; the webhook secret, and so the URLs configured in Exotel, stay.
    let mut rotated = body.clone();
    rotated["api_token"] = json!("exotel-token-rotated-0000");
    let (status, again) = api
        .call(Method::PUT, &path, Some(&key), Some(rotated))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &reply));

    // The secret and the credentials are never read back, listed or put in an event.
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["carriers"]["exotel"], true);
    let (_, listed) = api
        .call(Method::GET, "/v1/tenants", Some(ADMIN), None)
        .await;
    for shown in [tenant.to_string(), listed.to_string()] {
        for hidden in [secret.as_str(), api_key, api_token, "exotel-token-rotated"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
    }
    let events = api.ports.events.read_all(None, 1000).await.unwrap();
    assert!(!events.is_empty());
    for event in &events {
        let data = event.data.to_string();
        for hidden in [secret.as_str(), api_key, api_token, "exotel-token-rotated"] {
            assert!(!data.contains(hidden), "{hidden} in {}", event.event_type);
        }
    }
    let stored = |item: &str| {
        let name = format!("tenant/{id}/{item}");
        let secrets = api.ports.secrets.clone();
        async move {
            secrets
                .get(&name)
                .await
                .unwrap()
                .unwrap()
                .expose()
                .to_owned()
        }
    };
    assert_eq!(stored("exotel-api-key").await, api_key);
    assert_eq!(
        stored("exotel-api-token").await,
        "exotel-token-rotated-0000"
    );
    assert_eq!(stored("exotel-subdomain").await, "api.in.exotel.com");

    // Bad input names its field and shows no URL; another tenant's key finds nothing.
    let mut bad = body.clone();
    bad["subdomain"] = json!("https://api.exotel.com/v1");
    let (status, reply) = api.call(Method::PUT, &path, Some(&key), Some(bad)).await;
    assert_eq!(
        (status, field(&reply)),
        (StatusCode::UNPROCESSABLE_ENTITY, "subdomain")
    );
    assert!(!reply.to_string().contains(&secret));
    let (status, reply) = api
        .call(Method::PUT, &path, Some(&other_key), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert!(!reply.to_string().contains(&secret));

    // Each tenant has its own secret.
    let (status, theirs) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{other}/carriers/exotel"),
            Some(&other_key),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let theirs = theirs["status_callback_url"].as_str().unwrap();
    assert!(
        theirs.contains(&format!("/webhooks/exotel/{other}/")),
        "{theirs}"
    );
    assert!(!theirs.contains(&secret), "{theirs}");
}
