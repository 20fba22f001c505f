//! The projector on an embedded store: streams are written through the domain's
//! commands without their views (a writer that died after its append), then batches
//! shaped as the DynamoDB stream trigger delivers them are projected, and the views are
//! read back.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use chrono::{DateTime, Duration, TimeZone, Utc};
use parley_projector::{Report, project, run};
use parley_shared::aggregate::{Aggregate, Context, execute};
use parley_shared::appointmentviews::APPOINTMENTS;
use parley_shared::backend::Ports;
use parley_shared::campaignviews::CAMPAIGNS;
use parley_shared::clock::{ManualClock, SystemClock};
use parley_shared::domain::appointment::{Appointment, AppointmentCommand, MeetingKind};
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::campaign::{Campaign, CampaignCommand};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{
    AgentId, AppointmentId, CallId, CampaignId, LeadId, PhoneNumber, TenantId,
};
use parley_shared::embedded::Embedded;
use parley_shared::event::{Metadata, NewEvent, StreamId};
use parley_shared::eventstore::ExpectedVersion;
use parley_shared::leadviews::LEADS;
use parley_shared::readmodel::View;
use parley_shared::views::CALLS;
use serde_json::{Value, json};

struct Store {
    ports: Ports,
    dir: tempfile::TempDir,
    tenant: TenantId,
}

impl Store {
    fn new() -> Self {
        Self::on_clock(Arc::new(SystemClock))
    }

    fn on_clock(clock: Arc<dyn parley_shared::clock::Clock>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Embedded::open(dir.path(), clock, "http://127.0.0.1:1".into(), 5).unwrap();
        Store {
            ports: Ports::embedded(embedded),
            dir,
            tenant: TenantId::new(),
        }
    }

    /// Runs `commands` on `stream` as the tenant, writing events and no view.
    async fn write<A: Aggregate>(&self, stream: &StreamId, commands: Vec<A::Command>)
    where
        A::Error: 'static,
    {
        let ctx = Context {
            tenant_id: self.tenant.to_string(),
            correlation_id: stream.id().to_owned(),
            idempotency_key: None,
        };
        for command in commands {
            execute::<A>(
                &*self.ports.events,
                &*self.ports.clock,
                stream,
                &ctx,
                command,
            )
            .await
            .unwrap();
        }
    }

    async fn campaign(&self) -> CampaignId {
        let id = CampaignId::new();
        let settings = serde_json::from_value(json!({
            "name": "Spring check-ups",
            "agent_id": AgentId::new(),
            "time_zone": "America/New_York",
        }))
        .unwrap();
        self.write::<Campaign>(&id.stream(), vec![CampaignCommand::Create { settings }])
            .await;
        id
    }

    /// A lead of `campaign` at +14155550140 with attempt 1 on `call` in flight.
    async fn lead(&self, campaign: &CampaignId, call: &CallId) -> LeadId {
        let id = LeadId::new();
        let commands = vec![
            LeadCommand::Create {
                campaign_id: Some(campaign.clone()),
                phone: PhoneNumber::parse("+14155550140").unwrap(),
                name: Some("Dana".into()),
                time_zone: None,
                fields: Default::default(),
            },
            LeadCommand::StartAttempt {
                attempt: 1,
                call_id: call.clone(),
            },
        ];
        self.write::<Lead>(&id.stream(), commands).await;
        id
    }

    /// An outbound call through Twilio, answered and in progress.
    async fn call(&self) -> CallId {
        let id = CallId::new();
        self.write::<Call>(
            &id.stream(),
            placed_call(None, "CA0123456789abcdef0123456789abcdef"),
        )
        .await;
        id
    }

