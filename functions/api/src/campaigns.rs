//! Campaigns: their settings, their life (start, pause, resume) and their leads,
//! imported from CSV or JSON with per-row errors while the good rows go in.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use parley_shared::aggregate::{CommandError, Context, execute, load_any};
use parley_shared::campaignviews::{campaign_json, project_campaign};
use parley_shared::domain::campaign::{Campaign, CampaignCommand, CampaignError, CampaignSettings};
use parley_shared::domain::lead::{Lead, LeadCommand, LeadError};
use parley_shared::domain::{CampaignId, LeadId, PhoneNumber, TenantId};
use parley_shared::leadimport::{self, ImportError, ImportedLead, Limits};
use parley_shared::leadviews::{LeadState, project_lead};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::body::{JsonBody, media_type, parse, unsupported};
use crate::error::{ApiError, RuleError};
use crate::tenants::active;
use crate::{AppState, Page, PageParams, list_owned, run};

/// The most the leads route reads of a body: above the importer's own limit, so that
/// the importer answers with its limit named.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

impl RuleError for CampaignError {
    fn to_api(&self) -> ApiError {
        match self {
            CampaignError::Invalid(e) => e.clone().into(),
            CampaignError::NotFound => ApiError::not_found("campaign"),
            CampaignError::NoLeads => {
                ApiError::new(StatusCode::CONFLICT, "no_leads", self.to_string())
            }
            other => ApiError::conflict(other.to_string()),
        }
    }
}

impl RuleError for LeadError {}

fn repr(id: &CampaignId, tenant: &TenantId, campaign: &Campaign) -> Value {
    campaign_json(id, tenant, campaign)
}

/// A campaign the caller may see, with its tenant.
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(CampaignId, TenantId, Campaign), ApiError> {
    let id = CampaignId::parse(id).map_err(|_| ApiError::not_found("campaign"))?;
    let loaded = load_any::<Campaign>(&*state.ports.events, &id.stream()).await?;
    let tenant = loaded
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    match tenant {
        Some(tenant) if caller.can_read(&tenant) && loaded.state.exists => {
            Ok((id, tenant, loaded.state))
        }
        _ => Err(ApiError::not_found("campaign")),
    }
}

/// The settings' agent must be one of the tenant's own.
async fn check_agent(
    state: &AppState,
    caller: &Caller,
    settings: &CampaignSettings,
) -> Result<(), ApiError> {
    crate::agents::visible(state, caller, &settings.agent_id.to_string())
        .await
        .map(|_| ())
        .map_err(|_| ApiError::invalid("agent_id", "no such agent"))
}

async fn command(
    state: &AppState,
    id: &CampaignId,
    tenant: &TenantId,
    command: CampaignCommand,
) -> Result<Json<Value>, ApiError> {
    let done = run::<Campaign>(state, &id.stream(), tenant, command).await?;
    project_campaign(&*state.ports.views, id, tenant, &done.state, done.version).await?;
    Ok(Json(repr(id, tenant, &done.state)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(settings): JsonBody<CampaignSettings>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    check_agent(&state, &caller, &settings).await?;
    let id = CampaignId::new();
    let Json(body) = command(&state, &id, &tenant, CampaignCommand::Create { settings }).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    list_owned(&state, &caller, "campaigns", page).await
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant, campaign) = visible(&state, &caller, &id).await?;
    Ok(Json(repr(&id, &tenant, &campaign)))
}

/// A JSON merge patch of the campaign's settings.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    let (id, _, campaign) = visible(&state, &caller, &id).await?;
    let current = campaign
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let mut settings =
        serde_json::to_value(current).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    crate::agents::merge(&mut settings, &patch);
    let settings: CampaignSettings = parse(settings.to_string().as_bytes())?;
    check_agent(&state, &caller, &settings).await?;
    command(&state, &id, &tenant, CampaignCommand::Change { settings }).await
}

async fn transition(
    state: AppState,
    caller: Caller,
    id: String,
    to: CampaignCommand,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    let (id, _, _) = visible(&state, &caller, &id).await?;
    command(&state, &id, &tenant, to).await
}

pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, id, CampaignCommand::Start).await
}

pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, id, CampaignCommand::Pause).await
}

pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    transition(state, caller, id, CampaignCommand::Resume).await
}

#[derive(Debug, Deserialize)]
pub struct ImportParams {
    /// ISO country for numbers written without `+` and a country code (`US`, `GB`).
    default_region: Option<String>,
}

