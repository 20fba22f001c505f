//! The blob store contract, run against files (embedded) and S3 (moto).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parley_shared::StoreError;
use parley_shared::blob::BlobStore;
use rand::RngCore;

fn key(name: &str) -> String {
    format!("recordings/tenant-1/{}-{name}", uuid::Uuid::new_v4())
}

async fn stores_once_and_never_overwrites(store: Arc<dyn BlobStore>) {
    let k = key("t.json");
    assert_eq!(store.get(&k).await.unwrap(), None);
    store
        .put(
            &k,
            Bytes::from_static(b"{\"turns\":[]}"),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap().unwrap(),
        Bytes::from_static(b"{\"turns\":[]}")
    );
    match store
        .put(&k, Bytes::from_static(b"other"), "application/json")
        .await
    {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.get(&k).await.unwrap().unwrap(),
        Bytes::from_static(b"{\"turns\":[]}"),
        "unchanged"
    );
}

/// A recording larger than S3's 5 MiB part minimum, streamed in uneven chunks.
async fn streams_a_large_blob_in_parts(store: Arc<dyn BlobStore>) {
    let k = key("call.wav");
    let mut data = vec![0u8; 13 * 1024 * 1024 + 123];
    rand::rng().fill_bytes(&mut data);
    let mut writer = store.writer(&k, "audio/wav").await.unwrap();
    for chunk in data.chunks(700 * 1024 + 17) {
        writer.write(chunk).await.unwrap();
    }
    assert_eq!(
        store.get(&k).await.unwrap(),
        None,
        "invisible until finished"
    );
    assert_eq!(writer.finish().await.unwrap(), data.len() as u64);
    let back = store.get(&k).await.unwrap().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "read back byte for byte");

    // A second writer for the same key cannot replace it.
    let mut again = store.writer(&k, "audio/wav").await.unwrap();
    again.write(b"RIFF").await.unwrap();
    assert!(matches!(
        again.finish().await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get(&k).await.unwrap().unwrap().len(), data.len());
}

async fn an_aborted_write_leaves_nothing(store: Arc<dyn BlobStore>) {
    let k = key("aborted.wav");
    let mut writer = store.writer(&k, "audio/wav").await.unwrap();
    writer.write(&vec![1u8; 6 * 1024 * 1024]).await.unwrap();
    writer.abort().await.unwrap();
    assert_eq!(store.get(&k).await.unwrap(), None);
    store
        .put(&k, Bytes::from_static(b"fresh"), "audio/wav")
        .await
        .unwrap();
}

async fn refuses_unsafe_keys(store: Arc<dyn BlobStore>) {
    for bad in [
        "../etc/passwd",
        "/abs",
        "a//b",
        "a/./b",
        "a b",
        "",
        "recordings/x/..",
        "a\\b",
    ] {
        match store.put(bad, Bytes::from_static(b"x"), "text/plain").await {
            Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "key", "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(
            matches!(store.get(bad).await, Err(StoreError::Invalid { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.url("recordings/x.wav", Duration::from_secs(8 * 24 * 3600)).await,
        Err(StoreError::Invalid { field, .. }) if field == "expires_in"
    ));
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod files {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded::blob_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = crate::common::moto::blob_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

contract!(
    stores_once_and_never_overwrites,
    streams_a_large_blob_in_parts,
    an_aborted_write_leaves_nothing,
    refuses_unsafe_keys,
);

/// Download URLs: S3's presigned URL fetched over HTTP; the local one checked by the
/// store's own verifier (the local stack's HTTP route is tested in `parley`'s tests).
#[tokio::test]
async fn s3_presigned_url_downloads() {
    let store = common::moto::blob_store().await;
    let k = key("t.json");
    store
        .put(&k, Bytes::from_static(b"hello"), "application/json")
        .await
        .unwrap();
    let url = store.url(&k, Duration::from_secs(60)).await.unwrap();
    let body = reqwest::get(&url).await.unwrap();
    assert!(body.status().is_success(), "{}", body.status());
    assert_eq!(body.bytes().await.unwrap(), Bytes::from_static(b"hello"));
}
