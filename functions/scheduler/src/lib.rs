//! The scheduler: once a minute (EventBridge on AWS, a timer in `parley dev`), for
//! each running campaign, finds the leads due for a call, reserves their next attempt
//! and queues a dial job for it, within the caps:
//!
//! - the calling window, in the lead's time zone (else the campaign's), checked again
//!   against the lead's stream before anything is reserved;
//! - the campaign's and the tenant's concurrent calls (attempts reserved or ringing);
//! - the tenant's calls per second: a tick queues at most a minute's worth, spread
//!   over the minute with queue delays (the dialer enforces the second exactly).
//!
//! It also repairs what a crash can leave behind: a reserved attempt whose job never
//! reached the queue is queued again, a call the dialer wrote but never placed is
//! failed, a call that ended without its lead hearing of it closes the attempt, and a
//! call whose final status callback never came is looked up at the carrier.
//! A running campaign with no lead waiting or calling is completed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parley_shared::StoreError;
use parley_shared::aggregate::{CommandError, Context, execute, load, load_any};
use parley_shared::backend::Ports;
use parley_shared::campaignviews::{project_campaign, refresh_campaign, running_query};
use parley_shared::dialqueue::DialJob;
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier};
use parley_shared::domain::campaign::{
    Campaign, CampaignCommand, CampaignSettings, CampaignStatus,
};
use parley_shared::domain::dialplan::{Dial, lead_zone, plan};
use parley_shared::domain::donotcall::{self, DoNotCall};
use parley_shared::domain::lead::{LeadCommand, LeadError};
use parley_shared::domain::tenant::Tenant;
use parley_shared::domain::{CampaignId, LeadId, TenantId};
use parley_shared::leadviews::{
    self, LeadState, due_partition, live_partition, load_lead, project_lead, run_lead, sort_time,
    tenant_live_partition,
};
use parley_shared::outbound::{Dialing, twilio_credentials};
use parley_shared::queue::MAX_DELAY;
use parley_shared::readmodel::{Index, Query, View};
use parley_shared::twilio::rest::TwilioError;
use serde_json::json;

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tick {
    /// Whether this tick ran (another may have held the lock).
    pub ran: bool,
    pub campaigns: usize,
    /// Leads looked at: each one a scheduling decision.
    pub examined: usize,
    /// Dial jobs queued.
    pub queued: usize,
    /// Jobs queued again for attempts whose first job went missing.
    pub requeued: usize,
    /// Attempts closed by the repairs.
    pub repaired: usize,
    pub completed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Command(String),
}

impl<E: std::error::Error + 'static> From<CommandError<E>> for TickError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Store(s) => TickError::Store(s),
            other => TickError::Command(other.to_string()),
        }
    }
}

/// How long one tick holds the lock at most: ticks a minute apart never overlap.
const LEASE: chrono::Duration = chrono::Duration::seconds(55);
/// A reserved attempt with no call this long after is queued again.
const UNQUEUED_AFTER: chrono::Duration = chrono::Duration::minutes(10);
/// A call written but not placed this long after is failed.
const UNPLACED_AFTER: chrono::Duration = chrono::Duration::minutes(30);
/// The most due leads one campaign's turn looks at in a tick.
const MAX_EXAMINED: usize = 5_000;
const PAGE: usize = 500;

/// Runs one tick; a tick that finds the lock held does nothing. `carriers`, when given,
/// is asked about calls whose final status never arrived.
pub async fn tick(ports: &Ports, carriers: Option<&Dialing>) -> Result<Tick, TickError> {
    let now = ports.clock.now();
    let holder = uuid::Uuid::new_v4().to_string();
    if !lock(ports, &holder, now).await? {
        tracing::info!("another scheduler tick is running");
        return Ok(Tick::default());
    }
    let result = run(ports, carriers, now).await;
    if let Err(e) = unlock(ports, &holder).await {
        tracing::warn!(error = %e, "scheduler lock not released; it lapses on its own");
    }
    let tick = result?;
    tracing::info!(
        campaigns = tick.campaigns,
        examined = tick.examined,
        queued = tick.queued,
        requeued = tick.requeued,
        repaired = tick.repaired,
        completed = tick.completed,
        "scheduler tick"
    );
    Ok(tick)
}

const LOCK: (&str, &str) = ("scheduler", "lock");

