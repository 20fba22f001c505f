//! Appointments as the API lists them and the booking tools check them: one view per
//! appointment, rebuilt from its `appointment/<id>` stream.
//!
//! - `appointments/<id>`: the meeting as it stands (rescheduled, cancelled), written at
//!   the stream's version. Index 1 is `appointments#<tenant>`, index 2
//!   `appointments#<tenant>#agent#<agent>` (only for an appointment that names its
//!   agent); both sorted by `<starts_at>#<id>`, so a range of start times is a range of
//!   sort values. A cancelled appointment keeps its place in both, with its status.
//!
//! Whoever changes an appointment writes its view in the same breath
//! ([`run_appointment`]); [`refresh_appointment`] rebuilds one from its stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aggregate::{self, Aggregate, CommandError, Context};
use crate::backend::Ports;
use crate::domain::appointment::{
    Appointment, AppointmentCommand, AppointmentError, AppointmentEvent, MeetingKind,
};
use crate::domain::{AgentId, AppointmentId, CallId, LeadId, TenantId};
use crate::error::StoreResult;
use crate::event::decode;
use crate::eventstore::EventStore;
use crate::leadviews::sort_time;
use crate::readmodel::{Index, IndexEntry, Query, View, ViewStore, project};

/// The collection of appointment views.
pub const APPOINTMENTS: &str = "appointments";

/// Index 1: the tenant's appointments by start time.
pub fn tenant_partition(tenant: &TenantId) -> String {
    format!("{APPOINTMENTS}#{tenant}")
}

/// Index 2: one agent's appointments by start time.
pub fn agent_partition(tenant: &TenantId, agent: &AgentId) -> String {
    format!("{APPOINTMENTS}#{tenant}#agent#{agent}")
}

/// The sort value of an appointment starting at `starts_at` in either index.
pub fn sort_value(starts_at: DateTime<Utc>, id: &AppointmentId) -> String {
    format!("{}#{id}", sort_time(starts_at))
}

/// The sort values of appointments starting from `from` to `to`, both included: for a
/// [`Query::sort_between`]. Without `to`, every later start; `'~'` sorts after every
/// character of an id.
pub fn starting_between(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> (String, String) {
    let upper = match to {
        Some(to) => format!("{}#~", sort_time(to)),
        None => "~".to_owned(),
    };
    (sort_time(from), upper)
}

/// The query over the appointments of `tenant` (of one agent's, with `agent`) that
/// start from `from` to `to`, earliest first.
pub fn starting_query(
    tenant: &TenantId,
    agent: Option<&AgentId>,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Query {
    let mut query = match agent {
        Some(agent) => Query::new(Index::Second, agent_partition(tenant, agent)),
        None => Query::new(Index::First, tenant_partition(tenant)),
    };
    query.sort_between = Some(starting_between(from, to));
    query
}

/// Where an appointment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// Booked (and perhaps moved): the time is taken.
    Booked,
    /// Called off: the time is free again.
    Cancelled,
}

impl AppointmentStatus {
    pub fn of(appointment: &Appointment) -> AppointmentStatus {
        match appointment.cancelled {
            true => AppointmentStatus::Cancelled,
            false => AppointmentStatus::Booked,
        }
    }
}

/// An appointment view's body, as [`appointment_json`] writes it: what readers (the
/// API, the booking tools) decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppointmentBody {
    pub id: AppointmentId,
    pub tenant_id: TenantId,
    pub lead_id: LeadId,
    #[serde(default)]
    pub call_id: Option<CallId>,
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub duration_minutes: u32,
    pub kind: MeetingKind,
    pub status: AppointmentStatus,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// How many times it moved since it was booked.
    #[serde(default)]
    pub reschedules: u32,
}

impl AppointmentBody {
    /// Whether the appointment still takes its time.
    pub fn is_live(&self) -> bool {
        self.status == AppointmentStatus::Booked
    }

    /// Whether it takes any of the time from `start` to `end` (an end is free: a
    /// meeting may start the minute another ends).
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.starts_at < end && start < self.ends_at
    }
}