    /// A phone appointment booked three days ahead, then moved a day later.
    async fn appointment(&self, lead: &LeadId) -> (AppointmentId, DateTime<Utc>) {
        let id = AppointmentId::new();
        let booked = Utc::now() + Duration::days(3);
        let moved = booked + Duration::days(1);
        let commands = vec![
            AppointmentCommand::Book {
                lead_id: lead.clone(),
                call_id: None,
                agent_id: None,
                title: "Check-up".into(),
                starts_at: booked,
                duration_minutes: 30,
                kind: MeetingKind::Phone,
            },
            AppointmentCommand::Reschedule { starts_at: moved },
        ];
        self.write::<Appointment>(&id.stream(), commands).await;
        (id, moved)
    }

    /// Appends an event the call code cannot read: a stream no reader can fold.
    async fn corrupt_call(&self) -> CallId {
        let id = CallId::new();
        let event = NewEvent {
            event_type: "call_requested".into(),
            schema_version: 1,
            meta: Metadata {
                tenant_id: self.tenant.to_string(),
                correlation_id: id.to_string(),
                occurred_at: Utc::now(),
            },
            data: json!({"type": "call_requested", "direction": "sideways"}),
        };
        self.ports
            .events
            .append(&id.stream(), ExpectedVersion::Exact(0), vec![event], None)
            .await
            .unwrap();
        id
    }

    async fn view(&self, collection: &str, key: &impl ToString) -> Option<View> {
        self.ports
            .views
            .get(collection, &key.to_string())
            .await
            .unwrap()
    }
}

/// The commands of an outbound Twilio call from +14155550100 to +14155550132 that was
/// answered: requested, given its `CallSid`, in progress.
fn placed_call(agent: Option<AgentId>, sid: &str) -> Vec<CallCommand> {
    vec![
        CallCommand::Request {
            direction: Direction::Outbound,
            carrier: Carrier::Twilio,
            from: PhoneNumber::parse("+14155550100").unwrap(),
            to: PhoneNumber::parse("+14155550132").unwrap(),
            agent_id: agent.unwrap_or_default(),
            lead_id: None,
            campaign_id: None,
            attempt: 1,
        },
        CallCommand::AssignCarrierCallId {
            carrier_call_id: sid.into(),
        },
        CallCommand::RecordStatus {
            status: CallStatus::InProgress,
            duration_secs: None,
            carrier_time: None,
        },
    ]
}

/// One stream record as the trigger delivers it: `pk` (and `sk`) in `Keys` and in the
/// new image.
fn record(event_name: &str, pk: &str, sk: u64, sequence_number: &str) -> Value {
    let keys = json!({"pk": {"S": pk}, "sk": {"N": sk.to_string()}});
    let mut image = keys.clone();
    image["type"] = json!({"S": "some_event"});
    raw(
        event_name,
        sequence_number,
        json!({"Keys": keys, "NewImage": image}),
    )
}

