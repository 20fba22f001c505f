//! The AWS backend as a Lambda function starts it: configuration from the environment
//! (`PARLEY_BACKEND=aws`, the resource names, the standard `AWS_*` variables with
//! `AWS_ENDPOINT_URL` pointing at moto), then every port used through `Ports`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use parley_shared::backend::Ports;
use parley_shared::blob::BlobStore;
use parley_shared::config::Config;
use parley_shared::event::StreamId;
use parley_shared::eventstore::EventStore;
use parley_shared::eventstore::ExpectedVersion;
use parley_shared::readmodel::View;
use parley_shared::readmodel::ViewStore;
use parley_shared::secrets::{SecretStore, SecretString};
use serde_json::json;

#[test]
fn ports_connect_from_the_environment() {
    // One thread, so nothing reads the environment while it is being set below.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint = common::moto::endpoint().await;
        let events = common::moto::event_store().await;
        let views = common::moto::view_store().await;
        let queue = common::moto::queue(3).await;
        let messages = common::moto::queue(3).await;
        let blobs = common::moto::blob_store().await;
        let secrets_prefix = format!("/{}/", common::moto::unique_name());
        let vars = [
            ("PARLEY_BACKEND", endpoint.as_str()),
            ("PARLEY_EVENTS_TABLE", events.table()),
            ("PARLEY_VIEWS_TABLE", views.table()),
            ("PARLEY_DIAL_QUEUE_URL", queue.queue_url()),
            ("PARLEY_DIAL_DEAD_LETTER_URL", queue.dead_letter_url()),
            ("PARLEY_MESSAGE_QUEUE_URL", messages.queue_url()),
            ("PARLEY_MESSAGE_DEAD_LETTER_URL", messages.dead_letter_url()),
            ("PARLEY_BUCKET", blobs.bucket()),
            ("PARLEY_SECRETS_PREFIX", secrets_prefix.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ];
        for (name, value) in vars {
            let value = if name == "PARLEY_BACKEND" {
                "aws"
            } else {
                value
            };
            // SAFETY: this test binary has this one test, and its runtime one thread;
            // the moto thread only waits on its child. Nothing reads the environment now.
            unsafe { std::env::set_var(name, value) };
        }

        let config = Config::from_env().unwrap();
        let ports = Ports::connect(&config).await.unwrap();
        assert_eq!(ports.kind(), "aws");

        let s = StreamId::new("call", &uuid::Uuid::new_v4().to_string()).unwrap();
        ports
            .events
            .append(
                &s,
                ExpectedVersion::Exact(0),
                vec![common::event("t1", 1, "wiring")],
                None,
            )
            .await
            .unwrap();
        // Read back through the adapters made here, so a port wired to the wrong
        // resource shows.
        assert_eq!(events.read_stream(&s, 1).await.unwrap().len(), 1);

        ports
            .views
            .put(&View::new("calls", "c1", json!({"ok": true})), None)
            .await
            .unwrap();
        assert!(views.get("calls", "c1").await.unwrap().is_some());

        ports.dial_queue.send("job", Duration::ZERO).await.unwrap();
        let got = ports
            .dial_queue
            .receive(1, Duration::from_secs(30), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(got[0].body, "job");
        // The message queue is its own: what is sent there is not a dial job.
        ports
            .message_queue
            .send("confirmation", Duration::ZERO)
            .await
            .unwrap();
        let got = ports
            .message_queue
            .receive(1, Duration::from_secs(30), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(got[0].body, "confirmation");

        ports
            .blobs
            .put(
                "transcripts/t1/c1.json",
                Bytes::from_static(b"{}"),
                "application/json",
            )
            .await
            .unwrap();
        assert!(blobs.get("transcripts/t1/c1.json").await.unwrap().is_some());

        let name = format!("tenant/{}/twilio-auth-token", uuid::Uuid::new_v4());
        ports
            .secrets
            .put(&name, &SecretString::new("wired-token".into()))
            .await
            .unwrap();
        let secrets =
            parley_shared::aws::SsmSecretStore::new(common::moto::ssm().await, secrets_prefix);
        let got = secrets.get(&name).await.unwrap().unwrap();
        assert_eq!(got.expose(), "wired-token");
    });
}
