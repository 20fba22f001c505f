//! The local stack as the local crate's tests start it: on a free loopback port and a
//! fresh data directory, with the demo tenant made, and the simulated carrier ringing
//! briefly with a chosen seed. Each test binary uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const ADMIN: &str = "local-tests-admin-key-0123456789";

pub struct Stack {
    pub base: String,
    /// The demo tenant's API key.
    pub key: String,
    /// The demo agent (office hours, on +12025550123).
    pub agent_id: String,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// The stack with the simulated carrier's mix seeded by `seed`.
    pub async fn start(seed: u64) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = parley_shared::config::Config::from_lookup(|name| match name {
            "PARLEY_PUBLIC_URL" => Some(base.clone()),
            "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
            _ => None,
        })
        .unwrap();
        let ports = Ports::embedded(
            Embedded::open(dir.path(), Arc::new(SystemClock), base.clone(), 5).unwrap(),
        );
        let mut stack = parley::Stack::new(ports.clone(), &config).await.unwrap();
        stack.simulator = parley::carrier::Simulator::new(
            ports,
            &base,
            parley::carrier::Settings {
                seed,
                ring: Duration::from_millis(300),
            },
        )
        .unwrap();
        let admin = parley_shared::secrets::SecretString::new(ADMIN.to_owned());
        let (demo, _) =
            parley::demo::ensure(parley_api::router(stack.api.clone()), dir.path(), &admin)
                .await
                .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            parley::serve(listener, stack, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Stack {
            base,
            key: demo.api_key,
            agent_id: demo.agent_id,
            http: reqwest::Client::new(),
            _stop: stop,
            _dir: dir,
        }
    }

    /// A request with the demo tenant's key: the status and the JSON answer.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Places a call to `to` from the demo agent through the API; the call's id.
    pub async fn place(&self, to: &str) -> String {
        let (status, call) = self
            .send(
                reqwest::Method::POST,
                "/v1/calls",
                json!({"to": to, "agent_id": self.agent_id}),
            )
            .await;
        assert_eq!(status, 201, "{call}");
        call["id"].as_str().unwrap().to_owned()
    }

    /// An appointments agent that answers at any hour (the demo agent keeps office
    /// hours), on the simulated `number`.
    pub async fn always_open_agent(&self, number: &str) -> String {
        let (status, agent) = self
            .send(
                reqwest::Method::POST,
                "/v1/agents",
                json!({"name": "Robin", "status": "active", "industry": "appointments"}),
            )
            .await;
        assert_eq!(status, 201, "{agent}");
        let (status, routed) = self
            .send(
                reqwest::Method::POST,
                "/v1/phone-numbers",
                json!({"number": number, "agent_id": agent["id"], "carrier": "simulated"}),
            )
            .await;
        assert_eq!(status, 201, "{routed}");
        agent["id"].as_str().unwrap().to_owned()
    }

    /// The call once its status is final and, if it was answered, its media is in.
    pub async fn ended(&self, id: &str, within: Duration) -> Value {
        let start = Instant::now();
        loop {
            let (_, call) = self
                .send(
                    reqwest::Method::GET,
                    &format!("/v1/calls/{id}"),
                    Value::Null,
                )
                .await;
            let status = call["status"].as_str().unwrap_or_default();
            let final_status = matches!(status, "completed" | "busy" | "no_answer" | "failed");
            if final_status && (status != "completed" || call["transcript_url"].is_string()) {
                return call;
            }
            assert!(start.elapsed() < within, "call {id} did not end: {call}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The call from `from`, once it has ended and its media is in.
    pub async fn ended_call_from(&self, from: &str, within: Duration) -> Value {
        let start = Instant::now();
        let id = loop {
            let (_, calls) = self
                .send(reqwest::Method::GET, "/v1/calls", Value::Null)
                .await;
            let found = calls["items"]
                .as_array()
                .and_then(|items| items.iter().find(|c| c["from"] == from))
                .and_then(|c| c["id"].as_str())
                .map(str::to_owned);
            if let Some(id) = found {
                break id;
            }
            assert!(start.elapsed() < within, "no call from {from}: {calls}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        self.ended(&id, within.saturating_sub(start.elapsed()))
            .await
    }

    /// The stored transcript of an ended call, through its signed link.
    pub async fn transcript(&self, call: &Value) -> Value {
        self.http
            .get(call["transcript_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// What `speaker` said in a transcript's turns, a lower-case line a turn.
pub fn spoken(turns: &[Value], speaker: &str) -> Vec<String> {
    turns
        .iter()
        .filter(|t| t["speaker"] == speaker)
        .filter_map(|t| t["text"].as_str())
        .map(str::to_lowercase)
        .collect()
}