/// A stream record with `change` as its `dynamodb` part (plus the fields every record
/// has).
fn raw(event_name: &str, sequence_number: &str, mut change: Value) -> Value {
    change["ApproximateCreationDateTime"] = json!(1768392000.0);
    change["SequenceNumber"] = json!(sequence_number);
    change["SizeBytes"] = json!(412);
    change["StreamViewType"] = json!("NEW_IMAGE");
    json!({
        "eventID": format!("e{sequence_number}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/parley-events/stream/2026-01-14T12:00:00.000",
        "dynamodb": change,
    })
}

/// A 25-digit sequence number, as DynamoDB streams give them, ending in `n`.
fn seq(n: u32) -> String {
    format!("4421584500000000017450{n:03}")
}

fn batch(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The item identifiers a response reports.
async fn failures(store: &Store, event: Event) -> Vec<Option<String>> {
    project(&store.ports, event)
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

#[tokio::test]
async fn a_batch_brings_each_streams_view_up_to_its_stream() {
    let store = Store::new();
    let campaign = store.campaign().await;
    let call = store.call().await;
    let lead = store.lead(&campaign, &call).await;
    let (appointment, moved) = store.appointment(&lead).await;
    assert!(store.view(CALLS, &call).await.is_none());
    assert!(store.view(LEADS, &lead).await.is_none());
    assert!(store.view(CAMPAIGNS, &campaign).await.is_none());
    assert!(store.view(APPOINTMENTS, &appointment).await.is_none());

    let event = batch(vec![
        record("INSERT", campaign.stream().as_str(), 1, &seq(1)),
        record("INSERT", call.stream().as_str(), 1, &seq(2)),
        record("INSERT", lead.stream().as_str(), 1, &seq(3)),
        record("INSERT", appointment.stream().as_str(), 1, &seq(4)),
    ]);
    assert_eq!(failures(&store, event).await, Vec::<Option<String>>::new());

    // Each view holds its whole stream, not just the event the record carried.
    let call_view = store.view(CALLS, &call).await.unwrap().body;
    assert_eq!(call_view["status"], "in_progress", "{call_view}");
    assert_eq!(
        call_view["carrier_call_id"],
        "CA0123456789abcdef0123456789abcdef"
    );
    assert_eq!(call_view["tenant_id"], store.tenant.to_string());
    let lead_view = store.view(LEADS, &lead).await.unwrap().body;
    assert_eq!(lead_view["phone"], "+14155550140", "{lead_view}");
    assert_eq!(lead_view["campaign_id"], campaign.to_string());
    assert_eq!(lead_view["dial"]["state"], "calling");
    assert_eq!(lead_view["dial"]["call_id"], call.to_string());
    let campaign_view = store.view(CAMPAIGNS, &campaign).await.unwrap().body;
    assert_eq!(campaign_view["name"], "Spring check-ups", "{campaign_view}");
    let appointment_view = store.view(APPOINTMENTS, &appointment).await.unwrap().body;
    let starts_at: DateTime<Utc> =
        serde_json::from_value(appointment_view["starts_at"].clone()).unwrap();
    assert_eq!(starts_at, moved, "{appointment_view}");
    assert_eq!(appointment_view["reschedules"], 1);
}

#[tokio::test]
async fn a_stream_named_many_times_is_refreshed_once() {
    let store = Store::new();
    let campaign = store.campaign().await;
    let call = store.call().await;
    let lead = store.lead(&campaign, &call).await;
    let event = batch(vec![
        record("INSERT", call.stream().as_str(), 1, &seq(1)),
        record("INSERT", call.stream().as_str(), 2, &seq(2)),
        record("INSERT", lead.stream().as_str(), 1, &seq(3)),
        record("INSERT", call.stream().as_str(), 3, &seq(4)),
        record("MODIFY", lead.stream().as_str(), 2, &seq(5)),
    ]);
    let report = run(&store.ports, &event).await;
    assert_eq!(
        report,
        Report {
            refreshed: 2,
            ..Report::default()
        }
    );
    assert_eq!(
        store.view(CALLS, &call).await.unwrap().body["status"],
        "in_progress"
    );
    assert!(store.view(LEADS, &lead).await.is_some());
}

#[tokio::test]
async fn records_that_cannot_be_projected_are_skipped_and_the_rest_projected() {
    let store = Store::new();
    let campaign = store.campaign().await;
    let call = store.call().await;
    let lead = store.lead(&campaign, &call).await;
    let removed = store.call().await;
    let lead_pk = lead.stream();
    let event = batch(vec![
        // No keys and no image at all.
        raw("INSERT", &seq(1), json!({})),
        // A pk that is not a string.
        raw(
            "INSERT",
            &seq(2),
            json!({"Keys": {"pk": {"N": "7"}, "sk": {"N": "1"}}}),
        ),
        record("INSERT", &format!("tenant/{}", store.tenant), 1, &seq(3)),
        record(
            "INSERT",
            "dial_job/9f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
            1,
            &seq(4),
        ),
        record("INSERT", "idem#call-status-CA01-completed", 0, &seq(5)),
        record("INSERT", "widget/7", 1, &seq(6)),
        record("INSERT", "call/not-a-uuid", 1, &seq(7)),
        // Events are never deleted; a removal names nothing to re-derive.
        record("REMOVE", removed.stream().as_str(), 1, &seq(8)),
        record("INSERT", call.stream().as_str(), 3, &seq(9)),
        // The pk only in the new image.
        raw(
            "INSERT",
            &seq(10),
            json!({"Keys": {}, "NewImage": {"pk": {"S": lead_pk.as_str()}, "sk": {"N": "1"}}}),
        ),
    ]);
    let report = run(&store.ports, &event).await;
    assert_eq!(
        report,
        Report {
            refreshed: 2,
            no_view: 4,
            unusable: 4,
            failed: 0,
            retry_from: None,
        }
    );
    assert_eq!(
        store.view(CALLS, &call).await.unwrap().body["status"],
        "in_progress"
    );
    assert!(store.view(LEADS, &lead).await.is_some());
    assert!(store.view(CALLS, &removed).await.is_none());
    // The same batch through the trigger's entry point reports nothing to retry.
    assert_eq!(failures(&store, event).await, Vec::<Option<String>>::new());
}

#[tokio::test]
async fn a_failed_stream_is_reported_at_its_first_record_and_the_others_still_converge() {
    let store = Store::new();
    let good = store.call().await;
    let broken = store.corrupt_call().await;
    let other_broken = store.corrupt_call().await;
    let later = store.call().await;
    let event = batch(vec![
        record("INSERT", good.stream().as_str(), 1, &seq(1)),
        record("INSERT", broken.stream().as_str(), 1, &seq(2)),
        record("INSERT", good.stream().as_str(), 2, &seq(3)),
        record("INSERT", other_broken.stream().as_str(), 1, &seq(4)),
        record("INSERT", broken.stream().as_str(), 2, &seq(5)),
        record("INSERT", later.stream().as_str(), 1, &seq(6)),
    ]);
    let report = run(&store.ports, &event).await;
    assert_eq!((report.refreshed, report.failed), (2, 2), "{report:?}");
    // Only the lowest: the trigger resumes there and everything after is retried.
    assert_eq!(failures(&store, event).await, vec![Some(seq(2))]);
    assert!(store.view(CALLS, &good).await.is_some());
    assert!(store.view(CALLS, &later).await.is_some());
    assert!(store.view(CALLS, &broken).await.is_none());
}

#[tokio::test]
async fn while_the_view_store_is_down_the_batch_is_retried_and_then_converges() {
    let store = Store::new();
    let first = store.call().await;
    let second = store.call().await;
    let records = vec![
        record("INSERT", &format!("tenant/{}", store.tenant), 1, &seq(1)),
        record("INSERT", first.stream().as_str(), 3, &seq(2)),
        record("INSERT", second.stream().as_str(), 3, &seq(3)),
    ];
    // The view table goes missing under the running store, and comes back.
    let db = rusqlite::Connection::open(store.dir.path().join("parley.db")).unwrap();
    db.execute_batch("ALTER TABLE views RENAME TO views_away")
        .unwrap();
    assert_eq!(
        failures(&store, batch(records.clone())).await,
        vec![Some(seq(2))]
    );
    db.execute_batch("ALTER TABLE views_away RENAME TO views")
        .unwrap();
    assert!(store.view(CALLS, &first).await.is_none());
    // The trigger resumes at the reported record: the rest of the batch converges.
    let retried = batch(records[1..].to_vec());
    assert_eq!(
        failures(&store, retried).await,
        Vec::<Option<String>>::new()
    );
    for call in [&first, &second] {
        assert_eq!(
            store.view(CALLS, call).await.unwrap().body["status"],
            "in_progress"
        );
    }
}

/// The fixed values of `events/projector/stream.json` (see `events/README.md`).
const SAMPLE_TENANT: &str = "01936d7e-2a00-7000-8000-000000000001";
const SAMPLE_AGENT: &str = "01936d7e-2a00-7000-8000-000000000002";
const SAMPLE_CALL: &str = "01936d7e-2a00-7000-8000-000000000003";
const SAMPLE_SID: &str = "CA4c3d5e6f708192a3b4c5d6e7f8091a2b";

fn sample() -> Value {
    serde_json::from_str(include_str!("../../../events/projector/stream.json")).unwrap()
}

/// The sample's call written as its record says: three commands, a second apart from
/// 2026-01-14 12:00 UTC.
async fn sample_store() -> Store {
    let start = Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0).unwrap();
    let clock = ManualClock::new(start);
    let mut store = Store::on_clock(Arc::new(clock.clone()));
    store.tenant = TenantId::parse(SAMPLE_TENANT).unwrap();
    let call = CallId::parse(SAMPLE_CALL).unwrap();
    let agent = AgentId::parse(SAMPLE_AGENT).unwrap();
    for command in placed_call(Some(agent), SAMPLE_SID) {
        store.write::<Call>(&call.stream(), vec![command]).await;
        clock.advance(Duration::seconds(1));
    }
    store
}

#[tokio::test]
async fn the_sample_record_is_an_event_of_the_stream_it_names() {
    let store = sample_store().await;
    let sample = sample();
    let records = sample["Records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    let change = &records[0]["dynamodb"];
    let (keys, image) = (&change["Keys"], &change["NewImage"]);
    assert_eq!(keys["pk"], image["pk"]);
    assert_eq!(keys["sk"], image["sk"]);
    assert_eq!(keys["pk"]["S"], format!("call/{SAMPLE_CALL}"));
    let version: u64 = keys["sk"]["N"].as_str().unwrap().parse().unwrap();
    let stream = CallId::parse(SAMPLE_CALL).unwrap().stream();
    let events = store
        .ports
        .events
        .read_stream(&stream, version)
        .await
        .unwrap();
    // The last event of the stream, as DynamoEventStore writes it.
    assert_eq!(events.len(), 1, "the sample is not the stream's last event");
    let event = &events[0];
    assert_eq!(image["type"]["S"], event.event_type);
    assert_eq!(image["sv"]["N"], event.schema_version.to_string());
    assert_eq!(image["tenant"]["S"], event.meta.tenant_id);
    assert_eq!(image["corr"]["S"], event.meta.correlation_id);
    assert_eq!(
        image["at"]["S"],
        event
            .meta
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    let data: Value = serde_json::from_str(image["data"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(data, event.data);
    // The global position: the append's time (at or after the event's), stream, version.
    let gpos = image["gpos"]["S"].as_str().unwrap();
    let (micros, rest) = gpos.split_once('#').unwrap();
    assert_eq!(rest, format!("{stream}#{version:010}"));
    assert_eq!(micros.len(), 20);
    assert!(micros.parse::<i64>().unwrap() >= event.meta.occurred_at.timestamp_micros());
    assert!(["g0", "g1", "g2", "g3"].contains(&image["gshard"]["S"].as_str().unwrap()));
    assert_eq!(records[0]["eventName"], "INSERT");
    assert_eq!(change["StreamViewType"], "NEW_IMAGE");
}

#[tokio::test]
async fn the_sample_batch_projects_its_call() {
    let store = sample_store().await;
    assert!(store.view(CALLS, &SAMPLE_CALL).await.is_none());
    let event: Event = serde_json::from_value(sample()).unwrap();
    let response = project(&store.ports, event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let view = store.view(CALLS, &SAMPLE_CALL).await.unwrap().body;
    assert_eq!(view["status"], "in_progress", "{view}");
    assert_eq!(view["carrier_call_id"], SAMPLE_SID);
    assert_eq!(view["to"], "+14155550132");
    assert_eq!(view["tenant_id"], SAMPLE_TENANT);
    // The answer as the trigger reads it.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": []})
    );
}
