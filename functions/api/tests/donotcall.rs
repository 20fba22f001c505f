//! The do-not-call list and the dialing limits through the API: numbers normalised to
//! E.164, entries kept per tenant, and validation that names its field.

mod common;

use axum::http::{Method, StatusCode};
use common::{ADMIN, Api, field};
use serde_json::{Value, json};

/// `+1 (415) 555-0132` as a client puts it in a path.
const WRITTEN: &str = "%2B1%20(415)%20555-0132";
const E164: &str = "+14155550132";

async fn list(api: &Api, key: &str) -> Value {
    let (status, body) = api
        .call(Method::GET, "/v1/do-not-call", Some(key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_number_is_blocked_listed_read_and_unblocked() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;

    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/v1/do-not-call/{WRITTEN}"),
            Some(&key),
            Some(json!({"reason": "asked on the call"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"number": E164, "blocked": true, "reason": "asked on the call"})
    );

    // Another number with no body at all takes the default reason.
    let (status, body) = api
        .call(
            Method::PUT,
            "/v1/do-not-call/+442071838750",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reason"], "added through the API");

    let listed = list(&api, &key).await;
    let numbers: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["+14155550132", "+442071838750"], "{listed}");
    assert_eq!(listed["items"][0]["reason"], "asked on the call");
    assert!(listed["items"][0].get("stream_version").is_none());

    // Read back under either spelling.
    for path in [WRITTEN, E164] {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/v1/do-not-call/{path}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (status, body["number"].as_str()),
            (StatusCode::OK, Some(E164)),
            "{path}: {body}"
        );
    }

    // Unblocking twice, or a number never blocked, is the same 204.
    for path in [WRITTEN, E164, "+12025550143"] {
        let (status, body) = api
            .call(
                Method::DELETE,
                &format!("/v1/do-not-call/{path}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{path}: {body}");
    }
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let listed = list(&api, &key).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["number"], "+442071838750");

    // Blocked again after an unblock, it is back on the list.
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key),
            Some(json!({"reason": "asked again"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = list(&api, &key).await;
    assert_eq!(listed["items"][0]["number"], E164, "{listed}");
    assert_eq!(listed["items"][0]["reason"], "asked again");
}

#[tokio::test]
async fn bad_input_is_refused_by_field() {
    let api = Api::new();
    let (_, key) = api.tenant("Acme").await;
    let cases = [
        ("not-a-number", Some(json!({"reason": "x"})), "number"),
        // Without its country code a number cannot be placed.
        ("4155550132", None, "number"),
        (E164, Some(json!({"reason": " "})), "reason"),
        (E164, Some(json!({"reason": "x", "why": "y"})), "why"),
    ];
    for (number, body, expected) in cases {
        let (status, reply) = api
            .call(
                Method::PUT,
                &format!("/v1/do-not-call/{number}"),
                Some(&key),
                body.clone(),
            )
            .await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{number} {body:?}: {reply}"
        );
    }
    for method in [Method::GET, Method::DELETE] {
        let (status, reply) = api
            .call(method.clone(), "/v1/do-not-call/12", Some(&key), None)
            .await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, "number"),
            "{method}: {reply}"
        );
    }
    assert_eq!(list(&api, &key).await["items"], json!([]));

    // The list is a tenant's own: the admin acts for no tenant here.
    let (status, _) = api
        .call(Method::GET, "/v1/do-not-call", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_list() {
    let api = Api::new();
    let (_, key_a) = api.tenant("Acme").await;
    let (_, key_b) = api.tenant("Bolt").await;
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key_a),
            Some(json!({"reason": "asked Acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key_b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(list(&api, &key_b).await["items"], json!([]));

    // B blocking and unblocking the same number leaves A's entry alone: each list
    // holds its own entry for it.
    let (status, reply) = api
        .call(
            Method::PUT,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key_b),
            Some(json!({"reason": "asked Bolt"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    for (key, reason) in [(&key_a, "asked Acme"), (&key_b, "asked Bolt")] {
        let listed = list(&api, key).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["items"][0]["reason"], reason, "{listed}");
    }
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key_b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(list(&api, &key_b).await["items"], json!([]));
    let listed = list(&api, &key_a).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["reason"], "asked Acme");
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/v1/do-not-call/{E164}"),
            Some(&key_a),
            None,
        )
        .await;
    assert_eq!(
        (status, body["blocked"].as_bool()),
        (StatusCode::OK, Some(true))
    );
}

#[tokio::test]
async fn qualification_settings_are_set_validated_and_shown_with_the_tenant() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let (other, _) = api.tenant("Bolt").await;
    let path = format!("/v1/tenants/{id}/qualification");

    // Every tenant starts with the weights and thresholds.
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["qualification"]["hot_at"], 0.75);
    assert_eq!(tenant["qualification"]["weights"]["budget"], 0.25);

    let stricter = json!({
        "weights": {"budget": 0.3, "authority": 0.2, "need": 0.3, "timeline": 0.2, "engagement": 0.0},
        "hot_at": 0.8
    });
    let (status, settings) = api
        .call(Method::PUT, &path, Some(&key), Some(stricter))
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["hot_at"], 0.8);
    assert_eq!(settings["warm_at"], 0.45, "left out: its default");
    assert_eq!(settings["weights"]["engagement"], 0.0);
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(ADMIN), None)
        .await;
    assert_eq!(tenant["qualification"], settings);

    // Bad settings are refused, naming the field, and change nothing.
    for (body, field) in [
        (json!({"weights": {"budget": 0.9}}), "weights"),
        (
            json!({"weights": {"budget": -0.1, "need": 0.6}}),
            "weights.budget",
        ),
        (json!({"hot_at": 0.4}), "warm_at"),
        (json!({"warm_at": 1.5}), "warm_at"),
        (json!({"hot": 0.9}), "hot"),
        (json!({"weights": {"budjet": 0.25}}), "weights.budjet"),
        (json!({"hot_at": "high"}), "hot_at"),
    ] {
        let (status, error) = api.call(Method::PUT, &path, Some(&key), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(tenant["qualification"], settings);

    // Another tenant's settings are out of reach.
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{other}/qualification"),
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dialing_limits_are_set_validated_and_shown_with_the_tenant() {
    let api = Api::new();
    let (id, key) = api.tenant("Acme").await;
    let (other, _) = api.tenant("Bolt").await;
    let path = format!("/v1/tenants/{id}/dialing-limits");

    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(&key), None)
        .await;
    assert_eq!(
        tenant["dialing_limits"],
        json!({"max_concurrent_calls": 50, "calls_per_second": 1})
    );

    let (status, limits) = api
        .call(
            Method::PUT,
            &path,
            Some(&key),
            Some(json!({"max_concurrent_calls": 20, "calls_per_second": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{limits}");
    assert_eq!(
        limits,
        json!({"max_concurrent_calls": 20, "calls_per_second": 5})
    );
    let (_, tenant) = api
        .call(Method::GET, &format!("/v1/tenants/{id}"), Some(ADMIN), None)
        .await;
    assert_eq!(tenant["dialing_limits"], limits);
    let (_, all) = api
        .call(Method::GET, "/v1/tenants", Some(ADMIN), None)
        .await;
    let listed = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["dialing_limits"], limits);

    // The admin may set them too; a field left out takes its default.
    let (status, limits) = api
        .call(
            Method::PUT,
            &path,
            Some(ADMIN),
            Some(json!({"calls_per_second": 2})),
        )
        .await;
    assert_eq!(
        (status, limits),
        (
            StatusCode::OK,
            json!({"max_concurrent_calls": 50, "calls_per_second": 2})
        )
    );

    let cases = [
        (json!({"calls_per_second": 0}), "calls_per_second"),
        (json!({"max_concurrent_calls": 0}), "max_concurrent_calls"),
        (json!({"calls_per_second": "fast"}), "calls_per_second"),
        (json!({"calls_per_second": 1, "burst": 3}), "burst"),
    ];
    for (body, expected) in cases {
        let (status, reply) = api
            .call(Method::PUT, &path, Some(&key), Some(body.clone()))
            .await;
        assert_eq!(
            (status, field(&reply)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}: {reply}"
        );
    }

    // Another tenant's limits are out of reach.
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/v1/tenants/{other}/dialing-limits"),
            Some(&key),
            Some(json!({"calls_per_second": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
