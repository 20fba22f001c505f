//! The campaign engine's proof: a 1,000-lead campaign run over simulated days (a
//! Saturday, then, after the closed Sunday on which US daylight saving starts, a Monday
//! and what else it takes) on a manual clock, with a local server playing Twilio: it answers, is
//! busy, does not answer, fails, lets machines answer and refuses some numbers, in a
//! seeded random mix, and delivers its signed status callbacks late, twice and out of
//! order. The dial queue redelivers jobs (a dialer that "crashed"), SQS duplicates them,
//! and two dialers race on some. The scheduler and the dialer run the same library code
//! as their Lambdas.
//!
//! It checks what the issue promises: every lead ends resolved and the campaign
//! completed; no call starts outside its lead's window, or while the campaign is paused;
//! the concurrency and calls-per-second caps are never exceeded; no (lead, attempt) is
//! dialled twice; retries start no sooner than the policy says; no number on the
//! do-not-call list is dialled.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use common::{Scene, TOKEN};
use parley_shared::aggregate::load_any;
use parley_shared::clock::{Clock, ManualClock};
use parley_shared::domain::call::CallStatus;
use parley_shared::domain::campaign::CallingWindow;
use parley_shared::domain::lead::Lead;
use parley_shared::domain::{CallId, CampaignId, LeadId};
use parley_shared::twilio::signature;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const LEADS: usize = 1000;
const CAP: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Answered,
    Machine,
    NoAnswer,
    Busy,
    Failed,
    /// Twilio's REST API refuses the number outright.
    Refused,
}

struct Placed {
    at: DateTime<Utc>,
    call_id: String,
    to: String,
    outcome: Outcome,
}

struct Callback {
    due: DateTime<Utc>,
    url: String,
    form: Vec<(String, String)>,
    sid: String,
    /// A final status: the engine's attempt ends when the first one lands.
    last: bool,
}

/// The simulated Twilio: its REST API, and the callbacks it owes.
struct Twilio {
    clock: ManualClock,
    rng: Mutex<StdRng>,
    placed: Mutex<Vec<Placed>>,
    /// Call SIDs whose attempt is over for the engine (a final callback landed, or the
    /// call was refused), and the most calls in progress seen at any placement.
    ended: Mutex<HashSet<String>>,
    most_in_progress: Mutex<usize>,
    pending: Mutex<Vec<Callback>>,
    updates: Mutex<usize>,
}

