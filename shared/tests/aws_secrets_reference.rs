//! Platform secrets kept in AWS Secrets Manager and read through SSM's reference path
//! (`/aws/reference/secretsmanager/<id>`), against moto through the real SDK: the
//! referenced names read the Secrets Manager value (and see a rotation), other names
//! stay SSM parameters, writes to referenced names are refused, a missing secret is a
//! named error, and the stream token key and the admin key are read through it at start.
//!
//! Secrets are made in moto by plain Secrets Manager JSON requests over HTTP (Parley has
//! no Secrets Manager client: the deployment template creates them).

mod common;

use parley_shared::StoreError;
use parley_shared::aws::SsmSecretStore;
use parley_shared::backend::{AdminKeyError, admin_key, ssm_secret_store};
use parley_shared::config::{ADMIN_KEY_SECRET, BackendConfig, Config};
use parley_shared::secrets::{SecretStore, SecretString};
use parley_shared::streamtoken;
use serde_json::{Value, json};

use common::moto;

/// One Secrets Manager action on moto (AWS JSON 1.1). Moto does not check signatures;
/// it takes the region from the credential scope, the SSM client's `us-east-1`.
async fn secrets_manager(action: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(moto::endpoint().await)
        .header("X-Amz-Target", format!("secretsmanager.{action}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{action}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// A new Secrets Manager secret holding `value`; its id (a name with `/`, as a template
/// would make).
async fn create_secret(value: &str) -> String {
    let id = format!("parley/test/{}", moto::unique_name());
    secrets_manager("CreateSecret", json!({ "Name": id, "SecretString": value })).await;
    id
}

/// The value Secrets Manager itself holds for `id`, read without Parley's code.
async fn secret_value(id: &str) -> String {
    let out = secrets_manager("GetSecretValue", json!({ "SecretId": id })).await;
    out["SecretString"].as_str().unwrap().to_owned()
}

fn secret(value: &str) -> SecretString {
    SecretString::new(value.to_owned())
}

async fn prefix_store() -> SsmSecretStore {
    moto::secret_store().await
}

/// An AWS configuration as the functions read it, with extra variables.
fn aws_config(extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("PARLEY_BACKEND", "aws"),
        ("PARLEY_EVENTS_TABLE", "events"),
        ("PARLEY_VIEWS_TABLE", "views"),
        ("PARLEY_DIAL_QUEUE_URL", "https://sqs.example/1/dial"),
        (
            "PARLEY_DIAL_DEAD_LETTER_URL",
            "https://sqs.example/1/dial-dlq",
        ),
        ("PARLEY_MESSAGE_QUEUE_URL", "https://sqs.example/1/messages"),
        (
            "PARLEY_MESSAGE_DEAD_LETTER_URL",
            "https://sqs.example/1/messages-dlq",
        ),
        ("PARLEY_BUCKET", "parley-media"),
    ];
    vars.extend_from_slice(extra);
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap()
}

/// The store `Ports::connect` makes for `config`, on moto's SSM.
async fn store_for(config: &Config) -> SsmSecretStore {
    let BackendConfig::Aws {
        secrets_prefix,
        stream_secret_id,
        admin_key_secret_id,
        ..
    } = &config.backend
    else {
        panic!("not an AWS configuration");
    };
    ssm_secret_store(
        moto::ssm().await,
        secrets_prefix,
        stream_secret_id.as_deref(),
        admin_key_secret_id.as_deref(),
    )
}

#[tokio::test]
async fn a_referenced_name_reads_secrets_manager_and_others_stay_parameters() {
    let id = create_secret("value-from-secrets-manager-1").await;
    let store = prefix_store().await.with_reference("platform/key", &id);
    // A parameter of the same name under the prefix is not what a referenced name reads.
    moto::ssm()
        .await
        .put_parameter()
        .name(store.parameter_name("platform/key"))
        .value("value-of-a-stray-parameter")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    let got = store.get("platform/key").await.unwrap().unwrap();
    assert_eq!(got.expose(), "value-from-secrets-manager-1");

    // Tenants' secrets are still SSM parameters under the prefix.
    store
        .put("tenant/t1/twilio-auth-token", &secret("tenant-token-1"))
        .await
        .unwrap();
    let tenant = store.get("tenant/t1/twilio-auth-token").await.unwrap();
    assert_eq!(tenant.unwrap().expose(), "tenant-token-1");
    assert!(store.get("tenant/t1/nothing").await.unwrap().is_none());

    // The deployment rotates the secret; the next read sees the new value.
    secrets_manager(
        "PutSecretValue",
        json!({ "SecretId": id, "SecretString": "value-from-secrets-manager-2" }),
    )
    .await;
    let got = store.get("platform/key").await.unwrap().unwrap();
    assert_eq!(got.expose(), "value-from-secrets-manager-2");
}

#[tokio::test]
async fn writes_to_a_referenced_name_are_refused_and_change_nothing() {
    let id = create_secret("kept-by-the-template-0001").await;
    let store = prefix_store().await.with_reference("platform/key", &id);
    let ssm = moto::ssm().await;

    let put = store
        .put("platform/key", &secret("an-attempted-overwrite"))
        .await
        .unwrap_err();
    let delete = store.delete("platform/key").await.unwrap_err();
    for err in [put, delete] {
        let shown = err.to_string();
        assert!(matches!(err, StoreError::Invalid { .. }), "{shown}");
        assert!(!err.is_retryable());
        assert!(
            shown.contains("Secrets Manager") && shown.contains(&id),
            "{shown}"
        );
        assert!(
            !shown.contains("an-attempted-overwrite") && !shown.contains("kept-by-the-template"),
            "{shown}"
        );
    }

    // Neither the secret nor a parameter under the prefix was touched.
    assert_eq!(secret_value(&id).await, "kept-by-the-template-0001");
    let stray = ssm
        .get_parameter()
        .name(store.parameter_name("platform/key"))
        .send()
        .await;
    assert!(
        stray
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_parameter_not_found()),
        "{stray:?}"
    );
    let got = store.get("platform/key").await.unwrap().unwrap();
    assert_eq!(got.expose(), "kept-by-the-template-0001");
}

#[tokio::test]
async fn a_missing_referenced_secret_is_an_error_naming_it() {
    let present = create_secret("a-value-that-must-not-show").await;
    let missing = format!("parley/test/{}", moto::unique_name());
    let store = prefix_store()
        .await
        .with_reference("platform/present", &present)
        .with_reference("platform/missing", &missing);

    let err = store.get("platform/missing").await.unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, StoreError::Missing { .. }), "{shown}");
    assert!(shown.contains(&missing), "{shown}");
    assert!(!shown.contains("a-value-that-must-not-show"), "{shown}");
    // The present one still reads.
    let got = store.get("platform/present").await.unwrap().unwrap();
    assert_eq!(got.expose(), "a-value-that-must-not-show");
}

