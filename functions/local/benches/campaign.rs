//! Benchmark of the campaign engine on the embedded store (SQLite in a temp dir): the
//! time to import a 50,000-row CSV through `POST /v1/campaigns/{id}/leads`, and the
//! scheduler's decisions per second on a running campaign of 100,000 leads, with the
//! cost of a tick that finds nothing to do.
//!
//! Run: `cargo bench -p parley --bench campaign` (figures go in the README).
//!
//! The clock is a manual one, set inside the calling window (a Wednesday, 11:00 in New
//! York), so the figures do not depend on when the benchmark runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{TimeZone as _, Utc};
use parley_scheduler::Tick;
use parley_shared::backend::Ports;
use parley_shared::clock::ManualClock;
use parley_shared::config::Config;
use parley_shared::dialqueue::DialJob;
use parley_shared::domain::call::CallStatus;
use parley_shared::domain::lead::LeadCommand;
use parley_shared::domain::{PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::leadviews::run_lead;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "bench-admin-key-0123456789";
/// The importer's limit on one upload.
const UPLOAD_ROWS: u32 = 50_000;
/// The campaign's cap on attempts in flight: what one tick reserves at most.
const CAP: usize = 500;
/// Ticks that reserve a full cap each (the first one included).
const DECISION_TICKS: usize = 8;
/// Ticks measured when nothing is due, or when the campaign is at its cap.
const IDLE_TICKS: usize = 5;

fn report(what: &str, count: u64, took: Duration) {
    println!(
        "{what:<60} {count:>7} in {:>9.1} ms  = {:>9.0} /s",
        took.as_secs_f64() * 1000.0,
        count as f64 / took.as_secs_f64()
    );
}

fn report_time(what: &str, took: Duration) {
    println!(
        "{what:<60} {:>7} in {:>9.1} ms",
        "",
        took.as_secs_f64() * 1000.0
    );
}

/// The API in-process on a fresh embedded store, on a manual clock.
struct Stack {
    app: Router,
    ports: Ports,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn open() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // A Wednesday, 16:00 UTC: 11:00 in New York, inside the default calling window.
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 18, 16, 0, 0).unwrap());
        let embedded = Embedded::open(
            dir.path(),
            Arc::new(clock.clone()),
            "http://127.0.0.1:1".into(),
            5,
        )
        .expect("open the embedded store");
        let ports = Ports::embedded(embedded);
        let config = Config::from_lookup(|name| match name {
            "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
            "PARLEY_PUBLIC_URL" => Some("https://parley.example.com".into()),
            "PARLEY_TWILIO_API_URL" => Some("http://127.0.0.1:9".into()),
            _ => None,
        })
        .expect("config");
        let app =
            parley_api::router(parley_api::AppState::new(ports.clone(), &config).expect("state"));
        Stack {
            app,
            ports,
            clock,
            _dir: dir,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.expect("routed");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// A JSON request; panics unless it answers with `expected`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Value,
        expected: StatusCode,
    ) -> Value {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, body) = self.send(request).await;
        assert_eq!(status, expected, "{path}: {body}");
        body
    }

    /// Uploads `csv` to the campaign; panics unless every row was imported.
    async fn upload(&self, key: &str, campaign: &str, csv: String, rows: u32) {
        let request = Request::post(format!("/v1/campaigns/{campaign}/leads"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "text/csv")
            .body(Body::from(csv))
            .expect("request");
        let (status, report) = self.send(request).await;
        assert_eq!(status, StatusCode::OK, "import: {report}");
        assert_eq!(
            report["imported"].as_u64(),
            Some(u64::from(rows)),
            "import of {rows} rows: {} errors, {} duplicates, first: {} {}",
            report["errors"].as_array().map_or(0, Vec::len),
            report["duplicates"].as_array().map_or(0, Vec::len),
            report["errors"][0],
            report["duplicates"][0],
        );
    }

    /// A campaign in New York's time zone for the tenant's agent.
    async fn campaign(&self, key: &str, agent: &str, name: &str) -> String {
        let body = json!({"name": name, "agent_id": agent, "time_zone": "America/New_York"});
        let created = self
            .call(
                Method::POST,
                "/v1/campaigns",
                key,
                body,
                StatusCode::CREATED,
            )
            .await;
        created["id"].as_str().expect("campaign id").to_owned()
    }

    async fn campaign_action(&self, key: &str, campaign: &str, action: &str) {
        let path = format!("/v1/campaigns/{campaign}/{action}");
        self.call(Method::POST, &path, key, Value::Null, StatusCode::OK)
            .await;
    }

    async fn tick(&self) -> (Tick, Duration) {
        let start = Instant::now();
        let tick = parley_scheduler::tick(&self.ports, None)
            .await
            .expect("tick");
        let took = start.elapsed();
        assert!(tick.ran, "the scheduler lock was held");
        (tick, took)
    }

    /// Ends every attempt whose dial job is on the queue, as a busy line would, and
    /// deletes the jobs: the campaign's capacity is free again. Returns how many.
    async fn end_attempts(&self, tenant: &TenantId) -> usize {
        let mut ended = 0;
        loop {
            let deliveries = self
                .ports
                .dial_queue
                .receive(10, Duration::from_secs(60), Duration::ZERO)
                .await
                .expect("receive");
            if deliveries.is_empty() {
                return ended;
            }
            for delivery in deliveries {
                let job = DialJob::parse(&delivery.body).expect("a dial job");
                let end = LeadCommand::EndAttempt {
                    call_id: job.call_id.clone(),
                    status: CallStatus::Busy,
                    duration_secs: None,
                    machine: false,
                };
                run_lead(&self.ports, tenant, &job.lead_id, end, None)
                    .await
                    .expect("end the attempt");
                self.ports
                    .dial_queue
                    .delete(&delivery.receipt)
                    .await
                    .expect("delete");
                ended += 1;
            }
        }
    }
}

