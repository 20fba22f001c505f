//! The secret store contract, run against the SQLite store and SSM (moto).

mod common;

use std::sync::Arc;

use parley_shared::StoreError;
use parley_shared::secrets::{
    MAX_NAME_CHARS, MAX_NAME_SEGMENTS, MAX_VALUE_BYTES, SecretStore, SecretString,
};

fn secret(value: &str) -> SecretString {
    SecretString::new(value.to_owned())
}

/// A name no other test uses, as a tenant's credential is named.
fn tenant_secret(what: &str) -> String {
    format!("tenant/{}/{what}", uuid::Uuid::new_v4())
}

async fn value_of(store: &dyn SecretStore, name: &str) -> Option<String> {
    store
        .get(name)
        .await
        .unwrap()
        .map(|s| s.expose().to_owned())
}

fn invalid_field<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn round_trips(store: Arc<dyn SecretStore>) {
    let twilio = tenant_secret("twilio-auth-token");
    let exotel = tenant_secret("exotel-api-token");
    let vendor = format!("vendor/deepgram_{}.key", uuid::Uuid::new_v4().simple());
    let odd = "tok+/=en with spaces, \"quotes\", 'apostrophes', \u{e9}\u{1f511} and\nlines";
    store
        .put(&twilio, &secret("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"))
        .await
        .unwrap();
    store.put(&exotel, &secret(odd)).await.unwrap();
    store.put(&vendor, &secret("dg-key")).await.unwrap();
    assert_eq!(
        value_of(&*store, &twilio).await.as_deref(),
        Some("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4")
    );
    assert_eq!(value_of(&*store, &exotel).await.as_deref(), Some(odd));
    assert_eq!(value_of(&*store, &vendor).await.as_deref(), Some("dg-key"));
}

/// Credentials rotate: a put replaces the value.
async fn overwrites(store: Arc<dyn SecretStore>) {
    let name = tenant_secret("twilio-auth-token");
    let other = tenant_secret("twilio-auth-token");
    store.put(&name, &secret("old-token")).await.unwrap();
    store.put(&other, &secret("untouched")).await.unwrap();
    store.put(&name, &secret("new-token")).await.unwrap();
    assert_eq!(value_of(&*store, &name).await.as_deref(), Some("new-token"));
    // The same value again is fine too.
    store.put(&name, &secret("new-token")).await.unwrap();
    assert_eq!(value_of(&*store, &name).await.as_deref(), Some("new-token"));
    assert_eq!(
        value_of(&*store, &other).await.as_deref(),
        Some("untouched")
    );
}

async fn missing_is_none(store: Arc<dyn SecretStore>) {
    let name = tenant_secret("twilio-auth-token");
    assert!(store.get(&name).await.unwrap().is_none());
    // A name that is only the start of a stored one is still missing.
    store.put(&name, &secret("t")).await.unwrap();
    let parent = name.rsplit_once('/').unwrap().0;
    assert!(store.get(parent).await.unwrap().is_none());
    assert!(store.get(&format!("{name}-2")).await.unwrap().is_none());
}

async fn delete_is_idempotent(store: Arc<dyn SecretStore>) {
    let name = tenant_secret("exotel-api-token");
    let kept = tenant_secret("exotel-api-token");
    store.delete(&name).await.unwrap(); // never put
    store.put(&name, &secret("gone soon")).await.unwrap();
    store.put(&kept, &secret("kept")).await.unwrap();
    store.delete(&name).await.unwrap();
    assert!(store.get(&name).await.unwrap().is_none());
    store.delete(&name).await.unwrap(); // twice
    assert_eq!(value_of(&*store, &kept).await.as_deref(), Some("kept"));
    // A deleted name can be put again.
    store.put(&name, &secret("back")).await.unwrap();
    assert_eq!(value_of(&*store, &name).await.as_deref(), Some("back"));
}