/// `POST /v1/campaigns/{id}/leads`: CSV (`text/csv`) or JSON. Good rows are imported;
/// bad rows come back with their row, column and reason; numbers already in the
/// campaign (in this upload or an earlier one) are reported, not imported twice.
pub async fn import_leads(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let (campaign_id, _, campaign) = visible(&state, &caller, &id).await?;
    if campaign.status == parley_shared::domain::campaign::CampaignStatus::Completed {
        return Err(ApiError::conflict("a completed campaign takes no leads"));
    }
    let content_type = media_type(&headers);
    let limits = Limits::default();
    let region = params.default_region.as_deref();
    if let Some(code) = region {
        // Checked once here: a bad region would otherwise fail every row.
        let known = PhoneNumber::normalise("+14155550132", Some(code)).is_ok();
        if !known {
            return Err(ApiError::invalid(
                "default_region",
                "must be a country code such as US or GB",
            ));
        }
    }
    let parsed = match content_type.as_str() {
        "application/json" => leadimport::parse_json(&body, region, &limits),
        "text/csv" | "" => leadimport::parse_csv(&body, region, &limits),
        _ => return Err(unsupported("text/csv or application/json")),
    }
    .map_err(import_error)?;

    let mut duplicates: Vec<Value> = parsed.duplicates.iter().map(|d| json!(d)).collect();
    let created = concurrently(parsed.leads, |lead| {
        create_lead(state.clone(), tenant.clone(), campaign_id.clone(), lead)
    })
    .await?;
    let mut new_leads = Vec::new();
    for outcome in created {
        match outcome {
            Created::New(id, lead, version) => new_leads.push((id, lead, version)),
            Created::Known { row, phone } => {
                // Already in the campaign from an earlier upload.
                duplicates.push(json!({"row": row, "phone": phone, "first_row": null}));
            }
        }
    }
    duplicates.sort_by_key(|d| d["row"].as_u64());
    let imported = new_leads.len() as u32;
    let campaign = if imported > 0 {
        let done = run::<Campaign>(
            &state,
            &campaign_id.stream(),
            &tenant,
            CampaignCommand::AddLeads { count: imported },
        )
        .await?;
        project_campaign(
            &*state.ports.views,
            &campaign_id,
            &tenant,
            &done.state,
            done.version,
        )
        .await?;
        Some((done.state, done.version))
    } else {
        None
    };
    // The campaign's lead list and dial plan, once the leads are all on record.
    if let Some((campaign, campaign_version)) = &campaign
        && let Some(settings) = campaign.settings.as_ref()
    {
        let now = state.ports.clock.now();
        let (settings, campaign_version) = (Arc::new(settings.clone()), *campaign_version);
        concurrently(new_leads, |(lead_id, lead, lead_version)| {
            let (views, tenant, campaign_id, settings) = (
                state.ports.views.clone(),
                tenant.clone(),
                campaign_id.clone(),
                settings.clone(),
            );
            async move {
                let lead_state = LeadState {
                    id: &lead_id,
                    tenant: &tenant,
                    campaign_id: &campaign_id,
                    lead: &lead,
                    lead_version,
                    settings: &settings,
                    campaign_version,
                };
                project_lead(&*views, &lead_state, now).await?;
                Ok(())
            }
        })
        .await?;
    }
    tracing::info!(tenant_id = %tenant, campaign_id = %campaign_id, imported, "leads imported");
    Ok(Json(json!({
        "imported": imported,
        "duplicates": duplicates,
        "errors": parsed.errors,
    })))
}

/// How many leads are written at once: concurrent writes share the store's commits
/// (one fsync for many on the embedded store; parallel requests on DynamoDB).
const IMPORT_CONCURRENCY: usize = 32;

/// Runs `f` on every item, `IMPORT_CONCURRENCY` at a time; the results in no
/// particular order, or the first error (the tasks still running are cancelled between
/// their commands, each of which is atomic).
async fn concurrently<I, T, Fut>(
    items: impl IntoIterator<Item = I>,
    f: impl Fn(I) -> Fut,
) -> Result<Vec<T>, ApiError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    let mut items = items.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    let mut done = Vec::new();
    loop {
        while tasks.len() < IMPORT_CONCURRENCY {
            match items.next() {
                Some(item) => {
                    tasks.spawn(f(item));
                }
                None => break,
            }
        }
        match tasks.join_next().await {
            Some(Ok(result)) => done.push(result?),
            Some(Err(e)) => {
                tracing::error!(error = %e, "an import task failed");
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                ));
            }
            None => return Ok(done),
        }
    }
}

/// What writing one imported row came to.
enum Created {
    New(LeadId, Lead, u64),
    /// The number is already a lead of the campaign.
    Known {
        row: usize,
        phone: PhoneNumber,
    },
}

async fn create_lead(
    state: AppState,
    tenant: TenantId,
    campaign_id: CampaignId,
    mut lead: ImportedLead,
) -> Result<Created, ApiError> {
    let lead_id = LeadId::for_campaign_phone(&campaign_id, lead.phone.as_str());
    // The lead's email travels with its other fields (greetings, confirmations).
    if let Some(email) = lead.email.take() {
        lead.fields.insert("email".into(), email);
    }
    let create = LeadCommand::Create {
        campaign_id: Some(campaign_id.clone()),
        phone: lead.phone.clone(),
        name: lead.name,
        time_zone: lead.time_zone,
        fields: lead.fields,
    };
    let ctx = Context {
        tenant_id: tenant.to_string(),
        correlation_id: campaign_id.to_string(),
        idempotency_key: None,
    };
    let mut done = match execute::<Lead>(
        &*state.ports.events,
        &*state.ports.clock,
        &lead_id.stream(),
        &ctx,
        create,
    )
    .await
    {
        Ok(done) => done,
        Err(CommandError::Rejected(LeadError::AlreadyExists)) => {
            return Ok(Created::Known {
                row: lead.row,
                phone: lead.phone,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if lead.do_not_call {
        let dnc = LeadCommand::MarkDoNotCall {
            reason: "marked in the import".into(),
        };
        done = run::<Lead>(&state, &lead_id.stream(), &tenant, dnc).await?;
    }
    Ok(Created::New(lead_id, done.state, done.version))
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::TooLarge { .. } | ImportError::TooManyRows { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        other => ApiError::invalid("body", other.to_string()),
    }
}
