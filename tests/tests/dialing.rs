//! The scheduler and the dialer at their edges: jobs that must not dial (a paused
//! campaign, a number blocked after its job was queued), poison jobs on their way to
//! the dead-letter queue, the repairs after a lost job or a dialer that died mid-call,
//! the scheduler's lock, the SQS trigger's partial batch failures, and `parley dev`
//! running both on its own.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use common::{Scene, manual, quiet_twilio};
use parley_shared::aggregate::{Context, execute, load_any};
use parley_shared::clock::SystemClock;
use parley_shared::dialqueue::DialJob;
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::dialjob;
use parley_shared::domain::lead::Lead;
use parley_shared::domain::{AgentId, CallId, CampaignId, LeadId, PhoneNumber, TenantId};
use parley_shared::readmodel::View;
use serde_json::{Value, json};

/// Wednesday 14 January 2026, 16:00 UTC: 11:00 in New York, inside the window.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 16, 0, 0).unwrap()
}

const LEAD_A: &str = "+14155550132";
const LEAD_B: &str = "+14155550133";

fn two_leads() -> String {
    format!("phone,name\n{LEAD_A},Ada\n{LEAD_B},Bob\n")
}

async fn lead_view(scene: &Scene, campaign: &str, phone: &str) -> Value {
    let id = LeadId::for_campaign_phone(&CampaignId::parse(campaign).unwrap(), phone);
    scene
        .ports
        .views
        .get("leads", &id.to_string())
        .await
        .unwrap()
        .unwrap()
        .body
}

/// Works the queue second by second for `seconds`: the scheduler spreads a minute's
/// jobs at the account's calls per second.
async fn dial_for(scene: &Scene, clock: &parley_shared::clock::ManualClock, seconds: i64) {
    for _ in 0..seconds {
        dial_all(scene).await;
        clock.advance(Duration::seconds(1));
    }
}

/// The message ids the dialer reports as failed for `event`.
async fn failed(scene: &Scene, event: SqsEvent) -> Vec<String> {
    let response = scene.stack.dialer.batch(event).await;
    response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

/// Hands every visible job to the dialer; how many it settled.
async fn dial_all(scene: &Scene) -> usize {
    let mut settled = 0;
    loop {
        let got = scene
            .ports
            .dial_queue
            .receive(10, parley_dialer::VISIBILITY, StdDuration::ZERO)
            .await
            .unwrap();
        if got.is_empty() {
            return settled;
        }
        for d in got {
            if scene.stack.dialer.process(&d.message_id, &d.body).await {
                scene.ports.dial_queue.delete(&d.receipt).await.unwrap();
                settled += 1;
            }
        }
    }
}

#[tokio::test]
async fn a_paused_campaign_dials_nobody_and_resumes_where_it_stopped() {
    let (clock, shared) = manual(wednesday());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene.campaign(json!({}), two_leads()).await;

    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!(tick.queued, 2);
    // Paused after the jobs were queued: they must not dial.
    scene
        .call(
            reqwest::Method::POST,
            &format!("/v1/campaigns/{campaign}/pause"),
            Value::Null,
        )
        .await;
    dial_for(&scene, &clock, 3).await;
    assert!(twilio.placed.lock().unwrap().is_empty());
    let lead = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(lead["attempts"], json!([]), "{lead}");
    assert_eq!(lead["dial"]["state"], "waiting");
    // Ticks while paused queue nothing.
    clock.advance(Duration::seconds(60));
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        0
    );

    scene
        .call(
            reqwest::Method::POST,
            &format!("/v1/campaigns/{campaign}/resume"),
            Value::Null,
        )
        .await;
    clock.advance(Duration::seconds(60));
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        2
    );
    // One call per second: the second job is queued for the next second.
    dial_all(&scene).await;
    assert_eq!(twilio.placed.lock().unwrap().len(), 1);
    dial_for(&scene, &clock, 2).await;
    let placed = twilio.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 2);
    // Attempt 1 again: the withdrawn attempt did not count.
    let lead_a = LeadId::for_campaign_phone(&CampaignId::parse(&campaign).unwrap(), LEAD_A);
    assert!(
        placed
            .iter()
            .any(|p| p.call_id == CallId::for_lead_attempt(&lead_a, 1).to_string())
    );
    let lead = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(lead["dial"]["state"], "calling");
}

