//! Tenants: created and managed by the admin; a tenant reads itself, issues its own API
//! keys and stores its carrier credentials (write-only: never returned, logged or put
//! in an event).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use parley_shared::aggregate::{load, load_any};
use parley_shared::domain::access::{self, ApiKey, ApiKeyCommand};
use parley_shared::domain::agent::is_vendor_key_name;
use parley_shared::domain::call::Carrier;
use parley_shared::domain::tenant::{DialingLimits, Tenant, TenantCommand};
use parley_shared::domain::{TenantId, TimeZone};
use parley_shared::exotel;
use parley_shared::qualify::QualificationSettings;
use parley_shared::readmodel::{Index, IndexEntry, Query as ViewQuery, View, project};
use parley_shared::secrets::{SecretString, vendor_key_name};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::{AppState, Page, PageParams, run};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    name: String,
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantChange {
    name: Option<String>,
    time_zone: Option<String>,
    suspended: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[serde(default = "default_label")]
    label: String,
}

fn default_label() -> String {
    "default".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioCredentials {
    account_sid: String,
    auth_token: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExotelCredentials {
    account_sid: String,
    api_key: SecretString,
    api_token: SecretString,
    /// Exotel's API host for the account's region, such as `api.exotel.com`.
    subdomain: String,
    /// The Exotel call flow (app) whose Voicebot applet points at Parley's stream
    /// endpoint: the flow outbound calls run once the callee answers.
    flow_app_id: Option<String>,
}

fn zone(value: &str) -> Result<TimeZone, ApiError> {
    Ok(TimeZone::parse(value)?)
}

fn tenant_id(value: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(value).map_err(|_| ApiError::not_found("tenant"))
}

fn repr(id: &TenantId, tenant: &Tenant) -> Value {
    json!({
        "id": id,
        "name": tenant.name,
        "time_zone": tenant.time_zone,
        "suspended": tenant.suspended,
        "carriers": {
            "twilio": tenant.carriers.contains(&Carrier::Twilio),
            "exotel": tenant.carriers.contains(&Carrier::Exotel),
        },
        "dialing_limits": tenant.limits,
        "qualification": tenant.qualification,
        "vendor_keys": tenant.vendor_keys,
    })
}

async fn save_view(
    state: &AppState,
    id: &TenantId,
    tenant: &Tenant,
    version: u64,
) -> Result<(), ApiError> {
    let view = View::new("tenants", id.to_string(), repr(id, tenant))
        .with_index1(IndexEntry::new("tenants", id.to_string()));
    Ok(project(&*state.ports.views, view, version).await?)
}

/// Issues a key for `tenant`: the key is returned once and only its hash is kept.
async fn issue_key(state: &AppState, tenant: &TenantId, label: String) -> Result<String, ApiError> {
    let key = access::new_key();
    run::<ApiKey>(
        state,
        &access::stream(&key),
        tenant,
        ApiKeyCommand::Issue {
            tenant_id: tenant.clone(),
            label,
        },
    )
    .await?;
    Ok(key)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if caller != Caller::Admin {
        return Err(ApiError::forbidden("only the admin creates tenants"));
    }
    let id = TenantId::new();
    let command = TenantCommand::Create {
        name: body.name,
        time_zone: zone(&body.time_zone)?,
    };
    let done = run::<Tenant>(&state, &id.stream(), &id, command).await?;
    save_view(&state, &id, &done.state, done.version).await?;
    let api_key = issue_key(&state, &id, "default".into()).await?;
    tracing::info!(tenant_id = %id, "tenant created");
    let mut body = repr(&id, &done.state);
    body["api_key"] = json!(api_key);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    if caller != Caller::Admin {
        return Err(ApiError::forbidden("only the admin lists tenants"));
    }
    let query = page.query(ViewQuery::new(Index::First, "tenants"))?;
    Ok(Json(Page::from(state.ports.views.query(&query).await?)))
}

/// A tenant as its stream tells it, if the caller may see it.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(TenantId, Tenant, u64), ApiError> {
    let id = tenant_id(id)?;
    if !caller.can_read(&id) {
        return Err(ApiError::not_found("tenant"));
    }
    let loaded = load_any::<Tenant>(&*state.ports.events, &id.stream()).await?;
    if !loaded.state.exists {
        return Err(ApiError::not_found("tenant"));
    }
    Ok((id, loaded.state, loaded.version))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant, _) = visible(&state, &caller, &id).await?;
    Ok(Json(repr(&id, &tenant)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TenantChange>,
) -> Result<Json<Value>, ApiError> {
    let (id, mut tenant, mut version) = visible(&state, &caller, &id).await?;
    if caller != Caller::Admin {
        return Err(ApiError::forbidden("only the admin changes tenants"));
    }
    let mut commands = Vec::new();
    if let Some(name) = body.name {
        commands.push(TenantCommand::Rename { name });
    }
    if let Some(time_zone) = body.time_zone {
        commands.push(TenantCommand::ChangeTimeZone {
            time_zone: zone(&time_zone)?,
        });
    }
    match body.suspended {
        Some(true) => commands.push(TenantCommand::Suspend {
            reason: "suspended by the admin".into(),
        }),
        Some(false) => commands.push(TenantCommand::Reactivate),
        None => {}
    }
    for command in commands {
        let done = run::<Tenant>(&state, &id.stream(), &id, command).await?;
        (tenant, version) = (done.state, done.version);
    }
    save_view(&state, &id, &tenant, version).await?;
    Ok(Json(repr(&id, &tenant)))
}

pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let key = issue_key(&state, &id, body.label).await?;
    Ok((StatusCode::CREATED, Json(json!({ "api_key": key }))))
}

/// The secret store names of a tenant's carrier credentials.
pub use parley_shared::outbound::secret_name;

fn sid(field: &'static str, value: &str, prefix: &str) -> Result<String, ApiError> {
    let value = value.trim();
    let ok = value.len() <= 64
        && !value.is_empty()
        && value.starts_with(prefix)
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(ApiError::invalid(
            field,
            format!(
                "must be a carrier account id{}",
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(" starting with {prefix}")
                }
            ),
        ));
    }
    Ok(value.to_owned())
}