async fn lock(ports: &Ports, holder: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let current = ports.views.get(LOCK.0, LOCK.1).await?;
    let revision = match &current {
        Some(v) if v.body["until"].as_i64().unwrap_or(0) > now.timestamp_micros() => {
            return Ok(false);
        }
        Some(v) => v.revision,
        None => 0,
    };
    let until = (now + LEASE).timestamp_micros();
    let view = View::new(LOCK.0, LOCK.1, json!({"holder": holder, "until": until}));
    match ports.views.put(&view, Some(revision)).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn unlock(ports: &Ports, holder: &str) -> Result<(), StoreError> {
    if let Some(v) = ports.views.get(LOCK.0, LOCK.1).await?
        && v.body["holder"].as_str() == Some(holder)
    {
        let free = View::new(LOCK.0, LOCK.1, json!({"holder": null, "until": 0}));
        match ports.views.put(&free, Some(v.revision)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A tenant's room in this tick, shared by its campaigns.
struct TenantRoom {
    active: bool,
    /// Calls that may still start (the tenant's cap less those in flight).
    calls: u32,
    per_second: u32,
    /// Jobs queued for the tenant in this tick.
    queued: u32,
}

async fn run(
    ports: &Ports,
    carriers: Option<&Dialing>,
    now: DateTime<Utc>,
) -> Result<Tick, TickError> {
    let mut tick = Tick {
        ran: true,
        ..Tick::default()
    };
    let mut tenants: HashMap<TenantId, TenantRoom> = HashMap::new();
    let mut query = running_query();
    query.limit = PAGE;
    loop {
        let page = ports.views.query(&query).await?;
        for view in &page.views {
            let Ok(id) = CampaignId::parse(&view.key) else {
                continue;
            };
            tick.campaigns += 1;
            // One campaign's trouble must not stop the others.
            let turn = campaign_turn(ports, carriers, now, &id, &mut tenants, &mut tick).await;
            if let Err(e) = turn {
                tracing::error!(campaign_id = %id, error = %e, "campaign not scheduled");
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    Ok(tick)
}

async fn count(ports: &Ports, index: Index, partition: String) -> Result<u32, StoreError> {
    let mut query = Query::new(index, partition);
    query.limit = 1000;
    let mut n = 0u32;
    loop {
        let page = ports.views.query(&query).await?;
        n += page.views.len() as u32;
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(n),
        }
    }
}

async fn tenant_room(ports: &Ports, tenant: &TenantId) -> Result<TenantRoom, TickError> {
    let state = load::<Tenant>(&*ports.events, &tenant.stream(), &tenant.to_string())
        .await?
        .state;
    let live = count(ports, Index::Second, tenant_live_partition(tenant)).await?;
    Ok(TenantRoom {
        active: state.exists && !state.suspended,
        calls: state.limits.max_concurrent_calls.saturating_sub(live),
        per_second: state.limits.calls_per_second.max(1),
        queued: 0,
    })
}

async fn campaign_turn(
    ports: &Ports,
    carriers: Option<&Dialing>,
    now: DateTime<Utc>,
    id: &CampaignId,
    tenants: &mut HashMap<TenantId, TenantRoom>,
    tick: &mut Tick,
) -> Result<(), TickError> {
    let loaded = load_any::<Campaign>(&*ports.events, &id.stream()).await?;
    let tenant = loaded
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    let (Some(tenant), Some(settings)) = (tenant, loaded.state.settings.clone()) else {
        return Ok(());
    };
    if loaded.state.status != CampaignStatus::Running {
        // The running list lagged behind the campaign: bring it up to date.
        refresh_campaign(&*ports.events, &*ports.views, id).await?;
        return Ok(());
    }
    repair(ports, carriers, now, id, &tenant, tick).await?;
    replan(ports, now, id, &tenant, &loaded.state, loaded.version).await?;

    if !tenants.contains_key(&tenant) {
        let room = tenant_room(ports, &tenant).await?;
        tenants.insert(tenant.clone(), room);
    }
    let Some(room) = tenants.get_mut(&tenant) else {
        return Ok(());
    };
    let live = count(ports, Index::First, live_partition(id)).await?;
    if room.active {
        let mut calls = settings
            .max_concurrent_calls
            .saturating_sub(live)
            .min(room.calls);
        let mut query = Query::new(Index::First, due_partition(id));
        query.sort_between = Some((String::new(), format!("{}#~", sort_time(now))));
        query.limit = PAGE;
        let mut examined = 0;
        'pages: while calls > 0 && room.queued < room.per_second * 60 && examined < MAX_EXAMINED {
            let page = ports.views.query(&query).await?;
            for view in &page.views {
                if calls == 0 || room.queued >= room.per_second * 60 {
                    break 'pages;
                }
                examined += 1;
                tick.examined += 1;
                let Ok(lead_id) = LeadId::parse(&view.key) else {
                    continue;
                };
                let turn = Turn {
                    ports,
                    now,
                    campaign_id: id,
                    campaign_version: loaded.version,
                    tenant: &tenant,
                    settings: &settings,
                };
                if turn.consider(&lead_id, room).await? {
                    calls -= 1;
                    room.calls = room.calls.saturating_sub(1);
                    tick.queued += 1;
                }
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
    }
    // Done when no lead waits for a call (now or later) and none is being called.
    let mut waiting = Query::new(Index::First, due_partition(id));
    waiting.limit = 1;
    let still_live = count(ports, Index::First, live_partition(id)).await?;
    if still_live == 0 && ports.views.query(&waiting).await?.views.is_empty() {
        let ctx = Context {
            tenant_id: tenant.to_string(),
            correlation_id: id.to_string(),
            idempotency_key: None,
        };
        let done = execute::<Campaign>(
            &*ports.events,
            &*ports.clock,
            &id.stream(),
            &ctx,
            CampaignCommand::Complete,
        )
        .await?;
        project_campaign(&*ports.views, id, &tenant, &done.state, done.version).await?;
        tracing::info!(tenant_id = %tenant, campaign_id = %id, "campaign completed: every lead resolved");
        tick.completed += 1;
    }
    Ok(())
}

/// One campaign's turn in a tick.
struct Turn<'a> {
    ports: &'a Ports,
    now: DateTime<Utc>,
    campaign_id: &'a CampaignId,
    campaign_version: u64,
    tenant: &'a TenantId,
    settings: &'a CampaignSettings,
}

impl Turn<'_> {
    /// Decides about one lead the due list offers; `true` when a dial job was queued.
    async fn consider(&self, lead_id: &LeadId, room: &mut TenantRoom) -> Result<bool, TickError> {
        let ports = self.ports;
        let Some(loaded) = load_lead(&*ports.events, lead_id).await? else {
            return Ok(false);
        };
        if loaded.tenant != *self.tenant {
            return Ok(false);
        }
        let lead = &loaded.lead;
        let due = match plan(lead, self.settings, self.now) {
            Dial::Due { attempt, at }
                if at <= self.now
                    && self
                        .settings
                        .calling_window
                        .contains(lead_zone(lead, self.settings), self.now) =>
            {
                Some(attempt)
            }
            _ => None,
        };
        let Some(attempt) = due else {
            // The list was behind the lead (or the settings moved its window): re-plan.
            let state = LeadState {
                id: lead_id,
                tenant: self.tenant,
                campaign_id: self.campaign_id,
                lead,
                lead_version: loaded.version,
                settings: self.settings,
                campaign_version: self.campaign_version,
            };
            project_lead(&*ports.views, &state, self.now).await?;
            return Ok(false);
        };
        if let Some(phone) = &lead.phone {
            let listed = load::<DoNotCall>(
                &*ports.events,
                &donotcall::stream(self.tenant, phone),
                &self.tenant.to_string(),
            )
            .await?
            .state;
            if listed.blocked {
                let mark = LeadCommand::MarkDoNotCall {
                    reason: "on the tenant's do-not-call list".into(),
                };
                self.lead(lead_id, mark, None).await?;
                return Ok(false);
            }
        }
        let job = DialJob::new(
            self.tenant.clone(),
            self.campaign_id.clone(),
            lead_id.clone(),
            attempt,
        );
        let reserve = LeadCommand::StartAttempt {
            attempt,
            call_id: job.call_id.clone(),
        };
        // No idempotency key: a withdrawn attempt's number (and call id) is reserved
        // again later, and the lead's own rule already makes a repeat harmless.
        if !self.lead(lead_id, reserve, None).await? {
            return Ok(false);
        }
        // Spread over the minute at the account's rate; the dialer holds the exact line.
        let delay = Duration::from_secs(u64::from(room.queued / room.per_second)).min(MAX_DELAY);
        room.queued += 1;
        if let Err(e) = ports.dial_queue.send(&job.to_body(), delay).await {
            // The attempt stays reserved; the repair queues it again.
            tracing::error!(tenant_id = %self.tenant, lead_id = %lead_id, error = %e, "dial job not queued");
        }
        Ok(true)
    }

    /// Runs a lead command; `false` if the lead's rules refused it (a racing change).
    async fn lead(
        &self,
        lead_id: &LeadId,
        command: LeadCommand,
        key: Option<String>,
    ) -> Result<bool, TickError> {
        match run_lead(self.ports, self.tenant, lead_id, command, key).await {
            Ok(_) => Ok(true),
            Err(CommandError::Rejected(e)) => {
                tracing::info!(lead_id = %lead_id, error = %e, "lead changed under the scheduler");
                leadviews::refresh_lead(&*self.ports.events, &*self.ports.views, lead_id, self.now)
                    .await?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The most leads re-planned in one tick after a settings change.
const REPLAN_PER_TICK: usize = 2_000;
const REPLANS: &str = "campaign_replans";

/// After the campaign's settings changed (its window, zone or retry policy), plans its
/// leads again, a chunk per tick, from the lead list: waiting leads move to the new
/// window, and leads the old policy had given up on may be due again.
async fn replan(
    ports: &Ports,
    now: DateTime<Utc>,
    id: &CampaignId,
    tenant: &TenantId,
    campaign: &Campaign,
    campaign_version: u64,
) -> Result<(), TickError> {
    let target = campaign.settings_revision;
    let Some(settings) = campaign.settings.as_ref() else {
        return Ok(());
    };
    let key = id.to_string();
    let marker = ports.views.get(REPLANS, &key).await?;
    let done = marker
        .as_ref()
        .and_then(|m| m.body["done"].as_u64())
        .unwrap_or(1);
    if u64::from(target) <= done {
        return Ok(());
    }
    // A newer change restarts the walk from the first lead.
    let cursor = marker
        .as_ref()
        .filter(|m| m.body["target"].as_u64() == Some(u64::from(target)))
        .and_then(|m| m.body["cursor"].as_str().map(str::to_owned));
    let mut query = Query::new(Index::First, leadviews::leads_partition(id));
    query.limit = PAGE;
    query.cursor = cursor;
    let mut planned = 0;
    let next = loop {
        let page = ports.views.query(&query).await?;
        for view in &page.views {
            let Ok(lead_id) = LeadId::parse(&view.key) else {
                continue;
            };
            let Some(loaded) = load_lead(&*ports.events, &lead_id).await? else {
                continue;
            };
            let state = LeadState {
                id: &lead_id,
                tenant,
                campaign_id: id,
                lead: &loaded.lead,
                lead_version: loaded.version,
                settings,
                campaign_version,
            };
            project_lead(&*ports.views, &state, now).await?;
            planned += 1;
        }
        match page.next {
            Some(next) if planned < REPLAN_PER_TICK => query.cursor = Some(next),
            other => break other,
        }
    };
    let body = match &next {
        Some(cursor) => json!({"done": done, "target": target, "cursor": cursor}),
        None => json!({"done": target}),
    };
    let expected = marker.as_ref().map_or(0, |m| m.revision);
    match ports
        .views
        .put(&View::new(REPLANS, key, body), Some(expected))
        .await
    {
        // Another writer moved it: the next tick carries on from there.
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A call in progress this long is looked up at the carrier.
const ASK_CARRIER_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// The final status and length of Twilio call `sid`, if Twilio says it ended. Exotel
/// calls are not looked up yet.
async fn carrier_status(
    ports: &Ports,
    carriers: &Dialing,
    tenant: &TenantId,
    carrier: Option<Carrier>,
    sid: &str,
) -> Option<(CallStatus, Option<u32>)> {
    // Calls on the simulated carrier are asked of it, in Twilio's words.
    let client = carriers.twilio_client(carrier.unwrap_or(Carrier::Twilio))?;
    let creds = match twilio_credentials(&*ports.secrets, tenant).await {
        Ok(Some(creds)) => creds,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(tenant_id = %tenant, error = %e, "carrier credentials not read");
            return None;
        }
    };
    match client.fetch_call(&creds, sid).await {
        Ok(call) => {
            let status = parley_shared::twilio::call_status(&call.status)?;
            let duration = call.duration.as_deref().and_then(|d| d.parse().ok());
            status.is_final().then_some((status, duration))
        }
        // Twilio keeps no such call: it never really began.
        Err(TwilioError::Api { status: 404, .. }) => Some((CallStatus::Failed, None)),
        Err(e) => {
            tracing::warn!(tenant_id = %tenant, error = %e, "call status not fetched");
            None
        }
    }
}

/// Mends attempts in flight for a while: see the module's comment.
async fn repair(
    ports: &Ports,
    carriers: Option<&Dialing>,
    now: DateTime<Utc>,
    campaign_id: &CampaignId,
    tenant: &TenantId,
    tick: &mut Tick,
) -> Result<(), TickError> {
    let mut query = Query::new(Index::First, live_partition(campaign_id));
    query.sort_between = Some((
        String::new(),
        format!("{}#~", sort_time(now - UNQUEUED_AFTER)),
    ));
    query.limit = PAGE;
    loop {
        let page = ports.views.query(&query).await?;
        for view in &page.views {
            let Ok(lead_id) = LeadId::parse(&view.key) else {
                continue;
            };
            let mended =
                repair_one(ports, carriers, now, campaign_id, tenant, &lead_id, tick).await;
            if let Err(e) = mended {
                tracing::warn!(lead_id = %lead_id, error = %e, "attempt not repaired");
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(()),
        }
    }
}

async fn repair_one(
    ports: &Ports,
    carriers: Option<&Dialing>,
    now: DateTime<Utc>,
    campaign_id: &CampaignId,
    tenant: &TenantId,
    lead_id: &LeadId,
    tick: &mut Tick,
) -> Result<(), TickError> {
    let Some(loaded) = load_lead(&*ports.events, lead_id).await? else {
        return Ok(());
    };
    let Some(flight) = loaded.lead.attempt_in_flight().cloned() else {
        leadviews::refresh_lead(&*ports.events, &*ports.views, lead_id, now).await?;
        return Ok(());
    };
    let age = now - flight.started_at.unwrap_or(now);
    let call = load_any::<Call>(&*ports.events, &flight.call_id.stream())
        .await?
        .state;
    if !call.exists {
        // Queued again every ten minutes until a dialer takes it; the job is idempotent.
        if age.num_minutes() % 10 == 0 {
            let job = DialJob::new(
                tenant.clone(),
                campaign_id.clone(),
                lead_id.clone(),
                flight.number,
            );
            ports
                .dial_queue
                .send(&job.to_body(), Duration::ZERO)
                .await?;
            tick.requeued += 1;
        }
        return Ok(());
    }
    let status = call.status.unwrap_or(CallStatus::Requested);
    let ended = if status.is_final() {
        // The call ended but its lead never heard: a webhook stopped half-way.
        Some((
            status,
            call.duration_secs,
            call.answered_by.is_some_and(|a| a.is_machine()),
        ))
    } else if call.carrier_call_id.is_none() && age >= UNPLACED_AFTER {
        let ctx = Context {
            tenant_id: tenant.to_string(),
            correlation_id: flight.call_id.to_string(),
            idempotency_key: Some(format!("unplaced:{}", flight.call_id)),
        };
        let reject = CallCommand::RecordCarrierRejection {
            code: None,
            message: "not placed: the dialer stopped before the carrier answered".into(),
        };
        execute::<Call>(
            &*ports.events,
            &*ports.clock,
            &flight.call_id.stream(),
            &ctx,
            reject,
        )
        .await?;
        parley_shared::views::refresh_call(&*ports.events, &*ports.views, &flight.call_id).await?;
        Some((CallStatus::Failed, None, false))
    } else if let (Some(carriers), Some(sid)) = (carriers, call.carrier_call_id.as_deref())
        && age >= ASK_CARRIER_AFTER
        && age.num_minutes() % 30 == 0
    {
        // Still going after an hour, as far as we heard: ask the carrier (every half
        // hour), in case its final status callback was lost.
        match carrier_status(ports, carriers, tenant, call.carrier, sid).await {
            Some((status, duration_secs)) => {
                let ctx = Context {
                    tenant_id: tenant.to_string(),
                    correlation_id: flight.call_id.to_string(),
                    idempotency_key: None,
                };
                let record = CallCommand::RecordStatus {
                    status,
                    duration_secs,
                    carrier_time: None,
                };
                let done = execute::<Call>(
                    &*ports.events,
                    &*ports.clock,
                    &flight.call_id.stream(),
                    &ctx,
                    record,
                )
                .await?;
                parley_shared::views::refresh_call(&*ports.events, &*ports.views, &flight.call_id)
                    .await?;
                let machine = done.state.answered_by.is_some_and(|a| a.is_machine());
                Some((status, duration_secs, machine))
            }
            None => None,
        }
    } else {
        None
    };
    if let Some((status, duration_secs, machine)) = ended {
        let end = LeadCommand::EndAttempt {
            call_id: flight.call_id.clone(),
            status,
            duration_secs,
            machine,
        };
        match run_lead(ports, tenant, lead_id, end, None).await {
            Ok(_) | Err(CommandError::Rejected(LeadError::NotFinal(_))) => tick.repaired += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
