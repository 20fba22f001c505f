//! A moto server for the AWS adapters' tests, and fresh, uniquely named tables, queues
//! and buckets on it.
//!
//! `PARLEY_TEST_AWS_ENDPOINT` points the tests at a running emulator; otherwise one moto
//! server (`python3 -m moto.server`, serialised: see [`MOTO_SERVER`]) is started per
//! test binary and killed with it. An emulator given by URL is used as it is: if it is a
//! plain moto server, tests with concurrent DynamoDB writers may fail because of moto.
//! Moto keeps its state for the server's life, so every helper makes its own resource
//! (named with a UUID) and tests do not see each other's data.
//!
//! The SDK configuration is built explicitly (endpoint, region, static credentials) so
//! that no test mutates the process environment.

#![allow(dead_code)] // Each test binary uses only some of the helpers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use parley_shared::aws::{
    DynamoEventStore, DynamoViewStore, S3BlobStore, SqsQueue, SsmSecretStore, config_loader,
    s3_client,
};

/// How long moto may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

const INSTALL_HINT: &str = "the AWS adapter tests need moto: pip install 'moto[server]' \
     (or set PARLEY_TEST_AWS_ENDPOINT to a running emulator)";

/// The emulator's URL, starting moto on first use.
pub async fn endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    // Starting blocks this thread for up to START_TIMEOUT; only the first test waits,
    // and others block on the lock until the server is up, which is what they need.
    ENDPOINT
        .get_or_init(|| match std::env::var("PARLEY_TEST_AWS_ENDPOINT") {
            Ok(url) if !url.is_empty() => url,
            _ => start_moto(),
        })
        .clone()
}

/// An SDK configuration for the emulator: Parley's HTTP client and retry policy, with
/// the endpoint, region and dummy credentials set explicitly.
pub async fn sdk_config() -> SdkConfig {
    config_loader()
        .endpoint_url(endpoint().await)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A name no other test uses: valid as a table, queue and bucket name.
pub fn unique_name() -> String {
    format!("parley-test-{}", uuid::Uuid::new_v4().simple())
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config().await)
}

pub async fn s3() -> aws_sdk_s3::Client {
    s3_client(&sdk_config().await)
}

/// An event store on a new table.
pub async fn event_store() -> DynamoEventStore {
    let client = dynamodb().await;
    let table = unique_name();
    if let Err(e) = DynamoEventStore::create_table(&client, &table).await {
        panic!("creating table {table} on the emulator: {e}");
    }
    DynamoEventStore::new(client, table)
}

/// A view store on a new table.
pub async fn view_store() -> DynamoViewStore {
    let client = dynamodb().await;
    let table = unique_name();
    if let Err(e) = DynamoViewStore::create_table(&client, &table).await {
        panic!("creating table {table} on the emulator: {e}");
    }
    DynamoViewStore::new(client, table)
}

/// A new queue whose messages go to its new dead-letter queue after `max_receives`
/// deliveries.
pub async fn queue(max_receives: u32) -> SqsQueue {
    let name = unique_name();
    match SqsQueue::create(sqs().await, &name, max_receives).await {
        Ok(queue) => queue,
        Err(e) => panic!("creating queue {name} on the emulator: {e}"),
    }
}

pub async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config().await)
}

/// A secret store under a new path prefix.
pub async fn secret_store() -> SsmSecretStore {
    SsmSecretStore::new(ssm().await, format!("/{}/", unique_name()))
}

/// A blob store on a new bucket.
pub async fn blob_store() -> S3BlobStore {
    let client = s3().await;
    let bucket = unique_name();
    if let Err(e) = S3BlobStore::create_bucket(&client, &bucket).await {
        panic!("creating bucket {bucket} on the emulator: {e}");
    }
    S3BlobStore::new(client, bucket)
}

/// Set when moto exits (it should live as long as the test binary).
static EXITED: OnceLock<ExitStatus> = OnceLock::new();

fn start_moto() -> String {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("parley-moto-{}-{port}.log", std::process::id()));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let log_for_thread = log.clone();
    // PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not the
    // process. Test threads end with their test, so moto is started by a thread of its
    // own that lives exactly as long as moto (it waits on it), and moto dies with the
    // test binary.
    let spawned = std::thread::Builder::new()
        .name("moto-server".into())
        .spawn(move || {
            let mut child = match spawn_moto(port, &log_for_thread) {
                Ok(child) => child,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            if let Ok(status) = child.wait() {
                let _ = EXITED.set(status);
            }
        });
    if let Err(e) = spawned {
        panic!("starting a thread for moto: {e}");
    }
    match started_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("cannot run python3 -m moto.server: {e}; {INSTALL_HINT}"),
        Err(_) => panic!("the moto thread ended before starting moto; {INSTALL_HINT}"),
    }
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = EXITED.get() {
            panic!(
                "moto exited at start ({status}); {INSTALL_HINT}\n--- {} ---\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        if answers_http(port) {
            return url;
        }
        if Instant::now() > deadline {
            panic!(
                "moto did not answer on {url} within {START_TIMEOUT:?}\n--- {} ---\n{}",
                log.display(),
                log_tail(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `python3 -m moto.server`, except that requests are served one at a time (SQS's
/// excepted, whose receives may wait for a send). Moto's backends are not thread-safe:
/// a DynamoDB transaction that is cancelled restores a copy of the whole table taken
/// when it began, wiping whatever other requests committed meanwhile, so concurrent
/// appends would lose events that were acknowledged.
const MOTO_SERVER: &str = r#"
import sys, threading
import moto.server as server

lock = threading.Lock()
run_simple = server.run_simple

def serve_serially(host, port, app, **options):
    def serial_app(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))
    return run_simple(host, port, serial_app, **options)

server.run_simple = serve_serially
server.main(sys.argv[1:])
"#;

fn spawn_moto(port: u16, log: &Path) -> std::io::Result<std::process::Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let mut command = Command::new("python3");
    command
        .args([
            "-c",
            MOTO_SERVER,
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: runs in the forked child before exec and calls only prctl, which is
        // async-signal-safe; no allocation, no locks.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command.spawn()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("finding a free port: {e}"),
    }
}

/// Whether something on the port answers an HTTP request with an HTTP response.
fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