#[tokio::test]
async fn a_number_blocked_after_its_job_was_queued_is_not_dialled() {
    let (clock, shared) = manual(wednesday());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene.campaign(json!({}), two_leads()).await;
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        2
    );
    scene
        .call(
            reqwest::Method::PUT,
            &format!("/v1/do-not-call/{}", LEAD_A.replace('+', "%2B")),
            json!({"reason": "asked us by email"}),
        )
        .await;
    dial_for(&scene, &clock, 3).await;
    let placed = twilio.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].to, LEAD_B);
    let lead = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(lead["do_not_call"], true);
    assert_eq!(lead["dial"]["resolution"], "do_not_call", "{lead}");
}

#[tokio::test]
async fn poison_jobs_are_recorded_once_and_end_in_the_dead_letter_queue() {
    let (clock, shared) = manual(wednesday());
    let (_twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 3).await;
    let lead = LeadId::new();
    let mut forged = DialJob::new(TenantId::new(), CampaignId::new(), lead, 1);
    forged.call_id = CallId::new();
    let unknown = DialJob::new(TenantId::new(), CampaignId::new(), LeadId::new(), 1);
    let queue = &scene.ports.dial_queue;
    for body in ["not json at all", &forged.to_body(), &unknown.to_body()] {
        queue.send(body, StdDuration::ZERO).await.unwrap();
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let got = queue
            .receive(10, parley_dialer::VISIBILITY, StdDuration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        for d in got {
            assert!(!scene.stack.dialer.process(&d.message_id, &d.body).await);
            ids.push(d.message_id);
        }
        clock.advance(Duration::seconds(61));
    }
    assert!(
        queue
            .receive(10, parley_dialer::VISIBILITY, StdDuration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 3);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let mut reasons = Vec::new();
    for id in &ids {
        let stream = dialjob::stream(id).unwrap();
        let events = scene.ports.events.read_stream(&stream, 1).await.unwrap();
        // Three deliveries, one record of why.
        assert_eq!(events.len(), 1, "{id}");
        let job = load_any::<dialjob::DialJob>(&*scene.ports.events, &stream)
            .await
            .unwrap()
            .state;
        reasons.push(job.rejected.unwrap());
    }
    reasons.sort();
    assert!(reasons[0].starts_with("body:"), "{reasons:?}");
    assert!(reasons[1].starts_with("call_id:"), "{reasons:?}");
    assert!(reasons[2].starts_with("lead_id:"), "{reasons:?}");
}

#[tokio::test]
async fn one_bad_message_fails_alone_in_an_sqs_batch() {
    let (_clock, shared) = manual(wednesday());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    scene.campaign(json!({}), two_leads()).await;
    parley_scheduler::tick(&scene.ports, None).await.unwrap();
    let job = scene
        .ports
        .dial_queue
        .receive(1, parley_dialer::VISIBILITY, StdDuration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let message = |id: &str, body: &str| {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        message("good", &job.body),
        message("bad", "{\"attempt\": 1}"),
        // The same job twice in one batch: placed once, both succeed.
        message("again", &job.body),
    ];
    assert_eq!(failed(&scene, event).await, vec!["bad"]);
    assert_eq!(twilio.placed.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_scheduler_repairs_lost_jobs_and_calls_a_dead_dialer_left_unplaced() {
    let (clock, shared) = manual(wednesday());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene.campaign(json!({}), two_leads()).await;
    let campaign_id = CampaignId::parse(&campaign).unwrap();
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        2
    );
    // Both jobs are lost (the queue send failed, say)...
    clock.advance(Duration::seconds(2));
    let got = scene
        .ports
        .dial_queue
        .receive(10, parley_dialer::VISIBILITY, StdDuration::ZERO)
        .await
        .unwrap();
    for d in &got {
        scene.ports.dial_queue.delete(&d.receipt).await.unwrap();
    }
    // ...and for lead A a dialer wrote the call, then died before asking the carrier.
    let lead_a = LeadId::for_campaign_phone(&campaign_id, LEAD_A);
    let call_a = CallId::for_lead_attempt(&lead_a, 1);
    let ctx = Context {
        tenant_id: scene.tenant_id.clone(),
        correlation_id: call_a.to_string(),
        idempotency_key: None,
    };
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier: Carrier::Twilio,
        from: PhoneNumber::parse("+14155550100").unwrap(),
        to: PhoneNumber::parse(LEAD_A).unwrap(),
        agent_id: AgentId::parse(&scene.agent_id).unwrap(),
        lead_id: Some(lead_a.clone()),
        campaign_id: Some(campaign_id.clone()),
        attempt: 1,
    };
    execute::<Call>(
        &*scene.ports.events,
        &*scene.ports.clock,
        &call_a.stream(),
        &ctx,
        request,
    )
    .await
    .unwrap();

    // Ten minutes on, lead B's job is queued again; lead A's call exists, so it waits.
    clock.advance(Duration::minutes(10) - Duration::seconds(2));
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!(tick.requeued, 1, "{tick:?}");
    dial_all(&scene).await;
    let placed = twilio.placed.lock().unwrap().clone();
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].to, LEAD_B);

    // Thirty minutes on, lead A's unplaced call is failed and its attempt closed.
    clock.advance(Duration::minutes(20));
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!(tick.repaired, 1, "{tick:?}");
    let call = load_any::<Call>(&*scene.ports.events, &call_a.stream())
        .await
        .unwrap()
        .state;
    assert_eq!(call.status, Some(CallStatus::Failed));
    let lead = load_any::<Lead>(&*scene.ports.events, &lead_a.stream())
        .await
        .unwrap()
        .state;
    assert_eq!(lead.attempts[0].outcome, Some(CallStatus::Failed));
    // Failures are not retried by default: lead A is resolved.
    let view = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(view["dial"]["resolution"], "failed", "{view}");
}

#[tokio::test]
async fn a_tick_finding_the_lock_held_does_nothing_until_it_lapses() {
    let (clock, shared) = manual(wednesday());
    let (_twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    scene.campaign(json!({}), two_leads()).await;
    let held = View::new(
        "scheduler",
        "lock",
        json!({"holder": "another", "until": (wednesday() + Duration::seconds(55)).timestamp_micros()}),
    );
    scene.ports.views.put(&held, None).await.unwrap();
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert!(!tick.ran);
    assert_eq!(tick.queued, 0);
    clock.advance(Duration::seconds(56));
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert!(tick.ran);
    assert_eq!(tick.queued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parley_dev_schedules_and_dials_on_its_own() {
    let clock: Arc<dyn parley_shared::clock::Clock> = Arc::new(SystemClock);
    let (twilio, url) = quiet_twilio(clock.clone()).await;
    let mut scene = Scene::new(clock, &url, 5).await;
    // Open every hour of every day, so that the test runs whenever CI does.
    let always = json!({"calling_window": {"start": "00:00:00", "end": "23:59:59", "days":
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]}});
    scene.campaign(always, two_leads()).await;
    scene.stack.tick_every = StdDuration::from_millis(200);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(parley::workers(scene.stack.clone(), stopped));
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    while twilio.placed.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    workers.await.unwrap();
    let mut to: Vec<String> = twilio
        .placed
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.to.clone())
        .collect();
    to.sort();
    assert_eq!(to, vec![LEAD_A.to_owned(), LEAD_B.to_owned()]);
}

#[tokio::test]
async fn the_sample_sqs_batch_is_reported_message_by_message() {
    let (_clock, shared) = manual(wednesday());
    let (_twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let event: SqsEvent =
        serde_json::from_str(include_str!("../../events/dialer/sqs-batch.json")).unwrap();
    // On an empty store both are poison: a lead that does not exist, and garbage.
    assert_eq!(
        failed(&scene, event).await,
        vec![
            "9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
            "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
        ]
    );
    for (id, reason) in [
        ("9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c", "lead_id:"),
        ("2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "body:"),
    ] {
        let job = load_any::<dialjob::DialJob>(&*scene.ports.events, &dialjob::stream(id).unwrap())
            .await
            .unwrap()
            .state;
        assert!(job.rejected.unwrap().starts_with(reason));
    }
}

#[tokio::test]
async fn a_wider_window_is_used_from_the_next_tick() {
    // 09:00 in New York: before the default window opens at 10:00.
    let (_clock, shared) = manual(Utc.with_ymd_and_hms(2026, 1, 14, 14, 0, 0).unwrap());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene.campaign(json!({}), two_leads()).await;
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        0
    );
    let lead = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(lead["dial"]["due_at"], "2026-01-14T15:00:00Z", "{lead}");

    scene
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/campaigns/{campaign}"),
            json!({"calling_window": {"start": "08:30:00"}}),
        )
        .await;
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!(tick.queued, 2, "{tick:?}");
    dial_all(&scene).await;
    assert_eq!(twilio.placed.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn leads_left_waiting_at_closing_time_wait_for_the_next_opening() {
    // 18:58 in New York: room for one call (cap 1) before the window closes at 19:00.
    let (clock, shared) = manual(Utc.with_ymd_and_hms(2026, 1, 14, 23, 58, 0).unwrap());
    let (twilio, url) = quiet_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene
        .campaign(json!({"max_concurrent_calls": 1}), two_leads())
        .await;
    assert_eq!(
        parley_scheduler::tick(&scene.ports, None)
            .await
            .unwrap()
            .queued,
        1
    );

    // 19:03: the reserved job comes too late and is withdrawn; the other lead, still
    // listed as due, is looked at once and moved to tomorrow's opening.
    clock.advance(Duration::minutes(5));
    dial_all(&scene).await;
    assert!(twilio.placed.lock().unwrap().is_empty());
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!((tick.queued, tick.examined), (0, 1), "{tick:?}");
    for phone in [LEAD_A, LEAD_B] {
        let lead = lead_view(&scene, &campaign, phone).await;
        assert_eq!(lead["dial"]["due_at"], "2026-01-15T15:00:00Z", "{lead}");
    }
    // The night's ticks look at nobody.
    clock.advance(Duration::minutes(1));
    let tick = parley_scheduler::tick(&scene.ports, None).await.unwrap();
    assert_eq!(tick.examined, 0, "{tick:?}");
}

/// A Twilio that places calls and, asked later, says how each ended: what a lost
/// final status callback would have said.
async fn forgetful_twilio(
    clock: Arc<dyn parley_shared::clock::Clock>,
) -> (Arc<common::QuietTwilio>, String) {
    use axum::routing::{get, post};
    let twilio = Arc::new(common::QuietTwilio {
        clock,
        placed: std::sync::Mutex::new(Vec::new()),
    });
    async fn fetch(
        axum::extract::Path((_account, sid)): axum::extract::Path<(String, String)>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let sid = sid.trim_end_matches(".json").to_owned();
        let body = json!({"sid": sid, "status": "completed", "duration": "42"});
        (axum::http::StatusCode::OK, axum::Json(body)).into_response()
    }
    let router = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(common::quiet_create),
        )
        .route("/2010-04-01/Accounts/{account}/Calls/{sid}", get(fetch))
        .with_state(twilio.clone());
    let url = common::serve(router).await;
    (twilio, url)
}

#[tokio::test]
async fn a_call_whose_last_callback_was_lost_is_looked_up_at_the_carrier() {
    let (clock, shared) = manual(wednesday());
    let (twilio, url) = forgetful_twilio(shared.clone()).await;
    let scene = Scene::new(shared, &url, 5).await;
    let campaign = scene.campaign(json!({}), two_leads()).await;
    let carriers = scene.stack.dialer.dialing.clone();
    parley_scheduler::tick(&scene.ports, Some(&carriers))
        .await
        .unwrap();
    dial_for(&scene, &clock, 2).await;
    assert_eq!(twilio.placed.lock().unwrap().len(), 2);
    // No callback ever comes. Within the hour nothing is asked...
    clock.advance(Duration::minutes(30) - Duration::seconds(2));
    let tick = parley_scheduler::tick(&scene.ports, Some(&carriers))
        .await
        .unwrap();
    assert_eq!(tick.repaired, 0);
    // ...after it, Twilio says the calls completed, 42 s each.
    clock.advance(Duration::minutes(30));
    let tick = parley_scheduler::tick(&scene.ports, Some(&carriers))
        .await
        .unwrap();
    assert_eq!(tick.repaired, 2, "{tick:?}");
    let lead = lead_view(&scene, &campaign, LEAD_A).await;
    assert_eq!(lead["attempts"][0]["status"], "completed", "{lead}");
    assert_eq!(lead["attempts"][0]["duration_secs"], 42);
    assert_eq!(lead["dial"]["resolution"], "answered");
    // Every lead resolved: the campaign is done.
    let read = scene
        .call(
            reqwest::Method::GET,
            &format!("/v1/campaigns/{campaign}"),
            Value::Null,
        )
        .await;
    assert_eq!(read["status"], "COMPLETED", "{read}");
}