async fn validates_names(store: Arc<dyn SecretStore>) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    for bad in [
        String::new(),
        format!("/tenant/{id}/token"),
        format!("tenant/{id}/token/"),
        format!("tenant//{id}"),
        format!("tenant/{id}/../other"),
        format!("tenant/./{id}"),
        "..".into(),
        format!("tenant/{id}/auth token"),
        format!("tenant/{id}/auth:token"),
        format!("tenant/{id}/t\u{f6}ken"),
        format!("tenant/{id}/{}", "x".repeat(MAX_NAME_CHARS)),
        [id.as_str(); MAX_NAME_SEGMENTS + 1].join("/"),
    ] {
        assert_eq!(
            invalid_field(store.put(&bad, &secret("v")).await),
            "name",
            "put {bad:?}"
        );
        assert_eq!(invalid_field(store.get(&bad).await), "name", "get {bad:?}");
        assert_eq!(
            invalid_field(store.delete(&bad).await),
            "name",
            "delete {bad:?}"
        );
    }
    // The longest and the deepest names work.
    let longest = format!("{id}/{}", "n".repeat(MAX_NAME_CHARS - id.len() - 1));
    assert_eq!(longest.len(), MAX_NAME_CHARS);
    let deepest = format!("{id}/{}", ["d"; MAX_NAME_SEGMENTS - 1].join("/"));
    for good in [longest, deepest] {
        store.put(&good, &secret("v")).await.unwrap();
        assert_eq!(value_of(&*store, &good).await.as_deref(), Some("v"));
        store.delete(&good).await.unwrap();
    }
}

async fn limits_value_sizes(store: Arc<dyn SecretStore>) {
    let name = tenant_secret("vendor-key");
    assert_eq!(invalid_field(store.put(&name, &secret("")).await), "value");
    let over = "k".repeat(MAX_VALUE_BYTES + 1);
    let err = store.put(&name, &secret(&over)).await.unwrap_err();
    assert_eq!(invalid_field::<()>(Err(err)), "value");
    // Bytes, not characters: 2049 two-byte characters are over.
    let wide_over = "\u{e9}".repeat(MAX_VALUE_BYTES / 2 + 1);
    assert_eq!(
        invalid_field(store.put(&name, &secret(&wide_over)).await),
        "value"
    );
    // Nothing was stored by the refused puts.
    assert!(store.get(&name).await.unwrap().is_none());

    let largest = "k".repeat(MAX_VALUE_BYTES);
    store.put(&name, &secret(&largest)).await.unwrap();
    assert_eq!(value_of(&*store, &name).await, Some(largest));
    let wide = "\u{e9}".repeat(MAX_VALUE_BYTES / 2);
    store.put(&name, &secret(&wide)).await.unwrap();
    assert_eq!(value_of(&*store, &name).await, Some(wide));
}

/// Neither a secret nor an error about one shows the value.
async fn never_shows_the_value(store: Arc<dyn SecretStore>) {
    let name = tenant_secret("twilio-auth-token");
    let value = "S3CR3T-twilio-token-4f9a";
    let original = secret(value);
    store.put(&name, &original).await.unwrap();
    let got = store.get(&name).await.unwrap().unwrap();
    assert_eq!(got.expose(), value);
    for s in [&original, &got] {
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{s:#?}"),
            format!("{:?}", Some(s)),
        ] {
            assert!(!shown.contains(value), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    let too_big = format!("{value}{}", "x".repeat(MAX_VALUE_BYTES));
    let err = store.put(&name, &secret(&too_big)).await.unwrap_err();
    for shown in [format!("{err}"), format!("{err:?}")] {
        assert!(!shown.contains(value), "{shown}");
        assert!(shown.contains(&name), "the error names the secret: {shown}");
    }
    // The refused put left the stored value alone.
    assert_eq!(value_of(&*store, &name).await.as_deref(), Some(value));
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded::secret_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod ssm {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = crate::common::moto::secret_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

contract!(
    round_trips,
    overwrites,
    missing_is_none,
    delete_is_idempotent,
    validates_names,
    limits_value_sizes,
    never_shows_the_value,
);

/// On SSM a secret is a SecureString parameter named `<prefix><name>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssm_keeps_secure_strings_under_the_prefix() {
    use aws_sdk_ssm::types::ParameterType;

    let store = common::moto::secret_store().await;
    let name = tenant_secret("twilio-auth-token");
    store.put(&name, &secret("secure-token")).await.unwrap();
    let parameter = format!("{}{name}", store.prefix());
    assert_eq!(store.parameter_name(&name), parameter);
    let client = common::moto::ssm().await;
    let out = client
        .get_parameter()
        .name(&parameter)
        .with_decryption(false)
        .send()
        .await
        .unwrap();
    let stored = out.parameter().unwrap();
    assert_eq!(stored.r#type(), Some(&ParameterType::SecureString));
    assert_ne!(stored.value(), Some("secure-token"), "kept encrypted");
    let decrypted = client
        .get_parameter()
        .name(&parameter)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        decrypted.parameter().and_then(|p| p.value()),
        Some("secure-token")
    );
}
