//! Voice agents of a tenant. Writes take the tenant's key; the admin may read across
//! tenants. Another tenant's agent is simply not found.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use parley_shared::aggregate::load_any;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentSettings};
use parley_shared::domain::tenant::Tenant;
use parley_shared::domain::{AgentId, TenantId};
use parley_shared::flow::{Flow, FlowError};
use parley_shared::readmodel::project;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::body::{JsonBody, from_value, media_type, unsupported};
use crate::error::ApiError;
use crate::tenants::active;
use crate::{AppState, Page, PageParams, list_owned, owned_view, run};

fn repr(id: &AgentId, tenant: &TenantId, settings: &AgentSettings) -> Value {
    let mut body = serde_json::to_value(settings).unwrap_or_else(|_| json!({}));
    body["id"] = json!(id);
    body["tenant_id"] = json!(tenant);
    body
}

async fn save_view(
    state: &AppState,
    id: &AgentId,
    tenant: &TenantId,
    agent: &Agent,
    version: u64,
) -> Result<(), ApiError> {
    let views = &*state.ports.views;
    match agent.settings.as_ref().filter(|_| !agent.deleted) {
        Some(settings) => {
            let view = owned_view(
                "agents",
                &id.to_string(),
                tenant,
                repr(id, tenant, settings),
            );
            Ok(project(views, view, version).await?)
        }
        None => Ok(views.delete("agents", &id.to_string()).await?),
    }
}

/// An agent the caller may see, with its tenant.
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(AgentId, TenantId, Agent), ApiError> {
    let id = AgentId::parse(id).map_err(|_| ApiError::not_found("agent"))?;
    let loaded = load_any::<Agent>(&*state.ports.events, &id.stream()).await?;
    let tenant = loaded
        .tenant_id
        .as_deref()
        .and_then(|t| TenantId::parse(t).ok());
    match tenant {
        Some(tenant)
            if caller.can_read(&tenant) && loaded.state.exists && !loaded.state.deleted =>
        {
            Ok((id, tenant, loaded.state))
        }
        _ => Err(ApiError::not_found("agent")),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(settings): JsonBody<AgentSettings>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant()?.clone();
    let owner = active(&state, &tenant).await?;
    keys_exist(&owner, &settings)?;
    let id = AgentId::new();
    let done = run::<Agent>(
        &state,
        &id.stream(),
        &tenant,
        AgentCommand::Create { settings },
    )
    .await?;
    save_view(&state, &id, &tenant, &done.state, done.version).await?;
    let settings = done
        .state
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok((StatusCode::CREATED, Json(repr(&id, &tenant, settings))))
}

/// Every vendor key the settings choose is one the tenant has stored.
fn keys_exist(tenant: &Tenant, settings: &AgentSettings) -> Result<(), ApiError> {
    for (field, choice) in settings.vendors.choices() {
        if let Some(key) = &choice.key
            && !tenant.vendor_keys.contains(key)
        {
            return Err(ApiError::invalid(
                format!("{field}.key"),
                format!("the tenant has no vendor key named {key:?}; store it first"),
            ));
        }
    }
    Ok(())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    list_owned(&state, &caller, "agents", page).await
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (id, tenant, agent) = visible(&state, &caller, &id).await?;
    let settings = agent
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(repr(&id, &tenant, settings)))
}

/// A JSON merge patch (RFC 7386) of the agent's settings: fields given replace theirs,
/// `null` removes an optional one.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    let (id, _, agent) = visible(&state, &caller, &id).await?;
    if !patch.is_object() {
        return Err(ApiError::invalid(
            "body",
            "must be a JSON object of the settings to change",
        ));
    }
    let mut settings = serde_json::to_value(
        agent
            .settings
            .as_ref()
            .ok_or_else(|| ApiError::not_found("agent"))?,
    )
    .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    merge(&mut settings, &patch);
    let settings: AgentSettings = from_value(settings)?;
    change(&state, &id, &tenant, settings).await
}

/// `PUT /v1/agents/{id}/flow`: the agent's scripted flow, as YAML
/// (`application/yaml`) or JSON. Every problem is reported, each naming its node and
/// field (`flow.nodes.budget.next[0].goto`); the agent is unchanged unless all is well.
pub async fn set_flow(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    let (id, _, agent) = visible(&state, &caller, &id).await?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body", "must be UTF-8 text"))?;
    let parsed = match media_type(&headers).as_str() {
        "application/json" => Flow::parse_json(text),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
            Flow::parse_yaml(text)
        }
        _ => {
            return Err(unsupported(
                "the flow as application/yaml or application/json",
            ));
        }
    };
    let flow = parsed.map_err(flow_problems)?;
    let mut settings = agent
        .settings
        .clone()
        .ok_or_else(|| ApiError::not_found("agent"))?;
    settings.flow = Some(flow);
    change(&state, &id, &tenant, settings).await
}

/// Stores the agent's new settings, for an active tenant whose keys they choose; the
/// agent as it now is.
async fn change(
    state: &AppState,
    id: &AgentId,
    tenant: &TenantId,
    settings: AgentSettings,
) -> Result<Json<Value>, ApiError> {
    keys_exist(&active(state, tenant).await?, &settings)?;
    let done = run::<Agent>(
        state,
        &id.stream(),
        tenant,
        AgentCommand::Change { settings },
    )
    .await?;
    save_view(state, id, tenant, &done.state, done.version).await?;
    let settings = done
        .state
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::not_found("agent"))?;
    Ok(Json(repr(id, tenant, settings)))
}

/// A flow's problems, each under `flow.` so that they read like the agent's own fields.
fn flow_problems(e: FlowError) -> ApiError {
    let field = |path: &str| {
        if path.is_empty() {
            "flow".to_owned()
        } else {
            format!("flow.{path}")
        }
    };
    let problems: Vec<(String, String)> = e
        .errors
        .iter()
        .map(|p| (field(&p.path), p.message.clone()))
        .collect();
    let first = problems
        .first()
        .map_or_else(|| "flow".to_owned(), |(f, _)| f.clone());
    ApiError {
        problems,
        ..ApiError::invalid(first, e.to_string())
    }
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant()?.clone();
    let (id, _, _) = visible(&state, &caller, &id).await?;
    let done = run::<Agent>(&state, &id.stream(), &tenant, AgentCommand::Delete).await?;
    save_view(&state, &id, &tenant, &done.state, done.version).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
