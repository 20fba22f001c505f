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
    let (stop, stopped) = oneshot::channel::<()>();
    let served = ports.clone();
    let task = tokio::spawn(async move {
        parley::serve(listener, served, None, async {
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
