//! `parley dev` as a user runs it: the real binary on a loopback port.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data_dir: &std::path::Path, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("dev")
        .env("PARLEY_DATA_DIR", data_dir)
        .env("PARLEY_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("PARLEY_PUBLIC_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/health")).await
            && r.status().is_success()
        {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("parley dev did not answer /health within 20 s");
}

#[tokio::test]
async fn dev_serves_health_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _parley = start(dir.path(), port).await;
    let health: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], "embedded");
    assert!(
        dir.path().join("parley.db").exists(),
        "data kept in PARLEY_DATA_DIR"
    );
}

/// A blob's local download link works while signed and unexpired, and only then.
#[tokio::test]
async fn dev_serves_signed_blob_links() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // Write through the library into the same data directory, as the media task would.
    let url = {
        let embedded = Embedded::open(
            dir.path(),
            std::sync::Arc::new(SystemClock),
            base.clone(),
            5,
        )
        .unwrap();
        use parley_shared::blob::BlobStore;
        embedded
            .blobs
            .put(
                "transcripts/t1/c1.json",
                Bytes::from_static(b"{\"turns\":[]}"),
                "application/json",
            )
            .await
            .unwrap();
        embedded
            .blobs
            .url("transcripts/t1/c1.json", Duration::from_secs(300))
            .await
            .unwrap()
    };
    let _parley = start(dir.path(), port).await;

    let ok = reqwest::get(&url).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/json");
    assert_eq!(
        ok.bytes().await.unwrap(),
        Bytes::from_static(b"{\"turns\":[]}")
    );

    let tampered = url.replace("transcripts/t1/c1.json", "transcripts/t2/c1.json");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(reqwest::get(&unsigned).await.unwrap().status(), 403);
    let mut forged = url.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
}
