//! The local stack started, used, stopped and started again on one data directory.

use std::sync::Arc;

use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::domain::call::{Call, CallCommand, Carrier, Direction};
use parley_shared::domain::{AgentId, CallId, PhoneNumber};
use parley_shared::embedded::Embedded;
use tokio::sync::oneshot;

async fn start(
    dir: &std::path::Path,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    Ports,
) {
    let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ports =
        Ports::embedded(Embedded::open(dir, Arc::new(SystemClock), base.clone(), 5).unwrap());
    let config = parley_shared::config::Config::from_lookup(|name| {
        (name == "PARLEY_PUBLIC_URL").then(|| base.clone())
    })
    .unwrap();
    let stack = parley::Stack::new(ports.clone(), &config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        parley::serve(listener, stack, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (base, stop, task, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let call = CallId::new();
    {
        let (base, stop, task, ports) = start(dir.path()).await;
        let health: serde_json::Value = reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        let ctx = parley_shared::aggregate::Context {
            tenant_id: "t1".into(),
            correlation_id: call.to_string(),
            idempotency_key: None,
        };
        parley_shared::aggregate::execute::<Call>(
            &*ports.events,
            &*ports.clock,
            &call.stream(),
            &ctx,
            CallCommand::Request {
                direction: Direction::Inbound,
                carrier: Carrier::Twilio,
                from: PhoneNumber::parse("+14155550123").unwrap(),
                to: PhoneNumber::parse("+14155550100").unwrap(),
                agent_id: AgentId::new(),
                lead_id: None,
                campaign_id: None,
                attempt: 0,
            },
        )
        .await
        .unwrap();
        stop.send(()).unwrap();
        task.await.unwrap();
    }
    let (base, stop, task, ports) = start(dir.path()).await;
    assert!(
        reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let loaded = parley_shared::aggregate::load::<Call>(&*ports.events, &call.stream(), "t1")
        .await
        .unwrap();
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.state.direction, Some(Direction::Inbound));
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// On one machine: the admin creates a tenant, the tenant an agent and a number and
/// stores its Twilio token, and a signed inbound-call webhook is answered with a stream
/// to the media task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_set_up_over_the_api_answers_a_signed_twilio_call() {
    let dir = tempfile::tempdir().unwrap();
    let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let admin = "local-admin-key-0123456789";
    let config = parley_shared::config::Config::from_lookup(|name| match name {
        "PARLEY_PUBLIC_URL" => Some(base.clone()),
        "PARLEY_ADMIN_KEY" => Some(admin.into()),
        _ => None,
    })
    .unwrap();
    let ports = Ports::embedded(
        Embedded::open(dir.path(), Arc::new(SystemClock), base.clone(), 5).unwrap(),
    );
    let stack = parley::Stack::new(ports, &config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        parley::serve(listener, stack, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(key.to_owned())
            .json(&body)
            .send()
    };
    let tenant: serde_json::Value = post(
        "/v1/tenants",
        admin,
        serde_json::json!({"name": "Acme", "time_zone": "UTC"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_owned();
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let agent: serde_json::Value = post(
        "/v1/agents",
        &key,
        serde_json::json!({"name": "Riley", "status": "active"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let number = post(
        "/v1/phone-numbers",
        &key,
        serde_json::json!({"number": "+14155550100", "agent_id": agent["id"], "carrier": "twilio"}),
    )
    .await
    .unwrap();
    assert_eq!(number.status(), 201);
    let token = "local-twilio-auth-token-abc";
    let creds = http
        .put(format!("{base}/v1/tenants/{tenant_id}/carriers/twilio"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"account_sid": "AC0001", "auth_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(creds.status(), 204);

    let params: Vec<(String, String)> = [
        ("CallSid", "CA9"),
        ("From", "+14155550199"),
        ("To", "+14155550100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = format!("{base}/webhooks/twilio/voice");
    let signature = parley_shared::twilio::signature::expected_signature(token, &url, &params);
    let answer = http
        .post(&url)
        .header("x-twilio-signature", signature)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let twiml = answer.text().await.unwrap();
    let media = base.replace("http://", "ws://");
    assert!(
        twiml.contains(&format!("<Stream url=\"{media}/media/twilio\">")),
        "{twiml}"
    );

    let unsigned = http.post(&url).form(&params).send().await.unwrap();
    assert_eq!(unsigned.status(), 403);
    stop.send(()).unwrap();
    task.await.unwrap();
}
