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
    start_printing(data_dir, port, Stdio::null()).await
}

/// `parley dev` with what it prints going to `stdout`.
async fn start_printing(data_dir: &std::path::Path, port: u16, stdout: Stdio) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("dev")
        .env("PARLEY_DATA_DIR", data_dir)
        .env("PARLEY_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("PARLEY_PUBLIC_URL")
        .env_remove("PARLEY_ADMIN_KEY")
        .stdout(stdout)
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

/// A first start makes an admin key and a demo tenant a user can use at once (an
/// agent speaking the appointments flow, a number on the simulated carrier), prints
/// them, and keeps them: a second start finds the same ones and makes nothing new.
#[tokio::test]
async fn dev_sets_up_a_demo_tenant_once_and_prints_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let printed = dir.path().join("first.txt");
    let first = start_printing(&data, port, std::fs::File::create(&printed).unwrap().into()).await;

    let demo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo.json")).unwrap()).unwrap();
    let admin = std::fs::read_to_string(data.join("admin-key")).unwrap();
    let key = demo["api_key"].as_str().unwrap().to_owned();
    let said = std::fs::read_to_string(&printed).unwrap();
    assert!(said.contains(&key), "{said}");
    assert!(said.contains(admin.trim()), "{said}");
    #[cfg(unix)]
    for file in ["demo.json", "admin-key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(data.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is the user's alone");
    }

    let http = reqwest::Client::new();
    let get = |path: &str, key: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth(key.to_owned())
            .send()
    };
    let agents: serde_json::Value = get("/v1/agents", &key).await.unwrap().json().await.unwrap();
    let agent = &agents["items"][0];
    assert_eq!(agent["id"], demo["agent_id"]);
    assert_eq!(agent["industry"], "appointments");
    assert_eq!(agent["business_hours"]["time_zone"], "America/New_York");
    let numbers: serde_json::Value = get("/v1/phone-numbers", &key)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(numbers["items"][0]["number"], demo["number"]);
    assert_eq!(numbers["items"][0]["carrier"], "simulated");
    let tenants = || async {
        let page: serde_json::Value = get("/v1/tenants", admin.trim())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().len()
    };
    assert_eq!(tenants().await, 1);
    drop(first);

    // Started again on the same data: the same keys, no second tenant.
    let second = start(&data, port).await;
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo.json")).unwrap()).unwrap();
    assert_eq!(again, demo);
    assert_eq!(
        std::fs::read_to_string(data.join("admin-key")).unwrap(),
        admin
    );
    assert_eq!(tenants().await, 1);
    drop(second);
}
