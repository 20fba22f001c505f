//! A campaign's reports through the API: the lead list with its filters and cursor,
//! the analytics and the call export, over leads imported through the API and calls
//! driven through the lead's own commands on a manual clock.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{ADMIN, Api, field};
use parley_shared::backend::Ports;
use parley_shared::clock::ManualClock;
use parley_shared::domain::call::CallStatus;
use parley_shared::domain::lead::{LeadCommand, LeadStatus, Temperature};
use parley_shared::domain::{CallId, CampaignId, LeadId, TenantId};
use parley_shared::leadviews::run_lead;
use parley_shared::readmodel::View;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Answered by a person (120 s), then qualified hot.
const ALICE: &str = "+14155550101";
/// A machine answered.
const BOB: &str = "+14155550102";
/// Busy, then answered (60 s); qualified cold.
const CAROL: &str = "+14155550103";
/// No answer late in the evening (already the next day in UTC), then canceled.
const DAN: &str = "+14155550104";
/// On the do-not-call list from the import: never called.
const ERIN: &str = "+14155550105";
/// Named to run a formula in a spreadsheet; the call is still ringing.
const FRANK: &str = "+14155550106";
const EVIL: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

struct Fixture {
    api: Api,
    key: String,
    tenant: TenantId,
    campaign: CampaignId,
    /// The API's ports on a manual clock, so attempts start and end when told.
    ports: Ports,
    clock: ManualClock,
}

