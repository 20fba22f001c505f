//! The projector: re-derives the read model of every stream the event table's DynamoDB
//! stream reports, so that views converge even when a writer died between appending its
//! events and writing its view (a Lambda timing out, a media task killed mid-call).
//!
//! A batch's records are reduced to the distinct streams they name, in order of first
//! appearance, and each stream's view is rebuilt once from the whole stream: refreshing
//! is idempotent, so it does not matter which of a stream's events a record carries, and
//! records seen twice (a retried batch) change nothing. Streams with no view kept here
//! (tenants, dial jobs, idempotency items) are passed over.
//!
//! Failures are reported for a DynamoDB stream trigger with `ReportBatchItemFailures`:
//! Lambda checkpoints at the lowest sequence number reported and retries from there, so
//! only the first record of the first stream that failed is reported. Records that can
//! never be projected (no key, a removal, an id that does not parse) are skipped with a
//! warning instead, since reporting them would hold the shard up for good.

use std::collections::HashSet;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;

use parley_shared::StoreError;
use parley_shared::appointmentviews::refresh_appointment;
use parley_shared::backend::Ports;
use parley_shared::campaignviews::refresh_campaign;
use parley_shared::domain::{AppointmentId, CallId, CampaignId, IdError, LeadId};
use parley_shared::leadviews::refresh_lead;
use parley_shared::views::refresh_call;

/// A stream whose view the projector keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projected {
    Call(CallId),
    Lead(LeadId),
    Campaign(CampaignId),
    Appointment(AppointmentId),
}

/// What a stream name means to the projector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A stream with a view here.
    View(Projected),
    /// A stream (or another item of the event table) with no view here.
    NoView,
}

impl Target {
    /// Classifies the event table's `pk`: `<category>/<id>` for an event stream.
    pub fn of(pk: &str) -> Result<Target, IdError> {
        let Some((category, id)) = pk.split_once('/') else {
            // Not a stream: an idempotency item (`idem#<key>`) or something newer.
            return Ok(Target::NoView);
        };
        let projected = match category {
            "call" => Projected::Call(CallId::parse(id)?),
            "lead" => Projected::Lead(LeadId::parse(id)?),
            "campaign" => Projected::Campaign(CampaignId::parse(id)?),
            "appointment" => Projected::Appointment(AppointmentId::parse(id)?),
            _ => return Ok(Target::NoView),
        };
        Ok(Target::View(projected))
    }
}

/// What one batch came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Distinct streams whose views were brought up to their streams.
    pub refreshed: usize,
    /// Distinct streams with no view here.
    pub no_view: usize,
    /// What can never be projected: records with no key or removing an item, and
    /// distinct streams whose id does not parse.
    pub unusable: usize,
    /// Distinct streams whose refresh failed.
    pub failed: usize,
    /// When a refresh failed: the sequence number of the first record naming the first
    /// stream that failed, where the trigger must resume.
    pub retry_from: Option<String>,
}

/// A stream the batch names, with the first record that named it.
struct Named {
    stream: String,
    projected: Projected,
    sequence_number: Option<String>,
}

/// Projects a DynamoDB stream batch and answers as `ReportBatchItemFailures` expects:
/// no failures, or the one record to resume from.
pub async fn project(ports: &Ports, event: Event) -> DynamoDbEventResponse {
    let report = run(ports, &event).await;
    let mut response = DynamoDbEventResponse::default();
    if report.failed > 0 {
        // A record with no sequence number (never seen from AWS) is reported without an
        // identifier, which Lambda takes as the whole batch failing: retried, not lost.
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = report.retry_from;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Projects a batch: refreshes each distinct stream's view once and says what it did.
pub async fn run(ports: &Ports, event: &Event) -> Report {
    let mut report = Report::default();
    let named = distinct_streams(&event.records, &mut report);
    for named in named {
        match refresh(ports, &named.projected).await {
            Ok(()) => report.refreshed += 1,
            Err(e) => {
                tracing::warn!(stream = %named.stream, error = %e, retryable = e.is_retryable(), "view not refreshed; the batch is retried from the stream's first record");
                if report.failed == 0 {
                    report.retry_from = named.sequence_number;
                }
                report.failed += 1;
                // The rest are still refreshed: if the batch is given up on at the end
                // of its retries, the views of the other streams have converged anyway.
            }
        }
    }
    tracing::info!(
        records = event.records.len(),
        refreshed = report.refreshed,
        no_view = report.no_view,
        unusable = report.unusable,
        failed = report.failed,
        "batch projected"
    );
    report
}

/// The streams `records` name, each once, in order of first appearance.
fn distinct_streams(records: &[EventRecord], report: &mut Report) -> Vec<Named> {
    let mut seen = HashSet::new();
    let mut named = Vec::new();
    for record in records {
        let sequence_number = record.change.sequence_number.as_deref();
        if record.event_name == "REMOVE" {
            // Events are never deleted; nothing to re-derive from a removal.
            tracing::warn!(sequence_number, "removal record skipped");
            report.unusable += 1;
            continue;
        }
        let Some(pk) = partition_key(record) else {
            tracing::warn!(sequence_number, "record without a readable pk skipped");
            report.unusable += 1;
            continue;
        };
        if !seen.insert(pk.to_owned()) {
            continue;
        }
        match Target::of(pk) {
            Ok(Target::View(projected)) => named.push(Named {
                stream: pk.to_owned(),
                projected,
                sequence_number: sequence_number.map(str::to_owned),
            }),
            Ok(Target::NoView) => {
                // The category only: other items' keys (idempotency keys) are callers'.
                let kind = pk.split_once('/').map_or("not a stream", |(kind, _)| kind);
                tracing::debug!(kind, "no view kept for this kind of item");
                report.no_view += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, sequence_number, "record naming a stream with a bad id skipped");
                report.unusable += 1;
            }
        }
    }
    named
}

/// The record's `pk`: from its keys, or its new image if the keys lack it.
fn partition_key(record: &EventRecord) -> Option<&str> {
    fn string(value: &AttributeValue) -> Option<&str> {
        match value {
            AttributeValue::S(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
    record
        .change
        .keys
        .get("pk")
        .and_then(string)
        .or_else(|| record.change.new_image.get("pk").and_then(string))
}

/// Rebuilds one stream's view from its events.
async fn refresh(ports: &Ports, projected: &Projected) -> Result<(), StoreError> {
    let (events, views) = (&*ports.events, &*ports.views);
    match projected {
        Projected::Call(id) => refresh_call(events, views, id).await,
        Projected::Lead(id) => refresh_lead(events, views, id, ports.clock.now())
            .await
            .map(drop),
        Projected::Campaign(id) => refresh_campaign(events, views, id).await,
        Projected::Appointment(id) => refresh_appointment(events, views, id).await.map(drop),
    }
}