/// An appointment rebuilt from its events: state, tenant, version, first and last
/// event times.
#[derive(Clone, Debug)]
pub struct LoadedAppointment {
    pub appointment: Appointment,
    pub tenant_id: TenantId,
    pub version: u64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// The appointment as the API shows it; `None` for a stream that holds no booking.
pub fn appointment_json(id: &AppointmentId, loaded: &LoadedAppointment) -> Option<Value> {
    let a = &loaded.appointment;
    let (Some(lead_id), Some(starts_at), Some(ends_at), Some(kind)) =
        (&a.lead_id, a.starts_at, a.ends_at(), a.kind)
    else {
        return None;
    };
    let body = AppointmentBody {
        id: id.clone(),
        tenant_id: loaded.tenant_id.clone(),
        lead_id: lead_id.clone(),
        call_id: a.call_id.clone(),
        agent_id: a.agent_id.clone(),
        title: a.title.clone(),
        starts_at,
        ends_at,
        duration_minutes: a.duration_minutes,
        kind,
        status: AppointmentStatus::of(a),
        cancel_reason: a.cancel_reason.clone(),
        reschedules: a.reschedules,
    };
    let mut json = serde_json::to_value(body).ok()?;
    json["booked_at"] = json!(sort_time(loaded.created));
    json["updated_at"] = json!(sort_time(loaded.updated));
    Some(json)
}

/// The view of a loaded appointment, with its index entries; `None` for a stream that
/// holds no booking.
pub fn appointment_view(id: &AppointmentId, loaded: &LoadedAppointment) -> Option<View> {
    let body = appointment_json(id, loaded)?;
    let starts_at = loaded.appointment.starts_at?;
    let sort = sort_value(starts_at, id);
    let mut view = View::new(APPOINTMENTS, id.to_string(), body).with_index1(IndexEntry::new(
        tenant_partition(&loaded.tenant_id),
        sort.clone(),
    ));
    if let Some(agent) = &loaded.appointment.agent_id {
        view = view.with_index2(IndexEntry::new(
            agent_partition(&loaded.tenant_id, agent),
            sort,
        ));
    }
    Some(view)
}

/// Reads an appointment's stream, whatever its tenant; `None` when it does not exist.
pub async fn load_appointment(
    events: &dyn EventStore,
    id: &AppointmentId,
) -> StoreResult<Option<LoadedAppointment>> {
    let recorded = events.read_stream(&id.stream(), 1).await?;
    let (Some(first), Some(last)) = (recorded.first(), recorded.last()) else {
        return Ok(None);
    };
    let Ok(tenant_id) = TenantId::parse(&first.meta.tenant_id) else {
        return Ok(None);
    };
    let mut appointment = Appointment::default();
    for event in &recorded {
        if let Some(domain) = decode::<AppointmentEvent>(event)? {
            appointment.apply(&domain);
        }
    }
    if !appointment.exists {
        return Ok(None);
    }
    Ok(Some(LoadedAppointment {
        appointment,
        tenant_id,
        version: last.version,
        created: first.meta.occurred_at,
        updated: last.meta.occurred_at,
    }))
}

/// Brings an appointment's view up to its stream; the appointment as loaded.
pub async fn refresh_appointment(
    events: &dyn EventStore,
    views: &dyn ViewStore,
    id: &AppointmentId,
) -> StoreResult<Option<LoadedAppointment>> {
    let Some(loaded) = load_appointment(events, id).await? else {
        return Ok(None);
    };
    if let Some(view) = appointment_view(id, &loaded) {
        project(views, view, loaded.version).await?;
    }
    Ok(Some(loaded))
}

/// Runs `command` on appointment `id` as `ctx` says (its tenant; the call that booked
/// it, or the appointment itself, as correlation; an idempotency key for a retried
/// request) and writes the appointment's view; the appointment afterwards.
pub async fn run_appointment(
    ports: &Ports,
    ctx: &Context,
    id: &AppointmentId,
    command: AppointmentCommand,
) -> Result<LoadedAppointment, CommandError<AppointmentError>> {
    aggregate::execute::<Appointment>(&*ports.events, &*ports.clock, &id.stream(), ctx, command)
        .await?;
    refresh_appointment(&*ports.events, &*ports.views, id)
        .await?
        .ok_or_else(|| CommandError::NotFound {
            stream: id.stream(),
        })
}

/// Decodes an appointment view's body; `None` (and a log line naming the view) for one
/// that does not decode, which only a projection bug could write.
pub fn decode_view(view: &View) -> Option<AppointmentBody> {
    match serde_json::from_value(view.body.clone()) {
        Ok(body) => Some(body),
        Err(e) => {
            tracing::error!(key = %view.key, error = %e, "appointment view does not decode");
            None
        }
    }
}

/// Every appointment `query` finds, page by page (up to `max_pages` store pages of
/// [`crate::readmodel::MAX_PAGE`]): for the booking tools, which need a whole range.
pub async fn all_in(
    views: &dyn ViewStore,
    mut query: Query,
    max_pages: usize,
) -> StoreResult<Vec<AppointmentBody>> {
    query.limit = crate::readmodel::MAX_PAGE;
    let mut found = Vec::new();
    for _ in 0..max_pages {
        let page = views.query(&query).await?;
        found.extend(page.views.iter().filter_map(decode_view));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    Ok(found)
}