fn utc(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

impl Fixture {
    async fn new() -> Fixture {
        let api = Api::new();
        let (tenant, key) = api.tenant("Acme").await;
        let agent = api.agent(&key, "Riley").await;
        let (status, campaign) = api
            .call(
                Method::POST,
                "/v1/campaigns",
                Some(&key),
                Some(json!({"name": "Spring", "agent_id": agent, "time_zone": "America/New_York"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{campaign}");
        let campaign = CampaignId::parse(campaign["id"].as_str().unwrap()).unwrap();
        let leads = json!({"leads": [
            {"phone": ALICE, "name": "Alice"},
            {"phone": BOB, "name": "Bob"},
            {"phone": CAROL, "name": "Carol, \"CJ\""},
            {"phone": DAN, "name": "Dan"},
            {"phone": ERIN, "name": "Erin", "do_not_call": true},
            {"phone": FRANK, "name": EVIL},
        ]});
        let (status, report) = api
            .call(
                Method::POST,
                &format!("/v1/campaigns/{campaign}/leads"),
                Some(&key),
                Some(leads),
            )
            .await;
        assert_eq!(
            (status, &report["imported"]),
            (StatusCode::OK, &json!(6)),
            "{report}"
        );
        let clock = ManualClock::new(utc(2, 13, 0));
        let mut ports = api.ports.clone();
        ports.clock = Arc::new(clock.clone());
        Fixture {
            api,
            key,
            tenant: TenantId::parse(&tenant).unwrap(),
            campaign,
            ports,
            clock,
        }
    }

    fn lead(&self, phone: &str) -> LeadId {
        LeadId::for_campaign_phone(&self.campaign, phone)
    }

    fn call_id(&self, phone: &str, attempt: u32) -> CallId {
        CallId::for_lead_attempt(&self.lead(phone), attempt)
    }

    async fn run(&self, phone: &str, command: LeadCommand) {
        run_lead(&self.ports, &self.tenant, &self.lead(phone), command, None)
            .await
            .unwrap();
    }

    async fn start(&self, phone: &str, attempt: u32, at: DateTime<Utc>) {
        self.clock.set(at);
        let call_id = self.call_id(phone, attempt);
        self.run(phone, LeadCommand::StartAttempt { attempt, call_id })
            .await;
    }

    /// Attempt `attempt` started at `at` and ended two minutes later with `status`.
    async fn call(
        &self,
        phone: &str,
        attempt: u32,
        at: DateTime<Utc>,
        status: CallStatus,
        secs: Option<u32>,
        machine: bool,
    ) {
        self.start(phone, attempt, at).await;
        self.clock.set(at + Duration::minutes(2));
        let end = LeadCommand::EndAttempt {
            call_id: self.call_id(phone, attempt),
            status,
            duration_secs: secs,
            machine,
        };
        self.run(phone, end).await;
    }

    async fn qualify(&self, phone: &str, temperature: Temperature, score: f64) {
        let evidence = vec![];
        self.run(
            phone,
            LeadCommand::Qualify {
                temperature,
                score,
                evidence,
            },
        )
        .await;
    }

    /// Two days of calling; New York is UTC-5 in early March.
    async fn with_calls() -> Fixture {
        use CallStatus::*;
        let f = Fixture::new().await;
        f.call(ALICE, 1, utc(2, 14, 0), Completed, Some(120), false)
            .await;
        f.call(BOB, 1, utc(2, 14, 10), Completed, Some(25), true)
            .await;
        f.call(CAROL, 1, utc(2, 14, 20), Busy, None, false).await;
        // 22:30 on the 2nd in New York.
        f.call(DAN, 1, utc(3, 3, 30), NoAnswer, None, false).await;
        f.call(CAROL, 2, utc(3, 15, 0), Completed, Some(60), false)
            .await;
        f.call(DAN, 2, utc(3, 15, 10), Canceled, None, false).await;
        f.start(FRANK, 1, utc(3, 15, 20)).await;
        f.qualify(ALICE, Temperature::Hot, 0.9).await;
        let qualified = LeadCommand::ChangeStatus {
            status: LeadStatus::Qualified,
        };
        f.run(ALICE, qualified).await;
        f.qualify(CAROL, Temperature::Cold, 0.2).await;
        f
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.api
            .call(Method::GET, path, Some(&self.key), None)
            .await
    }

    fn path(&self, route: &str) -> String {
        format!("/v1/campaigns/{}/{route}", self.campaign)
    }

    /// Every lead the list gives for `params`, following the cursor.
    async fn walk(&self, params: &str) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{}?{params}", self.path("leads"));
            if let Some(c) = &cursor {
                path.push('&');
                path.push_str(&serde_urlencoded::to_string([("cursor", c)]).unwrap());
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            pages += 1;
            for item in page["items"].as_array().unwrap() {
                ids.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (ids, pages),
            }
            assert!(pages < 50, "the cursor never ends");
        }
    }
}

/// A GET with its headers and raw body (the CSV export is not JSON).
async fn raw(api: &Api, path: &str, key: &str) -> (StatusCode, HeaderMap, String) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn analytics_count_a_known_mix_of_calls() {
    let f = Fixture::with_calls().await;
    let (status, mut got) = f.get(&f.path("analytics")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    // Two answered of six ended calls (Frank's is still ringing).
    let rate = got["answer_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / 6.0).abs() < 1e-9, "{rate}");
    got["answer_rate"] = Value::Null;
    assert_eq!(
        got,
        json!({
            "campaign_id": f.campaign.to_string(),
            "leads": {"total": 6, "called": 5, "answered": 2, "resolved": 4, "waiting": 1, "calling": 1, "do_not_call": 1},
            "calls": {"total": 7, "answered": 2, "voicemail": 1, "no_answer": 1, "busy": 1, "failed": 1, "in_progress": 1},
            "answer_rate": null,
            "talk_time_secs": {"total": 180, "average": 90.0},
            "temperature": {"hot": 1, "warm": 0, "cold": 1},
            "calls_per_day": [{"date": "2026-03-02", "calls": 4}, {"date": "2026-03-03", "calls": 3}],
        })
    );

    // The admin reads it too.
    let (status, admin) = f
        .api
        .call(Method::GET, &f.path("analytics"), Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, &admin["calls"]["total"]),
        (StatusCode::OK, &json!(7))
    );
}

#[tokio::test]
async fn a_campaign_without_calls_has_no_rates() {
    let f = Fixture::new().await;
    let (status, got) = f.get(&f.path("analytics")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["leads"]["total"], 6);
    assert_eq!(got["leads"]["waiting"], 5);
    assert_eq!(got["calls"]["total"], 0);
    assert_eq!(got["answer_rate"], Value::Null);
    assert_eq!(got["talk_time_secs"], json!({"total": 0, "average": null}));
    assert_eq!(got["calls_per_day"], json!([]));
}

#[tokio::test]
async fn the_lead_list_filters_and_pages() {
    let f = Fixture::with_calls().await;
    let mut every: Vec<String> = [ALICE, BOB, CAROL, DAN, ERIN, FRANK]
        .iter()
        .map(|p| f.lead(p).to_string())
        .collect();
    every.sort();

    let (status, page) = f.get(&f.path("leads")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i.get("stream_version").is_none()));
    let carol = items.iter().find(|i| i["phone"] == CAROL).unwrap();
    assert_eq!(carol["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(carol["temperature"], "cold");

    // limit=1 walks every lead exactly once, in id order.
    let (walked, pages) = f.walk("limit=1").await;
    assert_eq!(walked, every);
    assert!(pages >= 6);

    let ids = |phones: &[&str]| {
        let mut ids: Vec<String> = phones.iter().map(|p| f.lead(p).to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(f.walk("status=QUALIFIED").await.0, ids(&[ALICE]));
    assert_eq!(f.walk("status=CONTACTED").await.0, ids(&[CAROL]));
    assert_eq!(f.walk("status=NEW").await.0, ids(&[BOB, DAN, ERIN, FRANK]));
    assert_eq!(f.walk("status=CLOSED_WON").await.0, ids(&[]));
    assert_eq!(f.walk("temperature=hot&limit=1").await.0, ids(&[ALICE]));
    assert_eq!(
        f.walk("status=CONTACTED&temperature=cold").await.0,
        ids(&[CAROL])
    );
    assert_eq!(f.walk("status=CONTACTED&temperature=hot").await.0, ids(&[]));

    // A filtered page is filled from further store pages, not left short.
    let (_, cold) = f
        .get(&format!("{}?temperature=cold&limit=1", f.path("leads")))
        .await;
    assert_eq!(cold["items"].as_array().unwrap().len(), 1, "{cold}");
    assert_eq!(cold["items"][0]["phone"], CAROL);

    let (status, admin) = f
        .api
        .call(Method::GET, &f.path("leads"), Some(ADMIN), None)
        .await;
    assert_eq!(
        (status, admin["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(6))
    );
}

#[tokio::test]
async fn the_export_has_a_row_per_call() {
    let f = Fixture::with_calls().await;
    // The media task's records, as its events leave them on the call view.
    let alice_call = f.call_id(ALICE, 1).to_string();
    let tenant = f.tenant.to_string();
    let recording = json!({
        "id": alice_call,
        "tenant_id": tenant,
        "recording_key": format!("recordings/{tenant}/{alice_call}.wav"),
        "transcript_key": format!("transcripts/{tenant}/{alice_call}.json"),
    });
    f.ports
        .views
        .put(&View::new("calls", alice_call.clone(), recording), None)
        .await
        .unwrap();
    // A call view naming another tenant never lends its recording.
    let carol_call = f.call_id(CAROL, 2).to_string();
    let other = TenantId::new().to_string();
    let stray = json!({"id": carol_call, "tenant_id": other, "recording_key": format!("recordings/{other}/{carol_call}.wav")});
    f.ports
        .views
        .put(&View::new("calls", carol_call.clone(), stray), None)
        .await
        .unwrap();

    let (status, export) = f.get(&format!("{}?format=json", f.path("export"))).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let rows = export["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7, "one row per attempt, Erin left out");
    assert!(rows.iter().all(|r| r["phone"] != ERIN));
    let row = |phone: &str, attempt: u32| {
        rows.iter()
            .find(|r| r["phone"] == phone && r["attempt"] == attempt)
            .unwrap_or_else(|| panic!("no row for {phone} #{attempt}"))
    };
    let links = row(ALICE, 1).clone();
    for (link, key) in [
        (
            "recording_url",
            format!("recordings/{tenant}/{alice_call}.wav"),
        ),
        (
            "transcript_url",
            format!("transcripts/{tenant}/{alice_call}.json"),
        ),
    ] {
        let url = links[link].as_str().unwrap_or_default();
        assert!(
            url.contains(&format!("/blobs/{key}?expires=")) && url.contains("&signature="),
            "{link}: {url}"
        );
    }
    let mut alice = links.clone();
    alice["recording_url"] = json!("signed");
    alice["transcript_url"] = json!("signed");
    assert_eq!(
        &alice,
        &json!({
            "lead_id": f.lead(ALICE).to_string(),
            "phone": ALICE,
            "name": "Alice",
            "attempt": 1,
            "attempts": 1,
            "call_id": alice_call,
            "status": "completed",
            "outcome": "answered",
            "started_at": "2026-03-02T14:00:00Z",
            "ended_at": "2026-03-02T14:02:00Z",
            "duration_secs": 120,
            "lead_status": "QUALIFIED",
            "temperature": "hot",
            "recording_url": "signed",
            "transcript_url": "signed",
        })
    );
    let busy = row(CAROL, 1);
    assert_eq!(
        (&busy["attempts"], &busy["status"], &busy["outcome"]),
        (&json!(2), &json!("busy"), &json!("busy"))
    );
    let answered = row(CAROL, 2);
    assert_eq!(
        (
            &answered["outcome"],
            &answered["duration_secs"],
            &answered["recording_url"]
        ),
        (&json!("answered"), &json!(60), &Value::Null)
    );
    assert_eq!(row(BOB, 1)["outcome"], "voicemail");
    assert_eq!(row(DAN, 1)["outcome"], "no_answer");
    assert_eq!(
        (&row(DAN, 2)["status"], &row(DAN, 2)["outcome"]),
        (&json!("canceled"), &json!("failed"))
    );
    let ringing = row(FRANK, 1);
    assert_eq!(
        (
            &ringing["status"],
            &ringing["outcome"],
            &ringing["ended_at"],
            &ringing["name"]
        ),
        (
            &Value::Null,
            &json!("in_progress"),
            &Value::Null,
            &json!(EVIL)
        )
    );

    // The admin reads the export but never a recording.
    let (status, admin) = f
        .api
        .call(
            Method::GET,
            &format!("{}?format=json", f.path("export")),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        admin["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["recording_url"].is_null() && r["transcript_url"].is_null())
    );
}

#[tokio::test]
async fn the_csv_export_is_a_safe_download() {
    let f = Fixture::with_calls().await;
    let (status, headers, body) = raw(&f.api, &f.path("export"), &f.key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"campaign-{}.csv\"", f.campaign).as_str()
    );
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        columns,
        [
            "lead_id",
            "phone",
            "name",
            "attempt",
            "attempts",
            "call_id",
            "status",
            "outcome",
            "started_at",
            "ended_at",
            "duration_secs",
            "lead_status",
            "temperature",
            "recording_url",
            "transcript_url",
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 7);
    let cell = |row: &csv::StringRecord, column: &str| {
        let at = columns.iter().position(|c| c == column).unwrap();
        row[at].to_owned()
    };
    // Phone numbers stay numbers; the formula is shown, not run.
    let phones: Vec<String> = rows.iter().map(|r| cell(r, "phone")).collect();
    assert!(
        phones.iter().all(|p| p.starts_with("+1415555010")),
        "{phones:?}"
    );
    let frank = rows.iter().find(|r| cell(r, "phone") == FRANK).unwrap();
    assert_eq!(cell(frank, "name"), format!("'{EVIL}"));
    assert_eq!(cell(frank, "status"), "");
    assert_eq!(cell(frank, "outcome"), "in_progress");
    let carol = rows
        .iter()
        .find(|r| cell(r, "phone") == CAROL && cell(r, "attempt") == "2")
        .unwrap();
    assert_eq!(cell(carol, "name"), "Carol, \"CJ\"");
    assert_eq!(cell(carol, "duration_secs"), "60");
    assert_eq!(cell(carol, "started_at"), "2026-03-03T15:00:00Z");
    assert_eq!(cell(carol, "lead_status"), "CONTACTED");
    assert_eq!(cell(carol, "temperature"), "cold");

    let (status, _, _) = raw(&f.api, &format!("{}?format=csv", f.path("export")), &f.key).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_parameters_name_their_field() {
    let f = Fixture::new().await;
    for (path, name) in [
        (format!("{}?status=WON", f.path("leads")), "status"),
        (format!("{}?status=new", f.path("leads")), "status"),
        (
            format!("{}?temperature=tepid", f.path("leads")),
            "temperature",
        ),
        (format!("{}?limit=0", f.path("leads")), "limit"),
        (format!("{}?limit=201", f.path("leads")), "limit"),
        (format!("{}?format=xml", f.path("export")), "format"),
    ] {
        let (status, body) = f.get(&path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(field(&body), name, "{path}");
    }
}

#[tokio::test]
async fn another_tenant_sees_no_reports() {
    let f = Fixture::with_calls().await;
    let (_, other) = f.api.tenant("Other").await;
    for route in ["leads", "analytics", "export", "export?format=json"] {
        let (status, body) = f
            .api
            .call(Method::GET, &f.path(route), Some(&other), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{route}: {body}");
    }
    // Nor does anyone for a campaign that does not exist.
    let (status, _) = f
        .get(&format!("/v1/campaigns/{}/analytics", CampaignId::new()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.get("/v1/campaigns/not-an-id/export").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
