//! A campaign as the API lists it, and the list of running campaigns the scheduler
//! walks every minute.
//!
//! - `campaigns/<id>`: the settings and status; index 1 `campaigns#<tenant>` (the
//!   tenant's list), index 2 `campaigns` sorted by `<tenant>#<id>` (the admin's list).
//! - `running_campaigns/<id>`: index 1 `running_campaigns` while the campaign runs, no
//!   index entry otherwise.

use serde_json::{Value, json};

use crate::aggregate::load_any;
use crate::domain::campaign::{Campaign, CampaignStatus};
use crate::domain::{CampaignId, TenantId};
use crate::error::StoreResult;
use crate::eventstore::EventStore;
use crate::readmodel::{Index, IndexEntry, Query, View, ViewStore, project};

pub const CAMPAIGNS: &str = "campaigns";
pub const RUNNING: &str = "running_campaigns";

/// The campaign as the API shows it.
pub fn campaign_json(id: &CampaignId, tenant: &TenantId, campaign: &Campaign) -> Value {
    let mut body = campaign
        .settings
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({}));
    body["id"] = json!(id);
    body["tenant_id"] = json!(tenant);
    body["status"] = json!(campaign.status);
    body["lead_count"] = json!(campaign.lead_count);
    body
}

/// Writes both views of the campaign at `version` of its stream.
pub async fn project_campaign(
    views: &dyn ViewStore,
    id: &CampaignId,
    tenant: &TenantId,
    campaign: &Campaign,
    version: u64,
) -> StoreResult<()> {
    let key = id.to_string();
    let listed = View::new(CAMPAIGNS, key.clone(), campaign_json(id, tenant, campaign))
        .with_index1(IndexEntry::new(
            format!("{CAMPAIGNS}#{tenant}"),
            key.clone(),
        ))
        .with_index2(IndexEntry::new(CAMPAIGNS, format!("{tenant}#{key}")));
    project(views, listed, version).await?;
    let mut running = View::new(
        RUNNING,
        key.clone(),
        json!({"campaign_id": id, "tenant_id": tenant, "status": campaign.status}),
    );
    if campaign.status == CampaignStatus::Running {
        running = running.with_index1(IndexEntry::new(RUNNING, key));
    }
    project(views, running, version).await
}

/// Reloads the campaign and writes its views.
pub async fn refresh_campaign(
    events: &dyn EventStore,
    views: &dyn ViewStore,
    id: &CampaignId,
) -> StoreResult<()> {
    let loaded = load_any::<Campaign>(events, &id.stream()).await?;
    let tenant = loaded
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    match tenant {
        Some(tenant) if loaded.state.exists => {
            project_campaign(views, id, &tenant, &loaded.state, loaded.version).await
        }
        _ => Ok(()),
    }
}

/// The query over running campaigns, in id order.
pub fn running_query() -> Query {
    Query::new(Index::First, RUNNING)
}
