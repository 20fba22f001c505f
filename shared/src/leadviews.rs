//! A campaign's leads as the API lists them and the scheduler finds them: each lead's
//! projection, rebuilt from its stream and its campaign's settings.
//!
//! Two views per lead, both written at the same version (the lead's stream version and
//! the campaign's, so that a settings change re-plans a lead whose stream did not move):
//!
//! - `leads/<lead>`: the lead, its attempts and its plan; index 1 `leads#<campaign>`,
//!   index 2 `leads#<campaign>#<STATUS>`, both sorted by lead id.
//! - `dial/<lead>`: where the dialling stands; index 1 is `dial#<campaign>#due` sorted
//!   by due time while the lead waits for a call, `dial#<campaign>#live` while an attempt
//!   is in flight; index 2 is `dial#<tenant>#live` while in flight (the tenant's cap).
//!   A resolved lead's dial view has no index entries.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::aggregate::load_any;
use crate::domain::campaign::{Campaign, CampaignSettings};
use crate::domain::dialplan::{Dial, plan};
use crate::domain::lead::{Lead, LeadStatus};
use crate::domain::{CampaignId, LeadId, TenantId};
use crate::error::StoreResult;
use crate::eventstore::EventStore;
use crate::readmodel::{IndexEntry, View, ViewStore, project_timed};

pub const LEADS: &str = "leads";
pub const DIAL: &str = "dial";

pub fn leads_partition(campaign: &CampaignId) -> String {
    format!("leads#{campaign}")
}

pub fn leads_status_partition(campaign: &CampaignId, status: LeadStatus) -> String {
    format!("leads#{campaign}#{}", status_name(status))
}

pub fn due_partition(campaign: &CampaignId) -> String {
    format!("dial#{campaign}#due")
}

pub fn live_partition(campaign: &CampaignId) -> String {
    format!("dial#{campaign}#live")
}

pub fn tenant_live_partition(tenant: &TenantId) -> String {
    format!("dial#{tenant}#live")
}

/// A time as sort values hold it: fixed width, so string order is time order.
pub fn sort_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn status_name(status: LeadStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The version both views are written at: the lead's stream version, then the
/// campaign's, so either moving on replaces the views and neither going back does.
fn combined_version(lead_version: u64, campaign_version: u64) -> u64 {
    (lead_version << 24) | campaign_version.min((1 << 24) - 1)
}

/// The lead as the API shows it.
pub fn lead_json(id: &LeadId, tenant: &TenantId, lead: &Lead, dial: &Dial) -> Value {
    let attempts: Vec<Value> = lead
        .attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.number,
                "call_id": a.call_id,
                "status": a.outcome,
                "started_at": a.started_at,
                "ended_at": a.ended_at,
                "duration_secs": a.duration_secs,
                "answered_by_machine": a.machine,
            })
        })
        .collect();
    json!({
        "id": id,
        "tenant_id": tenant,
        "campaign_id": lead.campaign_id,
        "phone": lead.phone,
        "name": lead.name,
        "time_zone": lead.time_zone,
        "fields": lead.fields,
        "status": lead.status,
        "temperature": lead.temperature,
        "score": lead.score,
        "do_not_call": lead.do_not_call,
        "callback_at": lead.callback_at,
        "details": lead.details,
        "attempts": attempts,
        "dial": dial_json(dial),
    })
}

fn dial_json(dial: &Dial) -> Value {
    match dial {
        Dial::Due { attempt, at } => {
            json!({"state": "waiting", "next_attempt": attempt, "due_at": at})
        }
        Dial::InFlight {
            attempt,
            call_id,
            since,
        } => json!({"state": "calling", "attempt": attempt, "call_id": call_id, "since": since}),
        Dial::Resolved(resolution) => json!({"state": "resolved", "resolution": resolution}),
    }
}

/// A lead as loaded with its campaign, ready to project.
pub struct LeadState<'a> {
    pub id: &'a LeadId,
    pub tenant: &'a TenantId,
    pub campaign_id: &'a CampaignId,
    pub lead: &'a Lead,
    pub lead_version: u64,
    pub settings: &'a CampaignSettings,
    pub campaign_version: u64,
}

