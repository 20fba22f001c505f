//! The browser call page, end to end in headless Chromium (Debian's `chromium`): the
//! local stack serves `/call`, the browser's fake microphone plays a WAV file of a
//! caller's line, and the page calls an agent on a simulated number over the phone
//! WebSocket. Read over the DevTools protocol, the page must show the live
//! transcript (the agent's line and the caller's) and have received the agent's
//! audio; the call is then in the API, inbound, with the caller's words stored.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Stack, spoken};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const NUMBER: &str = "+12025550126";
const FROM: &str = "+14155550143";
const LINE: &str = "A check up for my teeth please.";
/// Quiet before the caller's words: Chromium loops the file, and the caller should
/// speak after the greeting, not over it.
const LEAD_IN_SECS: u32 = 10;
/// How long the page has to hold the conversation.
const WITHIN: Duration = Duration::from_secs(90);

/// The caller's line as a WAV file: flite's `kal`, after a few seconds of quiet.
fn caller_wav(dir: &Path) -> PathBuf {
    let spoken = dir.join("spoken.wav");
    let made = std::process::Command::new("flite")
        .args(["-voice", "kal", "-t", LINE, "-o"])
        .arg(&spoken)
        .status()
        .expect("flite must be installed (Debian package flite)");
    assert!(made.success());
    let mut reader = hound::WavReader::open(&spoken).unwrap();
    let spec = reader.spec();
    let words: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let padded = dir.join("caller.wav");
    let mut writer = hound::WavWriter::create(&padded, spec).unwrap();
    let quiet = spec.sample_rate * LEAD_IN_SECS * u32::from(spec.channels);
    for _ in 0..quiet {
        writer.write_sample(0i16).unwrap();
    }
    for sample in words {
        writer.write_sample(sample).unwrap();
    }
    // And a little after, so the end of the line is heard as the end of a turn.
    for _ in 0..spec.sample_rate * u32::from(spec.channels) {
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();
    padded
}

/// Headless Chromium on `url`, its microphone playing `wav`; killed when dropped.
struct Browser {
    child: tokio::process::Child,
    profile: tempfile::TempDir,
    log: PathBuf,
}

impl Browser {
    fn launch(url: &str, wav: &Path, log: PathBuf) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(&log).unwrap();
        let mut capture = std::ffi::OsString::from("--use-file-for-fake-audio-capture=");
        capture.push(wav);
        let mut profile_dir = std::ffi::OsString::from("--user-data-dir=");
        profile_dir.push(profile.path());
        let child = tokio::process::Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
            ])
            .arg(capture)
            .args([
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0",
            ])
            .arg(profile_dir)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromium ({e}): install Debian's package chromium")
            });
        Browser {
            child,
            profile,
            log,
        }
    }

    /// The DevTools port, from the file Chromium writes once it listens.
    async fn devtools_port(&mut self) -> u16 {
        let file = self.profile.path().join("DevToolsActivePort");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromium exited ({status}): {}", self.log_tail());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromium wrote no DevToolsActivePort: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A page's DevTools session: `Runtime.evaluate` over its WebSocket.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    /// The DevTools session of the page whose URL contains `path`.
    async fn attach(port: u16, path: &str) -> Page {
        let http = reqwest::Client::new();
        let start = Instant::now();
        let url = loop {
            let targets: Value = match http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            {
                Ok(response) => response.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let found = targets.as_array().and_then(|targets| {
                targets.iter().find_map(|t| {
                    let page =
                        t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.contains(path));
                    page.then(|| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
                        .flatten()
                })
            });
            if let Some(url) = found {
                break url;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no page at {path}: {targets}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        Page { socket, next_id: 1 }
    }

    /// The value of `expression` in the page.
    async fn evaluate(&mut self, expression: &str) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true},
        });
        self.socket
            .send(Message::text(request.to_string()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("DevTools answered")
                .expect("DevTools socket open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(text.as_str()).unwrap();
            // Events (and answers to nothing of ours) are skipped.
            if answer["id"] != id {
                continue;
            }
            assert!(
                answer["result"]["exceptionDetails"].is_null(),
                "{expression}: {answer}"
            );
            return answer["result"]["result"]["value"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_page_talks_to_an_agent_in_headless_chromium() {
    if let Err(e) = std::process::Command::new("chromium")
        .arg("--version")
        .output()
    {
        panic!("chromium cannot be run ({e}): install Debian's package chromium");
    }
    let stack = Stack::start(1).await;
    stack.always_open_agent(NUMBER).await;

    // The page itself: one self-contained HTML document.
    let page = stack
        .http
        .get(format!("{}/call", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-type"],
        "text/html; charset=utf-8",
        "{:?}",
        page.headers()
    );
    assert!(page.text().await.unwrap().contains("parleyCall"));

    let dir = tempfile::tempdir().unwrap();
    let wav = caller_wav(dir.path());
    let url = format!(
        "{}/call?to={}&from={}&autostart=1",
        stack.base,
        NUMBER.replace('+', "%2B"),
        FROM.replace('+', "%2B"),
    );
    let mut browser = Browser::launch(&url, &wav, dir.path().join("chromium.log"));
    let port = browser.devtools_port().await;
    let mut page = Page::attach(port, "/call").await;

    // The page holds the conversation: the agent's audio arrives and both sides'
    // lines show in its live transcript.
    let start = Instant::now();
    let seen = loop {
        let seen = page
            .evaluate("JSON.stringify(window.parleyCall || null)")
            .await;
        let seen: Value = serde_json::from_str(seen.as_str().unwrap_or("null")).unwrap();
        let turns = seen["transcript"].as_array().cloned().unwrap_or_default();
        let audio_ms = seen["agentAudioMs"].as_f64().unwrap_or(0.0);
        if !spoken(&turns, "agent").is_empty()
            && !spoken(&turns, "caller").is_empty()
            && audio_ms > 2000.0
        {
            break seen;
        }
        assert!(
            !matches!(seen["state"].as_str(), Some("failed" | "ended")),
            "the call ended early: {seen}\n{}",
            browser.log_tail()
        );
        assert!(
            start.elapsed() < WITHIN,
            "the page did not hold the conversation: {seen}\n{}",
            browser.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("the page saw: {seen}");
    assert!(
        seen["callSid"]
            .as_str()
            .is_some_and(|s| s.starts_with("CA")),
        "{seen}"
    );
    assert!(
        seen["callerAudioMs"].as_f64().unwrap_or(0.0) > 0.0,
        "{seen}"
    );
    let on_screen = page
        .evaluate("Array.from(document.querySelectorAll('#transcript li'), li => li.textContent)")
        .await;
    let on_screen: Vec<&str> = on_screen
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let live = seen["transcript"].as_array().cloned().unwrap_or_default();
    assert!(
        on_screen.len() >= live.len()
            && live.iter().zip(&on_screen).all(|(turn, shown)| {
                turn["text"]
                    .as_str()
                    .is_some_and(|text| shown.contains(text))
            }),
        "the transcript is on the page: {on_screen:?}"
    );

    // Hanging up ends the call; then it is in the API like any other.
    page.evaluate("document.getElementById('hangup').click()")
        .await;
    let call = stack.ended_call_from(FROM, Duration::from_secs(30)).await;
    assert_eq!(call["status"], "completed", "{call}");
    assert_eq!(call["direction"], "inbound", "{call}");
    assert_eq!(call["carrier"], "simulated", "{call}");
    assert_eq!(call["to"], NUMBER, "{call}");
    let stored = stack.transcript(&call).await;
    let stored = stored["turns"].as_array().cloned().unwrap_or_default();
    let caller = spoken(&stored, "caller");
    assert!(
        caller
            .iter()
            .any(|t| t.contains("teeth") || t.contains("check up") || t.contains("checkup")),
        "the caller's words: {stored:?}"
    );
    // What the page showed live is what the call's transcript keeps: every agent line,
    // and the caller's (a caller's turn taken back to be joined by more words shows
    // twice live, once joined in the transcript).
    let agent = spoken(&stored, "agent");
    for line in spoken(&live, "agent") {
        assert!(agent.contains(&line), "agent {line:?} not in {agent:?}");
    }
    assert!(
        spoken(&live, "caller")
            .iter()
            .any(|line| caller.contains(line)),
        "{live:?} against {caller:?}"
    );
}
