//! Phone numbers: each routes inbound calls to one agent of one tenant.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use parley_shared::aggregate::{Context, execute_unscoped};
use parley_shared::domain::call::Carrier;
use parley_shared::domain::number::{self, Number, NumberCommand};
use parley_shared::domain::{AgentId, PhoneNumber, TenantId};
use parley_shared::readmodel::project;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::tenants::active;
use crate::{AppState, Page, PageParams, list_owned, owned_view};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNumber {
    number: String,
    agent_id: String,
    carrier: Carrier,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberChange {
    agent_id: String,
}

fn repr(number: &PhoneNumber, state: &Number) -> Value {
    json!({
        "number": number,
        "tenant_id": state.owner,
        "agent_id": state.agent_id,
        "carrier": state.carrier,
    })
}

fn phone(field: &'static str, value: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(value.trim()).map_err(|e| ApiError::invalid(field, e.reason))
}

/// The tenant's own live agent, or 422 naming `agent_id`.
async fn own_agent(state: &AppState, caller: &Caller, agent_id: &str) -> Result<AgentId, ApiError> {
    match crate::agents::visible(state, caller, agent_id).await {
        Ok((id, _, _)) => Ok(id),
        Err(_) => Err(ApiError::invalid("agent_id", "no such agent")),
    }
}

async fn command(
    state: &AppState,
    tenant: &TenantId,
    number: &PhoneNumber,
    command: NumberCommand,
) -> Result<(Number, u64), ApiError> {
    let ctx = Context {
        tenant_id: tenant.to_string(),
        correlation_id: tenant.to_string(),
        idempotency_key: None,
    };
    let done = execute_unscoped::<Number>(
        &*state.ports.events,
        &*state.ports.clock,
        &number::stream(number),
        &ctx,
        command,
    )
    .await?;
    let view_key = number.as_str().to_owned();
    let views = &*state.ports.views;
    match &done.state.owner {
        Some(owner) => {
            let view = owned_view("phone_numbers", &view_key, owner, repr(number, &done.state));
            project(views, view, done.version).await?;
        }
        None => views.delete("phone_numbers", &view_key).await?,
    }
    Ok((done.state, done.version))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewNumber>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let number = phone("number", &body.number)?;
    let agent_id = own_agent(&state, &caller, &body.agent_id).await?;
    let assign = NumberCommand::Assign {
        number: number.clone(),
        tenant_id: tenant.clone(),
        agent_id,
        carrier: body.carrier,
    };
    let (state_now, _) = command(&state, &tenant, &number, assign).await?;
    Ok((StatusCode::CREATED, Json(repr(&number, &state_now))))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    list_owned(&state, &caller, "phone_numbers", page).await
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let number = PhoneNumber::parse(&raw).map_err(|_| ApiError::not_found("phone number"))?;
    let loaded = parley_shared::aggregate::load_any::<Number>(
        &*state.ports.events,
        &number::stream(&number),
    )
    .await?;
    match &loaded.state.owner {
        Some(owner) if caller.can_read(owner) => Ok(Json(repr(&number, &loaded.state))),
        _ => Err(ApiError::not_found("phone number")),
    }
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<NumberChange>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    let number = PhoneNumber::parse(&raw).map_err(|_| ApiError::not_found("phone number"))?;
    let agent_id = own_agent(&state, &caller, &body.agent_id).await?;
    let (now, _) = command(
        &state,
        &tenant,
        &number,
        NumberCommand::ChangeAgent {
            tenant_id: tenant.clone(),
            agent_id,
        },
    )
    .await?;
    Ok(Json(repr(&number, &now)))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant()?.clone();
    let number = PhoneNumber::parse(&raw).map_err(|_| ApiError::not_found("phone number"))?;
    command(
        &state,
        &tenant,
        &number,
        NumberCommand::Release {
            tenant_id: tenant.clone(),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
