//! Read models kept by Parley's own code: each a pure function from a stream's state to
//! its view, plus the write that keeps the view at the stream's latest version. Whoever
//! changes a stream (an API handler, a webhook, the projector) refreshes its view the
//! same way, and a view can always be rebuilt from its stream.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::aggregate::Aggregate;
use crate::domain::CallId;
use crate::domain::call::{Call, CallStatus};
use crate::error::StoreResult;
use crate::event::decode;
use crate::eventstore::EventStore;
use crate::readmodel::{IndexEntry, View, ViewStore, project};

/// The collection of call views.
pub const CALLS: &str = "calls";

/// The wire name of a call status (as the API shows it).
pub fn status_name(status: CallStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A call as the API shows it, from its state and the times of its first and last
/// events.
pub fn call_json(
    id: &CallId,
    tenant: &str,
    call: &Call,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) -> Value {
    json!({
        "id": id,
        "tenant_id": tenant,
        "direction": call.direction,
        "carrier": call.carrier,
        "status": call.status,
        "from": call.from,
        "to": call.to,
        "agent_id": call.agent_id,
        "lead_id": call.lead_id,
        "campaign_id": call.campaign_id,
        "attempt": call.attempt,
        "carrier_call_id": call.carrier_call_id,
        "duration_secs": call.duration_secs,
        "answered_by": call.answered_by,
        // Blob keys, not links: a link expires, so readers sign one when they serve it.
        "recording_key": call.recording_key,
        "transcript_key": call.transcript_key,
        "outcome": call.outcome,
        "summary": call.summary,
        "transfer": call.transfer.as_ref().map(|t| json!({
            "mode": t.mode,
            "reason": t.reason,
            "dialled": call.transfer_dials.len(),
            "answered": call.transfer_dials.iter().any(|(_, answered)| *answered),
        })),
        "created_at": created.to_rfc3339_opts(SecondsFormat::Micros, true),
        "updated_at": updated.to_rfc3339_opts(SecondsFormat::Micros, true),
    })
}

/// Index 1 lists a tenant's calls by creation time; index 2 the same per status.
pub fn call_partition(tenant: &str) -> String {
    format!("calls#{tenant}")
}

pub fn call_status_partition(tenant: &str, status: &str) -> String {
    format!("calls#{tenant}#{status}")
}

/// A call rebuilt from its events: state, tenant, version, first and last event times.
pub struct LoadedCall {
    pub call: Call,
    pub tenant_id: String,
    pub version: u64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Reads a call's stream; `None` when it does not exist.
pub async fn load_call(events: &dyn EventStore, id: &CallId) -> StoreResult<Option<LoadedCall>> {
    let recorded = events.read_stream(&id.stream(), 1).await?;
    let (Some(first), Some(last)) = (recorded.first(), recorded.last()) else {
        return Ok(None);
    };
    let mut call = Call::default();
    for event in &recorded {
        if let Some(domain) = decode::<<Call as Aggregate>::Event>(event)? {
            call.apply(&domain);
        }
    }
    Ok(Some(LoadedCall {
        tenant_id: first.meta.tenant_id.clone(),
        version: last.version,
        created: first.meta.occurred_at,
        updated: last.meta.occurred_at,
        call,
    }))
}

/// Brings a call's view up to its stream.
pub async fn refresh_call(
    events: &dyn EventStore,
    views: &dyn ViewStore,
    id: &CallId,
) -> StoreResult<()> {
    let Some(loaded) = load_call(events, id).await? else {
        return Ok(());
    };
    let body = call_json(
        id,
        &loaded.tenant_id,
        &loaded.call,
        loaded.created,
        loaded.updated,
    );
    let sort = format!(
        "{}#{id}",
        loaded.created.to_rfc3339_opts(SecondsFormat::Micros, true)
    );
    let status = loaded.call.status.map(status_name).unwrap_or_default();
    let view = View::new(CALLS, id.to_string(), body)
        .with_index1(IndexEntry::new(
            call_partition(&loaded.tenant_id),
            sort.clone(),
        ))
        .with_index2(IndexEntry::new(
            call_status_partition(&loaded.tenant_id, &status),
            sort,
        ));
    project(views, view, loaded.version).await
}