fn param(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn create_call(
    State(twilio): State<Arc<Twilio>>,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let now = twilio.clock.now();
    let status_url = param(&form, "StatusCallback");
    let amd_url = param(&form, "AsyncAmdStatusCallback");
    let call_id = status_url
        .split("call_id=")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut placed = twilio.placed.lock().unwrap();
    let sid = format!("CA{:032x}", placed.len() + 1);
    {
        let ended = twilio.ended.lock().unwrap();
        let in_progress = placed
            .iter()
            .enumerate()
            .filter(|(i, _)| !ended.contains(&format!("CA{:032x}", i + 1)))
            .count()
            + 1;
        let mut most = twilio.most_in_progress.lock().unwrap();
        *most = (*most).max(in_progress);
    }
    let mut rng = twilio.rng.lock().unwrap();
    let roll: f64 = rng.random();
    let outcome = match roll {
        r if r < 0.03 => Outcome::Refused,
        r if r < 0.35 => Outcome::Answered,
        r if r < 0.50 => Outcome::Machine,
        r if r < 0.75 => Outcome::NoAnswer,
        r if r < 0.90 => Outcome::Busy,
        _ => Outcome::Failed,
    };
    placed.push(Placed {
        at: now,
        call_id,
        to: param(&form, "To"),
        outcome,
    });
    if outcome == Outcome::Refused {
        twilio.ended.lock().unwrap().insert(sid);
        let error = json!({"code": 21217, "message": "Phone number does not appear to be valid", "status": 400});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let ring = rng.random_range(2..=20);
    let mut script: Vec<(i64, &str, Option<u32>)> =
        vec![(0, "initiated", None), (1, "ringing", None)];
    let mut amd_at = None;
    match outcome {
        Outcome::Answered => {
            let talk = rng.random_range(20..=240);
            script.push((ring, "in-progress", None));
            script.push((ring + i64::from(talk), "completed", Some(talk)));
        }
        Outcome::Machine => {
            let talk = rng.random_range(10..=40);
            script.push((ring, "in-progress", None));
            amd_at = Some(ring + 8);
            script.push((ring + 9 + i64::from(talk), "completed", Some(talk)));
        }
        Outcome::NoAnswer => script.push((30, "no-answer", Some(0))),
        Outcome::Busy => script.push((ring, "busy", Some(0))),
        Outcome::Failed => script = vec![(1, "failed", Some(0))],
        Outcome::Refused => {}
    }
    let mut pending = twilio.pending.lock().unwrap();
    let mut amd_due = None;
    if let Some(offset) = amd_at {
        let due = now + Duration::seconds(offset + rng.random_range(0..=20));
        amd_due = Some(due);
        let form = vec![
            ("AccountSid".to_owned(), account.clone()),
            ("CallSid".to_owned(), sid.clone()),
            ("AnsweredBy".to_owned(), "machine_end_beep".to_owned()),
        ];
        pending.push(Callback {
            due,
            url: amd_url.clone(),
            form,
            sid: sid.clone(),
            last: false,
        });
    }
    for (sequence, (offset, status, duration)) in script.into_iter().enumerate() {
        // Late by up to a minute and a half: callbacks overtake each other.
        let mut due = now + Duration::seconds(offset + rng.random_range(0..=90));
        let last = duration.is_some();
        if last && let Some(amd) = amd_due {
            // Twilio ends a machine's call after our handler hung up on the verdict.
            due = due.max(amd + Duration::seconds(1));
        }
        let mut form = vec![
            ("AccountSid".to_owned(), account.clone()),
            ("CallSid".to_owned(), sid.clone()),
            ("CallStatus".to_owned(), status.to_owned()),
            ("SequenceNumber".to_owned(), sequence.to_string()),
        ];
        if let Some(d) = duration {
            form.push(("CallDuration".to_owned(), d.to_string()));
        }
        let copies = if rng.random_bool(0.15) { 2 } else { 1 };
        for copy in 0..copies {
            pending.push(Callback {
                due: due + Duration::seconds(copy * rng.random_range(1..=300)),
                url: status_url.clone(),
                form: form.clone(),
                sid: sid.clone(),
                last,
            });
        }
    }
    let call =
        json!({"sid": sid, "account_sid": account, "status": "queued", "to": param(&form, "To")});
    (StatusCode::CREATED, axum::Json(call)).into_response()
}

/// The voicemail takeover (our AMD handler hangs a machine up): just acknowledged.
async fn update_call(
    State(twilio): State<Arc<Twilio>>,
    Path((account, sid)): Path<(String, String)>,
) -> axum::response::Response {
    *twilio.updates.lock().unwrap() += 1;
    let sid = sid.trim_end_matches(".json").to_owned();
    let call = json!({"sid": sid, "account_sid": account, "status": "in-progress"});
    (StatusCode::OK, axum::Json(call)).into_response()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn zone_of(i: usize) -> Option<&'static str> {
    match i % 4 {
        0 => Some("America/Los_Angeles"),
        1 => Some("America/Chicago"),
        _ => None,
    }
}

fn phone_of(i: usize) -> String {
    format!("+1415555{:04}", 1000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_lead_campaign_runs_to_completion_within_every_rule() {
    // Saturday 7 March 2026, 13:00 UTC: 08:00 in New York, before the window opens.
    let start = utc(2026, 3, 7, 13, 0);
    let clock = ManualClock::new(start);
    let twilio = Arc::new(Twilio {
        clock: clock.clone(),
        rng: Mutex::new(StdRng::seed_from_u64(20260306)),
        placed: Mutex::new(Vec::new()),
        ended: Mutex::new(HashSet::new()),
        most_in_progress: Mutex::new(0),
        pending: Mutex::new(Vec::new()),
        updates: Mutex::new(0),
    });
    let carrier = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(create_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{sid}",
            post(update_call),
        )
        .with_state(twilio.clone());
    let carrier_url = common::serve(carrier).await;
    let scene = Scene::new(Arc::new(clock.clone()), &carrier_url, 5).await;
    let ports = scene.ports.clone();
    // The routes only: this test turns the scheduler and the dialer by hand.
    let dialer = scene.stack.dialer.clone();
    let mut csv = String::from("phone,name,timezone\n");
    for i in 0..LEADS {
        csv.push_str(&format!(
            "{},Lead {i},{}\n",
            phone_of(i),
            zone_of(i).unwrap_or("")
        ));
    }
    let campaign_id = scene.campaign(json!({}), csv).await;
    // Five of them asked never to be called again (before the first tick dials anyone).
    let blocked: HashSet<String> = (0..5).map(|i| phone_of(i * 97)).collect();
    for phone in &blocked {
        let path = format!("/v1/do-not-call/{}", phone.replace('+', "%2B"));
        let reason = json!({"reason": "asked on an earlier call"});
        scene.call(reqwest::Method::PUT, &path, reason).await;
    }

    // The simulation: a scheduler tick every minute; in between, callbacks land when
    // due and the dialer works the queue second by second while there is work.
    let mut rng = StdRng::seed_from_u64(7);
    let pause_at = utc(2026, 3, 7, 17, 0);
    let resume_at = utc(2026, 3, 7, 17, 30);
    let end = utc(2026, 3, 12, 0, 0);
    let mut next_tick = start;
    let mut busy_until = start;
    let mut completed_at = None;
    let (mut redelivered, mut duplicated, mut raced) = (0, 0, 0);
    while clock.now() < end {
        let now = clock.now();
        if now >= pause_at && now < pause_at + Duration::seconds(1) {
            let path = format!("/v1/campaigns/{campaign_id}/pause");
            scene.call(reqwest::Method::POST, &path, Value::Null).await;
        }
        if now >= resume_at && now < resume_at + Duration::seconds(1) {
            let path = format!("/v1/campaigns/{campaign_id}/resume");
            scene.call(reqwest::Method::POST, &path, Value::Null).await;
        }
        // Callbacks due by now, oldest first.
        let due: Vec<Callback> = {
            let mut pending = twilio.pending.lock().unwrap();
            pending.sort_by_key(|c| c.due);
            let split = pending.partition_point(|c| c.due <= now);
            pending.drain(..split).collect()
        };
        for callback in due {
            let signed = signature::expected_signature(TOKEN, &callback.url, &callback.form);
            let sent = scene
                .http
                .post(&callback.url)
                .header("x-twilio-signature", signed)
                .form(&callback.form)
                .send()
                .await
                .unwrap();
            assert!(
                sent.status().is_success(),
                "callback refused: {}",
                sent.text().await.unwrap_or_default()
            );
            if callback.last {
                twilio.ended.lock().unwrap().insert(callback.sid);
            }
        }
        if now >= next_tick {
            let tick = parley_scheduler::tick(&ports, Some(&dialer.dialing))
                .await
                .unwrap();
            assert!(tick.ran);
            if tick.queued > 0 || tick.requeued > 0 {
                busy_until = now + Duration::seconds(61);
            }
            if tick.completed > 0 {
                completed_at = Some(now);
                break;
            }
            next_tick = now + Duration::seconds(60);
        }
        // The dial queue, as Lambda's SQS trigger would see it, with its faults.
        let deliveries = ports
            .dial_queue
            .receive(10, parley_dialer::VISIBILITY, std::time::Duration::ZERO)
            .await
            .unwrap();
        if !deliveries.is_empty() {
            busy_until = busy_until.max(now + Duration::seconds(2));
        }
        for delivery in deliveries {
            let roll: f64 = rng.random();
            if roll < 0.05 {
                // The dialer died holding it: SQS delivers it again after the timeout.
                redelivered += 1;
                continue;
            }
            if roll < 0.10 {
                // SQS's at-least-once: a second copy of the same job.
                duplicated += 1;
                ports
                    .dial_queue
                    .send(&delivery.body, std::time::Duration::ZERO)
                    .await
                    .unwrap();
            }
            let done = if roll < 0.15 {
                // Two dialers race on one job.
                raced += 1;
                let (a, b) = tokio::join!(
                    dialer.process(&delivery.message_id, &delivery.body),
                    dialer.process(&delivery.message_id, &delivery.body)
                );
                a && b
            } else {
                dialer.process(&delivery.message_id, &delivery.body).await
            };
            if done {
                ports.dial_queue.delete(&delivery.receipt).await.unwrap();
            }
        }
        // Second by second while anything moves; otherwise straight to what's next.
        let next_callback = twilio.pending.lock().unwrap().iter().map(|c| c.due).min();
        let mut next = next_tick;
        if let Some(due) = next_callback {
            next = next.min(due);
        }
        if now < busy_until {
            next = next.min(now + Duration::seconds(1));
        }
        clock.set(next.max(now + Duration::seconds(1)).min(end));
    }
    let completed_at = completed_at.expect("the campaign never completed");
    assert!(redelivered > 0 && duplicated > 0 && raced > 0);

    // Every rule, from the carrier's side and the event log's.
    let campaign_id = CampaignId::parse(&campaign_id).unwrap();
    let path = format!("/v1/campaigns/{campaign_id}");
    let read = scene.call(reqwest::Method::GET, &path, Value::Null).await;
    assert_eq!(read["status"], "COMPLETED", "{read}");

    // The carrier's log, taken out of its lock: the checks below await.
    let placed = std::mem::take(&mut *twilio.placed.lock().unwrap());
    let window = CallingWindow::default();
    let zones: HashMap<String, chrono_tz::Tz> = (0..LEADS)
        .map(|i| {
            let zone = zone_of(i).unwrap_or("America/New_York");
            (phone_of(i), zone.parse().unwrap())
        })
        .collect();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut call_ids = HashSet::new();
    for call in placed.iter() {
        let zone = zones[&call.to];
        assert!(
            window.contains(zone, call.at),
            "{} called at {} ({} local)",
            call.to,
            call.at,
            call.at.with_timezone(&zone)
        );
        assert!(
            !(call.at >= pause_at && call.at < resume_at),
            "a call started while the campaign was paused"
        );
        assert!(
            !blocked.contains(&call.to),
            "{} is on the do-not-call list",
            call.to
        );
        assert!(
            call_ids.insert(call.call_id.clone()),
            "call {} placed twice",
            call.call_id
        );
        *per_second.entry(call.at.timestamp()).or_default() += 1;
        *outcomes.entry(format!("{:?}", call.outcome)).or_default() += 1;
    }
    assert_eq!(
        outcomes.len(),
        6,
        "not every outcome happened: {outcomes:?}"
    );
    // Daylight saving began on Sunday: on Monday New York's 10:00 is 14:00 UTC, not
    // 15:00 as on Saturday, and the leads waiting over the weekend are called from then.
    let new_york_monday = placed
        .iter()
        .filter(|c| zones[&c.to] == chrono_tz::America::New_York)
        .map(|c| c.at)
        .filter(|at| at.date_naive() == utc(2026, 3, 9, 0, 0).date_naive())
        .min()
        .expect("no New York lead called on Monday");
    assert!(
        new_york_monday >= utc(2026, 3, 9, 14, 0) && new_york_monday < utc(2026, 3, 9, 14, 5),
        "first New York call on Monday at {new_york_monday}"
    );
    let new_york_saturday = placed
        .iter()
        .filter(|c| zones[&c.to] == chrono_tz::America::New_York)
        .map(|c| c.at)
        .min()
        .unwrap();
    assert!(
        new_york_saturday >= utc(2026, 3, 7, 15, 0) && new_york_saturday < utc(2026, 3, 7, 15, 5)
    );
    assert!(
        per_second.values().all(|&n| n <= 1),
        "over 1 call per second"
    );
    let most = *twilio.most_in_progress.lock().unwrap();
    assert!(most <= CAP, "{most} calls at once, over the cap of {CAP}");
    assert!(
        most >= CAP / 2,
        "the campaign never got near its cap ({most})"
    );
    // Machines were met with the campaign's voicemail behaviour (a hang-up).
    assert!(*twilio.updates.lock().unwrap() > 0);

    // Each lead's history: resolved, attempts in order, retries no sooner than allowed.
    let mut calls_in_log = 0;
    let mut by_outcome: HashMap<&str, u64> = HashMap::new();
    let mut talk_total = 0u64;
    for i in 0..LEADS {
        let phone = phone_of(i);
        let lead_id = LeadId::for_campaign_phone(&campaign_id, &phone);
        let lead = load_any::<Lead>(&*ports.events, &lead_id.stream())
            .await
            .unwrap()
            .state;
        let view = ports
            .views
            .get("leads", &lead_id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            view.body["dial"]["state"], "resolved",
            "lead {i}: {}",
            view.body
        );
        if blocked.contains(&phone) {
            assert!(lead.attempts.is_empty() && lead.do_not_call);
            assert_eq!(view.body["dial"]["resolution"], "do_not_call");
            continue;
        }
        assert!(
            !lead.attempts.is_empty() && lead.attempts.len() <= 3,
            "lead {i}"
        );
        for (n, attempt) in lead.attempts.iter().enumerate() {
            assert_eq!(attempt.number as usize, n + 1);
            assert_eq!(
                attempt.call_id,
                CallId::for_lead_attempt(&lead_id, attempt.number)
            );
            assert!(
                call_ids.contains(&attempt.call_id.to_string()),
                "lead {i} attempt {n} never reached the carrier"
            );
        }
        calls_in_log += lead.attempts.len();
        for attempt in &lead.attempts {
            let kind = match attempt.outcome {
                Some(CallStatus::Completed) if attempt.machine => "voicemail",
                Some(CallStatus::Completed) => {
                    talk_total += u64::from(attempt.duration_secs.unwrap_or(0));
                    "answered"
                }
                Some(CallStatus::Busy) => "busy",
                Some(CallStatus::NoAnswer) => "no_answer",
                _ => "failed",
            };
            *by_outcome.entry(kind).or_default() += 1;
        }
        for pair in lead.attempts.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let wait = match before.outcome {
                Some(CallStatus::Busy) => 240,
                Some(CallStatus::NoAnswer) | Some(CallStatus::Completed) => 120,
                other => {
                    panic!("lead {i} retried after {other:?}, which the policy does not retry")
                }
            };
            let ended = before.ended_at.unwrap();
            let next = after.started_at.unwrap();
            assert!(
                next >= ended + Duration::minutes(wait),
                "lead {i}: retried at {next}, {wait} minutes after {ended} is {}",
                ended + Duration::minutes(wait)
            );
        }
    }
    assert_eq!(
        calls_in_log,
        placed.len(),
        "the carrier and the event log disagree"
    );
    check_reports(
        &scene,
        &campaign_id,
        &placed,
        &call_ids,
        &by_outcome,
        talk_total,
        blocked.len(),
    )
    .await;
    println!(
        "{} calls, completed at {completed_at}, at most {most} at once; {redelivered} redelivered, {duplicated} duplicated, {raced} raced",
        placed.len()
    );
}

/// The campaign's analytics and export tell the same story as the event log.
#[allow(clippy::too_many_arguments)]
async fn check_reports(
    scene: &Scene,
    campaign_id: &CampaignId,
    placed: &[Placed],
    call_ids: &HashSet<String>,
    by_outcome: &HashMap<&str, u64>,
    talk_total: u64,
    blocked: usize,
) {
    let get =
        |path: String| async move { scene.call(reqwest::Method::GET, &path, Value::Null).await };
    let analytics = get(format!("/v1/campaigns/{campaign_id}/analytics")).await;
    assert_eq!(analytics["leads"]["total"], LEADS, "{analytics}");
    assert_eq!(analytics["leads"]["resolved"], LEADS);
    assert_eq!(analytics["leads"]["do_not_call"], blocked);
    assert_eq!(analytics["calls"]["total"], placed.len());
    for kind in ["answered", "voicemail", "busy", "no_answer", "failed"] {
        assert_eq!(
            analytics["calls"][kind],
            by_outcome.get(kind).copied().unwrap_or(0),
            "{kind}: {analytics}"
        );
    }
    assert_eq!(analytics["talk_time_secs"]["total"], talk_total);
    let per_day: u64 = analytics["calls_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(per_day as usize, placed.len());

    let export = get(format!("/v1/campaigns/{campaign_id}/export?format=json")).await;
    let rows = export["rows"].as_array().unwrap();
    assert_eq!(rows.len(), placed.len());
    let exported: HashSet<&str> = rows
        .iter()
        .map(|r| r["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(exported.len(), placed.len());
    assert!(exported.iter().all(|id| call_ids.contains(*id)));
    let csv = scene
        .text(&format!("/v1/campaigns/{campaign_id}/export?format=csv"))
        .await;
    assert_eq!(csv.lines().count(), placed.len() + 1);
}