#[tokio::test]
async fn the_stream_token_key_comes_from_secrets_manager() {
    let id = create_secret("stream-key-from-the-template-0123456789").await;
    let config = aws_config(&[("PARLEY_STREAM_SECRET_ID", id.as_str())]);
    let store = store_for(&config).await;
    assert_eq!(store.reference(streamtoken::SECRET_NAME), Some(id.as_str()));
    assert_eq!(store.reference(ADMIN_KEY_SECRET), None);

    let key = streamtoken::load_secret(&store, false).await.unwrap();
    assert_eq!(key.expose(), "stream-key-from-the-template-0123456789");

    // Missing: start-up stops with the id named, and nothing is made in its place even
    // when making one is allowed.
    let missing = format!("parley/test/{}", moto::unique_name());
    let config = aws_config(&[("PARLEY_STREAM_SECRET_ID", missing.as_str())]);
    let store = store_for(&config).await;
    for create_if_missing in [false, true] {
        match streamtoken::load_secret(&store, create_if_missing).await {
            Err(err @ StoreError::Missing { .. }) => {
                assert!(err.to_string().contains(&missing), "{err}")
            }
            other => panic!("create_if_missing={create_if_missing}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_admin_key_is_read_from_secrets_manager_at_start() {
    let id = create_secret("admin-key-from-the-template-0123").await;
    let config = aws_config(&[("PARLEY_ADMIN_KEY_SECRET_ID", id.as_str())]);
    assert!(config.admin_key.is_none());
    let store = store_for(&config).await;
    assert_eq!(store.reference(ADMIN_KEY_SECRET), Some(id.as_str()));
    let key = admin_key(&config, &store).await.unwrap().unwrap();
    assert_eq!(key.expose(), "admin-key-from-the-template-0123");

    // PARLEY_ADMIN_KEY wins, and the secret is then not needed at all.
    let missing = format!("parley/test/{}", moto::unique_name());
    let config = aws_config(&[
        ("PARLEY_ADMIN_KEY", "admin-key-from-the-environment"),
        ("PARLEY_ADMIN_KEY_SECRET_ID", missing.as_str()),
    ]);
    let key = admin_key(&config, &store_for(&config).await).await.unwrap();
    assert_eq!(
        key.as_ref().map(|k| k.expose()),
        Some("admin-key-from-the-environment")
    );

    // Neither: no admin.
    let config = aws_config(&[]);
    assert!(
        admin_key(&config, &store_for(&config).await)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_short_or_missing_admin_key_secret_stops_start_up() {
    let short = create_secret("short-admin-key").await;
    let config = aws_config(&[("PARLEY_ADMIN_KEY_SECRET_ID", short.as_str())]);
    match admin_key(&config, &store_for(&config).await).await {
        Err(err @ AdminKeyError::Short { .. }) => {
            let shown = err.to_string();
            assert!(shown.contains(&short), "{shown}");
            assert!(!shown.contains("short-admin-key"), "{shown}");
        }
        other => panic!("{other:?}"),
    }

    let missing = format!("parley/test/{}", moto::unique_name());
    let config = aws_config(&[("PARLEY_ADMIN_KEY_SECRET_ID", missing.as_str())]);
    match admin_key(&config, &store_for(&config).await).await {
        Err(err @ AdminKeyError::Store(StoreError::Missing { .. })) => {
            assert!(err.to_string().contains(&missing), "{err}")
        }
        other => panic!("{other:?}"),
    }
}