/// Row `i`'s number: unique, and valid (a San Francisco exchange from 200).
fn phone(i: u32) -> String {
    format!("+1415{:07}", 2_000_000 + i)
}

/// A lead list of `rows` numbers from `first`: every 100th row has its own time zone
/// (`zone`), every row a custom field.
fn lead_csv(first: u32, rows: u32, zone: &str) -> String {
    let mut csv = String::with_capacity(rows as usize * 64);
    csv.push_str("phone,name,email,timezone,budget\n");
    for i in first..first + rows {
        let tz = if i % 100 == 0 { zone } else { "" };
        csv.push_str(&format!(
            "{},Lead {i},lead{i}@example.com,{tz},{}k\n",
            phone(i),
            100 + i % 900
        ));
    }
    csv
}

/// Checks the numbers before timing anything: a benchmark of rejected rows is worthless.
fn check_numbers(first: u32, rows: u32) {
    for i in first..first + rows {
        if let Err(e) = PhoneNumber::normalise(&phone(i), None) {
            panic!("{} is refused: {e}", phone(i));
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!(
        "campaign engine on the embedded store (SQLite, WAL, synchronous=FULL) on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let stack = Stack::open();
    let tenant = stack
        .call(
            Method::POST,
            "/v1/tenants",
            ADMIN,
            json!({"name": "Bench Realty", "time_zone": "America/New_York"}),
            StatusCode::CREATED,
        )
        .await;
    let key = tenant["api_key"].as_str().expect("api key").to_owned();
    let tenant_id = tenant["id"].as_str().expect("tenant id").to_owned();
    let tenant = TenantId::parse(&tenant_id).expect("tenant id");
    let agent = stack
        .call(
            Method::POST,
            "/v1/agents",
            &key,
            json!({"name": "Riley", "status": "active"}),
            StatusCode::CREATED,
        )
        .await;
    let agent = agent["id"].as_str().expect("agent id").to_owned();
    stack
        .call(
            Method::PUT,
            &format!("/v1/tenants/{tenant_id}/dialing-limits"),
            &key,
            json!({"max_concurrent_calls": 1000, "calls_per_second": 100}),
            StatusCode::OK,
        )
        .await;

    // 1. Imports: 50,000 rows into an empty campaign, then 50,000 more into it.
    let campaign = stack.campaign(&key, &agent, "Spring open house").await;
    check_numbers(0, 2 * UPLOAD_ROWS);
    let csv = lead_csv(0, UPLOAD_ROWS, "America/Chicago");
    let bytes = csv.len();
    let start = Instant::now();
    stack.upload(&key, &campaign, csv, UPLOAD_ROWS).await;
    let took = start.elapsed();
    report(
        &format!(
            "import a 50,000-row CSV ({:.1} MiB), rows",
            bytes as f64 / 1048576.0
        ),
        u64::from(UPLOAD_ROWS),
        took,
    );
    let csv = lead_csv(UPLOAD_ROWS, UPLOAD_ROWS, "America/Toronto");
    let start = Instant::now();
    stack.upload(&key, &campaign, csv, UPLOAD_ROWS).await;
    report(
        "import 50,000 more rows (campaign holds 50,000), rows",
        u64::from(UPLOAD_ROWS),
        start.elapsed(),
    );

    // 2. Ticks with nothing to do: no campaign running, then one whose 1,000 leads are
    // all due later (in Tokyo, it is 01:00).
    let mut idle = Vec::new();
    for _ in 0..IDLE_TICKS {
        let (tick, took) = stack.tick().await;
        assert_eq!(tick.campaigns, 0, "{tick:?}");
        idle.push(took);
        stack.clock.advance(chrono::Duration::seconds(60));
    }
    report_time("tick with no campaign running (median of 5)", median(idle));
    let later = stack.campaign(&key, &agent, "Tokyo follow-up").await;
    let mut csv = String::from("phone,name,timezone\n");
    for i in 0..1000 {
        csv.push_str(&format!("{},Tokyo {i},Asia/Tokyo\n", phone(3_000_000 + i)));
    }
    stack.upload(&key, &later, csv, 1000).await;
    stack.campaign_action(&key, &later, "start").await;
    let mut idle = Vec::new();
    for _ in 0..IDLE_TICKS {
        let (tick, took) = stack.tick().await;
        assert_eq!((tick.campaigns, tick.examined), (1, 0), "{tick:?}");
        idle.push(took);
        stack.clock.advance(chrono::Duration::seconds(60));
    }
    report_time(
        "tick with 1 campaign running, nothing due (median of 5)",
        median(idle),
    );
    stack.campaign_action(&key, &later, "pause").await;

    // 3. The 100,000-lead campaign, 500 calls at a time.
    stack
        .call(
            Method::PATCH,
            &format!("/v1/campaigns/{campaign}"),
            &key,
            json!({"max_concurrent_calls": CAP}),
            StatusCode::OK,
        )
        .await;
    stack.campaign_action(&key, &campaign, "start").await;
    let mut decisions = 0;
    let mut ticking = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    for round in 0..DECISION_TICKS {
        if round == 1 {
            // At the cap, with 99,500 leads due: nothing to examine.
            let mut capped = Vec::new();
            for _ in 0..IDLE_TICKS {
                stack.clock.advance(chrono::Duration::seconds(60));
                let (tick, took) = stack.tick().await;
                assert_eq!((tick.examined, tick.queued), (0, 0), "{tick:?}");
                capped.push(took);
            }
            report_time(
                "tick at the cap: 500 in flight, 99,500 due (median of 5)",
                median(capped),
            );
        }
        if round > 0 {
            // Free the capacity (not timed): every attempt in flight ends busy.
            stack.clock.advance(chrono::Duration::seconds(60));
            let ended = stack.end_attempts(&tenant).await;
            assert_eq!(ended, CAP, "attempts ended before round {round}");
        }
        let (tick, took) = stack.tick().await;
        assert_eq!((tick.examined, tick.queued), (CAP, CAP), "{tick:?}");
        decisions += tick.examined;
        ticking += took;
        slowest = slowest.max(took);
    }
    report(
        &format!("scheduler decisions ({DECISION_TICKS} ticks of {CAP}), leads examined"),
        decisions as u64,
        ticking,
    );
    report_time(
        &format!("  one tick reserving {CAP} (mean)"),
        ticking / DECISION_TICKS as u32,
    );
    report_time(&format!("  one tick reserving {CAP} (slowest)"), slowest);
}