/// Writes both views of `state`; returns the lead's plan.
pub async fn project_lead(
    views: &dyn ViewStore,
    state: &LeadState<'_>,
    now: DateTime<Utc>,
) -> StoreResult<Dial> {
    let dial = plan(state.lead, state.settings, now);
    let version = combined_version(state.lead_version, state.campaign_version);
    let key = state.id.to_string();
    let leads = View::new(
        LEADS,
        key.clone(),
        lead_json(state.id, state.tenant, state.lead, &dial),
    )
    .with_index1(IndexEntry::new(
        leads_partition(state.campaign_id),
        key.clone(),
    ))
    .with_index2(IndexEntry::new(
        leads_status_partition(state.campaign_id, state.lead.status),
        key.clone(),
    ));
    project_timed(views, leads, version).await?;

    let mut body = dial_json(&dial);
    body["lead_id"] = json!(state.id);
    body["tenant_id"] = json!(state.tenant);
    body["campaign_id"] = json!(state.campaign_id);
    let mut view = View::new(DIAL, key.clone(), body);
    match &dial {
        Dial::Due { at, .. } => {
            view = view.with_index1(IndexEntry::new(
                due_partition(state.campaign_id),
                format!("{}#{key}", sort_time(*at)),
            ));
        }
        Dial::InFlight { since, .. } => {
            let sort = format!("{}#{key}", since.map(sort_time).unwrap_or_default());
            view = view
                .with_index1(IndexEntry::new(
                    live_partition(state.campaign_id),
                    sort.clone(),
                ))
                .with_index2(IndexEntry::new(tenant_live_partition(state.tenant), sort));
        }
        Dial::Resolved(_) => {}
    }
    project_timed(views, view, version).await?;
    Ok(dial)
}

/// A lead loaded from its stream, with its tenant and version.
pub struct LoadedLead {
    pub tenant: TenantId,
    pub lead: Lead,
    pub version: u64,
}

pub async fn load_lead(events: &dyn EventStore, id: &LeadId) -> StoreResult<Option<LoadedLead>> {
    let loaded = load_any::<Lead>(events, &id.stream()).await?;
    let tenant = loaded
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    Ok(match tenant {
        Some(tenant) if loaded.state.exists => Some(LoadedLead {
            tenant,
            lead: loaded.state,
            version: loaded.version,
        }),
        _ => None,
    })
}

/// Reloads the lead and its campaign and writes both views; the lead's plan, or `None`
/// for a lead that does not exist or has no campaign.
pub async fn refresh_lead(
    events: &dyn EventStore,
    views: &dyn ViewStore,
    id: &LeadId,
    now: DateTime<Utc>,
) -> StoreResult<Option<Dial>> {
    let Some(loaded) = load_lead(events, id).await? else {
        return Ok(None);
    };
    project_current(
        events,
        views,
        id,
        &loaded.tenant,
        &loaded.lead,
        loaded.version,
        now,
    )
    .await
}

/// Writes both views of a lead already in hand (the state a command left), loading
/// only its campaign.
pub async fn project_current(
    events: &dyn EventStore,
    views: &dyn ViewStore,
    id: &LeadId,
    tenant: &TenantId,
    lead: &Lead,
    lead_version: u64,
    now: DateTime<Utc>,
) -> StoreResult<Option<Dial>> {
    let Some(campaign_id) = lead.campaign_id.clone() else {
        return Ok(None);
    };
    let campaign = load_any::<Campaign>(events, &campaign_id.stream()).await?;
    let Some(settings) = campaign.state.settings.as_ref() else {
        return Ok(None);
    };
    let state = LeadState {
        id,
        tenant,
        campaign_id: &campaign_id,
        lead,
        lead_version,
        settings,
        campaign_version: campaign.version,
    };
    project_lead(views, &state, now).await.map(Some)
}

/// The lead for whoever is at `phone` (one per tenant and number), made the first
/// time they are on a call: a caller, or someone called with no lead named, so every
/// conversation has someone its bookings, answers and callbacks belong to.
pub async fn person_lead(
    ports: &crate::backend::Ports,
    tenant: &TenantId,
    phone: &crate::domain::PhoneNumber,
) -> Result<LeadId, crate::aggregate::CommandError<crate::domain::lead::LeadError>> {
    let id = LeadId::for_caller(tenant, phone.as_str());
    let create = crate::domain::lead::LeadCommand::Create {
        campaign_id: None,
        phone: phone.clone(),
        name: None,
        time_zone: None,
        fields: Default::default(),
    };
    let key = Some(format!("caller-lead:{id}"));
    match run_lead(ports, tenant, &id, create, key).await {
        Ok(_)
        | Err(crate::aggregate::CommandError::Rejected(
            crate::domain::lead::LeadError::AlreadyExists,
        )) => Ok(id),
        Err(e) => Err(e),
    }
}

/// Runs `command` on the lead for `tenant` and writes the lead's views from the state
/// the command left; the lead's plan afterwards. `key` makes a retried command harmless.
pub async fn run_lead(
    ports: &crate::backend::Ports,
    tenant: &TenantId,
    id: &LeadId,
    command: crate::domain::lead::LeadCommand,
    key: Option<String>,
) -> Result<Option<Dial>, crate::aggregate::CommandError<crate::domain::lead::LeadError>> {
    let ctx = crate::aggregate::Context {
        tenant_id: tenant.to_string(),
        correlation_id: id.to_string(),
        idempotency_key: key,
    };
    let done = crate::aggregate::execute::<Lead>(
        &*ports.events,
        &*ports.clock,
        &id.stream(),
        &ctx,
        command,
    )
    .await?;
    let now = ports.clock.now();
    Ok(project_current(
        &*ports.events,
        &*ports.views,
        id,
        tenant,
        &done.state,
        done.version,
        now,
    )
    .await?)
}