pub async fn set_twilio(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TwilioCredentials>,
) -> Result<StatusCode, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let account_sid = sid("account_sid", &body.account_sid, "AC")?;
    let secrets = &state.ports.secrets;
    secrets
        .put(
            &secret_name(&id, "twilio-account-sid"),
            &SecretString::new(account_sid),
        )
        .await?;
    secrets
        .put(&secret_name(&id, "twilio-auth-token"), &body.auth_token)
        .await?;
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::RecordCredentials {
            carrier: Carrier::Twilio,
        },
    )
    .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/tenants/{id}/dialing-limits`: caps over all of the tenant's campaigns
/// together. A field left out takes its default, as a PUT replaces the whole.
pub async fn set_dialing_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(limits): JsonBody<DialingLimits>,
) -> Result<Json<DialingLimits>, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::SetDialingLimits { limits },
    )
    .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(Json(done.state.limits))
}

/// `PUT /v1/tenants/{id}/qualification`: how the tenant's leads are scored (BANT
/// weights) and where hot and warm begin. A field left out takes its default.
pub async fn set_qualification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<QualificationSettings>, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    known_qualification_fields(&body)?;
    let settings: QualificationSettings = crate::body::from_value(body)?;
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::SetQualification { settings },
    )
    .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(Json(done.state.qualification))
}

/// Stored settings read leniently (a newer version's fields are ignored), so a
/// misspelt field here would silently keep its default: it is refused instead.
fn known_qualification_fields(body: &Value) -> Result<(), ApiError> {
    // The fields are those the settings serialise: the list cannot drift from them.
    let known = serde_json::to_value(QualificationSettings::default()).unwrap_or_default();
    known_fields(body, &known, "")
}

/// The first field of `body`, at any depth, that `known` lacks.
fn known_fields(body: &Value, known: &Value, path: &str) -> Result<(), ApiError> {
    let (Some(fields), Some(known)) = (body.as_object(), known.as_object()) else {
        return Ok(());
    };
    for (name, value) in fields {
        let field = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match known.get(name) {
            Some(inner) => known_fields(value, inner, &field)?,
            None => return Err(ApiError::invalid(field, "unknown field")),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorKey {
    api_key: SecretString,
}

fn key_name(name: &str) -> Result<&str, ApiError> {
    if is_vendor_key_name(name) {
        Ok(name)
    } else {
        Err(ApiError::invalid(
            "name",
            "must be 1 to 64 of a-z, 0-9 and -, starting with a letter or digit",
        ))
    }
}

/// Stores a vendor key of the tenant's under `name`, for its agents to choose; the
/// key goes to the secret store only, the name to the tenant's history.
pub async fn set_vendor_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<VendorKey>,
) -> Result<StatusCode, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let name = key_name(&name)?;
    let key = body.api_key.expose();
    if key.trim().is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "api_key",
            "must be 1 to 4096 printable characters",
        ));
    }
    state
        .ports
        .secrets
        .put(&vendor_key_name(&id.to_string(), name), &body.api_key)
        .await?;
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::RecordVendorKey { name: name.into() },
    )
    .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a vendor key, unless one of the tenant's agents still chooses it: a call
/// of that agent would otherwise fail at its first word.
pub async fn remove_vendor_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let name = key_name(&name)?;
    if let Some(agent) = agent_choosing(&state, &id, name).await? {
        return Err(ApiError::conflict(format!(
            "agent {agent} chooses the vendor key {name:?}; change the agent first"
        )));
    }
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::RemoveVendorKey { name: name.into() },
    )
    .await?;
    state
        .ports
        .secrets
        .delete(&vendor_key_name(&id.to_string(), name))
        .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The id of one of the tenant's agents whose settings choose vendor key `name`.
async fn agent_choosing(
    state: &AppState,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let mut query = crate::owned_by("agents", tenant);
    loop {
        let page = state.ports.views.query(&query).await?;
        for view in &page.views {
            let vendors = &view.body["vendors"];
            let chooses = ["speech_to_text", "language_model", "voice"]
                .iter()
                .any(|kind| vendors[kind]["key"].as_str() == Some(name));
            if chooses {
                return Ok(Some(view.key.clone()));
            }
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(None),
        }
    }
}

/// Stores the tenant's Exotel credentials and answers with the webhook URLs to configure
/// in Exotel (the status callback and the Voicebot applet's stream endpoint). Exotel
/// signs nothing, so the URLs carry the tenant's webhook secret: this answer is the one
/// place it is ever shown.
pub async fn set_exotel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExotelCredentials>,
) -> Result<Json<Value>, ApiError> {
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let account_sid = sid("account_sid", &body.account_sid, "")?;
    let subdomain = body.subdomain.trim().to_owned();
    if subdomain.is_empty()
        || subdomain.len() > 100
        || !subdomain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(ApiError::invalid(
            "subdomain",
            "must be a host name such as api.exotel.com",
        ));
    }
    let secrets = &state.ports.secrets;
    secrets
        .put(
            &secret_name(&id, "exotel-account-sid"),
            &SecretString::new(account_sid),
        )
        .await?;
    secrets
        .put(
            &secret_name(&id, "exotel-subdomain"),
            &SecretString::new(subdomain),
        )
        .await?;
    secrets
        .put(&secret_name(&id, "exotel-api-key"), &body.api_key)
        .await?;
    secrets
        .put(&secret_name(&id, "exotel-api-token"), &body.api_token)
        .await?;
    if let Some(app) = body.flow_app_id {
        let app = app.trim().to_owned();
        if app.is_empty() || app.len() > 32 || !app.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "flow_app_id",
                "must be the numeric id of an Exotel flow",
            ));
        }
        secrets
            .put(
                &secret_name(&id, "exotel-flow-app-id"),
                &SecretString::new(app),
            )
            .await?;
    }
    let webhook_secret = exotel_webhook_secret(&state, &id).await?;
    let done = run::<Tenant>(
        &state,
        &id.stream(),
        &id,
        TenantCommand::RecordCredentials {
            carrier: Carrier::Exotel,
        },
    )
    .await?;
    save_view(&state, &id, &done.state, done.version).await?;
    Ok(Json(json!({
        "status_callback_url": exotel::status_callback_url(&state.public_url, &id, &webhook_secret),
        "stream_url_endpoint": exotel::stream_endpoint_url(&state.public_url, &id, &webhook_secret),
    })))
}

/// The tenant's Exotel webhook secret, made on first use. An existing one is kept, so
/// the URLs already configured in Exotel go on working when credentials are rotated.
async fn exotel_webhook_secret(state: &AppState, id: &TenantId) -> Result<SecretString, ApiError> {
    let name = exotel::webhook_secret_name(id);
    if let Some(secret) = state.ports.secrets.get(&name).await? {
        return Ok(secret);
    }
    let secret = exotel::new_webhook_secret();
    state.ports.secrets.put(&name, &secret).await?;
    // Reading back narrows, though cannot close, the window in which two first requests
    // at once each make one and one is shown a secret the other replaced.
    Ok(state.ports.secrets.get(&name).await?.unwrap_or(secret))
}

/// Loads a tenant for a tenant-scoped write: it must exist and not be suspended.
pub async fn active(state: &AppState, id: &TenantId) -> Result<Tenant, ApiError> {
    let tenant = load::<Tenant>(&*state.ports.events, &id.stream(), &id.to_string())
        .await?
        .state;
    if !tenant.exists {
        return Err(ApiError::not_found("tenant"));
    }
    if tenant.suspended {
        return Err(ApiError::forbidden("the tenant is suspended"));
    }
    Ok(tenant)
}
